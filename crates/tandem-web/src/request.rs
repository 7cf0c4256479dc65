//! The request a handler receives.

use std::{borrow::Cow, net::SocketAddr, sync::Arc, sync::OnceLock};

use bytes::{Bytes, BytesMut};
use http::{Extensions, HeaderMap, Method, Version};
use serde::de::DeserializeOwned;
use tandem_proto::{BodyFraming, RequestHead};

#[cfg(feature = "multipart")]
use crate::MultipartReader;
use crate::{Form, HttpError, TlsInfo, app::App, payload::Payload, router::MatchInfo};

/// An HTTP request: aiohttp's `web.Request`.
///
/// Headers, query and cookies are parsed on first use, so a handler pays only for what it
/// reads. The body is read on demand with [`read`](Self::read), [`text`](Self::text),
/// [`json`](Self::json) or [`post`](Self::post) (forms, multipart included), each limited to the application's
/// `client_max_size` (1 MiB by default, then 413), or streamed without a limit through
/// [`content`](Self::content) or, part by part, [`multipart`](Self::multipart).
#[derive(Debug)]
pub struct Request {
    // Boxed: a request is moved into its handler's future and through the middlewares,
    // and a pointer moves cheaper than the 400-odd bytes below.
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    head: RequestHead,
    headers: OnceLock<HeaderMap>,
    query: OnceLock<Vec<(String, String)>>,
    cookies: OnceLock<Vec<(String, String)>>,
    match_info: MatchInfo,
    app: App,
    remote: Option<SocketAddr>,
    payload: Payload,
    body: Option<Bytes>,
    extensions: Extensions,
    tls: Option<Arc<TlsInfo>>,
    /// The form `post()` read, for the next call.
    form: Option<Form>,
    /// Whether the body stream has been taken away.
    content_taken: bool,
    /// What [`Request::clone_with`] replaced; boxed, as most requests have none.
    overrides: Option<Box<Overrides>>,
}

/// The fields of a request that a middleware may replace: aiohttp's
/// `request.clone(scheme=..., host=..., remote=..., client_max_size=...)`, for
/// [`Request::clone_with`]. Fields left `None` keep the request's own.
///
/// ```
/// use tandem_web::{Next, Overrides, Request, Response};
///
/// // Behind a TLS terminator that the application trusts by construction.
/// async fn always_https(mut req: Request, next: Next) -> Response {
///     next.run(req.clone_with(Overrides::new().scheme("https"))).await
/// }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    scheme: Option<String>,
    host: Option<String>,
    remote: Option<SocketAddr>,
    client_max_size: Option<usize>,
    /// The transport's peer, kept when `remote` is replaced.
    peer: Option<SocketAddr>,
}

impl Overrides {
    /// Nothing replaced yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// What [`Request::scheme`] and [`Request::secure`] report.
    #[must_use]
    pub fn scheme(mut self, scheme: impl Into<String>) -> Self {
        self.scheme = Some(scheme.into());
        self
    }

    /// What [`Request::host`] reports.
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// What [`Request::remote`] reports ([`Request::peer_addr`] keeps the socket's).
    #[must_use]
    pub fn remote(mut self, remote: SocketAddr) -> Self {
        self.remote = Some(remote);
        self
    }

    /// The body limit of `read`, `text`, `json` and `post` for this request.
    #[must_use]
    pub fn client_max_size(mut self, bytes: usize) -> Self {
        self.client_max_size = Some(bytes);
        self
    }
}

impl Request {
    // Inline: each connection builds one per request, and inlined it takes the head and
    // payload where they are rather than through memory.
    #[inline]
    pub(crate) fn new(
        head: RequestHead,
        app: App,
        remote: Option<SocketAddr>,
        payload: Payload,
    ) -> Self {
        // The box first, then the request written into it: built first and then boxed, its
        // 480-odd bytes would be copied from the stack into the box on every request.
        let boxed = Box::new_uninit();
        let inner = Box::write(
            boxed,
            Inner {
                head,
                headers: OnceLock::new(),
                query: OnceLock::new(),
                cookies: OnceLock::new(),
                match_info: MatchInfo::default(),
                app,
                remote,
                payload,
                body: None,
                extensions: Extensions::new(),
                tls: None,
                form: None,
                content_taken: false,
                overrides: None,
            },
        );
        Request { inner }
    }

