//! `.netrc` credentials (`trust_env`, or a file named with `netrc_file`): sent to the host
//! the file names, not over a request's own, and never carried to another host.

use http::StatusCode;
use tandem_client::ClientSession;
use tandem_web::{Application, Request, Response};

use crate::support::{Server, within};

fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/whoami", |req: Request| async move {
        Response::text(req.header("authorization").unwrap_or("none").to_owned())
    });
    app.add_get("/proxied", |req: Request| async move {
        Response::text(req.header("proxy-authorization").unwrap_or("none").to_owned())
    });
    app.add_get("/go", |req: Request| async move {
        let to = req.query_get("to").unwrap_or_default().to_owned();
        Response::new(StatusCode::FOUND).with_header("location", &to)
    });
    app
}

#[tokio::test]
async fn netrc_credentials_go_to_their_host_only() {
    let server = Server::start(app()).await;
    let other = Server::start(app()).await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("netrc-test-{}", std::process::id()));
    std::fs::write(&path, "machine 127.0.0.1\n  login user\n  password pass\n").unwrap();
    let s = ClientSession::builder().netrc_file(&path).build();
    let _ = std::fs::remove_file(&path);
    let text = |req: tandem_client::RequestBuilder| async move {
        within(within(req.send()).await.unwrap().text()).await.unwrap()
    };

    assert_eq!(text(s.get(&server.url("/whoami"))).await, "Basic dXNlcjpwYXNz");
    // A request's own credentials win.
    assert_eq!(text(s.get(&server.url("/whoami")).bearer_auth("t")).await, "Bearer t");
    // A host the file does not name gets none.
    let elsewhere = format!("http://localhost:{}/whoami", other.addr.port());
    assert_eq!(text(s.get(&elsewhere)).await, "none");
    // Nor through a redirect from the host it names.
    let via = server.url(&format!("/go?to={elsewhere}"));
    assert_eq!(text(s.get(&via)).await, "none");
    // Without the file, nothing.
    assert_eq!(text(ClientSession::new().get(&server.url("/whoami"))).await, "none");
    server.stop().await;
    other.stop().await;
}

/// A proxy from the environment (`trust_env`; here `proxy_env`, so the test does not set
/// process variables) that names no credentials gets its host's from `.netrc`; one whose URL
/// carries its own keeps them.
#[tokio::test]
async fn netrc_credentials_go_to_an_environment_proxy() {
    let proxy = Server::start(app()).await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("netrc-proxy-test-{}", std::process::id()));
    std::fs::write(&path, "machine 127.0.0.1 login pu password pp\n").unwrap();
    let through = |proxy_url: String| {
        let env = tandem_client::ProxyEnv::from_vars(move |name| {
            (name == "http_proxy").then(|| proxy_url.clone())
        });
        ClientSession::builder().proxy_env(env).netrc_file(&path).build()
    };
    let text = |s: ClientSession| async move {
        // The "proxy" is a Tandem server: it routes the absolute-form target by its path.
        let mut resp = within(s.get("http://origin.invalid/proxied").send()).await.unwrap();
        within(resp.text()).await.unwrap()
    };

    let bare = format!("http://127.0.0.1:{}", proxy.addr.port());
    assert_eq!(text(through(bare)).await, "Basic cHU6cHA=");
    let own = format!("http://me:mine@127.0.0.1:{}", proxy.addr.port());
    assert_eq!(text(through(own)).await, "Basic bWU6bWluZQ==");
    let _ = std::fs::remove_file(&path);
    proxy.stop().await;
}
