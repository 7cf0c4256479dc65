//! `handler_cancellation`: off by default (a handler finishes though its client left), on,
//! a client closing its connection cancels the handler.

use std::sync::{Arc, Mutex};

use tandem_web::{Application, Request, Response, ServerConfig};
use tokio::sync::{Notify, oneshot};

use crate::support::{Server, within};

/// Sends once when dropped, saying whether the handler got to its end.
struct Outcome(Option<oneshot::Sender<bool>>, bool);

impl Drop for Outcome {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(self.1);
        }
    }
}

/// An app whose handler waits for `release`, then reports through `outcome` whether it
/// finished (`true`) or was dropped on the way (`false`).
fn app(started: &Arc<Notify>, release: &Arc<Notify>) -> (Application, oneshot::Receiver<bool>) {
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let (started, release) = (Arc::clone(started), Arc::clone(release));
    let mut app = Application::new();
    app.add_get("/", move |_req: Request| {
        let outcome = Outcome(tx.lock().unwrap().take(), false);
        let (started, release) = (Arc::clone(&started), Arc::clone(&release));
        async move {
            // Moved in whole, so that it drops with the handler.
            let mut outcome = outcome;
            started.notify_one();
            release.notified().await;
            outcome.1 = true;
            Response::text("done")
        }
    });
    (app, rx)
}

#[tokio::test]
async fn a_client_leaving_cancels_its_handler_only_when_asked() {
    for cancel in [false, true] {
        let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (app, outcome) = app(&started, &release);
        let config = ServerConfig::default().with_handler_cancellation(cancel);
        assert!(!ServerConfig::default().handler_cancellation, "off by default, as aiohttp");
        let server = Server::start_with(app, config).await;
        let mut client = server.connect().await;
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
        within(started.notified()).await;
        drop(client);
        if !cancel {
            // Nothing notices the close: the handler goes on when released.
            release.notify_one();
        }
        assert_eq!(within(outcome).await.unwrap(), !cancel, "handler_cancellation={cancel}");
        assert!(server.stop().await);
    }
}

/// A pipelined request arriving while the handler runs is not a close: both are answered.
#[tokio::test]
async fn pipelined_bytes_are_not_a_close() {
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (mut app, outcome) = app(&started, &release);
    app.add_get("/second", |_req: Request| async { "second" });
    let config = ServerConfig::default().with_handler_cancellation(true);
    let server = Server::start_with(app, config).await;
    let mut client = server.connect().await;
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    within(started.notified()).await;
    client.send(b"GET /second HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
    release.notify_one();
    assert_eq!(client.response().await.text(), "done");
    assert_eq!(client.response().await.text(), "second");
    assert!(within(outcome).await.unwrap());
    assert!(server.stop().await);
}
