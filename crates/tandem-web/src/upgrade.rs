//! Taking over a connection after `101 Switching Protocols`: the hook WebSockets use.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::{handler::BoxFuture, payload::ConnRead, server::Writer};

/// What a response's upgrade callback runs with.
pub(crate) type OnUpgrade = Box<dyn FnOnce(Upgraded) -> BoxFuture<()> + Send>;

/// A connection after `101 Switching Protocols`: the raw byte stream, for the protocol the
/// handler switched to.
///
/// Bytes the client sent after its request head (the start of the new protocol, if it did
/// not wait for the 101) are read first. The connection stays tracked by the server, so
/// graceful shutdown waits for it; [`shutdown_requested`](Self::shutdown_requested) tells the
/// protocol when to say goodbye (a WebSocket sends 1001 Going Away).
pub struct Upgraded {
    read: Box<dyn ConnRead>,
    buffered: BytesMut,
    write: Writer,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded").field("buffered", &self.buffered.len()).finish_non_exhaustive()
    }
}

impl Upgraded {
    pub(crate) fn new(
        read: Box<dyn ConnRead>,
        buffered: BytesMut,
        write: Writer,
        shutdown: CancellationToken,
    ) -> Self {
        Upgraded { read, buffered, write, shutdown }
    }

    /// Resolves when the server begins a graceful shutdown.
    pub async fn shutdown_requested(&self) {
        self.shutdown.cancelled().await;
    }

    /// Like [`shutdown_requested`](Self::shutdown_requested), but owning what it waits on,
    /// so it can be kept after the connection is split or moved.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        self.shutdown.clone().cancelled_owned()
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.buffered.has_remaining() {
            let n = self.buffered.len().min(buf.remaining());
            buf.put_slice(&self.buffered[..n]);
            self.buffered.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write(cx, buf)
    }

    /// Forwarded, so a protocol that writes a head and a payload from separate buffers gets
    /// one `writev` rather than a write per buffer (tokio's default writes only the first).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.write.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_shutdown(cx)
    }
}

impl crate::Response {
    /// Makes this response switch protocols: once its head (status 101, with the `Upgrade`
    /// and `Connection` fields the handler set) is written, `f` runs with the raw connection.
    /// On any other status the callback is dropped and the response is sent as usual.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tandem_web::{Request, Response};
    /// use tokio::io::AsyncWriteExt;
    ///
    /// async fn upgrade(_req: Request) -> Response {
    ///     Response::new(StatusCode::SWITCHING_PROTOCOLS)
    ///         .with_header("upgrade", "echo")
    ///         .with_header("connection", "upgrade")
    ///         .on_upgrade(|mut io| async move {
    ///             let _ = io.write_all(b"hello from the other protocol").await;
    ///         })
    /// }
    /// ```
    #[must_use]
    pub fn on_upgrade<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce(Upgraded) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.inner.upgrade = Some(Box::new(move |io| Box::pin(f(io))));
        self
    }
}
