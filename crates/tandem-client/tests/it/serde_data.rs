//! serde on both sides: the client's `query(&T)` and `form(&T)` from structs, the server's
//! `query_as`, `form_as` and `match_info_as` into structs, and a bad value answered with a
//! 400 that names the field.

use serde::{Deserialize, Serialize};
use tandem_web::{Application, Error, Request, json_response};

use crate::support::{Server, session, within};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Search {
    q: String,
    #[serde(default)]
    tag: Vec<String>,
    page: Option<u32>,
}

#[derive(Deserialize, Serialize, Debug, PartialEq)]
struct ItemPath {
    id: u64,
    slug: String,
}

fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/search", |req: Request| async move {
        let search: Search = req.query_as()?;
        Ok::<_, Error>(json_response(&search))
    });
    app.add_post("/search", |mut req: Request| async move {
        let search: Search = req.form_as().await?;
        Ok::<_, Error>(json_response(&search))
    });
    app.add_get(r"/items/{id}/{slug}", |req: Request| async move {
        let path: ItemPath = req.match_info_as()?;
        Ok::<_, Error>(json_response(&path))
    });
    app
}

#[tokio::test]
async fn structs_go_out_as_queries_and_forms_and_come_back_in() {
    let server = Server::start(app()).await;
    let s = session();
    let sent = Search { q: "a b&c".into(), tag: vec!["x".into(), "y z".into()], page: Some(2) };

    let mut resp = within(s.get(&server.url("/search")).query(&sent).send()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Search>().await.unwrap(), sent);

    // `None` is left out, and one value fills a one-element sequence.
    let one = Search { q: "q".into(), tag: vec!["only".into()], page: None };
    let mut resp = within(s.post(&server.url("/search")).form(&one).send()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Search>().await.unwrap(), one);

    let url = server.url("/items/42/blue%20shoe");
    let mut resp = within(s.get(&url).send()).await.unwrap();
    assert_eq!(
        resp.json::<ItemPath>().await.unwrap(),
        ItemPath { id: 42, slug: "blue shoe".into() }
    );
    server.stop().await;
}

#[tokio::test]
async fn query_keeps_pairs_and_appends_after_the_urls_own() {
    let server = Server::start(app()).await;
    let s = session();
    let pairs = [("q", "k"), ("tag", "1"), ("tag", "2")];
    let url = server.url("/search?page=7");
    let mut resp = within(s.get(&url).query(&pairs).send()).await.unwrap();
    let got: Search = resp.json().await.unwrap();
    assert_eq!(got, Search { q: "k".into(), tag: vec!["1".into(), "2".into()], page: Some(7) });
    // A nested value cannot be a query: the request fails before it is sent.
    let nested = [("a", [1, 2])];
    let err = within(s.get(&server.url("/search")).query(&nested).send()).await.unwrap_err();
    assert!(!err.is_connect(), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_value_is_a_400_that_names_the_field() {
    let server = Server::start(app()).await;
    let s = session();
    let cases = [
        (s.get(&server.url("/search?q=a&page=two")), "query parameter `page`"),
        (s.get(&server.url("/search?page=1")), "missing field `q`"),
        (s.post(&server.url("/search")).form(&[("q", "a"), ("page", "-1")]), "form field `page`"),
        (s.get(&server.url("/items/x1/shoe")), "path variable `id`"),
    ];
    for (request, named) in cases {
        let mut resp = within(request.send()).await.unwrap();
        assert_eq!(resp.status(), 400);
        let text = resp.text().await.unwrap();
        assert!(text.contains(named), "{text:?} names {named:?}");
    }
    server.stop().await;
}
