//! HTTP/2: the driver between the `h2` crate's streams and the app.
//!
//! `h2` speaks the protocol: framing, HPACK, flow control, stream states, and the limits of
//! [`Http2Config`]. This file only turns each stream into an `http::Request` whose body reads
//! the stream, answers it through [`App::handle`] (so routing, middlewares, tower layers and
//! compression are the same as on HTTP/1.1), and streams the response back within the
//! peer's flow-control window.
//!
//! A connection arrives here two ways: h2c by prior knowledge, when a plaintext connection
//! opens with the HTTP/2 preface (`conn.rs` sees it where the HTTP/1.1 parser refuses the
//! request line `PRI * HTTP/2.0`), and over TLS when ALPN settled on `h2` (`tls.rs`).
//!
//! Each stream is answered on the connection's task as far as its first poll goes (on a
//! current-thread runtime) and then, if unfinished, as a task in the connection's
//! `JoinSet`, so the connection's task (which the server's shutdown tracks) outlives them
//! all, and dropping it ends them. A stream the peer resets cancels its handler at once, as
//! a closed connection would on HTTP/1.1: a rapid-reset peer (CVE-2023-44487) never has
//! more handlers running than the stream limit allows, and past twice that, new streams
//! are refused while cancelled ones wind down.

use std::{
    cell::RefCell,
    future::{Future, poll_fn},
    net::SocketAddr,
    pin::{Pin, pin},
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use h2::{
    Reason, RecvStream, SendStream,
    server::{Connection, SendResponse},
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use http_body::{Body as _, Frame, SizeHint};
use tandem_io::Upgraded;
use tokio::{task::JoinSet, time::Sleep};

use super::{
    Http2Config, ServerConfig, access_log::Sink, conn::Shutdown, write::poll_body_catching_panic,
};
use tandem_proto::RequestParser;

use crate::{
    App, HttpError, TlsInfo, expect::ContinueSignal, response::Body, service::ConnectionContext,
};

/// The 24 bytes every HTTP/2 connection opens with (RFC 9113, 3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl Http2Config {
    fn builder(&self, config: &ServerConfig) -> h2::server::Builder {
        let header_list = u32::try_from(config.limits.get_max_head_size()).unwrap_or(u32::MAX);
        let mut builder = h2::server::Builder::new();
        builder
            .max_concurrent_streams(self.max_concurrent_streams)
            .initial_window_size(self.stream_window)
            .initial_connection_window_size(self.connection_window)
            .max_header_list_size(header_list)
            .max_concurrent_reset_streams(self.max_concurrent_reset_streams)
            .max_pending_accept_reset_streams(self.max_pending_accept_reset_streams)
            .max_local_error_reset_streams(Some(self.max_local_error_reset_streams))
            .max_send_buffer_size(self.max_send_buffer_size);
        builder
    }
}

/// Whether `buf`, the first bytes of a connection, could be the HTTP/2 preface: it is one
/// or a prefix of one.
pub(crate) fn may_be_preface(buf: &[u8]) -> bool {
    let n = buf.len().min(PREFACE.len());
    buf[..n] == PREFACE[..n]
}

/// What every stream of a connection shares.
struct Shared {
    app: App,
    config: Arc<ServerConfig>,
    remote: Option<SocketAddr>,
    tls: Option<Arc<TlsInfo>>,
    /// Where the streams' access log entries go.
    log: Sink,
}

/// Serves one HTTP/2 connection, from its preface (still unread in `io`) to its end: the
/// peer closes it, an error, the keep-alive timeout with no stream open, or the server's
/// shutdown (GOAWAY, then open streams finish, for at most the shutdown timeout).
///
/// `io` is one type for h2c and TLS alike, so `h2`'s connection code (generic over it) is
/// compiled once; it buffers its reads and writes, so the boxed IO's indirect calls are
/// few.
pub(crate) async fn serve(
    io: Upgraded,
    remote: Option<SocketAddr>,
    app: App,
    config: Arc<ServerConfig>,
    shutdown: Shutdown,
    tls: Option<Arc<TlsInfo>>,
) {
    let handshake = config.http2.builder(&config).handshake::<Upgraded, Bytes>(io);
    let handshake = tokio::time::timeout(config.head_timeout, handshake);
    let Some(outcome) = shutdown.token().run_until_cancelled(handshake).await else { return };
    let mut connection = match outcome {
        Ok(Ok(connection)) => connection,
        Ok(Err(err)) => {
            tracing::debug!(target: "tandem::server", ?remote, error = %err, "HTTP/2 handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(target: "tandem::server", ?remote, "HTTP/2 handshake timed out");
            return;
        }
    };
    let log = Sink::for_connection(&config);
    let shared = Arc::new(Shared { app, config: Arc::clone(&config), remote, tls, log });
    if let Err(err) = drive(&mut connection, &shared, &shutdown).await {
        tracing::debug!(target: "tandem::server", ?remote, error = %err, "HTTP/2 connection ended");
    }
}

/// Accepts streams until the connection ends, each answered by a task of its own.
async fn drive(
    connection: &mut Connection<Upgraded, Bytes>,
    shared: &Arc<Shared>,
    shutdown: &Shutdown,
) -> Result<(), h2::Error> {
    let config = &shared.config;
    // Handlers of streams the peer reset end at their next poll; until they have, they
    // count here but not in `h2`'s stream limit. Past twice that limit, refuse new ones.
    let most = (config.http2.max_concurrent_streams as usize).max(1) * 2;
    let mut streams = JoinSet::new();
    // On a multi-threaded runtime a stream's task may run beside the connection's on
    // another worker; on a current-thread one (each of `run_app`'s workers) it could not.
    let inline = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread;
    let idle = tokio::time::sleep(config.keepalive_timeout);
    tokio::pin!(idle);
    let mut stopping = pin!(shutdown.token().cancelled());
    let mut answered_inline = None;
    // Set once GOAWAY is sent: how long open streams may still take.
    let mut closing: Option<Pin<Box<Sleep>>> = None;
    loop {
        // Polled in this order: a finished stream's slot is freed before a new stream is
        // weighed against the limit, and new streams are taken before the shutdown or a
        // timer is heeded.
        let event = poll_fn(|cx| {
            if !streams.is_empty() && streams.poll_join_next(cx).is_ready() {
                return Poll::Ready(Event::StreamDone);
            }
            if let Poll::Ready(accepted) = connection.poll_accept(cx) {
                return Poll::Ready(Event::Accepted(accepted));
            }
            if closing.is_none() && stopping.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Stopping);
            }
            if streams.is_empty() && closing.is_none() && idle.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Idle);
            }
            if let Some(closing) = closing.as_mut()
                && closing.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Event::Closed);
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::StreamDone => {
                if streams.is_empty() {
                    idle.as_mut().reset(tokio::time::Instant::now() + config.keepalive_timeout);
                }
            }
            Event::Accepted(Some(Ok((request, mut respond)))) => {
                if streams.len() >= most {
                    respond.send_reset(Reason::REFUSED_STREAM);
                } else if start(&mut streams, shared, request, respond, inline).await {
                    answered_inline = Some(tokio::time::Instant::now());
                }
            }
            Event::Accepted(Some(Err(err))) => return Err(err),
            Event::Accepted(None) => return Ok(()),
            Event::Stopping => {
                connection.graceful_shutdown();
                closing = Some(Box::pin(tokio::time::sleep(config.shutdown_timeout)));
            }
            Event::Idle => {
                // Streams answered inline never reset the timer: it is set again from the
                // last of them, if that was within the timeout.
                if let Some(last) = answered_inline.take()
                    && last + config.keepalive_timeout > tokio::time::Instant::now()
                {
                    idle.as_mut().reset(last + config.keepalive_timeout);
                    continue;
                }
                connection.graceful_shutdown();
                closing = Some(Box::pin(tokio::time::sleep(config.shutdown_timeout)));
            }
            Event::Closed => return close(connection).await,
        }
        // Once GOAWAY is out and no stream is open, close rather than wait for the peer
        // to acknowledge the PING of the graceful shutdown: its final GOAWAY names the
        // last stream the server took, so a request in flight is known unprocessed.
        // A stream that arrived just before the GOAWAY is taken first.
        if closing.is_some() && streams.is_empty() {
            match futures_util::FutureExt::now_or_never(connection.accept()) {
                Some(Some(Ok((request, respond)))) => {
                    start(&mut streams, shared, request, respond, inline).await;
                }
                Some(Some(Err(err))) => return Err(err),
                Some(None) => return Ok(()),
                None => return close(connection).await,
            }
        }
    }
}

