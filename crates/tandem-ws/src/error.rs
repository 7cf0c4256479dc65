//! The crate's one error type, and close codes.

use std::fmt;

/// A close status code (RFC 6455 §7.4), aiohttp's `WSCloseCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const OK: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away: a server shutting down, a browser leaving the page.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a kind of data the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: the close frame carried no code. Never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Never sent.
    pub const ABNORMAL_CLOSURE: CloseCode = CloseCode(1006);
    /// 1007: a text message was not valid UTF-8.
    pub const INVALID_TEXT: CloseCode = CloseCode(1007);
    /// 1008: a message broke the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message was larger than `max_msg_size`.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not agree to.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server failed while handling the connection.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);

    /// Whether a peer may send this code in a close frame (RFC 6455 §7.4 and the IANA
    /// registry): 1000–1003, 1007–1014, and the 3000–4999 range for libraries and
    /// applications.
    pub fn is_allowed_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The opening handshake failed, on either side.
    Handshake,
    /// The peer broke RFC 6455 or 7692; the connection was closed with `code`.
    Protocol,
    /// A message or frame exceeded `max_msg_size`; closed with 1009.
    TooBig,
    /// `receive_timeout` elapsed, the heartbeat's pong did not come, or the peer read
    /// nothing before a deadline.
    Timeout,
    /// The WebSocket is closed or closing: nothing more can be sent.
    Closed,
    /// The connection failed underneath.
    Io,
    /// The HTTP request of a client handshake failed.
    Client,
    /// A message was not the JSON asked for, or a value could not be written as JSON.
    Json,
    /// `receive_str` or `receive_bytes` got a message of another type (aiohttp's
    /// `WSMessageTypeError`).
    MessageType,
}

/// What can go wrong with a WebSocket.
///
/// Its message (`Display`) says only what failed at this layer ("WebSocket protocol
/// error"); the detail or cause is its [`source`](std::error::Error::source), as the standard
/// library's convention has it, so a report that walks the chain (anyhow's `{:#}`) prints
/// each once: `WebSocket protocol error: masked server frame`.
pub struct Error {
    kind: Kind,
    code: Option<CloseCode>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    #[cfg(any(feature = "client", feature = "server"))]
    pub(crate) fn handshake(why: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error { kind: Kind::Handshake, code: None, source: Some(why.into()) }
    }

    pub(crate) fn protocol(code: CloseCode, why: &'static str) -> Self {
        Error { kind: Kind::Protocol, code: Some(code), source: Some(why.into()) }
    }

    pub(crate) fn too_big() -> Self {
        Error {
            kind: Kind::TooBig,
            code: Some(CloseCode::MESSAGE_TOO_BIG),
            source: Some("message larger than max_msg_size".into()),
        }
    }

    pub(crate) fn timeout(why: &'static str) -> Self {
        Error { kind: Kind::Timeout, code: None, source: Some(why.into()) }
    }

    pub(crate) fn heartbeat_lost() -> Self {
        Error {
            kind: Kind::Timeout,
            code: Some(CloseCode::ABNORMAL_CLOSURE),
            source: Some("no pong within half the heartbeat".into()),
        }
    }

    /// A frame we owed the peer (the pong to its ping, the answer to its close) or closed
    /// with did not go out before a deadline: the peer reads nothing. The frame may be half
    /// written, so no close frame can follow it.
    pub(crate) fn peer_not_reading() -> Self {
        Error {
            kind: Kind::Timeout,
            code: Some(CloseCode::ABNORMAL_CLOSURE),
            source: Some("the peer read nothing of ours before the deadline".into()),
        }
    }

    /// `got` (a message's type and size, say) where a message of another type was asked for.
    pub(crate) fn message_type(got: String) -> Self {
        Error { kind: Kind::MessageType, code: None, source: Some(got.into()) }
    }

