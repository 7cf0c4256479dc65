//! The connector: aiohttp's `TCPConnector` (and `UnixConnector`), stringing the pool, DNS,
//! TCP and TLS together behind [`Connector::connect`].
//!
//! A checkout takes an idle connection for the same origin and TLS settings at once when a
//! slot is free, or a stream on a pooled HTTP/2 connection with room. Otherwise it takes a
//! slot from the pool (waiting, fairly, at most `pool_timeout`), then reuses an idle
//! connection, or opens one within `connect_timeout`: resolve, Happy Eyeballs, TLS (and ALPN),
//! then HTTP/2's preface if the connection is to speak it. The slot travels with the
//! [`Connection`] (or stays with the shared HTTP/2 connection while it carries requests) and
//! is freed however the connection ends. The connection itself is in `connection.rs`, the
//! per-checkout settings in `options.rs`, HTTP/2's handshake in `http2.rs`.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::Duration,
};

use futures_util::{FutureExt as _, future::Either};

use crate::{
    Http2, Origin, Scheme,
    connection::{Checkout, Connection, ConnectionInfo, Parts},
    dns::{
        DEFAULT_DNS_CACHE_MAX_SIZE, DEFAULT_TTL_DNS_CACHE, DnsStats, Resolve, Resolver,
        UserResolver,
    },
    error::{Error, Kind},
    http2::{self, Http2Settings},
    options::{ConnectEvents, ConnectOptions},
    pool::{Pool, PoolKey, PoolStats, Reused, SharedCheckout},
    proxy::{self, Proxy},
    tcp::{self, AddressFamily, DEFAULT_HAPPY_EYEBALLS_DELAY, SocketFactory, TcpOptions},
    tls::{self, TlsConfig},
    unix,
};

/// aiohttp's `limit`: at most 100 connections in all (0 means no limit).
pub const DEFAULT_LIMIT: usize = 100;
/// aiohttp's `limit_per_host`: no per-origin limit by default (0).
pub const DEFAULT_LIMIT_PER_HOST: usize = 0;
/// aiohttp's `keepalive_timeout` for idle pooled connections: 15 s.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(15);

/// A byte stream a connection runs over: TCP, TLS over TCP, or a Unix socket (the trait
/// `tandem-io` defines for every crate).
pub use tandem_io::Io;

/// Opens and pools connections: aiohttp's `TCPConnector`. Cheap to clone; clones share the
/// pool.
#[derive(Clone)]
pub struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Arc<Pool>,
    resolver: Resolver,
    tcp: TcpOptions,
    sock_connect_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    tls_handshake_timeout: Option<Duration>,
    pool_timeout: Option<Duration>,
    verify_ssl: bool,
    /// The user's TLS settings, or the default ones built on first use.
    tls: OnceLock<TlsConfig>,
    unix_socket: Option<PathBuf>,
    dialer: Option<Dialer>,
    http2: Http2Settings,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("unix_socket", &self.inner.unix_socket)
            .field("stats", &self.pool_stats())
            .finish_non_exhaustive()
    }
}

impl Default for Connector {
    fn default() -> Self {
        ConnectorBuilder::default().build()
    }
}

/// Settings for a [`Connector`], with aiohttp's defaults.
#[derive(Clone, Debug)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "a builder of aiohttp's yes-or-no settings, each its own"
)]
pub struct ConnectorBuilder {
    limit: usize,
    limit_per_host: usize,
    keepalive_timeout: Duration,
    force_close: bool,
    use_dns_cache: bool,
    ttl_dns_cache: Option<Duration>,
    dns_cache_max_size: usize,
    happy_eyeballs_delay: Option<Duration>,
    family: Option<AddressFamily>,
    local_address: Option<IpAddr>,
    tcp_nodelay: bool,
    tcp_keepalive: Option<Duration>,
    socket_factory: Option<SocketFactory>,
    loopback_recv_buffer: Option<usize>,
    sock_connect_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    tls_handshake_timeout: Option<Duration>,
    pool_timeout: Option<Duration>,
    verify_ssl: bool,
    tls: Option<TlsConfig>,
    unix_socket: Option<PathBuf>,
    dialer: Option<Dialer>,
    overrides: HashMap<String, Vec<SocketAddr>>,
    resolver: Option<UserResolver>,
    #[cfg(feature = "dns")]
    nameservers: Vec<SocketAddr>,
    http2: Http2Settings,
}

