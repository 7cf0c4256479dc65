//! Rendering through a real server: loaders, `url_for`, `static`, escaping, errors.

use std::{future::Future, time::Duration};

use serde::Serialize;
use tandem_http::test::TestClient;
use tandem_templates::{Loader, Templates, render_template, template};
use tandem_web::{Application, HttpError, Request, StaticOptions};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, fut).await.expect("the test step finished in time")
}

const LIST: &str = "{% for item in items %}<a href=\"{{ url_for('detail', id=item.id) }}\">\
                    {{ item.name }}</a>\n{% endfor %}<link href=\"{{ static('css/site.css') }}\">";
const PLAIN: &str = "name: {{ name }}";
const BAD_ROUTE: &str = "{{ url_for('nowhere') }}";

#[derive(Serialize)]
struct Item {
    id: u32,
    name: String,
}

#[derive(Serialize)]
struct List {
    items: Vec<Item>,
}

async fn list(req: Request) -> Result<List, HttpError> {
    if req.query_get("missing").is_some() {
        return Err(HttpError::not_found().with_text("no such list"));
    }
    Ok(List {
        items: vec![
            Item { id: 1, name: "<b>bold</b> & co".into() },
            Item { id: 22, name: "plain".into() },
        ],
    })
}

/// An app with named routes, a static route, and the templates from `loader`.
fn app(loader: Loader, static_dir: &std::path::Path) -> Application {
    let mut app = Application::new();
    tandem_templates::setup(&mut app, loader);
    app.add_get("/", template("list.html", list)).name("index");
    app.add_get("/items/{id}", |req: Request| async move {
        render_template("plain.txt", &req, serde_json::json!({"name": req.match_info("id")}))
    })
    .name("detail");
    app.add_get("/render", |req: Request| async move {
        let name = req.query_get("name").unwrap_or_default().to_owned();
        render_template(&name, &req, serde_json::json!({"name": "<i>x</i>"}))
    });
    app.add_static("/static", static_dir, StaticOptions::default()).unwrap().name("static");
    app
}

/// The app under `tandem_http::test::TestClient`, in memory: rendering is the point here,
/// not the socket.
async fn start(app: Application) -> TestClient {
    within(TestClient::in_memory(app)).await.expect("the app starts")
}

/// `GET path`: the status, the content type and the body.
async fn get(server: &TestClient, path: &str) -> (u16, String, String) {
    let mut resp = within(server.get(path).send()).await.unwrap();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status().as_u16(), content_type, within(resp.text()).await.unwrap())
}

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::create_dir_all(dir.path().join("static/css")).unwrap();
    for (name, source) in [("list.html", LIST), ("plain.txt", PLAIN), ("bad.html", BAD_ROUTE)] {
        std::fs::write(dir.path().join("templates").join(name), source).unwrap();
    }
    std::fs::write(dir.path().join("secret.html"), "outside the folder").unwrap();
    std::fs::write(dir.path().join("static/css/site.css"), "body {}").unwrap();
    dir
}

async fn check_list(server: &TestClient) {
    let (status, content_type, body) = get(server, "/").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(
        body.contains("<a href=\"/items/1\">&lt;b&gt;bold&lt;&#x2f;b&gt; &amp; co</a>"),
        "{body}"
    );
    assert!(body.contains("<a href=\"/items/22\">plain</a>"), "{body}");
    assert!(body.contains("<link href=\"/static/css/site.css\">"), "{body}");
    // The static URL a template builds is one the server serves.
    assert_eq!(get(server, "/static/css/site.css").await.2, "body {}");
}

#[tokio::test]
async fn folder_templates_with_url_for_static_and_escaping() {
    let dir = folder();
    let server =
        start(app(Loader::folder(dir.path().join("templates")), &dir.path().join("static"))).await;
    check_list(&server).await;
    // Not .html: no escaping.
    let (status, _, body) = get(&server, "/render?name=plain.txt").await;
    assert_eq!((status, body.as_str()), (200, "name: <i>x</i>"));
    server.close().await;
}

#[tokio::test]
async fn embedded_templates_render_the_same() {
    static EMBEDDED: &[(&str, &str)] =
        &[("list.html", LIST), ("plain.txt", PLAIN), ("bad.html", BAD_ROUTE)];
    let dir = folder();
    let server = start(app(Loader::Embedded(EMBEDDED), &dir.path().join("static"))).await;
    check_list(&server).await;
    assert_eq!(get(&server, "/items/7").await.2, "name: 7");
    server.close().await;
}

#[tokio::test]
async fn handler_errors_pass_through_and_template_errors_are_500() {
    let dir = folder();
    let server =
        start(app(Loader::folder(dir.path().join("templates")), &dir.path().join("static"))).await;
    let (status, _, body) = get(&server, "/?missing=1").await;
    assert_eq!((status, body.as_str()), (404, "no such list"));
    for path in ["nope.html", "bad.html", "../secret.html", "/etc/passwd"] {
        let (status, _, body) = get(&server, &format!("/render?name={path}")).await;
        assert_eq!(status, 500, "{path}: {body}");
        assert!(!body.contains("outside") && !body.contains("root:"), "{path}");
    }
    server.close().await;
}

#[tokio::test]
async fn render_without_setup_is_an_error() {
    let mut app = Application::new();
    app.add_get("/", |req: Request| async move {
        let err = render_template("x.html", &req, ()).unwrap_err();
        assert!(err.is_not_installed());
        Err::<&str, _>(err)
    });
    let server = start(app).await;
    assert_eq!(get(&server, "/").await.0, 500);
    server.close().await;
}

#[tokio::test]
async fn static_route_name_and_environment_are_configurable() {
    static EMBEDDED: &[(&str, &str)] = &[("page.html", "{{ static('a.css') }} {{ 'x'|shout }}")];
    let dir = folder();
    let mut templates = Templates::new(Loader::Embedded(EMBEDDED)).static_route("assets");
    templates.environment_mut().add_filter("shout", |s: String| s.to_uppercase());
    let mut app = Application::new();
    app.set_state(templates);
    app.add_get("/", |req: Request| async move { render_template("page.html", &req, ()) });
    app.add_static("/assets", dir.path().join("static"), StaticOptions::default())
        .unwrap()
        .name("assets");
    let server = start(app).await;
    assert_eq!(get(&server, "/").await.2, "/assets/a.css X");
    server.close().await;
}