    /// This request without its body, for the `on_response_prepare` hooks, which run after
    /// the handler has consumed the request itself. The head is shared, not copied.
    pub(crate) fn without_body(&self) -> Request {
        let inner = &*self.inner;
        let copy = Inner {
            head: inner.head.clone(),
            headers: inner.headers.clone(),
            query: inner.query.clone(),
            cookies: inner.cookies.clone(),
            match_info: inner.match_info.clone(),
            app: inner.app.clone(),
            remote: inner.remote,
            payload: Payload::default(),
            body: None,
            extensions: inner.extensions.clone(),
            tls: inner.tls.clone(),
            form: None,
            content_taken: true,
            overrides: inner.overrides.clone(),
        };
        Request { inner: Box::new(copy) }
    }

    /// A copy of this request with `overrides` applied: aiohttp's `request.clone(...)`,
    /// for a middleware that knows better than the transport (a trusted proxy's word on the
    /// client's address, scheme or host, as [`TrustedProxies`](crate::TrustedProxies) does).
    ///
    /// The body moves to the copy, as one body cannot be read twice from the connection; a
    /// body already [`read`](Self::read) is in both. Extensions are copied.
    #[must_use]
    pub fn clone_with(&mut self, overrides: Overrides) -> Request {
        let mut copy = self.without_body();
        copy.inner.content_taken = self.inner.content_taken;
        copy.inner.payload = self.take_content();
        copy.inner.body.clone_from(&self.inner.body);
        copy.inner.form = self.inner.form.take();
        let mut merged = copy.inner.overrides.take().map(|o| *o).unwrap_or_default();
        if let Some(remote) = overrides.remote {
            merged.peer = merged.peer.or(copy.inner.remote);
            copy.inner.remote = Some(remote);
        }
        merged.scheme = overrides.scheme.or(merged.scheme);
        merged.host = overrides.host.or(merged.host);
        merged.client_max_size = overrides.client_max_size.or(merged.client_max_size);
        copy.inner.overrides = Some(Box::new(merged));
        copy
    }

    /// Gives a request that names no host the local address it came to as its host (see
    /// [`host`](Self::host)), in aiohttp's shape: the bare IP, an IPv6 one in brackets.
    pub(crate) fn set_host_fallback(&mut self, local: SocketAddr) {
        if self.host().is_some() {
            return;
        }
        let host = match local {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        self.inner.overrides.get_or_insert_with(Box::default).host = Some(host);
    }

    pub(crate) fn set_match(&mut self, match_info: MatchInfo, app: App) {
        self.inner.match_info = match_info;
        self.inner.app = app;
    }

    /// The method.
    pub fn method(&self) -> &Method {
        self.inner.head.method()
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.inner.head.version()
    }

    /// The path, percent-decoded (aiohttp's `request.path`).
    pub fn path(&self) -> Cow<'_, str> {
        percent_encoding::percent_decode_str(self.inner.head.path()).decode_utf8_lossy()
    }

    /// The path as sent, still percent-encoded (aiohttp's `request.raw_path`, without the
    /// query).
    pub fn raw_path(&self) -> &str {
        self.inner.head.path()
    }

    /// [`raw_path`](Self::raw_path) as bytes, without its UTF-8 check, for the router.
    pub(crate) fn raw_path_bytes(&self) -> &[u8] {
        self.inner.head.path_bytes()
    }

    /// The query string, without `?`.
    pub fn query_string(&self) -> &str {
        self.inner.head.query().unwrap_or_default()
    }

