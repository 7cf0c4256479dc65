//! The pool: reuse, limits, fairness, expiry and statistics.

use std::time::Duration;

use tandem_connect::{Connector, PoolStats};

use crate::{Server, prompt, still_pending};

/// A snapshot's counts as `(idle, active, waiting)`: `PoolStats` is non-exhaustive.
fn counts(stats: PoolStats) -> (usize, usize, usize) {
    (stats.idle, stats.active, stats.waiting)
}

#[tokio::test]
async fn released_connections_are_reused_and_dropped_ones_closed() {
    let server = Server::start().await;
    let connector = Connector::new();
    let origin = server.origin();

    let conn = prompt(connector.connect(&origin)).await.unwrap();
    assert!(!conn.is_reused());
    assert_eq!(counts(connector.stats_for(&origin)), (0, 1, 0));
    conn.release();
    assert_eq!(counts(connector.stats_for(&origin)), (1, 0, 0));

    let conn = prompt(connector.connect(&origin)).await.unwrap();
    assert!(conn.is_reused());
    prompt(server.accepted(1)).await;
    drop(conn);
    assert_eq!(connector.stats_for(&origin), PoolStats::default());
    assert!(connector.pool_stats().is_empty(), "unused origins are forgotten");

    let conn = prompt(connector.connect(&origin)).await.unwrap();
    assert!(!conn.is_reused());
    prompt(server.accepted(2)).await;
}

/// The read buffer a connection's user leaves comes back with it, emptied: its memory is
/// reused, never its bytes.
#[tokio::test]
async fn a_pooled_connection_keeps_its_read_buffer_empty() {
    let server = Server::start().await;
    let connector = Connector::new();
    let origin = server.origin();
    let mut conn = prompt(connector.connect(&origin)).await.unwrap();
    assert!(conn.take_read_buf().is_empty());
    let mut left = bytes::BytesMut::with_capacity(4096);
    left.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
    conn.set_read_buf(left);
    conn.release();
    let mut conn = prompt(connector.connect(&origin)).await.unwrap();
    assert!(conn.is_reused());
    let buf = conn.take_read_buf();
    assert!(buf.is_empty(), "bytes of an earlier exchange survived: {buf:?}");
    assert!(buf.capacity() >= 4096, "the memory was not kept");
}

#[tokio::test]
async fn force_close_never_pools() {
    let server = Server::start().await;
    let connector = Connector::builder().force_close(true).build();
    let origin = server.origin();
    prompt(connector.connect(&origin)).await.unwrap().release();
    assert_eq!(connector.stats_for(&origin).idle, 0);
    assert!(!prompt(connector.connect(&origin)).await.unwrap().is_reused());
}

#[tokio::test]
async fn limit_makes_the_next_checkout_wait_until_a_release() {
    let (a, b) = (Server::start().await, Server::start().await);
    let connector = Connector::builder().limit(1).build();
    let first = prompt(connector.connect(&a.origin())).await.unwrap();

    let other = b.origin();
    let mut waiting = Box::pin(connector.connect(&other));
    assert!(still_pending(&mut waiting).await);
    assert_eq!(connector.stats_for(&other).waiting, 1);

    first.release();
    let second = prompt(waiting).await.unwrap();
    assert_eq!(counts(connector.stats_for(&other)), (0, 1, 0));
    drop(second);
}

#[tokio::test]
async fn limit_per_host_blocks_only_that_host() {
    let (a, b) = (Server::start().await, Server::start().await);
    let connector = Connector::builder().limit_per_host(1).build();
    let first = prompt(connector.connect(&a.origin())).await.unwrap();

    let origin_a = a.origin();
    let mut same_host = Box::pin(connector.connect(&origin_a));
    assert!(still_pending(&mut same_host).await);
    // Another host is not held up by the waiter.
    let on_b = prompt(connector.connect(&b.origin())).await.unwrap();
    assert!(still_pending(&mut same_host).await);

    drop(first);
    let second = prompt(same_host).await.unwrap();
    assert!(!second.is_reused(), "the first was dropped, not released");
    drop((second, on_b));
}

