//! Body decoding: by length, chunked, or until the connection closes.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;

use super::chunked::ChunkedDecoder;
use crate::{
    BodyFraming, Limits,
    error::{Error, ErrorKind},
};

/// What a [`BodyDecoder`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyEvent {
    /// Body bytes, split off the read buffer without copying.
    Data(Bytes),
    /// The trailer fields after a chunked body. They are never merged into the head's
    /// fields, so a trailer cannot change a message's framing or `Host`.
    Trailers(HeaderMap),
    /// The body is complete; bytes left in the buffer belong to the next message.
    End,
}

/// Decodes one message body from a connection's read buffer, push-style.
///
/// Call [`decode`](Self::decode) after each read until it returns [`BodyEvent::End`]; it
/// returns `Ok(None)` when it needs more bytes. When the connection closes, call
/// [`decode_eof`](Self::decode_eof): a body delimited by close ends there, any other is an
/// [`ErrorKind::IncompleteBody`]. Lengths are `u64` and every size is checked, so a
/// declared length never causes an allocation or an overflow.
///
/// An error is final: once `decode` or `decode_eof` has returned one, every later call
/// returns the same error and takes no more bytes from the buffer, so nothing after a broken
/// body can ever be read as the next message. [`is_failed`](Self::is_failed) tells a
/// connection that it must close.
///
/// ```
/// use bytes::BytesMut;
/// use tandem_proto::{BodyDecoder, BodyEvent, BodyFraming};
///
/// let mut body = BodyDecoder::new(BodyFraming::Chunked);
/// let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\nGET /next"[..]);
/// assert_eq!(body.decode(&mut buf).unwrap(), Some(BodyEvent::Data("hello".into())));
/// assert!(body.at_chunk_end());
/// assert_eq!(body.decode(&mut buf).unwrap(), Some(BodyEvent::End));
/// assert_eq!(&buf[..], b"GET /next");
/// ```
#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
    /// Body bytes still allowed by [`set_max_size`](Self::set_max_size).
    allowed: u64,
}

#[derive(Debug)]
enum State {
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    UntilClose,
    Done,
    /// An error was returned; it is returned again for every later call.
    Failed(Error),
}

impl BodyDecoder {
    /// A decoder for `framing` with the default [`Limits`].
    pub fn new(framing: BodyFraming) -> Self {
        Self::with_limits(framing, &Limits::default())
    }

