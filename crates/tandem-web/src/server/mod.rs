//! Running an application: `AppRunner` and its TCP and Unix sites, graceful shutdown;
//! `run_app` and `serve` in `run.rs`.

mod access_log;
mod conn;
mod log_format;
use conn::Shutdown;
#[cfg(feature = "http2")]
mod h2;
mod h2_config;
#[cfg(feature = "tls")]
mod handshake_deadlines;
mod run;
#[cfg(feature = "tls")]
mod tls;
mod tls_info;
#[cfg(feature = "tls")]
mod tls_stream;
mod tracker;
mod write;

use std::{future::Future, net::SocketAddr, sync::Arc, task::Poll, time::Duration};

use tandem_proto::Limits;
#[cfg(unix)]
use tokio::net::UnixListener;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};
use tokio_util::sync::WaitForCancellationFutureOwned;
use tracker::TaskTracker;

pub(crate) use access_log::LoggedClient;
pub use access_log::{AccessLog, AccessLogWriter};
pub use conn::{MAX_DRAIN, SPARE_BUFFERS};
pub use h2_config::{
    DEFAULT_H2_CONNECTION_WINDOW, DEFAULT_H2_MAX_CONCURRENT_RESET_STREAMS,
    DEFAULT_H2_MAX_CONCURRENT_STREAMS, DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS,
    DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS, DEFAULT_H2_MAX_SEND_BUFFER_SIZE,
    DEFAULT_H2_STREAM_WINDOW, Http2Config,
};
pub(crate) use log_format::FormatError;
pub use log_format::{AccessLogFormat, DEFAULT_ACCESS_LOG_FORMAT};
pub(crate) use run::InsideRuntime;
pub use run::{DEFAULT_BACKLOG, IntoListener, RunOptions, Serve, run_app, serve};
#[cfg(feature = "tls")]
pub use tls::{ClientAuth, Identity, TlsConfig, TlsConfigBuilder};
pub use tls_info::TlsInfo;
pub(crate) use write::Writer;

use crate::{
    App, Application, Error,
    handler::BoxFuture,
    payload::{AnyRead, ConnRead},
};

/// How long an idle keep-alive connection stays open: 75 s, aiohttp's default before 3.11
/// (3630 s since), nginx's too. Shorter frees idle sockets sooner.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(75);

/// How long a client may take to send a whole request head once it has started one, then
/// 408 and close: 30 s, as hyper. aiohttp has no such timer, so a slowloris client holds a
/// connection for as long as it likes there.
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for in-flight requests before it drops them: aiohttp's
/// `shutdown_timeout`, 60 s.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a client may take between two reads of a request body: 60 s, as nginx's
/// `client_body_timeout`. Past it the read fails with a 408 (the handler's response, if it
/// has not started yet), and the connection closes. aiohttp has no such timer, so a client
/// that declares a body and stalls holds its connection for as long as it likes there.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a response may wait between two successful writes to a client that does not
/// read: 60 s, as nginx's `send_timeout`. Past it the connection closes.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a connection whose response went out before its request body was all read
/// goes on reading and discarding that body before it closes: aiohttp's `lingering_time`,
/// 10 s. Closing at once would reset the connection under a client still sending, which
/// may then lose the response; [`MAX_DRAIN`] bounds the bytes, this the time.
pub const DEFAULT_LINGERING_TIME: Duration = Duration::from_secs(10);

/// The most one read of an HTTP/1.1 request body asks the socket for, and so the largest
/// chunk [`Payload::chunk`](crate::Payload::chunk) returns: 1 MiB. A body's reads start small
/// (8 KiB, or up to 256 KiB for a body of declared length) and double each time one fills
/// what it asked for, so a small body costs no more than its head and a slow one holds
/// little, while a fast large upload takes one read per megabyte. aiohttp reads 256 KiB at a
/// time (its `read_bufsize` is documented as 64 KiB, but its code's default and asyncio's
/// socket reads are 256 KiB); a quarter of the syscalls for a large upload is worth the
/// larger chunks. Smaller bounds what one slow handler holds per connection; larger saves
/// syscalls on fast uploads.
pub const DEFAULT_READ_BUFSIZE: usize = 1024 * 1024;

