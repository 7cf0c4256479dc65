//! One request on one connection: check it, get a connection (HTTP/1.1 of its own, or a
//! stream on a shared HTTP/2 one), write it, read the head, and lend the connection to the
//! body reader. The HTTP/1.1 exchange is here; HTTP/2's is in `http2.rs`.

use std::{borrow::Cow, sync::Arc, time::Duration};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{StreamExt, future::Either};
use http::{HeaderMap, Method, StatusCode, Version};
use tandem_connect::{Checkout, ConnectOptions, Connection, ConnectionInfo, Connector, Origin};
use tandem_proto::{
    BodyFraming, EncodedFields, Fields, RequestParts, ResponseHead, ResponseParser,
    encode_request_head,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use crate::{
    Trace,
    body::RawBody,
    error::{Error, Kind},
    http2,
    read_limits::{FIRST_READ, ReadLimits},
    request::{Length, StreamBody},
    timeout::Deadlines,
    timings::Recorder,
    trace::{ChunkTrace, TraceRequestCtx},
};

/// Told of each piece of a streamed request body once it is written.
pub(crate) type OnChunk<'a> = &'a (dyn Fn(&[u8]) + Sync);

/// Bodies up to this size are copied after the head and sent in one write.
const COALESCE: usize = 64 * 1024;

/// A request ready for the wire.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a Method,
    pub(crate) url: &'a Url,
    pub(crate) origin: &'a Origin,
    pub(crate) headers: &'a EncodedFields,
    pub(crate) body: Option<&'a Bytes>,
    /// The path and query to send as they are, instead of `url`'s (aiohttp's `encoded`).
    pub(crate) raw_target: Option<&'a str>,
    /// Write the absolute-form target: the connection goes to an HTTP proxy.
    pub(crate) absolute: bool,
    /// The connector's per-request settings: proxy, TLS, `sock_connect`.
    pub(crate) options: &'a ConnectOptions,
    /// The request carries `Expect: 100-continue`: send the body only after a 100, or after
    /// this long without an answer.
    pub(crate) expect_continue: Option<Duration>,
    /// HTTP/1.1, or HTTP/1.0 when asked for.
    pub(crate) version: Version,
    /// The head parser's limits and the body's read size, for an HTTP/1.1 response.
    pub(crate) read: ReadLimits,
}

/// A final response head, as either version delivered it.
pub(crate) enum Head {
    Http1(ResponseHead),
    /// HTTP/2's status and fields: the map as `h2` decoded it, and the same fields for the
    /// lookups a head's [`Fields`] answer.
    Http2 {
        status: StatusCode,
        headers: HeaderMap,
        fields: Fields,
    },
}

impl Head {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Head::Http1(head) => head.status(),
            Head::Http2 { status, .. } => *status,
        }
    }

    pub(crate) fn version(&self) -> Version {
        match self {
            Head::Http1(head) => head.version(),
            Head::Http2 { .. } => Version::HTTP_2,
        }
    }

    pub(crate) fn fields(&self) -> &Fields {
        match self {
            Head::Http1(head) => head.fields(),
            Head::Http2 { fields, .. } => fields,
        }
    }

    /// The reason phrase as sent; HTTP/2 has none, and its status's canonical one stands
    /// in.
    pub(crate) fn reason(&self) -> &[u8] {
        match self {
            Head::Http1(head) => head.reason(),
            Head::Http2 { status, .. } => status.canonical_reason().unwrap_or("").as_bytes(),
        }
    }
}

