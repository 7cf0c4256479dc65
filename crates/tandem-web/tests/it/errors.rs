//! Errors at the edges: `tandem_web::Error` is a `std::error::Error`, so `?` carries it into
//! `anyhow` and boxed errors, and handlers may return those too.

use anyhow::Context as _;
use tandem_web::{AppRunner, Application, Request};

/// Handlers returning `anyhow::Result` need the `anyhow` feature.
#[cfg(feature = "anyhow")]
#[tokio::test]
async fn handlers_return_anyhow_and_boxed_errors_and_keep_http_statuses() {
    use tandem_web::{Error, HttpError, Response};

    use crate::support::Server;

    let mut app = Application::new();
    app.add_get("/anyhow/missing", |_req: Request| async {
        let found: Result<Response, HttpError> = Err(HttpError::not_found());
        // Under a context, the `HttpError` still decides the status.
        let response = found.context("looking up the item")?;
        Ok::<_, anyhow::Error>(response)
    });
    app.add_get("/anyhow/broken", |_req: Request| async {
        let number: i32 = "not a number".parse()?;
        anyhow::Ok(Response::text(number.to_string()))
    });
    app.add_get("/boxed/forbidden", |_req: Request| async {
        Err::<Response, Box<dyn std::error::Error + Send + Sync>>(Box::new(HttpError::forbidden()))
    });
    app.add_get("/web/teapot", |_req: Request| async {
        // A `tandem_web::Error` boxed into another error type keeps its status.
        let err: Error = HttpError::new(http::StatusCode::IM_A_TEAPOT).into();
        Err::<Response, anyhow::Error>(err.into())
    });
    app.add_get("/web/io", |_req: Request| async {
        std::fs::read("/nonexistent/tandem")?;
        Ok::<_, Error>(Response::text("read"))
    });
    let server = Server::start(app).await;
    assert_eq!(server.get("/anyhow/missing").await.status, 404);
    let broken = server.get("/anyhow/broken").await;
    assert_eq!(broken.status, 500);
    assert!(!broken.text().contains("invalid digit"), "details stay in the log: {}", broken.text());
    assert_eq!(server.get("/boxed/forbidden").await.status, 403);
    assert_eq!(server.get("/web/teapot").await.status, 418);
    assert_eq!(server.get("/web/io").await.status, 500);
    server.stop().await;
}

/// What a user's `main` does: every fallible step of the runner with `?` into `anyhow`.
async fn serve_and_stop() -> anyhow::Result<std::net::SocketAddr> {
    let mut app = Application::new();
    app.add_get("/", |_req: Request| async { "hi" });
    let mut runner = AppRunner::new(app)?;
    runner.setup().await?;
    let addr = runner.tcp_site("127.0.0.1", 0).await.context("binding a loopback port")?;
    runner.cleanup().await;
    Ok(addr)
}

#[tokio::test]
async fn runner_errors_go_into_anyhow_and_boxed_errors() {
    assert_ne!(serve_and_stop().await.unwrap().port(), 0);

    // A route pattern that does not compile fails `AppRunner::new`.
    let mut app = Application::new();
    app.add_get("/{id:(}", |_req: Request| async { "never" });
    let err: Box<dyn std::error::Error + Send + Sync> = AppRunner::new(app).unwrap_err().into();
    assert!(!err.to_string().is_empty());

    // A host that does not resolve to a listening address fails the site, with context.
    let runner = AppRunner::new(Application::new()).unwrap();
    let err = runner.tcp_site("256.0.0.1", 0).await.context("the site").unwrap_err();
    assert_eq!(err.to_string(), "the site");
    assert!(err.chain().count() >= 2, "{err:?}");
    runner.cleanup().await;
}
