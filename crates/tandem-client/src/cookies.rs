//! The session's cookie jar: aiohttp's `CookieJar` and `DummyCookieJar`, on `cookie_store`.

use std::{
    fs,
    io::{BufReader, Write},
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};

use cookie_store::CookieStore;
use http::{HeaderMap, HeaderValue, header};
use url::{Host, Url};

use crate::error::{Error, Kind};

/// A cookie jar shared by a session's requests (and by clones of it).
///
/// As aiohttp's, it refuses cookies from hosts that are IP addresses, and sends none to them,
/// unless made with [`unsafe_hosts`](Self::unsafe_hosts) (aiohttp's `CookieJar(unsafe=True)`);
/// [`dummy`](Self::dummy) keeps nothing (aiohttp's `DummyCookieJar`).
///
/// Its `Debug` shows how many cookies it holds, not their values.
#[derive(Clone, Default)]
pub struct CookieJar {
    store: Arc<Mutex<CookieStore>>,
    allow_ip_hosts: bool,
    dummy: bool,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar")
            .field("cookies", &self.len())
            .field("allow_ip_hosts", &self.allow_ip_hosts)
            .field("dummy", &self.dummy)
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// An empty jar that refuses IP hosts.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty jar that also keeps cookies for IP hosts (for tests against loopback).
    pub fn unsafe_hosts() -> Self {
        CookieJar { allow_ip_hosts: true, ..Self::default() }
    }

    /// A jar that ignores every cookie.
    pub fn dummy() -> Self {
        CookieJar { dummy: true, ..Self::default() }
    }

    fn lock(&self) -> MutexGuard<'_, CookieStore> {
        // A panic while holding the lock cannot leave the store half-updated in a way that
        // matters more than losing all cookies would.
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn accepts(&self, url: &Url) -> bool {
        !self.dummy && (self.allow_ip_hosts || matches!(url.host(), Some(Host::Domain(_))))
    }

    /// Stores the `Set-Cookie` fields of a response from `url`. Malformed cookies are skipped
    /// without stopping the others.
    pub fn update_from_headers(&self, headers: &HeaderMap, url: &Url) {
        self.update_from_values(
            headers.get_all(header::SET_COOKIE).iter().map(http::HeaderValue::as_bytes),
            url,
        );
    }

