//! A storage of the user's own whose backend fails.

use tandem_session::{Error, SessionMiddleware, Storage, StorageFuture, Stored};

use crate::support::{app, client, get, start, within};

/// A storage whose backend is down for writes only: the handler ran, but its session cannot
/// be kept, so its answer is replaced by a 503 rather than sent without the session.
struct ReadOnly;

impl Storage for ReadOnly {
    fn load<'a>(&'a self, _cookie: &'a str) -> StorageFuture<'a, Option<Stored>> {
        Box::pin(async { Ok(None) })
    }

    fn save<'a>(&'a self, _session: &'a Stored) -> StorageFuture<'a, String> {
        Box::pin(async { Err(Error::storage("SET failed", std::io::Error::other("read-only"))) })
    }
}

#[tokio::test]
async fn a_session_that_cannot_be_saved_is_a_503() {
    let server = start(app(SessionMiddleware::new(ReadOnly))).await;
    let resp = within(client().get(&server.url("/count")).send()).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("set-cookie").is_none());
    // A request that leaves its session alone never asks the storage to save.
    assert_eq!(get(&client(), &server.url("/peek")).await.1, "0");
    server.close().await;
}
