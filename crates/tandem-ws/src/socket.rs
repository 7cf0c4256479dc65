//! `WebSocket`: one open connection, on either side. The reading side lives here; the
//! writing side is a shared [`WsSender`].

use std::{
    future::{Future, poll_fn},
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, future::BoxFuture};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite},
    time::Instant,
};

use crate::{
    assemble::{Assembler, Event, invalid_text},
    deflate::{Agreed, Deflater, Inflater},
    error::{CloseCode, Error},
    frame::{OpCode, Role},
    message::Message,
    send::{FrameType, WsSender},
    shutdown::{self, Shutdown},
};

/// How many heartbeat pongs in a row may be missed before the connection is closed: 1, as
/// aiohttp closes at the first.
pub const DEFAULT_HEARTBEAT_MAX_MISSED: u32 = 1;

/// aiohttp's default `max_msg_size`: larger messages close the connection with 1009.
pub const DEFAULT_MAX_MSG_SIZE: usize = 4 * 1024 * 1024;
/// How long `close` waits for the peer's close frame (aiohttp's `timeout`, 10 s).
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much is read from the connection at a time, at least: a large frame's payload is
/// read in larger steps ([`Assembler::read_size`]).
///
/// The buffer keeps the size the largest frame grew it to while messages keep coming. Giving
/// it back to the allocator between frames halved `ws_load`'s 1 MiB echo rate: every message
/// then faulted its pages in anew.
const READ_SIZE: usize = 16 * 1024;
/// A read buffer grown past four reads' room by a large frame is given back once the
/// connection has been quiet this long: kept for good, it held an idle connection at the
/// size of the largest message it ever received (50 idle connections after one 4 MiB message
/// each held 110 MB, 2.2 MiB each), which a peer could pin on every connection in turn.
const IDLE_BUFFER_RELEASE: Duration = Duration::from_secs(1);

/// Settings both sides share; the server's `WebSocketResponse` and the client's
/// `WsConnect` builders fill them in.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) autoping: bool,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) heartbeat_max_missed: u32,
    pub(crate) receive_timeout: Option<Duration>,
    pub(crate) max_msg_size: usize,
    pub(crate) close_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            autoping: true,
            heartbeat: None,
            heartbeat_max_missed: DEFAULT_HEARTBEAT_MAX_MISSED,
            receive_timeout: None,
            max_msg_size: DEFAULT_MAX_MSG_SIZE,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
        }
    }
}

/// Settings for a [`WebSocket`] made with [`WebSocket::from_raw_socket`], over a connection
/// whose opening handshake was done elsewhere. The defaults are aiohttp's, as for
/// [`WebSocketResponse`](crate::WebSocketResponse) and `ws_connect`.
#[derive(Debug, Clone, Default)]
pub struct WebSocketConfig {
    options: Options,
    protocol: Option<String>,
}

impl WebSocketConfig {
    /// The defaults: `autoping` on, no heartbeat, no receive timeout, a 4 MiB message limit
    /// ([`DEFAULT_MAX_MSG_SIZE`]) and a 10 s close timeout ([`DEFAULT_CLOSE_TIMEOUT`]).
    pub fn new() -> Self {
        Self::default()
    }

    options_setters!(#[must_use]);

    /// The subprotocol the handshake agreed on, for [`WebSocket::protocol`].
    #[must_use]
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }
}

type ReadIo = Box<dyn AsyncRead + Send + Unpin>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Our close frame went out; the peer's is awaited until the deadline.
    Closing(Instant),
    Closed,
}

/// What woke a wait for bytes.
enum Woke {
    Read(std::io::Result<usize>),
    Timer,
    Shutdown,
    /// The connection was quiet for [`IDLE_BUFFER_RELEASE`] with a large, empty buffer.
    Idle,
}

/// The reading side: owned by one task at a time.
struct Reader {
    io: ReadIo,
    buf: BytesMut,
    assembler: Assembler,
    sender: WsSender,
    options: Options,
    state: State,
    /// The server's graceful shutdown: answered with 1001 Going Away.
    shutdown: Option<Shutdown>,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    /// The heartbeat ping awaiting its pong: its payload (a sequence number) and when it
    /// went out.
    ping_out: Option<([u8; 8], Instant)>,
    /// Heartbeat pongs missed since the peer was last heard from.
    missed_in_a_row: u32,
    heartbeat: Arc<HeartbeatState>,
}

