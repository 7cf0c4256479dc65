//! Tandem's connector layer: name resolution, TCP, TLS, Unix sockets, proxies and the
//! connection pool that `tandem-client` draws from, as aiohttp's `TCPConnector`.
//!
//! The contract with the client: [`Connector::connect`] returns a [`Connection`] to an
//! [`Origin`], reused from the pool when an idle one is there. The client writes a request and
//! reads the response on it; when the response body has been read to its end and the response
//! allows it, the client calls [`Connection::release`] to give it back for reuse. Dropping a
//! connection instead closes it, which is always safe.
//!
//! Modules by concern: `pool` (slots, idle connections, statistics), `dns` (cache and
//! single-flight), `tcp` (Happy Eyeballs), `tls` (rustls settings and the handshake), `unix`,
//! `proxy` (`CONNECT` tunnels), `proxy_env` (`trust_env`),
//! and `connector`, which strings them together.

mod connection;
mod connector;
mod dns;
mod error;
mod options;
mod origin;
mod pool;
mod proxy;
mod proxy_env;
mod tcp;
mod tls;
mod unix;

pub use connection::{Connection, ConnectionInfo};
pub use connector::{
    Connector, ConnectorBuilder, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_LIMIT, DEFAULT_LIMIT_PER_HOST,
    Io,
};
pub use dns::{DEFAULT_DNS_CACHE_MAX_SIZE, DEFAULT_TTL_DNS_CACHE, DnsStats};
pub use error::Error;
pub use options::{ConnectEvents, ConnectOptions};
pub use origin::{Origin, Scheme};
pub use pool::PoolStats;
pub use proxy::Proxy;
pub use proxy_env::{ProxyEnv, parse_proxy_url};
pub use tcp::{AddressFamily, DEFAULT_HAPPY_EYEBALLS_DELAY};
pub use tls::{Fingerprint, TlsConfig, TlsConfigBuilder, TlsInfo};
