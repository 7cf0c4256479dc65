//! The seam to the rest of the ecosystem: a frozen [`App`] answers `http::Request`s as a
//! tower [`Service`](tower_service::Service), its response [`Body`] is an
//! [`http_body::Body`], and any tower service can be mounted under a path prefix.
//!
//! Tandem's own server does not come this way: it builds a [`Request`] straight from the
//! parsed head and the connection, and calls [`App::dispatch`]. This path converts at both
//! ends, so its cost falls only on requests that arrive through another server or a test.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, header};
use http_body::{Frame, SizeHint};
use tandem_proto::RequestParser;

use crate::{
    App, Application, BoxFuture, HttpError, Payload, Request, Response,
    compression::{self, AcceptEncoding},
    payload::BoxError,
    response::Body,
};

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = crate::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let body = self.get_mut();
        match body {
            Body::Empty => Poll::Ready(None),
            Body::Full(bytes) => {
                let bytes = std::mem::take(bytes);
                *body = Body::Empty;
                Poll::Ready((!bytes.is_empty()).then(|| Ok(Frame::data(bytes))))
            }
            Body::Stream(stream) => {
                stream.poll_next_unpin(cx).map(|c| c.map(|c| c.map(Frame::data)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_empty(),
            Body::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// Fields that describe one connection's framing: never copied between a Tandem response
/// and an `http::Response`, as each side frames its own message, and never sent on HTTP/2,
/// which forbids them (RFC 9113 8.2.2; `h2` refuses a head that carries one).
const HOP_BY_HOP: [header::HeaderName; 5] =
    [header::CONNECTION, header::TRANSFER_ENCODING, header::UPGRADE, header::TE, header::TRAILER];

/// The hop-by-hop fields named by no constant of `http`.
const HOP_BY_HOP_OTHERS: [&str; 2] = ["keep-alive", "proxy-connection"];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most responses have none: one look along their few names costs less than seven
    // hashed removals that find nothing.
    let any = headers
        .keys()
        .any(|name| HOP_BY_HOP.contains(name) || HOP_BY_HOP_OTHERS.contains(&name.as_str()));
    if !any {
        return;
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    for name in HOP_BY_HOP_OTHERS {
        headers.remove(name);
    }
}

impl App {
    /// Answers one `http::Request` without a server: the request's head is checked by the
    /// wire's rules (a malformed one is answered 400 and reaches no handler), then routed,
    /// the middlewares and handler run, and the response comes back as an
    /// `http::Response`, compressed if the handler asked and the request accepts it.
    ///
    /// This is what the tower [`Service`](tower_service::Service) implementation calls. A
    /// WebSocket upgrade cannot be handed over this way: it needs Tandem's own server.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tandem_web::Error> {
    /// use tandem_web::{Application, Request};
    ///
    /// let mut app = Application::new();
    /// app.add_get("/hello/{name}", |req: Request| async move {
    ///     format!("Hello, {}", req.match_info("name").unwrap_or_default())
    /// });
    /// let app = app.freeze()?;
    /// let req = http::Request::get("http://localhost/hello/tower").body(String::new()).unwrap();
    /// let resp = app.handle(req).await;
    /// assert_eq!(resp.status(), 200);
    /// # Ok(()) }
    /// ```
    pub async fn handle<B>(&self, req: http::Request<B>) -> http::Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        if let Some(layered) = &self.layered {
            let parser = HeadLimits::parser(parts.extensions.get::<HeadLimits>().copied());
            if let Some(refused) = refused_before_layers(&parser, &parts) {
                return refused;
            }
            return http_through_layers(layered, http::Request::from_parts(parts, body)).await;
        }
        let context = ConnectionContext::from_extensions(&mut parts.extensions);
        self.handle_unlayered(parts, Payload::from_body(body), context).await
    }

    /// [`handle`](Self::handle) for a connection's driver that knows the request's
    /// [`ConnectionContext`]: through the layers, if there are any, the context goes in the
    /// request's extensions as `handle` expects it; without them, straight to the app.
    #[cfg(feature = "http2")]
    pub(crate) async fn handle_from<B>(
        &self,
        mut parts: http::request::Parts,
        body: B,
        context: ConnectionContext,
    ) -> http::Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if let Some(layered) = &self.layered {
            if let Some(refused) = refused_before_layers(&context.parser, &parts) {
                return refused;
            }
            context.into_extensions(&mut parts.extensions);
            return http_through_layers(layered, http::Request::from_parts(parts, body)).await;
        }
        self.handle_unlayered(parts, Payload::from_body(body), context).await
    }

    async fn handle_unlayered(
        &self,
        parts: http::request::Parts,
        body: Payload,
        context: ConnectionContext,
    ) -> http::Response<Body> {
        let request = match Request::from_parts(parts, body, self, context) {
            Ok(request) => request,
            Err(refused) => return into_http(refused.into_response()),
        };
        let accept = request.head().fields().get("accept-encoding").map(AcceptEncoding::parse);
        let head_only = request.method() == http::Method::HEAD;
        let mut response = self.dispatch(request).await;
        if response.inner.compress {
            compression::apply(&mut response, accept, head_only).await;
        }
        into_http(response)
    }
}

impl Request {
    /// A request for `app` from an `http::Request`, for [`App::dispatch`]: its head is
    /// checked by the wire's rules (a 400 or 431 otherwise, as a connection would answer),
    /// its extensions are kept, a `SocketAddr` among them is its remote address, and an
    /// `Arc<TlsInfo>` its [`tls`](Request::tls).
    pub fn from_http<B>(req: http::Request<B>, app: &App) -> Result<Request, HttpError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        let context = ConnectionContext::from_extensions(&mut parts.extensions);
        Request::from_parts(parts, Payload::from_body(body), app, context)
    }

    fn from_parts(
        parts: http::request::Parts,
        body: Payload,
        app: &App,
        context: ConnectionContext,
    ) -> Result<Request, HttpError> {
        let head = context.parser.parse_parts(&parts)?;
        let mut request = Request::new(head, app.clone(), context.remote, body);
        if let Some(tls) = context.tls {
            request.set_tls(tls);
        }
        *request.extensions_mut() = parts.extensions;
        if let Some(HostFallback(local)) = request.extensions_mut().remove() {
            request.set_host_fallback(local);
        }
        Ok(request)
    }
}

/// What the connection knows of a request: where it came from, its TLS facts, and the head
/// limits of the server it reached (as the parser that checks by them). Tandem's HTTP/2 driver hands it to
/// [`App::handle_from`]; a request from elsewhere may carry the parts of it in its
/// extensions (a `SocketAddr`, an `Arc<TlsInfo>`), and gets the default limits.
pub(crate) struct ConnectionContext {
    pub(crate) remote: Option<std::net::SocketAddr>,
    pub(crate) tls: Option<std::sync::Arc<crate::TlsInfo>>,
    pub(crate) parser: RequestParser,
}

/// The server's head limits, carried in a request's extensions through tower layers to
/// the app (taken out there, as they are no handler's business).
#[derive(Clone, Copy)]
struct HeadLimits(tandem_proto::Limits);

impl HeadLimits {
    /// The parser a request's head is checked with: by the server's limits, if it came
    /// with them, or the defaults.
    fn parser(limits: Option<HeadLimits>) -> RequestParser {
        limits.map_or_else(RequestParser::new, |limits| RequestParser::with_limits(limits.0))
    }
}

/// The local address an HTTP/1.0 request that names no host came to, carried through tower
/// layers to the app, which takes it as the request's host as the server did.
#[derive(Clone, Copy)]
struct HostFallback(std::net::SocketAddr);

/// Gives a request Tandem's HTTP/1.1 server parsed by `limits` to an app with layers: the
/// app under them checks the head again as it comes out of them, by the same limits rather
/// than the defaults (which refused a field the server allows), and a request that named no
/// host keeps the fallback the server gave it (`local`).
pub(crate) fn keep_head_limits(
    req: &mut Request,
    limits: tandem_proto::Limits,
    local: Option<std::net::SocketAddr>,
) {
    req.extensions_mut().insert(HeadLimits(limits));
    if let Some(local) = local {
        req.extensions_mut().insert(HostFallback(local));
    }
}

impl ConnectionContext {
    fn from_extensions(extensions: &mut http::Extensions) -> ConnectionContext {
        let parser = HeadLimits::parser(extensions.remove::<HeadLimits>());
        ConnectionContext {
            remote: extensions.get::<std::net::SocketAddr>().copied(),
            tls: extensions.get::<std::sync::Arc<crate::TlsInfo>>().cloned(),
            parser,
        }
    }

    #[cfg(feature = "http2")]
    fn into_extensions(self, extensions: &mut http::Extensions) {
        if let Some(remote) = self.remote {
            extensions.insert(remote);
        }
        if let Some(tls) = self.tls {
            extensions.insert(tls);
        }
        extensions.insert(HeadLimits(*self.parser.limits()));
    }
}

/// The answer to a head the app would refuse, checked before the first layer as HTTP/1.1's
/// parser checks a head before the layers see it: no layer acts on a request the app
/// refuses (logs it, counts it against a quota, answers a CORS preflight, routes by its
/// `Host`). The app under the layers checks it again, as it may be changed on the way.
fn refused_before_layers(
    parser: &RequestParser,
    parts: &http::request::Parts,
) -> Option<http::Response<Body>> {
    let refused = parser.parse_parts(parts).err()?;
    Some(into_http(HttpError::from(refused).into_response()))
}

/// A Tandem response as an `http::Response`.
fn into_http(mut response: Response) -> http::Response<Body> {
    let mut headers = std::mem::take(response.headers_mut());
    strip_hop_by_hop(&mut headers);
    let body = std::mem::replace(&mut response.inner.body, Body::Empty);
    let mut out = http::Response::new(body);
    *out.status_mut() = response.status();
    *out.headers_mut() = headers;
    // What the handler attached goes on: the client the access log shows among it.
    *out.extensions_mut() = std::mem::take(response.extensions_mut());
    out
}

/// A frozen app is a tower service: any tower-compatible server (hyper-util's, for one) can
/// host it, and tower's test helpers can call it.
impl<B> tower_service::Service<http::Request<B>> for App
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let app = self.clone();
        Box::pin(async move { Ok(app.handle(req).await) })
    }
}

