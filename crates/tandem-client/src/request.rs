//! `RequestBuilder`: a request's options, checked before anything is sent.

use std::{pin::Pin, sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use url::Url;

use crate::{
    ClientResponse, ClientSession, ClientTimeout,
    body_encoding::Compression,
    error::{Error, Kind},
    file_body::FileBody,
    middleware::{Middleware, RequestMiddlewares},
    redact::{Fields, Redacted},
    status_check::StatusCheck,
};

/// A request body with the content type aiohttp gives its kind.
#[derive(Clone, Debug)]
pub struct Body {
    pub(crate) bytes: Bytes,
    pub(crate) content_type: &'static str,
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body { bytes, content_type: "application/octet-stream" }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes::from(bytes).into()
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Bytes::from_static(bytes).into()
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body { bytes: text.into(), content_type: "text/plain; charset=utf-8" }
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body {
            bytes: Bytes::from_static(text.as_bytes()),
            content_type: "text/plain; charset=utf-8",
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed request body, read once, so never resent; and its length when that is known
/// before it is sent (a form's files, by their metadata): it then goes with
/// `Content-Length`, else chunked.
pub(crate) struct StreamBody(
    pub(crate) Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>,
    pub(crate) Option<Length>,
);

/// A streamed body's length, known before it is sent. The file is kept in the one place
/// every streamed body already has, so that a request without one carries no more state.
pub(crate) enum Length {
    Bytes(u64),
    /// A file body of a length known when it was set: the writer may send the file with
    /// `sendfile` instead of reading the stream.
    File(Arc<FileBody>, u64),
}

impl Length {
    pub(crate) fn bytes(&self) -> u64 {
        match self {
            Length::Bytes(n) => *n,
            Length::File(_, len) => *len,
        }
    }

    /// The same length without the file: for a body whose bytes must come through its
    /// stream (watched, or told to traces).
    pub(crate) fn streamed(&self) -> Length {
        Length::Bytes(self.bytes())
    }
}

impl std::fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamBody")
    }
}

/// Per-request connection settings: aiohttp's `proxy=` and `ssl=`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnSettings {
    pub(crate) proxy: Option<tandem_connect::Proxy>,
    pub(crate) tls: Option<tandem_connect::TlsConfig>,
    /// What the session's trace hooks get for this request (aiohttp's `trace_request_ctx`).
    pub(crate) trace_ctx: crate::trace::TraceRequestCtx,
    /// Whether the request may go over HTTP/2 (the session's setting otherwise).
    pub(crate) http2: Option<tandem_connect::Http2>,
    /// Automatic fields to leave out, besides the session's.
    pub(crate) skip_auto_headers: Vec<HeaderName>,
    /// The HTTP version to write (the session's otherwise).
    pub(crate) version: Option<http::Version>,
    /// A body delimited by the connection's close reads as empty (`read_until_eof=False`).
    pub(crate) empty_until_close: bool,
    /// The TLS name (SNI and certificate check) instead of the URL's host.
    pub(crate) server_hostname: Option<Arc<str>>,
    /// The response head's limits and `read_bufsize`, where they differ from the session's.
    /// Boxed, as few requests have any: the settings move with every builder call.
    pub(crate) read_limits: Option<Box<crate::read_limits::ReadOverrides>>,
    /// A redirect took the request to another origin: the session's own credential fields
    /// (`Authorization`, `Cookie`, `Proxy-Authorization` given to its builder) stay behind
    /// on this hop and every later one, as the request's own do.
    pub(crate) left_origin: bool,
}

/// A request being built; [`send`](Self::send) sends it. Errors in the options (a header
/// that is not valid, a body that cannot be serialised) are kept and returned by `send`,
/// before anything is sent.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    pub(crate) session: ClientSession,
    pub(crate) spec: Result<RequestSpec, Error>,
    /// How the body goes out: applied by `send`, whichever body was given.
    sending: Sending,
}

/// aiohttp's `compress=`, `chunked=` and upload progress.
#[derive(Default)]
struct Sending {
    compress: Option<Compression>,
    chunked: bool,
    progress: Option<Arc<ProgressFn>>,
}

type ProgressFn = dyn Fn(u64) + Send + Sync;

impl std::fmt::Debug for Sending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sending")
            .field("compress", &self.compress)
            .field("chunked", &self.chunked)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// The pieces an in-memory body is cut into under [`RequestBuilder::chunked`].