/// Per-connection settings: [`ServerConfig::default`], then a `with_*` method for each
/// setting to change. Its fields are public to read; new ones may come in a minor release, so
/// it is built through the methods rather than with a struct literal.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Idle keep-alive timeout ([`DEFAULT_KEEPALIVE_TIMEOUT`]).
    pub keepalive_timeout: Duration,
    /// Request-head timeout ([`DEFAULT_HEAD_TIMEOUT`]).
    pub head_timeout: Duration,
    /// Parser limits (see [`tandem_proto::Limits`]).
    pub limits: Limits,
    /// How long shutdown waits for in-flight requests ([`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub shutdown_timeout: Duration,
    /// The longest wait between two reads of a request body ([`DEFAULT_BODY_TIMEOUT`]).
    pub body_timeout: Duration,
    /// The longest wait between two writes of a response ([`DEFAULT_SEND_TIMEOUT`]).
    pub send_timeout: Duration,
    /// How many buffers idle connections leave on each thread for the next to wake
    /// ([`SPARE_BUFFERS`]); 0 frees them instead.
    pub spare_buffers: usize,
    /// HTTP/2's limits ([`Http2Config`]'s defaults).
    pub http2: Http2Config,
    /// Whether, while no tracing subscriber is installed, the access log (aiohttp's
    /// format) and the server's errors (a handler's error or panic, a failed signal) are
    /// printed on stderr: on by default, so that a server nobody set logging up for still
    /// shows them. With a subscriber they are tracing events (targets `tandem::access` and
    /// `tandem::server`) either way.
    pub stderr_log: bool,
    /// Whether a client closing its connection cancels the handler of its request (the
    /// handler future is dropped): aiohttp's `handler_cancellation`, off by default as there,
    /// so a handler runs to its end even when no one waits for the answer. HTTP/1.1 watches
    /// for the close while a request without a body is handled; on HTTP/2 a stream reset
    /// always cancels its handler.
    pub handler_cancellation: bool,
    /// `SO_KEEPALIVE` on accepted connections, so that the kernel finds peers that vanished
    /// without a word: aiohttp's `tcp_keepalive`, on by default. Set on the listeners the
    /// server binds or is given, whose connections inherit it.
    pub tcp_keepalive: bool,
    /// The longest a connection drains an unread request body after its response
    /// ([`DEFAULT_LINGERING_TIME`]).
    pub lingering_time: Duration,
    /// The most one read of an HTTP/1.1 request body asks for, and so the largest chunk a
    /// handler reads: aiohttp's `read_bufsize` ([`DEFAULT_READ_BUFSIZE`]; 0 counts as 1).
    /// `Request::read`, which holds the whole body anyway (within `client_max_size`), reads
    /// a body of declared length into one buffer of that size, as large reads as it takes.
    /// HTTP/2 bodies come as h2 delivers them, in DATA frames of at most the frame size
    /// Tandem advertises (16 KiB), and how much a client may send ahead of the handler is
    /// the flow-control windows' business ([`Http2Config`]).
    pub read_bufsize: usize,
    /// Where the access log goes ([`AccessLog::Auto`]: tracing events, or stderr while no
    /// subscriber is installed).
    pub access_log: AccessLog,
    /// The format of the access log's lines (aiohttp's `access_log_format`); `None` is
    /// aiohttp's [`DEFAULT_ACCESS_LOG_FORMAT`] for lines, and tracing events with the
    /// message `request` and the entry in their fields. Set, a tracing event's message is
    /// the line, and its fields are the same.
    pub access_log_format: Option<AccessLogFormat>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            head_timeout: DEFAULT_HEAD_TIMEOUT,
            limits: Limits::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            spare_buffers: SPARE_BUFFERS,
            http2: Http2Config::default(),
            stderr_log: true,
            handler_cancellation: false,
            tcp_keepalive: true,
            lingering_time: DEFAULT_LINGERING_TIME,
            read_bufsize: DEFAULT_READ_BUFSIZE,
            access_log: AccessLog::Auto,
            access_log_format: None,
        }
    }
}

