//! Multipart bodies: aiohttp's `MultipartReader`, and the forms [`crate::Request::post`]
//! reads (the `multipart` feature).
//!
//! Parsing is multer's, streaming: nothing is buffered beyond the part being read. Around it
//! this module adds what aiohttp's hardening requires and multer leaves out: a bounded
//! boundary (≤ 70 characters, RFC 2046), bounded part headers and preamble (see
//! [`MAX_PART_HEAD`]), a strict part `Content-Length` that must match the part's data
//! (CVE-2024-30251 was a loop on a part that promised more than it had), and
//! `Content-Transfer-Encoding: base64`. A body that ends early is an error, never a wait.
//!
//! Error messages are fixed texts: none repeats a name, a file name or a header the client
//! sent.

mod decode;
mod form;
mod guard;

use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, header};

pub(crate) use form::read_form;
pub use tandem_proto::MAX_PART_HEAD;

use crate::{HttpError, payload::Payload};

/// The longest boundary accepted (RFC 2046 §5.1.1); a longer one is a 400.
pub const MAX_BOUNDARY_LEN: usize = 70;

/// The boundary of a `multipart/*` `Content-Type`, checked against RFC 2046's grammar: 1 to
/// 70 characters of `bchars`, not ending with a space. Anything else is a 400.
pub(crate) fn boundary(content_type: &str) -> Result<String, HttpError> {
    let bad = |text: &str| HttpError::bad_request().with_text(format!("400: {text}"));
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if !media.to_ascii_lowercase().starts_with("multipart/") {
        return Err(bad("not a multipart body"));
    }
    let params = decode::params(content_type);
    let boundary = decode::param(&params, "boundary")
        .map_err(|_| bad("bad multipart boundary"))?
        .ok_or_else(|| bad("no multipart boundary"))?;
    let bchar = |b: u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b);
    if boundary.is_empty()
        || boundary.len() > MAX_BOUNDARY_LEN
        || !boundary.bytes().all(bchar)
        || boundary.ends_with(' ')
    {
        return Err(bad("bad multipart boundary"));
    }
    Ok(boundary.to_owned())
}

/// Turns a multer error into the HTTP error to answer. Errors from the body stream (the
/// guard's 400 and 413, the payload's 400) come back as they were raised.
fn http_error(err: multer::Error) -> HttpError {
    match err {
        multer::Error::StreamReadFailed(inner) => match inner.downcast::<HttpError>() {
            Ok(http) => *http,
            Err(_) => HttpError::bad_request().with_text("400: multipart body unreadable"),
        },
        multer::Error::LockFailure => HttpError::internal_server_error(),
        _ => HttpError::bad_request().with_text("400: malformed multipart body"),
    }
}

/// Reads a multipart body part by part: aiohttp's `MultipartReader`, from
/// [`crate::Request::multipart`].
///
/// ```no_run
/// # async fn handler(mut req: tandem_web::Request) -> Result<tandem_web::Response, tandem_web::Error> {
/// let mut reader = req.multipart()?;
/// let mut total = 0;
/// while let Some(mut part) = reader.next_part().await? {
///     // `filename()` is the client's word: never use it as a path as it is.
///     while let Some(chunk) = part.chunk().await? {
///         total += chunk.len();
///     }
/// }
/// Ok(tandem_web::Response::text(format!("{total} bytes")))
/// # }
/// ```
///
/// Unlike [`crate::Request::post`], the reader does not apply `client_max_size`: as with
/// aiohttp's streaming reads, the handler decides how much to take. Each part's headers are
/// still bounded ([`MAX_PART_HEAD`], and 32 fields).
pub struct MultipartReader {
    inner: multer::Multipart<'static>,
}

impl std::fmt::Debug for MultipartReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultipartReader").finish_non_exhaustive()
    }
}

impl MultipartReader {
    /// Reads `payload`, split by `boundary`, within `limit` bytes in all if one is given.
    pub(crate) fn new(payload: Payload, boundary: &str, limit: Option<usize>) -> Self {
        let stream = guard::guarded(payload, guard::Guard::new(boundary, limit));
        MultipartReader { inner: multer::Multipart::new(stream, boundary) }
    }

