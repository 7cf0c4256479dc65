//! Hostile peers against the server's own TLS driver (`server/tls_stream.rs`) after the
//! handshake: silent and trickling peers, corrupt records, a bad request pipelined behind
//! good ones, bodies cut by a close with or without `close_notify`, a half-close, key
//! updates, a stalled body, handler cancellation; and the helpers the other `hostile_*`
//! files share.
use std::time::{Duration, Instant};

use tandem_web::{Application, Request, ServerConfig, TlsConfig};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
};

use super::{Ca, TlsServer, get_info, rustls_client, rustls_connect, rustls_connect_with};
use crate::support::{TIMEOUT, within};

pub(super) fn localhost_tls(ca: &Ca) -> TlsConfig {
    TlsConfig::builder(ca.server(&["localhost"]).identity()).build().unwrap()
}

/// Everything `stream` yields until it ends, and the error it ended with, if any (a close
/// without `close_notify`, an alert, a reset).
pub(super) async fn read_to_close<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> (Vec<u8>, Option<std::io::Error>) {
    let mut got = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match within(stream.read(&mut chunk)).await {
            Ok(0) => return (got, None),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(err) => return (got, Some(err)),
        }
    }
}

/// rustls's two protocol versions, each alone.
pub(super) const VERSIONS: [&rustls::SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];

/// A connection speaking only `version`.
pub(super) async fn connect_with_version(
    port: u16,
    ca: &Ca,
    version: &'static rustls::SupportedProtocolVersion,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    rustls_connect_with(port, &rustls_client(ca, &[version]), "localhost").await
}

pub(super) fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

/// A peer that completes the handshake and then says nothing is closed at the idle
/// timeout, unanswered, not held.
#[tokio::test]
async fn a_silent_peer_after_the_handshake_is_closed_at_the_idle_timeout() {
    const IDLE: Duration = Duration::from_millis(300);
    let ca = Ca::new("test CA");
    let config = ServerConfig::default().with_keepalive_timeout(IDLE).with_head_timeout(IDLE);
    let server = TlsServer::start_with(&localhost_tls(&ca), config).await;
    let started = Instant::now();
    let mut stream = rustls_connect(server.port(), &ca, "localhost").await;
    let (got, _) = read_to_close(&mut stream).await;
    let waited = started.elapsed();
    assert!(waited >= IDLE, "closed after {waited:?}");
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert_eq!(server.dispatched(), 0);
    server.stop().await;
}

/// A request sent one byte per TLS record is read whole and answered.
#[tokio::test]
async fn a_request_in_one_byte_records_is_served() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    let mut stream = rustls_connect(server.port(), &ca, "localhost").await;
    for byte in b"GET /info HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" {
        // tokio-rustls seals each write into a record of its own.
        within(stream.write_all(&[*byte])).await.unwrap();
        within(stream.flush()).await.unwrap();
    }
    let (got, end) = read_to_close(&mut stream).await;
    assert!(end.is_none(), "{end:?}");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\n\r\nhttps secure=true "), "{text}");
    assert_eq!(server.dispatched(), 1);
    server.stop().await;
}

/// A head trickled a byte per record, each well inside any idle timer, is cut at the head
/// timeout with a 408, never dispatched.
#[tokio::test]
async fn a_head_trickled_a_byte_per_record_is_cut_at_the_head_timeout() {
    const HEAD_TIMEOUT: Duration = Duration::from_millis(300);
    let ca = Ca::new("test CA");
    let config = ServerConfig::default().with_head_timeout(HEAD_TIMEOUT);
    let server = TlsServer::start_with(&localhost_tls(&ca), config).await;
    let stream = rustls_connect(server.port(), &ca, "localhost").await;
    let started = Instant::now();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let head = b"GET /info HTTP/1.1\r\nHost: localhost\r\nX-Long: ";
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut got = Vec::new();
    let mut chunk = [0; 4096];
    let mut sent = 0;
    loop {
        assert!(started.elapsed() < TIMEOUT, "still open after {:?}", started.elapsed());
        tokio::select! {
            read = reader.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            },
            _ = tick.tick() => {
                let byte = head.get(sent).copied().unwrap_or(b'a');
                sent += 1;
                if writer.write_all(&[byte]).await.is_err() {
                    let (rest, _) = read_to_close(&mut reader).await;
                    got.extend_from_slice(&rest);
                    break;
                }
            }
        }
    }
    let waited = started.elapsed();
    assert!(waited >= HEAD_TIMEOUT, "closed after {waited:?}");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert_eq!(server.dispatched(), 0);
    server.stop().await;
}

