//! HTTP/2 on the server: h2c by prior knowledge and h2 over TLS against clients we did not
//! write (curl, nghttp, Python's httpx), and the known HTTP/2 attacks sent frame by frame as
//! raw bytes: rapid reset, CONTINUATION flood, SETTINGS and PING floods, an oversized
//! header block, a window that never opens, a stream opened after GOAWAY. Each attack must
//! end in bounded time with its stream refused or its connection closed, and the server
//! still serving others. They need the `http2` feature.
#![cfg(feature = "http2")]

use std::{
    path::Path,
    process::{Output, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use tandem_web::{Application, Http2Config, Request, Response, ServerConfig};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{Barrier, Notify, mpsc},
};

use crate::support::{Server, TIMEOUT, within};

const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// Handlers of `/park` started, and those still running.
#[derive(Default)]
struct Gauge {
    started: AtomicUsize,
    live: AtomicUsize,
    hello: AtomicUsize,
}

/// Counts a running `/park` handler until dropped (cancelled).
struct Live(Arc<Gauge>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn app(gauge: &Arc<Gauge>) -> Application {
    let mut app = Application::new();
    let g = Arc::clone(gauge);
    app.add_get("/hello", move |req: Request| {
        g.hello.fetch_add(1, Ordering::SeqCst);
        async move {
            let tls = req.tls().and_then(|t| t.alpn_protocol()).map(String::from_utf8_lossy);
            format!(
                "hello {:?} host={} scheme={} alpn={}",
                req.version(),
                req.header("host").unwrap_or("-"),
                req.scheme(),
                tls.as_deref().unwrap_or("-")
            )
        }
    });
    app.add_post("/echo", |mut req: Request| async move {
        match req.read().await {
            Ok(body) => Response::bytes(body),
            Err(err) => tandem_web::IntoResponse::into_response(err),
        }
    });
    app.add_get("/stream", |_req: Request| async {
        let chunks = (0..5).map(|n| Ok(Bytes::from(vec![b'a' + n; 1000])));
        Response::stream(futures_util::stream::iter(chunks))
    });
    app.add_get("/big", |_req: Request| async { Response::bytes(vec![b'x'; 1 << 20]) });
    app.add_get("/cookies", |req: Request| async move {
        format!("a={} b={}", req.cookie("a").unwrap_or("-"), req.cookie("b").unwrap_or("-"))
    });
    let g = Arc::clone(gauge);
    app.add_get("/park", move |_req: Request| {
        g.started.fetch_add(1, Ordering::SeqCst);
        g.live.fetch_add(1, Ordering::SeqCst);
        let live = Live(Arc::clone(&g));
        async move {
            std::future::pending::<()>().await;
            drop(live);
            "never"
        }
    });
    // Three requests that only answer once all three have arrived: proof that the streams
    // of one connection run at once.
    let barrier = Arc::new(Barrier::new(3));
    app.add_get("/together", move |_req: Request| {
        let barrier = Arc::clone(&barrier);
        async move {
            match tokio::time::timeout(TIMEOUT, barrier.wait()).await {
                Ok(_) => Response::text("together"),
                Err(_) => Response::text("alone").with_status(http::StatusCode::GATEWAY_TIMEOUT),
            }
        }
    });
    app
}

async fn start(config: ServerConfig) -> (Server, Arc<Gauge>) {
    let gauge = Arc::new(Gauge::default());
    (Server::start_with(app(&gauge), config).await, gauge)
}

/// Runs `program` to its end (bounded).
async fn run(program: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(program);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.kill_on_drop(true);
    let child = command.spawn().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    tokio::time::timeout(PROCESS_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} did not finish in time"))
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn curl(args: &[&str]) -> String {
    let mut all = vec!["-sS", "--max-time", "30"];
    all.extend_from_slice(args);
    stdout(&run("curl", &all).await)
}

// ===== clients we did not write =====

#[tokio::test]
async fn curl_prior_knowledge_get_post_stream_and_http1_on_the_same_port() {
    let (server, _) = start(ServerConfig::default()).await;
    let h2c = "--http2-prior-knowledge";
    let out = curl(&[h2c, "-w", " %{http_version}", &server.url("/hello")]).await;
    let host = server.addr.to_string();
    assert_eq!(out, format!("hello HTTP/2.0 host={host} scheme=http alpn=- 2"));
    let out = curl(&[h2c, "--data-binary", "ping over h2", &server.url("/echo")]).await;
    assert_eq!(out, "ping over h2");
    let out = curl(&[h2c, &server.url("/stream")]).await;
    assert_eq!(out.len(), 5000);
    assert!(out.starts_with(&"a".repeat(1000)) && out.ends_with(&"e".repeat(1000)));
    let out = curl(&[h2c, "-o", "/dev/null", "-w", "%{size_download}", &server.url("/big")]).await;
    assert_eq!(out, (1 << 20).to_string());
    let out = curl(&[h2c, "-I", &server.url("/big")]).await;
    assert!(out.starts_with("HTTP/2 200") && out.contains("content-length: 1048576"), "{out}");
    // HTTP/1.1 on the same port.
    let out = curl(&["--http1.1", &server.url("/hello")]).await;
    assert_eq!(out, format!("hello HTTP/1.1 host={host} scheme=http alpn=-"));
    assert!(server.stop().await);
}

#[tokio::test]
async fn nghttp_runs_the_streams_of_one_connection_at_once() {
    let (server, _) = start(ServerConfig::default()).await;
    let urls: Vec<String> = (1..=3).map(|n| server.url(&format!("/together?{n}"))).collect();
    let out = stdout(&run("nghttp", &["-v", "-t", "30", &urls[0], &urls[1], &urls[2]]).await);
    assert_eq!(out.matches(":status: 200").count(), 3, "{out}");
    // One connection.
    assert_eq!(out.matches("Connected").count(), 1, "{out}");
    assert!(server.stop().await);
}

/// A body over `client_max_size` is a 413 answered at once, as on HTTP/1.1, and the rest of
/// the upload is cut short with `RST_STREAM(NO_ERROR)` (RFC 9113, 8.1). nghttp, as curl
/// before 8.1 takes that reset after a whole response for an error.
#[tokio::test]
async fn an_upload_over_client_max_size_is_a_413() {
    let (server, _) = start(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'y'; 2 << 20]).unwrap();
    let url = server.url("/echo");
    let out = stdout(&run("nghttp", &["-v", "-t", "30", "-d", big.to_str().unwrap(), &url]).await);
    assert!(out.contains(":status: 413"), "{out}");
    assert!(out.contains("recv RST_STREAM frame") && out.contains("error_code=NO_ERROR"), "{out}");
    assert!(server.stop().await);
}

const HTTPX_CLIENT: &str = r#"
import sys, httpx
with httpx.Client(http1=False, http2=True) as client:
    r = client.get(sys.argv[1] + "/hello")
    print(r.http_version, r.status_code, r.text)
    r = client.post(sys.argv[1] + "/echo", content=b"x" * 100000)
    print(r.http_version, r.status_code, len(r.content))
    r = client.get(sys.argv[1] + "/cookies", headers=[("cookie", "a=1"), ("cookie", "b=2")])
    print(r.http_version, r.status_code, r.text)
"#;

#[tokio::test]
async fn python_httpx_speaks_http2() {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    assert!(
        Path::new(python).exists(),
        "{python} is missing: run `cargo xtask peers` to install httpx for the HTTP/2 tests"
    );
    let (server, _) = start(ServerConfig::default()).await;
    let base = format!("http://{}", server.addr);
    let out = stdout(&run(python, &["-c", HTTPX_CLIENT, &base]).await);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("HTTP/2 200 hello HTTP/2.0"), "{out}");
    assert_eq!(lines[1], "HTTP/2 200 100000");
    assert_eq!(lines[2], "HTTP/2 200 a=1 b=2");
    assert!(server.stop().await);
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn curl_negotiates_h2_over_tls_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = cert.cert.pem();
    let ca = dir.path().join("cert.pem");
    std::fs::write(&ca, &cert_pem).unwrap();
    let identity = tandem_web::Identity::from_pem(
        cert_pem.as_bytes(),
        cert.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let tls = tandem_web::TlsConfig::builder(identity).build().unwrap();
    let gauge = Arc::new(Gauge::default());
    let mut runner = tandem_web::AppRunner::new(app(&gauge)).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &tls).await.unwrap();
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    let url = format!("https://localhost:{}/hello", addr.port());
    let ca = ca.to_str().unwrap();
    let common = ["--resolve", &resolve, "--cacert", ca, "-w", " %{http_version}"];
    let out = curl(&[&common[..], &["--http2", &url]].concat()).await;
    let host = format!("localhost:{}", addr.port());
    assert_eq!(out, format!("hello HTTP/2.0 host={host} scheme=https alpn=h2 2"));
    let out = curl(&[&common[..], &["--http1.1", &url]].concat()).await;
    assert_eq!(out, format!("hello HTTP/1.1 host={host} scheme=https alpn=http/1.1 1.1"));
    assert!(within(runner.cleanup()).await);
}

#[tokio::test]
async fn the_access_log_says_http2() {
    crate::running::install_access_log();
    let me = std::thread::current().id();
    let (server, _) = start(ServerConfig::default()).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    conn.get(1, "/hello?from=log").await;
    let (status, _) = conn.response(1).await;
    assert_eq!(status, Some(200));
    drop(conn);
    assert!(server.stop().await);
    let lines = crate::running::access_lines(me);
    assert!(
        lines.iter().any(|l| l.contains("target=/hello?from=log")
            && l.contains("version=HTTP/2.0")
            && l.contains("status=200")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_stream_reset_before_its_response_is_logged_once_as_a_499() {
    crate::running::install_access_log();
    let me = std::thread::current().id();
    let (server, gauge) = start(ServerConfig::default()).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    conn.get(1, "/park").await;
    within(async {
        while gauge.started.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    conn.send(&frame(RST_STREAM, 0, 1, &8u32.to_be_bytes())).await;
    all_cancelled(&gauge).await;
    drop(conn);
    assert!(server.stop().await);
    let lines: Vec<String> = crate::running::access_lines(me)
        .into_iter()
        .filter(|l| l.contains("target=/park "))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("status=499") && lines[0].contains("aborted=true"), "{lines:?}");
}

// ===== raw frames =====

pub(crate) const DATA: u8 = 0;
pub(crate) const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
pub(crate) const SETTINGS: u8 = 4;
const PING: u8 = 6;
pub(crate) const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
pub(crate) const CONTINUATION: u8 = 9;
pub(crate) const END_STREAM: u8 = 0x1;
pub(crate) const ACK: u8 = 0x1;
pub(crate) const END_HEADERS: u8 = 0x4;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 4;
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub(crate) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK string or integer length, 7-bit prefix, no Huffman coding.
fn hpack_len(out: &mut Vec<u8>, mut n: usize) {
    if n < 127 {
        out.push(u8::try_from(n).unwrap());
        return;
    }
    out.push(127);
    n -= 127;
    while n >= 128 {
        out.push(u8::try_from(n % 128).unwrap() | 0x80);
        n /= 128;
    }
    out.push(u8::try_from(n).unwrap());
}

/// A field whose name is static-table entry `index` (< 15), not indexed.
pub(crate) fn field_indexed_name(out: &mut Vec<u8>, index: u8, value: &[u8]) {
    out.push(index);
    hpack_len(out, value.len());
    out.extend_from_slice(value);
}

/// A field with a literal name, not indexed.
pub(crate) fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0);
    hpack_len(out, name.len());
    out.extend_from_slice(name);
    hpack_len(out, value.len());
    out.extend_from_slice(value);
}

/// The header block of `GET path` (`:method GET`, `:scheme http`, `:path`, `:authority t`).
pub(crate) fn get_block(path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86];
    field_indexed_name(&mut block, 4, path.as_bytes());
    field_indexed_name(&mut block, 1, b"t");
    block
}

#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    pub(crate) fn goaway_parts(&self) -> (u32, u32) {
        let p = &self.payload;
        let last = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
        (last, u32::from_be_bytes([p[4], p[5], p[6], p[7]]))
    }
}

