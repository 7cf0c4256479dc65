//! aiohttp's `compress=`: a request body sent deflate- or gzip-encoded, whole or as it
//! streams.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderValue, header};

use crate::{
    error::{Error, Kind},
    request::{RequestSpec, StreamBody},
};

/// A content coding a request body can be sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// `deflate` (zlib format, RFC 9110 §8.4.1.2): aiohttp's `compress=True`.
    Deflate,
    /// `gzip`.
    Gzip,
}

impl Compression {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Compression::Deflate => "deflate",
            Compression::Gzip => "gzip",
        }
    }
}

/// Encodes `spec`'s body in `coding` and says so in `Content-Encoding`. A body that already
/// names a `Content-Encoding` is an error, as in aiohttp: it would be encoded twice.
pub(crate) fn compress(spec: &mut RequestSpec, coding: Compression) -> Result<(), Error> {
    if spec.headers.contains_key(header::CONTENT_ENCODING) {
        return Err(Error::new(
            Kind::Request,
            "compress and a Content-Encoding of the request's own cannot be combined",
        ));
    }
    if let Some(body) = &mut spec.body {
        body.bytes = encode_bytes(&body.bytes, coding)?;
    } else if let Some(StreamBody(stream, _)) = spec.stream.take() {
        // Encoded, its length is unknown until it has been sent: chunked.
        spec.stream = Some(StreamBody(encode_stream(stream, coding)?, None));
    } else {
        return Ok(());
    }
    spec.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
    Ok(())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body produced as it is sent.
pub(crate) type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// `data` encoded in `coding`, whole.
pub(crate) fn encode_bytes(data: &[u8], coding: Compression) -> Result<Bytes, Error> {
    let mut encoder = Encoder::new(coding)?;
    let mut out = encoder.write(data)?;
    out.extend_from_slice(&encoder.finish()?);
    Ok(out.into())
}

/// `stream` encoded in `coding` a piece at a time, as it is read.
pub(crate) fn encode_stream(stream: BodyStream, coding: Compression) -> Result<BodyStream, Error> {
    let encoder = Encoder::new(coding)?;
    let pieces = futures_util::stream::unfold(
        (Some(stream), Some(encoder)),
        |(mut stream, mut encoder)| async move {
            let source = stream.as_mut()?;
            let result = match source.next().await {
                Some(Ok(chunk)) => encoder.as_mut()?.write(&chunk),
                Some(Err(e)) => return Some((Err(e), (None, None))),
                None => {
                    stream = None;
                    encoder.take()?.finish()
                }
            };
            let item = result.map(Bytes::from).map_err(Into::into);
            Some((item, (stream, encoder)))
        },
    );
    Ok(Box::pin(pieces))
}

#[cfg(feature = "compression")]
struct Encoder(tandem_io::ContentEncoder);

#[cfg(feature = "compression")]
impl Encoder {
    #[allow(
        clippy::unnecessary_wraps,
        reason = "without the `compression` feature the same constructor fails"
    )]
    fn new(coding: Compression) -> Result<Self, Error> {
        Ok(Encoder(match coding {
            Compression::Deflate => tandem_io::ContentEncoder::deflate(),
            Compression::Gzip => tandem_io::ContentEncoder::gzip(),
        }))
    }

    /// Encodes `data`, returning what the encoder has output so far.
    fn write(&mut self, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.0.write(data).map_err(|e| Error::new(Kind::Request, e))?;
        Ok(self.0.take_output())
    }

    fn finish(self) -> Result<Vec<u8>, Error> {
        self.0.finish().map_err(|e| Error::new(Kind::Request, e))
    }
}

/// Without the `compression` feature there is no encoder: asking for one fails the request.
#[cfg(not(feature = "compression"))]
enum Encoder {}

#[cfg(not(feature = "compression"))]
impl Encoder {
    fn new(_: Compression) -> Result<Self, Error> {
        Err(Error::new(Kind::Request, "request compression needs the `compression` feature"))
    }

    fn write(&mut self, _: &[u8]) -> Result<Vec<u8>, Error> {
        match *self {}
    }

    fn finish(self) -> Result<Vec<u8>, Error> {
        match self {}
    }
}