/// What [`WebSocket::heartbeat_stats`] tells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeartbeatStats {
    /// Heartbeat pings sent.
    pub pings: u64,
    /// The round-trip time of the last heartbeat ping that got its pong.
    pub round_trip: Option<Duration>,
    /// Heartbeat pings whose pong did not come within half the interval (nor any other
    /// frame), in all. The connection closes when `heartbeat_max_missed` are missed in a
    /// row.
    pub missed_pongs: u64,
}

/// The heartbeat's counters, written by the reading side and read from any task.
#[derive(Debug, Default)]
struct HeartbeatState {
    pings: AtomicU64,
    /// Nanoseconds; 0 until a pong came.
    round_trip: AtomicU64,
    missed: AtomicU64,
}

impl HeartbeatState {
    fn stats(&self) -> HeartbeatStats {
        let nanos = self.round_trip.load(Ordering::Relaxed);
        HeartbeatStats {
            pings: self.pings.load(Ordering::Relaxed),
            round_trip: (nanos > 0).then(|| Duration::from_nanos(nanos)),
            missed_pongs: self.missed.load(Ordering::Relaxed),
        }
    }
}

/// An open WebSocket, server or client side (aiohttp's `WebSocketResponse` once prepared,
/// and `ClientWebSocketResponse`).
///
/// One task reads, with [`receive`](Self::receive) or as a [`Stream`] of messages that ends
/// at the close; any number send, through this value or the [`WsSender`]s from
/// [`sender`](Self::sender).
pub struct WebSocket {
    /// Only ever reached through `get_mut`, which costs nothing: the mutex is there to make
    /// `WebSocket` `Sync`, so a handler can hold `&ws` across an `await` in a spawned task.
    read: std::sync::Mutex<ReadSide>,
    sender: WsSender,
    protocol: Option<String>,
    compressed: bool,
    heartbeat: Arc<HeartbeatState>,
    /// How long `close` waits, for room to write its frame as for the peer's answer.
    close_timeout: Duration,
    /// The client's connection: addresses and TLS facts.
    #[cfg(feature = "client")]
    connection: Option<Box<tandem_client::ConnectionInfo>>,
}

struct ReadSide {
    reader: Option<Box<Reader>>,
    /// A `receive` in flight on behalf of `poll_next`, which owns the reader meanwhile.
    pending: Option<BoxFuture<'static, (Box<Reader>, Message)>>,
    stream_ended: bool,
}

