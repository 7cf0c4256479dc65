//! `Application::error_renderer`: every error the framework answers with, rendered one way,
//! through a real server.

use tandem_web::{Application, Error, ErrorFormat, HttpError, Request, Response};

use crate::support::Server;

/// An app whose routes fail in each way a handler can, rendered by `format`.
fn failing_app(render: impl FnOnce(&mut Application)) -> Application {
    let mut app = Application::new();
    app.add_get("/teapot", |_req: Request| async {
        Err::<Response, _>(
            HttpError::new(http::StatusCode::IM_A_TEAPOT).with_text("short and stout"),
        )
    });
    app.add_post("/body", |mut req: Request| async move {
        let body = req.read().await?;
        Ok::<_, Error>(Response::text(format!("{} bytes", body.len())))
    });
    app.add_get("/panic", |req: Request| async move {
        assert!(req.query_get("never").is_some(), "the handler broke");
        "unreachable"
    });
    app.add_get("/io", |_req: Request| async {
        Err::<Response, _>(Error::from(std::io::Error::other("the disk is on fire")))
    });
    app.client_max_size(16);
    render(&mut app);
    app
}

/// The requests, each on its own connection, and the status each must get.
const CASES: [(&[u8], u16); 7] = [
    (b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n", 404),
    (b"DELETE /teapot HTTP/1.1\r\nHost: t\r\n\r\n", 405),
    (b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 32\r\n\r\n0123456789abcdef0123456789abcdef", 413),
    (b"GET /teapot HTTP/1.1\r\nHost: t\r\n\r\n", 418),
    (b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n", 500),
    (b"GET /io HTTP/1.1\r\nHost: t\r\n\r\n", 500),
    // Refused by the parser, before any handler.
    (b"GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", 400),
];

#[tokio::test]
async fn json_renders_every_framework_error() {
    let server = Server::start(failing_app(|app| {
        app.error_renderer(ErrorFormat::Json);
    }))
    .await;
    for (request, status) in CASES {
        let resp = server.request(request).await;
        assert_eq!(resp.status, status, "{}", resp.text());
        assert_eq!(resp.header_all("content-type").collect::<Vec<_>>(), ["application/json"]);
        let json = resp.json();
        assert_eq!(json["status"], status, "{json}");
        assert!(json["error"].is_string() && json["message"].is_string(), "{json}");
        match status {
            405 => assert_eq!(resp.header("allow"), Some("GET, HEAD")),
            418 => assert_eq!(json["message"], "short and stout"),
            413 => assert!(json["message"].as_str().unwrap().contains("16"), "{json}"),
            // A 500 tells nothing of what broke.
            500 => assert_eq!(json["message"], "500: Internal Server Error"),
            _ => {}
        }
    }
    assert!(server.stop().await);
}

#[tokio::test]
async fn a_renderer_of_ones_own_and_html() {
    let server = Server::start(failing_app(|app| {
        app.error_renderer(|err: &HttpError| {
            Response::html(format!("<p>oops {}</p>", err.status().as_u16()))
                .with_header("x-rendered", "yes")
        });
    }))
    .await;
    for (request, status) in CASES {
        let resp = server.request(request).await;
        assert_eq!(resp.status, status);
        assert_eq!(resp.text(), format!("<p>oops {status}</p>"));
        assert_eq!(resp.header("x-rendered"), Some("yes"));
    }
    assert!(server.stop().await);

    let server = Server::start(failing_app(|app| {
        app.error_renderer(ErrorFormat::Html);
    }))
    .await;
    let resp = server.get("/missing").await;
    assert_eq!(resp.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(resp.text().contains("<title>404: Not Found</title>"), "{}", resp.text());
    assert!(server.stop().await);
}

#[tokio::test]
async fn without_a_renderer_errors_are_aiohttps_text_and_a_response_of_ones_own_is_kept() {
    let server = Server::start(failing_app(|app| {
        app.add_get("/own", |_req: Request| async {
            Response::text("my own 404").with_status(http::StatusCode::NOT_FOUND)
        });
    }))
    .await;
    let resp = server.get("/missing").await;
    assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(resp.text(), "404: Not Found");
    assert!(server.stop().await);

    // A handler's own response is not an error of the framework's: not rendered.
    let server = Server::start(failing_app(|app| {
        app.error_renderer(ErrorFormat::Json);
        app.add_get("/own", |_req: Request| async {
            Response::text("my own 404").with_status(http::StatusCode::NOT_FOUND)
        });
    }))
    .await;
    assert_eq!(server.get("/own").await.text(), "my own 404");
    assert!(server.stop().await);
}

#[tokio::test]
async fn a_sub_application_takes_its_parents_renderer() {
    let mut api = Application::new();
    api.add_get("/item", |_req: Request| async { Err::<Response, _>(HttpError::not_found()) });
    let mut app = Application::new();
    app.error_renderer(ErrorFormat::Json);
    app.add_subapp("/api", api);
    let server = Server::start(app).await;
    let resp = server.get("/api/item").await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.json()["message"], "404: Not Found");
    assert!(server.stop().await);
}
