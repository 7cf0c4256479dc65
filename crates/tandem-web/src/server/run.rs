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
use tokio_util::task::TaskTracker;

#[cfg(feature = "tls")]
use super::TlsConfig;
use super::{AppRunner, ServerConfig, accept_loop};

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

/// `run_app` with more knobs: workers and connection settings.
#[derive(Clone)]
pub struct RunOptions {
    host: String,
    port: u16,
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
            .field("host", &self.host)
            .field("port", &self.port)
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
            host: host.to_owned(),
            port,
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

    /// Calls `f` with the bound address once the server listens (before the banner).
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
        let per_thread = if self.multi_thread { 1 } else { self.workers };
        // Bound before the startup signals run, so a port in use fails before anything is
        // set up that would need cleaning up.
        let (listener, more) = if per_thread == 1 {
            (bind_tcp(&self.host, self.port).await?, Vec::new())
        } else {
            let named = host_port(&self.host, self.port);
            let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|err| bind_error(&named, err))?
                .next()
                .ok_or_else(|| Error::new(format!("no address for {named}")))?;
            let first = reuseport_listener(addr).map_err(|err| bind_error(&named, err))?;
            let addr = first.local_addr()?;
            let more = (1..per_thread)
                .map(|_| reuseport_listener(addr).map_err(|err| bind_error(&addr, err)))
                .collect::<Result<Vec<_>, _>>()?;
            (TcpListener::from_std(first)?, more)
        };
        let addr = listener.local_addr()?;
        let runner = started(app, self.config.clone()).await?;
        serve_listener(&runner, listener, self.tls.as_ref());
        for listener in more {
            spawn_worker(&runner, listener, self.tls.clone());
        }
        let listening = self.on_listening.as_ref().and_then(|f| f.lock().ok()?.take());
        if let Some(listening) = listening {
            listening(addr);
        }
        until_stopped(runner, scheme(self.tls.as_ref()), addr, stop).await;
        Ok(())
    }
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
            until_stopped(runner, scheme(self.tls.as_ref()), addr, stop).await;
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

/// Prints the banner, waits for `stop`, then shuts down gracefully.
async fn until_stopped(
    runner: AppRunner,
    scheme: &str,
    addr: SocketAddr,
    stop: impl Future<Output = ()>,
) {
    println!("======== Running on {scheme}://{addr} ========\n(Press CTRL+C to quit)");
    stop.await;
    runner.cleanup().await;
}

/// Listens on `host:port`; a failure names the address.
pub(super) async fn bind_tcp(host: &str, port: u16) -> Result<TcpListener, Error> {
    TcpListener::bind((host, port)).await.map_err(|err| bind_error(&host_port(host, port), err))
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

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Waits for SIGINT (Ctrl+C) or SIGTERM.
async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending().await,
            }
        } => {}
    }
}