/// What `h2` hands [`drive`] when asked for the next stream: one, an error, or the end of the
/// connection.
type Accepted = Option<Result<(http::Request<RecvStream>, SendResponse<Bytes>), h2::Error>>;

/// What woke [`drive`]'s loop.
#[expect(
    clippy::large_enum_variant,
    reason = "matched at once where it is made; boxing would allocate for every stream"
)]
enum Event {
    /// A stream's task ended.
    StreamDone,
    Accepted(Accepted),
    /// The server began shutting down.
    Stopping,
    /// No stream was open for the keep-alive timeout.
    Idle,
    /// The shutdown timeout passed after GOAWAY.
    Closed,
}

/// Starts answering a stream. With `inline`, its first poll runs here, on the connection's
/// task: most answers end at it (a handler ready at once, a response within the peer's
/// window), and those then cost no task of their own; the rest continue as one. Whether
/// it ended there.
async fn start(
    streams: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    request: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    inline: bool,
) -> bool {
    let mut answering = Box::pin(answer(Arc::clone(shared), request, respond));
    if inline && poll_fn(|cx| Poll::Ready(answering.as_mut().poll(cx))).await.is_ready() {
        return true;
    }
    streams.spawn(answering);
    false
}

/// Ends the connection with a final GOAWAY, given a moment to go out.
async fn close(connection: &mut Connection<Upgraded, Bytes>) -> Result<(), h2::Error> {
    connection.abrupt_shutdown(Reason::NO_ERROR);
    let flush = poll_fn(|cx| connection.poll_closed(cx));
    let _ = tokio::time::timeout(Duration::from_secs(1), flush).await;
    Ok(())
}

