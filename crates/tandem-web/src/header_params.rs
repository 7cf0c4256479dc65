//! The parameters of a header value, `type; name=value; name="quoted"`: a request's
//! `Content-Type` charset and a multipart part's `Content-Disposition` read them the same way.
//!
//! It reads untrusted bytes in a single pass and never panics.

/// The parameters of a header value such as `form-data; name="a"; filename="b.txt"`, after
/// its first item, as lower-cased names and unquoted values. Quoted values may hold `;` and
/// backslash escapes, as curl and aiohttp write them.
pub(crate) fn params(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    // Skip the first item: the disposition type or the media type.
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        let mut name = String::new();
        let mut has_value = false;
        for c in chars.by_ref() {
            if c == '=' || c == ';' {
                has_value = c == '=';
                break;
            }
            name.push(c);
        }
        if !has_value {
            // A parameter without `=` carries nothing.
            if chars.peek().is_none() {
                return out;
            }
            continue;
        }
        while chars.peek().is_some_and(char::is_ascii_whitespace) {
            chars.next();
        }
        let mut text = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => text.extend(chars.next()),
                    c => text.push(c),
                }
            }
            // Whatever follows the closing quote, up to the next `;`, is junk.
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
            }
        } else {
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
                text.push(c);
            }
            text.truncate(text.trim_end().len());
        }
        let name = name.trim().to_ascii_lowercase();
        if !name.is_empty() {
            out.push((name, text));
        }
        if chars.peek().is_none() {
            return out;
        }
    }
}

/// A parameter given more than once (`boundary=a; boundary=b`). Parsers disagree on which
/// one counts (aiohttp's `Content-Type` takes the first, its `Content-Disposition` drops
/// them all, others take the last), so a proxy or a filter in front may read another value
/// than the handler: it is refused, never resolved either way (RFC 6838 §4.3 calls it an
/// error).
#[derive(Debug)]
pub(crate) struct Repeated;

/// The value of parameter `name` in `params`, `None` without one.
pub(crate) fn param<'a>(
    params: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, Repeated> {
    let mut found = params.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str());
    match (found.next(), found.next()) {
        (value, None) => Ok(value),
        (_, Some(_)) => Err(Repeated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_escaped_and_bare_values() {
        let p = params(r#"text/plain; Charset="utf-8"; q=a\"b; x; =y; last = z "#);
        assert_eq!(param(&p, "charset").unwrap(), Some("utf-8"));
        assert_eq!(param(&p, "last").unwrap(), Some("z"));
        assert_eq!(param(&p, "none").unwrap(), None);
        assert_eq!(params("text/plain"), []);
        assert_eq!(param(&params(r#"a; n="x;y\"z""#), "n").unwrap(), Some("x;y\"z"));
    }

    #[test]
    fn a_repeated_parameter_is_refused_in_any_case_or_quoting() {
        for value in ["a; n=1; n=1", "a; n=1; N=\"2\"", "a; n=1; x=2; n =3"] {
            assert!(param(&params(value), "n").is_err(), "{value}");
            assert!(param(&params(value), "x").is_ok(), "{value}");
        }
    }
}
