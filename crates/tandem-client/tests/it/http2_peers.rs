//! HTTP/2 against servers we did not write: `nghttpd` (Debian's nghttp2-server) over TLS
//! by ALPN and h2c, hyper's h2c server (`benches/peers`' `hyper_h2_server`), and the `h2`
//! crate's own server driven frame by frame for GOAWAY and broken responses.

use std::{
    net::{SocketAddr, TcpListener as StdListener},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{StatusCode, Version};
use tandem_client::{ClientSession, Http2, Origin, Scheme};
#[cfg(feature = "tls")]
use tandem_client::{Connector, TlsConfig};
use tandem_connect::h2;
use tokio::{
    net::{TcpListener, TcpStream},
    process::{Child, Command},
    sync::watch,
};

use crate::support::within;

/// How long a peer may take to listen.
const STARTUP: Duration = Duration::from_secs(30);

/// A server process on `port`, killed when dropped.
struct Peer {
    child: Child,
    port: u16,
}

impl Peer {
    /// Runs `program args...` (with `{port}` in `args` replaced by a free port) and waits
    /// until it accepts connections.
    async fn start(program: &Path, args: &[&str], install: &str) -> Peer {
        let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let args: Vec<String> =
            args.iter().map(|a| a.replace("{port}", &port.to_string())).collect();
        let child = Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start ({e}): {install}", program.display()));
        let mut peer = Peer { child, port };
        let deadline = Instant::now() + STARTUP;
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Some(status) = peer.child.try_wait().unwrap() {
                panic!("{} exited ({status}): {install}", program.display());
            }
            assert!(Instant::now() < deadline, "{} did not listen in time", program.display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peer
    }
}

/// `nghttpd`: on PATH, else where Debian puts it.
fn nghttpd() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nghttpd"))
        .find(|p| p.exists());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nghttpd"))
}

const NGHTTPD: &str = "run `cargo xtask peers` (Debian's nghttp2-server)";

/// A document root with a small file and a 1 MiB one.
fn docroot() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello from nghttpd\n").unwrap();
    let big: Vec<u8> = (0..1024 * 1024_usize).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    (dir, big)
}

