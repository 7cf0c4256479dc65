//! Connection behaviour on the wire: keep-alive, HTTP/1.0, pipelining, `Expect:
//! 100-continue`, and section B of `docs/security.md`'s checklist (server lifecycle and
//! limits).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tandem_web::{Application, HttpError, Request, Response, ServerConfig};
use tokio::{io::AsyncWriteExt, sync::Notify};

use crate::support::{Counter, Server, post_request, within};

/// `/echo` reads the body, `/path` answers its own path, `/ignore` leaves the body unread,
/// and `/secret` counts calls: it must never run from bytes hidden in a body.
fn app(secret: &Counter) -> Application {
    let mut app = Application::new();
    app.add_post("/echo", |mut req: Request| async move {
        Ok::<_, HttpError>(Response::bytes(req.read().await?))
    });
    app.add_get("/path/{n}", |req: Request| async move { Response::text(req.path().into_owned()) });
    app.add_post("/ignore", |_req: Request| async { "ignored" });
    let secret = secret.clone();
    app.add_route(None, "/secret", move |_req: Request| {
        secret.hit();
        async { "secret" }
    });
    app
}

fn short_timeouts() -> ServerConfig {
    ServerConfig::default()
        .with_head_timeout(Duration::from_millis(200))
        .with_keepalive_timeout(Duration::from_millis(200))
}

