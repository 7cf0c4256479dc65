//! One pass over a head's fields: record where each lies, and read the ones that frame the
//! message.

use crate::{
    error::{Error, ErrorKind},
    head::{FieldSpan, Span, span_list},
    semantics::{
        ConnectionOptions, TransferCoding, check_host, parse_content_length,
        parse_transfer_encoding,
    },
};

/// Which side's rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// aiohttp-strict: singleton fields may not repeat, `Transfer-Encoding` must be known
    /// and end in `chunked`, `Host` is checked.
    Request,
    /// Lenient, as aiohttp's response parser: fields may repeat (real servers send two
    /// `Content-Type`s), except a `Content-Length` that disagrees with itself.
    Response,
}

/// What the framing fields of a head said.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FramingFields {
    pub(crate) content_length: Option<u64>,
    pub(crate) transfer_coding: Option<TransferCoding>,
    pub(crate) connection: ConnectionOptions,
    /// `Some(true)` for `Expect: 100-continue`, `Some(false)` for any other expectation.
    pub(crate) expect: Option<bool>,
    pub(crate) host: bool,
    pub(crate) upgrade: bool,
}

/// The fields aiohttp refuses to see twice in a request (`SINGLETON_HEADERS` in
/// `http_parser.py`), even with equal values: a second `Host` or `Content-Length` is how
/// smuggling and routing bypasses start (CVE-2026-34525).
#[derive(Clone, Copy)]
enum Field {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Expect,
    Upgrade,
    /// Another singleton, by its bit in the seen-set.
    Singleton(u16),
    Other,
}

const SEEN_HOST: u16 = 1;
const SEEN_CONTENT_LENGTH: u16 = 1 << 1;
const SEEN_TRANSFER_ENCODING: u16 = 1 << 2;

/// Classifies a field name. Dispatching on the length first keeps this to one or two
/// case-insensitive comparisons per field.
#[expect(
    clippy::inline_always,
    reason = "it runs for every field of every head, and with `parse_fields` generic over two \
              callers' field lists the compiler stopped inlining it"
)]
#[inline(always)]
fn classify(name: &[u8]) -> Field {
    let is = |known: &str| eq_lowercase(name, known.as_bytes());
    match name.len() {
        4 if is("host") => Field::Host,
        4 if is("etag") => Field::Singleton(1 << 3),
        6 if is("expect") => Field::Expect,
        6 if is("server") => Field::Singleton(1 << 4),
        7 if is("upgrade") => Field::Upgrade,
        10 if is("connection") => Field::Connection,
        10 if is("user-agent") => Field::Singleton(1 << 5),
        12 if is("content-type") => Field::Singleton(1 << 6),
        12 if is("max-forwards") => Field::Singleton(1 << 7),
        13 if is("content-range") => Field::Singleton(1 << 8),
        14 if is("content-length") => Field::ContentLength,
        16 if is("content-location") => Field::Singleton(1 << 9),
        17 if is("transfer-encoding") => Field::TransferEncoding,
        _ => Field::Other,
    }
}

/// Whether `name` equals `lower`, a lower-case name of letters and `-`, in any case.
///
/// Setting bit 0x20 lower-cases a letter; of the bytes a token may hold, only letters land
/// on a lower-case letter that way, and only `-` on `-`. So one OR per byte does what
/// `eq_ignore_ascii_case` does with a table lookup per side.
pub(crate) fn eq_lowercase(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.iter().zip(lower).all(|(&a, &b)| a | 0x20 == b)
}

/// httparse's fields as the name and value pairs [`parse_fields`] reads.
pub(crate) fn field_pairs<'h>(
    fields: &'h [httparse::Header<'h>],
) -> impl ExactSizeIterator<Item = (&'h [u8], &'h [u8])> {
    fields.iter().map(|field| (field.name.as_bytes(), field.value))
}

