//! HTTP/2 connections in the pool. Each carries many requests at once, so it is shared by
//! its checkouts instead of lent to one: a checkout gets an [`Http2Stream`], a handle to
//! open one stream on it.
//!
//! A shared connection holds its slots (`limit`, `limit_per_host`) while at least one
//! request is in flight on it, as an HTTP/1.1 connection holds its own while lent: it counts
//! once in `active` however many requests it carries, and with none it is idle, holds no
//! slot, and expires after `keepalive_timeout`.
//!
//! A checkout takes a stream on the oldest connection with room under the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` (as `h2` last heard it), so requests gather on as few
//! connections as they fit on and the others expire. When every connection is full, the
//! checkout opens another one if a slot is free now, and otherwise queues its stream on the
//! least busy one, where `h2` holds it until the server lets it open. While a connection
//! that will speak HTTP/2 is being opened, the checkouts that could share it wait for it
//! rather than each open their own.
//!
//! A connection the server said GOAWAY to, or that failed, is never handed out again; the
//! task driving it takes it out of the pool when it ends.

use std::{
    sync::Arc,
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::{sync::futures::OwnedNotified, time::Instant};

use super::{Host, Lease, Pool, PoolKey, Slots};
use crate::{ConnectionInfo, Http2Stream};

/// One HTTP/2 connection in the pool.
pub(super) struct Shared {
    id: u64,
    send: SendRequest<Bytes>,
    info: Arc<ConnectionInfo>,
    /// Requests checked out on it and not yet done.
    streams: usize,
    /// Its slots, held while `streams > 0`.
    slots: Option<Slots>,
    /// When its last request ended, or when it opened.
    since: Instant,
}

impl Shared {
    /// Whether new streams may go on it: it is up and has not been told to go away. A
    /// handle that has never sent a request is never waiting for a stream, so this only
    /// reads the connection's error, without registering anything.
    fn alive(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        matches!(self.send.poll_ready(&mut cx), Poll::Ready(Ok(())))
    }

    /// Whether another stream fits under the server's limit.
    fn has_room(&self) -> bool {
        self.streams < self.send.current_max_send_streams()
    }
}

/// What the pool's HTTP/2 connections offer one checkout.
pub(crate) enum SharedCheckout {
    /// A stream on one of them.
    Stream(Http2Stream),
    /// A connection is being opened for the key: this resolves when it is ready, or failed.
    Opening(OwnedNotified),
    /// Every one is at the server's stream limit, the lowest of which this is: a new
    /// connection assumes it until the server says otherwise.
    Full(usize),
    /// One has room but is idle, and no slot is free to make it active.
    NeedsSlot,
    /// There is none.
    Nothing,
}

impl Pool {
    /// A stream on one of `host`'s connections (`host` is `key`'s). An idle connection
    /// needs slots: `lease`'s if there is one (taken), else slots free now.
    pub(super) fn shared_stream(
        self: &Arc<Self>,
        host: &mut Host,
        key: &PoolKey,
        mut lease: Option<&mut Option<Lease>>,
    ) -> SharedCheckout {
        prune(host, self.keepalive);
        let mut needs_slot = false;
        for i in 0..host.shared.len() {
            if !host.shared[i].has_room() {
                continue;
            }
            if host.shared[i].streams == 0 {
                let slots = match lease.as_mut().and_then(|l| l.take()) {
                    Some(lease) => Some(lease.into_slots()),
                    None => self.free_slots(host),
                };
                let Some(slots) = slots else {
                    needs_slot = true;
                    continue;
                };
                host.active += 1;
                host.shared[i].slots = Some(slots);
            }
            return SharedCheckout::Stream(self.stream_on(&mut host.shared[i], key));
        }
        if host.opening > 0 {
            let opened = host.opened.get_or_insert_with(Default::default);
            return SharedCheckout::Opening(Arc::clone(opened).notified_owned());
        }
        let limit = host.shared.iter().map(|c| c.send.current_max_send_streams()).min();
        match (needs_slot, limit) {
            (true, _) => SharedCheckout::NeedsSlot,
            (false, Some(limit)) => SharedCheckout::Full(limit),
            (false, None) => SharedCheckout::Nothing,
        }
    }

    /// As [`shared_stream`](Self::shared_stream), looking `key` up.
    pub(crate) fn shared_checkout(
        self: &Arc<Self>,
        key: &PoolKey,
        lease: &mut Option<Lease>,
    ) -> SharedCheckout {
        let mut hosts = self.hosts();
        match hosts.get_mut(key) {
            Some(host) => self.shared_stream(host, key, Some(lease)),
            None => SharedCheckout::Nothing,
        }
    }

    /// A stream on the least busy of `key`'s connections, past the server's limit if need
    /// be (`h2` then holds it until a stream closes): for a checkout that found them all
    /// full and no slot to open another. `None` if `key` has no active connection left.
    pub(crate) fn queue_stream(self: &Arc<Self>, key: &PoolKey) -> Option<Http2Stream> {
        let mut hosts = self.hosts();
        let host = hosts.get_mut(key)?;
        prune(host, self.keepalive);
        let conn = host.shared.iter_mut().filter(|c| c.streams > 0).min_by_key(|c| c.streams)?;
        Some(self.stream_on(conn, key))
    }

    fn stream_on(self: &Arc<Self>, conn: &mut Shared, key: &PoolKey) -> Http2Stream {
        conn.streams += 1;
        Http2Stream {
            send: conn.send.clone(),
            pool: Arc::clone(self),
            key: key.clone(),
            id: conn.id,
            info: Arc::clone(&conn.info),
            reused: true,
        }
    }

    /// Adds a connection that just opened, with the slots `lease` held for it, and its
    /// first stream.
    pub(crate) fn add_shared(
        self: &Arc<Self>,
        lease: Lease,
        id: u64,
        send: SendRequest<Bytes>,
        info: ConnectionInfo,
    ) -> Http2Stream {
        let key = lease.key().clone();
        let mut conn = Shared {
            id,
            send,
            info: Arc::new(info),
            streams: 0,
            slots: Some(lease.into_slots()),
            since: Instant::now(),
        };
        let mut stream = self.stream_on(&mut conn, &key);
        stream.reused = false;
        let mut hosts = self.hosts();
        // The lease counted the connection active, and its host stays while it does.
        let host = super::host_entry(&mut hosts, &key);
        host.shared.push(conn);
        stream
    }

    /// A stream on connection `id` ended: with none left, the connection is idle and
    /// frees its slots.
    pub(crate) fn end_stream(&self, key: &PoolKey, id: u64) {
        let freed = {
            let mut hosts = self.hosts();
            let Some(host) = hosts.get_mut(key) else { return };
            let Some(conn) = host.shared.iter_mut().find(|c| c.id == id) else { return };
            conn.streams -= 1;
            if conn.streams > 0 {
                return;
            }
            conn.since = Instant::now();
            host.active -= 1;
            conn.slots.take()
        };
        drop(freed);
    }

    /// Connection `id` ended (its task returned): it leaves the pool, freeing its slots
    /// if it held them. Requests still on it fail by themselves.
    pub(crate) fn remove_shared(&self, key: &PoolKey, id: u64) {
        let removed = {
            let mut hosts = self.hosts();
            let Some(host) = hosts.get_mut(key) else { return };
            let Some(at) = host.shared.iter().position(|c| c.id == id) else { return };
            let conn = host.shared.remove(at);
            if conn.streams > 0 {
                host.active -= 1;
            }
            if host.unused() {
                hosts.remove(key);
            }
            conn
        };
        drop(removed);
    }

    /// Counts a connection for `key` as being opened until the returned guard is dropped:
    /// checkouts that find none with room wait for it instead of opening their own.
    pub(crate) fn opening_shared(self: &Arc<Self>, key: &PoolKey) -> OpeningShared {
        super::host_entry(&mut self.hosts(), key).opening += 1;
        OpeningShared { pool: Arc::clone(self), key: key.clone() }
    }
}

/// A connection being opened for checkouts to share; dropping it (opened or failed) wakes
/// the checkouts waiting for it.
pub(crate) struct OpeningShared {
    pool: Arc<Pool>,
    key: PoolKey,
}

impl Drop for OpeningShared {
    fn drop(&mut self) {
        let mut hosts = self.pool.hosts();
        let Some(host) = hosts.get_mut(&self.key) else { return };
        host.opening -= 1;
        if let Some(opened) = &host.opened {
            opened.notify_waiters();
        }
        if host.opening == 0 {
            host.opened = None;
        }
        if host.unused() {
            hosts.remove(&self.key);
        }
    }
}

/// Drops `host`'s connections that are dead or told to go away, and idle ones that expired.
/// Requests still on a dead one fail by themselves; its slots are freed now.
fn prune(host: &mut Host, keepalive: std::time::Duration) {
    let mut i = 0;
    while i < host.shared.len() {
        let conn = &mut host.shared[i];
        if conn.alive() && (conn.streams > 0 || conn.since.elapsed() < keepalive) {
            i += 1;
            continue;
        }
        if host.shared.remove(i).streams > 0 {
            host.active -= 1;
        }
    }
}

/// Takes the idle connections out of `shared`, to close them.
pub(super) fn take_idle(shared: &mut Vec<Shared>) -> Vec<Shared> {
    let (idle, busy) = std::mem::take(shared).into_iter().partition(|c| c.streams == 0);
    *shared = busy;
    idle
}

/// Idle connections not yet expired, and requests in flight, among `shared`.
pub(super) fn counts(shared: &[Shared], keepalive: std::time::Duration) -> (usize, usize) {
    let idle = shared.iter().filter(|c| c.streams == 0 && c.since.elapsed() < keepalive).count();
    (idle, shared.iter().map(|c| c.streams).sum())
}

/// A fresh connection's id, unique in the process.
pub(crate) fn next_shared_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Drop for Http2Stream {
    fn drop(&mut self) {
        self.pool.end_stream(&self.key, self.id);
    }
}
