//! The database's one error type, which tells "the database is unreachable" (a 503: try
//! again shortly) from "a query is wrong" (a 500: a bug).

use std::fmt;

use http::StatusCode;
use tandem_web::HttpError;

/// A database failure. [`is_unavailable`](Error::is_unavailable) says whether the database
/// could not be reached (down, restarting, out of connections, a connection lost mid-query);
/// a request that meets such an error is answered `503 Service Unavailable`, any other
/// (a query the schema refuses, a panic in a blocking task) a 500.
pub struct Error {
    unavailable: bool,
    inner: Box<dyn std::error::Error + Send + Sync>,
}

impl Error {
    /// Whether the database could not be reached, rather than refused a query.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }

    fn new(unavailable: bool, inner: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error { unavailable, inner: inner.into() }
    }
}

/// A `PostgreSQL` error means the server is out of reach when the connection is gone, when
/// no server answer is involved (refused, reset: an IO error), or when the server's answer
/// is of SQLSTATE class 08 (connection exception), 53 (insufficient resources: too many
/// connections) or 57 (operator intervention: shutting down, starting up).
fn postgres_unavailable(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        Some(code) => matches!(code.code().get(..2), Some("08" | "53" | "57")),
        None => std::error::Error::source(err)
            .is_some_and(<dyn std::error::Error>::is::<std::io::Error>),
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        Error::new(postgres_unavailable(&err), err)
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        let unavailable = match &err {
            // No connection within the pool's timeouts: all busy, or the server not answering.
            PoolError::Timeout(_) | PoolError::Closed => true,
            PoolError::Backend(e) => postgres_unavailable(e),
            PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => false,
        };
        Error::new(unavailable, err)
    }
}

impl From<deadpool_postgres::BuildError> for Error {
    fn from(err: deadpool_postgres::BuildError) -> Self {
        Error::new(false, err)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        // Another process held the write lock past `busy_timeout_ms`.
        let busy = matches!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        Error::new(busy, err)
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(err: tokio::task::JoinError) -> Self {
        Error::new(false, err)
    }
}

impl From<Error> for tandem_web::Error {
    fn from(err: Error) -> Self {
        if !err.is_unavailable() {
            return tandem_web::Error::new(err);
        }
        // The 503 keeps no source, so the causes are logged here, where they are known.
        tracing::error!(target: "polls", error = &err as &(dyn std::error::Error + 'static),
            "database unavailable");
        HttpError::new(StatusCode::SERVICE_UNAVAILABLE).into()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("unavailable", &self.unavailable)
            .field("inner", &self.inner)
            .finish()
    }
}

/// Transparent: the wrapped error's message and causes.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

#[cfg(test)]
mod tests {
    use tandem_web::IntoResponse as _;

    use super::*;

    #[test]
    fn unreachable_is_a_503_and_a_bad_query_a_500() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let sqlite_busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(Error::from(sqlite_busy).is_unavailable());
        let no_table = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some("no such table: vote".to_owned()),
        );
        let no_table = Error::from(no_table);
        assert!(!no_table.is_unavailable());
        assert_eq!(tandem_web::Error::from(no_table).into_response().status(), 500);
        let down = Error::new(true, refused);
        assert_eq!(tandem_web::Error::from(down).into_response().status(), 503);
    }
}