impl Default for ConnectorBuilder {
    fn default() -> Self {
        ConnectorBuilder {
            limit: DEFAULT_LIMIT,
            limit_per_host: DEFAULT_LIMIT_PER_HOST,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            force_close: false,
            use_dns_cache: true,
            ttl_dns_cache: Some(DEFAULT_TTL_DNS_CACHE),
            dns_cache_max_size: DEFAULT_DNS_CACHE_MAX_SIZE,
            happy_eyeballs_delay: Some(DEFAULT_HAPPY_EYEBALLS_DELAY),
            family: None,
            local_address: None,
            tcp_nodelay: true,
            tcp_keepalive: None,
            socket_factory: None,
            loopback_recv_buffer: None,
            sock_connect_timeout: None,
            connect_timeout: None,
            tls_handshake_timeout: None,
            pool_timeout: None,
            verify_ssl: true,
            tls: None,
            unix_socket: None,
            dialer: None,
            overrides: HashMap::new(),
            resolver: None,
            #[cfg(feature = "dns")]
            nameservers: Vec::new(),
            http2: Http2Settings::default(),
        }
    }
}

impl ConnectorBuilder {
    /// Closes every connection after one request instead of pooling it.
    #[must_use]
    pub fn force_close(mut self, yes: bool) -> Self {
        self.force_close = yes;
        self
    }

    /// At most this many connections in use at once (default 100; 0 means no limit). Further
    /// checkouts wait: each origin's in the order they came, and the origins with checkouts
    /// waiting take turns at the connections freed, so a busy origin cannot starve another.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// At most this many connections in use per origin (default 0: no limit). As aiohttp's
    /// connection key, an origin here also means its TLS settings and proxy.
    #[must_use]
    pub fn limit_per_host(mut self, limit: usize) -> Self {
        self.limit_per_host = limit;
        self
    }

    /// How long an idle connection is kept for reuse (default 15 s; zero keeps none).
    #[must_use]
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// Whether resolved addresses are cached and concurrent lookups shared (default true).
    #[must_use]
    pub fn use_dns_cache(mut self, yes: bool) -> Self {
        self.use_dns_cache = yes;
        self
    }

    /// How long resolved addresses are cached (default 10 s; `None` caches them forever).
    #[must_use]
    pub fn ttl_dns_cache(mut self, ttl: Option<Duration>) -> Self {
        self.ttl_dns_cache = ttl;
        self
    }

    /// At most this many `(host, port)` answers are cached (default 1000).
    #[must_use]
    pub fn dns_cache_max_size(mut self, size: usize) -> Self {
        self.dns_cache_max_size = size;
        self
    }

    /// Asks these DNS servers (UDP, then TCP) instead of the system resolver, as aiohttp's
    /// `AsyncResolver(nameservers=[...])`. The cache settings still apply. Needs the `dns`
    /// feature (hickory); without it the system resolver is the only one.
    #[cfg(feature = "dns")]
    #[must_use]
    pub fn nameservers(mut self, servers: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.nameservers = servers.into_iter().collect();
        self
    }