const CHUNKED_PIECE: usize = 64 * 1024;

/// Everything `send` needs.
pub(crate) struct RequestSpec {
    pub(crate) method: Method,
    pub(crate) url: Arc<Url>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Body>,
    pub(crate) stream: Option<StreamBody>,
    pub(crate) conn_settings: ConnSettings,
    pub(crate) timeout: Option<ClientTimeout>,
    pub(crate) allow_redirects: bool,
    pub(crate) max_redirects: usize,
    pub(crate) raise_for_status: Option<StatusCheck>,
    /// The path and query as written in the URL string, kept only when `url` serialises
    /// them differently (it percent-encodes and normalises; see [`RequestBuilder::encoded`]).
    pub(crate) raw_target: Option<String>,
    /// Send `raw_target` instead of `url`'s path and query.
    pub(crate) encoded: bool,
    /// The request's own middlewares, if it has any or opts out of the session's.
    pub(crate) middlewares: Option<Box<RequestMiddlewares>>,
}

/// Without the URL's userinfo, credential fields' values, or the body.
impl std::fmt::Debug for RequestSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSpec")
            .field("method", &self.method)
            .field("url", &format_args!("{}", Redacted(&self.url)))
            .field("headers", &Fields(&self.headers))
            .field("conn_settings", &self.conn_settings)
            .field("timeout", &self.timeout)
            .field("allow_redirects", &self.allow_redirects)
            .field("max_redirects", &self.max_redirects)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder {
    pub(crate) fn new(session: ClientSession, method: Method, url: &str) -> Self {
        let raw = url;
        let spec = session.resolve_url(url).map(|url| {
            // aiohttp: `head()` does not follow redirects unless asked.
            let allow_redirects = method != Method::HEAD;
            let raw_target = raw_target(raw, &url);
            RequestSpec {
                method,
                url,
                headers: HeaderMap::new(),
                body: None,
                stream: None,
                conn_settings: ConnSettings::default(),
                timeout: None,
                allow_redirects,
                max_redirects: session.inner.max_redirects,
                raise_for_status: None,
                raw_target,
                encoded: false,
                middlewares: None,
            }
        });
        RequestBuilder { session, spec, sending: Sending::default() }
    }

    fn with(mut self, f: impl FnOnce(&mut RequestSpec) -> Result<(), Error>) -> Self {
        if let Ok(spec) = &mut self.spec
            && let Err(e) = f(spec)
        {
            self.spec = Err(e.with_url(&spec.url));
        }
        self
    }

    /// Adds query parameters, multi-valued and in order, after any the URL has, encoded as
    /// aiohttp (yarl) encodes them: space as `+`, and `&`, `=`, `+`, `;`, `#` and non-ASCII
    /// percent-encoded.
    ///
    /// `params` is anything serde serializes as a urlencoded form: pairs
    /// (`&[("a", "1"), ("a", "2")]`), a map, or a struct whose fields are the names, where a
    /// sequence repeats its name (`tag: vec!["x", "y"]` is `tag=x&tag=y`) and `None` is left
    /// out. A value that cannot be a query (a nested struct) makes `send` fail.
    ///
    /// ```
    /// # let session = tandem_client::ClientSession::new();
    /// #[derive(serde::Serialize)]
    /// struct Search<'a> {
    ///     q: &'a str,
    ///     tag: Vec<&'a str>,
    ///     page: Option<u32>,
    /// }
    ///
    /// let request = session
    ///     .get("http://127.0.0.1:8080/search")
    ///     .query(&Search { q: "a b", tag: vec!["x", "y"], page: None });
    /// // Sends GET /search?q=a+b&tag=x&tag=y
    /// ```
    pub fn query<T: serde::Serialize + ?Sized>(self, params: &T) -> Self {
        let pairs = urlencoded_pairs(params);
        self.with(|spec| {
            let pairs = pairs?;
            let mut query = spec.url.query().unwrap_or_default().to_owned();
            for (k, v) in &pairs {
                if !query.is_empty() {
                    query.push('&');
                }
                quote_query_part(k, &mut query);
                query.push('=');
                quote_query_part(v, &mut query);
            }
            Arc::make_mut(&mut spec.url).set_query(Some(&query));
            if let Some(raw) = &mut spec.raw_target {
                let mut sep = if raw.contains('?') { '&' } else { '?' };
                for (k, v) in &pairs {
                    raw.push(sep);
                    sep = '&';
                    quote_query_part(k, raw);
                    raw.push('=');
                    quote_query_part(v, raw);
                }
            }
            Ok(())
        })
    }

    /// aiohttp's `encoded=True`: send the URL's path and query exactly as written, without
    /// the normalising and quoting URL parsing does.
    ///
    /// By default the URL is parsed as a WHATWG URL (as yarl parses it for aiohttp), which
    /// keeps existing `%XX` escapes as they are (`%2F` is not decoded, `%7e` not
    /// upper-cased) but percent-encodes what may not appear (space, non-ASCII, `"`, `<`,
    /// `>`, `` ` ``, `{`, `}` in the path; `'` in the query), removes `.` and `..` segments
    /// (`%2e%2e` counts as `..`), and turns `\` into `/`. With `encoded(true)` none of that
    /// happens to the path and query; the target must still be visible ASCII, or `send`
    /// fails before connecting. Query pairs from [`query`](Self::query) are appended,
    /// encoded. It applies to an absolute URL and the first hop only: a relative URL is
    /// joined to the base URL by the WHATWG rules, and a redirect's `Location` is parsed.
    pub fn encoded(self, yes: bool) -> Self {
        self.with(|spec| {
            spec.encoded = yes;
            Ok(())
        })
    }

    /// Adds a header. Names are case-insensitive; a value with CR, LF, NUL or another control
    /// byte is refused here, so it can never split the request.
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        self.with(|spec| {
            let name = name.try_into().map_err(|e| Error::new(Kind::Request, e.into()))?;
            let value = value.try_into().map_err(|e| Error::new(Kind::Request, e.into()))?;
            spec.headers.append(name, value);
            Ok(())
        })
    }

    /// Adds a cookie for this request only, merged with the jar's. It goes in the `Cookie`
    /// field, so a cross-origin redirect drops it (aiohttp #12550).
    pub fn cookie(self, name: &str, value: &str) -> Self {
        self.with(|spec| {
            let mut line = spec
                .headers
                .get(header::COOKIE)
                .map(|v| [v.as_bytes(), b"; "].concat())
                .unwrap_or_default();
            line.extend_from_slice(format!("{name}={value}").as_bytes());
            let invalid = name.is_empty() || name.contains(['=', ';', ' ']) || value.contains(';');
            if invalid {
                return Err(Error::new(Kind::Request, "invalid cookie name or value"));
            }
            let value = HeaderValue::from_bytes(&line).map_err(|e| Error::new(Kind::Request, e))?;
            spec.headers.insert(header::COOKIE, value);
            Ok(())
        })
    }

    /// Adds every header of `headers`.
    pub fn headers(self, headers: &HeaderMap) -> Self {
        self.with(|spec| {
            for (name, value) in headers {
                spec.headers.append(name, value.clone());
            }
            Ok(())
        })
    }

    /// The body: bytes (`application/octet-stream`) or text (`text/plain; charset=utf-8`),
    /// unless a `Content-Type` header says otherwise.
    pub fn body(self, body: impl Into<Body>) -> Self {
        let body = body.into();
        self.with(|spec| {
            spec.body = Some(body);
            spec.stream = None;
            Ok(())
        })
    }

    /// A body read from `stream` as it is sent, with chunked framing
    /// (`application/octet-stream` unless a `Content-Type` header says otherwise): a file
    /// through `tokio_util::io::ReaderStream`, or another response's body. It can be sent
    /// only once: a redirect that would resend it (307, 308) is a payload error, and a
    /// request that fails on a pooled connection is not retried.
    pub fn body_stream<S, E>(self, stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        self.with(|spec| {
            spec.body = None;
            spec.stream = Some(StreamBody(Box::pin(stream.map_err(Into::into)), None));
            Ok(())
        })
    }

    /// A body read from `file`, from its position to its end, as aiohttp's
    /// `data=open(path, "rb")` (`application/octet-stream` unless a `Content-Type` header
    /// says otherwise), with `Content-Length` of that length as it is now. On a plain TCP
    /// connection it goes out with `sendfile(2)`, never copied through this process; over
    /// TLS or HTTP/2 it is read a piece at a time. A file that grows meanwhile is sent up to
    /// that length; one that shrinks fails the request, closing its connection. Like a
    /// [`body_stream`](Self::body_stream) it is sent once: a 307 or 308 that would resend
    /// it is a payload error, and it is not retried. A file with no size of its own (a pipe,
    /// a device, a `/proc` file) is read from its position until it ends and sent chunked.
    pub fn body_file(self, file: std::fs::File) -> Self {
        self.with(|spec| {
            let body = FileBody::new(file).map_err(|e| Error::new(Kind::Request, e))?;
            let body = Arc::new(body);
            let length = body.len().map(|len| Length::File(Arc::clone(&body), len));
            let pieces = body.pieces().map_err(Into::into);
            spec.body = None;
            spec.stream = Some(StreamBody(Box::pin(pieces), length));
            Ok(())
        })
    }

    /// A urlencoded form body (`application/x-www-form-urlencoded`) from anything serde
    /// serializes as one: pairs, a map, or a struct, where a sequence repeats its name, as
    /// for [`query`](Self::query). A value that cannot be a form makes `send` fail.
    pub fn form<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
        let encoded = serde_html_form::to_string(form).map_err(|e| Error::new(Kind::Request, e));
        self.with(|spec| {
            spec.body = Some(Body {
                bytes: encoded?.into(),
                content_type: "application/x-www-form-urlencoded",
            });
            Ok(())
        })
    }

    /// A `multipart/form-data` body: text fields and files. Files added with
    /// [`FormData::file_path`](crate::FormData::file_path) are read from disk as the body
    /// is sent, so such a body is sent once, as a [`body_stream`](Self::body_stream) is;
    /// with `Content-Length` when every file's size is known from its metadata (a regular
    /// file), else with chunked framing. A file whose size changes before it is read whole
    /// fails the request rather than send a body of another length.
    pub fn multipart(self, form: &crate::FormData) -> Self {
        let content_type = form.content_type();
        let form = form.clone();
        self.with(|spec| {
            let value =
                HeaderValue::try_from(content_type).map_err(|e| Error::new(Kind::Request, e))?;
            spec.headers.insert(header::CONTENT_TYPE, value);
            if form.has_files() {
                let len = form.content_length();
                let stream = form.into_stream().map_err(Into::into);
                spec.body = None;
                spec.stream = Some(StreamBody(Box::pin(stream), len.map(Length::Bytes)));
            } else {
                let bytes = form.to_bytes().map_err(|e| Error::new(Kind::Request, e))?;
                spec.body = Some(Body { bytes, content_type: "multipart/form-data" });
                spec.stream = None;
            }
            Ok(())
        })
    }

    /// A `multipart/*` body from a [`MultipartWriter`](crate::MultipartWriter), sent with
    /// chunked framing as it is produced; like a [`body_stream`](Self::body_stream) it is
    /// sent once.
    pub fn multipart_writer(self, writer: crate::MultipartWriter) -> Self {
        let content_type = writer.content_type();
        self.with(|spec| {
            let value =
                HeaderValue::try_from(content_type).map_err(|e| Error::new(Kind::Request, e))?;
            spec.headers.insert(header::CONTENT_TYPE, value);
            spec.body = None;
            spec.stream = Some(StreamBody(writer.into_stream(), None));
            Ok(())
        })
    }

    /// A form as aiohttp's `data=FormData(...)` sends it: urlencoded when it holds only text
    /// fields, else as [`multipart`](Self::multipart).
    pub fn data(self, form: &crate::FormData) -> Self {
        if form.is_multipart() {
            return self.multipart(form);
        }
        let bytes = Bytes::from(form.to_urlencoded());
        self.with(|spec| {
            spec.body = Some(Body { bytes, content_type: "application/x-www-form-urlencoded" });
            spec.stream = None;
            Ok(())
        })
    }

    /// A JSON body (`application/json`), serialised with the session's
    /// [`json_serialize`](crate::ClientSessionBuilder::json_serialize) hook if it has one,
    /// else with `serde_json`.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        let encoded = match &self.session.inner.json_serialize {
            Some(hook) => serde_json::to_value(value)
                .map_err(|e| Error::new(Kind::Request, e))
                .and_then(|v| (hook.0)(&v).map_err(|e| Error::new(Kind::Request, e)))
                .map(String::into_bytes),
            None => serde_json::to_vec(value).map_err(|e| Error::new(Kind::Request, e)),
        };
        self.with(|spec| {
            let encoded = encoded?;
            spec.body = Some(Body { bytes: encoded.into(), content_type: "application/json" });
            Ok(())
        })
    }

    /// aiohttp's `expect100=True`: sends `Expect: 100-continue` and holds the body back
    /// until the server answers `100 Continue`, so a server that refuses the request (401,
    /// 413, 417...) can do so before a large body is sent. A final status that comes first
    /// is the response, and the body is never sent (the connection is then closed, not
    /// pooled); no answer within the session's
    /// [`expect_continue_timeout`](crate::ClientSessionBuilder::expect_continue_timeout)
    /// sends the body anyway. A request without a body sends the field and waits for
    /// nothing.
    pub fn expect_continue(self, yes: bool) -> Self {
        self.with(|spec| {
            if yes {
                spec.headers.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
            } else {
                spec.headers.remove(header::EXPECT);
            }
            Ok(())
        })
    }

    /// A bearer token: `Authorization: Bearer <token>`, which a cross-origin redirect
    /// drops, marked sensitive so no `Debug` output shows it.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.with(|spec| {
            let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|e| Error::new(Kind::Request, e))?;
            value.set_sensitive(true);
            spec.headers.insert(header::AUTHORIZATION, value);
            Ok(())
        })
    }

    /// HTTP Basic credentials: an `Authorization` header, which a cross-origin redirect
    /// drops.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let value = basic_auth_value(user, password);
        self.with(|spec| {
            spec.headers.insert(header::AUTHORIZATION, value?);
            Ok(())
        })
    }

    /// Sends this request through `proxy`, instead of the session's.
    pub fn proxy(self, proxy: tandem_connect::Proxy) -> Self {
        self.with(|spec| {
            spec.conn_settings.proxy = Some(proxy);
            Ok(())
        })
    }

    /// A value the session's [`Trace`](crate::Trace) hooks get with every event of this
    /// request, its redirects and its connection (aiohttp's `trace_request_ctx=`): read it
    /// with [`TraceRequestCtx::get`](crate::TraceRequestCtx::get).
    pub fn trace_request_ctx(self, value: impl std::any::Any + Send + Sync) -> Self {
        self.with(|spec| {
            spec.conn_settings.trace_ctx = crate::trace::TraceRequestCtx::new(value);
            Ok(())
        })
    }

    /// TLS settings for this request (aiohttp's `ssl=`): verification off, a CA, a client
    /// certificate or a pinned fingerprint. Its connections are pooled apart.
    pub fn tls(self, tls: tandem_connect::TlsConfig) -> Self {
        self.with(|spec| {
            spec.conn_settings.tls = Some(tls);
            Ok(())
        })
    }

    /// The name sent as SNI and checked against the server's certificate, instead of the
    /// URL's host (aiohttp's `server_hostname=`): for an https URL that names the server by
    /// address, or through a name only the certificate knows. Its connections are pooled
    /// apart. As in aiohttp, it holds for every redirect hop too.
    ///
    /// ```no_run
    /// # async fn f(session: tandem_client::ClientSession) -> Result<(), tandem_client::Error> {
    /// let resp = session.get("https://10.0.0.7/health").server_hostname("api.internal").send().await?;
    /// # Ok(()) }
    /// ```
    pub fn server_hostname(self, name: &str) -> Self {
        self.with(|spec| {
            spec.conn_settings.server_hostname = Some(name.into());
            Ok(())
        })
    }

    /// Whether this request may go over HTTP/2, instead of the session's
    /// [`http2`](crate::ClientSessionBuilder::http2) setting: [`Http2::Never`](crate::Http2)
    /// keeps it on HTTP/1.1, [`Http2::PriorKnowledge`](crate::Http2) sends it over HTTP/2
    /// without asking (h2c on plain `http`). Each redirect hop chooses again by the same
    /// setting.
    pub fn http2(self, mode: tandem_connect::Http2) -> Self {
        self.with(|spec| {
            spec.conn_settings.http2 = Some(mode);
            Ok(())
        })
    }

    /// This request's timeouts, instead of the session's.
    pub fn timeout(self, timeout: ClientTimeout) -> Self {
        self.with(|spec| {
            spec.timeout = Some(timeout);
            Ok(())
        })
    }

    /// Shorthand for a `total` timeout with the session's other limits.
    pub fn total_timeout(self, total: Duration) -> Self {
        let session_timeout = self.session.inner.timeout;
        self.with(|spec| {
            let base = spec.timeout.unwrap_or(session_timeout);
            spec.timeout = Some(ClientTimeout { total: Some(total), ..base });
            Ok(())
        })
    }

    /// Whether to follow redirects (default: yes, except for HEAD).
    pub fn allow_redirects(self, yes: bool) -> Self {
        self.with(|spec| {
            spec.allow_redirects = yes;
            Ok(())
        })
    }

    /// The longest status line of this request's responses, instead of the session's
    /// [`max_line_size`](crate::ClientSessionBuilder::max_line_size) (aiohttp's per-request
    /// `max_line_size=`).
    pub fn max_line_size(self, bytes: usize) -> Self {
        self.with(|spec| {
            spec.conn_settings.read_limits.get_or_insert_default().max_line_size = Some(bytes);
            Ok(())
        })
    }

    /// The longest header field line of this request's responses, instead of the session's
    /// [`max_field_size`](crate::ClientSessionBuilder::max_field_size).
    pub fn max_field_size(self, bytes: usize) -> Self {
        self.with(|spec| {
            spec.conn_settings.read_limits.get_or_insert_default().max_field_size = Some(bytes);
            Ok(())
        })
    }

    /// The most header fields in this request's responses, instead of the session's
    /// [`max_headers`](crate::ClientSessionBuilder::max_headers).
    pub fn max_headers(self, count: usize) -> Self {
        self.with(|spec| {
            spec.conn_settings.read_limits.get_or_insert_default().max_headers = Some(count);
            Ok(())
        })
    }

    /// The most bytes one read of this request's response body asks for, instead of the
    /// session's [`read_bufsize`](crate::ClientSessionBuilder::read_bufsize).
    pub fn read_bufsize(self, bytes: usize) -> Self {
        self.with(|spec| {
            spec.conn_settings.read_limits.get_or_insert_default().read_bufsize = Some(bytes);
            Ok(())
        })
    }

    /// How many redirects to follow before failing with too-many-redirects (default 10).
    /// `n` redirects are followed and the next one fails, as reqwest and awc count; aiohttp
    /// fails on the `n`th itself, and treats 0 as no limit, where 0 here follows none.
    pub fn max_redirects(self, n: usize) -> Self {
        self.with(|spec| {
            spec.max_redirects = n;
            Ok(())
        })
    }

    /// Whether a status of 400 or more is an error, instead of the session's setting.
    pub fn raise_for_status(self, yes: bool) -> Self {
        self.with(|spec| {
            spec.raise_for_status = Some(StatusCheck::from_bool(yes));
            Ok(())
        })
    }

    /// Asks `check` about the final response, instead of the session's setting: as
    /// [`ClientSessionBuilder::raise_for_status_with`](crate::ClientSessionBuilder::raise_for_status_with).
    pub fn raise_for_status_with<F>(self, check: F) -> Self
    where
        F: for<'a> Fn(&'a mut ClientResponse) -> crate::BoxFuture<'a, Result<(), BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.with(|spec| {
            spec.raise_for_status = Some(StatusCheck::hook(check));
            Ok(())
        })
    }

    /// Automatic fields this request leaves out, besides the session's (aiohttp's
    /// `skip_auto_headers=`): see
    /// [`ClientSessionBuilder::skip_auto_headers`](crate::ClientSessionBuilder::skip_auto_headers).
    pub fn skip_auto_headers<I>(self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: TryInto<HeaderName>,
    {
        let names: Result<Vec<HeaderName>, _> = names.into_iter().map(TryInto::try_into).collect();
        self.with(|spec| {
            let names = names.map_err(|_| Error::new(Kind::Request, "invalid header name"))?;
            spec.conn_settings.skip_auto_headers.extend(names);
            Ok(())
        })
    }

    /// Whether a response body that has neither a `Content-Length` nor chunked framing is
    /// read until the server closes the connection (default: yes, as HTTP says and aiohttp's
    /// `read_until_eof=True`). `false` reads such a body as empty and closes the
    /// connection: for a server that leaves such a connection open after a body-less answer.
    pub fn read_until_eof(self, yes: bool) -> Self {
        self.with(|spec| {
            spec.conn_settings.empty_until_close = !yes;
            Ok(())
        })
    }

    /// The HTTP version this request is written in, instead of the session's:
    /// [`ClientSessionBuilder::version`](crate::ClientSessionBuilder::version).
    pub fn version(self, version: http::Version) -> Self {
        self.with(|spec| {
            check_version(version)?;
            spec.conn_settings.version = Some(version);
            Ok(())
        })
    }

    /// Adds a middleware for this request only (aiohttp's per-request `middlewares=`). It
    /// runs inside the session's, which still run unless
    /// [`session_middlewares(false)`](Self::session_middlewares) is given; aiohttp's
    /// per-request list, which replaces the session's, is both together.
    pub fn middleware(self, middleware: impl Middleware) -> Self {
        let middleware: Arc<dyn Middleware> = Arc::new(middleware);
        self.with(|spec| {
            spec.middlewares.get_or_insert_default().list.push(middleware);
            Ok(())
        })
    }

    /// Whether the session's middlewares run for this request (default: yes). A middleware
    /// that sends requests of its own through the session (fetching a token) sends them
    /// with `false`, so they do not pass through it again (aiohttp's `middlewares=()`).
    pub fn session_middlewares(self, yes: bool) -> Self {
        self.with(|spec| {
            spec.middlewares.get_or_insert_default().skip_session = !yes;
            Ok(())
        })
    }

    /// Sends the body `coding`-encoded, with `Content-Encoding` saying so (aiohttp's
    /// `compress=`; `Compression::Deflate` is its `compress=True`): an in-memory body is
    /// encoded whole, a streamed one as it streams. A request that names a
    /// `Content-Encoding` of its own fails, as in aiohttp. Without the `compression`
    /// feature, `send` fails.
    pub fn compress(mut self, coding: Compression) -> Self {
        self.sending.compress = Some(coding);
        self
    }

    /// Sends an in-memory body with chunked framing instead of `Content-Length` (aiohttp's
    /// `chunked=True`), in pieces of 64 KiB. Like a streamed body it is then sent once: not
    /// again on a 307 or 308, nor on a stale pooled connection.
    pub fn chunked(mut self, yes: bool) -> Self {
        self.sending.chunked = yes;
        self
    }

    /// Calls `progress` with the number of body bytes written so far, after each piece of a
    /// streamed (or [`chunked`](Self::chunked)) body is written (aiohttp 3.14's
    /// `output_size`); the last call has the whole body's size. An in-memory body is then
    /// sent as with [`chunked(true)`](Self::chunked), so that its pieces can be counted.
    pub fn upload_progress(mut self, progress: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.sending.progress = Some(Arc::new(progress));
        self
    }

    /// Sends the request and reads the response head; the body is read from the
    /// [`ClientResponse`].
    pub async fn send(self) -> Result<ClientResponse, Error> {
        let mut spec = self.spec?;
        self.sending.apply(&mut spec).map_err(|e| e.with_url(&spec.url))?;
        // Boxed: the request's state machine (parser, buffers, timers, redirect loop) is
        // several KiB, too much to move around inside every caller's future.
        Box::pin(crate::execute::execute(&self.session, spec)).await
    }
}

