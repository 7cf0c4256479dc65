//! `ClientSession`: the shared settings, pool and jar, and the request loop with redirects.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tandem_connect::{Connector, Origin, Proxy, ProxyEnv, Scheme};
use url::{Host, Url};

use crate::{
    ClientTimeout, CookieJar, RequestBuilder, Trace,
    decompress::{
        DEFAULT_BROTLI_WINDOW_LOG_MAX, DEFAULT_MAX_DECOMPRESSED_SIZE, DEFAULT_ZSTD_WINDOW_LOG_MAX,
    },
    error::{Error, Kind},
    middleware::{Chain, Middleware, RequestMiddlewares},
    netrc::Netrc,
    read_limits::ReadLimits,
    redact::{self, Redacted},
    request::basic_auth_value,
    response::{CharsetResolver, ResponseInfo},
    status_check::StatusCheck,
    wire::FieldsCache,
};

/// aiohttp's `max_redirects`.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;
/// The `User-Agent` sent unless one is given.
pub const USER_AGENT: &str =
    concat!("tandem/", env!("CARGO_PKG_VERSION_MAJOR"), ".", env!("CARGO_PKG_VERSION_MINOR"));
/// How long a request with `Expect: 100-continue` waits for the server's `100 Continue`
/// before sending its body anyway (curl's default; aiohttp waits as long as its read
/// timeouts allow, which is forever by default, hanging on a server that ignores the
/// expectation).
pub const DEFAULT_EXPECT_CONTINUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// aiohttp's `ClientSession`: a connection pool, a cookie jar, default headers and timeouts,
/// shared by every request made through it. Cheap to clone: clones share everything.
///
/// ```no_run
/// # async fn demo() -> Result<(), tandem_client::Error> {
/// let session = tandem_client::ClientSession::new();
/// let mut resp = session.get("http://example.com/").query(&[("q", "a b")]).send().await?;
/// println!("{} {}", resp.status(), resp.text().await?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientSession {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) base_url: Option<Url>,
    pub(crate) headers: HeaderMap,
    pub(crate) timeout: ClientTimeout,
    pub(crate) connector: Connector,
    pub(crate) raise_for_status: StatusCheck,
    /// Automatic fields not to send (aiohttp's `skip_auto_headers`).
    pub(crate) skip_auto_headers: Vec<HeaderName>,
    /// The HTTP version requests are written in: 1.1, or 1.0.
    pub(crate) version: http::Version,
    pub(crate) jar: CookieJar,
    pub(crate) auto_decompress: bool,
    pub(crate) max_decompressed_size: u64,
    pub(crate) zstd_window_log_max: u32,
    pub(crate) brotli_window_log_max: u32,
    /// The response head's limits and `read_bufsize`.
    pub(crate) read_limits: ReadLimits,
    pub(crate) max_redirects: usize,
    /// Whether a redirect's `Location` is sent as the URL parser re-encodes it (aiohttp's
    /// `requote_redirect_url`), or byte for byte as the server wrote it.
    pub(crate) requote_redirect_url: bool,
    pub(crate) traces: Traces,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) proxy_env: Option<ProxyEnv>,
    pub(crate) json_serialize: Option<JsonSerialize>,
    pub(crate) charset_fallback: Option<CharsetResolver>,
    pub(crate) expect_continue_timeout: std::time::Duration,
    pub(crate) last_url: LastUrl,
    pub(crate) fields_cache: FieldsCache,
    /// The session's middlewares, outermost first; `None` when there are none.
    pub(crate) middlewares: Option<Chain>,
    /// The connector's events for the traces, when there are any.
    pub(crate) trace_events: Option<Arc<dyn tandem_connect::ConnectEvents>>,
    /// Record each response's [`Timings`](crate::Timings).
    pub(crate) timings: bool,
    /// Credentials from `.netrc`, under `trust_env` or `netrc_file`.
    pub(crate) netrc: Option<Netrc>,
    /// The session's own `Authorization` (`basic_auth`), for its origin only.
    pub(crate) auth: Option<HeaderValue>,
    /// Whether requests may go over HTTP/2; `None` leaves it to the connector.
    pub(crate) http2: Option<tandem_connect::Http2>,
}

