//! Tracing hooks: aiohttp's `TraceConfig` signals, as a trait.
//!
//! aiohttp's signals are coroutines; these are plain calls made inline, so a hook should
//! record and return (push to a channel, bump a counter) rather than do IO.

use std::{any::Any, sync::Arc};

use http::{HeaderMap, Method, StatusCode};
use tandem_connect::{ConnectEvents, Origin};
use url::Url;

use crate::Error;

/// Receives a session's request events. Every method has an empty default, so an
/// implementation overrides only what it needs. Install with
/// [`ClientSessionBuilder::trace`](crate::ClientSessionBuilder::trace).
///
/// Each hook gets the request's [`TraceRequestCtx`]: the value the request was sent with
/// (aiohttp's `trace_request_ctx`), so events of concurrent requests can be told apart.
#[allow(unused_variables)]
pub trait Trace: Send + Sync + 'static {
    /// A request starts (`on_request_start`): before connecting, once per `send`.
    fn on_request_start(
        &self,
        ctx: &TraceRequestCtx,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
    ) {
    }

    /// No connection slot was free (`limit`, `limit_per_host`): the request waits in line
    /// (`on_connection_queued_start`).
    fn on_connection_queued_start(&self, ctx: &TraceRequestCtx, origin: &Origin) {}

    /// The waiting request got its slot (`on_connection_queued_end`).
    fn on_connection_queued_end(&self, ctx: &TraceRequestCtx, origin: &Origin) {}

    /// A new connection is being opened: DNS, TCP, a proxy's tunnel, TLS
    /// (`on_connection_create_start`).
    fn on_connection_create_start(&self, ctx: &TraceRequestCtx, origin: &Origin) {}

    /// The new connection is open (`on_connection_create_end`); `on_connection_create`
    /// follows when the request takes it.
    fn on_connection_create_end(&self, ctx: &TraceRequestCtx, origin: &Origin) {}

    /// The resolver is asked about `host` (`on_dns_resolvehost_start`).
    fn on_dns_resolvehost_start(&self, ctx: &TraceRequestCtx, host: &str) {}

    /// The resolver answered about `host` (`on_dns_resolvehost_end`).
    fn on_dns_resolvehost_end(&self, ctx: &TraceRequestCtx, host: &str) {}

    /// `host` was answered from the DNS cache, or by a lookup already in flight
    /// (`on_dns_cache_hit`).
    fn on_dns_cache_hit(&self, ctx: &TraceRequestCtx, host: &str) {}

    /// `host` was not in the DNS cache (`on_dns_cache_miss`).
    fn on_dns_cache_miss(&self, ctx: &TraceRequestCtx, host: &str) {}

    /// A piece of the request body was written (`on_request_chunk_sent`): a whole body
    /// once, a streamed one chunk by chunk.
    fn on_request_chunk_sent(
        &self,
        ctx: &TraceRequestCtx,
        method: &Method,
        url: &Url,
        chunk: &[u8],
    ) {
    }

    /// A piece of the response body was read (`on_response_chunk_received`), as it came
    /// off the connection: before any content decoding, without chunked framing.
    fn on_response_chunk_received(
        &self,
        ctx: &TraceRequestCtx,
        method: &Method,
        url: &Url,
        chunk: &[u8],
    ) {
    }

    /// The request took a connection it opened (after `on_connection_create_end`).
    fn on_connection_create(&self, ctx: &TraceRequestCtx, origin: &Origin) {}

    /// A pooled connection was taken (`on_connection_reuseconn`).
    fn on_connection_reuse(&self, ctx: &TraceRequestCtx, origin: &Origin) {}

    /// A request head was written with these fields (`on_request_headers_sent`).
    fn on_request_headers_sent(
        &self,
        ctx: &TraceRequestCtx,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
    ) {
    }

    /// A redirect is followed (`on_request_redirect`), from `url` to `location`.
    fn on_request_redirect(
        &self,
        ctx: &TraceRequestCtx,
        method: &Method,
        url: &Url,
        status: StatusCode,
        location: &Url,
    ) {
    }

    /// The final response head arrived (`on_request_end`).
    fn on_request_end(
        &self,
        ctx: &TraceRequestCtx,
        method: &Method,
        url: &Url,
        status: StatusCode,
    ) {
    }

    /// The request failed (`on_request_exception`).
    fn on_request_exception(
        &self,
        ctx: &TraceRequestCtx,
        method: &Method,
        url: &Url,
        error: &Error,
    ) {
    }
}

