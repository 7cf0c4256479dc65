//! `RawBody`: a response body as it comes off the connection, still content-encoded. It is
//! the same to [`Content`](crate::Content), decompression and the middlewares whichever
//! version carried it: HTTP/1.1 bytes framed by `BodyDecoder` on a connection of the
//! request's own, or an HTTP/2 stream's data on a shared one.
//!
//! An error is final: the connection is dropped with it (whatever follows a broken body is
//! never read as a response; on HTTP/2 only the stream is reset), and every later read
//! returns the error again.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use tandem_connect::Connection;
use tandem_proto::{BodyDecoder, BodyEvent, BodyFraming, ResponseHead};
use tokio::io::AsyncReadExt;

use crate::{
    error::{Error, Failed, Kind},
    http2::Http2Body,
    read_limits::{ReadLimits, next_read},
    timeout::Deadlines,
    timings::Recorder,
    trace::ChunkTrace,
};

/// The response body, from whichever connection carries it.
pub(crate) struct RawBody {
    source: Source,
    deadlines: Deadlines,
    done: bool,
    /// Boxed: only a body that broke has one.
    failed: Option<Box<Failed>>,
    /// The session's traces, told of each chunk; only a traced session's bodies have one.
    pub(crate) trace: Option<Box<ChunkTrace>>,
    /// Told when the body ends, under `timings(true)`.
    timing: Option<Arc<Recorder>>,
    /// The last piece handed out ended one of the sender's HTTP/1.1 chunks.
    chunk_end: bool,
}

enum Source {
    Http1(Http1Body),
    Http2(Http2Body),
    /// An HTTP/2 body that ended, failed or was discarded.
    Spent,
}

/// An HTTP/1.1 body on a connection of its own. The connection goes back to the pool
/// exactly when the body ends, the response allows keep-alive, and nothing follows it in the
/// buffer (bytes after a complete response mean the connection's framing cannot be
/// trusted: `docs/security.md`, C48).
struct Http1Body {
    conn: Option<Connection>,
    buf: BytesMut,
    decoder: BodyDecoder,
    keep_alive: bool,
    reads: ReadSizes,
}

/// The size of a body's reads: the last one's, whether it was filled, and the most one may
/// ask for (`read_bufsize`).
#[derive(Clone, Copy)]
struct ReadSizes {
    last: usize,
    filled: bool,
    cap: usize,
}

impl ReadSizes {
    fn new(cap: usize) -> Self {
        ReadSizes { last: 0, filled: false, cap }
    }
}

impl std::fmt::Debug for RawBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBody").field("done", &self.done).finish_non_exhaustive()
    }
}

