//! Tandem's connector layer: name resolution, TCP, TLS, Unix sockets, proxies and the
//! connection pool that `tandem-client` draws from.
//!
//! This crate is a skeleton for now: its work is tracked by the client issue. It will hold
//! the `Connector` (aiohttp's `TCPConnector`, with `limit = 100` and `limit_per_host = 0`),
//! the DNS cache, rustls-based TLS and proxy tunnels. It depends on `tandem-proto` for the
//! wire format of proxy `CONNECT` requests.
