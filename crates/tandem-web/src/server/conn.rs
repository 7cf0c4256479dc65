//! One connection: read a request, dispatch it, write the response, repeat.
//!
//! One request is in flight per connection, so reading pauses while a handler runs and
//! pipelined requests wait in the read buffer, which the head limit bounds. Responses to
//! pipelined requests are gathered in the write buffer and flushed together, up to
//! [`MAX_PIPELINED_RESPONSES`] or [`FLUSH_BYTES`], or as soon as the read buffer holds no
//! complete request. An idle connection gives its buffers back, so it holds only the socket
//! and this task.

use std::{
    future::{Future, poll_fn},
    net::SocketAddr,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll, Waker},
};

use bytes::{BufMut, BytesMut};
use futures_util::future::{self, Either};
use http::{Method, StatusCode, Version};
use tandem_proto::{BodyDecoder, BodyEvent, BodyFraming, RequestParser};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::oneshot,
    time::{Sleep, sleep_until},
};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::{
    ServerConfig,
    access_log::{Entry, Sink},
    write::{
        ConnWrite, Counted, SendTimeout, SendfileTo, Sent, Writer, flush, flush_and_shut,
        write_now, write_response,
    },
};
use crate::{
    App, HttpError, Request, TlsInfo,
    compression::AcceptEncoding,
    expect::ContinueSignal,
    payload::{ConnRead, KEPT_BUFFER_CAPACITY, Payload, READ_CHUNK, ReadState, Returned},
    upgrade::{OnUpgrade, upgraded},
};

/// Responses gathered before a flush when requests are pipelined (actix-web allows 16). A
/// tuning constant of the connection loop, not a setting: private.
const MAX_PIPELINED_RESPONSES: usize = 16;

/// Bytes of gathered responses that force a flush (a tuning constant, private).
const FLUSH_BYTES: usize = 64 * 1024;

/// The interim response a request with `Expect: 100-continue` gets once its route lets it
/// through.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Unread request body a connection reads and discards after the handler returns, before it
/// gives up and closes instead.
pub const MAX_DRAIN: u64 = 64 * 1024;

/// Buffers kept per thread for connections that wake from idle: an idle connection gives
/// its read and write buffers back (so it holds only its socket), and the next one to wake
/// takes them instead of allocating. Under keep-alive load every request starts idle, and
/// would free and allocate two buffers each time otherwise. At most this many wait per
/// thread (the default of [`ServerConfig::spare_buffers`]); the rest are freed, so idle
/// connections never hold more than this between them.
pub const SPARE_BUFFERS: usize = 32;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<BytesMut>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `request`'s client waits for `100 Continue` before it sends the body.
fn waits_for_continue(request: &Request) -> bool {
    request.head().expect_continue() && request.body_exists()
}

/// Keeps `buf`, emptied, among the thread's spares if fewer than `keep` wait and it is not
/// one grown past [`KEPT_BUFFER_CAPACITY`] (by a large response, say); else frees it.
fn keep_spare(spare: &mut Vec<BytesMut>, mut buf: BytesMut, keep: usize) {
    if buf.capacity() != 0 && buf.capacity() <= KEPT_BUFFER_CAPACITY && spare.len() < keep {
        buf.clear();
        spare.push(buf);
    }
}

/// A connection's two buffers, given back in one visit to the thread's spares rather than
/// two (as [`spare_pair`] takes them).
fn give_back_pair(read: BytesMut, write: BytesMut, keep: usize) {
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        keep_spare(&mut spare, read, keep);
        keep_spare(&mut spare, write, keep);
    });
}

/// Two empty buffers, from the thread's spares where it has them.
fn spare_pair() -> (BytesMut, BytesMut) {
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        let read = spare.pop().unwrap_or_default();
        (read, spare.pop().unwrap_or_default())
    })
}

