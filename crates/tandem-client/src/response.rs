//! `ClientResponse`: a response head, its redirect history, and its body.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Version};
use tandem_proto::EncodedFields;
use url::Url;

use crate::{
    content::Content,
    error::{Error, Kind},
    field_values::{self, ContentDisposition, Link},
    redact::{Fields, Redacted},
};

/// The request as it was sent (aiohttp's `request_info`): its method, URL and every field,
/// the automatic ones included. Its `Debug` leaves out the values of credential fields.
#[derive(Clone)]
pub struct RequestInfo {
    pub(crate) method: Method,
    pub(crate) url: Arc<Url>,
    pub(crate) headers: Arc<EncodedFields>,
    /// The URL as given, with its fragment, when it had one.
    pub(crate) real_url: Option<Arc<Url>>,
}

impl std::fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestInfo")
            .field("method", &self.method)
            .field("url", &format_args!("{}", Redacted(&self.url)))
            .field("headers", &Fields(self.headers()))
            .field("real_url", &self.real_url.as_deref().map(|u| Redacted(u).to_string()))
            .finish()
    }
}

impl RequestInfo {
    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL, without a fragment (none is sent).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL as given, its fragment kept (aiohttp's `real_url`); the same as
    /// [`url`](Self::url) when it had none.
    pub fn real_url(&self) -> &Url {
        self.real_url.as_deref().unwrap_or(&self.url)
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
    /// The connection it came on: addresses and TLS facts (`None` for a made-up response).
    pub(crate) connection: Option<Arc<tandem_connect::ConnectionInfo>>,
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
    /// The connection this came on: the peer's and our address, and for https the TLS
    /// version, cipher suite, ALPN protocol and the server's certificate (aiohttp's
    /// `get_extra_info('peercert')` and `'ssl_object'`). `None` for a response no server
    /// sent (a fault injection's).
    pub fn connection_info(&self) -> Option<&tandem_connect::ConnectionInfo> {
        self.connection.as_deref()
    }

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

struct Inner {
    info: ResponseInfo,
    history: Vec<ResponseInfo>,
    content: Content,
    charset_fallback: Option<CharsetResolver>,
    /// The body, once [`read`](ClientResponse::read) has read it: read, text and json give
    /// it again.
    body: Option<Bytes>,
}

/// Without the cached body, which may hold anything the server sent back (credentials an
/// echo service reflects, say): only its length.
impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("info", &self.info)
            .field("history", &self.history)
            .field("content", &self.content)
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .finish_non_exhaustive()
    }
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
        let inner = Inner { info, history: Vec::new(), content, charset_fallback, body: None };
        ClientResponse { inner: Box::new(inner) }
    }

    /// The body reader's connection side, for [`upgrade`](Self::upgrade).
    pub(crate) fn into_raw(self) -> crate::body::RawBody {
        self.inner.content.into_raw()
    }

    pub(crate) fn set_history(&mut self, history: Vec<ResponseInfo>) {
        self.inner.history = history;
    }

    /// Records the URL with the fragment the caller (or a redirect's `Location`) gave it.
    pub(crate) fn set_real_url(&mut self, real_url: Option<Arc<Url>>) {
        self.inner.info.request.real_url = real_url;
    }

    /// The method of the request this answers (after redirects: a 303 makes it GET).
    pub fn method(&self) -> &Method {
        &self.inner.info.request.method
    }

