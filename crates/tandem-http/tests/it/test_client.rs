//! `TestClient`: relative URLs, a real session (cookies, pool), and the app's lifecycle
//! (startup before the first request, graceful shutdown on close and on drop).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tandem_http::{
    http::Method,
    prelude::*,
    test::TestClient,
    web::{App, CookieOptions, Error},
};
use tokio::sync::oneshot;

/// The longest any single wait in a test may take before it counts as a hang.
const TIMEOUT: Duration = Duration::from_secs(10);

async fn echo_path(req: Request) -> Response {
    Response::text(format!("{} {}", req.method(), req.path()))
}

#[tokio::test]
async fn relative_urls_reach_the_server() {
    let mut app = Application::new();
    app.add_route(Some(Method::GET), "/{tail:.*}", echo_path);
    app.add_route(Some(Method::DELETE), "/{tail:.*}", echo_path);
    let client = TestClient::new(app).await.unwrap();
    assert!(client.addr().unwrap().ip().is_loopback());

    let mut resp = client.get("/a/b?c=d").send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "GET /a/b");
    let mut resp = client.delete("/x").send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "DELETE /x");
    // An absolute URL is used as it is.
    let mut resp = client.session().get(&client.url("/abs")).send().await.unwrap();
    assert_eq!(resp.url().as_str(), client.url("/abs"));
    assert_eq!(resp.text().await.unwrap(), "GET /abs");
    assert!(client.close().await);
}

#[tokio::test]
async fn cookies_are_kept_for_the_loopback_host() {
    let mut app = Application::new();
    app.add_get("/login", |_req: Request| async {
        let mut resp = Response::text("in");
        resp.set_cookie("user", "ada", &CookieOptions::default()).unwrap();
        resp
    });
    app.add_get("/whoami", |req: Request| async move {
        Response::text(req.cookie("user").unwrap_or("nobody").to_owned())
    });
    let client = TestClient::new(app).await.unwrap();
    client.get("/login").send().await.unwrap().read().await.unwrap();
    let mut resp = client.get("/whoami").send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "ada");
    client.close().await;
}

#[tokio::test]
async fn requests_reuse_one_pooled_connection() {
    let mut app = Application::new();
    app.add_get("/", |req: Request| async move {
        // The client's port tells connections apart.
        Response::text(req.remote().unwrap().port().to_string())
    });
    let client = TestClient::new(app).await.unwrap();
    let mut ports = Vec::new();
    for _ in 0..3 {
        ports.push(client.get("/").send().await.unwrap().text().await.unwrap());
    }
    assert_eq!(ports[0], ports[1]);
    assert_eq!(ports[1], ports[2]);
    client.close().await;
}

/// Counts the lifecycle signals an app has run.
#[derive(Default)]
struct Lifecycle {
    startup: AtomicUsize,
    cleanup: AtomicUsize,
}

fn counted_app(lifecycle: &Arc<Lifecycle>) -> Application {
    let mut app = Application::new();
    let on_start = Arc::clone(lifecycle);
    app.on_startup(move |_app: App| {
        let on_start = Arc::clone(&on_start);
        async move {
            on_start.startup.fetch_add(1, Ordering::SeqCst);
            Ok::<(), Error>(())
        }
    });
    let on_clean = Arc::clone(lifecycle);
    app.on_cleanup(move |_app: App| {
        let on_clean = Arc::clone(&on_clean);
        async move {
            on_clean.cleanup.fetch_add(1, Ordering::SeqCst);
            Ok::<(), Error>(())
        }
    });
    app.add_get("/", |_req: Request| async { "up" });
    app
}

#[tokio::test]
async fn close_runs_startup_and_cleanup_once() {
    let lifecycle = Arc::new(Lifecycle::default());
    let client = TestClient::new(counted_app(&lifecycle)).await.unwrap();
    assert_eq!(lifecycle.startup.load(Ordering::SeqCst), 1);
    assert_eq!(client.get("/").send().await.unwrap().text().await.unwrap(), "up");
    assert_eq!(lifecycle.cleanup.load(Ordering::SeqCst), 0);

    let addr = client.addr().unwrap();
    assert!(tokio::time::timeout(TIMEOUT, client.close()).await.unwrap());
    assert_eq!(lifecycle.cleanup.load(Ordering::SeqCst), 1);
    // The listener has gone with the server.
    let refused = ClientSession::new().get(&format!("http://{addr}/")).send().await.unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
}

