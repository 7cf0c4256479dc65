//! Following redirects: which to follow, where to, and what the next request keeps.

use http::{HeaderMap, Method, StatusCode, header};
use url::Url;

use crate::{
    error::{Error, Kind},
    request::Body,
};

/// Where a redirect points: its `Location`, or without one its `URI` field, as aiohttp
/// reads it (old servers still send `URI`).
pub(crate) fn target(fields: &tandem_proto::Fields) -> Option<Vec<u8>> {
    fields.get("location").or_else(|| fields.get("uri")).map(<[u8]>::to_vec)
}

/// Whether `status` is a redirect that carries a `Location` to follow.
pub(crate) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The next URL: `location` resolved against `base`. An unparsable one, or one whose scheme
/// is not `http` or `https` (`file:`, `javascript:`), is refused.
pub(crate) fn next_url(base: &Url, location: &[u8]) -> Result<Url, Error> {
    let invalid = |msg: &'static str| Error::new(Kind::InvalidUrl { redirect: true }, msg);
    let location = std::str::from_utf8(location).map_err(|_| invalid("Location is not UTF-8"))?;
    if location.bytes().any(|b| b.is_ascii_control()) {
        return Err(invalid("Location holds a control character"));
    }
    let url =
        base.join(location).map_err(|e| Error::new(Kind::InvalidUrl { redirect: true }, e))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("redirect to a non-HTTP URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("redirect URL has no host"));
    }
    // A `Location` that names a host is held to the rule for a URL the caller gives: an IPv4
    // host only in canonical form (`2130706433`, `0x7f.1`, `127.1` are refused, as aiohttp
    // 3.14.1 does), however the host is spelled in (`//h`, `http:\\h`, `https:h`).
    if let Some(url::Host::Ipv4(ip)) = url.host()
        && let Some(written) = named_host(location, base)
        && written.parse::<std::net::Ipv4Addr>().ok() != Some(ip)
    {
        return Err(invalid("redirect to a non-canonical IPv4 host"));
    }
    Ok(url)
}

/// The host a `Location` names, as written; `None` for a reference that keeps the base's
/// host (`/path`, `path`, `http:path` against an http base), by the WHATWG rules `join`
/// follows: after an optional scheme, two or more slashes (or backslashes) begin an
/// authority, and so does a scheme other than the base's.
fn named_host<'a>(location: &'a str, base: &Url) -> Option<&'a str> {
    let scheme_end = location.find(':').filter(|&at| {
        let scheme = &location.as_bytes()[..at];
        scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme.iter().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
    });
    let (scheme, rest) = match scheme_end {
        Some(at) => (Some(&location[..at]), &location[at + 1..]),
        None => (None, location),
    };
    let after = rest.trim_start_matches(['/', '\\']);
    let same_scheme = scheme.is_none_or(|s| s.eq_ignore_ascii_case(base.scheme()));
    if same_scheme && rest.len() - after.len() < 2 {
        return None;
    }
    Some(crate::session::written_host(after))
}

/// Whether two URLs share an origin: scheme, host and port (aiohttp's `url.origin()`).
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Rewrites the method and body for the next hop: 303 becomes GET (except HEAD), and so do
/// 301 and 302 after POST, with the body and its content fields dropped (urllib3
/// CVE-2023-45803); 307 and 308 keep both. Returns whether the body was dropped.
pub(crate) fn rewrite(
    status: StatusCode,
    method: &mut Method,
    body: &mut Option<Body>,
    headers: &mut HeaderMap,
) -> bool {
    let to_get = match status.as_u16() {
        303 => *method != Method::HEAD,
        301 | 302 => *method == Method::POST,
        _ => false,
    };
    if to_get {
        *method = Method::GET;
        *body = None;
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::CONTENT_LANGUAGE,
            header::CONTENT_LOCATION,
        ] {
            headers.remove(name);
        }
    }
    to_get
}

/// The fields that carry credentials, which never follow a redirect to another origin.
pub(crate) const CREDENTIAL_FIELDS: [header::HeaderName; 3] =
    [header::AUTHORIZATION, header::COOKIE, header::PROXY_AUTHORIZATION];

