//! Encoding: heads written into a caller's buffer, and body framing.
//!
//! Everything that will be written is checked before the first byte is: a CR, LF, NUL or
//! other control byte in a reason phrase, target or header value would let a caller's data
//! split one message into two (response splitting, aiohttp CVE-2026-34519; request-line
//! injection, CVE-2023-49082). `http`'s checked constructors already refuse most of them,
//! but `HeaderValue::from_maybe_shared_unchecked` and friends exist, so the writer checks
//! again; the check is one pass over bytes it is about to copy anyway.

pub(crate) mod body;
pub(crate) mod date;
pub(crate) mod head;

/// Whether `b` may be written inside a field value or reason phrase:
/// `HTAB / SP / VCHAR / obs-text` (RFC 9110 §5.5).
const fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

fn is_field_text(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| is_field_byte(b))
}
