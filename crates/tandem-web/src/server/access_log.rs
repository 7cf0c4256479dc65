//! The access log: one entry per request, written once it is answered, or once its client
//! has gone away, whichever comes first; a WebSocket's when its session ends. HTTP/1.1 and
//! HTTP/2 both log through here.
//!
//! A request whose client went away is logged as such, with the body bytes that reached the
//! socket: on HTTP/1.1 its response's write failed (the status is the response's); on HTTP/2
//! the client reset its stream, which cancels the handler, so a stream reset before its
//! response is logged with nginx's 499 ("client closed request").
//!
//! An entry goes to tracing (target `tandem::access`, level INFO), or, on a connection that
//! opened while no subscriber was installed, to stderr in aiohttp's default format
//! (`%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"`), unless
//! [`ServerConfig::stderr_log`] is off.

use std::{
    fmt::{self, Write as _},
    io::Write as _,
    net::SocketAddr,
    time::{Instant, SystemTime},
};

use http::{Method, Version, header};

use super::ServerConfig;
use crate::log::ClfTime;

/// Where a connection's entries go, chosen as it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sink {
    /// tracing events, when a subscriber wants them.
    Tracing,
    /// Lines on stderr.
    Stderr,
}

impl Sink {
    pub(crate) fn for_connection(config: &ServerConfig) -> Sink {
        if config.stderr_log && crate::log::no_subscriber() { Sink::Stderr } else { Sink::Tracing }
    }

    /// Whether a request starting now is to be logged: the only question a request asks
    /// when nothing reads the log.
    #[allow(
        clippy::inline_always,
        reason = "asked on every request, where nothing reads the log it is one load and a \
                  compare; left to itself the compiler makes it a call"
    )]
    #[inline(always)]
    pub(crate) fn wanted(self) -> bool {
        match self {
            Sink::Stderr => true,
            Sink::Tracing => tracing::enabled!(target: "tandem::access", tracing::Level::INFO),
        }
    }

    /// [`start`](Self::start) for an HTTP/1.1 request.
    #[inline]
    pub(crate) fn start_http1(self, head: &tandem_proto::RequestHead) -> Option<Box<Entry>> {
        if !self.wanted() {
            return None;
        }
        let fields = head.fields();
        let target = || head.target().to_owned();
        self.start(head.method(), target, head.version(), &|name| {
            fields.get(name.as_str()).map(|v| String::from_utf8_lossy(v).into_owned())
        })
    }

    /// The entry of a request now starting, if it is [`wanted`](Self::wanted).
    pub(crate) fn start(
        self,
        method: &Method,
        target: impl FnOnce() -> String,
        version: Version,
        headers: &dyn Fn(header::HeaderName) -> Option<String>,
    ) -> Option<Box<Entry>> {
        if !self.wanted() {
            return None;
        }
        let stderr = self == Sink::Stderr;
        Some(Box::new(Entry {
            started: Instant::now(),
            at: SystemTime::now(),
            method: method.clone(),
            target: target(),
            version,
            referer: stderr.then(|| headers(header::REFERER)).flatten(),
            user_agent: stderr.then(|| headers(header::USER_AGENT)).flatten(),
            stderr,
        }))
    }
}

/// A request being logged.
#[derive(Debug)]
pub(crate) struct Entry {
    started: Instant,
    at: SystemTime,
    method: Method,
    target: String,
    version: Version,
    referer: Option<String>,
    user_agent: Option<String>,
    stderr: bool,
}

impl Entry {
    /// Writes the entry: the `status` answered, the body `bytes` that reached the socket,
    /// and whether the client went away before the response was all sent.
    pub(crate) fn finish(self, remote: Option<SocketAddr>, status: u16, bytes: u64, aborted: bool) {
        if self.stderr {
            let mut line = String::with_capacity(160);
            let ip = remote.map(|r| r.ip());
            let _ = write!(
                line,
                "{} {} \"{} {} {:?}\" {} {} \"{}\" \"{}\"",
                ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
                ClfTime(self.at),
                self.method,
                Escaped(&self.target),
                self.version,
                status,
                bytes,
                Escaped(self.referer.as_deref().unwrap_or("-")),
                Escaped(self.user_agent.as_deref().unwrap_or("-")),
            );
            if aborted {
                line.push_str(" client went away");
            }
            line.push('\n');
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        } else {
            tracing::info!(target: "tandem::access", remote = %Peer(remote),
                method = %self.method, target = %self.target, version = ?self.version,
                status, bytes, aborted,
                micros = self.started.elapsed().as_micros() as u64, "request");
        }
    }
}

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

/// Text from the peer inside a quoted log field: a quote, a backslash or a control byte is
/// escaped, so no request can end the field early or forge a line.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\x{:02x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_cannot_break_out_of_its_field() {
        let text = Escaped("a\"b\\c\x1bd\u{7f}").to_string();
        assert_eq!(text, r#"a\"b\\c\x1bd\x7f"#);
        assert_eq!(Peer(None).to_string(), "-");
        assert_eq!(Peer(Some(([127, 0, 0, 1], 8080).into())).to_string(), "127.0.0.1:8080");
    }
}
