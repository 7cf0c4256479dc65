//! One request on one connection: write it, read the head, and lend the connection to the
//! body reader.

use std::{borrow::Cow, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{Method, StatusCode};
use tandem_connect::{ConnectOptions, Connection, Connector, Origin};
use tandem_proto::{
    BodyDecoder, BodyEvent, BodyFraming, EncodedFields, RequestParts, ResponseHead, ResponseParser,
    encode_request_head,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use crate::{
    Trace,
    error::{Error, Failed, Kind},
    request::StreamBody,
    timeout::Deadlines,
    timings::Recorder,
    trace::{ChunkTrace, TraceRequestCtx},
};

/// How much to read at a time.
const READ_SIZE: usize = 16 * 1024;
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
}

/// Sends `req` and reads its final response head. An idempotent request that fails on a
/// pooled connection before any byte of response arrives is sent once more: the server may
/// have closed the idle connection as we picked it up (RFC 9112 §9.3.1). Any other method
/// is not, as aiohttp's rule: the server may have acted on it before the connection broke.
pub(crate) async fn send(
    connector: &Connector,
    req: &Outgoing<'_>,
    mut stream: Option<StreamBody>,
    deadlines: &Deadlines,
    Observers { traces, ctx, timing }: Observers<'_>,
) -> Result<(ResponseHead, RawBody), Error> {
    let mut head_buf = BytesMut::new();
    let framing = match req.body {
        _ if stream.is_some() => BodyFraming::Chunked,
        Some(body) => BodyFraming::Length(body.len() as u64),
        None if matches!(*req.method, Method::POST | Method::PUT | Method::PATCH) => {
            BodyFraming::Length(0)
        }
        None => BodyFraming::Empty,
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
    let parts = RequestParts::new(req.method, &target, req.headers.into(), framing);
    // Checked before connecting: a method, target or field that could split the request
    // is refused with nothing written.
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
    let wire = head_buf.freeze();

    let options = req.options;
    let mut retried = false;
    loop {
        let mut conn = deadlines
            .connect(async {
                connector.connect_with(req.origin, options).await.map_err(Error::from)
            })
            .await?;
        let reused = conn.is_reused();
        for t in traces {
            if reused {
                t.on_connection_reuse(ctx, req.origin);
            } else {
                t.on_connection_create(ctx, req.origin);
            }
        }
        let streamed = stream.is_some();
        let on_chunk = |chunk: &[u8]| {
            for t in traces {
                t.on_request_chunk_sent(ctx, req.method, req.url, chunk);
            }
        };
        let body = Outbound {
            head: &wire,
            tail,
            stream: stream.as_mut(),
            expect,
            on_chunk: &on_chunk,
            timing: timing.as_deref(),
        };
        match exchange(&mut conn, body, req.method, deadlines).await {
            Ok((head, buf, body_sent)) => {
                // A 101 answers only a request that offered an `Upgrade`.
                if head.status() == StatusCode::SWITCHING_PROTOCOLS
                    && !req.headers.headers().contains_key(http::header::UPGRADE)
                {
                    return Err(Error::new(Kind::Response, "unexpected 101 Switching Protocols"));
                }
                // A request that asked to close spends the connection whatever the answer,
                // and so does one whose announced body was never sent: the server may
                // still be waiting for it.
                let keep_alive = head.keep_alive() && !req.headers.asks_to_close() && body_sent;
                if let Some(timing) = &timing {
                    timing.first_byte(reused);
                }
                let mut body =
                    RawBody::new(conn, buf, &head, keep_alive, *deadlines, timing.clone());
                if !traces.is_empty() {
                    body.trace = Some(report_sent(req, (traces, ctx), body_sent));
                }
                return Ok((head, body));
            }
            Err(Failure { error, retryable }) => {
                // A streamed body has been read, so it cannot be sent again.
                if retryable && reused && !retried && !streamed && is_idempotent(req.method) {
                    tracing::debug!(%error, "pooled connection failed before a response; retrying");
                    retried = true;
                    continue;
                }
                return Err(error);
            }
        }
    }
}

/// Who is told of one hop's steps: the session's traces, with the request's context, and
/// the timings recorder.
pub(crate) struct Observers<'a> {
    pub(crate) traces: &'a [Arc<dyn Trace>],
    pub(crate) ctx: &'a TraceRequestCtx,
    pub(crate) timing: Option<Arc<Recorder>>,
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

struct Failure {
    error: Error,
    /// Nothing of a response had arrived.
    retryable: bool,
}

impl Failure {
    fn fatal(error: Error) -> Self {
        Failure { error, retryable: false }
    }

    /// Writing the request failed: worth sending again only if the peer had gone.
    fn write(error: Error) -> Self {
        let retryable = error.is_disconnected();
        Failure { error, retryable }
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
    on_chunk: &'a (dyn Fn(&[u8]) + Sync),
    /// Told when the request has been written.
    timing: Option<&'a Recorder>,
}

/// Writes the request and reads the final response head. The flag is whether the body was
/// sent: with `Expect: 100-continue` a final status that comes first means it is not.
async fn exchange(
    conn: &mut Connection,
    out: Outbound<'_>,
    method: &Method,
    deadlines: &Deadlines,
) -> Result<(ResponseHead, BytesMut, bool), Failure> {
    // The connection's own buffer: on a reused connection whose last response is gone, the
    // memory its reader used, so a request allocates no buffer (`next_head` reserves room).
    let mut buf = conn.take_read_buf();
    let io = conn.io();
    let mut received = false;
    if let Some(wait) = out.expect {
        // Boxed, as the streamed body below: rare paths whose state would otherwise sit in
        // every request's future (and be copied into its box).
        let early =
            await_continue(io, out.head, (&mut buf, &mut received), method, deadlines, wait);
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
            Box::pin(write_chunked(io, stream, on_chunk)).await?;
        }
        io.flush().await.map_err(disconnected)
    };
    deadlines.run(None, write).await.map_err(Failure::write)?;
    if let Some(timing) = timing {
        timing.sent();
    }

    loop {
        let head = next_head(io, &mut buf, method, deadlines, &mut received).await?;
        // 1xx interim responses (100 Continue, 103 Early Hints) come before the final one.
        // A 101 ends the exchange: `send` decides whether it was asked for.
        if head.status() == StatusCode::SWITCHING_PROTOCOLS || !head.status().is_informational() {
            return Ok((head, buf, true));
        }
    }
}

/// Sends the head of a request that expects `100 Continue` and waits for the answer: `None`
/// to go on with the body (a 100, or no answer within `wait`), or the final head that came
/// first, meaning the body is not wanted.
async fn await_continue(
    io: &mut (dyn tandem_connect::Io + 'static),
    head: &Bytes,
    (buf, received): (&mut BytesMut, &mut bool),
    method: &Method,
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
            let head = next_head(io, buf, method, deadlines, received).await?;
            if head.status() == StatusCode::CONTINUE {
                return Ok(None);
            }
            if head.status() == StatusCode::SWITCHING_PROTOCOLS || !head.status().is_informational()
            {
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

/// Writes a streamed body in chunked framing, ending with the last chunk.
async fn write_chunked(
    io: &mut (dyn tandem_connect::Io + 'static),
    StreamBody(stream): &mut StreamBody,
    on_chunk: &(dyn Fn(&[u8]) + Sync),
) -> Result<(), Error> {
    let disconnected = |e| Error::new(Kind::Disconnected, e);
    let mut frame = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::new(Kind::Request, e))?;
        if chunk.is_empty() {
            continue;
        }
        frame.clear();
        frame.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        io.write_all(&frame).await.map_err(disconnected)?;
        io.write_all(&chunk).await.map_err(disconnected)?;
        io.write_all(b"\r\n").await.map_err(disconnected)?;
        on_chunk(&chunk);
    }
    io.write_all(b"0\r\n\r\n").await.map_err(disconnected)
}

/// Reads the next response head, interim or final, from `buf` and the connection.
async fn next_head<R: tokio::io::AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    buf: &mut BytesMut,
    method: &Method,
    deadlines: &Deadlines,
    received: &mut bool,
) -> Result<ResponseHead, Failure> {
    let mut parser = ResponseParser::new();
    loop {
        match parser.parse(buf, method) {
            Ok(Some(head)) => return Ok(head),
            Ok(None) => {}
            Err(e) => return Err(Failure::fatal(Error::new(Kind::Response, e))),
        }
        buf.reserve(READ_SIZE);
        let n = deadlines
            .read(async { io.read_buf(buf).await.map_err(|e| Error::new(Kind::Io, e)) })
            .await
            .map_err(|error| {
                let retryable = !*received && error.is_io();
                Failure { error, retryable }
            })?;
        if n == 0 {
            return Err(Failure { error: Error::bare(Kind::Disconnected), retryable: !*received });
        }
        *received = true;
    }
}

/// The response body as it comes off the connection, still content-encoded. The connection
/// goes back to the pool exactly when the body ends, the response allows keep-alive, and
/// nothing follows it in the buffer (bytes after a complete response mean the connection's
/// framing cannot be trusted: checklist C48).
///
/// An error is final: the connection is dropped with it (whatever follows a broken body is
/// never read as a response), and every later read returns the error again.
pub(crate) struct RawBody {
    conn: Option<Connection>,
    buf: BytesMut,
    decoder: BodyDecoder,
    keep_alive: bool,
    deadlines: Deadlines,
    done: bool,
    /// Boxed: only a body that broke has one.
    failed: Option<Box<Failed>>,
    /// The session's traces, told of each chunk; only a traced session's bodies have one.
    trace: Option<Box<ChunkTrace>>,
    /// Told when the body ends, under `timings(true)`.
    timing: Option<Arc<Recorder>>,
}

impl std::fmt::Debug for RawBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBody").field("done", &self.done).finish_non_exhaustive()
    }
}

impl RawBody {
    fn new(
        conn: Connection,
        buf: BytesMut,
        head: &ResponseHead,
        keep_alive: bool,
        deadlines: Deadlines,
        timing: Option<Arc<Recorder>>,
    ) -> Self {
        let mut body = RawBody {
            conn: Some(conn),
            buf,
            decoder: BodyDecoder::new(head.framing()),
            keep_alive,
            deadlines,
            done: false,
            failed: None,
            trace: None,
            timing,
        };
        // After a 101 the connection belongs to the new protocol: it is kept for
        // `into_upgraded` and never pooled.
        if head.status() == StatusCode::SWITCHING_PROTOCOLS {
            body.keep_alive = false;
            body.done = true;
        } else if body.decoder.is_done() {
            body.finish();
        }
        body
    }

    /// A body with no connection behind it, whose bytes are `body`: what a fault
    /// injected in place of a server's answer reads. A head that declares more than `body`
    /// holds reads as a truncated body.
    pub(crate) fn synthetic(head: &ResponseHead, body: &[u8], deadlines: Deadlines) -> Self {
        RawBody {
            conn: None,
            buf: BytesMut::from(body),
            decoder: BodyDecoder::new(head.framing()),
            keep_alive: false,
            deadlines,
            done: false,
            failed: None,
            trace: None,
            timing: None,
        }
    }

    /// The connection and the bytes read past the head, after a 101; `None` otherwise.
    pub(crate) fn into_upgraded(mut self) -> Option<(Connection, BytesMut)> {
        if self.keep_alive || !self.done {
            return None;
        }
        Some((self.conn.take()?, std::mem::take(&mut self.buf)))
    }

    /// The body ended, well or not: nothing more will be read.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// What the exchange's steps took, under `timings(true)`.
    pub(crate) fn timings(&self) -> Option<crate::Timings> {
        self.timing.as_ref().map(|t| t.timings())
    }

    fn finish(&mut self) {
        self.done = true;
        if let Some(timing) = &self.timing {
            timing.end();
        }
        if let Some(mut conn) = self.conn.take()
            && self.keep_alive
            && self.buf.is_empty()
        {
            conn.set_read_buf(std::mem::take(&mut self.buf));
            conn.release();
        }
        self.buf = BytesMut::new();
    }

    /// The next piece of the body, or `None` at its end.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if let Some(failed) = &self.failed {
                return Err(failed.again());
            }
            if self.done {
                return Ok(None);
            }
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(BodyEvent::Data(data))) => {
                    if let Some(trace) = &self.trace
                        && !data.is_empty()
                    {
                        trace.received(&data);
                    }
                    if self.decoder.is_done() {
                        self.finish();
                    }
                    if !data.is_empty() {
                        return Ok(Some(data));
                    }
                }
                Ok(Some(BodyEvent::Trailers(_))) => {}
                Ok(Some(BodyEvent::End)) => self.finish(),
                Ok(None) => self.read_more().await?,
                Err(e) => return Err(self.fail(Error::new(Kind::Payload, e))),
            }
        }
    }

    async fn read_more(&mut self) -> Result<(), Error> {
        let Some(conn) = self.conn.as_mut() else {
            // Only a made-up body (`synthetic`) reads with no connection: its bytes are all
            // in the buffer, and its end is where they end.
            return match self.decoder.decode_eof() {
                Ok(_) => {
                    self.done = true;
                    Ok(())
                }
                Err(e) => Err(self.fail(Error::new(Kind::Payload, e))),
            };
        };
        let io = conn.io();
        let buf = &mut self.buf;
        buf.reserve(READ_SIZE);
        let read = self
            .deadlines
            .read(async { io.read_buf(buf).await.map_err(|e| Error::new(Kind::Payload, e)) })
            .await;
        match read {
            Ok(0) => match self.decoder.decode_eof() {
                Ok(_) => {
                    // Delimited by close: complete, but the connection is spent.
                    self.keep_alive = false;
                    self.finish();
                    Ok(())
                }
                Err(e) => Err(self.fail(Error::new(Kind::Payload, e))),
            },
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Ends the body with `error`: the connection is closed, and later reads fail too.
    fn fail(&mut self, error: Error) -> Error {
        self.discard();
        self.failed = Some(Box::new(error.to_failed()));
        error
    }

    /// Ends the body and closes the connection.
    fn discard(&mut self) {
        self.done = true;
        self.conn = None;
        self.buf = BytesMut::new();
    }

    /// Reads and discards the rest of the body if it is at most `limit` bytes, so the
    /// connection can be reused; otherwise closes it.
    pub(crate) async fn drain(&mut self, limit: usize) {
        let mut seen = 0;
        while seen <= limit {
            match self.next().await {
                Ok(Some(data)) => seen += data.len(),
                Ok(None) | Err(_) => return,
            }
        }
        self.discard();
    }
}