/// The request body a mounted service receives: the Tandem request's [`Payload`], frame by
/// frame.
pub type ServiceBody = http_body_util::combinators::UnsyncBoxBody<Bytes, crate::Error>;

impl Application {
    /// Mounts any tower `Service` under `prefix`: every method, `prefix` itself and every
    /// path below it. The service sees the path without the prefix (`/api/users` under
    /// `/api` arrives as `/users`), the query, the headers and the body as a stream, so a
    /// team can move from axum to Tandem one route at a time, or mount any tower app.
    ///
    /// An error from the service is a 500; a response's hop-by-hop fields are dropped, and
    /// Tandem frames its body.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use tandem_web::{Application, ServiceBody};
    ///
    /// let service = tower::service_fn(|req: http::Request<ServiceBody>| async move {
    ///     Ok::<_, Infallible>(http::Response::new(format!("tower saw {}", req.uri().path())))
    /// });
    /// let mut app = Application::new();
    /// app.add_service("/legacy", service);
    /// ```
    pub fn add_service<S, ResB>(&mut self, prefix: &str, service: S) -> &mut Self
    where
        S: tower_service::Service<http::Request<ServiceBody>, Response = http::Response<ResB>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        ResB: http_body::Body<Data = Bytes> + Send + 'static,
        ResB::Error: Into<BoxError>,
    {
        let prefix = prefix.trim_end_matches('/').to_owned();
        let handler = {
            let prefix = prefix.clone();
            move |req: Request| call_mounted(service.clone(), prefix.len(), req)
        };
        self.add_route(None, &format!("{prefix}/{{tail:.*}}"), handler.clone());
        if !prefix.is_empty() {
            self.add_route(None, &prefix, handler);
        }
        self
    }
}

