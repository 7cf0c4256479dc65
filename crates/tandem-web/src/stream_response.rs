//! aiohttp's streaming model: a handler builds a [`StreamResponse`], `prepare`s it (the
//! head goes out then), `write`s the body as it makes it, and `write_eof`s.
//!
//! The head must reach the connection while the handler is still running, yet a handler is
//! a future that yields one response at its end. So the app runs every handler through
//! [`respond`], inside the request's context scope (see [`context`](crate::context)),
//! where a slot waits, as a handler's signature has no room for one: `prepare` puts the head
//! and the receiving end of the body in it, and `respond`, seeing it filled, answers with
//! that head at once. The handler future itself moves into
//! the body, which polls it as the connection pulls chunks: no task is spawned, the
//! handler's writes wait for the connection to take each chunk (back-pressure), and when
//! the connection goes away the body is dropped and the handler with it.

use std::{
    cell::Cell,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, StatusCode};
use tokio::sync::mpsc;

use crate::{
    Error, Request,
    handler::{BoxFuture, catch_panic, poll_catching_panic},
    response::{Body, IntoResponse, Response},
};

/// Chunks a [`StreamResponse`] may have written ahead of the connection: one, so each
/// `write` beyond it waits until the previous chunk is taken, as aiohttp's `write` awaits
/// its transport's drain.
const CHUNKS_AHEAD: usize = 1;

/// A prepared head and where its body comes from.
type Prepared = (Response, mpsc::Receiver<Bytes>);

/// The slot `prepare` fills, one per request, kept beside the request's
/// [`context`](crate::context).
pub(crate) enum Slot {
    /// The handler may prepare.
    Open,
    /// It did: the head and its body's chunks, for `respond` to take.
    Filled(Prepared),
    /// No (more) preparing here: `respond` took the head, or this is a spawned task.
    Closed,
}

thread_local! {
    /// Slots filled on this thread and not yet taken by their `respond`. While there are
    /// none, `respond` need not look at its request's slot after a poll, which would cost
    /// every request a visit to its state. A slot is filled and taken within one poll of
    /// its `respond`, so on one thread; one filled and never taken (a handler's future
    /// dropped at that moment) leaves the count above zero, which only sends this thread's
    /// `respond`s the long way.
    static FILLED: Cell<usize> = const { Cell::new(0) };
}

/// Runs a handler (and its middlewares) to its response, catching a panic as a 500; a
/// handler that prepares a [`StreamResponse`] is answered with it at once, and goes on
/// running inside that response's body. It runs inside the request's context scope,
/// where the slot is.
///
/// Every request passes here, so a handler that never prepares costs only a look at the
/// slot after each poll: no channel, and no box beyond the handler's own.
pub(crate) async fn respond(handler: BoxFuture<Response>) -> Response {
    let mut handler = Some(handler);
    std::future::poll_fn(move |cx| {
        let Some(running) = handler.as_mut() else { return Poll::Pending };
        let polled = poll_catching_panic(running, cx);
        if FILLED.get() == 0 {
            return polled;
        }
        let prepared = crate::context::with_slot(|slot| {
            let filled = matches!(slot, Slot::Filled(_));
            filled.then(|| std::mem::replace(slot, Slot::Closed))
        });
        let Some(Some(Slot::Filled((head, chunks)))) = prepared else { return polled };
        FILLED.set(FILLED.get() - 1);
        Poll::Ready(match polled {
            // Prepared and finished within one poll: the chunks wait in the channel, and
            // the body still looks at how the handler ended.
            Poll::Ready(response) => {
                with_body(head, Some(Box::pin(std::future::ready(response))), chunks)
            }
            Poll::Pending => {
                let rest = handler
                    .take()
                    .map(|handler| -> BoxFuture<Response> { Box::pin(catch_panic(handler)) });
                with_body(head, rest, chunks)
            }
        })
    })
    .await
}

/// `head` with a body that takes `chunks` as they come, while polling the handler still
/// running (if it is) so that it can write them.
fn with_body(
    mut head: Response,
    handler: Option<BoxFuture<Response>>,
    chunks: mpsc::Receiver<Bytes>,
) -> Response {
    head.set_body(Body::Stream(Box::pin(Written { handler, chunks, failed: false })));
    head
}

/// The body of a prepared [`StreamResponse`]: its chunks, ended once the handler has
/// both finished writing and returned.
struct Written {
    handler: Option<BoxFuture<Response>>,
    chunks: mpsc::Receiver<Bytes>,
    /// The handler returned an error, to be told once the chunks it wrote are sent.
    failed: bool,
}

