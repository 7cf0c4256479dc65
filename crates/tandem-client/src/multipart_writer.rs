//! `MultipartWriter`: aiohttp's writer of `multipart/*` bodies (mixed, related, nested,
//! streamed parts), sent with chunked framing as it is produced.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt, stream::BoxStream};
use http::{HeaderMap, HeaderValue, header};

use crate::{
    Compression,
    body_encoding::{encode_bytes, encode_stream},
    error::{Error, Kind},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A `multipart/<subtype>` body built part by part (aiohttp's `MultipartWriter`): bytes,
/// text, JSON, a urlencoded form, a stream read as it is sent, or another writer nested
/// inside. Sent with [`RequestBuilder::multipart_writer`](crate::RequestBuilder::multipart_writer).
///
/// ```
/// use tandem_client::MultipartWriter;
///
/// let inner = MultipartWriter::new("alternative").append_text("plain words", "text/plain");
/// let body = MultipartWriter::new("mixed")
///     .append_json(&serde_json::json!({"id": 7}))?
///     .append_multipart(inner);
/// assert!(body.content_type().starts_with("multipart/mixed; boundary="));
/// # Ok::<(), tandem_client::Error>(())
/// ```
pub struct MultipartWriter {
    subtype: String,
    boundary: String,
    parts: Vec<Part>,
    close_boundary: bool,
}

struct Part {
    headers: HeaderMap,
    body: PartBody,
}

enum PartBody {
    Bytes(Bytes),
    Stream(BoxStream<'static, Result<Bytes, BoxError>>),
    Nested(MultipartWriter),
}

impl std::fmt::Debug for MultipartWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultipartWriter")
            .field("subtype", &self.subtype)
            .field("parts", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl MultipartWriter {
    /// An empty `multipart/<subtype>` body (`mixed`, `related`, `alternative`,
    /// `x-mixed-replace`...) with a random boundary. A subtype that is not a token is
    /// replaced by `mixed`.
    pub fn new(subtype: &str) -> Self {
        let valid = !subtype.is_empty()
            && subtype.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+_".contains(&b));
        MultipartWriter {
            subtype: if valid { subtype.to_ascii_lowercase() } else { "mixed".to_owned() },
            boundary: crate::form::random_boundary(),
            parts: Vec::new(),
            close_boundary: true,
        }
    }

    /// The same with `boundary`, which must be 1 to 70 characters of RFC 2046's set.
    pub fn with_boundary(subtype: &str, boundary: &str) -> Result<Self, Error> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&b);
        if boundary.is_empty() || boundary.len() > 70 || !boundary.bytes().all(allowed) {
            return Err(Error::new(Kind::Request, format!("invalid boundary {boundary:?}")));
        }
        Ok(MultipartWriter { boundary: boundary.to_owned(), ..Self::new(subtype) })
    }

    /// Whether the body ends with the closing boundary (default: yes). An MJPEG
    /// `multipart/x-mixed-replace` stream that never ends leaves it out, as aiohttp's
    /// `write(close_boundary=False)`.
    #[must_use]
    pub fn close_boundary(mut self, yes: bool) -> Self {
        self.close_boundary = yes;
        self
    }

    /// The `Content-Type` of the body.
    pub fn content_type(&self) -> String {
        format!("multipart/{}; boundary=\"{}\"", self.subtype, self.boundary)
    }

    /// Adds a part with its own fields (`Content-Type`, `Content-Disposition`,
    /// `Content-ID`...). A field that could break the part's head (a CR or LF) cannot be
    /// made: `HeaderValue` refuses it.
    #[must_use]
    pub fn append_with_headers(mut self, headers: HeaderMap, body: impl Into<Bytes>) -> Self {
        self.parts.push(Part { headers, body: PartBody::Bytes(body.into()) });
        self
    }

    /// Adds bytes of the given content type (aiohttp's `append(data)`).
    #[must_use]
    pub fn append(self, body: impl Into<Bytes>, content_type: &str) -> Self {
        let headers = content_type_map(content_type);
        self.append_with_headers(headers, body)
    }

    /// Adds text (`text/plain; charset=utf-8` unless `content_type` says otherwise).
    #[must_use]
    pub fn append_text(self, text: impl Into<String>, content_type: &str) -> Self {
        let ct = if content_type.contains("charset") {
            content_type.to_owned()
        } else {
            format!("{content_type}; charset=utf-8")
        };
        self.append(text.into(), &ct)
    }

    /// Adds `value` as `application/json` (aiohttp's `append_json`).
    pub fn append_json<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<Self, Error> {
        let json = serde_json::to_vec(value).map_err(|e| Error::new(Kind::Request, e))?;
        Ok(self.append(json, "application/json"))
    }

    /// Adds pairs as `application/x-www-form-urlencoded` (aiohttp's `append_form`).
    #[must_use]
    pub fn append_form<'a>(self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        self.append(form, "application/x-www-form-urlencoded")
    }

    /// Adds a part whose body is read from `stream` as it is sent.
    #[must_use]
    pub fn append_stream<S, E>(mut self, stream: S, content_type: &str) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let body = PartBody::Stream(stream.map_err(Into::into).boxed());
        self.parts.push(Part { headers: content_type_map(content_type), body });
        self
    }

    /// Nests another multipart body as a part (aiohttp's `append(MultipartWriter)`).
    #[must_use]
    pub fn append_multipart(mut self, nested: MultipartWriter) -> Self {
        let headers = content_type_map(&nested.content_type());
        self.parts.push(Part { headers, body: PartBody::Nested(nested) });
        self
    }

    /// Encodes the part appended last in `coding` as it is sent, and names the coding in
    /// the part's `Content-Encoding` (aiohttp's `part.set_content_encoding`): bytes are
    /// encoded now, a streamed or nested part a piece at a time as it is read. Fails when
    /// there is no part yet, when the part names a `Content-Encoding` of its own (it would
    /// be encoded twice), or without the `compression` feature.
    pub fn content_encoding(mut self, coding: Compression) -> Result<Self, Error> {
        let Some(part) = self.parts.pop() else {
            return Err(Error::new(Kind::Request, "content_encoding with no part to encode"));
        };
        if part.headers.contains_key(header::CONTENT_ENCODING) {
            return Err(Error::new(
                Kind::Request,
                "content_encoding on a part with a Content-Encoding of its own",
            ));
        }
        let Part { mut headers, body } = part;
        let body = match body {
            PartBody::Bytes(bytes) => PartBody::Bytes(encode_bytes(&bytes, coding)?),
            PartBody::Stream(stream) => PartBody::Stream(encode_stream(stream, coding)?),
            PartBody::Nested(nested) => {
                PartBody::Stream(encode_stream(nested.into_stream(), coding)?)
            }
        };
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
        self.parts.push(Part { headers, body });
        Ok(self)
    }

    /// The encoded body, produced as it is read.
    pub(crate) fn into_stream(self) -> BoxStream<'static, Result<Bytes, BoxError>> {
        let boundary = self.boundary;
        let mut pieces: Vec<BoxStream<'static, Result<Bytes, BoxError>>> = Vec::new();
        for part in self.parts {
            let mut head = BytesMut::new();
            head.put_slice(b"--");
            head.put_slice(boundary.as_bytes());
            head.put_slice(b"\r\n");
            for (name, value) in &part.headers {
                head.put_slice(name.as_str().as_bytes());
                head.put_slice(b": ");
                head.put_slice(value.as_bytes());
                head.put_slice(b"\r\n");
            }
            head.put_slice(b"\r\n");
            pieces.push(once(head.freeze()));
            pieces.push(match part.body {
                PartBody::Bytes(bytes) => once(bytes),
                PartBody::Stream(stream) => stream,
                PartBody::Nested(nested) => nested.into_stream(),
            });
            pieces.push(once(Bytes::from_static(b"\r\n")));
        }
        if self.close_boundary {
            pieces.push(once(Bytes::from(format!("--{boundary}--\r\n"))));
        }
        futures_util::stream::iter(pieces).flatten().boxed()
    }
}

fn once(bytes: Bytes) -> BoxStream<'static, Result<Bytes, BoxError>> {
    futures_util::stream::once(async { Ok(bytes) }).boxed()
}

/// A map holding `Content-Type: content_type`, or an empty one when it is not a valid value.
fn content_type_map(content_type: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::try_from(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers
}