impl ReadSide {
    async fn receive(&mut self) -> Message {
        if let Some(pending) = self.pending.take() {
            let (reader, message) = pending.await;
            self.reader = Some(reader);
            return message;
        }
        match self.reader.as_mut() {
            Some(reader) => reader.receive().await,
            None => Message::Closed,
        }
    }
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("protocol", &self.protocol)
            .field("close_code", &self.close_code())
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    pub(crate) fn new<T>(
        io: T,
        role: Role,
        agreed: Option<Agreed>,
        options: Options,
        protocol: Option<String>,
        shutdown: Option<shutdown::Signal>,
    ) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let sender = WsSender::new(Box::new(write), role, agreed.map(Deflater::new));
        let inflater = agreed.map(Inflater::new);
        let next_ping = options.heartbeat.map(|every| Instant::now() + every);
        let heartbeat = Arc::new(HeartbeatState::default());
        let close_timeout = options.close_timeout;
        let reader = Reader {
            io: Box::new(read),
            buf: BytesMut::new(),
            assembler: Assembler::new(role, options.max_msg_size, inflater),
            sender: sender.clone(),
            options,
            state: State::Open,
            shutdown: shutdown.map(Shutdown::new),
            next_ping,
            pong_deadline: None,
            ping_out: None,
            missed_in_a_row: 0,
            heartbeat: Arc::clone(&heartbeat),
        };
        let read = ReadSide { reader: Some(Box::new(reader)), pending: None, stream_ended: false };
        WebSocket {
            read: std::sync::Mutex::new(read),
            sender,
            protocol,
            compressed: agreed.is_some(),
            heartbeat,
            close_timeout,
            #[cfg(feature = "client")]
            connection: None,
        }
    }

    /// Keeps what the client knows of the connection, for
    /// [`connection_info`](Self::connection_info).
    #[cfg(feature = "client")]
    pub(crate) fn with_connection(mut self, info: Option<tandem_client::ConnectionInfo>) -> Self {
        self.connection = info.map(Box::new);
        self
    }

    /// For a client WebSocket, the connection it runs on: addresses and, for `wss://`, the
    /// TLS version, cipher suite, ALPN protocol and the server's certificate (aiohttp's
    /// `ws.get_extra_info(...)`). `None` on the server side and for
    /// [`from_raw_socket`](Self::from_raw_socket).
    #[cfg(feature = "client")]
    pub fn connection_info(&self) -> Option<&tandem_client::ConnectionInfo> {
        self.connection.as_deref()
    }

    /// A WebSocket over `io`, a connection whose opening handshake was done elsewhere (by
    /// another HTTP server or client, or a test): from here on its bytes are WebSocket frames.
    /// `role` says which side this is. permessage-deflate is not on: it needs what the
    /// handshake negotiated, which only Tandem's own handshakes know.
    ///
    /// ```
    /// use futures_util::SinkExt;
    /// use tandem_ws::{Message, Role, WebSocket, WebSocketConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tandem_ws::Error> {
    /// let (a, b) = tokio::io::duplex(4096);
    /// let client = WebSocket::from_raw_socket(a, Role::Client, WebSocketConfig::new());
    /// let mut server = WebSocket::from_raw_socket(b, Role::Server, WebSocketConfig::new());
    ///
    /// let mut sender = client.sender();
    /// sender.send(Message::Text("hello".into())).await?;
    /// assert_eq!(server.receive_str().await?, "hello");
    /// # Ok(()) }
    /// ```
    pub fn from_raw_socket<T>(io: T, role: Role, config: WebSocketConfig) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        WebSocket::new(io, role, None, config.options, config.protocol, None)
    }

    fn read_side(&mut self) -> &mut ReadSide {
        self.read.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next message. Pings are answered (and pongs swallowed) while `autoping` is on;
    /// a close frame is answered and returned as [`Message::Close`]; afterwards this
    /// returns [`Message::Closed`].
    ///
    /// A `receive_timeout` that elapses returns [`Message::Error`] with
    /// [`is_timeout`](Error::is_timeout), and leaves the connection open. The heartbeat's
    /// pings go out, and its pongs are checked, while a `receive` is waiting.
    pub async fn receive(&mut self) -> Message {
        self.read_side().receive().await
    }

    /// The next message as text. A message of another type is an error with
    /// [`is_message_type`](Error::is_message_type) (aiohttp's `WSMessageTypeError`); a close
    /// is one with [`is_closed`](Error::is_closed).
    pub async fn receive_str(&mut self) -> Result<String, Error> {
        match self.receive().await {
            Message::Text(text) => Ok(text),
            message => Err(not_asked_for(message, "text")),
        }
    }

    /// The next message as bytes: binary, or text as its UTF-8. A ping or pong (with
    /// `autoping` off) is an error with [`is_message_type`](Error::is_message_type); a close
    /// is one with [`is_closed`](Error::is_closed).
    pub async fn receive_bytes(&mut self) -> Result<Bytes, Error> {
        match self.receive().await {
            Message::Binary(data) => Ok(data),
            Message::Text(text) => Ok(Bytes::from(text)),
            message => Err(not_asked_for(message, "binary or text")),
        }
    }

    /// The next message, parsed as JSON.
    pub async fn receive_json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, Error> {
        let data = self.receive_bytes().await?;
        serde_json::from_slice(&data).map_err(Error::json)
    }

    /// Sends a text message.
    pub async fn send_str(&self, text: &str) -> Result<(), Error> {
        self.sender.send_str(text).await
    }

    /// Sends a binary message.
    pub async fn send_bytes(&self, data: &[u8]) -> Result<(), Error> {
        self.sender.send_bytes(data).await
    }

    /// Sends `value` as a JSON text message.
    pub async fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        self.sender.send_json(value).await
    }

    /// Sends `value` as text written by `dumps`: see [`WsSender::send_json_with`].
    pub async fn send_json_with<T, F, E>(&self, value: &T, dumps: F) -> Result<(), Error>
    where
        T: ?Sized,
        F: FnOnce(&T) -> Result<String, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.sender.send_json_with(value, dumps).await
    }

    /// Sends one whole frame, compressed or not as asked: see [`WsSender::send_frame`].
    pub async fn send_frame(
        &self,
        kind: FrameType,
        payload: &[u8],
        compress: bool,
    ) -> Result<(), Error> {
        self.sender.send_frame(kind, payload, compress).await
    }

    /// What the heartbeat has seen so far: its pings, the round-trip time of the last one
    /// answered, and the pongs that did not come in time.
    pub fn heartbeat_stats(&self) -> HeartbeatStats {
        self.heartbeat.stats()
    }

    /// Sends a ping.
    pub async fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        self.sender.ping(payload).await
    }

    /// Sends a pong.
    pub async fn pong(&self, payload: &[u8]) -> Result<(), Error> {
        self.sender.pong(payload).await
    }

    /// Closes the WebSocket: sends a close frame, waits up to the close timeout for the
    /// peer's, discarding messages meanwhile, then closes the connection. Returns `false`
    /// if it was already closed.
    ///
    /// A peer that reads nothing (its socket full, a send of ours stuck behind it) leaves no
    /// room for the close frame: past the close timeout the connection is given up without
    /// one, with [`close_code`](Self::close_code) 1006.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<bool, Error> {
        if self.is_closed() {
            return Ok(false);
        }
        match tokio::time::timeout(self.close_timeout, self.sender.close(code, reason)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.is_io() => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                self.sender.give_up(CloseCode::ABNORMAL_CLOSURE, self.close_timeout).await;
                return Ok(true);
            }
        }
        while !matches!(
            self.receive().await,
            Message::Close(..) | Message::Closed | Message::Error(_)
        ) {}
        self.sender.shutdown(self.close_timeout).await;
        Ok(true)
    }

    /// A handle for sending from other tasks.
    pub fn sender(&self) -> WsSender {
        self.sender.clone()
    }

    /// The subprotocol both sides agreed to, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Whether permessage-deflate was agreed: messages are then compressed both ways.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// The close code received or sent, once there is one (aiohttp's `close_code`).
    pub fn close_code(&self) -> Option<CloseCode> {
        self.sender.shared().close_code()
    }

    /// Whether the connection is closed: the closing handshake is over, or it failed.
    pub fn is_closed(&self) -> bool {
        self.sender.shared().is_closed()
    }
}

