//! reqwest peer client for `cargo xtask bench client`: C tasks on one
//! current-thread tokio runtime share one `reqwest::Client` (so one pool), and
//! each loops `GET URL` + read the whole body until SECS seconds have passed.
//! It is Tandem's `examples/loadtest.rs` on reqwest, cut to what the bench
//! uses: the same command line and the same summary line.
//!
//! ```text
//! reqwest_client -d SECS -c C URL
//! ```
//!
//! prints `<completed> requests in <elapsed>s, client CPU <seconds on a CPU, all threads>s`.

use std::time::{Duration, Instant};

struct Args {
    url: String,
    secs: f64,
    concurrency: usize,
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let (mut url, mut secs, mut concurrency) = (None, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-d" => secs = args.next().and_then(|v| v.parse().ok()).filter(|s: &f64| *s > 0.0),
            "-c" => concurrency = args.next().and_then(|v| v.parse().ok()).filter(|c| *c > 0),
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => usage(&arg),
        }
    }
    match (url, secs, concurrency) {
        (Some(url), Some(secs), Some(concurrency)) => Args { url, secs, concurrency },
        _ => usage("(missing or invalid -d, -c or URL)"),
    }
}

fn usage(bad: &str) -> ! {
    let name = std::env::args().next().unwrap_or_default();
    eprintln!("usage: {name} -d SECS -c C URL   (bad argument: {bad})");
    std::process::exit(2)
}

/// GET + read the body until `deadline`; the number of requests completed.
///
/// The URL goes in as a string, as it does to Tandem's `session.get(&url)`, so
/// both clients parse it on every request.
async fn worker(client: reqwest::Client, url: String, deadline: Instant) -> u64 {
    let mut done = 0;
    while Instant::now() < deadline {
        let response = client.get(url.as_str()).send().await.expect("GET failed");
        assert!(response.status().is_success(), "GET {url}: {}", response.status());
        response.bytes().await.expect("reading the body failed");
        done += 1;
    }
    done
}

fn main() {
    let args = parse_args();
    // Checked once here, so a bad URL is a usage error rather than a panic.
    if reqwest::Url::parse(&args.url).is_err() {
        usage(&args.url);
    }
    let url = args.url;
    // No proxy from the environment: Tandem's session ignores it by default too.
    let client = reqwest::Client::builder().no_proxy().build().expect("a plain-HTTP client builds");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("a current-thread runtime builds");
    let (requests, elapsed) = runtime.block_on(async move {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(args.secs);
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| tokio::spawn(worker(client.clone(), url.clone(), deadline)))
            .collect();
        let mut requests = 0;
        for task in tasks {
            requests += task.await.expect("a load task panicked");
        }
        (requests, start.elapsed())
    });
    println!("{requests} requests in {:.3}s, client CPU {:.3}s", elapsed.as_secs_f64(), cpu_secs());
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
