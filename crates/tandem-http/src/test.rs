//! Testing an application: aiohttp's `TestClient`, on a real loopback socket.

use std::net::SocketAddr;

use tandem_client::{ClientSession, ClientSessionBuilder, CookieJar, RequestBuilder};
use tandem_web::{App, AppRunner, Application, Error, ServerConfig};

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
#[derive(Debug)]
pub struct TestClient {
    session: ClientSession,
    addr: SocketAddr,
    app: App,
    /// `None` once `close` has taken it, so `Drop` knows the shutdown is done.
    runner: Option<AppRunner>,
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
        let mut runner =
            AppRunner::with_config(app, ServerConfig::default().with_stderr_log(false))?;
        runner.setup().await?;
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
        Ok(TestClient { session, addr, app, runner: Some(runner) })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The absolute URL of `path` on the server (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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
    pub async fn close(mut self) -> bool {
        // Idle pooled connections would otherwise hold server tasks open until their
        // keep-alive timeout.
        self.session.connector().close_idle();
        match self.runner.take() {
            Some(runner) => runner.cleanup().await,
            None => true,
        }
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        let Some(runner) = self.runner.take() else { return };
        self.session.connector().close_idle();
        // Without a runtime there is nothing to run the shutdown on; the runtime that ran
        // the server has gone, and its tasks with it.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(runner.cleanup());
        }
    }
}
