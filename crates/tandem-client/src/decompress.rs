//! Streaming decompression of response bodies, bounded in output.
//!
//! Each decoder writes into a [`Sink`] that refuses to grow past the bound, so a bomb (1 MiB
//! of gzip that inflates to 1 GiB, thousands of gzip members, a brotli or zstd bomb) stops
//! with a payload error after at most `max` bytes of output, whatever size the input chunks
//! are. One call decodes only until it has [`MAX_DECODED_PIECE`] bytes of output, keeping
//! the rest of its input for the next, so a streaming reader's pieces are that small however
//! far the coding lets a few bytes expand (a zstd RLE block is 4 bytes for 128 KiB, a brotli
//! command a few bytes for 16 MiB). The decoders' own memory is bounded too: a zstd frame
//! asking for a window over [`DEFAULT_ZSTD_WINDOW_LOG_MAX`], or a brotli stream declaring one
//! over [`DEFAULT_BROTLI_WINDOW_LOG_MAX`], is refused before anything is allocated for it.
//!
//! gzip and deflate go through flate2, br through the brotli crate, and zstd through ruzstd,
//! a pure-Rust decoder, so the default features compile no C library (libzstd is a long C
//! build) for a coding the client only decodes.
//!
//! Without the `compression` feature there are no decoders: [`Decompressor`] has no value,
//! the session advertises `Accept-Encoding: identity`, and an encoded body is handed over as
//! it came, as aiohttp does with `auto_decompress=False`.

#[cfg(feature = "compression")]
use std::io::{self, Write};

#[cfg(feature = "compression")]
use bytes::Buf;
use bytes::Bytes;
#[cfg(feature = "compression")]
use flate2::{
    Decompress,
    write::{MultiGzDecoder, ZlibDecoder},
};
#[cfg(feature = "compression")]
use tandem_io::BrotliDecoder;
pub use tandem_io::DEFAULT_BROTLI_WINDOW_LOG_MAX;

use crate::error::Error;
#[cfg(feature = "compression")]
use crate::error::Kind;

#[cfg(feature = "compression")]
mod zstd_stream;

/// What the session asks for when `auto_decompress` is on: every coding it can decode (zstd
/// too, as aiohttp 3.12+ advertises it when it can decode it).
#[cfg(feature = "compression")]
pub(crate) const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";
/// Nothing can be decoded without the `compression` feature.
#[cfg(not(feature = "compression"))]
pub(crate) const ACCEPT_ENCODING: &str = "identity";

/// aiohttp's bound on the decompressed size is per read; ours is on the whole body: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: u64 = 64 * 1024 * 1024;

/// The most output one step of decoding gives a reader: 256 KiB, aiohttp's bound on one
/// read's decompressed output. Fixed: it is the size of a piece, not a limit on the body.
#[cfg(feature = "compression")]
const MAX_DECODED_PIECE: usize = 256 * 1024;

/// The largest zstd window a response may ask for, as a power of two: 2^23 = 8 MiB, the
/// most RFC 9659 lets an HTTP `zstd` encoder use (a decoder would otherwise accept 128 MiB
/// and allocate it for a hostile frame).
pub const DEFAULT_ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// The bounds one body is decoded under.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(
    not(feature = "compression"),
    allow(dead_code, reason = "the session sets them whether or not there are decoders")
)]
pub(crate) struct Limits {
    /// The most bytes the body may decode to.
    pub(crate) max_size: u64,
    /// The largest zstd window, as a power of two.
    pub(crate) zstd_window_log_max: u32,
    /// The largest brotli window, as a power of two.
    pub(crate) brotli_window_log_max: u32,
}

/// Collects decoded output, refusing to hold more than `max` bytes in all.
#[cfg(feature = "compression")]
#[derive(Debug)]
struct Sink {
    out: Vec<u8>,
    total: u64,
    max: u64,
}

#[cfg(feature = "compression")]
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.total += buf.len() as u64;
        if self.total > self.max {
            return Err(io::Error::other(TooLarge));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "compression")]
impl Sink {
    /// Whether this step's piece is whole: decoding stops for now.
    fn full(&self) -> bool {
        self.out.len() >= MAX_DECODED_PIECE
    }
}

#[cfg(feature = "compression")]
#[derive(Debug)]
struct TooLarge;

#[cfg(feature = "compression")]
impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed body exceeds max_decompressed_size")
    }
}

