//! Writing a response: its head through `tandem-proto`, then its body.

#[cfg(target_os = "linux")]
mod sendfile;

pub(crate) use tandem_io::SendfileTo;

use std::{
    future::poll_fn,
    io::IoSlice,
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode, Version, header};
use tandem_proto::{BodyEncoder, BodyFraming, ResponseParts, encode_response_head};
use tokio::{
    io::AsyncWrite,
    time::{Instant, Sleep},
};

use crate::{
    compression::{self, AcceptEncoding},
    file_response::FileBody,
    response::{Body, Response},
};

/// A whole body larger than this is written straight from its own buffer after the head,
/// rather than copied into the write buffer.
const COPY_LIMIT: usize = 16 * 1024;

/// The fields of a response that has no map: shared, rather than an empty map built and
/// dropped per response.
static NO_FIELDS: OnceLock<HeaderMap> = OnceLock::new();

/// The write half of a connection.
pub(crate) type Writer = Box<dyn ConnWrite>;

/// A connection's write half, which may send the last bytes before its shutdown together
/// with whatever the shutdown itself sends.
pub(crate) trait ConnWrite: AsyncWrite + Send + Unpin {
    /// As `poll_write`, for bytes followed only by `poll_shutdown`: a stream whose shutdown
    /// writes bytes of its own (TLS's `close_notify`) may keep these to go out with them,
    /// one write for both, instead of writing them now.
    fn poll_write_last(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write(cx, buf)
    }

    /// Ends the connection so the peer sees it broke rather than ended: a reset, where
    /// the transport has one, instead of a close (a close ends a body read until the close
    /// as if it were whole). What is still queued to send is dropped. Where there is no
    /// reset (a Unix socket, an in-memory stream), a plain close.
    fn abort(self: Box<Self>) {}
}

impl ConnWrite for tokio::net::tcp::OwnedWriteHalf {
    fn abort(self: Box<Self>) {
        let half = *self;
        reset_on_close(half.as_ref());
        // Dropped, the half would shut the write side down (a FIN, which reads as the end):
        // forgotten, the socket is closed when the read half goes, and resets.
        half.forget();
    }
}

/// Sets a zero `SO_LINGER` on `socket`, so that closing it sends a reset.
pub(crate) fn reset_on_close(socket: &tokio::net::TcpStream) {
    let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
}

#[cfg(unix)]
impl ConnWrite for tokio::net::unix::OwnedWriteHalf {}

impl<T: AsyncWrite + Send> ConnWrite for tokio::io::WriteHalf<T> {}

/// What a connection's write half is swapped for while an upgrade has it.
impl ConnWrite for tokio::io::Sink {}

impl ConnWrite for Counted {}

/// A connection's write half that fails with `TimedOut` once a write has waited longer than
/// the send timeout since the last one that made progress, so a client that never reads
/// cannot hold a connection (and its buffers) forever.
///
/// The timer is made, or set, only when a write has to wait: a socket that takes every
/// write at once, as under keep-alive load, never touches the timer wheel.
pub(crate) struct SendTimeout<W> {
    io: W,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether `timer` is set for the wait under way.
    waiting: bool,
}

impl<W> SendTimeout<W> {
    pub(crate) fn new(io: W, limit: Duration) -> Self {
        SendTimeout { io, limit, timer: None, waiting: false }
    }

    /// After a pending write: `Ready(TimedOut)` once the wait has lasted the limit.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        let deadline = Instant::now() + self.limit;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.waiting {
            timer.as_mut().reset(deadline);
            self.waiting = true;
        }
        timer.as_mut().poll(cx).map(|()| std::io::ErrorKind::TimedOut.into())
    }

    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Pending => self.poll_expired(cx).map(Err),
            ready @ Poll::Ready(_) => {
                self.waiting = false;
                ready
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for SendTimeout<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}

impl<W: ConnWrite> ConnWrite for SendTimeout<W> {
    fn abort(self: Box<Self>) {
        Box::new(self.io).abort();
    }

    fn poll_write_last(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_last(cx, buf);
        this.watch(cx, polled)
    }
}

/// How a response was sent, or how far it got.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Written {
    /// Whether the connection may carry another request.
    pub(crate) keep_alive: bool,
    /// Body bytes written (not counting framing), for the access log: to the socket, or
    /// into the write buffer.
    pub(crate) body_bytes: u64,
    /// The body broke after the head went out (its stream failed or panicked): the
    /// connection is to be reset ([`ConnWrite::abort`]), not closed.
    pub(crate) broken: bool,
}