impl ServerConfig {
    /// Sets [`keepalive_timeout`](Self::keepalive_timeout).
    #[must_use]
    pub fn with_keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// Sets [`head_timeout`](Self::head_timeout).
    #[must_use]
    pub fn with_head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout;
        self
    }

    /// Sets [`limits`](Self::limits).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets [`spare_buffers`](Self::spare_buffers).
    #[must_use]
    pub fn with_spare_buffers(mut self, buffers: usize) -> Self {
        self.spare_buffers = buffers;
        self
    }

    /// Sets [`body_timeout`](Self::body_timeout).
    #[must_use]
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Sets [`send_timeout`](Self::send_timeout).
    #[must_use]
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// Sets [`stderr_log`](Self::stderr_log).
    #[must_use]
    pub fn with_stderr_log(mut self, on: bool) -> Self {
        self.stderr_log = on;
        self
    }

    /// Sets [`handler_cancellation`](Self::handler_cancellation).
    #[must_use]
    pub fn with_handler_cancellation(mut self, on: bool) -> Self {
        self.handler_cancellation = on;
        self
    }

    /// Sets [`tcp_keepalive`](Self::tcp_keepalive).
    #[must_use]
    pub fn with_tcp_keepalive(mut self, on: bool) -> Self {
        self.tcp_keepalive = on;
        self
    }

    /// Sets [`lingering_time`](Self::lingering_time).
    #[must_use]
    pub fn with_lingering_time(mut self, time: Duration) -> Self {
        self.lingering_time = time;
        self
    }

    /// Sets [`read_bufsize`](Self::read_bufsize).
    #[must_use]
    pub fn with_read_bufsize(mut self, size: usize) -> Self {
        self.read_bufsize = size;
        self
    }

    /// Sets [`access_log`](Self::access_log).
    #[must_use]
    pub fn with_access_log(mut self, to: AccessLog) -> Self {
        self.access_log = to;
        self
    }

    /// Sets [`access_log_format`](Self::access_log_format).
    #[must_use]
    pub fn with_access_log_format(mut self, format: AccessLogFormat) -> Self {
        self.access_log_format = Some(format);
        self
    }

    /// Sets [`http2`](Self::http2).
    #[must_use]
    pub fn with_http2(mut self, http2: Http2Config) -> Self {
        self.http2 = http2;
        self
    }
}

/// Runs an application inside an existing tokio runtime: aiohttp's `AppRunner`.
///
/// `setup` runs the startup signals; sites then serve it; `cleanup` shuts down gracefully:
/// the `on_shutdown` signals, stop accepting, let in-flight requests finish (up to the
/// shutdown timeout), then the cleanup contexts and `on_cleanup` signals.
///
/// ```no_run
/// # async fn demo() -> Result<(), tandem_web::Error> {
/// use tandem_web::{AppRunner, Application, Request, Response};
///
/// let mut app = Application::new();
/// app.add_get("/", |_req: Request| async { Response::text("hi") });
/// let mut runner = AppRunner::new(app)?;
/// runner.setup().await?;
/// let addr = runner.tcp_site("127.0.0.1", 8080).await?;
/// println!("serving on {addr}");
/// runner.cleanup().await;
/// # Ok(()) }
/// ```
pub struct AppRunner {
    app: App,
    config: Arc<ServerConfig>,
    tracker: TaskTracker,
    shutdown: Shutdown,
    teardowns: Vec<BoxFuture<()>>,
    /// Where its sites listen, in the order they were added.
    addresses: std::sync::Mutex<Vec<SiteAddr>>,
}

/// Where one of an [`AppRunner`]'s sites listens: an entry of aiohttp's
/// `runner.addresses`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SiteAddr {
    /// A TCP site's address (HTTP or HTTPS).
    Tcp(SocketAddr),
    /// A Unix socket's path (`None` for an unnamed socket).
    Unix(Option<std::path::PathBuf>),
}

impl std::fmt::Debug for AppRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRunner").field("config", &self.config).finish_non_exhaustive()
    }
}

impl AppRunner {
    /// Freezes `app` for running, with the default [`ServerConfig`].
    pub fn new(app: Application) -> Result<Self, Error> {
        Self::with_config(app, ServerConfig::default())
    }

    /// Freezes `app` for running with `config`.
    pub fn with_config(app: Application, config: ServerConfig) -> Result<Self, Error> {
        if config.stderr_log {
            crate::log::enable_stderr_errors();
        }
        Ok(AppRunner {
            app: app.freeze()?,
            config: Arc::new(config),
            tracker: TaskTracker::new(),
            shutdown: Shutdown::default(),
            teardowns: Vec::new(),
            addresses: std::sync::Mutex::default(),
        })
    }

