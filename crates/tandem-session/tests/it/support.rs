//! Test support: a Tandem server on a free port with a session app.

use std::{future::Future, time::Duration};

use tandem_client::{ClientSession, CookieJar};
use tandem_http::test::TestClient;
use tandem_session::{Error, SessionMiddleware, check_storage, get_session, new_session};
use tandem_web::{Application, Request, Response};

/// The longest any single wait in a test may take before it counts as a hang.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test if it takes longer than [`TIMEOUT`].
pub(crate) async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, fut).await.expect("the test step finished in time")
}

/// A client that keeps cookies for 127.0.0.1.
pub(crate) fn client() -> ClientSession {
    ClientSession::builder().cookie_jar(CookieJar::unsafe_hosts()).build()
}

/// A client that keeps no cookies, so a test sets the `Cookie` header itself.
pub(crate) fn bare_client() -> ClientSession {
    ClientSession::builder().cookie_jar(CookieJar::dummy()).build()
}

/// A running Tandem server on a free loopback port: `tandem_http::test::TestClient`, the one
/// harness for that, rather than a copy of it here. The tests use their own sessions (with
/// and without a cookie jar) against its URLs.
pub(crate) async fn start(app: Application) -> TestClient {
    within(TestClient::new(app)).await.expect("the app starts")
}

/// An app exercising every session operation:
/// - `/count`: adds one to `n` and answers it;
/// - `/peek`: answers `n` without changing anything;
/// - `/login/{user}`: `new_session`, then sets `user`;
/// - `/whoami`: answers `user`, or `anonymous`;
/// - `/logout`: invalidates the session;
/// - `/healthz`: `ok` if the storage answers (a 503 if not).
pub(crate) fn app(middleware: SessionMiddleware) -> Application {
    let mut app = Application::new();
    app.middleware(middleware);
    app.add_get("/count", |req: Request| async move {
        let session = get_session(&req).await?;
        let n = session.get_as::<u64>("n").unwrap_or(0) + 1;
        session.insert("n", n);
        Ok::<_, Error>(Response::text(n.to_string()))
    });
    app.add_get("/peek", |req: Request| async move {
        let n = get_session(&req).await?.get_as::<u64>("n").unwrap_or(0);
        Ok::<_, Error>(Response::text(n.to_string()))
    });
    app.add_get("/login/{user}", |req: Request| async move {
        let session = new_session(&req).await?;
        session.insert("user", req.match_info("user"));
        Ok::<_, Error>(Response::text("welcome"))
    });
    app.add_get("/whoami", |req: Request| async move {
        let user = get_session(&req).await?.get_as::<String>("user");
        Ok::<_, Error>(Response::text(user.unwrap_or_else(|| "anonymous".to_owned())))
    });
    app.add_get("/logout", |req: Request| async move {
        get_session(&req).await?.invalidate();
        Ok::<_, Error>(Response::text("bye"))
    });
    app.add_get("/healthz", |req: Request| async move {
        check_storage(&req).await?;
        Ok::<_, Error>(Response::text("ok"))
    });
    app
}

/// GETs `url` and returns the `Set-Cookie` header (if any) and the body.
pub(crate) async fn get(client: &ClientSession, url: &str) -> (Option<String>, String) {
    get_with(client, url, None).await
}

/// GETs `url` sending `cookie` as the whole `Cookie` header.
pub(crate) async fn get_with(
    client: &ClientSession,
    url: &str,
    cookie: Option<&str>,
) -> (Option<String>, String) {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let mut resp = within(request.send()).await.expect("the request succeeds");
    assert_eq!(resp.status(), 200, "GET {url}");
    let set_cookie = resp.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    (set_cookie, within(resp.text()).await.unwrap())
}

/// The value of the cookie a `Set-Cookie` header sets, still percent-encoded as sent (the
/// server decodes it when it comes back in a `Cookie` header).
pub(crate) fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}
