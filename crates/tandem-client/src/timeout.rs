//! `ClientTimeout` and the deadlines a request runs under.

use std::{
    future::Future,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::future::Either;
use tokio::time::{Instant, Sleep};

use crate::error::{Error, Phase};

/// aiohttp's default `sock_connect`: 30 s.
pub const DEFAULT_SOCK_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default bound on a TLS handshake, apart from TCP: 30 s, as `sock_connect` (aiohttp
/// has no such phase; its handshake counts against `sock_connect` and `total`).
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// aiohttp's `ceil_threshold`: a deadline further off than 5 s is rounded up to a whole
/// second.
pub const DEFAULT_CEIL_THRESHOLD: Duration = Duration::from_secs(5);

/// aiohttp's `ClientTimeout`: each field `None` (or zero, as in aiohttp) means no limit.
///
/// The default is aiohttp's: `total` 300 s and `sock_connect` 30 s; and, Tandem's own,
/// `tls_handshake` 30 s ([`DEFAULT_TLS_HANDSHAKE_TIMEOUT`]). As aiohttp, a deadline further
/// off than `ceil_threshold` (default 5 s) is rounded up to a whole second (of a clock shared
/// by the process), so that many requests' timers fire together instead of one by one. Start from
/// `ClientTimeout::default()`, [`ClientTimeout::NONE`] or [`ClientTimeout::total`] and change
/// a field with the `with_*` methods (non-exhaustive, so that a new phase is not a breaking
/// change):
///
/// ```
/// use std::time::Duration;
/// use tandem_client::ClientTimeout;
///
/// let timeout = ClientTimeout::default().with_sock_read(Duration::from_secs(5));
/// assert_eq!(timeout.sock_read, Some(Duration::from_secs(5)));
/// assert_eq!(ClientTimeout::NONE.with_total(None), ClientTimeout::NONE);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientTimeout {
    /// The whole request: connecting, sending, and reading the response body to its end.
    pub total: Option<Duration>,
    /// Getting a connection, from the pool or new.
    pub connect: Option<Duration>,
    /// Opening a new connection: each TCP connect attempt, and through a proxy its answer to
    /// an https origin's `CONNECT`.
    pub sock_connect: Option<Duration>,
    /// The longest gap between two reads from the socket.
    pub sock_read: Option<Duration>,
    /// The TLS handshake of a new connection (to the origin, or to an https proxy), from the
    /// end of TCP to the end of the handshake. Fails as [`Phase::TlsHandshake`].
    pub tls_handshake: Option<Duration>,
    /// A timeout longer than this has its deadline rounded up to a whole second (`None`:
    /// never rounded).
    pub ceil_threshold: Option<Duration>,
}

impl Default for ClientTimeout {
    fn default() -> Self {
        ClientTimeout {
            total: Some(Duration::from_secs(300)),
            connect: None,
            sock_connect: Some(DEFAULT_SOCK_CONNECT_TIMEOUT),
            sock_read: None,
            tls_handshake: Some(DEFAULT_TLS_HANDSHAKE_TIMEOUT),
            ceil_threshold: Some(DEFAULT_CEIL_THRESHOLD),
        }
    }
}

impl ClientTimeout {
    /// No limits at all.
    pub const NONE: ClientTimeout = ClientTimeout {
        total: None,
        connect: None,
        sock_connect: None,
        sock_read: None,
        tls_handshake: None,
        ceil_threshold: None,
    };

    /// The default with `total` replaced.
    pub fn total(total: Duration) -> Self {
        ClientTimeout { total: Some(total), ..Self::default() }
    }

    /// Sets [`total`](Self::total) (`None`: no limit).
    #[must_use]
    pub fn with_total(mut self, total: impl Into<Option<Duration>>) -> Self {
        self.total = total.into();
        self
    }

    /// Sets [`connect`](Self::connect) (`None`: no limit).
    #[must_use]
    pub fn with_connect(mut self, connect: impl Into<Option<Duration>>) -> Self {
        self.connect = connect.into();
        self
    }

    /// Sets [`sock_connect`](Self::sock_connect) (`None`: no limit).
    #[must_use]
    pub fn with_sock_connect(mut self, sock_connect: impl Into<Option<Duration>>) -> Self {
        self.sock_connect = sock_connect.into();
        self
    }

    /// Sets [`sock_read`](Self::sock_read) (`None`: no limit).
    #[must_use]
    pub fn with_sock_read(mut self, sock_read: impl Into<Option<Duration>>) -> Self {
        self.sock_read = sock_read.into();
        self
    }

    /// Sets [`tls_handshake`](Self::tls_handshake) (`None`: no limit of its own).
    #[must_use]
    pub fn with_tls_handshake(mut self, tls_handshake: impl Into<Option<Duration>>) -> Self {
        self.tls_handshake = tls_handshake.into();
        self
    }

    /// Sets [`ceil_threshold`](Self::ceil_threshold) (`None`: deadlines are never rounded).
    #[must_use]
    pub fn with_ceil_threshold(mut self, threshold: impl Into<Option<Duration>>) -> Self {
        self.ceil_threshold = threshold.into();
        self
    }
}

/// The zero of the whole seconds deadlines are rounded to: tokio's `Instant` has none of its
/// own, so the first rounded deadline's start stands in.
static CLOCK_ZERO: OnceLock<Instant> = OnceLock::new();

/// `now + timeout`, rounded up to a whole second of the process's timer clock when
/// `timeout` is longer than `threshold` (aiohttp's `ceil_timeout`): requests started within
/// the same second then share their timers' wake-up.
fn deadline(now: Instant, timeout: Duration, threshold: Option<Duration>) -> Instant {
    let at = now + timeout;
    if threshold.is_none_or(|t| timeout <= t) {
        return at;
    }
    let zero = *CLOCK_ZERO.get_or_init(|| now);
    let since = at.saturating_duration_since(zero);
    match since.subsec_nanos() {
        0 => at,
        nanos => at + Duration::from_nanos(u64::from(1_000_000_000 - nanos)),
    }
}

/// The clocks of one request: the total deadline, fixed when it starts, and the per-read gap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadlines {
    pub(crate) total: Option<Instant>,
    pub(crate) timeout: ClientTimeout,
}