impl Sending {
    /// Turns the body into what goes on the wire: encoded, cut into chunks, watched.
    fn apply(self, spec: &mut RequestSpec) -> Result<(), Error> {
        if let Some(coding) = self.compress {
            crate::body_encoding::compress(spec, coding)?;
        }
        let chunked = self.chunked || self.progress.is_some();
        if chunked && let Some(body) = spec.body.take() {
            if !spec.headers.contains_key(header::CONTENT_TYPE) {
                spec.headers
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(body.content_type));
            }
            let pieces: Vec<Result<Bytes, BoxError>> =
                body.bytes.chunks(CHUNKED_PIECE).map(|p| Ok(body.bytes.slice_ref(p))).collect();
            spec.stream = Some(StreamBody(Box::pin(futures_util::stream::iter(pieces)), None));
        }
        if self.chunked
            && let Some(stream) = &mut spec.stream
        {
            stream.1 = None;
        }
        if let Some(progress) = self.progress
            && let Some(StreamBody(stream, len)) = spec.stream.take()
        {
            // A piece is counted when the writer asks for the next one: by then it is written.
            let watched = futures_util::stream::unfold(
                (stream, 0u64, 0u64, progress),
                |(mut stream, written, pending, progress)| async move {
                    let written = written + pending;
                    if pending > 0 {
                        progress(written);
                    }
                    let item = stream.next().await?;
                    let len = item.as_ref().map_or(0, |b| b.len() as u64);
                    Some((item, (stream, written, len, progress)))
                },
            );
            spec.stream = Some(StreamBody(Box::pin(watched), len.as_ref().map(Length::streamed)));
        }
        Ok(())
    }
}