    /// The next part, or `None` after the last. The part borrows the reader, so it must be
    /// dropped (whatever of it was not read is skipped) before the next is asked for.
    pub async fn next_part(&mut self) -> Result<Option<Part<'_>>, HttpError> {
        match self.inner.next_field().await {
            Ok(Some(field)) => Part::new(field).map(Some),
            Ok(None) => Ok(None),
            Err(err) => Err(http_error(err)),
        }
    }
}

/// One part of a multipart body: aiohttp's `BodyPartReader`.
pub struct Part<'a> {
    field: multer::Field<'static>,
    name: Option<String>,
    filename: Option<String>,
    /// The part's own `Content-Length`, if it sent one: its data must be exactly that long.
    declared: Option<u64>,
    seen: u64,
    base64: Option<decode::Base64>,
    done: bool,
    _reader: PhantomData<&'a mut MultipartReader>,
}

impl std::fmt::Debug for Part<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("name", &self.name)
            .field("filename", &self.filename)
            .finish_non_exhaustive()
    }
}

impl Part<'_> {
    fn new(field: multer::Field<'static>) -> Result<Self, HttpError> {
        let headers = field.headers();
        let (name, filename) = headers
            .get(header::CONTENT_DISPOSITION)
            .map(|v| decode::disposition(&String::from_utf8_lossy(v.as_bytes())))
            .transpose()
            .map_err(|_| {
                HttpError::bad_request().with_text(
                    "400: a repeated parameter in a multipart part's Content-Disposition",
                )
            })?
            .unwrap_or_default();
        let declared =
            headers.get(header::CONTENT_LENGTH).map(|v| decode::content_length(v.as_bytes()));
        let base64 = match headers.get("content-transfer-encoding").map(http::HeaderValue::as_bytes)
        {
            None => None,
            Some(v) if v.eq_ignore_ascii_case(b"base64") => Some(decode::Base64::default()),
            Some(v)
                if [&b"binary"[..], b"8bit", b"7bit"].iter().any(|e| v.eq_ignore_ascii_case(e)) =>
            {
                None
            }
            // quoted-printable and the rest: RFC 7578 deprecates them in forms.
            Some(_) => {
                return Err(HttpError::bad_request()
                    .with_text("400: unsupported Content-Transfer-Encoding in a multipart part"));
            }
        };
        Ok(Part {
            field,
            name,
            filename,
            declared: declared.transpose()?,
            seen: 0,
            base64,
            done: false,
            _reader: PhantomData,
        })
    }

    /// The field name from `Content-Disposition`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The file name from `Content-Disposition` (`filename*` decoded if present), exactly as
    /// the client sent it. It is untrusted: it may be empty, hold `../` or `/`, or name a
    /// device; never join it to a directory unchecked.
    pub fn filename(&self) -> Option<&str> {
        self.filename.as_deref()
    }

    /// The part's `Content-Type`, if it has one.
    pub fn content_type(&self) -> Option<&str> {
        self.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
    }

    /// The part's headers.
    pub fn headers(&self) -> &HeaderMap {
        self.field.headers()
    }

    /// Whether the part is itself multipart (`multipart/mixed`, say): read its parts with
    /// [`multipart`](Self::multipart).
    pub fn is_multipart(&self) -> bool {
        self.content_type().is_some_and(|ct| {
            ct.get(..10).is_some_and(|start| start.eq_ignore_ascii_case("multipart/"))
        })
    }

    /// The next chunk of the part's data, with any transfer encoding undone, or `None` at
    /// its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        let length_mismatch =
            || HttpError::bad_request().with_text("400: multipart part length mismatch");
        while !self.done {
            let Some(raw) = self.field.chunk().await.map_err(http_error)? else {
                self.done = true;
                if self.declared.is_some_and(|n| n != self.seen) {
                    return Err(length_mismatch());
                }
                if let Some(base64) = &self.base64 {
                    base64.finish()?;
                }
                break;
            };
            self.seen += raw.len() as u64;
            if self.declared.is_some_and(|n| self.seen > n) {
                return Err(length_mismatch());
            }
            match &mut self.base64 {
                None => return Ok(Some(raw)),
                Some(base64) => {
                    let mut out = Vec::with_capacity(raw.len() / 4 * 3);
                    base64.feed(&raw, &mut out)?;
                    if !out.is_empty() {
                        return Ok(Some(Bytes::from(out)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The parts of a part that is itself multipart (aiohttp's nested `MultipartReader`),
    /// split by the boundary of its own `Content-Type`; 400 if it is not multipart or its
    /// boundary is invalid. The nested reader reads this part's data (its transfer encoding
    /// undone, its `Content-Length` enforced) and must be read to its end, or dropped,
    /// before the outer reader's next part is asked for. Each part's headers are bounded as
    /// the outer reader's are; the nesting goes only as deep as the handler asks.
    pub fn multipart(self) -> Result<MultipartReader, HttpError> {
        let boundary = boundary(self.content_type().unwrap_or_default())?;
        // The part outlives the borrow of its reader only inside the nested reader, which
        // the documentation above asks to finish before the outer one moves on.
        let part: Part<'static> = Part {
            field: self.field,
            name: self.name,
            filename: self.filename,
            declared: self.declared,
            seen: self.seen,
            base64: self.base64,
            done: self.done,
            _reader: PhantomData,
        };
        let chunks = futures_util::stream::unfold(part, |mut part| async move {
            match part.chunk().await {
                Ok(Some(chunk)) => Some((Ok(http_body::Frame::data(chunk)), part)),
                Ok(None) => None,
                Err(err) => Some((Err(err), part)),
            }
        });
        let payload = Payload::from_body(http_body_util::StreamBody::new(chunks));
        Ok(MultipartReader::new(payload, &boundary, None))
    }

    /// The whole part in memory with its `Content-Encoding` (gzip, deflate, br) undone as
    /// well as its transfer encoding: aiohttp's `read(decode=True)`. The decoded data may
    /// be at most `limit` bytes (413 past it), so a compression bomb stops there; an
    /// unknown coding is a 415. Without the `compression` feature any coding but
    /// `identity` is a 415. [`chunk`](Self::chunk) and [`bytes`](Self::bytes) leave the
    /// coding alone, as `post()` does.
    pub async fn bytes_decoded(mut self, limit: usize) -> Result<Bytes, HttpError> {
        let codings = self.headers().get_all(header::CONTENT_ENCODING);
        // A part's reader has no application: the default window bound.
        let window = tandem_io::DEFAULT_BROTLI_WINDOW_LOG_MAX;
        let mut inflater = crate::inflate::Inflater::for_fields(
            codings.iter().map(header::HeaderValue::as_bytes),
            limit,
            window,
        )?;
        let mut plain = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            match &mut inflater {
                Some(inflater) => inflater.write(&chunk, limit)?,
                None if plain.len() + chunk.len() > limit => {
                    return Err(HttpError::payload_too_large(limit, None));
                }
                None => plain.extend_from_slice(&chunk),
            }
        }
        match inflater {
            Some(inflater) => Ok(Bytes::from(inflater.finish(limit)?)),
            None => Ok(plain.freeze()),
        }
    }

    /// The whole part in memory. Not limited: bound it yourself with [`chunk`](Self::chunk)
    /// if the client is not trusted.
    pub async fn bytes(mut self) -> Result<Bytes, HttpError> {
        let mut out = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// The whole part as text in the charset of its `Content-Type` (UTF-8 by default); 400
    /// if it is not valid in it.
    pub async fn text(self) -> Result<String, HttpError> {
        let content_type = self.content_type().map(str::to_owned);
        let bytes = self.bytes().await?;
        decode::decode_text(&bytes, content_type.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(boundary("multipart/form-data; boundary=abc").unwrap(), "abc");
        assert_eq!(boundary("Multipart/Form-Data; boundary=\"a b:c\"").unwrap(), "a b:c");
        let long = format!("multipart/form-data; boundary={}", "x".repeat(71));
        assert_eq!(boundary(&long).unwrap_err().status(), 400);
        let ok = format!("multipart/form-data; boundary={}", "x".repeat(70));
        assert!(boundary(&ok).is_ok());
        for bad in [
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"a \"",
            "multipart/form-data; boundary=a\u{7f}b",
            "multipart/form-data; boundary=a; boundary=b",
            "multipart/form-data; boundary=a; Boundary=a",
            "text/plain; boundary=abc",
        ] {
            assert_eq!(boundary(bad).unwrap_err().status(), 400, "{bad}");
        }
    }
}
