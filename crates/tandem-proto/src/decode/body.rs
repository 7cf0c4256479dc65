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
/// ```
/// use bytes::BytesMut;
/// use tandem_proto::{BodyDecoder, BodyEvent, BodyFraming};
///
/// let mut body = BodyDecoder::new(BodyFraming::Chunked);
/// let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\nGET /next"[..]);
/// assert_eq!(body.decode(&mut buf).unwrap(), Some(BodyEvent::Data("hello".into())));
/// assert_eq!(body.decode(&mut buf).unwrap(), Some(BodyEvent::End));
/// assert_eq!(&buf[..], b"GET /next");
/// ```
#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
}

#[derive(Debug)]
enum State {
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    UntilClose,
    Done,
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
        BodyDecoder { state }
    }

    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
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
        match &mut self.state {
            State::Done => Ok(Some(BodyEvent::End)),
            State::Length(remaining) => {
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
                Ok(Some(BodyEvent::Data(buf.split().freeze())))
            }
            State::Chunked(chunked) => {
                let event = chunked.decode(buf)?;
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
            State::Length(_) | State::Chunked(_) => Err(ErrorKind::IncompleteBody.into()),
        }
    }
}