/// GETs both files and streams an upload through `--echo-upload`, all over HTTP/2.
async fn exercise(s: &ClientSession, base: &str, big: &[u8]) {
    let mut resp = within(s.get(&format!("{base}/hello.txt")).send()).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(within(resp.text()).await.unwrap(), "hello from nghttpd\n");
    let mut resp = within(s.get(&format!("{base}/big.bin")).send()).await.unwrap();
    assert!(within(resp.read()).await.unwrap() == big, "big.bin differs");
    let pieces: Vec<Result<Bytes, std::io::Error>> =
        big.chunks(50_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let upload = s.post(&format!("{base}/upload")).body_stream(futures_util::stream::iter(pieces));
    let mut resp = within(upload.send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(within(resp.read()).await.unwrap() == big, "the echoed upload differs");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn nghttpd_over_tls_by_alpn() {
    let (dir, big) = docroot();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (key_path, cert_path) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    let docs = dir.path().to_str().unwrap();
    let (key_file, cert_file) = (key_path.to_str().unwrap(), cert_path.to_str().unwrap());
    let args = ["-a", "127.0.0.1", "-d", docs, "--echo-upload", "{port}", key_file, cert_file];
    let peer = Peer::start(&nghttpd(), &args, NGHTTPD).await;
    let trust = TlsConfig::builder().add_root_certificates_pem(cert.cert.pem().as_bytes()).unwrap();
    let connector = Connector::builder()
        .tls(trust.build().unwrap())
        .resolve("localhost", [SocketAddr::from(([127, 0, 0, 1], 0))])
        .build();
    // The default: HTTP/2 because nghttpd chooses it by ALPN.
    let s = ClientSession::builder().connector(connector).build();
    exercise(&s, &format!("https://localhost:{}", peer.port), &big).await;
    let stats = s.connector().stats_for(&Origin::new(Scheme::Https, "localhost", peer.port));
    assert_eq!((stats.idle, stats.active), (1, 0), "one connection for everything");
}

#[tokio::test]
async fn nghttpd_h2c_by_prior_knowledge() {
    let (dir, big) = docroot();
    let docs = dir.path().to_str().unwrap();
    let args = ["--no-tls", "-a", "127.0.0.1", "-d", docs, "--echo-upload", "{port}"];
    let peer = Peer::start(&nghttpd(), &args, NGHTTPD).await;
    let s = ClientSession::builder().http2(Http2::PriorKnowledge).build();
    exercise(&s, &format!("http://127.0.0.1:{}", peer.port), &big).await;
}

/// `benches/peers`' hyper h2c server, built (in its own workspace, as hyper never enters
/// this one's) when it is not there yet.
fn hyper_h2_server() -> PathBuf {
    let peers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches/peers");
    let built = ["release", "debug"].map(|p| peers.join("target").join(p).join("hyper_h2_server"));
    if let Some(found) = built.iter().find(|p| p.exists()) {
        return found.clone();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--bin", "hyper_h2_server", "--manifest-path"])
        .arg(peers.join("Cargo.toml"))
        // Its own target directory, never this workspace's.
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building benches/peers' hyper_h2_server failed");
    built[1].clone()
}

#[tokio::test]
async fn hyper_h2c_server() {
    let peer = Peer::start(&hyper_h2_server(), &["--port", "{port}"], "see benches/peers").await;
    let s = ClientSession::builder().http2(Http2::PriorKnowledge).build();
    let url = format!("http://127.0.0.1:{}/plaintext", peer.port);
    let requests = (0..50).map(|_| {
        let (s, url) = (s.clone(), url.clone());
        async move {
            let mut resp = s.get(&url).send().await?;
            assert_eq!(resp.version(), Version::HTTP_2);
            resp.text().await
        }
    });
    for text in within(futures_util::future::join_all(requests)).await {
        assert_eq!(text.unwrap(), "Hello, World!");
    }
    let mut resp =
        within(s.get(&format!("http://127.0.0.1:{}/json", peer.port)).send()).await.unwrap();
    let json: serde_json::Value = within(resp.json()).await.unwrap();
    assert_eq!(json["message"], "Hello, World!");
    let stats = s.connector().stats_for(&Origin::new(Scheme::Http, "127.0.0.1", peer.port));
    assert_eq!((stats.idle, stats.active), (1, 0), "fifty requests, one connection");
}

/// What the raw server does with each request.
type Script = fn(usize, h2::server::SendResponse<Bytes>) -> Option<h2::server::SendResponse<Bytes>>;

/// An h2c server of the `h2` crate: each request is answered by `script(index, respond)`,
/// whose return value (if any) is kept open until the connection ends. After `goaway_after`
/// requests on a connection it says GOAWAY and closes it. Counts connections.
async fn raw_server(script: Script, goaway_after: usize) -> (SocketAddr, watch::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (count, accepted) = watch::channel(0);
    let index = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.send_modify(|n| *n += 1);
            let index = index.clone();
            tokio::spawn(async move {
                let mut conn = h2::server::handshake(tcp).await.unwrap();
                let mut kept = Vec::new();
                let mut served = 0;
                while let Some(Ok((_, respond))) = conn.accept().await {
                    kept.extend(script(index.fetch_add(1, Ordering::SeqCst), respond));
                    served += 1;
                    if served == goaway_after {
                        conn.graceful_shutdown();
                    }
                }
            });
        }
    });
    (addr, accepted)
}

fn ok(
    _: usize,
    mut respond: h2::server::SendResponse<Bytes>,
) -> Option<h2::server::SendResponse<Bytes>> {
    let mut send = respond.send_response(http::Response::new(()), false).unwrap();
    send.send_data(Bytes::from_static(b"ok"), true).unwrap();
    None
}

/// After GOAWAY the next requests go on a new connection, a POST too: a request the server
/// never processed is sent again whatever its method.
#[tokio::test]
async fn after_goaway_requests_go_on_a_new_connection() {
    let (addr, mut accepted) = raw_server(ok, 1).await;
    let s = ClientSession::builder().http2(Http2::PriorKnowledge).build();
    let url = format!("http://{addr}/");
    assert_eq!(within(within(s.get(&url).send()).await.unwrap().text()).await.unwrap(), "ok");
    let mut resp = within(s.post(&url).body("again").send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "ok");
    assert_eq!(*within(accepted.wait_for(|n| *n >= 2)).await.unwrap(), 2);
}

/// Broken responses (a body longer or shorter than its Content-Length, one cut by a reset, a
/// stream reset before its head) fail their own request, with the body's error kind, and
/// leave the connection to the others.
#[tokio::test]
async fn broken_responses_fail_their_request_only() {
    fn broken(
        index: usize,
        mut respond: h2::server::SendResponse<Bytes>,
    ) -> Option<h2::server::SendResponse<Bytes>> {
        match index {
            // A body longer than its Content-Length.
            0 => {
                let head =
                    http::Response::builder().header("content-length", "2").body(()).unwrap();
                let mut send = respond.send_response(head, false).unwrap();
                let _ = send.send_data(Bytes::from_static(b"too long"), true);
                None
            }
            // A body cut by a reset.
            1 => {
                let mut send = respond.send_response(http::Response::new(()), false).unwrap();
                send.send_data(Bytes::from_static(b"part"), false).unwrap();
                send.send_reset(h2::Reason::INTERNAL_ERROR);
                None
            }
            // A stream reset before any head.
            2 => {
                respond.send_reset(h2::Reason::INTERNAL_ERROR);
                None
            }
            // A body shorter than its Content-Length, ended cleanly.
            3 => {
                let head =
                    http::Response::builder().header("content-length", "10").body(()).unwrap();
                let mut send = respond.send_response(head, false).unwrap();
                let _ = send.send_data(Bytes::from_static(b"short"), true);
                None
            }
            _ => ok(index, respond),
        }
    }
    let (addr, mut accepted) = raw_server(broken, usize::MAX).await;
    let s = ClientSession::builder().http2(Http2::PriorKnowledge).build();
    let url = format!("http://{addr}/");
    for case in 0..4 {
        // `h2` may see the stream's error before handing out the head it came after.
        match within(s.get(&url).send()).await {
            Ok(mut resp) => {
                let e = within(resp.read()).await.unwrap_err();
                assert!(e.is_payload(), "case {case}: {e:?}");
                // Once failed, the body stays failed.
                assert!(within(resp.read()).await.unwrap_err().is_payload(), "case {case}");
            }
            Err(e) => assert!(e.is_disconnected() || e.is_response(), "case {case}: {e:?}"),
        }
    }
    let mut resp = within(s.get(&url).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "ok");
    assert_eq!(*accepted.borrow_and_update(), 1, "every request on the one connection");
}

/// A server that opens a window of 1 KiB and never reads: a streamed body waits for room
/// and the request's deadline ends the wait, as it ends a write to a socket that does not
/// drain.
#[tokio::test]
async fn a_server_that_never_opens_its_window_meets_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut conn = h2::server::Builder::new()
                    .initial_window_size(1024)
                    .handshake::<_, Bytes>(tcp)
                    .await
                    .unwrap();
                // Requests are taken and held, their bodies never read.
                let mut held = Vec::new();
                while let Some(Ok(request)) = conn.accept().await {
                    held.push(request);
                }
            });
        }
    });
    let s = ClientSession::builder().http2(Http2::PriorKnowledge).build();
    let url = format!("http://{addr}/upload");
    let timeout = tandem_client::ClientTimeout::NONE.with_total(Duration::from_millis(200));
    let pieces = (0..64).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024])));
    let upload = s.post(&url).timeout(timeout).body_stream(futures_util::stream::iter(pieces));
    let e = within(upload.send()).await.unwrap_err();
    assert_eq!(e.timeout_phase(), Some(tandem_client::Phase::Total), "{e}");
    // A whole body is queued for `h2` to send as the window opens; the answer never comes.
    let e =
        within(s.post(&url).timeout(timeout).body(vec![b'y'; 64 * 1024]).send()).await.unwrap_err();
    assert_eq!(e.timeout_phase(), Some(tandem_client::Phase::Total), "{e}");
}

