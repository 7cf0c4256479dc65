//! Decoding a request body's `Content-Encoding` (gzip, deflate, br) inside the size limit.
//!
//! The decoders write into a buffer that refuses to grow past `client_max_size`, so a
//! compression bomb (aiohttp CVE-2025-69223: a megabyte that inflates to gigabytes) costs
//! at most the limit in memory before it is answered with 413 (`docs/security.md`, B34).
//! A `br` body's window, which its decoder allocates whole before any output, is held to
//! `brotli_window_log_max` at the body's first byte (tandem-io's [`BrotliDecoder`], the
//! client's too), so a few bytes declaring brotli's 1 GiB large window are a 400.
//!
//! Without the `compression` feature there are no decoders: [`Inflater`] has no value and
//! every coding but `identity` is refused with 415, as an unknown one is.

#[cfg(feature = "compression")]
use std::io::{self, Write};

#[cfg(feature = "compression")]
use flate2::write::{MultiGzDecoder, ZlibDecoder};
#[cfg(feature = "compression")]
use tandem_io::BrotliDecoder;

use crate::HttpError;

/// A buffer that refuses to hold more than its limit.
#[cfg(feature = "compression")]
pub(crate) struct Bounded {
    out: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

#[cfg(feature = "compression")]
impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("decoded body over the limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A streaming decoder for one request body.
#[cfg(feature = "compression")]
pub(crate) enum Inflater {
    Gzip(MultiGzDecoder<Bounded>),
    Deflate(ZlibDecoder<Bounded>),
    Brotli { decoder: Box<BrotliDecoder>, out: Bounded },
}

#[cfg(feature = "compression")]
impl Inflater {
    /// The decoder for `coding`, or `None` for `identity`; a `br` body may declare a window of
    /// at most 2^`brotli_window_log_max` bytes. Any other coding is a 415.
    pub(crate) fn for_coding(
        coding: &str,
        limit: usize,
        brotli_window_log_max: u32,
    ) -> Result<Option<Inflater>, HttpError> {
        let out = Bounded { out: Vec::new(), limit, exceeded: false };
        Ok(Some(match coding.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => return Ok(None),
            "gzip" | "x-gzip" => Inflater::Gzip(MultiGzDecoder::new(out)),
            "deflate" => Inflater::Deflate(ZlibDecoder::new(out)),
            "br" => Inflater::Brotli {
                decoder: Box::new(BrotliDecoder::new(brotli_window_log_max)),
                out,
            },
            _ => return Err(unsupported()),
        }))
    }

    /// Feeds compressed bytes in.
    pub(crate) fn write(&mut self, chunk: &[u8], limit: usize) -> Result<(), HttpError> {
        let result = match self {
            Inflater::Gzip(d) => d.write_all(chunk),
            Inflater::Deflate(d) => d.write_all(chunk),
            // Never full: `Bounded` refuses what passes the limit.
            Inflater::Brotli { decoder, out } => {
                decoder.decode_into(chunk, out, |_| false).map(drop)
            }
        };
        result.map_err(|_| self.error(limit))
    }

    /// Ends the stream and returns the decoded body.
    pub(crate) fn finish(mut self, limit: usize) -> Result<Vec<u8>, HttpError> {
        // Flushing may write the last of the output, and so pass the limit: look before
        // the decoder is consumed.
        let flushed = match &mut self {
            Inflater::Gzip(d) => d.try_finish(),
            Inflater::Deflate(d) => d.try_finish(),
            Inflater::Brotli { decoder, out } => decoder.finish(out, |_| false),
        };
        if flushed.is_err() {
            return Err(self.error(limit));
        }
        let out = match self {
            Inflater::Gzip(d) => d.finish(),
            Inflater::Deflate(d) => d.finish(),
            Inflater::Brotli { out, .. } => Ok(out),
        };
        match out {
            Ok(bounded) if !bounded.exceeded => Ok(bounded.out),
            Ok(_) => Err(HttpError::payload_too_large(limit, None)),
            Err(_) => Err(HttpError::bad_request().with_text("400: body does not decode")),
        }
    }

    fn error(&self, limit: usize) -> HttpError {
        let exceeded = match self {
            Inflater::Gzip(d) => d.get_ref().exceeded,
            Inflater::Deflate(d) => d.get_ref().exceeded,
            Inflater::Brotli { out, .. } => out.exceeded,
        };
        if exceeded {
            HttpError::payload_too_large(limit, None)
        } else {
            HttpError::bad_request().with_text("400: body does not decode")
        }
    }
}

/// Without the `compression` feature there is never a decoder.
#[cfg(not(feature = "compression"))]
pub(crate) struct Inflater {
    never: std::convert::Infallible,
}

#[cfg(not(feature = "compression"))]
impl Inflater {
    /// `None` for `identity`; any other coding is a 415.
    pub(crate) fn for_coding(
        coding: &str,
        _limit: usize,
        _brotli_window_log_max: u32,
    ) -> Result<Option<Inflater>, HttpError> {
        let coding = coding.trim();
        if coding.is_empty() || coding.eq_ignore_ascii_case("identity") {
            Ok(None)
        } else {
            Err(unsupported())
        }
    }

