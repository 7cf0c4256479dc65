//! tandem-ws's integration tests: real Tandem servers and clients on 127.0.0.1, raw bytes
//! where the wire is the point, and Python's websockets and aiohttp as independent peers.
//! They need both sides, the `client` and `server` features (the defaults).
#![cfg(all(feature = "client", feature = "server"))]

mod handshake;
mod hostile;
mod interop;
mod messages;
mod raw;
mod support;
mod tls;