/// Without credentials: the base URL's userinfo and credential fields' values are left out,
/// and so are the caches (the last URL as given, the last fields sent).
impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let base_url = self.base_url.as_ref().map(|url| Redacted(url).to_string());
        f.debug_struct("ClientSession")
            .field("base_url", &base_url)
            .field("headers", &redact::Fields(&self.headers))
            .field("timeout", &self.timeout)
            .field("connector", &self.connector)
            .field("raise_for_status", &self.raise_for_status)
            .field("jar", &self.jar)
            .field("auto_decompress", &self.auto_decompress)
            .field("max_decompressed_size", &self.max_decompressed_size)
            .field("read_limits", &self.read_limits)
            .field("max_redirects", &self.max_redirects)
            .field("traces", &self.traces)
            .field("proxy", &self.proxy)
            .field("proxy_env", &self.proxy_env)
            .field("middlewares", &self.middlewares.as_ref().map_or(0, |c| c.len()))
            .finish_non_exhaustive()
    }
}

/// The last URL string the session resolved, and its result. Parsing and checking a URL is
/// costly (the `url` crate's host parsing goes through IDNA even for an IP address), and a
/// session mostly asks for the same few URLs again; yarl keeps caches for the same reason
/// (`cache_configure`). A hit is a compare and a clone; resolving depends only on the
/// string and the session's base URL, so a hit is exactly what parsing again would give.
///
/// The entry also keeps the URL's origin, which a request to that very URL (the same `Arc`)
/// then takes instead of working it out again.
#[derive(Debug, Default)]
pub(crate) struct LastUrl(std::sync::Mutex<Option<Resolved>>);

/// The URL string as given, what it resolved to, and its origin.
type Resolved = (Box<str>, Arc<Url>, Origin);

impl LastUrl {
    fn get(&self, raw: &str) -> Option<Arc<Url>> {
        let last = self.0.lock().ok()?;
        last.as_ref().filter(|(seen, ..)| **seen == *raw).map(|(_, url, _)| url.clone())
    }

    fn set(&self, raw: &str, url: &Arc<Url>) {
        let Ok(origin) = origin_of(url) else { return };
        if let Ok(mut last) = self.0.lock() {
            *last = Some((raw.into(), url.clone(), origin));
        }
    }

    fn origin(&self, url: &Arc<Url>) -> Result<Origin, Error> {
        if let Ok(last) = self.0.lock()
            && let Some((_, _, origin)) = last.as_ref().filter(|(_, u, _)| Arc::ptr_eq(u, url))
        {
            return Ok(origin.clone());
        }
        origin_of(url)
    }
}

/// The error a [`json_serialize`](ClientSessionBuilder::json_serialize) hook may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type JsonSerializeFn = dyn Fn(&serde_json::Value) -> Result<String, BoxError> + Send + Sync;

/// A session's `json_serialize` hook.
#[derive(Clone)]
pub(crate) struct JsonSerialize(pub(crate) Arc<JsonSerializeFn>);

impl std::fmt::Debug for JsonSerialize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonSerialize")
    }
}

/// The installed [`Trace`]s.
#[derive(Default)]
pub(crate) struct Traces(pub(crate) Vec<Arc<dyn Trace>>);

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} traces", self.0.len())
    }
}

impl Default for ClientSession {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Settings for a [`ClientSession`].
#[derive(Debug)]
#[must_use]
pub struct ClientSessionBuilder {
    inner: Inner,
    middlewares: RequestMiddlewares,
    error: Option<Error>,
}

impl ClientSessionBuilder {
    /// Relative request URLs are joined to this one (RFC 3986); give it a trailing `/`.
    pub fn base_url(mut self, url: &str) -> Self {
        match parse_url(url) {
            Ok(url) => self.inner.base_url = Some(url),
            Err(e) => self.error = Some(e),
        }
        self
    }

