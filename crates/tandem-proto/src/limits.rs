//! Protective limits on what the parsers accept.
//!
//! Every limit is a named constant with a documented default, and [`Limits`] overrides any
//! of them. The defaults follow aiohttp (`max_line_size`, `max_field_size`, `max_headers`)
//! and hyper (chunk extensions and trailers), which were each raised or lowered in answer to
//! a CVE; `docs/security.md` lists every limit with the status it maps to.

use crate::{Error, ErrorKind};

/// Longest request or status line, in bytes, without its CRLF: 8190, aiohttp's
/// `max_line_size`. Past it a request is refused with 414.
pub const DEFAULT_MAX_LINE_SIZE: usize = 8190;

/// Longest header field line (name, colon, value), in bytes, without its CRLF: 8190,
/// aiohttp's `max_field_size`. Past it a request is refused with 431. A field that came
/// without a line (over HTTP/2) is measured as the line `name: value`, whitespace and all.
pub const DEFAULT_MAX_FIELD_SIZE: usize = 8190;

/// Most header fields in one head, and most trailer fields after a chunked body: 128,
/// aiohttp's `max_headers`. Past it a request is refused with 431.
pub const DEFAULT_MAX_HEADERS: usize = 128;

/// Largest whole head, request line and fields together: 64 KiB.
///
/// Without it a head of 128 maximal fields could hold a megabyte per connection. Past it a
/// request is refused with 431.
pub const DEFAULT_MAX_HEAD_SIZE: usize = 64 * 1024;

/// Most bytes of chunk extensions across one chunked body: 16 KiB, as hyper caps them.
/// Extensions carry nothing Tandem uses, so the cap only stops a flood (`docs/security.md`,
/// A16).
pub const DEFAULT_MAX_CHUNK_EXTENSIONS_SIZE: usize = 16 * 1024;

/// Most bytes of trailer section after a chunked body: 16 KiB, as hyper caps it
/// (aiohttp CVE-2026-22815 was an unbounded trailer section).
pub const DEFAULT_MAX_TRAILER_SIZE: usize = 16 * 1024;

/// The limits a parser enforces. `Limits::default()` holds the `DEFAULT_*` constants.
///
/// ```
/// use tandem_proto::Limits;
///
/// let limits = Limits::default().max_headers(64).max_line_size(4096);
/// assert_eq!(limits.get_max_headers(), 64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::struct_field_names,
    reason = "the limits keep aiohttp's names, max_line_size and so on"
)]
pub struct Limits {
    max_line_size: usize,
    max_field_size: usize,
    max_headers: usize,
    max_head_size: usize,
    max_chunk_extensions_size: usize,
    max_trailer_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_size: DEFAULT_MAX_LINE_SIZE,
            max_field_size: DEFAULT_MAX_FIELD_SIZE,
            max_headers: DEFAULT_MAX_HEADERS,
            max_head_size: DEFAULT_MAX_HEAD_SIZE,
            max_chunk_extensions_size: DEFAULT_MAX_CHUNK_EXTENSIONS_SIZE,
            max_trailer_size: DEFAULT_MAX_TRAILER_SIZE,
        }
    }
}

