//! One server TLS connection: a TCP socket and its rustls session, driven here rather than
//! by tokio-rustls's stream, for two things that stream cannot do:
//!
//! - The session is made in its final place, the connection's shared state behind one
//!   `Arc`, and the handshake runs there: nothing of rustls's state moves after it, where
//!   tokio-rustls's handshake future moves its whole stream out at every poll and hands it
//!   back by value at the end.
//! - On Linux, the shutdown's write (a closing connection's last response and its
//!   `close_notify`) goes with `MSG_MORE`, so the kernel holds it for the `FIN` the
//!   `shutdown` that follows adds: one segment for both rather than two.
//!
//! The handshake ends as tokio-rustls's does, writing all that is queued: in TLS 1.3 that is
//! the session tickets rustls makes on the client's `Finished`. Sent then, the client takes
//! them in (OpenSSL spends tens of µs on two) while the server reads and answers its
//! request; held back to leave in the first response's write, one write fewer, they cost
//! the client that time after the response came, in series with everything else.
//!
//! The reads, writes and shutdown follow tokio-rustls's (0.26) for the rest.

use std::{
    io::{self, BufRead as _, IoSlice, Read, Write},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll},
};

use rustls::{ServerConfig, ServerConnection};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

use super::write::ConnWrite;
use crate::payload::ConnRead;

/// A TCP socket and the rustls session on it.
pub(super) struct TlsConn {
    io: TcpStream,
    session: ServerConnection,
    /// The `close_notify` is queued: nothing more may be written.
    write_closed: bool,
}