    /// A header sent with every request (a request's own header of that name replaces it).
    /// `Authorization`, `Cookie` and `Proxy-Authorization` are credentials: as a request's
    /// own, they are left out once a redirect takes the request to another origin.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(name), Ok(value)) => {
                self.inner.headers.append(name, value);
            }
            (Err(e), _) => self.error = Some(Error::new(Kind::Request, e.into())),
            (_, Err(e)) => self.error = Some(Error::new(Kind::Request, e.into())),
        }
        self
    }

    /// The default timeouts (aiohttp's: 300 s total, 30 s `sock_connect`).
    pub fn timeout(mut self, timeout: ClientTimeout) -> Self {
        self.inner.timeout = timeout;
        self
    }

    /// The connector and pool to use (a new default one otherwise).
    pub fn connector(mut self, connector: Connector) -> Self {
        self.inner.connector = connector;
        self
    }

    /// Whether requests may go over HTTP/2 (default: the connector's setting, which is
    /// [`Http2::Auto`](crate::Http2): HTTP/2 over TLS when the server chooses `h2` by ALPN,
    /// HTTP/1.1 otherwise). [`Http2::Never`](crate::Http2) keeps every request on
    /// HTTP/1.1; [`Http2::PriorKnowledge`](crate::Http2) speaks HTTP/2 without asking, h2c
    /// on plain `http`. A request's own [`http2`](crate::RequestBuilder::http2) wins.
    ///
    /// Requests to one origin over HTTP/2 share one connection, as many at once as the
    /// server allows; the connector's `limit` and `limit_per_host` count it once.
    pub fn http2(mut self, mode: tandem_connect::Http2) -> Self {
        self.inner.http2 = Some(mode);
        self
    }

    /// Makes every response with a status of 400 or more an error.
    pub fn raise_for_status(mut self, yes: bool) -> Self {
        self.inner.raise_for_status = StatusCheck::from_bool(yes);
        self
    }

    /// Asks `check` about every final response (aiohttp's `raise_for_status=` with an async
    /// callable): its error fails the request, a status error whose
    /// [`source`](std::error::Error::source) is the function's own error (a
    /// [`tandem_client::Error`](Error) is returned as it is). It may read the body. A
    /// request's own [`raise_for_status`](crate::RequestBuilder::raise_for_status) or
    /// [`raise_for_status_with`](crate::RequestBuilder::raise_for_status_with) wins.
    ///
    /// ```
    /// let session = tandem_client::ClientSession::builder()
    ///     .raise_for_status_with(|resp| {
    ///         Box::pin(async move {
    ///             if resp.status() == 429 {
    ///                 return Err(format!("rate limited: {}", resp.text().await?).into());
    ///             }
    ///             Ok(())
    ///         })
    ///     })
    ///     .build();
    /// ```
    pub fn raise_for_status_with<F>(mut self, check: F) -> Self
    where
        F: for<'a> Fn(&'a mut crate::ClientResponse) -> crate::BoxFuture<'a, Result<(), BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.inner.raise_for_status = StatusCheck::hook(check);
        self
    }

    /// Automatic fields this session's requests leave out (aiohttp's `skip_auto_headers`):
    /// any of `User-Agent`, `Accept`, `Accept-Encoding` and the body's `Content-Type`. A
    /// field given explicitly is still sent. `Host` and the body's framing are always sent:
    /// HTTP/1.1 requires them.
    pub fn skip_auto_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: TryInto<HeaderName>,
    {
        for name in names {
            match name.try_into() {
                Ok(name) => self.inner.skip_auto_headers.push(name),
                Err(_) => self.error = Some(Error::new(Kind::Request, "invalid header name")),
            }
        }
        self
    }

    /// The HTTP version requests are written in (aiohttp's `version=`): `HTTP_11` (the
    /// default) or `HTTP_10`. An HTTP/1.0 request is never sent over HTTP/2, carries
    /// `Connection: keep-alive` unless it names a `Connection` of its own, and cannot have
    /// a streamed body (HTTP/1.0 has no chunked framing). Any other version makes `build`
    /// fail.
    pub fn version(mut self, version: http::Version) -> Self {
        match crate::request::check_version(version) {
            Ok(()) => self.inner.version = version,
            Err(e) => self.error = Some(e),
        }
        self
    }

    /// The cookie jar (a new [`CookieJar`] otherwise; [`CookieJar::dummy`] for none).
    pub fn cookie_jar(mut self, jar: CookieJar) -> Self {
        self.inner.jar = jar;
        self
    }

    /// Whether to decode gzip, deflate, br and zstd bodies (default: yes).
    pub fn auto_decompress(mut self, yes: bool) -> Self {
        self.inner.auto_decompress = yes;
        self
    }

    /// The most bytes a compressed body may decode to (default 64 MiB); past it, reading
    /// fails with a payload error.
    pub fn max_decompressed_size(mut self, bytes: u64) -> Self {
        self.inner.max_decompressed_size = bytes;
        self
    }

    /// The largest window a zstd body may use, as a power of two (default
    /// [`DEFAULT_ZSTD_WINDOW_LOG_MAX`], 8 MiB, the RFC 9659 limit); a body needing more is a
    /// payload error when read. It bounds the memory one zstd body can make the client
    /// allocate.
    pub fn zstd_window_log_max(mut self, log: u32) -> Self {
        self.inner.zstd_window_log_max = log;
        self
    }

    /// The largest window a brotli body may declare, as a power of two (default
    /// [`DEFAULT_BROTLI_WINDOW_LOG_MAX`], 16 MiB, the most RFC 7932 allows); a body
    /// declaring more is a payload error when read, before the window is allocated. The
    /// decoder allocates the declared window whatever the body's size, so this bounds what
    /// each brotli response can make the client allocate; a lower one refuses bodies from
    /// encoders that used larger windows (the `brotli` tool's default for a large file is
    /// 2^24).
    pub fn brotli_window_log_max(mut self, log: u32) -> Self {
        self.inner.brotli_window_log_max = log;
        self
    }

    /// The longest status line of a response, in bytes without its line end (default
    /// [`DEFAULT_MAX_LINE_SIZE`](crate::DEFAULT_MAX_LINE_SIZE), 8190, aiohttp's
    /// `max_line_size`). A longer one fails the request with
    /// [`Error::is_line_too_long`](crate::Error::is_line_too_long); the connection is closed.
    /// [`RequestBuilder::max_line_size`](crate::RequestBuilder::max_line_size) overrides it
    /// for one request.
    ///
    /// The head limits apply to HTTP/1.1 (and 1.0) responses. Over HTTP/2 the connector's
    /// [`http2_max_header_list_size`](tandem_connect::ConnectorBuilder::http2_max_header_list_size)
    /// bounds a response's fields instead, as HPACK has no lines to count.
    pub fn max_line_size(mut self, bytes: usize) -> Self {
        self.inner.read_limits.set_max_line_size(bytes);
        self
    }

    /// The longest header field line of a response (name, colon and value), in bytes
    /// (default [`DEFAULT_MAX_FIELD_SIZE`](crate::DEFAULT_MAX_FIELD_SIZE), 8190, aiohttp's
    /// `max_field_size`); past it, [`Error::is_field_too_long`](crate::Error::is_field_too_long).
    /// The whole head is held to 64 KiB, or to one status line and one field of the sizes
    /// allowed if that is more. HTTP/1.1 only, as [`max_line_size`](Self::max_line_size).
    pub fn max_field_size(mut self, bytes: usize) -> Self {
        self.inner.read_limits.set_max_field_size(bytes);
        self
    }

    /// The most header fields in a response head, and trailer fields after a chunked body
    /// (default [`DEFAULT_MAX_HEADERS`](crate::DEFAULT_MAX_HEADERS), 128, aiohttp's
    /// `max_headers`); past it, [`Error::is_too_many_headers`](crate::Error::is_too_many_headers).
    /// HTTP/1.1 only, as [`max_line_size`](Self::max_line_size).
    pub fn max_headers(mut self, count: usize) -> Self {
        self.inner.read_limits.set_max_headers(count);
        self
    }

    /// The most interim (1xx) responses read before the final one (default
    /// [`DEFAULT_MAX_INTERIM_RESPONSES`](crate::DEFAULT_MAX_INTERIM_RESPONSES), 32; aiohttp
    /// has no such limit); past it, a response error. Over HTTP/1.1 and HTTP/2 alike.
    pub fn max_interim_responses(mut self, count: usize) -> Self {
        self.inner.read_limits.set_max_interim_responses(count);
        self
    }

    /// The most bytes one read of a response body asks for (default
    /// [`DEFAULT_READ_BUFSIZE`](crate::DEFAULT_READ_BUFSIZE), 256 KiB, aiohttp 3.14's
    /// `read_bufsize`; 0 is taken as 1). A body of known length is read in pieces of as much
    /// of the rest as this; one of unknown length (chunked, or until the close) from 16 KiB,
    /// doubling while the reads come back full. So it bounds the memory one read takes, and
    /// the size of the pieces [`Content::chunk`](crate::Content::chunk) hands out.
    /// [`readline`](crate::Content::readline) and `readuntil` fail past twice this, aiohttp's
    /// high-water mark.
    ///
    /// Over HTTP/2 the server's DATA frames, within the connector's flow-control windows,
    /// decide the pieces, and only the `readline` bound applies.
    pub fn read_bufsize(mut self, bytes: usize) -> Self {
        self.inner.read_limits.set_read_bufsize(bytes);
        self
    }

    /// The default number of redirects to follow (10).
    pub fn max_redirects(mut self, n: usize) -> Self {
        self.inner.max_redirects = n;
        self
    }

    /// Whether a redirect's `Location` is re-encoded before it is requested (default true,
    /// as aiohttp's `requote_redirect_url`). `false` sends the path and query exactly as the
    /// server wrote them, for servers whose URLs change meaning when re-encoded (a `'` or a
    /// `%7e` that must stay as it is). A relative-path `Location` (`next`, `../up`) is
    /// resolved, and so re-encoded, either way.
    pub fn requote_redirect_url(mut self, yes: bool) -> Self {
        self.inner.requote_redirect_url = yes;
        self
    }

    /// Sends every request through `proxy` (aiohttp's `proxy=` on the session).
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.inner.proxy = Some(proxy);
        self
    }

    /// HTTP Basic credentials for the session (aiohttp's `ClientSession(auth=...)`), sent
    /// only to the base URL's origin (or, without a base URL, to the origin each request
    /// was made to, never to a redirect's other origin), and only by a request without an
    /// `Authorization` of its own.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        match basic_auth_value(user, password) {
            Ok(mut value) => {
                value.set_sensitive(true);
                self.inner.auth = Some(value);
            }
            Err(e) => self.error = Some(e),
        }
        self
    }

    /// Reads `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` from the environment now, and
    /// chooses a proxy by them for every request and redirect hop (aiohttp's `trust_env`;
    /// off by default). It also reads the `.netrc` file (`NETRC`, else `~/.netrc`), whose
    /// login and password for a host become Basic credentials for requests to that host
    /// that carry none of their own, and for a proxy from the environment whose URL has
    /// none, as aiohttp does.
    pub fn trust_env(mut self, yes: bool) -> Self {
        self.inner.proxy_env = yes.then(ProxyEnv::from_env);
        self.inner.netrc = if yes { Netrc::from_env() } else { None };
        self
    }

    /// Chooses a proxy by `env` for every request and redirect hop, as
    /// [`trust_env`](Self::trust_env) does with the process environment's settings; build
    /// `env` with [`ProxyEnv::from_vars`] to take them from elsewhere. A proxy it names
    /// without credentials gets its host's from the `.netrc` file, if one was read.
    pub fn proxy_env(mut self, env: ProxyEnv) -> Self {
        self.inner.proxy_env = Some(env);
        self
    }

    /// Reads credentials from the `.netrc` file at `path` now, as
    /// [`trust_env`](Self::trust_env) does from the default one: a request to a host the
    /// file names (or any host, with a `default` entry) that carries no `Authorization` of
    /// its own sends the file's login and password as Basic credentials. A file that cannot
    /// be read is ignored.
    pub fn netrc_file(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.inner.netrc = Netrc::from_file(path.as_ref());
        self
    }

    /// The function [`RequestBuilder::json`] serialises bodies with (aiohttp's
    /// `ClientSession(json_serialize=...)`); `serde_json`'s compact form otherwise.
    ///
    /// As in aiohttp the hook gets the value itself, here as a [`serde_json::Value`], and
    /// returns the text to send. Converting to a `Value` first costs a copy of the value, so
    /// a session without a hook serialises straight to bytes. An error from the hook is
    /// returned by `send`, before anything is sent.
    ///
    /// ```
    /// let session = tandem_client::ClientSession::builder()
    ///     .json_serialize(|value| Ok(serde_json::to_string_pretty(value)?))
    ///     .build();
    /// ```
    pub fn json_serialize<F>(mut self, f: F) -> Self
    where
        F: Fn(&serde_json::Value) -> Result<String, BoxError> + Send + Sync + 'static,
    {
        self.inner.json_serialize = Some(JsonSerialize(Arc::new(f)));
        self
    }

    /// How [`ClientResponse::text`](crate::ClientResponse::text) picks an encoding for a body whose `Content-Type` has
    /// no charset, that has no byte order mark, and that is not valid UTF-8 (aiohttp's
    /// `fallback_charset_resolver`): `f` gets the response and its body and returns an
    /// encoding label such as `"windows-1252"`. Without it such a body is decoded as UTF-8
    /// with U+FFFD for malformed sequences. An unknown label is a decode error.
    ///
    /// ```
    /// let session = tandem_client::ClientSession::builder()
    ///     .fallback_charset_resolver(|_resp, _body| "windows-1252".to_owned())
    ///     .build();
    /// ```
    pub fn fallback_charset_resolver<F>(mut self, f: F) -> Self
    where
        F: Fn(&ResponseInfo, &[u8]) -> String + Send + Sync + 'static,
    {
        self.inner.charset_fallback = Some(CharsetResolver(Arc::new(f)));
        self
    }

    /// How long a request sent with
    /// [`expect_continue`](crate::RequestBuilder::expect_continue) waits for `100 Continue`
    /// before it sends its body anyway (default [`DEFAULT_EXPECT_CONTINUE_TIMEOUT`], 1 s).
    pub fn expect_continue_timeout(mut self, wait: std::time::Duration) -> Self {
        self.inner.expect_continue_timeout = wait;
        self
    }

    /// Adds a receiver of request events (aiohttp's `trace_configs`).
    pub fn trace(mut self, trace: Arc<dyn Trace>) -> Self {
        self.inner.traces.0.push(trace);
        self
    }

    /// Records how long each step of every exchange takes, for
    /// [`ClientResponse::timings`](crate::ClientResponse::timings) (default: no; it costs a
    /// few clock readings and an allocation per request).
    pub fn timings(mut self, yes: bool) -> Self {
        self.inner.timings = yes;
        self
    }

    /// Adds a middleware (aiohttp's `ClientSession(middlewares=...)`), around every hop of
    /// every request: the first added is the outermost, and a request's own run inside the
    /// session's. See [`Middleware`].
    ///
    /// ```
    /// use tandem_client::{ClientNext, ClientRequest, ClientResponse, ClientSession, Error};
    ///
    /// async fn tag(mut req: ClientRequest, next: ClientNext) -> Result<ClientResponse, Error> {
    ///     req.headers_mut().insert("x-via", "tandem".parse().unwrap());
    ///     next.run(req).await
    /// }
    ///
    /// let session = ClientSession::builder().middleware(tag).build();
    /// ```
    pub fn middleware(mut self, middleware: impl Middleware) -> Self {
        self.middlewares.list.push(Arc::new(middleware));
        self
    }

    /// The session, or the first error in its settings.
    pub fn try_build(mut self) -> Result<ClientSession, Error> {
        if !self.middlewares.list.is_empty() {
            self.inner.middlewares = Some(self.middlewares.list.into());
        }
        if !self.inner.traces.0.is_empty() {
            let events = crate::trace::TraceEvents {
                traces: self.inner.traces.0.clone(),
                ctx: crate::trace::TraceRequestCtx::default(),
            };
            self.inner.trace_events = Some(Arc::new(events));
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(ClientSession { inner: Arc::new(self.inner) }),
        }
    }

    /// The session.
    ///
    /// # Panics
    ///
    /// If a setting was invalid (a bad base URL or header); see [`try_build`](Self::try_build).
    pub fn build(self) -> ClientSession {
        self.try_build().expect("invalid ClientSession settings")
    }
}