/// What a request hands every trace hook: the value given to
/// [`RequestBuilder::trace_request_ctx`](crate::RequestBuilder::trace_request_ctx), as
/// aiohttp's `trace_request_ctx=`; empty for a request sent without one.
///
/// ```
/// use http::{HeaderMap, Method};
/// use tandem_client::{Trace, TraceRequestCtx, Url};
///
/// struct Names;
///
/// impl Trace for Names {
///     fn on_request_start(&self, ctx: &TraceRequestCtx, _: &Method, url: &Url, _: &HeaderMap) {
///         let name = ctx.get::<&str>().copied().unwrap_or("unnamed");
///         println!("{name}: {url}");
///     }
/// }
///
/// # async fn demo() -> Result<(), tandem_client::Error> {
/// let session = tandem_client::ClientSession::builder().trace(std::sync::Arc::new(Names)).build();
/// session.get("http://127.0.0.1:8080/").trace_request_ctx("front page").send().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct TraceRequestCtx(Option<Arc<dyn Any + Send + Sync>>);

impl TraceRequestCtx {
    pub(crate) fn new(value: impl Any + Send + Sync) -> Self {
        TraceRequestCtx(Some(Arc::new(value)))
    }

    /// The request's value, if it was given one of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_deref()?.downcast_ref()
    }

    /// Whether the request was sent with a value.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl std::fmt::Debug for TraceRequestCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_empty() { "TraceRequestCtx(None)" } else { "TraceRequestCtx(..)" })
    }
}

/// The connector's events, handed to a session's traces: installed on every checkout of a
/// session that has traces. The session builds one without a context; a request sent with
/// a context builds its own.
pub(crate) struct TraceEvents {
    pub(crate) traces: Vec<Arc<dyn Trace>>,
    pub(crate) ctx: TraceRequestCtx,
}

impl ConnectEvents for TraceEvents {
    fn queued_start(&self, origin: &Origin) {
        self.traces.iter().for_each(|t| t.on_connection_queued_start(&self.ctx, origin));
    }

    fn queued_end(&self, origin: &Origin) {
        self.traces.iter().for_each(|t| t.on_connection_queued_end(&self.ctx, origin));
    }

    fn create_start(&self, origin: &Origin) {
        self.traces.iter().for_each(|t| t.on_connection_create_start(&self.ctx, origin));
    }

    fn create_end(&self, origin: &Origin) {
        self.traces.iter().for_each(|t| t.on_connection_create_end(&self.ctx, origin));
    }

    fn dns_resolvehost_start(&self, host: &str) {
        self.traces.iter().for_each(|t| t.on_dns_resolvehost_start(&self.ctx, host));
    }

    fn dns_resolvehost_end(&self, host: &str) {
        self.traces.iter().for_each(|t| t.on_dns_resolvehost_end(&self.ctx, host));
    }

    fn dns_cache_hit(&self, host: &str) {
        self.traces.iter().for_each(|t| t.on_dns_cache_hit(&self.ctx, host));
    }

    fn dns_cache_miss(&self, host: &str) {
        self.traces.iter().for_each(|t| t.on_dns_cache_miss(&self.ctx, host));
    }
}

/// What a traced response's body reader needs to report its chunks.
pub(crate) struct ChunkTrace {
    pub(crate) traces: Vec<Arc<dyn Trace>>,
    pub(crate) ctx: TraceRequestCtx,
    pub(crate) method: Method,
    pub(crate) url: Url,
}

impl ChunkTrace {
    pub(crate) fn received(&self, chunk: &[u8]) {
        for t in &self.traces {
            t.on_response_chunk_received(&self.ctx, &self.method, &self.url, chunk);
        }
    }
}
