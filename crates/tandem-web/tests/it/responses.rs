//! Responses: bodies, status and reason, headers, cookies, streams, HTTP/1.0 framing, the
//! HTTP error family, failing and panicking handlers, and what must never reach the wire.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::StatusCode;
use tandem_web::{Application, CookieOptions, Error, HttpError, Request, Response, json_response};

use crate::support::{Counter, Server};

fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/text", |_req: Request| async { Response::text("plain") });
    app.add_get("/json", |_req: Request| async { json_response(&serde_json::json!({"ok": true})) });
    app.add_get("/created", |_req: Request| async {
        let mut response = Response::html("<p>made</p>").with_status(StatusCode::CREATED);
        response.set_reason("Made It");
        response.headers_mut().append("x-many", "1".parse().unwrap());
        response.headers_mut().append("x-many", "2".parse().unwrap());
        response.with_header("x-single", "yes")
    });
    app.add_get("/cookies", |_req: Request| async {
        let mut response = Response::text("cookies");
        let options = CookieOptions::default()
            .with_domain("example.com")
            .with_path("/app")
            .with_max_age(3600)
            .with_expires(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
            .with_secure(true)
            .with_httponly(true)
            .with_samesite("Strict");
        response.set_cookie("sid", "a b;c", &options)?;
        response.set_cookie("plain", "v", &CookieOptions::default())?;
        response.del_cookie("old", "/", Some("example.com"))?;
        Ok::<_, Error>(response)
    });
    app.add_get("/stream", |_req: Request| async {
        let chunks = ["one ", "two ", "three"].map(|s| Ok(Bytes::from(s)));
        Response::stream(futures_util::stream::iter(chunks))
    });
    app.add_get("/found", |_req: Request| async { HttpError::found("/elsewhere") });
    app.add_get("/teapot", |_req: Request| async {
        Err::<Response, _>(
            HttpError::new(StatusCode::IM_A_TEAPOT)
                .with_text("short and stout")
                .with_header("x-why", "tea"),
        )
    });
    app.add_get("/forbidden", |_req: Request| async { Err::<Response, _>(HttpError::forbidden()) });
    app
}

