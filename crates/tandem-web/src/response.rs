//! Responses: status, reason, headers, cookies and a body that is empty, whole or streamed.

use std::{fmt, pin::Pin, sync::OnceLock};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde::Serialize;

/// A stream of body chunks.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, crate::Error>> + Send>>;

/// A response body.
pub enum Body {
    /// No body.
    Empty,
    /// The whole body, known up front: sent with `Content-Length`.
    Full(Bytes),
    /// A body produced as it is sent: `Transfer-Encoding: chunked` on HTTP/1.1, or until
    /// close on HTTP/1.0, unless the response sets `Content-Length` itself, as a file does.
    Stream(BodyStream),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Full(b) => write!(f, "Body::Full({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

/// An HTTP response: aiohttp's `web.Response` and, with [`Response::stream`],
/// `web.StreamResponse`.
///
/// ```
/// use tandem_web::{Response, json_response};
///
/// let hello = Response::text("Hello, World!");
/// assert_eq!(hello.headers()["content-type"], "text/plain; charset=utf-8");
///
/// let json = json_response(&serde_json::json!({"message": "Hello, World!"}));
/// assert_eq!(json.headers()["content-type"], "application/json");
/// ```
pub struct Response {
    // Boxed: a response travels by value from the handler through the middlewares to the
    // writer, and a pointer moves cheaper than the 180-odd bytes below.
    pub(crate) inner: Box<ResponseInner>,
}

pub(crate) struct ResponseInner {
    pub(crate) status: StatusCode,
    pub(crate) reason: Option<String>,
    /// The headers, built on first use. Until then the response's only field is
    /// `content_type`, which the writer copies straight from the static string: most
    /// handlers set nothing else, and never building the map saves two allocations, a hash
    /// and an insert per response.
    headers: OnceLock<HeaderMap>,
    /// The `Content-Type` a constructor set, while `headers` is not built; once it is, the
    /// map holds the field and this is stale.
    content_type: Option<&'static str>,
    pub(crate) body: Body,
    /// Set by `enable_compression`: compress the body if the client accepts it.
    pub(crate) compress: bool,
    /// Set by `on_upgrade`: what takes the connection over after a 101.
    pub(crate) upgrade: Option<crate::upgrade::OnUpgrade>,
    /// The error this response answers, if the framework made it from one: the
    /// application's error renderer makes the response sent instead.
    pub(crate) error: Option<crate::HttpError>,
    /// Values a handler or middleware attaches to the response for the middlewares around
    /// it (aiohttp's `ResponseKey` storage); never sent.
    extensions: http::Extensions,
    /// Set by `force_close`: the connection closes after this response.
    pub(crate) force_close: bool,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.inner.status)
            .field("reason", &self.inner.reason)
            .field("headers", self.headers())
            .field("body", &self.inner.body)
            .field("compress", &self.inner.compress)
            .field("upgrade", &self.inner.upgrade.is_some())
            .finish()
    }
}

