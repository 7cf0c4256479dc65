//! `Upgraded`: a connection after `101 Switching Protocols`, the same type on both sides.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::BytesMut;
use http::Extensions;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::Rewind;

/// Any byte stream a connection can be: readable, writable, sendable, movable; and, as
/// `dyn Any`, what it is underneath (a plain TCP socket can send a file with `sendfile(2)`).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + std::any::Any {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A connection after `101 Switching Protocols`: the raw byte stream, for the protocol the
/// two sides switched to. `tandem-web`'s `Response::on_upgrade` and `tandem-client`'s
/// `ClientResponse::upgrade` both hand one out.
///
/// Bytes that arrived right behind the head that switched (the peer's first frames) are read
/// first. On the server the connection stays tracked, so graceful shutdown waits for it, and
/// [`shutdown_requested`](Self::shutdown_requested) tells the protocol when to say goodbye (a
/// WebSocket sends 1001 Going Away); on the client it never resolves. Whatever else a side
/// knows about the connection is in [`extensions`](Self::extensions): the client puts its
/// `tandem_connect::ConnectionInfo` (addresses, TLS) there.
pub struct Upgraded {
    io: Rewind<Box<dyn Io>>,
    shutdown: Option<CancellationToken>,
    extensions: Extensions,
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded")
            .field("buffered", &self.io.prefix().len())
            .finish_non_exhaustive()
    }
}

impl Upgraded {
    /// `io`, with `read_ahead` (bytes already read from it) read first.
    pub fn new<T: Io>(io: T, read_ahead: BytesMut) -> Self {
        Upgraded {
            io: Rewind::new(Box::new(io), read_ahead),
            shutdown: None,
            extensions: Extensions::new(),
        }
    }

    /// Ties [`shutdown_requested`](Self::shutdown_requested) to `token`: a server cancels it
    /// when it begins a graceful shutdown.
    #[must_use]
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = Some(token);
        self
    }

    /// Resolves when the server begins a graceful shutdown; never, on a client's connection.
    pub async fn shutdown_requested(&self) {
        self.shutdown_signal().await;
    }

    /// Like [`shutdown_requested`](Self::shutdown_requested), but owning what it waits on,
    /// so it can be kept after the connection is split or moved.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let token = self.shutdown.clone();
        async move {
            match token {
                Some(token) => token.cancelled_owned().await,
                None => std::future::pending().await,
            }
        }
    }

    /// What the side that made it knows about the connection.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// What the side that made it knows about the connection, to change.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