/// Messages until the close, as aiohttp's `async for msg in ws`: `Close`, `Closing` and
/// `Closed` end the stream; an `Error` is yielded, then the stream ends.
impl Stream for WebSocket {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let this = self.read_side();
        if this.stream_ended {
            return Poll::Ready(None);
        }
        if this.pending.is_none() {
            let Some(mut reader) = this.reader.take() else { return Poll::Ready(None) };
            this.pending = Some(Box::pin(async move {
                let message = reader.receive().await;
                (reader, message)
            }));
        }
        let pending = this.pending.as_mut().expect("set above");
        let (reader, message) = std::task::ready!(pending.as_mut().poll(cx));
        this.pending = None;
        this.reader = Some(reader);
        match message {
            Message::Close(..) | Message::Closing | Message::Closed => {
                this.stream_ended = true;
                Poll::Ready(None)
            }
            Message::Error(e) => {
                this.stream_ended = true;
                Poll::Ready(Some(Message::Error(e)))
            }
            message => Poll::Ready(Some(message)),
        }
    }
}

impl Reader {
    async fn receive(&mut self) -> Message {
        let deadline = self.options.receive_timeout.map(|t| Instant::now() + t);
        loop {
            match self.state {
                State::Closed => return Message::Closed,
                // Given up from the writing side (`close` found no room for its frame).
                _ if self.sender.shared().is_closed() => {
                    self.state = State::Closed;
                    return Message::Closed;
                }
                // Our close frame went out (from another task, or for the server's
                // shutdown): say so once, as aiohttp's CLOSING, then wait for the answer.
                State::Open if self.sender.shared().close_sent() => {
                    self.state = State::Closing(Instant::now() + self.options.close_timeout);
                    return Message::Closing;
                }
                _ => {}
            }
            match self.assembler.next_event(&mut self.buf) {
                Err(e) => return self.fail(e).await,
                Ok(Some(event)) => {
                    self.saw_traffic();
                    if let Some(message) = self.on_event(event).await {
                        return message;
                    }
                    continue;
                }
                Ok(None) => {}
            }
            // `wait` polls the socket before its timer and the shutdown, so a peer that
            // keeps the socket readable (a flood of pings, or of frames after our close)
            // would never let either fire there: the clock and the shutdown's flag are read
            // after every read's frames instead.
            if self.next_timer(deadline).is_some_and(|at| at <= Instant::now())
                && let Some(message) = self.on_timer(deadline).await
            {
                return message;
            }
            if self.state == State::Open && self.shutdown.as_ref().is_some_and(Shutdown::has_begun)
            {
                self.go_away().await;
                continue;
            }
            self.buf.reserve(self.assembler.read_size(READ_SIZE));
            match self.wait(deadline).await {
                Woke::Read(Ok(0)) => {
                    // The peer went away without a closing handshake.
                    self.sender.shared().set_close_code(CloseCode::ABNORMAL_CLOSURE);
                    self.set_closed();
                    return Message::Closed;
                }
                Woke::Read(Ok(_)) => {}
                Woke::Read(Err(e)) => return self.fail(Error::io(e)).await,
                Woke::Shutdown => self.go_away().await,
                Woke::Idle => self.buf = BytesMut::new(),
                Woke::Timer => {
                    if let Some(message) = self.on_timer(deadline).await {
                        return message;
                    }
                }
            }
        }
    }

