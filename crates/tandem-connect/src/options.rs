//! Per-checkout settings and callbacks: what a request can set for its own connection
//! (aiohttp's per-request `ssl=`, `proxy=`, `server_hostname=` and `ClientTimeout`), and the
//! connection and DNS signals of aiohttp's `TraceConfig`.

use std::{sync::Arc, time::Duration};

use crate::{Http2, Origin, Proxy, TlsConfig};

/// Callbacks for what a checkout does, as aiohttp's `TraceConfig` connection and DNS signals.
/// Every method does nothing by default; they are called inline, so keep them quick.
pub trait ConnectEvents: Send + Sync {
    /// The checkout found no free slot and waits in line.
    fn queued_start(&self, origin: &Origin) {
        let _ = origin;
    }
    /// The waiting checkout got its slot.
    fn queued_end(&self, origin: &Origin) {
        let _ = origin;
    }
    /// A new connection is being opened.
    fn create_start(&self, origin: &Origin) {
        let _ = origin;
    }
    /// A new connection was opened.
    fn create_end(&self, origin: &Origin) {
        let _ = origin;
    }
    /// The TLS handshake with the origin starts (after TCP and any proxy tunnel).
    fn tls_handshake_start(&self, origin: &Origin) {
        let _ = origin;
    }
    /// The TLS handshake with the origin is done.
    fn tls_handshake_end(&self, origin: &Origin) {
        let _ = origin;
    }
    /// An idle pooled connection is reused.
    fn reuseconn(&self, origin: &Origin) {
        let _ = origin;
    }
    /// The resolver is asked about `host`.
    fn dns_resolvehost_start(&self, host: &str) {
        let _ = host;
    }
    /// The resolver answered about `host`.
    fn dns_resolvehost_end(&self, host: &str) {
        let _ = host;
    }
    /// `host` was answered from the cache (or by a lookup already in flight).
    fn dns_cache_hit(&self, host: &str) {
        let _ = host;
    }
    /// `host` was not in the cache.
    fn dns_cache_miss(&self, host: &str) {
        let _ = host;
    }
}

/// Per-checkout settings for [`Connector::connect_with`](crate::Connector::connect_with);
/// each one given overrides the connector's.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    pub(crate) events: Option<Arc<dyn ConnectEvents>>,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) server_hostname: Option<String>,
    pub(crate) pool_timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) sock_connect_timeout: Option<Duration>,
    pub(crate) tls_handshake_timeout: Option<Duration>,
    pub(crate) http2: Option<Http2>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("events", &self.events.is_some())
            .field("tls", &self.tls)
            .field("proxy", &self.proxy)
            .field("server_hostname", &self.server_hostname)
            .field("pool_timeout", &self.pool_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("sock_connect_timeout", &self.sock_connect_timeout)
            .field("tls_handshake_timeout", &self.tls_handshake_timeout)
            .field("http2", &self.http2)
            .finish()
    }
}

impl ConnectOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Callbacks for this checkout's steps.
    #[must_use]
    pub fn events(mut self, events: Arc<dyn ConnectEvents>) -> Self {
        self.events = Some(events);
        self
    }

    /// TLS settings for https origins.
    #[must_use]
    pub fn tls(mut self, config: TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Goes through this proxy: a `CONNECT` tunnel for https origins; for http origins the
    /// connection is to the proxy, and the client writes absolute-form requests with
    /// [`Proxy::authorization_value`] on them (see
    /// [`Connection::proxy`](crate::Connection::proxy)).
    #[must_use]
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// The name sent as SNI and checked against the certificate, instead of the origin's
    /// host (aiohttp's `server_hostname=`). Connections are pooled by it too.
    #[must_use]
    pub fn server_hostname(mut self, name: impl Into<String>) -> Self {
        self.server_hostname = Some(name.into());
        self
    }

    /// A bound on waiting for a free slot.
    #[must_use]
    pub fn pool_timeout(mut self, timeout: Duration) -> Self {
        self.pool_timeout = Some(timeout);
        self
    }

    /// A bound on opening a new connection (DNS, TCP and TLS).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// A bound on each TCP connect attempt, and through a proxy on its answer to the
    /// `CONNECT` of an https origin too.
    #[must_use]
    pub fn sock_connect_timeout(mut self, timeout: Duration) -> Self {
        self.sock_connect_timeout = Some(timeout);
        self
    }

    /// A bound on each TLS handshake (with the origin or an https proxy).
    #[must_use]
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.tls_handshake_timeout = Some(timeout);
        self
    }

    /// Whether [`Connector::checkout`](crate::Connector::checkout) may hand out HTTP/2
    /// (the connector's [`http2`](crate::ConnectorBuilder::http2) setting otherwise).
    #[must_use]
    pub fn http2(mut self, mode: Http2) -> Self {
        self.http2 = Some(mode);
        self
    }
}
