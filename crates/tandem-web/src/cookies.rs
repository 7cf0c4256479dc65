//! Cookies: reading the request's `Cookie` header, and writing `Set-Cookie`.

use std::{
    fmt::Write as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use http::HeaderValue;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// The attributes of a cookie set with [`crate::Response::set_cookie`], named as aiohttp's
/// `set_cookie` arguments. `path` defaults to `/`, as in aiohttp.
///
/// Built from `CookieOptions::default()` with the `with_*` methods (non-exhaustive, so that a
/// new attribute is not a breaking change):
///
/// ```
/// let options = tandem_web::CookieOptions::default().with_max_age(3600).with_httponly(true);
/// assert_eq!(options.max_age, Some(3600));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CookieOptions {
    /// `Domain`.
    pub domain: Option<String>,
    /// `Path`; `None` means `/`.
    pub path: Option<String>,
    /// `Max-Age`, in seconds.
    pub max_age: Option<i64>,
    /// `Expires`.
    pub expires: Option<SystemTime>,
    /// `Secure`.
    pub secure: bool,
    /// `HttpOnly`.
    pub httponly: bool,
    /// `SameSite`: `"Strict"`, `"Lax"` or `"None"`.
    pub samesite: Option<String>,
}

impl CookieOptions {
    /// Sets [`domain`](Self::domain).
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sets [`path`](Self::path).
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Sets [`max_age`](Self::max_age), in seconds; `None` removes it.
    #[must_use]
    pub fn with_max_age(mut self, seconds: impl Into<Option<i64>>) -> Self {
        self.max_age = seconds.into();
        self
    }

    /// Sets [`expires`](Self::expires); `None` removes it.
    #[must_use]
    pub fn with_expires(mut self, at: impl Into<Option<SystemTime>>) -> Self {
        self.expires = at.into();
        self
    }

    /// Sets [`secure`](Self::secure).
    #[must_use]
    pub fn with_secure(mut self, yes: bool) -> Self {
        self.secure = yes;
        self
    }

    /// Sets [`httponly`](Self::httponly).
    #[must_use]
    pub fn with_httponly(mut self, yes: bool) -> Self {
        self.httponly = yes;
        self
    }

    /// Sets [`samesite`](Self::samesite): `"Strict"`, `"Lax"` or `"None"`.
    #[must_use]
    pub fn with_samesite(mut self, samesite: impl Into<String>) -> Self {
        self.samesite = Some(samesite.into());
        self
    }
}

/// Bytes of a cookie value that are percent-encoded: those RFC 6265's `cookie-octet` leaves
/// out (controls, space, `"`, `,`, `;`, `\\`), and `%` itself so that decoding gives the value
/// back. Non-ASCII is always encoded.
const VALUE_ENCODE: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b',').add(b';').add(b'\\').add(b'%');

/// The last second an HTTP date can write (9999-12-31 23:59:59 UTC).
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// The `Set-Cookie` value for `name`, `value` and `options`.
///
/// Written here rather than by the `cookie` crate: the header is the name, the encoded value
/// and a few `; Attribute=value` pairs, and the one date in it is what `httpdate` (already
/// the `Date` header's) formats; `cookie` would build the `time` crate for it.
pub(crate) fn set_cookie_header(
    name: &str,
    value: &str,
    options: &CookieOptions,
) -> Result<HeaderValue, crate::Error> {
    let invalid = |what: &str| -> crate::Error {
        crate::HttpError::internal_server_error().with_text(format!("invalid cookie {what}")).into()
    };
    if name.is_empty() || !name.bytes().all(is_cookie_name_byte) {
        return Err(invalid("name"));
    }
    let mut text = format!("{name}={}", utf8_percent_encode(value, VALUE_ENCODE));
    // An attribute value may not end the attribute (`;`) or the header (a control byte).
    let mut attribute = |name: &str, value: &str| {
        if value.bytes().any(|b| b == b';' || b.is_ascii_control()) {
            return Err(invalid(name));
        }
        let _ = write!(text, "; {name}={value}");
        Ok(())
    };
    attribute("Path", options.path.as_deref().unwrap_or("/"))?;
    if let Some(domain) = &options.domain {
        attribute("Domain", domain)?;
    }
    if let Some(max_age) = options.max_age {
        attribute("Max-Age", &max_age.to_string())?;
    }
    if let Some(expires) = options.expires {
        // Before 1970 is as expired as 1970.
        let secs = expires.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs > LAST_HTTP_DATE {
            return Err(invalid("expiry"));
        }
        attribute("Expires", &httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)))?;
    }
    if let Some(samesite) = &options.samesite {
        let samesite = match samesite.to_ascii_lowercase().as_str() {
            "strict" => "Strict",
            "lax" => "Lax",
            "none" => "None",
            _ => return Err(invalid("SameSite")),
        };
        attribute("SameSite", samesite)?;
    }
    if options.secure {
        text.push_str("; Secure");
    }
    if options.httponly {
        text.push_str("; HttpOnly");
    }
    HeaderValue::try_from(text).map_err(|_| invalid("attribute"))
}

fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// The most cookies read from a request's `Cookie` fields by default
/// ([`Application::max_request_cookies`](crate::Application::max_request_cookies)); the
/// pairs after them are skipped, as malformed ones are. Browsers keep about 180 cookies a
/// domain at most (RFC 6265 §6.1 asks for at least 50), so no browser's request comes near;
/// unbounded, a 56 KB head of `a=;` pairs made 18 900 cookies that took 2.4 MB to hold, for
/// every request that reads one (every request behind a session middleware).
pub const DEFAULT_MAX_REQUEST_COOKIES: usize = 1000;

/// Parses a `Cookie` header into name and value pairs, percent-decoding values, until `into`
/// holds `most`. Malformed pairs are skipped silently, in linear time (aiohttp
/// CVE-2025-69230 was a log line per bad pair).
pub(crate) fn parse_cookie_header(header: &[u8], most: usize, into: &mut Vec<(String, String)>) {
    let Ok(header) = std::str::from_utf8(header) else { return };
    for pair in header.split(';') {
        if into.len() >= most {
            return;
        }
        let Some((name, value)) = pair.split_once('=') else { continue };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_cookie_name_byte) {
            continue;
        }
        let value = value.trim().trim_matches('"');
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        into.push((name.to_owned(), value.into_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_with_every_attribute() {
        let options = CookieOptions {
            domain: Some("example.com".into()),
            path: Some("/app".into()),
            max_age: Some(60),
            expires: None,
            secure: true,
            httponly: true,
            samesite: Some("Lax".into()),
        };
        let header = set_cookie_header("sid", "a b;c", &options).unwrap();
        let text = header.to_str().unwrap();
        for part in [
            "sid=a%20b%3Bc",
            "Path=/app",
            "Domain=example.com",
            "Max-Age=60",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        assert!(set_cookie_header("bad name", "v", &options).is_err());
        let injected =
            CookieOptions { path: Some("/; Domain=evil.example".into()), ..options.clone() };
        assert!(set_cookie_header("n", "v", &injected).is_err());
        let far = CookieOptions {
            expires: Some(UNIX_EPOCH + Duration::from_secs(LAST_HTTP_DATE + 1)),
            ..options.clone()
        };
        assert!(set_cookie_header("n", "v", &far).is_err());
        let expired = CookieOptions { expires: Some(UNIX_EPOCH), ..CookieOptions::default() };
        assert_eq!(
            set_cookie_header("n", "a=b/c%", &expired).unwrap(),
            "n=a=b/c%25; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert!(
            set_cookie_header(
                "n",
                "v",
                &CookieOptions { samesite: Some("x\r\n".into()), ..options }
            )
            .is_err()
        );
    }

    #[test]
    fn cookie_header_skips_junk_in_linear_time() {
        let mut cookies = Vec::new();
        let junk = "a,b=1; ".repeat(2000);
        let header = format!("{junk}sid=abc; theme=\"dark\"");
        parse_cookie_header(header.as_bytes(), DEFAULT_MAX_REQUEST_COOKIES, &mut cookies);
        assert!(cookies.contains(&("sid".into(), "abc".into())));
        assert!(cookies.contains(&("theme".into(), "dark".into())));
        assert!(!cookies.iter().any(|(n, _)| n.contains(',')));
    }

    #[test]
    fn cookies_past_the_bound_are_skipped_across_fields() {
        let mut cookies = Vec::new();
        let mut field = String::new();
        for i in 0..600 {
            let _ = write!(field, "c{i}=v; ");
        }
        parse_cookie_header(field.as_bytes(), DEFAULT_MAX_REQUEST_COOKIES, &mut cookies);
        parse_cookie_header(field.as_bytes(), DEFAULT_MAX_REQUEST_COOKIES, &mut cookies);
        assert_eq!(cookies.len(), DEFAULT_MAX_REQUEST_COOKIES);
        assert_eq!(cookies[0], ("c0".to_owned(), "v".to_owned()));
        assert_eq!(cookies[DEFAULT_MAX_REQUEST_COOKIES - 1].0, "c399");
        let mut few = Vec::new();
        parse_cookie_header(field.as_bytes(), 3, &mut few);
        assert_eq!(few.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["c0", "c1", "c2"]);
    }
}