    /// Answers the server's shutdown with 1001 Going Away, once; a peer that takes no frame
    /// by the deadline is given up.
    async fn go_away(&mut self) {
        self.shutdown = None;
        let close = self.sender.close(CloseCode::GOING_AWAY, "server shutdown");
        if by(self.write_deadline(true), close).await.is_err() {
            self.state = State::Closed;
            self.sender.give_up(CloseCode::ABNORMAL_CLOSURE, self.options.close_timeout).await;
        }
    }

    /// The latest a frame the reader writes on its own account (the pong a ping asks for,
    /// the answer to a close, the 1001 of the server's shutdown) may wait for room, or for a
    /// send of ours stuck on a peer that reads nothing: until the heartbeat would give the
    /// peer up (half an interval past its next ping, which could not go out either), or the
    /// closing handshake's deadline; with `closing`, the close timeout from now at most.
    /// With neither a heartbeat nor a close, only the server's send timeout bounds it.
    fn write_deadline(&self, closing: bool) -> Option<Instant> {
        let heartbeat =
            self.options.heartbeat.zip(self.next_ping).map(|(every, at)| at + every / 2);
        let closing_at = match self.state {
            State::Closing(at) => Some(at),
            _ => None,
        };
        let close_timeout = closing.then(|| Instant::now() + self.options.close_timeout);
        [heartbeat, closing_at, close_timeout].into_iter().flatten().min()
    }

    /// The earliest of the timers armed: the receive deadline, the heartbeat's ping and
    /// pong, and the closing handshake's.
    fn next_timer(&self, receive_deadline: Option<Instant>) -> Option<Instant> {
        let closing = match self.state {
            State::Closing(at) => Some(at),
            _ => None,
        };
        [receive_deadline, self.next_ping, self.pong_deadline, closing].into_iter().flatten().min()
    }

    /// Waits for bytes, a timer, or the server's shutdown.
    async fn wait(&mut self, receive_deadline: Option<Instant>) -> Woke {
        let closing = matches!(self.state, State::Closing(_));
        let timer = self.next_timer(receive_deadline);
        let Reader { io, buf, shutdown, .. } = self;
        let shutdown_armed = shutdown.is_some() && !closing;
        let large = buf.is_empty() && buf.capacity() > 4 * READ_SIZE;
        let mut idle = pin!(large.then(|| tokio::time::sleep(IDLE_BUFFER_RELEASE)));
        let mut read = pin!(io.read_buf(buf));
        // A wait with no timer armed (the usual case) builds no `Sleep`.
        let mut sleep = pin!(timer.map(tokio::time::sleep_until));
        // Bytes first, then the timers, then the shutdown.
        poll_fn(|cx| {
            if let Poll::Ready(read) = read.as_mut().poll(cx) {
                return Poll::Ready(Woke::Read(read));
            }
            if let Some(sleep) = sleep.as_mut().as_pin_mut()
                && sleep.poll(cx).is_ready()
            {
                return Poll::Ready(Woke::Timer);
            }
            if shutdown_armed
                && let Some(shutdown) = shutdown.as_mut()
                && shutdown.poll_begun(cx)
            {
                return Poll::Ready(Woke::Shutdown);
            }
            if let Some(idle) = idle.as_mut().as_pin_mut()
                && idle.poll(cx).is_ready()
            {
                return Poll::Ready(Woke::Idle);
            }
            Poll::Pending
        })
        .await
    }

