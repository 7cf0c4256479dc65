//! Reading a `multipart/*` response part by part (aiohttp's `MultipartReader.from_response`),
//! on `multer`, the parser `tandem-web` reads uploads with.

use bytes::Bytes;
use http::HeaderMap;

use crate::error::{Error, Kind};

/// The parts of a `multipart/*` response, in order, read as they arrive: from
/// [`ClientResponse::multipart`](crate::ClientResponse::multipart).
pub struct MultipartReader {
    inner: multer::Multipart<'static>,
}

impl std::fmt::Debug for MultipartReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultipartReader").finish_non_exhaustive()
    }
}

/// One part: its fields, and its body read on demand. Reading the next part skips what is
/// left of this one.
pub struct BodyPart {
    field: multer::Field<'static>,
}

impl std::fmt::Debug for BodyPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyPart")
            .field("name", &self.name())
            .field("filename", &self.filename())
            .finish_non_exhaustive()
    }
}

fn payload(e: multer::Error) -> Error {
    Error::new(Kind::Payload, e)
}

impl MultipartReader {
    pub(crate) fn new<S>(body: S, boundary: String) -> Self
    where
        S: futures_util::Stream<Item = Result<Bytes, Error>> + Send + 'static,
    {
        MultipartReader { inner: multer::Multipart::new(body, boundary) }
    }

    /// The next part, or `None` after the last. A malformed body is a payload error.
    pub async fn next_part(&mut self) -> Result<Option<BodyPart>, Error> {
        Ok(self.inner.next_field().await.map_err(payload)?.map(|field| BodyPart { field }))
    }
}

impl BodyPart {
    /// The part's own fields (`Content-Type`, `Content-Disposition`, ...).
    pub fn headers(&self) -> &HeaderMap {
        self.field.headers()
    }

    /// The `name` of its `Content-Disposition`, if any.
    pub fn name(&self) -> Option<&str> {
        self.field.name()
    }

    /// The `filename` of its `Content-Disposition`, if any.
    pub fn filename(&self) -> Option<&str> {
        self.field.file_name()
    }

    /// Its `Content-Type` (media type and parameters), if it has one.
    pub fn content_type(&self) -> Option<&str> {
        self.field.content_type().map(AsRef::as_ref)
    }

    /// The next piece of its body, or `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.field.chunk().await.map_err(payload)
    }

    /// Its whole body.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        self.field.bytes().await.map_err(payload)
    }

    /// Its body as text, in the `charset` of its `Content-Type` (UTF-8 without one).
    pub async fn text(self) -> Result<String, Error> {
        self.field.text().await.map_err(payload)
    }
}