#[tokio::test]
async fn waiters_are_served_first_come_first_served() {
    let servers = [Server::start().await, Server::start().await, Server::start().await];
    let connector = Connector::builder().limit(1).build();
    let holder = prompt(connector.connect(&servers[0].origin())).await.unwrap();

    let (o1, o2) = (servers[1].origin(), servers[2].origin());
    let mut w1 = Box::pin(connector.connect(&o1));
    let mut w2 = Box::pin(connector.connect(&o2));
    assert!(still_pending(&mut w1).await);
    assert!(still_pending(&mut w2).await);

    drop(holder);
    // The slot went to the first waiter: the second still waits even though polled first.
    assert!(still_pending(&mut w2).await);
    let c1 = prompt(w1).await.unwrap();
    assert!(still_pending(&mut w2).await);
    drop(c1);
    prompt(w2).await.unwrap();
}

/// An idle connection is taken at once only with a free slot: a released connection's slot
/// goes to the checkout already waiting, and a later one waits behind it.
#[tokio::test]
async fn an_idle_connection_does_not_jump_the_queue() {
    let server = Server::start().await;
    let connector = Connector::builder().limit(1).build();
    let origin = server.origin();
    let first = prompt(connector.connect(&origin)).await.unwrap();
    let mut waiter = Box::pin(connector.connect(&origin));
    assert!(still_pending(&mut waiter).await);

    first.release();
    let mut later = Box::pin(connector.connect(&origin));
    assert!(still_pending(&mut later).await, "took the slot the waiter was promised");
    let second = prompt(waiter).await.unwrap();
    assert!(second.is_reused());
    assert_eq!(counts(connector.stats_for(&origin)), (0, 1, 1));

    second.release();
    let third = prompt(later).await.unwrap();
    assert!(third.is_reused());
    assert_eq!(counts(connector.stats_for(&origin)), (0, 1, 0));
    prompt(server.accepted(1)).await;
}

#[tokio::test]
async fn waiting_is_bounded_by_pool_timeout() {
    let server = Server::start().await;
    let connector =
        Connector::builder().limit(1).pool_timeout(Some(Duration::from_millis(20))).build();
    let origin = server.origin();
    let _held = prompt(connector.connect(&origin)).await.unwrap();
    let err = prompt(connector.connect(&origin)).await.unwrap_err();
    assert!(err.is_timeout() && err.is_pool_timeout() && !err.is_connect(), "{err:?}");
    assert_eq!(connector.stats_for(&origin).waiting, 0);
}

#[tokio::test]
async fn a_cancelled_checkout_stops_waiting() {
    let server = Server::start().await;
    let connector = Connector::builder().limit(1).build();
    let origin = server.origin();
    let held = prompt(connector.connect(&origin)).await.unwrap();
    let mut waiting = Box::pin(connector.connect(&origin));
    assert!(still_pending(&mut waiting).await);
    drop(waiting);
    assert_eq!(counts(connector.stats_for(&origin)), (0, 1, 0));
    drop(held);
    prompt(connector.connect(&origin)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn idle_connections_expire_after_keepalive_timeout() {
    // No `prompt` here: with the clock paused a timeout would fire as soon as the runtime
    // waits on the socket.
    let server = Server::start().await;
    let connector = Connector::builder().keepalive_timeout(Duration::from_secs(2)).build();
    let origin = server.origin();

    connector.connect(&origin).await.unwrap().release();
    tokio::time::advance(Duration::from_secs(1)).await;
    let conn = connector.connect(&origin).await.unwrap();
    assert!(conn.is_reused(), "still inside the keep-alive window");
    conn.release();

    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(connector.stats_for(&origin).idle, 0, "expired connections are not counted");
    let conn = connector.connect(&origin).await.unwrap();
    assert!(!conn.is_reused());
    server.accepted(2).await;
}

#[tokio::test]
async fn close_idle_closes_pooled_connections() {
    let server = Server::start().await;
    let connector = Connector::new();
    let origin = server.origin();
    prompt(connector.connect(&origin)).await.unwrap().release();
    connector.close_idle();
    assert!(!prompt(connector.connect(&origin)).await.unwrap().is_reused());
}

#[tokio::test]
async fn clones_share_the_pool() {
    let server = Server::start().await;
    let connector = Connector::new();
    let origin = server.origin();
    prompt(connector.connect(&origin)).await.unwrap().release();
    assert!(prompt(connector.clone().connect(&origin)).await.unwrap().is_reused());
}

/// Records the names of the events it sees.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    fn push(&self, what: &str) {
        self.0.lock().unwrap().push(what.to_owned());
    }
}

