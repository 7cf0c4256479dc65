//! Bearer tokens, and telling a refused connection from other connect errors.

use tandem_web::{Application, Request, Response};

use crate::support::{Server, session, within};

#[tokio::test]
async fn bearer_auth_sends_the_token_and_hides_it() {
    let mut app = Application::new();
    app.add_get("/whoami", |req: Request| async move {
        Response::text(req.header("authorization").unwrap_or("none").to_owned())
    });
    let server = Server::start(app).await;
    let session = session();
    let builder = session.get(&server.url("/whoami")).bearer_auth("t0ken");
    assert!(!format!("{builder:?}").contains("t0ken"), "Debug hides the token");
    let mut resp = within(builder.send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "Bearer t0ken");
    // A token that would split the head is refused before anything is sent.
    let err = within(session.get(&server.url("/whoami")).bearer_auth("a\r\nx: y").send())
        .await
        .unwrap_err();
    assert!(err.is_request(), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn a_refused_connection_says_so() {
    // A port that was just free and has nothing listening.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = within(session().get(&format!("http://127.0.0.1:{port}/")).send()).await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert!(err.is_connection_refused(), "{err:?}");

    // An invalid URL is not a refusal.
    let err = within(session().get("http://[::1/").send()).await.unwrap_err();
    assert!(!err.is_connection_refused());
}
