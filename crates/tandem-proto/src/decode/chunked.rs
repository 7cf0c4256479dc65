//! The chunked transfer coding (RFC 9112 §7.1), decoded byte by byte where it matters.
//!
//! httparse's `parse_chunk_size` accepts any byte inside a chunk extension, a bare LF
//! included: the "funky chunks" smuggling class of aiohttp's CVE-2024-52304. So the size
//! line is decoded here against the RFC grammar, one state per position:
//!
//! ```text
//! chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size = 1*HEXDIG
//! chunk-ext  = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-val = token / quoted-string
//! last-chunk = 1*("0") [ chunk-ext ] CRLF
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! Sizes are checked for overflow; extensions are validated and capped per body; trailers
//! are capped in size and count, and parsed apart from the head's fields.

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use memchr::memchr;

use super::body::BodyEvent;
use crate::{
    Limits,
    error::{Error, ErrorKind},
    semantics::is_tchar,
};

/// At most 16 hex digits: every `u64`, and no endless run of leading zeros.
const MAX_SIZE_DIGITS: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Size,
    /// Whitespace after the size, which must lead to `;`.
    SizeBws,
    ExtBeforeName,
    ExtName,
    ExtAfterName,
    ExtBeforeValue,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    /// Just after a quoted value's closing quote.
    ExtQuotedEnd,
    /// Whitespace after a value, which must lead to `;` (BWS): the grammar has none before
    /// the CRLF.
    ExtAfterValue,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    Trailers,
    /// Trailers were returned; `End` comes next.
    TrailersSent,
    Done,
}

#[derive(Debug)]
pub(super) struct ChunkedDecoder {
    step: Step,
    /// The size being read, then the bytes of chunk data still to come.
    size: u64,
    digits: u32,
    extensions: usize,
    max_extensions: usize,
    trailers: TrailerReader,
}

