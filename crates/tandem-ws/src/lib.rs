//! WebSockets for Tandem, on both sides: [`WebSocketResponse`] in server handlers and
//! [`ws_connect`](WsConnectExt::ws_connect) on client sessions, with permessage-deflate
//! (RFC 7692).
//!
//! Both sides give the same [`WebSocket`]: one task reads with
//! [`receive`](WebSocket::receive) or as a `Stream` of [`Message`]s, any number of tasks send
//! through it or its [`WsSender`]s. Pings are answered for you (`autoping`), a `heartbeat`
//! pings on a timer and closes a connection that stopped answering, `max_msg_size` (4 MiB by
//! default) caps every message after inflation, and a server shutting down closes its
//! WebSockets with 1001 Going Away.
//!
//! The frame layer is our own rather than tungstenite's, which refuses the RSV1 bit that
//! permessage-deflate sets on compressed messages; `docs/ARCHITECTURE.md` says more.
//!
//! ```no_run
//! use tandem_web::{Application, HttpError, Request, Response};
//! use tandem_ws::{Message, WebSocketResponse};
//!
//! async fn chat(req: Request) -> Result<Response, HttpError> {
//!     WebSocketResponse::new().heartbeat(std::time::Duration::from_secs(30)).prepare(
//!         &req,
//!         |mut ws| async move {
//!             while let Message::Text(text) = ws.receive().await {
//!                 if ws.send_str(&format!("you said: {text}")).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         },
//!     )
//! }
//!
//! let mut app = Application::new();
//! app.add_get("/ws", chat);
//! ```
//!
//! A connection whose opening handshake was done elsewhere (another HTTP stack, a proxy, a
//! test) becomes a `WebSocket` with [`WebSocket::from_raw_socket`], over any
//! `AsyncRead + AsyncWrite`. Every [`WsSender`] is a `futures::Sink` of [`Message`]s.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `client` | on | `ws_connect` on `tandem-client` sessions (`WsConnectExt`, `WsConnect`) |
//! | `server` | on | `WebSocketResponse` in `tandem-web` handlers |
//!
//! With neither, [`WebSocket::from_raw_socket`] remains, and neither HTTP crate is built.

/// The settings every way of making a WebSocket shares (`WebSocketResponse`, `WsConnect` and
/// `WebSocketConfig`), written once: each of those types has an `options: Options` field.
/// `$attr` goes on every method (`#[must_use]`, where the type itself is not must-use).
macro_rules! options_setters {
    ($(#[$attr:meta])*) => {
        /// Answer pings and swallow pongs inside `receive` (default on).
        $(#[$attr])*
        pub fn autoping(mut self, yes: bool) -> Self {
            self.options.autoping = yes;
            self
        }

        /// Ping every `every`, and close the connection if no frame arrives within half of it,
        /// or if a peer reading nothing leaves a pong we owe it unwritten that long past the
        /// next ping.
        $(#[$attr])*
        pub fn heartbeat(mut self, every: std::time::Duration) -> Self {
            self.options.heartbeat = Some(every);
            self
        }

        /// How many heartbeat pongs may be missed in a row before the connection is closed
        /// (default [`DEFAULT_HEARTBEAT_MAX_MISSED`](crate::DEFAULT_HEARTBEAT_MAX_MISSED), 1,
        /// as aiohttp; at least 1). Any frame from the peer resets the count.
        $(#[$attr])*
        pub fn heartbeat_max_missed(mut self, pongs: u32) -> Self {
            self.options.heartbeat_max_missed = pongs.max(1);
            self
        }

        /// How long one `receive` may wait (default: forever).
        $(#[$attr])*
        pub fn receive_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.receive_timeout = Some(timeout);
            self
        }

        /// The largest message accepted, after inflation; a larger one closes with 1009.
        /// Default [`DEFAULT_MAX_MSG_SIZE`](crate::DEFAULT_MAX_MSG_SIZE); 0 means no limit.
        $(#[$attr])*
        pub fn max_msg_size(mut self, bytes: usize) -> Self {
            self.options.max_msg_size = bytes;
            self
        }

        /// How long `close` waits for the peer's close frame, and for room to write ours
        /// when the peer reads nothing. Default
        /// [`DEFAULT_CLOSE_TIMEOUT`](crate::DEFAULT_CLOSE_TIMEOUT).
        $(#[$attr])*
        pub fn close_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.close_timeout = timeout;
            self
        }
    };
}

mod assemble;
#[cfg(feature = "client")]
mod client;
mod deflate;
mod error;
mod frame;
#[cfg(any(feature = "client", feature = "server"))]
mod handshake;
mod masking;
mod message;
mod send;
#[cfg(feature = "server")]
mod server;
mod shutdown;
mod socket;

#[cfg(feature = "client")]
pub use client::{WsConnect, WsConnectExt};
pub use error::{CloseCode, Error};
pub use frame::Role;
pub use message::Message;
pub use send::{FrameType, WsSender};
#[cfg(feature = "server")]
pub use server::WebSocketResponse;
pub use socket::{
    DEFAULT_CLOSE_TIMEOUT, DEFAULT_HEARTBEAT_MAX_MISSED, DEFAULT_MAX_MSG_SIZE, HeartbeatStats,
    WebSocket, WebSocketConfig,
};

/// README.md's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