    /// Where the sites added so far listen, in the order they were added: aiohttp's
    /// `runner.addresses` (a site on port 0 shows the port it was given).
    pub fn addresses(&self) -> Vec<SiteAddr> {
        self.addresses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn add_address(&self, addr: SiteAddr) {
        self.addresses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(addr);
    }

    /// The frozen application.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Runs the startup signals and cleanup-context setups.
    pub async fn setup(&mut self) -> Result<(), Error> {
        self.teardowns = self.app.startup().await?;
        Ok(())
    }

    /// Listens on `host:port` (port 0 picks a free one) and serves; returns the address.
    pub async fn tcp_site(&self, host: &str, port: u16) -> Result<SocketAddr, Error> {
        let options =
            run::BindOptions { keepalive: self.config.tcp_keepalive, ..Default::default() };
        let listener = run::bind_tcp_with(host, port, options).await?;
        let addr = listener.local_addr()?;
        self.serve_tcp(listener);
        Ok(addr)
    }

    /// Serves on an already bound listener (aiohttp's `SockSite`: one systemd passed, one
    /// for `SO_REUSEPORT` workers, or a test's). Its `SO_KEEPALIVE` is set as
    /// [`ServerConfig::tcp_keepalive`] says.
    pub fn serve_tcp(&self, listener: TcpListener) {
        let _ = socket2::SockRef::from(&listener).set_keepalive(self.config.tcp_keepalive);
        if let Ok(addr) = listener.local_addr() {
            self.add_address(SiteAddr::Tcp(addr));
        }
        let (app, config, tracker, shutdown) = self.parts();
        self.tracker.spawn(accept_loop(listener, app, config, shutdown, tracker, None));
    }

    /// Listens on a Unix socket at `path` and serves (aiohttp's `UnixSite`).
    #[cfg(unix)]
    pub fn unix_site(&self, path: &std::path::Path) -> Result<(), Error> {
        let listener =
            UnixListener::bind(path).map_err(|err| run::bind_error(&path.display(), err))?;
        self.serve_unix(listener);
        Ok(())
    }

    /// Serves on an already bound Unix listener.
    #[cfg(unix)]
    pub fn serve_unix(&self, listener: UnixListener) {
        if let Ok(addr) = listener.local_addr() {
            self.add_address(SiteAddr::Unix(addr.as_pathname().map(Into::into)));
        }
        let (app, config, tracker, shutdown) = self.parts();
        self.tracker.spawn(accept_loop(listener, app, config, shutdown, tracker, None));
    }

    /// Serves one connection over any byte stream (an in-memory duplex, a stream a TLS
    /// acceptor handed over) until it closes, fails, times out or the server shuts down.
    /// `remote` is what [`Request::remote`](crate::Request::remote) reports. The runner's
    /// shutdown waits for it like for a connection its own sites accepted.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tandem_web::Error> {
    /// use tandem_web::{AppRunner, Application, Request};
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// let mut app = Application::new();
    /// app.add_get("/", |_req: Request| async { "hi" });
    /// let runner = AppRunner::new(app)?;
    /// let (mut client, server) = tokio::io::duplex(4096);
    /// tokio::spawn(runner.serve_connection(server, None));
    /// client.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await?;
    /// let mut response = String::new();
    /// client.read_to_string(&mut response).await?;
    /// assert!(response.starts_with("HTTP/1.1 200 OK") && response.ends_with("hi"));
    /// # Ok(()) }
    /// ```
    pub fn serve_connection<T>(
        &self,
        io: T,
        remote: Option<SocketAddr>,
    ) -> impl Future<Output = ()> + Send + use<T>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (app, config, _, shutdown) = self.parts();
        let (read, write) = tokio::io::split(io);
        let abort = shutdown.clone();
        let connection = async move {
            conn::serve(AnyRead::new(read), write, remote, app, &config, shutdown, None).await;
        };
        self.tracker.track_future(abortable(connection, abort))
    }

    fn parts(&self) -> (App, Arc<ServerConfig>, TaskTracker, Shutdown) {
        (self.app.clone(), Arc::clone(&self.config), self.tracker.clone(), self.shutdown.clone())
    }

    /// Shuts down gracefully in aiohttp's order, and runs the cleanup signals: stop
    /// accepting (every site's listener closed), close idle keep-alive connections (and
    /// those partway through a request head, not yet dispatched), send the `on_shutdown`
    /// signals, wait for the requests in flight up to the
    /// [`shutdown_timeout`](ServerConfig::shutdown_timeout), drop those still running
    /// (their handlers are cancelled), then the cleanup contexts and `on_cleanup` signals.
    /// Returns whether every in-flight request finished within the shutdown timeout.
    pub async fn cleanup(self) -> bool {
        self.shutdown.cancel();
        self.shutdown.sites().close();
        self.shutdown.sites().wait().await;
        self.app.shutdown_signals().await;
        self.tracker.close();
        let finished =
            tokio::time::timeout(self.config.shutdown_timeout, self.tracker.wait()).await.is_ok();
        if !finished {
            crate::log::warn("shutdown timeout: the requests still in flight were cancelled");
            self.shutdown.abort_token().cancel();
            self.tracker.wait().await;
        }
        self.app.cleanup(self.teardowns).await;
        finished
    }
}