impl Default for Response {
    fn default() -> Self {
        Response::new(StatusCode::OK)
    }
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: StatusCode) -> Self {
        // Written into the box rather than built and then boxed, which would copy it from
        // the stack on every response.
        Response {
            inner: Box::write(
                Box::new_uninit(),
                ResponseInner {
                    status,
                    reason: None,
                    headers: OnceLock::new(),
                    content_type: None,
                    body: Body::Empty,
                    compress: false,
                    upgrade: None,
                    error: None,
                    extensions: http::Extensions::new(),
                    force_close: false,
                },
            ),
        }
    }

    /// A 200 response with a whole body and its `Content-Type`, set without parsing either:
    /// the cheapest way to answer.
    ///
    /// ```
    /// use tandem_web::Response;
    ///
    /// let hello = Response::with_content_type("text/plain", "Hello, World!");
    /// assert_eq!(hello.headers()["content-type"], "text/plain");
    /// ```
    pub fn with_content_type(content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self::with_body(content_type, body.into())
    }

    fn with_body(content_type: &'static str, body: Bytes) -> Self {
        let mut response = Response::new(StatusCode::OK);
        response.inner.content_type = Some(content_type);
        response.inner.body = Body::Full(body);
        response
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(text: impl Into<String>) -> Self {
        Self::with_body("text/plain; charset=utf-8", Bytes::from(text.into()))
    }

    /// A `text/html; charset=utf-8` response.
    pub fn html(html: impl Into<String>) -> Self {
        Self::with_body("text/html; charset=utf-8", Bytes::from(html.into()))
    }

    /// An `application/octet-stream` response.
    pub fn bytes(body: impl Into<Bytes>) -> Self {
        Self::with_body("application/octet-stream", body.into())
    }

    /// A response whose body is sent as `stream` produces it: aiohttp's `StreamResponse`.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use futures_util::stream;
    /// use tandem_web::Response;
    ///
    /// let chunks = stream::iter(["one ", "two"].map(|s| Ok(Bytes::from(s))));
    /// let response = Response::stream(chunks);
    /// ```
    pub fn stream<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, crate::Error>> + Send + 'static,
    {
        let mut response = Response::new(StatusCode::OK);
        response.inner.body = Body::Stream(stream.boxed());
        response
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// Sets the status.
    pub fn set_status(&mut self, status: StatusCode) {
        self.inner.status = status;
    }

    /// Sets the status, builder style.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = status;
        self
    }

    /// The reason phrase, if one was set; otherwise the status's canonical one is sent.
    pub fn reason(&self) -> Option<&str> {
        self.inner.reason.as_deref()
    }

    /// Sets the reason phrase. One holding CR, LF or another control byte is refused when
    /// the response is written (the client gets a 500 instead): response splitting can
    /// never reach the wire.
    pub fn set_reason(&mut self, reason: impl Into<String>) {
        self.inner.reason = Some(reason.into());
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers.get_or_init(|| self.inner.initial_headers())
    }

    /// Values attached to this response for the middlewares around its handler, keyed by
    /// type: aiohttp's `response[ResponseKey]` storage. They are never sent.
    ///
    /// ```
    /// use tandem_web::{Next, Request, Response};
    ///
    /// #[derive(Clone)]
    /// struct CacheFor(u32);
    ///
    /// async fn cache_headers(req: Request, next: Next) -> Response {
    ///     let response = next.run(req).await;
    ///     match response.extensions().get::<CacheFor>().map(|c| c.0) {
    ///         Some(seconds) => response.with_header("cache-control", &format!("max-age={seconds}")),
    ///         None => response,
    ///     }
    /// }
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.inner.extensions
    }

    /// Values attached to this response, to change.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.inner.extensions
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        let inner = &mut *self.inner;
        if inner.headers.get().is_none() {
            inner.headers = OnceLock::from(inner.initial_headers());
        }
        inner.headers.get_mut().unwrap_or_else(|| unreachable!("the map was built above"))
    }

    /// The headers if any beyond the constructor's `Content-Type` were asked for, else that
    /// `Content-Type`: what the writer needs, without building a map.
    pub(crate) fn wire_headers(&self) -> Result<&HeaderMap, Option<&'static str>> {
        self.inner.headers.get().ok_or(self.inner.content_type)
    }

    /// Sets a header, replacing any of that name, builder style, as
    /// [`HttpError::with_header`](crate::HttpError::with_header) does. An invalid name or
    /// value (a CR or LF in it, say) is dropped, never written.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers_mut().insert(n, v);
        }
        self
    }

    /// Adds a header beside any of that name, builder style. An invalid name or value is
    /// dropped, never written.
    #[must_use]
    pub fn append_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers_mut().append(n, v);
        }
        self
    }

    /// Sets `Content-Type`.
    pub fn set_content_type(&mut self, content_type: &str) -> Result<(), crate::Error> {
        let value = HeaderValue::try_from(content_type)?;
        self.headers_mut().insert(header::CONTENT_TYPE, value);
        Ok(())
    }

    /// The media type of `Content-Type`, without its parameters: aiohttp's
    /// `resp.content_type`.
    pub fn content_type(&self) -> Option<&str> {
        let value = match self.wire_headers() {
            Ok(headers) => headers.get(header::CONTENT_TYPE)?.to_str().ok()?,
            Err(content_type) => content_type?,
        };
        Some(value.split(';').next().unwrap_or_default().trim())
    }

    /// The `charset` parameter of `Content-Type`, lowercased: aiohttp's `resp.charset`.
    pub fn charset(&self) -> Option<String> {
        let value = match self.wire_headers() {
            Ok(headers) => headers.get(header::CONTENT_TYPE)?.to_str().ok()?,
            Err(content_type) => content_type?,
        };
        crate::charset::charset_of(value).map(|charset| charset.to_ascii_lowercase())
    }

    /// Sets or, with `None`, removes the `charset` parameter of `Content-Type`, keeping
    /// the media type (`application/octet-stream` if there was none), as aiohttp's
    /// `resp.charset = ...`. A charset that is not a token is refused.
    ///
    /// ```
    /// use tandem_web::Response;
    ///
    /// let mut response = Response::html("<p>été</p>");
    /// response.set_charset(Some("latin-1"))?;
    /// assert_eq!(response.headers()["content-type"], "text/html; charset=latin-1");
    /// assert_eq!(response.charset().as_deref(), Some("latin-1"));
    /// # Ok::<(), tandem_web::Error>(())
    /// ```
    pub fn set_charset(&mut self, charset: Option<&str>) -> Result<(), crate::Error> {
        let media = self.content_type().unwrap_or("application/octet-stream").to_owned();
        let value = match charset {
            Some(charset) if !charset.is_empty() && charset.bytes().all(is_token_byte) => {
                format!("{media}; charset={}", charset.to_ascii_lowercase())
            }
            Some(charset) => {
                return Err(crate::Error::new(format!("not a charset: {charset:?}")));
            }
            None => media,
        };
        self.set_content_type(&value)
    }

    /// The `Content-Length` the response declares, if it sets one: aiohttp's
    /// `resp.content_length`.
    pub fn content_length(&self) -> Option<u64> {
        let headers = self.wire_headers().ok()?;
        headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
    }

    /// Declares the length of a streamed body, so it is sent with `Content-Length`
    /// rather than chunked; a stream that then ends short or runs long closes the
    /// connection. A whole body is always sent with its own length, whatever this says.
    pub fn set_content_length(&mut self, length: u64) {
        self.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }

    /// The `Last-Modified` time, if the response sets a valid one.
    pub fn last_modified(&self) -> Option<std::time::SystemTime> {
        let headers = self.wire_headers().ok()?;
        httpdate::parse_http_date(headers.get(header::LAST_MODIFIED)?.to_str().ok()?).ok()
    }

    /// Sets `Last-Modified` as an HTTP date (whole seconds): aiohttp's
    /// `resp.last_modified = ...`.
    pub fn set_last_modified(&mut self, at: std::time::SystemTime) {
        let value = HeaderValue::try_from(httpdate::fmt_http_date(at))
            .unwrap_or_else(|_| unreachable!("an HTTP date is ASCII"));
        self.headers_mut().insert(header::LAST_MODIFIED, value);
    }

    /// The entity tag and whether it is weak, unquoted, if the response sets one:
    /// aiohttp's `resp.etag`.
    pub fn etag(&self) -> Option<(&str, bool)> {
        let headers = self.wire_headers().ok()?;
        let value = headers.get(header::ETAG)?.to_str().ok()?;
        let (value, weak) = match value.strip_prefix("W/") {
            Some(rest) => (rest, true),
            None => (value, false),
        };
        let tag = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        Some((tag, weak))
    }

    /// Sets `ETag` to `tag`, quoted for you, and marked weak (`W/"…"`) if `weak`: aiohttp's
    /// `resp.etag = ETag(value, is_weak)`. `*` is sent as it is. A tag holding a quote, a
    /// space or a control byte is refused, as aiohttp refuses it.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tandem_web::Response;
    ///
    /// let mut response = Response::text("hello");
    /// response.set_etag("v1", true)?;
    /// response.set_last_modified(UNIX_EPOCH + Duration::from_secs(784_111_777));
    /// assert_eq!(response.headers()["etag"], r#"W/"v1""#);
    /// assert_eq!(response.headers()["last-modified"], "Sun, 06 Nov 1994 08:49:37 GMT");
    /// assert!(response.set_etag("a\"b", false).is_err());
    /// # Ok::<(), tandem_web::Error>(())
    /// ```
    pub fn set_etag(&mut self, tag: &str, weak: bool) -> Result<(), crate::Error> {
        // RFC 9110 §8.8.3's etagc: visible ASCII but the quote, and obs-text.
        let valid = tag.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80);
        if !valid {
            return Err(crate::Error::new(format!("not an entity tag: {tag:?}")));
        }
        let value = match (tag, weak) {
            ("*", _) => "*".to_owned(),
            (tag, true) => format!("W/\"{tag}\""),
            (tag, false) => format!("\"{tag}\""),
        };
        self.headers_mut().insert(header::ETAG, HeaderValue::try_from(value)?);
        Ok(())
    }

    /// Closes the connection once this response is sent (`Connection: close` on
    /// HTTP/1.1; nothing on HTTP/2, whose streams are independent): aiohttp's
    /// `force_close()`.
    pub fn force_close(&mut self) {
        self.inner.force_close = true;
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.inner.body
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: Body) {
        self.inner.body = body;
        // A file `FileResponse` left for the writer to send from is not this body.
        self.inner.extensions.remove::<crate::file_response::FileBody>();
    }

    /// Compresses the body with the best coding the client accepts (br, gzip, deflate),
    /// as aiohttp's `enable_compression()`.
    pub fn enable_compression(&mut self) {
        self.inner.compress = true;
    }

    /// Sets a cookie: aiohttp's `set_cookie`. See [`crate::CookieOptions`] for the
    /// attributes. A name or value that cannot be sent is refused.
    pub fn set_cookie(
        &mut self,
        name: &str,
        value: &str,
        options: &crate::CookieOptions,
    ) -> Result<(), crate::Error> {
        let header = crate::cookies::set_cookie_header(name, value, options)?;
        self.headers_mut().append(header::SET_COOKIE, header);
        Ok(())
    }

    /// Deletes a cookie: sets it empty and expired, with the same path and domain.
    pub fn del_cookie(
        &mut self,
        name: &str,
        path: &str,
        domain: Option<&str>,
    ) -> Result<(), crate::Error> {
        let options = crate::CookieOptions {
            path: Some(path.to_owned()),
            domain: domain.map(str::to_owned),
            max_age: Some(0),
            expires: Some(std::time::UNIX_EPOCH),
            ..crate::CookieOptions::default()
        };
        self.set_cookie(name, "", &options)
    }
}

