//! What a cookie jar refuses from a server beyond what the store checks (domain and path):
//! cookies too large, cookies past the jar's counts, `Secure` cookies from an origin that is
//! not secure (or one that would replace a `Secure` cookie from there), and names whose
//! `__Secure-` or `__Host-` prefix promises what the cookie does not keep (RFC 6265bis
//! §4.1.3, §5.7). Browsers refuse the same; aiohttp keeps them all. A refused cookie is
//! skipped, and a response's other cookies are still stored.

use cookie_store::{CookieStore, RawCookie};
use url::{Host, Url};

/// The longest cookie a jar keeps, its name and value together: 4096 bytes, what RFC 6265
/// §6.1 asks a client to keep at least and what browsers keep at most.
pub const DEFAULT_MAX_COOKIE_SIZE: usize = 4096;

/// The most cookies a jar keeps for one domain: 180, as Chrome and Firefox (RFC 6265 §6.1
/// asks for at least 50).
pub const DEFAULT_MAX_COOKIES_PER_DOMAIN: usize = 180;

/// The most cookies a jar keeps: 3000, RFC 6265 §6.1's least.
pub const DEFAULT_MAX_COOKIES: usize = 3000;

/// The longest `Domain` or `Path` attribute: 1024 bytes (RFC 6265bis §5.6); a cookie with a
/// longer one is refused.
const MAX_ATTRIBUTE_SIZE: usize = 1024;

/// A jar's bounds on what it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CookieLimits {
    pub(crate) max_size: usize,
    pub(crate) per_domain: usize,
    pub(crate) total: usize,
}

impl Default for CookieLimits {
    fn default() -> Self {
        CookieLimits {
            max_size: DEFAULT_MAX_COOKIE_SIZE,
            per_domain: DEFAULT_MAX_COOKIES_PER_DOMAIN,
            total: DEFAULT_MAX_COOKIES,
        }
    }
}

/// Stores `raw` as set by `url` unless a rule above refuses it; the reason when it is not
/// stored (by these rules or the store's own).
pub(crate) fn store(
    store: &mut CookieStore,
    raw: &RawCookie<'_>,
    url: &Url,
    limits: &CookieLimits,
) -> Result<(), &'static str> {
    let name = raw.name();
    if name.len() + raw.value().len() > limits.max_size {
        return Err("larger than the jar's max_cookie_size");
    }
    let attribute_too_long = |a: Option<&str>| a.is_some_and(|a| a.len() > MAX_ATTRIBUTE_SIZE);
    if attribute_too_long(raw.domain()) || attribute_too_long(raw.path()) {
        return Err("a Domain or Path longer than 1024 bytes");
    }
    let secure = raw.secure().unwrap_or(false);
    let from_secure = is_secure(url);
    if secure && !from_secure {
        return Err("Secure from an origin that is not secure");
    }
    if has_prefix(name, "__Secure-") && !secure {
        return Err("a __Secure- name without Secure");
    }
    if has_prefix(name, "__Host-") && !(secure && raw.domain().is_none() && raw.path() == Some("/"))
    {
        return Err("a __Host- name without Secure and Path=/, or with a Domain");
    }
    let cookie = cookie_store::Cookie::try_from_raw_cookie(raw, url)
        .map_err(|_| "its domain does not match the origin's")?;
    let domain = cookie.domain.as_cow().unwrap_or_default().into_owned();
    let path = String::from(&cookie.path);
    match store.get_any(&domain, &path, name) {
        Some(old) if old.secure().unwrap_or(false) && !from_secure => {
            return Err("it would replace a Secure cookie from an origin that is not secure");
        }
        Some(_) => {}
        // An expired cookie only removes; a new one needs room.
        None if !cookie.is_expired() && !has_room(store, &domain, limits) => {
            purge_expired(store);
            if !has_room(store, &domain, limits) {
                return Err("the jar holds max_cookies, or max_cookies_per_domain for its domain");
            }
        }
        None => {}
    }
    store.insert(cookie.into_owned(), url).map(|_| ()).map_err(|_| "the store refused it")
}

/// Whether one more cookie for `domain` stays within the counts.
fn has_room(store: &CookieStore, domain: &str, limits: &CookieLimits) -> bool {
    let mut total = 0;
    let mut same_domain = 0;
    for c in store.iter_any() {
        total += 1;
        if c.domain.as_cow().is_some_and(|d| d == domain) {
            same_domain += 1;
        }
    }
    total < limits.total && same_domain < limits.per_domain
}

/// Forgets expired cookies, which the store keeps until replaced.
fn purge_expired(store: &mut CookieStore) {
    let expired: Vec<(String, String, String)> = store
        .iter_any()
        .filter(|c| c.is_expired())
        .map(|c| {
            let domain = c.domain.as_cow().unwrap_or_default().into_owned();
            (domain, String::from(&c.path), c.name().to_owned())
        })
        .collect();
    for (domain, path, name) in expired {
        store.remove(&domain, &path, &name);
    }
}

