//! Route patterns: `/hello/{name}`, `/items/{id:\d+}`, `/static/{path:.*}`.
//!
//! A pattern whose variables are all whole segments of the default kind (`/users/{id}/posts`,
//! the common shape) is matched by walking the path: each variable takes up to the next `/`.
//! Any other (a variable with its own regex, or one sharing a segment with text, as in
//! `/{name}.html`) is one anchored regex, as aiohttp compiles it. Both run in time linear in
//! the path, which the client chooses.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use regex_lite::Regex;

/// What a path segment variable matches by default: aiohttp's `[^{}/]+`.
const SEGMENT: &str = "[^{}/]+";

/// [`SEGMENT`] as one variable's anchored regex.
const DEFAULT_VAR: &str = "^(?:[^{}/]+)$";

/// `.*` (the rest of the path) as one variable's anchored regex.
const TAIL_VAR: &str = "^(?:.*)$";

/// Characters percent-encoded when a value spanning segments (`{path:.*}`) is put into a
/// URL by `url_for`: everything a path may not hold raw (RFC 3986), keeping `/`.
const TAIL_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

/// The same for a one-segment variable: `/` is encoded too (RFC 3986 `pchar`).
const SEGMENT_ENCODE: &AsciiSet = &TAIL_ENCODE.add(b'/');

#[derive(Debug)]
enum Part {
    Literal(String),
    Var { name: String, regex: Regex, spans_segments: bool },
}

/// How a pattern is matched against a path.
#[derive(Debug)]
enum Matcher {
    /// No variables: string equality.
    Plain,
    /// Only whole-segment `{name}` variables: [`Pattern::match_segments`].
    Segments,
    /// A literal prefix, then `{name:.*}` to the end (`add_static`'s shape): what follows the
    /// prefix, if it holds no newline (which `.` does not match).
    Tail,
    /// Anything else: the whole pattern as one regex, a capture group per variable.
    Regex(Regex),
}

/// A compiled route pattern.
#[derive(Debug)]
pub(crate) struct Pattern {
    source: String,
    parts: Vec<Part>,
    matcher: Matcher,
    names: Vec<String>,
}

impl Pattern {
    /// Compiles `source`. Variables are `{name}` or `{name:regex}`; the regex may hold
    /// braces of its own (`{year:\d{4}}`).
    pub(crate) fn parse(source: &str) -> Result<Pattern, String> {
        if !source.starts_with('/') {
            return Err(format!("route path {source:?} must start with '/'"));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' => {
                    let mut depth = 1;
                    let mut body = String::new();
                    for (_, c) in chars.by_ref() {
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        if depth == 0 {
                            break;
                        }
                        body.push(c);
                    }
                    if depth != 0 {
                        return Err(format!("unclosed '{{' at {at} in {source:?}"));
                    }
                    let (name, re) = body.split_once(':').unwrap_or((&body, SEGMENT));
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(format!("bad variable name {name:?} in {source:?}"));
                    }
                    let regex = Regex::new(&format!("^(?:{re})$"))
                        .map_err(|e| format!("bad regex in {source:?}: {e}"))?;
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    let spans_segments = re != SEGMENT && regex.is_match("a/b");
                    parts.push(Part::Var { name: name.to_owned(), regex, spans_segments });
                }
                '}' => return Err(format!("unmatched '}}' at {at} in {source:?}")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        let mut names = Vec::new();
        let mut pattern = String::from("^");
        for part in &parts {
            match part {
                Part::Literal(text) => pattern.push_str(&regex_lite::escape(text)),
                Part::Var { name, regex, .. } => {
                    if names.contains(name) {
                        return Err(format!("variable {name:?} appears twice in {source:?}"));
                    }
                    names.push(name.clone());
                    let inner = regex.as_str();
                    // Strip the `^(?:` and `)$` added above to embed the variable's regex.
                    pattern.push('(');
                    pattern.push_str(&inner[4..inner.len() - 2]);
                    pattern.push(')');
                }
            }
        }
        pattern.push('$');
        let matcher = if names.is_empty() {
            Matcher::Plain
        } else if whole_default_segments(&parts) {
            Matcher::Segments
        } else if let [Part::Literal(_), Part::Var { regex, .. }] = parts.as_slice()
            && regex.as_str() == TAIL_VAR
        {
            Matcher::Tail
        } else {
            Matcher::Regex(
                Regex::new(&pattern).map_err(|e| format!("bad pattern {source:?}: {e}"))?,
            )
        };
        Ok(Pattern { source: source.to_owned(), parts, matcher, names })
    }

