//! A WebSocket load client for `cargo xtask bench ws`: CONNS connections on one
//! current-thread runtime, each sending a binary message of SIZE bytes and awaiting its
//! echo, in a loop, until SECS seconds have passed.
//!
//! ```text
//! cargo run --release --example ws_load -- -d SECS -c CONNS -s SIZE ws://HOST:PORT/PATH
//! ```
//!
//! prints `<echoed> messages in <elapsed>s, client CPU <seconds on a CPU, all threads>s`,
//! the line `benches/peers`' `tungstenite_client` prints too.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

#[path = "support/cpu_time.rs"]
mod cpu_time;

use cpu_time::cpu_secs;
use tandem_http::{
    ClientSession,
    ws::{CloseCode, Error, Message, WsConnectExt},
};

/// The largest message accepted: room for the bench's 1 MiB messages, as on the server.
const MAX_MSG_SIZE: usize = 2 * 1024 * 1024;
const USAGE: &str = "usage: ws_load -d SECS -c CONNS -s SIZE URL";

struct Args {
    url: String,
    secs: f64,
    conns: usize,
    size: usize,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = args.into_iter();
    let (mut url, mut secs, mut conns, mut size) = (None, None, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-d" => secs = Some(value(&arg, args.next(), |s: &f64| *s > 0.0)?),
            "-c" => conns = Some(value(&arg, args.next(), |c: &usize| *c > 0)?),
            "-s" => size = Some(value(&arg, args.next(), |s: &usize| *s <= MAX_MSG_SIZE)?),
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    match (url, secs, conns, size) {
        (Some(url), Some(secs), Some(conns), Some(size)) => Ok(Args { url, secs, conns, size }),
        _ => Err("-d, -c, -s and URL are all required".to_owned()),
    }
}

/// `flag`'s value, parsed and checked by `valid`.
fn value<T: std::str::FromStr>(
    flag: &str,
    text: Option<String>,
    valid: impl Fn(&T) -> bool,
) -> Result<T, String> {
    text.and_then(|t| t.parse().ok())
        .filter(valid)
        .ok_or(format!("{flag}: a missing or out-of-range value"))
}

/// One connection's send-and-await-the-echo loop until `deadline`; the number of
/// messages echoed.
async fn worker(
    session: ClientSession,
    url: String,
    size: usize,
    deadline: Instant,
) -> Result<u64, Error> {
    let mut ws = session.ws_connect(&url).max_msg_size(MAX_MSG_SIZE).await?;
    let payload = vec![0xA5; size];
    let mut done = 0;
    while Instant::now() < deadline {
        ws.send_bytes(&payload).await?;
        match ws.receive().await {
            Message::Binary(echo) if echo.len() == size => done += 1,
            Message::Error(e) => return Err(e),
            other => panic!("expected a {size}-byte echo, got {other:?}"),
        }
    }
    ws.close(CloseCode::OK, "").await?;
    Ok(done)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{USAGE}\n{e}");
            return ExitCode::from(2);
        }
    };
    let session = ClientSession::new();
    // One thread, as the tungstenite client runs: the bench pins it to one core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let result = runtime.block_on(async move {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(args.secs);
        let tasks: Vec<_> = (0..args.conns)
            .map(|_| tokio::spawn(worker(session.clone(), args.url.clone(), args.size, deadline)))
            .collect();
        let mut messages = 0;
        for task in tasks {
            messages += task.await.expect("a load task panicked")?;
        }
        Ok::<_, Error>((messages, start.elapsed()))
    });
    match result {
        Ok((messages, elapsed)) => {
            println!(
                "{messages} messages in {:.3}s, client CPU {:.3}s",
                elapsed.as_secs_f64(),
                cpu_secs()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ws_load: {e}");
            ExitCode::FAILURE
        }
    }
}
