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

fn two_apps() -> (Application, Application) {
    let make = || {
        let mut app = Application::new();
        app.add_get("/whoami", |req: Request| async move {
            Response::text(req.header("authorization").unwrap_or("none").to_owned())
        });
        app.add_get("/go", |req: Request| async move {
            let to = req.query_get("to").unwrap_or_default().to_owned();
            Response::new(http::StatusCode::FOUND).with_header("location", &to)
        });
        app
    };
    (make(), make())
}

async fn text(req: tandem_client::RequestBuilder) -> String {
    within(within(req.send()).await.unwrap().text()).await.unwrap()
}

#[tokio::test]
async fn session_auth_goes_to_its_origin_only() {
    let (a, b) = two_apps();
    let (a, b) = (Server::start(a).await, Server::start(b).await);
    let basic = "Basic dXNlcjpwYXNz";
    // With a base URL: its origin only.
    let s = tandem_client::ClientSession::builder()
        .base_url(&a.url("/"))
        .basic_auth("user", "pass")
        .build();
    assert_eq!(text(s.get("whoami")).await, basic);
    assert_eq!(text(s.get(&b.url("/whoami"))).await, "none");
    assert_eq!(text(s.get(&format!("go?to={}", b.url("/whoami")))).await, "none");
    assert_eq!(text(s.get("whoami").bearer_auth("t")).await, "Bearer t");
    // Without one: the origin each request is made to, and no redirect elsewhere.
    let s = tandem_client::ClientSession::builder().basic_auth("user", "pass").build();
    assert_eq!(text(s.get(&b.url("/whoami"))).await, basic);
    assert_eq!(text(s.get(&a.url(&format!("/go?to={}", b.url("/whoami"))))).await, "none");
    assert!(!format!("{s:?}").contains("dXNlcjpwYXNz"));
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn url_credentials_with_an_explicit_authorization_are_an_error() {
    let (a, _) = two_apps();
    let a = Server::start(a).await;
    let with_creds = format!("http://u:p@{}/whoami", a.addr);
    let e = within(session().get(&with_creds).bearer_auth("t").send()).await.unwrap_err();
    assert!(e.is_request(), "{e}");
    assert!(!e.to_string().contains("u:p"), "{e}");
    assert_eq!(text(session().get(&with_creds)).await, "Basic dTpw");
    a.stop().await;
}
