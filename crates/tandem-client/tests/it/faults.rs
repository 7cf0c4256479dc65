//! `FaultInjection`: statuses and errors made up without sending, truncated bodies, added
//! latency, and seeded, repeatable choices of which requests get a fault.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use http::StatusCode;
use tandem_client::{ClientSession, FaultError, FaultInjection, Retry};
use tandem_web::{Application, Request, Response};

use crate::support::{Server, within};

/// An [`Error`](tandem_client::Error) predicate.
type Check = fn(&tandem_client::Error) -> bool;

fn app(hits: &Arc<AtomicUsize>) -> Application {
    let mut app = Application::new();
    let h = hits.clone();
    app.add_get("/text", move |_req: Request| {
        h.fetch_add(1, Ordering::SeqCst);
        async { Response::text("0123456789").with_header("x-kept", "yes") }
    });
    app
}

#[tokio::test]
async fn statuses_and_errors_are_made_up_without_sending() {
    let hits = Arc::new(AtomicUsize::new(0));
    let server = Server::start(app(&hits)).await;
    let s = ClientSession::builder()
        .middleware(FaultInjection::new(1).status(1.0, StatusCode::SERVICE_UNAVAILABLE))
        .build();
    let mut resp = within(s.get(&server.url("/text")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.request_info().url().path(), "/text");
    assert_eq!(within(resp.text()).await.unwrap(), "");

    let kinds: [(FaultError, Check); 4] = [
        (FaultError::Connect, tandem_client::Error::is_connect),
        (FaultError::Timeout, tandem_client::Error::is_timeout),
        (FaultError::Disconnected, tandem_client::Error::is_disconnected),
        (FaultError::Io, tandem_client::Error::is_io),
    ];
    for (kind, check) in kinds {
        let s =
            ClientSession::builder().middleware(FaultInjection::new(1).error(1.0, kind)).build();
        let e = within(s.get(&server.url("/text")).send()).await.unwrap_err();
        assert!(check(&e), "{kind:?}: {e}");
        assert_eq!(e.url().map(url::Url::path), Some("/text"));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");
    server.stop().await;
}

#[tokio::test]
async fn a_truncated_body_fails_as_a_payload_error() {
    let hits = Arc::new(AtomicUsize::new(0));
    let server = Server::start(app(&hits)).await;
    let s = ClientSession::builder().middleware(FaultInjection::new(1).truncate(1.0)).build();
    let mut resp = within(s.get(&server.url("/text")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-kept"], "yes");
    assert_eq!(resp.headers()["content-length"], "10");
    let e = within(resp.text()).await.unwrap_err();
    assert!(e.is_payload(), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    server.stop().await;
}

/// Which requests get a fault depends on the seed alone.
#[tokio::test]
async fn the_same_seed_gives_the_same_faults() {
    let hits = Arc::new(AtomicUsize::new(0));
    let server = Server::start(app(&hits)).await;
    let run = |seed: u64| {
        let url = server.url("/text");
        async move {
            let faults = FaultInjection::new(seed).status(0.3, StatusCode::BAD_GATEWAY);
            let counter = faults.counter();
            let s = ClientSession::builder().middleware(faults).build();
            let mut statuses = Vec::new();
            for _ in 0..50 {
                let mut resp = within(s.get(&url).send()).await.unwrap();
                within(resp.read()).await.unwrap();
                statuses.push(resp.status().as_u16());
            }
            let failed = statuses.iter().filter(|&&s| s == 502).count();
            assert_eq!(u64::try_from(failed).unwrap(), counter.load(Ordering::Relaxed));
            statuses
        }
    };
    let first = run(7).await;
    assert_eq!(run(7).await, first);
    assert_ne!(run(8).await, first);
    let failed = first.iter().filter(|&&s| s == 502).count();
    assert!((5..=25).contains(&failed), "30% of 50: {failed}");
    server.stop().await;
}

#[tokio::test]
async fn latency_is_added_and_retries_see_the_faults() {
    let hits = Arc::new(AtomicUsize::new(0));
    let server = Server::start(app(&hits)).await;
    let s = ClientSession::builder()
        .middleware(FaultInjection::new(1).latency(1.0, Duration::from_millis(30)))
        .build();
    let started = Instant::now();
    within(s.get(&server.url("/text")).send()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(30));

    // Inside a retry: every injected 503 is retried until the budget of retries ends.
    let faults = FaultInjection::new(3).status(1.0, StatusCode::SERVICE_UNAVAILABLE);
    let counter = faults.counter();
    let retry = Retry::new().max_retries(2).sleep_with(|_| Box::pin(async {}));
    let s = ClientSession::builder().middleware(retry).middleware(faults).build();
    let resp = within(s.get(&server.url("/text")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(counter.load(Ordering::Relaxed), 3, "the first try and two retries");
    server.stop().await;
}