/// Drops credentials before a hop from `from` to `to` when it crosses origins: every copy
/// of `Authorization`, `Cookie` and `Proxy-Authorization`, whatever case it was given in (a
/// `HeaderMap` keys names case-insensitively, and `remove` removes all values). Returns
/// whether it crossed, so the session's own credential fields stay behind too.
pub(crate) fn leave_origin(from: &Url, to: &Url, headers: &mut HeaderMap) -> bool {
    if same_origin(from, to) {
        return false;
    }
    for name in CREDENTIAL_FIELDS {
        headers.remove(name);
    }
    true
}

/// The path and query of `location` byte for byte, when `next` (what it resolved to) would
/// send them otherwise, for `requote_redirect_url(false)`. Only a `Location` that spells out
/// its path does (absolute, `//host/...` or `/...`); a relative path has no bytes to keep.
pub(crate) fn unrequoted_target(location: &[u8], next: &Url) -> Option<String> {
    let location = std::str::from_utf8(location).ok()?;
    let after_authority = |rest: &str| rest.find(['/', '?', '#']).map(|at| rest[at..].to_owned());
    let target = if let Some(rest) = location.strip_prefix("//") {
        after_authority(rest)?
    } else if location.starts_with('/') {
        location.to_owned()
    } else {
        let (scheme, rest) = location.split_once("://")?;
        if !scheme.eq_ignore_ascii_case(next.scheme()) {
            return None;
        }
        after_authority(rest)?
    };
    crate::request::kept_target(&target, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn locations() {
        let base = url("http://a.example/x/y");
        assert_eq!(next_url(&base, b"z").unwrap().as_str(), "http://a.example/x/z");
        assert_eq!(next_url(&base, b"//b.example/").unwrap().as_str(), "http://b.example/");
        for bad in [&b"file:///etc/passwd"[..], b"javascript:alert(1)", b"ftp://x/", b"http://[::1"]
        {
            let e = next_url(&base, bad).unwrap_err();
            assert!(e.is_invalid_url() && e.is_redirect(), "{bad:?}");
        }
        // A non-canonical IPv4 host, however the Location spells its authority.
        let ip_base = url("http://127.0.0.1:8080/x/y");
        for hidden in [
            &b"http://2130706433/"[..],
            b"//127.1:8080/",
            b"https:2130706433/",
            b"http:\\\\0x7f.1\\z",
            b"HTTP://u:p@017700000001:80/",
            b"///127.1/",
        ] {
            let e = next_url(&ip_base, hidden).unwrap_err();
            assert!(e.is_invalid_url() && e.is_redirect(), "{hidden:?}");
        }
        // Relative references keep the base's host, and the canonical form is followed.
        for kept in [&b"/z"[..], b"z", b"http:z", b"?q", b"//127.0.0.1:9/", b"https://10.0.0.1/"] {
            assert!(next_url(&ip_base, kept).is_ok(), "{kept:?}");
        }
    }

    #[test]
    fn origins() {
        assert!(same_origin(&url("http://a/"), &url("http://a:80/x")));
        assert!(!same_origin(&url("http://a/"), &url("https://a/")));
        assert!(!same_origin(&url("http://a:1/"), &url("http://a:2/")));
        assert!(!same_origin(&url("http://a/"), &url("http://b/")));
    }

    #[test]
    fn rewrites() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        let mut method = Method::POST;
        let mut body = Some(Body::from("x"));
        rewrite(StatusCode::TEMPORARY_REDIRECT, &mut method, &mut body, &mut headers);
        assert_eq!(method, Method::POST);
        assert!(body.is_some());
        rewrite(StatusCode::FOUND, &mut method, &mut body, &mut headers);
        assert_eq!(method, Method::GET);
        assert!(body.is_none() && headers.is_empty());
        let mut method = Method::PUT;
        rewrite(StatusCode::FOUND, &mut method, &mut body, &mut headers);
        assert_eq!(method, Method::PUT);
        rewrite(StatusCode::SEE_OTHER, &mut method, &mut body, &mut headers);
        assert_eq!(method, Method::GET);
    }
}
