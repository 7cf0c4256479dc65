//! The one error type of `tandem-client`.
//!
//! aiohttp raises a hierarchy of exception classes (`ClientConnectorError`,
//! `ServerTimeoutError`, `ClientPayloadError`, `ClientResponseError`, `InvalidURL`,
//! `TooManyRedirects`, `ServerDisconnectedError`, ...). Rust has no class hierarchy, so one
//! opaque [`Error`] answers the same questions through predicates. It is one pointer wide so
//! `Result<T, Error>` stays small on every await point.

use std::fmt;

use http::StatusCode;
use url::Url;

use crate::response::RequestInfo;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which timeout of a [`ClientTimeout`](crate::ClientTimeout) elapsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// `total`: the whole request, from connecting to the end of the body.
    Total,
    /// `connect`: getting a connection, from the pool or new.
    Connect,
    /// `sock_connect`: opening a new connection.
    SockConnect,
    /// `sock_read`: the gap between two reads.
    SockRead,
    /// `tls_handshake`: a new connection's TLS handshake.
    TlsHandshake,
}

/// Why a request failed. Message text is not stable; use the predicates.
///
/// Its message (`Display`) says only what failed at this layer, and for which URL; the cause,
/// when there is one, is its [`source`](std::error::Error::source), as the standard library's
/// convention has it. anyhow's `{:#}` prints the whole chain, each cause once: `cannot connect
/// for http://127.0.0.1:1/: connection failed: 127.0.0.1:1: Connection refused (os error 111)`.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    url: Option<Url>,
    source: Option<BoxError>,
    /// The request that got a response, for the errors that come after one.
    request: Option<RequestInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A connection could not be made (`ClientConnectorError`).
    Connect,
    /// A timeout elapsed.
    Timeout(Phase),
    /// The body was malformed, truncated or too large once decoded (`ClientPayloadError`).
    Payload,
    /// The response head was malformed (`ClientResponseError` from the parser).
    Response,
    /// A status of 400 or more, under `raise_for_status` (`ClientResponseError`).
    Status(StatusCode),
    /// The URL could not be used (`InvalidURL`), or a redirect's `Location` could not.
    InvalidUrl { redirect: bool },
    /// More redirects than `max_redirects` (`TooManyRedirects`).
    TooManyRedirects,
    /// The server closed the connection before a response (`ServerDisconnectedError`).
    Disconnected,
    /// The request could not be built or written: a bad header, method or body.
    Request,
    /// The body could not be decoded as asked: JSON, or the wrong content type
    /// (`ContentTypeError`).
    Decode,
    /// Reading or writing the socket failed (`ClientOSError`).
    Io,
    /// A middleware failed the request with an error of its own.
    Middleware,
}

impl Error {
    pub(crate) fn new(kind: Kind, source: impl Into<BoxError>) -> Self {
        let source = Some(source.into());
        Error { inner: Box::new(Inner { kind, url: None, source, request: None }) }
    }

    pub(crate) fn bare(kind: Kind) -> Self {
        Error { inner: Box::new(Inner { kind, url: None, source: None, request: None }) }
    }

    pub(crate) fn timeout(phase: Phase) -> Self {
        Self::bare(Kind::Timeout(phase))
    }

    /// Records the URL that failed, without its userinfo: an error's message is shown and
    /// logged, and the password in `http://user:password@host/` must not be.
    pub(crate) fn with_url(mut self, url: &Url) -> Self {
        if self.inner.url.is_none() {
            self.inner.url = Some(crate::redact::url(url).into_owned());
        }
        self
    }

    /// Records the request whose response this error is about (aiohttp's `request_info` on
    /// `ClientResponseError`), and its URL.
    pub(crate) fn with_request(mut self, request: &RequestInfo) -> Self {
        self = self.with_url(request.url());
        if self.inner.request.is_none() {
            self.inner.request = Some(request.clone());
        }
        self
    }

