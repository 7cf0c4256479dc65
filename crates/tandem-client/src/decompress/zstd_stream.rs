//! zstd decoding fed chunk by chunk, over ruzstd's frame decoder.
//!
//! ruzstd (pure Rust, so no C library to build) decodes from a reader or from a slice of
//! whole blocks, while a body arrives in chunks that cut frames and blocks anywhere. So the
//! input waits here until the next piece is complete (a frame header, one block with its
//! checksum if it is the last, a skippable frame), and the output the frame's window no
//! longer needs is drained into the writer before the next block is decoded: memory stays
//! within the window and one block (at most 128 KiB), and decoding stops wherever the
//! writer has enough, whatever one chunk holds (a chunk of 4-byte RLE blocks would
//! otherwise expand 32 768-fold at once).

use std::io::{self, Write};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// A block header's size (RFC 8878 §3.1.1.2).
const BLOCK_HEADER_SIZE: usize = 3;
/// The largest block content (RFC 8878 §3.1.1.2.3, `Block_Maximum_Size`).
const MAX_BLOCK_SIZE: usize = 128 * 1024;
/// The content checksum that follows a frame's last block when its descriptor says so.
const CHECKSUM_SIZE: usize = 4;
/// A skippable frame's magic number and length.
const SKIPPABLE_HEADER_SIZE: usize = 8;

/// Decodes zstd frames pushed in any pieces into `W`.
pub(super) struct ZstdDecoder<W> {
    frame: FrameDecoder,
    /// Input not decoded yet: the start of a piece that has not fully arrived.
    pending: Vec<u8>,
    state: State,
    out: W,
}

#[derive(Clone, Copy)]
enum State {
    /// Between frames: what comes is a frame header (or a skippable frame's).
    Between,
    /// Inside a frame, whose last block is followed by a checksum if `checksum`.
    Blocks { checksum: bool },
    /// Inside a skippable frame, with this many of its bytes still to come.
    Skip(u64),
    /// A frame's last block is decoded; its output is drained before its checksum (computed
    /// as the output leaves the decoder) is checked and the next frame starts.
    Ending,
}

impl<W: Write> ZstdDecoder<W> {
    /// A decoder refusing frames whose window is over `2^window_log_max` bytes.
    pub(super) fn new(out: W, window_log_max: u32) -> Self {
        let mut frame = FrameDecoder::new();
        frame.set_max_window_size(1u64.checked_shl(window_log_max).unwrap_or(u64::MAX));
        ZstdDecoder { frame, pending: Vec::new(), state: State::Between, out }
    }

    /// Decodes what `input` completes, piece after piece, until `full` says the writer
    /// holds enough for now; returns how much of `input` it took. An incomplete piece at
    /// the end is taken and kept for the next call; when `full` stops it, the input not
    /// decoded yet is left to the caller, and what earlier calls left here is decoded first
    /// next time (with no input, too).
    pub(super) fn write_some(
        &mut self,
        input: &[u8],
        full: impl Fn(&W) -> bool,
    ) -> io::Result<usize> {
        let kept = self.pending.len();
        self.pending.extend_from_slice(input);
        let mut pending = std::mem::take(&mut self.pending);
        let mut at = 0;
        let stopped = loop {
            if let Err(e) = self.drain(&full) {
                break Err(e);
            }
            if full(&self.out) {
                break Ok(true);
            }
            match self.step(&pending[at..]) {
                Ok(0) => break Ok(false),
                Ok(used) => at += used,
                Err(e) => break Err(e),
            }
        };
        // Stopped by `full`: hand back the caller's bytes not decoded, keep ours.
        let end = if matches!(stopped, Ok(true)) { kept.max(at) } else { pending.len() };
        pending.truncate(end);
        pending.drain(..at);
        self.pending = pending;
        stopped.map(|_| end - kept)
    }

