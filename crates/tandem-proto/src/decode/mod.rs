//! Decoding: heads (request and response parsers) and bodies (length, chunked, until close).
//!
//! The path of a head: [`scan`] finds its end in linear time and enforces the size limits
//! as bytes arrive; httparse then checks its tokens, values and version in one pass;
//! [`fields`] records where each field lies and applies the framing rules.

pub(crate) mod body;
mod chunked;
pub(crate) mod fields;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod scan;

use crate::{
    error::{Error, ErrorKind},
    semantics::is_token,
};

/// Maps an httparse error to ours. httparse says `Token` both for a bad method and for a
/// bad target; the first word of the line tells which.
fn httparse_error(err: httparse::Error, head: &[u8]) -> Error {
    let kind = match err {
        httparse::Error::HeaderName => ErrorKind::HeaderName,
        httparse::Error::HeaderValue => ErrorKind::HeaderValue,
        httparse::Error::NewLine => ErrorKind::LineEnding,
        httparse::Error::Status => ErrorKind::Status,
        httparse::Error::TooManyHeaders => ErrorKind::TooManyHeaders,
        httparse::Error::Version => ErrorKind::Version,
        httparse::Error::Token => {
            let method = head.split(|&b| b == b' ').next().unwrap_or_default();
            if is_token(method) { ErrorKind::Target } else { ErrorKind::Method }
        }
    };
    kind.into()
}