    /// Acts on whichever timers are due.
    async fn on_timer(&mut self, receive_deadline: Option<Instant>) -> Option<Message> {
        let now = Instant::now();
        if self.pong_deadline.is_some_and(|at| at <= now) {
            self.pong_deadline = None;
            self.ping_out = None;
            self.heartbeat.missed.fetch_add(1, Ordering::Relaxed);
            self.missed_in_a_row += 1;
            if self.missed_in_a_row >= self.options.heartbeat_max_missed {
                return Some(self.fail(Error::heartbeat_lost()).await);
            }
        }
        if let State::Closing(at) = self.state
            && at <= now
        {
            self.set_closed();
            self.sender.shutdown(self.options.close_timeout).await;
            return Some(Message::Closed);
        }
        if receive_deadline.is_some_and(|at| at <= now) {
            return Some(Message::Error(Error::timeout("no message within receive_timeout")));
        }
        if let (Some(at), Some(every)) = (self.next_ping, self.options.heartbeat)
            && at <= now
        {
            let deadline = now + every / 2;
            self.next_ping = Some(now + every);
            self.pong_deadline = Some(deadline);
            // The ping carries its sequence number, so that only its own pong times it.
            let seq = self.heartbeat.pings.fetch_add(1, Ordering::Relaxed) + 1;
            let payload = seq.to_be_bytes();
            self.ping_out = Some((payload, now));
            // A peer that stopped reading leaves the ping stuck behind full buffers:
            // that is a lost heartbeat too.
            match tokio::time::timeout_at(deadline, self.sender.ping(&payload)).await {
                Err(_) => return Some(self.fail(Error::heartbeat_lost()).await),
                Ok(Err(e)) if !e.is_closed() => return Some(self.fail(e).await),
                Ok(_) => {}
            }
        }
        None
    }

    fn set_closed(&mut self) {
        self.state = State::Closed;
        self.sender.shared().set_closed();
    }

    /// Any frame from the peer shows it is alive, as aiohttp resets its heartbeat on any
    /// message.
    fn saw_traffic(&mut self) {
        if let Some(every) = self.options.heartbeat {
            self.pong_deadline = None;
            self.missed_in_a_row = 0;
            self.next_ping = Some(Instant::now() + every);
        }
    }

    async fn on_event(&mut self, event: Event) -> Option<Message> {
        let closing = self.state != State::Open;
        match event {
            // Messages that arrive after our close frame are dropped: the handler asked
            // to stop.
            Event::Text(_) | Event::Binary(_) if closing => None,
            Event::Text(text) => Some(Message::Text(text)),
            Event::Binary(data) => Some(Message::Binary(Bytes::from(data))),
            Event::Control(OpCode::Ping, payload) => {
                if !self.options.autoping {
                    return Some(Message::Ping(payload));
                }
                let pong = self.sender.write_frame(OpCode::Pong, &payload, false);
                match by(self.write_deadline(false), pong).await {
                    Err(e) | Ok(Err(e)) if !e.is_closed() => Some(self.fail(e).await),
                    _ => None,
                }
            }
            Event::Control(OpCode::Pong, payload) => {
                if let Some((sent, at)) = self.ping_out
                    && payload[..] == sent
                {
                    self.ping_out = None;
                    let nanos = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    self.heartbeat.round_trip.store(nanos.max(1), Ordering::Relaxed);
                }
                (!self.options.autoping).then_some(Message::Pong(payload))
            }
            Event::Control(_, payload) => Some(self.on_close(&payload).await),
        }
    }

