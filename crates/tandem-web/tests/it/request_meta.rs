//! What a request says about itself: its URL, host and scheme, the addresses of its
//! transport, the client's address behind trusted proxies (and not from anyone else), body
//! metadata, text in its charset, and the conditional fields.

use tandem_web::{
    Application, ETag, ETagList, IfRange, Next, Overrides, ProxyHeaders, Request, Response,
    TrustedProxies, json_response,
};

use crate::support::Server;

/// An app whose one route reports what the request says about where it came from.
fn inspect_app(proxies: Option<TrustedProxies>) -> Application {
    let mut app = Application::new();
    if let Some(proxies) = proxies {
        app.middleware(proxies);
    }
    app.add_route(None, "/{tail:.*}", |req: Request| async move {
        json_response(&serde_json::json!({
            "url": req.url(),
            "host": req.host(),
            "scheme": req.scheme(),
            "secure": req.secure(),
            "path_qs": req.path_qs(),
            "remote": req.remote().map(|r| r.to_string()),
            "peer": req.peer_addr().map(|r| r.to_string()),
        }))
    });
    app
}

#[tokio::test]
async fn url_host_scheme_and_addresses_from_the_transport() {
    let server = Server::start(inspect_app(None)).await;
    let json = server
        .request(b"GET /a%20b/c?x=1&y=%2F HTTP/1.1\r\nHost: example.test:8080\r\n\r\n")
        .await
        .json();
    assert_eq!(json["url"], "http://example.test:8080/a%20b/c?x=1&y=%2F");
    assert_eq!(json["host"], "example.test:8080");
    assert_eq!(json["scheme"], "http");
    assert_eq!(json["secure"], false);
    assert_eq!(json["path_qs"], "/a%20b/c?x=1&y=%2F");
    assert_eq!(json["remote"], json["peer"]);
    assert!(json["peer"].as_str().unwrap().starts_with("127.0.0.1:"));

    // An absolute-form target: the path and query are its own, the host the Host field's.
    let json = server
        .request(b"GET http://other.test/p?q HTTP/1.1\r\nHost: other.test\r\n\r\n")
        .await
        .json();
    assert_eq!(json["path_qs"], "/p?q");
    assert_eq!(json["url"], "http://other.test/p?q");
    // HTTP/1.0 without a Host: the local address it came to, as aiohttp 3.13 (no port, no
    // reverse lookup); an absolute-form target's authority still comes first.
    let json = server.request(b"GET /x HTTP/1.0\r\n\r\n").await.json();
    assert_eq!(json["host"], "127.0.0.1");
    assert_eq!(json["url"], "http://127.0.0.1/x");
    let json = server.request(b"GET http://named.test/x HTTP/1.0\r\n\r\n").await.json();
    assert_eq!(json["host"], "named.test");
    server.stop().await;
}

const SPOOF: &[u8] = b"GET /who HTTP/1.1\r\nHost: inside:8000\r\n\
    X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\nX-Forwarded-Proto: https\r\n\
    X-Forwarded-Host: shop.example.com\r\n\
    Forwarded: for=6.6.6.6;proto=https;host=evil.example\r\n\r\n";

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_change_nothing() {
    // Not configured at all, and configured for another network: the loopback client is
    // not a trusted proxy, so whatever it claims is ignored.
    for proxies in [None, Some(TrustedProxies::new(["10.0.0.0/8"]).unwrap())] {
        let server = Server::start(inspect_app(proxies)).await;
        let json = server.request(SPOOF).await.json();
        assert!(json["remote"].as_str().unwrap().starts_with("127.0.0.1:"), "{json}");
        assert_eq!(json["scheme"], "http");
        assert_eq!(json["host"], "inside:8000");
        assert_eq!(json["url"], "http://inside:8000/who");
        server.stop().await;
    }
}

