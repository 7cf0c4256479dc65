//! The one error type of `tandem-connect`.

use std::fmt;

/// Why a connection could not be made. Message text is not stable; use the predicates.
///
/// Its message (`Display`) says only what failed at this layer; the cause, when there is
/// one, is its [`source`](std::error::Error::source), as the standard library's convention
/// has it, so a report that walks the chain (anyhow's `{:#}`) prints each cause once.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dns,
    Connect,
    /// Establishing a new connection took longer than `connect_timeout`.
    ConnectTimeout,
    /// Every TCP attempt took longer than `sock_connect_timeout`.
    SockConnectTimeout,
    /// A TLS handshake (with the origin or an https proxy) took longer than
    /// `tls_handshake_timeout`.
    TlsHandshakeTimeout,
    /// Waiting for a free slot in the pool took longer than `pool_timeout`.
    PoolTimeout,
    #[cfg_attr(not(feature = "tls"), allow(dead_code, reason = "only the handshake fails so"))]
    Tls,
    /// The server's certificate failed verification (a subset of `Tls`).
    Certificate,
    #[cfg_attr(not(feature = "tls"), allow(dead_code, reason = "only the handshake fails so"))]
    FingerprintMismatch {
        expected: Vec<u8>,
        got: Vec<u8>,
    },
    /// The proxy failed or refused the tunnel (with its status, if it answered).
    Proxy(Option<u16>),
    /// A setting could not be used: bad PEM, a fingerprint of the wrong length.
    Config,
    #[cfg_attr(
        all(unix, feature = "tls"),
        allow(dead_code, reason = "only non-Unix builds, or builds without TLS, lack a transport")
    )]
    Unsupported,
}

impl Error {
    pub(crate) fn new(
        kind: Kind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error { inner: Box::new(Inner { kind, source: Some(source.into()) }) }
    }

    pub(crate) fn bare(kind: Kind) -> Self {
        Error { inner: Box::new(Inner { kind, source: None }) }
    }

    /// Name resolution failed.
    pub fn is_dns(&self) -> bool {
        self.inner.kind == Kind::Dns
    }

    /// No connection could be opened: DNS, TCP, a connect timeout, TLS or the certificate
    /// (aiohttp's `ClientConnectorError` family). A pool wait timeout is not a connect error.
    pub fn is_connect(&self) -> bool {
        matches!(
            self.inner.kind,
            Kind::Connect
                | Kind::Dns
                | Kind::ConnectTimeout
                | Kind::SockConnectTimeout
                | Kind::TlsHandshakeTimeout
                | Kind::Tls
                | Kind::Certificate
                | Kind::FingerprintMismatch { .. }
                | Kind::Proxy(_)
        )
    }

    /// The proxy failed, or refused the `CONNECT` tunnel.
    pub fn is_proxy(&self) -> bool {
        matches!(self.inner.kind, Kind::Proxy(_))
    }

    /// The status the proxy refused the `CONNECT` tunnel with (407 asks for credentials).
    pub fn proxy_status(&self) -> Option<u16> {
        match self.inner.kind {
            Kind::Proxy(status) => status,
            _ => None,
        }
    }

    /// A timeout elapsed: connecting, or waiting for a free slot in the pool.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.inner.kind,
            Kind::ConnectTimeout
                | Kind::SockConnectTimeout
                | Kind::TlsHandshakeTimeout
                | Kind::PoolTimeout
        )
    }

    /// The timeout was `connect_timeout`, `sock_connect_timeout` or
    /// `tls_handshake_timeout`: a new connection could not be opened in time.
    pub fn is_connect_timeout(&self) -> bool {
        matches!(
            self.inner.kind,
            Kind::ConnectTimeout | Kind::SockConnectTimeout | Kind::TlsHandshakeTimeout
        )
    }

    /// The timeout was `tls_handshake_timeout`: TCP connected, but the TLS handshake did
    /// not finish in time. A TLS error too ([`is_tls`](Self::is_tls)).
    pub fn is_tls_handshake_timeout(&self) -> bool {
        self.inner.kind == Kind::TlsHandshakeTimeout
    }

    /// The timeout was `sock_connect_timeout`: every TCP attempt took too long.
    pub fn is_sock_connect_timeout(&self) -> bool {
        self.inner.kind == Kind::SockConnectTimeout
    }

    /// The timeout was the wait for a free slot in the pool (`limit`/`limit_per_host`).
    pub fn is_pool_timeout(&self) -> bool {
        self.inner.kind == Kind::PoolTimeout
    }

    /// The TLS handshake failed, for any reason including the certificate, the pin and
    /// its own timeout.
    pub fn is_tls(&self) -> bool {
        matches!(
            self.inner.kind,
            Kind::Tls
                | Kind::Certificate
                | Kind::FingerprintMismatch { .. }
                | Kind::TlsHandshakeTimeout
        )
    }

    /// The server's certificate was refused: untrusted, expired, or for another name.
    pub fn is_certificate(&self) -> bool {
        self.inner.kind == Kind::Certificate
    }

    /// The server's certificate did not match the pinned SHA-256 fingerprint: `(expected,
    /// got)`, as aiohttp's `ServerFingerprintMismatch`.
    pub fn fingerprint_mismatch(&self) -> Option<(&[u8], &[u8])> {
        match &self.inner.kind {
            Kind::FingerprintMismatch { expected, got } => Some((expected, got)),
            _ => None,
        }
    }

    /// A setting was unusable: PEM that does not parse, or a pin that is not a SHA-256 digest.
    pub fn is_config(&self) -> bool {
        self.inner.kind == Kind::Config
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match &self.inner.kind {
            Kind::Dns => "name resolution failed",
            Kind::Connect => "connection failed",
            Kind::ConnectTimeout => "connect timed out",
            Kind::SockConnectTimeout => "TCP connect timed out (sock_connect)",
            Kind::TlsHandshakeTimeout => "TLS handshake timed out",
            Kind::PoolTimeout => "timed out waiting for a free connection slot",
            Kind::Tls => "TLS handshake failed",
            Kind::Certificate => "server certificate verification failed",
            Kind::FingerprintMismatch { .. } => "server certificate fingerprint mismatch",
            Kind::Proxy(_) => "proxy error",
            Kind::Config => "invalid connector setting",
            Kind::Unsupported => "unsupported",
        })
        // The cause is `source()`'s to give, not this message's: a report that walks the
        // chain (anyhow's `{:#}`, `std::error::Report`) would print it twice.
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, Kind};

    #[test]
    fn error_is_a_pointer() {
        assert_eq!(std::mem::size_of::<super::Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn the_message_is_this_layers_and_the_cause_its_source() {
        let e = Error::new(Kind::Connect, std::io::Error::other("refused by the test"));
        assert_eq!(e.to_string(), "connection failed");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("refused by the test"));
    }

    #[test]
    fn predicates_nest_as_aiohttp() {
        let cert = Error::bare(Kind::Certificate);
        assert!(cert.is_certificate() && cert.is_tls() && cert.is_connect());
        let pin = Error::bare(Kind::FingerprintMismatch { expected: vec![1], got: vec![2] });
        assert_eq!(pin.fingerprint_mismatch(), Some((&[1u8][..], &[2u8][..])));
        assert!(pin.is_tls() && !pin.is_certificate());
        let pool = Error::bare(Kind::PoolTimeout);
        assert!(pool.is_timeout() && pool.is_pool_timeout() && !pool.is_connect());
        assert!(Error::bare(Kind::ConnectTimeout).is_connect());
    }
}
