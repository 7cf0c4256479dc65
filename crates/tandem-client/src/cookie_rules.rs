//! What a cookie jar refuses from a server beyond what the store checks (domain and path):
//! cookies too large, `Secure` cookies from an origin that is not secure (or one that would
//! replace a `Secure` cookie from there), and names whose `__Secure-` or `__Host-` prefix
//! promises what the cookie does not keep (RFC 6265bis §4.1.3, §5.7). Browsers refuse the
//! same; aiohttp keeps them all. A refused cookie is skipped, and a response's other cookies
//! are still stored. The jar's counts are bounded as browsers bound them: a new cookie past
//! them evicts an older one (RFC 6265 §5.3 step 12) rather than being refused, so neither a
//! flooding server nor a long crawl stops the jar taking cookies.

use std::{
    borrow::Cow,
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, HashSet},
};

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

/// The longest `Domain` or `Path` attribute: 1024 bytes (RFC 6265bis §5.6); a longer one is
/// ignored, the cookie kept without it.
const MAX_ATTRIBUTE_SIZE: usize = 1024;

/// The share of its `max_cookies` a full jar frees at once (a tenth), as Chrome purges 300
/// of 3300: choosing whom to evict reads the whole jar, which then happens once per that
/// many new cookies rather than for each.
const FULL_JAR_FREES: usize = 10;

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

/// A stored cookie's key in the store: its domain, path and name.
pub(crate) type CookieKey = (String, String, String);

/// The order the store's cookies were last set in, which eviction needs and the store (hash
/// maps) does not keep: a full jar evicts the cookie least recently set, as browsers evict
/// the least recently used (counting sends too would cost every request a write). It holds
/// a key only while the store holds the cookie, so it is bounded as the store is.
#[derive(Default)]
pub(crate) struct SetOrder {
    next: u64,
    of: HashMap<CookieKey, u64>,
}

impl SetOrder {
    fn stored(&mut self, key: CookieKey) {
        self.next += 1;
        self.of.insert(key, self.next);
    }

    /// Forgets every cookie.
    pub(crate) fn clear(&mut self) {
        self.of.clear();
    }
}

/// Removes the cookie at `domain`, `path`, `name` from the store and from `order`.
pub(crate) fn remove(
    store: &mut CookieStore,
    order: &mut SetOrder,
    (domain, path, name): CookieKey,
) {
    store.remove(&domain, &path, &name);
    order.of.remove(&(domain, path, name));
}

/// Stores `cookie` as if `url` had set it, without this module's rules (a jar loaded from
/// a file), noting its place in `order`.
pub(crate) fn store_unchecked(
    store: &mut CookieStore,
    order: &mut SetOrder,
    cookie: &RawCookie<'_>,
    url: &Url,
) {
    if let Ok(c) = cookie_store::Cookie::try_from_raw_cookie(cookie, url) {
        let key = key_of(&c);
        if !c.is_expired() && store.insert(c.into_owned(), url).is_ok() {
            order.stored(key);
        }
    }
}

/// Stores `raw` as set by `url` unless a rule above refuses it, evicting older cookies when
/// the jar is at its counts; the reason when it is not stored (by these rules or the
/// store's own).
pub(crate) fn store(
    store: &mut CookieStore,
    order: &mut SetOrder,
    raw: &RawCookie<'_>,
    url: &Url,
    limits: &CookieLimits,
) -> Result<(), &'static str> {
    let name = raw.name();
    if name.len() + raw.value().len() > limits.max_size {
        return Err("larger than the jar's max_cookie_size");
    }
    let raw = without_long_attributes(raw);
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
    let cookie = cookie_store::Cookie::try_from_raw_cookie(&raw, url)
        .map_err(|_| "its domain does not match the origin's")?;
    let key = key_of(&cookie);
    let (domain, path, _) = &key;
    let new = match store.get_any(domain, path, name) {
        Some(old) if old.secure().unwrap_or(false) && !from_secure => {
            return Err("it would replace a Secure cookie from an origin that is not secure");
        }
        Some(old) => old.is_expired(),
        None => true,
    };
    // An expired cookie only removes; a new one needs room.
    let kept = !cookie.is_expired();
    if new && kept && !has_room(store, domain, limits) {
        make_room(store, order, domain, limits)?;
    }
    store.insert(cookie.into_owned(), url).map_err(|_| "the store refused it")?;
    if kept {
        order.stored(key);
    }
    Ok(())
}