impl ClientSession {
    /// A session with aiohttp's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings for a session.
    pub fn builder() -> ClientSessionBuilder {
        ClientSessionBuilder {
            inner: Inner {
                base_url: None,
                headers: HeaderMap::new(),
                timeout: ClientTimeout::default(),
                connector: Connector::new(),
                raise_for_status: StatusCheck::Off,
                skip_auto_headers: Vec::new(),
                version: http::Version::HTTP_11,
                jar: CookieJar::new(),
                auto_decompress: true,
                max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
                zstd_window_log_max: DEFAULT_ZSTD_WINDOW_LOG_MAX,
                brotli_window_log_max: DEFAULT_BROTLI_WINDOW_LOG_MAX,
                read_limits: ReadLimits::default(),
                max_redirects: DEFAULT_MAX_REDIRECTS,
                requote_redirect_url: true,
                traces: Traces::default(),
                proxy: None,
                proxy_env: None,
                json_serialize: None,
                charset_fallback: None,
                expect_continue_timeout: DEFAULT_EXPECT_CONTINUE_TIMEOUT,
                last_url: LastUrl::default(),
                fields_cache: FieldsCache::default(),
                middlewares: None,
                trace_events: None,
                timings: false,
                netrc: None,
                auth: None,
                http2: None,
            },
            middlewares: RequestMiddlewares::default(),
            error: None,
        }
    }

