//! tokio-tungstenite peer client for `cargo xtask bench ws`: C connections on
//! one current-thread tokio runtime, each sending a binary message of SIZE
//! bytes and awaiting its echo in a loop until SECS seconds have passed. It is
//! Tandem's `examples/ws_load.rs` on tokio-tungstenite: the same command line
//! and the same summary line.
//!
//! ```text
//! tungstenite_client -d SECS -c C -s SIZE URL
//! ```
//!
//! prints `<echoed> messages in <elapsed>s, client CPU <seconds on a CPU, all threads>s`.

use std::time::{Duration, Instant};

use bench_peers::{cpu_secs, load_args, ws_config};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::{connect_async_with_config, tungstenite::Message};

/// One connection's send-and-await-the-echo loop until `deadline`; the number
/// of messages echoed.
async fn worker(url: String, size: usize, deadline: Instant) -> u64 {
    // `true`: no Nagle, as Tandem's client connects.
    let (mut ws, _) = connect_async_with_config(url.as_str(), Some(ws_config()), true)
        .await
        .unwrap_or_else(|e| panic!("WebSocket handshake with {url} failed: {e}"));
    // A `Bytes` clone per send is a reference count, not a copy.
    let payload = Bytes::from(vec![0xA5; size]);
    let mut done = 0;
    while Instant::now() < deadline {
        ws.send(Message::Binary(payload.clone())).await.expect("send failed");
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(echo))) => {
                    assert_eq!(echo.len(), size, "the echo has another size");
                    break;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected the echo, got {other:?}"),
            }
        }
        done += 1;
    }
    let _ = ws.close(None).await;
    done
}

fn main() {
    let args = load_args(true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("a current-thread runtime builds");
    let (messages, elapsed) = runtime.block_on(async move {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(args.secs);
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| tokio::spawn(worker(args.url.clone(), args.size, deadline)))
            .collect();
        let mut messages = 0;
        for task in tasks {
            messages += task.await.expect("a load task panicked");
        }
        (messages, start.elapsed())
    });
    println!("{messages} messages in {:.3}s, client CPU {:.3}s", elapsed.as_secs_f64(), cpu_secs());
}