/// A client that writes frames as bytes and reads the server's frame by frame, acking its
/// SETTINGS and PINGs while it still holds its write half.
pub(crate) struct Raw {
    read: tokio::net::tcp::OwnedReadHalf,
    write: Option<tokio::net::tcp::OwnedWriteHalf>,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects and sends the preface and a SETTINGS frame with `settings`.
    pub(crate) async fn open(addr: std::net::SocketAddr, settings: &[(u16, u32)]) -> Raw {
        let mut raw = Raw::connect(addr).await;
        let mut payload = Vec::new();
        for (id, value) in settings {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &payload));
        raw.send(&hello).await;
        raw
    }

    /// Connects without sending anything.
    async fn connect(addr: std::net::SocketAddr) -> Raw {
        let stream = within(TcpStream::connect(addr)).await.unwrap();
        let (read, write) = stream.into_split();
        Raw { read, write: Some(write), buf: Vec::new() }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        let write = self.write.as_mut().expect("the write half is here");
        within(write.write_all(bytes)).await.unwrap();
    }

    /// [`send`](Self::send) to a server that may have closed already: a failure is ignored.
    pub(crate) async fn try_send(&mut self, bytes: &[u8]) {
        let write = self.write.as_mut().expect("the write half is here");
        let _ = within(write.write_all(bytes)).await;
    }

    /// Writes `bytes` from a task of its own (a flood larger than the socket's buffers),
    /// ignoring a failure: the server is expected to close.
    fn flood(&mut self, bytes: Vec<u8>) -> tokio::task::JoinHandle<()> {
        let mut write = self.write.take().expect("the write half is here");
        tokio::spawn(async move {
            let _ = write.write_all(&bytes).await;
        })
    }

    async fn get(&mut self, stream: u32, path: &str) {
        self.send(&frame(HEADERS, END_HEADERS | END_STREAM, stream, &get_block(path))).await;
    }

    /// The next frame, `None` once the server has closed.
    pub(crate) async fn frame(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9).collect();
                    let payload = self.buf.drain(..len).collect();
                    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
                    let frame = Frame { kind: head[3], flags: head[4], stream, payload };
                    let ack = match frame.kind {
                        SETTINGS if frame.flags & ACK == 0 => {
                            Some(self::frame(SETTINGS, ACK, 0, &[]))
                        }
                        PING if frame.flags & ACK == 0 => {
                            Some(self::frame(PING, ACK, 0, &frame.payload))
                        }
                        _ => None,
                    };
                    if let (Some(ack), Some(write)) = (ack, self.write.as_mut()) {
                        // The server may have closed already; what it sent is still read.
                        let _ = write.write_all(&ack).await;
                    }
                    return Some(frame);
                }
            }
            self.buf.reserve(64 * 1024);
            match within(self.read.read_buf(&mut self.buf)).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Frames until one matches `pred` (returned), or `None` at the close.
    pub(crate) async fn until(&mut self, pred: impl Fn(&Frame) -> bool) -> Option<Frame> {
        while let Some(frame) = self.frame().await {
            if pred(&frame) {
                return Some(frame);
            }
        }
        None
    }

    /// The status (read by [`status_of`]) and body of `stream`'s response, or `None` for the
    /// status if the stream was reset or the connection closed.
    pub(crate) async fn response(&mut self, stream: u32) -> (Option<u16>, Vec<u8>) {
        let mut status = None;
        let mut body = Vec::new();
        while let Some(frame) = self.frame().await {
            if frame.stream != stream {
                continue;
            }
            match frame.kind {
                HEADERS if status.is_none() => {
                    status = Some(status_of(&frame.payload));
                    if frame.flags & END_STREAM != 0 {
                        break;
                    }
                }
                DATA => {
                    body.extend_from_slice(&frame.payload);
                    if frame.flags & END_STREAM != 0 {
                        break;
                    }
                }
                RST_STREAM => return (None, body),
                _ => {}
            }
        }
        (status, body)
    }
}

