//! The one error type of `tandem-proto`.

use std::fmt;

use http::StatusCode;

/// Why a message was refused, or could not be written.
///
/// `Error` is `Copy` and one byte wide, as httparse's error is, so the parser can return it
/// on a hot path without allocating. [`Error::kind`] tells what went wrong, and
/// [`Error::status`] gives the status a server answers with before it closes the
/// connection. The `Display` text is for logs; it never echoes the offending input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong. Matching on it is stable; new kinds may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The method is not an RFC 9110 token.
    Method,
    /// The request target is malformed, or of a form the method does not allow.
    Target,
    /// The version is not `HTTP/1.0` or `HTTP/1.1`.
    Version,
    /// The status line of a response is malformed.
    Status,
    /// A line ended in a bare LF or CR where CRLF is required.
    LineEnding,
    /// A header name is empty or not a token, is followed by whitespace before the colon, or
    /// a field line starts with whitespace (obs-fold, a folded continuation line).
    HeaderName,
    /// A header value holds a control byte.
    HeaderValue,
    /// A header that may appear once (`Host`, `Content-Length`, `Content-Type`, …) appeared twice.
    DuplicateHeader,
    /// An HTTP/1.1 request has no `Host`, or its `Host` value is malformed, or an HTTP/2
    /// request's `Host` names another authority than its `:authority`.
    Host,
    /// `Content-Length` is not a plain decimal number that fits in 64 bits.
    ContentLength,
    /// `Transfer-Encoding` is malformed, names an unknown coding, does not end in `chunked`,
    /// names `chunked` twice, or appears on HTTP/1.0.
    TransferEncoding,
    /// A request carries both `Content-Length` and `Transfer-Encoding`.
    ContentLengthWithTransferEncoding,
    /// `Expect` holds something other than `100-continue`.
    Expectation,
    /// The request line is longer than the line limit.
    RequestLineTooLong,
    /// A header line is longer than the field limit.
    FieldTooLong,
    /// More header lines than the header-count limit.
    TooManyHeaders,
    /// The whole head is larger than the head limit.
    HeadTooLarge,
    /// A chunk-size line is malformed, or its size overflows 64 bits.
    ChunkSize,
    /// A chunk extension is malformed.
    ChunkExtension,
    /// The chunk extensions of one body exceed their limit.
    ChunkExtensionTooLarge,
    /// Chunk data is not followed by CRLF.
    ChunkData,
    /// A trailer line is malformed.
    Trailer,
    /// The trailer section exceeds its size or count limit.
    TrailerTooLarge,
    /// The body is longer than the limit set with
    /// [`BodyDecoder::set_max_size`](crate::BodyDecoder::set_max_size).
    BodyTooLarge,
    /// The connection closed before the body was complete.
    IncompleteBody,
    /// The connection closed in the middle of a head.
    IncompleteHead,
    /// Something to be written would split the message: a CR, LF, NUL or other control byte
    /// in a reason phrase, target or header value, or a framing header set by the caller.
    Unwritable,
    /// A body writer was given more, or fewer, bytes than it declared.
    BodyLength,
    /// A multipart part's header block, or the preamble before the first delimiter, is over
    /// [`MAX_PART_HEAD`](crate::MAX_PART_HEAD) (from [`MultipartScanner`](crate::MultipartScanner)).
    PartHeadTooLarge,
    /// A multipart part's header block repeats a field read as one value, such as
    /// `Content-Disposition` (from [`MultipartScanner`](crate::MultipartScanner)).
    DuplicatePartField,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind) -> Self {
        Error { kind }
    }

    /// What went wrong.
    pub const fn kind(self) -> ErrorKind {
        self.kind
    }

    /// The status a server should answer with before closing the connection.
    ///
    /// The policy, chosen once and kept: an over-long request line is `414 URI Too Long`, an
    /// over-long or over-numerous header field or an over-large head is
    /// `431 Request Header Fields Too Large` (RFC 6585, as hyper and actix-web answer), an
    /// unknown expectation is `417 Expectation Failed`, and everything else is
    /// `400 Bad Request`. aiohttp answers 400 for the size limits; the specific codes tell a
    /// client which limit it hit, and every one of them is still followed by a close.
    pub const fn status(self) -> StatusCode {
        match self.kind {
            ErrorKind::RequestLineTooLong => StatusCode::URI_TOO_LONG,
            ErrorKind::FieldTooLong | ErrorKind::TooManyHeaders | ErrorKind::HeadTooLarge => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            ErrorKind::Expectation => StatusCode::EXPECTATION_FAILED,
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether a size or count limit was exceeded (see [`crate::Limits`]).
    pub const fn is_limit(self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RequestLineTooLong
                | ErrorKind::FieldTooLong
                | ErrorKind::TooManyHeaders
                | ErrorKind::HeadTooLarge
                | ErrorKind::ChunkExtensionTooLarge
                | ErrorKind::TrailerTooLarge
                | ErrorKind::BodyTooLarge
                | ErrorKind::PartHeadTooLarge
        )
    }

    /// Whether the peer closed the connection before a message was complete.
    pub const fn is_incomplete(self) -> bool {
        matches!(self.kind, ErrorKind::IncompleteBody | ErrorKind::IncompleteHead)
    }

    /// Whether the error came from writing a message rather than reading one.
    pub const fn is_encode(self) -> bool {
        matches!(self.kind, ErrorKind::Unwritable | ErrorKind::BodyLength)
    }

    /// Whether the error is in a body (chunked framing, trailers or length) rather than a head.
    pub const fn is_body(self) -> bool {
        matches!(
            self.kind,
            ErrorKind::ChunkSize
                | ErrorKind::ChunkExtension
                | ErrorKind::ChunkExtensionTooLarge
                | ErrorKind::ChunkData
                | ErrorKind::Trailer
                | ErrorKind::TrailerTooLarge
                | ErrorKind::BodyTooLarge
                | ErrorKind::IncompleteBody
                | ErrorKind::PartHeadTooLarge
                | ErrorKind::DuplicatePartField
        )
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            ErrorKind::Method => "invalid method",
            ErrorKind::Target => "invalid request target",
            ErrorKind::Version => "invalid HTTP version",
            ErrorKind::Status => "invalid status line",
            ErrorKind::LineEnding => "line not terminated by CRLF",
            ErrorKind::HeaderName => "invalid header name",
            ErrorKind::HeaderValue => "invalid header value",
            ErrorKind::DuplicateHeader => "duplicate singleton header",
            ErrorKind::Host => "missing or invalid Host header",
            ErrorKind::ContentLength => "invalid Content-Length",
            ErrorKind::TransferEncoding => "invalid Transfer-Encoding",
            ErrorKind::ContentLengthWithTransferEncoding => {
                "both Content-Length and Transfer-Encoding"
            }
            ErrorKind::Expectation => "unsupported expectation",
            ErrorKind::RequestLineTooLong => "request line too long",
            ErrorKind::FieldTooLong => "header field too long",
            ErrorKind::TooManyHeaders => "too many header fields",
            ErrorKind::HeadTooLarge => "message head too large",
            ErrorKind::ChunkSize => "invalid chunk size",
            ErrorKind::ChunkExtension => "invalid chunk extension",
            ErrorKind::ChunkExtensionTooLarge => "chunk extensions too large",
            ErrorKind::ChunkData => "chunk data not terminated by CRLF",
            ErrorKind::Trailer => "invalid trailer field",
            ErrorKind::TrailerTooLarge => "trailer section too large",
            ErrorKind::BodyTooLarge => "body larger than the limit",
            ErrorKind::IncompleteBody => "connection closed before the body was complete",
            ErrorKind::IncompleteHead => "connection closed in the middle of a message head",
            ErrorKind::Unwritable => "refusing to write a byte that would split the message",
            ErrorKind::BodyLength => "body length differs from the declared length",
            ErrorKind::PartHeadTooLarge => "multipart part headers too large",
            ErrorKind::DuplicatePartField => "a repeated field in a multipart part's headers",
        })
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_small_send_sync_and_copy() {
        fn assert_traits<T: Send + Sync + Copy + 'static>() {}
        assert_traits::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), 1);
    }

    #[test]
    fn status_policy() {
        assert_eq!(Error::new(ErrorKind::RequestLineTooLong).status(), 414);
        assert_eq!(Error::new(ErrorKind::FieldTooLong).status(), 431);
        assert_eq!(Error::new(ErrorKind::TooManyHeaders).status(), 431);
        assert_eq!(Error::new(ErrorKind::HeadTooLarge).status(), 431);
        assert_eq!(Error::new(ErrorKind::Expectation).status(), 417);
        assert_eq!(Error::new(ErrorKind::ContentLength).status(), 400);
        assert_eq!(Error::new(ErrorKind::ChunkSize).status(), 400);
        assert_eq!(Error::new(ErrorKind::PartHeadTooLarge).status(), 400);
        assert_eq!(Error::new(ErrorKind::DuplicatePartField).status(), 400);
    }
}