/// How far [`write_response`] got: [`Written`], and whether the body is all at the end of
/// the write buffer, not yet on the socket (as [`write_now`]'s always is).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sent {
    pub(crate) written: Written,
    pub(crate) buffered: bool,
}

impl Sent {
    /// How many of the body's bytes are still in the write buffer.
    pub(crate) fn buffered_bytes(self) -> u64 {
        if self.buffered { self.written.body_bytes } else { 0 }
    }
}

/// A write half that counts the bytes it writes: an upgraded connection's, for the access
/// log.
pub(crate) struct Counted {
    pub(crate) io: Writer,
    pub(crate) count: Arc<AtomicU64>,
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.count.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.count.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Encodes `response` into `wbuf`, writing to `io` whenever the buffer must be flushed
/// (a large body, or each chunk of a stream). A head that cannot be written (a reason with
/// CR or LF, say) is replaced by a plain 500, so no partial head ever reaches the peer.
/// `accept` is the request's `Accept-Encoding`, for a response that asked to be compressed.
/// A file body (`FileResponse`'s) goes by `sendfile` when the connection gives one.
/// A write that fails, or a body that breaks once the head is out (`Written::broken`), gives
/// back, with its error, how far the response got.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site each; a struct would only rename them"
)]
pub(crate) async fn write_response(
    io: &mut Writer,
    wbuf: &mut BytesMut,
    mut response: Response,
    version: Version,
    keep_alive: bool,
    head_only: bool,
    accept: Option<AcceptEncoding>,
    sendfile: Option<SendfileTo<'_>>,
) -> Result<Sent, (std::io::Error, Sent)> {
    // A compressed body is not the file's bytes any more.
    let compressed = response.inner.compress;
    let mut file = if compressed { None } else { response.extensions_mut().remove::<FileBody>() };
    if response.inner.compress {
        compression::apply(&mut response, accept, head_only).await;
    }
    let mark = wbuf.len();
    let (mut encoder, written) =
        match encode_head(wbuf, &mut response, version, keep_alive, head_only) {
            Ok((Some(encoder), written)) => (encoder, written),
            Ok((None, written)) => return Ok(Sent { written, buffered: false }),
            Err(err) => {
                crate::log::error("response head refused", &err);
                wbuf.truncate(mark);
                let fallback = Response::text("500: Internal Server Error")
                    .with_status(StatusCode::INTERNAL_SERVER_ERROR);
                return Box::pin(write_response(
                    io, wbuf, fallback, version, false, head_only, None, None,
                ))
                .await;
            }
        };
    let mut sent = Sent { written, buffered: false };
    let mut body = std::mem::replace(&mut response.inner.body, Body::Empty);
    #[cfg(target_os = "linux")]
    if let (Some(to), Some(file)) = (sendfile, file.take().filter(|file| file.is_body(&body)))
        && let Ok(count) = usize::try_from(file.count)
    {
        // The socket takes the bytes the stream would have read, straight from the file.
        let Ok(suffix) = encoder.encode_prefix(count, wbuf) else {
            sent.written.keep_alive = false;
            flush(io, wbuf).await.map_err(|err| (err, sent))?;
            return Ok(sent);
        };
        // Boxed: inline, its timer and readiness futures would make every connection's
        // future larger, and copying that costs each connection and request.
        let sending = sendfile::send(
            to,
            wbuf,
            &file.file.file,
            file.start,
            file.count,
            &mut sent.written.body_bytes,
        );
        let whole = Box::pin(sending).await.map_err(|err| (err, sent))?;
        if !whole {
            // The head is out and the file ended early: close, so the peer sees a short body.
            sent.written.keep_alive = false;
            return Ok(sent);
        }
        wbuf.extend_from_slice(suffix);
        body = Body::Empty;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (sendfile, file);
    match body {
        Body::Empty => {}
        Body::Full(bytes) => {
            // Count the bytes against the declared length (no framing bytes to write), or
            // `finish` below sees a short body and the connection is needlessly closed.
            let _ = encoder.encode_prefix(bytes.len(), wbuf);
            if bytes.len() <= COPY_LIMIT {
                wbuf.extend_from_slice(&bytes);
                sent.written.body_bytes = bytes.len() as u64;
                sent.buffered = true;
            } else {
                write_after(io, wbuf, &bytes, &mut sent.written.body_bytes)
                    .await
                    .map_err(|err| (err, sent))?;
            }
        }
        Body::Stream(mut stream) => {
            while let Some(chunk) = poll_fn(|cx| poll_next_catching_panic(&mut stream, cx)).await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(err) => {
                        // The head is out; the only honest signal left is to cut the body
                        // short and reset the connection (`broken`): a close would end a
                        // body framed by the close (an HTTP/1.0 client's) as if whole.
                        crate::log::error("response stream failed", &err);
                        sent.written.keep_alive = false;
                        sent.written.broken = true;
                        flush(io, wbuf).await.map_err(|err| (err, sent))?;
                        return Err((std::io::Error::other("the response body broke"), sent));
                    }
                };
                let Ok(suffix) = encoder.encode_prefix(chunk.len(), wbuf) else {
                    // More bytes than the declared Content-Length: stop and close.
                    sent.written.keep_alive = false;
                    flush(io, wbuf).await.map_err(|err| (err, sent))?;
                    return Ok(sent);
                };
                write_after(io, wbuf, &chunk, &mut sent.written.body_bytes)
                    .await
                    .map_err(|err| (err, sent))?;
                // Out before the stream is asked for more, which may take long (events): a
                // TLS stream may hold the chunk's last bytes until flushed.
                poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx)).await.map_err(|err| (err, sent))?;
                wbuf.extend_from_slice(suffix);
            }
        }
    }
    if encoder.finish(None, wbuf).is_err() {
        // A stream shorter than its declared length: the peer must not reuse the connection.
        sent.written.keep_alive = false;
    }
    if wbuf.has_remaining() && !sent.written.keep_alive {
        flush(io, wbuf).await.map_err(|err| (err, sent))?;
        sent.buffered = false;
    }
    Ok(sent)
}