/// Answers one stream: its request through the app, then the response, logged.
///
/// Spawned boxed: the future holds the whole dispatch (several KiB), and tokio moves a
/// task's future by value as it spawns, stores and finishes it; boxed, it moves a pointer.
async fn answer(
    shared: Arc<Shared>,
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let (mut parts, recv) = request.into_parts();
    let method = parts.method.clone();
    let target = || {
        if method == Method::CONNECT {
            parts.uri.authority().map(ToString::to_string).unwrap_or_default()
        } else {
            parts.uri.path_and_query().map_or_else(|| "/".to_owned(), ToString::to_string)
        }
    };
    let field = |name: &str| parts.headers.get(name).map(HeaderValue::as_bytes);
    let mut log = shared.log.start(&method, target, Version::HTTP_2, &field);
    join_cookies(&mut parts.headers);
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // A client that sent `Expect: 100-continue` may wait for `100 Continue` before its body
    // (RFC 9110 10.1.1): it is sent once the route lets the request through, as on HTTP/1.1.
    let mut go_ahead = expects_continue(&parts.headers, &recv).then(|| {
        let (signal, go_ahead) = ContinueSignal::new();
        parts.extensions.insert(signal);
        go_ahead
    });
    let body = RequestBody::new(recv, &shared.config, length);
    let context = ConnectionContext {
        remote: shared.remote,
        tls: shared.tls.clone(),
        parser: RequestParser::with_limits(shared.config.limits),
    };
    let handled = shared.app.handle_from(parts, body, context);
    tokio::pin!(handled);
    // A reset cancels the handler, as a closed connection does on HTTP/1.1.
    let response = poll_fn(|cx| {
        if respond.poll_reset(cx).is_ready() {
            return Poll::Ready(None);
        }
        let polled = handled.as_mut().poll(cx).map(Some);
        if let Some(waiting) = go_ahead.as_mut()
            && let Poll::Ready(go) = Pin::new(waiting).poll(cx)
        {
            if go == Ok(true) {
                let interim = http::Response::builder().status(StatusCode::CONTINUE).body(());
                // A stream the client has reset meanwhile refuses it; the reset is seen above.
                let _ = respond.send_informational(interim.expect("a bare 100 is valid"));
            }
            go_ahead = None;
        }
        polled
    })
    .await;
    let Some(response) = response else {
        if let Some(entry) = log {
            entry.finish(shared.remote, CLIENT_CLOSED_REQUEST, 0, true);
        }
        return;
    };
    if let Some(entry) = log.as_deref_mut() {
        entry.answered(response.extensions(), || response.headers());
    }
    let status = response.status().as_u16();
    let head_only = method == Method::HEAD;
    let mut bytes = 0;
    let sent = send(respond, response, head_only, shared.config.send_timeout, &mut bytes).await;
    if let Err(err) = &sent {
        tracing::debug!(target: "tandem::server", remote = ?shared.remote, error = %err, "HTTP/2 response not sent");
    }
    if let Some(entry) = log {
        entry.finish(shared.remote, status, bytes, sent.is_err());
    }
}

