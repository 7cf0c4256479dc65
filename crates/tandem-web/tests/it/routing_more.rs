//! Routing beyond plain routes: class-based views with their 405s, `url_for` with a query,
//! the listing of routes, and `url_for` names checked when the application freezes.

use http::Method;
use tandem_web::{
    Application, Error, HttpError, Next, NormalizePath, Request, Response, RouteTable, View,
};

use crate::support::Server;

struct Item {
    req: Request,
}

impl View for Item {
    const METHODS: &'static [Method] = &[Method::GET, Method::POST, Method::DELETE];

    fn new(req: Request) -> Self {
        Item { req }
    }

    async fn get(self) -> Result<Response, Error> {
        Ok(Response::text(format!("item {}", self.req.match_info("id").unwrap_or("?"))))
    }

    async fn post(mut self) -> Result<Response, Error> {
        let body = self.req.text().await?;
        Ok(Response::text(format!("posted {body}")))
    }
    // DELETE is listed but not written: a 405 like any other method's.
}

/// A view that answers one extension method through `other`.
struct Dav;

impl View for Dav {
    const METHODS: &'static [Method] = &[Method::OPTIONS];

    fn new(_req: Request) -> Self {
        Dav
    }

    async fn options(self) -> Result<Response, Error> {
        Ok(Response::text("").with_header("dav", "1"))
    }
}