/// The `:status` of a header block h2 encoded: 200, 204, 206, 304, 400, 404 and 500 are
/// static-table entries 8 to 14; the others the tests meet are a literal value,
/// Huffman-coded or not.
fn status_of(block: &[u8]) -> u16 {
    const STATIC: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];
    if let Some(&first) = block.first()
        && (0x88..=0x8e).contains(&first)
    {
        return STATIC[usize::from(first - 0x88)];
    }
    for status in [400u16, 408, 413, 431] {
        let digits = status.to_string();
        let huffman = [&[0x83][..], &huffman_digits(&digits)].concat();
        let plain = [&[0x03][..], digits.as_bytes()].concat();
        if block.windows(4).any(|w| w == huffman || w == plain) {
            return status;
        }
    }
    0
}

/// Three digits in HPACK's Huffman code (RFC 7541, appendix B: '0'-'2' are 5 bits,
/// `00000` up; '3'-'9' are 6 bits, `011001` up), padded with ones.
fn huffman_digits(digits: &str) -> Vec<u8> {
    let (mut bits, mut len) = (0u64, 0u32);
    for d in digits.bytes() {
        let (code, n) =
            if d <= b'2' { (u64::from(d - b'0'), 5) } else { (0b01_1001 + u64::from(d - b'3'), 6) };
        bits = (bits << n) | code;
        len += n;
    }
    let padded = len.div_ceil(8) * 8;
    bits = (bits << (padded - len)) | ((1 << (padded - len)) - 1);
    (0..padded / 8).rev().map(|i| u8::try_from((bits >> (i * 8)) & 0xff).unwrap()).collect()
}

