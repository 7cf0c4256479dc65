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
        .timeout(ClientTimeout::default().with_sock_read(Duration::from_millis(200)))
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
        .timeout(ClientTimeout::default().with_connect(Duration::from_millis(200)))
        .build();
    let held = within(s.get(&server.url("/")).send()).await.unwrap();
    let e = within(s.get(&server.url("/")).send()).await.unwrap_err();
    assert_eq!(e.timeout_phase(), Some(Phase::Connect), "{e}");
    drop(held);
    let e = within(s.get(&server.url("/")).send()).await.unwrap();
    assert_eq!(e.status(), 200);
}

/// A loopback address whose connects hang, made as tandem-connect's TCP tests make it: a
/// listener with a backlog of 0 whose one queue place is taken by a connection nobody
/// accepts, so Linux drops further SYNs (the accept queue is full) and a connect neither
/// succeeds nor fails, as one to an unreachable host. Keep the returned values alive.
async fn black_hole() -> (std::net::SocketAddr, tokio::net::TcpListener, tokio::net::TcpStream) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let filler = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    (addr, listener, filler)
}

#[tokio::test]
async fn sock_connect_names_its_phase() {
    let (addr, _listener, _filler) = black_hole().await;
    let url = format!("http://{addr}/");
    let s = ClientSession::builder()
        .timeout(ClientTimeout::default().with_sock_connect(Duration::from_millis(100)))
        .build();
    let e = within(s.get(&url).send()).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(e.timeout_phase(), Some(Phase::SockConnect), "{e}");
    // Without sock_connect the same connect hangs until the total deadline, which names
    // itself: so it was the phase's own clock that ended the first one.
    let e = within(
        s.get(&url)
            .timeout(ClientTimeout::total(Duration::from_millis(100)).with_sock_connect(None))
            .send(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.timeout_phase(), Some(Phase::Total), "{e}");
}

/// A server that trickles its answer a byte at a time, each well within `sock_read`, holds
/// the request no longer than `total`: `sock_read` bounds each gap, never the whole, and
/// `total` runs on however steadily bytes come, in the head as in the body.
#[tokio::test]
async fn a_trickling_server_is_bounded_by_total_not_by_sock_read() {
    for head_done in [false, true] {
        let server = RawServer::start(move |mut stream, _| async move {
            read_request(&mut stream).await;
            // Then a field, or the body, a byte at a time: far from any size limit.
            let start: &[u8] = if head_done {
                b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nX-Slow: "
            };
            write(&mut stream, start).await;
            let mut ticks = tokio::time::interval(Duration::from_millis(10));
            for _ in 0..5_000 {
                ticks.tick().await;
                write(&mut stream, b"a").await;
            }
        })
        .await;
        // Gaps of 10 ms against a sock_read fifty times longer, so a loaded machine's stall
        // does not pass for the server's; total twice sock_read, so a sock_read that bounded
        // the whole would fire first.
        let timeout = ClientTimeout::NONE
            .with_sock_read(Duration::from_millis(500))
            .with_total(Duration::from_secs(1));
        let s = ClientSession::builder().timeout(timeout).build();
        let e = match within(s.get(&server.url("/")).send()).await {
            Ok(mut resp) => within(resp.read()).await.unwrap_err(),
            Err(e) => e,
        };
        assert_eq!(e.timeout_phase(), Some(Phase::Total), "head done: {head_done}: {e}");
    }
}
