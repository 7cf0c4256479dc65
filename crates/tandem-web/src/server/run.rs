//! Serving an application until told to stop: [`run_app`] and [`RunOptions`], which make a
//! runtime of their own, and [`serve`], which runs inside the caller's. Each binds, starts an
//! [`AppRunner`], prints aiohttp's banner, and on its stop signal (SIGINT or SIGTERM unless
//! given another) shuts down gracefully through [`AppRunner::cleanup`]: the `on_shutdown`
//! signals, 1001 to WebSockets, in-flight requests drained, then the cleanup signals.

use std::{
    fmt,
    future::{Future, IntoFuture},
    net::SocketAddr,
    sync::Arc,
};

use tokio::net::TcpListener;

#[cfg(feature = "tls")]
use super::TlsConfig;
use super::{AccessLog, AccessLogFormat, AppRunner, ServerConfig, TaskTracker, accept_loop};

/// The TLS settings a server may have: none without the `tls` feature.
#[cfg(feature = "tls")]
type Tls = TlsConfig;

/// Stands in for `TlsConfig` without the `tls` feature: no value, so never HTTPS.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
enum Tls {}
use crate::{Application, Error, handler::BoxFuture};

/// Serves `app` on `host:port` until SIGINT or SIGTERM, then shuts down gracefully:
/// aiohttp's `web.run_app`. It blocks, running its own single-threaded tokio runtime, so it
/// belongs in a plain `fn main`; inside a runtime (`#[tokio::main]`) it returns an error
/// ([`Error::is_inside_runtime`]): await [`serve`] there instead.
///
/// Prints aiohttp's banner once listening:
///
/// ```text
/// ======== Running on http://127.0.0.1:8080 ========
/// (Press CTRL+C to quit)
/// ```
pub fn run_app(app: Application, host: &str, port: u16) -> Result<(), Error> {
    RunOptions::new(host, port).run(app)
}

/// How many connections may wait to be accepted on each listener (`listen(2)`'s backlog):
/// 1024, tokio's. aiohttp's 128 dates from when Linux capped it there; a burst of clients
/// beyond the backlog waits in SYN retries for a second or more.
pub const DEFAULT_BACKLOG: u32 = 1024;

/// `run_app` with more knobs: aiohttp's `run_app` arguments. Several hosts, already bound
/// sockets (systemd socket activation) and Unix socket paths may be served at once; workers,
/// the backlog, `SO_REUSEPORT`, TLS and connection settings.
#[derive(Clone)]
pub struct RunOptions {
    hosts: Vec<String>,
    port: u16,
    /// Listeners bound by someone else (aiohttp's `sock=`), each duplicated when served.
    sockets: Vec<Arc<std::net::TcpListener>>,
    #[cfg(unix)]
    unix_paths: Vec<std::path::PathBuf>,
    backlog: u32,
    reuse_port: bool,
    workers: usize,
    multi_thread: bool,
    config: ServerConfig,
    on_listening: Option<Arc<std::sync::Mutex<Option<ListeningHook>>>>,
    tls: Option<Tls>,
}