    /// What a body reader keeps of this error, to fail every later read the same way.
    pub(crate) fn to_failed(&self) -> Failed {
        let message = match &self.inner.source {
            Some(source) => source.to_string(),
            None => self.to_string(),
        };
        Failed { kind: self.inner.kind, message: message.into() }
    }

    /// The URL of the request that failed, if known.
    pub fn url(&self) -> Option<&Url> {
        self.inner.url.as_ref()
    }

    /// The request as it was sent (aiohttp's `request_info`), on every error that comes
    /// after its response head arrived: a status under `raise_for_status`, a body that broke
    /// or could not be decoded, a redirect that could not be followed. `None` for an error
    /// before a response (connecting, writing, a timeout waiting for the head).
    pub fn request_info(&self) -> Option<&RequestInfo> {
        self.inner.request.as_ref()
    }

    /// The same error without its URL (nor its request, whose URL and fields may hold the
    /// same secrets), for logging where a URL may hold secrets.
    #[must_use]
    pub fn without_url(mut self) -> Self {
        self.inner.url = None;
        self.inner.request = None;
        self
    }

    /// A connection could not be made: name resolution, refusal, TLS (`ClientConnectorError`).
    pub fn is_connect(&self) -> bool {
        self.inner.kind == Kind::Connect
    }

    /// The connection was refused: nothing listens at the address (`ECONNREFUSED`). A
    /// connect error, so [`is_connect`](Self::is_connect) is true too.
    pub fn is_connection_refused(&self) -> bool {
        let mut source = std::error::Error::source(self);
        while let Some(err) = source {
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
            {
                return self.is_connect();
            }
            source = err.source();
        }
        false
    }

    /// The connector's error behind this one, if a connection could not be made.
    fn connector_error(&self) -> Option<&tandem_connect::Error> {
        let mut source = std::error::Error::source(self);
        while let Some(err) = source {
            if let Some(connect) = err.downcast_ref::<tandem_connect::Error>() {
                return Some(connect);
            }
            source = err.source();
        }
        None
    }

    /// The TLS handshake failed, whatever the reason: the certificate, a pin, the peer, or
    /// its timeout (aiohttp's `ClientSSLError`, `ClientConnectorSSLError`).
    pub fn is_tls(&self) -> bool {
        self.connector_error().is_some_and(tandem_connect::Error::is_tls)
    }

    /// The server's certificate was refused: untrusted, expired, or for another name
    /// (aiohttp's `ClientConnectorCertificateError`). A TLS error too.
    pub fn is_certificate(&self) -> bool {
        self.connector_error().is_some_and(tandem_connect::Error::is_certificate)
    }

    /// The server's certificate or key matched no pin: `(expected, got)` SHA-256 digests
    /// (aiohttp's `ServerFingerprintMismatch`). A TLS error too, not a certificate error.
    pub fn fingerprint_mismatch(&self) -> Option<(&[u8], &[u8])> {
        self.connector_error()?.fingerprint_mismatch()
    }

