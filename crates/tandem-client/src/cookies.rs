//! The session's cookie jar: aiohttp's `CookieJar` and `DummyCookieJar`, on `cookie_store`,
//! with aiohttp's shared cookies, `quote_cookie` and `treat_as_secure_origin`, and files in
//! JSON (Tandem's own layout, not aiohttp's pickle) or Netscape `cookies.txt` (curl's and
//! browsers' exports) form; `cookies.txt` is the one to move a jar between programs.

use std::{
    borrow::Cow,
    fmt::Write as _,
    fs,
    io::Write,
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};

use cookie::time::OffsetDateTime;
use cookie_store::{CookieDomain, CookieExpiration, CookieStore};
use http::{HeaderMap, HeaderValue, header};
use url::{Host, Url};

use crate::{
    cookie_rules::{self, CookieLimits, SetOrder},
    error::{Error, Kind},
};

/// A cookie jar shared by a session's requests (and by clones of it).
///
/// As aiohttp's, it refuses cookies from hosts that are IP addresses, and sends none to them,
/// unless made with [`unsafe_hosts`](Self::unsafe_hosts) (aiohttp's `CookieJar(unsafe=True)`);
/// [`dummy`](Self::dummy) keeps nothing (aiohttp's `DummyCookieJar`).
///
/// Its `Debug` shows how many cookies it holds, not their values.
#[derive(Clone)]
pub struct CookieJar {
    store: Arc<Mutex<Jar>>,
    allow_ip_hosts: bool,
    dummy: bool,
    quote_cookie: bool,
    secure_origins: Arc<[url::Origin]>,
    limits: CookieLimits,
}

/// The cookies: by domain and path, the order they were last set in (whom a full jar
/// evicts), and the shared ones, sent to every URL.
#[derive(Default)]
struct Jar {
    store: CookieStore,
    order: SetOrder,
    shared: Vec<cookie::Cookie<'static>>,
}

impl Jar {
    /// Stores `cookie` as set by `url` under the jar's rules (`cookie_rules`).
    fn set(
        &mut self,
        cookie: &cookie::Cookie<'_>,
        url: &Url,
        limits: &CookieLimits,
    ) -> Result<(), &'static str> {
        cookie_rules::store(&mut self.store, &mut self.order, cookie, url, limits)
    }
}

impl Default for CookieJar {
    fn default() -> Self {
        CookieJar {
            store: Arc::default(),
            allow_ip_hosts: false,
            dummy: false,
            quote_cookie: true,
            secure_origins: Arc::new([]),
            limits: CookieLimits::default(),
        }
    }
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar")
            .field("cookies", &self.len())
            .field("allow_ip_hosts", &self.allow_ip_hosts)
            .field("dummy", &self.dummy)
            .field("quote_cookie", &self.quote_cookie)
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

    /// Whether a value given through [`update_cookies`](Self::update_cookies) that holds
    /// characters a cookie value may not (space, `,`, `;`, `"`, `\`, control or non-ASCII
    /// characters) is sent quoted, as Python's `SimpleCookie` quotes it (aiohttp's
    /// `quote_cookie`, on by default): `"a b"`, with `\"`, `\\` and octal escapes. Some
    /// servers reject quoted values; `false` sends them as they are. Cookies set by a
    /// server are always sent as the server wrote them.
    #[must_use]
    pub fn quote_cookie(mut self, yes: bool) -> Self {
        self.quote_cookie = yes;
        self
    }

    /// The longest cookie kept from a server, its name and value together (default
    /// [`DEFAULT_MAX_COOKIE_SIZE`](crate::DEFAULT_MAX_COOKIE_SIZE), 4096 bytes); a longer
    /// one is skipped.
    #[must_use]
    pub fn max_cookie_size(mut self, bytes: usize) -> Self {
        self.limits.max_size = bytes;
        self
    }