/// Serves one connection until it closes, fails, times out or the server shuts down. `tls`
/// is what its handshake settled, if it had one, given to each of its requests.
pub(crate) async fn serve<R: ConnRead, W: ConnWrite + 'static>(
    read: R,
    write: W,
    remote: Option<SocketAddr>,
    app: App,
    config: &ServerConfig,
    shutdown: Shutdown,
    tls: Option<Arc<TlsInfo>>,
) {
    let now = tokio::time::Instant::now();
    let writing = AtomicBool::new(false);
    let mut conn = Conn {
        read: Some(ReadState { io: Box::new(read), buf: BytesMut::new() }),
        wbuf: BytesMut::new(),
        parser: RequestParser::with_limits(config.limits),
        config,
        tls,
        log: Sink::for_connection(config),
        #[cfg(feature = "http2")]
        fresh: true,
        #[cfg(feature = "http2")]
        h2_preface: false,
        write_end: WriteEnd::Open,
        writing: &writing,
        waits: Waits {
            timer: Box::pin(sleep_until(now)),
            armed: now,
            stopping: Box::pin(shutdown.token.clone().cancelled_owned()),
            shutdown,
            waker: None,
            timer_registered: false,
            stopping_registered: false,
        },
    };
    let write: Writer = Box::new(SendTimeout::new(write, config.send_timeout));
    let mut write = WriteHalf { io: Some(write), writing: &writing };
    let io = write.io.as_mut().expect("the write half is here until the end");
    if let Err(err) = conn.run(io, remote, &app).await {
        tracing::debug!(target: "tandem::server", error = %err, "connection ended");
    }
    let Some(mut io) = write.io.take() else { return };
    match conn.write_end {
        WriteEnd::Open => drop(io.shutdown().await),
        WriteEnd::Shut => {}
        WriteEnd::Broken => io.abort(),
    }
}

/// A connection's write half, reset rather than closed if the connection is dropped (its
/// task cut off at the shutdown timeout) while a response is written in steps: the body is
/// then cut short, and a close would end a body framed by the close as if whole.
struct WriteHalf<'a> {
    io: Option<Writer>,
    /// Set by the connection while it writes a response in steps.
    writing: &'a AtomicBool,
}

impl Drop for WriteHalf<'_> {
    fn drop(&mut self) {
        if self.writing.load(Ordering::Relaxed)
            && let Some(io) = self.io.take()
        {
            io.abort();
        }
    }
}

/// The server's shutdown signal: the token, and a flag set just before it is cancelled,
/// which a connection reads with one load where asking the token takes a lock.
#[derive(Clone, Debug, Default)]
pub(crate) struct Shutdown {
    token: CancellationToken,
    flag: Arc<AtomicBool>,
    /// Cancelled once the shutdown timeout has passed: the connections still open are
    /// dropped, their handlers with them (aiohttp cancels its handler tasks then).
    abort: CancellationToken,
    /// The accept loops still running: shutdown waits for every listener to close before
    /// it sends `on_shutdown`, as aiohttp stops its sites first.
    sites: super::TaskTracker,
}

impl Shutdown {
    /// Starts the shutdown: the flag first, so whoever the token wakes sees it set.
    pub(crate) fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    pub(crate) fn abort_token(&self) -> &CancellationToken {
        &self.abort
    }

    pub(crate) fn sites(&self) -> &super::TaskTracker {
        &self.sites
    }
}

struct Conn<'a> {
    read: Option<ReadState>,
    wbuf: BytesMut,
    parser: RequestParser,
    config: &'a ServerConfig,
    tls: Option<Arc<TlsInfo>>,
    /// Where this connection's access log entries go.
    log: Sink,
    /// No request has been read yet: only now may the HTTP/2 preface come.
    #[cfg(feature = "http2")]
    fresh: bool,
    /// The connection opened with the HTTP/2 preface (h2c by prior knowledge).
    #[cfg(feature = "http2")]
    h2_preface: bool,
    write_end: WriteEnd,
    /// Set while a response is written in steps (`WriteHalf`).
    writing: &'a AtomicBool,
    waits: Waits,
}

/// How a connection's write side is left when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteEnd {
    /// Open: it is shut down at the end.
    Open,
    /// Shut down already: the last response went out with it.
    Shut,
    /// A response's body broke after its head went out: the connection is reset, not
    /// closed ([`ConnWrite::abort`]), nothing more going out.
    Broken,
}

/// What a connection waiting for bytes listens to besides its socket: its timer and the
/// server's shutdown, at which it closes whether idle or partway through a head (nothing of
/// that request is dispatched yet, and a client dribbling it would otherwise hold the
/// shutdown up for the rest of the head timeout).
struct Waits {
    timer: Pin<Box<Sleep>>,
    /// The deadline `timer` is set to, which may be earlier than the one a wait wants: a
    /// keep-alive deadline only ever moves later, so the timer is left where it is and,
    /// when it fires early, set again then: resetting a tokio `Sleep` on every request would
    /// take it out of the timer wheel and put it back each time.
    armed: tokio::time::Instant,
    /// `shutdown.cancelled()`, made once per connection: a fresh one per wait registered
    /// itself with the token again every request.
    stopping: Pin<Box<WaitForCancellationFutureOwned>>,
    shutdown: Shutdown,
    /// The waker `timer` and `stopping` were last polled with. Both stay registered with it
    /// between waits, so a wait whose task's waker is the same need not poll them again
    /// on its first poll (each later poll follows a wake, and does): the timer unless it
    /// was reset, the token unless the flag says it fired. That is two polls, and the
    /// token's two locks, less per request.
    waker: Option<Waker>,
    timer_registered: bool,
    stopping_registered: bool,
}

