//! The route-table style (aiohttp's `RouteTableDef`): routes declared in a table, then added
//! to the application at once. The seeds' first server: `GET /`, and `POST /demo1/{name}`,
//! which reads a form field and answers JSON.
//!
//! ```text
//! cargo run --example route_table
//! curl -d key=value http://127.0.0.1:8080/demo1/tandem
//! ```

use serde_json::json;
use tandem_http::web::{
    Application, HttpError, Request, Response, RouteTable, json_response, run_app,
};

async fn hello(_req: Request) -> Response {
    Response::text("Hello, world")
}

/// Reads the posted form (urlencoded or multipart) only once its body has arrived, as
/// aiohttp's `await request.post()` does.
async fn demo1(mut req: Request) -> Result<Response, tandem_http::web::Error> {
    let name = req.match_info("name").unwrap_or("Anonymous").to_owned();
    let form = req.post().await?;
    let key =
        form.get("key").ok_or_else(|| HttpError::bad_request().with_text("no `key` field"))?;
    Ok(json_response(&json!({ "name": name, "key": key })))
}

pub(crate) fn routes() -> RouteTable {
    let mut routes = RouteTable::new();
    routes.get("/", hello);
    routes.post("/demo1/{name}", demo1);
    routes
}

pub(crate) fn app() -> Application {
    let mut app = Application::new();
    app.add_routes(routes());
    app
}

fn main() -> Result<(), tandem_http::web::Error> {
    run_app(app(), "127.0.0.1", 8080)
}
