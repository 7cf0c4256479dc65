//! Name resolution: the system resolver behind a TTL cache with single-flight lookups, as
//! aiohttp's `use_dns_cache`, `ttl_dns_cache` and its de-duplicated concurrent lookups.
//!
//! Each `(host, port)` has one [`Flight`]: a `OnceCell` the first caller fills by resolving
//! while later callers await the same cell, so a burst of requests to a new host costs one
//! lookup. If the resolving caller is cancelled, `OnceCell` lets the next waiter take over. A
//! failed lookup is not cached (aiohttp does not cache failures either): the flight is removed
//! and the next call resolves afresh.
//!
//! The resolver behind the cache is the user's own [`Resolve`] (aiohttp's `resolver=` with an
//! `AbstractResolver`), else the system's (`getaddrinfo` on a blocking thread, via
//! `tokio::net::lookup_host`) or, given nameservers, hickory's, as aiohttp's
//! `AsyncResolver(nameservers=[...])`. Hickory's own cache is turned off: ours is the one
//! whose TTL the user set. Without the `dns` feature there is no hickory, and so no custom
//! nameservers.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::future::BoxFuture;
#[cfg(feature = "dns")]
use hickory_resolver::{
    TokioResolver,
    config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts},
    name_server::TokioConnectionProvider,
    proto::xfer::Protocol,
};
use tokio::{sync::OnceCell, time::Instant};

use crate::{
    ConnectEvents,
    error::{Error, Kind},
};

/// aiohttp's `ttl_dns_cache`: resolved addresses are reused for 10 s.
pub const DEFAULT_TTL_DNS_CACHE: Duration = Duration::from_secs(10);

/// aiohttp's `dns_cache_max_size`: at most 1000 cached hosts.
pub const DEFAULT_DNS_CACHE_MAX_SIZE: usize = 1000;