    /// [`update_from_headers`](Self::update_from_headers) over the `Set-Cookie` values
    /// themselves, as the client reads them from the raw fields.
    pub(crate) fn update_from_values<'a>(&self, values: impl Iterator<Item = &'a [u8]>, url: &Url) {
        if !self.accepts(url) {
            return;
        }
        let cookies: Vec<_> = values
            .filter_map(|v| std::str::from_utf8(v).ok())
            .filter_map(|v| cookie::Cookie::parse(v.to_owned()).ok())
            .collect();
        if !cookies.is_empty() {
            self.lock().store_response_cookies(cookies.into_iter(), url);
        }
    }

    /// Stores one cookie (`name=value; attributes`) as if `url` had set it.
    pub fn add(&self, set_cookie: &str, url: &Url) -> Result<(), Error> {
        if !self.accepts(url) {
            return Ok(());
        }
        self.lock()
            .parse(set_cookie, url)
            .map(|_| ())
            .map_err(|e| Error::new(Kind::Request, e.to_string()))
    }

    /// The `(name, value)` pairs to send to `url`.
    pub fn filter_cookies(&self, url: &Url) -> Vec<(String, String)> {
        if !self.accepts(url) {
            return Vec::new();
        }
        self.lock().get_request_values(url).map(|(n, v)| (n.to_owned(), v.to_owned())).collect()
    }

    /// The `Cookie` field for `url`, if any cookie matches.
    pub(crate) fn header_for(&self, url: &Url) -> Option<HeaderValue> {
        let pairs = self.filter_cookies(url);
        if pairs.is_empty() {
            return None;
        }
        let joined: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        HeaderValue::try_from(joined.join("; ")).ok()
    }

    /// How many unexpired cookies the jar holds.
    pub fn len(&self) -> usize {
        self.lock().iter_unexpired().count()
    }

    /// Whether the jar holds no unexpired cookie.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every cookie.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Writes every cookie, session cookies too, as JSON to `path`, readable only by its
    /// owner (mode 0600 on Unix), as aiohttp 3.14 does.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let mut json = Vec::new();
        cookie_store::serde::json::save_incl_expired_and_nonpersistent(&self.lock(), &mut json)
            .map_err(|e| Error::new(Kind::Io, e.to_string()))?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| Error::new(Kind::Io, e))?;
        file.write_all(&json).map_err(|e| Error::new(Kind::Io, e))
    }

    /// Replaces the jar's cookies with those saved at `path` (expired ones are dropped).
    pub fn load(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let file = fs::File::open(path).map_err(|e| Error::new(Kind::Io, e))?;
        let store = cookie_store::serde::json::load(BufReader::new(file))
            .map_err(|e| Error::new(Kind::Io, e.to_string()))?;
        *self.lock() = store;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn set(jar: &CookieJar, value: &str, from: &str) {
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, HeaderValue::from_str(value).unwrap());
        jar.update_from_headers(&headers, &url(from));
    }

    #[test]
    fn ip_hosts_refused_unless_unsafe() {
        let jar = CookieJar::new();
        set(&jar, "a=b", "http://10.0.0.1/");
        assert!(jar.is_empty());
        let jar = CookieJar::unsafe_hosts();
        set(&jar, "a=b", "http://10.0.0.1/");
        assert_eq!(jar.filter_cookies(&url("http://10.0.0.1/x")), [("a".into(), "b".into())]);
    }

    #[test]
    fn domains_and_paths_match() {
        let jar = CookieJar::new();
        set(&jar, "a=1; Path=/p", "http://example.com/p/x");
        set(&jar, "evil=1; Domain=evil.com", "http://example.com/");
        set(&jar, "d=1; Domain=example.com", "http://example.com/");
        assert!(jar.filter_cookies(&url("http://example.com/")).iter().all(|(n, _)| n == "d"));
        assert_eq!(jar.filter_cookies(&url("http://example.com/p/y")).len(), 2);
        assert_eq!(jar.filter_cookies(&url("http://sub.example.com/")).len(), 1);
        assert!(jar.filter_cookies(&url("http://evil.com/")).is_empty());
    }

    #[test]
    fn dummy_keeps_nothing() {
        let jar = CookieJar::dummy();
        set(&jar, "a=b", "http://example.com/");
        assert!(jar.is_empty());
    }

    #[test]
    fn malformed_cookie_does_not_stop_others() {
        let jar = CookieJar::new();
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, HeaderValue::from_static("=novalue"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("g_state={\"i\":1}"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("ok=1"));
        jar.update_from_headers(&headers, &url("http://example.com/"));
        assert!(
            jar.filter_cookies(&url("http://example.com/")).contains(&("ok".into(), "1".into()))
        );
    }

    #[test]
    fn hostile_cookies() {
        let jar = CookieJar::new();
        // Werkzeug CVE-2023-23934: a nameless cookie must not become `__Host-x`.
        set(&jar, "=__Host-x=bad", "http://example.com/");
        assert!(
            jar.filter_cookies(&url("http://example.com/")).iter().all(|(n, _)| n != "__Host-x")
        );
        // A malformed punycode host (idna RUSTSEC-2024-0421) is not a URL at all, so it
        // can never share cookies with `example.org`.
        assert!(Url::parse("http://xn--example-.org/").is_err());
        // Secure cookies go only over https.
        set(&jar, "s=1; Secure", "https://secure.example/");
        assert!(jar.filter_cookies(&url("http://secure.example/")).is_empty());
        assert_eq!(jar.filter_cookies(&url("https://secure.example/")).len(), 1);
    }

    #[test]
    fn wide_domains_are_kept_and_huge_max_ages_clamped() {
        let jar = CookieJar::new();
        // No public suffix list, as in aiohttp: `Domain=com` set by example.com is kept, and
        // goes to every .com host (docs/security.md, H80).
        set(&jar, "wide=1; Domain=com", "http://example.com/");
        assert_eq!(jar.filter_cookies(&url("http://other.com/")), [("wide".into(), "1".into())]);
        // A Max-Age past any date is clamped, not a panic; a negative one expires the cookie.
        set(&jar, "forever=1; Max-Age=18446744073709551615", "http://example.com/");
        set(&jar, "gone=1; Max-Age=-5", "http://example.com/");
        let mut names: Vec<String> =
            jar.filter_cookies(&url("http://example.com/")).into_iter().map(|(n, _)| n).collect();
        names.sort();
        assert_eq!(names, ["forever", "wide"]);
    }

    #[test]
    fn save_and_load() {
        let dir = std::env::temp_dir().join(format!("tandem-jar-{}", std::process::id()));
        let jar = CookieJar::new();
        set(&jar, "session=1", "http://example.com/");
        set(&jar, "persist=2; Max-Age=3600", "http://example.com/");
        jar.save(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let other = CookieJar::new();
        other.load(&dir).unwrap();
        let _ = fs::remove_file(&dir);
        assert_eq!(other.filter_cookies(&url("http://example.com/")).len(), 2);
    }
}