    /// Resolves names with `resolver` instead of the system resolver or
    /// `nameservers` (aiohttp's `resolver=`); the cache and
    /// [`resolve`](Self::resolve) overrides stay in front of it.
    #[must_use]
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Some(UserResolver(Arc::new(resolver)));
        self
    }

    /// Resolves `host` to `addrs` without asking DNS (an address with port 0 takes the
    /// origin's port), as curl's `--resolve`.
    #[must_use]
    pub fn resolve(mut self, host: &str, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.overrides.insert(host.to_ascii_lowercase(), addrs.into_iter().collect());
        self
    }

    /// How long one address is tried before the next starts alongside it (default 250 ms);
    /// `None` tries addresses one at a time.
    #[must_use]
    pub fn happy_eyeballs_delay(mut self, delay: Option<Duration>) -> Self {
        self.happy_eyeballs_delay = delay;
        self
    }

    /// Connects over IPv4 only or IPv6 only (aiohttp's `family=`; default both).
    #[must_use]
    pub fn family(mut self, family: Option<AddressFamily>) -> Self {
        self.family = family;
        self
    }

    /// Connects from this local address (aiohttp's `local_addr=`); only addresses of its
    /// family are tried.
    #[must_use]
    pub fn local_address(mut self, address: Option<IpAddr>) -> Self {
        self.local_address = address;
        self
    }

    /// Whether `TCP_NODELAY` is set on new connections (default true, as aiohttp): a small
    /// request goes out at once instead of waiting on Nagle's algorithm.
    #[must_use]
    pub fn tcp_nodelay(mut self, yes: bool) -> Self {
        self.tcp_nodelay = yes;
        self
    }

    /// Turns TCP keep-alive on for new connections, probing after `idle` without traffic
    /// (default `None`: off), so that a peer that vanished is noticed on a long-idle
    /// connection.
    #[must_use]
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self
    }

    /// A receive buffer (`SO_RCVBUF`) for connections to a loopback address, set when the
    /// kernel grants it whole; [`LOOPBACK_RECV_BUFFER`](crate::LOOPBACK_RECV_BUFFER) (4 MiB)
    /// is the size measured. A large body from a local server can then pile up between
    /// reads. Off by default (`None`, the kernel's own sizing): it made a 1 GiB download from
    /// nginx 1.3 to 1.5 times as fast where the kernel's tuning keeps a loopback buffer near
    /// 1 MiB (a quiet machine, or both ends at real-time priority), but with other work on
    /// the machine the tuning grows the buffer past this size, and `cargo xtask bench bulk`
    /// showed no gain. A
    /// [`SocketFactory`]'s sockets are left as made.
    #[must_use]
    pub fn loopback_recv_buffer(mut self, bytes: Option<usize>) -> Self {
        self.loopback_recv_buffer = bytes;
        self
    }

    /// Makes each TCP socket with `factory` (aiohttp's `socket_factory=`), to set options
    /// before it connects.
    #[must_use]
    pub fn socket_factory(mut self, factory: SocketFactory) -> Self {
        self.socket_factory = Some(factory);
        self
    }

    /// A bound on each TCP connect attempt (aiohttp's `sock_connect`; default none), and
    /// through a proxy on its answer to the `CONNECT` of an https origin too.
    #[must_use]
    pub fn sock_connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.sock_connect_timeout = timeout;
        self
    }

    /// A bound on opening a new connection: DNS, TCP and TLS (default none).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A bound on each TLS handshake, with the origin or with an https proxy, counted from
    /// the end of TCP (and of any proxy tunnel) to the end of the handshake (default none:
    /// only `connect_timeout` bounds it). A stalled handshake then fails as
    /// [`is_tls_handshake_timeout`](Error::is_tls_handshake_timeout).
    #[must_use]
    pub fn tls_handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.tls_handshake_timeout = timeout;
        self
    }

    /// A bound on waiting for a free slot under `limit`/`limit_per_host` (default none).
    #[must_use]
    pub fn pool_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_timeout = timeout;
        self
    }

    /// `false` accepts any server certificate (aiohttp's `ssl=False`). Ignored when
    /// [`tls`](Self::tls) is given, whose settings win.
    #[must_use]
    pub fn verify_ssl(mut self, verify: bool) -> Self {
        self.verify_ssl = verify;
        self
    }

    /// The TLS settings for https origins: custom CAs, a client certificate, a pin.
    #[must_use]
    pub fn tls(mut self, config: TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Dials this Unix socket for every origin (aiohttp's `UnixConnector`).
    #[must_use]
    pub fn unix_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.unix_socket = Some(path.into());
        self
    }

    /// Opens every connection with `dial` instead of a socket, given the origin (or proxy)
    /// it is for: an in-memory transport such as a `tokio::io::duplex` whose other end a
    /// server in the same process serves (`tandem_http::test::TestClient::in_memory`).
    /// Requests keep their origin for `Host`, cookies, TLS names and pooling.
    #[must_use]
    pub fn dialer<F, Fut>(mut self, dial: F) -> Self
    where
        F: Fn(&Origin) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::io::Result<Box<dyn Io>>> + Send + 'static,
    {
        self.dialer = Some(Dialer(Arc::new(move |origin| Box::pin(dial(origin)))));
        self
    }

    /// Whether [`Connector::checkout`] may hand out HTTP/2 connections (default
    /// [`Http2::Auto`]: over TLS when the server chooses `h2`).
    #[must_use]
    pub fn http2(mut self, mode: Http2) -> Self {
        self.http2.mode = mode;
        self
    }

    /// The receive windows of HTTP/2 connections: each response body's, and each
    /// connection's (defaults [`DEFAULT_HTTP2_STREAM_WINDOW`](crate::DEFAULT_HTTP2_STREAM_WINDOW),
    /// 2 MiB, and [`DEFAULT_HTTP2_CONNECTION_WINDOW`](crate::DEFAULT_HTTP2_CONNECTION_WINDOW),
    /// 5 MiB), each at least the protocol's 65,535 bytes and at most 2³¹ − 1.
    #[must_use]
    pub fn http2_windows(mut self, stream: u32, connection: u32) -> Self {
        self.http2.stream_window = stream.clamp(65_535, (1 << 31) - 1);
        self.http2.connection_window = connection.clamp(65_535, (1 << 31) - 1);
        self
    }

    /// The largest header list an HTTP/2 response may carry (default
    /// [`DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE`](crate::DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE),
    /// 64 KiB); a larger one fails its request.
    #[must_use]
    pub fn http2_max_header_list_size(mut self, bytes: u32) -> Self {
        self.http2.max_header_list_size = bytes;
        self
    }

    /// The connector.
    pub fn build(self) -> Connector {
        let tls = OnceLock::new();
        if let Some(config) = self.tls {
            let _ = tls.set(config);
        }
        let resolver = Resolver::new(
            self.use_dns_cache,
            self.ttl_dns_cache,
            self.dns_cache_max_size,
            self.overrides,
        )
        .with_custom(self.resolver);
        #[cfg(feature = "dns")]
        let resolver = resolver.with_nameservers(&self.nameservers);
        Connector {
            inner: Arc::new(Inner {
                pool: Arc::new(Pool::new(
                    self.limit,
                    self.limit_per_host,
                    self.keepalive_timeout,
                    self.force_close,
                )),
                resolver,
                tcp: TcpOptions {
                    happy_eyeballs_delay: self.happy_eyeballs_delay,
                    family: self.family,
                    local_address: self.local_address,
                    nodelay: self.tcp_nodelay,
                    keepalive: self.tcp_keepalive,
                    socket_factory: self.socket_factory,
                    loopback_recv_buffer: self.loopback_recv_buffer,
                },
                sock_connect_timeout: self.sock_connect_timeout,
                connect_timeout: self.connect_timeout,
                tls_handshake_timeout: self.tls_handshake_timeout,
                pool_timeout: self.pool_timeout,
                verify_ssl: self.verify_ssl,
                tls,
                unix_socket: self.unix_socket,
                dialer: self.dialer,
                http2: self.http2,
            }),
        }
    }
}

