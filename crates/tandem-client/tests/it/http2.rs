//! HTTP/2 against Tandem's own server (h2c by prior knowledge, and h2 over TLS by ALPN):
//! every way of reading a response, request bodies within flow control, the server's stream
//! limit, redirects between versions, timeouts; and against the `h2` crate's raw server for
//! GOAWAY and broken responses.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{StatusCode, Version};
use tandem_client::{ClientSession, ClientTimeout, Connector, CookieJar, Http2, Origin, Scheme};
#[cfg(feature = "tls")]
use tandem_client::{ResponseInfo, TlsConfig};
use tandem_web::{
    AppRunner, Application, CookieOptions, Http2Config, HttpError, Request, Response, ServerConfig,
};
use tokio::sync::watch;

use crate::support::{Server, within};

/// A body larger than both of the server's receive windows (256 KiB and 1 MiB), so that
/// it goes out only as the server reads.
const LARGE: usize = 3 * 1024 * 1024;

fn large_body() -> Vec<u8> {
    (0..LARGE).map(|i| (i % 251) as u8).collect()
}

/// The routes every test here uses.
fn app() -> Application {
    let mut app = Application::new();
    app.client_max_size(8 * 1024 * 1024);
    app.add_get("/text", |req: Request| async move {
        Response::text(format!("hello over {:?}", req.version()))
    });
    app.add_get("/json", |_req: Request| async { tandem_web::json_response(&[1, 2, 3]) });
    app.add_get("/large", |_req: Request| async {
        let pieces: Vec<Result<Bytes, tandem_web::Error>> =
            large_body().chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Response::stream(futures_util::stream::iter(pieces))
    });
    app.add_get("/compressed", |_req: Request| async {
        let mut resp = Response::text("squeeze me ".repeat(1000));
        resp.enable_compression();
        resp
    });
    app.add_get("/cookie/set", |_req: Request| async {
        let mut resp = Response::text("set");
        resp.set_cookie("flavour", "h2", &CookieOptions::default()).unwrap();
        resp
    });
    app.add_get("/cookie/get", |req: Request| async move {
        Response::text(req.cookie("flavour").unwrap_or("none").to_owned())
    });
    app.add_post("/echo", |mut req: Request| async move {
        Ok::<_, HttpError>(Response::bytes(req.read().await?))
    });
    app.add_get("/redirect", |req: Request| async move {
        Err::<Response, _>(HttpError::found(req.query_get("to").unwrap_or("/text")))
    });
    app.add_get("/stall", |_req: Request| async {
        let first = futures_util::stream::iter([Ok(Bytes::from_static(b"first"))]);
        let never = futures_util::stream::pending::<Result<Bytes, tandem_web::Error>>();
        Response::stream(first.chain(never))
    });
    app
}

fn prior_knowledge() -> ClientSession {
    ClientSession::builder()
        .http2(Http2::PriorKnowledge)
        .cookie_jar(CookieJar::unsafe_hosts())
        .build()
}

fn origin(addr: SocketAddr) -> Origin {
    Origin::new(Scheme::Http, "127.0.0.1", addr.port())
}

