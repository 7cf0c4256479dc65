//! Sessions against a Tandem server: request options, bodies, defaults, cookies, pooling.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use tandem_client::{ClientSession, CookieJar};
use tandem_web::{Application, CookieOptions, Error, Request, Response, json_response};

use crate::support::{ACCEPT_ENCODING, Server, session, within};

/// Echoes the request as JSON: method, path, query string, headers, body.
async fn echo(mut req: Request) -> Result<Response, Error> {
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        headers.insert(name.as_str().to_owned(), json!(value.to_str().unwrap_or("?")));
    }
    let body = req.read().await?;
    Ok(json_response(&json!({
        "method": req.method().as_str(),
        "path": req.raw_path(),
        "query": req.query_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "remote_port": req.remote().map(|a| a.port()),
    })))
}

fn app() -> Application {
    let mut app = Application::new();
    app.add_route(None, "/echo", echo);
    app.add_route(None, "/api/v1/echo", echo);
    app.add_get("/missing", |_req: Request| async {
        Response::text("nope").with_status(StatusCode::NOT_FOUND)
    });
    app.add_get("/text", |_req: Request| async { Response::text("plain") });
    app.add_get("/empty", |_req: Request| async { Response::new(StatusCode::NO_CONTENT) });
    app.add_get("/latin1", |_req: Request| async {
        let mut r = Response::bytes(&b"caf\xe9"[..]);
        r.set_content_type("text/plain; charset=ISO-8859-1").unwrap();
        r
    });
    // Bodies with a `Content-Type` that names no charset, for detection.
    for (path, body) in [
        ("/bare/latin1", &b"caf\xe9"[..]),
        ("/bare/utf8", "café".as_bytes()),
        ("/bare/utf16", &b"\xff\xfec\0a\0f\0\xe9\0"[..]),
    ] {
        app.add_get(path, move |_req: Request| async move {
            let mut r = Response::bytes(body);
            r.set_content_type("text/plain").unwrap();
            r
        });
    }
    app.add_get("/problem", |_req: Request| async {
        let mut r = Response::bytes(&br#"{"title":"x"}"#[..]);
        r.set_content_type("application/problem+json").unwrap();
        r
    });
    app.add_get("/big", |_req: Request| async { Response::bytes(vec![b'x'; 1 << 20]) });
    app.add_get("/set-cookie", |_req: Request| async {
        let mut r = Response::text("set");
        r.set_cookie("token", "abc", &CookieOptions::default())?;
        Ok::<_, Error>(r)
    });
    app
}

async fn echo_json(session: &ClientSession, req: tandem_client::RequestBuilder) -> Value {
    let _ = session;
    let mut resp = within(req.send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    within(resp.json::<Value>()).await.unwrap()
}

#[tokio::test]
async fn get_sends_defaults_query_and_headers() {
    let server = Server::start(app()).await;
    let s = session();
    let v = echo_json(
        &s,
        s.get(&server.url("/echo?x=0"))
            .query(&[("a", "1"), ("a", "2"), ("b", "x y&z")])
            .header("X-Custom", "yes"),
    )
    .await;
    assert_eq!(v["method"], "GET");
    assert_eq!(v["query"], "x=0&a=1&a=2&b=x+y%26z");
    let h = &v["headers"];
    assert_eq!(h["host"], server.addr.to_string());
    assert_eq!(h["user-agent"], tandem_client::USER_AGENT);
    assert_eq!(h["accept-encoding"], ACCEPT_ENCODING);
    assert_eq!(h["x-custom"], "yes");
    assert!(h.get("content-length").is_none());
    server.stop().await;
}

#[tokio::test]
async fn bodies_get_aiohttp_content_types() {
    let server = Server::start(app()).await;
    let s = session();
    let url = server.url("/echo");
    let v = echo_json(&s, s.post(&url).body("hello")).await;
    assert_eq!(v["body"], "hello");
    assert_eq!(v["headers"]["content-type"], "text/plain; charset=utf-8");
    assert_eq!(v["headers"]["content-length"], "5");
    let v = echo_json(&s, s.put(&url).body(vec![1u8, 2, 3])).await;
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["headers"]["content-type"], "application/octet-stream");
    let v = echo_json(&s, s.patch(&url).form(&[("a", "1 2"), ("a", "&")])).await;
    assert_eq!(v["body"], "a=1+2&a=%26");
    assert_eq!(v["headers"]["content-type"], "application/x-www-form-urlencoded");
    let v = echo_json(&s, s.post(&url).json(&json!({"k": [1, 2]}))).await;
    assert_eq!(v["body"], r#"{"k":[1,2]}"#);
    assert_eq!(v["headers"]["content-type"], "application/json");
    let v = echo_json(&s, s.post(&url)).await;
    assert_eq!(v["headers"]["content-length"], "0");
    let v = echo_json(&s, s.delete(&url)).await;
    assert_eq!(v["method"], "DELETE");
    let v = echo_json(&s, s.request(Method::OPTIONS, &url).header("content-type", "text/x")).await;
    assert_eq!(v["method"], "OPTIONS");
    server.stop().await;
}

#[tokio::test]
async fn basic_auth_and_url_credentials() {
    let server = Server::start(app()).await;
    let s = session();
    let v = echo_json(&s, s.get(&server.url("/echo")).basic_auth("user", "pass")).await;
    assert_eq!(v["headers"]["authorization"], "Basic dXNlcjpwYXNz");
    let url = format!("http://user:pa%20ss@{}/echo", server.addr);
    let v = echo_json(&s, s.get(&url)).await;
    assert_eq!(v["headers"]["authorization"], "Basic dXNlcjpwYSBzcw==");
    server.stop().await;
}

#[tokio::test]
async fn session_defaults_and_base_url() {
    let server = Server::start(app()).await;
    let s = ClientSession::builder()
        .base_url(&server.url("/api/"))
        .header("x-session", "1")
        .header("user-agent", "custom/1")
        .build();
    let v = echo_json(&s, s.get("v1/echo").header("x-session", "2")).await;
    assert_eq!(v["path"], "/api/v1/echo");
    assert_eq!(v["headers"]["x-session"], "2");
    assert_eq!(v["headers"]["user-agent"], "custom/1");
    server.stop().await;
}

#[tokio::test]
async fn connection_is_reused_only_after_the_body_is_read() {
    let server = Server::start(app()).await;
    let s = session();
    let url = server.url("/echo");
    let first = echo_json(&s, s.get(&url)).await["remote_port"].clone();
    let second = echo_json(&s, s.get(&url)).await["remote_port"].clone();
    assert_eq!(first, second, "a fully read keep-alive response gives its connection back");
    // A response dropped before its body is read closes its connection: the next request
    // needs a new one.
    let resp = within(s.get(&server.url("/big")).send()).await.unwrap();
    drop(resp);
    let third = echo_json(&s, s.get(&url)).await["remote_port"].clone();
    assert_ne!(third, first);
    // Read to its end, the big body gives the connection back.
    let mut resp = within(s.get(&server.url("/big")).send()).await.unwrap();
    assert_eq!(within(resp.read()).await.unwrap().len(), 1 << 20);
    let fourth = echo_json(&s, s.get(&url)).await["remote_port"].clone();
    assert_eq!(fourth, third);
    server.stop().await;
}

#[tokio::test]
async fn status_errors() {
    let server = Server::start(app()).await;
    let s = session();
    let resp = within(s.get(&server.url("/missing")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(!resp.ok());
    let e = resp.error_for_status().unwrap_err();
    assert!(e.is_status());
    assert_eq!(e.status(), Some(StatusCode::NOT_FOUND));
    assert!(e.url().unwrap().path().ends_with("/missing"));
    let strict = ClientSession::builder().raise_for_status(true).build();
    let e = within(strict.get(&server.url("/missing")).send()).await.unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::NOT_FOUND));
    let ok = within(strict.get(&server.url("/missing")).raise_for_status(false).send()).await;
    assert!(ok.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn text_and_json_decoding() {
    let server = Server::start(app()).await;
    let s = session();
    let mut resp = within(s.get(&server.url("/latin1")).send()).await.unwrap();
    assert_eq!(resp.charset().as_deref(), Some("ISO-8859-1"));
    assert_eq!(within(resp.text()).await.unwrap(), "café");
    let mut resp = within(s.get(&server.url("/text")).send()).await.unwrap();
    let e = within(resp.json::<Value>()).await.unwrap_err();
    assert!(e.is_decode());
    let mut resp = within(s.get(&server.url("/problem")).send()).await.unwrap();
    assert_eq!(within(resp.json::<Value>()).await.unwrap()["title"], "x");
    let mut resp = within(s.get(&server.url("/text")).send()).await.unwrap();
    assert!(within(resp.json_unchecked::<Value>()).await.unwrap_err().is_decode());
    // An empty body is aiohttp's `None`.
    let mut resp = within(s.get(&server.url("/empty")).send()).await.unwrap();
    assert_eq!(within(resp.json_unchecked::<Option<Value>>()).await.unwrap(), None);
    server.stop().await;
}

#[tokio::test]
async fn head_has_no_body() {
    let server = Server::start(app()).await;
    let s = session();
    let mut resp = within(s.head(&server.url("/big")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(within(resp.read()).await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn cookies_round_trip_through_the_jar() {
    let server = Server::start(app()).await;
    let s = session();
    let resp = within(s.get(&server.url("/set-cookie")).send()).await.unwrap();
    assert_eq!(resp.cookies()[0].name(), "token");
    let v = echo_json(&s, s.get(&server.url("/echo"))).await;
    assert_eq!(v["headers"]["cookie"], "token=abc");
    let url = url::Url::parse(&server.url("/")).unwrap();
    assert_eq!(s.cookie_jar().filter_cookies(&url), [("token".into(), "abc".into())]);
    // The default jar refuses IP hosts, as aiohttp's does.
    let safe = ClientSession::builder().cookie_jar(CookieJar::new()).build();
    within(safe.get(&server.url("/set-cookie")).send()).await.unwrap();
    assert!(safe.cookie_jar().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn invalid_urls_and_headers_fail_before_sending() {
    let s = session();
    for url in ["ftp://127.0.0.1/", "http://127.0.0.1/a\r\nX: y", "not a url", "http://127.1/"] {
        let e = within(s.get(url).send()).await.unwrap_err();
        assert!(e.is_invalid_url(), "{url}: {e}");
    }
    let e = within(s.get("http://127.0.0.1:9/").header("x", "a\r\nb").send()).await.unwrap_err();
    assert!(e.is_request(), "{e}");
    let e = within(s.get("http://127.0.0.1:9/").header("bad name", "x").send()).await.unwrap_err();
    assert!(e.is_request(), "{e}");
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = within(session().get(&format!("http://{addr}/")).send()).await.unwrap_err();
    assert!(e.is_connect(), "{e}");
    assert!(e.url().is_some());
}

#[tokio::test]
async fn request_info_and_per_request_cookies() {
    let server = Server::start(app()).await;
    let s = session();
    within(s.get(&server.url("/set-cookie")).send()).await.unwrap();
    let mut resp = within(s.get(&server.url("/echo")).cookie("one", "1").cookie("two", "2").send())
        .await
        .unwrap();
    let info = resp.request_info().clone();
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["headers"]["cookie"], "one=1; two=2; token=abc");
    assert_eq!(info.method(), Method::GET);
    assert_eq!(info.url().path(), "/echo");
    assert_eq!(info.headers()["cookie"], "one=1; two=2; token=abc");
    assert_eq!(info.headers()["user-agent"], tandem_client::USER_AGENT);
    let e = within(s.get(&server.url("/echo")).cookie("a;b", "1").send()).await.unwrap_err();
    assert!(e.is_request());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_the_pool() {
    let server = Server::start(app()).await;
    let s = session();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let s = s.clone();
        let url = server.url("/echo");
        tasks.push(tokio::spawn(async move {
            for j in 0..10 {
                let mut resp = s.get(&url).query(&[("n", format!("{i}-{j}"))]).send().await?;
                let v: Value = resp.json().await?;
                assert_eq!(v["query"], format!("n={i}-{j}"));
            }
            Ok::<_, tandem_client::Error>(())
        }));
    }
    for task in tasks {
        within(task).await.unwrap().unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn multipart_forms_reach_the_server() {
    use tandem_web::FormValue;
    let mut app = Application::new();
    app.add_post("/upload", |mut req: Request| async move {
        let mut out = Vec::new();
        for (name, value) in req.post().await? {
            out.push(match value {
                FormValue::Text(text) => format!("{name}={text}"),
                FormValue::Bytes(bytes) => format!("{name}=<{} bytes>", bytes.len()),
                FormValue::File(mut file) => {
                    let data = file.read_to_end().await?;
                    format!("{name}={}:{}:{}", file.filename(), file.content_type(), data.len())
                }
            });
        }
        Ok::<_, Error>(Response::text(out.join(";")))
    });
    let server = Server::start(app).await;
    let form = tandem_client::FormData::new().text("title", "hello world").file(
        "doc",
        "notes.bin",
        "application/octet-stream",
        vec![7u8; 100_000],
    );
    let mut resp =
        within(session().post(&server.url("/upload")).multipart(&form).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        within(resp.text()).await.unwrap(),
        "title=hello world;doc=notes.bin:application/octet-stream:100000"
    );
    server.stop().await;
}

#[tokio::test]
async fn json_serialize_hook_serialises_json_bodies() {
    let server = Server::start(app()).await;
    // A hook that marks its output, so the test sees it was used.
    let s = ClientSession::builder()
        .json_serialize(|value| Ok(format!("/*hook*/{}", serde_json::to_string(value)?)))
        .build();
    let url = server.url("/echo");
    let v = echo_json(&s, s.post(&url).json(&json!({"k": 1}))).await;
    assert_eq!(v["body"], r#"/*hook*/{"k":1}"#);
    assert_eq!(v["headers"]["content-type"], "application/json");
    // A failing hook fails the request with its error.
    let failing = ClientSession::builder().json_serialize(|_| Err("refused".into())).build();
    let e = within(failing.post(&url).json(&json!(1)).send()).await.unwrap_err();
    let why = std::error::Error::source(&e).map(ToString::to_string);
    assert_eq!(why.as_deref(), Some("refused"), "{e:?}");
    server.stop().await;
}

#[tokio::test]
async fn text_detects_the_charset_when_none_is_given() {
    let server = Server::start(app()).await;
    let text = |s: ClientSession, path: &'static str| {
        let url = server.url(path);
        async move {
            let mut resp = within(s.get(&url).send()).await.unwrap();
            assert_eq!(resp.charset(), None);
            within(resp.text()).await
        }
    };
    // Valid UTF-8 is UTF-8; a BOM decides; otherwise the default fallback is UTF-8, as
    // aiohttp's default resolver, and bytes invalid in it are an error, as aiohttp's
    // `errors="strict"`; `text_lossy` replaces them with U+FFFD.
    assert_eq!(text(session(), "/bare/utf8").await.unwrap(), "café");
    assert_eq!(text(session(), "/bare/utf16").await.unwrap(), "café");
    let invalid = text(session(), "/bare/latin1").await.unwrap_err();
    assert!(invalid.is_decode(), "{invalid:?}");
    assert_eq!(invalid.request_info().map(|r| r.url().path()), Some("/bare/latin1"));
    let mut resp = within(session().get(&server.url("/bare/latin1")).send()).await.unwrap();
    assert_eq!(within(resp.get_encoding()).await.unwrap(), "UTF-8");
    assert_eq!(within(resp.text_lossy()).await.unwrap(), "caf\u{fffd}");
    // A resolver is asked only for a body that is not UTF-8 and has no BOM.
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = asked.clone();
    let s = ClientSession::builder()
        .fallback_charset_resolver(move |resp, body| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(body, b"caf\xe9");
            "windows-1252".to_owned()
        })
        .build();
    assert_eq!(text(s.clone(), "/bare/latin1").await.unwrap(), "café");
    assert_eq!(text(s.clone(), "/bare/utf8").await.unwrap(), "café");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    let bad = ClientSession::builder().fallback_charset_resolver(|_, _| "no-such".into()).build();
    assert!(text(bad, "/bare/latin1").await.unwrap_err().is_decode());
    server.stop().await;
}

/// A server that answers every request with its request line as the body.
async fn request_line_server() -> crate::support::RawServer {
    crate::support::RawServer::start(|mut stream, _| async move {
        while let Some(req) = crate::support::read_request(&mut stream).await {
            let line = req.split(|&b| b == b'\r').next().unwrap().to_vec();
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", line.len());
            crate::support::write(&mut stream, &[head.as_bytes(), &line].concat()).await;
        }
    })
    .await
}

#[tokio::test]
async fn encoded_sends_the_path_and_query_as_written() {
    let server = request_line_server().await;
    let s = session();
    let line = |req: tandem_client::RequestBuilder| async move {
        let mut resp = within(req.send()).await.unwrap();
        within(resp.text()).await.unwrap()
    };
    let url = server.url("/a/%2e%2e/b/{x}/%7e?q='1'#frag");
    // Parsed as a WHATWG URL: dot segments (even encoded) removed, `{}` and `'` quoted,
    // other escapes kept as they are.
    assert_eq!(line(s.get(&url)).await, "GET /b/%7Bx%7D/%7e?q=%271%27 HTTP/1.1");
    assert_eq!(line(s.get(&url).encoded(true)).await, "GET /a/%2e%2e/b/{x}/%7e?q='1' HTTP/1.1");
    // Query pairs are appended, encoded, to the target as written.
    assert_eq!(
        line(s.get(&url).encoded(true).query(&[("k", "a b")])).await,
        "GET /a/%2e%2e/b/{x}/%7e?q='1'&k=a+b HTTP/1.1"
    );
    // A URL that parsing leaves alone is the same either way.
    assert_eq!(line(s.get(&server.url("/p?x=%2F")).encoded(true)).await, "GET /p?x=%2F HTTP/1.1");
    // Non-ASCII cannot go on the wire as is.
    let e = within(s.get(&server.url("/é")).encoded(true).send()).await.unwrap_err();
    assert!(e.is_request(), "{e}");
    assert_eq!(server.connections(), 1, "refused before connecting");
    assert_eq!(line(s.get(&server.url("/é"))).await, "GET /%C3%A9 HTTP/1.1");
}

/// Reads from `stream` until the end of a request head; returns the head and any bytes
/// that came after it in the same reads.
async fn read_head(stream: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return (String::from_utf8(buf).unwrap(), rest);
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the head ended");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn expect_continue_against_a_tandem_web() {
    let server = Server::start(app()).await;
    let s = session();
    let url = server.url("/echo");
    let v = echo_json(&s, s.post(&url).expect_continue(true).body("x".repeat(100_000))).await;
    assert_eq!(v["headers"]["expect"], "100-continue");
    assert_eq!(v["body"].as_str().unwrap().len(), 100_000);
    // The connection went back to the pool and serves the next request.
    let v = echo_json(&s, s.post(&url).expect_continue(true).body("again")).await;
    assert_eq!(v["body"], "again");
    let origin =
        tandem_client::Origin::new(tandem_client::Scheme::Http, "127.0.0.1", server.addr.port());
    assert_eq!(s.connector().stats_for(&origin).idle, 1);
    server.stop().await;
}

#[tokio::test]
async fn expect_continue_holds_the_body_until_100() {
    use tokio::io::AsyncReadExt;
    let server = crate::support::RawServer::start(|mut stream, _| async move {
        let (head, early) = read_head(&mut stream).await;
        assert!(head.to_ascii_lowercase().contains("expect: 100-continue"), "{head}");
        // Nothing of the body may come before the go-ahead.
        assert!(early.is_empty(), "body sent before 100 Continue");
        crate::support::write(&mut stream, b"HTTP/1.1 100 Continue\r\n\r\n").await;
        let mut body = vec![0; 5];
        stream.read_exact(&mut body).await.unwrap();
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}",
            String::from_utf8(body).unwrap()
        );
        crate::support::write(&mut stream, reply.as_bytes()).await;
    })
    .await;
    let s = session();
    let mut resp =
        within(s.post(&server.url("/")).expect_continue(true).body("hello").send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(within(resp.text()).await.unwrap(), "hello");
}

#[tokio::test]
async fn expect_continue_gets_an_early_final_status_without_sending_the_body() {
    use tokio::io::AsyncReadExt;
    let (sent, mut after) = tokio::sync::mpsc::unbounded_channel();
    let server = crate::support::RawServer::start(move |mut stream, _| {
        let sent = sent.clone();
        async move {
            let (_, early) = read_head(&mut stream).await;
            crate::support::write(
                &mut stream,
                b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 4\r\n\r\nnope",
            )
            .await;
            // Everything the client writes from here until it closes the connection.
            let mut rest = early;
            stream.read_to_end(&mut rest).await.unwrap();
            sent.send(rest).unwrap();
        }
    })
    .await;
    let s = session();
    let mut resp =
        within(s.post(&server.url("/")).expect_continue(true).body("x".repeat(1000)).send())
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::EXPECTATION_FAILED);
    assert_eq!(within(resp.text()).await.unwrap(), "nope");
    // The connection is not pooled (the server might still expect the body): it closes,
    // and no byte of the body was ever written.
    assert_eq!(within(after.recv()).await.unwrap(), b"");
}

#[tokio::test]
async fn expect_continue_sends_the_body_when_no_answer_comes() {
    use tokio::io::AsyncReadExt;
    // A server that ignores the expectation and just waits for the body.
    let server = crate::support::RawServer::start(|mut stream, _| async move {
        let (_, mut body) = read_head(&mut stream).await;
        let mut chunk = [0; 4096];
        while body.len() < 5 {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            body.extend_from_slice(&chunk[..n]);
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}",
            String::from_utf8(body).unwrap()
        );
        crate::support::write(&mut stream, reply.as_bytes()).await;
    })
    .await;
    let s = ClientSession::builder()
        .expect_continue_timeout(std::time::Duration::from_millis(50))
        .build();
    let mut resp =
        within(s.post(&server.url("/")).expect_continue(true).body("hello").send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "hello");
}