/// Polls a body for its next piece (`poll`), a panic in it an error: the head is out, so
/// the body can only be cut, and the connection's task lives on to cut it (a reset over
/// HTTP/1.1, `RST_STREAM` over HTTP/2). Unwound, the task would drop an HTTP/1.1 connection
/// with a close, ending the body as if whole, or every stream of an HTTP/2 connection.
pub(super) fn poll_body_catching_panic<T>(
    poll: impl FnOnce() -> Poll<Option<Result<T, crate::Error>>>,
) -> Poll<Option<Result<T, crate::Error>>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(poll)).unwrap_or_else(|panic| {
        let message = crate::handler::panic_message(panic.as_ref());
        Poll::Ready(Some(Err(crate::Error::new(format!("the body panicked: {message}")))))
    })
}

/// [`poll_body_catching_panic`] for a body's stream, its next chunk.
fn poll_next_catching_panic(
    stream: &mut crate::response::BodyStream,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<bytes::Bytes, crate::Error>>> {
    poll_body_catching_panic(|| stream.poll_next_unpin(cx))
}

/// Writes all of `bytes` straight to `io`, adding to `count` as each write is taken, so
/// that a write that fails part way leaves the count at what went out.
async fn write_counted(io: &mut Writer, mut bytes: &[u8], count: &mut u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, bytes)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        *count += n as u64;
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Writes what `wbuf` holds (a head, a chunk's size line) and then all of `bytes`, in one
/// vectored write while the socket takes both, adding to `count` as `bytes` go out.
async fn write_after(
    io: &mut Writer,
    wbuf: &mut BytesMut,
    mut bytes: &[u8],
    count: &mut u64,
) -> std::io::Result<()> {
    while !wbuf.is_empty() {
        let n = poll_fn(|cx| {
            let both = [IoSlice::new(wbuf), IoSlice::new(bytes)];
            Pin::new(&mut *io).poll_write_vectored(cx, &both)
        })
        .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        if n < wbuf.len() {
            wbuf.advance(n);
        } else {
            let of_bytes = n - wbuf.len();
            wbuf.clear();
            *count += of_bytes as u64;
            bytes = &bytes[of_bytes..];
        }
    }
    write_counted(io, bytes, count).await
}

/// Writes all of `buf` and empties it, then flushes `io`: a TLS stream may have taken the
/// last bytes into its own buffer with the socket full, and only a flush (or a next write,
/// which a keep-alive connection may wait long for) sends them.
///
/// tokio's `write_all_buf` writes vectored, gathering a buffer's chunks into 64 `IoSlice`s
/// it initialises on every poll, for a `BytesMut` that is always one slice: a plain
/// `poll_write` costs less.
pub(crate) async fn flush(io: &mut Writer, buf: &mut BytesMut) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, buf)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        // All written (nearly always): emptied in place, so the buffer keeps its start and
        // the next response needs no move back to it.
        if n == buf.len() {
            buf.clear();
        } else {
            buf.advance(n);
        }
    }
    poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx)).await
}

