//! Parsed heads: the start line, the fields, and what they mean for framing.
//!
//! A head keeps the bytes it was parsed from as one [`Bytes`] and records where each field
//! lies in them, rather than building a [`HeaderMap`] up front: a lookup of the few fields a
//! server reads is cheaper than hashing every field of every request, and
//! [`Fields::to_header_map`] builds the map, sharing the value bytes, when it is wanted.

use std::{fmt, ops::Range};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, uri::PathAndQuery,
};

/// How the body after a head is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: a request with neither `Content-Length` nor `Transfer-Encoding`, or a
    /// response to HEAD, a 1xx, 204 or 304.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the connection closes (responses only).
    UntilClose,
}

/// Byte offsets into a head's bytes. `u32` keeps a field's record at 16 bytes; heads are
/// capped well below 4 GiB (see [`crate::Limits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span of `part`, a subslice of `whole`, or an empty span if `part` lies
    /// elsewhere (httparse returns a static `""` for some absent parts).
    pub(crate) fn of(whole: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        if start > whole.len() || part.len() > whole.len() - start {
            return Span { start: 0, end: 0 };
        }
        Span { start: start as u32, end: (start + part.len()) as u32 }
    }

    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldSpan {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// The header fields of a head, in the order they arrived, with their original case.
///
/// Lookups compare names case-insensitively. Values are bytes: HTTP allows obs-text
/// (0x80–0xFF) in them, and Tandem never guesses an encoding for them.
#[derive(Clone)]
pub struct Fields {
    raw: Bytes,
    spans: Vec<FieldSpan>,
}

impl Fields {
    pub(crate) fn new(raw: Bytes, spans: Vec<FieldSpan>) -> Self {
        Fields { raw, spans }
    }

    /// The fields of `map`, in its order: a head that arrived in another form, such as an
    /// HTTP/2 HEADERS frame, read through the same lookups. Names and values are copied
    /// into one buffer.
    pub fn from_header_map(map: &HeaderMap) -> Self {
        let size = map.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
        let mut raw = Vec::with_capacity(size);
        let mut spans = span_list(map.len());
        for (name, value) in map {
            let at = |raw: &Vec<u8>, len: usize| {
                let start = raw.len() as u32;
                Span { start, end: start + len as u32 }
            };
            let name_span = at(&raw, name.as_str().len());
            raw.extend_from_slice(name.as_str().as_bytes());
            let value_span = at(&raw, value.len());
            raw.extend_from_slice(value.as_bytes());
            spans.push(FieldSpan { name: name_span, value: value_span });
        }
        Fields { raw: raw.into(), spans }
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The value of the first field called `name` (any case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        let field =
            self.spans.iter().find(|f| self.raw[f.name.range()].eq_ignore_ascii_case(name))?;
        Some(&self.raw[field.value.range()])
    }

    /// The values of every field called `name` (any case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        // Names are compared as bytes: a lookup costs no UTF-8 check per field.
        self.spans
            .iter()
            .filter(move |f| self.raw[f.name.range()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| &self.raw[f.value.range()])
    }

    /// Every field as `(name, value)`, names in the case they arrived in.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.spans.iter().map(|f| (self.name_str(f), &self.raw[f.value.range()]))
    }

    fn name_str(&self, f: &FieldSpan) -> &str {
        // The parser only records names that httparse checked to be tokens, which are
        // ASCII; an empty string can never be returned for a real field.
        std::str::from_utf8(&self.raw[f.name.range()]).unwrap_or_default()
    }

    /// The fields as an [`http::HeaderMap`]. Values share this head's bytes, so no value
    /// is copied; names are lower-cased into `HeaderName`s.
    pub fn to_header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.spans.len());
        for f in &self.spans {
            // Both conversions succeed for every field the parser accepted (names are
            // tokens, values have no CR, LF, NUL or other controls); a failure would only
            // drop the field, never panic.
            let name = HeaderName::from_bytes(&self.raw[f.name.range()]);
            let value = HeaderValue::from_maybe_shared(self.raw.slice(f.value.range()));
            if let (Ok(name), Ok(value)) = (name, value) {
                map.append(name, value);
            }
        }
        map
    }
}