    /// The session's cookie jar.
    pub fn cookie_jar(&self) -> &CookieJar {
        &self.inner.jar
    }

    /// The session's connector.
    pub fn connector(&self) -> &Connector {
        &self.inner.connector
    }

    /// A request with any method.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url)
    }

    /// A GET request.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A POST request.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A PUT request.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A PATCH request.
    pub fn patch(&self, url: &str) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// A DELETE request.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A HEAD request; it does not follow redirects unless asked, as in aiohttp.
    pub fn head(&self, url: &str) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// An OPTIONS request.
    pub fn options(&self, url: &str) -> RequestBuilder {
        self.request(Method::OPTIONS, url)
    }

    /// `url` joined to the base URL if it is relative, and checked. Shared: a request, its
    /// response and the cache hold the same URL, copied only if a request changes it.
    pub(crate) fn resolve_url(&self, url: &str) -> Result<Arc<Url>, Error> {
        if let Some(hit) = self.inner.last_url.get(url) {
            return Ok(hit);
        }
        let resolved = Arc::new(self.resolve_url_uncached(url)?);
        self.inner.last_url.set(url, &resolved);
        Ok(resolved)
    }

    fn resolve_url_uncached(&self, url: &str) -> Result<Url, Error> {
        // One parse, both to tell an absolute URL from a relative one and to check it.
        check_raw(url)?;
        match (&self.inner.base_url, Url::parse(url)) {
            (_, Ok(parsed)) => check_url(parsed, url),
            (Some(base), Err(url::ParseError::RelativeUrlWithoutBase)) => {
                let joined = base.join(url).map_err(|e| invalid_url(e, url))?;
                // The host came from the base URL, checked when the session was built.
                Ok(joined)
            }
            (_, Err(e)) => Err(invalid_url(e, url)),
        }
    }
}