/// A connection [`ConnectorBuilder::dialer`]'s function is opening.
type Dialing = futures_util::future::BoxFuture<'static, std::io::Result<Box<dyn Io>>>;

/// What [`ConnectorBuilder::dialer`] was given.
#[derive(Clone)]
struct Dialer(Arc<dyn Fn(&Origin) -> Dialing + Send + Sync>);

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dialer")
    }
}

/// What a checkout that may speak HTTP/2 found among the shared connections.
enum Share {
    /// A stream on one of them.
    Stream(crate::Http2Stream),
    /// None can take it: the slot to open a connection with, and the stream limit of the
    /// key's HTTP/2 connections, when it has some.
    Open { lease: crate::pool::Lease, limit: Option<usize> },
}

/// A pooled connection handed out again (or a stream on one), traced and reported as
/// reused.
fn reused(origin: &Origin, events: Option<&dyn ConnectEvents>, reused: Reused) -> Checkout {
    tracing::trace!(%origin, "reusing a pooled connection");
    if let Some(ev) = events {
        ev.reuseconn(origin);
    }
    match reused {
        Reused::Http1(lease, parts) => Checkout::Http1(Connection { parts, lease, reused: true }),
        Reused::Http2(stream) => Checkout::Http2(stream),
    }
}

impl Connector {
    /// A connector with aiohttp's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings for a connector.
    pub fn builder() -> ConnectorBuilder {
        ConnectorBuilder::default()
    }

