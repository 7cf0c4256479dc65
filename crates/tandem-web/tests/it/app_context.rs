//! Typed storage around a request: the per-request context that middlewares set and code
//! under the handler reads (aiohttp's contextvars), and values a handler attaches to its
//! response for the middlewares around it (aiohttp's `ResponseKey`).

use tandem_web::{Application, Next, Request, Response, context};

use crate::support::Server;

#[derive(Clone, Debug, PartialEq)]
struct RequestId(String);

#[derive(Clone)]
struct CacheFor(u32);

/// Code with no request in hand, as a logger or a database layer is.
fn tagged(message: &str) -> String {
    let id = context::get::<RequestId>().map_or_else(|| "none".to_owned(), |id| id.0);
    format!("[{id}] {message}")
}

#[tokio::test]
async fn context_set_by_a_middleware_is_read_under_the_handler() {
    let mut app = Application::new();
    app.middleware(|req: Request, next: Next| async move {
        // Each request starts with an empty context: nothing left over from the last.
        assert_eq!(context::get::<RequestId>(), None);
        let id = req.header("x-request-id").unwrap_or("-").to_owned();
        assert!(context::set(RequestId(id)));
        next.run(req).await
    });
    app.add_get("/", |_req: Request| async move {
        let inherited = tokio::spawn(context::inherit(async { tagged("spawned") }));
        let bare = tokio::spawn(async { (tagged("bare"), context::set(RequestId("x".into()))) });
        let inherited = inherited.await.unwrap();
        let (bare, stored) = bare.await.unwrap();
        assert!(!stored, "outside a request nothing is stored");
        Response::text(format!("{} {inherited} {bare}", tagged("handler")))
    });
    let server = Server::start(app).await;
    let mut client = server.connect().await;
    for id in ["a1", "b2"] {
        client
            .send(format!("GET / HTTP/1.1\r\nHost: h\r\nX-Request-Id: {id}\r\n\r\n").as_bytes())
            .await;
        let resp = client.response().await;
        assert_eq!(resp.text(), format!("[{id}] handler [{id}] spawned [none] bare"));
    }
    assert_eq!(tagged("outside"), "[none] outside");
    server.stop().await;
}

#[tokio::test]
async fn response_storage_reaches_the_middlewares_and_is_not_sent() {
    let mut app = Application::new();
    app.middleware(|req: Request, next: Next| async move {
        let response = next.run(req).await;
        match response.extensions().get::<CacheFor>().map(|c| c.0) {
            Some(seconds) => response.with_header("cache-control", &format!("max-age={seconds}")),
            None => response,
        }
    });
    app.add_get("/cached", |_req: Request| async {
        let mut response = Response::text("cached");
        response.extensions_mut().insert(CacheFor(60));
        response
    });
    app.add_get("/plain", |_req: Request| async { Response::text("plain") });
    let server = Server::start(app).await;
    let resp = server.get("/cached").await;
    assert_eq!(resp.header("cache-control"), Some("max-age=60"));
    let names: Vec<_> = resp.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    assert_eq!(names, ["content-type", "cache-control", "content-length", "date"]);
    assert_eq!(server.get("/plain").await.header("cache-control"), None);
    server.stop().await;
}
