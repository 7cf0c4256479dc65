//! Integration tests of `tandem-client`, in one binary so they link once.
//!
//! Every test talks to a real server on 127.0.0.1: a Tandem server for ordinary behaviour,
//! raw TCP listeners that write hostile bytes (checklist C of `docs/security.md`), httpbin
//! under gunicorn as a real third-party server, and Python's aiohttp server for interop.
//! Timeouts bound every wait; nothing sleeps to synchronise.

mod body_errors;
mod content;
mod cookies;
mod credentials;
mod digest;
mod faults;
mod file_bodies;
mod har;
mod hostile;
mod hostile_reuse;
mod http2;
mod http2_peers;
mod httpbin;
mod interop;
mod logs;
mod middleware;
mod multipart;
mod netrc;
mod read_limits;
mod redirects;
mod requests;
mod responses;
mod retry;
mod serde_data;
mod session;
mod streams;
mod support;
mod timeouts;
mod timings;
#[cfg(feature = "tls")]
mod tls;
mod trace_signals;
mod uploads;