/// Whether the request asks for `100 Continue` before a body that has yet to come.
fn expects_continue(headers: &HeaderMap, recv: &RecvStream) -> bool {
    let expect = headers.get(header::EXPECT).map(HeaderValue::as_bytes);
    expect.is_some_and(|e| e.eq_ignore_ascii_case(b"100-continue")) && !recv.is_end_stream()
}

/// The status logged for a stream its client reset before the response: nginx's "client
/// closed request". Never sent.
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// HTTP/2 may split `Cookie` into one field per cookie (RFC 9113, 8.2.3); joined again
/// with `"; "` before the app sees them, as on HTTP/1.1.
fn join_cookies(headers: &mut HeaderMap) {
    let mut cookies = headers.get_all(header::COOKIE).iter();
    if cookies.next().is_none() || cookies.next().is_none() {
        return;
    }
    let joined: Vec<&[u8]> =
        headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes).collect();
    if let Ok(value) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
        headers.insert(header::COOKIE, value);
    }
}

/// Why a response did not go out whole.
#[derive(Debug)]
enum SendError {
    H2(h2::Error),
    Reset(Reason),
    Body(crate::Error),
    /// The body ended short of its declared `Content-Length`, or ran past it.
    Length,
    TimedOut,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::H2(err) => write!(f, "{err}"),
            SendError::Reset(reason) => write!(f, "stream reset by the peer: {reason}"),
            SendError::Body(err) => write!(f, "response body failed: {err}"),
            SendError::Length => f.write_str("the response body broke its Content-Length"),
            SendError::TimedOut => {
                f.write_str("the peer's window stayed shut past the send timeout")
            }
        }
    }
}

impl From<h2::Error> for SendError {
    fn from(err: h2::Error) -> Self {
        SendError::H2(err)
    }
}