/// The capacity of every field-position list kept for reuse: heads with more fields than
/// this get a list of their own, freed with them.
pub(crate) const POOLED_SPANS: usize = 16;

/// Field-position lists kept per thread for reuse, at most this many.
const SPAN_POOL_LEN: usize = 64;

thread_local! {
    static SPAN_POOL: std::cell::RefCell<Vec<Vec<FieldSpan>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty list for at least `n` field positions, reused if `n` fits a pooled one.
///
/// A list per head would be one allocation and one free per request; reusing them through a
/// per-thread pool costs a borrow and a push or pop instead.
#[expect(
    clippy::inline_always,
    reason = "one call per parsed head, from both instances of the generic `parse_fields`, \
              which the compiler otherwise keeps out of line"
)]
#[inline(always)]
pub(crate) fn span_list(n: usize) -> Vec<FieldSpan> {
    if n > POOLED_SPANS {
        return Vec::with_capacity(n);
    }
    SPAN_POOL
        .with(|pool| pool.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(POOLED_SPANS))
}

impl Drop for Fields {
    fn drop(&mut self) {
        if self.spans.capacity() != POOLED_SPANS {
            return;
        }
        let mut spans = std::mem::take(&mut self.spans);
        spans.clear();
        // `try_with`: a head dropped while the thread's locals are torn down just frees.
        let _ = SPAN_POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < SPAN_POOL_LEN {
                pool.push(spans);
            }
        });
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter().map(|(n, v)| (n, String::from_utf8_lossy(v)))).finish()
    }
}

/// What a head says about the connection beyond its body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
    pub(crate) upgrade: bool,
}

/// A parsed request head, with its framing checked.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub(crate) method: Method,
    pub(crate) version: Version,
    pub(crate) target: Span,
    /// Where the target's query starts: the index of its `?`, or its length.
    pub(crate) query_at: u32,
    pub(crate) fields: Fields,
    pub(crate) framing: BodyFraming,
    pub(crate) flags: Flags,
}

impl RequestHead {
    /// The method, exactly as sent (methods are case-sensitive: `get` is not `GET`).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request target as sent: origin-form (`/a?b`), absolute-form (`http://h/a`),
    /// authority-form (`h:443`, CONNECT only) or `*` (OPTIONS only).
    pub fn target(&self) -> &str {
        // The parser accepts only visible ASCII in targets.
        std::str::from_utf8(&self.fields.raw[self.target.range()]).unwrap_or_default()
    }

    /// The path of an origin-form or absolute-form target, without the query; `*` or the
    /// authority for the other forms.
    pub fn path(&self) -> &str {
        // The parser accepts only visible ASCII in targets, so this cannot fail.
        std::str::from_utf8(self.path_bytes()).unwrap_or_default()
    }

    /// The bytes of [`path`](Self::path), for a caller that can look them up as bytes (the
    /// server's router does, on every request): the target is visible ASCII, so they are
    /// found without a UTF-8 check.
    pub fn path_bytes(&self) -> &[u8] {
        let target = &self.fields.raw[self.target.range()];
        // The parser found the query as it checked the target's bytes.
        let target = target.get(..self.query_at as usize).unwrap_or(target);
        if target.first() == Some(&b'/') {
            target
        } else if let Some(i) = memchr::memmem::find(target, b"://") {
            let after = &target[i + 3..];
            memchr::memchr(b'/', after).map_or(&b"/"[..], |p| &after[p..])
        } else {
            target
        }
    }

