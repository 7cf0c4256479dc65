//! The request body, read from the connection as the handler asks for it.
//!
//! The connection lends its read half and buffer to the request's [`Payload`] for as long
//! as the body is being read, and gets them back when the payload is dropped: when the
//! handler returns, or when a streamed response that holds the payload (an echo) ends.
//! Requests without a body never lend anything, so a GET allocates no channel.
//!
//! A body that breaks (bad framing, a peer that closed or stalled) ends the connection: the
//! payload drops what it borrowed at once, without sending it home, so the connection sees
//! its read half is gone, answers with `Connection: close` and closes. No byte after the
//! error is ever parsed as a request, whatever the handler does with the error.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::HeaderMap;
use tandem_proto::{BodyDecoder, BodyEvent};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite},
    sync::oneshot,
};

use crate::HttpError;

/// How much a read asks the socket for at once.
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// How much more than the rest of a body of declared length its last read asks for. A read
/// that comes back short tells the runtime the socket is drained, so the connection's next
/// read (the next request's head) waits for readiness rather than trying a read that finds
/// nothing; asked for exactly the rest, the read fills and that futile read follows every
/// request. Bytes past the body are the next request's, kept for it.
const PAST_THE_BODY: usize = READ_CHUNK;

/// The first read of a body of declared length asks for up to this (less for a shorter
/// body), within `read_bufsize`: a large upload's reads then double from here as they fill,
/// up to `read_bufsize`, so a client that trickles its body holds no more than this of the
/// server's memory, and one that sends at full speed gets reads of the whole bound.
const FIRST_KNOWN_LENGTH_READ: usize = 256 * 1024;

/// The largest buffer a connection keeps between requests (and a thread among its spare
/// buffers). A read buffer grown for a large body is let go when the body ends, what
/// follows the body moving to a buffer of its own, so an idle connection holds what a
/// request head needs, not what its last upload did.
pub(crate) const KEPT_BUFFER_CAPACITY: usize = 64 * 1024;

/// A socket's read half that can also wait for readability without a buffer, so an idle
/// connection holds none.
pub(crate) trait ConnRead: AsyncRead + Send + Sync + Unpin + 'static {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>>;

    /// The plain TCP socket both halves are of, if that is what this is: a response's file
    /// may then be sent to it directly (`sendfile`).
    fn tcp(&self) -> Option<&tokio::net::TcpStream> {
        None
    }
}

impl ConnRead for tokio::net::tcp::OwnedReadHalf {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.as_ref().poll_read_ready(cx)
    }

    fn tcp(&self) -> Option<&tokio::net::TcpStream> {
        Some(self.as_ref())
    }
}

#[cfg(unix)]
impl ConnRead for tokio::net::unix::OwnedReadHalf {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.as_ref().poll_read_ready(cx)
    }
}

/// A `Send` value made `Sync`, as everything a request holds must be, for a value only ever
/// used through `&mut` (a stream, a body): the mutex is never locked, as `get_mut` needs
/// none (`std::sync::Exclusive` once it is stable).
pub(crate) struct Exclusive<T>(std::sync::Mutex<T>);

