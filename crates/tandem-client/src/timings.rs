//! `ClientResponse::timings`: how long each step of an exchange took, in the manner of
//! curl's `-w` variables, taken from the connector's events.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tandem_connect::{ConnectEvents, Origin};
use tokio::time::Instant;

/// How long each step of one exchange took (the last hop's, after redirects), recorded when
/// the session has [`timings(true)`](crate::ClientSessionBuilder::timings). Steps that did
/// not happen are `None`: a reused connection has no DNS or connect time.
///
/// The offsets (`request_sent`, `first_byte`, `total`) count from the start of the hop, as
/// curl's `time_pretransfer`, `time_starttransfer` and `time_total` do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// Waiting for a connection slot (`limit`, `limit_per_host`).
    pub queued: Option<Duration>,
    /// Resolving the host name; `None` when there was no lookup (an IP address, a DNS cache
    /// hit, a reused connection).
    pub dns: Option<Duration>,
    /// Opening a new connection: DNS, TCP, a proxy's tunnel and the TLS handshake.
    pub connect: Option<Duration>,
    /// The TLS handshake with the origin, a part of `connect`; `None` for plain HTTP and a
    /// reused connection (curl's `time_appconnect` less its `time_connect`).
    pub tls: Option<Duration>,
    /// Whether the connection came from the pool.
    pub reused: bool,
    /// From the start until the request, head and body, was written.
    pub request_sent: Option<Duration>,
    /// From the start until the response head was read (time to first byte, as the head is
    /// the first thing that is read).
    pub first_byte: Option<Duration>,
    /// From the start until the body's end was read; `None` until it is.
    pub total: Option<Duration>,
}

/// The instants of one hop's steps, filled in as they happen.
pub(crate) struct Recorder {
    start: Instant,
    steps: Mutex<Steps>,
    /// The session's trace events, which this stands in front of.
    traces: Option<Arc<dyn ConnectEvents>>,
}

#[derive(Debug, Default)]
struct Steps {
    queued: Option<(Instant, Option<Instant>)>,
    dns: Option<(Instant, Option<Instant>)>,
    connect: Option<(Instant, Option<Instant>)>,
    tls: Option<(Instant, Option<Instant>)>,
    reused: bool,
    sent: Option<Instant>,
    first_byte: Option<Instant>,
    end: Option<Instant>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("timings", &self.timings()).finish_non_exhaustive()
    }
}

impl Recorder {
    pub(crate) fn start(traces: Option<Arc<dyn ConnectEvents>>) -> Arc<Recorder> {
        Arc::new(Recorder { start: Instant::now(), steps: Mutex::default(), traces })
    }

    fn steps(&self) -> std::sync::MutexGuard<'_, Steps> {
        self.steps.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn sent(&self) {
        self.steps().sent = Some(Instant::now());
    }

    pub(crate) fn first_byte(&self, reused: bool) {
        let mut steps = self.steps();
        steps.first_byte = Some(Instant::now());
        steps.reused = reused;
    }

    pub(crate) fn end(&self) {
        let mut steps = self.steps();
        if steps.end.is_none() {
            steps.end = Some(Instant::now());
        }
    }

    pub(crate) fn timings(&self) -> Timings {
        let steps = self.steps();
        let span = |s: Option<(Instant, Option<Instant>)>| {
            s.and_then(|(from, to)| Some(to?.saturating_duration_since(from)))
        };
        let since = |at: Option<Instant>| at.map(|at| at.saturating_duration_since(self.start));
        Timings {
            queued: span(steps.queued),
            dns: span(steps.dns),
            connect: span(steps.connect),
            tls: span(steps.tls),
            reused: steps.reused,
            request_sent: since(steps.sent),
            first_byte: since(steps.first_byte),
            total: since(steps.end),
        }
    }
}

impl ConnectEvents for Recorder {
    fn queued_start(&self, origin: &Origin) {
        self.steps().queued = Some((Instant::now(), None));
        if let Some(t) = &self.traces {
            t.queued_start(origin);
        }
    }

    fn queued_end(&self, origin: &Origin) {
        if let Some((_, end)) = &mut self.steps().queued {
            *end = Some(Instant::now());
        }
        if let Some(t) = &self.traces {
            t.queued_end(origin);
        }
    }

    fn create_start(&self, origin: &Origin) {
        self.steps().connect = Some((Instant::now(), None));
        if let Some(t) = &self.traces {
            t.create_start(origin);
        }
    }

    fn create_end(&self, origin: &Origin) {
        if let Some((_, end)) = &mut self.steps().connect {
            *end = Some(Instant::now());
        }
        if let Some(t) = &self.traces {
            t.create_end(origin);
        }
    }

    fn tls_handshake_start(&self, origin: &Origin) {
        self.steps().tls = Some((Instant::now(), None));
        if let Some(t) = &self.traces {
            t.tls_handshake_start(origin);
        }
    }

    fn tls_handshake_end(&self, origin: &Origin) {
        if let Some((_, end)) = &mut self.steps().tls {
            *end = Some(Instant::now());
        }
        if let Some(t) = &self.traces {
            t.tls_handshake_end(origin);
        }
    }

    fn reuseconn(&self, origin: &Origin) {
        if let Some(t) = &self.traces {
            t.reuseconn(origin);
        }
    }

    fn dns_resolvehost_start(&self, host: &str) {
        self.steps().dns = Some((Instant::now(), None));
        if let Some(t) = &self.traces {
            t.dns_resolvehost_start(host);
        }
    }

    fn dns_resolvehost_end(&self, host: &str) {
        if let Some((_, end)) = &mut self.steps().dns {
            *end = Some(Instant::now());
        }
        if let Some(t) = &self.traces {
            t.dns_resolvehost_end(host);
        }
    }

    fn dns_cache_hit(&self, host: &str) {
        if let Some(t) = &self.traces {
            t.dns_cache_hit(host);
        }
    }

    fn dns_cache_miss(&self, host: &str) {
        if let Some(t) = &self.traces {
            t.dns_cache_miss(host);
        }
    }
}