/// Waits, bounded, until every `/park` handler has been dropped.
async fn all_cancelled(gauge: &Gauge) {
    within(async {
        while gauge.live.load(Ordering::SeqCst) != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// A new connection is served while (or after) another is attacked.
async fn still_serving(server: &Server) {
    let mut conn = Raw::open(server.addr, &[]).await;
    conn.get(1, "/hello").await;
    assert_eq!(conn.response(1).await.0, Some(200));
    assert_eq!(server.get("/hello").await.status, 200);
}

#[tokio::test]
async fn raw_frames_get_a_response_and_split_cookies_are_joined() {
    let (server, _) = start(ServerConfig::default()).await;
    let mut conn = Raw::connect(server.addr).await;
    // The preface in two writes: detection waits for all 24 bytes.
    conn.send(&PREFACE[..7]).await;
    conn.send(&[&PREFACE[7..], &frame(SETTINGS, 0, 0, &[])[..]].concat()).await;
    let mut block = get_block("/cookies");
    field(&mut block, b"cookie", b"a=1");
    field(&mut block, b"cookie", b"b=2");
    conn.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block)).await;
    let (status, body) = conn.response(1).await;
    assert_eq!((status, &body[..]), (Some(200), &b"a=1 b=2"[..]));
    assert!(server.stop().await);
}

#[tokio::test]
async fn the_preface_after_a_request_is_not_http2() {
    let (server, gauge) = start(ServerConfig::default()).await;
    let mut client = server.connect().await;
    client.send(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(client.response().await.status, 200);
    client.send(PREFACE).await;
    assert_eq!(client.response().await.status, 400);
    assert_eq!(gauge.hello.load(Ordering::SeqCst), 1);
    assert!(server.stop().await);
}

/// CVE-2023-44487: streams opened and reset at once, a thousand times. The connection ends
/// (h2 sends `ENHANCE_YOUR_CALM` once too many resets wait to be accepted), at most a
/// bounded number of handlers ever started, and each was cancelled.
#[tokio::test]
async fn rapid_reset_ends_the_connection_and_cancels_the_handlers() {
    let (server, gauge) = start(ServerConfig::default()).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    let mut attack = Vec::new();
    for n in 0..1000u32 {
        let id = 2 * n + 1;
        attack.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &get_block("/park")));
        attack.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let writer = conn.flood(attack);
    let goaway = conn.until(|f| f.kind == GOAWAY).await;
    if let Some(goaway) = &goaway {
        assert_eq!(goaway.goaway_parts().1, 0xb, "ENHANCE_YOUR_CALM");
    }
    assert!(conn.until(|_| false).await.is_none(), "closed");
    within(writer).await.unwrap();
    all_cancelled(&gauge).await;
    let started = gauge.started.load(Ordering::SeqCst);
    assert!(started <= 2 * 100 + 20, "{started} handlers started");
    still_serving(&server).await;
    assert!(server.stop().await);
}

/// CVE-2024-27316 class: a header block that never ends, in ever more CONTINUATION frames.
/// h2 bounds the frames of one block by the header list limit and ends the connection.
#[tokio::test]
async fn a_continuation_flood_ends_the_connection() {
    let (server, gauge) = start(ServerConfig::default()).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    let mut attack = frame(HEADERS, 0, 1, &get_block("/hello"));
    let mut piece = Vec::new();
    field(&mut piece, b"x-flood", b"0123456789abcdef");
    for _ in 0..200_000 {
        attack.extend(frame(CONTINUATION, 0, 1, &piece));
    }
    let writer = conn.flood(attack);
    let goaway = conn.until(|f| f.kind == GOAWAY).await;
    assert!(goaway.is_none() || goaway.unwrap().goaway_parts().1 != 0, "an error code");
    assert!(conn.until(|_| false).await.is_none(), "closed");
    within(writer).await.unwrap();
    assert_eq!(gauge.hello.load(Ordering::SeqCst), 0);
    still_serving(&server).await;
    assert!(server.stop().await);
}

/// A header block larger than the header list limit (64 KiB, the HTTP/1.1 head limit) is
/// refused on its stream; the connection serves on. A field within h2's limit but over
/// the HTTP/1.1 field limit (8190 bytes) is a 431, as on HTTP/1.1.
#[tokio::test]
async fn an_oversized_header_block_is_refused() {
    let (server, gauge) = start(ServerConfig::default()).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    let mut block = get_block("/hello");
    field(&mut block, b"x-big", &vec![b'b'; 100 * 1024]);
    let mut chunks = block.chunks(16 * 1024).peekable();
    let mut attack = frame(HEADERS, END_STREAM, 1, chunks.next().unwrap());
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() { END_HEADERS } else { 0 };
        attack.extend(frame(CONTINUATION, flags, 1, chunk));
    }
    conn.send(&attack).await;
    // h2 answers 431 itself and resets the stream.
    let (status, _) = conn.response(1).await;
    assert!(matches!(status, None | Some(431)), "{status:?}");
    conn.get(3, "/hello").await;
    assert_eq!(conn.response(3).await.0, Some(200));
    // On a connection of its own, as the first 431 above went into HPACK's dynamic table.
    let mut conn = Raw::open(server.addr, &[]).await;
    let mut block = get_block("/hello");
    field(&mut block, b"x-long", &vec![b'l'; 10 * 1024]);
    conn.send(&frame(HEADERS, END_STREAM | END_HEADERS, 1, &block)).await;
    assert_eq!(conn.response(1).await.0, Some(431));
    assert_eq!(gauge.hello.load(Ordering::SeqCst), 1);
    assert!(server.stop().await);
}

