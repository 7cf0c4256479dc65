//! `Content`: the response body as a stream, aiohttp's `resp.content` (`StreamReader`).

use bytes::{Bytes, BytesMut};

use crate::{
    body::RawBody,
    decompress::Decompressor,
    error::{Error, Failed, Kind},
};

/// The body of a [`ClientResponse`](crate::ClientResponse), read piece by piece, with
/// content-coding already removed.
///
/// Every method returns an empty result (or `None`) at the end of the body; an error means
/// the body was truncated, malformed, too large once decompressed, or a timeout elapsed.
/// Such an error is final: every later read returns it again (only a line over the line
/// limit leaves the body readable), and the connection is closed, never reused.
#[derive(Debug)]
pub struct Content {
    raw: RawBody,
    /// Boxed: a decoder's state is large, and most responses have none.
    decoder: Option<Box<Decompressor>>,
    /// Decoded bytes not yet handed out.
    pending: BytesMut,
    eof: bool,
    /// The longest line `readuntil` returns: twice `read_bufsize`.
    max_readline: usize,
    raw_bytes: u64,
    /// Compressed bytes received but not yet decoded.
    undecoded: Bytes,
    /// The error the body failed with, if it did: boxed, as it is rare.
    failed: Option<Box<Failed>>,
    /// `pending` ends where one of the sender's HTTP/1.1 chunks ended.
    pending_chunk_end: bool,
}

impl Content {
    /// The exchange's timings, if the session records them.
    pub(crate) fn timings(&self) -> Option<crate::Timings> {
        self.raw.timings()
    }

    pub(crate) fn new(raw: RawBody, decoder: Option<Decompressor>, max_readline: usize) -> Self {
        Content {
            raw,
            decoder: decoder.map(Box::new),
            pending: BytesMut::new(),
            eof: false,
            max_readline,
            raw_bytes: 0,
            undecoded: Bytes::new(),
            failed: None,
            pending_chunk_end: false,
        }
    }

    pub(crate) fn into_raw(self) -> RawBody {
        self.raw
    }

    /// Whether the whole body has been read and handed out.
    pub fn at_eof(&self) -> bool {
        self.eof && self.pending.is_empty()
    }

    /// Bytes received so far before decompression (aiohttp's `total_raw_bytes`).
    pub fn total_raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    /// The next decoded piece of the body, not yet in `pending`; `None` at its end. An error
    /// is kept and returned again by every later call.
    async fn next_piece(&mut self) -> Result<Option<Bytes>, Error> {
        if let Some(failed) = &self.failed {
            return Err(failed.again());
        }
        let piece = self.decode_piece().await;
        if let Err(e) = &piece {
            self.failed = Some(Box::new(e.to_failed()));
            // What was read of a body that broke is not handed out after the error.
            self.pending.clear();
        }
        piece
    }

