//! URLs as they may be logged or shown in an error: without userinfo.
//!
//! `http://user:password@host/` is how a caller gives basic-auth credentials, and the
//! session takes them out of the URL before the request is sent. Everything that prints a
//! URL (the request's `tracing` span, the redirect event, an error's message) prints it
//! through here, so the password never reaches a log, whichever step printed it.

use std::{borrow::Cow, fmt};

use url::{Position, Url};

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
