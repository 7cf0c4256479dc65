//! The request API: match info, query, headers, cookies, remote address, bodies within
//! `client_max_size`, streaming reads, extensions and urlencoded forms.

use serde::Deserialize;
use tandem_web::{Application, HttpError, Next, Request, Response, json_response};

use crate::support::{Server, form_counter, post_request};

#[tokio::test]
async fn query_headers_cookies_and_remote() {
    let mut app = Application::new();
    app.add_get("/inspect/{who}", |req: Request| async move {
        let multi: Vec<_> = req
            .headers()
            .get_all("x-multi")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        json_response(&serde_json::json!({
            "who": req.match_info("who"),
            "method": req.method().as_str(),
            "path": req.path(),
            "query_string": req.query_string(),
            "a": req.query_all("a").collect::<Vec<_>>(),
            "b": req.query_get("b"),
            "query_len": req.query().len(),
            "ua": req.header("USER-AGENT"),
            "multi": multi,
            "sid": req.cookie("sid"),
            "theme": req.cookie("theme"),
            "cookies": req.cookies().len(),
            "remote_ip": req.remote().map(|r| r.ip().to_string()),
            "keep_alive": req.keep_alive(),
            "version": format!("{:?}", req.version()),
        }))
    });
    let server = Server::start(app).await;
    let resp = server
        .request(
            b"GET /inspect/ann?a=1&a=2&b=x%20y&c HTTP/1.1\r\nHost: t\r\nuser-agent: probe/1\r\n\
              X-Multi: one\r\nx-multi: two\r\nCookie: sid=abc%20d; theme=\"dark\"\r\n\r\n",
        )
        .await;
    let json = resp.json();
    assert_eq!(json["who"], "ann");
    assert_eq!(json["method"], "GET");
    assert_eq!(json["path"], "/inspect/ann");
    assert_eq!(json["query_string"], "a=1&a=2&b=x%20y&c");
    assert_eq!(json["a"], serde_json::json!(["1", "2"]));
    assert_eq!(json["b"], "x y");
    assert_eq!(json["query_len"], 4);
    assert_eq!(json["ua"], "probe/1");
    assert_eq!(json["multi"], serde_json::json!(["one", "two"]));
    assert_eq!(json["sid"], "abc d");
    assert_eq!(json["theme"], "dark");
    assert_eq!(json["cookies"], 2);
    assert_eq!(json["remote_ip"], "127.0.0.1");
    assert_eq!(json["keep_alive"], true);
    assert_eq!(json["version"], "HTTP/1.1");
    server.stop().await;
}

#[derive(Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

fn body_app() -> Application {
    let mut app = Application::new();
    app.client_max_size(16);
    app.add_post("/read", |mut req: Request| async move {
        let first = req.read().await?;
        // Reading twice gives the same bytes.
        let second = req.read().await?;
        assert_eq!(first, second);
        Ok::<_, HttpError>(Response::bytes(first))
    });
    app.add_post("/text", |mut req: Request| async move { req.text().await.map(Response::text) });
    app.add_post("/json", |mut req: Request| async move {
        let p: Point = req.json().await?;
        Ok::<_, HttpError>(Response::text(format!("{}", p.x + p.y)))
    });
    app.add_post("/stream", |mut req: Request| async move {
        // `content()` is not limited by client_max_size, as in aiohttp.
        let (mut chunks, mut bytes) = (0, 0);
        while let Some(chunk) = req.content().chunk().await? {
            chunks += 1;
            bytes += chunk.len();
        }
        let trailers = req.content().trailers().map_or(0, http::HeaderMap::len);
        Ok::<_, HttpError>(Response::text(format!("{chunks} {bytes} {trailers}")))
    });
    app.add_post("/form", |mut req: Request| async move {
        let form = req.post().await?;
        let a: Vec<&str> = form.get_all("a").collect();
        Ok::<_, HttpError>(Response::text(format!("{a:?} {:?} {}", form.get("b"), form.len())))
    });
    app
}

