//! The crate's one error type.

use std::fmt;

use http::StatusCode;
use tandem_web::HttpError;

/// A session error: the middleware is not installed, the storage failed (Redis unreachable,
/// say), or a session could not be saved (too large for a cookie).
///
/// It converts into [`tandem_web::Error`], so `?` in a handler answers with it: a failing
/// storage (Redis down) is a `503 Service Unavailable`, which says "try again shortly" to a
/// browser, a load balancer and a monitor alike, and is logged here with its causes; any
/// other session error is a 500. Message text is for people and not a stable API; use the
/// predicates.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    NotInstalled,
    Config,
    Storage,
    TooLarge,
}

impl Error {
    pub(crate) fn not_installed() -> Self {
        Self::new(Kind::NotInstalled, "no SessionMiddleware is installed on this application")
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(Kind::Config, message)
    }

    pub(crate) fn too_large(len: usize, limit: usize) -> Self {
        Self::new(
            Kind::TooLarge,
            format!("the session cookie would be {len} bytes, over the {limit}-byte limit"),
        )
    }

    /// A storage's backend failed: what a [`Storage`](crate::Storage) of your own returns
    /// when its server cannot be reached. `message` says what was tried, `source` why it
    /// failed.
    pub fn storage(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        let mut err = Self::new(Kind::Storage, message);
        err.inner.source = Some(source.into());
        err
    }

    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { inner: Box::new(Inner { kind, message: message.into(), source: None }) }
    }

    /// Whether `get_session` was called on an application without a [`crate::SessionMiddleware`].
    pub fn is_not_installed(&self) -> bool {
        self.inner.kind == Kind::NotInstalled
    }

    /// Whether a storage was configured wrongly (a secret too short, say).
    pub fn is_config(&self) -> bool {
        self.inner.kind == Kind::Config
    }

    /// Whether the storage's backend failed (Redis unreachable, say).
    pub fn is_storage(&self) -> bool {
        self.inner.kind == Kind::Storage
    }

    /// Whether a session was too large to save in a cookie.
    pub fn is_too_large(&self) -> bool {
        self.inner.kind == Kind::TooLarge
    }
}

impl From<Error> for tandem_web::Error {
    fn from(err: Error) -> Self {
        if !err.is_storage() {
            return tandem_web::Error::new(err);
        }
        // The 503 keeps no source, so the causes ("Connection refused") are logged here,
        // where they are still known.
        tracing::error!(target: "tandem::session", error = &err as &(dyn std::error::Error + 'static),
            "session storage unavailable");
        HttpError::new(StatusCode::SERVICE_UNAVAILABLE).into()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_storage_is_a_503_and_other_errors_a_500() {
        use tandem_web::IntoResponse as _;

        let down = Error::storage("Redis GET failed", std::io::Error::other("refused"));
        assert_eq!(tandem_web::Error::from(down).into_response().status(), 503);
        let too_large = Error::too_large(5000, 4096);
        assert_eq!(tandem_web::Error::from(too_large).into_response().status(), 500);
        assert_eq!(tandem_web::Error::from(Error::not_installed()).into_response().status(), 500);
    }

    #[test]
    fn error_is_a_pointer_and_sendable() {
        fn send_sync<T: Send + Sync>() {}
        assert_eq!(size_of::<Error>(), size_of::<usize>());
        send_sync::<Error>();
    }
}
