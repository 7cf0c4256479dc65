//! Testing an application: aiohttp's `TestClient`, on a real loopback socket or in memory,
//! and `make_mocked_request` for calling a handler or middleware with no server at all.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tandem_client::{ClientSession, ClientSessionBuilder, CookieJar, RequestBuilder};
use tandem_connect::Connector;
use tandem_web::{App, AppRunner, Application, Error, Request, ServerConfig};

/// The size of each in-memory connection's pipe buffer, per direction: a write larger than
/// this waits for the other side to read, as on a socket.
pub const IN_MEMORY_BUFFER: usize = 64 * 1024;

/// The URL an in-memory [`TestClient`]'s relative URLs resolve against. Its host is what
/// the app sees in `Host`; no name is ever looked up.
const IN_MEMORY_BASE: &str = "http://127.0.0.1/";

/// An [`Application`] served on `127.0.0.1` at a free port, with a [`ClientSession`] pointed
/// at it: aiohttp's `TestClient`.
///
/// Relative URLs resolve against the server, so `client.get("/hello")` requests
/// `http://127.0.0.1:PORT/hello`. Everything between them is real: the app's startup
/// signals run in [`new`](Self::new), requests cross a TCP connection, and
/// [`close`](Self::close) shuts the server down gracefully (the shutdown signals, in-flight
/// requests finished, then the cleanup contexts and `on_cleanup` signals).
///
/// ```
/// use tandem_http::test::TestClient;
/// use tandem_http::web::{Application, Request, Response};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut app = Application::new();
/// app.add_get("/hello/{name}", |req: Request| async move {
///     Response::text(format!("Hello, {}", req.match_info("name").unwrap_or("?")))
/// });
///
/// let client = TestClient::new(app).await?;
/// let mut resp = client.get("/hello/tandem").send().await?;
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.text().await?, "Hello, tandem");
/// assert!(client.close().await, "every request finished before the shutdown timeout");
/// # Ok(()) }
/// ```
///
/// The server prints nothing on stderr (its [`ServerConfig::stderr_log`] is off), so test
/// output stays quiet; install a tracing subscriber to see its access log and errors.
///
/// Dropping a `TestClient` without [`close`](Self::close) starts the same shutdown as a task
/// on the current tokio runtime, which finishes only if that runtime keeps running; call
/// `close` when a test checks what cleanup does.
///
/// [`in_memory`](Self::in_memory) starts the same server with no socket: each connection
/// the session opens is a `tokio::io::duplex` pipe whose other end the app serves, so a test
/// where the network is not the point needs no port.
#[derive(Debug)]
pub struct TestClient {
    session: ClientSession,
    /// The loopback address, or `None` in memory.
    addr: Option<SocketAddr>,
    app: App,
    /// `None` once `close` has taken it, so `Drop` knows the shutdown is done. Shared with
    /// the in-memory connector, which serves each connection it opens through it.
    runner: Arc<Mutex<Option<AppRunner>>>,
}

impl TestClient {
    /// Starts `app` on `127.0.0.1` at a free port and returns a client for it.
    ///
    /// The session keeps cookies for the IP host (aiohttp's `TestClient` uses an unsafe
    /// `CookieJar` for the same reason); otherwise it has [`ClientSession::new`]'s defaults.
    pub async fn new(app: Application) -> Result<Self, Error> {
        Self::with_session(app, ClientSession::builder().cookie_jar(CookieJar::unsafe_hosts()))
            .await
    }

    /// Like [`new`](Self::new), with the session built from `session`, whose base URL is set
    /// to the server's.
    pub async fn with_session(
        app: Application,
        session: ClientSessionBuilder,
    ) -> Result<Self, Error> {
        let runner = started(app).await?;
        let addr = match runner.tcp_site("127.0.0.1", 0).await {
            Ok(addr) => addr,
            Err(e) => {
                // The startup signals ran, so their cleanups must too.
                runner.cleanup().await;
                return Err(e);
            }
        };
        let session =
            session.base_url(&format!("http://{addr}/")).try_build().map_err(Error::new)?;
        let app = runner.app().clone();
        Ok(TestClient {
            session,
            addr: Some(addr),
            app,
            runner: Arc::new(Mutex::new(Some(runner))),
        })
    }

    /// Starts `app` with no socket and returns a client whose connections are in-memory
    /// pipes to it: the same server, the same client, and no port. Relative URLs resolve
    /// against `http://127.0.0.1/`; requests have no [`remote`](Request::remote) address.
    ///
    /// ```
    /// use tandem_http::test::TestClient;
    /// use tandem_http::web::{Application, Request};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut app = Application::new();
    /// app.add_get("/", |req: Request| async move {
    ///     format!("no socket: {}", req.remote().is_none())
    /// });
    /// let client = TestClient::in_memory(app).await?;
    /// assert_eq!(client.get("/").send().await?.text().await?, "no socket: true");
    /// assert!(client.addr().is_none());
    /// assert!(client.close().await);
    /// # Ok(()) }
    /// ```
    pub async fn in_memory(app: Application) -> Result<Self, Error> {
        Self::in_memory_with_session(
            app,
            ClientSession::builder().cookie_jar(CookieJar::unsafe_hosts()),
        )
        .await
    }