pub(crate) fn invalid_url(
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    url: &str,
) -> Error {
    let url = redact::raw(url);
    Error::new(Kind::InvalidUrl { redirect: false }, format!("{url:?}: {}", e.into()))
}

/// `url::Url` silently drops tab, CR and LF (the WHATWG rule); a URL holding them is refused
/// instead, so what is sent is what was given.
fn check_raw(url: &str) -> Result<(), Error> {
    if url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(invalid_url("control character or space in URL", url));
    }
    Ok(())
}

pub(crate) fn parse_url(raw: &str) -> Result<Url, Error> {
    check_raw(raw)?;
    let url = Url::parse(raw).map_err(|e| invalid_url(e, raw))?;
    check_url(url, raw)
}

fn check_url(url: Url, raw: &str) -> Result<Url, Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid_url("not an http or https URL", raw));
    }
    match url.host() {
        None => return Err(invalid_url("no host", raw)),
        Some(Host::Domain("")) => return Err(invalid_url("empty host", raw)),
        Some(Host::Ipv4(ip)) => {
            // WHATWG parsing turns `2130706433`, `017700000001` and `127.1` into
            // 127.0.0.1; aiohttp 3.14.1 refuses such hosts, and so do we: only the
            // canonical dotted form is an IPv4 host. std's parser accepts exactly that
            // form (four decimal octets, no leading zeros), and costs far less than
            // formatting the address to compare.
            let canonical = raw_host(raw).and_then(|h| h.parse::<std::net::Ipv4Addr>().ok());
            if canonical != Some(ip) {
                return Err(invalid_url("non-canonical IPv4 host", raw));
            }
        }
        Some(_) => {}
    }
    Ok(url)
}