impl ChunkedDecoder {
    pub(super) fn new(limits: &Limits) -> Self {
        ChunkedDecoder {
            step: Step::Size,
            size: 0,
            digits: 0,
            extensions: 0,
            max_extensions: limits.get_max_chunk_extensions_size(),
            trailers: TrailerReader::new(limits),
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// Whether the decoder is inside a chunk's data, more of it to come.
    pub(super) fn is_mid_chunk(&self) -> bool {
        self.step == Step::Data
    }

    /// Decodes what `buf` holds, refusing a chunk that declares more than `allowed` bytes.
    /// The caller stops calling after an error: the state it leaves is not meaningful.
    pub(super) fn decode(
        &mut self,
        buf: &mut BytesMut,
        allowed: u64,
    ) -> Result<Option<BodyEvent>, Error> {
        loop {
            match self.step {
                Step::Done => return Ok(Some(BodyEvent::End)),
                Step::TrailersSent => {
                    self.step = Step::Done;
                    return Ok(Some(BodyEvent::End));
                }
                Step::Data => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = usize::try_from(self.size).map_or(buf.len(), |s| s.min(buf.len()));
                    self.size -= take as u64;
                    if self.size == 0 {
                        self.step = Step::DataCr;
                    }
                    return Ok(Some(BodyEvent::Data(buf.split_to(take).freeze())));
                }
                Step::Trailers => {
                    let Some(trailers) = self.trailers.read(buf)? else { return Ok(None) };
                    if trailers.is_empty() {
                        self.step = Step::Done;
                        return Ok(Some(BodyEvent::End));
                    }
                    self.step = Step::TrailersSent;
                    return Ok(Some(BodyEvent::Trailers(trailers)));
                }
                _ => {
                    let Some(&byte) = buf.first() else { return Ok(None) };
                    buf.advance(1);
                    self.step_line(byte)?;
                    // Checked with each digit, so a chunk too large for what is left of the
                    // body limit is refused from its size line, before its data is awaited.
                    if self.step == Step::Size && self.size > allowed {
                        return Err(ErrorKind::BodyTooLarge.into());
                    }
                }
            }
        }
    }

    /// Advances through the size line and the CRLF after chunk data, one byte.
    fn step_line(&mut self, b: u8) -> Result<(), Error> {
        let ws = b == b' ' || b == b'\t';
        if matches!(
            self.step,
            Step::SizeBws
                | Step::ExtBeforeName
                | Step::ExtName
                | Step::ExtAfterName
                | Step::ExtBeforeValue
                | Step::ExtToken
                | Step::ExtQuoted
                | Step::ExtQuotedEscape
                | Step::ExtQuotedEnd
                | Step::ExtAfterValue
        ) {
            self.extensions += 1;
            if self.extensions > self.max_extensions {
                return Err(ErrorKind::ChunkExtensionTooLarge.into());
            }
        }
        let ext_error = || -> Error { ErrorKind::ChunkExtension.into() };
        self.step = match (self.step, b) {
            (Step::Size, _) if b.is_ascii_hexdigit() => {
                self.digits += 1;
                if self.digits > MAX_SIZE_DIGITS {
                    return Err(ErrorKind::ChunkSize.into());
                }
                // Cannot overflow: at most 16 hex digits are read, and 16 fit in a u64.
                self.size = (self.size << 4) | u64::from(hex_value(b));
                Step::Size
            }
            (Step::Size, _) if self.digits == 0 => return Err(ErrorKind::ChunkSize.into()),
            (Step::Size, b'\r') => Step::SizeLf,
            (Step::Size, b';') => Step::ExtBeforeName,
            (Step::Size, _) if ws => Step::SizeBws,
            (Step::Size, _) => return Err(ErrorKind::ChunkSize.into()),
            (Step::SizeBws, b';') => Step::ExtBeforeName,
            (Step::SizeBws, _) if ws => Step::SizeBws,
            // `1 \r\n`: whitespace after the size may only precede an extension.
            (Step::SizeBws, _) => return Err(ErrorKind::ChunkSize.into()),
            (Step::ExtBeforeName, _) if ws => Step::ExtBeforeName,
            (Step::ExtBeforeName | Step::ExtName, _) if is_tchar(b) => Step::ExtName,
            (Step::ExtName | Step::ExtAfterName, b'=') => Step::ExtBeforeValue,
            (
                Step::ExtName
                | Step::ExtAfterName
                | Step::ExtToken
                | Step::ExtQuotedEnd
                | Step::ExtAfterValue,
                b';',
            ) => Step::ExtBeforeName,
            // Only where a name or a value has just ended: whitespace before the CRLF is
            // not BWS, and llhttp refuses it as `1 \r\n` is refused above.
            (Step::ExtName | Step::ExtToken | Step::ExtQuotedEnd, b'\r') => Step::SizeLf,
            (Step::ExtName | Step::ExtAfterName, _) if ws => Step::ExtAfterName,
            (Step::ExtBeforeValue, _) if ws => Step::ExtBeforeValue,
            (Step::ExtBeforeValue, b'"') => Step::ExtQuoted,
            (Step::ExtBeforeValue | Step::ExtToken, _) if is_tchar(b) => Step::ExtToken,
            (Step::ExtToken | Step::ExtQuotedEnd | Step::ExtAfterValue, _) if ws => {
                Step::ExtAfterValue
            }
            (Step::ExtQuoted, b'"') => Step::ExtQuotedEnd,
            (Step::ExtQuoted, b'\\') => Step::ExtQuotedEscape,
            (Step::ExtQuoted, _) if is_qdtext(b) => Step::ExtQuoted,
            (Step::ExtQuotedEscape, _) if ws || is_vchar_or_obs(b) => Step::ExtQuoted,
            (
                Step::ExtBeforeName
                | Step::ExtName
                | Step::ExtAfterName
                | Step::ExtBeforeValue
                | Step::ExtToken
                | Step::ExtQuoted
                | Step::ExtQuotedEscape
                | Step::ExtQuotedEnd
                | Step::ExtAfterValue,
                _,
            ) => return Err(ext_error()),
            (Step::SizeLf, b'\n') if self.size == 0 => Step::Trailers,
            (Step::SizeLf, b'\n') => Step::Data,
            (Step::SizeLf, _) => return Err(ErrorKind::ChunkSize.into()),
            (Step::DataCr, b'\r') => Step::DataLf,
            (Step::DataLf, b'\n') => {
                self.digits = 0;
                Step::Size
            }
            (Step::DataCr | Step::DataLf, _) => return Err(ErrorKind::ChunkData.into()),
            (Step::Data | Step::Trailers | Step::TrailersSent | Step::Done, _) => {
                unreachable!("handled by decode")
            }
        };
        Ok(())
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// `qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text` (RFC 9110 §5.6.4).
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

fn is_vchar_or_obs(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0x80..=0xff)
}

/// Collects the trailer section line by line, in time linear in its size, and parses it
/// once it is complete.
#[derive(Debug)]
struct TrailerReader {
    bytes: Vec<u8>,
    line_start: usize,
    lines: usize,
    max_size: usize,
    max_lines: usize,
    max_line: usize,
}

impl TrailerReader {
    fn new(limits: &Limits) -> Self {
        TrailerReader {
            bytes: Vec::new(),
            line_start: 0,
            lines: 0,
            max_size: limits.get_max_trailer_size(),
            max_lines: limits.get_max_headers(),
            max_line: limits.get_max_field_size(),
        }
    }

    /// Returns the trailers (perhaps none) once the empty line ending them has arrived.
    fn read(&mut self, buf: &mut BytesMut) -> Result<Option<HeaderMap>, Error> {
        loop {
            let Some(lf) = memchr(b'\n', buf) else {
                self.bytes.extend_from_slice(buf);
                buf.clear();
                self.check_partial()?;
                return Ok(None);
            };
            self.bytes.extend_from_slice(&buf[..=lf]);
            buf.advance(lf + 1);
            let line = &self.bytes[self.line_start..];
            if line.len() < 2 || line[line.len() - 2] != b'\r' {
                return Err(ErrorKind::Trailer.into());
            }
            if line.len() == 2 {
                return self.parse().map(Some);
            }
            self.lines += 1;
            // The limits count what they count in a head: a field line without its CRLF,
            // and the section's field lines with theirs.
            if line.len() - 2 > self.max_line
                || self.lines > self.max_lines
                || self.bytes.len() > self.max_size
            {
                return Err(ErrorKind::TrailerTooLarge.into());
            }
            self.line_start = self.bytes.len();
        }
    }

    /// Applies the limits to a line still arriving. A CR at the end may be the start of the
    /// line's CRLF, so it is not counted yet; the verdict is the same however the bytes
    /// were split.
    fn check_partial(&self) -> Result<(), Error> {
        let mut len = self.bytes.len();
        if self.bytes.last() == Some(&b'\r') {
            len -= 1;
        }
        if len - self.line_start > self.max_line || len > self.max_size {
            return Err(ErrorKind::TrailerTooLarge.into());
        }
        Ok(())
    }

    fn parse(&self) -> Result<HeaderMap, Error> {
        let mut map = HeaderMap::new();
        if self.lines == 0 {
            return Ok(map);
        }
        let mut storage = vec![httparse::EMPTY_HEADER; self.lines];
        let Ok(httparse::Status::Complete((_, fields))) =
            httparse::parse_headers(&self.bytes, &mut storage)
        else {
            return Err(ErrorKind::Trailer.into());
        };
        for field in fields {
            let name = HeaderName::from_bytes(field.name.as_bytes());
            let value = HeaderValue::from_bytes(field.value);
            let (Ok(name), Ok(value)) = (name, value) else {
                return Err(ErrorKind::Trailer.into());
            };
            map.append(name, value);
        }
        Ok(map)
    }
}