/// Writes `buf`, the connection's last bytes, and shuts the write side down: through
/// [`ConnWrite::poll_write_last`], so a TLS stream sends them and its `close_notify` in one
/// write. A client that has closed already (`shutdown` finds the socket not connected) has
/// had what was sent: not an error, as its request was answered.
pub(crate) async fn flush_and_shut(io: &mut Writer, buf: &mut BytesMut) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut **io).poll_write_last(cx, buf)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        buf.advance(n);
    }
    match poll_fn(|cx| Pin::new(&mut **io).poll_shutdown(cx)).await {
        Err(err) if err.kind() == std::io::ErrorKind::NotConnected => Ok(()),
        done => done,
    }
}

/// Writes `response` into `wbuf` without awaiting when nothing in it needs the
/// connection: no compression, and a body that is empty or small enough to copy. Gives the
/// response back otherwise (or if its head is refused, which [`write_response`] answers),
/// untouched but for framing fields it would drop anyway.
///
/// Most responses go this way and skip `write_response`'s `async` state machine.
pub(crate) fn write_now(
    wbuf: &mut BytesMut,
    mut response: Response,
    version: Version,
    keep_alive: bool,
    head_only: bool,
) -> Result<Written, Response> {
    let small = !response.inner.compress
        && match response.body() {
            Body::Empty => true,
            Body::Full(bytes) => bytes.len() <= COPY_LIMIT,
            Body::Stream(_) => false,
        };
    if !small {
        return Err(response);
    }
    let mark = wbuf.len();
    let (mut encoder, mut written) =
        match encode_head(wbuf, &mut response, version, keep_alive, head_only) {
            Ok((Some(encoder), written)) => (encoder, written),
            Ok((None, written)) => return Ok(written),
            Err(_) => {
                wbuf.truncate(mark);
                return Err(response);
            }
        };
    if let Body::Full(bytes) = &response.inner.body {
        written.body_bytes = bytes.len() as u64;
        let _ = encoder.encode_prefix(bytes.len(), wbuf);
        wbuf.extend_from_slice(bytes);
    }
    if encoder.finish(None, wbuf).is_err() {
        written.keep_alive = false;
    }
    Ok(written)
}

/// Writes `response`'s head into `wbuf` (nothing if it is refused) and returns what is
/// known of the exchange so far, with the body's encoder, or `None` if no body may follow
/// the head: 1xx, 204, 304, or an answer to HEAD.
fn encode_head(
    wbuf: &mut BytesMut,
    response: &mut Response,
    version: Version,
    keep_alive: bool,
    head_only: bool,
) -> Result<(Option<BodyEncoder>, Written), tandem_proto::Error> {
    let declared = take_framing_fields(response);
    let keep_alive = keep_alive && !response.inner.force_close;
    let status = response.status();
    // 1xx, 204 and 304 have no body whatever the handler set (RFC 9112 §6.3): bytes written
    // after such a head would be read as the next response.
    let no_body = head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = match response.body() {
        _ if status == StatusCode::NO_CONTENT || status.is_informational() => BodyFraming::Empty,
        _ if status == StatusCode::NOT_MODIFIED => BodyFraming::Empty,
        Body::Empty => BodyFraming::Length(0),
        Body::Full(bytes) => BodyFraming::Length(bytes.len() as u64),
        Body::Stream(_) => declared
            .and_then(|v| v.to_str().ok().and_then(|v| v.parse().ok()))
            .map_or(BodyFraming::Chunked, BodyFraming::Length),
    };
    // A response whose only field is its constructor's content type has no map: its
    // `Content-Type` is written from the static string beside an empty one.
    let (headers, content_type) = match response.wire_headers() {
        Ok(headers) => (headers, None),
        Err(content_type) => (NO_FIELDS.get_or_init(HeaderMap::new), content_type),
    };
    let parts = ResponseParts::new(status, headers, framing)
        .with_reason(response.reason())
        .with_version(version)
        .with_content_type(content_type)
        .with_keep_alive(keep_alive);
    let encoder = encode_response_head(&parts, wbuf)?;
    let keep_alive =
        keep_alive && !(framing == BodyFraming::Chunked && version == Version::HTTP_10);
    let written = Written { keep_alive, body_bytes: 0, broken: false };
    Ok(((!no_body).then_some(encoder), written))
}

/// Removes `Content-Length` and `Transfer-Encoding`, which belong to the encoder, and
/// returns the `Content-Length` a streamed body declared. Most responses set neither (most
/// have no header map at all), and a look along the few fields costs less than hashing for
/// a removal that finds nothing.
fn take_framing_fields(response: &mut Response) -> Option<http::HeaderValue> {
    let framed = response.wire_headers().is_ok_and(|headers| {
        headers.keys().any(|n| n == header::CONTENT_LENGTH || n == header::TRANSFER_ENCODING)
    });
    if !framed {
        return None;
    }
    let headers = response.headers_mut();
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::CONTENT_LENGTH)
}
