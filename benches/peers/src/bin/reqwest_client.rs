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

use bench_peers::{cpu_secs, load_args, usage};

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
    let args = load_args(false);
    // Checked once here, so a bad URL is a usage error rather than a panic.
    if reqwest::Url::parse(&args.url).is_err() {
        usage("-d SECS -c C URL", &args.url);
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
