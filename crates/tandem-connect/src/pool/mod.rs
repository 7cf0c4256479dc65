//! The connection pool: slots (`limit`, `limit_per_host`), idle connections per key, and the
//! statistics the user reads.
//!
//! A slot is a semaphore permit. A [`Lease`] holds the permits of one open connection and
//! gives them back when it is dropped, whether the connection was released to the pool or
//! closed, so a leaked or panicking caller can never shrink the pool. Idle connections hold
//! no permit (as in aiohttp, `limit` bounds connections in use), and expire after
//! `keepalive_timeout`, checked when they are taken rather than by a background task: a pool
//! nobody uses costs nothing, and an expired connection is never handed out.
//!
//! Fairness: a checkout takes its per-host permit first (a tokio `Semaphore` per host, first
//! come, first served) and the global one second, so a waiter parked on a busy host holds no
//! global slot and never blocks other hosts. Global slots go to the hosts with waiters in
//! turn (`fair.rs`), so one host's many waiters cannot make another host's few wait for all
//! of them.
//!
//! HTTP/2 connections are shared rather than checked out; `shared.rs` keeps them.

use std::{
    collections::HashMap,
    hash::{BuildHasher, BuildHasherDefault, Hash, Hasher},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll, Waker},
    time::Duration,
};

use tokio::{
    io::ReadBuf,
    sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError},
    time::Instant,
};

use crate::{
    ConnectEvents, Http2, Http2Stream, Io, Origin, Proxy,
    connection::Parts,
    error::{Error, Kind},
};

mod fair;
mod shared;

use fair::{FairSlot, FairSlots};
pub(crate) use shared::{SharedCheckout, next_shared_id};

/// What connections are pooled by: the origin, and which TLS settings made the connection, so
/// a connection made without verification is never handed to a request that wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PoolKey {
    pub(crate) origin: Origin,
    /// 0 for plain connections, else the `TlsConfig`'s identity.
    tls: u64,
    /// The proxy (with its credentials) the connection goes through.
    proxy: Option<Proxy>,
    /// The TLS name, when it is not the origin's host (aiohttp #12835).
    server_name: Option<String>,
    /// The fields above hashed once, when the key is made: a checkout and its release look
    /// the key up seven times, each a hash of the origin, proxy and names otherwise. The
    /// hash is foldhash's randomly seeded one, a fraction of `SipHash`'s cost: hosts come
    /// from URLs, which a hostile redirect chooses, but the map holds only the origins of
    /// open connections (at most `limit` of them in use), so colliding keys could not make
    /// lookups costly.
    hash: u64,
}

impl PoolKey {
    pub(crate) fn new(
        origin: Origin,
        tls: u64,
        proxy: Option<Proxy>,
        server_name: Option<String>,
    ) -> Self {
        static KEYS: std::sync::OnceLock<foldhash::quality::RandomState> =
            std::sync::OnceLock::new();
        let hash =
            KEYS.get_or_init(Default::default).hash_one((&origin, tls, &proxy, &server_name));
        PoolKey { origin, tls, proxy, server_name, hash }
    }

    /// The proxy the connection goes through.
    pub(crate) fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }
}

impl Hash for PoolKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Passes a [`PoolKey`]'s precomputed hash through.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever called, by `PoolKey::hash`; this fold keeps any other
        // use correct, if slower.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Hosts = HashMap<PoolKey, Host, BuildHasherDefault<KeyHasher>>;

/// A snapshot of the pool for one origin (non-exhaustive: read its fields; new ones may come).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Open connections waiting in the pool for reuse (not yet expired).
    pub idle: usize,
    /// Connections checked out and in use.
    pub active: usize,
    /// Checkouts waiting for a free slot.
    pub waiting: usize,
    /// Requests in flight on HTTP/2 connections: each such connection counts once in
    /// `active` (or, with none, in `idle`) however many it carries.
    pub streams: usize,
}

pub(crate) struct Pool {
    all: Option<Arc<FairSlots>>,
    limit_per_host: usize,
    keepalive: Duration,
    force_close: bool,
    hosts: Mutex<Hosts>,
}

