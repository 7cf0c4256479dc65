//! [`BrotliDecoder`]: a `br` body decoded with its window bounded, for the client's response
//! bodies and the server's request bodies.
//!
//! The brotli decoder allocates the whole window a stream declares before its first output,
//! and its default state also takes brotli's large-window extension (up to 2^30, 1 GiB): a
//! body of a few bytes would cost that however small the decoded-size limit. Here the window
//! is read from the stream's first byte and refused past a maximum before the decoder sees
//! it, and the decoder is the strict one, which refuses the large-window extension (not `br`,
//! RFC 7932) however it comes.

use std::io::{self, Write};

use brotli::{BrotliDecompressStream, BrotliResult, BrotliState, enc::StandardAlloc};

/// A brotli decoder driven through the crate's streaming call, which stops when its output
/// buffer is full and says how much input it took: the crate's `Write` adapter decodes all it
/// is given at once, and one brotli command of a few bytes may copy 16 MiB.
pub struct BrotliDecoder {
    state: BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
    /// The largest window allowed, until the stream's first byte has declared one within it.
    unchecked_window_log_max: Option<u32>,
    buf: Box<[u8]>,
    total_out: usize,
    done: bool,
}

impl std::fmt::Debug for BrotliDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrotliDecoder").field("done", &self.done).finish_non_exhaustive()
    }
}

impl BrotliDecoder {
    /// A decoder for a stream whose window may be at most 2^`window_log_max` bytes
    /// ([`DEFAULT_BROTLI_WINDOW_LOG_MAX`](crate::DEFAULT_BROTLI_WINDOW_LOG_MAX) lets every
    /// `br` stream through).
    pub fn new(window_log_max: u32) -> Self {
        let alloc = StandardAlloc::default;
        BrotliDecoder {
            // Strict: `BrotliState::new` also takes the large-window extension.
            state: BrotliState::new_strict(alloc(), alloc(), alloc()),
            unchecked_window_log_max: Some(window_log_max),
            buf: vec![0; 16 * 1024].into_boxed_slice(),
            total_out: 0,
            done: false,
        }
    }

    /// Decodes from `input` into `out` until `full(out)` or the input is all taken (and none
    /// of its output waits); returns how much of `input` it took. An error of `out`'s is
    /// returned as it came; a window over the maximum, malformed data or bytes after the
    /// stream's end are `InvalidData` errors.
    pub fn decode_into<W: Write>(
        &mut self,
        input: &[u8],
        out: &mut W,
        full: impl Fn(&W) -> bool,
    ) -> io::Result<usize> {
        if let Some(max) = self.unchecked_window_log_max
            && let Some(&first) = input.first()
        {
            match declared_window_log(first) {
                Some(log) if log <= max => self.unchecked_window_log_max = None,
                Some(log) => {
                    return Err(invalid_data(&format!(
                        "brotli window of 2^{log} bytes is over brotli_window_log_max ({max})"
                    )));
                }
                None => return Err(invalid_data("brotli large-window stream, which is not br")),
            }
        }
        let (mut available, mut taken) = (input.len(), 0);
        while !full(out) {
            if self.done {
                if available > 0 {
                    return Err(invalid_data("bytes after the end of the brotli stream"));
                }
                break;
            }
            let (mut room, mut produced) = (self.buf.len(), 0);
            let result = BrotliDecompressStream(
                &mut available,
                &mut taken,
                input,
                &mut room,
                &mut produced,
                &mut self.buf,
                &mut self.total_out,
                &mut self.state,
            );
            out.write_all(&self.buf[..produced])?;
            match result {
                BrotliResult::NeedsMoreInput => break,
                BrotliResult::NeedsMoreOutput => {}
                BrotliResult::ResultSuccess => self.done = true,
                BrotliResult::ResultFailure => return Err(invalid_data("malformed brotli data")),
            }
        }
        Ok(taken)
    }

    /// The body ended: writes what the decoder still holds into `out` (until `full(out)`),
    /// and is an `UnexpectedEof` error if the stream did not end.
    pub fn finish<W: Write>(&mut self, out: &mut W, full: impl Fn(&W) -> bool) -> io::Result<()> {
        self.decode_into(&[], out, full)?;
        if self.done {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::UnexpectedEof, "brotli body ended inside its stream"))
        }
    }
}

/// The window a brotli stream declares in its first bits (RFC 7932 9.1, least significant
/// first), as a power of two; `None` for the one pattern RFC 7932 leaves invalid, which
/// brotli's large-window extension took as its marker.
fn declared_window_log(first: u8) -> Option<u32> {
    if first & 1 == 0 {
        return Some(16);
    }
    match (first >> 1) & 7 {
        0 => {}
        n => return Some(17 + u32::from(n)),
    }
    match (first >> 4) & 7 {
        0 => Some(17),
        1 => None,
        m => Some(8 + u32::from(m)),
    }
}

fn invalid_data(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"hello, hello, hello";

    fn br(lgwin: u32, large_window: bool) -> Vec<u8> {
        let lgwin = i32::try_from(lgwin).unwrap();
        let params = brotli::enc::BrotliEncoderParams { lgwin, large_window, ..Default::default() };
        let mut out = Vec::new();
        let mut w = brotli::CompressorWriter::with_params(&mut out, 4096, &params);
        w.write_all(BODY).unwrap();
        drop(w);
        out
    }

    fn decode(z: &[u8], window_log_max: u32) -> io::Result<Vec<u8>> {
        let mut d = BrotliDecoder::new(window_log_max);
        let mut out = Vec::new();
        for byte in z.chunks(1) {
            assert_eq!(d.decode_into(byte, &mut out, |_| false)?, 1);
        }
        d.finish(&mut out, |_| false)?;
        Ok(out)
    }

    /// Every window RFC 7932 allows is read from the first byte as the encoder declared it,
    /// and decodes within a maximum at least as large; a larger window, or the large-window
    /// extension at any maximum, is refused at the first byte, so the decoder never sees it.
    #[test]
    fn the_declared_window_is_read_and_bounded_at_the_first_byte() {
        for lgwin in [10u32, 16, 17, 18, 22, 24] {
            let z = br(lgwin, false);
            assert_eq!(declared_window_log(z[0]), Some(lgwin));
            assert_eq!(decode(&z, lgwin).unwrap(), BODY, "window 2^{lgwin}");
        }
        let over = decode(&br(24, false), 22).unwrap_err();
        assert!(over.to_string().contains("brotli_window_log_max (22)"), "{over}");
        for lgwin in [25, 30] {
            let large = br(lgwin, true);
            assert_eq!(declared_window_log(large[0]), None);
            let e = decode(&large, 30).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert!(e.to_string().contains("large-window"), "{e}");
        }
        let cut = br(22, false);
        let e = decode(&cut[..cut.len() - 1], 24).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut trailing = br(22, false);
        trailing.push(0);
        assert_eq!(decode(&trailing, 24).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