#[tokio::test]
async fn keep_alive_and_connection_close() {
    let server = Server::start(app(&Counter::default())).await;
    let mut client = server.connect().await;
    for n in 0..3 {
        client.send(format!("GET /path/{n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await;
        let resp = client.response().await;
        assert_eq!(resp.text(), format!("/path/{n}"));
        assert_ne!(resp.header("connection"), Some("close"));
    }
    client.send(b"GET /path/last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
    let last = client.response().await;
    assert_eq!(last.header("connection"), Some("close"));
    assert!(client.closes_quietly().await);

    // HTTP/1.0 closes by default.
    let mut old = server.connect().await;
    old.send(b"GET /path/old HTTP/1.0\r\n\r\n").await;
    assert_eq!(old.response().await.text(), "/path/old");
    assert!(old.closes_quietly().await);
    server.stop().await;
}

#[tokio::test]
async fn pipelined_requests_answer_in_order() {
    let server = Server::start(app(&Counter::default())).await;
    let mut client = server.connect().await;
    client
        .send(
            b"GET /path/1 HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\ntwoGET /path/3 HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .await;
    assert_eq!(client.response().await.text(), "/path/1");
    assert_eq!(client.response().await.text(), "two");
    assert_eq!(client.response().await.text(), "/path/3");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_request_in_a_pipeline_ends_it() {
    let secret = Counter::default();
    let server = Server::start(app(&secret)).await;
    let raw = server
        .raw(
            b"GET /secret HTTP/1.1\r\nHost: t\r\n\r\nGET /bad HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxGET /secret HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .await;
    let text = String::from_utf8(raw).unwrap();
    let first = text.find("HTTP/1.1 200").expect("first answered");
    let second = text.find("HTTP/1.1 400").expect("then 400");
    assert!(first < second);
    assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "nothing after the 400: {text}");
    assert_eq!(secret.get(), 1, "the third request is never dispatched");
    server.stop().await;
}

#[tokio::test]
async fn expect_100_continue_comes_before_the_body() {
    let server = Server::start(app(&Counter::default())).await;
    let mut client = server.connect().await;
    client
        .send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .await;
    // Nothing of the body is sent until the 100 arrives.
    let interim = client.response().await;
    assert_eq!(interim.status, 100);
    client.send(b"hello").await;
    assert_eq!(client.response().await.text(), "hello");

    let refused = server
        .request(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\nhello",
        )
        .await;
    assert_eq!(refused.status, 417);
    server.stop().await;
}

/// B 29: a head that does not arrive in time is a 408, then close.
#[tokio::test]
async fn head_timeout_and_slowloris() {
    let server = Server::start_with(app(&Counter::default()), short_timeouts()).await;
    let mut client = server.connect().await;
    client.send(b"GET /path/1 HTTP/1.1\r\nHost: t\r\n").await;
    let resp = client.response().await;
    assert_eq!(resp.status, 408);
    assert!(client.closes_quietly().await);

    // A byte every 20 ms keeps the socket busy but does not extend the head's deadline.
    let slow = server.connect().await;
    let started = Instant::now();
    let request = b"GET /path/1 HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let (mut read, mut write) = slow.stream.into_split();
    let writer = tokio::spawn(async move {
        for byte in request {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut answer = Vec::new();
    within(tokio::io::AsyncReadExt::read_to_end(&mut read, &mut answer)).await.ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2), "closed within the head timeout");
    writer.abort();
    server.stop().await;
}

/// B 30: an idle keep-alive connection is closed after the keep-alive timeout, silently.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let server = Server::start_with(app(&Counter::default()), short_timeouts()).await;
    let mut client = server.connect().await;
    client.send(b"GET /path/1 HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(client.response().await.status, 200);
    assert!(client.closes_quietly().await);
    // Idle connections that never sent a byte go the same way.
    let idle: Vec<_> = futures_util::future::join_all((0..20).map(|_| server.connect())).await;
    for mut client in idle {
        assert!(client.closes_quietly().await);
    }
    server.stop().await;
}

/// Requests pipelined behind the slow one in B 31.
const FLOOD: usize = 10_000;

/// B 31: while a slow handler runs, nothing pipelined behind it is read or dispatched, and
/// the server keeps answering other connections.
#[tokio::test]
async fn pipelined_flood_behind_a_slow_handler() {
    let release = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let fast = Counter::default();
    let mut app = Application::new();
    let (r, s) = (Arc::clone(&release), Arc::clone(&started));
    app.add_get("/slow", move |_req: Request| {
        let (release, started) = (Arc::clone(&r), Arc::clone(&s));
        async move {
            started.notify_one();
            release.notified().await;
            "slow"
        }
    });
    let f = fast.clone();
    app.add_get("/fast", move |_req: Request| {
        f.hit();
        async { "fast" }
    });
    let server = Server::start(app).await;

    let mut flood = b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    for _ in 0..FLOOD {
        flood.extend_from_slice(b"GET /fast HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    let client = server.connect().await;
    let (mut read, mut write) = client.stream.into_split();
    let writer = tokio::spawn(async move { write.write_all(&flood).await.map(|()| write) });
    within(started.notified()).await;

    // Other connections are served while the flood waits.
    assert_eq!(server.get("/fast").await.text(), "fast");
    assert_eq!(fast.get(), 1, "nothing behind the slow request has been dispatched");

    release.notify_one();
    let mut seen = Vec::new();
    let mut count = 0;
    within(async {
        let mut chunk = vec![0u8; 64 * 1024];
        while count < FLOOD + 1 {
            let n = tokio::io::AsyncReadExt::read(&mut read, &mut chunk).await.unwrap();
            assert!(n > 0, "closed early after {count} responses");
            seen.extend_from_slice(&chunk[..n]);
            while let Some((resp, used)) = crate::support::parse_response(&seen, false, false) {
                assert_eq!(resp.text(), if count == 0 { "slow" } else { "fast" });
                seen.drain(..used);
                count += 1;
            }
        }
    })
    .await;
    within(writer).await.unwrap().unwrap();
    assert_eq!(fast.get(), FLOOD + 1);
    server.stop().await;
}

/// B 32: a body one byte over `client_max_size` is a 413, and a request hidden in the body
/// is never parsed.
#[tokio::test]
async fn body_over_the_limit_is_413() {
    let secret = Counter::default();
    let server = Server::start(app(&secret)).await;
    let limit = tandem_web::DEFAULT_CLIENT_MAX_SIZE;
    let mut body = vec![b'a'; limit + 1];
    let hidden = b"GET /secret HTTP/1.1\r\nHost: t\r\n\r\n";
    body[..hidden.len()].copy_from_slice(hidden);
    let over = server.request(&post_request("/echo", "application/octet-stream", &body)).await;
    assert_eq!(over.status, 413);
    let exact =
        server.request(&post_request("/echo", "application/octet-stream", &body[..limit])).await;
    assert_eq!((exact.status, exact.body.len()), (200, limit));

    // Chunked, so the length is not known up front: refused once the limit passes.
    let mut client = server.connect().await;
    client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n").await;
    let (mut read, mut write) = client.stream.into_split();
    let writer = tokio::spawn(async move {
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "b".repeat(64 * 1024));
        for _ in 0..64 {
            if write.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut answer = vec![0u8; 1024];
    let n = within(tokio::io::AsyncReadExt::read(&mut read, &mut answer)).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 413"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
    writer.abort();
    assert_eq!(secret.get(), 0);
    server.stop().await;
}

/// B 33: a huge declared length with a tiny body is refused at once, with the socket open.
#[tokio::test]
async fn huge_declared_length_is_413_at_once() {
    let server = Server::start(app(&Counter::default())).await;
    let mut client = server.connect().await;
    client
        .send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n0123456789")
        .await;
    let resp = client.response().await;
    assert_eq!(resp.status, 413);
    assert_eq!(resp.header("connection"), Some("close"));
    server.stop().await;
}

/// B 36: a body the handler ignores is drained or the connection closed; a request inside it
/// is never dispatched.
#[tokio::test]
async fn unread_bodies_are_never_parsed_as_requests() {
    let secret = Counter::default();
    let server = Server::start(app(&secret)).await;
    let hidden = b"GET /secret HTTP/1.1\r\nHost: t\r\n\r\n";

    // A small body is drained, and the connection goes on.
    let mut client = server.connect().await;
    let mut request = post_request("/ignore", "text/plain", hidden);
    request.extend_from_slice(b"GET /path/after HTTP/1.1\r\nHost: t\r\n\r\n");
    client.send(&request).await;
    assert_eq!(client.response().await.text(), "ignored");
    assert_eq!(client.response().await.text(), "/path/after");

    // A large one (100 KiB, past the drain limit) closes the connection instead.
    let mut body = hidden.repeat(100 * 1024 / hidden.len());
    body.resize(100 * 1024, b'z');
    let client = server.connect().await;
    let (mut read, mut write) = client.stream.into_split();
    let request = post_request("/ignore", "text/plain", &body);
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        let _ = write.write_all(hidden).await;
        write
    });
    let mut answer = Vec::new();
    within(tokio::io::AsyncReadExt::read_to_end(&mut read, &mut answer)).await.ok();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "{text}");
    let _ = within(writer).await;
    assert_eq!(secret.get(), 0);
    server.stop().await;
}

/// B 39: error answers are short, fixed texts that do not echo the request.
#[tokio::test]
async fn error_messages_do_not_reflect_input() {
    let server = Server::start(app(&Counter::default())).await;
    let evil = "<script>alert(1)</script>";
    for request in [
        format!("GET /{evil} HTTP/1.1\r\nHost: t\r\nX: {evil}\0\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: t\r\n{evil}: 1\r\n\r\n"),
        format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", evil.repeat(400)),
        format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {evil}\r\n\r\n"),
    ] {
        let raw = server.raw(request.as_bytes()).await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 4"), "{text}");
        assert!(!text.contains("<script>"), "{text}");
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        assert!(body.len() <= 200, "{body}");
    }
    server.stop().await;
}

fn short_body_and_send_timeouts() -> ServerConfig {
    ServerConfig::default()
        .with_body_timeout(Duration::from_millis(200))
        .with_send_timeout(Duration::from_millis(200))
}

/// A body that stalls after its head is cut off by the body timeout: a 408 while no response
/// has started, then close. Before the timer, each held its connection for good.
#[tokio::test]
async fn a_stalled_body_is_a_408_then_close() {
    let secret = Counter::default();
    let server = Server::start_with(app(&secret), short_body_and_send_timeouts()).await;
    for stalled in [
        &b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789"[..],
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\nabc",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    ] {
        let mut client = server.connect().await;
        client.send(stalled).await;
        let started = Instant::now();
        let resp = client.response().await;
        assert_eq!(resp.status, 408, "{}", resp.text());
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(client.closes_quietly().await);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert_eq!(secret.get(), 0);
    server.stop().await;
}

/// A handler that answers without reading: its response goes out at once, and the unread
/// body that then stalls closes the connection after the body timeout, with nothing more.
#[tokio::test]
async fn an_unread_body_that_stalls_closes_after_the_response() {
    let server = Server::start_with(app(&Counter::default()), short_body_and_send_timeouts()).await;
    let mut client = server.connect().await;
    client.send(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc").await;
    let resp = client.response().await;
    assert_eq!(resp.text(), "ignored");
    assert!(client.closes_quietly().await);

    // The same with a chunked body, which the drain reads without knowing its length.
    let mut client = server.connect().await;
    client
        .send(b"POST /ignore HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        .await;
    assert_eq!(client.response().await.text(), "ignored");
    assert!(client.closes_quietly().await);
    server.stop().await;
}

/// Ends when dropped: the server let go of the response it was writing.
struct DropSignal(Arc<Notify>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// A client that never reads its response is cut off by the send timeout once the socket's
/// buffers are full; before the timer, the response's writer waited for it forever.
#[tokio::test]
async fn a_client_that_never_reads_is_cut_off() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 1024;
    let dropped = Arc::new(Notify::new());
    let mut app = Application::new();
    let signal = Arc::clone(&dropped);
    app.add_get("/big", move |_req: Request| {
        let guard = DropSignal(Arc::clone(&signal));
        async move {
            let chunks = futures_util::stream::unfold((0, guard), |(n, guard)| async move {
                (n < CHUNKS).then(|| {
                    (
                        Ok::<_, tandem_web::Error>(bytes::Bytes::from(vec![b'x'; CHUNK])),
                        (n + 1, guard),
                    )
                })
            });
            Response::stream(chunks)
        }
    });
    let server = Server::start_with(app, short_body_and_send_timeouts()).await;
    let mut client = server.connect().await;
    client.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n").await;
    within(dropped.notified()).await;
    let received = client.read_to_close().await;
    assert!(received.len() < CHUNK * CHUNKS, "the response was cut short");
    server.stop().await;
}

/// A client that pipelines requests and never reads the answers is cut off by the send
/// timeout once the buffers between them are full: the server reads no further request
/// while a response waits for room, so neither the answers nor the requests pile up in its
/// memory, and the connection is not held for good.
#[tokio::test]
async fn a_pipelining_client_that_never_reads_is_cut_off() {
    let server = Server::start_with(app(&Counter::default()), short_body_and_send_timeouts()).await;
    let client = server.connect().await;
    let _ = socket2::SockRef::from(&client.stream).set_recv_buffer_size(4096);
    let (_read, mut write) = client.stream.into_split();
    let requests = b"GET /path/p HTTP/1.1\r\nHost: t\r\n\r\n".repeat(1024);
    let started = Instant::now();
    // Each write waits while the server reads no more; once it has cut the connection off,
    // a write fails. 256 MiB of requests would be 1 GiB of answers, far past any buffers.
    let cut_off = within(async {
        for _ in 0..(256 << 20) / requests.len() {
            if write.write_all(&requests).await.is_err() {
                return true;
            }
        }
        false
    })
    .await;
    assert!(cut_off, "the server kept reading");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    server.stop().await;
}