#[derive(Default)]
struct Host {
    /// Oldest first: checkout takes the newest (least likely to have been closed by the
    /// server), expiry trims from the front.
    idle: Vec<Idle>,
    active: usize,
    waiting: usize,
    /// Present when `limit_per_host` is set.
    slots: Option<Arc<Semaphore>>,
    /// HTTP/2 connections, oldest first, idle or carrying requests.
    shared: Vec<shared::Shared>,
    /// HTTP/2 connections being opened, which checkouts wait for rather than open their own.
    opening: usize,
    /// Woken when a connection being opened is ready, or failed.
    opened: Option<Arc<Notify>>,
}

impl Host {
    fn unused(&self) -> bool {
        self.idle.is_empty()
            && self.active == 0
            && self.waiting == 0
            && self.shared.is_empty()
            && self.opening == 0
    }
}

/// The permits one connection holds: its host's (under `limit_per_host`) and the global one
/// (under `limit`).
type Slots = (Option<OwnedSemaphorePermit>, Option<FairSlot>);

struct Idle {
    parts: Parts,
    since: Instant,
}

impl Pool {
    pub(crate) fn new(
        limit: usize,
        limit_per_host: usize,
        keepalive: Duration,
        force_close: bool,
    ) -> Self {
        Pool {
            all: (limit > 0).then(|| Arc::new(FairSlots::new(limit))),
            limit_per_host,
            keepalive,
            force_close,
            hosts: Mutex::new(Hosts::default()),
        }
    }

