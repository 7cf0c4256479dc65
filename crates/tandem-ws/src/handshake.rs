//! The opening handshake (RFC 6455 §4): the pieces both sides compute.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use http::HeaderMap;

/// RFC 6455's fixed GUID, appended to the key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID.as_bytes());
    STANDARD.encode(ctx.finish())
}

#[cfg(feature = "client")]
/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64-encoded.
pub(crate) fn new_key() -> std::io::Result<String> {
    let mut key = [0; 16];
    crate::masking::fill(&mut key)?;
    Ok(STANDARD.encode(key))
}

#[cfg(feature = "server")]
/// Whether a key is the base64 of exactly 16 bytes, as RFC 6455 §4.2.1 requires.
pub(crate) fn key_is_valid(key: &[u8]) -> bool {
    key.len() == 24 && STANDARD.decode(key).is_ok_and(|k| k.len() == 16)
}

/// A field that RFC 6455 allows once, given more than once.
#[derive(Debug)]
pub(crate) struct Repeated;

/// The one value of the field `name`, `None` without one: fields read as one value are
/// refused when repeated, never read first-wins.
pub(crate) fn only(
    headers: &HeaderMap,
    name: http::header::HeaderName,
) -> Result<Option<&[u8]>, Repeated> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (value, None) => Ok(value.map(http::HeaderValue::as_bytes)),
        (_, Some(_)) => Err(Repeated),
    }
}

/// Whether any value of the field `name` lists `token` (comma-separated, any case).
pub(crate) fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The values of a comma-separated list field, trimmed, across every line of it.
pub(crate) fn list_values(
    headers: &HeaderMap,
    name: http::header::HeaderName,
) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_key_gives_the_rfc_accept() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[cfg(all(feature = "client", feature = "server"))]
    #[test]
    fn keys_must_be_sixteen_bytes_of_base64() {
        assert!(key_is_valid(new_key().unwrap().as_bytes()));
        assert!(!key_is_valid(b"dGhlIHNhbXBsZQ=="));
        assert!(!key_is_valid(b"not base64 at all, not at all"));
        assert!(!key_is_valid(b""));
    }
}
