//! Tandem's connector layer: name resolution, TCP, TLS, Unix sockets, proxies and the
//! connection pool that `tandem-client` draws from, as aiohttp's `TCPConnector`.
//!
//! The contract with the client: [`Connector::connect`] returns a [`Connection`] to an
//! [`Origin`], reused from the pool when an idle one is there. The client writes a request and
//! reads the response on it; when the response body has been read to its end and the response
//! allows it, the client calls [`Connection::release`] to give it back for reuse. Dropping a
//! connection instead closes it, which is always safe.
//!
//! The connector works on its own, under any protocol that runs over a byte stream. Here
//! it dials a loopback server twice; the second request gets the same connection back from
//! the pool:
//!
//! ```
//! use tandem_connect::{Connector, Origin, Scheme};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::TcpListener;
//!
//! const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A server that answers every request head on a connection with RESPONSE.
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let port = listener.local_addr()?.port();
//! tokio::spawn(async move {
//!     while let Ok((mut socket, _)) = listener.accept().await {
//!         let mut seen = Vec::new();
//!         let mut buf = [0; 512];
//!         while let Ok(n @ 1..) = socket.read(&mut buf).await {
//!             seen.extend_from_slice(&buf[..n]);
//!             while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
//!                 seen.drain(..end + 4);
//!                 socket.write_all(RESPONSE).await.unwrap();
//!             }
//!         }
//!     }
//! });
//!
//! let connector = Connector::builder().limit(10).build();
//! let origin = Origin::new(Scheme::Http, "127.0.0.1", port);
//! for round in 0..2 {
//!     let mut conn = connector.connect(&origin).await?;
//!     assert_eq!(conn.is_reused(), round == 1);
//!     conn.io().write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await?;
//!     let mut response = vec![0; RESPONSE.len()];
//!     conn.io().read_exact(&mut response).await?;
//!     assert_eq!(response, RESPONSE);
//!     // The whole response was read, so the connection can serve another request.
//!     conn.release();
//! }
//! assert_eq!(connector.stats_for(&origin).idle, 1);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `tls`   | on | https origins and proxies on rustls (ring, webpki roots): [`TlsConfig`]'s constructors, `TlsConfigBuilder`, `Fingerprint`. Without it `TlsConfig` is a type with no value, so the `tls(...)` setters keep their signatures, and connecting to an https origin fails with "TLS support not compiled in (enable the `tls` feature)". |
//! | `native-roots` | off | `TlsConfigBuilder::native_roots`: the operating system's trust store beside the webpki roots, through rustls-native-certs. |
//! | `dns`   | on | `ConnectorBuilder::nameservers`, through hickory. Without it names go to the system resolver (`getaddrinfo`) only; the cache and overrides work the same. |
//!
//! HTTP/2 connections are pooled too, shared rather than lent: [`Connector::checkout`] hands a
//! request either an HTTP/1.1 [`Connection`] of its own or an [`Http2Stream`], its share of
//! an HTTP/2 connection (on the [`h2`] crate), by the [`Http2`] mode and what ALPN settles.
//!
//! Modules by concern: `pool` (slots, idle connections, statistics; `pool/shared.rs` for
//! HTTP/2), `dns` (cache and single-flight), `tcp` (Happy Eyeballs), `tls` (rustls settings
//! and the handshake), `http2` (the `h2` handshake and connection task), `unix`, `proxy`
//! (`CONNECT` tunnels), `proxy_env` (`trust_env`), and `connector`, which strings them
//! together.

mod connection;
mod connector;
mod dns;
mod error;
mod http2;
mod options;
mod origin;
mod pool;
mod proxy;
mod proxy_env;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
mod tls;
mod unix;

pub use connection::{Checkout, Connection, ConnectionInfo, TlsInfo};
pub use connector::{
    Connector, ConnectorBuilder, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_LIMIT, DEFAULT_LIMIT_PER_HOST,
    Io,
};
pub use dns::{DEFAULT_DNS_CACHE_MAX_SIZE, DEFAULT_TTL_DNS_CACHE, DnsStats, Resolve};
pub use error::Error;
#[doc(no_inline)]
pub use h2;
pub use http2::{
    DEFAULT_HTTP2_CONNECTION_WINDOW, DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE,
    DEFAULT_HTTP2_STREAM_WINDOW, Http2, Http2Stream,
};
pub use options::{ConnectEvents, ConnectOptions};
pub use origin::{Origin, Scheme};
pub use pool::PoolStats;
pub use proxy::Proxy;
pub use proxy_env::{ProxyEnv, parse_proxy_url};
pub use tcp::{AddressFamily, DEFAULT_HAPPY_EYEBALLS_DELAY, LOOPBACK_RECV_BUFFER, SocketFactory};
pub use tls::TlsConfig;
#[cfg(feature = "tls")]
pub use tls::{Fingerprint, SpkiPin, TlsConfigBuilder};

/// README.md's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