    pub(crate) fn write(&mut self, _chunk: &[u8], _limit: usize) -> Result<(), HttpError> {
        match self.never {}
    }

    pub(crate) fn finish(self, _limit: usize) -> Result<Vec<u8>, HttpError> {
        match self.never {}
    }
}

impl Inflater {
    /// The decoder for a message's `Content-Encoding` field values, read as one list: two
    /// fields name two codings, as `gzip, br` in one field does (a 415, as one coding is
    /// decoded at most), never the first alone. A value that is not text is a 415 too.
    pub(crate) fn for_fields<'a>(
        mut values: impl Iterator<Item = &'a [u8]>,
        limit: usize,
        brotli_window_log_max: u32,
    ) -> Result<Option<Inflater>, HttpError> {
        let coding = match (values.next(), values.next()) {
            (None, _) => "",
            (Some(one), None) => std::str::from_utf8(one).map_err(|_| unsupported())?,
            (Some(_), Some(_)) => return Err(unsupported()),
        };
        Self::for_coding(coding, limit, brotli_window_log_max)
    }
}

fn unsupported() -> HttpError {
    HttpError::new(http::StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .with_text("415: unsupported Content-Encoding")
}

#[cfg(all(test, not(feature = "compression")))]
mod identity_only {
    use super::Inflater;

    #[test]
    fn every_coding_but_identity_is_415() {
        assert!(Inflater::for_coding(" Identity ", 10, 24).unwrap().is_none());
        assert!(Inflater::for_coding("", 10, 24).unwrap().is_none());
        assert_eq!(
            Inflater::for_coding("gzip", 10, 24).err().map(|e| e.status().as_u16()),
            Some(415)
        );
    }
}

#[cfg(all(test, feature = "compression"))]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// `Content-Encoding: gzip` then `Content-Encoding: br` was decoded as gzip alone (the
    /// first field), where `gzip, br` in one field is a 415.
    #[test]
    fn codings_in_several_fields_are_one_list() {
        let refused = |values: &[&[u8]]| {
            Inflater::for_fields(values.iter().copied(), 1024, 24)
                .err()
                .map(|e| e.status().as_u16())
        };
        assert_eq!(refused(&[b"gzip", b"br"]), Some(415));
        assert_eq!(refused(&[b"gzip", b"gzip"]), Some(415));
        assert_eq!(refused(&[b"gzip, br"]), Some(415));
        assert_eq!(refused(&[b"gz\xffip"]), Some(415));
        assert!(Inflater::for_fields([&b"gzip"[..]].into_iter(), 1024, 24).unwrap().is_some());
        assert!(Inflater::for_fields(std::iter::empty(), 1024, 24).unwrap().is_none());
    }

    #[test]
    fn decodes_within_the_limit_and_refuses_a_bomb() {
        let body = gzip(b"hello, hello, hello");
        let mut inflater = Inflater::for_coding("gzip", 1024, 24).unwrap().unwrap();
        inflater.write(&body, 1024).unwrap();
        assert_eq!(inflater.finish(1024).unwrap(), b"hello, hello, hello");

        // 16 MiB of zeros compresses to about 16 KiB; the limit stops it at 1 MiB.
        let bomb = gzip(&vec![0; 16 << 20]);
        let mut inflater = Inflater::for_coding("gzip", 1 << 20, 24).unwrap().unwrap();
        let err = bomb.chunks(4096).try_for_each(|c| inflater.write(c, 1 << 20)).unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn unknown_codings_are_415_and_garbage_is_400() {
        assert_eq!(
            Inflater::for_coding("zip", 10, 24).err().map(|e| e.status().as_u16()),
            Some(415)
        );
        assert!(Inflater::for_coding("identity", 10, 24).unwrap().is_none());
        let mut inflater = Inflater::for_coding("deflate", 1024, 24).unwrap().unwrap();
        let err =
            inflater.write(b"not zlib at all", 1024).and_then(|()| inflater.finish(1024).map(drop));
        assert_eq!(err.unwrap_err().status(), 400);
    }
}
