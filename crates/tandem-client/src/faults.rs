//! Fault injection as a client middleware, for a caller's own resilience tests: added
//! latency, errors, statuses and truncated bodies, each at a rate, from a seeded generator.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http::{StatusCode, header};
use tandem_proto::ResponseParser;

use crate::{
    ClientNext, ClientRequest, ClientResponse, Error, Phase,
    body::RawBody,
    content::Content,
    error::Kind,
    middleware::{BoxFuture, Middleware},
    request::ConnSettings,
    response::{RequestInfo, ResponseInfo},
    wire::request_fields,
};

/// The kind of error a [`FaultInjection`] fails a request with; each answers the
/// [`Error`] predicate of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultError {
    /// [`Error::is_connect`]: the connection could not be made.
    Connect,
    /// [`Error::is_timeout`], in the `total` phase.
    Timeout,
    /// [`Error::is_disconnected`]: the server closed the connection before answering.
    Disconnected,
    /// [`Error::is_io`]: reading or writing the socket failed.
    Io,
}

#[derive(Clone, Debug)]
enum Fault {
    Latency(Duration),
    Error(FaultError),
    Status(StatusCode),
    Truncate,
}

/// Injects faults into a session's requests, for testing how a program copes: latency,
/// errors of a chosen kind, chosen statuses and truncated bodies, each at a rate between 0
/// and 1. Which requests get a fault comes from a generator seeded by the caller, so a
/// run repeats exactly: the same seed and the same requests give the same faults.
///
/// For each request, every fault is drawn in the order it was added: each latency that
/// fires is waited before sending; the first error, status or truncation that fires
/// replaces the exchange. An error or a status is made up without sending the request;
/// a truncation sends it, then hands over the answer cut to half its body, whose reading
/// fails as a payload error (as a body that ends early does).
///
/// Placed after [`Retry`](crate::Retry) in the session's middlewares (so inside it), the
/// faults are what the retries see.
///
/// ```
/// use std::time::Duration;
/// use tandem_client::{ClientSession, FaultError, FaultInjection};
///
/// let faults = FaultInjection::new(42)
///     .latency(0.5, Duration::from_millis(200))
///     .error(0.05, FaultError::Disconnected)
///     .status(0.1, http::StatusCode::SERVICE_UNAVAILABLE)
///     .truncate(0.01);
/// let session = ClientSession::builder().middleware(faults).build();
/// ```
#[derive(Debug)]
pub struct FaultInjection {
    faults: Vec<(f64, Fault)>,
    rng: Mutex<u64>,
    injected: Arc<std::sync::atomic::AtomicU64>,
}

impl FaultInjection {
    /// No faults yet, with the generator seeded by `seed`.
    pub fn new(seed: u64) -> Self {
        FaultInjection {
            faults: Vec::new(),
            // splitmix64 of the seed: even 0 gives a good start.
            rng: Mutex::new(splitmix64(seed)),
            injected: Arc::default(),
        }
    }

    fn with(mut self, rate: f64, fault: Fault) -> Self {
        self.faults.push((rate.clamp(0.0, 1.0), fault));
        self
    }

    /// Waits `delay` before sending, for a share `rate` of requests.
    #[must_use]
    pub fn latency(self, rate: f64, delay: Duration) -> Self {
        self.with(rate, Fault::Latency(delay))
    }

    /// Fails a share `rate` of requests with an error of `kind`, without sending them.
    #[must_use]
    pub fn error(self, rate: f64, kind: FaultError) -> Self {
        self.with(rate, Fault::Error(kind))
    }

    /// Answers a share `rate` of requests with `status` and an empty body, without sending
    /// them.
    #[must_use]
    pub fn status(self, rate: f64, status: StatusCode) -> Self {
        self.with(rate, Fault::Status(status))
    }

    /// Cuts the body of a share `rate` of responses to half its length: reading it fails
    /// as a payload error.
    #[must_use]
    pub fn truncate(self, rate: f64) -> Self {
        self.with(rate, Fault::Truncate)
    }

