//! `Expect: 100-continue` per route (aiohttp's `expect_handler`, reference row 119): the
//! request is routed before `100 Continue` goes out, a route's handler may refuse it before
//! the body is sent, and nothing hidden in a body never asked for is ever dispatched.

use tandem_web::{Application, HttpError, Request, Response};
use tokio::io::AsyncWriteExt;

use crate::support::{Counter, Server, within};

/// `/upload` echoes its body and lets through only requests with `X-Allowed`; `/open`
/// echoes with the default check; `/ignore` answers without reading; `/secret` and the
/// middleware count what runs.
fn app(secret: &Counter, handled: &Counter) -> Application {
    let mut app = Application::new();
    let handled_mw = handled.clone();
    app.middleware(move |req: Request, next: tandem_web::Next| {
        handled_mw.hit();
        next.run(req)
    });
    let echo =
        |mut req: Request| async move { Ok::<_, HttpError>(Response::bytes(req.read().await?)) };
    app.add_post("/upload", echo).expect_handler(|req: Request| async move {
        (req.header("x-allowed").is_none()).then(|| HttpError::unauthorized().into_response())
    });
    app.add_post("/open", echo);
    app.add_post("/ignore", |_req: Request| async { HttpError::forbidden() });
    let secret = secret.clone();
    app.add_route(None, "/secret", move |_req: Request| {
        secret.hit();
        async { "secret" }
    });
    app
}

/// The head of a POST to `path` that waits for `100 Continue` before a 5-byte body.
fn expecting(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 35\r\nExpect: 100-continue\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// A body that is itself a request: served only if the server misreads the connection.
const SMUGGLED: &[u8] = b"GET /secret HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test]
async fn a_route_refuses_before_the_body_and_the_connection_closes() {
    let (secret, handled) = (Counter::default(), Counter::default());
    let server = Server::start(app(&secret, &handled)).await;
    let mut client = server.connect().await;
    client.send(&expecting("/upload", "")).await;
    // The refusal comes first, no 100 before it, and says the connection ends.
    let refused = client.response().await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("connection"), Some("close"));
    // A client that sends its body anyway: the bytes are never read as a request.
    assert_eq!(SMUGGLED.len(), 35 - 2);
    // The server may have closed already: the write may fail, and that is fine.
    let _ = client.stream.write_all(&[SMUGGLED, b"\r\n"].concat()).await;
    assert!(client.closes_quietly().await);
    assert_eq!(secret.get(), 0, "nothing after the refused request is dispatched");
    assert_eq!(handled.get(), 0, "the expect handler runs before the middlewares");
    server.stop().await;
}