/// A corrupt record after the handshake ends the connection (an alert at most): the valid
/// request sealed after it is never dispatched.
#[tokio::test]
async fn a_corrupt_record_after_the_handshake_ends_the_connection_undispatched() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    let mut garbage_mac = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    garbage_mac.extend_from_slice(&[0x41; 0x20]);
    let cases: [(&str, Vec<u8>); 3] = [
        ("application data that fails to decrypt", garbage_mac),
        ("an unknown content type", vec![0x63, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5]),
        ("a record longer than TLS allows", vec![0x17, 0x03, 0x03, 0xff, 0xff, 0]),
    ];
    for ((case, record), version) in cases.iter().flat_map(|c| VERSIONS.map(|v| (c, v))) {
        let mut stream = connect_with_version(server.port(), &ca, version).await;
        within(stream.get_mut().0.write_all(record)).await.unwrap();
        // Sealed after the garbage: the server must not reach it. The write may already
        // fail if the server has closed.
        let request = b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let _ = within(stream.write_all(request)).await;
        let (got, end) = read_to_close(&mut stream).await;
        assert!(got.is_empty(), "{case} {version:?}: {}", String::from_utf8_lossy(&got));
        assert!(end.is_some(), "{case} {version:?}: ended with close_notify as if all were well");
    }
    assert_eq!(server.dispatched(), 0);
    server.stop().await;
}

/// Good requests and a malformed one pipelined in one TLS record: the good ones are
/// answered in order, the bad one gets a 400 and the connection closes; the request after
/// it is not dispatched.
#[tokio::test]
async fn pipelined_requests_then_a_bad_one_in_one_record() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    let good = "GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let bad = "GET /info HTTP/1.1\r\nHost: localhost\r\nNo colon here\r\n\r\n";
    let burst = format!("{}{bad}{good}", good.repeat(3));
    for version in VERSIONS {
        let mut stream = connect_with_version(server.port(), &ca, version).await;
        within(stream.write_all(burst.as_bytes())).await.unwrap();
        let (got, end) = read_to_close(&mut stream).await;
        assert!(end.is_none(), "{version:?}: closed without close_notify: {end:?}");
        let text = String::from_utf8_lossy(&got);
        let statuses: Vec<&str> =
            text.match_indices("HTTP/1.1 ").map(|(at, _)| &text[at + 9..at + 12]).collect();
        assert_eq!(statuses, ["200", "200", "200", "400"], "{version:?}: {text}");
    }
    assert_eq!(server.dispatched(), 6);
    server.stop().await;
}

/// A body cut short, by a bare TCP close or by `close_notify`, is an error to the handler
/// reading it, never a complete shorter body.
#[tokio::test]
async fn a_body_cut_by_a_close_is_an_error_to_the_handler() {
    let ca = Ca::new("test CA");
    let (told, mut outcomes) = mpsc::unbounded_channel();
    let mut app = Application::new();
    app.add_post("/body", move |mut req: Request| {
        let told = told.clone();
        async move {
            let read = req.read().await.map(|body| body.len());
            told.send(read.map_err(|err| err.to_string())).unwrap();
            "read"
        }
    });
    let mut runner = tandem_web::AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &localhost_tls(&ca)).await.unwrap();
    for (with_close_notify, version) in
        [false, true].into_iter().flat_map(|c| VERSIONS.map(|v| (c, v)))
    {
        let mut stream = connect_with_version(addr.port(), &ca, version).await;
        let head = "POST /body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n";
        within(stream.write_all(format!("{head}{}", "b".repeat(40)).as_bytes())).await.unwrap();
        within(stream.flush()).await.unwrap();
        if with_close_notify {
            within(stream.shutdown()).await.unwrap();
        } else {
            within(stream.get_mut().0.shutdown()).await.unwrap();
        }
        let outcome = within(outcomes.recv()).await.unwrap();
        assert!(outcome.is_err(), "close_notify {with_close_notify} {version:?}: {outcome:?}");
        let _ = read_to_close(&mut stream).await;
    }
    assert!(within(runner.cleanup()).await);
}