/// Records the position of every field of `head` (each name and value a subslice of it)
/// and reads the framing fields.
pub(crate) fn parse_fields<'h>(
    head: &'h [u8],
    fields: impl ExactSizeIterator<Item = (&'h [u8], &'h [u8])>,
    role: Role,
) -> Result<(Vec<FieldSpan>, FramingFields), Error> {
    let strict = role == Role::Request;
    let mut spans = span_list(fields.len());
    let mut found = FramingFields::default();
    let mut seen = 0u16;
    let mut once = |bit: u16| -> Result<(), Error> {
        if strict && seen & bit != 0 {
            return Err(ErrorKind::DuplicateHeader.into());
        }
        seen |= bit;
        Ok(())
    };
    for (name, value) in fields {
        spans.push(FieldSpan { name: Span::of(head, name), value: Span::of(head, value) });
        match classify(name) {
            Field::Other => {}
            Field::Host => {
                once(SEEN_HOST)?;
                if strict {
                    check_host(value)?;
                }
                found.host = true;
            }
            Field::ContentLength => {
                once(SEEN_CONTENT_LENGTH)?;
                let n = parse_content_length(value)?;
                // A response may repeat Content-Length only with the same value
                // (RFC 9110 §8.6); two different lengths are two different messages.
                if found.content_length.is_some_and(|prev| prev != n) {
                    return Err(ErrorKind::ContentLength.into());
                }
                found.content_length = Some(n);
            }
            Field::TransferEncoding => {
                once(SEEN_TRANSFER_ENCODING)?;
                found.transfer_coding = Some(parse_transfer_encoding(value, strict)?);
            }
            Field::Connection => found.connection.add(value),
            Field::Expect => {
                // Two `Expect` fields are one list (RFC 9110 §5.3), so an expectation other
                // than 100-continue is unmet in whichever field it came, as in `a, b`.
                let continue_ = value.eq_ignore_ascii_case(b"100-continue");
                found.expect = Some(found.expect.unwrap_or(true) && continue_);
            }
            // Any field naming a protocol asks for one: an empty field after it must not
            // hide the request a proxy in front may already be tunnelling for.
            Field::Upgrade => found.upgrade |= !value.is_empty(),
            Field::Singleton(bit) => once(bit)?,
        }
    }
    Ok((spans, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the framing fields say of `values`, each sent as a field called `name`.
    fn found_in(name: &[u8], values: &[&[u8]]) -> FramingFields {
        let head: Vec<u8> = values.concat();
        let mut at = 0;
        let pairs: Vec<(&[u8], &[u8])> = values
            .iter()
            .map(|v| {
                let value = &head[at..at + v.len()];
                at += v.len();
                (name, value)
            })
            .collect();
        parse_fields(&head, pairs.into_iter(), Role::Request).unwrap().1
    }

    fn expect_of(values: &[&[u8]]) -> Option<bool> {
        found_in(b"Expect", values).expect
    }

    fn upgrade_of(values: &[&[u8]]) -> bool {
        found_in(b"Upgrade", values).upgrade
    }

    /// The last `Upgrade` field used to decide alone: `websocket` then an empty field read
    /// as no upgrade, so the server went on parsing what a proxy in front, having forwarded
    /// an upgrade, may be tunnelling.
    #[test]
    fn any_upgrade_field_naming_a_protocol_asks_for_one() {
        assert!(upgrade_of(&[b"websocket"]));
        assert!(upgrade_of(&[b"websocket", b""]));
        assert!(upgrade_of(&[b"", b"websocket"]));
        assert!(!upgrade_of(&[b""]));
        assert!(!upgrade_of(&[]));
    }

    /// The last `Expect` field used to decide alone: `bogus` then `100-continue` read as
    /// 100-continue, while the same list in one field (`bogus, 100-continue`) was unmet.
    #[test]
    fn an_expectation_other_than_100_continue_in_any_field_is_unmet() {
        assert_eq!(expect_of(&[b"100-continue"]), Some(true));
        assert_eq!(expect_of(&[b"100-continue", b"100-Continue"]), Some(true));
        assert_eq!(expect_of(&[b"bogus", b"100-continue"]), Some(false));
        assert_eq!(expect_of(&[b"100-continue", b"bogus"]), Some(false));
        assert_eq!(expect_of(&[]), None);
    }
}