impl Stream for Written {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(handler) = &mut self.handler
            && let Poll::Ready(response) = handler.as_mut().poll(cx)
        {
            self.handler = None;
            self.failed = response.inner.error.is_some();
        }
        match self.chunks.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => Poll::Ready(Some(Ok(chunk))),
            // The head is sent, so a failure can only cut the body short (after what was
            // written), which closes the connection.
            Poll::Ready(None) if self.failed => {
                self.failed = false;
                Poll::Ready(Some(Err(Error::new("the handler failed mid-response"))))
            }
            Poll::Ready(None) if self.handler.is_none() => Poll::Ready(None),
            // Written to the end, but the handler has not returned yet: it was polled
            // above, and wakes this body when it does.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

/// A response whose head is sent before its body is made: aiohttp's `web.StreamResponse`.
///
/// Set the status and headers through [`response_mut`](Self::response_mut), then
/// [`prepare`](Self::prepare) sends the head (after the `on_response_prepare` signals) and
/// freezes it; [`write`](Self::write) sends each chunk, waiting while the client is slower
/// than the handler; [`write_eof`](Self::write_eof) ends the body, which returning the
/// response from the handler also does. The body is chunked unless a `Content-Length` was
/// set. [`Response::stream`] is the other way to stream: from a `Stream` of chunks.
///
/// ```
/// use tandem_web::{Error, Request, StreamResponse};
///
/// async fn countdown(req: Request) -> Result<StreamResponse, Error> {
///     let mut response = StreamResponse::new();
///     response.response_mut().unwrap().set_content_type("text/plain")?;
///     response.prepare(&req).await?;
///     for n in (1..=3).rev() {
///         response.write(format!("{n}\n")).await?;
///     }
///     response.write_eof().await?;
///     Ok(response)
/// }
/// ```
///
/// `prepare` works inside the handler's own task (where the app runs it), not in a task the
/// handler spawns.
#[derive(Debug)]
pub struct StreamResponse {
    state: State,
}

#[derive(Debug)]
enum State {
    Unprepared(Response),
    Prepared(mpsc::Sender<Bytes>),
    Ended,
}

impl Default for StreamResponse {
    fn default() -> Self {
        StreamResponse::new()
    }
}

impl From<Response> for StreamResponse {
    /// A stream response with `response`'s status, reason and headers; its body is
    /// replaced by what is written.
    fn from(response: Response) -> Self {
        StreamResponse { state: State::Unprepared(response) }
    }
}

impl StreamResponse {
    /// A 200 with no headers yet.
    pub fn new() -> Self {
        Response::new(StatusCode::OK).into()
    }

    /// The response to set the status and headers on, until `prepare`; `None` once the
    /// head has gone out (aiohttp raises then).
    pub fn response_mut(&mut self) -> Option<&mut Response> {
        match &mut self.state {
            State::Unprepared(response) => Some(response),
            State::Prepared(_) | State::Ended => None,
        }
    }

    /// The headers to set, until `prepare`.
    pub fn headers_mut(&mut self) -> Option<&mut HeaderMap> {
        self.response_mut().map(Response::headers_mut)
    }

    /// Whether `prepare` has sent the head: aiohttp's `prepared`.
    pub fn is_prepared(&self) -> bool {
        !matches!(self.state, State::Unprepared(_))
    }

    /// Closes the connection after this response: aiohttp's `force_close()`. Once prepared
    /// it is too late to say so in the head, so it is refused.
    pub fn force_close(&mut self) -> Result<(), Error> {
        let response =
            self.response_mut().ok_or_else(|| Error::new(StreamError::AlreadyPrepared))?;
        response.force_close();
        Ok(())
    }

    /// Sends the head: the response goes to the connection, through the app's
    /// `on_response_prepare` signals and error renderer, while the handler goes on.
    /// Preparing twice does nothing, as in aiohttp. Fails outside a handler the app runs.
    pub async fn prepare(&mut self, _req: &Request) -> Result<(), Error> {
        let State::Unprepared(head) = &mut self.state else { return Ok(()) };
        if crate::context::with_slot(|slot| matches!(slot, Slot::Open)) != Some(true) {
            return Err(Error::new("StreamResponse::prepare outside a handler's task"));
        }
        let (sender, receiver) = mpsc::channel(CHUNKS_AHEAD);
        let head = std::mem::take(head);
        self.state = State::Prepared(sender);
        crate::context::with_slot(|slot| *slot = Slot::Filled((head, receiver)));
        FILLED.set(FILLED.get() + 1);
        // Lets the app take the head and the connection start writing it before the
        // handler goes on.
        tokio::task::yield_now().await;
        Ok(())
    }

    /// Sends a chunk of the body, waiting while the connection has not taken the one
    /// before. Fails before `prepare`, after `write_eof`, or once the client has gone.
    pub async fn write(&mut self, chunk: impl Into<Bytes>) -> Result<(), Error> {
        let State::Prepared(sender) = &self.state else {
            return Err(Error::new("StreamResponse::write before prepare or after write_eof"));
        };
        let chunk = chunk.into();
        if chunk.is_empty() {
            return Ok(());
        }
        sender.send(chunk).await.map_err(|_| Error::new(StreamError::ClientGone))
    }

    /// Ends the body, once the connection has taken every chunk written (aiohttp's
    /// `write_eof` drains too). Returning the response from the handler ends it as well.
    pub async fn write_eof(&mut self) -> Result<(), Error> {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Unprepared(_) => Err(Error::new("StreamResponse::write_eof before prepare")),
            State::Prepared(sender) => {
                let drained = sender.reserve_many(CHUNKS_AHEAD).await;
                drained.map(drop).map_err(|_| Error::new(StreamError::ClientGone))
            }
            State::Ended => Ok(()),
        }
    }
}

impl IntoResponse for StreamResponse {
    /// Unprepared, the response as it stands (its head and an empty body); prepared, the
    /// head is already out and what this makes is never sent.
    fn into_response(self) -> Response {
        match self.state {
            State::Unprepared(response) => response,
            State::Prepared(_) | State::Ended => Response::default(),
        }
    }
}

/// Why a [`StreamResponse`] call failed, beside a misuse (writing before `prepare`).
#[derive(Debug)]
enum StreamError {
    /// The client went away before the response was all sent.
    ClientGone,
    /// The head had gone out already.
    AlreadyPrepared,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StreamError::ClientGone => "the client went away before the response was sent",
            StreamError::AlreadyPrepared => "the response is prepared: its head has been sent",
        })
    }
}

impl std::error::Error for StreamError {}
