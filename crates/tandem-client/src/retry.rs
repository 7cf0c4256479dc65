//! Retries as a client middleware: which failures retry, how long to wait, and a budget
//! that keeps retries from multiplying an outage.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use http::{Method, StatusCode, header};
use tokio::time::Instant;

use crate::{
    ClientNext, ClientRequest, ClientResponse, Error,
    middleware::{BoxFuture, Middleware},
};

/// The statuses retried by default: 429 Too Many Requests, 502, 503 and 504, the answers
/// that say "not now" rather than "no".
pub const DEFAULT_RETRY_STATUSES: [StatusCode; 4] = [
    StatusCode::TOO_MANY_REQUESTS,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

type ErrorFilter = dyn Fn(&Error) -> bool + Send + Sync;
type Sleep = dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync;

/// Retries a hop that failed, as a middleware: aiohttp has none built in (its cookbook's
/// `retry_middleware`, and `aiohttp_retry`), reqwest retries with a budget but no backoff.
///
/// - **What is retried:** idempotent methods only by default (GET, HEAD, OPTIONS, TRACE,
///   PUT, DELETE; [`methods`](Self::methods) to change), on the statuses of
///   [`DEFAULT_RETRY_STATUSES`] ([`statuses`](Self::statuses)) and on connect errors,
///   disconnects, IO errors and timeouts ([`retry_errors`](Self::retry_errors)). A
///   streamed body is read as it is sent, so a request with one is never retried.
/// - **How long to wait:** exponential backoff with full jitter (a random wait between
///   zero and `base * 2^retry`, at most `max_backoff`), or the server's `Retry-After`
///   (seconds or an HTTP date) when it sends one, at most
///   [`max_retry_after`](Self::max_retry_after). A wait that would pass the request's
///   `total` timeout is not started: the last answer is returned instead.
/// - **How many:** at most [`max_retries`](Self::max_retries) per request (3), and only
///   while the [`RetryBudget`] has room: a floor per second plus a share of recent
///   requests, as tower's `Budget`, shared by every request through this middleware (and
///   by other sessions given the same budget). When a service fails every request, the
///   retries stop at the budget instead of multiplying the load by four.
///
/// ```no_run
/// use std::time::Duration;
/// use tandem_client::{ClientSession, Retry};
///
/// # async fn demo() -> Result<(), tandem_client::Error> {
/// let retry = Retry::new().max_retries(2).backoff(Duration::from_millis(50), Duration::from_secs(2));
/// let session = ClientSession::builder().middleware(retry).build();
/// let resp = session.get("http://127.0.0.1:8080/flaky").send().await?;
/// # let _ = resp; Ok(()) }
/// ```
pub struct Retry {
    max_retries: u32,
    methods: Option<Vec<Method>>,
    statuses: Vec<StatusCode>,
    errors: Option<Arc<ErrorFilter>>,
    base: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    budget: Arc<RetryBudget>,
    sleep: Option<Arc<Sleep>>,
}

impl std::fmt::Debug for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("max_retries", &self.max_retries)
            .field("methods", &self.methods)
            .field("statuses", &self.statuses)
            .field("base", &self.base)
            .field("max_backoff", &self.max_backoff)
            .field("max_retry_after", &self.max_retry_after)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Default for Retry {
    fn default() -> Self {
        Self::new()
    }
}

impl Retry {
    /// Three retries of idempotent requests, backoff from 100 ms up to 10 s, `Retry-After`
    /// up to 60 s, and a budget of its own ([`RetryBudget::default`]).
    pub fn new() -> Self {
        Retry {
            max_retries: 3,
            methods: None,
            statuses: DEFAULT_RETRY_STATUSES.to_vec(),
            errors: None,
            base: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            budget: Arc::new(RetryBudget::default()),
            sleep: None,
        }
    }

    /// At most `n` retries per request (so `n + 1` sends).
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The methods that may be retried, instead of the idempotent ones. A POST is safe to
    /// retry only when the server deduplicates it (an `Idempotency-Key` it honours).
    #[must_use]
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = Some(methods.into_iter().collect());
        self
    }

    /// The statuses that are retried, instead of [`DEFAULT_RETRY_STATUSES`].
    #[must_use]
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// Which errors are retried, instead of connect errors, disconnects, IO errors and
    /// timeouts.
    #[must_use]
    pub fn retry_errors(mut self, f: impl Fn(&Error) -> bool + Send + Sync + 'static) -> Self {
        self.errors = Some(Arc::new(f));
        self
    }

    /// The backoff: retry `n` (from 0) waits a random time up to `base * 2^n`, and never
    /// more than `max`.
    #[must_use]
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base = base;
        self.max_backoff = max;
        self
    }

    /// The longest `Retry-After` honoured; a longer one waits this long (default 60 s).
    #[must_use]
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The budget retries draw from; share one `Arc` between sessions to bound their
    /// retries together.
    #[must_use]
    pub fn budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// How to wait between attempts (`tokio::time::sleep` by default): tests record the
    /// waits and return at once, so no test sleeps.
    #[must_use]
    pub fn sleep_with(
        mut self,
        f: impl Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        self.sleep = Some(Arc::new(f));
        self
    }

    fn method_allowed(&self, method: &Method) -> bool {
        match &self.methods {
            Some(methods) => methods.contains(method),
            None => crate::conn::is_idempotent(method),
        }
    }

    fn error_retried(&self, e: &Error) -> bool {
        match &self.errors {
            Some(f) => f(e),
            None => e.is_connect() || e.is_disconnected() || e.is_io() || e.is_timeout(),
        }
    }

    /// Full jitter: uniform in `[0, min(max, base * 2^retry)]`.
    fn backoff_for(&self, retry: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << retry.min(20)).min(self.max_backoff);
        ceiling.mul_f64(random_unit())
    }

    async fn wait(&self, delay: Duration) {
        match &self.sleep {
            Some(sleep) => sleep(delay).await,
            None => tokio::time::sleep(delay).await,
        }
    }
}

