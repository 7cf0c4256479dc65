//! `security`, aiohttp-security: both identity policies, an authorization policy, the
//! checks and the guards. Over `TestClient::in_memory`: the network is not the point here.

use tandem_http::test::TestClient;
use tandem_session::{
    CookieStorage, SessionMiddleware,
    security::{
        AuthorizationPolicy, CookieIdentityPolicy, IdentityPolicy, PolicyFuture,
        SessionIdentityPolicy, authorized_userid, check_permission, forget, has_permission,
        is_anonymous, login_required, permits, remember, setup,
    },
};
use tandem_web::{Application, Error, Request, Response};

use crate::support::within;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// Users `ada` (an admin) and `bob`; identities are user names, and `gone` is one whose
/// user was deleted.
struct Users;

impl AuthorizationPolicy for Users {
    fn authorized_userid<'a>(&'a self, identity: &'a str) -> PolicyFuture<'a, Option<String>> {
        Box::pin(async move { Ok(["ada", "bob"].contains(&identity).then(|| identity.to_owned())) })
    }

    fn permits<'a>(
        &'a self,
        identity: Option<&'a str>,
        permission: &'a str,
    ) -> PolicyFuture<'a, bool> {
        Box::pin(async move {
            Ok(match permission {
                "read" => true,
                "admin" => identity == Some("ada"),
                _ => false,
            })
        })
    }
}

fn app(identity: impl IdentityPolicy, with_sessions: bool) -> Application {
    let mut app = Application::new();
    if with_sessions {
        app.middleware(SessionMiddleware::new(CookieStorage::new(SECRET).unwrap()));
    }
    setup(&mut app, identity, Users);
    app.add_get("/login/{user}", |req: Request| async move {
        let user = req.match_info("user").unwrap_or_default().to_owned();
        let mut response = Response::text("in");
        remember(&req, &mut response, &user).await?;
        Ok::<_, Error>(response)
    });
    app.add_get("/logout", |req: Request| async move {
        let mut response = Response::text("out");
        forget(&req, &mut response).await?;
        Ok::<_, Error>(response)
    });
    app.add_get("/whoami", |req: Request| async move {
        let user = authorized_userid(&req).await?.unwrap_or_else(|| "nobody".into());
        let anonymous = is_anonymous(&req).await?;
        let read = permits(&req, "read").await?;
        Ok::<_, Error>(Response::text(format!("{user} anonymous={anonymous} read={read}")))
    });
    app.add_get("/admin", |req: Request| async move {
        check_permission(&req, "admin").await?;
        Ok::<_, Error>(Response::text("admin page"))
    });
    app.add_get("/members", login_required(|_req: Request| async { "members only" }));
    app.add_get("/admin2", has_permission("admin", |_req: Request| async { "admin too" }));
    app
}