impl Deadlines {
    pub(crate) fn start(timeout: ClientTimeout) -> Self {
        let limit = |d: Option<Duration>| d.filter(|d| !d.is_zero());
        let timeout = ClientTimeout {
            total: limit(timeout.total),
            connect: limit(timeout.connect),
            sock_connect: limit(timeout.sock_connect),
            sock_read: limit(timeout.sock_read),
            tls_handshake: limit(timeout.tls_handshake),
            ceil_threshold: timeout.ceil_threshold,
        };
        let total = timeout.total.map(|t| deadline(Instant::now(), t, timeout.ceil_threshold));
        Deadlines { total, timeout }
    }

    /// Runs `fut` under the total deadline and, if given, a phase's own limit; the one that
    /// ends first names the phase of the error.
    ///
    /// A plain function returning a combinator, not an `async fn`: an `async fn` keeps its
    /// argument `fut` in its state beside the `Timeout` holding the same future, so each
    /// such wrapper would double the size of what it wraps, and a request's future, copied
    /// whole into its box on every request, would grow with each.
    pub(crate) fn run<T, F>(
        &self,
        phase_limit: Option<(Phase, Duration)>,
        fut: F,
    ) -> impl Future<Output = Result<T, Error>> + use<T, F>
    where
        F: Future<Output = Result<T, Error>>,
    {
        let threshold = self.timeout.ceil_threshold;
        let phase = phase_limit.map(|(phase, d)| (phase, deadline(Instant::now(), d, threshold)));
        let (phase, deadline) = match (self.total, phase) {
            (Some(total), Some((p, at))) if at < total => (p, Some(at)),
            (Some(total), _) => (Phase::Total, Some(total)),
            (None, Some((p, at))) => (p, Some(at)),
            (None, None) => (Phase::Total, None),
        };
        match deadline {
            Some(at) => Either::Left(Deadline { fut, sleep: None, at, phase }),
            None => Either::Right(fut),
        }
    }

