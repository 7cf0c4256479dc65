//! Reading the URL: the path's `match_info` and the query string. `GET /{username}?page=N`
//! greets a user on a page, as the seeds' `greet_user`; `GET /search?tag=a&tag=b` shows a
//! repeated query parameter; `{id:\d+}` is a pattern with a regex.
//!
//! ```text
//! cargo run --example query_match
//! curl 'http://127.0.0.1:8080/ada?page=2'
//! curl 'http://127.0.0.1:8080/search?tag=rust&tag=http'
//! curl http://127.0.0.1:8080/items/42
//! ```

use tandem_http::web::{Application, HttpError, Request, Response, run_app};

async fn greet_user(req: Request) -> Response {
    let user = req.match_info("username").unwrap_or("");
    let page = req.query_get("page").unwrap_or("");
    Response::text(format!("Hello, {user} {page}"))
}

async fn search(req: Request) -> Response {
    let tags: Vec<&str> = req.query_all("tag").collect();
    Response::text(format!("tags: {}", tags.join(", ")))
}

/// Only digits reach here; `/items/abc` is a 404 from the router.
async fn item(req: Request) -> Result<Response, HttpError> {
    let id: u64 = req
        .match_info("id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| HttpError::bad_request().with_text("id out of range"))?;
    Ok(Response::text(format!("item {id}")))
}

pub(crate) fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/", |_req: Request| async { Response::text("Hello world") });
    // Plain paths are matched before patterns, so `/search` never greets a user "search".
    app.add_get("/search", search);
    app.add_get(r"/items/{id:\d+}", item);
    app.add_get("/{username}", greet_user);
    app
}

fn main() -> Result<(), tandem_http::web::Error> {
    run_app(app(), "127.0.0.1", 8080)
}
