//! What `receive` returns: aiohttp's `WSMessage`, as one enum.

use bytes::Bytes;

use crate::error::{CloseCode, Error};

/// A message, or a change of the connection's state, as aiohttp's `WSMsgType` lists them.
///
/// [`receive`](crate::WebSocket::receive) answers pings by itself while `autoping` is on
/// (the default), so `Ping` and `Pong` reach the handler only with it off.
#[derive(Debug)]
#[non_exhaustive]
pub enum Message {
    /// A text message, valid UTF-8.
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// A ping, with its payload (with `autoping` off).
    Ping(Bytes),
    /// A pong, with its payload (with `autoping` off).
    Pong(Bytes),
    /// The peer sent a close frame: its code ([`CloseCode::NO_STATUS`] when it had none)
    /// and reason. The close was answered; the next `receive` returns `Closed`.
    Close(CloseCode, String),
    /// We sent a close frame (from a [`WsSender`](crate::WsSender), or for the server's
    /// shutdown) and are waiting for the peer's; returned once, then `receive` waits for it.
    Closing,
    /// The connection is closed; every later `receive` returns this again.
    Closed,
    /// The connection failed: a protocol error (the peer was sent the matching close code),
    /// a message over `max_msg_size`, a timeout, or a broken connection.
    Error(Error),
}

impl Message {
    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The payload of a text or binary message.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Message::Text(text) => Some(text.as_bytes()),
            Message::Binary(data) => Some(data),
            _ => None,
        }
    }

    /// Parses a text or binary message as JSON (aiohttp's `msg.json()`).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Option<serde_json::Result<T>> {
        self.as_bytes().map(serde_json::from_slice)
    }

    /// Whether this ends the conversation: `Close`, `Closing`, `Closed` or `Error`.
    pub fn is_close(&self) -> bool {
        matches!(self, Message::Close(..) | Message::Closing | Message::Closed | Message::Error(_))
    }
}
