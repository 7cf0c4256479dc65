//! One request on an HTTP/2 stream: the request head made from the same checked fields an
//! HTTP/1.1 request sends, the body within the server's flow-control window, and the
//! response head. The body is read by [`RawBody`](crate::body::RawBody) through
//! [`Http2Body`].
//!
//! `h2` does the protocol: HPACK, framing, flow control, the stream's states and the
//! server's stream limit. What is ours is which fields go (the connection-specific ones of
//! RFC 9113 §8.2.2 do not, and `Host` becomes `:authority`), when the body is sent, and
//! which failures a request may be sent again after.

use std::{
    future::poll_fn,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::{FutureExt as _, StreamExt as _};
use http::{HeaderMap, HeaderName, Method, Request, Uri, Version, header, response::Parts};
use tandem_connect::{
    Http2Stream,
    h2::{self, Reason, RecvStream, SendStream},
};

use crate::{
    conn::{Failure, OnChunk, Outgoing},
    error::{Error, Kind},
    read_limits::ReadLimits,
    request::StreamBody,
    timeout::Deadlines,
    timings::Recorder,
};

/// Sends `req` on `stream` (and the streamed `body`, if any), and waits for the final
/// response head; the response body follows on the returned [`RecvStream`].
///
/// `Expect: 100-continue` is sent as asked, but the body goes at once: the server's
/// flow-control window already bounds what it must take before it answers, and waiting
/// would cost a round trip.
pub(crate) async fn exchange(
    stream: &mut Http2Stream,
    req: &Outgoing<'_>,
    body: Option<&mut StreamBody>,
    deadlines: &Deadlines,
    on_chunk: OnChunk<'_>,
    timing: Option<&Recorder>,
) -> Result<(Parts, RecvStream), Failure> {
    let head = request_head(req, body.is_some()).map_err(Failure::fatal)?;
    let whole = req.body.filter(|b| !b.is_empty());
    let end_of_stream = whole.is_none() && body.is_none();
    // Nothing has left yet when these fail, so the request can go again on any
    // connection, whatever its method.
    let sender = stream.sender().clone();
    let mut sender = deadlines
        .run(None, async { Ok(sender.ready().await) })
        .await
        .map_err(Failure::fatal)?
        .map_err(|e| Failure::unprocessed(error_before_response(&e)))?;
    let mut interim = 0;
    let (mut response, mut outgoing) = sender
        .send_request(head, end_of_stream)
        .map_err(|e| Failure::unprocessed(error_before_response(&e)))?;
    if let Some(whole) = whole {
        // Queued whole: `h2` sends it as the server's window opens.
        outgoing.send_data(whole.clone(), true).map_err(|e| failure(&e))?;
    } else if let Some(body) = body {
        // Interim responses are taken as the body goes, or `h2` would queue them unread.
        let mut refused = None;
        let sending = async {
            let mut send = std::pin::pin!(send_stream(&mut outgoing, body, on_chunk));
            let mut interim_over = false;
            poll_fn(|cx| {
                if !interim_over {
                    match poll_interim(&mut response, &mut interim, req.read, cx) {
                        Poll::Ready(Err(error)) => {
                            refused = Some(error);
                            return Poll::Ready(Ok(()));
                        }
                        Poll::Ready(Ok(())) => interim_over = true,
                        Poll::Pending => {}
                    }
                }
                send.as_mut().poll(cx)
            })
            .await
        };
        let streamed = deadlines.run(None, sending).await;
        if let Some(error) = refused {
            return Err(Failure::fatal(error));
        }
        if let Err(error) = streamed {
            // A server may answer before it has read the whole body, and then reset the
            // stream (RFC 9113 §8.1): its answer, if it came, is the outcome.
            return match (&mut response).now_or_never() {
                Some(Ok(answer)) => Ok(answer.into_parts()),
                _ => Err(Failure::fatal(error)),
            };
        }
    }
    if let Some(timing) = timing {
        timing.sent();
    }
    let answer = poll_fn(|cx| {
        if let Poll::Ready(Err(error)) = poll_interim(&mut response, &mut interim, req.read, cx) {
            return Poll::Ready(Err(Failure::fatal(error)));
        }
        response.poll_unpin(cx).map(|answer| answer.map_err(|e| failure(&e)))
    });
    let answer = deadlines.read(async { Ok(answer.await) }).await.map_err(Failure::fatal)??;
    Ok(answer.into_parts())
}

/// Takes the interim (1xx) responses `h2` has queued on the stream, counting them against
/// `max_interim_responses`: ready when the final head (or the stream's end) is next, an
/// error past the limit, pending while the stream may still bring one.
fn poll_interim(
    response: &mut h2::client::ResponseFuture,
    seen: &mut usize,
    limits: ReadLimits,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Error>> {
    loop {
        match response.poll_informational(cx) {
            Poll::Ready(Some(Ok(_))) => {
                *seen += 1;
                let max = limits.max_interim_responses();
                if *seen > max {
                    let error = format!("more than {max} interim (1xx) responses");
                    return Poll::Ready(Err(Error::new(Kind::Response, error)));
                }
            }
            // A broken stream fails the response itself, which says how.
            Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(Ok(())),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// The request's HTTP/2 head: the method, `:scheme`, `:authority` (the `Host` the fields
/// carry) and `:path`, and every field but the connection-specific ones.
fn request_head(req: &Outgoing<'_>, streamed: bool) -> Result<Request<()>, Error> {
    let fields = req.headers.headers();
    let authority = fields.get(header::HOST).map_or_else(
        || &req.url[url::Position::BeforeHost..url::Position::AfterPort],
        |h| h.to_str().unwrap_or_default(),
    );
    let path = match req.raw_target {
        Some(raw) => raw,
        None => &req.url[url::Position::BeforePath..url::Position::AfterQuery],
    };
    let uri = Uri::builder()
        .scheme(req.url.scheme())
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|e| Error::new(Kind::Request, e))?;
    let mut head = Request::new(());
    *head.method_mut() = req.method.clone();
    *head.uri_mut() = uri;
    *head.version_mut() = Version::HTTP_2;
    let headers = head.headers_mut();
    copy_fields(fields, headers);
    // A whole body's length is known: sent, as HTTP/1.1 frames the body by it (an empty
    // POST, PUT or PATCH says 0 there too). A streamed body's is not.
    let length = match req.body {
        _ if streamed => None,
        Some(body) => Some(body.len()),
        None if matches!(*req.method, Method::POST | Method::PUT | Method::PATCH) => Some(0),
        None => None,
    };
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, length.into());
    }
    Ok(head)
}

/// Holds an HTTP/2 response's fields to the request's head limits as the HTTP/1.1 parser
/// holds a head's lines (`max_headers`, `max_field_size`). `h2` bounds only the whole list
/// (the connector's `http2_max_header_list_size`), which fits a field eight times the
/// default field limit, or two thousand small ones.
pub(crate) fn check_fields(fields: &HeaderMap, limits: &ReadLimits) -> Result<(), Error> {
    limits.head().check_head_fields(fields).map_err(|e| Error::new(Kind::Response, e))
}

/// Copies `fields` but `Host` (which became `:authority`), the connection-specific fields
/// HTTP/2 forbids (RFC 9113 §8.2.2) with any field `Connection` names, and
/// `Proxy-Authorization`, which is for a proxy, never for the origin a tunnel reaches.
fn copy_fields(fields: &HeaderMap, into: &mut HeaderMap) {
    let named_by_connection = |name: &HeaderName| {
        fields.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(name.as_str())))
        })
    };
    let has_connection = fields.contains_key(header::CONNECTION);
    into.reserve(fields.len());
    for (name, value) in fields {
        let forbidden = matches!(
            *name,
            header::HOST
                | header::CONNECTION
                | header::TRANSFER_ENCODING
                | header::UPGRADE
                | header::PROXY_AUTHORIZATION
        ) || name == "keep-alive"
            || name == "proxy-connection"
            || (*name == header::TE && value != "trailers")
            || (has_connection && named_by_connection(name));
        if !forbidden {
            into.append(name, value.clone());
        }
    }
}