    /// The end of the body: an error if it stopped inside a frame.
    pub(super) fn finish(&mut self) -> io::Result<()> {
        match self.state {
            State::Between if self.pending.is_empty() => Ok(()),
            _ => {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "zstd body ended inside a frame"))
            }
        }
    }

    pub(super) fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Moves the output the decoder can give (all of a finished frame's, or what its window
    /// no longer needs) to the writer, until `full`.
    fn drain(&mut self, full: &impl Fn(&W) -> bool) -> io::Result<()> {
        let mut buf = [0; 16 * 1024];
        while !full(&self.out) {
            match io::Read::read(&mut self.frame, &mut buf)? {
                0 => break,
                n => self.out.write_all(&buf[..n])?,
            }
        }
        Ok(())
    }

    /// Decodes the piece at the start of `input`, returning the bytes it took: 0 when the
    /// piece is not complete yet.
    fn step(&mut self, input: &[u8]) -> io::Result<usize> {
        match self.state {
            State::Between => self.frame_header(input),
            State::Skip(left) => {
                let used = left.min(input.len() as u64);
                self.state = if used == left { State::Between } else { State::Skip(left - used) };
                Ok(used as usize)
            }
            State::Blocks { checksum } => self.block(input, checksum),
            // Only reached once the frame's output is all drained.
            State::Ending => {
                if let (Some(sent), Some(computed)) =
                    (self.frame.get_checksum_from_data(), self.frame.get_calculated_checksum())
                    && sent != computed
                {
                    return Err(invalid("zstd content checksum mismatch"));
                }
                self.state = State::Between;
                self.frame_header(input)
            }
        }
    }

    fn frame_header(&mut self, input: &[u8]) -> io::Result<usize> {
        let mut rest = input;
        match self.frame.init(&mut rest) {
            Ok(()) => {
                // The frame header descriptor's Content_Checksum_flag (RFC 8878 §3.1.1.1.1).
                let checksum = input[4] & 0b100 != 0;
                self.state = State::Blocks { checksum };
                Ok(input.len() - rest.len())
            }
            Err(FrameDecoderError::ReadFrameHeaderError(e)) => match e {
                ReadFrameHeaderError::SkipFrame { length, .. } => {
                    // An empty skippable frame is over with its header (RFC 8878 allows it).
                    self.state =
                        if length == 0 { State::Between } else { State::Skip(length.into()) };
                    Ok(SKIPPABLE_HEADER_SIZE)
                }
                // Reading from a slice fails only at its end: the header is not all here.
                ReadFrameHeaderError::MagicNumberReadError(_)
                | ReadFrameHeaderError::FrameDescriptorReadError(_)
                | ReadFrameHeaderError::WindowDescriptorReadError(_)
                | ReadFrameHeaderError::DictionaryIdReadError(_)
                | ReadFrameHeaderError::FrameContentSizeReadError(_) => Ok(0),
                e => Err(invalid(FrameDecoderError::ReadFrameHeaderError(e))),
            },
            Err(e) => Err(invalid(e)),
        }
    }

    fn block(&mut self, input: &[u8], checksum: bool) -> io::Result<usize> {
        let Some(header) = input.get(..BLOCK_HEADER_SIZE) else { return Ok(0) };
        let header = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
        let last = header & 1 == 1;
        let size = (header >> 3) as usize;
        // An RLE block (type 1) is one byte repeated `size` times.
        let content = if (header >> 1) & 0b11 == 1 { 1 } else { size };
        if content > MAX_BLOCK_SIZE {
            return Err(invalid("zstd block larger than 128 KiB"));
        }
        let whole = BLOCK_HEADER_SIZE + content + if last && checksum { CHECKSUM_SIZE } else { 0 };
        let Some(block) = input.get(..whole) else { return Ok(0) };
        self.frame.decode_blocks(block, BlockDecodingStrategy::UptoBlocks(1)).map_err(invalid)?;
        if last {
            self.state = State::Ending;
        }
        Ok(whole)
    }
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8], step: usize) -> io::Result<Vec<u8>> {
        let mut d = ZstdDecoder::new(Vec::new(), 23);
        for chunk in input.chunks(step) {
            assert_eq!(d.write_some(chunk, |_| false)?, chunk.len());
        }
        d.finish()?;
        Ok(std::mem::take(d.get_mut()))
    }

    fn with_checksum(data: &[u8]) -> Vec<u8> {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        e.include_checksum(true).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn checksum_is_verified() {
        let data = b"checked ".repeat(1000);
        let z = with_checksum(&data);
        assert_eq!(decode(&z, 5).unwrap(), data);
        let mut bad = z.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(decode(&bad, 5).unwrap_err().kind(), io::ErrorKind::InvalidData);
        // The checksum alone missing is a frame cut short.
        let cut = &z[..z.len() - 1];
        assert_eq!(decode(cut, 5).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn skippable_frames_are_skipped() {
        let mut z = vec![0x50, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5];
        z.extend(with_checksum(b"after the skippable frame"));
        z.extend([0x5f, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
        for step in [1, 3, z.len()] {
            assert_eq!(decode(&z, step).unwrap(), b"after the skippable frame");
        }
    }

    #[test]
    fn an_empty_skippable_frame_then_a_frame_in_one_piece() {
        let mut z = vec![0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
        z.extend(with_checksum(b"after an empty skippable frame"));
        for step in [1, 8, z.len()] {
            assert_eq!(decode(&z, step).unwrap(), b"after an empty skippable frame");
        }
    }

    #[test]
    fn a_block_over_128_kib_is_refused_before_its_content() {
        // A frame header (no checksum, 1 KiB window), then a raw block claiming 200 000 bytes.
        let mut z = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00];
        let block: u32 = 200_000 << 3 | 1;
        z.extend_from_slice(&block.to_le_bytes()[..3]);
        assert_eq!(decode(&z, z.len()).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn garbage_is_invalid_data() {
        assert_eq!(decode(b"not zstd at all", 4).unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(decode(b"", 1).unwrap().is_empty());
    }
}