    /// The pattern as written.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The variables' names, in order.
    pub(crate) fn variables(&self) -> &[String] {
        &self.names
    }

    /// Whether this is a plain path with no variables.
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self.matcher, Matcher::Plain)
    }

    /// Matches a raw (percent-encoded) path, returning the decoded variables.
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let regex = match &self.matcher {
            Matcher::Plain => return (path == self.source).then(Vec::new),
            Matcher::Segments => return self.match_segments(path),
            Matcher::Tail => return self.match_tail(path),
            Matcher::Regex(regex) => regex,
        };
        let captures = regex.captures(path)?;
        let values = self.names.iter().enumerate().map(|(i, name)| {
            let raw = captures.get(i + 1).map_or("", |m| m.as_str());
            (name.clone(), decode(raw))
        });
        Some(values.collect())
    }

    /// What the regex `^literal([^{}/]+)literal...$` would find, for a pattern in which
    /// each variable is followed by `/` or the end: there a variable's value can only run to
    /// the next `/`, so one pass finds it without backtracking.
    fn match_segments(&self, path: &str) -> Option<Vec<(String, String)>> {
        let mut rest = path;
        let mut values = Vec::with_capacity(self.names.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => rest = rest.strip_prefix(text.as_str())?,
                Part::Var { name, .. } => {
                    let end = rest.find('/').unwrap_or(rest.len());
                    let raw = &rest[..end];
                    if raw.is_empty() || raw.contains(['{', '}']) {
                        return None;
                    }
                    values.push((name.clone(), decode(raw)));
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(values)
    }

    /// What the regex `^literal(.*)$` would find, for a [`Matcher::Tail`] pattern.
    fn match_tail(&self, path: &str) -> Option<Vec<(String, String)>> {
        let [Part::Literal(prefix), Part::Var { name, .. }] = self.parts.as_slice() else {
            return None;
        };
        let tail = path.strip_prefix(prefix.as_str()).filter(|tail| !tail.contains('\n'))?;
        Some(vec![(name.clone(), decode(tail))])
    }

    /// Builds a URL path from `params`: aiohttp's `url_for`. Each value must match its
    /// variable's pattern, and is percent-encoded.
    pub(crate) fn build(&self, params: &[(&str, &str)]) -> Result<String, String> {
        let mut url = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => url.push_str(text),
                Part::Var { name, regex, spans_segments } => {
                    let value =
                        params.iter().find(|(n, _)| n == name).map(|(_, v)| *v).ok_or_else(
                            || format!("url_for: missing {name:?} for {:?}", self.source),
                        )?;
                    let set = if *spans_segments { TAIL_ENCODE } else { SEGMENT_ENCODE };
                    let encoded = utf8_percent_encode(value, set).to_string();
                    // Checked encoded, as the router matches raw paths: `a b/c` fills `{name}`
                    // as `a%20b%2Fc`, which routes back to it.
                    if !regex.is_match(&encoded) {
                        return Err(format!(
                            "url_for: {value:?} does not match {{{name}}} in {:?}",
                            self.source
                        ));
                    }
                    url.push_str(&encoded);
                }
            }
        }
        Ok(url)
    }
}

