//! Tracing hooks: aiohttp's `TraceConfig` signals, as a trait.
//!
//! aiohttp's signals are coroutines; these are plain calls made inline, so a hook should
//! record and return (push to a channel, bump a counter) rather than do IO.

use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};
use tandem_connect::{ConnectEvents, Origin};
use url::Url;

use crate::Error;

/// Receives a session's request events. Every method has an empty default, so an
/// implementation overrides only what it needs. Install with
/// [`ClientSessionBuilder::trace`](crate::ClientSessionBuilder::trace).
#[allow(unused_variables)]
pub trait Trace: Send + Sync + 'static {
    /// A request starts (`on_request_start`): before connecting, once per `send`.
    fn on_request_start(&self, method: &Method, url: &Url, headers: &HeaderMap) {}

    /// No connection slot was free (`limit`, `limit_per_host`): the request waits in line
    /// (`on_connection_queued_start`).
    fn on_connection_queued_start(&self, origin: &Origin) {}

    /// The waiting request got its slot (`on_connection_queued_end`).
    fn on_connection_queued_end(&self, origin: &Origin) {}

    /// A new connection is being opened: DNS, TCP, a proxy's tunnel, TLS
    /// (`on_connection_create_start`).
    fn on_connection_create_start(&self, origin: &Origin) {}

    /// The new connection is open (`on_connection_create_end`); `on_connection_create`
    /// follows when the request takes it.
    fn on_connection_create_end(&self, origin: &Origin) {}

    /// The resolver is asked about `host` (`on_dns_resolvehost_start`).
    fn on_dns_resolvehost_start(&self, host: &str) {}

    /// The resolver answered about `host` (`on_dns_resolvehost_end`).
    fn on_dns_resolvehost_end(&self, host: &str) {}

    /// `host` was answered from the DNS cache, or by a lookup already in flight
    /// (`on_dns_cache_hit`).
    fn on_dns_cache_hit(&self, host: &str) {}

    /// `host` was not in the DNS cache (`on_dns_cache_miss`).
    fn on_dns_cache_miss(&self, host: &str) {}

    /// A piece of the request body was written (`on_request_chunk_sent`): a whole body
    /// once, a streamed one chunk by chunk.
    fn on_request_chunk_sent(&self, method: &Method, url: &Url, chunk: &[u8]) {}

    /// A piece of the response body was read (`on_response_chunk_received`), as it came
    /// off the connection: before any content decoding, without chunked framing.
    fn on_response_chunk_received(&self, method: &Method, url: &Url, chunk: &[u8]) {}

    /// The request took a connection it opened (after `on_connection_create_end`).
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

/// The connector's events, handed to a session's traces: installed on every checkout of a
/// session that has traces, built once with the session.
pub(crate) struct TraceEvents(pub(crate) Vec<Arc<dyn Trace>>);

impl ConnectEvents for TraceEvents {
    fn queued_start(&self, origin: &Origin) {
        self.0.iter().for_each(|t| t.on_connection_queued_start(origin));
    }

    fn queued_end(&self, origin: &Origin) {
        self.0.iter().for_each(|t| t.on_connection_queued_end(origin));
    }

    fn create_start(&self, origin: &Origin) {
        self.0.iter().for_each(|t| t.on_connection_create_start(origin));
    }

    fn create_end(&self, origin: &Origin) {
        self.0.iter().for_each(|t| t.on_connection_create_end(origin));
    }

    fn dns_resolvehost_start(&self, host: &str) {
        self.0.iter().for_each(|t| t.on_dns_resolvehost_start(host));
    }

    fn dns_resolvehost_end(&self, host: &str) {
        self.0.iter().for_each(|t| t.on_dns_resolvehost_end(host));
    }

    fn dns_cache_hit(&self, host: &str) {
        self.0.iter().for_each(|t| t.on_dns_cache_hit(host));
    }

    fn dns_cache_miss(&self, host: &str) {
        self.0.iter().for_each(|t| t.on_dns_cache_miss(host));
    }
}

/// What a traced response's body reader needs to report its chunks.
pub(crate) struct ChunkTrace {
    pub(crate) traces: Vec<Arc<dyn Trace>>,
    pub(crate) method: Method,
    pub(crate) url: Url,
}

impl ChunkTrace {
    pub(crate) fn received(&self, chunk: &[u8]) {
        for t in &self.traces {
            t.on_response_chunk_received(&self.method, &self.url, chunk);
        }
    }
}