/// Sends `req` and reads its final response head, on HTTP/1.1 or HTTP/2 as the connector
/// hands out. An idempotent request that fails on a pooled connection before any byte of
/// response arrives is sent once more: the server may have closed the idle connection as we
/// picked it up (RFC 9112 §9.3.1). Any other method is not, as aiohttp's rule: the server
/// may have acted on it before the connection broke; unless HTTP/2 says the server did not
/// process it (a refused stream, or one past a GOAWAY's last).
///
/// `respond` makes the response of the head, the body reader and what is known of the
/// connection (for the response to tell its TLS facts), here, so that what the
/// request's futures hand back up is a pointer-sized response rather than the head and body
/// reader, moved at every level.
pub(crate) async fn send<R>(
    connector: &Connector,
    req: &Outgoing<'_>,
    mut stream: Option<StreamBody>,
    deadlines: &Deadlines,
    (observers, respond): (Observers<'_>, impl FnOnce(Head, RawBody, Arc<ConnectionInfo>) -> R),
) -> Result<R, Error> {
    let (wire, tail, expect) = encode(req, stream.as_ref())?;
    let options = req.options;
    let traces = observers.traces;
    let streamed = stream.is_some();
    // The traces hear each piece's bytes: a file is then read, not sent with `sendfile`.
    if !traces.is_empty()
        && let Some(StreamBody(_, Some(len))) = &mut stream
    {
        *len = len.streamed();
    }
    let mut retried = false;
    'attempt: loop {
        let on_chunk = |chunk: &[u8]| {
            for t in traces {
                t.on_request_chunk_sent(observers.ctx, req.method, req.url, chunk);
            }
        };
        let checkout = deadlines
            .connect(async { connector.checkout(req.origin, options).await.map_err(Error::from) })
            .await?;
        let shared = 'http1: {
            let mut conn = match http1_or_2(checkout) {
                Either::Left(conn) => conn,
                Either::Right(shared) => break 'http1 shared,
            };
            let reused = conn.is_reused();
            observers.connected(req, reused);
            let body = Outbound {
                head: &wire,
                tail,
                stream: stream.as_mut(),
                expect,
                on_chunk: &on_chunk,
                timing: observers.timing.as_deref(),
            };
            let answer = (req.method, &req.read);
            let failure = match exchange(&mut conn, body, answer, deadlines).await {
                Ok((head, buf, body_sent)) => {
                    // A 101 answers only a request that offered an `Upgrade`.
                    if head.status() == StatusCode::SWITCHING_PROTOCOLS
                        && !req.headers.headers().contains_key(http::header::UPGRADE)
                    {
                        let error = "unexpected 101 Switching Protocols";
                        return Err(Error::new(Kind::Response, error));
                    }
                    // A request that asked to close spends the connection whatever the
                    // answer, and so does one whose announced body was never sent: the
                    // server may still be waiting for it.
                    let keep_alive = head.keep_alive() && !req.headers.asks_to_close() && body_sent;
                    let timing = observers.timing.clone();
                    let info = conn.shared_info();
                    let reading = (keep_alive, &req.read);
                    let mut body = RawBody::http1((conn, buf), &head, reading, *deadlines, timing);
                    observers.answered(req, &mut body, reused, body_sent);
                    return Ok(respond(Head::Http1(head), body, info));
                }
                Err(failure) => failure,
            };
            again(req, failure, reused, (streamed, &mut retried))?;
            continue 'attempt;
        };
        let reused = shared.is_reused();
        observers.connected(req, reused);
        let body = (stream.as_mut(), &on_chunk as _);
        let timing = observers.timing.as_ref();
        let info = shared.shared_info();
        // Boxed, so that its state does not sit in every HTTP/1.1 request's future.
        match Box::pin(http2_answer(shared, req, body, deadlines, timing)).await {
            Ok((head, mut body)) => {
                observers.answered(req, &mut body, reused, true);
                return Ok(respond(head, body, info));
            }
            Err(failure) => again(req, failure, reused, (streamed, &mut retried))?,
        }
    }
}

/// Whether a failed exchange goes once more: `Ok` to send it again, else its error. Only
/// once, and never a streamed body, which has been read.
fn again(
    req: &Outgoing<'_>,
    Failure { error, retryable, unprocessed }: Failure,
    reused: bool,
    (streamed, retried): (bool, &mut bool),
) -> Result<(), Error> {
    let again = unprocessed || (retryable && reused && is_idempotent(req.method));
    if again && !*retried && !streamed {
        tracing::debug!(%error, "pooled connection failed before a response; retrying");
        *retried = true;
        return Ok(());
    }
    Err(error)
}

/// The connection of an HTTP/1.1 checkout, or the stream of an HTTP/2 one. The checkout is
/// moved here whole, never borrowed nor partly moved, so that the request's future does not
/// keep its place beside the connection's while the exchange runs.
fn http1_or_2(checkout: Checkout) -> Either<Connection, tandem_connect::Http2Stream> {
    match checkout {
        Checkout::Http1(conn) => Either::Left(conn),
        Checkout::Http2(shared) => Either::Right(shared),
    }
}

