//! Tandem's connector layer: name resolution, TCP, TLS, Unix sockets, proxies and the
//! connection pool that `tandem-client` draws from, as aiohttp's `TCPConnector`.
//!
//! The contract with the client: [`Connector::connect`] returns a [`Connection`] to an
//! [`Origin`], reused from the pool when an idle one is there. The client writes a request and
//! reads the response on it; when the response body has been read to its end and the response
//! allows it, the client calls [`Connection::release`] to give it back for reuse. Dropping a
//! connection instead closes it, which is always safe.

mod connector;
mod error;
mod origin;

pub use connector::{
    Connection, Connector, ConnectorBuilder, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_LIMIT,
    DEFAULT_LIMIT_PER_HOST, Io,
};
pub use error::Error;
pub use origin::{Origin, Scheme};