    /// The final URL with its fragment (aiohttp's `real_url`): the one given, or a
    /// redirect's `Location`'s. [`url`](Self::url) is the same without the fragment.
    pub fn real_url(&self) -> &Url {
        self.inner.info.request.real_url()
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

    /// The connection this came on: addresses and, for https, the TLS facts
    /// ([`TlsInfo`](crate::TlsInfo)): version, cipher suite, ALPN protocol, the server's
    /// certificate.
    ///
    /// ```no_run
    /// # async fn f(session: tandem_client::ClientSession) -> Result<(), tandem_client::Error> {
    /// let resp = session.get("https://example.com/").send().await?;
    /// let tls = resp.connection_info().and_then(|c| c.tls.as_ref());
    /// if let Some(tls) = tls {
    ///     println!("{:?} {:?}", tls.version, tls.cipher);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn connection_info(&self) -> Option<&tandem_connect::ConnectionInfo> {
        self.info().connection_info()
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

    /// The links of the `Link` fields (aiohttp's `links`), their URLs resolved against
    /// this response's, in order; a malformed one ends its field's list.
    pub fn links(&self) -> Vec<Link> {
        let values =
            self.inner.info.raw.get_all("link").filter_map(|v| std::str::from_utf8(v).ok());
        field_values::parse_links(values, self.url())
    }

    /// The first link whose `rel` names `rel` (`"next"`, say), as aiohttp's
    /// `resp.links["next"]`.
    pub fn link(&self, rel: &str) -> Option<Link> {
        self.links().into_iter().find(|link| link.has_rel(rel))
    }

    /// The `Content-Disposition` field, parsed (aiohttp's `content_disposition`); `None`
    /// when absent or malformed.
    pub fn content_disposition(&self) -> Option<ContentDisposition> {
        ContentDisposition::parse(self.inner.info.field("content-disposition")?)
    }

    /// The body as `multipart/*` parts, read as they arrive (aiohttp's
    /// `MultipartReader.from_response`): a `multipart/mixed` answer, a batch API's,
    /// `multipart/byteranges`, or an MJPEG `multipart/x-mixed-replace` stream. Anything
    /// but a `multipart/*` content type with a `boundary` is a decode error.
    pub fn multipart(self) -> Result<crate::MultipartReader, Error> {
        let content_type = self.inner.info.field("content-type").unwrap_or_default();
        let boundary = if self.content_type().starts_with("multipart/") {
            field_values::param(content_type, "boundary").filter(|b| !b.is_empty())
        } else {
            None
        };
        let Some(boundary) = boundary else {
            let message = format!("not a multipart body: {content_type:?}");
            return Err(self.with_request(Error::new(Kind::Decode, message)));
        };
        Ok(crate::MultipartReader::new(self.into_stream(), boundary))
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

    /// The whole (rest of the) body, kept: later calls of `read`, [`text`](Self::text) and
    /// [`json`](Self::json) give the same bytes again, as aiohttp's `read()` does.
    pub async fn read(&mut self) -> Result<Bytes, Error> {
        if let Some(body) = &self.inner.body {
            return Ok(body.clone());
        }
        let body = self.inner.content.read_to_end().await.map_err(|e| self.with_request(e))?;
        self.inner.body = Some(body.clone());
        Ok(body)
    }

    /// `e` with this response's request, as every error about the response carries it.
    fn with_request(&self, e: Error) -> Error {
        e.with_request(&self.inner.info.request)
    }

    /// The encoding [`text`](Self::text) decodes with (aiohttp's `get_encoding()`), by its
    /// WHATWG name (`"UTF-8"`, `"windows-1252"`). In order: the `charset` of
    /// `Content-Type`; UTF-8 for `application/json` and `application/rdap+json`; a byte
    /// order mark (UTF-8, UTF-16LE or UTF-16BE); UTF-8 if the body is valid UTF-8; else what
    /// the session's
    /// [`fallback_charset_resolver`](crate::ClientSessionBuilder::fallback_charset_resolver)
    /// says (UTF-8 by default, as aiohttp's). It reads the body when it needs to. An unknown
    /// charset is a decode error.
    pub async fn get_encoding(&mut self) -> Result<&'static str, Error> {
        Ok(self.encoding().await?.name())
    }

    async fn encoding(&mut self) -> Result<&'static encoding_rs::Encoding, Error> {
        if let Some(label) = self.charset() {
            return encoding_by_label(&label).map_err(|e| self.with_request(e));
        }
        if matches!(self.content_type().as_str(), "application/json" | "application/rdap+json") {
            return Ok(encoding_rs::UTF_8);
        }
        let body = self.read().await?;
        Ok(match encoding_rs::Encoding::for_bom(&body) {
            Some((bom, _)) => bom,
            None if std::str::from_utf8(&body).is_ok() => encoding_rs::UTF_8,
            None => match &self.inner.charset_fallback {
                Some(resolver) => {
                    let label = (resolver.0)(&self.inner.info, &body);
                    encoding_by_label(&label).map_err(|e| self.with_request(e))?
                }
                None => encoding_rs::UTF_8,
            },
        })
    }

