//! HTTP/2 in the pool, against the `h2` crate's own server: one shared connection per
//! origin, the server's stream limit, `limit` and `limit_per_host`, statistics, GOAWAY.

use std::future::Future;

use bytes::Bytes;
use tandem_connect::{
    Checkout, ConnectOptions, Connector, Http2, Http2Stream, Origin, PoolStats, Scheme,
    h2::{self, server::SendResponse},
};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};

use crate::{prompt, still_pending};

/// An h2c server: each request is handed to the test, which answers it when it likes.
struct H2Server {
    port: u16,
    accepted: watch::Receiver<usize>,
    requests: mpsc::UnboundedReceiver<SendResponse<Bytes>>,
    /// Tells the server to send GOAWAY on every connection open now, and close them.
    goaway: tokio::sync::broadcast::Sender<()>,
}

impl H2Server {
    async fn start(max_concurrent_streams: u32) -> H2Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (count, accepted) = watch::channel(0);
        let (tx, requests) = mpsc::unbounded_channel();
        let (goaway, _) = tokio::sync::broadcast::channel(1);
        let shutdown = goaway.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.send_modify(|n| *n += 1);
                let (tx, mut shutdown) = (tx.clone(), shutdown.subscribe());
                tokio::spawn(async move {
                    let mut conn = h2::server::Builder::new()
                        .max_concurrent_streams(max_concurrent_streams)
                        .handshake::<_, Bytes>(tcp)
                        .await
                        .unwrap();
                    loop {
                        tokio::select! {
                            request = conn.accept() => match request {
                                Some(Ok((_, respond))) => {
                                    let _ = tx.send(respond);
                                }
                                _ => return,
                            },
                            _ = shutdown.recv() => {
                                conn.graceful_shutdown();
                                // Drives the GOAWAY out and waits for the client to close.
                                while conn.accept().await.is_some() {}
                                return;
                            }
                        }
                    }
                });
            }
        });
        H2Server { port, accepted, requests, goaway }
    }

    fn origin(&self) -> Origin {
        Origin::new(Scheme::Http, "127.0.0.1", self.port)
    }

    /// Waits until the server has accepted `n` connections in all, and checks it has not
    /// accepted more. (A client's connect completes before the server's accept runs.)
    async fn accepted(&self, n: usize) {
        let mut rx = self.accepted.clone();
        let got = *prompt(rx.wait_for(|&a| a >= n)).await.unwrap();
        assert_eq!(got, n, "accepted more connections than expected");
    }

    /// Answers the next request with an empty 200.
    async fn answer(&mut self) {
        let mut respond = prompt(self.requests.recv()).await.unwrap();
        respond.send_response(http::Response::new(()), true).unwrap();
    }
}

fn prior_knowledge() -> ConnectOptions {
    ConnectOptions::new().http2(Http2::PriorKnowledge)
}

async fn stream(connector: &Connector, origin: &Origin) -> Http2Stream {
    match prompt(connector.checkout(origin, &prior_knowledge())).await.unwrap() {
        Checkout::Http2(stream) => stream,
        Checkout::Http1(conn) => panic!("HTTP/1.1 by prior knowledge: {conn:?}"),
    }
}

/// Sends `GET /` on `stream` and waits for the whole (empty) answer; the server must be
/// answering.
fn get(stream: &mut Http2Stream, origin: &Origin) -> impl Future<Output = ()> + use<> {
    let uri = format!("http://{}:{}/", origin.host(), origin.port());
    let sender = stream.sender().clone();
    async move {
        let mut sender = sender.ready().await.unwrap();
        let (response, _) =
            sender.send_request(http::Request::get(uri).body(()).unwrap(), true).unwrap();
        let mut body = response.await.unwrap().into_body();
        while body.data().await.is_some() {}
    }
}

/// One request on a fresh connection, so that the server's settings are known.
async fn warm_up(connector: &Connector, server: &mut H2Server) {
    let origin = server.origin();
    let mut first = stream(connector, &origin).await;
    let exchange = tokio::spawn(get(&mut first, &origin));
    server.answer().await;
    prompt(exchange).await.unwrap();
}

fn counts(stats: PoolStats) -> (usize, usize, usize) {
    (stats.idle, stats.active, stats.streams)
}

#[tokio::test]
async fn requests_share_one_connection_which_counts_once() {
    let mut server = H2Server::start(100).await;
    let connector = Connector::new();
    let origin = server.origin();
    warm_up(&connector, &mut server).await;
    assert_eq!(counts(connector.stats_for(&origin)), (1, 0, 0), "idle once its request ended");

    let streams: Vec<_> =
        futures_util::future::join_all((0..5).map(|_| stream(&connector, &origin))).await;
    assert!(streams.iter().all(Http2Stream::is_reused));
    assert_eq!(counts(connector.stats_for(&origin)), (0, 1, 5));
    drop(streams);
    assert_eq!(counts(connector.stats_for(&origin)), (1, 0, 0));
    server.accepted(1).await;

    // An HTTP/1.1 checkout never gets it.
    let h1 = prompt(connector.checkout(&origin, &ConnectOptions::new())).await.unwrap();
    assert!(matches!(h1, Checkout::Http1(_)), "{h1:?}");
}

/// A cold burst waits for the one connection being opened instead of opening its own.
#[tokio::test]
async fn a_burst_on_a_cold_pool_opens_one_connection() {
    let server = H2Server::start(100).await;
    let connector = Connector::new();
    let origin = server.origin();
    let streams: Vec<_> =
        futures_util::future::join_all((0..16).map(|_| stream(&connector, &origin))).await;
    assert_eq!(streams.iter().filter(|s| !s.is_reused()).count(), 1);
    assert_eq!(counts(connector.stats_for(&origin)), (0, 1, 16));
    server.accepted(1).await;
}

