//! The one error type of `tandem-connect`.

use std::fmt;

/// Why a connection could not be made. Message text is not stable; use the predicates.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dns,
    Connect,
    Timeout,
    Tls,
    Unsupported,
}

impl Error {
    pub(crate) fn new(
        kind: Kind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error { inner: Box::new(Inner { kind, source: Some(source.into()) }) }
    }

    /// Name resolution failed.
    pub fn is_dns(&self) -> bool {
        self.inner.kind == Kind::Dns
    }

    /// The TCP connection (or the Unix socket) could not be opened.
    pub fn is_connect(&self) -> bool {
        matches!(self.inner.kind, Kind::Connect | Kind::Dns | Kind::Timeout | Kind::Tls)
    }

    /// A connect timeout elapsed.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == Kind::Timeout
    }

    /// The TLS handshake failed.
    pub fn is_tls(&self) -> bool {
        self.inner.kind == Kind::Tls
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
        f.write_str(match self.inner.kind {
            Kind::Dns => "name resolution failed",
            Kind::Connect => "connection failed",
            Kind::Timeout => "connect timed out",
            Kind::Tls => "TLS handshake failed",
            Kind::Unsupported => "unsupported",
        })
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_is_a_pointer() {
        assert_eq!(std::mem::size_of::<super::Error>(), std::mem::size_of::<usize>());
    }
}