/// `raw` without a `Domain` or `Path` longer than RFC 6265bis lets a client keep: the
/// attribute is ignored, not the cookie, so a long `Domain` leaves a host-only cookie and a
/// long `Path` the default path.
fn without_long_attributes<'a, 'b>(raw: &'a RawCookie<'b>) -> Cow<'a, RawCookie<'b>> {
    let too_long = |a: Option<&str>| a.is_some_and(|a| a.len() > MAX_ATTRIBUTE_SIZE);
    let (domain, path) = (too_long(raw.domain()), too_long(raw.path()));
    if !domain && !path {
        return Cow::Borrowed(raw);
    }
    let mut kept = raw.clone();
    if domain {
        kept.unset_domain();
    }
    if path {
        kept.unset_path();
    }
    Cow::Owned(kept)
}

/// `c`'s key in the store.
pub(crate) fn key_of(c: &cookie_store::Cookie<'_>) -> CookieKey {
    let domain = c.domain.as_cow().unwrap_or_default().into_owned();
    (domain, String::from(&c.path), c.name().to_owned())
}

/// Whether one more cookie for `domain` stays within the counts.
fn has_room(store: &CookieStore, domain: &str, limits: &CookieLimits) -> bool {
    let (total, same_domain) = counts(store, domain);
    total < limits.total && same_domain < limits.per_domain
}

/// How many cookies the store holds, and how many of them for `domain`.
fn counts(store: &CookieStore, domain: &str) -> (usize, usize) {
    let mut total = 0;
    let mut same_domain = 0;
    for c in store.iter_any() {
        total += 1;
        if c.domain.as_cow().is_some_and(|d| d == domain) {
            same_domain += 1;
        }
    }
    (total, same_domain)
}

/// Evicts until one more cookie for `domain` fits, in RFC 6265 §5.3's order: expired cookies
/// first; then, for a domain at its limit, that domain's oldest; then, for a jar at its
/// limit, a tenth of it ([`FULL_JAR_FREES`]), each the oldest of the site then holding the
/// most, so a server flooding the jar from many hosts loses its own cookies before anyone
/// else does. Only a limit of 0 leaves no room.
fn make_room(
    store: &mut CookieStore,
    order: &mut SetOrder,
    domain: &str,
    limits: &CookieLimits,
) -> Result<(), &'static str> {
    if limits.per_domain == 0 || limits.total == 0 {
        return Err("max_cookies or max_cookies_per_domain is 0");
    }
    purge_expired(store, order);
    let (total, same_domain) = counts(store, domain);
    let mut doomed = Vec::new();
    if same_domain >= limits.per_domain {
        let mut own: Vec<(u64, &CookieKey)> = order
            .of
            .iter()
            .filter(|(key, _)| key.0 == domain)
            .map(|(key, age)| (*age, key))
            .collect();
        own.sort_unstable();
        let excess = same_domain + 1 - limits.per_domain;
        doomed.extend(own.into_iter().take(excess).map(|(_, key)| key.clone()));
    }
    let left = total - doomed.len();
    if left >= limits.total {
        let room = (limits.total / FULL_JAR_FREES).max(1);
        let more = oldest_of_the_largest_sites(order, &doomed, left + room - limits.total);
        doomed.extend(more);
    }
    for key in doomed {
        tracing::debug!(domain = key.0, name = key.2, "cookie evicted to make room");
        remove(store, order, key);
    }
    // `order` holds the store's keys, so this holds; checked so the bound holds regardless.
    if has_room(store, domain, limits) { Ok(()) } else { Err("the jar found nothing to evict") }
}

/// `count` cookies besides those already `doomed` to evict from a full jar, one at a time
/// from the site that then holds the most (on a tie, the one holding the oldest cookie),
/// each its site's oldest. It reads `order`, which holds the same keys as the store, so as
/// not to copy every key of a full jar.
fn oldest_of_the_largest_sites(
    order: &SetOrder,
    doomed: &[CookieKey],
    count: usize,
) -> Vec<CookieKey> {
    let doomed: HashSet<&CookieKey> = doomed.iter().collect();
    let mut sites: HashMap<&str, Vec<(u64, &CookieKey)>> = HashMap::new();
    for (key, age) in &order.of {
        if !doomed.contains(key) {
            sites.entry(site(&key.0)).or_default().push((*age, key));
        }
    }
    let mut largest = BinaryHeap::new();
    for (site, mut cookies) in sites {
        // Newest first, so each site's oldest is popped from the end.
        cookies.sort_unstable_by(|a, b| b.cmp(a));
        let oldest = cookies.last().map_or(0, |(age, _)| *age);
        largest.push((cookies.len(), Reverse(oldest), site, cookies));
    }
    let mut evicted = Vec::with_capacity(count);
    while evicted.len() < count {
        let Some((_, _, site, mut cookies)) = largest.pop() else { break };
        if let Some((_, key)) = cookies.pop() {
            evicted.push(key.clone());
        }
        if let Some((age, _)) = cookies.last() {
            largest.push((cookies.len(), Reverse(*age), site, cookies));
        }
    }
    evicted
}

