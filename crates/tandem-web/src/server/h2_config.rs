//! HTTP/2's settings, which exist whether or not the `http2` feature builds the driver
//! (`h2.rs`): an application configures them the same way either way, and without the
//! feature no connection speaks HTTP/2, so they have nothing to limit.

/// Streams one HTTP/2 connection may have open at once: 100, the least RFC 9113 (6.5.2)
/// recommends, nginx's `http2_max_concurrent_streams` is 128 and hyper's 200. Each open
/// stream can be a running handler; a peer that opens more is refused by `h2`.
pub const DEFAULT_H2_MAX_CONCURRENT_STREAMS: u32 = 100;

/// The flow-control window each request body starts with: 256 KiB, against the protocol's
/// 64 KiB, so an upload is not held to one window per round trip. A body the handler does
/// not read stops at this many bytes buffered.
pub const DEFAULT_H2_STREAM_WINDOW: u32 = 256 * 1024;

/// The flow-control window of the connection as a whole: 1 MiB. Whatever the number of
/// streams, no more than this of request bodies waits unread in one connection's memory.
pub const DEFAULT_H2_CONNECTION_WINDOW: u32 = 1024 * 1024;

/// Streams this server reset whose state it keeps, to ignore the frames still in flight
/// for them: 200. Past it the oldest is forgotten (and a frame for it is a connection
/// error), so a peer cannot grow this state without bound.
pub const DEFAULT_H2_MAX_CONCURRENT_RESET_STREAMS: usize = 200;

/// Streams the peer opened and reset before the server accepted them that may wait in the
/// accept queue: 20, as hyper. Past it the connection ends with `ENHANCE_YOUR_CALM`: the
/// defence `h2` has against rapid reset (CVE-2023-44487).
pub const DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// Streams the server may reset for the peer's protocol errors on one connection: 1024,
/// as hyper. Past it the connection ends with `ENHANCE_YOUR_CALM`, so a peer cannot make
/// the server answer errors forever.
pub const DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// Response bytes one stream may queue ahead of the socket: 128 KiB (`h2`'s default is
/// about 400 KiB). A response waits for room rather than buffer more, so a connection's
/// queued output is at most this times its open streams.
pub const DEFAULT_H2_MAX_SEND_BUFFER_SIZE: usize = 128 * 1024;

/// HTTP/2 settings: the limits `h2` enforces for each connection. The size of a request's
/// header list is not here: it is the HTTP/1.1 head limit,
/// [`Limits::max_head_size`](tandem_proto::Limits::max_head_size) of
/// [`ServerConfig::limits`](crate::ServerConfig::limits) (64 KiB by default), counted as RFC
/// 9113 counts it (each field's name and value plus 32 bytes); the field count and sizes are
/// then checked by the same rules as an HTTP/1.1 head. The request body limit is the app's
/// `client_max_size`, as on HTTP/1.1, and [`ServerConfig`](crate::ServerConfig)'s body, send,
/// keep-alive, head and shutdown timeouts apply (the head timeout to the connection preface
/// and settings).
///
/// Without the `http2` feature no connection speaks HTTP/2 (a plaintext connection that
/// opens with its preface gets a 400, and TLS offers only `http/1.1`), and these settings,
/// still accepted, limit nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Http2Config {
    /// Concurrent streams per connection ([`DEFAULT_H2_MAX_CONCURRENT_STREAMS`]).
    pub max_concurrent_streams: u32,
    /// Each stream's initial receive window ([`DEFAULT_H2_STREAM_WINDOW`]).
    pub stream_window: u32,
    /// The connection's receive window ([`DEFAULT_H2_CONNECTION_WINDOW`]).
    pub connection_window: u32,
    /// Locally reset streams remembered ([`DEFAULT_H2_MAX_CONCURRENT_RESET_STREAMS`]).
    pub max_concurrent_reset_streams: usize,
    /// Remotely reset streams waiting to be accepted
    /// ([`DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS`]).
    pub max_pending_accept_reset_streams: usize,
    /// Resets the peer's errors may cause ([`DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS`]).
    pub max_local_error_reset_streams: usize,
    /// Bytes queued per stream ([`DEFAULT_H2_MAX_SEND_BUFFER_SIZE`]).
    pub max_send_buffer_size: usize,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            max_concurrent_streams: DEFAULT_H2_MAX_CONCURRENT_STREAMS,
            stream_window: DEFAULT_H2_STREAM_WINDOW,
            connection_window: DEFAULT_H2_CONNECTION_WINDOW,
            max_concurrent_reset_streams: DEFAULT_H2_MAX_CONCURRENT_RESET_STREAMS,
            max_pending_accept_reset_streams: DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS,
            max_local_error_reset_streams: DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS,
            max_send_buffer_size: DEFAULT_H2_MAX_SEND_BUFFER_SIZE,
        }
    }
}

impl Http2Config {
    /// Sets [`max_concurrent_streams`](Self::max_concurrent_streams).
    #[must_use]
    pub fn with_max_concurrent_streams(mut self, max: u32) -> Self {
        self.max_concurrent_streams = max;
        self
    }

    /// Sets [`stream_window`](Self::stream_window) and
    /// [`connection_window`](Self::connection_window), each at least the protocol's
    /// 65,535 bytes and at most 2³¹ − 1.
    #[must_use]
    pub fn with_windows(mut self, stream: u32, connection: u32) -> Self {
        self.stream_window = stream.clamp(65_535, (1 << 31) - 1);
        self.connection_window = connection.clamp(65_535, (1 << 31) - 1);
        self
    }

    /// Sets [`max_concurrent_reset_streams`](Self::max_concurrent_reset_streams).
    #[must_use]
    pub fn with_max_concurrent_reset_streams(mut self, max: usize) -> Self {
        self.max_concurrent_reset_streams = max;
        self
    }

    /// Sets [`max_pending_accept_reset_streams`](Self::max_pending_accept_reset_streams).
    #[must_use]
    pub fn with_max_pending_accept_reset_streams(mut self, max: usize) -> Self {
        self.max_pending_accept_reset_streams = max;
        self
    }

    /// Sets [`max_local_error_reset_streams`](Self::max_local_error_reset_streams).
    #[must_use]
    pub fn with_max_local_error_reset_streams(mut self, max: usize) -> Self {
        self.max_local_error_reset_streams = max;
        self
    }

    /// Sets [`max_send_buffer_size`](Self::max_send_buffer_size), at most 4 GiB − 1.
    #[must_use]
    pub fn with_max_send_buffer_size(mut self, max: usize) -> Self {
        self.max_send_buffer_size = max.min(u32::MAX as usize);
        self
    }
}