    fn hosts(&self) -> MutexGuard<'_, Hosts> {
        // No code panics while holding the lock; if one ever did, the map is still consistent.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot for `key`, at most `wait` if given.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        key: &PoolKey,
        wait: Option<Duration>,
        events: Option<&dyn ConnectEvents>,
    ) -> Result<Lease, Error> {
        let per_host = {
            let mut hosts = self.hosts();
            let host = host_entry(&mut hosts, key);
            host.waiting += 1;
            if self.limit_per_host > 0 {
                let slots =
                    host.slots.get_or_insert_with(|| Arc::new(Semaphore::new(self.limit_per_host)));
                Some(Arc::clone(slots))
            } else {
                None
            }
        };
        // Counts this checkout as waiting until it has its slot or is cancelled.
        let waiter = Waiter { pool: self, key };
        let mut queued = false;
        let take = async {
            let host = match per_host {
                Some(s) => Some(slot(s, &mut queued, key, events).await?),
                None => None,
            };
            let all = match &self.all {
                Some(s) => Some(if let Some(slot) = s.try_acquire() {
                    slot
                } else {
                    note_queued(&mut queued, key, events);
                    s.acquire(key).await
                }),
                None => None,
            };
            if queued && let Some(ev) = events {
                ev.queued_end(&key.origin);
            }
            Ok::<_, Error>((host, all))
        };
        let (host, all) = match wait {
            Some(d) => tokio::time::timeout(d, take)
                .await
                .map_err(|_| Error::bare(Kind::PoolTimeout))??,
            None => take.await?,
        };
        waiter.into_active();
        Ok(Lease { pool: Arc::clone(self), key: key.clone(), slots: (host, all), returned: false })
    }

    /// A connection for `key` that is there now, with its slots if slots are free now: a
    /// checkout that needs no waiting. A stream on an HTTP/2 connection comes first (unless
    /// `http2` is `Never`), then the newest usable idle HTTP/1.1 connection (unless it is
    /// `PriorKnowledge`). `try_acquire` fails while others wait (released permits go to
    /// waiters first), so this never jumps the queue.
    pub(crate) fn try_reuse(self: &Arc<Self>, key: &PoolKey, http2: Http2) -> Option<Reused> {
        let mut candidate = {
            let mut hosts = self.hosts();
            let host = hosts.get_mut(key)?;
            if http2 != Http2::Never
                && !host.shared.is_empty()
                && let SharedCheckout::Stream(stream) = self.shared_stream(host, key, None)
            {
                return Some(Reused::Http2(stream));
            }
            if http2 == Http2::PriorKnowledge {
                return None;
            }
            host.idle.pop()?
        };
        while !self.usable(&mut candidate) {
            candidate = self.hosts().get_mut(key)?.idle.pop()?;
        }
        let mut hosts = self.hosts();
        let host = hosts.get_mut(key)?;
        let Some(slots) = self.free_slots(host) else {
            // Back where it was, for the checkout that waits for a slot.
            host.idle.push(candidate);
            return None;
        };
        host.active += 1;
        drop(hosts);
        let lease = Lease { pool: Arc::clone(self), key: key.clone(), slots, returned: false };
        Some(Reused::Http1(lease, candidate.parts))
    }

    /// A slot for `key` if one is free now, without waiting (and without jumping the
    /// queue of those who wait).
    pub(crate) fn try_lease(self: &Arc<Self>, key: &PoolKey) -> Option<Lease> {
        let mut hosts = self.hosts();
        let host = host_entry(&mut hosts, key);
        let slots = self.free_slots(host)?;
        host.active += 1;
        Some(Lease { pool: Arc::clone(self), key: key.clone(), slots, returned: false })
    }

    /// `host`'s slot (if `limit_per_host` is set) and a global one (if `limit` is), when
    /// both are free now; `None` if either is not.
    fn free_slots(&self, host: &Host) -> Option<Slots> {
        let per_host = match (&host.slots, self.limit_per_host) {
            (_, 0) => None,
            (Some(s), _) => Some(Arc::clone(s).try_acquire_owned().ok()?),
            (None, _) => return None,
        };
        let all = match &self.all {
            Some(s) => Some(s.try_acquire()?),
            None => None,
        };
        Some((per_host, all))
    }

    /// The newest idle connection for `key` that has not expired and is still open.
    pub(crate) fn take_idle(&self, key: &PoolKey) -> Option<Parts> {
        self.pop_usable(key).map(|idle| idle.parts)
    }

    /// Pops idle connections for `key`, newest first, until one has not expired and is
    /// still open; the others are dropped (closed) outside the lock.
    fn pop_usable(&self, key: &PoolKey) -> Option<Idle> {
        loop {
            let mut candidate = self.hosts().get_mut(key)?.idle.pop()?;
            if self.usable(&mut candidate) {
                return Some(candidate);
            }
        }
    }

    /// Whether an idle connection has not expired and is still open.
    fn usable(&self, idle: &mut Idle) -> bool {
        idle.since.elapsed() < self.keepalive && still_open(&mut *idle.parts.io)
    }

    /// Puts a connection back, unless the pool closes every connection, and counts it no
    /// longer active, in the same visit to the map; `false` when it was not put back (the
    /// lease's drop then does the counting).
    fn put_idle(&self, key: &PoolKey, parts: Parts) -> bool {
        if self.force_close || self.keepalive.is_zero() {
            return false;
        }
        let expired: Vec<Idle> = {
            let mut hosts = self.hosts();
            let host = host_entry(&mut hosts, key);
            host.active -= 1;
            let keep = self.keepalive;
            let cut = host.idle.iter().take_while(|i| i.since.elapsed() >= keep).count();
            let expired = host.idle.drain(..cut).collect();
            host.idle.push(Idle { parts, since: Instant::now() });
            expired
        };
        drop(expired);
        true
    }

    /// Closes every idle connection, HTTP/2 ones with no request in flight too.
    pub(crate) fn close_idle(&self) {
        let idle: Vec<(Vec<Idle>, Vec<shared::Shared>)> = {
            let mut hosts = self.hosts();
            let idle = hosts
                .values_mut()
                .map(|h| (std::mem::take(&mut h.idle), shared::take_idle(&mut h.shared)))
                .collect();
            hosts.retain(|_, h| !h.unused());
            idle
        };
        drop(idle);
    }

    /// Statistics per origin (summed over TLS settings).
    pub(crate) fn stats(&self) -> Vec<(Origin, PoolStats)> {
        let mut out: Vec<(Origin, PoolStats)> = Vec::new();
        for (key, host) in self.hosts().iter() {
            let idle = host.idle.iter().filter(|i| i.since.elapsed() < self.keepalive).count();
            let (shared_idle, streams) = shared::counts(&host.shared, self.keepalive);
            let s = PoolStats {
                idle: idle + shared_idle,
                active: host.active,
                waiting: host.waiting,
                streams,
            };
            if let Some((_, t)) = out.iter_mut().find(|(o, _)| *o == key.origin) {
                t.idle += s.idle;
                t.active += s.active;
                t.waiting += s.waiting;
                t.streams += s.streams;
            } else {
                out.push((key.origin.clone(), s));
            }
        }
        out
    }
}

/// The entry for `key`: one lookup, and a key clone that costs a few reference counts.
fn host_entry<'a>(hosts: &'a mut Hosts, key: &PoolKey) -> &'a mut Host {
    hosts.entry(key.clone()).or_default()
}

