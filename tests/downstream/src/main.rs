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

#[derive(Deserialize)]
struct ItemPath {
    id: u64,
}

#[derive(Deserialize)]
struct Options {
    #[serde(default)]
    tag: Vec<String>,
}

/// `POST /items/{id}?tag=..` with a JSON body: a handler returning `anyhow::Result`, where `?`
/// takes Tandem's own errors and anyone else's, and serde reads the path, query and body.
async fn create(mut req: Request) -> anyhow::Result<Response> {
    let ItemPath { id } = req.match_info_as()?;
    let Options { tag } = req.query_as()?;
    if tag.iter().any(|t| t == "broken") {
        // Any other error: a 500.
        let _: u32 = "not a number".parse()?;
    }
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
        // A path variable that does not fit is a 400 that names it.
        let mut resp = client.post("/items/seven").json(&body("a", 1)).send().await?;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.text().await?.contains("`id`"));
        // Any other error is a 500.
        let query = [("tag", "fine"), ("tag", "broken")];
        let resp = client.post("/items/7").query(&query).json(&body("a", 1)).send().await?;
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