    /// Like [`in_memory`](Self::in_memory), with the session built from `session`, whose
    /// base URL and connector are set.
    pub async fn in_memory_with_session(
        app: Application,
        session: ClientSessionBuilder,
    ) -> Result<Self, Error> {
        let runner = started(app).await?;
        let app = runner.app().clone();
        let runner = Arc::new(Mutex::new(Some(runner)));
        let serving = Arc::clone(&runner);
        let connector = Connector::builder()
            .dialer(move |_origin| {
                let (client, server) = tokio::io::duplex(IN_MEMORY_BUFFER);
                // `None` once the client is closed: the server has gone.
                let connection = serving.lock().ok().and_then(|runner| {
                    runner.as_ref().map(|runner| runner.serve_connection(server, None))
                });
                async move {
                    let refused =
                        || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "closed");
                    tokio::spawn(connection.ok_or_else(refused)?);
                    Ok(Box::new(client) as Box<dyn tandem_connect::Io>)
                }
            })
            .build();
        let session = session.base_url(IN_MEMORY_BASE).connector(connector);
        let session = session.try_build().map_err(Error::new)?;
        Ok(TestClient { session, addr: None, app, runner })
    }

    /// The server's loopback address; `None` for an [`in_memory`](Self::in_memory) one.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The absolute URL of `path` on the server (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        match self.addr {
            Some(addr) => format!("http://{addr}{path}"),
            None => format!("{}{}", IN_MEMORY_BASE.trim_end_matches('/'), path),
        }
    }

    /// The session, for anything the shortcuts below do not cover (its cookie jar, its
    /// connector's pool statistics).
    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    /// The running application, for its state and `url_for`.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// A request with any method; `url` may be relative to the server.
    pub fn request(&self, method: http::Method, url: &str) -> RequestBuilder {
        self.session.request(method, url)
    }

    /// A `GET` request; `url` may be relative to the server.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.session.get(url)
    }

    /// A `POST` request; `url` may be relative to the server.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.session.post(url)
    }

    /// A `PUT` request; `url` may be relative to the server.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.session.put(url)
    }

    /// A `PATCH` request; `url` may be relative to the server.
    pub fn patch(&self, url: &str) -> RequestBuilder {
        self.session.patch(url)
    }

    /// A `DELETE` request; `url` may be relative to the server.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.session.delete(url)
    }

    /// A `HEAD` request; `url` may be relative to the server.
    pub fn head(&self, url: &str) -> RequestBuilder {
        self.session.head(url)
    }

    /// An `OPTIONS` request; `url` may be relative to the server.
    pub fn options(&self, url: &str) -> RequestBuilder {
        self.session.options(url)
    }

    /// Shuts the server down gracefully and runs its cleanup; returns whether every
    /// in-flight request finished within the shutdown timeout.
    pub async fn close(self) -> bool {
        // Idle pooled connections would otherwise hold server tasks open until their
        // keep-alive timeout.
        self.session.connector().close_idle();
        match self.take_runner() {
            Some(runner) => runner.cleanup().await,
            None => true,
        }
    }

    fn take_runner(&self) -> Option<AppRunner> {
        self.runner.lock().ok()?.take()
    }
}

/// An app's runner, its startup signals run; the server prints nothing on stderr.
async fn started(app: Application) -> Result<AppRunner, Error> {
    let mut runner = AppRunner::with_config(app, ServerConfig::default().with_stderr_log(false))?;
    runner.setup().await?;
    Ok(runner)
}

/// A request as a connection would hand it to the app, with no server: aiohttp's
/// `make_mocked_request`, for calling a handler in a unit test. Its app is an empty one;
/// [`make_mocked_request_for`] makes one for an app of yours. For a body or a remote
/// address, build an `http::Request` and use [`Request::from_http`].
///
/// # Panics
///
/// On a method, path or header the wire would refuse, as a test wants to hear at once.
///
/// ```
/// use tandem_http::test::make_mocked_request;
/// use tandem_http::web::{Request, Response};
///
/// async fn greet(req: Request) -> Response {
///     Response::text(format!("hello {}", req.header("x-name").unwrap_or("?")))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let req = make_mocked_request("GET", "/greet?x=1", &[("x-name", "tandem")]);
/// assert_eq!(req.query_get("x"), Some("1"));
/// let response = greet(req).await;
/// assert_eq!(response.status(), 200);
/// # }
/// ```
pub fn make_mocked_request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    static EMPTY: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    let app = EMPTY.get_or_init(|| Application::new().freeze().expect("an empty app freezes"));
    make_mocked_request_for(app, method, path, headers)
}

/// [`make_mocked_request`] for `app` (frozen with [`Application::freeze`]): the request
/// sees its state, and [`App::dispatch`] runs it through the app's routing, middlewares and
/// handler, filling `match_info`, with no server.
///
/// # Panics
///
/// On a method, path or header the wire would refuse.
///
/// ```
/// use tandem_http::test::make_mocked_request_for;
/// use tandem_http::web::{Application, Next, Request, Response};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tandem_http::web::Error> {
/// let mut app = Application::new();
/// app.middleware(|req: Request, next: Next| async move {
///     next.run(req).await.with_header("x-seen", "yes")
/// });
/// app.add_get("/users/{id}", |req: Request| async move {
///     Response::text(req.match_info("id").unwrap_or("").to_owned())
/// });
/// let app = app.freeze()?;
/// let response = app.dispatch(make_mocked_request_for(&app, "GET", "/users/7", &[])).await;
/// assert_eq!(response.headers()["x-seen"], "yes");
/// # Ok(()) }
/// ```
pub fn make_mocked_request_for(
    app: &App,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Request {
    let mut builder = http::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        builder = builder.header(http::header::HOST, "127.0.0.1");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(String::new());
    let request = request.unwrap_or_else(|err| panic!("a mocked request: {err}"));
    Request::from_http(request, app).unwrap_or_else(|err| panic!("a mocked request: {err}"))
}

impl Drop for TestClient {
    fn drop(&mut self) {
        let Some(runner) = self.take_runner() else { return };
        self.session.connector().close_idle();
        // Without a runtime there is nothing to run the shutdown on; the runtime that ran
        // the server has gone, and its tasks with it.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(runner.cleanup());
        }
    }
}