impl Waits {
    /// Sets the timer for `deadline` unless it is set no later and has not fired yet.
    fn arm(&mut self, now: tokio::time::Instant, deadline: tokio::time::Instant) {
        if self.armed > deadline || self.armed <= now {
            self.timer.as_mut().reset(deadline);
            self.armed = deadline;
            self.timer_registered = false;
        }
    }

    /// After the socket said "not yet": the shutdown and the timer. A timer set earlier
    /// than `deadline` that fires is set again.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        first: bool,
        deadline: tokio::time::Instant,
    ) -> Poll<Wait> {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
            self.timer_registered = false;
            self.stopping_registered = false;
        }
        if self.shutdown.is_cancelled() {
            return Poll::Ready(Wait::Shutdown);
        }
        if !(first && self.stopping_registered) {
            if self.stopping.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wait::Shutdown);
            }
            self.stopping_registered = true;
        }
        if first && self.timer_registered {
            return Poll::Pending;
        }
        if self.timer.as_mut().poll(cx).is_pending() {
            self.timer_registered = true;
            return Poll::Pending;
        }
        if self.armed < deadline && tokio::time::Instant::now() < deadline {
            self.timer.as_mut().reset(deadline);
            self.armed = deadline;
            if self.timer.as_mut().poll(cx).is_pending() {
                self.timer_registered = true;
                return Poll::Pending;
            }
        }
        self.timer_registered = false;
        Poll::Ready(Wait::TimedOut)
    }
}

enum Wait {
    Data,
    Closed,
    TimedOut,
    Shutdown,
}