/// The HTTP/1.1 head (with a small body coalesced), checked before connecting: a method,
/// target or field that could split the request is refused with nothing written. With it,
/// the body to write after it, and how long to wait for `100 Continue` in between.
fn encode<'a>(
    req: &Outgoing<'a>,
    stream: Option<&StreamBody>,
) -> Result<(Bytes, Option<&'a Bytes>, Option<Duration>), Error> {
    let mut head_buf = BytesMut::new();
    let framing = match (stream, req.body) {
        (Some(StreamBody(_, Some(len))), _) => BodyFraming::Length(len.bytes()),
        (Some(StreamBody(_, None)), _) => BodyFraming::Chunked,
        (None, Some(body)) => BodyFraming::Length(body.len() as u64),
        (None, None) if matches!(*req.method, Method::POST | Method::PUT | Method::PATCH) => {
            BodyFraming::Length(0)
        }
        (None, None) => BodyFraming::Empty,
    };
    // The path and query lie next to each other in the URL's serialisation: a slice of
    // it, with no copy, is the usual target.
    let target = match req.raw_target {
        Some(raw) if req.absolute => {
            Cow::Owned(format!("{}{raw}", &req.url[..url::Position::BeforePath]))
        }
        _ if req.absolute => Cow::Borrowed(req.url.as_str()),
        Some(raw) => Cow::Borrowed(raw),
        None => Cow::Borrowed(&req.url[url::Position::BeforePath..url::Position::AfterQuery]),
    };
    let parts = RequestParts::new(req.method, &target, req.headers.into(), framing)
        .with_version(req.version);
    encode_request_head(&parts, &mut head_buf).map_err(|e| Error::new(Kind::Request, e))?;
    // With `Expect: 100-continue` and a body, the head goes alone and the body waits for
    // the server's go-ahead.
    let has_body = !matches!(framing, BodyFraming::Empty | BodyFraming::Length(0));
    let expect = req.expect_continue.filter(|_| has_body);
    let mut tail = None;
    if let Some(body) = req.body {
        if body.len() <= COALESCE && expect.is_none() {
            head_buf.extend_from_slice(body);
        } else {
            tail = Some(body);
        }
    }
    Ok((head_buf.freeze(), tail, expect))
}

/// Who is told of one hop's steps: the session's traces, with the request's context, and
/// the timings recorder.
pub(crate) struct Observers<'a> {
    pub(crate) traces: &'a [Arc<dyn Trace>],
    pub(crate) ctx: &'a TraceRequestCtx,
    pub(crate) timing: Option<Arc<Recorder>>,
}

impl Observers<'_> {
    /// The request took a connection: a new one, or one from the pool.
    fn connected(&self, req: &Outgoing<'_>, reused: bool) {
        for t in self.traces {
            if reused {
                t.on_connection_reuse(self.ctx, req.origin);
            } else {
                t.on_connection_create(self.ctx, req.origin);
            }
        }
    }

    /// The response head arrived: the timings and traces hear of it, and the traces will
    /// hear of the body's pieces.
    fn answered(&self, req: &Outgoing<'_>, body: &mut RawBody, reused: bool, body_sent: bool) {
        if let Some(timing) = &self.timing {
            timing.first_byte(reused);
        }
        if !self.traces.is_empty() {
            body.trace = Some(report_sent(req, (self.traces, self.ctx), body_sent));
        }
    }
}

