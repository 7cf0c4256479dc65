//! CORS as aiohttp-cors: per-route and app-wide options, preflights, credentials, exposed
//! headers, max-age.

use std::time::Duration;

use http::Method;
use tandem_web::{Application, Cors, CorsOptions, Request, Response};

use crate::support::{Resp, Server};

const APP: &str = "https://app.example";

fn preflight(path: &str, origin: &str, method: &str, headers: Option<&str>) -> Vec<u8> {
    let mut request = format!(
        "OPTIONS {path} HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\
         Access-Control-Request-Method: {method}\r\n"
    );
    if let Some(headers) = headers {
        request += "Access-Control-Request-Headers: ";
        request += headers;
        request += "\r\n";
    }
    request.push_str("\r\n");
    request.into_bytes()
}

fn get(path: &str, origin: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\r\n").into_bytes()
}

async fn items(_req: Request) -> Response {
    Response::text("[]").with_header("x-total", "0").with_header("x-internal", "1")
}

#[tokio::test]
async fn per_route_options_answer_preflights_and_decorate_answers() {
    let api = Cors::new().allow_origin(
        APP,
        CorsOptions::default()
            .allow_credentials(true)
            .expose_headers(["x-total"])
            .allow_headers(["content-type", "x-token"])
            .allow_methods([Method::GET, Method::POST])
            .max_age(Duration::from_secs(600)),
    );
    let mut app = Application::new();
    app.add_get("/api/items", api.handler(items));
    app.add_route(Some(Method::OPTIONS), "/api/items", api.preflight());
    app.add_get("/plain", items);
    let server = Server::start(app).await;

    let ok =
        server.request(&preflight("/api/items", APP, "POST", Some("Content-Type, X-Token"))).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(ok.header("access-control-max-age"), Some("600"));
    assert_eq!(ok.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(ok.header("access-control-allow-headers"), Some("content-type,x-token"));

    let refused = |resp: &Resp, why: &str| {
        assert_eq!(resp.status, 403, "{}", resp.text());
        assert!(resp.text().contains(why), "{}", resp.text());
        assert!(resp.header("access-control-allow-origin").is_none());
    };
    let other = server.request(&preflight("/api/items", "https://evil.example", "GET", None)).await;
    refused(&other, "origin 'https://evil.example' is not allowed");
    let put = server.request(&preflight("/api/items", APP, "PUT", None)).await;
    refused(&put, "request method 'PUT' is not allowed");
    let header = server.request(&preflight("/api/items", APP, "GET", Some("x-secret"))).await;
    refused(&header, "headers are not allowed: x-secret");
    let no_method = server
        .request(
            format!("OPTIONS /api/items HTTP/1.1\r\nHost: t\r\nOrigin: {APP}\r\n\r\n").as_bytes(),
        )
        .await;
    refused(&no_method, "'Access-Control-Request-Method' header is not specified");

    let actual = server.request(&get("/api/items", APP)).await;
    assert_eq!(actual.text(), "[]");
    assert_eq!(actual.header("access-control-allow-origin"), Some(APP));
    assert_eq!(actual.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(actual.header("access-control-expose-headers"), Some("x-total"));
    assert!(actual.header_all("vary").any(|v| v.eq_ignore_ascii_case("origin")));
    // Another origin, or a route without CORS: no headers.
    let stranger = server.request(&get("/api/items", "https://evil.example")).await;
    assert!(stranger.header("access-control-allow-origin").is_none());
    let plain = server.request(&get("/plain", APP)).await;
    assert!(plain.header("access-control-allow-origin").is_none());
    assert!(server.stop().await);
}

#[tokio::test]
async fn app_wide_any_origin_without_credentials() {
    let mut app = Application::new();
    app.middleware(
        Cors::new()
            .allow_origin("*", CorsOptions::default().expose_headers(["*"]))
            .allow_origin(APP, CorsOptions::default().allow_credentials(true)),
    );
    app.add_get("/items", items);
    let server = Server::start(app).await;

    // A preflight for any path is answered before routing: no OPTIONS route needed.
    let pre = server.request(&preflight("/items", "https://any.example", "GET", None)).await;
    assert_eq!(pre.status, 200);
    assert_eq!(pre.header("access-control-allow-origin"), Some("https://any.example"));
    assert!(pre.header("access-control-allow-credentials").is_none());

    let any = server.request(&get("/items", "https://any.example")).await;
    assert_eq!(any.header("access-control-allow-origin"), Some("*"));
    let exposed = any.header("access-control-expose-headers").unwrap();
    assert!(exposed.contains("x-total") && exposed.contains("x-internal"), "{exposed}");
    assert!(!exposed.contains("content-type"), "safelisted fields are not listed: {exposed}");
    // The listed origin has its own options: credentials, so never `*`.
    let app_origin = server.request(&get("/items", APP)).await;
    assert_eq!(app_origin.header("access-control-allow-origin"), Some(APP));
    assert_eq!(app_origin.header("access-control-allow-credentials"), Some("true"));
    // No Origin: not a CORS request, nothing added.
    let same = server.get("/items").await;
    assert!(same.header("access-control-allow-origin").is_none());
    assert!(server.stop().await);
}

/// aiohttp-cors's `allow_methods=None` default: a preflight may ask only for a method some
/// route at its path answers; a list adds to those, and `"*"` allows any.
#[tokio::test]
async fn methods_default_to_the_routes_of_the_path() {
    let app_with = |options: CorsOptions| {
        let mut app = Application::new();
        app.middleware(Cors::new().allow_origin("*", options.clone()));
        app.add_get("/items", items);
        let per_route = Cors::new().allow_origin(APP, options);
        app.add_get("/api/items", per_route.handler(items));
        app.add_route(Some(Method::OPTIONS), "/api/items", per_route.preflight());
        app
    };
    let server = Server::start(app_with(CorsOptions::default())).await;
    for path in ["/items", "/api/items"] {
        for (method, status) in [("GET", 200), ("HEAD", 200), ("PUT", 403), ("DELETE", 403)] {
            let answer = server.request(&preflight(path, APP, method, None)).await;
            assert_eq!(answer.status, status, "{method} {path}: {}", answer.text());
        }
    }
    let refused = server.request(&preflight("/items", APP, "PUT", None)).await;
    assert!(refused.text().contains("request method 'PUT' is not allowed"), "{}", refused.text());
    assert!(server.stop().await);

    let listed = CorsOptions::default().allow_methods([Method::DELETE]);
    let server = Server::start(app_with(listed)).await;
    for (method, status) in [("GET", 200), ("DELETE", 200), ("PUT", 403)] {
        let answer = server.request(&preflight("/items", APP, method, None)).await;
        assert_eq!(answer.status, status, "{method}: {}", answer.text());
    }
    assert!(server.stop().await);

    let server = Server::start(app_with(CorsOptions::default().allow_any_method())).await;
    let answer = server.request(&preflight("/api/items", APP, "PUT", None)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-methods"), Some("PUT"));
    assert!(server.stop().await);
}