    /// The most cookies kept for one domain (default
    /// [`DEFAULT_MAX_COOKIES_PER_DOMAIN`](crate::DEFAULT_MAX_COOKIES_PER_DOMAIN), 180); a
    /// new one past it evicts the domain's cookie least recently set, as browsers do (one
    /// that replaces a kept cookie is not new). 0 keeps none.
    #[must_use]
    pub fn max_cookies_per_domain(mut self, count: usize) -> Self {
        self.limits.per_domain = count;
        self
    }

    /// The most cookies kept from servers (default
    /// [`DEFAULT_MAX_COOKIES`](crate::DEFAULT_MAX_COOKIES), 3000), so a server's many hosts
    /// cannot grow the jar without bound. A new one past it evicts, as browsers do (RFC 6265
    /// §5.3), expired cookies first, then a tenth of the jar, each the cookie least recently
    /// set of the site then holding the most (a host's last two labels, as no public suffix
    /// list is kept): a server flooding the jar loses its own cookies before other origins
    /// do, and the jar keeps taking new ones. 0 keeps none.
    #[must_use]
    pub fn max_cookies(mut self, count: usize) -> Self {
        self.limits.total = count;
        self
    }

    /// Origins (`http://host:port`) whose plain-http URLs count as secure (aiohttp's
    /// `treat_as_secure_origin`): `Secure` cookies are kept from them and sent to them, as
    /// for https. For a service on a trusted internal network, or behind a TLS-terminating
    /// proxy. (Loopback hosts already count as secure, as browsers treat them.) An entry
    /// that is not an http URL is an error.
    pub fn treat_as_secure_origin<'a>(
        mut self,
        origins: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, Error> {
        let origins: Result<Vec<_>, _> = origins
            .into_iter()
            .map(|o| match Url::parse(o) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url.origin()),
                _ => Err(Error::new(Kind::Request, format!("not an http origin: {o:?}"))),
            })
            .collect();
        self.secure_origins = origins?.into();
        Ok(self)
    }

    fn lock(&self) -> MutexGuard<'_, Jar> {
        // A panic while holding the lock cannot leave the store half-updated in a way that
        // matters more than losing all cookies would.
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn accepts(&self, url: &Url) -> bool {
        !self.dummy && (self.allow_ip_hosts || matches!(url.host(), Some(Host::Domain(_))))
    }

    /// `url`, as https when its origin is treated as secure: the store then keeps and sends
    /// `Secure` cookies for it, as it does for https.
    fn as_secure<'a>(&self, url: &'a Url) -> Cow<'a, Url> {
        if url.scheme() == "http" && self.secure_origins.contains(&url.origin()) {
            let mut secure = url.clone();
            if secure.set_scheme("https").is_ok() {
                return Cow::Owned(secure);
            }
        }
        Cow::Borrowed(url)
    }

    /// Stores the `Set-Cookie` fields of a response from `url`. Malformed cookies, and those
    /// a browser refuses (`Secure` from plain http, a `__Secure-` or `__Host-` name that
    /// breaks its prefix's rules, past the size bound), are skipped without stopping the
    /// others; a new cookie past the count bounds evicts an older one.
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
            let url = self.as_secure(url);
            let mut jar = self.lock();
            for cookie in &cookies {
                if let Err(why) = jar.set(cookie, &url, &self.limits) {
                    tracing::debug!(name = cookie.name(), why, "Set-Cookie skipped");
                }
            }
        }
    }

    /// Stores one cookie (`name=value; attributes`) as if `url` had set it.
    pub fn add(&self, set_cookie: &str, url: &Url) -> Result<(), Error> {
        if !self.accepts(url) {
            return Ok(());
        }
        let cookie = cookie::Cookie::parse(set_cookie)
            .map_err(|e| Error::new(Kind::Request, e.to_string()))?;
        let url = self.as_secure(url);
        self.lock()
            .set(&cookie, &url, &self.limits)
            .map_err(|why| Error::new(Kind::Request, format!("cookie refused: {why}")))
    }

    /// Stores `(name, value)` pairs (aiohttp's `update_cookies`): as if `response_url` had
    /// set them (host-only, its path), or, with `None`, as shared cookies sent with every
    /// request to any URL, IP hosts included, as aiohttp's `response_url=None` does. A
    /// shared cookie replaces the shared one of its name. An invalid name is an error.
    pub fn update_cookies<'a>(
        &self,
        cookies: impl IntoIterator<Item = (&'a str, &'a str)>,
        response_url: Option<&Url>,
    ) -> Result<(), Error> {
        for (name, value) in cookies {
            let valid = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_graphic() && !b"=;,\"".contains(&b));
            if !valid || value.contains(['\r', '\n', ';']) {
                return Err(Error::new(Kind::Request, format!("invalid cookie {name:?}")));
            }
            let cookie = cookie::Cookie::new(name.to_owned(), value.to_owned());
            match response_url {
                Some(url) if self.accepts(url) => {
                    let url = self.as_secure(url);
                    let _ = self.lock().set(&cookie, &url, &self.limits);
                }
                Some(_) => {}
                None if !self.dummy => {
                    let mut jar = self.lock();
                    jar.shared.retain(|c| c.name() != name);
                    jar.shared.push(cookie);
                }
                None => {}
            }
        }
        Ok(())
    }

    /// The `(name, value)` pairs to send to `url`: the shared cookies, then those whose
    /// domain, path and `Secure` flag match it.
    pub fn filter_cookies(&self, url: &Url) -> Vec<(String, String)> {
        if self.dummy {
            return Vec::new();
        }
        let jar = self.lock();
        let shared = jar.shared.iter().map(|c| (c.name().to_owned(), c.value().to_owned()));
        let mut pairs: Vec<_> = shared.collect();
        if self.accepts(url) {
            let url = self.as_secure(url);
            let matching = jar.store.get_request_values(&url);
            pairs.extend(matching.map(|(n, v)| (n.to_owned(), v.to_owned())));
        }
        pairs
    }

    /// The `Cookie` field for `url`, if any cookie matches.
    pub(crate) fn header_for(&self, url: &Url) -> Option<HeaderValue> {
        let pairs = self.filter_cookies(url);
        if pairs.is_empty() {
            return None;
        }
        let mut line = String::new();
        for (name, value) in &pairs {
            if !line.is_empty() {
                line.push_str("; ");
            }
            line.push_str(name);
            line.push('=');
            if self.quote_cookie {
                quote_value(value, &mut line);
            } else {
                line.push_str(value);
            }
        }
        HeaderValue::try_from(line).ok()
    }

    /// Every unexpired cookie (aiohttp's iteration over the jar): the shared ones, then the
    /// others, each with its `Domain` (the host, for a host-only cookie) and `Path`, and its
    /// expiry when it has one.
    pub fn cookies(&self) -> Vec<cookie::Cookie<'static>> {
        let jar = self.lock();
        let mut all = jar.shared.clone();
        all.extend(jar.store.iter_unexpired().map(view));
        all
    }

    /// How many unexpired cookies the jar holds.
    pub fn len(&self) -> usize {
        let jar = self.lock();
        jar.shared.len() + jar.store.iter_unexpired().count()
    }

    /// Whether the jar holds no unexpired cookie.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every cookie.
    pub fn clear(&self) {
        let mut jar = self.lock();
        jar.store.clear();
        jar.order.clear();
        jar.shared.clear();
    }

    /// Forgets the cookies `predicate` is true for (aiohttp's `clear(predicate)`); it sees
    /// each as [`cookies`](Self::cookies) shows it.
    pub fn clear_if(&self, predicate: impl Fn(&cookie::Cookie<'static>) -> bool) {
        let mut guard = self.lock();
        let jar = &mut *guard;
        jar.shared.retain(|c| !predicate(c));
        let doomed: Vec<_> = jar
            .store
            .iter_any()
            .filter(|c| predicate(&view(c)))
            .map(cookie_rules::key_of)
            .collect();
        for key in doomed {
            cookie_rules::remove(&mut jar.store, &mut jar.order, key);
        }
    }

    /// Forgets the cookies of `domain` and of its subdomains (aiohttp's `clear_domain`).
    pub fn clear_domain(&self, domain: &str) {
        let domain = domain.trim_start_matches('.').to_ascii_lowercase();
        self.clear_if(|c| {
            c.domain().is_some_and(|d| {
                let d = d.trim_start_matches('.');
                d.eq_ignore_ascii_case(&domain)
                    || d.len() > domain.len()
                        && d.to_ascii_lowercase().ends_with(&format!(".{domain}"))
            })
        });
    }

    /// Writes every unexpired cookie, session cookies too, as JSON to `path`, readable only
    /// by its owner (mode 0600 on Unix), as aiohttp 3.14 does: an array of
    /// `{"url": ..., "set_cookie": ...}`, each cookie as the `Set-Cookie` value that stores it
    /// again from that URL (its domain if it is not host-only, its path, its expiry as a date).
    /// Shared cookies are not written: the format has no place for a cookie without a domain.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let cookies: Vec<serde_json::Value> = self
            .lock()
            .store
            .iter_unexpired()
            .filter_map(|c| {
                let (cookie, url) = replayable(c)?;
                Some(serde_json::json!({ "url": url.as_str(), "set_cookie": cookie.to_string() }))
            })
            .collect();
        let json = serde_json::to_vec_pretty(&cookies).map_err(|e| Error::new(Kind::Io, e))?;
        write_private(path.as_ref(), &json)
    }

    /// Replaces the jar's cookies with those saved at `path` by [`save`](Self::save).
    /// Expired cookies and malformed entries are skipped; a file that is not a JSON array
    /// is an error.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let json = fs::read(path).map_err(|e| Error::new(Kind::Io, e))?;
        let entries: Vec<serde_json::Value> =
            serde_json::from_slice(&json).map_err(|e| Error::new(Kind::Io, e))?;
        self.replace_with(entries.iter().filter_map(|entry| {
            let url = Url::parse(entry["url"].as_str()?).ok()?;
            let cookie = cookie::Cookie::parse(entry["set_cookie"].as_str()?.to_owned()).ok()?;
            Some((cookie, url))
        }));
        Ok(())
    }

    /// Writes every cookie in the Netscape `cookies.txt` form that curl (`-b`/`-c`), wget
    /// and browsers' exports read, readable only by its owner (mode 0600 on Unix): one line
    /// per cookie, `domain`, `include-subdomains`, `path`, `secure`, `expires` (Unix time, 0
    /// for a session cookie), `name`, `value`, separated by tabs, with curl's `#HttpOnly_`
    /// prefix. Shared cookies are not written, having no domain.
    pub fn save_netscape(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let mut text = String::from("# Netscape HTTP Cookie File\n");
        for c in self.lock().store.iter_unexpired() {
            let (domain, subdomains) = match &c.domain {
                CookieDomain::HostOnly(host) => (host.clone(), "FALSE"),
                CookieDomain::Suffix(suffix) => (format!(".{suffix}"), "TRUE"),
                CookieDomain::NotPresent | CookieDomain::Empty => continue,
            };
            let expires = match &c.expires {
                CookieExpiration::AtUtc(at) => at.unix_timestamp().max(1),
                CookieExpiration::SessionEnd => 0,
            };
            let http_only = if c.http_only() == Some(true) { "#HttpOnly_" } else { "" };
            let secure = if c.secure() == Some(true) { "TRUE" } else { "FALSE" };
            let (name, value, cookie_path) = (c.name(), c.value(), &*c.path);
            let line = format!(
                "{http_only}{domain}\t{subdomains}\t{cookie_path}\t{secure}\t{expires}\t{name}\t{value}\n"
            );
            text.push_str(&line);
        }
        write_private(path.as_ref(), text.as_bytes())
    }

    /// Replaces the jar's cookies with those of the Netscape `cookies.txt` file at `path`
    /// (see [`save_netscape`](Self::save_netscape)). Comment lines, blank lines, malformed
    /// lines and expired cookies are skipped.
    pub fn load_netscape(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let text = fs::read_to_string(path).map_err(|e| Error::new(Kind::Io, e))?;
        self.replace_with(text.lines().filter_map(|line| {
            let (http_only, line) = match line.strip_prefix("#HttpOnly_") {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            if line.trim().is_empty() || line.starts_with('#') {
                return None;
            }
            netscape_cookie(line, http_only)
        }));
        Ok(())
    }

    /// Replaces the jar's cookies with `cookies`, each stored as if `Set-Cookie` had come
    /// from its URL (so the store's own rules decide its scope); shared cookies are dropped.
    fn replace_with(&self, cookies: impl Iterator<Item = (cookie::Cookie<'static>, Url)>) {
        let mut store = CookieStore::default();
        let mut order = SetOrder::default();
        for (cookie, url) in cookies {
            cookie_rules::store_unchecked(&mut store, &mut order, &cookie, &url);
        }
        *self.lock() = Jar { store, order, shared: Vec::new() };
    }
}

/// One `cookies.txt` line as a cookie, and the URL to store it as coming from.
fn netscape_cookie(line: &str, http_only: bool) -> Option<(cookie::Cookie<'static>, Url)> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [domain, subdomains, path, secure, expires, name, value] = fields[..] else {
        return None;
    };
    let host = domain.trim_start_matches('.');
    let secure = secure.eq_ignore_ascii_case("TRUE");
    let url = origin(secure, host, path)?;
    let mut cookie = cookie::Cookie::new(name.to_owned(), value.to_owned());
    cookie.set_path(path.to_owned());
    cookie.set_secure(secure);
    cookie.set_http_only(http_only);
    if subdomains.eq_ignore_ascii_case("TRUE") {
        cookie.set_domain(host.to_owned());
    }
    match expires.parse::<i64>().ok()? {
        0 => {}
        at => {
            let at = OffsetDateTime::from_unix_timestamp(at).ok()?;
            if at <= OffsetDateTime::now_utc() {
                return None;
            }
            cookie.set_expires(at);
        }
    }
    Some((cookie, url))
}