/// Interim (1xx) responses are bounded in number over HTTP/2 as over HTTP/1.1
/// (`DEFAULT_MAX_INTERIM_RESPONSES`): `h2` queues each on the stream until it is taken, so
/// a server sending them without end would hold the request, and, while a body was being
/// sent, grow the queue. Up to the limit they are skipped; past it, a response error, while
/// the response is awaited or while a streamed body still goes out.
#[tokio::test]
async fn interim_responses_are_bounded_over_http2_too() {
    fn interim(
        index: usize,
        mut respond: h2::server::SendResponse<Bytes>,
    ) -> Option<h2::server::SendResponse<Bytes>> {
        let max = tandem_client::DEFAULT_MAX_INTERIM_RESPONSES;
        let count = [max, max + 1, 10_000, 10_000][index.min(3)];
        for _ in 0..count {
            let early = http::Response::builder().status(103).header("link", "</a>");
            if respond.send_informational(early.body(()).unwrap()).is_err() {
                return None;
            }
        }
        if index == 3 {
            // The streamed upload's server: its body is never read, its answer never sent.
            return Some(respond);
        }
        ok(index, respond)
    }
    let (addr, _) = raw_server(interim, usize::MAX).await;
    let s = ClientSession::builder().http2(Http2::PriorKnowledge).build();
    let url = format!("http://{addr}/");
    assert_eq!(within(within(s.get(&url).send()).await.unwrap().text()).await.unwrap(), "ok");
    for _ in 0..2 {
        let e = within(s.get(&url).send()).await.unwrap_err();
        assert!(e.is_response(), "{e:?}");
    }
    let pieces = futures_util::stream::iter(
        (0..64).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024]))),
    );
    let e = within(s.post(&url).body_stream(pieces).send()).await.unwrap_err();
    assert!(e.is_response(), "{e:?}");
}