    /// [`run`](Self::run) for one socket read.
    pub(crate) fn read<T, F>(&self, fut: F) -> impl Future<Output = Result<T, Error>> + use<T, F>
    where
        F: Future<Output = Result<T, Error>>,
    {
        self.run(self.timeout.sock_read.map(|d| (Phase::SockRead, d)), fut)
    }

    /// [`run`](Self::run) for getting a connection, from the pool or new: `connect` bounds
    /// it. `sock_connect`, which bounds only opening a new one, is the connector's to apply
    /// (see [`sock_connect`](Self::sock_connect)).
    pub(crate) fn connect<T, F>(&self, fut: F) -> impl Future<Output = Result<T, Error>> + use<T, F>
    where
        F: Future<Output = Result<T, Error>>,
    {
        self.run(self.timeout.connect.map(|d| (Phase::Connect, d)), fut)
    }

    /// The limit on opening a new connection.
    pub(crate) fn sock_connect(&self) -> Option<Duration> {
        self.timeout.sock_connect
    }

    /// The limit on a new connection's TLS handshake.
    pub(crate) fn tls_handshake(&self) -> Option<Duration> {
        self.timeout.tls_handshake
    }
}

pin_project_lite::pin_project! {
    /// `fut` under a deadline, as `tokio::time::timeout_at`, except that the timer is made
    /// only once `fut` has had to wait: most of what a request runs under a deadline is
    /// ready at once (a pooled connection, a small write), and then no timer is made or
    /// dropped at all.
    struct Deadline<F> {
        #[pin]
        fut: F,
        #[pin]
        sleep: Option<Sleep>,
        at: Instant,
        phase: Phase,
    }
}

impl<T, F: Future<Output = Result<T, Error>>> Future for Deadline<F> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(out);
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep_until(*this.at)));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(Error::timeout(*this.phase))),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_shorter_clock_names_the_phase() {
        let d = Deadlines::start(ClientTimeout {
            total: Some(Duration::from_secs(10)),
            sock_read: Some(Duration::from_secs(1)),
            ..ClientTimeout::NONE
        });
        let e = d.read(std::future::pending::<Result<(), Error>>()).await.unwrap_err();
        assert_eq!(e.timeout_phase(), Some(Phase::SockRead));
        let d = Deadlines::start(ClientTimeout::total(Duration::from_millis(5)));
        let e = d.read(std::future::pending::<Result<(), Error>>()).await.unwrap_err();
        assert_eq!(e.timeout_phase(), Some(Phase::Total));
        // Zero is no limit, as in aiohttp.
        let d = Deadlines::start(ClientTimeout {
            total: Some(Duration::ZERO),
            sock_read: Some(Duration::from_secs(1)),
            ..ClientTimeout::NONE
        });
        let e = d.read(std::future::pending::<Result<(), Error>>()).await.unwrap_err();
        assert_eq!(e.timeout_phase(), Some(Phase::SockRead));
    }

    #[test]
    fn long_deadlines_are_ceiled_to_a_whole_second_and_short_ones_are_not() {
        let now = Instant::now();
        let threshold = Some(DEFAULT_CEIL_THRESHOLD);
        let ceiled = deadline(now, Duration::from_millis(5_500), threshold);
        let zero = *CLOCK_ZERO.get().expect("set by the first ceiled deadline");
        assert_eq!((ceiled - zero).subsec_nanos(), 0);
        let late = ceiled - (now + Duration::from_millis(5_500));
        assert!(late < Duration::from_secs(1), "{late:?}");
        let short = Duration::from_millis(2_300);
        assert_eq!(deadline(now, short, threshold), now + short, "under the threshold");
        let long = Duration::from_millis(7_300);
        assert_eq!(deadline(now, long, None), now + long, "no threshold, no rounding");
        let d =
            Deadlines::start(ClientTimeout::NONE.with_total(long).with_ceil_threshold(threshold));
        assert_eq!(d.total.map(|at| (at - zero).subsec_nanos()), Some(0));
    }
}
