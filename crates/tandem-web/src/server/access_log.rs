//! The access log: one entry per request, written once it is answered, or once its client
//! has gone away, whichever comes first; a WebSocket's when its session ends. HTTP/1.1 and
//! HTTP/2 both log through here.
//!
//! A request whose client went away is logged as such, with the body bytes that reached the
//! socket: on HTTP/1.1 its response's write failed (the status is the response's); on HTTP/2
//! the client reset its stream, which cancels the handler, so a stream reset before its
//! response is logged with nginx's 499 ("client closed request").
//!
//! Where an entry goes is [`ServerConfig::access_log`]: by default a tracing event (target
//! `tandem::access`, level INFO), or, on a connection that opened while no subscriber was
//! installed, a line on stderr in [`ServerConfig::access_log_format`] (aiohttp's default
//! unless set), unless [`ServerConfig::stderr_log`] is off.

use std::{
    fmt,
    io::Write,
    net::SocketAddr,
    sync::{Arc, LazyLock, Mutex},
    time::{Instant, SystemTime},
};

use http::{HeaderMap, Method, Version};

use super::{
    ServerConfig,
    log_format::{AccessLogFormat, Captured, DEFAULT_ACCESS_LOG_FORMAT, Fields},
};

/// Where the access log goes: [`ServerConfig::access_log`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum AccessLog {
    /// A tracing event per request when a subscriber wants target `tandem::access`; lines
    /// on stderr while none is installed, if [`ServerConfig::stderr_log`] is on. The
    /// default.
    #[default]
    Auto,
    /// Only tracing events, never stderr.
    Tracing,
    /// A line per request to a writer (a file, a pipe), whatever tracing does.
    Writer(AccessLogWriter),
    /// No access log (aiohttp's `access_log=None`).
    Off,
}

impl AccessLog {
    /// Lines to `writer`, one `write_all` per line under a lock: give it something quick
    /// to write to (a file, stdout); for a slow one, log through tracing and a non-blocking
    /// appender instead.
    pub fn writer(writer: impl Write + Send + 'static) -> AccessLog {
        AccessLog::Writer(AccessLogWriter(Arc::new(Mutex::new(writer))))
    }
}

/// The writer of [`AccessLog::Writer`], shared by every connection.
#[derive(Clone)]
pub struct AccessLogWriter(Arc<Mutex<dyn Write + Send>>);

impl fmt::Debug for AccessLogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessLogWriter")
    }
}

impl AccessLogWriter {
    fn write_line(&self, line: &[u8]) {
        // A writer that panicked once still takes lines: a log line never takes a
        // connection down.
        let mut writer = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writer.write_all(line);
    }
}

/// Where a connection's entries go, chosen as it opens.
#[derive(Clone, Debug)]
pub(crate) struct Sink {
    to: To,
    format: Option<AccessLogFormat>,
}

#[derive(Clone, Debug)]
enum To {
    Tracing,
    Stderr,
    Writer(AccessLogWriter),
    Off,
}

impl Sink {
    pub(crate) fn for_connection(config: &ServerConfig) -> Sink {
        let to = match &config.access_log {
            AccessLog::Auto if config.stderr_log && crate::log::no_subscriber() => To::Stderr,
            AccessLog::Auto | AccessLog::Tracing => To::Tracing,
            AccessLog::Writer(writer) => To::Writer(writer.clone()),
            AccessLog::Off => To::Off,
        };
        Sink { to, format: config.access_log_format.clone() }
    }

    /// Whether a request starting now is to be logged: the only question a request asks
    /// when nothing reads the log.
    #[allow(
        clippy::inline_always,
        reason = "asked on every request, where nothing reads the log it is one load and a \
                  compare; left to itself the compiler makes it a call"
    )]
    #[inline(always)]
    pub(crate) fn wanted(&self) -> bool {
        match self.to {
            To::Stderr | To::Writer(_) => true,
            To::Tracing => tracing::enabled!(target: "tandem::access", tracing::Level::INFO),
            To::Off => false,
        }
    }

    /// [`start`](Self::start) for an HTTP/1.1 request.
    #[inline]
    pub(crate) fn start_http1(&self, head: &tandem_proto::RequestHead) -> Option<Box<Entry>> {
        if !self.wanted() {
            return None;
        }
        let fields = head.fields();
        let target = || head.target().to_owned();
        self.start(head.method(), target, head.version(), &|name| fields.get(name))
    }

    /// The entry of a request now starting, if it is [`wanted`](Self::wanted); `header`
    /// looks a request header up.
    pub(crate) fn start<'h>(
        &self,
        method: &Method,
        target: impl FnOnce() -> String,
        version: Version,
        header: &dyn Fn(&str) -> Option<&'h [u8]>,
    ) -> Option<Box<Entry>> {
        if !self.wanted() {
            return None;
        }
        // A line of text needs a format: aiohttp's unless one is set. A tracing event
        // has its fields, and a line for its message only if a format is set.
        let format = match self.to {
            To::Tracing => self.format.clone(),
            _ => Some(self.format.clone().unwrap_or_else(|| DEFAULT.clone())),
        };
        let mut captured = Captured::default();
        if let Some(format) = &format {
            for name in format.request_headers() {
                captured.push(header(name.as_str()));
            }
        }
        Some(Box::new(Entry {
            started: Instant::now(),
            at: SystemTime::now(),
            method: method.clone(),
            target: target(),
            version,
            captured,
            client: None,
            default_format: self.format.is_none(),
            format,
            to: self.to.clone(),
        }))
    }
}