/// A frame: its type, flags, stream and payload.
type RawFrame = (u8, u8, u32, Vec<u8>);

fn raw_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads the client's preface, then its frames until `pred` matches one (returned), or
/// `None` at the close.
async fn client_frame(
    tcp: &mut TcpStream,
    buf: &mut Vec<u8>,
    pred: impl Fn(&RawFrame) -> bool,
) -> Option<RawFrame> {
    use tokio::io::AsyncReadExt;
    const PREFACE: usize = 24;
    loop {
        let start = if buf.starts_with(b"PRI ") { PREFACE } else { 0 };
        if buf.len() >= start + 9 {
            let len = u32::from_be_bytes([0, buf[start], buf[start + 1], buf[start + 2]]) as usize;
            if buf.len() >= start + 9 + len {
                let head: Vec<u8> = buf.drain(..start + 9).skip(start).collect();
                let payload = buf.drain(..len).collect();
                let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                let frame = (head[3], head[4], stream, payload);
                if pred(&frame) {
                    return Some(frame);
                }
                continue;
            }
        }
        buf.reserve(16 * 1024);
        if tcp.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

/// A server written frame by frame: once the client's first request (HEADERS on stream 1)
/// has come, it sends SETTINGS (unless `settings` is false), then `reply`, and keeps the
/// connection open until the client closes it.
async fn scripted_server(settings: bool, reply: Vec<u8>) -> SocketAddr {
    use tokio::io::AsyncWriteExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                if client_frame(&mut tcp, &mut buf, |f| f.0 == 1 && f.2 == 1).await.is_none() {
                    return;
                }
                let mut out = if settings { raw_frame(4, 0, 0, &[]) } else { Vec::new() };
                out.extend_from_slice(&reply);
                if tcp.write_all(&out).await.is_ok() {
                    let _ = client_frame(&mut tcp, &mut buf, |_| false).await;
                }
            });
        }
    });
    addr
}

