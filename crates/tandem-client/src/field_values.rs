//! The values of `Link` (RFC 8288) and `Content-Disposition` (RFC 6266) as aiohttp parses
//! them for `resp.links` and `resp.content_disposition`. Hand-written: both are a token or
//! `<uri>` followed by `; name=value` parameters, a few dozen lines that no well-kept crate
//! covers together without pulling in a whole typed-header stack.

use percent_encoding::percent_decode;
use url::Url;

/// One link of a `Link` field (aiohttp's `resp.links` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The target, resolved against the response's URL.
    pub url: Url,
    /// The `rel` parameter as sent (space-separated relation types), if any.
    pub rel: Option<String>,
    /// Every parameter, names lower-cased, values unquoted, in order.
    pub params: Vec<(String, String)>,
}

impl Link {
    /// Whether `rel` is one of this link's relation types (compared without case).
    pub fn has_rel(&self, rel: &str) -> bool {
        self.rel
            .as_deref()
            .is_some_and(|r| r.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case(rel)))
    }
}

/// A parsed `Content-Disposition` field (aiohttp's `ContentDisposition`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentDisposition {
    /// The disposition type, lower-cased: `attachment`, `inline`, `form-data`.
    pub disposition_type: String,
    /// Every parameter, names lower-cased, values unquoted (`filename*` still encoded).
    pub params: Vec<(String, String)>,
}

impl ContentDisposition {
    /// The file name: `filename*` (RFC 5987, UTF-8 or ISO-8859-1, percent-decoded) when
    /// present and readable, else `filename`. Only the last path segment is kept, so a name
    /// like `../../etc/passwd` cannot lead a caller that saves it out of its directory.
    pub fn filename(&self) -> Option<String> {
        let extended = self.param("filename*").and_then(decode_ext_value);
        let name = extended.or_else(|| self.param("filename").map(str::to_owned))?;
        let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
        (!last.is_empty() && last != "." && last != "..").then(|| last.to_owned())
    }

    /// The parameter `name` (lower case), unquoted.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn parse(value: &str) -> Option<ContentDisposition> {
        let (kind, rest) = value.split_at(value.find(';').unwrap_or(value.len()));
        let kind = kind.trim();
        if kind.is_empty() || !kind.bytes().all(is_token_byte) {
            return None;
        }
        let (params, _) = parse_params(rest, false);
        Some(ContentDisposition { disposition_type: kind.to_ascii_lowercase(), params })
    }
}

/// The parameter `name` of a field value such as a `Content-Type`
/// (`multipart/mixed; boundary="x"`), unquoted.
pub(crate) fn param(value: &str, name: &str) -> Option<String> {
    let rest = &value[value.find(';')?..];
    parse_params(rest, false)
        .0
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Every link in the `Link` field values `values`, resolved against `base`; a malformed
/// link ends the parse of its field value, keeping those before it.
pub(crate) fn parse_links<'a>(values: impl Iterator<Item = &'a str>, base: &Url) -> Vec<Link> {
    let mut links = Vec::new();
    for value in values {
        let mut rest = value;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            let Some(after) = rest.strip_prefix('<') else { break };
            let Some((target, after)) = after.split_once('>') else { break };
            let (params, after) = parse_params(after, true);
            rest = after;
            let Ok(url) = base.join(target.trim()) else { continue };
            let rel = params.iter().find(|(n, _)| n == "rel").map(|(_, v)| v.clone());
            links.push(Link { url, rel, params });
        }
    }
    links
}

/// `; name=value` parameters (a value a token or a quoted string), up to the end or, with
/// `stop_at_comma`, a comma outside quotes; returns them and what follows.
fn parse_params(mut rest: &str, stop_at_comma: bool) -> (Vec<(String, String)>, &str) {
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        let Some(after) = rest.strip_prefix(';') else { break };
        let after = after.trim_start_matches([' ', '\t']);
        let name_end =
            after.find(|c: char| !c.is_ascii() || !is_token_byte(c as u8)).unwrap_or(after.len());
        let (name, after) = after.split_at(name_end);
        let after = after.trim_start_matches([' ', '\t']);
        let (value, after) = match after.strip_prefix('=') {
            Some(v) => parse_value(v.trim_start_matches([' ', '\t']), stop_at_comma),
            None => (String::new(), after),
        };
        rest = after;
        if !name.is_empty() {
            params.push((name.to_ascii_lowercase(), value));
        }
    }
    (params, rest)
}

/// A quoted string (backslash escapes undone) or a token, and what follows it.
fn parse_value(s: &str, stop_at_comma: bool) -> (String, &str) {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (out, &quoted[i + 1..]),
                '\\' => out.extend(chars.next().map(|(_, c)| c)),
                c => out.push(c),
            }
        }
        return (out, "");
    }
    let end = s.find(|c| c == ';' || (stop_at_comma && c == ',')).unwrap_or(s.len());
    (s[..end].trim_end().to_owned(), &s[end..])
}

/// RFC 5987's `charset'language'percent-encoded`, for UTF-8 and ISO-8859-1.
fn decode_ext_value(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let (charset, _language, encoded) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes: Vec<u8> = percent_decode(encoded.as_bytes()).collect();
    if charset.eq_ignore_ascii_case("utf-8") {
        String::from_utf8(bytes).ok()
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        Some(bytes.iter().map(|&b| char::from(b)).collect())
    } else {
        None
    }
}

/// RFC 9110's `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_and_keep_their_params() {
        let base = Url::parse("http://a.example/items?page=2").unwrap();
        let value =
            r#"<?page=3>; rel="next"; title="a, b", <http://b.example/1>;rel=first last ,<bad"#;
        let links = parse_links([value].into_iter(), &base);
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].url.as_str(), "http://a.example/items?page=3");
        assert_eq!(links[0].rel.as_deref(), Some("next"));
        assert_eq!(links[0].params[1], ("title".to_owned(), "a, b".to_owned()));
        assert!(links[1].has_rel("LAST") && links[1].has_rel("first") && !links[1].has_rel("next"));
    }

    #[test]
    fn content_disposition_prefers_the_extended_filename_and_drops_paths() {
        let cd = ContentDisposition::parse(
            r#"Attachment; filename="fallback.txt"; filename*=UTF-8''na%C3%AFve%20file.txt"#,
        )
        .unwrap();
        assert_eq!(cd.disposition_type, "attachment");
        assert_eq!(cd.filename().as_deref(), Some("naïve file.txt"));
        let cd = ContentDisposition::parse(r#"inline; filename="..\\..\\x\"y.txt""#).unwrap();
        assert_eq!(cd.filename().as_deref(), Some("x\"y.txt"));
        let cd = ContentDisposition::parse("attachment; filename=\"../..\"").unwrap();
        assert_eq!(cd.filename(), None);
        assert!(ContentDisposition::parse("  ; x=1").is_none());
    }
}
