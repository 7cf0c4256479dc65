//! The conditional-request fields, parsed (aiohttp's `if_match`, `if_none_match`,
//! `if_modified_since`, `if_unmodified_since`, `if_range`).
//!
//! Malformed dates are ignored, as RFC 9110 §13.1.3 says a recipient must; an entity-tag
//! list stops at its first malformed element and keeps those before it, as aiohttp does.

use std::time::SystemTime;

use crate::Request;

/// An entity tag: aiohttp's `ETag(value, is_weak)`. [`Display`](std::fmt::Display) writes
/// it as a field holds it: `"abc"` or `W/"abc"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ETag {
    value: String,
    weak: bool,
}

impl ETag {
    /// A strong tag with `value` (without quotes). `None` if `value` holds a character an
    /// entity tag may not (a quote, a space, a control).
    pub fn strong(value: &str) -> Option<ETag> {
        value.bytes().all(etagc).then(|| ETag { value: value.to_owned(), weak: false })
    }

    /// A strong tag from a value made of `etagc` characters by construction (a file's
    /// `<mtime>-<size>` in hex, say).
    pub(crate) fn strong_from_valid(value: String) -> ETag {
        debug_assert!(value.bytes().all(etagc), "{value:?}");
        ETag { value, weak: false }
    }

    /// A weak tag with `value` (without quotes); `None` as for [`strong`](Self::strong).
    pub fn weak(value: &str) -> Option<ETag> {
        Some(ETag { weak: true, ..ETag::strong(value)? })
    }

    /// The tag's value, without quotes or `W/`.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the tag is weak (`W/"..."`).
    pub fn is_weak(&self) -> bool {
        self.weak
    }

    /// RFC 9110 §8.8.3.2's comparison: weak compares values only; strong also needs both
    /// tags strong.
    pub fn matches(&self, other: &ETag, weak: bool) -> bool {
        self.value == other.value && (weak || !self.weak && !other.weak)
    }
}

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        write!(f, "\"{}\"", self.value)
    }
}

/// An `If-Match` or `If-None-Match` value: `*`, or a list of tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ETagList {
    /// `*`: any current representation.
    Any,
    /// The tags listed.
    Tags(Vec<ETag>),
}

impl ETagList {
    /// Whether the list names `etag` (`*` names any), comparing weakly or strongly: `If-Match`
    /// compares strongly, `If-None-Match` weakly.
    pub fn matches(&self, etag: &ETag, weak: bool) -> bool {
        match self {
            ETagList::Any => true,
            ETagList::Tags(tags) => tags.iter().any(|tag| tag.matches(etag, weak)),
        }
    }
}

/// An `If-Range` value: an entity tag or a date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfRange {
    /// The representation's strong entity tag.
    ETag(ETag),
    /// Its `Last-Modified` date.
    Date(SystemTime),
}

/// RFC 9110 `etagc`: `!`, `#` to `~`, and obs-text.
fn etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

/// One entity tag at the start of `text`, and what follows it.
fn parse_one(text: &str) -> Option<(ETag, &str)> {
    let (weak, rest) = match text.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let body = rest.strip_prefix('"')?;
    let end = body.find('"')?;
    let value = &body[..end];
    value.bytes().all(etagc).then(|| (ETag { value: value.to_owned(), weak }, &body[end + 1..]))
}

fn parse_list(value: &str) -> ETagList {
    if value.trim() == "*" {
        return ETagList::Any;
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let Some((tag, after)) = parse_one(rest) else { break };
        tags.push(tag);
        rest = after;
        if !rest.trim_start_matches([' ', '\t']).starts_with(',') {
            break;
        }
    }
    ETagList::Tags(tags)
}

fn parse_date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value.trim()).ok()
}

impl Request {
    /// `If-Match`, parsed; `None` without one.
    pub fn if_match(&self) -> Option<ETagList> {
        self.header("if-match").map(parse_list)
    }

    /// `If-None-Match`, parsed; `None` without one.
    ///
    /// ```
    /// use tandem_web::{ETag, HttpError, Request, Response};
    ///
    /// async fn article(req: Request) -> Result<Response, HttpError> {
    ///     let current = ETag::strong("v42").unwrap();
    ///     if req.if_none_match().is_some_and(|list| list.matches(&current, true)) {
    ///         return Ok(Response::text("").with_status(http::StatusCode::NOT_MODIFIED));
    ///     }
    ///     Ok(Response::text("the article").with_header("etag", &current.to_string()))
    /// }
    /// ```
    pub fn if_none_match(&self) -> Option<ETagList> {
        self.header("if-none-match").map(parse_list)
    }

    /// `If-Modified-Since` as a time; `None` without one or if it is not an HTTP-date.
    pub fn if_modified_since(&self) -> Option<SystemTime> {
        self.header("if-modified-since").and_then(parse_date)
    }

    /// `If-Unmodified-Since` as a time; `None` without one or if it is not an HTTP-date.
    pub fn if_unmodified_since(&self) -> Option<SystemTime> {
        self.header("if-unmodified-since").and_then(parse_date)
    }

    /// `If-Range`: a date or an entity tag; `None` without one or if it is neither.
    pub fn if_range(&self) -> Option<IfRange> {
        let value = self.header("if-range")?.trim();
        if let Some((tag, rest)) = parse_one(value) {
            return rest.is_empty().then_some(IfRange::ETag(tag));
        }
        parse_date(value).map(IfRange::Date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[(&str, bool)]) -> ETagList {
        ETagList::Tags(
            list.iter().map(|(v, weak)| ETag { value: (*v).to_owned(), weak: *weak }).collect(),
        )
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list(" * "), ETagList::Any);
        assert_eq!(
            parse_list(r#""a", W/"b",,"c""#),
            tags(&[("a", false), ("b", true), ("c", false)])
        );
        assert_eq!(parse_list(r#""a,b", "c""#), tags(&[("a,b", false), ("c", false)]));
        // Stops at the first malformed element.
        assert_eq!(parse_list(r#""a", garbage, "c""#), tags(&[("a", false)]));
        assert_eq!(parse_list(r#""unterminated"#), tags(&[]));
        assert_eq!(parse_list(r#""a" "b""#), tags(&[("a", false)]));
        assert_eq!(parse_list(""), tags(&[]));
    }

    #[test]
    fn comparison() {
        let strong = ETag::strong("x").unwrap();
        let weak = ETag::weak("x").unwrap();
        assert!(strong.matches(&weak, true));
        assert!(!strong.matches(&weak, false));
        assert!(strong.matches(&strong, false));
        assert_eq!(weak.to_string(), "W/\"x\"");
        assert!(ETag::strong("a\"b").is_none());
        assert!(ETagList::Any.matches(&weak, false));
    }
}
