//! A user's program on Tandem: `?` from Tandem's errors into `anyhow::Error` in `main` and in
//! handlers, and request data read through serde. `cargo test -p downstream` runs it against
//! a real server on a loopback port.

use serde::{Deserialize, Serialize};
use tandem_http::web::{Application, HttpError, Request, Response, json_response, run_app};

#[derive(Deserialize)]
struct NewItem {
    name: String,
    count: u32,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Item {
    id: u64,
    name: String,
    count: u32,
}

/// `POST /items/{id}` with a JSON body: a handler returning `anyhow::Result`, where `?`
/// takes Tandem's own errors and anyone else's.
async fn create(mut req: Request) -> anyhow::Result<Response> {
    let id: u64 = req.match_info("id").unwrap_or_default().parse()?;
    let new: NewItem = req.json().await?;
    if new.name.is_empty() {
        return Err(HttpError::bad_request().with_text("an item needs a name").into());
    }
    Ok(json_response(&Item { id, name: new.name, count: new.count }))
}

fn app() -> Application {
    let mut app = Application::new();
    app.add_post("/items/{id}", create);
    app
}

fn main() -> anyhow::Result<()> {
    run_app(app(), "127.0.0.1", 8080)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tandem_http::{http::StatusCode, test::TestClient};

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn errors_go_into_anyhow_and_bodies_through_serde() -> anyhow::Result<()> {
        let client = TestClient::new(app()).await?;

        let mut resp = client.post("/items/7").json(&body("widget", 3)).send().await?;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.json::<Item>().await?, Item { id: 7, name: "widget".into(), count: 3 });

        // Tandem's HttpError, through anyhow, keeps its status.
        let resp = client.post("/items/7").json(&body("", 3)).send().await?;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        // A number that does not parse is any other error: a 500.
        let resp = client.post("/items/seven").json(&body("a", 1)).send().await?;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(client.close().await);
        Ok(())
    }

    #[derive(Serialize)]
    struct Body<'a> {
        name: &'a str,
        count: u32,
    }

    fn body(name: &str, count: u32) -> Body<'_> {
        Body { name, count }
    }
}
