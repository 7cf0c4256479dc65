//! `ClientResponse`: a response head, its redirect history, and its body.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Version};
use tandem_proto::EncodedFields;
use url::Url;

use crate::{
    content::Content,
    error::{Error, Kind},
    redact::{Fields, Redacted},
};

/// The request as it was sent (aiohttp's `request_info`): its method, URL and every field,
/// the automatic ones included. Its `Debug` leaves out the values of credential fields.
#[derive(Clone)]
pub struct RequestInfo {
    pub(crate) method: Method,
    pub(crate) url: Arc<Url>,
    pub(crate) headers: Arc<EncodedFields>,
}

impl std::fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestInfo")
            .field("method", &self.method)
            .field("url", &format_args!("{}", Redacted(&self.url)))
            .field("headers", &Fields(self.headers()))
            .finish()
    }
}

impl RequestInfo {
    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The fields sent, `Host` first.
    pub fn headers(&self) -> &HeaderMap {
        self.headers.headers()
    }
}

/// The head of one response: what [`ClientResponse::history`] keeps of each redirect hop.
/// Its `Debug` leaves out the values of credential fields (`Set-Cookie`, and the request's).
#[derive(Clone)]
pub struct ResponseInfo {
    pub(crate) status: StatusCode,
    /// Borrowed when it is the status's canonical phrase, as it nearly always is.
    pub(crate) reason: std::borrow::Cow<'static, str>,
    pub(crate) version: Version,
    /// `raw` as a `HeaderMap`, built on first use: the client itself reads the few fields
    /// it needs from `raw`, and a caller who reads only the status and body never pays for
    /// the map.
    pub(crate) headers: std::sync::OnceLock<HeaderMap>,
    /// The fields as received: positions into the head's bytes, so keeping them is free.
    pub(crate) raw: tandem_proto::Fields,
    pub(crate) request: RequestInfo,
}

impl std::fmt::Debug for ResponseInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseInfo")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("version", &self.version)
            .field("headers", &Fields(self.headers()))
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl ResponseInfo {
    /// The request this answered.
    pub fn request_info(&self) -> &RequestInfo {
        &self.request
    }

    /// The fields as the server wrote them, in order, names in their original case and
    /// values unconverted (aiohttp's `raw_headers`).
    pub fn raw_headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.raw.iter()
    }

    /// The URL that answered.
    pub fn url(&self) -> &Url {
        &self.request.url
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase as the server sent it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The fields: case-insensitive and multi-valued.
    pub fn headers(&self) -> &HeaderMap {
        self.headers.get_or_init(|| self.raw.to_header_map())
    }

    /// The first value of field `name` (any case) as text, if it is valid UTF-8.
    fn field(&self, name: &str) -> Option<&str> {
        self.raw.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// A response: its head is read, its body is read on demand through [`read`](Self::read),
/// [`text`](Self::text), [`json`](Self::json) or [`content`](Self::content).
///
/// The connection goes back to the pool when the body has been read to its end (and the
/// response allows keep-alive); dropping the response before that closes it.
#[derive(Debug)]
pub struct ClientResponse {
    // Boxed: a response is about 1.3 KiB, and it is moved out through the exchange, the
    // redirect loop and the caller's own futures; a pointer moves for free.
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    info: ResponseInfo,
    history: Vec<ResponseInfo>,
    content: Content,
    charset_fallback: Option<CharsetResolver>,
}

type CharsetResolverFn = dyn Fn(&ResponseInfo, &[u8]) -> String + Send + Sync;

/// A session's `fallback_charset_resolver`.
#[derive(Clone)]
pub(crate) struct CharsetResolver(pub(crate) std::sync::Arc<CharsetResolverFn>);

impl std::fmt::Debug for CharsetResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CharsetResolver")
    }
}

impl ClientResponse {
    pub(crate) fn new(
        info: ResponseInfo,
        content: Content,
        charset_fallback: Option<CharsetResolver>,
    ) -> Self {
        let inner = Inner { info, history: Vec::new(), content, charset_fallback };
        ClientResponse { inner: Box::new(inner) }
    }

    /// The body reader's connection side, for [`upgrade`](Self::upgrade).
    pub(crate) fn into_raw(self) -> crate::body::RawBody {
        self.inner.content.into_raw()
    }

    pub(crate) fn set_history(&mut self, history: Vec<ResponseInfo>) {
        self.inner.history = history;
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.info.status
    }

    /// Whether the status is below 400 (aiohttp's `ok`).
    pub fn ok(&self) -> bool {
        self.inner.info.status.as_u16() < 400
    }

    /// The reason phrase as the server sent it.
    pub fn reason(&self) -> &str {
        &self.inner.info.reason
    }

