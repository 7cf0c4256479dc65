//! Client middlewares (aiohttp 3.12's `ClientSession(middlewares=...)`): a chain of
//! `async fn(ClientRequest, ClientNext)` around each hop a request makes.
//!
//! The chain runs once per hop, as in aiohttp: a redirect goes through it again, with the
//! request the redirect loop built. A middleware can change the request, call
//! [`ClientNext::run`] zero, one or several times (with a [`try_clone`](ClientRequest::try_clone)
//! of the request), and change or replace the response. The session's default headers,
//! cookies and automatic fields (`Host`, `User-Agent`, `Accept-Encoding`, `Content-Type`
//! from the body) are added after the chain, when the request is written; the request's own
//! `Authorization` is in [`headers`](ClientRequest::headers).
//!
//! A session with no middleware (and a request that adds none) does not build the chain
//! at all: its hops go straight to the connection.

use std::{future::Future, pin::Pin, sync::Arc};

use bytes::Bytes;
use http::{HeaderMap, Method};
use url::Url;

use crate::{
    ClientResponse, ClientSession, ClientTimeout,
    error::Error,
    hop::{self, Hop},
    request::{Body, ConnSettings, StreamBody},
    timeout::Deadlines,
};

/// A boxed, sendable future: what [`Middleware::handle`] and [`ClientNext::run`] return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A client middleware. Any `async fn(ClientRequest, ClientNext) -> Result<ClientResponse,
/// Error>` (or closure returning such a future) is one; implement the trait for a
/// middleware with state, such as [`DigestAuth`](crate::DigestAuth) or
/// [`Retry`](crate::Retry).
///
/// ```
/// use tandem_client::{BoxFuture, ClientNext, ClientRequest, ClientResponse, Error, Middleware};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// Counts the hops that reached the server.
/// #[derive(Default)]
/// struct Count(AtomicU64);
///
/// impl Middleware for Count {
///     fn handle(
///         &self,
///         req: ClientRequest,
///         next: ClientNext,
///     ) -> BoxFuture<'_, Result<ClientResponse, Error>> {
///         Box::pin(async move {
///             let resp = next.run(req).await?;
///             self.0.fetch_add(1, Ordering::Relaxed);
///             Ok(resp)
///         })
///     }
/// }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Handles one hop: usually changes `req`, awaits `next.run(req)`, and returns its
    /// response, changed or not.
    fn handle(
        &self,
        req: ClientRequest,
        next: ClientNext,
    ) -> BoxFuture<'_, Result<ClientResponse, Error>>;
}

impl<F, Fut> Middleware for F
where
    F: Fn(ClientRequest, ClientNext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ClientResponse, Error>> + Send + 'static,
{
    fn handle(
        &self,
        req: ClientRequest,
        next: ClientNext,
    ) -> BoxFuture<'_, Result<ClientResponse, Error>> {
        Box::pin(self(req, next))
    }
}

/// The middlewares a hop runs through, outermost first.
pub(crate) type Chain = Arc<[Arc<dyn Middleware>]>;

/// A request's own middlewares (`RequestBuilder::middleware`), and whether the session's
/// run around them.
#[derive(Clone, Default)]
pub(crate) struct RequestMiddlewares {
    pub(crate) list: Vec<Arc<dyn Middleware>>,
    pub(crate) skip_session: bool,
}

impl std::fmt::Debug for RequestMiddlewares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} middlewares (session's: {})", self.list.len(), !self.skip_session)
    }
}

/// The chain a request runs through: the session's, then its own; `None` when empty.
pub(crate) fn chain_for(
    session: Option<&Chain>,
    request: Option<&RequestMiddlewares>,
) -> Option<Chain> {
    match request {
        None => session.cloned(),
        Some(own) => {
            let outer = session.filter(|_| !own.skip_session).map_or(&[][..], |c| &c[..]);
            let all: Vec<_> = outer.iter().chain(&own.list).cloned().collect();
            (!all.is_empty()).then(|| all.into())
        }
    }
}

/// One hop's request as a middleware sees it: the method, URL, the request's own fields
/// and its body.
pub struct ClientRequest {
    method: Method,
    url: Arc<Url>,
    headers: HeaderMap,
    body: Option<Body>,
    stream: Option<StreamBody>,
    /// The target as written, for `encoded`; dropped when a middleware changes the URL.
    raw_target: Option<String>,
    session: ClientSession,
    deadlines: Deadlines,
}