/// A resolver of the user's (aiohttp's `AbstractResolver`): service discovery, a resolver
/// library of one's choice, a fixed table. The connector's cache, single flight and
/// overrides stay in front of it, and an IP literal never reaches it.
///
/// ```
/// use std::net::SocketAddr;
/// use tandem_connect::{Connector, Resolve};
///
/// /// Every name is this one machine.
/// struct Loopback;
///
/// impl Resolve for Loopback {
///     fn resolve<'a>(
///         &'a self,
///         _host: &'a str,
///         port: u16,
///     ) -> futures_util::future::BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
///         Box::pin(async move { Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]) })
///     }
/// }
///
/// let connector = Connector::builder().resolver(Loopback).build();
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`, each with `port`, in the order to try them. An empty list
    /// or an error fails the connection as a DNS error ([`Error::is_dns`]).
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>>;
}

/// A [`Resolve`] as the connector's settings keep it.
#[derive(Clone)]
pub(crate) struct UserResolver(pub(crate) Arc<dyn Resolve>);

impl std::fmt::Debug for UserResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserResolver")
    }
}

/// DNS cache counters, for tests and for the curious (non-exhaustive: read its fields; new
/// ones may come).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsStats {
    /// Lookups answered from the cache or by joining a lookup already in flight.
    pub hits: u64,
    /// Lookups that asked the resolver.
    pub misses: u64,
}

type Answer = Result<(Arc<[SocketAddr]>, Instant), Arc<io::Error>>;
type Cache = HashMap<(String, u16), Arc<Flight>>;

#[derive(Default)]
struct Flight {
    cell: OnceCell<Answer>,
}

pub(crate) struct Resolver {
    /// `None`: every lookup goes to the resolver (`use_dns_cache=False`).
    cache: Option<Mutex<Cache>>,
    /// `None`: cached answers never expire (aiohttp's `ttl_dns_cache=None`).
    ttl: Option<Duration>,
    max_size: usize,
    /// Fixed answers per host, as reqwest's `resolve_to_addrs`; checked before anything else.
    overrides: HashMap<String, Vec<SocketAddr>>,
    /// The user's resolver, asked before any other.
    custom: Option<UserResolver>,
    /// Custom nameservers; `None` means the system resolver.
    #[cfg(feature = "dns")]
    hickory: Option<TokioResolver>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Resolver {
    pub(crate) fn new(
        use_cache: bool,
        ttl: Option<Duration>,
        max_size: usize,
        overrides: HashMap<String, Vec<SocketAddr>>,
    ) -> Self {
        Resolver {
            cache: use_cache.then(|| Mutex::new(HashMap::new())),
            ttl,
            max_size: max_size.max(1),
            overrides,
            custom: None,
            #[cfg(feature = "dns")]
            hickory: None,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Asks `resolver` instead of the system resolver or nameservers.
    pub(crate) fn with_custom(mut self, resolver: Option<UserResolver>) -> Self {
        self.custom = resolver;
        self
    }

    /// Asks `nameservers` instead of the system resolver (none: the system resolver).
    #[cfg(feature = "dns")]
    pub(crate) fn with_nameservers(mut self, nameservers: &[SocketAddr]) -> Self {
        self.hickory = (!nameservers.is_empty()).then(|| hickory(nameservers));
        self
    }

    fn cache(&self) -> Option<MutexGuard<'_, Cache>> {
        self.cache.as_ref().map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn stats(&self) -> DnsStats {
        DnsStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Forgets cached answers for `host` (every port), or all of them.
    pub(crate) fn clear(&self, host: Option<&str>) {
        if let Some(mut cache) = self.cache() {
            match host {
                Some(h) => cache.retain(|(k, _), _| !k.eq_ignore_ascii_case(h)),
                None => cache.clear(),
            }
        }
    }

    /// The addresses of `host`, in the resolver's order. IP literals are returned as they are.
    pub(crate) async fn resolve(
        &self,
        host: &str,
        port: u16,
        events: Option<&dyn ConnectEvents>,
    ) -> Result<Arc<[SocketAddr]>, Error> {
        if let Some(addrs) = self.overrides.get(host) {
            return Ok(addrs
                .iter()
                .map(|a| if a.port() == 0 { SocketAddr::new(a.ip(), port) } else { *a })
                .collect());
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Arc::new([SocketAddr::new(ip, port)]));
        }
        if self.cache.is_none() {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return self.lookup(host, port, events).await.map(|(a, _)| a).map_err(dns_error);
        }
        let key = (host.to_owned(), port);
        let flight = self.flight(&key);
        let mut asked = false;
        let answer = flight
            .cell
            .get_or_init(|| {
                asked = true;
                self.misses.fetch_add(1, Ordering::Relaxed);
                if let Some(ev) = events {
                    ev.dns_cache_miss(host);
                }
                async move { self.lookup(host, port, events).await.map_err(Arc::new) }
            })
            .await;
        if !asked {
            self.hits.fetch_add(1, Ordering::Relaxed);
            if let Some(ev) = events {
                ev.dns_cache_hit(host);
            }
        }
        match answer {
            Ok((addrs, _)) => Ok(Arc::clone(addrs)),
            Err(e) => {
                if let Some(mut cache) = self.cache()
                    && cache.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight))
                {
                    cache.remove(&key);
                }
                Err(dns_error(io::Error::new(e.kind(), e.to_string())))
            }
        }
    }

    /// The flight for `key`: the cached or in-flight one, or a new one.
    fn flight(&self, key: &(String, u16)) -> Arc<Flight> {
        let mut cache = self.cache().expect("only called with a cache");
        match cache.get(key) {
            Some(f) if !self.expired(f) => Arc::clone(f),
            _ => {
                if cache.len() >= self.max_size {
                    // Expired answers go first; if that is not enough, any one entry does.
                    cache.retain(|_, f| !self.expired(f));
                    if cache.len() >= self.max_size {
                        let victim = cache.keys().next().cloned();
                        if let Some(k) = victim {
                            cache.remove(&k);
                        }
                    }
                }
                let f = Arc::new(Flight::default());
                cache.insert(key.clone(), Arc::clone(&f));
                f
            }
        }
    }

    fn expired(&self, flight: &Flight) -> bool {
        match (flight.cell.get(), self.ttl) {
            // Still in flight: join it.
            (None, _) => false,
            (Some(Err(_)), _) => true,
            (Some(Ok(_)), None) => false,
            (Some(Ok((_, at))), Some(ttl)) => at.elapsed() >= ttl,
        }
    }
}

impl Resolver {
    /// Asks the resolver, bypassing the cache.
    async fn lookup(
        &self,
        host: &str,
        port: u16,
        events: Option<&dyn ConnectEvents>,
    ) -> io::Result<(Arc<[SocketAddr]>, Instant)> {
        if let Some(ev) = events {
            ev.dns_resolvehost_start(host);
        }
        let addrs = self.ask(host, port).await?;
        if addrs.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
        }
        if let Some(ev) = events {
            ev.dns_resolvehost_end(host);
        }
        Ok((addrs, Instant::now()))
    }

    /// The user's resolver, else the custom nameservers if there are any, else the system
    /// resolver.
    async fn ask(&self, host: &str, port: u16) -> io::Result<Arc<[SocketAddr]>> {
        if let Some(custom) = &self.custom {
            return Ok(custom.0.resolve(host, port).await?.into());
        }
        #[cfg(feature = "dns")]
        if let Some(r) = &self.hickory {
            // A trailing dot makes the name fully qualified: no search-domain guessing.
            let fqdn = if host.ends_with('.') { host.to_owned() } else { format!("{host}.") };
            let found = r.lookup_ip(fqdn).await.map_err(io::Error::other)?;
            return Ok(found.iter().map(|ip| SocketAddr::new(ip, port)).collect());
        }
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// A hickory resolver that asks `nameservers` over UDP, falling back to TCP for truncated
/// answers, and returns both families for Happy Eyeballs to choose from.
#[cfg(feature = "dns")]
fn hickory(nameservers: &[SocketAddr]) -> TokioResolver {
    let mut config = ResolverConfig::new();
    for &addr in nameservers {
        config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
        config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
    }
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        .with_options(opts)
        .build()
}

fn dns_error(e: io::Error) -> Error {
    Error::new(Kind::Dns, e)
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, time::Duration};

    use super::Resolver;

    #[tokio::test]
    async fn ip_literals_skip_the_resolver() {
        let r = Resolver::new(true, Some(Duration::from_secs(10)), 1000, HashMap::new());
        let a = r.resolve("127.0.0.1", 80, None).await.unwrap();
        assert_eq!(a[0].to_string(), "127.0.0.1:80");
        let a = r.resolve("::1", 443, None).await.unwrap();
        assert_eq!(a[0].to_string(), "[::1]:443");
        assert_eq!(r.stats().misses + r.stats().hits, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn cache_hits_then_expires() {
        let r = Resolver::new(true, Some(Duration::from_secs(10)), 1000, HashMap::new());
        r.resolve("localhost", 80, None).await.unwrap();
        r.resolve("localhost", 80, None).await.unwrap();
        assert_eq!((r.stats().misses, r.stats().hits), (1, 1));
        tokio::time::advance(Duration::from_secs(11)).await;
        r.resolve("localhost", 80, None).await.unwrap();
        assert_eq!((r.stats().misses, r.stats().hits), (2, 1));
        r.clear(Some("LOCALHOST"));
        r.resolve("localhost", 80, None).await.unwrap();
        assert_eq!(r.stats().misses, 3);
    }

    #[tokio::test]
    async fn concurrent_lookups_share_one_flight() {
        let r = Resolver::new(true, None, 1000, HashMap::new());
        let (a, b, c) = tokio::join!(
            r.resolve("localhost", 80, None),
            r.resolve("localhost", 80, None),
            r.resolve("localhost", 80, None)
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert_eq!((r.stats().misses, r.stats().hits), (1, 2));
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let r = Resolver::new(true, None, 1, HashMap::new());
        r.resolve("localhost", 80, None).await.unwrap();
        r.resolve("localhost", 81, None).await.unwrap();
        assert_eq!(r.cache().unwrap().len(), 1);
        r.resolve("localhost", 80, None).await.unwrap();
        assert_eq!(r.stats().misses, 3, "the first answer was evicted");
    }

    #[tokio::test]
    async fn without_cache_every_lookup_resolves() {
        let r = Resolver::new(false, None, 1000, HashMap::new());
        r.resolve("localhost", 80, None).await.unwrap();
        r.resolve("localhost", 80, None).await.unwrap();
        assert_eq!((r.stats().misses, r.stats().hits), (2, 0));
    }

    #[tokio::test]
    async fn failures_are_dns_errors_and_not_cached() {
        let r = Resolver::new(true, None, 1000, HashMap::new());
        let e = r.resolve("no-such-host.invalid", 80, None).await.unwrap_err();
        assert!(e.is_dns() && e.is_connect());
        r.resolve("no-such-host.invalid", 80, None).await.unwrap_err();
        assert_eq!(r.stats().misses, 2);
    }
}