    /// The peer's close frame: checked, answered with the same code unless ours went out
    /// first, and the connection closed.
    async fn on_close(&mut self, payload: &[u8]) -> Message {
        let (code, reason) = match payload {
            [] => (CloseCode::NO_STATUS, String::new()),
            [_] => {
                return self
                    .fail(Error::protocol(CloseCode::PROTOCOL_ERROR, "one-byte close payload"))
                    .await;
            }
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_allowed_on_wire() {
                    return self
                        .fail(Error::protocol(CloseCode::PROTOCOL_ERROR, "invalid close code"))
                        .await;
                }
                match std::str::from_utf8(reason) {
                    Ok(reason) => (code, reason.to_owned()),
                    Err(_) => return self.fail(invalid_text()).await,
                }
            }
        };
        self.sender.shared().set_close_code(code);
        let echo = if code == CloseCode::NO_STATUS { &[][..] } else { &payload[..2] };
        let answer = self.sender.send_close_payload(echo, code);
        let answered = by(self.write_deadline(true), answer).await;
        self.set_closed();
        if answered.is_err() {
            self.sender.shared().abort();
        }
        self.sender.shutdown(self.options.close_timeout).await;
        Message::Close(code, reason)
    }

    /// Fails the connection: a close frame with the error's code when it has one a peer
    /// may see, then the connection is shut.
    /// The close frame waits at most the close timeout for a writer that a peer which
    /// stopped reading may be holding up; then every send in progress is aborted.
    async fn fail(&mut self, e: Error) -> Message {
        if let Some(code) = e.close_code().filter(|c| c.is_allowed_on_wire()) {
            let close = self.sender.close(code, "");
            let _ = tokio::time::timeout(self.options.close_timeout, close).await;
        }
        self.state = State::Closed;
        let code = e.close_code().unwrap_or(CloseCode::ABNORMAL_CLOSURE);
        self.sender.give_up(code, self.options.close_timeout).await;
        Message::Error(e)
    }
}

/// `write` unless `deadline` passes first, when the peer has read nothing of it: an error
/// that fails the connection without a close frame, which could not follow a frame that may
/// be half written.
async fn by<T>(deadline: Option<Instant>, write: impl Future<Output = T>) -> Result<T, Error> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, write).await.map_err(|_| Error::peer_not_reading()),
        None => Ok(write.await),
    }
}

/// The error for `message` where a message of type `asked` was wanted: the message's own
/// error, closed for a close, else a type error that says what came.
fn not_asked_for(message: Message, asked: &str) -> Error {
    let got = match message {
        Message::Error(e) => return e,
        Message::Close(..) | Message::Closing | Message::Closed => return Error::closed(),
        Message::Text(text) => format!("text of {} bytes", text.len()),
        Message::Binary(data) => format!("binary of {} bytes", data.len()),
        Message::Ping(_) => "a ping".to_owned(),
        Message::Pong(_) => "a pong".to_owned(),
    };
    Error::message_type(format!("{asked} asked for, {got} received"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large message grows the read buffer; a quiet connection gives it back, and the next
    /// large message still arrives whole.
    #[tokio::test(start_paused = true)]
    async fn a_read_buffer_grown_by_a_large_message_is_given_back_when_quiet() {
        let (ours, theirs) = tokio::io::duplex(64 << 10);
        let peer = WebSocket::from_raw_socket(theirs, Role::Client, WebSocketConfig::new());
        let mut ws = WebSocket::from_raw_socket(ours, Role::Server, WebSocketConfig::new());
        let capacity = |ws: &mut WebSocket| {
            ws.read_side().reader.as_ref().map_or(0, |reader| reader.buf.capacity())
        };
        for _ in 0..2 {
            let sender = peer.sender();
            let sent = tokio::spawn(async move { sender.send_bytes(&vec![7; 4 << 20]).await });
            assert!(matches!(ws.receive().await, Message::Binary(b) if b.len() == 4 << 20));
            sent.await.unwrap().unwrap();
            assert!(capacity(&mut ws) > 1 << 20, "{}", capacity(&mut ws));
            // Quiet for longer than the release (the paused clock moves on by itself).
            let quiet = tokio::time::timeout(IDLE_BUFFER_RELEASE * 2, ws.receive()).await;
            assert!(quiet.is_err(), "{quiet:?}");
            assert!(capacity(&mut ws) <= 4 * READ_SIZE, "{}", capacity(&mut ws));
        }
    }
}