#[tokio::test]
async fn drop_shuts_the_server_down_in_the_background() {
    let lifecycle = Arc::new(Lifecycle::default());
    let (done_tx, done_rx) = oneshot::channel();
    let mut app = counted_app(&lifecycle);
    // The last signal to run tells the test the background shutdown has finished.
    let done_tx = std::sync::Mutex::new(Some(done_tx));
    app.on_cleanup(move |_app: App| {
        let done_tx = done_tx.lock().unwrap().take();
        async move {
            if let Some(tx) = done_tx {
                let _ = tx.send(());
            }
            Ok::<(), Error>(())
        }
    });
    let client = TestClient::new(app).await.unwrap();
    let addr = client.addr().unwrap();
    drop(client);
    tokio::time::timeout(TIMEOUT, done_rx).await.unwrap().unwrap();
    assert_eq!(lifecycle.cleanup.load(Ordering::SeqCst), 1);
    let refused = ClientSession::new().get(&format!("http://{addr}/")).send().await.unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
}

#[tokio::test]
async fn a_failing_startup_is_returned() {
    let mut app = Application::new();
    app.on_startup(|_app: App| async { Err::<(), _>(Error::new("no database")) });
    let err = TestClient::new(app).await.unwrap_err();
    assert_eq!(err.to_string(), "no database");
}

#[tokio::test]
async fn a_session_builder_keeps_its_settings() {
    let mut app = Application::new();
    app.add_get("/", |req: Request| async move {
        Response::text(req.header("x-suite").unwrap_or("none").to_owned())
    });
    let builder = ClientSession::builder().header("x-suite", "facade");
    let client = TestClient::with_session(app, builder).await.unwrap();
    assert_eq!(client.get("/").send().await.unwrap().text().await.unwrap(), "facade");
    client.close().await;
}

/// In memory: the same server and client with no socket (no remote address), its cookies
/// kept, its lifecycle run; once closed, no connection can be opened.
#[tokio::test]
async fn in_memory_serves_without_a_socket() {
    let lifecycle = Arc::new(Lifecycle::default());
    let mut app = counted_app(&lifecycle);
    app.add_get("/login", |_req: Request| async {
        let mut resp = Response::text("in");
        resp.set_cookie("user", "ada", &CookieOptions::default()).unwrap();
        resp
    });
    app.add_get("/whoami", |req: Request| async move {
        let remote = req.remote().map_or("none".to_owned(), |r| r.to_string());
        Response::text(format!("{} {remote}", req.cookie("user").unwrap_or("nobody")))
    });
    app.add_post("/echo", |mut req: Request| async move {
        Response::bytes(req.read().await.unwrap_or_default())
    });
    let client = TestClient::in_memory(app).await.unwrap();
    assert!(client.addr().is_none());
    assert_eq!(lifecycle.startup.load(Ordering::SeqCst), 1);
    assert_eq!(client.get("/").send().await.unwrap().text().await.unwrap(), "up");
    client.get("/login").send().await.unwrap().read().await.unwrap();
    assert_eq!(client.get("/whoami").send().await.unwrap().text().await.unwrap(), "ada none");
    // A body larger than the pipe's buffer crosses it both ways.
    let big = vec![b'x'; 3 * tandem_http::test::IN_MEMORY_BUFFER];
    let echoed = client.post("/echo").body(big.clone()).send().await.unwrap().read().await;
    assert_eq!(echoed.unwrap().len(), big.len());

    let session = client.session().clone();
    assert!(tokio::time::timeout(TIMEOUT, client.close()).await.unwrap());
    assert_eq!(lifecycle.cleanup.load(Ordering::SeqCst), 1);
    let refused = session.get("/").send().await.unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
}

#[tokio::test]
async fn mocked_requests_reach_handlers_and_middlewares_with_no_server() {
    use tandem_http::test::{make_mocked_request, make_mocked_request_for};

    let req =
        make_mocked_request("POST", "/a/b?c=d", &[("x-token", "t1"), ("host", "example.com")]);
    assert_eq!(req.method(), Method::POST);
    assert_eq!((req.path().as_ref(), req.query_get("c")), ("/a/b", Some("d")));
    assert_eq!(req.header("x-token"), Some("t1"));
    assert_eq!(req.header("host"), Some("example.com"));
    assert!(req.remote().is_none());
    assert_eq!(echo_path(req).await.status(), 200);

    let mut app = Application::new();
    app.middleware(|req: Request, next: Next| async move {
        if req.header("authorization").is_none() {
            return Response::text("denied").with_status(StatusCode::UNAUTHORIZED);
        }
        next.run(req).await
    });
    app.add_get("/items/{id}", |req: Request| async move {
        Response::text(req.match_info("id").unwrap_or("?").to_owned())
    });
    let app = app.freeze().unwrap();
    let denied = app.dispatch(make_mocked_request_for(&app, "GET", "/items/7", &[])).await;
    assert_eq!(denied.status(), 401);
    let allowed = make_mocked_request_for(&app, "GET", "/items/7", &[("authorization", "x")]);
    let response = app.dispatch(allowed).await;
    assert_eq!(response.status(), 200);
    let tandem_http::web::Body::Full(body) = response.body() else { panic!("a whole body") };
    assert_eq!(&body[..], b"7");
}
