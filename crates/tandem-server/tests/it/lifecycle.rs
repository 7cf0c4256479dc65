//! Signals and graceful shutdown.

use std::sync::{Arc, Mutex};

use tandem_server::{App, Application, Error, Request, Response};
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
    app.on_response_prepare(|response: &mut Response| {
        response.headers_mut().insert("x-frame-options", "DENY".parse().unwrap());
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
    // on_response_prepare sees the router's own answers too.
    assert_eq!(server.get("/missing").await.header("x-frame-options"), Some("DENY"));

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
    let mut runner = tandem_server::AppRunner::new(app).unwrap();
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
    assert!(client.closes_quietly().await, "the connection closes after the last response");
    assert!(within(stopping).await.unwrap(), "every in-flight request finished");

    let events = events.lock().unwrap();
    let at = |name: &str| events.iter().position(|e| e == name).unwrap();
    assert!(at("shutdown") < at("handler done"));
    assert!(at("handler done") < at("ctx b teardown"));
    assert!(at("ctx a teardown") < at("cleanup"));
}
