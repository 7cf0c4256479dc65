//! Redirects: history, limits, method rewriting, and credentials across origins
//! (`docs/security.md`, C40–C43).

use http::{Method, StatusCode};
use serde_json::{Value, json};
use tandem_web::{Application, Error, Request, Response, json_response};

use crate::support::{Server, session, within};

async fn echo(mut req: Request) -> Result<Response, Error> {
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        let entry = headers.entry(name.as_str().to_owned()).or_insert_with(|| json!([]));
        entry.as_array_mut().unwrap().push(json!(value.to_str().unwrap_or("?")));
    }
    let body = req.read().await?;
    Ok(json_response(&json!({
        "method": req.method().as_str(),
        "path": req.raw_path(),
        "query": req.query_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    })))
}

fn app() -> Application {
    let mut app = Application::new();
    app.add_route(None, "/echo", echo);
    app.add_get("/redirect/{n}", |req: Request| async move {
        let n: u32 = req.match_info("n").unwrap().parse().unwrap();
        if n == 0 {
            return Response::text("done");
        }
        Response::new(StatusCode::FOUND).with_header("location", &format!("/redirect/{}", n - 1))
    });
    app.add_get("/old-server", |_req: Request| async {
        Response::new(StatusCode::FOUND).with_header("uri", "/redirect/0")
    });
    app.add_get("/loop", |_req: Request| async {
        Response::new(StatusCode::FOUND).with_header("location", "/loop")
    });
    // `/r/{code}?to=URL`: any redirect status to any Location.
    app.add_route(None, "/r/{code}", |mut req: Request| async move {
        let _ = req.read().await;
        let code: u16 = req.match_info("code").unwrap().parse().unwrap();
        let to = req.query_get("to").unwrap().to_owned();
        Response::text("moved")
            .with_status(StatusCode::from_u16(code).unwrap())
            .with_header("location", &to)
    });
    app
}

fn redirect_url(server: &Server, code: u16, to: &str) -> String {
    let to: String = url::form_urlencoded::byte_serialize(to.as_bytes()).collect();
    server.url(&format!("/r/{code}?to={to}"))
}