/// Sends a streamed body, each chunk as the server's window lets it go, then the end of
/// the stream.
async fn send_stream(
    send: &mut SendStream<Bytes>,
    StreamBody(body, _): &mut StreamBody,
    on_chunk: OnChunk<'_>,
) -> Result<(), Error> {
    let closed = |e: h2::Error| Error::new(Kind::Disconnected, e);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::new(Kind::Request, e))?;
        let mut rest = chunk.clone();
        while !rest.is_empty() {
            send.reserve_capacity(rest.len());
            let granted = match poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(granted) => granted.map_err(closed)?,
                None => return Err(Error::new(Kind::Disconnected, "the stream closed")),
            };
            let piece = rest.split_to(granted.min(rest.len()));
            send.send_data(piece, false).map_err(closed)?;
        }
        if !chunk.is_empty() {
            on_chunk(&chunk);
        }
    }
    send.send_data(Bytes::new(), true).map_err(closed)
}

/// What a failure before the response head means to the caller.
fn error_before_response(e: &h2::Error) -> Error {
    let kind = if e.is_io() {
        Kind::Io
    } else if e.is_remote() && (e.is_reset() || e.is_go_away()) {
        Kind::Disconnected
    } else {
        Kind::Response
    };
    Error::new(kind, e.to_string())
}

/// The response body as it comes off its stream. Dropping it before the end resets the
/// stream alone; the connection goes on carrying other requests.
pub(crate) struct Http2Body {
    recv: RecvStream,
    /// Holds the request's place among the connection's streams until the body ends.
    _stream: Http2Stream,
}

impl Http2Body {
    pub(crate) fn new(recv: RecvStream, stream: Http2Stream) -> Self {
        Http2Body { recv, _stream: stream }
    }

    /// Whether the server ended the stream and every byte has been read.
    pub(crate) fn is_end(&self) -> bool {
        self.recv.is_end_stream()
    }

    /// The next piece of the body, `None` at its end (trailers are not read). Each piece
    /// read opens the window by as much, so the server sends no more than the reader takes.
    pub(crate) async fn next(&mut self, deadlines: &Deadlines) -> Result<Option<Bytes>, Error> {
        let recv = &mut self.recv;
        let data = deadlines
            .read(async {
                poll_fn(|cx| recv.poll_data(cx))
                    .await
                    .transpose()
                    .map_err(|e| Error::new(Kind::Payload, e))
            })
            .await?;
        if let Some(data) = &data {
            // Fails only on a stream already closed, which then has no window to open.
            let _ = self.recv.flow_control().release_capacity(data.len());
        }
        Ok(data)
    }
}

/// A failure after the request went out, before its response head. A stream the server
/// refused, or one past the last it said it would process in a GOAWAY, was not processed
/// (RFC 9113 §8.7, §6.8) and may go again whatever its method; an IO error may be a
/// connection the server closed as it was picked up, as on HTTP/1.1.
fn failure(e: &h2::Error) -> Failure {
    let error = error_before_response(e);
    if e.reason() == Some(Reason::REFUSED_STREAM) || (e.is_go_away() && e.is_remote()) {
        Failure::unprocessed(error)
    } else if e.is_io() {
        Failure::retryable(error)
    } else {
        Failure::fatal(error)
    }
}
