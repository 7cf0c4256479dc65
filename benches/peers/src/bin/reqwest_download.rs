//! reqwest peer for `cargo xtask bench bulk`'s client download row: `GET URL` on a
//! current-thread tokio runtime, the body read piece by piece with `Response::chunk` and
//! dropped, as Tandem's `examples/download` to `/dev/null` reads it through `content()`.
//!
//! ```text
//! reqwest_download URL
//! ```
//!
//! prints `<bytes> bytes in <elapsed>s, client CPU <seconds on a CPU, all threads>s`.

use std::time::Instant;

use bench_peers::{cpu_secs, usage};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url] = args.as_slice() else { usage("URL", &args.join(" ")) };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().expect("the client builds");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("a current-thread runtime builds");
    let start = Instant::now();
    let bytes = runtime.block_on(async {
        let mut response = client.get(url).send().await.expect("GET failed");
        assert!(response.status().is_success(), "GET {url}: {}", response.status());
        let mut bytes = 0u64;
        while let Some(chunk) = response.chunk().await.expect("reading the body failed") {
            bytes += chunk.len() as u64;
        }
        bytes
    });
    println!(
        "{bytes} bytes in {:.3}s, client CPU {:.3}s",
        start.elapsed().as_secs_f64(),
        cpu_secs()
    );
}