/// A listener whose connections `accept_loop` serves: TCP or Unix.
trait Listen: Send + 'static {
    type Read: ConnRead;
    type Write: write::ConnWrite + 'static;

    fn accept_split(
        &self,
    ) -> impl Future<Output = std::io::Result<Accepted<Self::Read, Self::Write>>> + Send;
}

type Accepted<R, W> = (R, W, Option<SocketAddr>);

impl Listen for TcpListener {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;

    async fn accept_split(&self) -> std::io::Result<Accepted<Self::Read, Self::Write>> {
        let (stream, remote) = self.accept().await?;
        // Responses are written whole; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Ok((read, write, Some(remote)))
    }
}

#[cfg(unix)]
impl Listen for UnixListener {
    type Read = tokio::net::unix::OwnedReadHalf;
    type Write = tokio::net::unix::OwnedWriteHalf;

    async fn accept_split(&self) -> std::io::Result<Accepted<Self::Read, Self::Write>> {
        let (stream, _) = self.accept().await?;
        let (read, write) = stream.into_split();
        Ok((read, write, None))
    }
}

/// Accepts until shutdown, serving each connection as a task on `tracker`; `hold`, if given,
/// also waits for each connection (a worker's runner).
async fn accept_loop<L: Listen>(
    listener: L,
    app: App,
    config: Arc<ServerConfig>,
    shutdown: Shutdown,
    tracker: TaskTracker,
    hold: Option<TaskTracker>,
) {
    let serve = |(read, write, remote)| {
        let (app, config, shutdown) = (app.clone(), Arc::clone(&config), shutdown.clone());
        async move { conn::serve(read, write, remote, app, &config, shutdown, None).await }
    };
    accept_each(|| listener.accept_split(), &shutdown, &tracker, hold.as_ref(), serve).await;
}

/// How long an accept loop waits after an accept failed for want of a resource (no file
/// descriptor, no memory): at once it would fail again, so retrying at once spins the core
/// until a descriptor frees up. A connection's own failure (it reset before we took it) is
/// retried at once.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The accept loop of every site: takes connections from `accept` until shutdown and runs
/// what `serve` makes of each as a task on `tracker`; `hold`, if given, also waits for each
/// (a worker's runner). A failed accept (a peer that reset, or a full file table) ends that
/// connection, never the server; one that failed for want of a resource waits
/// [`ACCEPT_ERROR_BACKOFF`] first, and the first of a run of them is logged.
pub(super) async fn accept_each<T, Accept, Accepted, Serve, Served>(
    mut accept: Accept,
    shutdown: &Shutdown,
    tracker: &TaskTracker,
    hold: Option<&TaskTracker>,
    serve: Serve,
) where
    Accept: FnMut() -> Accepted,
    Accepted: Future<Output = std::io::Result<T>>,
    Serve: Fn(T) -> Served,
    Served: Future<Output = ()> + Send + 'static,
{
    let _open = shutdown.sites().token();
    let mut starved = false;
    loop {
        let Some(accepted) = shutdown.token().run_until_cancelled(accept()).await else { break };
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if !std::mem::replace(&mut starved, true) {
                    let every = ACCEPT_ERROR_BACKOFF.as_millis();
                    crate::log::warn(&format!("accept failed, retrying every {every} ms: {e}"));
                }
                let backoff = tokio::time::sleep(ACCEPT_ERROR_BACKOFF);
                if shutdown.token().run_until_cancelled(backoff).await.is_none() {
                    break;
                }
                continue;
            }
        };
        starved = false;
        tracker.spawn(connection_task(serve(accepted), shutdown, hold));
    }
}

/// What `accept_each` spawns for a connection: `connection`, abortable at the shutdown
/// timeout, holding `hold` (a worker's runner) until it ends.
///
/// Wrapped in structs, not `async` blocks: an `async` block or function awaiting the
/// future it is given holds it twice (the one it moved in and the one it pinned to await),
/// and every open connection, idle ones too, would pay each layer's copy of its whole state.
fn connection_task<F>(connection: F, shutdown: &Shutdown, hold: Option<&TaskTracker>) -> Held<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    let connection = abortable(connection, shutdown.clone());
    Held { connection, _hold: hold.map(TaskTracker::token) }
}