/// A stored cookie as a `Set-Cookie` value and the URL that stores it again as it is: a
/// host-only cookie without `Domain`, its path and expiry spelled out (the date, not a
/// `Max-Age` that would count from the load).
fn replayable(c: &cookie_store::Cookie<'static>) -> Option<(cookie::Cookie<'static>, Url)> {
    let mut cookie: cookie::Cookie<'static> = (**c).clone();
    let host = match &c.domain {
        CookieDomain::HostOnly(host) => {
            cookie.unset_domain();
            host
        }
        CookieDomain::Suffix(suffix) => {
            cookie.set_domain(suffix.clone());
            suffix
        }
        CookieDomain::NotPresent | CookieDomain::Empty => return None,
    };
    cookie.set_path(String::from(&*c.path));
    cookie.set_max_age(None);
    match &c.expires {
        CookieExpiration::AtUtc(at) => cookie.set_expires(*at),
        CookieExpiration::SessionEnd => cookie.unset_expires(),
    }
    let url = origin(cookie.secure() == Some(true), host, &c.path)?;
    Some((cookie, url))
}

/// The URL a cookie for `host` and `path` is stored as coming from: https for a secure one,
/// which the store keeps only from a secure origin.
fn origin(secure: bool, host: &str, path: &str) -> Option<Url> {
    let scheme = if secure { "https" } else { "http" };
    Url::parse(&format!("{scheme}://{host}{path}")).ok()
}