/// The host as written in an absolute URL, without userinfo or port.
fn raw_host(raw: &str) -> Option<&str> {
    Some(written_host(&raw[raw.find("://")? + 3..]))
}

/// The host as written at the start of `from_authority` (what follows a URL's `//`): up to
/// the path, query or fragment (a backslash ends it too, as it does for an http URL),
/// without userinfo or port; a bracketed IPv6 host whole. Shared by the checks of a URL the
/// caller gives and of a redirect's `Location`.
pub(crate) fn written_host(from_authority: &str) -> &str {
    let end = from_authority.find(['/', '\\', '?', '#']).unwrap_or(from_authority.len());
    let authority = &from_authority[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.starts_with('[') {
        return host;
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

impl LastUrl {
    /// `url`'s origin, taken from the cache when `url` is the cached URL itself.
    pub(crate) fn origin_for(&self, url: &Arc<Url>) -> Result<Origin, Error> {
        self.origin(url)
    }
}

/// A hop's URL, which a middleware may have changed: `http` or `https`, with a host.
pub(crate) fn check_hop_url(url: &Url) -> Result<(), Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid_url("not an http or https URL", url.as_str()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid_url("no host", url.as_str()));
    }
    Ok(())
}

pub(crate) fn origin_of(url: &Url) -> Result<Origin, Error> {
    let scheme = match url.scheme() {
        "https" => Scheme::Https,
        _ => Scheme::Http,
    };
    let host = match url.host() {
        // The URL's own serialisation of an IPv4 address is the dotted form, so it is
        // borrowed rather than formatted again.
        Some(Host::Ipv6(ip)) => std::borrow::Cow::Owned(ip.to_string()),
        Some(Host::Ipv4(_) | Host::Domain(_)) => url.host_str().unwrap_or_default().into(),
        None => return Err(invalid_url("no host", url.as_str())),
    };
    Ok(Origin::new(scheme, &host, url.port_or_known_default().unwrap_or(scheme.default_port())))
}

/// Credentials in the URL (`http://user:pass@host/`) become a Basic `Authorization` field
/// and are taken out of the URL, as aiohttp does.
///
/// On the request as the caller gave it (`first`), credentials in the URL together with an
/// `Authorization` of the request's own are an error, as aiohttp's "Cannot combine AUTH
/// argument with credentials encoded in URL": which one was meant cannot be told. On a
/// redirect's URL, the credentials already held are kept.
pub(crate) fn take_url_credentials(
    url: &mut Arc<Url>,
    headers: &mut HeaderMap,
    first: bool,
) -> Result<(), Error> {
    if url.username().is_empty() && url.password().is_none() {
        return Ok(());
    }
    if first && headers.contains_key(header::AUTHORIZATION) {
        return Err(Error::new(
            Kind::Request,
            "credentials in the URL and an Authorization of the request's own cannot be combined",
        ));
    }
    let url = Arc::make_mut(url);
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let user = decode(url.username());
    let pass = decode(url.password().unwrap_or_default());
    if !headers.contains_key(header::AUTHORIZATION) {
        headers.insert(header::AUTHORIZATION, basic_auth_value(&user, &pass)?);
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let s = ClientSession::new();
        assert!(s.resolve_url("http://a.example/x").is_ok());
        for bad in [
            "ftp://a/",
            "http://a/x\r\nX-Injected: 1",
            "http://a/\tx",
            "http://2130706433/",
            "http://017700000001/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://127.0.0.01/",
            "http://127.000.0.1/",
            "relative/path",
            "http://[::1",
        ] {
            assert!(s.resolve_url(bad).unwrap_err().is_invalid_url(), "{bad:?}");
        }
        assert!(s.resolve_url("http://127.0.0.1:8080/").is_ok());
        assert!(s.resolve_url("http://user:pw@127.0.0.1:8080/").is_ok());
        assert!(s.resolve_url("http://[::1]:8080/").is_ok());
        assert!(s.resolve_url("http://user@10.0.0.255:80/").is_ok());
        let s = ClientSession::builder().base_url("http://a.example/api/").build();
        assert_eq!(s.resolve_url("v1/x?q=1").unwrap().as_str(), "http://a.example/api/v1/x?q=1");
        assert_eq!(s.resolve_url("http://b.example/").unwrap().as_str(), "http://b.example/");
        // The cached last URL answers only for its own string, errors are never cached, and
        // each answer is what parsing gives.
        for raw in ["v1/x", "v1/x", "http://b.example/y", "v1/x", "http://b.example/y"] {
            assert_eq!(*s.resolve_url(raw).unwrap(), s.resolve_url_uncached(raw).unwrap());
        }
        assert!(s.resolve_url("http://2130706433/").is_err());
        assert!(s.resolve_url("http://2130706433/").is_err());
    }

    /// The cached URL is shared with the requests made from it; one that changes its URL
    /// changes its own copy, and the origin kept with the entry is the URL's.
    #[test]
    fn a_request_changing_its_url_leaves_the_cached_one() {
        let s = ClientSession::new();
        let raw = "http://u:p@a.example:81/x#f";
        let b = s.get(raw).query(&[("q", "1")]);
        assert_eq!(b.spec.as_ref().unwrap().url.as_str(), "http://u:p@a.example:81/x?q=1#f");
        let cached = s.resolve_url(raw).unwrap();
        assert_eq!(cached.as_str(), raw);
        assert_eq!(s.inner.last_url.origin(&cached).unwrap(), origin_of(&cached).unwrap());
        let other = Arc::new(Url::parse("https://b.example/").unwrap());
        assert_eq!(s.inner.last_url.origin(&other).unwrap().port(), 443);
    }
}