#[tokio::test]
async fn h2c_by_prior_knowledge_reads_every_way() {
    let server = Server::start(app()).await;
    let s = prior_knowledge();

    let mut resp = within(s.get(&server.url("/text")).send()).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.reason(), "OK");
    assert_eq!(within(resp.text()).await.unwrap(), "hello over HTTP/2.0");

    let mut resp = within(s.get(&server.url("/json")).send()).await.unwrap();
    assert_eq!(within(resp.json::<Vec<u32>>()).await.unwrap(), [1, 2, 3]);

    // Streamed, piece by piece, larger than the client's windows allow at once.
    let mut resp = within(s.get(&server.url("/large")).send()).await.unwrap();
    let mut got = Vec::new();
    while let Some(piece) = within(resp.content().chunk()).await.unwrap() {
        got.extend_from_slice(&piece);
    }
    assert!(got == large_body(), "the streamed body differs");

    #[cfg(feature = "compression")]
    {
        let mut resp = within(s.get(&server.url("/compressed")).send()).await.unwrap();
        assert!(resp.headers().contains_key("content-encoding"));
        assert_eq!(within(resp.text()).await.unwrap(), "squeeze me ".repeat(1000));
        assert!(resp.content().total_raw_bytes() < 1000);
    }

    within(s.get(&server.url("/cookie/set")).send()).await.unwrap();
    let mut resp = within(s.get(&server.url("/cookie/get")).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "h2");

    // A whole body and a streamed one, each larger than the server's windows.
    let mut resp = within(s.post(&server.url("/echo")).body(large_body()).send()).await.unwrap();
    assert!(within(resp.read()).await.unwrap() == large_body());
    let pieces: Vec<Result<Bytes, std::io::Error>> =
        large_body().chunks(100_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let streamed = s.post(&server.url("/echo")).body_stream(futures_util::stream::iter(pieces));
    let mut resp = within(streamed.send()).await.unwrap();
    assert!(within(resp.read()).await.unwrap() == large_body());

    let resp = within(s.head(&server.url("/text")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // All of it on one connection, idle now.
    let stats = s.connector().stats_for(&origin(server.addr));
    assert_eq!((stats.idle, stats.active, stats.streams), (1, 0, 0));
    server.stop().await;
}

/// A response dropped half read resets its stream only: the connection carries on.
#[tokio::test]
async fn a_body_dropped_half_read_resets_only_its_stream() {
    let server = Server::start(app()).await;
    let s = prior_knowledge();
    let mut resp = within(s.get(&server.url("/large")).send()).await.unwrap();
    within(resp.content().chunk()).await.unwrap();
    drop(resp);
    let mut resp = within(s.get(&server.url("/text")).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "hello over HTTP/2.0");
    let stats = s.connector().stats_for(&origin(server.addr));
    assert_eq!((stats.idle, stats.active), (1, 0));
    server.stop().await;
}

#[tokio::test]
async fn timeouts_by_phase_apply_to_streams() {
    let server = Server::start(app()).await;
    let s = prior_knowledge();
    let timeout = ClientTimeout::NONE.with_sock_read(Duration::from_millis(100));
    let mut resp = within(s.get(&server.url("/stall")).timeout(timeout).send()).await.unwrap();
    assert_eq!(within(resp.content().chunk()).await.unwrap().as_deref(), Some(&b"first"[..]));
    let e = within(resp.content().chunk()).await.unwrap_err();
    assert_eq!(e.timeout_phase(), Some(tandem_client::Phase::SockRead), "{e}");

    let timeout = ClientTimeout::NONE.with_total(Duration::from_millis(100));
    let mut resp = within(s.get(&server.url("/stall")).timeout(timeout).send()).await.unwrap();
    let e = within(resp.read()).await.unwrap_err();
    assert_eq!(e.timeout_phase(), Some(tandem_client::Phase::Total), "{e}");

    // The stalled streams were reset; the connection still serves.
    let mut resp = within(s.get(&server.url("/text")).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "hello over HTTP/2.0");
    server.stop().await;
}

/// The server allows two streams; five requests at once under `limit_per_host(1)` go on
/// one connection, which counts once, no more than two run at a time, and all succeed.
#[tokio::test]
async fn five_requests_under_a_stream_limit_of_two_share_one_connection() {
    let (running, watch_running) = watch::channel(0usize);
    let (release, released) = watch::channel(false);
    let peers = Arc::new(Mutex::new(HashSet::new()));
    let most = Arc::new(Mutex::new(0usize));
    let mut app = Application::new();
    let (seen, high) = (peers.clone(), most.clone());
    app.add_get("/held", move |req: Request| {
        let (running, mut released) = (running.clone(), released.clone());
        let (seen, high) = (seen.clone(), high.clone());
        async move {
            seen.lock().unwrap().insert(req.remote());
            running.send_modify(|n| *n += 1);
            let now = *running.borrow();
            {
                let mut high = high.lock().unwrap();
                *high = (*high).max(now);
            }
            let _ = released.wait_for(|r| *r).await;
            running.send_modify(|n| *n -= 1);
            Response::text("done")
        }
    });
    let config = ServerConfig::default()
        .with_stderr_log(false)
        .with_http2(Http2Config::default().with_max_concurrent_streams(2));
    let mut runner = AppRunner::with_config(app, config).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tcp_site("127.0.0.1", 0).await.unwrap();
    let connector = Connector::builder().limit_per_host(1).build();
    let s = ClientSession::builder().http2(Http2::PriorKnowledge).connector(connector).build();
    let url = format!("http://{addr}/held");
    // One exchange first, so the client has heard the server's limit.
    release.send_replace(true);
    within(s.get(&url).send()).await.unwrap().read().await.unwrap();
    release.send_replace(false);

    let requests: Vec<_> = (0..5)
        .map(|_| {
            let (s, url) = (s.clone(), url.clone());
            tokio::spawn(async move { s.get(&url).send().await?.text().await })
        })
        .collect();
    let mut watch_running = watch_running;
    within(watch_running.wait_for(|n| *n == 2)).await.unwrap();
    let stats = s.connector().stats_for(&origin(addr));
    assert_eq!((stats.active, stats.streams), (1, 5), "one connection carries all five");
    release.send_replace(true);
    for request in requests {
        assert_eq!(within(request).await.unwrap().unwrap(), "done");
    }
    assert_eq!(*most.lock().unwrap(), 2, "the server's limit held");
    assert_eq!(peers.lock().unwrap().len(), 1, "one connection");
    assert!(within(runner.cleanup()).await);
}

/// An HTTPS server (h2 by ALPN) for `localhost`, serving `app`; its address and a session
/// trusting it.
#[cfg(feature = "tls")]
pub(crate) async fn tls_server(app: Application) -> (AppRunner, SocketAddr, TlsConfig) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let pem = cert.cert.pem();
    let identity =
        tandem_web::Identity::from_pem(pem.as_bytes(), cert.key_pair.serialize_pem().as_bytes())
            .unwrap();
    let tls = tandem_web::TlsConfig::builder(identity).build().unwrap();
    let config = ServerConfig::default().with_stderr_log(false);
    let mut runner = AppRunner::with_config(app, config).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &tls).await.unwrap();
    let trust =
        TlsConfig::builder().add_root_certificates_pem(pem.as_bytes()).unwrap().build().unwrap();
    (runner, addr, trust)
}