/// An exchange on an HTTP/2 stream: the head, and the body reader holding the stream.
async fn http2_answer(
    mut shared: tandem_connect::Http2Stream,
    req: &Outgoing<'_>,
    (body, on_chunk): (Option<&mut StreamBody>, OnChunk<'_>),
    deadlines: &Deadlines,
    timing: Option<&Arc<Recorder>>,
) -> Result<(Head, RawBody), Failure> {
    let timed = timing.map(|t| &**t);
    let (head, recv) = http2::exchange(&mut shared, req, body, deadlines, on_chunk, timed).await?;
    http2::check_fields(&head.headers, &req.read).map_err(Failure::fatal)?;
    let fields = Fields::from_header_map(&head.headers);
    let body = RawBody::http2(recv, shared, *deadlines, timing.cloned());
    Ok((Head::Http2 { status: head.status, headers: head.headers, fields }, body))
}

/// Tells the traces the request went out (its head, and a whole body), and returns what
/// its response body reports its chunks to.
fn report_sent(
    req: &Outgoing<'_>,
    (traces, ctx): (&[Arc<dyn Trace>], &TraceRequestCtx),
    body_sent: bool,
) -> Box<ChunkTrace> {
    for t in traces {
        t.on_request_headers_sent(ctx, req.method, req.url, req.headers.headers());
        if let Some(body) = req.body.filter(|b| body_sent && !b.is_empty()) {
            t.on_request_chunk_sent(ctx, req.method, req.url, body);
        }
    }
    Box::new(ChunkTrace {
        traces: traces.to_vec(),
        ctx: ctx.clone(),
        method: req.method.clone(),
        url: req.url.clone(),
    })
}

/// RFC 9110 §9.2.2's idempotent methods: sending one twice has the effect of sending it
/// once (aiohttp's list for its one retry on a stale connection).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Why an exchange failed, and whether the request may be sent again.
pub(crate) struct Failure {
    error: Error,
    /// Nothing of a response had arrived: sent again if idempotent, on a pooled connection.
    retryable: bool,
    /// The server did not process it: sent again whatever its method.
    unprocessed: bool,
}

impl Failure {
    pub(crate) fn fatal(error: Error) -> Self {
        Failure { error, retryable: false, unprocessed: false }
    }

    /// Nothing of a response arrived: the connection may have been closed as it was
    /// picked up.
    pub(crate) fn retryable(error: Error) -> Self {
        Failure { error, retryable: true, unprocessed: false }
    }

    /// The server did not process the request.
    pub(crate) fn unprocessed(error: Error) -> Self {
        Failure { error, retryable: true, unprocessed: true }
    }

    /// Writing the request failed: worth sending again only if the peer had gone.
    fn write(error: Error) -> Self {
        let retryable = error.is_disconnected();
        Failure { error, retryable, unprocessed: false }
    }
}

/// What to write: the head (and a small body coalesced with it), the rest of the body, and
/// whether to wait for `100 Continue` between the two.
struct Outbound<'a> {
    head: &'a Bytes,
    tail: Option<&'a Bytes>,
    stream: Option<&'a mut StreamBody>,
    expect: Option<Duration>,
    /// Told of each streamed chunk written.
    on_chunk: OnChunk<'a>,
    /// Told when the request has been written.
    timing: Option<&'a Recorder>,
}

/// Writes the request and reads the final response head. The flag is whether the body was
/// sent: with `Expect: 100-continue` a final status that comes first means it is not.
async fn exchange(
    conn: &mut Connection,
    out: Outbound<'_>,
    answer: (&Method, &ReadLimits),
    deadlines: &Deadlines,
) -> Result<(ResponseHead, BytesMut, bool), Failure> {
    // The connection's own buffer: on a reused connection whose last response is gone, the
    // memory its reader used, so a request allocates no buffer (`next_head` reserves room).
    let mut buf = conn.take_read_buf();
    let io = conn.io();
    let mut seen = Seen::default();
    if let Some(wait) = out.expect {
        // Boxed, as the streamed body below: rare paths whose state would otherwise sit in
        // every request's future (and be copied into its box).
        let early = await_continue(io, out.head, (&mut buf, &mut seen), answer, deadlines, wait);
        if let Some(head) = Box::pin(early).await? {
            return Ok((head, buf, false));
        }
    }
    let head = if out.expect.is_some() { None } else { Some(out.head) };
    let (tail, stream, on_chunk, timing) = (out.tail, out.stream, out.on_chunk, out.timing);
    let write = async {
        let disconnected = |e| Error::new(Kind::Disconnected, e);
        if let Some(head) = head {
            io.write_all(head).await.map_err(disconnected)?;
        }
        if let Some(tail) = tail {
            io.write_all(tail).await.map_err(disconnected)?;
        }
        if let Some(stream) = stream {
            match stream.1.as_ref().map(Length::bytes) {
                Some(len) => Box::pin(write_sized(io, stream, len, on_chunk)).await?,
                None => Box::pin(write_chunked(io, stream, on_chunk)).await?,
            }
        }
        io.flush().await.map_err(disconnected)
    };
    if let Err(error) = deadlines.run(None, write).await {
        // A server may answer before it has read the body (a 413 for an upload too large)
        // and close, which breaks the write: its answer came first, and is the response.
        if peer_gone(&error)
            && let Some(head) =
                Box::pin(answer_before_close(io, &mut buf, answer, deadlines, &mut seen)).await
        {
            return Ok((head, buf, false));
        }
        return Err(Failure::write(error));
    }
    if let Some(timing) = timing {
        timing.sent();
    }

    loop {
        let head = next_head(io, &mut buf, answer, deadlines, &mut seen).await?;
        // 1xx interim responses (100 Continue, 103 Early Hints) come before the final one.
        // A 101 ends the exchange: `send` decides whether it was asked for.
        if !is_interim(head.status()) {
            return Ok((head, buf, true));
        }
    }
}