/// A client that sends its request and then `close_notify` (and its FIN) still gets the
/// response: the close ends the client's sending, not the exchange.
#[tokio::test]
async fn close_notify_after_the_request_still_gets_the_response() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    for version in VERSIONS {
        let mut stream = connect_with_version(server.port(), &ca, version).await;
        let request = b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n";
        within(stream.write_all(request)).await.unwrap();
        within(stream.shutdown()).await.unwrap();
        let (got, end) = read_to_close(&mut stream).await;
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{version:?}: {text} {end:?}");
        assert!(text.contains("https secure=true"), "{text}");
    }
    assert_eq!(server.dispatched(), 2);
    server.stop().await;
}

/// TLS 1.3 key updates from the client, each asking the server to update its own keys too,
/// between requests on one connection: every request is answered.
#[tokio::test]
async fn key_updates_between_requests_are_followed() {
    let ca = Ca::new("test CA");
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    let client = rustls_client(&ca, &[&rustls::version::TLS13]);
    let mut stream = rustls_connect_with(server.port(), &client, "localhost").await;
    assert!(get_info(&mut stream).await.contains(" version=TLSv1.3 "));
    for _ in 0..3 {
        stream.get_mut().1.refresh_traffic_keys().unwrap();
        assert!(get_info(&mut stream).await.contains(" version=TLSv1.3 "));
    }
    within(stream.shutdown()).await.unwrap();
    assert_eq!(server.dispatched(), 4);
    server.stop().await;
}

/// A body that stalls after its head is cut at the body timeout: a 408, then the close,
/// with `close_notify`.
#[tokio::test]
async fn a_stalled_body_is_a_408_then_close_notify() {
    const BODY_TIMEOUT: Duration = Duration::from_millis(300);
    let ca = Ca::new("test CA");
    let config = ServerConfig::default().with_body_timeout(BODY_TIMEOUT);
    let server = TlsServer::start_with(&localhost_tls(&ca), config).await;
    for version in VERSIONS {
        let mut stream = connect_with_version(server.port(), &ca, version).await;
        let started = Instant::now();
        let request =
            "POST /len HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789";
        within(stream.write_all(request.as_bytes())).await.unwrap();
        let (got, end) = read_to_close(&mut stream).await;
        let waited = started.elapsed();
        assert!(waited >= BODY_TIMEOUT, "{version:?}: closed after {waited:?}");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 408 "), "{version:?}: {text}");
        assert!(end.is_none(), "{version:?}: closed without close_notify: {end:?}");
    }
    server.stop().await;
}