    /// The body as text, in the encoding [`get_encoding`](Self::get_encoding) picks. As
    /// aiohttp's `text()` (`errors="strict"`), bytes that are not valid in that encoding
    /// are a decode error; [`text_lossy`](Self::text_lossy) replaces them with U+FFFD
    /// instead (`errors="replace"`). A byte order mark decides the encoding and is left
    /// out of the text.
    pub async fn text(&mut self) -> Result<String, Error> {
        let encoding = self.encoding().await?;
        self.decode(encoding, false).await
    }

    /// The body as text, bytes not valid in its encoding replaced with U+FFFD.
    pub async fn text_lossy(&mut self) -> Result<String, Error> {
        let encoding = self.encoding().await?;
        self.decode(encoding, true).await
    }

    /// The body as text decoded with `label` (any WHATWG encoding label), whatever
    /// `Content-Type` says; invalid bytes are a decode error, as in [`text`](Self::text).
    pub async fn text_with_charset(&mut self, label: &str) -> Result<String, Error> {
        let encoding = encoding_by_label(label).map_err(|e| self.with_request(e))?;
        self.decode(encoding, false).await
    }

    async fn decode(
        &mut self,
        encoding: &'static encoding_rs::Encoding,
        lossy: bool,
    ) -> Result<String, Error> {
        let body = self.read().await?;
        let (encoding, text) = match encoding_rs::Encoding::for_bom(&body) {
            Some((bom, len)) => (bom, &body[len..]),
            None => (encoding, &body[..]),
        };
        if lossy {
            return Ok(encoding.decode_without_bom_handling(text).0.into_owned());
        }
        if let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(text) {
            return Ok(text.into_owned());
        }
        let message = format!("the body is not valid {}", encoding.name());
        Err(self.with_request(Error::new(Kind::Decode, message)))
    }

    /// The body as JSON. As aiohttp, the content type must be `application/json` or end in
    /// `+json`, else this is a decode error; [`json_unchecked`](Self::json_unchecked) skips
    /// the check.
    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, Error> {
        let content_type = self.content_type();
        if content_type != "application/json" && !content_type.ends_with("+json") {
            let message =
                format!("attempt to decode JSON with unexpected mimetype: {content_type}");
            return Err(self.with_request(Error::new(Kind::Decode, message)));
        }
        self.json_unchecked().await
    }

    /// The body as JSON, whatever the content type. An empty body reads as `null`.
    pub async fn json_unchecked<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, Error> {
        let body = self.read().await?;
        // aiohttp returns `None` for an empty body; here that is JSON `null`, which an
        // `Option<T>` reads as `None`.
        let body: &[u8] = if body.trim_ascii().is_empty() { b"null" } else { &body };
        serde_json::from_slice(body).map_err(|e| self.with_request(Error::new(Kind::Decode, e)))
    }

    /// `Err` with [`Error::is_status`] if the status is 400 or more (aiohttp's
    /// `raise_for_status()`); the response is dropped, and its connection closed.
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.ok() { Ok(self) } else { Err(self.status_error()) }
    }

    /// The same check by reference.
    pub fn raise_for_status(&self) -> Result<(), Error> {
        if self.ok() { Ok(()) } else { Err(self.status_error()) }
    }

    /// The error `raise_for_status` makes of this response.
    pub(crate) fn status_error(&self) -> Error {
        self.with_request(Error::bare(Kind::Status(self.inner.info.status)))
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