impl Conn<'_> {
    async fn run(
        &mut self,
        io: &mut Writer,
        remote: Option<SocketAddr>,
        app: &App,
    ) -> std::io::Result<()> {
        let mut pipelined = 0;
        loop {
            let Some(head) = self.read_head(io, app).await? else {
                #[cfg(feature = "http2")]
                if self.h2_preface {
                    return self.switch_h2(io, remote, app).await;
                }
                return Ok(());
            };
            #[cfg(feature = "http2")]
            {
                self.fresh = false;
            }
            let head_only = head.method() == Method::HEAD;
            let version = head.version();
            let mut keep_alive = head.keep_alive() && !self.waits.shutdown.is_cancelled();
            // A proxy may start tunnelling once it has forwarded an upgrade or CONNECT,
            // whatever the answer: unless the connection switches, the bytes after such a
            // request are never parsed as requests (WebSocket smuggling), it closes instead.
            let tunnel_asked = head.upgrade().is_some() || head.is_connect();
            let mut log = self.log.start_http1(&head);

            // Read now, as the head moves into the request; only a response that asks to be
            // compressed uses it. A few `Copy` q-values, so nothing is allocated.
            let accept = head.fields().get("accept-encoding").map(AcceptEncoding::parse);
            let (request, mut home) = self.request_for(head, app, remote);
            // Most requests need neither `100 Continue` nor a watch on the socket: their
            // response is awaited here, without `answer`'s state machine around it.
            let answer = if self.answers_plainly(&request) {
                Answer::Response(app.dispatch(request).await)
            } else {
                self.answer(io, app, request).await?
            };
            let mut response = match answer {
                Answer::Response(response) => response,
                Answer::BodyNotAsked(response) => {
                    // The client may send the body or not, and its bytes cannot be told from
                    // a next request, so none is read.
                    (keep_alive, home) = (false, None);
                    response
                }
                Answer::ClientLeft => {
                    // nginx's 499: the client closed the connection before the answer.
                    if let Some(entry) = log {
                        entry.finish(remote, 499, 0, true);
                    }
                    return Ok(());
                }
            };
            // A shutdown that began while the handler ran: the response says so, so that a
            // client or proxy does not send its next request on a connection about to close.
            keep_alive &= !self.waits.shutdown.is_cancelled();
            let status = response.status();
            if let Some(entry) = log.as_deref_mut() {
                entry.answered(response.extensions(), || response.headers());
            }
            let upgrade =
                response.inner.upgrade.take().filter(|_| status == StatusCode::SWITCHING_PROTOCOLS);
            keep_alive &= !tunnel_asked || upgrade.is_some();
            // A request without a body has nothing to get back: no call.
            let returned =
                if home.is_some() { body_back(&mut home, &mut keep_alive) } else { None };
            // What `write_now` writes is all in the write buffer.
            let sent = match write_now(&mut self.wbuf, response, version, keep_alive, head_only) {
                Ok(written) => Sent { written, buffered: true },
                Err(response) => {
                    let sent =
                        self.write_in_steps(io, response, version, keep_alive, head_only, accept);
                    match sent.await {
                        Ok(sent) => sent,
                        Err((err, sent)) => return Err(self.gone(log, remote, status, sent, err)),
                    }
                }
            };
            keep_alive &= sent.written.keep_alive;
            // Any write failing from here on is a client that went away: logged as such.
            if let Some((read, decoder, drainable)) = returned {
                let drained = self.drain_or_keep(io, read, decoder, drainable).await;
                keep_alive &=
                    drained.map_err(|err| self.gone(log.take(), remote, status, sent, err))?;
            } else if let Some(home) = home {
                let drained = self.take_back(io, home).await;
                keep_alive &=
                    drained.map_err(|err| self.gone(log.take(), remote, status, sent, err))?;
            }
            if let Some(upgrade) = upgrade {
                return self.switch(io, upgrade, log, remote).await;
            }
            pipelined += 1;
            let more_buffered = self.read.as_ref().is_some_and(|r| !r.buf.is_empty());
            if !keep_alive
                || !more_buffered
                || pipelined >= MAX_PIPELINED_RESPONSES
                || self.wbuf.len() >= FLUSH_BYTES
            {
                let flushed = self.flush_out(io, !keep_alive).await;
                flushed.map_err(|err| self.gone(log.take(), remote, status, sent, err))?;
                pipelined = 0;
            }
            // A response gathered with pipelined ones is logged before they are flushed
            // together.
            if let Some(entry) = log {
                entry.finish(remote, status.as_u16(), sent.written.body_bytes, false);
            }
            if !keep_alive {
                return Ok(());
            }
        }
    }

    /// Writes a response [`write_now`] gave back (a stream, a file, a large or compressed
    /// body) in steps, marked as under way meanwhile (`writing`), so that a connection
    /// dropped in the middle of it is reset (`WriteHalf`).
    async fn write_in_steps(
        &mut self,
        io: &mut Writer,
        response: crate::Response,
        version: Version,
        keep_alive: bool,
        head_only: bool,
        accept: Option<AcceptEncoding>,
    ) -> Result<Sent, (std::io::Error, Sent)> {
        // A file body may go by sendfile while the read half is home (a request without a
        // body) and is a plain TCP socket's.
        let timeout = Some(self.config.send_timeout);
        let sendfile = self.read.as_ref().and_then(|read| read.io.tcp());
        let sendfile = sendfile.map(|socket| SendfileTo::new(socket, timeout));
        self.writing.store(true, Ordering::Relaxed);
        let wbuf = &mut self.wbuf;
        let sent =
            write_response(io, wbuf, response, version, keep_alive, head_only, accept, sendfile)
                .await;
        self.writing.store(false, Ordering::Relaxed);
        sent
    }

    /// Writes out the write buffer; when the connection closes after it, with the write
    /// side's shutdown, which may then go out in the same write (TLS's `close_notify`).
    async fn flush_out(&mut self, io: &mut Writer, closing: bool) -> std::io::Result<()> {
        if closing {
            self.write_end = WriteEnd::Shut;
            flush_and_shut(io, &mut self.wbuf).await
        } else {
            flush(io, &mut self.wbuf).await
        }
    }

    /// `dispatched`'s response, or `None` (the handler dropped) if the client closes the
    /// connection first: `handler_cancellation`. Only while the read half is home, as for a
    /// request without a body (a handler reading its body sees the close itself); bytes that
    /// arrive meanwhile are a pipelined request, kept for later, and end the watch, since
    /// buffering on would let a client grow the buffer without bound.
    async fn unless_client_leaves(
        &mut self,
        dispatched: impl Future<Output = crate::Response>,
    ) -> Option<crate::Response> {
        let mut dispatched = std::pin::pin!(dispatched);
        let Some(read) = self.read.as_mut() else { return Some(dispatched.await) };
        read.buf.reserve(READ_CHUNK);
        let read = pin!(read.io.read_buf(&mut read.buf));
        match future::select(dispatched.as_mut(), read).await {
            Either::Left((response, _)) => return Some(response),
            Either::Right((Ok(0) | Err(_), _)) => return None,
            Either::Right(_) => {}
        }
        Some(dispatched.await)
    }

    /// Whether `request`'s response is simply awaited: no `100 Continue` to send, and no
    /// watch for a client leaving (`handler_cancellation`). [`answer`](Self::answer) does
    /// the rest.
    fn answers_plainly(&self, request: &Request) -> bool {
        !(self.config.handler_cancellation || waits_for_continue(request))
    }

    /// Dispatches `request` and awaits its response, for the requests
    /// [`answers_plainly`](Self::answers_plainly) leaves. The client of an
    /// `Expect: 100-continue` request with a body waits for `100 Continue` before it sends
    /// the body: the request is routed first, and the route's expect handler decides whether
    /// the `100` goes out. Any other request here is watched for its client leaving.
    async fn answer(
        &mut self,
        io: &mut Writer,
        app: &App,
        mut request: Request,
    ) -> std::io::Result<Answer> {
        if waits_for_continue(&request) {
            let (signal, go_ahead) = ContinueSignal::new();
            request.extensions_mut().insert(signal);
            let dispatched = app.dispatch(request);
            let (response, continued) = self.continue_when_told(io, dispatched, go_ahead).await?;
            return Ok(if continued {
                Answer::Response(response)
            } else {
                Answer::BodyNotAsked(response)
            });
        }
        let dispatched = app.dispatch(request);
        Ok(self.unless_client_leaves(dispatched).await.map_or(Answer::ClientLeft, Answer::Response))
    }

    /// `dispatched`'s response, with `100 Continue` sent as soon as the route lets the
    /// request through (`go_ahead` says `true`), and whether it was sent. A request let
    /// through and answered in the same poll gets its `100` just before the response, as
    /// aiohttp always sends it before the handler runs: the client then sends the body,
    /// which is drained, and the connection can go on.
    async fn continue_when_told(
        &mut self,
        io: &mut Writer,
        dispatched: impl Future<Output = crate::Response>,
        mut go_ahead: oneshot::Receiver<bool>,
    ) -> std::io::Result<(crate::Response, bool)> {
        let mut dispatched = std::pin::pin!(dispatched);
        // The route's word is polled first: a request let through and answered in the same
        // poll still gets its `100`, and its body is drained.
        let go = match future::select(&mut go_ahead, dispatched.as_mut()).await {
            Either::Left((go, _)) => go,
            Either::Right((response, _)) => {
                let continued = go_ahead.try_recv() == Ok(true);
                if continued {
                    self.wbuf.put_slice(CONTINUE);
                }
                return Ok((response, continued));
            }
        };
        if go != Ok(true) {
            return Ok((dispatched.await, false));
        }
        self.wbuf.put_slice(CONTINUE);
        flush(io, &mut self.wbuf).await?;
        Ok((dispatched.await, true))
    }

    /// Logs, if `log` is there, a request whose client went away as its response was
    /// written, or whose body broke (the connection is then to be reset), then gives back
    /// the write's error. The response's bytes still in the write buffer never reached the
    /// client, and are not counted.
    fn gone(
        &mut self,
        log: Option<Box<Entry>>,
        remote: Option<SocketAddr>,
        status: StatusCode,
        sent: Sent,
        err: std::io::Error,
    ) -> std::io::Error {
        if sent.written.broken {
            self.write_end = WriteEnd::Broken;
        }
        if let Some(entry) = log {
            let lost = sent.buffered_bytes().min(self.wbuf.len() as u64);
            entry.finish(remote, status.as_u16(), sent.written.body_bytes - lost, true);
        }
        err
    }

    /// A read half home before the response: drains what the handler left of the body if
    /// `drainable`, else keeps it as it is (the response said `Connection: close`).
    async fn drain_or_keep(
        &mut self,
        io: &mut Writer,
        read: ReadState,
        decoder: BodyDecoder,
        drainable: bool,
    ) -> std::io::Result<bool> {
        if drainable {
            return self.drain(io, read, decoder).await;
        }
        self.read = Some(read);
        Ok(true)
    }

    /// Hands the connection to an upgrade callback after its 101 went out, and serves the
    /// new protocol to its end inside this task, so graceful shutdown still tracks it. The
    /// request is logged when the callback returns, with the bytes the new protocol wrote.
    async fn switch(
        &mut self,
        io: &mut Writer,
        upgrade: OnUpgrade,
        log: Option<Box<Entry>>,
        remote: Option<SocketAddr>,
    ) -> std::io::Result<()> {
        const SWITCHED: StatusCode = StatusCode::SWITCHING_PROTOCOLS;
        if let Err(err) = flush(io, &mut self.wbuf).await {
            return Err(self.gone(log, remote, SWITCHED, Sent::default(), err));
        }
        // A request that lent its body out has no read half to give: refuse by closing.
        let Some(read) = self.read.take() else {
            if let Some(entry) = log {
                entry.finish(remote, SWITCHED.as_u16(), 0, false);
            }
            return Ok(());
        };
        let mut write = std::mem::replace(io, Box::new(tokio::io::sink()));
        let counted = log.as_ref().map(|_| Arc::new(AtomicU64::new(0)));
        if let Some(count) = &counted {
            write = Box::new(Counted { io: write, count: Arc::clone(count) });
        }
        upgrade(upgraded(read.io, read.buf, write, self.waits.shutdown.token.clone())).await;
        if let (Some(entry), Some(count)) = (log, counted) {
            entry.finish(remote, SWITCHED.as_u16(), count.load(Ordering::Relaxed), false);
        }
        Ok(())
    }

    /// Serves HTTP/2 on a connection that opened with its preface, the bytes read so far
    /// included, inside this task (so graceful shutdown still tracks it).
    #[cfg(feature = "http2")]
    async fn switch_h2(
        &mut self,
        io: &mut Writer,
        remote: Option<SocketAddr>,
        app: &App,
    ) -> std::io::Result<()> {
        let Some(read) = self.read.take() else { return Ok(()) };
        let write = std::mem::replace(io, Box::new(tokio::io::sink()));
        let shutdown = self.waits.shutdown.clone();
        let stream = upgraded(read.io, read.buf, write, shutdown.token.clone());
        let config = Arc::new(self.config.clone());
        // Boxed, so an HTTP/1.1 connection's future does not carry HTTP/2's state inline.
        let h2 = super::h2::serve(stream, remote, app.clone(), config, shutdown, self.tls.clone());
        Box::pin(h2).await;
        Ok(())
    }

    /// Reads until a whole head has arrived. `None` means the connection should close
    /// quietly (the peer left, went idle too long, or the server is shutting down).
    async fn read_head(
        &mut self,
        io: &mut Writer,
        app: &App,
    ) -> std::io::Result<Option<tandem_proto::RequestHead>> {
        let mut head_started: Option<tokio::time::Instant> = None;
        loop {
            let read = self.read.as_mut().expect("the read half is home between requests");
            // An empty buffer holds no head to find: after each response to a request that
            // came alone, the parser (httparse, then the scanner) would only say so.
            let parsed =
                if read.buf.is_empty() { Ok(None) } else { self.parser.parse(&mut read.buf) };
            match parsed {
                Ok(Some(head)) => return Ok(Some(head)),
                Ok(None) => {}
                // The HTTP/1.1 parser refuses `PRI * HTTP/2.0`: on a fresh connection that may
                // be HTTP/2's preface, handed over once all 24 bytes are in.
                #[cfg(feature = "http2")]
                Err(_) if self.fresh && super::h2::may_be_preface(&read.buf) => {
                    if read.buf.len() >= super::h2::PREFACE.len() {
                        self.h2_preface = true;
                        return Ok(None);
                    }
                }
                Err(err) => {
                    self.respond_error(io, app, err.status(), &err.to_string()).await?;
                    return Ok(None);
                }
            }
            if !self.wbuf.is_empty() {
                flush(io, &mut self.wbuf).await?;
            }
            let idle = read.buf.is_empty();
            let now = tokio::time::Instant::now();
            let deadline = if idle {
                now + self.config.keepalive_timeout
            } else {
                *head_started.get_or_insert(now) + self.config.head_timeout
            };
            match self.fill(idle, now, deadline).await? {
                Wait::Data => {}
                Wait::Closed | Wait::Shutdown => return Ok(None),
                Wait::TimedOut if idle => return Ok(None),
                Wait::TimedOut => {
                    self.respond_error(
                        io,
                        app,
                        StatusCode::REQUEST_TIMEOUT,
                        "request head not received in time",
                    )
                    .await?;
                    return Ok(None);
                }
            }
        }
    }

    /// Reads more bytes, waiting at most until `deadline` or the shutdown. An idle
    /// connection waits for readability with its buffers released.
    ///
    /// One poll function does it all, trying the socket first: the wake that follows a
    /// request's arrival reads it at once, without polling the shutdown token and the timer
    /// again, and without two `select!`s (readiness, then the read). The timer is set only
    /// once the socket has nothing to give: a request already there (one that came with a
    /// TLS handshake's last flight, or pipelined) is read without taking the runtime's timer
    /// lock to put the timer in its wheel and again to take it out.
    async fn fill(
        &mut self,
        idle: bool,
        now: tokio::time::Instant,
        deadline: tokio::time::Instant,
    ) -> std::io::Result<Wait> {
        // Checked here, not only by the timer: a peer whose bytes are always ready would
        // otherwise never let the timer be looked at.
        if now >= deadline {
            return Ok(Wait::TimedOut);
        }
        let spare = self.config.spare_buffers;
        let read = self.read.as_mut().expect("the read half is home between requests");
        // Give the buffers back while nothing is expected.
        let mut released = idle;
        if released {
            give_back_pair(std::mem::take(&mut read.buf), std::mem::take(&mut self.wbuf), spare);
        }
        let (wbuf, waits) = (&mut self.wbuf, &mut self.waits);
        let mut first = true;
        poll_fn(|cx| {
            let polled_before = !std::mem::replace(&mut first, false);
            if released {
                // A poll after the first follows a wake, nearly always the socket's: read
                // at once rather than ask for readiness first, and give the buffers back
                // again if it was not.
                if !polled_before {
                    match read.io.poll_read_ready(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                        Poll::Pending => {
                            waits.arm(now, deadline);
                            return waits.poll(cx, true, deadline).map(Ok);
                        }
                    }
                }
                (read.buf, *wbuf) = spare_pair();
                released = false;
            }
            read.buf.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut read.io), cx, &mut read.buf) {
                Poll::Ready(Ok(0)) => Poll::Ready(Ok(Wait::Closed)),
                Poll::Ready(Ok(_)) => Poll::Ready(Ok(Wait::Data)),
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                Poll::Pending => {
                    if idle && read.buf.is_empty() {
                        give_back_pair(std::mem::take(&mut read.buf), std::mem::take(wbuf), spare);
                        released = true;
                    }
                    waits.arm(now, deadline);
                    waits.poll(cx, !polled_before, deadline).map(Ok)
                }
            }
        })
        .await
    }

    /// The request `head` starts, with its body lent out (and the channel it comes home by)
    /// and what the connection knows: its TLS facts, and for a request that names no host
    /// (HTTP/1.0 without `Host`), the local address it came to, as aiohttp's `request.host`
    /// falls back to the socket's name (asked of the socket only then).
    // Inline: the connection loop's one call, on every request, so the head goes in and the
    // request comes back without passing through memory.
    #[inline]
    fn request_for(
        &mut self,
        head: tandem_proto::RequestHead,
        app: &App,
        remote: Option<SocketAddr>,
    ) -> (Request, Option<Home>) {
        let unnamed = head.version() == Version::HTTP_10 && head.fields().get("host").is_none();
        let local = if unnamed { self.local_addr() } else { None };
        let (payload, home) = self.lend_body(head.framing());
        let mut request = Request::new(head, app.clone(), remote, payload);
        if let Some(tls) = &self.tls {
            request.set_tls(Arc::clone(tls));
        }
        if let Some(local) = local {
            request.set_host_fallback(local);
        }
        if app.layered.is_some() {
            crate::service::keep_head_limits(&mut request, self.config.limits, local);
        }
        (request, home)
    }

    /// The local address of a plain TCP connection whose read half is home.
    fn local_addr(&self) -> Option<SocketAddr> {
        self.read.as_ref()?.io.tcp()?.local_addr().ok()
    }

    fn lend_body(
        &mut self,
        framing: BodyFraming,
    ) -> (Payload, Option<oneshot::Receiver<Returned>>) {
        if framing == BodyFraming::Empty {
            return (Payload::default(), None);
        }
        let (home, back) = oneshot::channel();
        let read = self.read.take().expect("the read half is home between requests");
        let decoder = BodyDecoder::with_limits(framing, self.parser.limits());
        let (timeout, bufsize) = (self.config.body_timeout, self.config.read_bufsize);
        (Payload::lend(read, decoder, home, timeout, bufsize), Some(back))
    }

    /// Takes the read half back from the request's payload and discards any body the
    /// handler left unread, up to `MAX_DRAIN`. Returns whether the connection can go on: not
    /// if the payload broke, as it then drops the read half rather than send it home.
    async fn take_back(
        &mut self,
        io: &mut Writer,
        home: oneshot::Receiver<Returned>,
    ) -> std::io::Result<bool> {
        let Ok((read, decoder)) = home.await else { return Ok(false) };
        self.drain(io, read, decoder).await
    }

    /// Discards what is left of a body, up to `MAX_DRAIN`, and keeps the read half.
    /// Returns whether the connection can go on: a body that breaks, stalls past the body
    /// timeout or runs past the limit ends it. The response is flushed before any wait, so
    /// a peer that waits for it before sending the rest of its body is not kept waiting.
    async fn drain(
        &mut self,
        io: &mut Writer,
        mut read: ReadState,
        mut decoder: BodyDecoder,
    ) -> std::io::Result<bool> {
        decoder.set_max_size(MAX_DRAIN);
        let lingering = tokio::time::Instant::now() + self.config.lingering_time;
        let done = loop {
            match decoder.decode(&mut read.buf) {
                Ok(Some(BodyEvent::Data(_) | BodyEvent::Trailers(_))) => {}
                Ok(Some(BodyEvent::End)) => break true,
                Ok(None) => {
                    flush(io, &mut self.wbuf).await?;
                    read.buf.reserve(READ_CHUNK);
                    let next = tokio::time::Instant::now() + self.config.body_timeout;
                    let deadline = next.min(lingering);
                    match tokio::time::timeout_at(deadline, read.io.read_buf(&mut read.buf)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => break false,
                    }
                }
                Err(_) => break false,
            }
        };
        if done {
            self.read = Some(read);
        }
        Ok(done)
    }

    /// Answers a request refused before any handler ran, rendered as the application
    /// renders its errors, and closes.
    async fn respond_error(
        &mut self,
        io: &mut Writer,
        app: &App,
        status: StatusCode,
        detail: &str,
    ) -> std::io::Result<()> {
        // The detail is one of the parser's fixed messages, never the peer's bytes.
        let reason = status.canonical_reason().unwrap_or_default();
        let text = format!("{}: {reason}\n\n{detail}\n", status.as_u16());
        let response = app.error_response(&HttpError::new(status).with_text(text));
        write_response(io, &mut self.wbuf, response, Version::HTTP_11, false, false, None, None)
            .await
            .map_err(|(err, _)| err)?;
        flush(io, &mut self.wbuf).await
    }
}