type ListeningHook = Box<dyn FnOnce(SocketAddr) + Send>;

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("sockets", &self.sockets)
            .field("backlog", &self.backlog)
            .field("reuse_port", &self.reuse_port)
            .field("workers", &self.workers)
            .field("multi_thread", &self.multi_thread)
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// Serve on `host:port` with one worker.
    pub fn new(host: &str, port: u16) -> Self {
        RunOptions {
            hosts: vec![host.to_owned()],
            port,
            sockets: Vec::new(),
            #[cfg(unix)]
            unix_paths: Vec::new(),
            backlog: DEFAULT_BACKLOG,
            reuse_port: false,
            workers: 1,
            multi_thread: false,
            config: ServerConfig::default(),
            on_listening: None,
            tls: None,
        }
    }

    /// Serves HTTPS with `tls` (aiohttp's `ssl_context=`). The handshake counts against
    /// [`ServerConfig::head_timeout`]; keep a clone of `tls` to
    /// [`reload`](TlsConfig::reload) its certificate while serving.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Runs `n` workers. By default each is a thread with its own single-threaded runtime and
    /// its own `SO_REUSEPORT` listener, so the kernel spreads connections and no task ever
    /// moves between threads.
    #[must_use]
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Runs the workers as one multi-threaded runtime sharing one listener instead.
    #[must_use]
    pub fn multi_thread(mut self, yes: bool) -> Self {
        self.multi_thread = yes;
        self
    }

    /// Connection settings.
    #[must_use]
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The access log's format (aiohttp's `run_app(access_log_format=...)`), parsed now: an
    /// unknown atom is an error here, before anything runs. Like
    /// [`access_log`](Self::access_log), it changes the [`config`](Self::config) given so
    /// far, so it comes after that.
    pub fn access_log_format(mut self, format: &str) -> Result<Self, Error> {
        self.config.access_log_format = Some(AccessLogFormat::new(format)?);
        Ok(self)
    }

    /// Where the access log goes (aiohttp's `access_log=`; [`AccessLog::Off`] is its
    /// `access_log=None`).
    #[must_use]
    pub fn access_log(mut self, to: AccessLog) -> Self {
        self.config.access_log = to;
        self
    }

    /// Listens on each of `hosts` at the port instead of the one host given to
    /// [`new`](Self::new) (aiohttp's `host=[...]`): `["127.0.0.1", "::1"]`, say. An empty
    /// list binds no TCP host, for a server on [`socket`](Self::socket)s or
    /// [`unix_path`](Self::unix_path)s only.
    #[must_use]
    pub fn hosts<I: IntoIterator<Item = S>, S: Into<String>>(mut self, hosts: I) -> Self {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Also serves a listener bound elsewhere (aiohttp's `sock=`): one systemd passed by
    /// socket activation (the `listenfd` crate takes it from `LISTEN_FDS`), or one bound
    /// with options of your own.
    #[must_use]
    pub fn socket(mut self, listener: std::net::TcpListener) -> Self {
        self.sockets.push(Arc::new(listener));
        self
    }

    /// Also serves on a Unix socket at `path` (aiohttp's `path=`).
    #[cfg(unix)]
    #[must_use]
    pub fn unix_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.unix_paths.push(path.into());
        self
    }

    /// The listen backlog of the listeners it binds ([`DEFAULT_BACKLOG`]).
    #[must_use]
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets `SO_REUSEPORT` on the listeners it binds (aiohttp's `reuse_port`), so that
    /// several processes may listen on one port and the kernel spreads connections among
    /// them. Several [`workers`](Self::workers) set it whatever this says.
    #[must_use]
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// Calls `f` with the first bound TCP address once the server listens (before the
    /// banner).
    #[must_use]
    pub fn on_listening(mut self, f: impl FnOnce(SocketAddr) + Send + 'static) -> Self {
        self.on_listening = Some(Arc::new(std::sync::Mutex::new(Some(Box::new(f)))));
        self
    }

    /// Serves `app` until SIGINT or SIGTERM.
    pub fn run(self, app: Application) -> Result<(), Error> {
        self.run_until(app, wait_for_signal)
    }

    /// Serves `app` until the future `stop` makes completes, then shuts down gracefully as
    /// on a signal. `stop` is called inside the server's runtime, so the future may need
    /// one: `|| tokio::time::sleep(d)`. With port 0, [`on_listening`](Self::on_listening)
    /// tells where it listens.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tandem_web::{Application, RunOptions};
    ///
    /// let app = Application::new();
    /// RunOptions::new("127.0.0.1", 8080)
    ///     .run_until(app, || tokio::time::sleep(Duration::from_secs(60)))?;
    /// # Ok::<(), tandem_web::Error>(())
    /// ```
    pub fn run_until<F, Fut>(self, app: Application, stop: F) -> Result<(), Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::new(InsideRuntime));
        }
        let mut builder = if self.multi_thread {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(self.workers);
            b
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        let runtime = builder.enable_all().build()?;
        runtime.block_on(async move { self.serve(app, stop()).await })
    }

    async fn serve(self, app: Application, stop: impl Future<Output = ()>) -> Result<(), Error> {
        // Bound before the startup signals run, so a port in use fails before anything is
        // set up that would need cleaning up.
        let bound = self.bind().await?;
        let runner = started(app, self.config.clone()).await?;
        let scheme = scheme(self.tls.as_ref());
        let mut urls = Vec::new();
        let mut first = None;
        for (listener, more) in bound.tcp {
            let addr = listener.local_addr()?;
            first = first.or(Some(addr));
            urls.push(format!("{scheme}://{addr}"));
            serve_listener(&runner, listener, self.tls.as_ref());
            for listener in more {
                spawn_worker(&runner, listener, self.tls.clone());
            }
        }
        #[cfg(unix)]
        for (path, listener) in bound.unix {
            urls.push(format!("{scheme}://unix:{}:", path.display()));
            runner.serve_unix(listener);
        }
        let listening = self.on_listening.as_ref().and_then(|f| f.lock().ok()?.take());
        if let (Some(listening), Some(addr)) = (listening, first) {
            listening(addr);
        }
        until_stopped(runner, &urls, stop).await;
        Ok(())
    }

    /// Binds every listener: each host's (with one more per extra worker thread when
    /// workers run on their own runtimes), the given sockets, the Unix paths.
    async fn bind(&self) -> Result<Bound, Error> {
        let per_thread = if self.multi_thread { 1 } else { self.workers };
        let options = BindOptions {
            backlog: self.backlog,
            reuse_port: self.reuse_port || per_thread > 1,
            keepalive: self.config.tcp_keepalive,
        };
        let mut tcp = Vec::new();
        for host in &self.hosts {
            let named = host_port(host, self.port);
            let addrs = tokio::net::lookup_host((host.as_str(), self.port))
                .await
                .map_err(|err| bind_error(&named, err))?
                .collect::<Vec<_>>();
            let (listener, addr) =
                bind_first(&addrs, options).map_err(|err| bind_error(&named, err))?;
            let more = (1..per_thread)
                .map(|_| options.bind(addr).map_err(|err| bind_error(&addr, err)))
                .collect::<Result<Vec<_>, _>>()?;
            tcp.push((TcpListener::from_std(listener)?, more));
        }
        for socket in &self.sockets {
            let listener = socket.try_clone()?;
            listener.set_nonblocking(true)?;
            socket2::SockRef::from(&listener).set_keepalive(self.config.tcp_keepalive)?;
            tcp.push((TcpListener::from_std(listener)?, Vec::new()));
        }
        #[cfg(unix)]
        let unix = self
            .unix_paths
            .iter()
            .map(|path| {
                let listener = tokio::net::UnixListener::bind(path)
                    .map_err(|err| bind_error(&path.display(), err))?;
                Ok((path.clone(), listener))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        #[cfg(unix)]
        let none = tcp.is_empty() && unix.is_empty();
        #[cfg(not(unix))]
        let none = tcp.is_empty();
        if none {
            return Err(Error::new("nothing to listen on: no host, socket or Unix path"));
        }
        Ok(Bound {
            tcp,
            #[cfg(unix)]
            unix,
        })
    }
}

/// The listeners [`RunOptions`] serves: each TCP one with those of the extra worker threads
/// on its address, and the Unix ones with their paths.
struct Bound {
    tcp: Vec<(TcpListener, Vec<std::net::TcpListener>)>,
    #[cfg(unix)]
    unix: Vec<(std::path::PathBuf, tokio::net::UnixListener)>,
}

/// How a TCP listener is bound.
#[derive(Clone, Copy, Debug)]
pub(super) struct BindOptions {
    pub(super) backlog: u32,
    #[cfg_attr(not(unix), allow(dead_code, reason = "SO_REUSEPORT is Unix's"))]
    pub(super) reuse_port: bool,
    /// `SO_KEEPALIVE`, which the connections it accepts inherit.
    pub(super) keepalive: bool,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions { backlog: DEFAULT_BACKLOG, reuse_port: false, keepalive: true }
    }
}

