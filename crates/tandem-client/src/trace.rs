//! Tracing hooks: aiohttp's `TraceConfig` signals, as a trait.
//!
//! aiohttp's signals are coroutines; these are plain calls made inline, so a hook should
//! record and return (push to a channel, bump a counter) rather than do IO.

use http::{HeaderMap, Method, StatusCode};
use tandem_connect::Origin;
use url::Url;

use crate::Error;

/// Receives a session's request events. Every method has an empty default, so an
/// implementation overrides only what it needs. Install with
/// [`ClientSessionBuilder::trace`](crate::ClientSessionBuilder::trace).
#[allow(unused_variables)]
pub trait Trace: Send + Sync + 'static {
    /// A request starts (`on_request_start`): before connecting, once per `send`.
    fn on_request_start(&self, method: &Method, url: &Url, headers: &HeaderMap) {}

    /// A connection is needed (`on_connection_queued_start` ... `_end` in aiohttp collapse
    /// into this and the next two).
    fn on_connection_create(&self, origin: &Origin) {}

    /// A pooled connection was taken (`on_connection_reuseconn`).
    fn on_connection_reuse(&self, origin: &Origin) {}

    /// A request head was written with these fields (`on_request_headers_sent`).
    fn on_request_headers_sent(&self, method: &Method, url: &Url, headers: &HeaderMap) {}

    /// A redirect is followed (`on_request_redirect`), from `url` to `location`.
    fn on_request_redirect(&self, method: &Method, url: &Url, status: StatusCode, location: &Url) {}

    /// The final response head arrived (`on_request_end`).
    fn on_request_end(&self, method: &Method, url: &Url, status: StatusCode) {}

    /// The request failed (`on_request_exception`).
    fn on_request_exception(&self, method: &Method, url: &Url, error: &Error) {}
}