async fn status_and_text(client: &TestClient, path: &str) -> (u16, String) {
    let mut resp = within(client.get(path).send()).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn log_in_check_and_log_out_with_either_identity_policy() {
    for policy in ["session", "cookie"] {
        let app = match policy {
            "session" => app(SessionIdentityPolicy::new(), true),
            _ => app(CookieIdentityPolicy::new(SECRET).unwrap(), false),
        };
        let client = TestClient::in_memory(app).await.unwrap();
        let anon = status_and_text(&client, "/whoami").await;
        assert_eq!(anon, (200, "nobody anonymous=true read=true".into()), "{policy}");
        assert_eq!(status_and_text(&client, "/members").await.0, 401, "{policy}");
        assert_eq!(status_and_text(&client, "/admin").await.0, 401, "{policy}");

        status_and_text(&client, "/login/bob").await;
        let bob = status_and_text(&client, "/whoami").await;
        assert_eq!(bob.1, "bob anonymous=false read=true", "{policy}");
        assert_eq!(status_and_text(&client, "/members").await, (200, "members only".into()));
        assert_eq!(status_and_text(&client, "/admin").await.0, 403, "{policy}: not an admin");
        assert_eq!(status_and_text(&client, "/admin2").await.0, 403, "{policy}");

        status_and_text(&client, "/login/ada").await;
        assert_eq!(status_and_text(&client, "/admin").await, (200, "admin page".into()));
        assert_eq!(status_and_text(&client, "/admin2").await, (200, "admin too".into()));

        // An identity whose user is gone is logged in to no one.
        status_and_text(&client, "/login/gone").await;
        assert_eq!(status_and_text(&client, "/members").await.0, 401, "{policy}");

        status_and_text(&client, "/login/ada").await;
        status_and_text(&client, "/logout").await;
        assert_eq!(status_and_text(&client, "/whoami").await.1, "nobody anonymous=true read=true");
        assert!(client.close().await);
    }
}

/// The identity cookie is sealed: a client can neither read it nor forge one.
#[tokio::test]
async fn a_forged_identity_cookie_is_nobody() {
    let client = TestClient::in_memory(app(CookieIdentityPolicy::new(SECRET).unwrap(), false))
        .await
        .unwrap();
    let resp = within(client.get("/login/ada").send()).await.unwrap();
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("AIOLOGIN=") && !set_cookie.contains("ada"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");

    let forged = tandem_client::ClientSession::builder()
        .cookie_jar(tandem_client::CookieJar::dummy())
        .connector(client.session().connector().clone())
        .base_url(&client.url("/"))
        .build();
    for value in ["ada", "\"ada\"", "eyJpZGVudGl0eSI6ImFkYSJ9"] {
        let cookie = format!("AIOLOGIN={value}");
        let whoami = forged.get("/whoami").header("cookie", &cookie);
        let text = within(whoami.send()).await.unwrap().text().await.unwrap();
        assert!(text.starts_with("nobody"), "{value}: {text}");
        let admin = forged.get("/admin").header("cookie", &cookie);
        assert_eq!(within(admin.send()).await.unwrap().status(), 401);
    }
    assert!(client.close().await);
}

/// The session storage and the identity cookie may share one secret (the natural setup);
/// a value sealed for one must still never open as the other: a session whose data holds
/// an `identity` string (the client's own session, say, after a form stored what they
/// typed under that key) is not an identity cookie, and an identity cookie is no session.
#[tokio::test]
async fn a_value_sealed_for_one_purpose_never_opens_for_the_other() {
    use tandem_session::{Storage, Stored};

    let client =
        TestClient::in_memory(app(CookieIdentityPolicy::new(SECRET).unwrap(), true)).await.unwrap();
    let mut data = serde_json::Map::new();
    data.insert("identity".into(), "ada".into());
    let sessions = CookieStorage::new(SECRET).unwrap();
    let session = within(sessions.save(&Stored::new(None, 1, data))).await.unwrap();
    let whoami = client.get("/whoami").header("cookie", format!("AIOLOGIN={session}"));
    let text = within(whoami.send()).await.unwrap().text().await.unwrap();
    assert!(text.starts_with("nobody"), "a session opened as an identity: {text}");

    let resp = within(client.get("/login/bob").send()).await.unwrap();
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let identity = set_cookie["AIOLOGIN=".len()..].split(';').next().unwrap().to_owned();
    assert_eq!(
        within(sessions.load(&identity)).await.unwrap(),
        None,
        "an identity opened as a session"
    );
    assert!(client.close().await);
}

#[tokio::test]
async fn without_setup_the_checks_fail_clearly() {
    let mut app = Application::new();
    app.add_get("/", |req: Request| async move {
        let err = authorized_userid(&req).await.unwrap_err();
        Response::text(err.to_string())
    });
    let client = TestClient::in_memory(app).await.unwrap();
    let (_, text) = status_and_text(&client, "/").await;
    assert!(text.contains("no security policies are set up"), "{text}");
    assert!(client.close().await);
}