impl BindOptions {
    /// A non-blocking listener on `addr`. `SO_REUSEADDR` is set as aiohttp sets it on Unix,
    /// so a restarted server binds while the old one's connections linger in `TIME_WAIT`;
    /// Windows's `SO_REUSEADDR` would let two servers share a port, so not there.
    pub(super) fn bind(self, addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
        let socket =
            socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
        #[cfg(unix)]
        socket.set_reuse_address(true)?;
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
        if self.reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.set_keepalive(self.keepalive)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(i32::try_from(self.backlog).unwrap_or(i32::MAX))?;
        Ok(socket.into())
    }
}

/// A listener on the first of `addrs` that binds, and its address; the last failure if none.
fn bind_first(
    addrs: &[SocketAddr],
    options: BindOptions,
) -> std::io::Result<(std::net::TcpListener, SocketAddr)> {
    let mut last = std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address");
    for addr in addrs {
        match options.bind(*addr) {
            Ok(listener) => {
                let addr = listener.local_addr()?;
                return Ok((listener, addr));
            }
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// Starts a worker thread with its own runtime serving `listener` for `runner`'s app, over
/// TLS if `tls` is given.
fn spawn_worker(runner: &AppRunner, listener: std::net::TcpListener, tls: Option<Tls>) {
    let (app, config, tracker, shutdown) = runner.parts();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        runtime.block_on(async move {
            let Ok(listener) = TcpListener::from_std(listener) else { return };
            // Connections are tracked twice: locally, so this runtime outlives them, and
            // by the runner, so its shutdown waits for them.
            let local = TaskTracker::new();
            let hold = Some(tracker);
            let connections = local.clone();
            match tls {
                #[cfg(feature = "tls")]
                Some(tls) => {
                    super::tls::accept_loop(
                        listener,
                        tls,
                        app,
                        config,
                        shutdown,
                        connections,
                        hold,
                    )
                    .await;
                }
                #[cfg(not(feature = "tls"))]
                Some(never) => match never {},
                None => accept_loop(listener, app, config, shutdown, connections, hold).await,
            }
            local.close();
            local.wait().await;
        });
    });
}

/// Serves `app` inside the running tokio runtime: the async counterpart of [`run_app`], for
/// a `#[tokio::main]` program. `listener` is a bound `TcpListener` (tokio's or std's), a
/// `SocketAddr`, `"host:port"`, or `(host, port)`.
///
/// Awaiting it binds (an address in use is an error naming it), runs the startup signals,
/// prints the banner and serves until SIGINT or SIGTERM, or until the future given to
/// [`with_graceful_shutdown`](Serve::with_graceful_shutdown) completes; then it shuts down
/// gracefully as [`run_app`] does.
///
/// ```no_run
/// use tandem_web::{Application, Request};
///
/// #[tokio::main]
/// async fn main() -> Result<(), tandem_web::Error> {
///     let mut app = Application::new();
///     app.add_get("/", |_req: Request| async { "Hello, World" });
///     tandem_web::serve("127.0.0.1:8080", app).await
/// }
/// ```
pub fn serve(listener: impl IntoListener, app: Application) -> Serve {
    Serve {
        listen: listener.into_listen(),
        app,
        config: ServerConfig::default(),
        stop: None,
        tls: None,
    }
}

/// What [`serve`] returns: await it to serve; set it up first with its methods.
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve {
    listen: sealed::Listen,
    app: Application,
    config: ServerConfig,
    stop: Option<BoxFuture<()>>,
    tls: Option<Tls>,
}

impl fmt::Debug for Serve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("config", &self.config)
            .field("stop", &self.stop.as_ref().map_or("SIGINT or SIGTERM", |_| "custom"))
            .finish_non_exhaustive()
    }
}