/// The server allows 2 streams; under `limit_per_host(1)` five requests queue on the one
/// connection (`h2` opens each as a stream closes), and all of them are answered.
#[tokio::test]
async fn over_the_stream_limit_without_a_slot_requests_queue_on_the_connection() {
    let mut server = H2Server::start(2).await;
    let connector = Connector::builder().limit_per_host(1).build();
    let origin = server.origin();
    warm_up(&connector, &mut server).await;

    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(stream(&connector, &origin).await);
    }
    assert_eq!(counts(connector.stats_for(&origin)), (0, 1, 5));
    let exchanges: Vec<_> = streams.iter_mut().map(|s| tokio::spawn(get(s, &origin))).collect();
    for _ in 0..5 {
        server.answer().await;
    }
    for exchange in exchanges {
        prompt(exchange).await.unwrap();
    }
    server.accepted(1).await;
    drop(streams);
    assert_eq!(counts(connector.stats_for(&origin)), (1, 0, 0));
}

/// With slots free, a full connection makes the pool open another, under the same limit.
#[tokio::test]
async fn over_the_stream_limit_with_a_slot_another_connection_opens() {
    let mut server = H2Server::start(2).await;
    let connector = Connector::new();
    let origin = server.origin();
    warm_up(&connector, &mut server).await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(stream(&connector, &origin).await);
    }
    server.accepted(3).await;
    assert_eq!(counts(connector.stats_for(&origin)), (0, 3, 5));
}

/// A connection carrying requests holds a slot of `limit` as an HTTP/1.1 one in use does.
#[tokio::test]
async fn a_busy_http2_connection_holds_a_slot_of_limit() {
    let mut server = H2Server::start(100).await;
    let other = H2Server::start(100).await;
    let connector = Connector::builder().limit(1).build();
    warm_up(&connector, &mut server).await;
    let busy = stream(&connector, &server.origin()).await;

    let options = prior_knowledge();
    let other_origin = other.origin();
    let mut waiting = Box::pin(connector.checkout(&other_origin, &options));
    assert!(still_pending(&mut waiting).await);
    drop(busy);
    assert!(matches!(prompt(waiting).await.unwrap(), Checkout::Http2(_)));
}

/// After GOAWAY the connection is never handed out again, and leaves the pool when it
/// closes.
#[tokio::test]
async fn a_connection_told_goaway_leaves_the_pool() {
    let mut server = H2Server::start(100).await;
    let connector = Connector::new();
    let origin = server.origin();
    warm_up(&connector, &mut server).await;
    server.goaway.send(()).unwrap();
    prompt(async {
        while connector.stats_for(&origin) != PoolStats::default() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let fresh = stream(&connector, &origin).await;
    assert!(!fresh.is_reused());
    server.accepted(2).await;
}

/// An HTTPS server for `localhost` choosing by ALPN among `protocols`: HTTP/2 answered by
/// `h2`, anything else with an HTTP/1.1 200. Returns its origin and a config trusting it.
#[cfg(feature = "tls")]
async fn alpn_server(protocols: &[&[u8]]) -> (Origin, tandem_connect::TlsConfig) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let leaf = crate::tls::Leaf::self_signed(&["localhost"]);
    let acceptor = crate::tls::alpn_acceptor(&leaf, protocols);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    let mut conn = h2::server::handshake(tls).await.unwrap();
                    while let Some(Ok((_, mut respond))) = conn.accept().await {
                        respond.send_response(http::Response::new(()), true).unwrap();
                    }
                } else {
                    let mut buf = [0; 1024];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
                }
            });
        }
    });
    let tls = tandem_connect::TlsConfig::builder()
        .add_root_certificates_pem(leaf.pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    (Origin::new(Scheme::Https, "localhost", port), tls)
}

/// ALPN decides under `Auto`; `Never` offers HTTP/1.1 alone; prior knowledge over TLS
/// offers `h2` alone.
#[cfg(feature = "tls")]
#[tokio::test]
async fn over_tls_alpn_chooses_the_version() {
    let resolve = |origin: &Origin| {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], origin.port()));
        Connector::builder().resolve("localhost", [addr])
    };
    let (h2_origin, tls) = alpn_server(&[b"h2", b"http/1.1"]).await;
    let connector = resolve(&h2_origin).tls(tls).build();
    let checkout = |mode| {
        let options = ConnectOptions::new().http2(mode);
        let (connector, origin) = (&connector, &h2_origin);
        async move { prompt(connector.checkout(origin, &options)).await.unwrap() }
    };
    let auto = checkout(Http2::Auto).await;
    let Checkout::Http2(stream) = &auto else { panic!("Auto got {auto:?}") };
    let alpn = stream.info().tls.as_ref().and_then(|t| t.alpn.clone());
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let never = checkout(Http2::Never).await;
    assert!(matches!(never, Checkout::Http1(_)), "{never:?}");
    let prior = checkout(Http2::PriorKnowledge).await;
    assert!(matches!(&prior, Checkout::Http2(s) if s.is_reused()), "{prior:?}");
    let stats = connector.stats_for(&h2_origin);
    assert_eq!((stats.active, stats.streams), (2, 2), "one connection of each version");

    let (h1_origin, tls) = alpn_server(&[b"http/1.1"]).await;
    let connector = resolve(&h1_origin).tls(tls).build();
    let options = ConnectOptions::new();
    match prompt(connector.checkout(&h1_origin, &options)).await.unwrap() {
        Checkout::Http1(conn) => {
            let alpn = conn.info().tls.as_ref().and_then(|t| t.alpn.clone());
            assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        }
        other @ Checkout::Http2(_) => panic!("Auto got {other:?} from an HTTP/1.1 server"),
    }
}