#[cfg(feature = "compression")]
impl std::error::Error for TooLarge {}

#[cfg(feature = "compression")]
enum Codec {
    Gzip(MultiGzDecoder<Sink>),
    /// `deflate`, zlib-wrapped or raw: flate2's writer over a `Decompress` made for the one
    /// that came (its `ZlibDecoder` is only the writer; the wrapping is the `Decompress`'s).
    Deflate(ZlibDecoder<Sink>),
    /// `deflate` before its first two bytes arrive (the first is kept here if it came
    /// alone): aiohttp accepts both zlib-wrapped and raw deflate under that name, since
    /// servers send both, and those two bytes tell which.
    DeflateUnknown {
        max: u64,
        first: Option<u8>,
    },
    Brotli {
        decoder: Box<BrotliDecoder>,
        out: Sink,
    },
    Zstd(Box<zstd_stream::ZstdDecoder<Sink>>),
}

/// One body's decoder for a `Content-Encoding`.
#[cfg(feature = "compression")]
pub(crate) struct Decompressor {
    codec: Codec,
}

/// Without the `compression` feature there is never a decoder.
#[cfg(not(feature = "compression"))]
pub(crate) struct Decompressor {
    never: std::convert::Infallible,
}

#[cfg(not(feature = "compression"))]
impl Decompressor {
    /// `None`: every body is passed through.
    pub(crate) fn for_coding(_coding: &[u8], _limits: Limits) -> Option<Self> {
        None
    }

    pub(crate) fn decode(&mut self, _input: &mut Bytes) -> Result<Bytes, Error> {
        match self.never {}
    }

    pub(crate) fn finish(&mut self) -> Result<Bytes, Error> {
        match self.never {}
    }
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decompressor")
    }
}

#[cfg(feature = "compression")]
fn sink(max: u64) -> Sink {
    Sink { out: Vec::new(), total: 0, max }
}

#[cfg(feature = "compression")]
impl Decompressor {
    /// A decoder for `coding`, or `None` for identity or a coding we do not know (which is
    /// passed through, as aiohttp does).
    pub(crate) fn for_coding(coding: &[u8], limits: Limits) -> Option<Self> {
        let max = limits.max_size;
        let coding = coding.trim_ascii();
        let codec =
            if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
                Codec::Gzip(MultiGzDecoder::new(sink(max)))
            } else if coding.eq_ignore_ascii_case(b"deflate") {
                Codec::DeflateUnknown { max, first: None }
            } else if coding.eq_ignore_ascii_case(b"br") {
                Codec::Brotli {
                    decoder: Box::new(BrotliDecoder::new(limits.brotli_window_log_max)),
                    out: sink(max),
                }
            } else if coding.eq_ignore_ascii_case(b"zstd") {
                Codec::Zstd(Box::new(zstd_stream::ZstdDecoder::new(
                    sink(max),
                    limits.zstd_window_log_max,
                )))
            } else {
                return None;
            };
        Some(Decompressor { codec })
    }

    /// Decodes from `input` until the output is [`MAX_DECODED_PIECE`] bytes, advancing
    /// `input` past what it took, and returns the output. Called again (with the rest of
    /// the input, more, or none) it goes on; it returns nothing only once it has taken all of
    /// `input` and holds no output it could give.
    pub(crate) fn decode(&mut self, input: &mut Bytes) -> Result<Bytes, Error> {
        if let Codec::DeflateUnknown { max, first } = self.codec {
            let (a, b) = match (first, input.first(), input.get(1)) {
                (Some(a), Some(&b), _) | (None, Some(&a), Some(&b)) => (a, b),
                (None, Some(&a), None) => {
                    self.codec = Codec::DeflateUnknown { max, first: Some(a) };
                    input.advance(1);
                    return Ok(Bytes::new());
                }
                (_, None, _) => return Ok(Bytes::new()),
            };
            // A zlib stream starts with CM = 8 and a header that is a multiple of 31.
            let zlib = a & 0x0f == 8 && (u16::from(a) << 8 | u16::from(b)) % 31 == 0;
            let mut d = ZlibDecoder::new_with_decompress(sink(max), Decompress::new(zlib));
            let written = first.map_or(Ok(()), |a| d.write_all(&[a]));
            self.codec = Codec::Deflate(d);
            written.map_err(payload)?;
        }
        let taken = match &mut self.codec {
            Codec::Gzip(d) => feed(d, input, |d| d.get_ref().full()),
            Codec::Deflate(d) => feed(d, input, |d| d.get_ref().full()),
            Codec::Brotli { decoder, out } => decoder.decode_into(input, out, Sink::full),
            Codec::Zstd(d) => d.write_some(input, Sink::full),
            Codec::DeflateUnknown { .. } => unreachable!("resolved above"),
        };
        input.advance(taken.map_err(payload)?);
        Ok(self.take())
    }

    /// Ends the stream: flushes what the decoder still holds.
    pub(crate) fn finish(&mut self) -> Result<Bytes, Error> {
        let result = match &mut self.codec {
            Codec::Gzip(d) => d.try_finish(),
            Codec::Deflate(d) => d.try_finish(),
            Codec::Brotli { decoder, out } => decoder.finish(out, Sink::full),
            // An `UnexpectedEof` error if the body ended inside a frame.
            Codec::Zstd(d) => d.finish(),
            // One byte is no deflate stream; none is an empty body.
            Codec::DeflateUnknown { first, .. } => match first {
                Some(_) => {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "deflate body of one byte"))
                }
                None => Ok(()),
            },
        };
        result.map_err(payload)?;
        Ok(self.take())
    }

    fn take(&mut self) -> Bytes {
        let sink = match &mut self.codec {
            Codec::Gzip(d) => d.get_mut(),
            Codec::Deflate(d) => d.get_mut(),
            Codec::Brotli { out, .. } => out,
            Codec::Zstd(d) => d.get_mut(),
            Codec::DeflateUnknown { .. } => return Bytes::new(),
        };
        Bytes::from(std::mem::take(&mut sink.out))
    }
}

