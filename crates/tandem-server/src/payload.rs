//! The request body, read from the connection as the handler asks for it.
//!
//! The connection lends its read half and buffer to the request's [`Payload`] for as long
//! as the body is being read, and gets them back when the payload is dropped: when the
//! handler returns, or when a streamed response that holds the payload (an echo) ends.
//! Requests without a body never lend anything, so a GET allocates no channel.

use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::HeaderMap;
use tandem_proto::{BodyDecoder, BodyEvent};
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    sync::oneshot,
};

use crate::HttpError;

/// How much a read asks the socket for at once.
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// A socket's read half that can also wait for readability without a buffer, so an idle
/// connection holds none.
pub(crate) trait ConnRead: AsyncRead + Send + Sync + Unpin + 'static {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>>;
}

impl ConnRead for tokio::net::tcp::OwnedReadHalf {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.as_ref().poll_read_ready(cx)
    }
}

impl ConnRead for tokio::net::unix::OwnedReadHalf {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.as_ref().poll_read_ready(cx)
    }
}

/// A connection's read half and the bytes read but not yet parsed.
pub(crate) struct ReadState {
    pub(crate) io: Box<dyn ConnRead>,
    pub(crate) buf: BytesMut,
}

/// What a payload hands back to its connection: the read state and where the body stands.
pub(crate) type Returned = (ReadState, BodyDecoder);

struct Lent {
    read: ReadState,
    decoder: BodyDecoder,
    home: oneshot::Sender<Returned>,
}

/// A request body, read chunk by chunk: aiohttp's `request.content`.
///
/// Reads are not limited by `client_max_size` (as in aiohttp, which limits only `read`,
/// `text`, `json` and `post`); a handler that streams decides for itself how much to take.
#[derive(Default)]
pub struct Payload {
    // Boxed: a request without a body carries two null pointers, and moving a request
    // (into its handler's future, say) copies 16 bytes rather than 170.
    lent: Option<Box<Lent>>,
    trailers: Option<Box<HeaderMap>>,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload").field("reading", &self.lent.is_some()).finish_non_exhaustive()
    }
}

impl Payload {
    /// A payload reading `decoder`'s body from `read`, returned on drop through `home`.
    pub(crate) fn lend(
        read: ReadState,
        decoder: BodyDecoder,
        home: oneshot::Sender<Returned>,
    ) -> Self {
        Payload { lent: Some(Box::new(Lent { read, decoder, home })), trailers: None }
    }

    /// The next chunk of the body, or `None` at its end.
    ///
    /// A malformed chunked body is a 400, and a connection closed mid-body is a 400 too;
    /// either way the connection is closed once the handler returns.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        let Some(lent) = &mut self.lent else { return Ok(None) };
        loop {
            match lent.decoder.decode(&mut lent.read.buf) {
                Ok(Some(BodyEvent::Data(data))) => return Ok(Some(data)),
                Ok(Some(BodyEvent::Trailers(trailers))) => self.trailers = Some(Box::new(trailers)),
                Ok(Some(BodyEvent::End)) => return Ok(None),
                Ok(None) => {
                    lent.read.buf.reserve(READ_CHUNK);
                    let n = lent
                        .read
                        .io
                        .read_buf(&mut lent.read.buf)
                        .await
                        .map_err(|_| incomplete())?;
                    if n == 0 {
                        return lent.decoder.decode_eof().map(|_| None).map_err(|_| incomplete());
                    }
                }
                Err(err) => return Err(HttpError::bad_request().with_text(format!("400: {err}"))),
            }
        }
    }

    /// The trailer fields of a chunked body, once it has been read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_deref()
    }

    /// The body as a stream of chunks.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, crate::Error>> + Send {
        futures_util::stream::unfold(self, |mut payload| async move {
            match payload.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), payload)),
                Ok(None) => None,
                Err(err) => Some((Err(err.into()), payload)),
            }
        })
    }
}

fn incomplete() -> HttpError {
    HttpError::bad_request().with_text("400: connection closed before the body was complete")
}

impl Drop for Payload {
    fn drop(&mut self) {
        if let Some(lent) = self.lent.take() {
            // The connection may be gone already (it was shut down); then so is the socket.
            let Lent { read, decoder, home } = *lent;
            let _ = home.send((read, decoder));
        }
    }
}