/// Whether a write failed because the peer reset or closed the connection, rather than the
/// body's own source failing: only then may the peer's answer be waiting to be read.
fn peer_gone(error: &Error) -> bool {
    use std::{error::Error as _, io::ErrorKind};

    let io_kind =
        error.source().and_then(|e| e.downcast_ref::<std::io::Error>()).map(std::io::Error::kind);
    error.is_disconnected()
        && matches!(
            io_kind,
            Some(ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted)
        )
}

/// The final head a server sent before it closed a connection whose request it had not read
/// whole, if one arrived (reading past interim ones); `None` when none did.
async fn answer_before_close(
    io: &mut (dyn tandem_connect::Io + 'static),
    buf: &mut BytesMut,
    answer: (&Method, &ReadLimits),
    deadlines: &Deadlines,
    seen: &mut Seen,
) -> Option<ResponseHead> {
    loop {
        let head = next_head(io, buf, answer, deadlines, seen).await.ok()?;
        if !is_interim(head.status()) {
            return Some(head);
        }
    }
}

/// Sends the head of a request that expects `100 Continue` and waits for the answer: `None`
/// to go on with the body (a 100, or no answer within `wait`), or the final head that came
/// first, meaning the body is not wanted.
async fn await_continue(
    io: &mut (dyn tandem_connect::Io + 'static),
    head: &Bytes,
    (buf, seen): (&mut BytesMut, &mut Seen),
    answer: (&Method, &ReadLimits),
    deadlines: &Deadlines,
    wait: Duration,
) -> Result<Option<ResponseHead>, Failure> {
    let write = async {
        io.write_all(head).await?;
        io.flush().await
    };
    deadlines
        .run(None, async { write.await.map_err(|e| Error::new(Kind::Disconnected, e)) })
        .await
        .map_err(Failure::write)?;
    // RFC 9110 §10.1.1: wait for 100 Continue, but not forever, since a server may not
    // know the expectation; a final status first means the body is not wanted.
    let answer = async {
        loop {
            let head = next_head(io, buf, answer, deadlines, seen).await?;
            if head.status() == StatusCode::CONTINUE {
                return Ok(None);
            }
            if !is_interim(head.status()) {
                return Ok(Some(head));
            }
        }
    };
    match tokio::time::timeout(wait, answer).await {
        Ok(Ok(Some(head))) => Ok(Some(head)),
        Ok(Ok(None)) | Err(_) => Ok(None),
        Ok(Err(failure)) => Err(failure),
    }
}

/// Writes a streamed body in chunked framing, ending with the last chunk. Each chunk goes
/// out with its size line and CRLF in one vectored write (on a socket that takes them), not
/// three: an upload of small chunks would otherwise spend most of its syscalls on framing.
async fn write_chunked(
    io: &mut (dyn tandem_connect::Io + 'static),
    StreamBody(stream, _): &mut StreamBody,
    on_chunk: OnChunk<'_>,
) -> Result<(), Error> {
    use std::io::Write as _;

    let disconnected = |e| Error::new(Kind::Disconnected, e);
    let mut size_line = Vec::with_capacity(20);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::new(Kind::Request, e))?;
        if chunk.is_empty() {
            continue;
        }
        size_line.clear();
        // Writing to a Vec cannot fail.
        let _ = write!(size_line, "{:x}\r\n", chunk.len());
        let mut frame = Buf::chain(&size_line[..], &chunk[..]).chain(&b"\r\n"[..]);
        // Through a `&mut dyn Io`, which is sized, as `write_all_buf` needs.
        let mut writer = &mut *io;
        AsyncWriteExt::write_all_buf(&mut writer, &mut frame).await.map_err(disconnected)?;
        on_chunk(&chunk);
    }
    io.write_all(b"0\r\n\r\n").await.map_err(disconnected)
}

/// Writes a streamed body of a length sent ahead in `Content-Length`, as it comes. A stream
/// that would run past `len`, or ends short of it (a file that changed size after its
/// metadata was read), fails the request: the server would otherwise read a body cut short,
/// or the excess as the next request. A file body on a plain TCP socket goes with
/// `sendfile`.
async fn write_sized(
    io: &mut (dyn tandem_connect::Io + 'static),
    StreamBody(stream, length): &mut StreamBody,
    len: u64,
    on_chunk: OnChunk<'_>,
) -> Result<(), Error> {
    #[cfg(target_os = "linux")]
    if let Some(Length::File(file, _)) = length
        && let Some(socket) = crate::file_body::plain_tcp(io)
    {
        return file.sendfile(socket).await;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = length;
    let mut left = len;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::new(Kind::Request, e))?;
        left = left.checked_sub(chunk.len() as u64).ok_or_else(|| length_changed(len))?;
        io.write_all(&chunk).await.map_err(|e| Error::new(Kind::Disconnected, e))?;
        on_chunk(&chunk);
    }
    if left > 0 {
        return Err(length_changed(len));
    }
    Ok(())
}

fn length_changed(len: u64) -> Error {
    Error::new(Kind::Request, format!("the body's length differs from its Content-Length {len}"))
}

/// What an exchange has read of its answer: whether any byte arrived (a failure before one
/// may be sent again), and how many interim responses, which `max_interim_responses`
/// bounds.
#[derive(Default)]
struct Seen {
    received: bool,
    interim: usize,
}

/// A 1xx that another head follows; a 101 ends the exchange instead.
fn is_interim(status: StatusCode) -> bool {
    status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS
}

/// Reads the next response head, interim or final, to a request of `method`, from `buf` and
/// the connection, within `limits`: the head's, their number, and `read_bufsize` for each
/// read.
async fn next_head<R: tokio::io::AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    buf: &mut BytesMut,
    (method, limits): (&Method, &ReadLimits),
    deadlines: &Deadlines,
    seen: &mut Seen,
) -> Result<ResponseHead, Failure> {
    let mut parser = ResponseParser::with_limits(limits.head());
    let read_size = FIRST_READ.min(limits.read_bufsize());
    loop {
        match parser.parse(buf, method) {
            Ok(Some(head)) if is_interim(head.status()) => {
                seen.interim += 1;
                if seen.interim > limits.max_interim_responses() {
                    let error = format!(
                        "more than {} interim (1xx) responses",
                        limits.max_interim_responses()
                    );
                    return Err(Failure::fatal(Error::new(Kind::Response, error)));
                }
                return Ok(head);
            }
            Ok(Some(head)) => return Ok(head),
            Ok(None) => {}
            Err(e) => return Err(Failure::fatal(Error::new(Kind::Response, e))),
        }
        buf.reserve(read_size);
        let mut room = (&mut *buf).limit(read_size);
        let n = deadlines
            .read(async { io.read_buf(&mut room).await.map_err(|e| Error::new(Kind::Io, e)) })
            .await
            .map_err(|error| {
                let retryable = !seen.received && error.is_io();
                Failure { error, retryable, unprocessed: false }
            })?;
        if n == 0 {
            let error = Error::bare(Kind::Disconnected);
            return Err(Failure { error, retryable: !seen.received, unprocessed: false });
        }
        seen.received = true;
    }
}