impl Serve {
    /// Shuts down gracefully when `signal` completes, instead of on SIGINT or SIGTERM.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tandem_web::Error> {
    /// use tandem_web::Application;
    ///
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = tokio::spawn(
    ///     tandem_web::serve("127.0.0.1:0", Application::new())
    ///         .with_graceful_shutdown(async { let _ = stopped.await; })
    ///         .into_future(),
    /// );
    /// stop.send(()).unwrap();
    /// server.await.unwrap()?;
    /// # Ok(()) }
    /// ```
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.stop = Some(Box::pin(signal));
        self
    }

    /// Connection settings.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Serves HTTPS with `tls`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
}

impl IntoFuture for Serve {
    type Output = Result<(), Error>;
    type IntoFuture = BoxFuture<Result<(), Error>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let listener = self.listen.bind().await?;
            let addr = listener.local_addr()?;
            let runner = started(self.app, self.config).await?;
            serve_listener(&runner, listener, self.tls.as_ref());
            let stop = self.stop.unwrap_or_else(|| Box::pin(wait_for_signal()));
            let url = format!("{}://{addr}", scheme(self.tls.as_ref()));
            until_stopped(runner, &[url], stop).await;
            Ok(())
        })
    }
}

/// What [`serve`] can listen on: a bound `tokio::net::TcpListener` or
/// `std::net::TcpListener`, a `SocketAddr`, `"host:port"` (`&str` or `String`), or a
/// `(host, port)` pair. Sealed: the set may grow, never be implemented outside.
pub trait IntoListener: sealed::Sealed {}

mod sealed {
    use std::net::SocketAddr;

    use tokio::net::TcpListener;

    use crate::Error;

    pub trait Sealed {
        fn into_listen(self) -> Listen;
    }

    /// Where a listener comes from, bound by [`Listen::bind`].
    #[derive(Debug)]
    pub enum Listen {
        Bound(TcpListener),
        Std(std::net::TcpListener),
        Addr(SocketAddr),
        Text(String),
        HostPort(String, u16),
    }

    impl Listen {
        pub(super) async fn bind(self) -> Result<TcpListener, Error> {
            match self {
                Listen::Bound(listener) => Ok(listener),
                Listen::Std(listener) => {
                    listener.set_nonblocking(true)?;
                    Ok(TcpListener::from_std(listener)?)
                }
                Listen::Addr(addr) => {
                    TcpListener::bind(addr).await.map_err(|err| super::bind_error(&addr, err))
                }
                Listen::Text(addr) => TcpListener::bind(addr.as_str())
                    .await
                    .map_err(|err| super::bind_error(&addr, err)),
                Listen::HostPort(host, port) => super::bind_tcp(&host, port).await,
            }
        }
    }