impl ResponseInner {
    /// The map the headers start as: the constructor's `Content-Type`, if any.
    fn initial_headers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(content_type) = self.content_type {
            map.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        map
    }
}

/// RFC 9110's `tchar`: what a token, such as a charset's name, is made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A JSON response: aiohttp's `web.json_response`. A value that cannot be serialised gives
/// a 500, logged.
pub fn json_response<T: Serialize + ?Sized>(value: &T) -> Response {
    // Serialised into a per-thread buffer that keeps its capacity, then copied into a body
    // of exactly its size: `to_vec` would grow a fresh `Vec` and leave it longer than its
    // length, which `Bytes` would then wrap with a second allocation.
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let body = SCRATCH.with(|scratch| {
        // A `Serialize` that itself makes a JSON response finds the buffer taken.
        let Ok(mut scratch) = scratch.try_borrow_mut() else {
            return serde_json::to_vec(value).map(Bytes::from);
        };
        scratch.clear();
        let written = serde_json::to_writer(JsonBuf(&mut scratch), value);
        let body = written.map(|()| Bytes::copy_from_slice(&scratch));
        // A one-off huge body does not stay pinned in the thread.
        if scratch.capacity() > JSON_SCRATCH_KEPT {
            *scratch = Vec::new();
        }
        body
    });
    match body {
        Ok(body) => Response::with_body("application/json", body),
        Err(err) => crate::Error::from(err).into_response(),
    }
}