impl<T> Exclusive<T> {
    pub(crate) fn new(value: T) -> Self {
        Exclusive(std::sync::Mutex::new(value))
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The read half of any other stream. It cannot say it is readable without a read, so it
/// always says "try": an idle connection takes its buffers for each read that finds
/// nothing and gives them back after.
pub(crate) struct AnyRead<T>(Exclusive<tokio::io::ReadHalf<T>>);

impl<T> AnyRead<T> {
    pub(crate) fn new(read: tokio::io::ReadHalf<T>) -> Self {
        AnyRead(Exclusive::new(read))
    }
}

impl<T: AsyncRead> AsyncRead for AnyRead<T> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let read = self.get_mut().0.get_mut();
        std::pin::Pin::new(read).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Send + 'static> ConnRead for AnyRead<T> {
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A connection's read half and the bytes read but not yet parsed.
pub(crate) struct ReadState {
    pub(crate) io: Box<dyn ConnRead>,
    pub(crate) buf: BytesMut,
}

/// What a payload hands back to its connection: the read state and where the body stands.
pub(crate) type Returned = (ReadState, BodyDecoder);

struct Lent {
    read: ReadState,
    decoder: BodyDecoder,
    home: oneshot::Sender<Returned>,
    /// How long one read may wait for the next bytes of the body.
    read_timeout: Duration,
    /// The most the next read asks for: from [`READ_CHUNK`] (a body of unknown length) or
    /// [`FIRST_KNOWN_LENGTH_READ`] (one of declared length), doubling as reads fill, up to
    /// `read_bufsize`.
    read_size: usize,
    /// The most one read asks for, and so the largest chunk handed out
    /// ([`ServerConfig::read_bufsize`](crate::ServerConfig::read_bufsize)).
    read_bufsize: usize,
    /// A read asked for more than [`KEPT_BUFFER_CAPACITY`]: the buffer is not kept after
    /// the body (its capacity may not show it: chunks handed out leave a view of its tail).
    grew: bool,
}

/// A request body, read chunk by chunk: aiohttp's `request.content`.
///
/// Reads are not limited by `client_max_size` (as in aiohttp, which limits only `read`,
/// `text`, `json` and `post`); a handler that streams decides for itself how much to take.
#[derive(Default)]
pub struct Payload {
    // Boxed: a request without a body carries two null pointers, and moving a request
    // (into its handler's future, say) copies 16 bytes rather than 170.
    lent: Option<Box<Lent>>,
    /// A body that did not come from this server's connection (a tower request's).
    foreign: Option<Box<ForeignBody>>,
    trailers: Option<Box<HeaderMap>>,
    /// The error that broke the body, returned again by every later read.
    failed: Option<HttpError>,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload")
            .field("reading", &(self.lent.is_some() || self.foreign.is_some()))
            .finish_non_exhaustive()
    }
}

impl Payload {
    /// A payload reading `decoder`'s body from `read`, returned on drop through `home`.
    /// `read_timeout` bounds each wait for more of the body; `read_bufsize` (at least 1)
    /// bounds each read and so each chunk.
    pub(crate) fn lend(
        read: ReadState,
        decoder: BodyDecoder,
        home: oneshot::Sender<Returned>,
        read_timeout: Duration,
        read_bufsize: usize,
    ) -> Self {
        let read_bufsize = read_bufsize.max(1);
        let first =
            if decoder.remaining().is_some() { FIRST_KNOWN_LENGTH_READ } else { READ_CHUNK };
        let read_size = first.min(read_bufsize);
        let lent = Lent { read, decoder, home, read_timeout, read_size, read_bufsize, grew: false };
        Payload { lent: Some(Box::new(lent)), foreign: None, trailers: None, failed: None }
    }

