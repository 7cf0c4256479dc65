//! The client load for `cargo xtask bench client`: C tasks on one current-thread runtime
//! share one [`ClientSession`] (so one connection pool), and each loops `GET URL` + read the
//! whole body until N seconds have passed. `benches/peers`' `reqwest_client` is the same
//! program on reqwest.
//!
//! ```text
//! cargo run --release --example client_load -- --url U --secs N --concurrency C
//! ```
//!
//! prints `requests=<completed> secs=<elapsed> cpu=<seconds on a CPU, all threads>`.

use std::time::{Duration, Instant};

use tandem::ClientSession;

struct Args {
    url: String,
    secs: f64,
    concurrency: usize,
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let (mut url, mut secs, mut concurrency) = (None, None, None);
    while let Some(arg) = args.next() {
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), args.next()),
        };
        let Some(value) = value else { usage(&arg) };
        match flag.as_str() {
            "--url" => url = Some(value),
            "--secs" => secs = value.parse().ok().filter(|s: &f64| *s > 0.0),
            "--concurrency" => concurrency = value.parse().ok().filter(|c| *c > 0),
            _ => usage(&arg),
        }
    }
    match (url, secs, concurrency) {
        (Some(url), Some(secs), Some(concurrency)) => Args { url, secs, concurrency },
        _ => usage("(missing or invalid --url, --secs or --concurrency)"),
    }
}

fn usage(bad: &str) -> ! {
    let name = std::env::args().next().unwrap_or_default();
    eprintln!("usage: {name} --url U --secs N --concurrency C   (bad argument: {bad})");
    std::process::exit(2)
}

/// GET + read the body until `deadline`; the number of requests completed.
async fn worker(session: ClientSession, url: String, deadline: Instant) -> u64 {
    let mut done = 0;
    while Instant::now() < deadline {
        let mut response = session.get(&url).send().await.expect("GET failed");
        assert!(response.ok(), "GET {url}: {}", response.status());
        response.read().await.expect("reading the body failed");
        done += 1;
    }
    done
}

fn main() {
    let args = parse_args();
    // The connector's default limit (100 connections) is above any concurrency used here.
    let session = ClientSession::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let (requests, elapsed) = runtime.block_on(async move {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(args.secs);
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| tokio::spawn(worker(session.clone(), args.url.clone(), deadline)))
            .collect();
        let mut requests = 0;
        for task in tasks {
            requests += task.await.expect("a load task panicked");
        }
        (requests, start.elapsed())
    });
    println!("requests={requests} secs={:.3} cpu={:.3}", elapsed.as_secs_f64(), cpu_secs());
}

/// Time this process's threads have spent on a CPU, from the first field of
/// each `/proc/self/task/*/schedstat` (nanoseconds); 0 where that is missing.
fn cpu_secs() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let nanos: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos).as_secs_f64()
}
