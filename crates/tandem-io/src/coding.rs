//! [`ContentEncoder`]: a body encoded in a content coding (RFC 9110 §8.4.1) piece by piece,
//! for the server's response compression and the client's request compression.
//!
//! The encoders are generic over their writer, so whichever crate names a concrete one
//! compiles their code. Named here, once, the code is compiled early in a build, beside other
//! crates, rather than in tandem-web, the last and longest compile of a default build (the
//! brotli encoder alone was a quarter of its machine code).

use std::io::{self, Write};

/// An incremental encoder whose output collects in a buffer, handed out by
/// [`take_output`](Self::take_output).
pub struct ContentEncoder(Encoder);

enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Deflate(flate2::write::ZlibEncoder<Vec<u8>>),
    // Boxed: the brotli state is several kilobytes.
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl ContentEncoder {
    /// `gzip`, at zlib's default level.
    pub fn gzip() -> Self {
        let level = flate2::Compression::default();
        ContentEncoder(Encoder::Gzip(flate2::write::GzEncoder::new(Vec::new(), level)))
    }

    /// `deflate`: the zlib format (RFC 9110 §8.4.1.2), at zlib's default level.
    pub fn deflate() -> Self {
        let level = flate2::Compression::default();
        ContentEncoder(Encoder::Deflate(flate2::write::ZlibEncoder::new(Vec::new(), level)))
    }

    /// `br`, at `quality` (0 to 11) with a window of 2^`window_log` bytes (10 to 24).
    pub fn brotli(quality: u32, window_log: u32) -> Self {
        let writer = brotli::CompressorWriter::new(Vec::new(), 0, quality, window_log);
        ContentEncoder(Encoder::Br(Box::new(writer)))
    }

    fn writer(&mut self) -> &mut dyn Write {
        match &mut self.0 {
            Encoder::Gzip(e) => e,
            Encoder::Deflate(e) => e,
            Encoder::Br(e) => e.as_mut(),
        }
    }

    /// Encodes `data`. The encoder may keep some of it back until more comes, a
    /// [`flush`](Self::flush) or the [`finish`](Self::finish).
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.writer().write_all(data)
    }

    /// Outputs everything written so far, so that a reader can decode it all.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }

    /// The output so far, taken out of the encoder.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(match &mut self.0 {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Deflate(e) => e.get_mut(),
            Encoder::Br(e) => e.get_mut(),
        })
    }

    /// Ends the stream: the output not yet taken, and the coding's trailer.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self.0 {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Deflate(e) => e.finish(),
            Encoder::Br(e) => Ok(e.into_inner()),
        }
    }
}

impl std::fmt::Debug for ContentEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let coding = match self.0 {
            Encoder::Gzip(_) => "gzip",
            Encoder::Deflate(_) => "deflate",
            Encoder::Br(_) => "br",
        };
        f.debug_tuple("ContentEncoder").field(&coding).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Writes `pieces`, flushing after each and taking the output, then finishes.
    fn encode(mut encoder: ContentEncoder, pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in pieces {
            encoder.write(piece).unwrap();
            encoder.flush().unwrap();
            out.extend(encoder.take_output());
        }
        out.extend(encoder.finish().unwrap());
        out
    }

    const TEXT: [&[u8]; 3] = [b"hello ", b"hello hello ", b"world"];

    #[test]
    fn each_coding_decodes_to_what_was_written() {
        let mut text = String::new();
        let gzip = encode(ContentEncoder::gzip(), &TEXT);
        flate2::read::GzDecoder::new(&gzip[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello hello hello world");
        text.clear();
        let deflate = encode(ContentEncoder::deflate(), &TEXT);
        flate2::read::ZlibDecoder::new(&deflate[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello hello hello world");
        text.clear();
        let br = encode(ContentEncoder::brotli(4, 22), &TEXT);
        brotli::Decompressor::new(&br[..], 4096).read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello hello hello world");
    }

    #[test]
    fn a_flush_outputs_all_that_was_written() {
        type Decoder = fn(&[u8]) -> Box<dyn Read + '_>;
        let decoders: [(ContentEncoder, Decoder); 2] = [
            (ContentEncoder::gzip(), |out| Box::new(flate2::read::GzDecoder::new(out))),
            (ContentEncoder::brotli(4, 22), |out| Box::new(brotli::Decompressor::new(out, 4096))),
        ];
        for (mut encoder, decoder) in decoders {
            encoder.write(b"first piece").unwrap();
            encoder.flush().unwrap();
            let out = encoder.take_output();
            // Without its end the stream is cut short, but after all that was flushed.
            let mut text = Vec::new();
            let _ = decoder(&out).read_to_end(&mut text);
            assert_eq!(text, b"first piece", "{encoder:?}");
        }
    }
}
