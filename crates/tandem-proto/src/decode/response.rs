//! The response-head parser: lenient where aiohttp's is, strict where it matters.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::{Method, StatusCode, Version};

use super::{
    check_lines, check_response_line,
    fields::{FramingFields, Role, field_pairs, parse_fields},
    httparse_error,
    request::STACK_HEADERS,
    scan::{HeadScanner, LineEndings},
    skip_empty_lines, take_head,
};
use crate::{
    BodyFraming, Limits,
    error::{Error, ErrorKind},
    head::{FieldSpan, Fields, Flags, ResponseHead, Span},
};

/// Parses response heads from a client connection's read buffer, push-style.
///
/// As aiohttp's response parser, it accepts a bare LF as a line end and repeated fields
/// (real servers send both), and it still refuses NUL and other control bytes in values
/// (CVE-2026-34520), folded lines, a status outside 100–999, and two different
/// `Content-Length`s. Interim 1xx heads are returned like any other; the caller reads on
/// for the final one.
///
/// ```
/// use bytes::BytesMut;
/// use http::Method;
/// use tandem_proto::{BodyFraming, ResponseParser};
///
/// let mut parser = ResponseParser::new();
/// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..]);
/// let head = parser.parse(&mut buf, &Method::GET).unwrap().unwrap();
/// assert_eq!(head.status(), 200);
/// assert_eq!(head.framing(), BodyFraming::Length(2));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ResponseParser {
    limits: Limits,
    scanner: HeadScanner,
}

impl ResponseParser {
    /// A parser with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        ResponseParser { limits, scanner: HeadScanner::default() }
    }

    /// Parses the head at the front of `buf`, if it has all arrived. `request_method` is
    /// the method of the request it answers: a response to HEAD has no body, and a 2xx to
    /// CONNECT turns the connection into a tunnel.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        request_method: &Method,
    ) -> Result<Option<ResponseHead>, Error> {
        let limits = &self.limits;
        let head = take_head(
            &mut self.scanner,
            buf,
            limits,
            LineEndings::AllowBareLf,
            check_response_line,
            |bytes| parse_head(bytes, limits, request_method),
        )?;
        Ok(head.map(|(raw, parsed)| {
            let Parsed { version, status, reason, spans, framing, flags } = parsed;
            ResponseHead {
                version,
                status,
                reason,
                fields: Fields::new(raw, spans),
                framing,
                flags,
            }
        }))
    }
}

/// Runs httparse on `bytes` with header storage sized by the limits.
fn parse_head(
    bytes: &[u8],
    limits: &Limits,
    request_method: &Method,
) -> Result<Option<(usize, Parsed)>, Error> {
    let max = limits.get_max_headers();
    if max <= STACK_HEADERS {
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        parse_borrowed(bytes, &mut storage[..max], limits, request_method)
    } else {
        let mut storage = Vec::with_capacity(max);
        storage.resize_with(max, MaybeUninit::uninit);
        parse_borrowed(bytes, &mut storage, limits, request_method)
    }
}

/// A response head parsed from borrowed bytes, before the head takes ownership of them.
struct Parsed {
    version: Version,
    status: StatusCode,
    reason: Span,
    spans: Vec<FieldSpan>,
    framing: BodyFraming,
    flags: Flags,
}

fn parse_borrowed<'b>(
    bytes: &'b [u8],
    storage: &mut [MaybeUninit<httparse::Header<'b>>],
    limits: &Limits,
    request_method: &Method,
) -> Result<Option<(usize, Parsed)>, Error> {
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, bytes, storage)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(httparse_error(e, bytes)),
    };
    check_lines(&bytes[..len], res.headers, limits, LineEndings::AllowBareLf)?;
    let version = if res.version == Some(1) { Version::HTTP_11 } else { Version::HTTP_10 };
    let status = res.code.ok_or(ErrorKind::Status)?;
    let status = StatusCode::from_u16(status).map_err(|_| ErrorKind::Status)?;
    // httparse drops a reason holding obs-text (0x80-0xFF), which RFC 9112 allows, so the
    // reason is taken from the status line it validated: everything after
    // `HTTP/1.x NNN `, up to the line's end.
    let line_start = skip_empty_lines(bytes);
    let line_end =
        memchr::memchr(b'\n', &bytes[line_start..]).map_or(bytes.len(), |i| line_start + i);
    let line = &bytes[line_start..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let reason = Span::of(bytes, line.get(13..).unwrap_or_default());
    let (spans, found) = parse_fields(bytes, field_pairs(res.headers), Role::Response)?;
    let FramingFields { content_length, transfer_coding, connection, .. } = found;

    let http11 = version == Version::HTTP_11;
    // RFC 9112 §6.3, in its order.
    let no_body = *request_method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || (*request_method == Method::CONNECT && status.is_success());
    let framing = if no_body {
        BodyFraming::Empty
    } else if let Some(coding) = transfer_coding {
        if coding.chunked { BodyFraming::Chunked } else { BodyFraming::UntilClose }
    } else {
        match content_length {
            Some(0) => BodyFraming::Empty,
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::UntilClose,
        }
    };
    // A response with both CL and TE may have been framed differently by something on the
    // way (RFC 9112 §6.3 item 3): read it by TE, then never reuse the connection.
    let ambiguous = content_length.is_some() && transfer_coding.is_some();
    let flags = Flags {
        keep_alive: connection.keep_alive(http11)
            && framing != BodyFraming::UntilClose
            && !ambiguous,
        expect_continue: false,
        upgrade: status == StatusCode::SWITCHING_PROTOCOLS,
    };
    Ok(Some((len, Parsed { version, status, reason, spans, framing, flags })))
}
