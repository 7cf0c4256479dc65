//! Signals and graceful shutdown.

use std::sync::{Arc, Mutex};

use tandem_web::{App, Application, Error, Next, Request, Response, ServerConfig};
use tokio::{net::TcpStream, sync::Notify};

use crate::support::{Server, within};

type Events = Arc<Mutex<Vec<String>>>;

fn record(events: &Events, event: &str) {
    events.lock().unwrap().push(event.to_owned());
}

#[derive(Debug)]
struct Pool(&'static str);

/// Signals in every slot, each recording itself.
fn signalled_app(events: &Events) -> Application {
    let mut app = Application::new();
    let e = Arc::clone(events);
    app.on_startup(move |app: App| {
        let e = Arc::clone(&e);
        async move {
            record(&e, "startup");
            app.set_state(Pool("connected"));
            Ok::<_, Error>(())
        }
    });
    for name in ["a", "b"] {
        let e = Arc::clone(events);
        app.cleanup_ctx(move |_app: App| {
            let e = Arc::clone(&e);
            async move {
                record(&e, &format!("ctx {name} setup"));
                Ok::<_, Error>(async move { record(&e, &format!("ctx {name} teardown")) })
            }
        });
    }
    let e = Arc::clone(events);
    app.on_shutdown(move |_app: App| {
        let e = Arc::clone(&e);
        async move {
            record(&e, "shutdown");
            Ok::<_, Error>(())
        }
    });
    let e = Arc::clone(events);
    app.on_cleanup(move |_app: App| {
        let e = Arc::clone(&e);
        async move {
            record(&e, "cleanup");
            Ok::<_, Error>(())
        }
    });
    app.on_response_prepare(|req: &Request, response: &mut Response| {
        response.headers_mut().insert("x-frame-options", "DENY".parse().unwrap());
        // The hook sees the request: its method, path and headers.
        let seen =
            format!("{} {} {}", req.method(), req.path(), req.header("x-probe").unwrap_or("-"));
        response.headers_mut().insert("x-seen", seen.parse().unwrap());
    });
    app.add_get(
        "/pool",
        |req: Request| async move { Response::text(req.state::<Pool>().unwrap().0) },
    );
    app
}

#[tokio::test]
async fn signals_run_in_order() {
    let events = Events::default();
    let server = Server::start(signalled_app(&events)).await;
    assert_eq!(*events.lock().unwrap(), ["startup", "ctx a setup", "ctx b setup"]);

    let pool = server.get("/pool").await;
    assert_eq!(pool.text(), "connected");
    assert_eq!(pool.header("x-frame-options"), Some("DENY"));
    assert_eq!(pool.header("x-seen"), Some("GET /pool -"));
    // on_response_prepare sees the router's own answers too.
    let missing = server.get("/missing").await;
    assert_eq!(missing.header("x-frame-options"), Some("DENY"));
    assert_eq!(missing.header("x-seen"), Some("GET /missing -"));

    assert!(server.stop().await);
    assert_eq!(
        *events.lock().unwrap(),
        [
            "startup",
            "ctx a setup",
            "ctx b setup",
            "shutdown",
            "ctx b teardown",
            "ctx a teardown",
            "cleanup"
        ]
    );
}

#[tokio::test]
async fn a_failing_startup_signal_fails_setup() {
    let mut app = Application::new();
    app.on_startup(|_app: App| async { Err::<(), _>(Error::new("no database")) });
    let mut runner = tandem_web::AppRunner::new(app).unwrap();
    assert!(runner.setup().await.is_err());
}

/// No in-flight request is lost: a request still running when shutdown starts is answered
/// in full, new connections are refused meanwhile, and cleanup runs only after it.
#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let events = Events::default();
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let shutting = Arc::new(Notify::new());
    let mut app = signalled_app(&events);
    let (s, r, e) = (Arc::clone(&started), Arc::clone(&release), Arc::clone(&events));
    app.add_get("/slow", move |_req: Request| {
        let (started, release, events) = (Arc::clone(&s), Arc::clone(&r), Arc::clone(&e));
        async move {
            started.notify_one();
            release.notified().await;
            record(&events, "handler done");
            Response::text("x".repeat(100_000))
        }
    });
    let sh = Arc::clone(&shutting);
    app.on_shutdown(move |_app: App| {
        let sh = Arc::clone(&sh);
        async move {
            sh.notify_one();
            Ok::<_, Error>(())
        }
    });
    let server = Server::start(app).await;
    let addr = server.addr;

    let mut client = server.connect().await;
    client.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").await;
    within(started.notified()).await;

    let stopping = tokio::spawn(server.stop());
    within(shutting.notified()).await;
    // The listener closes: new connections are refused (polled, bounded by the timeout).
    within(async {
        loop {
            match TcpStream::connect(addr).await {
                Err(_) => break,
                Ok(_) => tokio::task::yield_now().await,
            }
        }
    })
    .await;
    assert!(!events.lock().unwrap().iter().any(|e| e == "cleanup" || e.contains("teardown")));

    release.notify_one();
    let resp = client.response().await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 100_000);
    assert_eq!(resp.header("connection"), Some("close"), "the response says it is the last");
    assert!(client.closes_quietly().await, "the connection closes after the last response");
    assert!(within(stopping).await.unwrap(), "every in-flight request finished");

    let events = events.lock().unwrap();
    let at = |name: &str| events.iter().position(|e| e == name).unwrap();
    assert!(at("shutdown") < at("handler done"));
    assert!(at("handler done") < at("ctx b teardown"));
    assert!(at("ctx a teardown") < at("cleanup"));
}