    /// The fields: case-insensitive and multi-valued.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.info.headers()
    }

    /// The final URL, after redirects.
    pub fn url(&self) -> &Url {
        &self.inner.info.request.url
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.inner.info.version
    }

    /// The fields as the server wrote them, in order and original case (aiohttp's
    /// `raw_headers`).
    pub fn raw_headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.inner.info.raw_headers()
    }

    /// The request as sent (aiohttp's `request_info`).
    pub fn request_info(&self) -> &RequestInfo {
        &self.inner.info.request
    }

    /// Each redirect response that led here, earliest first; empty if there were none.
    pub fn history(&self) -> &[ResponseInfo] {
        &self.inner.history
    }

    /// The cookies this response set (its `Set-Cookie` fields); malformed ones are skipped.
    pub fn cookies(&self) -> Vec<cookie::Cookie<'static>> {
        self.inner
            .info
            .raw
            .get_all("set-cookie")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .filter_map(|v| cookie::Cookie::parse(v.to_owned()).ok())
            .collect()
    }

    /// The media type of `Content-Type`, lower-cased, without parameters
    /// (`application/octet-stream` when absent, as aiohttp).
    pub fn content_type(&self) -> String {
        let value = self.inner.info.field("content-type").unwrap_or("application/octet-stream");
        value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
    }

    /// The `charset` parameter of `Content-Type`, if any.
    pub fn charset(&self) -> Option<String> {
        let value = self.inner.info.field("content-type")?;
        value.split(';').skip(1).find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"').to_owned())
        })
    }

    /// The body as a stream.
    pub fn content(&mut self) -> &mut Content {
        &mut self.inner.content
    }

    /// The body as a stream of pieces, consuming the response: to pipe it into another
    /// request's [`body_stream`](crate::RequestBuilder::body_stream), say.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, Error>> + Send {
        futures_util::stream::try_unfold(self, |mut resp| async move {
            Ok(resp.inner.content.chunk().await?.map(|piece| (piece, resp)))
        })
    }

    /// The whole (rest of the) body.
    pub async fn read(&mut self) -> Result<Bytes, Error> {
        let url = &self.inner.info.request.url;
        self.inner.content.read_to_end().await.map_err(|e| e.with_url(url))
    }

    /// The body as text. The encoding is, in order: the `charset` of `Content-Type`; a byte
    /// order mark (UTF-8, UTF-16LE or UTF-16BE); UTF-8 if the body is valid UTF-8; else what
    /// the session's
    /// [`fallback_charset_resolver`](crate::ClientSessionBuilder::fallback_charset_resolver)
    /// says (UTF-8 by default, as aiohttp's). Malformed sequences become U+FFFD; an unknown
    /// charset is a decode error.
    pub async fn text(&mut self) -> Result<String, Error> {
        if let Some(label) = self.charset() {
            return self.text_with_charset(&label).await;
        }
        let body = self.read().await?;
        // `decode` strips a BOM and decodes by it, so finding one settles the encoding.
        let encoding = match encoding_rs::Encoding::for_bom(&body) {
            Some((bom, _)) => bom,
            None if std::str::from_utf8(&body).is_ok() => encoding_rs::UTF_8,
            None => match &self.inner.charset_fallback {
                Some(resolver) => {
                    let label = (resolver.0)(&self.inner.info, &body);
                    encoding_by_label(&label)?
                }
                None => encoding_rs::UTF_8,
            },
        };
        Ok(encoding.decode(&body).0.into_owned())
    }

    /// The body as text decoded with `label` (any WHATWG encoding label), whatever
    /// `Content-Type` says.
    pub async fn text_with_charset(&mut self, label: &str) -> Result<String, Error> {
        let encoding = encoding_by_label(label)?;
        let body = self.read().await?;
        Ok(encoding.decode(&body).0.into_owned())
    }

    /// The body as JSON. As aiohttp, the content type must be `application/json` or end in
    /// `+json`, else this is a decode error; [`json_unchecked`](Self::json_unchecked) skips
    /// the check.
    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, Error> {
        let content_type = self.content_type();
        if content_type != "application/json" && !content_type.ends_with("+json") {
            return Err(Error::new(
                Kind::Decode,
                format!("attempt to decode JSON with unexpected mimetype: {content_type}"),
            )
            .with_url(&self.inner.info.request.url));
        }
        self.json_unchecked().await
    }

    /// The body as JSON, whatever the content type. An empty body reads as `null`.
    pub async fn json_unchecked<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, Error> {
        let body = self.read().await?;
        // aiohttp returns `None` for an empty body; here that is JSON `null`, which an
        // `Option<T>` reads as `None`.
        let body: &[u8] = if body.trim_ascii().is_empty() { b"null" } else { &body };
        serde_json::from_slice(body)
            .map_err(|e| Error::new(Kind::Decode, e).with_url(&self.inner.info.request.url))
    }

    /// `Err` with [`Error::is_status`] if the status is 400 or more (aiohttp's
    /// `raise_for_status()`); the response is dropped, and its connection closed.
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.ok() {
            Ok(self)
        } else {
            Err(Error::bare(Kind::Status(self.inner.info.status))
                .with_url(&self.inner.info.request.url))
        }
    }

    /// The same check by reference.
    pub fn raise_for_status(&self) -> Result<(), Error> {
        if self.ok() {
            Ok(())
        } else {
            Err(Error::bare(Kind::Status(self.inner.info.status))
                .with_url(&self.inner.info.request.url))
        }
    }

    pub(crate) fn info(&self) -> &ResponseInfo {
        &self.inner.info
    }

    /// How long each step of this exchange took (its last hop's), when the session
    /// records [`timings`](crate::ClientSessionBuilder::timings); `None` otherwise. `total`
    /// is known once the body has been read to its end.
    pub fn timings(&self) -> Option<crate::Timings> {
        self.inner.content.timings()
    }

    /// Reads and discards the rest of the body (aiohttp's `release()`), so the connection
    /// goes back to the pool; a body of more than 64 KiB closes the connection instead. A
    /// middleware that sends a request again calls it on the response it throws away.
    pub async fn release(&mut self) {
        self.drain(RELEASE_LIMIT).await;
    }

    pub(crate) async fn drain(&mut self, limit: usize) {
        self.inner.content.drain(limit).await;
    }
}

/// What [`ClientResponse::release`] reads before it closes the connection instead.
const RELEASE_LIMIT: usize = 64 * 1024;

fn encoding_by_label(label: &str) -> Result<&'static encoding_rs::Encoding, Error> {
    encoding_rs::Encoding::for_label(label.as_bytes())
        .ok_or_else(|| Error::new(Kind::Decode, format!("unknown charset {label:?}")))
}
