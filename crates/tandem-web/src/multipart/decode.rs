//! The small grammars of a multipart body: header parameters, `Content-Disposition`,
//! part lengths, `Content-Transfer-Encoding: base64` and charsets.
//!
//! Everything here reads untrusted bytes and answers a value or "malformed", never a panic;
//! each loop is a single pass over its input.

use crate::HttpError;
pub(super) use crate::header_params::{Repeated, param, params};

/// A part's field name and file name from its `Content-Disposition`.
///
/// `filename*` (RFC 5987, `UTF-8''a%20b.txt`) wins over `filename`, as RFC 6266 says. A
/// `filename*` in a charset other than UTF-8 or ISO-8859-1, or that does not decode, falls
/// back to `filename`, else is returned as sent. File names are the client's words and
/// untrusted: `../../etc/passwd` comes back as it was sent. Any of the three given twice is
/// an error (see [`Repeated`]).
pub(super) fn disposition(value: &str) -> Result<(Option<String>, Option<String>), Repeated> {
    let params = params(value);
    let name = param(&params, "name")?.map(str::to_owned);
    let plain = param(&params, "filename")?.map(str::to_owned);
    let filename = match param(&params, "filename*")? {
        Some(ext) => ext_value(ext).or(plain).or_else(|| Some(ext.to_owned())),
        None => plain,
    };
    Ok((name, filename))
}

/// Decodes an RFC 5987 `charset'language'percent-encoded` value.
fn ext_value(value: &str) -> Option<String> {
    let mut pieces = value.splitn(3, '\'');
    let (charset, _language, encoded) = (pieces.next()?, pieces.next()?, pieces.next()?);
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(encoded).collect();
    match charset.to_ascii_lowercase().as_str() {
        "utf-8" => String::from_utf8(bytes).ok(),
        "iso-8859-1" | "latin1" => Some(bytes.into_iter().map(char::from).collect()),
        _ => None,
    }
}

/// A part's `Content-Length`: ASCII digits only, so `+5`, `-1` and `1_0` are refused
/// (aiohttp #12794).
pub(super) fn content_length(value: &[u8]) -> Result<u64, HttpError> {
    let bad = || HttpError::bad_request().with_text("400: bad Content-Length in a multipart part");
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)
}

/// Decodes a part's text in the charset its `Content-Type` names (UTF-8 by default),
/// refusing bytes that are not valid in it.
pub(super) fn decode_text(bytes: &[u8], content_type: Option<&str>) -> Result<String, HttpError> {
    crate::charset::decode(bytes, content_type).map_err(|err| {
        HttpError::bad_request().with_text(if err.is_unknown() {
            "400: unknown charset in a multipart part"
        } else {
            "400: a form field is not valid text"
        })
    })
}

/// A streaming, strict base64 decoder for `Content-Transfer-Encoding: base64` parts. Line
/// breaks and spaces are skipped; any other byte outside the alphabet, data after padding, or
/// a final group cut short is an error.
#[derive(Debug, Default)]
pub(super) struct Base64 {
    group: [u8; 4],
    len: usize,
    padded: bool,
}

impl Base64 {
    pub(super) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), HttpError> {
        for &byte in input {
            if matches!(byte, b'\r' | b'\n' | b' ' | b'\t') {
                continue;
            }
            if self.padded {
                return Err(invalid_base64());
            }
            self.group[self.len] = byte;
            self.len += 1;
            if self.len == 4 {
                self.len = 0;
                self.decode_group(out)?;
            }
        }
        Ok(())
    }

    pub(super) fn finish(&self) -> Result<(), HttpError> {
        if self.len == 0 { Ok(()) } else { Err(invalid_base64()) }
    }

    fn decode_group(&mut self, out: &mut Vec<u8>) -> Result<(), HttpError> {
        let [_, _, c, d] = self.group;
        let pads = match (c, d) {
            (b'=', b'=') => 2,
            (_, b'=') => 1,
            (b'=', _) => return Err(invalid_base64()),
            _ => 0,
        };
        let mut n = 0u32;
        for &byte in &self.group[..4 - pads] {
            n = n << 6 | u32::from(sextet(byte).ok_or_else(invalid_base64)?);
        }
        n <<= 6 * pads as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pads]);
        self.padded = pads > 0;
        Ok(())
    }
}

fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn invalid_base64() -> HttpError {
    HttpError::bad_request().with_text("400: invalid base64 in a multipart part")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_verbatim_and_extended() {
        let (name, file) =
            disposition(r#"form-data; name="f"; filename="../../etc/passwd""#).unwrap();
        assert_eq!((name.as_deref(), file.as_deref()), (Some("f"), Some("../../etc/passwd")));
        let (_, file) = disposition("form-data; name=f; filename*=UTF-8''..%2F..%2Fx").unwrap();
        assert_eq!(file.as_deref(), Some("../../x"));
        let (_, file) = disposition("form-data; name=f; filename*=bogus''x").unwrap();
        assert_eq!(file.as_deref(), Some("bogus''x"));
        let (_, file) =
            disposition(r#"form-data; name=f; filename="plain"; filename*=bogus''x"#).unwrap();
        assert_eq!(file.as_deref(), Some("plain"));
        let (_, file) = disposition("form-data; name=f; filename=").unwrap();
        assert_eq!(file.as_deref(), Some(""));
        let (name, _) = disposition(r#"form-data; name="a\"b;c""#).unwrap();
        assert_eq!(name.as_deref(), Some("a\"b;c"));
        assert_eq!(disposition("form-data").unwrap(), (None, None));
        assert_eq!(disposition("form-data; ;;=; name").unwrap(), (None, None));
        for twice in [
            r#"form-data; name="a"; name="b""#,
            r#"form-data; name=f; filename="a.txt"; filename="a.php""#,
            "form-data; name=f; filename*=UTF-8''a; FILENAME*=UTF-8''b",
        ] {
            assert!(disposition(twice).is_err(), "{twice}");
        }
    }

    #[test]
    fn lengths_are_digits_only() {
        assert_eq!(content_length(b"10").unwrap(), 10);
        for bad in [&b"+5"[..], b"-1", b"1_0", b"", b" 1", b"99999999999999999999999"] {
            assert!(content_length(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn base64_is_strict_and_streams() {
        let decode = |input: &[u8], step: usize| {
            let mut decoder = Base64::default();
            let mut out = Vec::new();
            for piece in input.chunks(step) {
                decoder.feed(piece, &mut out)?;
            }
            decoder.finish().map(|()| out)
        };
        for step in 1..8 {
            assert_eq!(decode(b"aGVs\r\nbG8=", step).unwrap(), b"hello");
            assert_eq!(decode(b"aGk=", step).unwrap(), b"hi");
            assert_eq!(decode(b"aA==", step).unwrap(), b"h");
        }
        for bad in [&b"aGk"[..], b"a!==", b"aA==aA==", b"a=A=", b"****"] {
            assert!(decode(bad, 3).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn charsets() {
        assert_eq!(decode_text(b"caf\xe9", Some("text/plain; charset=latin1")).unwrap(), "café");
        assert!(decode_text(b"caf\xe9", None).is_err());
        assert!(decode_text(b"x", Some("text/plain; charset=klingon")).is_err());
    }
}