    pub(crate) fn closed() -> Self {
        Error { kind: Kind::Closed, code: None, source: None }
    }

    pub(crate) fn io(e: std::io::Error) -> Self {
        Error { kind: Kind::Io, code: None, source: Some(e.into()) }
    }

    pub(crate) fn json(e: serde_json::Error) -> Self {
        Self::json_with(e)
    }

    /// A JSON error from a serializer of the caller's.
    pub(crate) fn json_with(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error { kind: Kind::Json, code: None, source: Some(e.into()) }
    }

    #[cfg(feature = "client")]
    pub(crate) fn client(e: tandem_client::Error) -> Self {
        Error { kind: Kind::Client, code: None, source: Some(e.into()) }
    }

    /// The opening handshake failed: a bad upgrade request on the server, or on the client a
    /// non-101 status, a wrong `Sec-WebSocket-Accept`, or a subprotocol or extension that was
    /// not offered.
    pub fn is_handshake(&self) -> bool {
        self.kind == Kind::Handshake
    }

    /// The peer broke the protocol; [`close_code`](Self::close_code) says how.
    pub fn is_protocol(&self) -> bool {
        self.kind == Kind::Protocol
    }

    /// A message was larger than `max_msg_size` (closed with 1009).
    pub fn is_message_too_big(&self) -> bool {
        self.kind == Kind::TooBig
    }

    /// `receive_timeout` elapsed, a heartbeat ping went unanswered, or the peer read nothing
    /// of ours before the heartbeat's or the close timeout's deadline (the pong a ping asks
    /// for, a close frame).
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// `receive_str` or `receive_bytes` got a message of another type: a binary message
    /// where text was asked for, or a ping or pong with `autoping` off. The message is
    /// consumed, as aiohttp's `WSMessageTypeError` consumes it; the error's source says
    /// what it was.
    pub fn is_message_type(&self) -> bool {
        self.kind == Kind::MessageType
    }

    /// The WebSocket was already closed.
    pub fn is_closed(&self) -> bool {
        self.kind == Kind::Closed
    }

    /// The connection failed underneath.
    pub fn is_io(&self) -> bool {
        self.kind == Kind::Io
    }

    /// The client's handshake request failed (connect, TLS, timeout, ...): the client error
    /// is the [`source`](std::error::Error::source).
    pub fn is_client(&self) -> bool {
        self.kind == Kind::Client
    }

    /// A message was not the JSON asked for, or a value could not be written as JSON.
    pub fn is_json(&self) -> bool {
        self.kind == Kind::Json
    }

    /// The code the connection was closed with because of this error, if any.
    pub fn close_code(&self) -> Option<CloseCode> {
        self.code
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("tandem_ws::Error");
        d.field("kind", &self.kind);
        if let Some(code) = self.code {
            d.field("code", &code.0);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Handshake => "WebSocket handshake failed",
            Kind::Protocol => "WebSocket protocol error",
            Kind::TooBig => "WebSocket message too big",
            Kind::Timeout => "WebSocket timeout",
            Kind::Closed => "WebSocket is closed",
            Kind::Io => "WebSocket connection failed",
            Kind::Client => "WebSocket handshake request failed",
            Kind::Json => "WebSocket message is not the expected JSON",
            Kind::MessageType => "WebSocket message is not of the type asked for",
        };
        // The cause is `source()`'s to give, not this message's: a report that walks the
        // chain (anyhow's `{:#}`, `std::error::Report`) would print it twice.
        f.write_str(what)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::{CloseCode, Error};

    #[test]
    fn the_message_is_this_layers_and_the_detail_its_source() {
        let e = Error::protocol(CloseCode::PROTOCOL_ERROR, "masked server frame");
        assert_eq!(e.to_string(), "WebSocket protocol error");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("masked server frame"));
        let io = Error::io(std::io::Error::other("reset by the test"));
        assert_eq!(io.to_string(), "WebSocket connection failed");
    }
}