fn short_send_timeout() -> ServerConfig {
    ServerConfig::default().with_send_timeout(Duration::from_millis(300))
}

/// Floods of frames the server must answer (SETTINGS, PING) from a peer that never reads:
/// h2 answers one at a time, so its output waits on the socket and reading stops; the send
/// timeout then closes the connection. Nothing grows meanwhile, and others are served.
async fn flood_from_a_peer_that_never_reads(one: Vec<u8>) {
    let (server, _) = start(short_send_timeout()).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    let attack: Vec<u8> = one.iter().copied().cycle().take(one.len() * 2_000_000).collect();
    let writer = conn.flood(attack);
    still_serving(&server).await;
    // The writer ends when the server closes (its writes then fail), not by finishing.
    within(writer).await.unwrap();
    still_serving(&server).await;
    assert!(server.stop().await);
}

#[tokio::test]
async fn a_settings_flood_ends_with_the_send_timeout() {
    let settings = frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
    flood_from_a_peer_that_never_reads(settings).await;
}

#[tokio::test]
async fn a_ping_flood_ends_with_the_send_timeout() {
    flood_from_a_peer_that_never_reads(frame(PING, 0, 0, b"12345678")).await;
}

/// A peer whose window stays shut never gets the body, and the stream is reset once the
/// send timeout has passed, rather than held forever.
#[tokio::test]
async fn a_window_that_never_opens_hits_the_send_timeout() {
    let (server, _) = start(short_send_timeout()).await;
    let mut conn = Raw::open(server.addr, &[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]).await;
    conn.get(1, "/big").await;
    let reset = conn.until(|f| f.kind == RST_STREAM && f.stream == 1).await.expect("a reset");
    assert_eq!(reset.payload, 8u32.to_be_bytes(), "CANCEL");
    // The connection itself serves on, to a stream whose window is opened.
    conn.get(3, "/hello").await;
    conn.send(&frame(WINDOW_UPDATE, 0, 3, &65_535u32.to_be_bytes())).await;
    assert_eq!(conn.response(3).await.0, Some(200));
    assert!(server.stop().await);
}