/// Without credential fields' values or the body.
impl std::fmt::Debug for ClientRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRequest")
            .field("method", &self.method)
            .field("url", &format_args!("{}", crate::redact::Redacted(&self.url)))
            .field("headers", &crate::redact::Fields(&self.headers))
            .field("streamed", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientRequest {
    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Changes the method.
    pub fn set_method(&mut self, method: Method) {
        self.method = method;
    }

    /// The URL (without credentials: URL userinfo has become `Authorization` by now).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Sends this hop to another URL. It must be `http` or `https` with a host, or the hop
    /// fails as an invalid URL.
    pub fn set_url(&mut self, url: Url) {
        self.url = Arc::new(url);
        self.raw_target = None;
    }

    /// The request's own fields (not the session's defaults, nor cookies from the jar).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request's own fields, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body, when it is whole; `None` for none or a streamed one.
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref().map(|b| &b.bytes)
    }

    /// Replaces the body (aiohttp's `update_body`), with the content type of its kind as for
    /// [`RequestBuilder::body`](crate::RequestBuilder::body).
    pub fn set_body(&mut self, body: impl Into<Body>) {
        self.body = Some(body.into());
        self.stream = None;
    }

    /// Whether the body is a stream, which can be sent only once.
    pub fn is_streamed(&self) -> bool {
        self.stream.is_some()
    }

    /// A copy to send again, or `None` when the body is a stream: a stream is read as it is
    /// sent, so it is never replayed.
    pub fn try_clone(&self) -> Option<ClientRequest> {
        if self.stream.is_some() {
            return None;
        }
        Some(ClientRequest {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            stream: None,
            raw_target: self.raw_target.clone(),
            session: self.session.clone(),
            deadlines: self.deadlines,
        })
    }

    /// The URL, shared.
    pub(crate) fn url_arc(&self) -> Arc<Url> {
        self.url.clone()
    }

    /// The request's deadlines.
    pub(crate) fn deadlines(&self) -> Deadlines {
        self.deadlines
    }

    /// The session sending the request.
    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    /// The timeouts the request runs under (aiohttp's `req.timeout`).
    pub fn timeout(&self) -> ClientTimeout {
        self.deadlines.timeout
    }

    /// The time left before the `total` timeout, if there is one: a middleware that waits
    /// (a retry's backoff) waits no longer than this.
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.deadlines.total.map(|at| at.saturating_duration_since(tokio::time::Instant::now()))
    }
}

/// The rest of the chain after a middleware: [`run`](Self::run) sends a request through
/// it, and last onto the connection. Cheap to clone, and may be run several times.
#[derive(Clone)]
pub struct ClientNext {
    chain: Chain,
    index: usize,
    conn: Arc<ConnSettings>,
}

impl std::fmt::Debug for ClientNext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientNext({} of {})", self.index, self.chain.len())
    }
}

impl ClientNext {
    /// Sends `req` through the rest of the chain.
    pub fn run(&self, req: ClientRequest) -> BoxFuture<'static, Result<ClientResponse, Error>> {
        match self.chain.get(self.index) {
            Some(middleware) => {
                let middleware = middleware.clone();
                let next = ClientNext { index: self.index + 1, ..self.clone() };
                Box::pin(async move { middleware.handle(req, next).await })
            }
            None => Box::pin(send(req, self.conn.clone())),
        }
    }
}

/// The end of the chain: the hop onto a connection.
async fn send(req: ClientRequest, conn: Arc<ConnSettings>) -> Result<ClientResponse, Error> {
    let ClientRequest { method, url, headers, body, stream, raw_target, session, deadlines } = req;
    let inner = &*session.inner;
    crate::session::check_hop_url(&url)?;
    let hop = Hop { method: &method, url: &url, raw_target };
    let span =
        tracing::debug_span!("attempt", method = %method, url = %crate::redact::Redacted(&url));
    tracing::Instrument::instrument(
        hop::send_once(inner, &hop, &headers, (body.as_ref(), stream), &conn, &deadlines),
        span,
    )
    .await
    .map_err(|e| e.with_url(&url))
}

/// What the redirect loop hands one hop: its request, settings and deadlines.
pub(crate) struct HopInput<'a> {
    pub(crate) method: &'a Method,
    pub(crate) url: &'a Arc<Url>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Option<&'a Body>,
    pub(crate) stream: Option<StreamBody>,
    pub(crate) raw_target: Option<String>,
    pub(crate) conn: &'a ConnSettings,
    pub(crate) deadlines: &'a Deadlines,
}

/// One hop through `chain`, under the request's `total` deadline (which so bounds what
/// middlewares wait for too).
pub(crate) fn run_chain(
    session: &ClientSession,
    chain: Chain,
    input: HopInput<'_>,
) -> BoxFuture<'static, Result<ClientResponse, Error>> {
    let req = ClientRequest {
        method: input.method.clone(),
        url: input.url.clone(),
        headers: input.headers.clone(),
        body: input.body.cloned(),
        stream: input.stream,
        raw_target: input.raw_target,
        session: session.clone(),
        deadlines: *input.deadlines,
    };
    let next = ClientNext { chain, index: 0, conn: Arc::new(input.conn.clone()) };
    Box::pin(input.deadlines.run(None, next.run(req)))
}
