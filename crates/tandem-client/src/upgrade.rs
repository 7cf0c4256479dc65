//! Taking a connection over after `101 Switching Protocols`: the hook `ws_connect` uses.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Buf, BytesMut};
use tandem_connect::{Connection, ConnectionInfo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{
    ClientResponse,
    error::{Error, Kind},
};

/// A connection after a `101 Switching Protocols`, as a raw byte stream for the protocol the
/// request asked for.
///
/// Bytes the server sent right after its 101 (the first frames of the new protocol) are read
/// first. The connection keeps its slot in the connector's limits until it is dropped, as
/// aiohttp counts WebSocket connections against `limit`.
pub struct Upgraded {
    conn: Connection,
    buffered: BytesMut,
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded").field("buffered", &self.buffered.len()).finish_non_exhaustive()
    }
}

impl Upgraded {
    /// Addresses and the TLS session of the connection.
    pub fn info(&self) -> &ConnectionInfo {
        self.conn.info()
    }
}

impl ClientResponse {
    /// Takes the connection over after a `101 Switching Protocols`.
    ///
    /// A 101 is accepted only for a request that carried an `Upgrade` field; any other status
    /// is an error of kind response, and the connection is closed.
    pub fn upgrade(self) -> Result<Upgraded, Error> {
        let status = self.status();
        self.into_raw()
            .into_upgraded()
            .map(|(conn, buffered)| Upgraded { conn, buffered })
            .ok_or_else(|| {
                Error::new(
                    Kind::Response,
                    format!("expected 101 Switching Protocols, got {status}"),
                )
            })
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
        Pin::new(&mut self.conn).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.conn).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.conn).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.conn.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.conn).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.conn).poll_shutdown(cx)
    }
}