/// By default a session speaks HTTP/2 where ALPN settles it; a redirect to a plain HTTP/1.1
/// origin and back changes version each hop, keeping cookies across them.
#[cfg(feature = "tls")]
#[tokio::test]
async fn alpn_chooses_h2_and_redirects_cross_versions() {
    let (runner, tls_addr, trust) = tls_server(app()).await;
    let plain = Server::start(app()).await;
    let connector = Connector::builder()
        .tls(trust)
        .resolve("localhost", [SocketAddr::from(([127, 0, 0, 1], 0))])
        .build();
    let s =
        ClientSession::builder().connector(connector).cookie_jar(CookieJar::unsafe_hosts()).build();
    let secure = |path: &str| format!("https://localhost:{}{path}", tls_addr.port());

    let mut resp = within(s.get(&secure("/text")).send()).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(within(resp.text()).await.unwrap(), "hello over HTTP/2.0");

    within(s.get(&secure("/cookie/set")).send()).await.unwrap();
    let back = secure("/cookie/get");
    let via_h1 = plain.url(&format!("/redirect?to={back}"));
    let start = secure(&format!("/redirect?to={via_h1}"));
    let mut resp = within(s.get(&start).send()).await.unwrap();
    let versions: Vec<_> = resp.history().iter().map(ResponseInfo::version).collect();
    assert_eq!(versions, [Version::HTTP_2, Version::HTTP_11]);
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(within(resp.text()).await.unwrap(), "h2", "the cookie came back over h2");

    // A request may keep to HTTP/1.1.
    let mut resp = within(s.get(&secure("/text")).http2(Http2::Never).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "hello over HTTP/1.1");
    assert!(within(runner.cleanup()).await);
    plain.stop().await;
}