    /// A payload reading any [`http_body::Body`]: how a request that came through tower
    /// (or any other server) carries its body. Handlers see no difference; a body error is
    /// a 400 and final, as on a connection.
    pub fn from_body<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let body = http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_err(
            body,
            Into::<BoxError>::into,
        ));
        let foreign = ForeignBody { body: Exclusive::new(body), allowed: u64::MAX, ended: false };
        Payload { lent: None, foreign: Some(Box::new(foreign)), trailers: None, failed: None }
    }

    /// The next chunk of the body, or `None` at its end.
    ///
    /// A malformed body is a 400 (413 for a chunk larger than a limit set by
    /// [`Request::read`](crate::Request::read)), a connection closed mid-body is a 400 too,
    /// and a body whose next bytes take longer than the body timeout is a 408. Each is
    /// final: every later call returns the same error, and the connection closes after the
    /// response, which says `Connection: close` if it has not started yet.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        let read = if let Some(foreign) = &mut self.foreign {
            foreign.next(&mut self.trailers).await
        } else if let Some(lent) = &mut self.lent {
            lent.next(&mut self.trailers).await
        } else {
            return Ok(None);
        };
        if let Err(failure) = &read {
            self.break_with(failure.clone());
        }
        read
    }

    /// The rest of a length-delimited body of at most `max` bytes as one chunk, read into
    /// one buffer of its size: what [`Request::read`](crate::Request::read) wants, with no
    /// copy. `None` for any other body (chunked, longer than `max`, or not from this server's
    /// connection), to be read with [`chunk`](Self::chunk); errors as `chunk`'s.
    pub(crate) async fn read_whole(&mut self, max: usize) -> Result<Option<Bytes>, HttpError> {
        let Some(lent) = self.lent.as_mut().filter(|_| self.failed.is_none()) else {
            return Ok(None);
        };
        let read = lent.rest(max).await;
        if let Err(failure) = &read {
            self.break_with(failure.clone());
        }
        read
    }

    /// Ends the body with `failure`, returned by every later read. What was lent is
    /// dropped, not sent home: the connection sees its read half gone and closes.
    fn break_with(&mut self, failure: HttpError) {
        self.lent = None;
        self.foreign = None;
        self.failed = Some(failure);
    }

    /// Refuses a body of more than `max` bytes from here on with a 413, as early as its
    /// framing allows (see [`BodyDecoder::set_max_size`]).
    pub(crate) fn set_max_size(&mut self, max: usize) {
        if let Some(lent) = &mut self.lent {
            lent.decoder.set_max_size(max as u64);
        }
        if let Some(foreign) = &mut self.foreign {
            foreign.allowed = max as u64;
        }
    }

    /// Whether nothing is left to read (aiohttp's `StreamReader.at_eof()`): the body was read
    /// to its end or broke, or there never was one.
    pub fn at_eof(&self) -> bool {
        match (&self.lent, &self.foreign) {
            (Some(lent), _) => lent.decoder.is_done(),
            (None, Some(foreign)) => foreign.ended,
            (None, None) => true,
        }
    }

    /// The trailer fields of a chunked body, once it has been read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_deref()
    }

    /// The body as a stream of chunks.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, crate::Error>> + Send {
        futures_util::stream::unfold(self, |mut payload| async move {
            match payload.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), payload)),
                Ok(None) => None,
                Err(err) => Some((Err(err.into()), payload)),
            }
        })
    }
}

