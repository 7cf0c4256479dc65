//! Where the server's own log lines go: tracing events (targets `tandem::access` and
//! `tandem::server`), and, while no tracing subscriber is installed, lines on stderr, so that
//! a server nobody set logging up for still shows its requests and its errors, as aiohttp's
//! does.
//!
//! Written to stderr directly rather than with `eprintln!`, which panics when stderr is a
//! pipe whose reader has gone: a log line must never take a connection down.

use std::{
    fmt,
    io::Write,
    sync::atomic::{AtomicBool, Ordering},
    time::SystemTime,
};

/// Whether a runner with [`ServerConfig::stderr_log`](crate::ServerConfig::stderr_log) has
/// started in this process: the server's errors go to stderr too, while no subscriber is
/// installed. Process-wide, as the errors come from handlers and signals that do not know
/// their runner.
static STDERR_ERRORS: AtomicBool = AtomicBool::new(false);

/// Lets the server's errors fall back to stderr from now on.
pub(crate) fn enable_stderr_errors() {
    STDERR_ERRORS.store(true, Ordering::Relaxed);
}

/// Whether no tracing subscriber would see an event made on this thread now: neither a
/// global one nor one set for the thread.
pub(crate) fn no_subscriber() -> bool {
    tracing::dispatcher::get_default(tracing::Dispatch::is::<tracing::subscriber::NoSubscriber>)
}

/// Logs an error of the server's (a handler that failed or panicked, a signal, a response
/// that could not be sent): an error event on target `tandem::server` with the detail as
/// its `error` field, and the same on stderr while no subscriber is installed.
pub(crate) fn error(what: &str, detail: &dyn fmt::Display) {
    tracing::error!(target: "tandem::server", error = %detail, "{what}");
    if STDERR_ERRORS.load(Ordering::Relaxed) && no_subscriber() {
        let time = ClfTime(SystemTime::now());
        let _ = writeln!(std::io::stderr().lock(), "{time} ERROR {what}: {detail}");
    }
}

/// A warning of the server's, as [`error`] does errors.
pub(crate) fn warn(what: &str) {
    tracing::warn!(target: "tandem::server", "{what}");
    if STDERR_ERRORS.load(Ordering::Relaxed) && no_subscriber() {
        let time = ClfTime(SystemTime::now());
        let _ = writeln!(std::io::stderr().lock(), "{time} WARNING {what}");
    }
}

/// An error and its causes, `: `-separated, as anyhow's `{:#}` prints them: what a log line
/// about a failed handler shows.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// A time as the Common Log Format writes it, in UTC: `[10/Oct/2000:13:55:36 +0000]`,
/// aiohttp's `%t`.
pub(crate) struct ClfTime(pub(crate) SystemTime);

impl fmt::Display for ClfTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT` has every field at a fixed place:
        // rearranged, it is the log's date, without calendar code of our own.
        let date = httpdate::fmt_http_date(self.0);
        let field = |from: usize, to: usize| date.get(from..to).unwrap_or("?");
        write!(f, "[{}/{}/{}:{} +0000]", field(5, 7), field(8, 11), field(12, 16), field(17, 25))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::ClfTime;

    #[test]
    fn clf_time_is_aiohttps() {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(ClfTime(at).to_string(), "[06/Nov/1994:08:49:37 +0000]");
    }
}