/// Whether `name` begins with `prefix`, in any case (RFC 6265bis matches prefixes
/// case-insensitively, so `__HOST-` is held to the same rules).
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// A secure origin as browsers count one: https, or a loopback host.
fn is_secure(url: &Url) -> bool {
    url.scheme() == "https"
        || match url.host() {
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        CookieJar,
        cookies::tests::{set, url},
    };

    /// Cookies a browser refuses are refused here too, each skipped without stopping the
    /// others: `Secure` from plain http (or replacing a `Secure` one from there), broken
    /// `__Secure-`/`__Host-` promises, and cookies past the size and count bounds.
    #[test]
    fn hostile_set_cookies_are_refused() {
        let names = |jar: &CookieJar, to: &str| -> Vec<String> {
            let mut n: Vec<_> = jar.filter_cookies(&url(to)).into_iter().map(|(n, _)| n).collect();
            n.sort();
            n
        };
        let jar = CookieJar::new();
        set(&jar, "s=1; Secure", "http://example.com/");
        set(&jar, "__Secure-a=1", "https://example.com/");
        set(&jar, "__secure-b=1; Secure", "http://example.com/");
        set(&jar, "__Host-c=1; Secure; Path=/; Domain=example.com", "https://example.com/");
        set(&jar, "__Host-d=1; Secure; Path=/x", "https://example.com/x");
        set(&jar, "__HOST-e=1; Path=/", "https://example.com/");
        assert!(jar.is_empty(), "{:?}", jar.cookies());
        set(&jar, "__Secure-ok=1; Secure", "https://example.com/");
        set(&jar, "__Host-ok=1; Secure; Path=/", "https://example.com/");
        set(&jar, "sid=secure; Secure", "https://example.com/");
        // Plain http may not replace a Secure cookie (RFC 6265bis "leave Secure cookies alone").
        set(&jar, "sid=from-http", "http://example.com/");
        assert_eq!(names(&jar, "https://example.com/"), ["__Host-ok", "__Secure-ok", "sid"]);
        let sent = jar.filter_cookies(&url("https://example.com/"));
        assert!(sent.contains(&("sid".into(), "secure".into())), "{sent:?}");

        // 4096 bytes of name and value are kept, one more is not; nor a 2 KiB Path.
        let jar = CookieJar::new();
        set(&jar, &format!("big={}", "v".repeat(4093)), "http://example.com/");
        set(&jar, &format!("huge={}", "v".repeat(4093)), "http://example.com/");
        set(&jar, &format!("p=1; Path=/{}", "a".repeat(2048)), "http://example.com/");
        assert_eq!(names(&jar, "http://example.com/"), ["big"]);

        // One domain keeps DEFAULT_MAX_COOKIES_PER_DOMAIN; replacing one still works there.
        let jar = CookieJar::new();
        for i in 0..DEFAULT_MAX_COOKIES_PER_DOMAIN + 20 {
            set(&jar, &format!("c{i}=1"), "http://example.com/");
        }
        assert_eq!(jar.len(), DEFAULT_MAX_COOKIES_PER_DOMAIN);
        set(&jar, "c0=2", "http://example.com/");
        assert!(
            jar.filter_cookies(&url("http://example.com/")).contains(&("c0".into(), "2".into()))
        );
        set(&jar, "other=1", "http://other.example/");
        assert_eq!(jar.len(), DEFAULT_MAX_COOKIES_PER_DOMAIN + 1);

        // The whole jar keeps its max_cookies (DEFAULT_MAX_COOKIES unless changed; a smaller
        // one here, as each new cookie counts the jar), however many hosts set them.
        assert_eq!(CookieLimits::default().total, DEFAULT_MAX_COOKIES);
        let jar = CookieJar::new().max_cookies(200);
        for i in 0..210 {
            set(&jar, "c=1", &format!("http://h{i}.example/"));
        }
        assert_eq!(jar.len(), 200);
    }

    /// The bounds can be changed; an expired cookie gives its place back.
    #[test]
    fn cookie_bounds_can_be_changed() {
        let jar = CookieJar::new().max_cookies(3).max_cookies_per_domain(2).max_cookie_size(8);
        set(&jar, "a=1", "http://a.example/");
        set(&jar, "b=1", "http://a.example/");
        set(&jar, "c=1", "http://a.example/");
        set(&jar, "long=12345", "http://b.example/");
        set(&jar, "d=1", "http://b.example/");
        set(&jar, "e=1", "http://c.example/");
        assert_eq!(jar.len(), 3);
        set(&jar, "a=1; Max-Age=0", "http://a.example/");
        set(&jar, "e=1", "http://c.example/");
        assert_eq!(jar.len(), 3);
        assert_eq!(jar.filter_cookies(&url("http://c.example/")).len(), 1);
    }
}