    /// The path and query as sent, still percent-encoded: `/app/blog?id=10` (aiohttp's
    /// `request.path_qs`).
    pub fn path_qs(&self) -> Cow<'_, str> {
        match self.inner.head.query() {
            None => Cow::Borrowed(self.raw_path()),
            // An origin-form target is exactly the path and query.
            Some(_) if self.inner.head.target().starts_with('/') => {
                Cow::Borrowed(self.inner.head.target())
            }
            Some(query) => Cow::Owned(format!("{}?{query}", self.raw_path())),
        }
    }

    /// The whole URL: [`scheme`](Self::scheme), [`host`](Self::host) and
    /// [`path_qs`](Self::path_qs) (aiohttp's `request.url`). A request without a host (HTTP/1.0
    /// with no `Host`, on a connection that is not plain TCP) is given `localhost`.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme(), self.host().unwrap_or("localhost"), self.path_qs())
    }

    /// The host the client asked for: the `Host` field (or HTTP/2's `:authority`), or the
    /// authority of an absolute-form target, port included (aiohttp's `request.host`). An
    /// HTTP/1.0 request that names none gets the local address it came to (`127.0.0.1`,
    /// `[::1]`, no port), as aiohttp 3.13 falls back to the socket's name; `None` where
    /// that is unknown (a TLS or Unix connection). It is the client's claim, not checked
    /// against anything: behind a proxy use [`TrustedProxies`](crate::TrustedProxies), which
    /// replaces it with the proxy's word.
    pub fn host(&self) -> Option<&str> {
        if let Some(host) = self.inner.overrides.as_ref().and_then(|o| o.host.as_deref()) {
            return Some(host);
        }
        self.header("host").or_else(|| {
            let target = self.inner.head.target();
            let after = &target[target.find("://")? + 3..];
            Some(&after[..after.find(['/', '?']).unwrap_or(after.len())])
        })
    }

    /// Every query parameter in order, repeated names included (aiohttp's `MultiDict`).
    pub fn query(&self) -> &[(String, String)] {
        self.inner.query.get_or_init(|| {
            form_urlencoded::parse(self.query_string().as_bytes()).into_owned().collect()
        })
    }

    /// The first value of query parameter `name`.
    pub fn query_get(&self, name: &str) -> Option<&str> {
        self.query().iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of query parameter `name`.
    pub fn query_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query().iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of the path variable `name` from the route's pattern, percent-decoded.
    pub fn match_info(&self, name: &str) -> Option<&str> {
        self.inner.match_info.get(name)
    }

    /// Every path variable, for [`match_info_as`](Self::match_info_as).
    pub(crate) fn match_info_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner.match_info.pairs()
    }

    /// The headers, case-insensitive and multi-valued.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers.get_or_init(|| self.inner.head.fields().to_header_map())
    }

    /// The first value of header `name` (any case) as text, if it is valid UTF-8. Cheaper
    /// than [`headers`](Self::headers) for one lookup.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.head.fields().get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// `Content-Type` without its parameters, lower-cased (aiohttp's `content_type`).
    pub fn content_type(&self) -> String {
        let value = self.header("content-type").unwrap_or("application/octet-stream");
        value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
    }

    /// The `charset` parameter of `Content-Type`, lower-cased (aiohttp's `request.charset`).
    pub fn charset(&self) -> Option<String> {
        crate::charset::charset_of(self.header("content-type")?).map(|c| c.to_ascii_lowercase())
    }

    /// The `Content-Length` the client declared, if it declared one (aiohttp's
    /// `request.content_length`); `None` for a chunked body.
    pub fn content_length(&self) -> Option<u64> {
        match self.inner.head.framing() {
            BodyFraming::Length(n) => Some(n),
            BodyFraming::Empty => self.header("content-length").map(|_| 0),
            _ => None,
        }
    }

    /// Whether the request has a body at all (aiohttp's `request.body_exists`).
    pub fn body_exists(&self) -> bool {
        !matches!(self.inner.head.framing(), BodyFraming::Empty | BodyFraming::Length(0))
    }

    /// Whether a body is still there to read (aiohttp's `request.can_read_body`): false
    /// without one, once [`read`](Self::read) (or `text`, `json`, `post`) has taken it, once
    /// its stream has been taken by [`take_content`](Self::take_content) or
    /// [`multipart`](Self::multipart), and once [`content`](Self::content) has been read to
    /// its end ([`Payload::at_eof`]).
    pub fn can_read_body(&self) -> bool {
        self.body_exists()
            && self.inner.body.is_none()
            && !self.inner.content_taken
            && !self.inner.payload.at_eof()
    }

    /// The cookies the client sent.
    pub fn cookies(&self) -> &[(String, String)] {
        self.inner.cookies.get_or_init(|| {
            let mut cookies = Vec::new();
            let most = self.inner.app.max_request_cookies();
            for value in self.inner.head.fields().get_all("cookie") {
                crate::cookies::parse_cookie_header(value, most, &mut cookies);
            }
            cookies
        })
    }

    /// The value of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies().iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The client's address (`None` on a Unix socket): the socket's peer, unless a
    /// middleware such as [`TrustedProxies`](crate::TrustedProxies) replaced it with what a
    /// trusted proxy reported (aiohttp's `request.remote`).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.inner.remote
    }

    /// The transport's peer address, whatever a middleware made of
    /// [`remote`](Self::remote): the proxy's own address behind a proxy (aiohttp's
    /// `transport.get_extra_info("peername")`).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.overrides.as_ref().and_then(|o| o.peer).or(self.inner.remote)
    }

    /// What the TLS handshake of this request's connection settled; `None` over plain
    /// HTTP.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.inner.tls.as_deref()
    }

    /// [`tls`](Self::tls), shared: for a request handed on through the app's layers.
    pub(crate) fn shared_tls(&self) -> Option<&Arc<TlsInfo>> {
        self.inner.tls.as_ref()
    }

    pub(crate) fn set_tls(&mut self, tls: Arc<TlsInfo>) {
        self.inner.tls = Some(tls);
    }

    /// `"https"` on a TLS connection, else `"http"` (aiohttp's `request.scheme`), from the
    /// transport: `Forwarded` and `X-Forwarded-Proto` count only through a middleware such
    /// as [`TrustedProxies`](crate::TrustedProxies), which trusts them from known proxies.
    pub fn scheme(&self) -> &str {
        match self.inner.overrides.as_ref().and_then(|o| o.scheme.as_deref()) {
            Some(scheme) => scheme,
            None if self.inner.tls.is_some() => "https",
            None => "http",
        }
    }

    /// Whether the [`scheme`](Self::scheme) is `https` (aiohttp's `request.secure`).
    pub fn secure(&self) -> bool {
        self.scheme().eq_ignore_ascii_case("https")
    }

    /// The application serving this request: its state and `url_for`.
    pub fn app(&self) -> &App {
        &self.inner.app
    }

    /// Shared state of type `T` from the application (or an enclosing one):
    /// `request.app["db"]` in aiohttp.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.inner.app.state::<T>()
    }

    /// Values middlewares attach to this request.
    pub fn extensions(&self) -> &Extensions {
        &self.inner.extensions
    }

    /// Values middlewares attach to this request, to change.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.inner.extensions
    }

    /// Whether the connection may be kept open after this request.
    pub fn keep_alive(&self) -> bool {
        self.inner.head.keep_alive()
    }

    /// The parsed head, for what this API does not cover.
    pub fn head(&self) -> &RequestHead {
        &self.inner.head
    }

    /// The body as a stream (aiohttp's `request.content`), not limited in size.
    pub fn content(&mut self) -> &mut Payload {
        &mut self.inner.payload
    }

    /// Takes the body stream, to move it into a streamed response or a task.
    pub fn take_content(&mut self) -> Payload {
        self.inner.content_taken = true;
        std::mem::take(&mut self.inner.payload)
    }

    /// The whole body, up to `client_max_size` (413 past it). Reading twice returns the same
    /// bytes.
    pub async fn read(&mut self) -> Result<Bytes, HttpError> {
        if let Some(body) = &self.inner.body {
            return Ok(body.clone());
        }
        let limit = self.client_max_size();
        self.check_declared_length(limit)?;
        // A compressed body is decoded as it arrives, and the limit applies to what it
        // decodes to, so a compression bomb stops at the limit.
        let codings = self.inner.head.fields().get_all("content-encoding");
        let window = self.inner.app.brotli_window_log_max();
        let mut inflater = crate::inflate::Inflater::for_fields(codings, limit, window)?;
        let mut body = BytesMut::new();
        // A chunk that declares more than the limit allows is refused from its size line,
        // rather than awaited (it may never come).
        self.inner.payload.set_max_size(limit);
        let too_large = |err: HttpError| {
            if err.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                HttpError::payload_too_large(limit, None)
            } else {
                err
            }
        };
        if inflater.is_none()
            && let Some(whole) = self.inner.payload.read_whole(limit).await.map_err(too_large)?
        {
            self.inner.body = Some(whole.clone());
            return Ok(whole);
        }
        while let Some(chunk) = self.inner.payload.chunk().await.map_err(too_large)? {
            match &mut inflater {
                Some(inflater) => inflater.write(&chunk, limit)?,
                None => body.extend_from_slice(&chunk),
            }
        }
        let body = match inflater {
            Some(inflater) => Bytes::from(inflater.finish(limit)?),
            None => body.freeze(),
        };
        self.inner.body = Some(body.clone());
        Ok(body)
    }

    /// The body as text, decoded from the [`charset`](Self::charset) of its `Content-Type`,
    /// UTF-8 if it names none (aiohttp's `text()`). Bytes not valid in it are a 400, never
    /// replaced; a charset this build does not know is a 415 (every WHATWG label with the
    /// `multipart` feature, which brings `encoding_rs`; UTF-8 and US-ASCII without).
    pub async fn text(&mut self) -> Result<String, HttpError> {
        let body = self.read().await?;
        crate::charset::decode(&body, self.header("content-type")).map_err(|err| {
            if err.is_unknown() {
                HttpError::new(http::StatusCode::UNSUPPORTED_MEDIA_TYPE)
                    .with_text("415: unknown charset")
            } else {
                HttpError::bad_request().with_text("400: body is not valid in its charset")
            }
        })
    }

    /// The body parsed as JSON into `T` (400 if it does not parse).
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, HttpError> {
        let body = self.read().await?;
        serde_json::from_slice(&body)
            .map_err(|err| HttpError::bad_request().with_text(format!("400: invalid JSON: {err}")))
    }

    /// The form in the body: aiohttp's `post()`, for `application/x-www-form-urlencoded`
    /// (or no `Content-Type`) and `multipart/form-data`. Other bodies, and methods other than
    /// POST, PUT, PATCH, DELETE and TRACE, give an empty form, as in aiohttp.
    ///
    /// `client_max_size` bounds the whole body, files included (aiohttp CVE-2025-69228), and
    /// the 413 comes as soon as the body passes it, or at once if `Content-Length` says it
    /// will. Files are streamed to temporary files, never held whole in memory, at most
    /// [`Application::max_form_files`](crate::Application::max_form_files) of them, and the
    /// fields are at most [`Application::max_form_fields`](crate::Application::max_form_fields)
    /// (413 past either); file names are the client's and untrusted. A malformed or nested
    /// multipart body is a 400.
    ///
    /// The form is read once and kept: a later call (a middleware's, then the handler's)
    /// gets a copy of it, uploaded files included (new handles on the same temporary files).
    /// Without the `multipart` feature, a multipart form is a 415.
    pub async fn post(&mut self) -> Result<Form, HttpError> {
        if self.inner.form.is_none() {
            let form = self.read_form().await?;
            self.inner.form = Some(form);
        }
        let cached = self.inner.form.as_ref().map(Form::try_clone).transpose();
        cached.map(Option::unwrap_or_default).map_err(|err| {
            tracing::error!(target: "tandem::server", error = %err, "copying an upload's handle failed");
            HttpError::internal_server_error()
        })
    }

    async fn read_form(&mut self) -> Result<Form, HttpError> {
        if !matches!(self.method().as_str(), "POST" | "PUT" | "PATCH" | "DELETE" | "TRACE") {
            return Ok(Form::default());
        }
        let content_type = self.header("content-type").map(str::to_owned);
        match content_type.as_deref().map(|_| self.content_type()).as_deref() {
            None | Some("application/x-www-form-urlencoded") => {
                let body = self.read().await?;
                Form::from_urlencoded(&body, self.inner.app.max_form_fields())
            }
            #[cfg(feature = "multipart")]
            Some("multipart/form-data") => {
                let limit = self.client_max_size();
                self.check_declared_length(limit)?;
                let reader = self.multipart_with_limit(Some(limit))?;
                let app = &self.inner.app;
                let limits = (app.max_form_files(), app.max_form_fields());
                crate::multipart::read_form(reader, limits).await
            }
            #[cfg(not(feature = "multipart"))]
            Some("multipart/form-data") => Err(HttpError::new(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            )
            .with_text("415: multipart forms are not compiled in (the `multipart` feature)")),
            Some(_) => Ok(Form::default()),
        }
    }

    /// The body as a stream of parts: aiohttp's `await request.multipart()`. 400 unless the
    /// body is `multipart/*` with a valid boundary (at most 70 characters). Not limited by
    /// `client_max_size`; see [`MultipartReader`]. With the `multipart` feature.
    #[cfg(feature = "multipart")]
    pub fn multipart(&mut self) -> Result<MultipartReader, HttpError> {
        self.multipart_with_limit(None)
    }

    #[cfg(feature = "multipart")]
    fn multipart_with_limit(&mut self, limit: Option<usize>) -> Result<MultipartReader, HttpError> {
        let content_type = self.header("content-type").unwrap_or_default();
        let boundary = crate::multipart::boundary(content_type)?;
        Ok(MultipartReader::new(self.take_content(), &boundary, limit))
    }

    /// The most body `read`, `text`, `json` and `post` accept for this request: the
    /// application's `client_max_size`, or what [`clone_with`](Self::clone_with) set.
    pub fn client_max_size(&self) -> usize {
        let own = self.inner.overrides.as_ref().and_then(|o| o.client_max_size);
        own.unwrap_or_else(|| self.inner.app.client_max_size())
    }

    /// Refuses at once a body whose `Content-Length` is over `limit`, rather than reading up
    /// to the limit first.
    fn check_declared_length(&self, limit: usize) -> Result<(), HttpError> {
        match self.inner.head.framing() {
            BodyFraming::Length(n) if n > limit as u64 => {
                Err(HttpError::payload_too_large(limit, Some(n)))
            }
            _ => Ok(()),
        }
    }
}
