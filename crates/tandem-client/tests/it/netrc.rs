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
