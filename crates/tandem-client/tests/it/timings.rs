//! `ClientResponse::timings` under `ClientSessionBuilder::timings(true)`.

use tandem_client::{ClientSession, Connector};
use tandem_web::{Application, Request, Response};

use crate::support::{Server, within};

fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/hello", |_req: Request| async { Response::text("hello") });
    app
}

#[tokio::test]
async fn each_step_is_timed() {
    let server = Server::start(app()).await;
    let port = server.addr.port();
    let session = ClientSession::builder().timings(true).build();
    let url = format!("http://localhost:{port}/hello");

    let mut resp = within(session.get(&url).send()).await.unwrap();
    let before = resp.timings().unwrap();
    assert_eq!(before.total, None, "the body is not read yet");
    assert_eq!(within(resp.text()).await.unwrap(), "hello");
    let t = resp.timings().unwrap();
    assert!(!t.reused && t.queued.is_none() && t.tls.is_none(), "plain HTTP: {t:?}");
    let (dns, connect) = (t.dns.unwrap(), t.connect.unwrap());
    assert!(dns <= connect, "{t:?}");
    let (sent, first, total) = (t.request_sent.unwrap(), t.first_byte.unwrap(), t.total.unwrap());
    assert!(connect <= sent && sent <= first && first <= total, "{t:?}");

    // The pooled connection: nothing to open.
    let mut resp = within(session.get(&url).send()).await.unwrap();
    within(resp.text()).await.unwrap();
    let t = resp.timings().unwrap();
    assert!(t.reused && t.dns.is_none() && t.connect.is_none(), "{t:?}");
    assert!(t.total.is_some());

    // Not recorded unless asked.
    let resp = within(ClientSession::new().get(&url).send()).await.unwrap();
    assert_eq!(resp.timings(), None);
    server.stop().await;
}

#[tokio::test]
async fn waiting_for_a_slot_is_timed() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .connector(Connector::builder().limit(1).build())
        .timings(true)
        .build();
    let mut first = within(session.get(&server.url("/hello")).send()).await.unwrap();
    let second = tokio::spawn({
        let (session, url) = (session.clone(), server.url("/hello"));
        async move { within(session.get(&url).send()).await.unwrap() }
    });
    // Let the second request reach the pool and queue; then free the slot.
    within(async {
        while session.connector().pool_stats().iter().all(|(_, s)| s.waiting == 0) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    within(first.text()).await.unwrap();
    let resp = within(second).await.unwrap();
    let t = resp.timings().unwrap();
    assert!(t.queued.is_some() && t.reused, "{t:?}");
    server.stop().await;
}