async fn call_mounted<S, ResB>(mut service: S, prefix_len: usize, mut req: Request) -> Response
where
    S: tower_service::Service<http::Request<ServiceBody>, Response = http::Response<ResB>>,
    S::Error: Into<BoxError>,
    ResB: http_body::Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    // The route is the mount's prefix under the prefixes of the sub-applications around it,
    // matched on the raw path: the service's path starts after both.
    let mounted_at = req.app().path_prefix().len() + prefix_len;
    let path = req.raw_path().get(mounted_at..).unwrap_or_default();
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    let Some(request) = into_http_request(&mut req, path) else {
        return HttpError::bad_request().into_response();
    };
    let answered = async {
        std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
        service.call(request).await
    };
    match answered.await {
        Ok(response) => from_http(response),
        Err(err) => {
            let err: BoxError = err.into();
            tracing::error!(target: "tandem::server", error = %err, "mounted service failed");
            HttpError::internal_server_error().into_response()
        }
    }
}

/// `req` as an `http::Request` for a tower service, at `path` (with its query), its body
/// taken as a stream, and its extensions and remote address carried along.
fn into_http_request(req: &mut Request, path: String) -> Option<http::Request<ServiceBody>> {
    let target = match req.query_string() {
        "" => path,
        query => format!("{path}?{query}"),
    };
    let mut builder =
        http::Request::builder().method(req.method().clone()).uri(target).version(req.version());
    if let Some(headers) = builder.headers_mut() {
        *headers = req.headers().clone();
        strip_hop_by_hop(headers);
    }
    if let Some(extensions) = builder.extensions_mut() {
        *extensions = std::mem::take(req.extensions_mut());
        // What the app under the layers reads the connection's facts from (as
        // `handle_from` puts them for HTTP/2): without the TLS session, an HTTPS request
        // would reach the handlers as plain `http`.
        if let Some(remote) = req.remote() {
            extensions.insert(remote);
        }
        if let Some(tls) = req.shared_tls() {
            extensions.insert(std::sync::Arc::clone(tls));
        }
    }
    let frames = req.take_content().into_stream().map(|chunk| chunk.map(Frame::data));
    builder
        .body(http_body_util::BodyExt::boxed_unsync(http_body_util::StreamBody::new(frames)))
        .ok()
}