macro_rules! limit {
    ($(#[$doc:meta])* $field:ident, $getter:ident) => {
        $(#[$doc])*
        #[must_use]
        pub const fn $field(mut self, value: usize) -> Self {
            self.$field = value;
            self
        }

        #[doc = concat!("The current `", stringify!($field), "`.")]
        pub const fn $getter(&self) -> usize {
            self.$field
        }
    };
}

impl Limits {
    limit!(
        /// Overrides [`DEFAULT_MAX_LINE_SIZE`].
        max_line_size,
        get_max_line_size
    );
    limit!(
        /// Overrides [`DEFAULT_MAX_FIELD_SIZE`].
        max_field_size,
        get_max_field_size
    );
    limit!(
        /// Overrides [`DEFAULT_MAX_HEADERS`]; it applies to trailers too.
        max_headers,
        get_max_headers
    );
    limit!(
        /// Overrides [`DEFAULT_MAX_HEAD_SIZE`]. Heads are also capped at 4 GiB whatever
        /// this says, because field positions are stored as `u32`.
        max_head_size,
        get_max_head_size
    );
    limit!(
        /// Overrides [`DEFAULT_MAX_CHUNK_EXTENSIONS_SIZE`].
        max_chunk_extensions_size,
        get_max_chunk_extensions_size
    );
    limit!(
        /// Overrides [`DEFAULT_MAX_TRAILER_SIZE`].
        max_trailer_size,
        get_max_trailer_size
    );

    /// The head limit actually enforced: the configured one, capped so that every offset
    /// fits the `u32` positions heads store.
    pub(crate) fn head_cap(&self) -> usize {
        self.max_head_size.min(u32::MAX as usize)
    }

    /// Checks a head's fields that came as a map (an HTTP/2 head) by the rules their lines
    /// would be checked by on HTTP/1.1: at most `max_headers` of them
    /// ([`ErrorKind::TooManyHeaders`]), none longer than `max_field_size` as its line,
    /// `name: value` ([`ErrorKind::FieldTooLong`]).
    ///
    /// ```
    /// use tandem_proto::{ErrorKind, Limits};
    ///
    /// let mut fields = http::HeaderMap::new();
    /// fields.insert("x-long", "l".repeat(100).parse().unwrap());
    /// assert!(Limits::default().check_head_fields(&fields).is_ok());
    /// let refused = Limits::default().max_field_size(50).check_head_fields(&fields);
    /// assert_eq!(refused.unwrap_err().kind(), ErrorKind::FieldTooLong);
    /// ```
    pub fn check_head_fields(&self, fields: &http::HeaderMap) -> Result<(), Error> {
        if fields.len() > self.max_headers {
            return Err(ErrorKind::TooManyHeaders.into());
        }
        if fields.iter().any(|(name, value)| self.field_too_long(name.as_ref(), value.as_bytes())) {
            return Err(ErrorKind::FieldTooLong.into());
        }
        Ok(())
    }

    /// Checks a trailer section that came as a map (HTTP/2's) by the rules of a chunked
    /// body's trailer lines: at most `max_headers` fields, none longer than `max_field_size`
    /// as its line, and no more than `max_trailer_size` of lines with their CRLFs in all;
    /// past any, [`ErrorKind::TrailerTooLarge`].
    pub fn check_trailer_fields(&self, fields: &http::HeaderMap) -> Result<(), Error> {
        let mut total = 0;
        for (name, value) in fields {
            let (name, value) = (name.as_ref(), value.as_bytes());
            total += field_line_len(name, value) + 2;
            if self.field_too_long(name, value) || total > self.max_trailer_size {
                return Err(ErrorKind::TrailerTooLarge.into());
            }
        }
        if fields.len() > self.max_headers {
            return Err(ErrorKind::TrailerTooLarge.into());
        }
        Ok(())
    }

    /// Whether a field that came as a name and a value (an HTTP/2 head's or trailer's, or a
    /// head a tower service built) is longer than `max_field_size`, measured as the line
    /// HTTP/1.1 would carry it, `name: value`, with the value as given: whitespace around it
    /// counts, as it does in a line on the wire. The HTTP/1.1 parsers measure the lines
    /// themselves; every other path asks here, so a field is judged alike however it came.
    pub(crate) fn field_too_long(&self, name: &[u8], value: &[u8]) -> bool {
        field_line_len(name, value) > self.max_field_size
    }
}

/// The length of a field's line as HTTP/1.1 carries it, `name: value`, without its CRLF.
pub(crate) fn field_line_len(name: &[u8], value: &[u8]) -> usize {
    name.len() + 2 + value.len()
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::{RequestParser, ResponseParser};

    /// A field whose line is `max_field_size` long passes and one a byte longer is refused,
    /// with or without whitespace around its value, alike over HTTP/1.1 (a request and a
    /// response, whole and byte by byte), in a server's HTTP/2 request (`parse_parts`) and
    /// in a client's HTTP/2 response (`check_head_fields`): the whitespace is part of the
    /// line on the wire, so it counts on every path.
    #[test]
    fn a_field_at_the_limit_is_judged_alike_however_it_arrives() {
        const MAX: usize = 40;
        let limits = Limits::default().max_field_size(MAX);
        let line_start = "x-f: ";
        for over in [0, 1] {
            for (before, after) in [("", ""), (" ", ""), ("", "\t"), ("  ", " ")] {
                let fill = MAX + over - line_start.len() - before.len() - after.len();
                let value = format!("{before}{}{after}", "v".repeat(fill));
                let field = format!("{line_start}{value}\r\n");
                assert_eq!(field.len() - 2, MAX + over);

                let request = format!("GET / HTTP/1.1\r\nhost: h\r\n{field}\r\n");
                let whole = RequestParser::with_limits(limits)
                    .parse(&mut BytesMut::from(request.as_bytes()))
                    .map(|head| assert!(head.is_some()));
                let mut parser = RequestParser::with_limits(limits);
                let mut buf = BytesMut::new();
                let mut split = Ok(());
                for &byte in request.as_bytes() {
                    buf.extend_from_slice(&[byte]);
                    match parser.parse(&mut buf) {
                        Ok(None) => {}
                        Ok(Some(_)) => break,
                        Err(e) => {
                            split = Err(e);
                            break;
                        }
                    }
                }
                let response = format!("HTTP/1.1 200 OK\r\n{field}content-length: 0\r\n\r\n");
                let h1_response = ResponseParser::with_limits(limits)
                    .parse(&mut BytesMut::from(response.as_bytes()), &http::Method::GET)
                    .map(|head| assert!(head.is_some()));

                let (parts, ()) = http::Request::get("http://h/")
                    .version(http::Version::HTTP_2)
                    .header("x-f", &value)
                    .body(())
                    .unwrap()
                    .into_parts();
                let h2_server = RequestParser::with_limits(limits).parse_parts(&parts).map(drop);
                let mut fields = http::HeaderMap::new();
                fields.insert("x-f", value.parse().unwrap());
                let h2_client = limits.check_head_fields(&fields);

                for (path, verdict) in [
                    ("HTTP/1.1 request", whole),
                    ("HTTP/1.1 request byte by byte", split),
                    ("HTTP/1.1 response", h1_response),
                    ("HTTP/2 request", h2_server),
                    ("HTTP/2 response", h2_client),
                ] {
                    match verdict {
                        Ok(()) => assert_eq!(over, 0, "{path} took {field:?}"),
                        Err(e) => {
                            assert_eq!(over, 1, "{path} refused {field:?}: {e}");
                            assert_eq!(e.kind(), ErrorKind::FieldTooLong, "{path}");
                        }
                    }
                }
            }
        }
    }
}