#[tokio::test]
async fn bodies_within_client_max_size() {
    let server = Server::start(body_app()).await;
    let ok = server
        .request(&post_request("/read", "application/octet-stream", b"0123456789abcdef"))
        .await;
    assert_eq!((ok.status, ok.body.as_slice()), (200, &b"0123456789abcdef"[..]));

    let big = server
        .request(&post_request("/read", "application/octet-stream", b"0123456789abcdefX"))
        .await;
    assert_eq!(big.status, 413);
    assert!(big.text().contains("16"), "{}", big.text());

    // A chunked body over the limit is refused as it passes it.
    let chunked = server
        .request(b"POST /read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n1\r\nX\r\n0\r\n\r\n")
        .await;
    assert_eq!(chunked.status, 413);

    assert_eq!(
        server.request(&post_request("/text", "text/plain", "héllo".as_bytes())).await.text(),
        "héllo"
    );
    assert_eq!(server.request(&post_request("/text", "text/plain", b"\xff\xfe")).await.status, 400);
    assert_eq!(
        server
            .request(&post_request("/json", "application/json", br#"{"x":2,"y":3}"#))
            .await
            .text(),
        "5"
    );
    let invalid = server.request(&post_request("/json", "application/json", b"{nope")).await;
    assert_eq!(invalid.status, 400);
    assert!(!invalid.text().contains("nope"));

    let form = server
        .request(&post_request("/form", "application/x-www-form-urlencoded", b"a=1&b=x+y&a=2"))
        .await;
    assert_eq!(form.text(), r#"["1", "2"] Some("x y") 3"#);
    server.stop().await;
}

#[tokio::test]
async fn streaming_reads_are_not_limited() {
    let server = Server::start(body_app()).await;
    let mut request =
        b"POST /stream HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        request.extend_from_slice(b"14\r\n01234567890123456789\r\n");
    }
    request.extend_from_slice(b"0\r\nX-Sum: 60\r\n\r\n");
    let mut client = server.connect().await;
    // Sent in pieces, so the handler sees the body as it arrives.
    for piece in request.chunks(25) {
        client.send(piece).await;
    }
    let resp = client.response().await;
    let text = resp.text();
    let mut fields = text.split(' ');
    assert!(fields.next().unwrap().parse::<usize>().unwrap() >= 1);
    assert_eq!(fields.next(), Some("60"), "{text}");
    assert_eq!(fields.next(), Some("1"), "the trailer is seen");
    server.stop().await;
}

#[derive(Clone, Debug)]
struct User(String);

#[tokio::test]
async fn extensions_carry_values_from_middlewares() {
    let mut app = Application::new();
    app.middleware(|mut req: Request, next: Next| async move {
        let user = req.header("x-user").unwrap_or("guest").to_owned();
        req.extensions_mut().insert(User(user));
        next.run(req).await
    });
    app.add_get("/me", |req: Request| async move {
        Response::text(req.extensions().get::<User>().unwrap().0.clone())
    });
    let server = Server::start(app).await;
    assert_eq!(
        server.request(b"GET /me HTTP/1.1\r\nHost: t\r\nX-User: ann\r\n\r\n").await.text(),
        "ann"
    );
    assert_eq!(server.get("/me").await.text(), "guest");
    server.stop().await;
}

/// Without the `multipart` feature, `post()` answers a multipart form with 415 and still
/// reads urlencoded forms.
#[cfg(not(feature = "multipart"))]
#[tokio::test]
async fn multipart_forms_are_415_without_the_feature() {
    let mut app = Application::new();
    app.add_post("/form", |mut req: Request| async move {
        let form = req.post().await?;
        Ok::<_, HttpError>(Response::text(form.get("a").unwrap_or_default().to_owned()))
    });
    let server = Server::start(app).await;
    let multipart = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n";
    let resp = server
        .request(&post_request("/form", "multipart/form-data; boundary=b", multipart.as_bytes()))
        .await;
    assert_eq!(resp.status, 415);
    let resp =
        server.request(&post_request("/form", "application/x-www-form-urlencoded", b"a=2")).await;
    assert_eq!((resp.status, resp.text()), (200, "2".to_owned()));
    server.stop().await;
}

/// A form's fields are bounded in number as well as in bytes: each costs some bookkeeping
/// beyond its bytes, so 1 MiB of `a=&` (349 000 empty fields) took 66 MiB to hold; past
/// `max_form_fields` `post()` is a 413, counted as the fields are read.
#[tokio::test]
async fn urlencoded_fields_are_bounded_in_number() {
    let mut app = form_counter();
    app.max_form_fields(3);
    let server = Server::start(app).await;
    let urlencoded = "application/x-www-form-urlencoded";
    let at = server.request(&post_request("/form", urlencoded, b"a=1&b=2&a=3")).await;
    assert_eq!((at.status, at.text()), (200, "3 fields".to_owned()));
    let past = server.request(&post_request("/form", urlencoded, b"a=1&b=2&a=3&c=")).await;
    assert_eq!(past.status, 413, "{}", past.text());
    server.stop().await;

    let server = Server::start(form_counter()).await;
    let at = "a=&".repeat(tandem_web::DEFAULT_MAX_FORM_FIELDS);
    let at = server.request(&post_request("/form", urlencoded, at.as_bytes())).await;
    assert_eq!(at.status, 200, "{}", at.text());
    let flood = "a=&".repeat(349_000);
    let flood = server.request(&post_request("/form", urlencoded, flood.as_bytes())).await;
    assert_eq!(flood.status, 413, "{}", flood.text());
    server.stop().await;
}

/// A request's cookies are read up to `max_request_cookies`, which a sub-application
/// inherits; the pairs past it are skipped, whichever `Cookie` field they are in.
#[tokio::test]
async fn cookies_are_read_up_to_the_applications_bound() {
    let count = |req: Request| async move { Ok::<_, HttpError>(req.cookies().len().to_string()) };
    let mut sub = Application::new();
    sub.add_get("/count", count);
    let mut app = Application::new();
    app.max_request_cookies(3);
    app.add_get("/count", count);
    app.add_subapp("/sub", sub);
    let server = Server::start(app).await;
    for path in ["/count", "/sub/count"] {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nCookie: a=1; b=2\r\nCookie: c=3; d=4\r\n\r\n"
        );
        let resp = server.request(head.as_bytes()).await;
        assert_eq!((resp.status, resp.text()), (200, "3".to_owned()), "{path}");
    }
    server.stop().await;
}