    /// A timeout elapsed; [`timeout_phase`](Self::timeout_phase) says which.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout(_))
    }

    /// Which timeout elapsed, if this is a timeout.
    pub fn timeout_phase(&self) -> Option<Phase> {
        match self.inner.kind {
            Kind::Timeout(phase) => Some(phase),
            _ => None,
        }
    }

    /// The body was truncated, malformed, or over the decompressed-size bound
    /// (`ClientPayloadError`).
    pub fn is_payload(&self) -> bool {
        self.inner.kind == Kind::Payload
    }

    /// The response head was malformed: a bad status line, a control byte in a field, too
    /// many fields.
    pub fn is_response(&self) -> bool {
        self.inner.kind == Kind::Response
    }

    /// The response's status line was longer than
    /// [`max_line_size`](crate::ClientSessionBuilder::max_line_size) (aiohttp's
    /// `LineTooLong`). A response error too.
    pub fn is_line_too_long(&self) -> bool {
        self.head_error() == Some(tandem_proto::ErrorKind::RequestLineTooLong)
    }

    /// A header field line of the response was longer than
    /// [`max_field_size`](crate::ClientSessionBuilder::max_field_size). A response error too.
    pub fn is_field_too_long(&self) -> bool {
        self.head_error() == Some(tandem_proto::ErrorKind::FieldTooLong)
    }

    /// The response head had more fields than
    /// [`max_headers`](crate::ClientSessionBuilder::max_headers). A response error too.
    pub fn is_too_many_headers(&self) -> bool {
        self.head_error() == Some(tandem_proto::ErrorKind::TooManyHeaders)
    }

    /// What the head parser refused, for a response error that came from it.
    fn head_error(&self) -> Option<tandem_proto::ErrorKind> {
        if self.inner.kind != Kind::Response {
            return None;
        }
        let source = self.inner.source.as_deref()?;
        source.downcast_ref::<tandem_proto::Error>().map(|e| e.kind())
    }

    /// A status of 400 or more was turned into an error (`raise_for_status`).
    pub fn is_status(&self) -> bool {
        matches!(self.inner.kind, Kind::Status(_))
    }

    /// The status, if this is a status error.
    pub fn status(&self) -> Option<StatusCode> {
        match self.inner.kind {
            Kind::Status(status) => Some(status),
            _ => None,
        }
    }

    /// The URL was invalid or not `http`/`https`, including a redirect's `Location`
    /// (`InvalidURL`, `InvalidUrlRedirectClientError`, `NonHttpUrlRedirectClientError`).
    pub fn is_invalid_url(&self) -> bool {
        matches!(self.inner.kind, Kind::InvalidUrl { .. })
    }

    /// A redirect could not be followed: its `Location` was invalid or not HTTP, or there
    /// were too many.
    pub fn is_redirect(&self) -> bool {
        matches!(self.inner.kind, Kind::InvalidUrl { redirect: true } | Kind::TooManyRedirects)
    }

    /// More redirects than `max_redirects` (`TooManyRedirects`).
    pub fn is_too_many_redirects(&self) -> bool {
        self.inner.kind == Kind::TooManyRedirects
    }

    /// The server closed the connection before answering (`ServerDisconnectedError`).
    pub fn is_disconnected(&self) -> bool {
        self.inner.kind == Kind::Disconnected
    }

    /// The request could not be built: a bad header, method, body or option. Nothing was
    /// sent.
    pub fn is_request(&self) -> bool {
        self.inner.kind == Kind::Request
    }

    /// The body could not be decoded: invalid JSON, or not a JSON content type
    /// (`ContentTypeError`).
    pub fn is_decode(&self) -> bool {
        self.inner.kind == Kind::Decode
    }

    /// Reading or writing the socket failed (`ClientOSError`).
    pub fn is_io(&self) -> bool {
        self.inner.kind == Kind::Io
    }

    /// An error a [`Middleware`](crate::Middleware) returns of its own: a rate limiter
    /// that refuses, a policy that forbids an address. `source` is the error's
    /// [`source`](std::error::Error::source), for the caller to downcast.
    ///
    /// ```
    /// let e = tandem_client::Error::middleware("private addresses are not allowed");
    /// assert!(e.is_middleware());
    /// ```
    pub fn middleware(source: impl Into<BoxError>) -> Error {
        Error::new(Kind::Middleware, source)
    }

    /// The error is a middleware's own ([`Error::middleware`]).
    pub fn is_middleware(&self) -> bool {
        self.inner.kind == Kind::Middleware
    }

    /// A short stable name for the kind, for logs and exit messages.
    pub fn kind_name(&self) -> &'static str {
        match self.inner.kind {
            Kind::Connect => "connect",
            Kind::Timeout(_) => "timeout",
            Kind::Payload => "payload",
            Kind::Response => "response",
            Kind::Status(_) => "status",
            Kind::InvalidUrl { .. } => "invalid-url",
            Kind::TooManyRedirects => "too-many-redirects",
            Kind::Disconnected => "disconnected",
            Kind::Request => "request",
            Kind::Decode => "decode",
            Kind::Io => "io",
            Kind::Middleware => "middleware",
        }
    }
}