impl RawBody {
    /// An HTTP/1.1 body after `head`, whose first bytes may be in `buf`, read at most
    /// `read_bufsize` bytes at a time; a chunked body's trailer fields are held to the same
    /// limits as the head's (`max_headers`, `max_field_size`).
    pub(crate) fn http1(
        (conn, buf): (Connection, BytesMut),
        head: &ResponseHead,
        (keep_alive, read): (bool, &ReadLimits),
        deadlines: Deadlines,
        timing: Option<Arc<Recorder>>,
    ) -> Self {
        // Only a chunked body has trailers; the others need no limits made.
        let decoder = match head.framing() {
            chunked @ BodyFraming::Chunked => BodyDecoder::with_limits(chunked, &read.head()),
            framing => BodyDecoder::new(framing),
        };
        let reads = ReadSizes::new(read.read_bufsize());
        let source = Source::Http1(Http1Body { conn: Some(conn), buf, decoder, keep_alive, reads });
        let mut body = RawBody::with(source, deadlines, timing);
        // After a 101 the connection belongs to the new protocol: it is kept for
        // `into_upgraded` and never pooled.
        if head.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Source::Http1(h1) = &mut body.source {
                h1.keep_alive = false;
            }
            body.done = true;
        } else if body.h1_decoded() {
            body.finish();
        }
        body
    }

    /// An HTTP/2 body on `recv`, holding the request's `stream` until it ends.
    pub(crate) fn http2(
        recv: tandem_connect::h2::RecvStream,
        stream: tandem_connect::Http2Stream,
        deadlines: Deadlines,
        timing: Option<Arc<Recorder>>,
    ) -> Self {
        let h2 = Http2Body::new(recv, stream);
        let ended = h2.is_end();
        let mut body = RawBody::with(Source::Http2(h2), deadlines, timing);
        if ended {
            body.finish();
        }
        body
    }

    /// A body with no connection behind it, whose bytes are `body`: what a fault
    /// injected in place of a server's answer reads. A head that declares more than `body`
    /// holds reads as a truncated body.
    pub(crate) fn synthetic(head: &ResponseHead, body: &[u8], deadlines: Deadlines) -> Self {
        let decoder = BodyDecoder::new(head.framing());
        let buf = BytesMut::from(body);
        let reads = ReadSizes::new(1);
        let source =
            Source::Http1(Http1Body { conn: None, buf, decoder, keep_alive: false, reads });
        RawBody::with(source, deadlines, None)
    }

    fn with(source: Source, deadlines: Deadlines, timing: Option<Arc<Recorder>>) -> Self {
        RawBody {
            source,
            deadlines,
            done: false,
            failed: None,
            trace: None,
            timing,
            chunk_end: false,
        }
    }

    /// Whether an HTTP/1.1 body's framing says it is complete.
    fn h1_decoded(&self) -> bool {
        matches!(&self.source, Source::Http1(h1) if h1.decoder.is_done())
    }

    /// The connection and the bytes read past the head, after a 101; `None` otherwise.
    pub(crate) fn into_upgraded(mut self) -> Option<(Connection, BytesMut)> {
        let Source::Http1(h1) = &mut self.source else { return None };
        if h1.keep_alive || !self.done {
            return None;
        }
        Some((h1.conn.take()?, std::mem::take(&mut h1.buf)))
    }

    /// Whether the last piece [`next`](Self::next) returned ended an HTTP/1.1 chunk.
    pub(crate) fn ended_chunk(&self) -> bool {
        self.chunk_end
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
        match &mut self.source {
            Source::Http1(h1) => {
                if let Some(mut conn) = h1.conn.take()
                    && h1.keep_alive
                    && h1.buf.is_empty()
                {
                    conn.set_read_buf(std::mem::take(&mut h1.buf));
                    conn.release();
                }
                h1.buf = BytesMut::new();
            }
            // The stream is done: its place among the connection's streams is freed.
            Source::Http2(_) => self.source = Source::Spent,
            Source::Spent => {}
        }
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
            let h1 = match &mut self.source {
                Source::Http1(h1) => h1,
                Source::Http2(_) => return self.next_h2().await,
                Source::Spent => return Ok(None),
            };
            match h1.decoder.decode(&mut h1.buf) {
                Ok(Some(BodyEvent::Data(data))) => {
                    self.chunk_end = h1.decoder.at_chunk_end();
                    if let Some(trace) = &self.trace
                        && !data.is_empty()
                    {
                        trace.received(&data);
                    }
                    if h1.decoder.is_done() {
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

    /// The next piece of an HTTP/2 body.
    async fn next_h2(&mut self) -> Result<Option<Bytes>, Error> {
        let Source::Http2(h2) = &mut self.source else { return Ok(None) };
        match h2.next(&self.deadlines).await {
            Ok(Some(data)) => {
                if let Some(trace) = &self.trace
                    && !data.is_empty()
                {
                    trace.received(&data);
                }
                if h2.is_end() {
                    self.finish();
                }
                Ok(Some(data))
            }
            Ok(None) => {
                self.finish();
                Ok(None)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    async fn read_more(&mut self) -> Result<(), Error> {
        let Source::Http1(h1) = &mut self.source else { return Ok(()) };
        let Some(conn) = h1.conn.as_mut() else {
            // Only a made-up body (`synthetic`) reads with no connection: its bytes are all
            // in the buffer, and its end is where they end.
            return match h1.decoder.decode_eof() {
                Ok(_) => {
                    self.done = true;
                    Ok(())
                }
                Err(e) => Err(self.fail(Error::new(Kind::Payload, e))),
            };
        };
        let io = conn.io();
        let buf = &mut h1.buf;
        let ReadSizes { last, filled, cap } = h1.reads;
        let size = next_read(h1.decoder.remaining(), last, filled, cap);
        buf.reserve(size);
        // Limited, as the buffer may have more room than asked for (its last allocation,
        // reclaimed), and `read_bufsize` bounds each read.
        let mut room = (&mut *buf).limit(size);
        let read = self
            .deadlines
            .read(async { io.read_buf(&mut room).await.map_err(|e| Error::new(Kind::Payload, e)) })
            .await;
        match read {
            Ok(0) => match h1.decoder.decode_eof() {
                Ok(_) => {
                    // Delimited by close: complete, but the connection is spent.
                    h1.keep_alive = false;
                    self.finish();
                    Ok(())
                }
                Err(e) => Err(self.fail(Error::new(Kind::Payload, e))),
            },
            Ok(n) => {
                h1.reads = ReadSizes { last: size, filled: n >= size, cap };
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Ends the body with `error`: the connection is closed, and later reads fail too.
    fn fail(&mut self, error: Error) -> Error {
        self.discard();
        self.failed = Some(Box::new(error.to_failed()));
        error
    }

    /// Ends the body and closes the connection (an HTTP/2 one only resets the stream).
    fn discard(&mut self) {
        self.done = true;
        match &mut self.source {
            Source::Http1(h1) => {
                h1.conn = None;
                h1.buf = BytesMut::new();
            }
            Source::Http2(_) | Source::Spent => self.source = Source::Spent,
        }
    }

    /// Reads and discards the rest of the body if it is at most `limit` bytes, so the
    /// connection can be reused; otherwise closes it (on HTTP/2, resets the stream).
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
