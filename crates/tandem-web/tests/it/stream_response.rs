//! aiohttp's `StreamResponse` (`prepare`, `write`, `write_eof`, `force_close`) and the typed
//! header setters of a response (`etag`, `last_modified`, `content_length`, `charset`).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, UNIX_EPOCH},
};

use bytes::Bytes;
use tandem_web::{Application, Error, Request, Response, StreamResponse};
use tokio::sync::{Notify, oneshot};

use crate::support::{Server, within};

#[tokio::test]
async fn typed_setters_reach_the_wire() {
    let mut app = Application::new();
    app.add_get("/", |_req: Request| async {
        let mut response = Response::html("<p>caf\u{e9}</p>");
        response.set_etag("v1", false)?;
        response.set_last_modified(UNIX_EPOCH + Duration::from_secs(784_111_777));
        response.set_charset(Some("UTF-8"))?;
        Ok::<_, Error>(response)
    });
    app.add_get("/weak", |_req: Request| async {
        let mut response = Response::stream(futures_util::stream::iter([Ok(Bytes::from("12345"))]));
        response.set_etag("w", true)?;
        response.set_content_length(5);
        response.set_charset(None)?;
        Ok::<_, Error>(response)
    });
    let server = Server::start(app).await;

    let resp = server.get("/").await;
    assert_eq!(resp.header("etag"), Some("\"v1\""));
    assert_eq!(resp.header("last-modified"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    assert_eq!(resp.header("content-type"), Some("text/html; charset=utf-8"));

    // A declared length frames a stream: no chunking.
    let resp = server.get("/weak").await;
    assert_eq!(resp.header("etag"), Some("W/\"w\""));
    assert_eq!(resp.header("content-length"), Some("5"));
    assert_eq!(resp.header("content-type"), Some("application/octet-stream"));
    assert!(!resp.chunked);
    assert_eq!(resp.text(), "12345");
    assert!(server.stop().await);

    let mut response = Response::new(http::StatusCode::OK);
    assert!(response.set_etag("a b", false).is_err(), "a space ends an entity tag");
    assert!(response.set_charset(Some("utf 8")).is_err());
    response.set_etag("*", true).unwrap();
    assert_eq!(response.etag(), Some(("*", false)));
    response.set_last_modified(UNIX_EPOCH + Duration::from_secs(10));
    assert_eq!(response.last_modified(), Some(UNIX_EPOCH + Duration::from_secs(10)));
}

/// The head and the first chunk reach the client while the handler still waits: only
/// `prepare` and `write` can have sent them. The `on_response_prepare` signal ran first.
#[tokio::test]
async fn prepare_sends_the_head_before_the_handler_returns() {
    let go_on = Arc::new(Notify::new());
    let mut app = Application::new();
    let wait = Arc::clone(&go_on);
    app.add_get("/", move |req: Request| {
        let wait = Arc::clone(&wait);
        async move {
            let mut response = StreamResponse::new();
            response.response_mut().unwrap().set_content_type("text/plain")?;
            response.headers_mut().unwrap().insert("x-made", "before".parse().unwrap());
            response.prepare(&req).await?;
            assert!(response.is_prepared() && response.headers_mut().is_none());
            assert!(response.force_close().is_err(), "the head is frozen");
            response.write("first;").await?;
            wait.notified().await;
            response.write(Bytes::from_static(b"second")).await?;
            response.write_eof().await?;
            assert!(response.write("late").await.is_err());
            Ok::<_, Error>(response)
        }
    });
    app.on_response_prepare(|_req, response| {
        response.headers_mut().insert("x-signal", "ran".parse().unwrap());
    });
    let server = Server::start(app).await;
    let mut client = server.connect().await;
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;

    let head = read_until(&mut client, b"first;").await;
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    assert!(head.contains("x-made: before\r\n") && head.contains("x-signal: ran\r\n"), "{head}");
    go_on.notify_one();
    read_until(&mut client, b"second\r\n0\r\n\r\n").await;

    // The connection stays usable for the next request.
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
    go_on.notify_one();
    let rest = client.read_to_close().await;
    assert!(String::from_utf8_lossy(&rest).ends_with("second\r\n0\r\n\r\n"));
    assert!(server.stop().await);
}

/// Reads from `client` until its buffer holds `needle`; returns what was read, leaving it.
async fn read_until(client: &mut crate::support::Client, needle: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    loop {
        if client.buf.windows(needle.len()).any(|w| w == needle) {
            return std::mem::take(&mut client.buf);
        }
        let read = within(client.stream.read_buf(&mut client.buf)).await.expect("read");
        assert!(read > 0, "closed early: {:?}", String::from_utf8_lossy(&client.buf));
    }
}

/// Written to the end and returned: the body ends. Returned without `write_eof`: ends too.
/// Failing after `prepare`: the body is cut short and the connection closes.
#[tokio::test]
async fn a_stream_ends_with_its_handler_and_a_failure_cuts_it() {
    let mut app = Application::new();
    app.add_get("/no-eof", |req: Request| async move {
        let mut response = StreamResponse::new();
        response.prepare(&req).await?;
        response.write("a").await?;
        response.write("b").await?;
        Ok::<_, Error>(response)
    });
    app.add_get("/fails", |req: Request| async move {
        let mut response = StreamResponse::new();
        response.prepare(&req).await?;
        response.write("partial").await?;
        Err::<StreamResponse, _>(Error::new("the database went away"))
    });
    app.add_get("/unprepared", |_req: Request| async {
        let mut response = StreamResponse::from(Response::text("never prepared"));
        response.force_close()?;
        Ok::<_, Error>(response)
    });
    let server = Server::start(app).await;

    let resp = server.get("/no-eof").await;
    assert!(resp.chunked);
    assert_eq!(resp.text(), "ab");

    let raw = server.raw(b"GET /fails HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(raw.contains("partial") && !raw.ends_with("0\r\n\r\n"), "cut short: {raw}");

    // An unprepared stream response is an ordinary one; force_close closes after it.
    let mut client = server.connect().await;
    client.send(b"GET /unprepared HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let resp = client.response().await;
    assert_eq!(resp.text(), "never prepared");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(client.closes_quietly().await);
    assert!(server.stop().await);
}

/// A client that leaves mid-stream takes the handler with it: its next write never returns,
/// the future is dropped.
#[tokio::test]
async fn a_client_leaving_mid_stream_drops_the_handler() {
    let (dropped_tx, dropped) = oneshot::channel::<()>();
    let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
    let mut app = Application::new();
    app.add_get("/", move |req: Request| {
        let guard = Guard(dropped_tx.lock().unwrap().take());
        async move {
            let _guard = guard;
            let mut response = StreamResponse::new();
            response.prepare(&req).await?;
            loop {
                response.write(vec![b'x'; 16 * 1024]).await?;
            }
            #[allow(unreachable_code)]
            Ok::<_, Error>(response)
        }
    });
    let server = Server::start(app).await;
    let mut client = server.connect().await;
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    read_until(&mut client, b"xxxx").await;
    drop(client);
    within(dropped).await.expect("the handler was dropped");
    assert!(server.stop().await);
}

/// Signals when dropped.
struct Guard(Option<oneshot::Sender<()>>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Reads `client` to its end: what came, and whether it ended in a reset rather than a
/// close.
async fn read_to_reset(client: &mut crate::support::Client) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = std::mem::take(&mut client.buf);
    loop {
        match within(client.stream.read_buf(&mut got)).await {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(_) => {}
            Err(err) => {
                assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
                return (String::from_utf8_lossy(&got).into_owned(), true);
            }
        }
    }
}

/// A body that breaks after its head went out (the stream fails, panics, or the handler of
/// a prepared `StreamResponse` fails) resets the connection rather than closing it: an
/// HTTP/1.0 client's body runs until the close, so a close would read as the body's end and
/// the cut body as a whole one. A body that ends well still ends with a close.
#[tokio::test]
async fn a_body_that_breaks_resets_the_connection() {
    use futures_util::StreamExt as _;
    let mut app = Application::new();
    app.add_get("/fails", |req: Request| async move {
        let mut response = StreamResponse::new();
        response.prepare(&req).await?;
        response.write("partial").await?;
        Err::<StreamResponse, _>(Error::new("the database went away"))
    });
    app.add_get("/stream-fails", |_req: Request| async {
        let chunks = futures_util::stream::iter([
            Ok(Bytes::from_static(b"partial")),
            Err(Error::new("the feed went away")),
        ]);
        Response::stream(chunks)
    });
    app.add_get("/stream-panics", |_req: Request| async {
        let chunks = futures_util::stream::iter(0..2).map(|n| {
            assert!(n == 0, "a bug in the body's stream");
            Ok::<_, Error>(Bytes::from_static(b"partial"))
        });
        Response::stream(chunks)
    });
    app.add_get("/whole", |_req: Request| async {
        let chunks = futures_util::stream::iter([Ok::<_, Error>(Bytes::from_static(b"whole"))]);
        Response::stream(chunks)
    });
    let server = Server::start(app).await;
    for version in ["1.0", "1.1"] {
        for path in ["/fails", "/stream-fails", "/stream-panics"] {
            let mut client = server.connect().await;
            client.send(format!("GET {path} HTTP/{version}\r\nHost: t\r\n\r\n").as_bytes()).await;
            let (got, reset) = read_to_reset(&mut client).await;
            assert!(got.contains("partial"), "{path} HTTP/{version}: {got}");
            assert!(reset, "{path} HTTP/{version}: closed as if whole: {got}");
        }
        let mut client = server.connect().await;
        let request = format!("GET /whole HTTP/{version}\r\nHost: t\r\nConnection: close\r\n\r\n");
        client.send(request.as_bytes()).await;
        let (got, reset) = read_to_reset(&mut client).await;
        assert!(got.contains("whole") && !reset, "HTTP/{version}: {got}");
    }
    // The server lives on.
    assert_eq!(server.get("/whole").await.text(), "whole");
    assert!(server.stop().await);
}

/// A connection still writing a streamed body when the shutdown timeout passes is reset, not
/// closed: the body is cut as when it breaks, and an HTTP/1.0 client, whose body runs to the
/// close, would read a close as its end.
#[tokio::test]
async fn a_body_cut_at_the_shutdown_timeout_resets_the_connection() {
    let mut app = Application::new();
    app.add_get("/endless", |_req: Request| async {
        let first = futures_util::stream::iter([Ok::<_, Error>(Bytes::from_static(b"partial"))]);
        Response::stream(futures_util::StreamExt::chain(first, futures_util::stream::pending()))
    });
    let config =
        tandem_web::ServerConfig::default().with_shutdown_timeout(Duration::from_millis(200));
    let server = Server::start_with(app, config).await;
    let mut client = server.connect().await;
    client.send(b"GET /endless HTTP/1.0\r\nHost: t\r\n\r\n").await;
    read_until(&mut client, b"partial").await;
    let stopping = tokio::spawn(server.stop());
    let (_, reset) = read_to_reset(&mut client).await;
    assert!(reset, "closed as if whole");
    assert!(!within(stopping).await.unwrap(), "the stream was still running at the timeout");
}
