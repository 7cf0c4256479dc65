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

use bytes::{Bytes, BytesMut};

use crate::{
    Limits,
    error::{Error, ErrorKind},
    semantics::is_token,
};
use scan::{HeadScanner, LineEndings};

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

/// Takes a complete head off the front of `buf`, parsed by `parse`.
///
/// The fast path: when the scanner has seen nothing of this head yet, `parse` (httparse
/// plus our checks) runs on the buffer directly; most heads arrive in one read, and then
/// every byte is examined once. If the head is incomplete, the scanner takes over: it
/// resumes where it stopped on each later read, enforces the limits as bytes arrive, and
/// `parse` runs once more, when the head is whole. Either way, the work is linear in the
/// head's size however it is split.
fn take_head<P>(
    scanner: &mut HeadScanner,
    buf: &mut BytesMut,
    limits: &Limits,
    endings: LineEndings,
    check_line: scan::LineCheck,
    parse: impl Fn(&[u8]) -> Result<Option<(usize, P)>, Error>,
) -> Result<Option<(Bytes, P)>, Error> {
    if scanner.is_fresh() {
        match parse(buf) {
            Ok(Some((len, parsed))) => return Ok(Some((buf.split_to(len).freeze(), parsed))),
            Ok(None) => {}
            Err(early) => {
                // The verdict must not depend on how the bytes arrived, so ask the scanner,
                // which is what a split delivery hears. httparse's early word stands only
                // where the scanner has not reached a verdict of its own yet.
                return match HeadScanner::default().scan(buf, limits, endings, check_line) {
                    Err(verdict) => Err(verdict),
                    Ok(_) => Err(early),
                };
            }
        }
    }
    let Some(len) = scanner.scan(buf, limits, endings, check_line)? else {
        return Ok(None);
    };
    *scanner = HeadScanner::default();
    // The scanner found the empty line ending the head, so httparse cannot want more; if
    // it does, the head is malformed in a way the scanner does not look for.
    let (parsed_len, parsed) = parse(&buf[..len])?.ok_or(ErrorKind::LineEnding)?;
    debug_assert_eq!(parsed_len, len);
    Ok(Some((buf.split_to(len).freeze(), parsed)))
}

/// Checks the line endings and line limits of a complete head from the positions httparse
/// reported, without scanning its bytes again.
///
/// Each field line starts at its name (httparse refuses leading whitespace), so line `i`
/// ends just before line `i + 1` starts, and the empty line ends the head. With
/// `CrlfOnly`, every line must end in CRLF: httparse alone accepts a bare LF.
fn check_lines(
    head: &[u8],
    fields: &[httparse::Header<'_>],
    limits: &Limits,
    endings: LineEndings,
) -> Result<(), Error> {
    let base = head.as_ptr() as usize;
    // The empty line: CRLF, or LF alone where allowed.
    let empty_line = if head.ends_with(b"\r\n") {
        head.len() - 2
    } else if endings == LineEndings::AllowBareLf {
        head.len() - 1
    } else {
        return Err(ErrorKind::LineEnding.into());
    };
    let mut line_start = skip_empty_lines(head);
    let mut limit = limits.get_max_line_size();
    let mut too_long = ErrorKind::RequestLineTooLong;
    let next_starts = fields.iter().map(|f| f.name.as_ptr() as usize - base).chain([empty_line]);
    for next in next_starts {
        if next < 2 {
            return Err(ErrorKind::LineEnding.into());
        }
        let content_end = match (head[next - 2], endings) {
            (b'\r', _) => next - 2,
            (_, LineEndings::AllowBareLf) => next - 1,
            (_, LineEndings::CrlfOnly) => return Err(ErrorKind::LineEnding.into()),
        };
        if content_end.saturating_sub(line_start) > limit {
            return Err(too_long.into());
        }
        line_start = next;
        limit = limits.get_max_field_size();
        too_long = ErrorKind::FieldTooLong;
    }
    if head.len() > limits.head_cap() {
        return Err(ErrorKind::HeadTooLarge.into());
    }
    Ok(())
}

/// Where the start line begins, after the empty lines httparse skips.
pub(super) fn skip_empty_lines(head: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match &head[at..] {
            [b'\r', b'\n', ..] => at += 2,
            [b'\n', ..] => at += 1,
            _ => return at,
        }
    }
}

/// Checks a request head's line as it arrives: the request line, or a field line.
pub(crate) fn check_request_line(index: usize, line: &[u8]) -> Result<(), Error> {
    if index > 0 {
        return check_field_line(line);
    }
    match httparse::Request::new(&mut []).parse(line) {
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Ok(()),
        Err(err) => Err(httparse_error(err, line)),
    }
}

/// Checks a response head's line as it arrives: the status line, or a field line.
pub(crate) fn check_response_line(index: usize, line: &[u8]) -> Result<(), Error> {
    if index > 0 {
        return check_field_line(line);
    }
    match httparse::Response::new(&mut []).parse(line) {
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Ok(()),
        Err(err) => Err(httparse_error(err, line)),
    }
}

fn check_field_line(line: &[u8]) -> Result<(), Error> {
    let mut one = [httparse::EMPTY_HEADER; 1];
    match httparse::parse_headers(line, &mut one) {
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Ok(()),
        Err(err) => Err(httparse_error(err, line)),
    }
}
