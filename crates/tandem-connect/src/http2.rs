//! HTTP/2 on the client side: which version a connection speaks ([`Http2`]), the `h2`
//! handshake and the task that drives each connection, and [`Http2Stream`], one request's
//! share of a pooled HTTP/2 connection.
//!
//! `h2` does the protocol (framing, HPACK, flow control, stream states, the server's stream
//! limit); the pool (`pool/shared.rs`) decides which connection a request goes on.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use h2::client::SendRequest;

use crate::{
    ConnectionInfo, Io, Origin, Proxy,
    error::{Error, Kind},
    pool::{Pool, PoolKey},
};

/// Whether connections speak HTTP/2 ([`ConnectorBuilder::http2`](crate::ConnectorBuilder::http2),
/// or per checkout [`ConnectOptions::http2`](crate::ConnectOptions::http2)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Http2 {
    /// HTTP/2 over TLS when the server chooses `h2` by ALPN (offered first, then
    /// `http/1.1`); HTTP/1.1 otherwise, and always on plain `http` (the `Upgrade: h2c` dance
    /// is deprecated by RFC 9113).
    #[default]
    Auto,
    /// HTTP/1.1 only: ALPN offers `http/1.1` alone.
    Never,
    /// HTTP/2 without asking: on plain `http` the connection opens with the HTTP/2 preface
    /// (h2c by prior knowledge, RFC 9113 §3.3), and over TLS ALPN offers `h2` alone. A server
    /// that does not speak HTTP/2 fails the request.
    PriorKnowledge,
}

/// The receive window each response body starts with: 2 MiB, hyper's client default,
/// against the protocol's 64 KiB, so a download is not held to 64 KiB per round trip. It
/// bounds what one response can buffer unread.
pub const DEFAULT_HTTP2_STREAM_WINDOW: u32 = 2 * 1024 * 1024;

/// The receive window of a connection as a whole: 5 MiB, hyper's client default. Whatever
/// the number of requests on it, no more than this of response bodies waits unread in one
/// connection's memory.
pub const DEFAULT_HTTP2_CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// The largest header list a response may carry, counted as RFC 9113 counts it (each
/// field's name and value plus 32 bytes): 64 KiB, the size limit on an HTTP/1.1 response
/// head ([`tandem_proto::DEFAULT_MAX_HEAD_SIZE`]).
pub const DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE: u32 = tandem_proto::DEFAULT_MAX_HEAD_SIZE as u32;

/// The HTTP/2 settings of a connector.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Http2Settings {
    pub(crate) mode: Http2,
    pub(crate) stream_window: u32,
    pub(crate) connection_window: u32,
    pub(crate) max_header_list_size: u32,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            mode: Http2::Auto,
            stream_window: DEFAULT_HTTP2_STREAM_WINDOW,
            connection_window: DEFAULT_HTTP2_CONNECTION_WINDOW,
            max_header_list_size: DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE,
        }
    }
}

/// One request's share of a pooled HTTP/2 connection, from
/// [`Connector::checkout`](crate::Connector::checkout): the handle to open its stream with,
/// which holds the request's place among the connection's streams until it is dropped.
/// Keep it until the response body has been read (or dropped); other requests go on the
/// same connection meanwhile.
pub struct Http2Stream {
    pub(crate) send: SendRequest<Bytes>,
    pub(crate) pool: Arc<Pool>,
    pub(crate) key: PoolKey,
    pub(crate) id: u64,
    pub(crate) info: Arc<ConnectionInfo>,
    pub(crate) reused: bool,
}

impl std::fmt::Debug for Http2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Stream")
            .field("origin", self.origin())
            .field("connection", &self.id)
            .field("reused", &self.reused)
            .finish_non_exhaustive()
    }
}

impl Http2Stream {
    /// The `h2` handle to send the request with: await its `ready()` (a clone's), then
    /// `send_request`.
    pub fn sender(&mut self) -> &mut SendRequest<Bytes> {
        &mut self.send
    }

    /// The origin the connection goes to.
    pub fn origin(&self) -> &Origin {
        &self.key.origin
    }

    /// Whether the connection was open before this checkout (it may then have been closed
    /// by the server meanwhile).
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// The proxy whose `CONNECT` tunnel the connection goes through.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.key.proxy()
    }

    /// Addresses and the TLS session.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// [`info`](Self::info), shared: for the response to keep.
    pub fn shared_info(&self) -> Arc<ConnectionInfo> {
        Arc::clone(&self.info)
    }
}

/// Opens HTTP/2 on `io` (the preface and our settings are written; the server's come with
/// its first frames), and spawns the task that drives the connection for as long as it
/// lives, taking it out of `pool` when it ends. Returns the connection's id and handle.
///
/// Until the server's settings arrive the connection assumes `max_streams` concurrent
/// streams: the limit the server gave the key's other connections, else none (RFC 9113
/// §5.1.2: there is none until the server sets one).
pub(crate) async fn handshake(
    io: Box<dyn Io>,
    settings: &Http2Settings,
    max_streams: Option<usize>,
    pool: Weak<Pool>,
    key: PoolKey,
) -> Result<(u64, SendRequest<Bytes>), Error> {
    let mut builder = h2::client::Builder::new();
    if let Some(max) = max_streams {
        builder.initial_max_send_streams(max);
    }
    let (send, conn) = builder
        .initial_window_size(settings.stream_window)
        .initial_connection_window_size(settings.connection_window)
        .max_header_list_size(settings.max_header_list_size)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| Error::new(Kind::Connect, e))?;
    let id = crate::pool::next_shared_id();
    tokio::spawn(async move {
        // It ends when the server closes it or says GOAWAY (once the streams it let finish
        // are done), on an IO or protocol error, or once the pool and every request have
        // dropped their handles.
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "HTTP/2 connection ended");
        }
        if let Some(pool) = pool.upgrade() {
            pool.remove_shared(&key, id);
        }
    });
    Ok((id, send))
}