/// The site a cookie's domain belongs to, for counting who holds the most: its last two
/// labels (`a.b.example.com` → `example.com`), or an IP address whole. Without a public
/// suffix list (aiohttp keeps none) `x.co.uk` and `y.co.uk` count as one site; that only
/// changes whose cookie is evicted first from a full jar, never which cookies are sent.
fn site(domain: &str) -> &str {
    if domain.contains(':') || domain.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return domain;
    }
    match domain.rmatch_indices('.').nth(1) {
        Some((dot, _)) => &domain[dot + 1..],
        None => domain,
    }
}

/// Forgets expired cookies, which the store keeps until replaced.
fn purge_expired(store: &mut CookieStore, order: &mut SetOrder) {
    let expired: Vec<CookieKey> = store.iter_any().filter(|c| c.is_expired()).map(key_of).collect();
    for key in expired {
        remove(store, order, key);
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
    /// `__Secure-`/`__Host-` promises, and cookies past the size bound; the count bounds
    /// hold, new cookies past them taking older ones' places.
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

        // 4096 bytes of name and value are kept, one more is not.
        let jar = CookieJar::new();
        set(&jar, &format!("big={}", "v".repeat(4093)), "http://example.com/");
        set(&jar, &format!("huge={}", "v".repeat(4093)), "http://example.com/");
        assert_eq!(names(&jar, "http://example.com/"), ["big"]);

        // One domain keeps DEFAULT_MAX_COOKIES_PER_DOMAIN, its newest; replacing one there
        // evicts nothing.
        let jar = CookieJar::new();
        let extra = 20;
        for i in 0..DEFAULT_MAX_COOKIES_PER_DOMAIN + extra {
            set(&jar, &format!("c{i}=1"), "http://example.com/");
        }
        assert_eq!(jar.len(), DEFAULT_MAX_COOKIES_PER_DOMAIN);
        let kept = names(&jar, "http://example.com/");
        let mut newest: Vec<String> =
            (extra..DEFAULT_MAX_COOKIES_PER_DOMAIN + extra).map(|i| format!("c{i}")).collect();
        newest.sort();
        assert_eq!(kept, newest);
        set(&jar, &format!("c{extra}=2"), "http://example.com/");
        assert_eq!(names(&jar, "http://example.com/"), newest);
        let sent = jar.filter_cookies(&url("http://example.com/"));
        assert!(sent.contains(&(format!("c{extra}"), "2".into())), "{sent:?}");
        set(&jar, "other=1", "http://other.example/");
        assert_eq!(jar.len(), DEFAULT_MAX_COOKIES_PER_DOMAIN + 1);

        // The whole jar keeps its max_cookies (DEFAULT_MAX_COOKIES unless changed; a smaller
        // one here, as each new cookie counts the jar), however many hosts set them: the
        // newest.
        assert_eq!(CookieLimits::default().total, DEFAULT_MAX_COOKIES);
        let jar = CookieJar::new().max_cookies(200);
        for i in 0..210 {
            set(&jar, "c=1", &format!("http://h{i}.example/"));
        }
        // The 201st freed a tenth of the jar, its oldest, and took a place; 9 more came.
        assert_eq!(jar.len(), 200 - 200 / FULL_JAR_FREES + 1 + 9);
        assert!(jar.filter_cookies(&url("http://h19.example/")).is_empty());
        assert_eq!(jar.filter_cookies(&url("http://h20.example/")).len(), 1);
    }

    /// A site flooding a full jar from many hosts loses its own oldest cookies to a new
    /// origin's, and a site holding few keeps them (RFC 6265 §5.3 step 12; browsers evict
    /// rather than refuse, so one server cannot stop a session taking cookies).
    #[test]
    fn a_full_jar_evicts_the_flooders_oldest() {
        let jar = CookieJar::new().max_cookies(200);
        let flooder_keeps =
            |i: usize| jar.filter_cookies(&url(&format!("http://h{i}.evil.example/"))).len() == 1;
        set(&jar, "login=1", "http://good.example/");
        let mut hosts = 0;
        let mut flood = |jar: &CookieJar| {
            set(jar, "c=1", &format!("http://h{hosts}.evil.example/"));
            hosts += 1;
            hosts
        };
        let mut flooded = 0;
        while flooded < 300 || jar.len() < 200 {
            flooded = flood(&jar);
        }
        assert_eq!(jar.len(), 200);
        // The flood evicted its own oldest, never the login.
        assert_eq!(
            jar.filter_cookies(&url("http://good.example/")),
            [("login".into(), "1".into())]
        );
        let oldest = (0..flooded).find(|&i| flooder_keeps(i)).unwrap();
        assert!(oldest > 0 && (oldest..flooded).all(flooder_keeps), "{oldest}..{flooded}");
        // A new origin's cookie gets in; the flooder's oldest tenth of the jar goes.
        set(&jar, "sid=1", "http://new.example/");
        assert_eq!(jar.len(), 200 - 200 / FULL_JAR_FREES + 1);
        assert_eq!(jar.filter_cookies(&url("http://new.example/")), [("sid".into(), "1".into())]);
        assert_eq!(jar.filter_cookies(&url("http://good.example/")).len(), 1);
        let gone = 200 / FULL_JAR_FREES;
        assert!((oldest..oldest + gone).all(|i| !flooder_keeps(i)));
        assert!((oldest + gone..flooded).all(flooder_keeps));
        // Expired cookies go before any kept one.
        while jar.len() < 200 {
            flooded = flood(&jar);
        }
        set(&jar, "c=1; Max-Age=0", &format!("http://h{}.evil.example/", flooded - 1));
        set(&jar, "late=1", "http://good.example/");
        assert_eq!(jar.len(), 200);
        assert!(flooder_keeps(oldest + gone));
        assert_eq!(jar.filter_cookies(&url("http://good.example/")).len(), 2);
    }

    /// A `Domain` or `Path` over 1024 bytes is ignored, not the cookie (RFC 6265bis §5.6):
    /// without the `Domain` it is host-only, without the `Path` it has the default path.
    #[test]
    fn long_domain_and_path_attributes_are_ignored() {
        let jar = CookieJar::new();
        set(&jar, &format!("p=1; Path=/{}", "a".repeat(2048)), "http://example.com/dir/page");
        assert_eq!(
            jar.filter_cookies(&url("http://example.com/dir/x")),
            [("p".into(), "1".into())]
        );
        assert!(jar.filter_cookies(&url("http://example.com/")).is_empty());
        // A host as long as the Domain, so the Domain would match were it kept.
        let host = vec!["a".repeat(63); 17].join(".");
        assert!(host.len() > MAX_ATTRIBUTE_SIZE);
        set(&jar, &format!("d=1; Domain={host}"), &format!("http://{host}/"));
        assert_eq!(
            jar.filter_cookies(&url(&format!("http://{host}/"))),
            [("d".into(), "1".into())]
        );
        assert!(jar.filter_cookies(&url(&format!("http://sub.{host}/"))).is_empty());
        // At 1024 bytes the attribute still counts.
        let path = format!("/{}", "b".repeat(MAX_ATTRIBUTE_SIZE - 1));
        set(&jar, &format!("q=1; Path={path}"), "http://example.com/");
        assert!(jar.filter_cookies(&url("http://example.com/")).is_empty());
        assert_eq!(jar.filter_cookies(&url(&format!("http://example.com{path}"))).len(), 1);
    }

    /// The bounds can be changed; an expired cookie gives its place back before a kept one
    /// is evicted; bounds of 0 keep nothing.
    #[test]
    fn cookie_bounds_can_be_changed() {
        let jar = CookieJar::new().max_cookies(3).max_cookies_per_domain(2).max_cookie_size(8);
        let sent = |to: &str| jar.filter_cookies(&url(to)).len();
        set(&jar, "a=1", "http://a.example/");
        set(&jar, "b=1", "http://a.example/");
        set(&jar, "c=1", "http://a.example/");
        assert_eq!((sent("http://a.example/"), jar.len()), (2, 2));
        assert!(!jar.filter_cookies(&url("http://a.example/")).iter().any(|(n, _)| n == "a"));
        set(&jar, "long=12345", "http://b.example/");
        set(&jar, "d=1", "http://b.example/");
        assert_eq!(jar.len(), 3);
        set(&jar, "b=1; Max-Age=0", "http://a.example/");
        set(&jar, "e=1", "http://c.example/");
        assert_eq!(jar.len(), 3);
        assert_eq!([sent("http://a.example/"), sent("http://b.example/")], [1, 1]);
        assert_eq!(sent("http://c.example/"), 1);

        for zero in [CookieJar::new().max_cookies(0), CookieJar::new().max_cookies_per_domain(0)] {
            set(&zero, "a=1", "http://a.example/");
            assert!(zero.is_empty());
        }
    }
}