#[derive(Clone, Debug)]
struct Tagged(&'static str);

#[tokio::test]
async fn response_prepare_gets_the_request_and_runs_outer_hooks_first() {
    let mut admin = Application::new();
    admin.on_response_prepare(|req: &Request, response: &mut Response| {
        let chain = response.headers().get("x-hooks").map(|v| v.to_str().unwrap().to_owned());
        let value =
            format!("{},admin:{}", chain.unwrap_or_default(), req.match_info("id").unwrap());
        response.headers_mut().insert("x-hooks", value.parse().unwrap());
    });
    admin.add_get("/item/{id}", |_req: Request| async { Response::text("item") });
    let mut app = Application::new();
    // The hook's copy is made when the request is routed, so an extension a middleware
    // adds afterwards is not in it: this pins the documented boundary.
    app.middleware(|mut req: Request, next: Next| async move {
        req.extensions_mut().insert(Tagged("by middleware"));
        next.run(req).await
    });
    app.on_response_prepare(|req: &Request, response: &mut Response| {
        let tag = req.extensions().get::<Tagged>().map_or("none", |t| t.0);
        let value = format!("root:{}:{tag}", req.header("x-probe").unwrap_or("-"));
        response.headers_mut().insert("x-hooks", value.parse().unwrap());
    });
    app.add_subapp("/admin", admin);
    let server = Server::start(app).await;

    let resp = server.request(b"GET /admin/item/7 HTTP/1.1\r\nHost: t\r\nX-Probe: p\r\n\r\n").await;
    assert_eq!(resp.header("x-hooks"), Some("root:p:none,admin:7"));
    within(server.stop()).await;
}

/// Idle keep-alive connections close at shutdown, long before their keep-alive timeout:
/// those that have served requests (whose waits keep the shutdown signal registered from
/// one request to the next) as well as one that never sent a byte.
#[tokio::test]
async fn idle_keep_alive_connections_close_at_shutdown() {
    let mut app = Application::new();
    app.add_get("/", |_req: Request| async { "x" });
    let server = Server::start(app).await;
    let mut used = server.connect().await;
    for _ in 0..3 {
        used.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(used.response().await.status, 200);
    }
    let mut fresh = server.connect().await;
    // Let both connections settle into their idle waits.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let stopping = tokio::spawn(server.stop());
    assert!(within(used.closes_quietly()).await);
    assert!(within(fresh.closes_quietly()).await);
    assert!(within(stopping).await.unwrap(), "no connection held the shutdown up");
}

/// A connection partway through a head closes at shutdown, unanswered, as an idle one does:
/// nothing of the request was dispatched, and a client dribbling its head held the shutdown
/// up for the rest of the head timeout (aiohttp closes such connections at once).
#[tokio::test]
async fn a_partial_head_does_not_hold_up_shutdown() {
    let dispatched = crate::support::Counter::default();
    let mut app = Application::new();
    let counter = dispatched.clone();
    app.add_get("/", move |_req: Request| {
        counter.hit();
        async { "x" }
    });
    let config = ServerConfig::default().with_head_timeout(std::time::Duration::from_secs(60));
    let server = Server::start_with(app, config).await;
    let mut client = server.connect().await;
    // One write: once its first request is answered, the server has read the second's start.
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nX-Slow: ").await;
    assert_eq!(client.response().await.status, 200);
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(server.stop());
    assert!(within(client.closes_quietly()).await);
    assert!(within(stopping).await.unwrap(), "no connection held the shutdown up");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(dispatched.get(), 1);
}