/// A permit from `slots`: at once if one is free, else after waiting in line, which is
/// reported once per checkout as "queued".
async fn slot(
    slots: Arc<Semaphore>,
    queued: &mut bool,
    key: &PoolKey,
    events: Option<&dyn ConnectEvents>,
) -> Result<OwnedSemaphorePermit, Error> {
    // `try_acquire` fails while others wait (released permits go to waiters first), so
    // trying first does not jump the queue.
    match Arc::clone(&slots).try_acquire_owned() {
        Ok(permit) => return Ok(permit),
        Err(TryAcquireError::Closed) => return Err(Error::new(Kind::Connect, "pool closed")),
        Err(TryAcquireError::NoPermits) => {}
    }
    note_queued(queued, key, events);
    slots.acquire_owned().await.map_err(|e| Error::new(Kind::Connect, e))
}

/// Reports a checkout as "queued", once however many slots it waits for.
fn note_queued(queued: &mut bool, key: &PoolKey, events: Option<&dyn ConnectEvents>) {
    if !*queued {
        *queued = true;
        if let Some(ev) = events {
            ev.queued_start(&key.origin);
        }
    }
}

/// Whether a pooled connection is still usable: it must have nothing to read. End of stream
/// means the server closed it; bytes mean the server sent something nobody asked for, which
/// must never be read as the next response, so the connection is dropped either way.
///
/// Best effort: a close that the runtime's reactor has not yet noticed reads as pending, so a
/// reused connection can still turn out closed; the client retries a request that fails on a
/// reused connection before any response (see [`crate::Connection::is_reused`]).
fn still_open(io: &mut dyn Io) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(Pin::new(io).poll_read(&mut cx, &mut buf), Poll::Pending)
}

/// Keeps a checkout counted as waiting; on success it turns into an active count, and if the
/// checkout is cancelled or times out it is uncounted.
struct Waiter<'a> {
    pool: &'a Pool,
    key: &'a PoolKey,
}

impl Waiter<'_> {
    fn into_active(self) {
        if let Some(h) = self.pool.hosts().get_mut(self.key) {
            h.active += 1;
            h.waiting -= 1;
        }
        std::mem::forget(self);
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut hosts = self.pool.hosts();
        if let Some(h) = hosts.get_mut(self.key) {
            h.waiting -= 1;
            if h.unused() {
                hosts.remove(self.key);
            }
        }
    }
}

/// A connection the pool handed out at once, with no waiting.
pub(crate) enum Reused {
    /// An idle HTTP/1.1 connection, and the slot it now holds.
    Http1(Lease, Parts),
    /// A stream on an HTTP/2 connection.
    Http2(Http2Stream),
}

/// The slot one open connection holds. Dropping it frees the slot.
pub(crate) struct Lease {
    pool: Arc<Pool>,
    key: PoolKey,
    slots: Slots,
    /// The connection went back to the pool, which counted it inactive then (or became a
    /// shared HTTP/2 connection, which counts itself); the drop only frees the slots. (Two
    /// visits to the map became one.)
    returned: bool,
}

impl Lease {
    pub(crate) fn key(&self) -> &PoolKey {
        &self.key
    }

    /// Returns the connection to the pool and frees the slot.
    pub(crate) fn release(mut self, parts: Parts) {
        self.returned = self.pool.put_idle(&self.key, parts);
    }

    /// The permits, for a connection that keeps them (and its count in `active`) itself.
    fn into_slots(mut self) -> Slots {
        self.returned = true;
        std::mem::take(&mut self.slots)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.returned {
            return;
        }
        let mut hosts = self.pool.hosts();
        if let Some(h) = hosts.get_mut(&self.key) {
            h.active -= 1;
            if h.unused() {
                hosts.remove(&self.key);
            }
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("key", &self.key).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::still_open;

    #[tokio::test]
    async fn a_pooled_connection_must_be_quiet_to_be_reused() {
        let (mut quiet, _peer) = tokio::io::duplex(64);
        assert!(still_open(&mut quiet));

        // The server closed it while it sat in the pool.
        let (mut closed, peer) = tokio::io::duplex(64);
        drop(peer);
        assert!(!still_open(&mut closed));

        // The server sent bytes nobody asked for: they must never be read as a response.
        let (mut chatty, mut peer) = tokio::io::duplex(64);
        peer.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        assert!(!still_open(&mut chatty));
    }
}
