//! The server examples' applications, exercised through `TestClient`.

use serde_json::{Value, json};
use tandem_http::{client::FormData, http::StatusCode, test::TestClient};

use crate::{
    hello, json_api, middlewares, query_match, route_table, sqlite_signals, static_files, upload,
};

/// The example's app in memory: what it answers is the point here, not the socket.
async fn client(app: tandem_http::web::Application) -> TestClient {
    TestClient::in_memory(app).await.expect("the example's app starts")
}

async fn get_text(client: &TestClient, path: &str) -> (StatusCode, String) {
    let mut resp = client.get(path).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn hello_greets_by_name() {
    let client = client(hello::app()).await;
    assert_eq!(get_text(&client, "/").await, (StatusCode::OK, "Hello, Anonymous".into()));
    assert_eq!(get_text(&client, "/hello/tandem").await, (StatusCode::OK, "Hello, tandem".into()));
    assert_eq!(get_text(&client, "/hello/").await.0, StatusCode::NOT_FOUND);
    client.close().await;
}

#[tokio::test]
async fn route_table_reads_the_posted_form() {
    let client = client(route_table::app()).await;
    assert_eq!(get_text(&client, "/").await.1, "Hello, world");
    let mut resp = client.post("/demo1/ada").form(&[("key", "v 1")]).send().await.unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({ "name": "ada", "key": "v 1" }));
    // The same form as multipart.
    let form = FormData::new().text("key", "multi");
    let mut resp = client.post("/demo1/bo").multipart(&form).send().await.unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({ "name": "bo", "key": "multi" }));
    let resp = client.post("/demo1/ada").form(&[("other", "x")]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    client.close().await;
}

#[tokio::test]
async fn query_match_reads_path_and_query() {
    let client = client(query_match::app()).await;
    assert_eq!(get_text(&client, "/ada?page=2").await.1, "Hello, ada 2");
    assert_eq!(get_text(&client, "/ada").await.1, "Hello, ada ");
    assert_eq!(get_text(&client, "/search?tag=a&tag=b%20c").await.1, "tags: a, b c");
    assert_eq!(get_text(&client, "/items/42").await, (StatusCode::OK, "item 42".into()));
    assert_eq!(get_text(&client, "/items/abc").await.0, StatusCode::NOT_FOUND);
    let too_big = format!("/items/{}0", u64::MAX);
    assert_eq!(get_text(&client, &too_big).await.0, StatusCode::BAD_REQUEST);
    client.close().await;
}

#[tokio::test]
async fn json_api_round_trips() {
    let client = client(json_api::app()).await;
    let mut resp = client.post("/json").json(&json!({ "key": [1, 2] })).send().await.unwrap();
    assert_eq!(resp.content_type(), "application/json");
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({ "value": [1, 2] }));

    let item = json!({ "name": "pen", "price_cents": 150, "quantity": 3 });
    let mut resp = client.post("/items").json(&item).send().await.unwrap();
    let total: json_api::Total = resp.json().await.unwrap();
    assert_eq!(total, json_api::Total { name: "pen".into(), total_cents: 450 });

    for bad in
        [json!({ "nokey": 1 }), json!({ "name": "x", "price_cents": u64::MAX, "quantity": 2 })]
    {
        let path = if bad.get("nokey").is_some() { "/json" } else { "/items" };
        let resp = client.post(path).json(&bad).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let resp = client.post("/items").body("not json").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    client.close().await;
}

#[tokio::test]
async fn upload_stores_the_file_and_reads_forms() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(upload::app(dir.path())).await;
    assert!(get_text(&client, "/").await.1.contains(r#"enctype="multipart/form-data""#));

    let mut resp =
        client.post("/login").form(&[("user", "ada"), ("password", "x")]).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "Welcome, ada");
    let resp = client.post("/login").form(&[("user", "ada")]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let form = FormData::new().text("note", "first").file(
        "file",
        "../../song.mp3",
        "audio/mpeg",
        data.clone(),
    );
    let mut resp = client.post("/upload").multipart(&form).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "song.mp3 sized of 200000 successfully stored");
    // Stored inside the directory under the last component only.
    assert_eq!(std::fs::read(dir.path().join("song.mp3")).unwrap(), data);

    let form = FormData::new().file("file", "..", "text/plain", "x");
    let resp = client.post("/upload").multipart(&form).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    client.close().await;
}

#[test]
fn upload_names_keep_their_last_component() {
    assert_eq!(upload::safe_name("a.txt").as_deref(), Some("a.txt"));
    assert_eq!(upload::safe_name("/etc/passwd").as_deref(), Some("passwd"));
    assert_eq!(upload::safe_name(r"C:\x\y.doc").as_deref(), Some("y.doc"));
    for bad in ["", "..", ".", "dir/", "a\0b"] {
        assert_eq!(upload::safe_name(bad), None, "{bad:?}");
    }
}

#[tokio::test]
async fn static_files_lists_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "some notes").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let client = client(static_files::app(dir.path()).unwrap()).await;
    let (status, listing) = get_text(&client, "/static/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(listing.contains("notes.txt") && listing.contains("sub/"), "{listing}");
    assert_eq!(get_text(&client, "/static/notes.txt").await, (StatusCode::OK, "some notes".into()));
    assert_eq!(get_text(&client, "/static/missing").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get_text(&client, "/static/%2e%2e/etc/passwd").await.0, StatusCode::NOT_FOUND);
    assert!(static_files::app(&dir.path().join("nope")).is_err());
    client.close().await;
}

#[tokio::test]
async fn middlewares_replace_error_pages() {
    let client = client(middlewares::app()).await;
    let resp = client.get("/").send().await.unwrap();
    assert!(resp.headers().contains_key("x-elapsed-us"));

    let mut resp = client.get("/missing<b>").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers().contains_key("x-elapsed-us"), "timing wraps the error pages");
    let page = resp.text().await.unwrap();
    assert!(page.contains("No page at /missing&lt;b&gt;"), "{page}");

    let mut resp = client.get("/boom").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("<h1>500</h1>") && !page.contains("fire"),
        "details stay in the log: {page}"
    );
    client.close().await;
}

#[tokio::test]
async fn sqlite_signals_open_and_close_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let client = client(sqlite_signals::app(path.clone())).await;
    let db = client.app().state::<sqlite_signals::Db>().expect("opened at startup");
    assert!(!db.is_closed());

    for (title, text) in [("First", "Hello"), ("Second", "World")] {
        let post = sqlite_signals::Post { title: title.into(), text: text.into() };
        let mut resp = client.post("/post").json(&post).send().await.unwrap();
        let id = resp.json::<Value>().await.unwrap()["new_post"].as_i64().unwrap();
        assert!(id > 0);
    }
    let mut resp = client.get("/posts").send().await.unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!([{ "title": "First", "text": "Hello" }, { "title": "Second", "text": "World" }])
    );
    let mut resp = client.get("/posts/2").send().await.unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["title"], "Second");
    assert_eq!(get_text(&client, "/posts/99").await.0, StatusCode::NOT_FOUND);
    let resp = client.post("/post").json(&json!({ "title": "no text" })).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    assert!(client.close().await);
    assert!(db.is_closed(), "the cleanup context closed the connection");
    // The rows outlive the server.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM posts", [], |row| row.get(0)).unwrap();
    assert_eq!(count, 2);
}