    /// A decoder for `framing`; chunked bodies obey the extension and trailer limits.
    pub fn with_limits(framing: BodyFraming, limits: &Limits) -> Self {
        let state = match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::Chunked(Box::new(ChunkedDecoder::new(limits))),
            BodyFraming::UntilClose => State::UntilClose,
        };
        BodyDecoder { state, allowed: u64::MAX }
    }

    /// Refuses a body of more than `max` bytes from here on with
    /// [`ErrorKind::BodyTooLarge`] (a server's 413). The refusal comes as early as the
    /// framing allows: at once for a declared length over the limit, and from the size line
    /// of a chunk that declares more than what is left, before any of its data is awaited.
    pub fn set_max_size(&mut self, max: u64) {
        self.allowed = max;
    }

    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether the body is broken: an error was returned, and the connection it came from
    /// cannot carry another message.
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }

    /// Whether the last [`BodyEvent::Data`] ended a chunk of a chunked body: aiohttp's
    /// `readchunk()` tells its caller where the sender's chunks end. Always `false` for a
    /// body of another framing.
    pub fn at_chunk_end(&self) -> bool {
        matches!(&self.state, State::Chunked(chunked) if !chunked.is_mid_chunk())
    }

    /// Bytes still owed by a length-delimited body, if it is one.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Decodes what `buf` holds of the body.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BodyEvent>, Error> {
        let decoded = self.decode_step(buf);
        match &decoded {
            Ok(Some(BodyEvent::Data(data))) => self.allowed -= data.len() as u64,
            Ok(_) => {}
            Err(err) => self.state = State::Failed(*err),
        }
        decoded
    }

    fn decode_step(&mut self, buf: &mut BytesMut) -> Result<Option<BodyEvent>, Error> {
        match &mut self.state {
            State::Done => Ok(Some(BodyEvent::End)),
            State::Failed(err) => Err(*err),
            State::Length(remaining) => {
                if *remaining > self.allowed {
                    return Err(ErrorKind::BodyTooLarge.into());
                }
                if buf.is_empty() {
                    return Ok(None);
                }
                let take = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                *remaining -= take as u64;
                if *remaining == 0 {
                    self.state = State::Done;
                }
                Ok(Some(BodyEvent::Data(buf.split_to(take).freeze())))
            }
            State::UntilClose => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let take = usize::try_from(self.allowed).map_or(buf.len(), |a| a.min(buf.len()));
                if take == 0 {
                    return Err(ErrorKind::BodyTooLarge.into());
                }
                Ok(Some(BodyEvent::Data(buf.split_to(take).freeze())))
            }
            State::Chunked(chunked) => {
                let event = chunked.decode(buf, self.allowed)?;
                if chunked.is_done() {
                    self.state = State::Done;
                }
                Ok(event)
            }
        }
    }

    /// Tells the decoder the connection has closed, after `decode` has taken everything it
    /// could from the buffer.
    pub fn decode_eof(&mut self) -> Result<BodyEvent, Error> {
        match self.state {
            State::Done | State::UntilClose => {
                self.state = State::Done;
                Ok(BodyEvent::End)
            }
            State::Failed(err) => Err(err),
            State::Length(_) | State::Chunked(_) => {
                let err = ErrorKind::IncompleteBody.into();
                self.state = State::Failed(err);
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked() -> BodyDecoder {
        BodyDecoder::new(BodyFraming::Chunked)
    }

    #[test]
    fn an_error_is_final_and_takes_no_more_bytes() {
        // `5\r\nABCDE` then `0\r\n`: the chunk's data is not followed by CRLF. Before the
        // error was kept, the decoder went on after the bad byte and read the rest as chunks.
        let mut body = chunked();
        let mut buf = BytesMut::from(&b"5\r\nABCDE0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"[..]);
        assert_eq!(body.decode(&mut buf), Ok(Some(BodyEvent::Data("ABCDE".into()))));
        let err = body.decode(&mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ChunkData);
        assert!(body.is_failed());
        let left = buf.clone();
        for _ in 0..3 {
            assert_eq!(body.decode(&mut buf), Err(err));
            assert_eq!(buf, left, "nothing more is taken from the buffer");
        }
        assert_eq!(body.decode_eof(), Err(err));
        assert!(!body.is_done());
    }

    #[test]
    fn a_bad_size_line_is_final() {
        for line in [&b"+3\r\nabc\r\n"[..], b"0x3\r\nabc\r\n", b"-1\r\n", b" 3\r\n", b"3 3\r\n"] {
            let mut body = chunked();
            let mut buf = BytesMut::from(line);
            buf.extend_from_slice(b"0\r\n\r\n");
            let err = body.decode(&mut buf).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ChunkSize, "{line:?}");
            let mut next = BytesMut::from(&b"0\r\n\r\n"[..]);
            assert_eq!(body.decode(&mut next), Err(err), "{line:?}");
        }
    }

    /// RFC 9112 §7.1.1 allows whitespace (BWS) in a chunk extension only before `;` or
    /// `=` and after them, never before the CRLF: `1 \r\n` was refused while `1;a \r\n`
    /// and `1;a=b\t\r\n` were read, and llhttp refuses all three.
    #[test]
    fn whitespace_before_the_size_lines_crlf_is_refused_after_an_extension_too() {
        for line in [
            &b"1;a \r\n"[..],
            b"1;a\t\r\n",
            b"1;a=b \r\n",
            b"1;a=b\t\r\n",
            b"1;a=\"b\" \r\n",
            b"1;a;b \t\r\n",
            b"1 ;a \r\n",
        ] {
            let mut buf = BytesMut::from(&[line, b"x\r\n0\r\n\r\n"].concat()[..]);
            assert!(chunked().decode(&mut buf).is_err(), "{}", line.escape_ascii());
        }
        for line in [
            &b"1;a\r\n"[..],
            b"1;a=b\r\n",
            b"1;a=\"b c\"\r\n",
            b"1 ;a\r\n",
            b"1; a = b ;c\r\n",
            b"1;a=\"b\" ;c\r\n",
        ] {
            let mut buf = BytesMut::from(&[line, b"x\r\n0\r\n\r\n"].concat()[..]);
            let mut body = chunked();
            assert_eq!(
                body.decode(&mut buf),
                Ok(Some(BodyEvent::Data(Bytes::from_static(b"x")))),
                "{}",
                line.escape_ascii()
            );
            assert_eq!(body.decode(&mut buf), Ok(Some(BodyEvent::End)));
        }
    }

    #[test]
    fn data_not_followed_by_crlf_is_refused_from_the_bytes_at_hand() {
        // The data goes out as it arrives (the outcome is the same however the bytes were
        // split); the wrong byte after it is refused by the next call, with no more reads.
        for bad in [&b"5\r\nABCDEX"[..], b"5\r\nABCDE\rX"] {
            let mut body = chunked();
            let mut buf = BytesMut::from(bad);
            assert_eq!(body.decode(&mut buf), Ok(Some(BodyEvent::Data("ABCDE".into()))));
            assert_eq!(body.decode(&mut buf).unwrap_err().kind(), ErrorKind::ChunkData);
        }
    }

    #[test]
    fn a_chunk_over_the_limit_is_refused_from_its_size_line() {
        let mut body = chunked();
        body.set_max_size(1024 * 1024);
        // No data follows: the refusal does not wait for any.
        let mut buf = BytesMut::from(&b"ffffffffffffffff"[..]);
        let err = body.decode(&mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BodyTooLarge);
        assert_eq!(err.status(), 413);

        // What was already read counts: 3 bytes allowed, 2 taken, a chunk of 2 is too many.
        let mut body = chunked();
        body.set_max_size(3);
        let mut buf = BytesMut::from(&b"2\r\nab\r\n2\r\n"[..]);
        assert_eq!(body.decode(&mut buf), Ok(Some(BodyEvent::Data("ab".into()))));
        assert_eq!(body.decode(&mut buf).unwrap_err().kind(), ErrorKind::BodyTooLarge);

        // Exactly the limit is fine.
        let mut body = chunked();
        body.set_max_size(2);
        let mut buf = BytesMut::from(&b"2\r\nab\r\n0\r\n\r\n"[..]);
        assert_eq!(body.decode(&mut buf), Ok(Some(BodyEvent::Data("ab".into()))));
        assert_eq!(body.decode(&mut buf), Ok(Some(BodyEvent::End)));
    }

    #[test]
    fn other_framings_obey_the_limit() {
        let mut body = BodyDecoder::new(BodyFraming::Length(10));
        body.set_max_size(9);
        let mut buf = BytesMut::new();
        assert_eq!(body.decode(&mut buf).unwrap_err().kind(), ErrorKind::BodyTooLarge);

        let mut body = BodyDecoder::new(BodyFraming::UntilClose);
        body.set_max_size(3);
        let mut buf = BytesMut::from(&b"abcd"[..]);
        assert_eq!(body.decode(&mut buf), Ok(Some(BodyEvent::Data("abc".into()))));
        assert_eq!(body.decode(&mut buf).unwrap_err().kind(), ErrorKind::BodyTooLarge);
    }

    #[test]
    fn eof_mid_body_is_final() {
        let mut body = BodyDecoder::new(BodyFraming::Length(5));
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert!(body.decode(&mut buf).unwrap().is_some());
        assert_eq!(body.decode_eof().unwrap_err().kind(), ErrorKind::IncompleteBody);
        let mut more = BytesMut::from(&b"de"[..]);
        assert_eq!(body.decode(&mut more).unwrap_err().kind(), ErrorKind::IncompleteBody);
    }
}
