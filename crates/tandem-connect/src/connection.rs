//! One connection handed out by the connector, and what is known about it.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use bytes::BytesMut;

use crate::{Http2Stream, Io, Origin, Proxy, pool::Lease};

/// What is known about a connection's transport.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The server's address (TCP only).
    pub peer_addr: Option<SocketAddr>,
    /// Our address (TCP only).
    pub local_addr: Option<SocketAddr>,
    /// The TLS session, for https.
    pub tls: Option<TlsInfo>,
}

/// What the handshake settled, kept with the connection.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The protocol version: `"TLSv1_3"` or `"TLSv1_2"`.
    pub version: Option<&'static str>,
    /// The cipher suite, by its IANA name: `"TLS13_AES_128_GCM_SHA256"`.
    pub cipher: Option<&'static str>,
    /// The ALPN protocol the server chose, if any.
    pub alpn: Option<Vec<u8>>,
    /// The server's leaf certificate, DER.
    pub peer_certificate: Option<Vec<u8>>,
    /// With SPKI pins: whether a certificate the server presented matched one. `Some(false)`
    /// only under [`pin_report_only`](crate::TlsConfigBuilder::pin_report_only), which lets
    /// the connection through (and logs the mismatch); `None` without SPKI pins.
    pub spki_pin_matched: Option<bool>,
}

/// What [`Connector::checkout`](crate::Connector::checkout) hands one request: a connection
/// of its own for HTTP/1.1, or a share of one for HTTP/2.
#[derive(Debug)]
pub enum Checkout {
    /// An HTTP/1.1 connection, the request's alone until it is released or dropped.
    Http1(Connection),
    /// A stream on an HTTP/2 connection that other requests share.
    Http2(Http2Stream),
}

impl Checkout {
    /// Whether the connection was open before this checkout.
    pub fn is_reused(&self) -> bool {
        match self {
            Checkout::Http1(conn) => conn.is_reused(),
            Checkout::Http2(stream) => stream.is_reused(),
        }
    }
}

/// One connection from a [`Connector`](crate::Connector). Dropping it closes it;
/// [`release`](Self::release) gives it back to the pool. Either way its slot in the pool is
/// freed.
pub struct Connection {
    pub(crate) parts: Parts,
    pub(crate) lease: Lease,
    pub(crate) reused: bool,
}

/// What a connection keeps in the pool between checkouts.
pub(crate) struct Parts {
    pub(crate) io: Box<dyn Io>,
    /// Behind a pointer, as it is only read: a connection is moved several times a request
    /// (into the response's body reader, back into the pool), and the pointer keeps each move
    /// small; shared, so that a response can keep it past the checkout.
    pub(crate) info: Arc<ConnectionInfo>,
    /// The buffer the last checkout read into, left empty: the next one reads into the same
    /// memory instead of allocating and freeing a buffer per request.
    pub(crate) read_buf: BytesMut,
}

impl Parts {
    pub(crate) fn new(io: Box<dyn Io>, info: ConnectionInfo) -> Self {
        Parts { io, info: Arc::new(info), read_buf: BytesMut::new() }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("origin", self.origin())
            .field("reused", &self.reused)
            .field("info", &self.parts.info)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The byte stream.
    pub fn io(&mut self) -> &mut (dyn Io + 'static) {
        &mut *self.parts.io
    }

    /// The origin it goes to.
    pub fn origin(&self) -> &Origin {
        &self.lease.key().origin
    }

    /// Whether it came from the pool (and so may have been closed by the server meanwhile:
    /// a client retries a request that fails on a reused connection before any response).
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// The proxy this connection goes through. For an http origin that means the client must
    /// write absolute-form requests carrying the proxy's `Proxy-Authorization`; for https the
    /// proxy is a tunnel and the client writes as usual.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.lease.key().proxy()
    }

    /// Addresses and the TLS session.
    pub fn info(&self) -> &ConnectionInfo {
        &self.parts.info
    }

    /// [`info`](Self::info), shared: for what outlives the checkout (a response, a
    /// WebSocket) to keep.
    pub fn shared_info(&self) -> Arc<ConnectionInfo> {
        Arc::clone(&self.parts.info)
    }

    /// Gives the connection back for reuse. Call it only when the last response's body was
    /// read to its end and the response allowed keep-alive.
    pub fn release(self) {
        self.lease.release(self.parts);
    }

    /// Takes the read buffer kept with the connection: empty, but with the memory the
    /// connection's last reader used when no one holds on to it. Give it back with
    /// [`set_read_buf`](Self::set_read_buf) before [`release`](Self::release) to keep it.
    pub fn take_read_buf(&mut self) -> BytesMut {
        std::mem::take(&mut self.parts.read_buf)
    }

    /// Keeps `buf` with the connection for its next checkout; it is cleared first, since
    /// bytes read on a connection must never be read as the next response.
    pub fn set_read_buf(&mut self, mut buf: BytesMut) {
        buf.clear();
        self.parts.read_buf = buf;
    }
}

// A connection is itself a byte stream, so it can be moved whole into whatever outlives the
// request (an upgraded WebSocket, say), keeping its pool slot until it is dropped, as
// aiohttp counts WebSocket connections against `limit`.
impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.parts.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.parts.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.parts.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.parts.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.parts.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.parts.io).poll_shutdown(cx)
    }
}
