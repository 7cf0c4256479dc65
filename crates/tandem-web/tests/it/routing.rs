//! Routing: variables, regexes, tails, 404, 405 with `Allow`, HEAD from GET, any-method
//! routes, route tables, `url_for`, and sub-applications.

use std::fmt::Write;

use http::Method;
use tandem_web::{AppRunner, Application, Next, Request, Response, RouteTable};

use crate::support::{Server, within};

async fn echo_match(req: Request) -> Response {
    let mut out = String::new();
    for name in ["name", "id", "path"] {
        if let Some(value) = req.match_info(name) {
            let _ = write!(out, "{name}={value};");
        }
    }
    Response::text(out)
}

#[tokio::test]
async fn variables_regexes_and_tails() {
    let mut app = Application::new();
    app.add_get("/hello/{name}", echo_match);
    app.add_get(r"/items/{id:\d+}", echo_match);
    app.add_get("/files/{path:.*}", echo_match);
    let server = Server::start(app).await;

    assert_eq!(server.get("/hello/J%C3%BCrgen").await.text(), "name=Jürgen;");
    assert_eq!(server.get("/hello/a/b").await.status, 404);
    assert_eq!(server.get("/items/42").await.text(), "id=42;");
    assert_eq!(server.get("/items/x42").await.status, 404);
    assert_eq!(server.get("/files/css/site.css").await.text(), "path=css/site.css;");
    assert_eq!(server.get("/files/").await.text(), "path=;");
    server.stop().await;
}

#[tokio::test]
async fn not_found_method_not_allowed_and_head() {
    let mut app = Application::new();
    app.add_get("/page", |_req: Request| async { Response::text("a page body") });
    app.add_post("/page", |_req: Request| async { Response::text("posted") });
    let server = Server::start(app).await;

    let missing = server.get("/nowhere").await;
    assert_eq!((missing.status, missing.text().as_str()), (404, "404: Not Found"));

    let put = server.request(b"PUT /page HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n").await;
    assert_eq!(put.status, 405);
    assert_eq!(put.header("allow"), Some("GET, HEAD, POST"));

    // HEAD is answered by the GET handler, with GET's length and no body bytes; the GET
    // pipelined behind it proves no stray body byte was written.
    let mut client = server.connect().await;
    client
        .send(b"HEAD /page HTTP/1.1\r\nHost: t\r\n\r\nGET /page HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    let head = client.response_to(true).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("11"));
    let get = client.response().await;
    assert_eq!(get.text(), "a page body");
    assert!(client.buf.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn any_method_routes_and_route_tables() {
    let mut app = Application::new();
    app.add_route(
        None,
        "/any",
        |req: Request| async move { Response::text(req.method().to_string()) },
    );
    let mut routes = RouteTable::new();
    routes.get("/table", |_req: Request| async { Response::text("table get") });
    routes.delete("/table", |_req: Request| async { Response::text("table delete") });
    routes.route(Some(Method::OPTIONS), "/table", |_req: Request| async { "table options" });
    app.add_routes(routes);
    let server = Server::start(app).await;

    for method in ["GET", "POST", "PATCH", "PURGE"] {
        let resp = server
            .request(
                format!("{method} /any HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        assert_eq!(resp.text(), method);
    }
    assert_eq!(server.get("/table").await.text(), "table get");
    let delete = server.request(b"DELETE /table HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(delete.text(), "table delete");
    let options = server.request(b"OPTIONS /table HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(options.text(), "table options");
    let post =
        server.request(b"POST /table HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n").await;
    assert_eq!(post.status, 405);
    server.stop().await;
}

#[tokio::test]
async fn url_for_builds_and_is_checked_at_freeze() {
    let mut app = Application::new();
    app.add_get(r"/users/{id:\d+}", echo_match).name("user");
    app.add_get("/links", |req: Request| async move {
        let good = req.app().url_for("user", &[("id", "7")]).unwrap();
        let bad = req.app().url_for("user", &[("id", "x")]).is_err();
        let unknown = req.app().url_for("nobody", &[]).is_err();
        Response::text(format!("{good} {bad} {unknown}"))
    });
    let server = Server::start(app).await;
    assert_eq!(server.get("/links").await.text(), "/users/7 true true");
    server.stop().await;

    // Two routes with one name: the app does not freeze, so it never serves.
    let mut dup = Application::new();
    dup.add_get("/a", echo_match).name("same");
    dup.add_get("/b", echo_match).name("same");
    let err = AppRunner::new(dup).expect_err("duplicate route names must not freeze");
    assert!(err.to_string().contains("duplicate"), "{err}");

    // So does a malformed pattern, and the same method twice on one path.
    let mut bad = Application::new();
    bad.add_get("/x/{unclosed", echo_match);
    assert!(bad.freeze().is_err());
    let mut twice = Application::new();
    twice.add_get("/x", echo_match);
    twice.add_get("/x", echo_match);
    assert!(twice.freeze().is_err());
}

#[derive(Debug)]
struct Greeting(&'static str);
#[derive(Debug)]
struct ParentOnly(&'static str);

async fn tag(name: &'static str, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let value = response
        .headers()
        .get("x-chain")
        .map_or_else(|| name.to_owned(), |v| format!("{name},{}", v.to_str().unwrap()));
    response.headers_mut().insert("x-chain", value.parse().unwrap());
    response
}

#[tokio::test]
async fn sub_applications_have_their_own_middlewares_and_state() {
    let mut admin = Application::new();
    admin.set_state(Greeting("admin"));
    admin.middleware(|req: Request, next: Next| tag("admin", req, next));
    admin
        .add_get("/panel", |req: Request| async move {
            let own = req.state::<Greeting>().unwrap().0;
            let inherited = req.state::<ParentOnly>().unwrap().0;
            let path = req.app().url_for("panel", &[]).unwrap();
            Response::text(format!("{own} {inherited} {path}"))
        })
        .name("panel");

    let mut app = Application::new();
    app.set_state(Greeting("root"));
    app.set_state(ParentOnly("parent"));
    app.middleware(|req: Request, next: Next| tag("root", req, next));
    app.add_get(
        "/",
        |req: Request| async move { Response::text(req.state::<Greeting>().unwrap().0) },
    );
    app.add_subapp("/admin", admin);
    let server = Server::start(app).await;

    let panel = server.get("/admin/panel").await;
    assert_eq!(panel.text(), "admin parent /admin/panel");
    // The parent's middleware runs around the sub-app's.
    assert_eq!(panel.header("x-chain"), Some("root,admin"));
    let root = server.get("/").await;
    assert_eq!(root.text(), "root");
    assert_eq!(root.header("x-chain"), Some("root"));
    assert_eq!(server.get("/admin/missing").await.status, 404);
    within(server.stop()).await;
}
