//! The cookie jar against a real server under a domain name (the connector resolves it to
//! loopback): shared cookies, quoting, secure origins, iteration and clearing, and
//! Netscape `cookies.txt` files exchanged with curl.

use std::net::SocketAddr;

use tandem_client::{ClientSession, Connector, CookieJar};
use tandem_web::{Application, Request, Response};
use url::Url;

use crate::support::{Server, within};

const HOST: &str = "cookies.test";

fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/echo", |req: Request| async move {
        let sent = req.headers().get("cookie").map(|v| v.to_str().unwrap_or("?").to_owned());
        Response::text(sent.unwrap_or_default())
    });
    app.add_get("/set", |_req: Request| async {
        Response::text("set")
            .append_header("set-cookie", "host=1; Path=/")
            .append_header("set-cookie", &format!("wide=2; Domain={HOST}; Max-Age=3600; Path=/"))
            .append_header("set-cookie", "quiet=3; HttpOnly; Path=/")
    });
    app.add_get("/secure", |_req: Request| async {
        Response::text("set").with_header("set-cookie", "token=s3cret; Secure; Path=/")
    });
    app
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{HOST}:{}{path}", addr.port())
}

/// A session whose connector sends `cookies.test` to the server.
fn session_for(addr: SocketAddr, jar: CookieJar) -> ClientSession {
    let connector = Connector::builder().resolve(HOST, [addr]).build();
    ClientSession::builder().connector(connector).cookie_jar(jar).build()
}

async fn sent(s: &ClientSession, url: &str) -> String {
    let mut resp = within(s.get(url).send()).await.unwrap();
    within(resp.text()).await.unwrap()
}

#[tokio::test]
async fn shared_cookies_go_everywhere_and_values_are_quoted() {
    let server = Server::start(app()).await;
    let jar = CookieJar::new();
    jar.update_cookies([("shared", "a b"), ("plain", "x")], None).unwrap();
    let s = session_for(server.addr, jar.clone());
    // Sent to a domain and, shared, even to an IP host, which the jar otherwise refuses.
    assert_eq!(sent(&s, &url(server.addr, "/echo")).await, r#"shared="a b"; plain=x"#);
    assert_eq!(sent(&s, &server.url("/echo")).await, r#"shared="a b"; plain=x"#);
    let raw = session_for(server.addr, CookieJar::new().quote_cookie(false));
    raw.cookie_jar().update_cookies([("shared", "a b")], None).unwrap();
    assert_eq!(sent(&raw, &url(server.addr, "/echo")).await, "shared=a b");
    // Tied to a URL, a cookie goes to that host only.
    let here = Url::parse(&url(server.addr, "/")).unwrap();
    let only = session_for(server.addr, CookieJar::new());
    only.cookie_jar().update_cookies([("mine", "1")], Some(&here)).unwrap();
    assert_eq!(sent(&only, &url(server.addr, "/echo")).await, "mine=1");
    assert_eq!(sent(&only, &server.url("/echo")).await, "");
    assert!(jar.update_cookies([("bad;name", "1")], None).unwrap_err().is_request());
    server.stop().await;
}

#[tokio::test]
async fn iteration_and_clearing() {
    let server = Server::start(app()).await;
    let s = session_for(server.addr, CookieJar::new());
    sent(&s, &url(server.addr, "/set")).await;
    let jar = s.cookie_jar();
    jar.update_cookies([("shared", "0")], None).unwrap();
    let mut seen: Vec<(String, Option<String>)> = jar
        .cookies()
        .iter()
        .map(|c| (c.name().to_owned(), c.domain().map(str::to_owned)))
        .collect();
    seen.sort();
    let host = Some(HOST.to_owned());
    let expected = [("host", &host), ("quiet", &host), ("shared", &None), ("wide", &host)];
    assert_eq!(seen, expected.map(|(n, d)| (n.to_owned(), d.clone())));
    assert!(jar.cookies().iter().any(|c| c.name() == "wide" && c.expires_datetime().is_some()));
    jar.clear_if(|c| c.http_only() == Some(true));
    // The store's own order is not defined: sorted, the shared one first by its name.
    assert_eq!(sorted(&sent(&s, &url(server.addr, "/echo")).await), "host=1; shared=0; wide=2");
    jar.clear_domain("test");
    assert_eq!(sent(&s, &url(server.addr, "/echo")).await, "shared=0");
    jar.clear();
    assert!(jar.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn treat_as_secure_origin_keeps_and_sends_secure_cookies_over_http() {
    let server = Server::start(app()).await;
    let plain = session_for(server.addr, CookieJar::new());
    sent(&plain, &url(server.addr, "/secure")).await;
    assert_eq!(sent(&plain, &url(server.addr, "/echo")).await, "", "Secure: https only");
    let origin = url(server.addr, "");
    let jar = CookieJar::new().treat_as_secure_origin([origin.as_str()]).unwrap();
    let trusted = session_for(server.addr, jar);
    sent(&trusted, &url(server.addr, "/secure")).await;
    assert_eq!(sent(&trusted, &url(server.addr, "/echo")).await, "token=s3cret");
    assert!(CookieJar::new().treat_as_secure_origin(["not a url"]).is_err());
    server.stop().await;
}

/// curl writes a jar that Tandem loads and uses; Tandem writes one that curl loads and uses.
#[tokio::test]
async fn netscape_cookie_files_move_between_curl_and_tandem() {
    let server = Server::start(app()).await;
    let dir = tempfile::tempdir().unwrap();
    let from_curl = dir.path().join("curl.txt");
    let resolve = format!("{HOST}:{}:127.0.0.1", server.addr.port());
    let curl = |args: Vec<String>| async move {
        let out = within(tokio::process::Command::new("curl").args(&args).output()).await.unwrap();
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let set = url(server.addr, "/set");
    curl(vec![
        "-s".into(),
        "--resolve".into(),
        resolve.clone(),
        "-c".into(),
        path(&from_curl),
        set,
    ])
    .await;
    let s = session_for(server.addr, CookieJar::new());
    s.cookie_jar().load_netscape(&from_curl).unwrap();
    let mut got = sent(&s, &url(server.addr, "/echo")).await;
    got = sorted(&got);
    assert_eq!(got, "host=1; quiet=3; wide=2");

    let from_tandem = dir.path().join("tandem.txt");
    s.cookie_jar().save_netscape(&from_tandem).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&from_tandem).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let echo = url(server.addr, "/echo");
    let by_curl =
        curl(vec!["-s".into(), "--resolve".into(), resolve, "-b".into(), path(&from_tandem), echo])
            .await;
    assert_eq!(sorted(&by_curl), "host=1; quiet=3; wide=2");
    server.stop().await;
}

fn path(p: &std::path::Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn sorted(cookies: &str) -> String {
    let mut pairs: Vec<&str> = cookies.split("; ").collect();
    pairs.sort_unstable();
    pairs.join("; ")
}
