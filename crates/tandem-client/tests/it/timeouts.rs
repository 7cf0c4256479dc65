//! Timeouts: each phase surfaces as a timeout error naming it.

use std::time::Duration;

use tandem_client::{ClientSession, ClientTimeout, Phase};

use crate::support::{RawServer, read_request, within, write};

/// A server that reads the request and then never answers (holding the socket open).
async fn silent() -> RawServer {
    RawServer::start(|mut stream, _| async move {
        read_request(&mut stream).await;
        let _ = read_request(&mut stream).await;
    })
    .await
}

#[tokio::test]
async fn sock_read_and_total() {
    let server = silent().await;
    let s = ClientSession::builder()
        .timeout(ClientTimeout {
            sock_read: Some(Duration::from_millis(200)),
            ..ClientTimeout::default()
        })
        .build();
    let e = within(s.get(&server.url("/")).send()).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(e.timeout_phase(), Some(Phase::SockRead));

    let e = within(
        s.get(&server.url("/")).timeout(ClientTimeout::total(Duration::from_millis(100))).send(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.timeout_phase(), Some(Phase::Total));
}

#[tokio::test]
async fn total_covers_the_body() {
    // The head arrives at once; the body never does.
    let server = RawServer::start(|mut stream, _| async move {
        read_request(&mut stream).await;
        write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").await;
        let _ = read_request(&mut stream).await;
    })
    .await;
    let s = ClientSession::builder().timeout(ClientTimeout::total(Duration::from_secs(1))).build();
    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    let e = within(resp.read()).await.unwrap_err();
    assert_eq!(e.timeout_phase(), Some(Phase::Total), "{e}");
}

#[tokio::test]
async fn connect_covers_waiting_for_a_pool_slot() {
    // One slot, held by a response whose body is not read: the next request waits for a
    // connection until `connect` ends it.
    let server = RawServer::start(|mut stream, _| async move {
        while read_request(&mut stream).await.is_some() {
            write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").await;
        }
    })
    .await;
    let s = ClientSession::builder()
        .connector(tandem_client::Connector::builder().limit(1).build())
        .timeout(ClientTimeout {
            connect: Some(Duration::from_millis(200)),
            ..ClientTimeout::default()
        })
        .build();
    let held = within(s.get(&server.url("/")).send()).await.unwrap();
    let e = within(s.get(&server.url("/")).send()).await.unwrap_err();
    assert_eq!(e.timeout_phase(), Some(Phase::Connect), "{e}");
    drop(held);
    let e = within(s.get(&server.url("/")).send()).await.unwrap();
    assert_eq!(e.status(), 200);
}