/// The path and query of the absolute URL `raw` as written (without the fragment), if they
/// differ from how `url`, parsed from it, serialises them; `None` when they are the same
/// (most URLs), so keeping the raw form costs nothing then.
fn raw_target(raw: &str, url: &Url) -> Option<String> {
    // Only for an absolute URL: a relative one's query may itself hold "://".
    let scheme = url.scheme();
    if !raw.get(..scheme.len())?.eq_ignore_ascii_case(scheme) {
        return None;
    }
    let rest = raw[scheme.len()..].strip_prefix("://")?;
    let target = &rest[rest.find(['/', '?', '#'])?..];
    kept_target(target, url)
}

/// `target` (a path and query, perhaps with a fragment), when `url` serialises them
/// differently: the bytes to send instead.
pub(crate) fn kept_target(target: &str, url: &Url) -> Option<String> {
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    let parsed = &url[url::Position::BeforePath..url::Position::AfterQuery];
    match target {
        "" => None,
        t if t == parsed => None,
        t if t.starts_with('?') => Some(format!("/{t}")),
        t => Some(t.to_owned()),
    }
}

/// HTTP/1.1 or HTTP/1.0: the versions a request can be written in.
pub(crate) fn check_version(version: http::Version) -> Result<(), Error> {
    if version == http::Version::HTTP_11 || version == http::Version::HTTP_10 {
        Ok(())
    } else {
        Err(Error::new(Kind::Request, format!("cannot send a request as {version:?}")))
    }
}