#[tokio::test]
async fn follows_and_records_history() {
    let server = Server::start(app()).await;
    let s = session();
    let mut resp = within(s.get(&server.url("/redirect/3")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.url().path(), "/redirect/0");
    let hops: Vec<_> = resp.history().iter().map(|h| h.url().path().to_owned()).collect();
    assert_eq!(hops, ["/redirect/3", "/redirect/2", "/redirect/1"]);
    assert!(resp.history().iter().all(|h| h.status() == StatusCode::FOUND));
    assert_eq!(within(resp.text()).await.unwrap(), "done");

    let resp =
        within(s.get(&server.url("/redirect/3")).allow_redirects(false).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert!(resp.history().is_empty());
    // HEAD does not follow unless asked, as in aiohttp.
    let resp = within(s.head(&server.url("/redirect/1")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    server.stop().await;
}

#[tokio::test]
async fn loops_and_limits() {
    let server = Server::start(app()).await;
    let s = session();
    let e = within(s.get(&server.url("/loop")).send()).await.unwrap_err();
    assert!(e.is_too_many_redirects() && e.is_redirect(), "{e}");
    let e = within(s.get(&server.url("/redirect/3")).max_redirects(2).send()).await.unwrap_err();
    assert!(e.is_too_many_redirects());
    assert!(within(s.get(&server.url("/redirect/2")).max_redirects(2).send()).await.is_ok());
    for bad in ["file:///etc/passwd", "javascript:alert(1)", "http://[::1"] {
        let e = within(s.get(&redirect_url(&server, 302, bad)).send()).await.unwrap_err();
        assert!(e.is_invalid_url() && e.is_redirect(), "{bad}: {e}");
    }
    server.stop().await;
}

/// A `Location` is held to the rules of a URL the caller gives: a non-canonical IPv4 host
/// (`2130706433`, `017700000001`, `127.1`: 127.0.0.1 to the WHATWG parser), which aiohttp
/// 3.14.1 refuses, is an invalid redirect, absolute or scheme-relative, rather than
/// followed to the address it hides; the canonical form is followed.
#[tokio::test]
async fn a_location_with_a_non_canonical_ipv4_host_is_refused() {
    let server = Server::start(app()).await;
    let s = session();
    let port = server.addr.port();
    for host in ["2130706433", "017700000001", "127.1", "0x7f.0.0.1"] {
        for location in [format!("http://{host}:{port}/echo"), format!("//{host}:{port}/echo")] {
            let e = within(s.get(&redirect_url(&server, 302, &location)).send()).await.unwrap_err();
            assert!(e.is_invalid_url() && e.is_redirect(), "{location}: {e}");
        }
    }
    let canonical = format!("//127.0.0.1:{port}/echo");
    let resp = within(s.get(&redirect_url(&server, 302, &canonical)).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn methods_and_bodies_per_status() {
    let server = Server::start(app()).await;
    let s = session();
    let echo = server.url("/echo");
    for (code, method, expect_method, keeps_body) in [
        (301, Method::POST, "GET", false),
        (302, Method::POST, "GET", false),
        (303, Method::POST, "GET", false),
        (303, Method::PUT, "GET", false),
        (302, Method::PUT, "PUT", true),
        (307, Method::POST, "POST", true),
        (308, Method::PUT, "PUT", true),
    ] {
        let mut resp = within(
            s.request(method.clone(), &redirect_url(&server, code, &echo)).body("payload").send(),
        )
        .await
        .unwrap();
        let v: Value = within(resp.json()).await.unwrap();
        assert_eq!(v["method"], expect_method, "{code} {method}");
        if keeps_body {
            assert_eq!(v["body"], "payload", "{code} {method}");
            assert_eq!(v["headers"]["content-type"][0], "text/plain; charset=utf-8");
        } else {
            assert_eq!(v["body"], "", "{code} {method}");
            assert!(v["headers"].get("content-type").is_none(), "{code} {method}");
            assert!(v["headers"].get("content-length").is_none(), "{code} {method}");
        }
    }
    server.stop().await;
}

#[tokio::test]
#[allow(clippy::many_single_char_names)]
async fn credentials_are_dropped_across_origins_only() {
    let a = Server::start(app()).await;
    let b = Server::start(app()).await;
    let s = session();
    let send = |url: String| {
        s.get(&url)
            .header("Authorization", "Bearer one")
            .header("AUTHORIZATION", "Bearer two")
            .header("cookie", "c=1")
            .header("Proxy-Authorization", "Basic x")
            .header("x-keep", "1")
            .send()
    };
    // Same origin: everything kept.
    let mut resp = within(send(redirect_url(&a, 302, &a.url("/echo")))).await.unwrap();
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["headers"]["authorization"], json!(["Bearer one", "Bearer two"]));
    assert_eq!(v["headers"]["cookie"], json!(["c=1"]));
    // Another port is another origin: all copies dropped, in any case.
    for code in [302, 307] {
        let mut resp = within(send(redirect_url(&a, code, &b.url("/echo")))).await.unwrap();
        let v: Value = within(resp.json()).await.unwrap();
        let h = &v["headers"];
        assert!(h.get("authorization").is_none(), "{h}");
        assert!(h.get("cookie").is_none(), "{h}");
        assert!(h.get("proxy-authorization").is_none(), "{h}");
        assert_eq!(h["x-keep"], json!(["1"]));
    }
    // `localhost` and 127.0.0.1 are different hosts, so different origins.
    let other_host = b.url("/echo").replace("127.0.0.1", "localhost");
    let mut resp = within(send(redirect_url(&a, 302, &other_host))).await.unwrap();
    let v: Value = within(resp.json()).await.unwrap();
    assert!(v["headers"].get("authorization").is_none());
    a.stop().await;
    b.stop().await;
}

/// The session's own credential fields (`ClientSession::builder().header(...)`) are
/// credentials as much as a request's: a redirect to another origin leaves them behind, and
/// so does every later hop of that request, back at the first origin too (aiohttp merges the
/// session's fields into the request's and pops them there). Another request to the first
/// origin still sends them.
#[tokio::test]
async fn session_credential_fields_are_dropped_across_origins() {
    let a = Server::start(app()).await;
    let b = Server::start(app()).await;
    let s = tandem_client::ClientSession::builder()
        .header("Authorization", "Bearer session")
        .header("Cookie", "s=1")
        .header("Proxy-Authorization", "Basic s")
        .header("x-session", "kept")
        .build();
    let headers_at = |url: String| {
        let s = s.clone();
        async move {
            let mut resp = within(s.get(&url).send()).await.unwrap();
            let v: Value = within(resp.json()).await.unwrap();
            v["headers"].clone()
        }
    };
    let same = headers_at(redirect_url(&a, 302, &a.url("/echo"))).await;
    assert_eq!(same["authorization"], json!(["Bearer session"]), "{same}");
    assert_eq!(same["cookie"], json!(["s=1"]), "{same}");
    for code in [301, 302, 303, 307, 308] {
        let other = headers_at(redirect_url(&a, code, &b.url("/echo"))).await;
        for name in ["authorization", "cookie", "proxy-authorization"] {
            assert!(other.get(name).is_none(), "{code}: {name} reached another origin: {other}");
        }
        assert_eq!(other["x-session"], json!(["kept"]), "{other}");
    }
    // A -> B -> A: once dropped, not sent again on that request's later hops.
    let back = redirect_url(&b, 302, &a.url("/echo"));
    let back = headers_at(redirect_url(&a, 302, &back)).await;
    assert!(back.get("authorization").is_none(), "{back}");
    // The session itself is unchanged: the next request to A sends them.
    let again = headers_at(a.url("/echo")).await;
    assert_eq!(again["authorization"], json!(["Bearer session"]), "{again}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn streamed_bodies_are_sent_chunked_and_never_replayed() {
    let server = Server::start(app()).await;
    let s = session();
    let pieces = || {
        futures_util::stream::iter(
            ["one ", "two ", "three"].map(|p| Ok::<_, std::io::Error>(bytes::Bytes::from(p))),
        )
    };
    let mut resp = within(s.post(&server.url("/echo")).body_stream(pieces()).send()).await.unwrap();
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["body"], "one two three");
    assert_eq!(v["headers"]["transfer-encoding"], json!(["chunked"]));
    assert_eq!(v["headers"]["content-type"], json!(["application/octet-stream"]));

    // 303 drops the body, so a stream is fine; 307 would resend it, which it cannot.
    let to = server.url("/echo");
    let mut resp = within(s.post(&redirect_url(&server, 303, &to)).body_stream(pieces()).send())
        .await
        .unwrap();
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["method"], "GET");
    let e = within(s.post(&redirect_url(&server, 307, &to)).body_stream(pieces()).send())
        .await
        .unwrap_err();
    assert!(e.is_payload(), "{e}");

    // Another response's body, piped through.
    let source = within(s.get(&server.url("/redirect/0")).send()).await.unwrap();
    let mut resp =
        within(s.put(&server.url("/echo")).body_stream(source.into_stream()).send()).await.unwrap();
    let v: Value = within(resp.json()).await.unwrap();
    assert_eq!(v["body"], "done");
    server.stop().await;
}

/// Records trace events as short strings.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl tandem_client::Trace for Recorder {
    fn on_request_start(
        &self,
        _: &tandem_client::TraceRequestCtx,
        method: &Method,
        url: &url::Url,
        _: &http::HeaderMap,
    ) {
        self.0.lock().unwrap().push(format!("start {method} {}", url.path()));
    }
    fn on_connection_create(&self, _: &tandem_client::TraceRequestCtx, _: &tandem_client::Origin) {
        self.0.lock().unwrap().push("create".into());
    }
    fn on_connection_reuse(&self, _: &tandem_client::TraceRequestCtx, _: &tandem_client::Origin) {
        self.0.lock().unwrap().push("reuse".into());
    }
    fn on_request_redirect(
        &self,
        _: &tandem_client::TraceRequestCtx,
        _: &Method,
        _: &url::Url,
        status: StatusCode,
        to: &url::Url,
    ) {
        self.0.lock().unwrap().push(format!("redirect {} {}", status.as_u16(), to.path()));
    }
    fn on_request_end(
        &self,
        _: &tandem_client::TraceRequestCtx,
        _: &Method,
        url: &url::Url,
        status: StatusCode,
    ) {
        self.0.lock().unwrap().push(format!("end {} {}", status.as_u16(), url.path()));
    }
    fn on_request_exception(
        &self,
        _: &tandem_client::TraceRequestCtx,
        _: &Method,
        _: &url::Url,
        error: &tandem_client::Error,
    ) {
        self.0.lock().unwrap().push(format!("exception {}", error.kind_name()));
    }
}

#[tokio::test]
async fn trace_hooks_see_each_step() {
    let server = Server::start(app()).await;
    let recorder = std::sync::Arc::new(Recorder::default());
    let s = tandem_client::ClientSession::builder().trace(recorder.clone()).build();
    let mut resp = within(s.get(&server.url("/redirect/1")).send()).await.unwrap();
    within(resp.read()).await.unwrap();
    let e = within(s.get(&server.url("/loop")).max_redirects(0).send()).await.unwrap_err();
    assert!(e.is_too_many_redirects());
    let events = recorder.0.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "start GET /redirect/1",
            "create",
            "redirect 302 /redirect/0",
            "reuse",
            "end 200 /redirect/0",
            "start GET /loop",
            "reuse",
            "exception too-many-redirects",
        ]
    );
    server.stop().await;
}

/// `requote_redirect_url(false)` requests a `Location`'s path and query byte for byte; by
/// default they are re-encoded as the URL parser does (aiohttp's `requote_redirect_url`).
#[tokio::test]
async fn requote_redirect_url_false_keeps_the_servers_bytes() {
    let server = Server::start(app()).await;
    let start = redirect_url(&server, 302, "/echo?b='1'&c=%7e");
    let target = |s: tandem_client::ClientSession| {
        let start = start.clone();
        async move {
            let mut resp = within(s.get(&start).send()).await.unwrap();
            let echo: Value = within(resp.json()).await.unwrap();
            echo["query"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(target(session()).await, "b=%271%27&c=%7e");
    let exact = tandem_client::ClientSession::builder().requote_redirect_url(false).build();
    assert_eq!(target(exact).await, "b='1'&c=%7e");
}

/// A redirect that names its target in a `URI` field and no `Location` is followed, as
/// aiohttp follows one.
#[tokio::test]
async fn a_uri_field_is_followed_without_a_location() {
    let server = Server::start(app()).await;
    let mut resp = within(session().get(&server.url("/old-server")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.history().len(), 1);
    assert_eq!(within(resp.text()).await.unwrap(), "done");
    server.stop().await;
}

/// Under environment proxies (aiohttp's `trust_env`), each redirect hop chooses its proxy
/// again, so one proxy's credentials never reach another hop's proxy nor an origin reached
/// directly (`docs/security.md`, D54): an http hop through `http_proxy` redirected to a
/// `NO_PROXY` host goes there directly with no `Proxy-Authorization`, and one redirected to
/// https goes through `https_proxy` with that proxy's own credentials on its `CONNECT`.
#[tokio::test]
async fn a_redirect_that_changes_proxy_never_carries_the_old_ones_credentials() {
    use std::sync::{Arc, Mutex};

    use crate::support::{RawServer, read_request, write};

    let record = |seen: &Arc<Mutex<Vec<String>>>, head: Vec<u8>| {
        seen.lock().unwrap().push(String::from_utf8(head).unwrap().to_ascii_lowercase());
    };
    let direct_seen = Arc::new(Mutex::new(Vec::new()));
    let seen = direct_seen.clone();
    let direct = RawServer::start(move |mut stream, _| {
        let seen = seen.clone();
        async move {
            while let Some(head) = read_request(&mut stream).await {
                record(&seen, head);
                write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ndirect").await;
            }
        }
    })
    .await;
    let tunnel_seen = Arc::new(Mutex::new(Vec::new()));
    let seen = tunnel_seen.clone();
    let tunnel_proxy = RawServer::start(move |mut stream, _| {
        let seen = seen.clone();
        async move {
            if let Some(head) = read_request(&mut stream).await {
                record(&seen, head);
                write(&mut stream, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").await;
            }
        }
    })
    .await;
    let http_seen = Arc::new(Mutex::new(Vec::new()));
    let seen = http_seen.clone();
    let landing = format!("http://localhost:{}/landed", direct.addr.port());
    let plain_proxy = RawServer::start(move |mut stream, _| {
        let (seen, landing) = (seen.clone(), landing.clone());
        async move {
            while let Some(head) = read_request(&mut stream).await {
                let to_https = head.starts_with(b"GET http://first.invalid/secure ");
                record(&seen, head);
                let to = if to_https { "https://second.invalid/" } else { &landing };
                let answer =
                    format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n");
                write(&mut stream, answer.as_bytes()).await;
            }
        }
    })
    .await;
    let env = tandem_client::ProxyEnv::from_vars(|name| match name {
        "http_proxy" => Some(format!("http://hu:hp@127.0.0.1:{}", plain_proxy.addr.port())),
        "https_proxy" => Some(format!("http://su:sp@127.0.0.1:{}", tunnel_proxy.addr.port())),
        "no_proxy" => Some("localhost".to_owned()),
        _ => None,
    });
    let s = tandem_client::ClientSession::builder().proxy_env(env).build();

    let mut resp = within(s.get("http://first.invalid/").send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "direct");
    let proxied = http_seen.lock().unwrap()[0].clone();
    assert!(proxied.starts_with("get http://first.invalid/ http/1.1"), "{proxied}");
    assert!(proxied.contains("proxy-authorization: basic ahu6ahA=".to_ascii_lowercase().as_str()));
    let landed = direct_seen.lock().unwrap()[0].clone();
    assert!(landed.starts_with("get /landed http/1.1"), "{landed}");
    assert!(!landed.contains("proxy-authorization"), "{landed}");

    let e = within(s.get("http://first.invalid/secure").send()).await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    let connect = tunnel_seen.lock().unwrap()[0].clone();
    assert!(connect.starts_with("connect second.invalid:443 http/1.1"), "{connect}");
    assert!(connect.contains("proxy-authorization: basic c3u6c3a="), "{connect}");
}
