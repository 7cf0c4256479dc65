//! URLs as they may be logged or shown in an error: without userinfo.
//!
//! `http://user:password@host/` is how a caller gives basic-auth credentials, and the
//! session takes them out of the URL before the request is sent. Everything that prints a
//! URL (the request's `tracing` span, the redirect event, an error's message) prints it
//! through here, so the password never reaches a log, whichever step printed it.

use std::{borrow::Cow, fmt};

use http::{HeaderMap, HeaderName, header};
use url::{Position, Url};

/// Fields whose values are credentials: never printed, by a log or by `Debug`.
const SECRET_FIELDS: [HeaderName; 4] =
    [header::AUTHORIZATION, header::PROXY_AUTHORIZATION, header::COOKIE, header::SET_COOKIE];

/// A `HeaderMap` for `Debug`, with the values of `Authorization`, `Proxy-Authorization`,
/// `Cookie` and `Set-Cookie` replaced by `<redacted>`: a caller who logs `?response` or
/// `?session` must not log the credentials in them.
pub(crate) struct Fields<'a>(pub(crate) &'a HeaderMap);

impl fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            if SECRET_FIELDS.contains(name) {
                map.entry(name, &format_args!("<redacted>"));
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

/// `url` printed without its userinfo: `http://user:pw@h/x` prints as `http://h/x`. Only
/// formats when printed, so a `tracing` field costs nothing while no subscriber wants it.
pub(crate) struct Redacted<'a>(pub(crate) &'a Url);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        if has_userinfo(url) {
            f.write_str(&url[..Position::BeforeUsername])?;
            f.write_str(&url[Position::BeforeHost..])
        } else {
            f.write_str(url.as_str())
        }
    }
}

fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// `url` without its userinfo, copied only when it has some.
pub(crate) fn url(url: &Url) -> Cow<'_, Url> {
    if !has_userinfo(url) {
        return Cow::Borrowed(url);
    }
    let mut bare = url.clone();
    // Only URLs that cannot have a host refuse these; ours always have one.
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    Cow::Owned(bare)
}

/// A URL as the caller wrote it, which may not parse, without anything that could be
/// userinfo: in the authority (after `//`, or from the start when there is none), whatever
/// comes before its last `@`.
pub(crate) fn raw(raw: &str) -> Cow<'_, str> {
    let start = raw.find("//").map_or(0, |i| i + 2);
    let rest = &raw[start..];
    let authority = &rest[..rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => Cow::Owned(format!("{}{}", &raw[..start], &raw[start + at + 1..])),
        None => Cow::Borrowed(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_are_not_printed() {
        let mut map = HeaderMap::new();
        for (name, value) in [
            ("Authorization", "Basic dXNlcjpzZWNyZXQ="),
            ("proxy-authorization", "Basic secret"),
            ("cookie", "sid=secret"),
            ("set-cookie", "sid=secret; Path=/"),
            ("x-visible", "shown"),
        ] {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        let shown = format!("{:?}", Fields(&map));
        assert!(!shown.contains("secret") && !shown.contains("dXNlcjpzZWNyZXQ"), "{shown}");
        assert!(shown.contains("\"authorization\": <redacted>"), "{shown}");
        assert!(shown.contains("\"x-visible\": \"shown\""), "{shown}");
    }

    #[test]
    fn userinfo_is_never_printed() {
        for (given, shown) in [
            ("http://user:secret@h.example:81/p?q#f", "http://h.example:81/p?q#f"),
            ("http://user@h.example/", "http://h.example/"),
            ("http://:secret@h.example/", "http://h.example/"),
            ("https://h.example/a@b", "https://h.example/a@b"),
            ("http://h.example/", "http://h.example/"),
        ] {
            let url = Url::parse(given).unwrap();
            assert_eq!(Redacted(&url).to_string(), shown, "{given}");
            assert_eq!(super::url(&url).as_str(), shown, "{given}");
        }
        for (given, shown) in [
            ("http://user:secret@h.example/x", "http://h.example/x"),
            ("http://u:s@cret@h.example/x@y", "http://h.example/x@y"),
            ("user:secret@h.example", "h.example"),
            ("//user:secret@h.example/", "//h.example/"),
            ("http://u:secret@[::1/", "http://[::1/"),
            ("http://h.example/x?to=a@b", "http://h.example/x?to=a@b"),
            ("relative/path", "relative/path"),
        ] {
            assert_eq!(raw(given), shown, "{given}");
        }
    }
}
