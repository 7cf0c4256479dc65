//! What the peers share: the servers' `--port P` flag, JSON body type and hyper answer, and
//! the load clients' command line and CPU clock.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;

/// The TechEmpower JSON test's body, serialized anew for every request.
#[derive(Serialize)]
pub struct Message {
    /// Always `Hello, World!`.
    pub message: &'static str,
}

/// The body of `GET /plaintext`.
pub const PLAINTEXT: &[u8] = b"Hello, World!";

/// The hyper peers' answer to `req`: the two TechEmpower routes, 404 otherwise.
pub fn hyper_respond(req: &hyper::Request<hyper::body::Incoming>) -> hyper::Response<Full<Bytes>> {
    let (body, content_type) = match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/plaintext") => (Bytes::from_static(PLAINTEXT), "text/plain"),
        (&hyper::Method::GET, "/json") => {
            let body = serde_json::to_vec(&Message { message: "Hello, World!" })
                .expect("a struct of one string always serializes");
            (Bytes::from(body), "application/json")
        }
        _ => {
            let mut res = hyper::Response::new(Full::new(Bytes::new()));
            *res.status_mut() = hyper::StatusCode::NOT_FOUND;
            return res;
        }
    };
    let mut res = hyper::Response::new(Full::new(body));
    res.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    res
}

/// Serves 127.0.0.1:`--port` on one current-thread tokio runtime (one thread in all):
/// every accepted connection gets `TCP_NODELAY` and a task of its own running `serve`.
pub fn serve_each_connection<F, Fut>(serve: F) -> std::io::Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let port = port_from_args();
    tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream));
        }
    })
}

/// Parses `--port P` (or `--port=P`) from the command line; exits with a
/// usage message on anything else.
#[must_use]
pub fn port_from_args() -> u16 {
    server_args().port
}

/// A server peer's command line: `--port P` (or `--port=P`), and for `hyper_server`
/// `--upload-file PATH`, where `POST /upload` writes its body.
pub struct ServerArgs {
    pub port: u16,
    pub upload_file: Option<std::path::PathBuf>,
}

/// Parses a server peer's command line; exits with a usage message on anything else.
#[must_use]
pub fn server_args() -> ServerArgs {
    const SYNOPSIS: &str = "--port P [--upload-file PATH]";
    let mut args = std::env::args().skip(1);
    let (mut port, mut upload_file) = (None, None);
    while let Some(arg) = args.next() {
        let (name, value) = match arg.split_once('=') {
            Some((name, v)) => (name, Some(v.to_owned())),
            None => (arg.as_str(), args.next()),
        };
        match (name, value) {
            ("--port", Some(v)) => port = Some(v.parse().unwrap_or_else(|_| usage(SYNOPSIS, &arg))),
            ("--upload-file", Some(v)) => upload_file = Some(v.into()),
            _ => usage(SYNOPSIS, &arg),
        }
    }
    let port = port.unwrap_or_else(|| usage(SYNOPSIS, "(missing --port)"));
    ServerArgs { port, upload_file }
}

/// A load client's command line, as Tandem's loaders take it:
/// `-d SECS -c C URL`, plus `-s SIZE` for the WebSocket clients, and for the HTTP client
/// `-n N` instead of `-d` (stop after N requests), `--cacert PEM` (trust that file's
/// certificates instead of any other), `--close` (a new connection per request,
/// `Connection: close`, as Tandem's loader's `-H 'Connection: close'`) and
/// `--http2-prior-knowledge` (h2c, all loops sharing one connection).
pub struct LoadArgs {
    pub url: String,
    /// How long to load, in seconds; 0 under `-n`.
    pub secs: f64,
    /// `-n N`: how many requests in all, instead of a time.
    pub requests: Option<u64>,
    /// Concurrent loops (each on its own connection for the WebSocket clients).
    pub concurrency: usize,
    /// The message size in bytes; 0 unless `with_size`.
    pub size: usize,
    /// `--cacert PEM`.
    pub cacert: Option<String>,
    /// `--close`.
    pub close: bool,
    /// `--http2-prior-knowledge`.
    pub http2_prior_knowledge: bool,
}

/// Parses a load client's command line; `-s SIZE` is required when
/// `with_size`, refused otherwise. Exits with a usage message on anything bad.
#[must_use]
pub fn load_args(with_size: bool) -> LoadArgs {
    let synopsis = if with_size { "-d SECS -c C -s SIZE URL" } else { "(-d SECS | -n N) -c C URL" };
    let mut args = std::env::args().skip(1);
    let (mut url, mut secs, mut concurrency, mut size) = (None, None, None, None);
    let (mut cacert, mut close, mut requests, mut http2_prior_knowledge) =
        (None, false, None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-d" => secs = args.next().and_then(|v| v.parse().ok()).filter(|s: &f64| *s > 0.0),
            "-n" if !with_size => {
                requests = args.next().and_then(|v| v.parse().ok()).filter(|n| *n > 0)
            }
            "--http2-prior-knowledge" if !with_size => http2_prior_knowledge = true,
            "-c" => concurrency = args.next().and_then(|v| v.parse().ok()).filter(|c| *c > 0),
            "-s" if with_size => size = args.next().and_then(|v| v.parse().ok()),
            "--cacert" if !with_size => cacert = args.next(),
            "--close" if !with_size => close = true,
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => usage(synopsis, &arg),
        }
    }
    let secs = match (secs, requests) {
        (Some(secs), None) => Some(secs),
        (None, Some(_)) => Some(0.0),
        _ => None,
    };
    match (url, secs, concurrency, size.or((!with_size).then_some(0))) {
        (Some(url), Some(secs), Some(concurrency), Some(size)) => LoadArgs {
            url,
            secs,
            requests,
            concurrency,
            size,
            cacert,
            close,
            http2_prior_knowledge,
        },
        _ => usage(synopsis, "(a missing or invalid argument)"),
    }
}

/// Prints the usage line and exits with status 2.
pub fn usage(synopsis: &str, bad: &str) -> ! {
    let name = std::env::args().next().unwrap_or_default();
    eprintln!("usage: {name} {synopsis}   (bad argument: {bad})");
    std::process::exit(2)
}

/// Time this process's threads have spent on a CPU, from the first field of
/// each `/proc/self/task/*/schedstat` (nanoseconds); 0 where that is missing.
#[must_use]
pub fn cpu_secs() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let nanos: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos).as_secs_f64()
}

/// The largest WebSocket message either tungstenite peer accepts: room for the
/// bench's 1 MiB messages, the same limit Tandem's `bench_server` and
/// `ws_load` set (tungstenite's own defaults, 64 MiB and 16 MiB, would do too,
/// but like for like is simpler to reason about).
pub const WS_MAX_MSG_SIZE: usize = 2 * 1024 * 1024;

/// tungstenite's settings for both WebSocket peers: defaults but the limits.
#[must_use]
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(WS_MAX_MSG_SIZE))
        .max_frame_size(Some(WS_MAX_MSG_SIZE))
}