#[tokio::test]
async fn a_view_answers_its_methods_and_405s_the_rest() {
    let mut app = Application::new();
    app.add_view::<Item>("/items/{id}").name("item");
    let mut table = RouteTable::new();
    table.view::<Dav>("/dav");
    app.add_routes(table);
    let server = Server::start(app).await;
    assert_eq!(server.get("/items/7").await.text(), "item 7");
    let mut client = server.connect().await;
    client.send(b"HEAD /items/7 HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(client.response_to(true).await.status, 200);
    let resp =
        server.request(b"POST /items/7 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi").await;
    assert_eq!(resp.text(), "posted hi");
    for method in ["PUT", "PATCH", "DELETE"] {
        let resp = server
            .request(
                format!("{method} /items/7 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        assert_eq!(resp.status, 405, "{method}");
        let allow = resp.header("allow").unwrap_or_default().replace(' ', "");
        let mut allow: Vec<_> = allow.split(',').collect();
        allow.sort_unstable();
        assert_eq!(allow, ["DELETE", "GET", "HEAD", "POST"], "{method}");
    }
    let resp = server.request(b"OPTIONS /dav HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(resp.header("dav"), Some("1"));
    assert_eq!(server.get("/dav").await.status, 405);
    server.stop().await;
}

#[tokio::test]
async fn url_for_with_a_query_and_the_list_of_routes() {
    let mut admin = Application::new();
    admin.add_get("/users/{id}", |_req: Request| async { "a user" }).name("user");
    admin.add_route(None, "/any", |_req: Request| async { "any" });
    let mut app = Application::new();
    app.add_get("/", |req: Request| async move {
        req.app()
            .url_for_query("user", &[("id", "a b")], &[("tab", "posts"), ("q", "x&y=z")])
            .map_err(|_| HttpError::internal_server_error())
    });
    app.add_post("/", |_req: Request| async { "posted" });
    app.add_view::<Item>("/items/{id}").name("item");
    app.add_subapp("/admin", admin);
    let server = Server::start(app).await;
    assert_eq!(server.get("/").await.text(), "/admin/users/a%20b?tab=posts&q=x%26y%3Dz");
    server.stop().await;

    let mut app = Application::new();
    app.add_get("/", |_req: Request| async { "index" }).name("index");
    app.add_post("/", |_req: Request| async { "posted" });
    app.add_view::<Item>("/items/{id}").name("item");
    let mut admin = Application::new();
    admin.add_route(None, "/any", |_req: Request| async { "any" });
    app.add_subapp("/admin", admin);
    let app = app.freeze().unwrap();
    let listed: Vec<_> = app
        .routes()
        .iter()
        .map(|r| {
            (r.method().map(Method::to_string), r.path().to_owned(), r.name().map(str::to_owned))
        })
        .collect();
    let route = |m: Option<&str>, p: &str, n: Option<&str>| {
        (m.map(str::to_owned), p.to_owned(), n.map(str::to_owned))
    };
    assert_eq!(
        listed,
        [
            route(Some("GET"), "/", Some("index")),
            route(Some("POST"), "/", Some("index")),
            route(Some("GET"), "/items/{id}", Some("item")),
            route(Some("POST"), "/items/{id}", Some("item")),
            route(Some("DELETE"), "/items/{id}", Some("item")),
            route(None, "/admin/any", None),
        ]
    );
    assert_eq!(app.url_for_query("index", &[], &[]).unwrap(), "/");
}

#[tokio::test]
async fn url_for_names_and_variables_are_checked_at_freeze() {
    let build = |name: &str, variables: &[&str]| {
        let mut sub = Application::new();
        sub.add_get("/posts/{post}/comments/{id}", |_req: Request| async { "" }).name("comment");
        sub.require_url("index", &[]);
        let mut app = Application::new();
        app.add_get("/", |_req: Request| async { "" }).name("index");
        app.add_subapp("/blog", sub);
        app.require_url(name, variables);
        app.freeze()
    };
    assert!(build("comment", &["id", "post"]).is_ok());
    for (name, variables) in [
        ("comment", &["post"][..]),
        ("comment", &["post", "id", "x"]),
        ("comments", &["post", "id"]),
    ] {
        let err = build(name, variables).unwrap_err();
        assert!(err.to_string().contains("url_for"), "{err}");
    }
}

#[tokio::test]
async fn normalize_path_redirects_only_to_a_path_that_resolves() {
    let mut app = Application::new();
    app.middleware(NormalizePath::new());
    app.add_get("/docs/", |_req: Request| async { "docs" });
    app.add_get("/a/b", |_req: Request| async { "a b" });
    // Matches `//evil.com/` and nothing without the trailing slash.
    app.add_get("/{host:.*}com/", |_req: Request| async { "caught" });
    let server = Server::start(app).await;
    for (path, location) in [
        ("/docs", "/docs/"),
        ("/docs?q=1", "/docs/?q=1"),
        ("//docs", "/docs/"),
        ("/a//b?x=1", "/a/b?x=1"),
    ] {
        let resp = server.get(path).await;
        assert_eq!((resp.status, resp.header("location")), (308, Some(location)), "{path}");
    }
    assert_eq!(server.get("/docs/").await.text(), "docs");
    assert_eq!(server.get("/nothing").await.status, 404);
    // `//evil.com/` resolves, but a browser would take it for another host: the redirect
    // goes to the merged path on this host instead.
    assert_eq!(server.get("//evil.com").await.header("location"), Some("/evil.com/"));
    assert_eq!(server.get("/\\evil.com").await.status, 404);
    server.stop().await;

    let mut app = Application::new();
    app.middleware(
        NormalizePath::new()
            .remove_slash(true)
            .redirect_status(http::StatusCode::MOVED_PERMANENTLY),
    );
    app.add_get("/r", |_req: Request| async { "r" });
    let server = Server::start(app).await;
    let resp = server.get("/r/").await;
    assert_eq!((resp.status, resp.header("location")), (301, Some("/r")));
    assert_eq!(server.get("/r//").await.header("location"), Some("/r"));
    server.stop().await;
}

#[tokio::test]
async fn a_low_level_server_answers_every_request_with_one_handler() {
    let handler = |req: Request| async move {
        Response::text(format!(
            "{} {} {}",
            req.method(),
            req.path_qs(),
            req.match_info("x").is_none()
        ))
    };
    let mut app: Application = tandem_web::Server::new(handler).into();
    app.middleware(|req: Request, next: Next| async move {
        next.run(req).await.with_header("x-wrapped", "yes")
    });
    let server = Server::start(app).await;
    let resp = server.get("/any/path?q").await;
    assert_eq!(resp.text(), "GET /any/path?q true");
    assert_eq!(resp.header("x-wrapped"), Some("yes"));
    let resp = server.request(b"BREW /pot HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").await;
    assert_eq!(resp.text(), "BREW /pot true");
    server.stop().await;

    let mut with_route: Application = tandem_web::Server::new(handler).into();
    with_route.add_get("/", |_req: Request| async { "" });
    assert!(with_route.freeze().is_err());
}

#[tokio::test]
async fn domains_route_by_host_with_wildcards() {
    let mut api = Application::new();
    api.add_get("/", |_req: Request| async { "api" });
    api.add_get("/v1/{thing}", |req: Request| async move {
        format!("api {}", req.match_info("thing").unwrap_or_default())
    })
    .name("thing");
    api.add_post("/only-post", |_req: Request| async { "posted" });
    let mut tenants = Application::new();
    tenants.middleware(|req: Request, next: Next| async move {
        next.run(req).await.with_header("x-tenant", "yes")
    });
    tenants.add_get("/", |req: Request| async move {
        format!("tenant {}", req.host().unwrap_or_default())
    });
    let mut app = Application::new();
    app.add_domain("api.example.com", api).unwrap();
    app.add_domain("*.tenants.example", tenants).unwrap();
    app.add_get("/", |_req: Request| async { "site" });
    app.add_get("/only-post", |_req: Request| async { "site get" });
    assert!(app.add_domain("not a domain", Application::new()).is_err());
    let server = Server::start(app).await;
    let get = |host: &'static str, path: &'static str| {
        let server = &server;
        async move {
            server.request(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).await
        }
    };
    assert_eq!(get("api.example.com", "/").await.text(), "api");
    assert_eq!(get("API.Example.com:8443", "/v1/x").await.text(), "api x");
    assert_eq!(get("www.example.com", "/").await.text(), "site");
    assert_eq!(get("example.com", "/v1/x").await.status, 404);
    let resp = get("a.tenants.example", "/").await;
    assert_eq!(
        (resp.text().as_str(), resp.header("x-tenant")),
        ("tenant a.tenants.example", Some("yes"))
    );
    assert_eq!(get("b.c.tenants.example", "/").await.text(), "tenant b.c.tenants.example");
    assert_eq!(get("tenants.example", "/").await.text(), "site");
    assert_eq!(get("eviltenants.example", "/").await.text(), "site");
    // A domain without the path falls through to the site's routes.
    assert_eq!(get("a.tenants.example", "/only-post").await.text(), "site get");
    // A path the domain has for another method only: the site's GET still answers.
    assert_eq!(get("api.example.com", "/only-post").await.text(), "site get");
    let resp = server
        .request(b"PUT /only-post HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 0\r\n\r\n")
        .await;
    assert_eq!(resp.status, 405);
    let allow = resp.header("allow").unwrap_or_default();
    assert!(allow.contains("POST") && allow.contains("GET"), "{allow}");
    server.stop().await;

    // Names in a domain build URLs as any other.
    let mut api = Application::new();
    api.add_get("/v1/{thing}", |_req: Request| async { "" }).name("thing");
    let mut app = Application::new();
    app.add_domain("api.example.com", api).unwrap();
    app.require_url("thing", &["thing"]);
    let app = app.freeze().unwrap();
    assert_eq!(app.url_for("thing", &[("thing", "t")]).unwrap(), "/v1/t");
}

/// Routing by `Accept`, as aiohttp's documentation's custom resource does.
struct AcceptChooser {
    json: std::sync::Arc<dyn tandem_web::Handler>,
    html: std::sync::Arc<dyn tandem_web::Handler>,
}

impl tandem_web::CustomResource for AcceptChooser {
    fn resolve(&self, req: &Request) -> Option<std::sync::Arc<dyn tandem_web::Handler>> {
        if !req.path().ends_with("/report") {
            return None;
        }
        let json = req.header("accept").is_some_and(|a| a.contains("application/json"));
        Some(std::sync::Arc::clone(if json { &self.json } else { &self.html }))
    }
}

fn chooser() -> AcceptChooser {
    AcceptChooser {
        json: std::sync::Arc::new(|_req: Request| async { Response::text("{\"report\":1}") }),
        html: std::sync::Arc::new(|_req: Request| async { Response::html("<p>report</p>") }),
    }
}

#[tokio::test]
async fn custom_resources_route_what_patterns_cannot() {
    let mut sub = Application::new();
    sub.middleware(|req: Request, next: Next| async move {
        next.run(req).await.with_header("x-sub", "yes")
    });
    sub.add_resource(chooser());
    let mut app = Application::new();
    app.add_get("/report", |_req: Request| async { "route" });
    app.add_resource(chooser());
    app.add_subapp("/sub", sub);
    let server = Server::start(app).await;
    // The route added before the resource wins; the resource is asked about what it did not
    // take, a method it does not have included (aiohttp goes on past a 405 match too).
    let resp = server
        .request(b"GET /report HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n")
        .await;
    assert_eq!(resp.text(), "route");
    let post = b"POST /report HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(server.request(post).await.text(), "<p>report</p>");
    let resp = server
        .request(b"GET /x/report HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n")
        .await;
    assert_eq!((resp.text().as_str(), resp.header("x-sub")), ("{\"report\":1}", None));
    assert_eq!(server.get("/other").await.status, 404);
    server.stop().await;

    // The sub-application's resource runs inside its middlewares.
    let mut sub = Application::new();
    sub.middleware(|req: Request, next: Next| async move {
        next.run(req).await.with_header("x-sub", "yes")
    });
    sub.add_resource(chooser());
    let mut app = Application::new();
    app.add_subapp("/sub", sub);
    let server = Server::start(app).await;
    let resp = server.get("/sub/report").await;
    assert_eq!((resp.text().as_str(), resp.header("x-sub")), ("<p>report</p>", Some("yes")));
    server.stop().await;
}

/// Custom resources take their turn in the order they were added among the routes, as
/// aiohttp's router tries its resources: one added before a route is asked first, even
/// about that route's path, and a catch-all pattern added after it does not hide it.
#[tokio::test]
async fn custom_resources_are_tried_in_registration_order_with_routes() {
    let mut app = Application::new();
    app.add_resource(chooser());
    app.add_get("/report", |_req: Request| async { "route" });
    app.add_get("/{tail:.*}", |_req: Request| async { "catch-all" });
    app.add_resource(AcceptChooser {
        json: std::sync::Arc::new(|_req: Request| async { "too late" }),
        html: std::sync::Arc::new(|_req: Request| async { "too late" }),
    });
    let server = Server::start(app).await;
    assert_eq!(server.get("/report").await.text(), "<p>report</p>");
    assert_eq!(server.get("/a/report").await.text(), "<p>report</p>");
    assert_eq!(server.get("/other").await.text(), "catch-all");
    // The catch-all has no POST: the later resource's turn comes after its 405 match.
    let post = b"POST /x/report HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(server.request(post).await.text(), "<p>report</p>");
    let post = b"POST /other HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(server.request(post).await.status, 405);
    server.stop().await;
}
