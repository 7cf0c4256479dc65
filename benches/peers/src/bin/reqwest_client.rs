//! reqwest peer client for `cargo xtask bench client`: C tasks on one
//! current-thread tokio runtime share one `reqwest::Client` (so one pool), and
//! each loops `GET URL` + read the whole body until SECS seconds have passed.
//! It is Tandem's `examples/loadtest.rs` on reqwest, cut to what the bench
//! uses: the same command line and the same summary line.
//!
//! ```text
//! reqwest_client (-d SECS | -n N) -c C [--cacert PEM] [--close] [--http2-prior-knowledge] URL
//! ```
//!
//! For `cargo xtask bench tls-client`, `--cacert` trusts only that file's certificates,
//! through a rustls `ClientConfig` on the ring provider (Tandem's), and `--close` sends
//! `Connection: close`, so each request opens a new connection. For `cargo xtask bench
//! h2`, `-n N` stops after N requests in all, and `--http2-prior-knowledge` speaks h2c,
//! every loop on the one connection reqwest keeps.
//!
//! prints `<completed> requests in <elapsed>s, client CPU <seconds on a CPU, all threads>s`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bench_peers::{cpu_secs, load_args, usage};

/// When the loops stop: at a time, or once this many requests in all have been claimed.
enum Stop {
    At(Instant),
    After(Arc<AtomicU64>),
}

impl Stop {
    /// Claims one more request, or says the run is over.
    fn next(&self) -> bool {
        match self {
            Stop::At(deadline) => Instant::now() < *deadline,
            Stop::After(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// GET + read the body until `stop` says so; the number of requests completed.
///
/// The URL goes in as a string, as it does to Tandem's `session.get(&url)`, so
/// both clients parse it on every request.
async fn worker(client: reqwest::Client, url: String, stop: Arc<Stop>) -> u64 {
    let mut done = 0;
    while stop.next() {
        let response = client.get(url.as_str()).send().await.expect("GET failed");
        assert!(response.status().is_success(), "GET {url}: {}", response.status());
        response.bytes().await.expect("reading the body failed");
        done += 1;
    }
    done
}

/// rustls on ring trusting only the certificates in `path`, ALPN `http/1.1`, as Tandem's
/// `TlsConfig` with `webpki_roots(false)` and that file's roots.
fn tls_config(path: &str) -> rustls::ClientConfig {
    use rustls::pki_types::{CertificateDer, pem::PemObject};

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).expect("--cacert PEM readable") {
        roots.add(cert.expect("a PEM certificate")).expect("a CA certificate rustls takes");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring's defaults")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

fn main() {
    let args = load_args(false);
    // Checked once here, so a bad URL is a usage error rather than a panic.
    if reqwest::Url::parse(&args.url).is_err() {
        usage("-d SECS -c C URL", &args.url);
    }
    let url = args.url;
    // reqwest's rustls has no provider of its own here; even a plain-HTTP client builds its
    // TLS settings, so ring is made the process's default first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // No proxy from the environment: Tandem's session ignores it by default too.
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(path) = &args.cacert {
        builder = builder.tls_backend_preconfigured(tls_config(path));
    }
    if args.http2_prior_knowledge {
        builder = builder.http2_prior_knowledge();
    }
    if args.close {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::CONNECTION, "close".parse().expect("a valid value"));
        builder = builder.default_headers(headers);
    }
    let client = builder.build().expect("the client builds");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("a current-thread runtime builds");
    let (requests, elapsed) = runtime.block_on(async move {
        let start = Instant::now();
        let stop = Arc::new(match args.requests {
            Some(n) => Stop::After(Arc::new(AtomicU64::new(n))),
            None => Stop::At(start + Duration::from_secs_f64(args.secs)),
        });
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| tokio::spawn(worker(client.clone(), url.clone(), Arc::clone(&stop))))
            .collect();
        let mut requests = 0;
        for task in tasks {
            requests += task.await.expect("a load task panicked");
        }
        (requests, start.elapsed())
    });
    println!("{requests} requests in {:.3}s, client CPU {:.3}s", elapsed.as_secs_f64(), cpu_secs());
}
