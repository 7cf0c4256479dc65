//! aiohttp's first server, in Tandem: `/` and `/hello/{name}`.
//!
//! ```text
//! cargo run --example hello
//! curl http://127.0.0.1:8080/hello/tandem
//! ```

use tandem_http::web::{Application, Request, Response, run_app};

async fn hello(req: Request) -> Response {
    let name = req.match_info("name").unwrap_or("Anonymous");
    Response::text(format!("Hello, {name}"))
}

/// The application, apart from serving it, so `tests/it` can run it under a `TestClient`.
pub(crate) fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/", hello);
    app.add_get("/hello/{name}", hello);
    app
}

fn main() -> Result<(), tandem_http::web::Error> {
    run_app(app(), "127.0.0.1", 8080)
}
