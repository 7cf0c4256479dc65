//! `Rewind`: IO with bytes already read in front of it.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream whose first bytes were already read into a buffer: reads return those first,
/// then the stream's own. Writes go straight to the stream (vectored writes too).
#[derive(Debug)]
pub struct Rewind<T> {
    prefix: BytesMut,
    inner: T,
}

impl<T> Rewind<T> {
    /// `inner`, with `prefix` read before anything it has.
    pub fn new(inner: T, prefix: BytesMut) -> Self {
        Rewind { prefix, inner }
    }

    /// The bytes not read yet from the prefix.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The stream underneath, to change.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The stream and what is left of the prefix.
    pub fn into_parts(self) -> (T, BytesMut) {
        (self.inner, self.prefix)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// Forwarded, so a protocol that writes a head and a payload from separate buffers gets
    /// one `writev` rather than a write per buffer (tokio's default writes only the first).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_prefix_comes_first_in_any_read_size_and_writes_pass_through() {
        let (mut peer, ours) = tokio::io::duplex(64);
        let mut io = Rewind::new(ours, BytesMut::from(&b"abc"[..]));
        peer.write_all(b"def").await.unwrap();
        let mut one = [0u8; 2];
        io.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"ab");
        assert_eq!(io.prefix(), b"c");
        let mut rest = [0u8; 4];
        io.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"cdef");
        io.write_all(b"back").await.unwrap();
        let mut echoed = [0u8; 4];
        peer.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"back");
    }
}