/// A hostile HTTP/2 server's answers fail their request, promptly: a response carrying a
/// connection-specific field (RFC 9113 8.2.2: malformed), a `PUSH_PROMISE` the client's
/// settings refused (`enable_push(false)`), and a server that never sends its `SETTINGS` nor
/// anything else, which the read timeout ends.
#[tokio::test]
async fn a_hostile_http2_servers_answers_fail_their_request() {
    const END_STREAM_HEADERS: u8 = 0x5;
    let s = ClientSession::builder().http2(Http2::PriorKnowledge).build();
    // `:status: 200` (static entry 8), then a field as a literal.
    let answer = |name: &[u8], value: &[u8]| {
        let mut block = vec![0x88, 0];
        block.push(u8::try_from(name.len()).unwrap());
        block.extend_from_slice(name);
        block.push(u8::try_from(value.len()).unwrap());
        block.extend_from_slice(value);
        raw_frame(1, END_STREAM_HEADERS, 1, &block)
    };
    // The script's own answer, with an ordinary field, is taken.
    let addr = scripted_server(true, answer(b"x-a", b"1")).await;
    let resp = within(s.get(&format!("http://{addr}/")).send()).await.unwrap();
    assert_eq!(
        (resp.status(), resp.headers().get("x-a").and_then(|v| v.to_str().ok())),
        (StatusCode::OK, Some("1"))
    );
    for (name, value) in [(&b"connection"[..], &b"close"[..]), (b"transfer-encoding", b"chunked")] {
        let addr = scripted_server(true, answer(name, value)).await;
        let e = within(s.get(&format!("http://{addr}/")).send()).await.unwrap_err();
        assert!(e.is_response(), "{}: {e:?}", String::from_utf8_lossy(name));
    }
    // PUSH_PROMISE on stream 1 promising stream 2, with a GET / header block.
    let promise = raw_frame(5, 0x4, 1, &[0, 0, 0, 2, 0x82, 0x86, 0x84, 0x41, 1, b't']);
    let addr = scripted_server(true, promise).await;
    let e = within(s.get(&format!("http://{addr}/")).send()).await.unwrap_err();
    assert!(e.is_response(), "PUSH_PROMISE: {e:?}");

    let addr = scripted_server(false, Vec::new()).await;
    let timeout = tandem_client::ClientTimeout::NONE.with_sock_read(Duration::from_millis(200));
    let e = within(s.get(&format!("http://{addr}/")).timeout(timeout).send()).await.unwrap_err();
    assert_eq!(e.timeout_phase(), Some(tandem_client::Phase::SockRead), "{e}");
}

/// A request the server took before it said GOAWAY is not sent again unless idempotent
/// (RFC 9113 §6.8: streams up to the GOAWAY's last stream may have been processed): the
/// server answers the first GET of each connection, then takes the next request, says
/// GOAWAY naming it and closes. A POST fails after reaching the server once; a GET on a
/// pooled connection goes once more, as an idempotent request does after a stale one.
#[tokio::test]
async fn a_request_taken_before_goaway_is_not_resent_unless_idempotent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (count, mut taken) = watch::channel(Vec::<http::Method>::new());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut conn = h2::server::handshake(tcp).await.unwrap();
                let mut served = 0;
                while let Some(Ok((request, mut respond))) = conn.accept().await {
                    let method = request.method().clone();
                    count.send_modify(|taken| taken.push(method.clone()));
                    if method == http::Method::GET && served == 0 {
                        // The first GET is answered, so the connection is pooled.
                        let mut send =
                            respond.send_response(http::Response::new(()), false).unwrap();
                        send.send_data(Bytes::from_static(b"ok"), true).unwrap();
                        served += 1;
                        continue;
                    }
                    // GOAWAY names every stream taken (this one too), then the close.
                    conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                    let _ = std::future::poll_fn(|cx| conn.poll_closed(cx)).await;
                    drop(respond);
                    return;
                }
            });
        }
    });
    let s = ClientSession::builder().http2(Http2::PriorKnowledge).build();
    let url = format!("http://{addr}/");
    let e = within(s.post(&url).body("once").send()).await.unwrap_err();
    assert!(!e.is_timeout(), "{e:?}");
    assert_eq!(*within(taken.wait_for(|t| !t.is_empty())).await.unwrap(), [http::Method::POST]);
    assert_eq!(within(within(s.get(&url).send()).await.unwrap().text()).await.unwrap(), "ok");
    // The pooled connection takes this GET and goes away: it is sent once more, on a new
    // connection, which answers it.
    assert_eq!(within(within(s.get(&url).send()).await.unwrap().text()).await.unwrap(), "ok");
    let methods = taken.borrow().clone();
    assert_eq!(methods.iter().filter(|m| **m == http::Method::POST).count(), 1, "{methods:?}");
    assert_eq!(methods.len(), 4, "POST, GET, GET and the GET again: {methods:?}");
}