/// The data frames of `body`, as a response body stream; trailers are dropped.
fn data_frames<B>(body: B) -> impl futures_util::Stream<Item = Result<Bytes, crate::Error>> + Send
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let body = http_body_util::BodyExt::map_err(body, crate::Error::new);
    http_body_util::BodyStream::new(body).filter_map(|frame| {
        std::future::ready(match frame {
            Ok(frame) => frame.into_data().ok().map(Ok),
            Err(err) => Some(Err(err)),
        })
    })
}

/// An `http::Response` from a tower service as a Tandem response, its body streamed.
fn from_http<ResB>(response: http::Response<ResB>) -> Response
where
    ResB: http_body::Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let mut out = Response::stream(data_frames(body)).with_status(parts.status);
    *out.headers_mut() = parts.headers;
    out
}

/// The app inside its layers, as the server calls it.
pub(crate) type LayeredService = tower::util::BoxCloneSyncService<
    http::Request<ServiceBody>,
    http::Response<ServiceBody>,
    Infallible,
>;

/// One layer, applied at `freeze` to what is inside it.
pub(crate) type LayerFn = Box<dyn FnOnce(LayeredService) -> LayeredService + Send + Sync>;

/// `app` inside `layers`, the first added outermost.
pub(crate) fn wrap(app: App, layers: Vec<LayerFn>) -> LayeredService {
    let inner = tower::service_fn(move |req: http::Request<ServiceBody>| {
        let app = app.clone();
        async move {
            let response = app.handle(req).await;
            Ok::<_, Infallible>(response.map(box_body))
        }
    });
    layers.into_iter().rev().fold(LayeredService::new(inner), |inner, layer| layer(inner))
}