impl Middleware for Retry {
    fn handle(
        &self,
        req: ClientRequest,
        next: ClientNext,
    ) -> BoxFuture<'_, Result<ClientResponse, Error>> {
        Box::pin(async move {
            self.budget.deposit();
            if !self.method_allowed(req.method()) || self.max_retries == 0 {
                return next.run(req).await;
            }
            let mut req = req;
            let mut retry = 0;
            loop {
                // A streamed body cannot be sent twice: this is its only attempt.
                let again = req.try_clone();
                let result = next.run(req).await;
                let Some(again) = again else { return result };
                let remaining = again.remaining();
                let delay = match &result {
                    Ok(resp) if self.statuses.contains(&resp.status()) => match retry_after(resp) {
                        Some(after) => after.min(self.max_retry_after),
                        None => self.backoff_for(retry),
                    },
                    Err(e) if self.error_retried(e) => self.backoff_for(retry),
                    _ => return result,
                };
                if retry >= self.max_retries
                    || remaining.is_some_and(|left| delay >= left)
                    || !self.budget.withdraw()
                {
                    return result;
                }
                retry += 1;
                tracing::debug!(
                    retry,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    outcome = %match &result {
                        Ok(resp) => resp.status().to_string(),
                        Err(e) => e.to_string(),
                    },
                    "retrying"
                );
                if let Ok(mut resp) = result {
                    resp.release().await;
                }
                self.wait(delay).await;
                req = again;
            }
        })
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP date (a past one is no
/// wait). An unreadable value is ignored, and the backoff used instead.
fn retry_after(resp: &ClientResponse) -> Option<Duration> {
    let value = resp.headers().get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// A uniform random number in `[0, 1)`, from the OS (a clock reading without one).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes[..4].copy_from_slice(&nanos.to_le_bytes());
    }
    // 53 random bits, exactly representable.
    #[allow(clippy::cast_precision_loss)]
    let unit = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64;
    unit
}

/// A retry budget, as tower's `Budget`: retries are allowed while those of the last `ttl`
/// stay within `min_per_sec * ttl` plus `retry_ratio` of the requests made in it. Every
/// request deposits, every retry withdraws; both expire after `ttl`.
///
/// The default, tower's and reqwest's: 10 seconds, 10 retries a second, and 20% of
/// requests.
#[derive(Debug)]
pub struct RetryBudget {
    ttl: Duration,
    min_per_sec: u32,
    retry_ratio: f64,
    window: Mutex<Window>,
}

/// Deposits and withdrawals per one-second slot of the window.
#[derive(Debug)]
struct Window {
    start: Instant,
    /// `(second since start, requests, retries)`, oldest first.
    slots: std::collections::VecDeque<(u64, u64, u64)>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(Duration::from_secs(10), 10, 0.2)
    }
}