/// Whether every variable is a default `{name}` followed by `/` or nothing, the shape
/// [`Pattern::match_segments`] matches.
fn whole_default_segments(parts: &[Part]) -> bool {
    parts.iter().enumerate().all(|(i, part)| match part {
        Part::Literal(_) => true,
        Part::Var { regex, .. } => {
            regex.as_str() == DEFAULT_VAR
                && match parts.get(i + 1) {
                    None => true,
                    Some(Part::Literal(next)) => next.starts_with('/'),
                    Some(Part::Var { .. }) => false,
                }
        }
    })
}

/// A matched value, percent-decoded.
fn decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_regexes_and_tails() {
        let hello = Pattern::parse("/hello/{name}").unwrap();
        assert_eq!(
            hello.matches("/hello/J%C3%BCrgen"),
            Some(vec![("name".into(), "Jürgen".into())])
        );
        assert_eq!(hello.matches("/hello/a/b"), None);
        let id = Pattern::parse(r"/items/{id:\d+}").unwrap();
        assert!(id.matches("/items/42").is_some());
        assert!(id.matches("/items/x").is_none());
        let year = Pattern::parse(r"/archive/{year:\d{4}}.html").unwrap();
        assert_eq!(year.matches("/archive/2026.html"), Some(vec![("year".into(), "2026".into())]));
        let tail = Pattern::parse("/static/{path:.*}").unwrap();
        assert_eq!(
            tail.matches("/static/css/site.css"),
            Some(vec![("path".into(), "css/site.css".into())])
        );
        assert!(Pattern::parse("/plain").unwrap().is_plain());
    }

    #[test]
    fn whole_segments_match_by_hand_as_the_regex_would() {
        let posts = Pattern::parse("/users/{id}/posts/{post}").unwrap();
        assert!(matches!(posts.matcher, Matcher::Segments));
        let regex = Regex::new("^/users/([^{}/]+)/posts/([^{}/]+)$").unwrap();
        for path in [
            "/users/42/posts/7",
            "/users/4%2F2/posts/a%20b",
            "/users//posts/7",
            "/users/42/posts/",
            "/users/42/posts/7/",
            "/users/a{b/posts/7",
            "/users/42/post/7",
            "/users/42",
            "/users/42/posts/7/8",
        ] {
            let by_regex = regex.captures(path).map(|c| {
                vec![("id".to_owned(), decode(&c[1])), ("post".to_owned(), decode(&c[2]))]
            });
            assert_eq!(posts.matches(path), by_regex, "{path}");
        }
        let tail = Pattern::parse("/static/{path:.*}").unwrap();
        assert!(matches!(tail.matcher, Matcher::Tail));
        let regex = Regex::new("^/static/(.*)$").unwrap();
        for path in
            ["/static/", "/static/a/b%20c", "/static//x", "/static", "/other/x", "/static/a\nb"]
        {
            let by_regex = regex.captures(path).map(|c| vec![("path".to_owned(), decode(&c[1]))]);
            assert_eq!(tail.matches(path), by_regex, "{path:?}");
        }
        // A variable sharing its segment with text, or with a regex of its own, is matched
        // by the regex.
        for source in ["/{name}.html", r"/items/{id:\d+}", "/{a}{b}"] {
            assert!(matches!(Pattern::parse(source).unwrap().matcher, Matcher::Regex(_)));
        }
        assert_eq!(
            Pattern::parse("/{name}.html").unwrap().matches("/index.html"),
            Some(vec![("name".into(), "index".into())])
        );
    }

    #[test]
    fn build_checks_and_encodes() {
        let hello = Pattern::parse("/hello/{name}").unwrap();
        assert_eq!(hello.build(&[("name", "a b/c")]).unwrap(), "/hello/a%20b%2Fc");
        assert!(hello.build(&[]).is_err());
        let id = Pattern::parse(r"/items/{id:\d+}").unwrap();
        assert!(id.build(&[("id", "x")]).is_err());
        let tail = Pattern::parse("/static/{path:.*}").unwrap();
        assert_eq!(tail.build(&[("path", "css/a b.css")]).unwrap(), "/static/css/a%20b.css");
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["nohead", "/a/{", "/a/}", "/a/{}", "/a/{x:(}", "/{a}/{a}"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }
}