/// Writes `input` into a flate2 decoder until `full` says its sink holds a piece, and
/// returns how much of `input` it took. Each `write` decodes at most flate2's own buffer
/// (32 KiB) of output, so the piece ends close to the bound.
#[cfg(feature = "compression")]
fn feed<D: Write>(d: &mut D, input: &[u8], full: impl Fn(&D) -> bool) -> io::Result<usize> {
    let mut taken = 0;
    while taken < input.len() && !full(d) {
        match d.write(&input[taken..])? {
            // The stream ended and bytes follow it.
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => taken += n,
        }
    }
    Ok(taken)
}

#[cfg(feature = "compression")]
fn payload(e: io::Error) -> Error {
    Error::new(Kind::Payload, e)
}

#[cfg(all(test, feature = "compression"))]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder, write::ZlibEncoder};

    fn limits(max_size: u64) -> Limits {
        Limits {
            max_size,
            zstd_window_log_max: DEFAULT_ZSTD_WINDOW_LOG_MAX,
            brotli_window_log_max: DEFAULT_BROTLI_WINDOW_LOG_MAX,
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Decodes `input` handed over `step` bytes at a time, as a reader would: each chunk
    /// until it is taken and its output given, every piece within the bound.
    fn decode_all(d: &mut Decompressor, input: &[u8], step: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            let mut chunk = Bytes::copy_from_slice(chunk);
            loop {
                let piece = d.decode(&mut chunk)?;
                assert!(piece.len() <= MAX_DECODED_PIECE + 32 * 1024, "{} bytes", piece.len());
                if piece.is_empty() {
                    break;
                }
                out.extend_from_slice(&piece);
            }
            assert!(chunk.is_empty());
        }
        out.extend_from_slice(&d.finish()?);
        Ok(out)
    }

    #[test]
    fn gzip_split_anywhere() {
        let data = b"hello hello hello hello".repeat(100);
        let z = gzip(&data);
        for step in [1, 7, z.len()] {
            let mut d = Decompressor::for_coding(b"gzip", limits(1 << 20)).unwrap();
            assert_eq!(decode_all(&mut d, &z, step).unwrap(), data);
        }
    }

    /// `deflate` bodies zlib-wrapped and raw, in any pieces: the wrapping is told from the
    /// first two bytes even when they come one at a time.
    #[test]
    fn deflate_zlib_and_raw() {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(b"zlib body").unwrap();
        let zlib = e.finish().unwrap();
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(b"raw body").unwrap();
        let raw = e.finish().unwrap();
        for step in [1, 2, 100] {
            let mut d = Decompressor::for_coding(b"deflate", limits(1 << 20)).unwrap();
            assert_eq!(decode_all(&mut d, &zlib, step).unwrap(), b"zlib body", "{step}");
            let mut d = Decompressor::for_coding(b"Deflate", limits(1 << 20)).unwrap();
            assert_eq!(decode_all(&mut d, &raw, step).unwrap(), b"raw body", "{step}");
        }
        // One byte, then the end: not a deflate stream.
        let mut d = Decompressor::for_coding(b"deflate", limits(1 << 20)).unwrap();
        assert!(decode_all(&mut d, &zlib[..1], 1).unwrap_err().is_payload());
    }

    #[test]
    fn bomb_is_bounded() {
        let z = gzip(&vec![0; 10 << 20]);
        let mut d = Decompressor::for_coding(b"gzip", limits(1 << 20)).unwrap();
        assert!(decode_all(&mut d, &z, 4096).unwrap_err().is_payload());
    }

    /// Every coding's bomb (4 MiB of zeros) stops at `max_size` with a payload error that
    /// says so, its pieces within the bound on the way; deflate both zlib-wrapped and raw.
    #[test]
    fn every_codings_bomb_stops_at_the_bound() {
        let zeros = vec![0u8; 4 << 20];
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(&zeros).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(&zeros).unwrap();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&zeros).unwrap();
        }
        let bombs = [
            (&b"gzip"[..], gzip(&zeros)),
            (b"deflate", zlib.finish().unwrap()),
            (b"deflate", raw.finish().unwrap()),
            (b"br", br),
            (b"zstd", zstd::encode_all(&zeros[..], 3).unwrap()),
        ];
        for (coding, bomb) in bombs {
            let mut d = Decompressor::for_coding(coding, limits(1 << 20)).unwrap();
            let e = decode_all(&mut d, &bomb, 64 * 1024).unwrap_err();
            assert!(e.is_payload(), "{e}");
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            assert!(cause.is_some_and(|c| c.contains("max_decompressed_size")), "{e:?}");
        }
    }

    #[test]
    fn many_members_are_bounded() {
        let member = gzip(&[b'a'; 1000]);
        let z = member.repeat(2000);
        let mut d = Decompressor::for_coding(b"gzip", limits(100_000)).unwrap();
        assert!(decode_all(&mut d, &z, 8192).unwrap_err().is_payload());
        let mut d = Decompressor::for_coding(b"gzip", limits(10_000_000)).unwrap();
        assert_eq!(decode_all(&mut d, &z, 8192).unwrap().len(), 2_000_000);
    }

    #[test]
    fn brotli_round_trip_and_bound() {
        let data = vec![b'x'; 1 << 20];
        let mut z = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut z, 4096, 5, 22);
            w.write_all(&data).unwrap();
        }
        let mut d = Decompressor::for_coding(b"br", limits(2 << 20)).unwrap();
        assert_eq!(decode_all(&mut d, &z, 1000).unwrap().len(), 1 << 20);
        let mut d = Decompressor::for_coding(b"br", limits(1000)).unwrap();
        assert!(decode_all(&mut d, &z, 1000).unwrap_err().is_payload());
    }

    #[test]
    fn truncated_streams_are_errors() {
        let z = gzip(&b"some text that compresses ".repeat(100));
        let mut d = Decompressor::for_coding(b"gzip", limits(1 << 20)).unwrap();
        assert!(decode_all(&mut d, &z[..z.len() / 2], 100).unwrap_err().is_payload());
        let mut z = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut z, 4096, 5, 22);
            w.write_all(&b"some text that compresses ".repeat(100)).unwrap();
        }
        let mut d = Decompressor::for_coding(b"br", limits(1 << 20)).unwrap();
        assert!(decode_all(&mut d, &z[..z.len() / 2], 100).unwrap_err().is_payload());
    }

    #[test]
    fn unknown_codings_pass_through() {
        assert!(Decompressor::for_coding(b"identity", limits(1)).is_none());
        assert!(Decompressor::for_coding(b"compress", limits(1)).is_none());
    }

    #[test]
    fn zstd_split_anywhere_and_bounded() {
        let data = b"zstd zstd zstd zstd ".repeat(1000);
        let z = zstd::encode_all(&data[..], 3).unwrap();
        for step in [1, 13, z.len()] {
            let mut d = Decompressor::for_coding(b"ZSTD", limits(1 << 20)).unwrap();
            assert_eq!(decode_all(&mut d, &z, step).unwrap(), data);
        }
        // Two frames back to back are one body, as for gzip members.
        let two = [z.clone(), z.clone()].concat();
        let mut d = Decompressor::for_coding(b"zstd", limits(1 << 20)).unwrap();
        assert_eq!(decode_all(&mut d, &two, 4096).unwrap().len(), 2 * data.len());
        // A bomb: 10 MiB of zeros is a few hundred bytes of zstd.
        let bomb = zstd::encode_all(&vec![0u8; 10 << 20][..], 19).unwrap();
        assert!(bomb.len() < 4096);
        let mut d = Decompressor::for_coding(b"zstd", limits(1 << 20)).unwrap();
        assert!(decode_all(&mut d, &bomb, 1000).unwrap_err().is_payload());
        // A frame cut short.
        let mut d = Decompressor::for_coding(b"zstd", limits(1 << 20)).unwrap();
        assert!(decode_all(&mut d, &z[..z.len() - 3], 100).unwrap_err().is_payload());
    }

    #[test]
    fn zstd_window_over_the_limit_is_refused() {
        // A frame compressed with a 2^24 window (long-distance mode) over 32 MiB of input,
        // so the window is really used: one over the RFC 9659 limit of 2^23.
        let mut data = Vec::new();
        let mut x: u32 = 1;
        for _ in 0..(1 << 20) {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            data.extend_from_slice(&x.to_le_bytes());
        }
        let data = data.repeat(8);
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        encoder.window_log(24).unwrap();
        encoder.long_distance_matching(true).unwrap();
        encoder.write_all(&data).unwrap();
        let z = encoder.finish().unwrap();
        let mut d = Decompressor::for_coding(b"zstd", limits(1 << 30)).unwrap();
        assert!(decode_all(&mut d, &z, 1 << 16).unwrap_err().is_payload());
        let mut d = Decompressor::for_coding(
            b"zstd",
            Limits { zstd_window_log_max: 24, ..limits(1 << 30) },
        )
        .unwrap();
        assert_eq!(decode_all(&mut d, &z, 1 << 16).unwrap().len(), data.len());
    }

    /// A brotli body of a few bytes declaring the largest RFC 7932 window made the decoder
    /// allocate 16 MiB, and one declaring the large-window extension's 2^30, 1 GiB (counted
    /// by hand with a counting allocator): a window over `brotli_window_log_max` is refused
    /// at the stream's first byte, before the decoder sees it, and the large-window
    /// extension always is. Every window RFC 7932 allows decodes under the default.
    #[test]
    fn brotli_windows_over_the_limit_are_refused() {
        let body = b"hello, hello, hello";
        let br = |lgwin: u32, large_window: bool| {
            let lgwin = i32::try_from(lgwin).unwrap();
            let params =
                brotli::enc::BrotliEncoderParams { lgwin, large_window, ..Default::default() };
            let mut out = Vec::new();
            let mut w = brotli::CompressorWriter::with_params(&mut out, 4096, &params);
            w.write_all(body).unwrap();
            drop(w);
            out
        };
        let with_max = |log| Limits { brotli_window_log_max: log, ..limits(1 << 20) };
        let refusal = |z: &[u8], limits| {
            let mut d = Decompressor::for_coding(b"br", limits).unwrap();
            let e = d.decode(&mut Bytes::copy_from_slice(z)).unwrap_err();
            assert!(e.is_payload(), "{e}");
            std::error::Error::source(&e).unwrap().to_string()
        };
        for lgwin in [10u32, 16, 17, 18, 22, 24] {
            let z = br(lgwin, false);
            let mut d = Decompressor::for_coding(b"br", limits(1 << 20)).unwrap();
            assert_eq!(decode_all(&mut d, &z, 1).unwrap(), body, "window 2^{lgwin}");
        }
        let large = br(30, true);
        assert!(refusal(&large, limits(1 << 20)).contains("large-window"));
        assert!(refusal(&large, with_max(30)).contains("large-window"));
        let cause = refusal(&br(24, false), with_max(22));
        assert!(cause.contains("brotli_window_log_max (22)"), "{cause}");
        let mut d = Decompressor::for_coding(b"br", with_max(22)).unwrap();
        assert_eq!(decode_all(&mut d, &br(22, false), 7).unwrap(), body);
    }
}