impl Lent {
    /// The next chunk from the connection, each wait bounded by the body timeout.
    async fn next(
        &mut self,
        trailers: &mut Option<Box<HeaderMap>>,
    ) -> Result<Option<Bytes>, HttpError> {
        loop {
            match self.decode()? {
                Some(BodyEvent::Data(data)) => return Ok(Some(data)),
                Some(BodyEvent::Trailers(fields)) => *trailers = Some(Box::new(fields)),
                Some(BodyEvent::End) => return Ok(None),
                None => {
                    // A known length is asked for at once, up to the read size; reads
                    // grow as they fill, whatever the framing.
                    let ask = match self.decoder.remaining() {
                        Some(left) => usize::try_from(left)
                            .unwrap_or(usize::MAX)
                            .saturating_add(PAST_THE_BODY)
                            .clamp(READ_CHUNK.min(self.read_bufsize), self.read_size),
                        None => self.read_size,
                    };
                    match self.fill(ask).await? {
                        0 => return self.ended().map(|()| None),
                        n if n >= self.read_size => {
                            self.read_size = (self.read_size * 2).min(self.read_bufsize);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// The rest of a length-delimited body of at most `max` bytes as one chunk (`None` for
    /// any other), read into one buffer reserved for it whole: `max` bounds the memory.
    async fn rest(&mut self, max: usize) -> Result<Option<Bytes>, HttpError> {
        let Some(left) = self.decoder.remaining().and_then(|n| usize::try_from(n).ok()) else {
            return Ok(None);
        };
        if left > max {
            return Ok(None);
        }
        if self.read.buf.len() < left {
            // Only when more is to come: a body that came in with its head is handed out
            // from the buffer it is in, with no new allocation.
            self.read.buf.reserve(left - self.read.buf.len() + PAST_THE_BODY);
        }
        while self.read.buf.len() < left {
            // All that is left at once, and a little more (see `PAST_THE_BODY`): the memory
            // is reserved already, and `read_bufsize` bounds the chunks handed out, of which
            // this is the only one.
            if self.fill(left - self.read.buf.len() + PAST_THE_BODY).await? == 0 {
                return self.ended().map(|()| None);
            }
        }
        let decoded = self.decoder.decode(&mut self.read.buf)?;
        // What follows the body (a pipelined request, if anything) moves to a buffer of its
        // own, so the connection never keeps an allocation of a body's size once it is gone;
        // so the drop has nothing more to let go.
        self.read.buf = BytesMut::from(&self.read.buf[..]);
        self.grew = false;
        match decoded {
            Some(BodyEvent::Data(data)) => Ok(Some(data)),
            _ => Ok(Some(Bytes::new())),
        }
    }

    /// Reads at most `ask` more bytes into the buffer, waiting at most the body timeout
    /// (then a 408): how many, 0 at the end of the stream.
    async fn fill(&mut self, ask: usize) -> Result<usize, HttpError> {
        self.grew |= ask > KEPT_BUFFER_CAPACITY;
        self.read.buf.reserve(ask);
        // Limited to what was asked for: the buffer's capacity may be larger (it read an
        // earlier body), and a chunk must not exceed `read_bufsize`.
        let mut limited = (&mut self.read.io).take(ask as u64);
        let read = limited.read_buf(&mut self.read.buf);
        match tokio::time::timeout(self.read_timeout, read).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(_)) => Err(incomplete()),
            Err(_) => Err(HttpError::new(http::StatusCode::REQUEST_TIMEOUT)
                .with_text("408: request body not received in time")),
        }
    }

    /// The stream ended: the end of a body that runs to the close, an error for any other.
    fn ended(&mut self) -> Result<(), HttpError> {
        self.decoder.decode_eof().map(drop).map_err(|_| incomplete())
    }

    /// The decoder's next event from at most `read_bufsize` buffered bytes. More are
    /// buffered only when they came in with the request head (or an earlier request's
    /// read); the rest stays buffered, in place, for the next call.
    fn decode(&mut self) -> Result<Option<BodyEvent>, HttpError> {
        if self.read.buf.len() <= self.read_bufsize {
            return Ok(self.decoder.decode(&mut self.read.buf)?);
        }
        let mut front = self.read.buf.split_to(self.read_bufsize);
        let decoded = self.decoder.decode(&mut front);
        // `front`'s unread tail and the buffer are adjacent parts of one allocation, so
        // joining them again moves no bytes.
        front.unsplit(std::mem::take(&mut self.read.buf));
        self.read.buf = front;
        Ok(decoded?)
    }
}

/// The error type a foreign body's errors are boxed into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body from elsewhere, read frame by frame.
struct ForeignBody {
    body: Exclusive<http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>>,
    /// Bytes still allowed by [`Payload::set_max_size`].
    allowed: u64,
    /// The body has said it has no more frames.
    ended: bool,
}

impl ForeignBody {
    async fn next(
        &mut self,
        trailers: &mut Option<Box<HeaderMap>>,
    ) -> Result<Option<Bytes>, HttpError> {
        let too_large = || HttpError::new(http::StatusCode::PAYLOAD_TOO_LARGE);
        let body = self.body.get_mut();
        // A declared length over the limit is refused before any of it is awaited.
        if http_body::Body::size_hint(body).lower() > self.allowed {
            return Err(too_large());
        }
        loop {
            let Some(frame) = http_body_util::BodyExt::frame(body).await else {
                self.ended = true;
                return Ok(None);
            };
            // A body that fails with an `HttpError` (an HTTP/2 stream's 408) keeps its status.
            let frame = frame.map_err(|err| match err.downcast::<HttpError>() {
                Ok(failure) => *failure,
                Err(err) => {
                    HttpError::bad_request().with_text(format!("400: request body failed: {err}"))
                }
            })?;
            match frame.into_data() {
                Ok(data) => {
                    self.allowed =
                        self.allowed.checked_sub(data.len() as u64).ok_or_else(too_large)?;
                    return Ok(Some(data));
                }
                Err(frame) => {
                    if let Ok(fields) = frame.into_trailers() {
                        *trailers = Some(Box::new(fields));
                    }
                }
            }
        }
    }
}

fn incomplete() -> HttpError {
    HttpError::bad_request().with_text("400: connection closed before the body was complete")
}

impl Drop for Payload {
    fn drop(&mut self) {
        if let Some(lent) = self.lent.take() {
            // The connection may be gone already (it was shut down); then so is the socket.
            let Lent { mut read, decoder, home, grew, .. } = *lent;
            if grew {
                read.buf = BytesMut::from(&read.buf[..]);
            }
            let _ = home.send((read, decoder));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BytesMut;
    use tandem_proto::{BodyDecoder, BodyFraming};
    use tokio::io::AsyncWriteExt;

    use super::{AnyRead, FIRST_KNOWN_LENGTH_READ, Payload, READ_CHUNK, ReadState};

    /// The sizes of the chunks a payload hands out for `body_len` bytes all waiting to be
    /// read (the peer is faster than the handler), with `read_bufsize`.
    async fn chunk_sizes(framing: BodyFraming, body: &[u8], read_bufsize: usize) -> Vec<usize> {
        let (mut peer, ours) = tokio::io::duplex(body.len() + 64);
        peer.write_all(body).await.unwrap();
        let (read, _write) = tokio::io::split(ours);
        let read = ReadState { io: Box::new(AnyRead::new(read)), buf: BytesMut::new() };
        let (home, _returned) = tokio::sync::oneshot::channel();
        let decoder = BodyDecoder::new(framing);
        let mut payload = Payload::lend(read, decoder, home, Duration::from_secs(5), read_bufsize);
        let mut sizes = Vec::new();
        while let Some(chunk) = payload.chunk().await.unwrap() {
            sizes.push(chunk.len());
        }
        sizes
    }

    #[tokio::test]
    async fn a_declared_lengths_reads_grow_from_the_first_read_to_read_bufsize() {
        const MIB: usize = 1 << 20;
        let body = vec![b'x'; 4 * MIB];
        let sizes = chunk_sizes(BodyFraming::Length(body.len() as u64), &body, MIB).await;
        let mut expected = vec![FIRST_KNOWN_LENGTH_READ, 2 * FIRST_KNOWN_LENGTH_READ];
        let after = 4 * MIB - 3 * FIRST_KNOWN_LENGTH_READ;
        expected.extend(std::iter::repeat_n(MIB, after / MIB));
        expected.push(after % MIB);
        assert_eq!(sizes, expected);
        // A smaller bound caps the first read as every other.
        let sizes = chunk_sizes(BodyFraming::Length(100_000), &body[..100_000], 1000).await;
        assert!(sizes.iter().all(|&n| n == 1000), "{sizes:?}");
    }

    /// The last read of a declared length asks past the body, so it comes back short when
    /// the socket is drained (and the connection waits for the next request rather than
    /// reading nothing); what it took of the next request goes home with the connection.
    #[tokio::test]
    async fn the_last_read_of_a_body_asks_past_it_and_keeps_what_follows() {
        let (mut peer, ours) = tokio::io::duplex(4096);
        peer.write_all(&[b'x'; 1000]).await.unwrap();
        peer.write_all(b"GET /next").await.unwrap();
        let (read, _write) = tokio::io::split(ours);
        let read = ReadState { io: Box::new(AnyRead::new(read)), buf: BytesMut::new() };
        let (home, returned) = tokio::sync::oneshot::channel();
        let decoder = BodyDecoder::new(BodyFraming::Length(1000));
        let mut payload = Payload::lend(read, decoder, home, Duration::from_secs(5), 1 << 20);
        assert_eq!(payload.read_whole(1 << 20).await.unwrap().unwrap().len(), 1000);
        drop(payload);
        let (read, decoder) = returned.await.unwrap();
        assert!(decoder.is_done());
        assert_eq!(&read.buf[..], b"GET /next");
    }

    #[tokio::test]
    async fn a_body_that_came_with_its_head_is_handed_out_without_a_copy() {
        let (_peer, ours) = tokio::io::duplex(64);
        let (read, _write) = tokio::io::split(ours);
        let mut buf = BytesMut::with_capacity(1100);
        buf.extend_from_slice(b"POST / HTTP/1.1\r\n\r\n");
        buf.extend_from_slice(&[b'x'; 1000]);
        // The head's bytes share the buffer's allocation, as the parser's do.
        let head = buf.split_to(19).freeze();
        let at = buf.as_ptr();
        let read = ReadState { io: Box::new(AnyRead::new(read)), buf };
        let (home, _returned) = tokio::sync::oneshot::channel();
        let decoder = BodyDecoder::new(BodyFraming::Length(1000));
        let mut payload = Payload::lend(read, decoder, home, Duration::from_secs(5), 1 << 20);
        let body = payload.read_whole(1 << 20).await.unwrap().unwrap();
        assert_eq!(body.len(), 1000);
        assert_eq!(body.as_ptr(), at, "the body was copied into a new buffer");
        drop(head);
    }

    #[tokio::test]
    async fn a_read_buffer_grown_for_a_large_body_is_not_kept_after_it() {
        let (mut peer, ours) = tokio::io::duplex(1 << 20);
        let (read, _write) = tokio::io::split(ours);
        let read = ReadState { io: Box::new(AnyRead::new(read)), buf: BytesMut::new() };
        let (home, returned) = tokio::sync::oneshot::channel();
        let decoder = BodyDecoder::new(BodyFraming::Length(600_000));
        let mut payload = Payload::lend(read, decoder, home, Duration::from_secs(5), 1 << 20);
        let send = async {
            peer.write_all(&vec![b'x'; 600_000]).await.unwrap();
            peer.write_all(b"GET /next").await.unwrap();
        };
        let take = async {
            let (mut got, mut last_end) = (0, std::ptr::null());
            while let Some(chunk) = payload.chunk().await.unwrap() {
                got += chunk.len();
                last_end = chunk.as_ptr_range().end;
            }
            (got, last_end)
        };
        let ((), (got, last_end)) = tokio::join!(send, take);
        assert_eq!(got, 600_000);
        drop(payload);
        let (read, _) = returned.await.unwrap();
        assert!(read.buf.starts_with(b"GET /next") || read.buf.is_empty());
        // Not the tail of the buffer the body was read into, which would keep all of it.
        assert_ne!(read.buf.as_ptr(), last_end, "the body's read buffer was kept");
        assert!(read.buf.capacity() <= super::KEPT_BUFFER_CAPACITY, "{}", read.buf.capacity());
    }

    #[tokio::test]
    async fn a_chunked_bodys_reads_start_small_and_grow() {
        let mut body = b"186a0\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', 100_000));
        body.extend_from_slice(b"\r\n0\r\n\r\n");
        let sizes = chunk_sizes(BodyFraming::Chunked, &body, 1 << 20).await;
        // The first read takes the size line too.
        assert_eq!(sizes, [READ_CHUNK - 7, 2 * READ_CHUNK, 4 * READ_CHUNK, 42_663]);
        assert_eq!(sizes.iter().sum::<usize>(), 100_000);
    }
}