#[tokio::test]
async fn bodies_status_reason_and_headers() {
    let server = Server::start(app()).await;
    let text = server.get("/text").await;
    assert_eq!((text.status, text.reason.as_str(), text.text().as_str()), (200, "OK", "plain"));
    assert_eq!(text.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(text.header("date").is_some());

    let json = server.get("/json").await;
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.json(), serde_json::json!({"ok": true}));

    let created = server.get("/created").await;
    assert_eq!((created.status, created.reason.as_str()), (201, "Made It"));
    assert_eq!(created.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(created.header_all("x-many").collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(created.header("x-single"), Some("yes"));
    server.stop().await;
}

#[tokio::test]
async fn cookies_with_every_attribute() {
    let server = Server::start(app()).await;
    let resp = server.get("/cookies").await;
    let cookies: Vec<_> = resp.header_all("set-cookie").collect();
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    let sid = cookies.iter().find(|c| c.starts_with("sid=")).unwrap();
    for attribute in [
        "sid=a%20b%3Bc",
        "Domain=example.com",
        "Path=/app",
        "Max-Age=3600",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Expires=Wed, 18 May 2033 03:33:20 GMT",
    ] {
        assert!(sid.contains(attribute), "{sid} lacks {attribute}");
    }
    assert!(cookies.iter().any(|c| c.starts_with("plain=v") && c.contains("Path=/")));
    let old = cookies.iter().find(|c| c.starts_with("old=")).unwrap();
    assert!(old.contains("Max-Age=0") && old.contains("1970"), "{old}");
    server.stop().await;
}

#[tokio::test]
async fn streams_are_chunked_on_1_1_and_close_delimited_on_1_0() {
    let server = Server::start(app()).await;
    let resp = server.get("/stream").await;
    assert!(resp.chunked);
    assert_eq!(resp.text(), "one two three");

    // HTTP/1.0 knows no chunked: the body ends with the connection.
    let raw = server.raw(b"GET /stream HTTP/1.0\r\n\r\n").await;
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("transfer-encoding"), "{text}");
    assert!(text.ends_with("\r\n\r\none two three"), "{text}");

    // A whole body on HTTP/1.0 has a Content-Length, and the connection closes after it.
    let raw = server.raw(b"GET /text HTTP/1.0\r\n\r\n").await;
    let text = String::from_utf8(raw).unwrap();
    assert!(text.to_ascii_lowercase().contains("content-length: 5"), "{text}");
    assert!(text.ends_with("\r\n\r\nplain"), "{text}");

    // HTTP/1.0 with keep-alive stays open for a second request.
    let mut client = server.connect().await;
    client.send(b"GET /text HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await;
    assert_eq!(client.response().await.text(), "plain");
    client.send(b"GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await;
    assert_eq!(client.response().await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn http_errors() {
    let server = Server::start(app()).await;
    let found = server.get("/found").await;
    assert_eq!((found.status, found.header("location")), (302, Some("/elsewhere")));
    let teapot = server.get("/teapot").await;
    assert_eq!((teapot.status, teapot.text().as_str()), (418, "short and stout"));
    assert_eq!(teapot.header("x-why"), Some("tea"));
    let forbidden = server.get("/forbidden").await;
    assert_eq!((forbidden.status, forbidden.text().as_str()), (403, "403: Forbidden"));
    server.stop().await;
}

async fn panics(_req: Request) -> Response {
    panic!("handler bug")
}

#[tokio::test]
async fn errors_and_panics_are_500s_and_the_server_lives_on() {
    let mut app = Application::new();
    app.add_get("/fail", |_req: Request| async {
        Err::<Response, _>(std::io::Error::other("secret database password in the error"))
    });
    app.add_get("/panic", panics);
    app.add_get("/ok", |_req: Request| async { "fine" });
    let server = Server::start(app).await;

    let fail = server.get("/fail").await;
    assert_eq!(fail.status, 500);
    assert!(!fail.text().contains("secret"), "details stay in the log");

    // A panic is a 500, and the same connection still serves the next request.
    let mut client = server.connect().await;
    client.send(b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(client.response().await.status, 500);
    client.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(client.response().await.text(), "fine");
    for _ in 0..3 {
        assert_eq!(server.get("/panic").await.status, 500);
    }
    assert_eq!(server.get("/ok").await.text(), "fine");
    server.stop().await;
}

/// Checklist B 37: response splitting never reaches the wire.
#[tokio::test]
async fn response_splitting_is_a_500_with_no_partial_head() {
    let mut app = Application::new();
    app.add_get("/reason", |_req: Request| async {
        let mut response = Response::text("x");
        response.set_reason("OK\r\nSet-Cookie: injected=1");
        response
    });
    app.add_get("/cookie", |_req: Request| async {
        let mut response = Response::text("x");
        // The value is percent-encoded; the name is refused.
        response.set_cookie("c", "a\x01\r\nSet-Cookie: injected=1", &CookieOptions::default())?;
        assert!(response.set_cookie("bad\r\nname", "v", &CookieOptions::default()).is_err());
        Ok::<_, Error>(response)
    });
    app.add_get("/header", |_req: Request| async {
        // A header value with CR LF cannot even be built, and an HTTP error drops it.
        assert!(http::HeaderValue::try_from("a\r\nSet-Cookie: injected=1").is_err());
        HttpError::bad_request().with_header("x-evil", "a\r\nSet-Cookie: injected=1")
    });
    let server = Server::start(app).await;

    let raw = server.raw(b"GET /reason HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 500 "), "{text}");
    assert!(!text.contains("injected"), "{text}");
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "one head only: {text}");

    let cookie = server.get("/cookie").await;
    assert_eq!(cookie.status, 200);
    assert!(!cookie.headers.iter().any(|(_, v)| v.contains("injected=1") && !v.starts_with("c=")));
    assert_eq!(cookie.header_all("set-cookie").count(), 1);

    let header = server.get("/header").await;
    assert_eq!(header.status, 400);
    assert!(header.header("x-evil").is_none());
    server.stop().await;
}

/// Checklist B 38: HEAD, 204 and 304 carry nothing after the head, whatever the handler
/// wrote, and the next pipelined response is intact.
#[tokio::test]
async fn no_body_after_head_204_and_304() {
    let calls = Counter::default();
    let mut app = Application::new();
    app.add_get("/no-content", |_req: Request| async {
        Response::text("should not be sent").with_status(StatusCode::NO_CONTENT)
    });
    app.add_get("/not-modified", |_req: Request| async {
        Response::text("should not be sent").with_status(StatusCode::NOT_MODIFIED)
    });
    app.add_get("/stream", |_req: Request| async {
        Response::stream(futures_util::stream::iter([Ok(Bytes::from("streamed body"))]))
    });
    let counted = calls.clone();
    app.add_get("/next", move |_req: Request| {
        counted.hit();
        async { "next" }
    });
    let server = Server::start(app).await;

    let mut client = server.connect().await;
    client
        .send(
            b"GET /no-content HTTP/1.1\r\nHost: t\r\n\r\nGET /not-modified HTTP/1.1\r\nHost: t\r\n\r\n\
              HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .await;
    let no_content = client.response().await;
    assert_eq!(no_content.status, 204);
    assert!(no_content.header("content-length").is_none());
    assert_eq!(client.response().await.status, 304);
    let head = client.response_to(true).await;
    assert_eq!(head.status, 200);
    let next = client.response().await;
    assert_eq!((next.status, next.text().as_str()), (200, "next"));
    assert!(client.buf.is_empty());
    assert_eq!(calls.get(), 1);
    server.stop().await;
}

/// `with_header` replaces on a response and on an error alike, so an error that sets its
/// own `Content-Type` goes out with one; `append_header` adds beside; an invalid value is
/// dropped, never a panic or a split head.
#[tokio::test]
async fn with_header_replaces_and_append_header_adds() {
    let mut app = Application::new();
    app.add_get("/error", |_req: Request| async {
        HttpError::new(StatusCode::UNPROCESSABLE_ENTITY)
            .with_text(r#"{"error":"bad"}"#)
            .with_header("content-type", "application/json")
            .append_header("x-why", "one")
            .append_header("x-why", "two")
    });
    app.add_get("/response", |_req: Request| async {
        Response::text("t")
            .with_header("content-type", "text/csv")
            .append_header("x-why", "a")
            .append_header("x-why", "b")
            .with_header("x-bad", "split\r\nx-injected: 1")
    });
    let server = Server::start(app).await;
    for path in ["/error", "/response"] {
        let resp = server.get(path).await;
        assert_eq!(resp.header_all("content-type").count(), 1, "{path}: {:?}", resp.headers);
        assert_eq!(resp.header_all("x-why").count(), 2, "{path}");
        assert!(resp.header("x-injected").is_none() && resp.header("x-bad").is_none());
    }
    assert_eq!(server.get("/error").await.header("content-type"), Some("application/json"));
    assert_eq!(server.get("/response").await.header("content-type"), Some("text/csv"));
    server.stop().await;
}
