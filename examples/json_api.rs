//! JSON in and out: `POST /json` takes `{"key": ...}` and answers `{"value": ...}`, as the
//! seeds' `json` view; `POST /items` shows typed bodies with serde. A body that is not the
//! JSON a handler expects is answered 400 with the reason.
//!
//! ```text
//! cargo run --example json_api
//! curl -d '{"key": "hi"}' http://127.0.0.1:8080/json
//! curl -d '{"name": "pen", "price_cents": 150, "quantity": 3}' http://127.0.0.1:8080/items
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tandem_http::web::{Application, HttpError, Request, Response, json_response, run_app};

async fn echo_key(mut req: Request) -> Result<Response, tandem_http::web::Error> {
    let args: Value = req.json().await?;
    let key = args.get("key").ok_or_else(|| HttpError::bad_request().with_text("no \"key\""))?;
    Ok(json_response(&json!({ "value": key })))
}

#[derive(Deserialize)]
struct NewItem {
    name: String,
    price_cents: u64,
    quantity: u32,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub(crate) struct Total {
    pub(crate) name: String,
    pub(crate) total_cents: u64,
}

async fn add_item(mut req: Request) -> Result<Response, tandem_http::web::Error> {
    let item: NewItem = req.json().await?;
    let total_cents = item
        .price_cents
        .checked_mul(u64::from(item.quantity))
        .ok_or_else(|| HttpError::bad_request().with_text("total out of range"))?;
    Ok(json_response(&Total { name: item.name, total_cents }))
}

pub(crate) fn app() -> Application {
    let mut app = Application::new();
    app.add_post("/json", echo_key);
    app.add_post("/items", add_item);
    app
}

fn main() -> Result<(), tandem_http::web::Error> {
    run_app(app(), "127.0.0.1", 8080)
}