    async fn decode_piece(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if self.eof {
                return Ok(None);
            }
            if let Some(decoder) = &mut self.decoder {
                // A piece of output at a time, however well the input compresses: what the
                // decoder leaves of the input waits here for the next piece.
                let out = decoder.decode(&mut self.undecoded)?;
                if !out.is_empty() {
                    return Ok(Some(out));
                }
            }
            let Some(data) = self.raw.next().await? else {
                self.eof = true;
                if let Some(d) = &mut self.decoder {
                    let rest = d.finish()?;
                    if !rest.is_empty() {
                        return Ok(Some(rest));
                    }
                }
                return Ok(None);
            };
            self.raw_bytes += data.len() as u64;
            if self.decoder.is_some() {
                self.undecoded = data;
            } else if !data.is_empty() {
                return Ok(Some(data));
            }
        }
    }

    /// Pulls one more piece into `pending`. Returns `false` at the end of the body.
    async fn fill(&mut self) -> Result<bool, Error> {
        let Some(piece) = self.next_piece().await? else {
            return Ok(false);
        };
        self.push(piece);
        self.pending_chunk_end = self.piece_ended_chunk();
        Ok(true)
    }

    /// Whether the piece just decoded ends one of the sender's chunks: the raw piece did,
    /// and none of it is left to decode.
    fn piece_ended_chunk(&self) -> bool {
        self.raw.ended_chunk() && self.undecoded.is_empty()
    }

    fn push(&mut self, data: Bytes) {
        if self.pending.is_empty() {
            // Takes the buffer over without copying when nothing else holds it.
            self.pending = BytesMut::from(data);
        } else {
            self.pending.extend_from_slice(&data);
        }
    }

    /// The next piece of the body as it arrives, or `None` at the end (aiohttp's
    /// `iter_any()`).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if !self.pending.is_empty() {
            return Ok(Some(self.pending.split().freeze()));
        }
        // Straight from the reader: through `pending`, a piece that shares the connection's
        // read buffer was copied out of it, costing two allocations besides.
        self.next_piece().await
    }

    /// Whatever is available, waiting for at least one byte; empty at the end
    /// (aiohttp's `readany()`).
    pub async fn readany(&mut self) -> Result<Bytes, Error> {
        Ok(self.chunk().await?.unwrap_or_default())
    }

    /// Up to `n` bytes, waiting for at least one; empty at the end. Calling it in a loop
    /// is aiohttp's `iter_chunked(n)` except that pieces may be shorter than `n`.
    pub async fn read(&mut self, n: usize) -> Result<Bytes, Error> {
        if n == 0 {
            return Ok(Bytes::new());
        }
        if self.pending.is_empty() && !self.fill().await? {
            return Ok(Bytes::new());
        }
        let take = n.min(self.pending.len());
        Ok(self.pending.split_to(take).freeze())
    }

    /// Exactly `n` bytes, or a payload error if the body ends first (aiohttp's
    /// `readexactly`).
    pub async fn read_exactly(&mut self, n: usize) -> Result<Bytes, Error> {
        while self.pending.len() < n {
            if !self.fill().await? {
                return Err(Error::new(Kind::Payload, "body ended before the bytes asked for"));
            }
        }
        Ok(self.pending.split_to(n).freeze())
    }

    /// The next line, with its `\n`; the last line may lack one; empty at the end. A line
    /// longer than twice [`read_bufsize`](crate::ClientSessionBuilder::read_bufsize) is a
    /// payload error, as it is past aiohttp's high-water mark.
    pub async fn readline(&mut self) -> Result<Bytes, Error> {
        self.readuntil(b"\n").await
    }

    /// The bytes up to and including the next `separator` (aiohttp's `readuntil`); the last
    /// piece may lack it; empty at the end. More than twice
    /// [`read_bufsize`](crate::ClientSessionBuilder::read_bufsize) before a separator is a
    /// payload error, and the bytes stay unread. An empty separator is a payload error.
    pub async fn readuntil(&mut self, separator: &[u8]) -> Result<Bytes, Error> {
        if separator.is_empty() {
            return Err(Error::new(Kind::Payload, "readuntil needs a separator"));
        }
        let mut searched = 0;
        loop {
            if let Some(i) = find(&self.pending[searched..], separator) {
                let end = searched + i + separator.len();
                if end > self.max_readline {
                    return Err(line_too_long());
                }
                return Ok(self.pending.split_to(end).freeze());
            }
            // A separator may straddle what is here and what comes next.
            searched = self.pending.len().saturating_sub(separator.len() - 1);
            if self.pending.len() > self.max_readline {
                return Err(line_too_long());
            }
            if !self.fill().await? {
                return Ok(self.pending.split().freeze());
            }
        }
    }

    /// The next piece and whether it ends one of the sender's HTTP/1.1 chunks (aiohttp's
    /// `readchunk()`); `(empty, false)` at the end. A body that is not chunked (or comes
    /// over HTTP/2) never reports a chunk's end; a compressed one reports it where the
    /// decompressed bytes of a chunk end.
    pub async fn readchunk(&mut self) -> Result<(Bytes, bool), Error> {
        if !self.pending.is_empty() {
            let ended = self.pending_chunk_end;
            return Ok((self.pending.split().freeze(), ended));
        }
        match self.next_piece().await? {
            Some(piece) => Ok((piece, self.piece_ended_chunk())),
            None => Ok((Bytes::new(), false)),
        }
    }

    /// Up to `n` bytes of what has already been read from the connection and not handed out
    /// (what [`unread_data`](Self::unread_data) put back, or what a `readline` read past its
    /// line), without waiting (aiohttp's `read_nowait`); empty when there is none.
    pub fn read_nowait(&mut self, n: usize) -> Bytes {
        let take = n.min(self.pending.len());
        self.pending.split_to(take).freeze()
    }

    /// Puts `data` back in front of the body, for the next read to return first (aiohttp's
    /// `unread_data`): a parser that read too far hands back what it did not use.
    pub fn unread_data(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.pending.is_empty() {
            self.pending_chunk_end = false;
        }
        let mut joined = BytesMut::with_capacity(data.len() + self.pending.len());
        joined.extend_from_slice(data);
        joined.extend_from_slice(&self.pending);
        self.pending = joined;
    }

    /// Waits for the end of the body, keeping what remains unread for later reads
    /// (aiohttp's `wait_eof`): the whole rest is held in memory.
    pub async fn wait_eof(&mut self) -> Result<(), Error> {
        while self.fill().await? {}
        Ok(())
    }

    /// The body in pieces of exactly `n` bytes, the last one shorter (aiohttp's
    /// `iter_chunked(n)`); an `n` of 0 yields nothing.
    pub fn iter_chunked(
        &mut self,
        n: usize,
    ) -> impl futures_util::Stream<Item = Result<Bytes, Error>> + Send + '_ {
        futures_util::stream::try_unfold(self, move |content| async move {
            if n == 0 {
                return Ok(None);
            }
            while content.pending.len() < n && content.fill().await? {}
            let take = n.min(content.pending.len());
            let piece = content.pending.split_to(take).freeze();
            Ok((!piece.is_empty()).then_some((piece, content)))
        })
    }

    /// The body as it arrives, piece by piece (aiohttp's `iter_any()`).
    pub fn iter_any(
        &mut self,
    ) -> impl futures_util::Stream<Item = Result<Bytes, Error>> + Send + '_ {
        futures_util::stream::try_unfold(self, |content| async move {
            Ok(content.chunk().await?.map(|piece| (piece, content)))
        })
    }

    /// The body by the sender's HTTP/1.1 chunks, as [`readchunk`](Self::readchunk) reads
    /// them (aiohttp's `iter_chunks()`).
    pub fn iter_chunks(
        &mut self,
    ) -> impl futures_util::Stream<Item = Result<(Bytes, bool), Error>> + Send + '_ {
        futures_util::stream::try_unfold(self, |content| async move {
            let (piece, ended) = content.readchunk().await?;
            Ok((!piece.is_empty()).then_some(((piece, ended), content)))
        })
    }

    /// The body line by line, each with its `\n` (aiohttp's `async for line in
    /// resp.content`), under the line limit of [`readline`](Self::readline).
    pub fn lines(&mut self) -> impl futures_util::Stream<Item = Result<Bytes, Error>> + Send + '_ {
        futures_util::stream::try_unfold(self, |content| async move {
            let line = content.readline().await?;
            Ok((!line.is_empty()).then_some((line, content)))
        })
    }

    /// The rest of the body.
    pub async fn read_to_end(&mut self) -> Result<Bytes, Error> {
        // A body that comes in one piece, as most short ones do, is handed out as it came.
        if self.pending.is_empty() {
            let Some(first) = self.next_piece().await? else {
                return Ok(Bytes::new());
            };
            let Some(second) = self.next_piece().await? else {
                return Ok(first);
            };
            self.push(first);
            self.push(second);
        }
        while self.fill().await? {}
        Ok(self.pending.split().freeze())
    }

    /// Discards a short rest of the body so the connection can be reused.
    pub(crate) async fn drain(&mut self, limit: usize) {
        self.raw.drain(limit).await;
        self.eof = self.raw.is_done();
    }
}

/// Where `needle` (not empty) first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn line_too_long() -> Error {
    Error::new(Kind::Payload, "line longer than twice read_bufsize")
}
