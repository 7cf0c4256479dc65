//! TCP: Happy Eyeballs, per-attempt and overall timeouts.
//!
//! A black-holed address is made on loopback, never by sending to a foreign address: a
//! listener with a backlog of 0 whose one queue place is taken by a connection nobody accepts.
//! Linux then drops further SYNs to it (the accept queue is full), so a connect there neither
//! succeeds nor fails: it hangs, as one to an unreachable host does.

use std::{net::SocketAddr, time::Duration};

use tandem_connect::{Connector, Origin, Scheme};
use tokio::net::{TcpSocket, TcpStream};

use crate::{Server, prompt};

/// A loopback address whose connects hang; keep the returned values alive while it is used.
async fn black_hole() -> (SocketAddr, tokio::net::TcpListener, TcpStream) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fills the accept queue (never accepted).
    let filler = prompt(TcpStream::connect(addr)).await.unwrap();
    (addr, listener, filler)
}

/// An address that refuses connections at once: a port that was just released.
async fn refusing() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

fn dual(server: &Server) -> Origin {
    Origin::new(Scheme::Http, "dual.test", server.port)
}

#[tokio::test]
async fn black_hole_is_really_black() {
    let (addr, _l, _f) = black_hole().await;
    let r = tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await;
    assert!(r.is_err(), "connect to the black hole should hang, got {r:?}");
}

#[tokio::test]
async fn the_next_address_starts_after_the_delay() {
    let server = Server::start().await;
    let (hole, _l, _f) = black_hole().await;
    let good: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let connector = Connector::builder()
        .resolve("dual.test", [hole, good])
        .happy_eyeballs_delay(Some(Duration::from_millis(50)))
        .build();
    let conn = prompt(connector.connect(&dual(&server))).await.unwrap();
    assert_eq!(conn.info().peer_addr, Some(good));
}

#[tokio::test]
async fn a_failed_attempt_starts_the_next_at_once() {
    let server = Server::start().await;
    let refused = refusing().await;
    let good: SocketAddr = format!("[::1]:{}", server.port).parse().unwrap();
    let good4: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    // The delay is far longer than the bound: only a failure can start the next attempt.
    let connector = Connector::builder()
        .resolve("dual.test", [refused, good, good4])
        .happy_eyeballs_delay(Some(Duration::from_secs(3600)))
        .build();
    let conn = prompt(connector.connect(&dual(&server))).await.unwrap();
    // [::1] comes second after interleaving, but nothing listens there (the server is IPv4
    // only), so the IPv4 address wins.
    assert_eq!(conn.info().peer_addr, Some(good4));
}

#[tokio::test]
async fn sock_connect_bounds_each_attempt() {
    let server = Server::start().await;
    let (hole, _l, _f) = black_hole().await;
    let good: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let connector = Connector::builder()
        .resolve("dual.test", [hole, good])
        .happy_eyeballs_delay(None)
        .sock_connect_timeout(Some(Duration::from_millis(50)))
        .build();
    let conn = prompt(connector.connect(&dual(&server))).await.unwrap();
    assert_eq!(conn.info().peer_addr, Some(good));

    let only_hole = Connector::builder()
        .resolve("dual.test", [hole])
        .sock_connect_timeout(Some(Duration::from_millis(50)))
        .build();
    let err = prompt(only_hole.connect(&dual(&server))).await.unwrap_err();
    assert!(err.is_connect() && err.is_timeout() && err.is_sock_connect_timeout(), "{err:?}");

    // The same bound given per checkout.
    let per_request =
        tandem_connect::ConnectOptions::new().sock_connect_timeout(Duration::from_millis(50));
    let connector = Connector::builder().resolve("dual.test", [hole]).build();
    let err = prompt(connector.connect_with(&dual(&server), &per_request)).await.unwrap_err();
    assert!(err.is_sock_connect_timeout(), "{err:?}");
}

#[tokio::test]
async fn connect_timeout_bounds_the_whole_connect() {
    let server = Server::start().await;
    let (hole, _l, _f) = black_hole().await;
    let connector = Connector::builder()
        .resolve("dual.test", [hole])
        .connect_timeout(Some(Duration::from_millis(50)))
        .build();
    let origin = dual(&server);
    let err = prompt(connector.connect(&origin)).await.unwrap_err();
    assert!(err.is_connect_timeout() && err.is_connect() && !err.is_pool_timeout(), "{err:?}");
    assert!(!err.is_sock_connect_timeout());
    assert_eq!(connector.stats_for(&origin), tandem_connect::PoolStats::default(), "slot freed");
}

#[tokio::test]
async fn refused_is_a_connect_error() {
    let refused = refusing().await;
    let connector = Connector::new();
    let origin = Origin::new(Scheme::Http, "127.0.0.1", refused.port());
    let err = prompt(connector.connect(&origin)).await.unwrap_err();
    assert!(err.is_connect() && !err.is_dns() && !err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn family_and_local_address_choose_the_socket() {
    let server = Server::start().await;
    let v6: SocketAddr = format!("[::1]:{}", server.port).parse().unwrap();
    let v4: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    // [::1] refuses (the server is IPv4 only): with IPv6 only there is nothing else to try.
    let v6_only = Connector::builder()
        .resolve("dual.test", [v4, v6])
        .family(Some(tandem_connect::AddressFamily::V6))
        .build();
    let err = prompt(v6_only.connect(&dual(&server))).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    // All of 127.0.0.0/8 is loopback on Linux, so 127.0.0.2 is a usable source address.
    let from = Connector::builder()
        .resolve("dual.test", [v6, v4])
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build();
    let conn = prompt(from.connect(&dual(&server))).await.unwrap();
    assert_eq!(conn.info().peer_addr, Some(v4));
    assert_eq!(conn.info().local_addr.unwrap().ip().to_string(), "127.0.0.2");
}
