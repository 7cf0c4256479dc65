//! The HTTP/1.1 wire protocol for Tandem: strict head parsing, body framing and
//! serialisation, with no IO.
//!
//! `tandem-proto` is sans-IO and push-style. A connection feeds the bytes it read into a
//! parser, which answers "need more" (`Ok(None)`), a complete head or body event, or an
//! error; writing goes the other way, into a buffer the connection then sends. The same
//! code serves Tandem's server (which parses requests and writes responses) and client
//! (which writes requests and parses responses), and it is usable on its own.
//!
//! # Strict by policy
//!
//! Requests are parsed as strictly as aiohttp's parser, which is stricter than httparse,
//! hyper and actix-web: a bare LF, obs-fold, a control byte in a value, whitespace before a
//! colon, `Content-Length` with `Transfer-Encoding`, a duplicate `Content-Length` or `Host`
//! (even with equal values), an unknown transfer coding, chunked bodies with malformed
//! extensions or trailers, and any line or head over its [`Limits`] are all refused. Each
//! refusal is an [`Error`] whose [`Error::status`] a server answers before it closes the
//! connection. Responses are parsed leniently where real servers need it (bare LF,
//! repeated fields), as aiohttp's client does.
//!
//! # Parse a request
//!
//! ```
//! use bytes::BytesMut;
//! use tandem_proto::{BodyDecoder, BodyEvent, RequestParser};
//!
//! let mut buf = BytesMut::from(
//!     &b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n\
//!        5\r\nhello\r\n0\r\n\r\n"[..],
//! );
//! let head = RequestParser::new().parse(&mut buf)?.expect("a whole head");
//! assert_eq!(head.method(), "POST");
//! assert_eq!(head.fields().get("host"), Some(&b"example.com"[..]));
//!
//! let mut body = BodyDecoder::new(head.framing());
//! let mut received = Vec::new();
//! while let Some(event) = body.decode(&mut buf)? {
//!     match event {
//!         BodyEvent::Data(bytes) => received.extend_from_slice(&bytes),
//!         BodyEvent::Trailers(_) => {}
//!         BodyEvent::End => break,
//!     }
//! }
//! assert_eq!(received, b"hello");
//!
//! // A smuggling attempt: two lengths. The error says how to answer.
//! let mut bad = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 0\r\n\r\n"[..]);
//! let err = RequestParser::new().parse(&mut bad).unwrap_err();
//! assert_eq!(err.status(), 400);
//! # Ok::<(), tandem_proto::Error>(())
//! ```

mod decode;
mod encode;
mod error;
mod head;
mod limits;
mod multipart;
mod semantics;

pub use decode::{
    body::{BodyDecoder, BodyEvent},
    request::RequestParser,
    response::ResponseParser,
};
pub use encode::{
    body::BodyEncoder,
    head::{
        EncodedFields, RequestFields, RequestParts, ResponseParts, encode_request_head,
        encode_response_head,
    },
};
pub use error::{Error, ErrorKind};
pub use head::{BodyFraming, Fields, RequestHead, ResponseHead};
pub use limits::{
    DEFAULT_MAX_CHUNK_EXTENSIONS_SIZE, DEFAULT_MAX_FIELD_SIZE, DEFAULT_MAX_HEAD_SIZE,
    DEFAULT_MAX_HEADERS, DEFAULT_MAX_LINE_SIZE, DEFAULT_MAX_TRAILER_SIZE, Limits,
};
pub use multipart::{MAX_PART_HEAD, MultipartScanner};

/// README.md's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