    /// A connection to `origin`: an idle pooled one if there is one, else a new one.
    pub async fn connect(&self, origin: &Origin) -> Result<Connection, Error> {
        self.connect_with(origin, &ConnectOptions::default()).await
    }

    /// As [`connect`](Self::connect), with TLS settings for this one connection (a
    /// per-request `ssl=`); connections are pooled apart from those of other settings.
    pub async fn connect_with_tls(
        &self,
        origin: &Origin,
        tls: &TlsConfig,
    ) -> Result<Connection, Error> {
        self.connect_with(origin, &ConnectOptions::new().tls(tls.clone())).await
    }

    /// As [`connect`](Self::connect), with per-request settings that override the
    /// connector's: TLS, proxy, TLS name, timeouts, and callbacks. The connection is a byte
    /// stream for HTTP/1.1 (ALPN offers `http/1.1` alone); [`checkout`](Self::checkout) may
    /// hand out HTTP/2.
    pub fn connect_with<'a>(
        &'a self,
        origin: &'a Origin,
        options: &'a ConnectOptions,
    ) -> impl Future<Output = Result<Connection, Error>> + Send + 'a {
        self.checkout_as(origin, options, Http2::Never).map(|checkout| match checkout? {
            Checkout::Http1(conn) => Ok(conn),
            Checkout::Http2(_) => Err(Error::new(Kind::Connect, "HTTP/2 where HTTP/1.1 was asked")),
        })
    }

    /// A connection for one HTTP request, by the [`Http2`] mode of `options` (else the
    /// connector's): an HTTP/1.1 [`Connection`] of the request's own, or an
    /// [`Http2Stream`](crate::Http2Stream) on a shared HTTP/2 connection. Plain `http`
    /// speaks HTTP/2 only by [`Http2::PriorKnowledge`], and never through an HTTP proxy
    /// (which takes absolute-form HTTP/1.1 requests).
    ///
    /// A stream on a pooled HTTP/2 connection, or an idle pooled connection with a free
    /// slot, is taken at once, with no future to run; only a checkout that must wait for a
    /// slot or open a connection builds one, on the heap. A pooled checkout is most of a
    /// busy client's, and the waiting and opening machinery (hundreds of bytes of state)
    /// would otherwise sit inside every caller's future.
    pub fn checkout<'a>(
        &'a self,
        origin: &'a Origin,
        options: &'a ConnectOptions,
    ) -> impl Future<Output = Result<Checkout, Error>> + Send + 'a {
        let mode = options.http2.unwrap_or(self.inner.http2.mode);
        let mode = match origin.scheme() {
            Scheme::Http if options.proxy.is_some() || mode == Http2::Auto => Http2::Never,
            _ => mode,
        };
        self.checkout_as(origin, options, mode)
    }

    fn checkout_as<'a>(
        &'a self,
        origin: &'a Origin,
        options: &'a ConnectOptions,
        mode: Http2,
    ) -> impl Future<Output = Result<Checkout, Error>> + Send + 'a {
        let tls = match (origin.scheme(), &options.tls) {
            (Scheme::Http, _) => None,
            (Scheme::Https, Some(tls)) => Some(tls.clone()),
            (Scheme::Https, None) => match self.default_tls() {
                Ok(tls) => Some(tls),
                Err(e) => return Either::Left(std::future::ready(Err(e))),
            },
        };
        let key = PoolKey::new(
            origin.clone(),
            tls.as_ref().map_or(0, TlsConfig::id),
            options.proxy.clone(),
            options.server_hostname.clone().filter(|_| tls.is_some()),
        );
        let events = options.events.as_deref();
        if let Some(found) = self.inner.pool.try_reuse(&key, mode) {
            return Either::Left(std::future::ready(Ok(reused(origin, events, found))));
        }
        Either::Right(Box::pin(self.wait_and_open(origin, options, tls, key, mode)))
    }

    /// A checkout that waits: for a slot, or for an HTTP/2 connection being opened. Then
    /// it shares an HTTP/2 connection, reuses an idle one, or opens one.
    async fn wait_and_open(
        &self,
        origin: &Origin,
        options: &ConnectOptions,
        tls: Option<TlsConfig>,
        key: PoolKey,
        mode: Http2,
    ) -> Result<Checkout, Error> {
        let pool = &self.inner.pool;
        let pool_timeout = options.pool_timeout.or(self.inner.pool_timeout);
        let events = options.events.as_deref();
        let (lease, limit) = if mode == Http2::Never {
            (pool.acquire(&key, pool_timeout, events).await?, None)
        } else {
            match self.share(&key, pool_timeout, events).await? {
                Share::Stream(stream) => return Ok(reused(origin, events, Reused::Http2(stream))),
                Share::Open { lease, limit } => (lease, limit),
            }
        };
        if mode != Http2::PriorKnowledge
            && let Some(parts) = pool.take_idle(lease.key())
        {
            return Ok(reused(origin, events, Reused::Http1(lease, parts)));
        }
        let opening =
            (mode == Http2::PriorKnowledge || limit.is_some()).then(|| pool.opening_shared(&key));
        let sock_connect = options.sock_connect_timeout.or(self.inner.sock_connect_timeout);
        if let Some(ev) = events {
            ev.create_start(origin);
        }
        // Boxed: opening (DNS, happy eyeballs, TLS, a proxy tunnel) is a state machine of
        // about 2 KiB, which would otherwise sit inside this checkout's future beside the
        // wait for a slot.
        let open = Box::pin(self.open(origin, tls.as_ref(), options, sock_connect, events, mode));
        let (io, info) = match options.connect_timeout.or(self.inner.connect_timeout) {
            Some(t) => tokio::time::timeout(t, open)
                .await
                .map_err(|_| Error::bare(Kind::ConnectTimeout))??,
            None => open.await?,
        };
        tracing::trace!(%origin, peer = ?info.peer_addr, "opened a connection");
        let h2 = match mode {
            Http2::PriorKnowledge => true,
            Http2::Auto => info.tls.as_ref().and_then(|t| t.alpn.as_deref()) == Some(b"h2"),
            Http2::Never => false,
        };
        let checkout = if h2 {
            let weak = Arc::downgrade(pool);
            let (id, send) = http2::handshake(io, &self.inner.http2, limit, weak, key).await?;
            Checkout::Http2(pool.add_shared(lease, id, send, info))
        } else {
            Checkout::Http1(Connection { parts: Parts::new(io, info), lease, reused: false })
        };
        // Only now may the checkouts waiting for it look again.
        drop(opening);
        if let Some(ev) = events {
            ev.create_end(origin);
        }
        Ok(checkout)
    }

    /// A stream on one of `key`'s HTTP/2 connections, waiting for one being opened or for a
    /// slot to make an idle one active; or, when none can take it, the slot to open another.
    async fn share(
        &self,
        key: &PoolKey,
        pool_timeout: Option<Duration>,
        events: Option<&dyn ConnectEvents>,
    ) -> Result<Share, Error> {
        let pool = &self.inner.pool;
        let mut lease = None;
        // The stream limit of the key's HTTP/2 connections, if it has any: a new one will
        // most likely speak HTTP/2 too (other checkouts wait for it), under the same limit.
        let mut limit = None;
        loop {
            match pool.shared_checkout(key, &mut lease) {
                SharedCheckout::Stream(stream) => return Ok(Share::Stream(stream)),
                SharedCheckout::Opening(opened) => {
                    opened.await;
                    continue;
                }
                SharedCheckout::Full(most) if lease.is_none() => {
                    limit = Some(most);
                    // Another connection if a slot is free now, else a place in the queue
                    // of a busy one.
                    lease = pool.try_lease(key);
                    if lease.is_none() {
                        if let Some(stream) = pool.queue_stream(key) {
                            return Ok(Share::Stream(stream));
                        }
                        continue;
                    }
                }
                SharedCheckout::Full(most) => limit = Some(most),
                SharedCheckout::NeedsSlot => {}
                SharedCheckout::Nothing => {}
            }
            if let Some(lease) = lease {
                return Ok(Share::Open { lease, limit });
            }
            // With a slot, an idle HTTP/2 connection can take the request, or a new one open.
            lease = Some(pool.acquire(key, pool_timeout, events).await?);
        }
    }

    /// Pool statistics per origin: idle, active and waiting.
    pub fn pool_stats(&self) -> Vec<(Origin, PoolStats)> {
        self.inner.pool.stats()
    }

    /// Pool statistics for one origin (all zero if it has none).
    pub fn stats_for(&self, origin: &Origin) -> PoolStats {
        self.pool_stats().into_iter().find(|(o, _)| o == origin).map(|(_, s)| s).unwrap_or_default()
    }

    /// DNS cache hits and misses so far.
    pub fn dns_stats(&self) -> DnsStats {
        self.inner.resolver.stats()
    }

    /// Forgets cached addresses of `host`, or of every host (aiohttp's `clear_dns_cache`).
    pub fn clear_dns_cache(&self, host: Option<&str>) {
        self.inner.resolver.clear(host);
    }

    /// Closes every idle pooled connection; connections in use are unaffected.
    pub fn close_idle(&self) {
        self.inner.pool.close_idle();
    }

    fn default_tls(&self) -> Result<TlsConfig, Error> {
        if let Some(config) = self.inner.tls.get() {
            return Ok(config.clone());
        }
        let built = tls::default_config(self.inner.verify_ssl)?;
        Ok(self.inner.tls.get_or_init(|| built).clone())
    }

    async fn open(
        &self,
        origin: &Origin,
        tls: Option<&TlsConfig>,
        options: &ConnectOptions,
        sock_connect: Option<Duration>,
        events: Option<&dyn ConnectEvents>,
        http2: Http2,
    ) -> Result<(Box<dyn Io>, ConnectionInfo), Error> {
        let mut info = ConnectionInfo::default();
        let proxy = options.proxy.as_ref();
        // Through a proxy, the TCP connection goes to the proxy.
        let dial = proxy.map_or(origin, Proxy::origin);
        let io: Box<dyn Io> = if let Some(dialer) = &self.inner.dialer {
            (dialer.0)(dial).await.map_err(|e| Error::new(Kind::Connect, e.to_string()))?
        } else if let Some(path) = &self.inner.unix_socket {
            unix::connect(path).await?
        } else {
            let addrs = self.inner.resolver.resolve(dial.host(), dial.port(), events).await?;
            let stream = tcp::connect(&addrs, &self.inner.tcp, sock_connect).await?;
            info.peer_addr = stream.peer_addr().ok();
            info.local_addr = stream.local_addr().ok();
            Box::new(stream)
        };
        let io = match proxy {
            Some(p) => self.through_proxy(io, (origin, p), tls, options, sock_connect).await?,
            None => io,
        };
        let Some(tls) = tls else { return Ok((io, info)) };
        let name = options.server_hostname.as_deref().unwrap_or(origin.host());
        if let Some(ev) = events {
            ev.tls_handshake_start(origin);
        }
        let (stream, tls_info) = self.handshake(tls, name, io, http2, options).await?;
        if let Some(ev) = events {
            ev.tls_handshake_end(origin);
        }
        info.tls = Some(tls_info);
        Ok((Box::new(stream), info))
    }
}

