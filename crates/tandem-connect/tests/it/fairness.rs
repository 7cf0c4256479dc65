//! Waiting for a slot is fair across hosts: the global slots go to the hosts with waiters
//! in turn, a cancelled waiter gives back what it had, and per-host limits still hold.

use futures_util::{StreamExt, stream::FuturesUnordered};
use tandem_connect::{Connection, Connector, Error, Origin};

use crate::{Server, prompt, still_pending};

/// How many checkouts queue for the busy host.
const BUSY_WAITERS: usize = 50;

#[tokio::test]
async fn a_busy_host_cannot_starve_another() {
    let (a, b) = (Server::start().await, Server::start().await);
    let connector = Connector::builder().limit(1).build();
    let (origin_a, origin_b) = (a.origin(), b.origin());
    let holder = prompt(connector.connect(&origin_a)).await.unwrap();

    // Fifty checkouts queue for a, then one for b; polling each once puts it in line.
    let checkout = |label: &'static str, origin: &Origin| {
        let (connector, origin) = (connector.clone(), origin.clone());
        Box::pin(async move { (label, connector.connect(&origin).await) })
    };
    let mut queued = Vec::new();
    for _ in 0..BUSY_WAITERS {
        queued.push(checkout("a", &origin_a));
    }
    queued.push(checkout("b", &origin_b));
    for fut in &mut queued {
        assert!(still_pending(fut).await);
    }
    assert_eq!(connector.stats_for(&origin_a).waiting, BUSY_WAITERS);
    assert_eq!(connector.stats_for(&origin_b).waiting, 1);

    // One slot: each checkout served closes its connection, which hands the slot on. The
    // order they complete in is the order they were served in.
    drop(holder);
    let mut in_flight: FuturesUnordered<_> = queued.into_iter().collect();
    let mut order = Vec::new();
    while let Some((label, conn)) = prompt(in_flight.next()).await {
        let conn: Result<Connection, Error> = conn;
        drop(conn.unwrap());
        order.push(label);
    }
    assert_eq!(order.len(), BUSY_WAITERS + 1);
    let b_at = order.iter().position(|&l| l == "b").unwrap();
    assert_eq!(b_at, 1, "b waited behind {b_at} of a's checkouts: {order:?}");
}

#[tokio::test]
async fn a_cancelled_waiter_frees_nothing_and_blocks_no_one() {
    let (a, b) = (Server::start().await, Server::start().await);
    let connector = Connector::builder().limit(1).build();
    let (origin_a, origin_b) = (a.origin(), b.origin());
    let holder = prompt(connector.connect(&origin_a)).await.unwrap();

    // Cancelled while waiting: it leaves the line and takes nothing with it.
    let mut on_a = Box::pin(connector.connect(&origin_a));
    let mut on_b = Box::pin(connector.connect(&origin_b));
    assert!(still_pending(&mut on_a).await);
    assert!(still_pending(&mut on_b).await);
    drop(on_a);
    assert_eq!(connector.stats_for(&origin_a).waiting, 0);
    let mut later = Box::pin(connector.connect(&origin_a));
    assert!(still_pending(&mut later).await, "the cancelled waiter freed a slot");
    drop(later);
    drop(holder);
    let holder = prompt(on_b).await.unwrap();

    // Handed the slot and cancelled before it woke: the slot goes on to the next in turn.
    let mut on_a = Box::pin(connector.connect(&origin_a));
    let mut on_b = Box::pin(connector.connect(&origin_b));
    assert!(still_pending(&mut on_a).await);
    assert!(still_pending(&mut on_b).await);
    drop(holder);
    drop(on_a);
    let holder = prompt(on_b).await.unwrap();
    let mut later = Box::pin(connector.connect(&origin_a));
    assert!(still_pending(&mut later).await, "a slot was counted twice");
    drop(holder);
    prompt(later).await.unwrap();
}

#[tokio::test]
async fn per_host_limits_hold_beside_the_fair_queue() {
    let servers = [Server::start().await, Server::start().await, Server::start().await];
    let [a, b, c] = servers.map(|s| s.origin());
    let connector = Connector::builder().limit(2).limit_per_host(1).build();
    let on_a = prompt(connector.connect(&a)).await.unwrap();
    let mut second_a = Box::pin(connector.connect(&a));
    assert!(still_pending(&mut second_a).await, "a's own limit is 1");
    let on_b = prompt(connector.connect(&b)).await.unwrap();
    let mut on_c = Box::pin(connector.connect(&c));
    assert!(still_pending(&mut on_c).await, "both global slots are taken");

    // a's slot frees: a's waiter now may go, but c has waited longer for a global slot.
    drop(on_a);
    let on_c = prompt(on_c).await.unwrap();
    assert!(still_pending(&mut second_a).await);
    assert_eq!(connector.stats_for(&a).active, 0);

    drop(on_b);
    let second_a = prompt(second_a).await.unwrap();
    let mut third_a = Box::pin(connector.connect(&a));
    drop(on_c);
    assert!(still_pending(&mut third_a).await, "a global slot is free, a's own is not");
    assert_eq!(connector.stats_for(&a).active, 1);
    drop(second_a);
    prompt(third_a).await.unwrap();
}