/// A stream whose body stops coming holds its handler no longer than the body timeout: a
/// `read` waiting for a body that was announced and never sent, or that stopped partway,
/// fails with a 408, as on HTTP/1.1; the connection serves on.
#[tokio::test]
async fn a_body_that_never_comes_meets_the_body_timeout() {
    const BODY_TIMEOUT: Duration = Duration::from_millis(300);
    let (server, _) = start(ServerConfig::default().with_body_timeout(BODY_TIMEOUT)).await;
    let mut block = vec![0x83, 0x86];
    field_indexed_name(&mut block, 4, b"/echo");
    field_indexed_name(&mut block, 1, b"t");
    field(&mut block, b"content-length", b"10");
    for sent in [&b""[..], b"part"] {
        // A connection each: a second 408 would be HPACK-indexed, which `status_of` cannot read.
        let mut conn = Raw::open(server.addr, &[]).await;
        let started = tokio::time::Instant::now();
        conn.send(&frame(HEADERS, END_HEADERS, 1, &block)).await;
        if !sent.is_empty() {
            conn.send(&frame(DATA, 0, 1, sent)).await;
        }
        assert_eq!(conn.response(1).await.0, Some(408), "{} bytes sent", sent.len());
        assert!(started.elapsed() >= BODY_TIMEOUT, "{:?}", started.elapsed());
        conn.get(3, "/hello").await;
        assert_eq!(conn.response(3).await.0, Some(200));
    }
    assert!(server.stop().await);
}

/// Graceful shutdown: GOAWAY, a stream opened after it is never answered, and the stream
/// open before it finishes.
#[tokio::test]
async fn shutdown_sends_goaway_refuses_new_streams_and_finishes_open_ones() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let gauge = Arc::new(Gauge::default());
    let mut app = app(&gauge);
    let go = Arc::clone(&release);
    app.add_get("/wait", move |_req: Request| {
        let (started_tx, go) = (started_tx.clone(), Arc::clone(&go));
        async move {
            let _ = started_tx.send(());
            go.notified().await;
            "finished"
        }
    });
    let server = Server::start_with(app, ServerConfig::default()).await;
    let addr = server.addr;
    let mut conn = Raw::open(addr, &[]).await;
    conn.get(1, "/wait").await;
    within(started.recv()).await.unwrap();
    let stopping = tokio::spawn(server.stop());
    // The last GOAWAY names stream 1 as the last the server will answer.
    let goaway = conn.until(|f| f.kind == GOAWAY && f.goaway_parts().0 == 1).await;
    assert_eq!(goaway.expect("a GOAWAY").goaway_parts().1, 0, "NO_ERROR");
    conn.get(3, "/hello").await;
    release.notify_one();
    let (status, body) = conn.response(1).await;
    assert_eq!((status, &body[..]), (Some(200), &b"finished"[..]));
    let mut answered_3 = false;
    while let Some(frame) = conn.frame().await {
        answered_3 |= frame.stream == 3 && frame.kind == HEADERS;
    }
    assert!(!answered_3);
    assert_eq!(gauge.hello.load(Ordering::SeqCst), 0);
    assert!(within(stopping).await.unwrap(), "the open stream finished in time");
}

/// Configured limits reach the peer in the server's SETTINGS.
#[tokio::test]
async fn settings_carry_the_configured_limits() {
    let http2 =
        Http2Config::default().with_max_concurrent_streams(7).with_windows(100_000, 200_000);
    let (server, _) = start(ServerConfig::default().with_http2(http2)).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    let settings = conn.until(|f| f.kind == SETTINGS && f.flags & ACK == 0).await.unwrap();
    let pairs: Vec<(u16, u32)> = settings
        .payload
        .chunks(6)
        .map(|c| (u16::from_be_bytes([c[0], c[1]]), u32::from_be_bytes([c[2], c[3], c[4], c[5]])))
        .collect();
    assert!(pairs.contains(&(3, 7)), "{pairs:?}");
    assert!(pairs.contains(&(4, 100_000)), "{pairs:?}");
    assert!(pairs.contains(&(6, 64 * 1024)), "{pairs:?}");
    assert!(server.stop().await);
}

/// The server's head limits apply to HTTP/2 requests as to HTTP/1.1 ones: here a field
/// count of 6, which `:authority` (as `Host`) and four fields exceed.
#[tokio::test]
async fn configured_head_limits_apply_to_http2() {
    let limits = tandem_proto::Limits::default().max_headers(4);
    let (server, gauge) = start(ServerConfig::default().with_limits(limits)).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    let mut block = get_block("/hello");
    for name in [&b"x-a"[..], b"x-b", b"x-c", b"x-d"] {
        field(&mut block, name, b"1");
    }
    conn.send(&frame(HEADERS, END_STREAM | END_HEADERS, 1, &block)).await;
    assert_eq!(conn.response(1).await.0, Some(431));
    assert_eq!(gauge.hello.load(Ordering::SeqCst), 0);
    assert!(server.stop().await);
}

