//! What a response tells beyond its status and body: `real_url`, `method`, the cached body,
//! strict text, `request_info` on errors, `links`, `content_disposition`, `get_encoding`.

use http::{Method, StatusCode};
use tandem_web::{Application, Request, Response};

use crate::support::{RawServer, Server, read_request, session, within, write};

fn app() -> Application {
    let mut app = Application::new();
    app.add_route(None, "/echo", |req: Request| async move {
        Response::text(format!("{} {}?{}", req.method(), req.raw_path(), req.query_string()))
    });
    app.add_post("/see-other", |_req: Request| async {
        Response::new(StatusCode::SEE_OTHER).with_header("location", "/echo#after")
    });
    app.add_get("/loop", |_req: Request| async {
        Response::new(StatusCode::FOUND).with_header("location", "/loop")
    });
    app.add_get("/missing", |_req: Request| async {
        Response::text("nope").with_status(StatusCode::NOT_FOUND)
    });
    app.add_get("/latin1-declared", |_req: Request| async {
        let mut r = Response::bytes(&b"caf\xe9 \xff"[..]);
        r.set_content_type("text/plain; charset=utf-8").unwrap();
        r
    });
    app.add_get("/json-bytes", |_req: Request| async {
        let mut r = Response::bytes(&br#"{"a":1}"#[..]);
        r.set_content_type("application/json").unwrap();
        r
    });
    app.add_get("/pages", |_req: Request| async {
        Response::text("page 2")
            .with_header("link", r#"<?page=3>; rel="next", <?page=1>; rel="prev first""#)
            .append_header(
                "link",
                "<http://other.example/feed>; rel=alternate; type=\"application/atom+xml\"",
            )
            .with_header(
                "content-disposition",
                "attachment; filename=\"report.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt",
            )
    });
    app
}

#[tokio::test]
async fn real_url_keeps_the_fragment_and_method_follows_redirects() {
    let server = Server::start(app()).await;
    let s = session();
    let mut resp = within(s.get(&server.url("/echo?q=1#part")).send()).await.unwrap();
    assert_eq!(resp.url().as_str(), server.url("/echo?q=1"));
    assert_eq!(resp.real_url().as_str(), server.url("/echo?q=1#part"));
    assert_eq!(resp.request_info().real_url().fragment(), Some("part"));
    assert_eq!(resp.method(), Method::GET);
    // The fragment is never sent.
    assert_eq!(within(resp.text()).await.unwrap(), "GET /echo?q=1");

    // A 303 turns the POST into a GET, to the Location's URL, whose fragment is kept.
    let resp = within(s.post(&server.url("/see-other#before")).body("x").send()).await.unwrap();
    assert_eq!(resp.method(), Method::GET);
    assert_eq!(resp.real_url().as_str(), server.url("/echo#after"));
    assert_eq!(resp.history()[0].request_info().method(), Method::POST);
    assert_eq!(resp.history()[0].request_info().real_url().fragment(), Some("before"));
    server.stop().await;
}

#[tokio::test]
async fn read_is_cached_so_text_and_json_can_follow() {
    let server = Server::start(app()).await;
    let mut resp = within(session().get(&server.url("/json-bytes")).send()).await.unwrap();
    assert_eq!(within(resp.read()).await.unwrap(), r#"{"a":1}"#);
    assert_eq!(within(resp.read()).await.unwrap(), r#"{"a":1}"#);
    assert_eq!(within(resp.text()).await.unwrap(), r#"{"a":1}"#);
    let v: serde_json::Value = within(resp.json()).await.unwrap();
    assert_eq!(v["a"], 1);
    server.stop().await;
}

#[tokio::test]
async fn text_is_strict_about_the_declared_charset() {
    let server = Server::start(app()).await;
    let mut resp = within(session().get(&server.url("/latin1-declared")).send()).await.unwrap();
    assert_eq!(within(resp.get_encoding()).await.unwrap(), "UTF-8");
    assert!(within(resp.text()).await.unwrap_err().is_decode());
    assert_eq!(within(resp.text_lossy()).await.unwrap(), "caf\u{fffd} \u{fffd}");
    assert_eq!(within(resp.text_with_charset("latin1")).await.unwrap(), "café ÿ");
    // JSON defaults to UTF-8 without a charset and without reading the body.
    let mut resp = within(session().get(&server.url("/json-bytes")).send()).await.unwrap();
    assert_eq!(within(resp.get_encoding()).await.unwrap(), "UTF-8");
    server.stop().await;
}

#[tokio::test]
async fn errors_after_a_response_carry_its_request_info() {
    let server = Server::start(app()).await;
    let strict = tandem_client::ClientSession::builder().raise_for_status(true).build();
    let e = within(strict.get(&server.url("/missing")).header("x-trace", "7").send())
        .await
        .unwrap_err();
    assert!(e.is_status());
    let info = e.request_info().expect("a status error has the request");
    assert_eq!((info.method(), info.url().path()), (&Method::GET, "/missing"));
    assert_eq!(info.headers()["x-trace"], "7");

    let resp = within(session().get(&server.url("/missing")).send()).await.unwrap();
    let e = resp.error_for_status().unwrap_err();
    assert_eq!(e.request_info().map(|r| r.url().path()), Some("/missing"));

    let mut resp = within(session().get(&server.url("/echo")).send()).await.unwrap();
    let e = within(resp.json::<serde_json::Value>()).await.unwrap_err();
    assert!(e.is_decode() && e.request_info().is_some());

    let e = within(session().get(&server.url("/loop")).max_redirects(2).send()).await.unwrap_err();
    assert!(e.is_too_many_redirects());
    assert_eq!(e.request_info().map(|r| r.url().path()), Some("/loop"));

    // An error before any response has none.
    let e = within(session().get("http://127.0.0.1:1/").send()).await.unwrap_err();
    assert!(e.is_connect() && e.request_info().is_none());
    // Nor once the URL is taken out for logging.
    let resp = within(session().get(&server.url("/missing")).send()).await.unwrap();
    assert!(resp.error_for_status().unwrap_err().without_url().request_info().is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_truncated_body_error_carries_the_request_info() {
    let server = RawServer::start(|mut stream, _| async move {
        read_request(&mut stream).await;
        write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").await;
    })
    .await;
    let mut resp = within(session().get(&server.url("/short")).send()).await.unwrap();
    let e = within(resp.read()).await.unwrap_err();
    assert!(e.is_payload());
    assert_eq!(e.request_info().map(|r| r.url().path()), Some("/short"));
}

#[tokio::test]
async fn links_and_content_disposition() {
    let server = Server::start(app()).await;
    let resp = within(session().get(&server.url("/pages?page=2")).send()).await.unwrap();
    let links = resp.links();
    assert_eq!(links.len(), 3);
    assert_eq!(resp.link("next").unwrap().url.as_str(), server.url("/pages?page=3"));
    assert_eq!(resp.link("first").unwrap().url.as_str(), server.url("/pages?page=1"));
    let feed = resp.link("alternate").unwrap();
    assert_eq!(feed.url.as_str(), "http://other.example/feed");
    assert!(feed.params.contains(&("type".to_owned(), "application/atom+xml".to_owned())));
    assert!(resp.link("last").is_none());
    let cd = resp.content_disposition().unwrap();
    assert_eq!(cd.disposition_type, "attachment");
    assert_eq!(cd.filename().as_deref(), Some("résumé.txt"));
    assert_eq!(cd.param("filename"), Some("report.txt"));
    let plain = within(session().get(&server.url("/echo")).send()).await.unwrap();
    assert!(plain.links().is_empty() && plain.content_disposition().is_none());
    server.stop().await;
}