    macro_rules! listen_from {
        ($($ty:ty => |$v:ident| $make:expr),* $(,)?) => {$(
            impl Sealed for $ty {
                fn into_listen(self) -> Listen {
                    let $v = self;
                    $make
                }
            }
            impl super::IntoListener for $ty {}
        )*};
    }

    listen_from!(
        TcpListener => |l| Listen::Bound(l),
        std::net::TcpListener => |l| Listen::Std(l),
        SocketAddr => |a| Listen::Addr(a),
        &str => |a| Listen::Text(a.to_owned()),
        String => |a| Listen::Text(a),
        (&str, u16) => |hp| Listen::HostPort(hp.0.to_owned(), hp.1),
    );
}

/// A runner for `app`, its startup signals run.
async fn started(app: Application, config: ServerConfig) -> Result<AppRunner, Error> {
    let mut runner = AppRunner::with_config(app, config)?;
    runner.setup().await?;
    Ok(runner)
}

/// Serves `listener` on `runner`, over TLS if `tls` is given.
fn serve_listener(runner: &AppRunner, listener: TcpListener, tls: Option<&Tls>) {
    match tls {
        #[cfg(feature = "tls")]
        Some(tls) => runner.serve_tls(listener, tls),
        #[cfg(not(feature = "tls"))]
        Some(never) => match *never {},
        None => runner.serve_tcp(listener),
    }
}

fn scheme(tls: Option<&Tls>) -> &'static str {
    if tls.is_some() { "https" } else { "http" }
}

/// Prints aiohttp's banner, a line for each of `urls`, waits for `stop`, then shuts down
/// gracefully.
async fn until_stopped(runner: AppRunner, urls: &[String], stop: impl Future<Output = ()>) {
    for url in urls {
        println!("======== Running on {url} ========");
    }
    println!("(Press CTRL+C to quit)");
    stop.await;
    runner.cleanup().await;
}

/// Listens on `host:port` with the default [`BindOptions`]; a failure names the address.
pub(super) async fn bind_tcp(host: &str, port: u16) -> Result<TcpListener, Error> {
    bind_tcp_with(host, port, BindOptions::default()).await
}

/// Listens on `host:port` (its first address that binds) with `options`; a failure names
/// the address.
pub(super) async fn bind_tcp_with(
    host: &str,
    port: u16,
    options: BindOptions,
) -> Result<TcpListener, Error> {
    let named = host_port(host, port);
    let addrs =
        tokio::net::lookup_host((host, port)).await.map_err(|err| bind_error(&named, err))?;
    let addrs = addrs.collect::<Vec<_>>();
    let (listener, _) = bind_first(&addrs, options).map_err(|err| bind_error(&named, err))?;
    Ok(TcpListener::from_std(listener)?)
}

/// `host:port`, with an IPv6 literal in brackets.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// A listener that could not be made: the address, and why.
pub(super) fn bind_error(addr: &dyn fmt::Display, err: std::io::Error) -> Error {
    Error::new(BindFailed { addr: addr.to_string(), source: err })
}

/// Binding failed. Its message names the address; its source is the OS's reason.
struct BindFailed {
    addr: String,
    source: std::io::Error,
}

impl fmt::Display for BindFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}", self.addr)
    }
}

/// The reason too, as `fn main() -> Result<(), Error>` prints this and not the chain.
impl fmt::Debug for BindFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}: {}", self.addr, self.source)
    }
}

impl std::error::Error for BindFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// [`run_app`] or [`RunOptions::run`] was called on a thread already running a tokio
/// runtime, where starting its own would panic.
pub(crate) struct InsideRuntime;

impl fmt::Display for InsideRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "run_app starts a tokio runtime of its own, and this thread already runs one \
             (#[tokio::main]?): there, use `tandem_web::serve(addr, app).await`",
        )
    }
}

impl fmt::Debug for InsideRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for InsideRuntime {}

/// Waits for SIGINT (Ctrl+C) or, on Unix, SIGTERM.
#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Waits for SIGINT (Ctrl+C) or SIGTERM.
#[cfg(unix)]
async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => term.recv().await,
            None => std::future::pending().await,
        }
    };
    let interrupted = tokio::signal::ctrl_c();
    futures_util::future::select(std::pin::pin!(interrupted), std::pin::pin!(terminated)).await;
}