/// Through tower layers, an HTTP/2 request still reaches the app with its connection's
/// remote address and its server's head limits.
#[tokio::test]
async fn a_layered_app_over_http2_keeps_the_connections_facts() {
    let mut app = Application::new();
    app.add_get("/where", |req: Request| async move {
        req.remote().map(|addr| addr.ip().to_string()).unwrap_or_default()
    });
    app.layer(tower_http::cors::CorsLayer::permissive());
    let limits = tandem_proto::Limits::default().max_headers(4);
    let server = Server::start_with(app, ServerConfig::default().with_limits(limits)).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    conn.get(1, "/where").await;
    assert_eq!(conn.response(1).await, (Some(200), b"127.0.0.1".to_vec()));
    let mut block = get_block("/where");
    for name in [&b"x-a"[..], b"x-b", b"x-c", b"x-d"] {
        field(&mut block, name, b"1");
    }
    conn.send(&frame(HEADERS, END_STREAM | END_HEADERS, 3, &block)).await;
    assert_eq!(conn.response(3).await.0, Some(431));
    assert!(server.stop().await);
}

/// A connection with no stream open is closed after the keep-alive timeout, with GOAWAY.
#[tokio::test]
async fn an_idle_connection_is_closed_after_the_keep_alive_timeout() {
    let config = ServerConfig::default().with_keepalive_timeout(Duration::from_millis(200));
    let (server, _) = start(config).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    conn.get(1, "/hello").await;
    assert_eq!(conn.response(1).await.0, Some(200));
    // The graceful GOAWAY first, then the final one: stream 1 was the last, NO_ERROR.
    let last = |f: &Frame| f.kind == GOAWAY && f.goaway_parts() == (1, 0);
    assert!(conn.until(last).await.is_some(), "a final GOAWAY");
    assert!(conn.until(|_| false).await.is_none(), "closed");
    assert!(server.stop().await);
}

/// A peer that stops inside the preface is cut off at the head timeout, as a head that stops
/// partway; one that sends the preface and then nothing (not even its SETTINGS) is an idle
/// connection, closed at the keep-alive timeout. Neither is held longer.
#[tokio::test]
async fn a_peer_silent_in_or_after_the_preface_is_closed() {
    const HEAD: Duration = Duration::from_millis(200);
    const KEEPALIVE: Duration = Duration::from_millis(1500);
    let config = ServerConfig::default().with_head_timeout(HEAD).with_keepalive_timeout(KEEPALIVE);
    let (server, _) = start(config).await;
    // Closed after the timer meant, and well before the next: the keep-alive timeout for a
    // partial preface; for a silent HTTP/2 connection, the shutdown timeout (60 s) that a
    // graceful close may give open streams.
    let cases = [(&PREFACE[..10], HEAD, KEEPALIVE), (PREFACE, KEEPALIVE, KEEPALIVE * 3)];
    for (sent, least, most) in cases {
        let mut conn = Raw::connect(server.addr).await;
        let started = tokio::time::Instant::now();
        conn.send(sent).await;
        // Whatever the server says first (its SETTINGS, a GOAWAY, a 408), then the close.
        while within(conn.read.read_buf(&mut conn.buf)).await.is_ok_and(|n| n > 0) {}
        let took = started.elapsed();
        assert!(took >= least && took < most, "{} bytes: closed after {took:?}", sent.len());
    }
    assert!(server.stop().await);
}

/// Streams answered one after another keep a connection open past the keep-alive timeout:
/// it counts from the last of them, however they were answered.
#[tokio::test]
async fn a_busy_connection_outlives_the_keep_alive_timeout() {
    const KEEPALIVE: Duration = Duration::from_millis(300);
    let config = ServerConfig::default().with_keepalive_timeout(KEEPALIVE);
    let (server, _) = start(config).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    // Eight requests a third of the timeout apart span well past it.
    for id in (1..=15).step_by(2) {
        conn.get(id, "/hello").await;
        assert_eq!(conn.response(id).await.0, Some(200), "stream {id}");
        tokio::time::sleep(KEEPALIVE / 3).await;
    }
    let last = |f: &Frame| f.kind == GOAWAY && f.goaway_parts() == (15, 0);
    assert!(conn.until(last).await.is_some(), "a final GOAWAY after the last stream");
    assert!(server.stop().await);
}