/// aiohttp's default format, parsed once.
static DEFAULT: LazyLock<AccessLogFormat> = LazyLock::new(|| {
    AccessLogFormat::new(DEFAULT_ACCESS_LOG_FORMAT).expect("the default format parses")
});

/// A request being logged.
#[derive(Debug)]
pub(crate) struct Entry {
    started: Instant,
    at: SystemTime,
    method: Method,
    target: String,
    version: Version,
    /// The header values the format prints.
    captured: Captured,
    /// The client as the application found it (behind a trusted proxy, the proxy's word),
    /// once the response says.
    client: Option<SocketAddr>,
    /// The format of the line, if there is one.
    format: Option<AccessLogFormat>,
    /// Whether `format` is aiohttp's default, not one the server was given: only that line
    /// tells of a client that went away, as it always has.
    default_format: bool,
    to: To,
}

thread_local! {
    /// The line being written, kept between requests so a line allocates nothing.
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl Entry {
    /// Reads what the line needs of the response before it is written, from its
    /// `extensions` the client [`TrustedProxies`](crate::TrustedProxies) found, and from
    /// its `headers` those the format prints.
    /// `headers` is called only if the format prints one, as a response builds its header
    /// map on first use.
    pub(crate) fn answered<'r>(
        &mut self,
        extensions: &http::Extensions,
        headers: impl FnOnce() -> &'r HeaderMap,
    ) {
        self.client = extensions.get::<LoggedClient>().map(|c| c.0);
        if let Some(format) = &self.format
            && !format.response_headers().is_empty()
        {
            let headers = headers();
            for name in format.response_headers() {
                self.captured.push(headers.get(name).map(http::HeaderValue::as_bytes));
            }
        }
    }

    /// Writes the entry: the `status` answered, the body `bytes` that reached the socket,
    /// and whether the client went away before the response was all sent. `peer` is the
    /// connection's peer, the client unless the response named another.
    pub(crate) fn finish(self, peer: Option<SocketAddr>, status: u16, bytes: u64, aborted: bool) {
        let took = self.started.elapsed();
        let client = self.client.or(peer);
        let Some(format) = &self.format else {
            tracing::info!(target: "tandem::access", remote = %Peer(client), peer = %Peer(peer),
                method = %self.method, target = %self.target, version = ?self.version,
                status, bytes, aborted, micros = took.as_micros() as u64, "request");
            return;
        };
        let fields = Fields {
            client,
            at: self.at,
            method: &self.method,
            target: &self.target,
            version: self.version,
            status,
            bytes,
            took,
            captured: &self.captured,
        };
        LINE.with_borrow_mut(|line| {
            line.clear();
            format.render(&fields, line);
            match &self.to {
                To::Tracing => {
                    tracing::info!(target: "tandem::access", remote = %Peer(client),
                        peer = %Peer(peer), method = %self.method, target = %self.target,
                        version = ?self.version, status, bytes, aborted,
                        micros = took.as_micros() as u64, "{line}");
                    return;
                }
                To::Stderr | To::Writer(_) | To::Off => {}
            }
            if aborted && self.default_format {
                line.push_str(" client went away");
            }
            line.push('\n');
            match &self.to {
                To::Stderr => {
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                }
                To::Writer(writer) => writer.write_line(line.as_bytes()),
                To::Tracing | To::Off => {}
            }
        });
    }
}

/// The client a middleware found behind a proxy, which the access log shows: put in the
/// response's extensions by [`TrustedProxies`](crate::TrustedProxies).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoggedClient(pub(crate) SocketAddr);

/// A peer's address as the log shows it: `127.0.0.1:52114`, or `-` (a Unix socket).
struct Peer(Option<SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_its_address_or_a_dash() {
        assert_eq!(Peer(None).to_string(), "-");
        assert_eq!(Peer(Some(([127, 0, 0, 1], 8080).into())).to_string(), "127.0.0.1:8080");
    }
}