#[tokio::test]
async fn a_route_that_lets_it_through_sends_100_then_reads_and_keeps_the_connection() {
    let (secret, handled) = (Counter::default(), Counter::default());
    let server = Server::start(app(&secret, &handled)).await;
    for path in ["/upload", "/open"] {
        let mut client = server.connect().await;
        client.send(&expecting(path, "X-Allowed: yes\r\n")).await;
        // Nothing of the body goes until the 100 arrives.
        assert_eq!(client.response().await.status, 100);
        client.send(SMUGGLED).await;
        client.send(b"\r\n").await;
        let echoed = client.response().await;
        assert_eq!(echoed.status, 200, "{path}");
        assert_eq!(echoed.body, [SMUGGLED, b"\r\n"].concat());
        // The body was read whole: the connection goes on.
        client.send(b"GET /secret HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(client.response().await.text(), "secret");
    }
    assert_eq!(secret.get(), 2, "only the two requests sent as requests");
    server.stop().await;
}

#[tokio::test]
async fn a_stream_response_cannot_be_prepared_in_the_expect_check() {
    let refused = Counter::default();
    let mut app = Application::new();
    let seen = refused.clone();
    let echo =
        |mut req: Request| async move { Ok::<_, HttpError>(Response::bytes(req.read().await?)) };
    app.add_post("/upload", echo).expect_handler(move |req: Request| {
        let seen = seen.clone();
        async move {
            if tandem_web::StreamResponse::new().prepare(&req).await.is_err() {
                seen.hit();
            }
            None
        }
    });
    let server = Server::start(app).await;
    let mut client = server.connect().await;
    client.send(&expecting("/upload", "")).await;
    assert_eq!(client.response().await.status, 100);
    client.send(SMUGGLED).await;
    client.send(b"\r\n").await;
    // The handler answers, not a head prepared before it ran.
    assert_eq!(client.response().await.body, [SMUGGLED, b"\r\n"].concat());
    assert_eq!(refused.get(), 1, "prepare in the check fails");
    server.stop().await;
}

#[tokio::test]
async fn a_handler_that_answers_without_reading_gets_the_body_drained() {
    let (secret, handled) = (Counter::default(), Counter::default());
    let server = Server::start(app(&secret, &handled)).await;
    let mut client = server.connect().await;
    client.send(&expecting("/ignore", "")).await;
    // Let through by the default check: 100, then the handler's answer.
    assert_eq!(client.response().await.status, 100);
    let answer = client.response().await;
    assert_eq!(answer.status, 403);
    assert_ne!(answer.header("connection"), Some("close"));
    // The body (a request in disguise) is drained, not dispatched; the next request is.
    client.send(SMUGGLED).await;
    client.send(b"\r\nGET /secret HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(client.response().await.text(), "secret");
    assert_eq!(secret.get(), 1);
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_expectation_is_417_before_any_route() {
    let (secret, handled) = (Counter::default(), Counter::default());
    let server = Server::start(app(&secret, &handled)).await;
    let mut client = server.connect().await;
    let head = b"POST /open HTTP/1.1\r\nHost: t\r\nContent-Length: 35\r\nExpect: teapot\r\n\r\n";
    client.send(head).await;
    let refused = client.response().await;
    assert_eq!(refused.status, 417);
    assert_eq!(refused.header("connection"), Some("close"));
    let _ = client.stream.write_all(SMUGGLED).await;
    assert!(client.closes_quietly().await);
    assert_eq!((secret.get(), handled.get()), (0, 0));
    server.stop().await;
}

/// Through tower layers the request becomes an `http::Request` and back: the route's check
/// still decides the `100`, refusing or letting through as without layers.
#[tokio::test]
async fn the_check_runs_through_tower_layers() {
    let (secret, handled) = (Counter::default(), Counter::default());
    let mut app = app(&secret, &handled);
    app.layer(tower_http::trace::TraceLayer::new_for_http());
    let server = Server::start(app).await;
    let mut client = server.connect().await;
    client.send(&expecting("/upload", "X-Allowed: yes\r\n")).await;
    assert_eq!(client.response().await.status, 100);
    client.send(&[SMUGGLED, b"\r\n"].concat()).await;
    assert_eq!(client.response().await.body, [SMUGGLED, b"\r\n"].concat());

    let mut refused = server.connect().await;
    refused.send(&expecting("/upload", "")).await;
    let answer = refused.response().await;
    assert_eq!((answer.status, answer.header("connection")), (401, Some("close")));
    assert_eq!((secret.get(), handled.get()), (0, 1));
    server.stop().await;
}

/// curl, an independent client, with the header set by hand as `curl -H` users do: the
/// refused upload never sends its body, the allowed one waits for the 100 and does.
#[tokio::test]
async fn curl_sends_the_body_only_when_the_route_lets_it() {
    let (secret, handled) = (Counter::default(), Counter::default());
    let server = Server::start(app(&secret, &handled)).await;
    let url = server.url("/upload");
    // A long expect timeout: a server that never answered would show as a slow test, and
    // a 100 that did not come as no "100 Continue" in the trace.
    let run = |allowed: bool| {
        let mut args = vec!["-sv", "--max-time", "10", "--expect100-timeout", "8"];
        args.extend([
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "hello",
            "-w",
            "\n%{size_upload}",
        ]);
        if allowed {
            args.extend(["-H", "X-Allowed: yes"]);
        }
        let url = url.clone();
        async move {
            let out = tokio::process::Command::new("curl").args(&args).arg(&url).output().await;
            out.expect("curl runs")
        }
    };
    let refused = within(run(false)).await;
    let (trace, out) =
        (String::from_utf8_lossy(&refused.stderr), String::from_utf8_lossy(&refused.stdout));
    assert!(trace.contains("< HTTP/1.1 401"), "{trace}");
    assert!(!trace.contains("100 Continue"), "{trace}");
    assert!(out.ends_with("\n0"), "no byte of the body was sent: {out}");

    let allowed = within(run(true)).await;
    let (trace, out) =
        (String::from_utf8_lossy(&allowed.stderr), String::from_utf8_lossy(&allowed.stdout));
    assert!(trace.contains("< HTTP/1.1 100 Continue"), "{trace}");
    assert!(trace.contains("< HTTP/1.1 200"), "{trace}");
    assert_eq!(out, "hello\n5");
    assert_eq!(handled.get(), 1, "only the allowed upload reached the middleware");
    server.stop().await;
}

/// HTTP/2 (h2c by prior knowledge): the same check runs; the `100` goes out as an
/// informational HEADERS frame when the route lets the request through (curl waits for it),
/// and a refusal is the response, with no `100` (nghttp: curl 7.88 reports a final answer
/// to a body it has not sent yet over HTTP/2 as an empty reply).
#[tokio::test]
async fn http2_runs_the_check_and_sends_100_when_let_through() {
    let (secret, handled) = (Counter::default(), Counter::default());
    let server = Server::start(app(&secret, &handled)).await;
    let url = server.url("/upload");
    let body = std::env::temp_dir().join(format!("tandem-expect-{}.txt", std::process::id()));
    std::fs::write(&body, "hello").expect("a temporary file");
    let body = body.to_str().expect("a UTF-8 path").to_owned();
    let nghttp = ["-v", "-H", "expect: 100-continue", "-d", &body, &url];
    let refused = within(tokio::process::Command::new("nghttp").args(nghttp).output()).await;
    let trace = String::from_utf8_lossy(&refused.expect("nghttp runs").stdout).into_owned();
    assert!(trace.contains(":status: 401"), "{trace}");
    assert!(!trace.contains(":status: 100"), "{trace}");
    let _ = std::fs::remove_file(&body);
    assert_eq!(handled.get(), 0, "refused before the middlewares");

    let mut curl = vec!["-sv", "--http2-prior-knowledge", "--max-time", "10"];
    curl.extend(["--expect100-timeout", "8", "-H", "Expect: 100-continue", "-H", "X-Allowed: 1"]);
    curl.extend(["--data-binary", "hello", &url]);
    let allowed = within(tokio::process::Command::new("curl").args(&curl).output()).await;
    let allowed = allowed.expect("curl runs");
    let trace = String::from_utf8_lossy(&allowed.stderr);
    assert!(trace.contains("< HTTP/2 100"), "{trace}");
    assert!(trace.contains("< HTTP/2 200"), "{trace}");
    assert_eq!(String::from_utf8_lossy(&allowed.stdout), "hello");
    assert_eq!(handled.get(), 1, "only the allowed upload reached the middleware");
    server.stop().await;
}