/// Handlers work unchanged over HTTP/2: a file with a range (206), a compressed response,
/// and request trailers (sent as raw frames) read through the payload.
#[tokio::test]
async fn files_ranges_compression_and_request_trailers_work_over_http2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("digits.txt");
    std::fs::write(&file, "0123456789".repeat(100)).unwrap();
    let mut app = Application::new();
    app.add_get("/file", move |req: Request| {
        let file = file.clone();
        async move { tandem_web::file_response(&req, &file).await }
    });
    app.add_get("/compressed", |_req: Request| async {
        let mut response = Response::text("squeeze me ".repeat(200));
        response.enable_compression();
        response
    });
    app.add_post("/trailers", |mut req: Request| async move {
        let body = req.read().await.unwrap_or_default();
        let trailer = req
            .content()
            .trailers()
            .and_then(|t| t.get("x-checksum"))
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        format!("{} bytes, checksum {}", body.len(), trailer.unwrap_or_default())
    });
    let server = Server::start(app).await;
    let h2c = "--http2-prior-knowledge";
    let out = curl(&[h2c, "-r", "10-19", "-w", " %{http_code}", &server.url("/file")]).await;
    assert_eq!(out, "0123456789 206");
    let out = curl(&[h2c, "--compressed", "-D", "-", &server.url("/compressed")]).await;
    let lower = out.to_ascii_lowercase();
    assert!(
        lower.contains("content-encoding: br") || lower.contains("content-encoding: gzip"),
        "{out}"
    );
    assert!(out.ends_with(&"squeeze me ".repeat(200)), "{out}");

    let mut conn = Raw::open(server.addr, &[]).await;
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    field_indexed_name(&mut block, 4, b"/trailers");
    field_indexed_name(&mut block, 1, b"t");
    conn.send(&frame(HEADERS, END_HEADERS, 1, &block)).await;
    conn.send(&frame(DATA, 0, 1, b"hello")).await;
    let mut trailers = Vec::new();
    field(&mut trailers, b"x-checksum", b"abc");
    conn.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &trailers)).await;
    let (status, body) = conn.response(1).await;
    assert_eq!((status, &body[..]), (Some(200), &b"5 bytes, checksum abc"[..]));
    assert!(server.stop().await);
}

/// A body that ends short of the `Content-Length` its response declared (a file that shrank
/// as it was read, a stream that stopped early) ends its stream with `RST_STREAM`, as
/// HTTP/1.1 closes the connection: `END_STREAM` would hand a client that does not count
/// the short body as the whole response (RFC 9113 8.1.1 calls it malformed). One that runs
/// past its length is cut off the same way.
#[tokio::test]
async fn a_body_that_breaks_its_declared_length_is_reset() {
    let mut app = Application::new();
    for (path, declared) in [("/short", "100"), ("/exact", "10"), ("/long", "4")] {
        app.add_get(path, move |_req: Request| async move {
            let chunks = [Ok(Bytes::from_static(b"01234")), Ok(Bytes::from_static(b"56789"))];
            Response::stream(futures_util::stream::iter(chunks))
                .with_header("content-length", declared)
        });
    }
    let server = Server::start(app).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    conn.get(1, "/short").await;
    // Reset: `h2` drops what it still held of the stream's data, so at most the ten bytes.
    let (status, body) = conn.response(1).await;
    assert!(status.is_none() && body.len() <= 10, "{status:?} {body:?}");
    conn.get(3, "/exact").await;
    assert_eq!(conn.response(3).await, (Some(200), b"0123456789".to_vec()));
    conn.get(5, "/long").await;
    let (status, body) = conn.response(5).await;
    assert!(status.is_none() && body.len() <= 4, "{status:?} {body:?}");
    // Only those streams: the connection serves on.
    conn.get(7, "/exact").await;
    assert_eq!(conn.response(7).await, (Some(200), b"0123456789".to_vec()));
    assert!(server.stop().await);
}

/// A response body whose stream panics, at its first poll or a later one, resets its own
/// stream: the panic unwound the connection's task where the answer's first poll runs, and
/// every other stream of the connection went with it. A handler's panic is its stream's 500.
#[tokio::test]
async fn a_body_that_panics_resets_its_stream_alone() {
    let mut app = Application::new();
    for (path, good) in [("/panics-first", 0), ("/panics-later", 1)] {
        app.add_get(path, move |_req: Request| async move {
            let chunks = futures_util::StreamExt::map(futures_util::stream::iter(0..2), move |n| {
                assert!(n < good, "a bug in the body's stream");
                Ok::<_, tandem_web::Error>(Bytes::from_static(b"01234"))
            });
            Response::stream(chunks)
        });
    }
    app.add_get("/exact", |_req: Request| async { Response::text("0123456789") });
    app.add_get("/handler-panics", |_req: Request| async {
        assert!(std::hint::black_box(false), "a bug in the handler");
        Response::text("never")
    });
    let server = Server::start(app).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    // A handler's panic is a 500 for its stream alone, as for its request on HTTP/1.1.
    conn.get(1, "/handler-panics").await;
    assert_eq!(conn.response(1).await.0, Some(500));
    for (id, path) in [(3, "/panics-first"), (7, "/panics-later")] {
        conn.get(id, path).await;
        let (status, body) = conn.response(id).await;
        assert!(status.is_none() && body.len() <= 5, "{path}: {status:?} {body:?}");
        conn.get(id + 2, "/exact").await;
        assert_eq!(conn.response(id + 2).await, (Some(200), b"0123456789".to_vec()), "{path}");
    }
    assert!(server.stop().await);
}