impl tandem_connect::ConnectEvents for Recorder {
    fn queued_start(&self, _: &tandem_connect::Origin) {
        self.push("queued_start");
    }
    fn queued_end(&self, _: &tandem_connect::Origin) {
        self.push("queued_end");
    }
    fn create_start(&self, _: &tandem_connect::Origin) {
        self.push("create_start");
    }
    fn create_end(&self, _: &tandem_connect::Origin) {
        self.push("create_end");
    }
    fn reuseconn(&self, _: &tandem_connect::Origin) {
        self.push("reuseconn");
    }
    fn dns_resolvehost_start(&self, _: &str) {
        self.push("dns_start");
    }
    fn dns_resolvehost_end(&self, _: &str) {
        self.push("dns_end");
    }
    fn dns_cache_hit(&self, _: &str) {
        self.push("dns_hit");
    }
    fn dns_cache_miss(&self, _: &str) {
        self.push("dns_miss");
    }
}

#[tokio::test]
async fn checkouts_report_their_steps() {
    let server = Server::start().await;
    let connector = Connector::builder().limit(1).build();
    let origin =
        tandem_connect::Origin::new(tandem_connect::Scheme::Http, "localhost", server.port);
    let rec = std::sync::Arc::new(Recorder::default());
    let opts = tandem_connect::ConnectOptions::new().events(rec.clone());

    let first = prompt(connector.connect_with(&origin, &opts)).await.unwrap();
    assert_eq!(rec.take(), ["create_start", "dns_miss", "dns_start", "dns_end", "create_end"]);

    let mut second = Box::pin(connector.connect_with(&origin, &opts));
    assert!(still_pending(&mut second).await);
    assert_eq!(rec.take(), ["queued_start"]);
    first.release();
    drop(prompt(second).await.unwrap());
    assert_eq!(rec.take(), ["queued_end", "reuseconn"]);

    drop(prompt(connector.connect_with(&origin, &opts)).await.unwrap());
    assert_eq!(rec.take(), ["create_start", "dns_hit", "create_end"]);
}

/// A listener whose first connection is sent `junk` (or closed, for `None`) on demand.
async fn poisoning_server(
    junk: Option<&'static [u8]>,
) -> (tandem_connect::Origin, tokio::sync::oneshot::Sender<()>, tokio::sync::oneshot::Receiver<()>)
{
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut first, _) = listener.accept().await.unwrap();
        go_rx.await.unwrap();
        match junk {
            Some(bytes) => first.write_all(bytes).await.unwrap(),
            None => drop(first),
        }
        done_tx.send(()).unwrap();
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (tandem_connect::Origin::new(tandem_connect::Scheme::Http, "127.0.0.1", port), go, done)
}

#[tokio::test]
async fn pooled_connections_that_were_closed_or_written_to_are_not_reused() {
    for junk in [None, Some(&b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..])] {
        let (origin, go, done) = poisoning_server(junk).await;
        let connector = Connector::new();
        prompt(connector.connect(&origin)).await.unwrap().release();
        go.send(()).unwrap();
        prompt(done).await.unwrap();
        // The bytes (or FIN) are in our socket's buffer now; `yield_now` lets the runtime
        // poll its reactor, which marks the socket readable, before the checkout looks.
        tokio::task::yield_now().await;
        let conn = prompt(connector.connect(&origin)).await.unwrap();
        assert!(!conn.is_reused(), "junk: {junk:?}");
    }
}

#[tokio::test]
async fn limit_zero_means_unlimited() {
    let server = Server::start().await;
    let connector = Connector::builder().limit(0).build();
    let origin = server.origin();
    let mut held = Vec::new();
    for _ in 0..(tandem_connect::DEFAULT_LIMIT + 5) {
        held.push(prompt(connector.connect(&origin)).await.unwrap());
    }
    assert_eq!(connector.stats_for(&origin).active, tandem_connect::DEFAULT_LIMIT + 5);
}
