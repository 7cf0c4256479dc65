//! Tandem's HTTP client: `ClientSession`, in the manner of aiohttp's.
//!
//! This crate is a skeleton for now: its work is tracked by the client issue. It will hold
//! `ClientSession`, requests and responses, cookies, redirects, timeouts and decompression,
//! over connections from `tandem-connect` framed by `tandem-proto`.
