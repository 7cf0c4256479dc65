//! Middlewares: aiohttp's `error_pages` from its tutorial, which replaces the 404 and 500
//! answers with pages of its own, and a timing middleware that adds a header to every
//! response. Middlewares run in the order they are added, outermost first.
//!
//! ```text
//! cargo run --example middlewares
//! curl -i http://127.0.0.1:8080/missing     # the 404 page
//! curl -i http://127.0.0.1:8080/boom        # the 500 page
//! ```

use std::time::Instant;

use tandem_http::{
    http::StatusCode,
    web::{Application, Next, Request, Response, escape_html, run_app},
};

/// Times the rest of the chain; outermost, so it covers the error pages too.
async fn timing(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let mut response = next.run(req).await;
    let micros = start.elapsed().as_micros().to_string();
    response = response.with_header("x-elapsed-us", &micros);
    response
}

/// Replaces 404 and 500 answers, whether a handler returned them or an error became them.
async fn error_pages(req: Request, next: Next) -> Response {
    let path = req.path().into_owned();
    let response = next.run(req).await;
    match response.status() {
        StatusCode::NOT_FOUND => {
            // The path goes back into HTML, so it is escaped.
            Response::html(format!("<h1>404</h1><p>No page at {}</p>", escape_html(&path)))
                .with_status(StatusCode::NOT_FOUND)
        }
        StatusCode::INTERNAL_SERVER_ERROR => {
            Response::html("<h1>500</h1><p>Something broke; it has been logged.</p>")
                .with_status(StatusCode::INTERNAL_SERVER_ERROR)
        }
        _ => response,
    }
}

async fn index(_req: Request) -> Response {
    Response::text("Hello world")
}

/// A handler that fails: the error is logged and answered 500, which the middleware turns
/// into its page.
async fn boom(_req: Request) -> Result<Response, tandem_http::web::Error> {
    Err(std::io::Error::other("the database is on fire"))?
}

pub(crate) fn app() -> Application {
    let mut app = Application::new();
    app.middleware(timing);
    app.middleware(error_pages);
    app.add_get("/", index);
    app.add_get("/boom", boom);
    app
}

fn main() -> Result<(), tandem_http::web::Error> {
    run_app(app(), "127.0.0.1", 8080)
}