pin_project_lite::pin_project! {
    /// A connection holding a worker's runner (a token on its tracker) until it ends.
    struct Held<F> {
        #[pin]
        connection: Abortable<F>,
        _hold: Option<tracker::TaskToken>,
    }
}

impl<F: Future<Output = ()>> Future for Held<F> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        self.project().connection.poll(cx)
    }
}

/// Whether a failed accept is the one connection's failure (it was reset or aborted while
/// it waited in the backlog), after which the next accept may well succeed.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted)
}

/// `connection`, dropped (its handler with it) if the shutdown timeout passes first.
fn abortable<F: Future<Output = ()>>(connection: F, shutdown: Shutdown) -> Abortable<F> {
    let aborted = shutdown.abort_token().clone().cancelled_owned();
    Abortable { connection, aborted, shutdown, registered: false }
}

pin_project_lite::pin_project! {
    /// [`abortable`]'s future. The abort's waiter is polled at the first poll, which
    /// registers the connection task's waker with it (a connection is polled only by its
    /// own task, whose waker does not change), and after that only once the shutdown has
    /// begun and the abort has come: polling it at every wake-up of a busy connection cost a
    /// measurable share of each request.
    struct Abortable<F> {
        #[pin]
        connection: F,
        #[pin]
        aborted: WaitForCancellationFutureOwned,
        shutdown: Shutdown,
        registered: bool,
    }
}

impl<F: Future<Output = ()>> Future for Abortable<F> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let this = self.project();
        let shutdown = this.shutdown;
        if !*this.registered || (shutdown.is_cancelled() && shutdown.abort_token().is_cancelled()) {
            *this.registered = true;
            if this.aborted.poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        this.connection.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    /// An accept that fails for want of descriptors is retried every `ACCEPT_ERROR_BACKOFF`,
    /// not at once: at once, the loop spun a core for as long as the file table stayed full.
    /// A connection's own failure is retried at once.
    #[tokio::test(start_paused = true)]
    async fn an_accept_starved_of_descriptors_backs_off() {
        let calls = Arc::new(AtomicUsize::new(0));
        let shutdown = Shutdown::default();
        let accepting = {
            let (calls, shutdown) = (Arc::clone(&calls), shutdown.clone());
            tokio::spawn(async move {
                let accept = || {
                    let call = calls.fetch_add(1, Ordering::Relaxed);
                    async move {
                        match call {
                            0..3 => Err(io::Error::from(io::ErrorKind::ConnectionAborted)),
                            // Bounded, so that a loop retrying at once ends up waiting here
                            // and the count below fails rather than the test hanging.
                            3..100 => Err::<(), _>(io::Error::from_raw_os_error(24)), // EMFILE
                            _ => std::future::pending().await,
                        }
                    }
                };
                let tracker = TaskTracker::new();
                accept_each(accept, &shutdown, &tracker, None, |()| async {}).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(1050)).await;
        // Three aborted connections at once, then the first EMFILE and one retry each 100 ms.
        assert_eq!(calls.load(Ordering::Relaxed), 3 + 1 + 10);
        shutdown.cancel();
        accepting.await.unwrap();
    }

    /// The future an open connection's task holds is its connection's state and little
    /// more, idle connections' too. Each `async` layer that awaited the future it was given
    /// held it twice (the argument it moved in and the copy it pinned to await), and the
    /// three around a connection (the abort at the shutdown timeout, the hold on a worker's
    /// runner, the tracker's token) made a plain TCP connection's task 18.9 KB for 2.3 KB of
    /// state.
    #[tokio::test]
    async fn a_connections_task_holds_its_state_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await;
        let (read, write, remote) = listener.accept_split().await.unwrap();
        let (app, config) =
            (Application::new().freeze().unwrap(), Arc::new(ServerConfig::default()));
        let shutdown = Shutdown::default();
        let s = shutdown.clone();
        let connection =
            async move { conn::serve(read, write, remote, app, &config, s, None).await };
        let state = std::mem::size_of_val(&connection);
        let (tracker, hold) = (TaskTracker::new(), TaskTracker::new());
        let task = tracker.track_future(connection_task(connection, &shutdown, Some(&hold)));
        let size = std::mem::size_of_val(&task);
        assert!(size <= state + 256, "{size} bytes for {state} of state");
    }
}