impl Connector {
    /// TLS to an https proxy, then, for an https origin, the `CONNECT` tunnel. The proxy's
    /// certificate is checked with the same settings as the origin's (as aiohttp does). The
    /// tunnel's exchange is bounded by `sock_connect`, as the TCP connect is: it is part of
    /// reaching the origin, and a proxy that never finished its answer would otherwise hold
    /// the connection until a `total` timeout, or forever without one.
    async fn through_proxy(
        &self,
        mut io: Box<dyn Io>,
        (origin, proxy): (&Origin, &Proxy),
        tls: Option<&TlsConfig>,
        options: &ConnectOptions,
        sock_connect: Option<Duration>,
    ) -> Result<Box<dyn Io>, Error> {
        if proxy.origin().scheme() == Scheme::Https {
            let config = match tls {
                Some(t) => t.clone(),
                None => self.default_tls()?,
            };
            // The proxy speaks HTTP/1.1: a `CONNECT`, or absolute-form requests.
            let host = proxy.origin().host();
            let (stream, _) = self.handshake(&config, host, io, Http2::Never, options).await?;
            io = Box::new(stream);
        }
        if origin.scheme() == Scheme::Https {
            let tunnel = proxy::connect_tunnel(io, origin, proxy);
            io = match sock_connect {
                Some(limit) => tokio::time::timeout(limit, tunnel).await.map_err(|_| {
                    Error::new(Kind::SockConnectTimeout, "the proxy did not answer CONNECT")
                })??,
                None => tunnel.await?,
            };
        }
        Ok(io)
    }

