//! Shutdown in aiohttp's order: stop accepting, `on_shutdown`, wait for the handlers up to
//! the shutdown timeout, cancel the rest, then `on_cleanup`.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tandem_web::{App, AppRunner, Application, Error, Request, Response, ServerConfig};
use tokio::{net::TcpStream, sync::Notify};

use crate::support::{Client, within};

type Events = Arc<Mutex<Vec<String>>>;

fn record(events: &Events, event: &str) {
    events.lock().unwrap().push(event.to_owned());
}

/// Records when dropped: a handler cancelled mid-way.
struct OnDrop(Events);

impl Drop for OnDrop {
    fn drop(&mut self) {
        record(&self.0, "handler cancelled");
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_then_signals_then_cancels_late_handlers() {
    let events = Events::default();
    let started = Arc::new(Notify::new());
    let addr = Arc::new(Mutex::new(None));
    let mut app = Application::new();
    let (e, s) = (Arc::clone(&events), Arc::clone(&started));
    app.add_get("/forever", move |_req: Request| {
        let (guard, started) = (OnDrop(Arc::clone(&e)), Arc::clone(&s));
        async move {
            let _guard = guard;
            started.notify_one();
            std::future::pending::<()>().await;
            Response::text("never")
        }
    });
    let (e, a) = (Arc::clone(&events), Arc::clone(&addr));
    app.on_shutdown(move |_app: App| {
        let (e, a) = (Arc::clone(&e), Arc::clone(&a));
        async move {
            // The listener is closed before the signal: a new connection is refused.
            let addr = a.lock().unwrap().expect("the address");
            let refused = TcpStream::connect(addr).await.is_err();
            record(&e, &format!("on_shutdown refused={refused}"));
            Ok::<_, Error>(())
        }
    });
    let e = Arc::clone(&events);
    app.on_cleanup(move |_app: App| {
        let e = Arc::clone(&e);
        async move {
            record(&e, "on_cleanup");
            Ok::<_, Error>(())
        }
    });
    // The timeout under test, kept short: the handler never finishes by itself.
    let config = ServerConfig::default()
        .with_shutdown_timeout(Duration::from_millis(50))
        .with_stderr_log(false);
    let mut runner = AppRunner::with_config(app, config).unwrap();
    runner.setup().await.unwrap();
    let bound = runner.tcp_site("127.0.0.1", 0).await.unwrap();
    *addr.lock().unwrap() = Some(bound);

    let mut client = Client::connect(bound).await;
    client.send(b"GET /forever HTTP/1.1\r\nHost: t\r\n\r\n").await;
    within(started.notified()).await;

    assert!(!within(runner.cleanup()).await, "a handler was still running at the timeout");
    assert_eq!(
        *events.lock().unwrap(),
        ["on_shutdown refused=true", "handler cancelled", "on_cleanup"]
    );
    assert!(client.closes_quietly().await, "the cancelled request's connection is closed");
}
