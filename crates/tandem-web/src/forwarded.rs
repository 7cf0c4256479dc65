//! RFC 7239 `Forwarded`: `for=192.0.2.43;proto=https;host=example.com, for="[2001:db8::1]"`.
//!
//! Parsed strictly, as its values decide who the client is: tokens and quoted strings as
//! RFC 9110 spells them, each parameter at most once in an element, at most
//! [`DEFAULT_MAX_FORWARDED_ELEMENTS`] elements. Anything else is refused whole rather than
//! read in part, since a lenient reading is where spoofing hides. One pass over the bytes;
//! no input panics.

use std::net::{IpAddr, SocketAddr};

use crate::{HttpError, Request};

/// The most `Forwarded` elements (proxy hops) read from one request, over all its
/// `Forwarded` fields; more is a 400. Override it with
/// [`TrustedProxies::max_elements`](crate::TrustedProxies::max_elements).
pub const DEFAULT_MAX_FORWARDED_ELEMENTS: usize = 16;

/// One element of a `Forwarded` field: what one proxy said about the request it received
/// (aiohttp's `ForwardedElement`, a read-only mapping). Names are lower-cased; values are
/// unquoted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardedElement {
    pairs: Vec<(String, String)>,
}

impl ForwardedElement {
    /// The value of parameter `name` (any case): `for`, `by`, `proto`, `host` or an
    /// extension.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `for=` as an address: `192.0.2.1`, `"192.0.2.1:8080"` or `"[2001:db8::1]:8080"`
    /// (port 0 when none is given). `None` for `unknown`, an obfuscated node (`_hidden`),
    /// or no `for=`.
    pub fn for_addr(&self) -> Option<SocketAddr> {
        node_addr(self.get("for")?)
    }

    /// `proto=`, the scheme the proxy was asked with.
    pub fn proto(&self) -> Option<&str> {
        self.get("proto")
    }

    /// `host=`, the `Host` the proxy was asked for.
    pub fn host(&self) -> Option<&str> {
        self.get("host")
    }

    /// Every parameter in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

impl Request {
    /// The `Forwarded` fields parsed (aiohttp's `request.forwarded`): one element per proxy,
    /// the client's nearest first. A malformed field, or more than
    /// [`DEFAULT_MAX_FORWARDED_ELEMENTS`] elements, is a 400.
    ///
    /// Anyone can send this header: it says who the client is only when it comes from a
    /// proxy you trust, which [`TrustedProxies`](crate::TrustedProxies) checks.
    pub fn forwarded(&self) -> Result<Vec<ForwardedElement>, HttpError> {
        parse_fields(self.head().fields().get_all("forwarded"), DEFAULT_MAX_FORWARDED_ELEMENTS)
    }
}

/// Every element of `fields`, one `Forwarded` field each, in order; at most `max`.
pub(crate) fn parse_fields<'a>(
    fields: impl Iterator<Item = &'a [u8]>,
    max: usize,
) -> Result<Vec<ForwardedElement>, HttpError> {
    let mut elements = Vec::new();
    for field in fields {
        parse_field(field, max, &mut elements).map_err(|text| {
            HttpError::bad_request().with_text(format!("400: malformed Forwarded: {text}"))
        })?;
    }
    Ok(elements)
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_field(
    field: &[u8],
    max: usize,
    out: &mut Vec<ForwardedElement>,
) -> Result<(), &'static str> {
    let skip_ows = |at: &mut usize| {
        while field.get(*at).is_some_and(|b| matches!(b, b' ' | b'\t')) {
            *at += 1;
        }
    };
    let mut at = 0;
    let mut element = ForwardedElement::default();
    // Whether the element under way has anything in it, for the list rule: empty list
    // items (`a=1, , b=2`) are skipped.
    let mut started = false;
    loop {
        skip_ows(&mut at);
        match field.get(at) {
            None | Some(b',') => {
                if started {
                    if out.len() == max {
                        return Err("too many elements");
                    }
                    out.push(std::mem::take(&mut element));
                    started = false;
                }
                if at == field.len() {
                    return Ok(());
                }
                at += 1;
                continue;
            }
            Some(b';') => {
                started = true;
                at += 1;
                continue;
            }
            Some(_) => {}
        }
        let name_start = at;
        while field.get(at).copied().is_some_and(is_tchar) {
            at += 1;
        }
        if at == name_start || field.get(at) != Some(&b'=') {
            return Err("a parameter is not token=value");
        }
        let name = String::from_utf8_lossy(&field[name_start..at]).to_ascii_lowercase();
        at += 1;
        let value = if field.get(at) == Some(&b'"') {
            at += 1;
            let mut value = Vec::new();
            loop {
                match field.get(at) {
                    None => return Err("an unterminated quoted string"),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        let escaped = *field.get(at + 1).ok_or("an unterminated quoted string")?;
                        if escaped < 0x20 && escaped != b'\t' || escaped == 0x7f {
                            return Err("a control character");
                        }
                        value.push(escaped);
                        at += 2;
                    }
                    Some(&b) if b < 0x20 && b != b'\t' || b == 0x7f => {
                        return Err("a control character");
                    }
                    Some(&b) => {
                        value.push(b);
                        at += 1;
                    }
                }
            }
            at += 1;
            String::from_utf8(value).map_err(|_| "a value is not UTF-8")?
        } else {
            let start = at;
            while field.get(at).copied().is_some_and(is_tchar) {
                at += 1;
            }
            if at == start {
                return Err("an empty value");
            }
            String::from_utf8_lossy(&field[start..at]).into_owned()
        };
        if element.get(&name).is_some() {
            return Err("a parameter appears twice in an element");
        }
        element.pairs.push((name, value));
        started = true;
        skip_ows(&mut at);
        if !matches!(field.get(at), None | Some(b';' | b',')) {
            return Err("junk after a value");
        }
    }
}