/// Where [`json_response`] serialises: a `Vec` whose one-byte writes (`serde_json` writes
/// each quote, colon and brace alone) are pushes rather than `memcpy` calls.
struct JsonBuf<'a>(&'a mut Vec<u8>);

impl std::io::Write for JsonBuf<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let [byte] = buf {
            self.0.push(*byte);
        } else {
            self.0.extend_from_slice(buf);
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The largest serialisation buffer [`json_response`] keeps for the next response.
const JSON_SCRATCH_KEPT: usize = 64 * 1024;

/// Anything a handler may return.
pub trait IntoResponse {
    /// Converts into a response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::with_body("text/plain; charset=utf-8", Bytes::from_static(self.as_bytes()))
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        Response::bytes(self)
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

/// A handler's `Result`: `Ok` is the response, `Err` anything that converts into
/// [`crate::Error`]: an [`HttpError`](crate::HttpError) answers with its status, anything else
/// with a logged 500.
impl<T: IntoResponse, E: Into<crate::Error>> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(ok) => ok.into_response(),
            Err(err) => err.into().into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(response: &Response) -> &[u8] {
        match response.body() {
            Body::Full(bytes) => bytes,
            other => panic!("expected a whole body, got {other:?}"),
        }
    }

    /// Serialises a JSON response while being serialised, so the per-thread buffer is taken.
    struct Nested;

    impl Serialize for Nested {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let inner = json_response(&[1, 2]);
            serializer.serialize_str(std::str::from_utf8(full(&inner)).unwrap())
        }
    }

    #[test]
    fn json_bodies_are_exact_and_independent() {
        let a = json_response(&serde_json::json!({"message": "Hello, World!"}));
        let big = "x".repeat(100_000);
        let b = json_response(&big);
        let c = json_response(&Nested);
        assert_eq!(full(&a), br#"{"message":"Hello, World!"}"#);
        assert_eq!(full(&b).len(), 100_002);
        assert_eq!(full(&c), br#""[1,2]""#);
        assert_eq!(a.headers()["content-type"], "application/json");
        // A map with a non-string key cannot be JSON: a 500.
        let bad = json_response(&std::collections::HashMap::from([((1, 2), 3)]));
        assert_eq!(bad.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