fn box_body<B>(body: B) -> ServiceBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_err(body, crate::Error::new))
}

/// An `http::Request` through the app's layers, whose innermost service is the app's own
/// [`App::handle`].
async fn http_through_layers<B>(
    layered: &LayeredService,
    req: http::Request<B>,
) -> http::Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let req = req.map(|body| {
        http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_err(
            body,
            crate::Error::new,
        ))
    });
    let Ok(mut response) = tower::ServiceExt::oneshot(LayeredService::clone(layered), req).await;
    // A layer may have added fields of its own: stripped as `into_http` strips the app's, so
    // whatever frames the response (`h2` refuses a head that carries one) never sees them.
    strip_hop_by_hop(response.headers_mut());
    response.map(|body| Body::Stream(Box::pin(data_frames(body))))
}

/// A request Tandem's server parsed, through the app's layers.
pub(crate) async fn call_layered(layered: &LayeredService, mut req: Request) -> Response {
    let path = req.raw_path().to_owned();
    let Some(request) = into_http_request(&mut req, path) else {
        return HttpError::bad_request().into_response();
    };
    drop(req);
    let Ok(response) = tower::ServiceExt::oneshot(layered.clone(), request).await;
    from_http(response)
}

impl Application {
    /// Wraps the whole app in a tower [`Layer`](tower_layer::Layer): tower-http's CORS,
    /// timeouts, tracing, or any other. Tandem's server runs the layered app, and so does
    /// the app as a tower `Service`. Layers run outside the middlewares and the router,
    /// the first added outermost; an error from one is a 500. Only the root application
    /// takes layers.
    ///
    /// With no layer added, nothing of tower is on the request path. With one, each
    /// request is converted to an `http::Request` and back, and a WebSocket upgrade cannot
    /// pass through (it needs the connection, which tower does not carry).
    ///
    /// ```
    /// use tandem_web::{Application, Request};
    /// use tower_http::cors::CorsLayer;
    ///
    /// let mut app = Application::new();
    /// app.add_get("/", |_req: Request| async { "hi" });
    /// app.layer(CorsLayer::permissive());
    /// ```
    pub fn layer<L, ResB>(&mut self, layer: L) -> &mut Self
    where
        L: tower_layer::Layer<LayeredService> + Send + Sync + 'static,
        L::Service: tower_service::Service<http::Request<ServiceBody>, Response = http::Response<ResB>>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as tower_service::Service<http::Request<ServiceBody>>>::Future: Send + 'static,
        <L::Service as tower_service::Service<http::Request<ServiceBody>>>::Error: Into<BoxError>,
        ResB: http_body::Body<Data = Bytes> + Send + 'static,
        ResB::Error: Into<BoxError>,
    {
        self.layers.push(Box::new(move |inner| {
            let service = layer.layer(inner);
            LayeredService::new(tower::service_fn(move |req| {
                let service = service.clone();
                async move {
                    let response = match tower::ServiceExt::oneshot(service, req).await {
                        Ok(response) => response.map(box_body),
                        Err(err) => {
                            let err: BoxError = err.into();
                            tracing::error!(target: "tandem::server", error = %err, "tower layer failed");
                            into_http(HttpError::internal_server_error().into_response())
                                .map(box_body)
                        }
                    };
                    Ok::<_, Infallible>(response)
                }
            }))
        }));
        self
    }
}