/// With `handler_cancellation`, a client's `close_notify` or bare close while its handler
/// runs drops the handler; a key update meanwhile does not, and a request pipelined after
/// it is answered too.
#[tokio::test]
async fn handler_cancellation_sees_closes_but_not_key_updates() {
    /// Tells, when a handler ends, whether it finished or was dropped.
    struct Watch {
        told: mpsc::UnboundedSender<&'static str>,
        finished: bool,
    }
    impl Drop for Watch {
        fn drop(&mut self) {
            let _ = self.told.send(if self.finished { "finished" } else { "dropped" });
        }
    }
    let ca = Ca::new("test CA");
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (told, mut ends) = mpsc::unbounded_channel();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let mut app = Application::new();
    let wait = std::sync::Arc::clone(&gate);
    app.add_get("/wait", move |_req: Request| {
        let (wait, started_tx) = (std::sync::Arc::clone(&wait), started_tx.clone());
        let watch = Watch { told: told.clone(), finished: false };
        async move {
            // Moved in whole, so it ends with the handler, however that ends.
            let mut watch = watch;
            started_tx.send(()).unwrap();
            wait.acquire().await.unwrap().forget();
            watch.finished = true;
            "done"
        }
    });
    let config = ServerConfig::default().with_handler_cancellation(true);
    let mut runner = tandem_web::AppRunner::with_config(app, config).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &localhost_tls(&ca)).await.unwrap();
    let request = b"GET /wait HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for bare in [false, true] {
        let mut stream = connect_with_version(addr.port(), &ca, &rustls::version::TLS13).await;
        within(stream.write_all(request)).await.unwrap();
        within(started.recv()).await.unwrap();
        if bare {
            within(stream.get_mut().0.shutdown()).await.unwrap();
        } else {
            within(stream.shutdown()).await.unwrap();
        }
        assert_eq!(within(ends.recv()).await, Some("dropped"), "bare close {bare}");
    }
    let mut stream = connect_with_version(addr.port(), &ca, &rustls::version::TLS13).await;
    within(stream.write_all(request)).await.unwrap();
    within(started.recv()).await.unwrap();
    stream.get_mut().1.refresh_traffic_keys().unwrap();
    within(stream.flush()).await.unwrap();
    within(stream.write_all(b"GET /wait HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
        .await
        .unwrap();
    gate.add_permits(2);
    let (got, end) = read_to_close(&mut stream).await;
    let text = String::from_utf8_lossy(&got);
    assert_eq!(count(&got, b"HTTP/1.1 200 OK\r\n"), 2, "{text} {end:?}");
    assert_eq!(within(ends.recv()).await, Some("finished"));
    assert_eq!(within(ends.recv()).await, Some("finished"));
    assert!(within(runner.cleanup()).await);
}

/// OpenSSL's key updates (`s_client`'s `k`, and `K`, which asks the server to update its
/// keys too) between keep-alive requests: every request is answered on the one connection.
#[tokio::test]
async fn openssl_key_updates_between_requests_are_followed() {
    /// Everything a pipe of the child's has said so far.
    fn collect(
        mut pipe: impl AsyncRead + Unpin + Send + 'static,
    ) -> tokio::sync::watch::Receiver<String> {
        let (said, heard) = tokio::sync::watch::channel(String::new());
        tokio::spawn(async move {
            let mut chunk = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
                said.send_modify(|all| all.push_str(&String::from_utf8_lossy(&chunk[..n])));
            }
        });
        heard
    }
    let ca = Ca::new("test CA");
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    let connect = format!("127.0.0.1:{}", server.port());
    let mut child = tokio::process::Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-tls1_3", "-servername", "localhost"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl runs");
    let mut input = child.stdin.take().unwrap();
    let mut stdout = collect(child.stdout.take().unwrap());
    let mut stderr = collect(child.stderr.take().unwrap());
    let answers = |n: usize| move |all: &String| all.matches("https secure=true").count() >= n;
    let request = b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n";
    within(input.write_all(request)).await.unwrap();
    within(stdout.wait_for(answers(1))).await.unwrap();
    // Each command goes alone, once the last answer is in, so s_client reads it alone.
    for (round, command) in [(2, b"k\n"), (3, b"K\n")] {
        within(input.write_all(command)).await.unwrap();
        within(stderr.wait_for(|all| all.matches("KEYUPDATE").count() == round - 1)).await.unwrap();
        within(input.write_all(request)).await.unwrap();
        within(stdout.wait_for(answers(round))).await.unwrap();
    }
    drop(input);
    let status = within(child.wait()).await.unwrap();
    assert!(status.success(), "{status}: {}", *stderr.borrow());
    assert!(stdout.borrow().contains("TLSv1.3"), "{}", *stdout.borrow());
    assert_eq!(server.dispatched(), 3);
    server.stop().await;
}