/// How a request was answered.
enum Answer {
    Response(crate::Response),
    /// Refused before its body was asked for (no `100 Continue` went out).
    BodyNotAsked(crate::Response),
    /// The client closed the connection first, and the handler was dropped
    /// (`handler_cancellation`).
    ClientLeft,
}

/// The channel a request's read half comes home by, once its payload is done with.
type Home = oneshot::Receiver<Returned>;

/// A read half home early, with its body's decoder and whether what is left can be drained.
type Back = (ReadState, BodyDecoder, bool);

/// If the handler has let go of the body, sees now whether what it left unread can be
/// drained: when it cannot, the head must say `Connection: close` (`keep_alive` is cleared),
/// and the server must not wait for a body it will not read (a 413 for a declared 100 GB body
/// used to wait for it, and held up shutdown). Returns the read half, its decoder and whether
/// to drain, if it is back; `home` is left with the channel it will come home by, if it may
/// still.
fn body_back(home: &mut Option<Home>, keep_alive: &mut bool) -> Option<Back> {
    let back = home.as_mut()?;
    match back.try_recv() {
        Ok((read, decoder)) => {
            let drainable = decoder.is_done() || decoder.remaining().is_none_or(|n| n <= MAX_DRAIN);
            *keep_alive &= drainable;
            *home = None;
            Some((read, decoder, drainable))
        }
        Err(oneshot::error::TryRecvError::Empty) => None,
        // The payload broke and dropped the read half: close after this response.
        Err(oneshot::error::TryRecvError::Closed) => {
            *keep_alive = false;
            *home = None;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_buffers_are_bounded_and_empty() {
        give_back_pair(BytesMut::from(&b"leftover"[..]), BytesMut::from(&b"leftover"[..]), 3);
        // An unallocated buffer is never kept, so the third place goes to the one beside it.
        give_back_pair(BytesMut::new(), BytesMut::from(&b"leftover"[..]), 3);
        // Past the bound, nothing more is kept.
        give_back_pair(BytesMut::from(&b"leftover"[..]), BytesMut::from(&b"leftover"[..]), 3);
        let (a, b) = spare_pair();
        let (c, d) = spare_pair();
        for buf in [&a, &b, &c] {
            assert!(buf.is_empty() && buf.capacity() >= 8);
        }
        assert_eq!(d.capacity(), 0);
        // Nothing is kept with a bound of zero.
        give_back_pair(a, b, 0);
        assert_eq!(spare_pair().0.capacity(), 0);
    }
}