/// Sends `response` on the stream: its head, then its body as the peer's window allows,
/// then its trailers if it has any, adding the body bytes sent to `sent` as they go.
///
/// A request body not received whole by then is cut short by `h2` with
/// `RST_STREAM(NO_ERROR)` once the stream is dropped (RFC 9113, 8.1): a 413 answered early
/// tells the peer to stop sending, not that it failed.
async fn send(
    mut respond: SendResponse<Bytes>,
    response: http::Response<Body>,
    head_only: bool,
    send_timeout: Duration,
    sent: &mut u64,
) -> Result<(), SendError> {
    let (mut parts, body) = response.into_parts();
    let status = parts.status;
    // As on HTTP/1.1, 1xx, 204 and 304 carry no body, nor does an answer to HEAD.
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let declare = !bodiless && !parts.headers.contains_key(header::CONTENT_LENGTH);
    if let Some(length) = body.size_hint().exact().filter(|_| declare) {
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if !parts.headers.contains_key(header::DATE) {
        parts.headers.insert(header::DATE, date());
    }
    let end = head_only || bodiless || body.is_end_stream();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut stream = respond.send_response(http::Response::from_parts(parts, ()), end)?;
    if end {
        return Ok(());
    }
    send_body(&mut stream, body, declared, send_timeout, sent).await
}

/// Sends `body` on `stream`, and its trailers if it has any, adding to `sent` the bytes
/// handed to `h2` as they go. A body that breaks its `declared` length (a file that shrank
/// as it was read, a stream that stopped early or ran long) has its stream reset rather than
/// ended: `END_STREAM` after too few bytes would be a short body taken whole by a client
/// that does not count (RFC 9113 8.1.1), where HTTP/1.1 closes the connection.
async fn send_body(
    stream: &mut SendStream<Bytes>,
    mut body: Body,
    declared: Option<u64>,
    send_timeout: Duration,
    sent: &mut u64,
) -> Result<(), SendError> {
    let mut count = 0u64;
    loop {
        let frame = poll_fn(|cx| {
            if let Poll::Ready(reset) = stream.poll_reset(cx) {
                return Poll::Ready(Err(reset.map_or_else(SendError::H2, SendError::Reset)));
            }
            poll_body_catching_panic(|| Pin::new(&mut body).poll_frame(cx)).map(Ok)
        })
        .await?;
        let frame = match frame {
            None => {
                check_length(stream, declared, count, true)?;
                stream.send_data(Bytes::new(), true)?;
                return Ok(());
            }
            Some(Err(err)) => {
                stream.send_reset(Reason::INTERNAL_ERROR);
                return Err(SendError::Body(err));
            }
            Some(Ok(frame)) => frame,
        };
        match frame.into_data() {
            Ok(data) => {
                let last = body.is_end_stream();
                count += data.len() as u64;
                check_length(stream, declared, count, last)?;
                send_data(stream, data, last, send_timeout, sent).await?;
                if last {
                    return Ok(());
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    check_length(stream, declared, count, true)?;
                    stream.send_trailers(trailers)?;
                    return Ok(());
                }
            }
        }
    }
}

/// Resets `stream` if `count` bytes of body, with the body `ended` or not, break its
/// `declared` length.
fn check_length(
    stream: &mut SendStream<Bytes>,
    declared: Option<u64>,
    count: u64,
    ended: bool,
) -> Result<(), SendError> {
    if declared.is_some_and(|n| count > n || ended && count < n) {
        stream.send_reset(Reason::INTERNAL_ERROR);
        return Err(SendError::Length);
    }
    Ok(())
}

/// Sends `data` in pieces as the peer's window opens, each wait bounded by `timeout`: a
/// peer that never opens its window has the stream reset, not held forever.
async fn send_data(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    last: bool,
    timeout: Duration,
    sent: &mut u64,
) -> Result<(), SendError> {
    if data.is_empty() {
        if last {
            stream.send_data(data, true)?;
        }
        return Ok(());
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = tokio::time::timeout(timeout, poll_fn(|cx| poll_room(stream, cx))).await;
        let room = match granted {
            Ok(Ok(room)) => room,
            Ok(Err(err)) => return Err(err),
            Err(_) => {
                stream.send_reset(Reason::CANCEL);
                return Err(SendError::TimedOut);
            }
        };
        let piece = data.split_to(room.min(data.len()));
        let len = piece.len() as u64;
        stream.send_data(piece, last && data.is_empty())?;
        *sent += len;
    }
    Ok(())
}

/// Waits for send capacity, or for the stream's end.
fn poll_room(
    stream: &mut SendStream<Bytes>,
    cx: &mut Context<'_>,
) -> Poll<Result<usize, SendError>> {
    loop {
        if stream.capacity() > 0 {
            return Poll::Ready(Ok(stream.capacity()));
        }
        match stream.poll_capacity(cx) {
            Poll::Ready(Some(Ok(0))) => {}
            Poll::Ready(Some(Ok(room))) => return Poll::Ready(Ok(room)),
            Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(err.into())),
            Poll::Ready(None) => {
                return Poll::Ready(Err(SendError::Reset(Reason::STREAM_CLOSED)));
            }
            Poll::Pending => {
                if let Poll::Ready(reset) = stream.poll_reset(cx) {
                    return Poll::Ready(Err(reset.map_or_else(SendError::H2, SendError::Reset)));
                }
                return Poll::Pending;
            }
        }
    }
}