#[tokio::test]
async fn x_forwarded_headers_from_a_trusted_proxy_name_the_client() {
    let proxies = TrustedProxies::new(["127.0.0.1", "10.0.0.0/8"]).unwrap();
    let server = Server::start(inspect_app(Some(proxies))).await;
    // nginx appended the client's address to what the client claimed: the rightmost
    // address that is not a trusted proxy is the client, and 6.6.6.6 is never reached.
    let json = server.request(SPOOF).await.json();
    assert_eq!(json["remote"], "203.0.113.7:0");
    assert!(json["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(json["scheme"], "https");
    assert_eq!(json["secure"], true);
    assert_eq!(json["host"], "shop.example.com");
    assert_eq!(json["url"], "https://shop.example.com/who");

    // Two proxies: the inner one (10.1.2.3) is trusted, so the hop before it is the client;
    // a client claiming to be a trusted address at the far left is still only a claim.
    let json = server
        .request(
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.9.9.9, 198.51.100.1\r\n\
              X-Forwarded-For: 10.1.2.3\r\n\r\n",
        )
        .await
        .json();
    assert_eq!(json["remote"], "198.51.100.1:0");
    // Only trusted hops: the leftmost is the client.
    let json = server
        .request(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.5, 10.1.2.3\r\n\r\n")
        .await
        .json();
    assert_eq!(json["remote"], "10.0.0.5:0");

    // From a trusted proxy, a header that does not parse is refused, not half-believed.
    for bad in [
        &b"X-Forwarded-For: 1.2.3.4, not-an-ip\r\n"[..],
        b"X-Forwarded-Proto: javascript\r\n",
        b"X-Forwarded-Host: evil.com/path\r\n",
        b"X-Forwarded-Host: a b\r\n",
    ] {
        let request = [&b"GET / HTTP/1.1\r\nHost: h\r\n"[..], bad, b"\r\n"].concat();
        let resp = server.request(&request).await;
        assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(bad));
    }
    // A junk address left of the client is never read.
    let json = server
        .request(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: <script>, 203.0.113.9\r\n\r\n")
        .await
        .json();
    assert_eq!(json["remote"], "203.0.113.9:0");
    server.stop().await;
}

#[tokio::test]
async fn forwarded_from_a_trusted_proxy_and_its_limit() {
    let proxies = TrustedProxies::new(["127.0.0.1", "10.0.0.0/8"])
        .unwrap()
        .headers(ProxyHeaders::Forwarded)
        .max_elements(3);
    let mut app = inspect_app(Some(proxies));
    app.add_get("/elements", |req: Request| async move {
        let elements = req.forwarded()?;
        let fors: Vec<_> =
            elements.iter().map(|e| e.get("for").unwrap_or("-").to_owned()).collect();
        Ok::<_, tandem_web::HttpError>(Response::text(fors.join(" ")))
    });
    let server = Server::start(app).await;
    let json = server
        .request(
            b"GET /x HTTP/1.1\r\nHost: inside\r\nX-Forwarded-For: 6.6.6.6\r\n\
              Forwarded: for=6.6.6.6;host=evil.example, for=\"[2001:db8::7]:4711\";proto=https;host=shop.example\r\n\
              Forwarded: for=10.0.0.2;proto=http;host=lb.internal\r\n\r\n",
        )
        .await
        .json();
    assert_eq!(json["remote"], "[2001:db8::7]:4711");
    assert_eq!(json["scheme"], "https");
    assert_eq!(json["host"], "shop.example");
    // An obfuscated client: the nearest trusted hop is as far as anyone can tell.
    let json = server
        .request(b"GET /x HTTP/1.1\r\nHost: inside\r\nForwarded: for=_hidden, for=10.0.0.2\r\n\r\n")
        .await
        .json();
    assert_eq!(json["remote"], "10.0.0.2:0");
    for bad in [
        &b"Forwarded: for=1.2.3.4;for=5.6.7.8\r\n"[..],
        b"Forwarded: for=\"1.2.3.4\r\n",
        b"Forwarded: for=1.2.3.4;proto=gopher\r\n",
        b"Forwarded: for=1.1.1.1, for=1.1.1.2, for=1.1.1.3, for=1.1.1.4\r\n",
    ] {
        let request = [&b"GET /x HTTP/1.1\r\nHost: h\r\n"[..], bad, b"\r\n"].concat();
        assert_eq!(server.request(&request).await.status, 400, "{}", String::from_utf8_lossy(bad));
    }
    // `forwarded()` itself, for any peer: every element in order.
    let resp = server
        .request(b"GET /elements HTTP/1.1\r\nHost: h\r\nForwarded: for=a;by=b, For=\"_c\"\r\n\r\n")
        .await;
    assert_eq!(resp.text(), "a _c");
    server.stop().await;
}

#[tokio::test]
async fn clone_with_replaces_what_the_transport_said() {
    let mut app = inspect_app(None);
    app.middleware(|mut req: Request, next: Next| async move {
        let overrides = Overrides::new()
            .scheme("https")
            .host("api.example")
            .remote("192.0.2.1:1234".parse().unwrap())
            .client_max_size(4);
        next.run(req.clone_with(overrides)).await
    });
    app.add_post(
        "/limited",
        |mut req: Request| async move { req.read().await.map(Response::bytes) },
    );
    let server = Server::start(app).await;
    let json = server.get("/x").await.json();
    assert_eq!(json["url"], "https://api.example/x");
    assert_eq!(json["remote"], "192.0.2.1:1234");
    assert!(json["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let resp = server
        .request(b"POST /limited HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    assert_eq!(resp.status, 413);
    let resp =
        server.request(b"POST /limited HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nhell").await;
    assert_eq!(resp.text(), "hell");
    server.stop().await;
}

/// `can_read_body` follows a body streamed through `content()`: true until its end has been
/// read, then false, as aiohttp's follows `content.at_eof()`; on HTTP/1.1 and through tower.
#[tokio::test]
async fn can_read_body_is_false_once_content_is_read_to_its_end() {
    let mut app = Application::new();
    app.add_post("/stream", |mut req: Request| async move {
        let mut seen = vec![req.can_read_body()];
        let mut bytes = 0;
        while let Some(chunk) = req.content().chunk().await? {
            bytes += chunk.len();
        }
        seen.push(req.can_read_body());
        Ok::<_, tandem_web::HttpError>(Response::text(format!("{seen:?} {bytes}")))
    });
    let server = Server::start(app).await;
    let framed =
        server.request(b"POST /stream HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello").await;
    assert_eq!(framed.text(), "[true, false] 5");
    let chunked = server
        .request(b"POST /stream HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
        .await;
    assert_eq!(chunked.text(), "[true, false] 2");
    server.stop().await;

    // A body that came through tower (any `http_body::Body`), not from the connection.
    let mut app = Application::new();
    app.add_post("/stream", |mut req: Request| async move {
        let before = req.can_read_body();
        while req.content().chunk().await.ok().flatten().is_some() {}
        Response::text(format!("{before} {}", req.can_read_body()))
    });
    let app = app.freeze().expect("the app freezes");
    let request = http::Request::post("/stream")
        .header("host", "h")
        .header("content-length", "5")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"hello")))
        .unwrap();
    let response = app.handle(request).await;
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    assert_eq!(&body[..], b"true false");
}

#[tokio::test]
async fn body_metadata_and_text_in_its_charset() {
    let mut app = Application::new();
    app.add_route(None, "/meta", |mut req: Request| async move {
        let before = req.can_read_body();
        let text = req.text().await;
        json_response(&serde_json::json!({
            "content_length": req.content_length(),
            "charset": req.charset(),
            "body_exists": req.body_exists(),
            "can_read_before": before,
            "can_read_after": req.can_read_body(),
            "text": text.as_ref().ok(),
            "status": text.as_ref().err().map(|e| e.status().as_u16()),
        }))
    });
    let server = Server::start(app).await;
    let json = server
        .request(
            b"POST /meta HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain; Charset=\"ISO-8859-1\"\r\n\
              Content-Length: 4\r\n\r\ncaf\xe9",
        )
        .await
        .json();
    assert_eq!(json["content_length"], 4);
    assert_eq!(json["charset"], "iso-8859-1");
    assert_eq!(json["body_exists"], true);
    assert_eq!(json["can_read_before"], true);
    assert_eq!(json["can_read_after"], false);
    #[cfg(feature = "multipart")]
    assert_eq!(json["text"], "café");
    #[cfg(not(feature = "multipart"))]
    assert_eq!(json["status"], 415);

    // No charset: UTF-8, and bytes that are not UTF-8 are a 400, never replaced.
    let json = server
        .request(b"POST /meta HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\ncaf\xe9")
        .await
        .json();
    assert_eq!(json["charset"], serde_json::Value::Null);
    assert_eq!(json["status"], 400);
    let json = server
        .request(b"POST /meta HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain; charset=klingon\r\nContent-Length: 1\r\n\r\nx")
        .await
        .json();
    assert_eq!(json["status"], 415);
    // Chunked: no length, a body all the same.
    let json = server
        .request(b"POST /meta HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
        .await
        .json();
    assert_eq!(json["content_length"], serde_json::Value::Null);
    assert_eq!(json["text"], "hi");
    let json = server.get("/meta").await.json();
    assert_eq!(json["body_exists"], false);
    assert_eq!(json["can_read_before"], false);
    server.stop().await;
}

#[tokio::test]
async fn conditional_fields_parsed() {
    let mut app = Application::new();
    app.add_get("/doc", |req: Request| async move {
        let current = ETag::strong("v2").unwrap();
        if req.if_none_match().is_some_and(|list| list.matches(&current, true)) {
            return Response::text("").with_status(http::StatusCode::NOT_MODIFIED);
        }
        let since = req.if_modified_since().map(httpdate::fmt_http_date);
        let unmodified = req.if_unmodified_since().map(httpdate::fmt_http_date);
        let if_match = req.if_match().map(|list| match list {
            ETagList::Any => vec!["*".to_owned()],
            ETagList::Tags(tags) => tags.iter().map(ToString::to_string).collect(),
        });
        let if_range = req.if_range().map(|r| match r {
            IfRange::ETag(tag) => tag.to_string(),
            IfRange::Date(date) => httpdate::fmt_http_date(date),
        });
        json_response(&serde_json::json!({
            "since": since, "unmodified": unmodified, "if_match": if_match, "if_range": if_range,
        }))
        .with_header("etag", &current.to_string())
    });
    let server = Server::start(app).await;
    let resp = server
        .request(b"GET /doc HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"v1\", W/\"v2\"\r\n\r\n")
        .await;
    assert_eq!(resp.status, 304);
    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    let request = format!(
        "GET /doc HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"v1\"\r\nIf-Modified-Since: {date}\r\n\
         If-Unmodified-Since: yesterday\r\nIf-Match: W/\"a\", \"b\"\r\nIf-Range: \"v2\"\r\n\r\n"
    );
    let resp = server.request(request.as_bytes()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("etag"), Some("\"v2\""));
    let json = resp.json();
    assert_eq!(json["since"], date);
    assert_eq!(json["unmodified"], serde_json::Value::Null, "a malformed date is ignored");
    assert_eq!(json["if_match"], serde_json::json!(["W/\"a\"", "\"b\""]));
    assert_eq!(json["if_range"], "\"v2\"");
    let request =
        format!("GET /doc HTTP/1.1\r\nHost: h\r\nIf-Match: *\r\nIf-Range: {date}\r\n\r\n");
    let json = server.request(request.as_bytes()).await.json();
    assert_eq!(json["if_match"], serde_json::json!(["*"]));
    assert_eq!(json["if_range"], date);
    server.stop().await;
}

#[tokio::test]
async fn a_form_read_by_a_middleware_is_there_for_the_handler() {
    let mut app = Application::new();
    app.middleware(|mut req: Request, next: Next| async move {
        let form = match req.post().await {
            Ok(form) => form,
            Err(err) => return err.into_response(),
        };
        if form.get("token") != Some("t0k") {
            return Response::text("no token").with_status(http::StatusCode::FORBIDDEN);
        }
        next.run(req).await
    });
    app.add_post("/upload", |mut req: Request| async move {
        let mut form = req.post().await?;
        let user = form.get("user").unwrap_or_default().to_owned();
        let data = match form.file_mut("doc") {
            Some(file) => file.read_to_end().await?,
            None => Vec::new(),
        };
        // A third read is as whole as the second.
        let mut again = req.post().await?;
        if let Some(file) = again.file_mut("doc") {
            assert_eq!(file.read_to_end().await?, data);
        }
        Ok::<_, tandem_web::Error>(Response::text(format!(
            "{user} {}",
            String::from_utf8_lossy(&data)
        )))
    });
    let server = Server::start(app).await;
    let body = "--b\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nt0k\r\n\
                --b\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nann\r\n\
                --b\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\n\r\nfile data\r\n\
                --b--\r\n";
    let request =
        crate::support::post_request("/upload", "multipart/form-data; boundary=b", body.as_bytes());
    let resp = server.request(&request).await;
    #[cfg(feature = "multipart")]
    assert_eq!(resp.text(), "ann file data");
    #[cfg(not(feature = "multipart"))]
    assert_eq!(resp.status, 415);
    let request = crate::support::post_request(
        "/upload",
        "application/x-www-form-urlencoded",
        b"token=t0k&user=bob",
    );
    let resp = server.request(&request).await;
    assert_eq!(resp.text(), "bob ");
    let request =
        crate::support::post_request("/upload", "application/x-www-form-urlencoded", b"token=bad");
    assert_eq!(server.request(&request).await.status, 403);
    server.stop().await;
}
