//! The encrypted cookie storage through a real server.

use tandem_session::{
    CookieStorage, DEFAULT_COOKIE_NAME, SessionMiddleware, default_cookie_options,
};

use crate::support::{app, bare_client, client, cookie_value, get, get_with, start};

const SECRET: &[u8] = b"a test secret that is long enough for HKDF";

fn middleware() -> SessionMiddleware {
    SessionMiddleware::new(CookieStorage::new(SECRET).unwrap())
}

#[tokio::test]
async fn a_session_lives_across_requests_and_unchanged_ones_send_no_cookie() {
    let server = start(app(middleware())).await;
    let client = client();
    for expected in ["1", "2", "3"] {
        let (set_cookie, body) = get(&client, &server.url("/count")).await;
        assert_eq!(body, expected);
        assert!(set_cookie.unwrap().starts_with(&format!("{DEFAULT_COOKIE_NAME}=")));
    }
    let (set_cookie, body) = get(&client, &server.url("/peek")).await;
    assert_eq!(body, "3");
    assert_eq!(set_cookie, None, "an unchanged session is not written again");
    server.close().await;
}

#[tokio::test]
async fn default_cookie_is_httponly_lax_and_a_browser_session_cookie() {
    let server = start(app(middleware())).await;
    let (set_cookie, _) = get(&client(), &server.url("/count")).await;
    let set_cookie = set_cookie.unwrap();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    assert!(!set_cookie.contains("Max-Age") && !set_cookie.contains("Secure"), "{set_cookie}");
    server.close().await;
}

#[tokio::test]
async fn cookie_attributes_are_configurable() {
    let options =
        default_cookie_options().with_max_age(600).with_secure(true).with_samesite("Strict");
    let server = start(app(middleware().cookie_name("sid").cookie_options(options))).await;
    // A bare client: the cookie is Secure, so a jar would rightly not send it over http.
    let (set_cookie, _) = get(&bare_client(), &server.url("/count")).await;
    let set_cookie = set_cookie.unwrap();
    for part in ["sid=", "Max-Age=600", "Secure", "SameSite=Strict", "HttpOnly"] {
        assert!(set_cookie.contains(part), "{set_cookie} lacks {part}");
    }
    let cookie = format!("sid={}", cookie_value(&set_cookie));
    let (_, body) = get_with(&bare_client(), &server.url("/count"), Some(&cookie)).await;
    assert_eq!(body, "2");
    server.close().await;
}

#[tokio::test]
async fn tampered_foreign_and_garbage_cookies_give_a_fresh_session() {
    let server = start(app(middleware())).await;
    let bare = bare_client();
    let (set_cookie, _) = get(&bare, &server.url("/count")).await;
    let value = cookie_value(&set_cookie.unwrap());
    // Flip one base64 letter in the middle: the tag no longer matches.
    let mut tampered = value.clone().into_bytes();
    let at = tampered.iter().rposition(u8::is_ascii_alphabetic).unwrap() / 2;
    let at = (at..tampered.len()).find(|&i| tampered[i].is_ascii_alphabetic()).unwrap();
    tampered[at] = if tampered[at] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();

    let other = start(app(SessionMiddleware::new(CookieStorage::generate()))).await;
    let (foreign, _) = get(&bare, &other.url("/count")).await;
    let foreign = cookie_value(&foreign.unwrap());

    let huge = "A".repeat(8000);
    for hostile in [
        tampered.as_str(),
        foreign.as_str(),
        "",
        "garbage",
        "%00%01%ff",
        "\"quoted\"",
        &value[..value.len() / 2],
        &huge,
    ] {
        let cookie = format!("{DEFAULT_COOKIE_NAME}={hostile}");
        let (_, body) = get_with(&bare, &server.url("/count"), Some(&cookie)).await;
        assert_eq!(body, "1", "a fresh session for {hostile:.40}");
    }
    // The genuine cookie still works after all that.
    let cookie = format!("{DEFAULT_COOKIE_NAME}={value}");
    let (_, body) = get_with(&bare, &server.url("/count"), Some(&cookie)).await;
    assert_eq!(body, "2");
    other.close().await;
    server.close().await;
}

#[tokio::test]
async fn login_renews_and_logout_deletes_the_cookie() {
    let server = start(app(middleware())).await;
    let client = client();
    get(&client, &server.url("/count")).await;
    let (set_cookie, _) = get(&client, &server.url("/login/ann")).await;
    assert!(set_cookie.is_some());
    assert_eq!(get(&client, &server.url("/whoami")).await.1, "ann");
    assert_eq!(get(&client, &server.url("/peek")).await.1, "0", "log-in starts afresh");

    let (set_cookie, body) = get(&client, &server.url("/logout")).await;
    assert_eq!(body, "bye");
    let set_cookie = set_cookie.expect("log-out deletes the cookie");
    assert!(set_cookie.contains("Max-Age=0"), "{set_cookie}");
    assert_eq!(get(&client, &server.url("/whoami")).await.1, "anonymous");
    server.close().await;
}

#[tokio::test]
async fn a_session_older_than_max_age_starts_afresh() {
    // A cookie from a storage with the same key, created long ago, replayed later.
    let options = default_cookie_options().with_max_age(60);
    let server = start(app(middleware().cookie_options(options))).await;
    let storage = CookieStorage::new(SECRET).unwrap();
    let mut data = serde_json::Map::new();
    data.insert("n".into(), 41.into());
    let old = tandem_session::Stored::new(None, 1_000, data);
    let value = tandem_session::Storage::save(&storage, &old).await.unwrap();
    let cookie = format!("{DEFAULT_COOKIE_NAME}={value}");
    let (_, body) = get_with(&bare_client(), &server.url("/count"), Some(&cookie)).await;
    assert_eq!(body, "1", "the expired session is not revived");
    server.close().await;
}

#[tokio::test]
async fn get_session_without_the_middleware_is_an_error() {
    let mut app = tandem_web::Application::new();
    app.add_get("/", |req: tandem_web::Request| async move {
        let err = tandem_session::get_session(&req).await.unwrap_err();
        assert!(err.is_not_installed());
        Err::<&str, _>(err)
    });
    let server = start(app).await;
    let resp = crate::support::within(client().get(&server.url("/")).send()).await.unwrap();
    assert_eq!(resp.status(), 500);
    server.close().await;
}

#[tokio::test]
async fn setup_installs_the_middleware_with_the_default_cookie() {
    let mut app = tandem_web::Application::new();
    tandem_session::setup(&mut app, CookieStorage::generate());
    app.add_get("/", |req: tandem_web::Request| async move {
        let session = tandem_session::get_session(&req).await?;
        session.insert("seen", true);
        Ok::<_, tandem_session::Error>("ok")
    });
    let server = start(app).await;
    let (set_cookie, body) = get(&client(), &server.url("/")).await;
    assert_eq!(body, "ok");
    let set_cookie = set_cookie.unwrap();
    assert!(set_cookie.starts_with(&format!("{DEFAULT_COOKIE_NAME}=")), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    server.close().await;
}

#[tokio::test]
async fn the_cookie_storage_is_always_healthy() {
    let server = start(app(SessionMiddleware::new(CookieStorage::generate()))).await;
    assert_eq!(get(&client(), &server.url("/healthz")).await.1, "ok");
    server.close().await;
}
