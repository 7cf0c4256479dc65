//! Text in the charset a `Content-Type` names: `Request::text` and multipart text parts.
//!
//! With the `multipart` feature every WHATWG label is known (`encoding_rs`); without it only
//! UTF-8 and US-ASCII are, and another charset is refused as unknown rather than guessed.

use crate::header_params::{Repeated, param, params};

/// Why a body is not text.
#[derive(Debug)]
pub(crate) enum CharsetError {
    /// The charset is not one this build knows.
    Unknown,
    /// The bytes are not valid in the charset.
    Invalid,
}

impl CharsetError {
    pub(crate) fn is_unknown(&self) -> bool {
        matches!(self, CharsetError::Unknown)
    }
}

/// The `charset` parameter of a `Content-Type` value, as sent; `None` if it names none or
/// names it twice (no one charset).
pub(crate) fn charset_of(content_type: &str) -> Option<String> {
    charset_param(content_type).ok().flatten()
}

fn charset_param(content_type: &str) -> Result<Option<String>, Repeated> {
    let params = params(content_type);
    Ok(param(&params, "charset")?.map(|label| label.trim().to_owned()))
}

/// `bytes` decoded in the charset `content_type` names, UTF-8 if it names none; bytes that
/// are not valid in it are refused, never replaced. A charset named twice is unknown.
pub(crate) fn decode(bytes: &[u8], content_type: Option<&str>) -> Result<String, CharsetError> {
    let label = match content_type.map(charset_param).transpose() {
        Ok(label) => label.flatten(),
        Err(Repeated) => return Err(CharsetError::Unknown),
    };
    decode_label(bytes, label.as_deref())
}

#[cfg(feature = "multipart")]
fn decode_label(bytes: &[u8], label: Option<&str>) -> Result<String, CharsetError> {
    let encoding = match label {
        Some(label) => {
            encoding_rs::Encoding::for_label(label.as_bytes()).ok_or(CharsetError::Unknown)?
        }
        None => encoding_rs::UTF_8,
    };
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(std::borrow::Cow::into_owned)
        .ok_or(CharsetError::Invalid)
}

#[cfg(not(feature = "multipart"))]
fn decode_label(bytes: &[u8], label: Option<&str>) -> Result<String, CharsetError> {
    let label = label.unwrap_or("utf-8");
    let known = ["utf-8", "utf8", "us-ascii", "ascii"];
    if !known.iter().any(|k| label.eq_ignore_ascii_case(k)) {
        return Err(CharsetError::Unknown);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| CharsetError::Invalid)?;
    let ascii_only = label.to_ascii_lowercase().contains("ascii");
    if ascii_only && !text.is_ascii() {
        return Err(CharsetError::Invalid);
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets() {
        assert_eq!(decode(b"caf\xc3\xa9", None).unwrap(), "café");
        assert!(!decode(b"caf\xe9", None).unwrap_err().is_unknown());
        assert!(decode(b"x", Some("text/plain; charset=klingon")).unwrap_err().is_unknown());
        assert_eq!(charset_of("text/plain; charset=\"UTF-8\"").as_deref(), Some("UTF-8"));
        let twice = "text/plain; charset=utf-8; charset=latin1";
        assert_eq!(charset_of(twice), None);
        assert!(decode(b"x", Some(twice)).unwrap_err().is_unknown());
        #[cfg(feature = "multipart")]
        assert_eq!(decode(b"caf\xe9", Some("text/plain; charset=latin1")).unwrap(), "café");
    }
}