/// An RFC 7239 node (`for=`, `by=`) as an address: an IPv4 address or a bracketed IPv6
/// one, each with an optional port. `unknown` and obfuscated names are `None`.
pub(crate) fn node_addr(node: &str) -> Option<SocketAddr> {
    let (ip, port) = if let Some(rest) = node.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: std::net::Ipv6Addr = ip.parse().ok()?;
        (IpAddr::V6(ip), after)
    } else {
        let end = node.find(':').unwrap_or(node.len());
        let ip: std::net::Ipv4Addr = node[..end].parse().ok()?;
        (IpAddr::V4(ip), &node[end..])
    };
    Some(SocketAddr::new(ip, port_suffix(port)?))
}

/// What follows a host: nothing (port 0, "not said"), or `:` and a port of ASCII digits
/// only; anything else, a sign or a port past 65535 included, is `None`.
pub(crate) fn port_suffix(rest: &str) -> Option<u16> {
    if rest.is_empty() {
        return Some(0);
    }
    let digits = rest.strip_prefix(':')?;
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(field: &str) -> Result<Vec<ForwardedElement>, HttpError> {
        parse_fields(std::iter::once(field.as_bytes()), DEFAULT_MAX_FORWARDED_ELEMENTS)
    }

    #[test]
    fn rfc_examples() {
        let elements = parse(
            r#"for="_gazonk"; By=203.0.113.43 ,for=192.0.2.60;proto=http;by="[2001:db8::1]:80",, for="[2001:db8:cafe::17]:4711";host="a\"b""#,
        )
        .unwrap();
        assert_eq!(elements.len(), 3);
        assert_eq!(elements[0].get("for"), Some("_gazonk"));
        assert_eq!(elements[0].get("by"), Some("203.0.113.43"));
        assert_eq!(elements[0].for_addr(), None);
        assert_eq!(elements[1].for_addr(), Some("192.0.2.60:0".parse().unwrap()));
        assert_eq!(elements[1].proto(), Some("http"));
        assert_eq!(elements[2].for_addr(), Some("[2001:db8:cafe::17]:4711".parse().unwrap()));
        assert_eq!(elements[2].host(), Some("a\"b"));
        assert_eq!(parse("").unwrap(), []);
        assert_eq!(parse(" , ").unwrap(), []);
    }

    #[test]
    fn malformed_fields_are_refused_whole() {
        for bad in [
            "for",
            "for=",
            "=1.2.3.4",
            "for=1.2.3.4;for=5.6.7.8",
            "for=\"1.2.3.4",
            "for=\"a\\",
            "for=[::1]",
            "for=1.2.3.4 junk",
            "for=\"a\"b",
            "for=\"a\u{1}\"",
            "fo r=1",
        ] {
            assert_eq!(parse(bad).unwrap_err().status(), 400, "{bad}");
        }
        let many = vec!["for=1.2.3.4"; DEFAULT_MAX_FORWARDED_ELEMENTS + 1].join(",");
        assert!(parse(&many).is_err());
        let enough = vec!["for=1.2.3.4"; DEFAULT_MAX_FORWARDED_ELEMENTS].join(",");
        assert_eq!(parse(&enough).unwrap().len(), DEFAULT_MAX_FORWARDED_ELEMENTS);
        // Non-UTF-8 bytes anywhere: refused or kept as replacement text, never a panic.
        let _ = parse_fields(std::iter::once(&b"for=\"\xff\xfe\""[..]), 4);
        let _ = parse_fields(std::iter::once(&b"\xff=1"[..]), 4);
    }

    #[test]
    fn nodes() {
        for (node, addr) in [
            ("10.0.0.1", Some("10.0.0.1:0")),
            ("10.0.0.1:8080", Some("10.0.0.1:8080")),
            ("[::1]", Some("[::1]:0")),
            ("[::1]:443", Some("[::1]:443")),
            ("unknown", None),
            ("_obf", None),
            ("10.0.0.1:", None),
            ("10.0.0.1:99999", None),
            ("10.0.0.1:+80", None),
            ("::1", None),
            ("[::1", None),
            ("[10.0.0.1]", None),
        ] {
            assert_eq!(node_addr(node), addr.map(|a| a.parse().unwrap()), "{node}");
        }
    }
}