/// The error a response body failed with, kept so that every later read fails too, of the
/// same kind: a body that broke never reads as complete, nor as a shorter body.
#[derive(Debug)]
pub(crate) struct Failed {
    kind: Kind,
    message: Box<str>,
}

impl Failed {
    /// The error again, for a read after the one that failed.
    pub(crate) fn again(&self) -> Error {
        Error::new(self.kind, format!("the body failed earlier: {}", self.message))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(url) = &self.inner.url {
            d.field("url", &url.as_str());
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        if let Some(request) = &self.inner.request {
            d.field("request", request);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.kind {
            Kind::Connect => f.write_str("cannot connect")?,
            Kind::Timeout(phase) => write!(f, "timed out ({phase:?})")?,
            Kind::Payload => f.write_str("response payload is not complete or not valid")?,
            Kind::Response => f.write_str("invalid response")?,
            Kind::Status(status) => write!(f, "status {status}")?,
            Kind::InvalidUrl { redirect: false } => f.write_str("invalid URL")?,
            Kind::InvalidUrl { redirect: true } => f.write_str("invalid redirect URL")?,
            Kind::TooManyRedirects => f.write_str("too many redirects")?,
            Kind::Disconnected => f.write_str("server disconnected")?,
            Kind::Request => f.write_str("invalid request")?,
            Kind::Decode => f.write_str("cannot decode the body")?,
            Kind::Io => f.write_str("connection error")?,
            Kind::Middleware => f.write_str("refused by a middleware")?,
        }
        if let Some(url) = &self.inner.url {
            write!(f, " for {url}")?;
        }
        // The cause is `source()`'s to give, not this message's: a report that walks the
        // chain (anyhow's `{:#}`, `std::error::Report`) would print it twice.
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<tandem_connect::Error> for Error {
    fn from(e: tandem_connect::Error) -> Self {
        // The connector's timeouts: opening a socket is `sock_connect`; waiting for a pool
        // slot, or the connector's own `connect_timeout`, is `connect`.
        let kind = if e.is_sock_connect_timeout() {
            Kind::Timeout(Phase::SockConnect)
        } else if e.is_tls_handshake_timeout() {
            Kind::Timeout(Phase::TlsHandshake)
        } else if e.is_timeout() {
            Kind::Timeout(Phase::Connect)
        } else {
            Kind::Connect
        };
        Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_a_pointer() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn the_message_is_this_layers_and_the_cause_its_source() {
        let url = Url::parse("http://example.com/").unwrap();
        let e =
            Error::new(Kind::Connect, std::io::Error::other("refused by the test")).with_url(&url);
        assert_eq!(e.to_string(), "cannot connect for http://example.com/");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("refused by the test"));
    }

    #[test]
    fn without_url_drops_it() {
        let url = Url::parse("http://example.com/private-path").unwrap();
        let e = Error::bare(Kind::Payload).with_url(&url);
        assert!(e.to_string().contains("private-path"));
        let e = e.without_url();
        assert!(!e.to_string().contains("private-path"));
        assert!(e.is_payload());
    }

    #[test]
    fn the_url_is_kept_without_its_userinfo() {
        let url = Url::parse("http://user:secret@example.com/x").unwrap();
        let e = Error::bare(Kind::Payload).with_url(&url);
        assert_eq!(e.url().map(Url::as_str), Some("http://example.com/x"));
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(!format!("{e:?}").contains("secret"), "{e:?}");
    }
}
