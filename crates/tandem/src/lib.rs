//! Tandem: aiohttp for Rust.
//!
//! One async framework for both sides of HTTP: a client session, a web server with routing
//! and middleware, and WebSockets on both. This crate is the facade users depend on; it
//! re-exports the layered crates below it.
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`proto`] | `tandem-proto` | the sans-IO HTTP/1.1 wire protocol |
//! | [`http`] | `http` | the shared vocabulary: `Method`, `StatusCode`, `HeaderMap`, `Uri` |
//! | [`bytes`] | `bytes` | `Bytes` and `BytesMut` |
//! | [`web`] | `tandem-server` | `Application`, routes, `Request`, `Response`, `run_app` |
//! | [`client`] | `tandem-client` | `ClientSession`, requests, responses, cookies, timeouts |
//!
//! The WebSocket module arrives with its issue.

#[doc(no_inline)]
pub use bytes;
#[doc(no_inline)]
pub use http;
#[doc(inline)]
pub use tandem_proto as proto;

/// The HTTP client: aiohttp's `ClientSession` and friends (`tandem-client`).
pub mod client {
    #[doc(inline)]
    pub use tandem_client::*;
}

#[doc(inline)]
pub use tandem_client::ClientSession;

/// The web server: aiohttp's `web` module (`tandem-server`).
pub mod web {
    #[doc(inline)]
    pub use tandem_server::*;
}

/// README.md's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