    /// The TLS handshake, under `tls_handshake_timeout` when one is set.
    async fn handshake(
        &self,
        config: &TlsConfig,
        name: &str,
        io: Box<dyn Io>,
        http2: Http2,
        options: &ConnectOptions,
    ) -> Result<(tls::TlsStream, crate::TlsInfo), Error> {
        let handshake = tls::handshake(config, name, io, http2);
        match options.tls_handshake_timeout.or(self.inner.tls_handshake_timeout) {
            Some(limit) => tokio::time::timeout(limit, handshake)
                .await
                .map_err(|_| Error::bare(Kind::TlsHandshakeTimeout))?,
            None => handshake.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Connector, ConnectorBuilder};
    use crate::LOOPBACK_RECV_BUFFER;

    /// The kernel's tuned receive buffer is the default; the fixed loopback one only when
    /// asked for (measured no faster at normal priority, and a cap where tuning grows it).
    #[test]
    fn the_loopback_receive_buffer_is_fixed_only_when_asked_for() {
        assert_eq!(Connector::default().inner.tcp.loopback_recv_buffer, None);
        let asked = ConnectorBuilder::default().loopback_recv_buffer(Some(LOOPBACK_RECV_BUFFER));
        assert_eq!(asked.build().inner.tcp.loopback_recv_buffer, Some(LOOPBACK_RECV_BUFFER));
    }
}