    /// How many faults have been injected so far (latencies included).
    pub fn injected(&self) -> u64 {
        self.injected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A shared count of the faults injected, to read after the middleware was given to a
    /// session.
    pub fn counter(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.injected.clone()
    }

    /// A uniform draw in `[0, 1)` (xorshift64*, 53 bits).
    fn draw(&self) -> f64 {
        let mut state = self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        #[allow(clippy::cast_precision_loss)]
        let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
        unit
    }

    fn count(&self) {
        self.injected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

impl Middleware for FaultInjection {
    fn handle(
        &self,
        req: ClientRequest,
        next: ClientNext,
    ) -> BoxFuture<'_, Result<ClientResponse, Error>> {
        Box::pin(async move {
            let mut delay = Duration::ZERO;
            let mut replace = None;
            for (rate, fault) in &self.faults {
                if self.draw() >= *rate {
                    continue;
                }
                match fault {
                    Fault::Latency(d) => {
                        self.count();
                        delay += *d;
                    }
                    other if replace.is_none() => {
                        self.count();
                        replace = Some(other.clone());
                    }
                    _ => {}
                }
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match replace {
                None | Some(Fault::Latency(_)) => next.run(req).await,
                Some(Fault::Error(kind)) => {
                    let url = req.url().clone();
                    let e = match kind {
                        FaultError::Connect => Error::new(Kind::Connect, "injected fault"),
                        FaultError::Timeout => Error::timeout(Phase::Total),
                        FaultError::Disconnected => {
                            Error::new(Kind::Disconnected, "injected fault")
                        }
                        FaultError::Io => Error::new(Kind::Io, "injected fault"),
                    };
                    Err(e.with_url(&url))
                }
                Some(Fault::Status(status)) => made_up(&req, status, &[], &Bytes::new(), 0),
                Some(Fault::Truncate) => {
                    let info = req.try_clone();
                    let mut resp = next.run(req).await?;
                    let Some(info) = info else { return Ok(resp) };
                    let status = resp.status();
                    let kept = fields_to_remake(resp.headers());
                    let body = resp.read().await?;
                    let cut = body.slice(..body.len() / 2);
                    made_up(&info, status, &kept, &cut, body.len())
                }
            }
        })
    }
}

/// The fields of a response that is read whole and made up again with [`made_up`]: all
/// but those of its framing and coding, which describe the bytes as they came off the wire,
/// not the body handed on.
pub(crate) fn fields_to_remake(
    headers: &http::HeaderMap,
) -> Vec<(http::HeaderName, http::HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| {
            !matches!(
                *name,
                &header::CONTENT_LENGTH
                    | &header::TRANSFER_ENCODING
                    | &header::CONTENT_ENCODING
                    | &header::CONNECTION
            )
        })
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

/// A response that no server sent: `status`, the fields `fields`, a `Content-Length` of
/// `declared` and the bytes `body` (fewer than declared make a truncated body).
pub(crate) fn made_up(
    req: &ClientRequest,
    status: StatusCode,
    fields: &[(http::HeaderName, http::HeaderValue)],
    body: &Bytes,
    declared: usize,
) -> Result<ClientResponse, Error> {
    let reason = status.canonical_reason().unwrap_or("");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).into_bytes();
    for (name, value) in fields {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(format!("content-length: {declared}\r\n\r\n").as_bytes());
    let mut buf = BytesMut::from(&head[..]);
    let parsed = ResponseParser::new()
        .parse(&mut buf, req.method())
        .map_err(|e| Error::new(Kind::Response, e))?
        .ok_or_else(|| Error::new(Kind::Response, "incomplete made-up head"))?;
    let inner = &*req.session().inner;
    let content_type = req.body().map(|_| "application/octet-stream");
    let wire = request_fields(
        inner,
        req.url(),
        req.headers(),
        content_type,
        None,
        &ConnSettings::default(),
    )?;
    let raw = RawBody::synthetic(&parsed, body, req.deadlines());
    let info = ResponseInfo {
        status,
        reason: reason.into(),
        version: http::Version::HTTP_11,
        headers: std::sync::OnceLock::new(),
        raw: parsed.fields().clone(),
        request: RequestInfo {
            method: req.method().clone(),
            url: req.url_arc(),
            headers: wire,
            real_url: None,
        },
        connection: None,
    };
    let content = Content::new(raw, None, inner.read_limits.max_readline());
    Ok(ClientResponse::new(info, content, inner.charset_fallback.clone()))
}