/// The `Date` field, formatted once a second per thread.
fn date() -> HeaderValue {
    thread_local! {
        static DATE: RefCell<(u64, HeaderValue)> =
            const { RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != second {
            let formatted = httpdate::fmt_http_date(now);
            if let Ok(value) = HeaderValue::from_str(&formatted) {
                *date = (second, value);
            }
        }
        date.1.clone()
    })
}

/// A request body read from its stream: each chunk's flow-control capacity is released as
/// the handler takes it (so a handler that reads slowly slows the peer), and each wait for
/// more is bounded by the body timeout (a 408, as on HTTP/1.1).
struct RequestBody {
    recv: RecvStream,
    timeout: Duration,
    /// The server's limits, which hold the trailers as HTTP/1.1's.
    limits: tandem_proto::Limits,
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether `timer` is set for the wait under way.
    waiting: bool,
    /// What `Content-Length` declared and has not arrived yet.
    remaining: Option<u64>,
    data_done: bool,
    done: bool,
}

impl RequestBody {
    fn new(recv: RecvStream, config: &ServerConfig, length: Option<u64>) -> Self {
        RequestBody {
            recv,
            timeout: config.body_timeout,
            limits: config.limits,
            timer: None,
            waiting: false,
            remaining: length,
            data_done: false,
            done: false,
        }
    }

    /// After a `Pending` from the stream: a 408 once the wait has lasted the timeout.
    fn poll_timer(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.waiting {
            timer.as_mut().reset(deadline);
            self.waiting = true;
        }
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.done = true;
        let timed_out = HttpError::new(StatusCode::REQUEST_TIMEOUT)
            .with_text("408: request body not received in time");
        Poll::Ready(Some(Err(timed_out)))
    }
}

fn broken(err: &h2::Error) -> HttpError {
    HttpError::bad_request().with_text(format!("400: request body failed: {err}"))
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if !this.data_done {
            match this.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    this.waiting = false;
                    this.remaining = this.remaining.map(|n| n.saturating_sub(data.len() as u64));
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(err))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(broken(&err))));
                }
                Poll::Ready(None) => this.data_done = true,
                Poll::Pending => return this.poll_timer(cx),
            }
        }
        match this.recv.poll_trailers(cx) {
            Poll::Ready(Ok(trailers)) => {
                this.done = true;
                // `h2` bounds them only as a header list (64 KiB by default).
                let checked = trailers.map(|t| match this.limits.check_trailer_fields(&t) {
                    Ok(()) => Ok(Frame::trailers(t)),
                    Err(err) => Err(HttpError::bad_request().with_text(format!("400: {err}"))),
                });
                Poll::Ready(checked)
            }
            Poll::Ready(Err(err)) => {
                this.done = true;
                Poll::Ready(Some(Err(broken(&err))))
            }
            Poll::Pending => this.poll_timer(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.remaining.map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