/// `Basic` + base64(`user:password`).
pub(crate) fn basic_auth_value(user: &str, password: &str) -> Result<HeaderValue, Error> {
    if user.contains(':') {
        return Err(Error::new(Kind::Request, "a Basic auth login cannot contain ':'"));
    }
    let value = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
    HeaderValue::try_from(value).map_err(|e| Error::new(Kind::Request, e))
}

/// `params` serialized as a urlencoded form and split back into decoded pairs, so that
/// [`RequestBuilder::query`] quotes them as yarl does rather than as a form does.
fn urlencoded_pairs<T: serde::Serialize + ?Sized>(
    params: &T,
) -> Result<Vec<(String, String)>, Error> {
    let encoded = serde_html_form::to_string(params).map_err(|e| Error::new(Kind::Request, e))?;
    Ok(form_urlencoded::parse(encoded.as_bytes()).into_owned().collect())
}

/// yarl's query-part quoter (`safe="?/:@"`, `qs=True`): unreserved characters, `!$'()*,`
/// and `?/:@` stay; space becomes `+`; everything else is percent-encoded in upper case.
fn quote_query_part(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'!'
            | b'$'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b','
            | b'?'
            | b'/'
            | b':'
            | b'@' => out.push(char::from(b)),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_base64_of_user_and_password() {
        assert_eq!(basic_auth_value("user", "pass").unwrap(), "Basic dXNlcjpwYXNz");
        assert!(basic_auth_value("a:b", "c").is_err());
    }

    #[test]
    fn raw_target_is_kept_only_when_parsing_changes_it() {
        let raw = |s: &str| raw_target(s, &Url::parse(s).unwrap());
        assert_eq!(raw("http://a/x/y?q=1#f"), None);
        assert_eq!(raw("http://a"), None);
        assert_eq!(raw("http://a/%7e/b"), None);
        assert_eq!(raw("http://a/x/../y"), Some("/x/../y".to_owned()));
        assert_eq!(raw("http://a/{x}?q='1'#frag"), Some("/{x}?q='1'".to_owned()));
        assert_eq!(raw("http://a?q='1'"), Some("/?q='1'".to_owned()));
        let base = Url::parse("http://a/v1/").unwrap();
        assert_eq!(
            raw_target("x?next=http://b/{c}", &base.join("x?next=http://b/{c}").unwrap()),
            None
        );
    }

    #[test]
    fn query_quoting_matches_yarl() {
        let mut out = String::new();
        quote_query_part("a b&c=d+e;f#g/h?i:j@k~é", &mut out);
        assert_eq!(out, "a+b%26c%3Dd%2Be%3Bf%23g/h?i:j@k~%C3%A9");
    }
}