/// Counts what the traces hear, by event name.
#[derive(Default)]
struct Heard(Mutex<Vec<&'static str>>);

impl Heard {
    fn push(&self, what: &'static str) {
        self.0.lock().unwrap().push(what);
    }

    fn count(&self, what: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|w| **w == what).count()
    }
}

impl tandem_client::Trace for Heard {
    fn on_connection_create(&self, _: &tandem_client::TraceRequestCtx, _: &Origin) {
        self.push("create");
    }
    fn on_connection_reuse(&self, _: &tandem_client::TraceRequestCtx, _: &Origin) {
        self.push("reuse");
    }
    fn on_request_headers_sent(
        &self,
        _: &tandem_client::TraceRequestCtx,
        _: &http::Method,
        _: &url::Url,
        _: &http::HeaderMap,
    ) {
        self.push("headers sent");
    }
    fn on_request_chunk_sent(
        &self,
        _: &tandem_client::TraceRequestCtx,
        _: &http::Method,
        _: &url::Url,
        _: &[u8],
    ) {
        self.push("chunk sent");
    }
    fn on_response_chunk_received(
        &self,
        _: &tandem_client::TraceRequestCtx,
        _: &http::Method,
        _: &url::Url,
        _: &[u8],
    ) {
        self.push("chunk received");
    }
}

/// Trace hooks, timings and middlewares see HTTP/2 exchanges as they see HTTP/1.1 ones.
#[tokio::test]
async fn traces_timings_and_middlewares_over_h2() {
    let mut app = app();
    app.add_get("/header", |req: Request| async move {
        Response::text(
            req.headers().get("x-via").map_or("none", |v| v.to_str().unwrap()).to_owned(),
        )
    });
    let server = Server::start(app).await;
    let heard = Arc::new(Heard::default());
    let s = ClientSession::builder()
        .http2(Http2::PriorKnowledge)
        .trace(heard.clone())
        .timings(true)
        .middleware(
            |mut req: tandem_client::ClientRequest, next: tandem_client::ClientNext| async move {
                req.headers_mut().insert("x-via", "middleware".parse().unwrap());
                next.run(req).await
            },
        )
        .build();
    let mut resp = within(s.get(&server.url("/header")).send()).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(within(resp.text()).await.unwrap(), "middleware");
    let timings = resp.timings().unwrap();
    assert!(timings.total.is_some() && timings.connect.is_some(), "{timings:?}");
    let mut resp = within(s.post(&server.url("/echo")).body("ping").send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "ping");
    assert_eq!(resp.timings().unwrap().connect, None, "the second request reused the connection");
    assert_eq!((heard.count("create"), heard.count("reuse")), (1, 1));
    assert_eq!(heard.count("headers sent"), 2);
    assert_eq!(heard.count("chunk sent"), 1);
    assert_eq!(heard.count("chunk received"), 2);
    server.stop().await;
}

/// The session's head limits (`max_field_size`, `max_headers`) hold an HTTP/2 response as
/// they hold an HTTP/1.1 one: a field longer than the field limit, or more fields than the
/// count, is a response error either way, not a head accepted whole because it came as
/// HPACK within the 64 KiB header list.
#[tokio::test]
async fn head_limits_hold_http2_responses_as_http1_ones() {
    let mut app = Application::new();
    app.add_get("/long", |_req: Request| async {
        Response::text("long").with_header("x-long", &"l".repeat(10 * 1024))
    });
    app.add_get("/many", |_req: Request| async {
        let mut resp = Response::text("many");
        for n in 0..200 {
            resp = resp.with_header(&format!("x-field-{n}"), "1");
        }
        resp
    });
    let server = Server::start(app).await;
    for session in [prior_knowledge(), ClientSession::new()] {
        let long = within(session.get(&server.url("/long")).send()).await.unwrap_err();
        assert!(long.is_field_too_long(), "{long:?}");
        let many = within(session.get(&server.url("/many")).send()).await.unwrap_err();
        assert!(many.is_too_many_headers(), "{many:?}");
        // A request's own limits too.
        let resp = session.get(&server.url("/long")).max_field_size(16 * 1024);
        assert_eq!(within(resp.send()).await.unwrap().status(), StatusCode::OK);
    }
}