impl TlsConn {
    /// A connection about to shake hands as the server of `config`.
    pub(super) fn new(io: TcpStream, config: Arc<ServerConfig>) -> io::Result<Self> {
        let session = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsConn { io, session, write_closed: false })
    }

    pub(super) fn session(&self) -> &ServerConnection {
        &self.session
    }

    /// Drives the handshake until it is done and all it queued is written (see the module
    /// comment for why the session tickets go then).
    pub(super) fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            while self.session.wants_write() {
                match self.write_io(cx) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if !self.session.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            match self.read_io(cx) {
                Poll::Ready(Ok(0)) => {
                    let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "TLS handshake eof");
                    return Poll::Ready(Err(eof));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Reads TLS records from the socket and processes them; 0 at the socket's end. An
    /// error from rustls goes out as an alert first, as far as the socket takes it.
    fn read_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let read = self.session.read_tls(&mut SyncIo { io: &mut self.io, cx, closing: false });
        let n = match read {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(err) => return Poll::Ready(Err(err)),
        };
        if let Err(err) = self.session.process_new_packets() {
            let _ = self.write_io(cx);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, err)));
        }
        Poll::Ready(Ok(n))
    }

    /// Writes queued TLS records to the socket, as many as it takes in one write.
    fn write_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.write_io_then(cx, false)
    }

    /// [`write_io`](Self::write_io); `closing`: only the socket's shutdown follows, which
    /// may then carry these bytes out (see the module comment).
    fn write_io_then(&mut self, cx: &mut Context<'_>, closing: bool) -> Poll<io::Result<usize>> {
        match self.session.write_tls(&mut SyncIo { io: &mut self.io, cx, closing }) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            done => Poll::Ready(done),
        }
    }

    /// Writes everything queued, waiting for the socket as needed; `closing` as in
    /// [`write_io_then`](Self::write_io_then).
    fn poll_write_all_queued(
        &mut self,
        cx: &mut Context<'_>,
        closing: bool,
    ) -> Poll<io::Result<()>> {
        while self.session.wants_write() {
            match self.write_io_then(cx, closing) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(_)) => {}
                other => return other.map(|done| done.map(drop)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Encrypts `buf` into rustls's outgoing buffer without writing it: the shutdown that
    /// follows writes it and the `close_notify` together. Once that buffer is full, writes
    /// as `poll_write` does.
    fn poll_write_last(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.session.writer().write(buf) {
            Ok(0) if !buf.is_empty() => Pin::new(self).poll_write(cx, buf),
            done => Poll::Ready(done),
        }
    }

    /// Queues `buf`'s plaintext (as much as rustls's buffer takes) and writes what is
    /// queued; as tokio-rustls's `poll_write`.
    fn write_plaintext(
        &mut self,
        cx: &mut Context<'_>,
        write: impl Fn(&mut rustls::Writer<'_>) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let taken = write(&mut self.session.writer())?;
            let mut blocked = false;
            while self.session.wants_write() {
                match self.write_io(cx) {
                    Poll::Ready(Ok(0)) | Poll::Pending => {
                        blocked = true;
                        break;
                    }
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                }
            }
            match (taken, blocked) {
                (0, true) => return Poll::Pending,
                (0, false) => {}
                (n, _) => return Poll::Ready(Ok(n)),
            }
        }
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut filled = false;
        loop {
            // What rustls has decrypted first, one record's plaintext at a time, as much as
            // `buf` takes.
            match this.session.reader().into_first_chunk() {
                // Empty once the peer's `close_notify` came: the end.
                Ok([]) => return Poll::Ready(Ok(())),
                Ok(chunk) => {
                    let n = chunk.len().min(buf.remaining());
                    buf.put_slice(&chunk[..n]);
                    this.session.reader().consume(n);
                    filled = true;
                    if buf.remaining() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    continue;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                // The socket ended without a `close_notify`, among others; what came
                // before it is read first.
                Err(err) => return Poll::Ready(if filled { Ok(()) } else { Err(err) }),
            }
            if filled {
                return Poll::Ready(Ok(()));
            }
            match this.read_io(cx) {
                // At the socket's end the reader says how it ended.
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                // What rustls queued to write meanwhile (a key update's answer) waits for
                // the next write.
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.get_mut().write_plaintext(cx, |writer| writer.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.iter().all(|buf| buf.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        self.get_mut().write_plaintext(cx, |writer| writer.write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_write_all_queued(cx, false)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.write_closed {
            this.session.send_close_notify();
            this.write_closed = true;
        }
        std::task::ready!(this.poll_write_all_queued(cx, true))?;
        match std::task::ready!(Pin::new(&mut this.io).poll_shutdown(cx)) {
            // A peer already gone has nothing left to be told.
            Err(err) if err.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            done => Poll::Ready(done),
        }
    }
}

/// The socket as the blocking `Read` and `Write` rustls reads and writes records with,
/// `WouldBlock` standing for `Pending` (the task's waker is registered by then).
struct SyncIo<'a, 'b> {
    io: &'a mut TcpStream,
    cx: &'a mut Context<'b>,
    /// Writes are the connection's last: only the shutdown follows.
    closing: bool,
}

impl SyncIo<'_, '_> {
    fn ready<T>(poll: Poll<io::Result<T>>) -> io::Result<T> {
        match poll {
            Poll::Ready(done) => done,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// A `writev` with `MSG_MORE`: the kernel holds what does not fill a segment until the
    /// shutdown's `FIN` comes to go with it (a `shutdown` pushes what is held). Through
    /// socket2, as tokio's socket has no write with flags.
    #[cfg(target_os = "linux")]
    fn write_more(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let socket = socket2::SockRef::from(&*self.io);
        loop {
            Self::ready(self.io.poll_write_ready(self.cx))?;
            let send = || socket.send_vectored_with_flags(bufs, libc::MSG_MORE);
            match self.io.try_io(tokio::io::Interest::WRITABLE, send) {
                // The readiness was stale and is cleared now: the next poll registers.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                done => return done,
            }
        }
    }
}

impl Read for SyncIo<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        Self::ready(Pin::new(&mut *self.io).poll_read(self.cx, &mut buf))?;
        Ok(buf.filled().len())
    }
}

impl Write for SyncIo<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        if self.closing {
            return self.write_more(bufs);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = self.closing;
        Self::ready(Pin::new(&mut *self.io).poll_write_vectored(self.cx, bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ===== the two halves =====

/// A TLS connection shared by its two halves. Behind a lock, as a handler may read its
/// request body in another task while the connection writes, and both move the one rustls
/// state.
pub(super) type Shared = Arc<Mutex<TlsConn>>;

/// The connection, even from a lock a panic poisoned: rustls leaves its state whole between
/// calls, and a poll that panicked is one the connection does not survive anyway.
pub(super) fn lock(shared: &Shared) -> MutexGuard<'_, TlsConn> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Either half of a shared connection: the connection loop holds one to read and one to
/// write.
pub(super) struct TlsHalf(pub(super) Shared);

impl AsyncRead for TlsHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *lock(&self.0)).poll_read(cx, buf)
    }
}

impl ConnRead for TlsHalf {
    /// Bytes may wait decrypted in rustls with none left on the socket: only a read can
    /// tell, so this always says "try".
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TlsHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *lock(&self.0)).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *lock(&self.0)).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *lock(&self.0)).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *lock(&self.0)).poll_shutdown(cx)
    }
}

impl ConnWrite for TlsHalf {
    /// No `close_notify` (nothing more is written), and the socket resets when the read
    /// half lets go of it too.
    fn abort(self: Box<Self>) {
        let mut conn = lock(&self.0);
        conn.write_closed = true;
        super::write::reset_on_close(&conn.io);
    }

    fn poll_write_last(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        lock(&self.0).poll_write_last(cx, buf)
    }
}
