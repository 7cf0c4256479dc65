//! Reading a `multipart/*` response part by part (aiohttp's `MultipartReader.from_response`),
//! on `multer`, the parser `tandem-web` reads uploads with.
//!
//! multer buffers a part's header block, and the preamble, until it ends, however long that
//! is. The response's bytes pass through `tandem_proto`'s [`MultipartScanner`] on their way
//! to multer, as an upload's do on the server, so a server cannot make the reader buffer
//! without bound: a part head or preamble over [`tandem_proto::MAX_PART_HEAD`], or a part
//! repeating a field read as one value (multer keeps the last copy, aiohttp the first), is a
//! payload error.

use bytes::Bytes;
use futures_util::{StreamExt, future};
use http::HeaderMap;
use tandem_proto::MultipartScanner;

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
        // The scanner is dropped at its first refusal, which ends the stream there: what
        // follows a refused head is not to be parsed.
        let scanner = Some(MultipartScanner::new(&boundary));
        let checked = body.scan(scanner, |scanner, item| {
            let Some(checker) = scanner else { return future::ready(None) };
            let refused = match &item {
                Ok(chunk) => checker.scan(chunk).err(),
                Err(_) => None,
            };
            if let Some(refused) = refused {
                *scanner = None;
                return future::ready(Some(Err(Error::new(Kind::Payload, refused))));
            }
            future::ready(Some(item))
        });
        MultipartReader { inner: multer::Multipart::new(checked, boundary) }
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