    /// The query string after `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        let target = self.target();
        memchr::memchr(b'?', target.as_bytes()).map(|i| &target[i + 1..])
    }

    /// The target as an [`http::Uri`], sharing this head's bytes.
    ///
    /// An origin-form target is always a path and query, even one starting with `//`,
    /// which `Uri` alone would read as an authority.
    pub fn uri(&self) -> Uri {
        let target = self.fields.raw.slice(self.target.range());
        // The parser checked the target against a byte set and forms that `Uri` accepts
        // (a unit test and the fuzz target assert it), so the fallback never runs.
        let uri = if target.first() == Some(&b'/') {
            PathAndQuery::from_maybe_shared(target).map(Uri::from)
        } else {
            Uri::from_maybe_shared(target)
        };
        uri.unwrap_or_else(|_| Uri::from(PathAndQuery::from_static("/")))
    }

    /// The header fields.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// How the body is delimited.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the connection may carry another request after this one: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        self.flags.keep_alive
    }

    /// Whether the client sent `Expect: 100-continue` on HTTP/1.1 and waits for
    /// `100 Continue` before sending its body.
    pub fn expect_continue(&self) -> bool {
        self.flags.expect_continue
    }

    /// The protocol asked for by `Connection: upgrade` with `Upgrade: <protocol>`, such as
    /// `websocket`.
    pub fn upgrade(&self) -> Option<&[u8]> {
        if self.flags.upgrade {
            self.fields.get_all("upgrade").find(|v| !v.is_empty())
        } else {
            None
        }
    }

    /// Whether this is a CONNECT request, whose connection becomes a tunnel once answered
    /// with 2xx.
    pub fn is_connect(&self) -> bool {
        self.method == Method::CONNECT
    }
}

/// A parsed response head, with its framing worked out from the request it answers.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub(crate) version: Version,
    pub(crate) status: StatusCode,
    pub(crate) reason: Span,
    pub(crate) fields: Fields,
    pub(crate) framing: BodyFraming,
    pub(crate) flags: Flags,
}

impl ResponseHead {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase as sent, which may be empty and may hold obs-text.
    pub fn reason(&self) -> &[u8] {
        &self.fields.raw[self.reason.range()]
    }

    /// The header fields.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// How the body is delimited.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the connection may be reused after this response's body. Never when the body
    /// runs until close, or when both `Content-Length` and `Transfer-Encoding` were sent.
    pub fn keep_alive(&self) -> bool {
        self.flags.keep_alive
    }

    /// Whether this is a `101 Switching Protocols` answering an upgrade.
    pub fn is_upgrade(&self) -> bool {
        self.flags.upgrade
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use crate::RequestParser;

    #[test]
    fn paths_of_every_target_form() {
        let heads = [
            ("GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", "/plaintext"),
            ("GET /a/b?c=d&e HTTP/1.1\r\nHost: a\r\n\r\n", "/a/b"),
            ("GET /? HTTP/1.1\r\nHost: a\r\n\r\n", "/"),
            ("GET //x?y HTTP/1.1\r\nHost: a\r\n\r\n", "//x"),
            ("GET http://h.example/p/q?r HTTP/1.1\r\nHost: h.example\r\n\r\n", "/p/q"),
            ("GET http://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n", "/"),
            ("GET http://h.example?q HTTP/1.1\r\nHost: h.example\r\n\r\n", "/"),
            // A URL in the query is not the path.
            ("GET http://h.example?u=http://x/y HTTP/1.1\r\nHost: h.example\r\n\r\n", "/"),
            ("GET /a?u=http://x/y HTTP/1.1\r\nHost: a\r\n\r\n", "/a"),
            ("CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n", "h.example:443"),
            ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "*"),
        ];
        for (text, path) in heads {
            let mut buf = BytesMut::from(text);
            let head = RequestParser::new().parse(&mut buf).unwrap().unwrap();
            assert_eq!(head.path(), path, "{text:?}");
            assert_eq!(head.path_bytes(), path.as_bytes(), "{text:?}");
        }
    }

    /// Fields made from a map read as the map: in order, repeated names kept.
    #[test]
    fn fields_from_a_header_map() {
        let mut map = http::HeaderMap::new();
        map.append("set-cookie", "a=1".parse().unwrap());
        map.insert("content-type", "text/plain".parse().unwrap());
        map.append("set-cookie", "b=2".parse().unwrap());
        let fields = super::Fields::from_header_map(&map);
        assert_eq!(fields.len(), 3);
        assert_eq!(fields.get("Content-Type"), Some(&b"text/plain"[..]));
        assert_eq!(fields.get_all("set-cookie").collect::<Vec<_>>(), [b"a=1", b"b=2"]);
        assert_eq!(fields.to_header_map(), map);
        assert!(super::Fields::from_header_map(&http::HeaderMap::new()).is_empty());
    }
}