/// A stored cookie as the jar shows it: its attributes as the store resolved them.
fn view(c: &cookie_store::Cookie<'static>) -> cookie::Cookie<'static> {
    let mut out: cookie::Cookie<'static> = (**c).clone();
    if let Some(domain) = c.domain.as_cow() {
        out.set_domain(domain.into_owned());
    }
    out.set_path(String::from(&*c.path));
    if let CookieExpiration::AtUtc(at) = &c.expires {
        out.set_expires(*at);
    }
    out
}

/// Writes `bytes` to `path`, readable only by its owner on Unix: a cookie file holds
/// credentials.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| Error::new(Kind::Io, e))?;
    file.write_all(bytes).map_err(|e| Error::new(Kind::Io, e))
}

/// Python's `http.cookies._quote`, which aiohttp's `quote_cookie` applies: a value of only
/// legal characters is sent as it is; any other is put in double quotes, with `"` and `\`
/// escaped by a backslash and the bytes (code points below 256) outside the printable
/// set written as three octal digits. A value already in quotes is left as it is.
fn quote_value(value: &str, out: &mut String) {
    const LEGAL: &[u8] = b"!#$%&'*+-.^_`|~:";
    const UNESCAPED: &[u8] = b" ()/<=>?@[]{}";
    let legal = |c: char| c.is_ascii_alphanumeric() || c.is_ascii() && LEGAL.contains(&(c as u8));
    let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
    if quoted || value.chars().all(legal) {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if legal(c) || c.is_ascii() && UNESCAPED.contains(&(c as u8)) => out.push(c),
            c if (c as u32) < 256 => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// Stores `value` as a `Set-Cookie` of a response from `from`.
    pub(crate) fn set(jar: &CookieJar, value: &str, from: &str) {
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

    #[test]
    fn saved_cookies_come_back_with_their_scope_and_expiry() {
        let file = std::env::temp_dir().join(format!("tandem-jar-scope-{}", std::process::id()));
        let jar = CookieJar::new();
        set(&jar, "host=1; Max-Age=3600", "http://example.com/a/b");
        set(
            &jar,
            "wide=2; Domain=example.com; Path=/p; Secure; HttpOnly; SameSite=Strict",
            "https://example.com/p/x",
        );
        set(&jar, "gone=3; Max-Age=0", "http://example.com/");
        jar.save(&file).unwrap();
        let other = CookieJar::new();
        other.load(&file).unwrap();
        let _ = fs::remove_file(&file);
        // What the jar shows, but a `Max-Age`: the loaded cookie has the absolute expiry.
        let shown = |j: &CookieJar| {
            let mut all: Vec<String> = j
                .cookies()
                .into_iter()
                .map(|mut c| {
                    c.set_max_age(None);
                    c.to_string()
                })
                .collect();
            all.sort();
            all
        };
        assert_eq!(shown(&other), shown(&jar));
        assert_eq!(shown(&other).len(), 2);
        // Host-only stays host-only (default path /a), the domain cookie reaches subdomains.
        assert_eq!(
            other.filter_cookies(&url("http://example.com/a/z")),
            [("host".into(), "1".into())]
        );
        assert!(other.filter_cookies(&url("http://sub.example.com/a/z")).is_empty());
        assert_eq!(
            other.filter_cookies(&url("https://sub.example.com/p/")),
            [("wide".into(), "2".into())]
        );
        assert!(other.filter_cookies(&url("http://sub.example.com/p/")).is_empty());
    }

    #[test]
    fn loading_what_is_not_a_saved_jar() {
        let file = std::env::temp_dir().join(format!("tandem-jar-bad-{}", std::process::id()));
        fs::write(&file, r#"{"not": "an array"}"#).unwrap();
        assert!(CookieJar::new().load(&file).unwrap_err().is_io());
        fs::write(&file, r#"[{"url": "nope"}, {"url": "http://a.example/", "set_cookie": "k=v"}]"#)
            .unwrap();
        let jar = CookieJar::new();
        jar.load(&file).unwrap();
        let _ = fs::remove_file(&file);
        assert_eq!(jar.filter_cookies(&url("http://a.example/")), [("k".into(), "v".into())]);
    }
}