impl RetryBudget {
    /// A budget over the last `ttl` (rounded up to whole seconds, at least one): `min_per_sec`
    /// retries a second always, plus `retry_ratio` (0.2 is 20%) of the requests made.
    pub fn new(ttl: Duration, min_per_sec: u32, retry_ratio: f64) -> Self {
        RetryBudget {
            ttl: ttl.max(Duration::from_secs(1)),
            min_per_sec,
            retry_ratio: retry_ratio.max(0.0),
            window: Mutex::new(Window {
                start: Instant::now(),
                slots: std::collections::VecDeque::new(),
            }),
        }
    }

    /// The window in whole seconds, rounded up.
    fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs() + u64::from(self.ttl.subsec_nanos() > 0)
    }

    fn with_slot<T>(&self, f: impl FnOnce(&mut (u64, u64, u64), u64, u64) -> T) -> T {
        let mut window = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = window.start.elapsed().as_secs();
        let ttl = self.ttl_secs();
        while window.slots.front().is_some_and(|(sec, ..)| sec + ttl <= now) {
            window.slots.pop_front();
        }
        if window.slots.back().is_none_or(|(sec, ..)| *sec != now) {
            window.slots.push_back((now, 0, 0));
        }
        let (requests, retries) =
            window.slots.iter().fold((0, 0), |(a, b), (_, req, ret)| (a + req, b + ret));
        let slot = window.slots.back_mut().expect("a slot was just pushed");
        f(slot, requests, retries)
    }

    /// Records a request.
    pub fn deposit(&self) {
        self.with_slot(|slot, _, _| slot.1 += 1);
    }

    /// Takes one retry from the budget: `false` when there is no room.
    pub fn withdraw(&self) -> bool {
        #[allow(clippy::cast_precision_loss)]
        let floor = f64::from(self.min_per_sec) * self.ttl_secs() as f64;
        let ratio = self.retry_ratio;
        self.with_slot(|slot, requests, retries| {
            #[allow(clippy::cast_precision_loss)]
            let allowed = floor + ratio * requests as f64;
            #[allow(clippy::cast_precision_loss)]
            let room = allowed - retries as f64 >= 1.0;
            if room {
                slot.2 += 1;
            }
            room
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_the_cap() {
        let r = Retry::new().backoff(Duration::from_millis(100), Duration::from_millis(250));
        for retry in 0..30 {
            let ceiling =
                Duration::from_millis(100 * (1 << retry.min(5))).min(Duration::from_millis(250));
            let d = r.backoff_for(retry);
            assert!(d <= ceiling, "{retry}: {d:?}");
        }
        // Jitter: not always the same wait.
        let waits: std::collections::HashSet<_> = (0..20).map(|_| r.backoff_for(3)).collect();
        assert!(waits.len() > 1);
    }

    #[tokio::test]
    async fn the_budget_allows_a_floor_and_a_share() {
        let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.2);
        for _ in 0..10 {
            budget.deposit();
        }
        assert!(budget.withdraw() && budget.withdraw());
        assert!(!budget.withdraw(), "20% of 10 requests is 2 retries");
        let budget = RetryBudget::new(Duration::from_secs(2), 1, 0.0);
        assert!(budget.withdraw() && budget.withdraw());
        assert!(!budget.withdraw(), "1 a second over 2 seconds");
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_forgets_after_its_ttl() {
        let budget = RetryBudget::new(Duration::from_secs(2), 0, 1.0);
        budget.deposit();
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(!budget.withdraw(), "the old request expired with its retry");
        budget.deposit();
        assert!(budget.withdraw());
    }
}
