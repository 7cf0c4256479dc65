//! Body framing on the way out.

use bytes::{BufMut, BytesMut};
use http::HeaderMap;

use super::is_field_text;
use crate::{
    BodyFraming,
    error::{Error, ErrorKind},
};

/// Frames one message body: by its declared length, in chunks, or until close.
///
/// [`encode`](Self::encode) copies data into the write buffer with its framing;
/// [`encode_prefix`](Self::encode_prefix) writes only the framing before `len` bytes the
/// caller sends by other means (a vectored write of a large buffer, say) and returns what
/// must follow them. [`finish`](Self::finish) ends the body. A length-delimited body
/// refuses to go past its length and to finish short of it, so a handler bug can never
/// desynchronise the connection.
#[derive(Debug)]
pub struct BodyEncoder {
    state: State,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked,
    UntilClose,
    Empty,
    Finished,
}

impl BodyEncoder {
    /// An encoder for `framing`.
    pub fn new(framing: BodyFraming) -> Self {
        let state = match framing {
            BodyFraming::Empty => State::Empty,
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::Chunked,
            BodyFraming::UntilClose => State::UntilClose,
        };
        BodyEncoder { state }
    }

    /// Whether `finish` has been called.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Writes `data` with its framing into `dst`.
    pub fn encode(&mut self, data: &[u8], dst: &mut BytesMut) -> Result<(), Error> {
        let suffix = self.encode_prefix(data.len(), dst)?;
        dst.reserve(data.len() + suffix.len());
        dst.put_slice(data);
        dst.put_slice(suffix);
        Ok(())
    }

    /// Writes the framing that goes before `len` bytes of data, and returns the bytes that
    /// must follow the data.
    pub fn encode_prefix(
        &mut self,
        len: usize,
        dst: &mut BytesMut,
    ) -> Result<&'static [u8], Error> {
        match &mut self.state {
            _ if len == 0 => Ok(b""),
            State::Length(remaining) => {
                *remaining = remaining.checked_sub(len as u64).ok_or(ErrorKind::BodyLength)?;
                Ok(b"")
            }
            State::Chunked => {
                let mut digits = [0u8; 16];
                let hex = hex_digits(len as u64, &mut digits);
                dst.reserve(hex.len() + 2);
                dst.put_slice(hex);
                dst.put_slice(b"\r\n");
                Ok(b"\r\n")
            }
            State::UntilClose => Ok(b""),
            State::Empty | State::Finished => Err(ErrorKind::BodyLength.into()),
        }
    }

    /// Ends the body: checks a declared length was met, or writes the last chunk with any
    /// `trailers`. Trailers are only possible on a chunked body.
    pub fn finish(
        &mut self,
        trailers: Option<&HeaderMap>,
        dst: &mut BytesMut,
    ) -> Result<(), Error> {
        let trailers = trailers.filter(|t| !t.is_empty());
        match self.state {
            State::Length(0) | State::UntilClose | State::Empty if trailers.is_none() => {}
            State::Length(_) if trailers.is_none() => return Err(ErrorKind::BodyLength.into()),
            State::Chunked => {
                if let Some(trailers) = trailers {
                    let forbidden = trailers.iter().any(|(_, v)| !is_field_text(v.as_bytes()));
                    if forbidden {
                        return Err(ErrorKind::Unwritable.into());
                    }
                }
                dst.put_slice(b"0\r\n");
                for (name, value) in trailers.into_iter().flatten() {
                    dst.put_slice(name.as_str().as_bytes());
                    dst.put_slice(b": ");
                    dst.put_slice(value.as_bytes());
                    dst.put_slice(b"\r\n");
                }
                dst.put_slice(b"\r\n");
            }
            _ => return Err(ErrorKind::Unwritable.into()),
        }
        self.state = State::Finished;
        Ok(())
    }
}

/// Writes `n` as lower-case hex without leading zeros.
fn hex_digits(mut n: u64, out: &mut [u8; 16]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            return &out[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_refuses_too_much_and_too_little() {
        let mut dst = BytesMut::new();
        let mut enc = BodyEncoder::new(BodyFraming::Length(3));
        assert_eq!(enc.encode(b"abcd", &mut dst).unwrap_err().kind(), ErrorKind::BodyLength);
        enc.encode(b"ab", &mut dst).unwrap();
        assert_eq!(enc.finish(None, &mut dst).unwrap_err().kind(), ErrorKind::BodyLength);
        enc.encode(b"c", &mut dst).unwrap();
        enc.finish(None, &mut dst).unwrap();
        assert_eq!(&dst[..], b"abc");
    }

    #[test]
    fn chunked_with_trailers() {
        let mut dst = BytesMut::new();
        let mut enc = BodyEncoder::new(BodyFraming::Chunked);
        enc.encode(&[b'x'; 26], &mut dst).unwrap();
        enc.encode(b"", &mut dst).unwrap();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "abc".parse().unwrap());
        enc.finish(Some(&trailers), &mut dst).unwrap();
        let expected = [&b"1a\r\n"[..], &[b'x'; 26], b"\r\n0\r\nx-checksum: abc\r\n\r\n"].concat();
        assert_eq!(&dst[..], &expected[..]);
        assert!(enc.is_finished());
    }

    #[test]
    fn hex() {
        let mut out = [0; 16];
        assert_eq!(hex_digits(0, &mut out), b"0");
        assert_eq!(hex_digits(u64::MAX, &mut out), b"ffffffffffffffff");
    }
}
