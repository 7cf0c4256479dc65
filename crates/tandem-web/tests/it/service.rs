//! The tower seam: an app answering `http::Request`s as a service, served by hyper-util's
//! server, and an axum `Router` mounted inside a Tandem app.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tandem_web::{Application, HttpError, Request, Response, ServiceBody};
use tower::ServiceExt;

use crate::support::{Counter, Server, within};

fn app(calls: &Counter) -> Application {
    let mut app = Application::new();
    app.add_get("/hello/{name}", |req: Request| async move {
        Response::text(format!("Hello, {}", req.match_info("name").unwrap_or_default()))
    });
    let calls = calls.clone();
    app.add_post("/echo", move |mut req: Request| {
        calls.hit();
        async move { Ok::<_, HttpError>(Response::bytes(req.read().await?)) }
    });
    app
}

async fn text(resp: http::Response<tandem_web::Body>) -> String {
    let body = within(resp.into_body().collect()).await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn an_app_is_a_tower_service() {
    let calls = Counter::default();
    let app = app(&calls).freeze().unwrap();

    let req = http::Request::get("http://t/hello/tower").body(Full::new(Bytes::new())).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(text(resp).await, "Hello, tower");

    let req = http::Request::post("http://t/echo").body(Full::new(Bytes::from("ping"))).unwrap();
    assert_eq!(text(app.clone().oneshot(req).await.unwrap()).await, "ping");
    assert_eq!(calls.get(), 1);

    // The wire's rules hold: conflicting lengths are refused before any handler runs.
    let req = http::Request::post("http://t/echo")
        .header("content-length", "4")
        .header("content-length", "5")
        .body(Full::new(Bytes::from("ping")))
        .unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 400);
    assert_eq!(calls.get(), 1);

    // client_max_size holds for a body that declares more, before any of it is read.
    let big = Full::new(Bytes::from(vec![b'x'; tandem_web::DEFAULT_CLIENT_MAX_SIZE + 1]));
    let req = http::Request::post("http://t/echo").body(big).unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 413);

    let req = http::Request::get("http://t/nowhere").body(Full::new(Bytes::new())).unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), 404);
}

/// Any tower-compatible server can host a Tandem app: here hyper-util's, on a real socket.
#[tokio::test]
async fn hyper_serves_a_tandem_app() {
    let app = app(&Counter::default()).freeze().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = hyper_util::service::TowerToHyperService::new(app);
        hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await
    });
    let mut client = crate::support::Client::connect(addr).await;
    client.send(b"GET /hello/hyper HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(client.response().await.text(), "Hello, hyper");
    client
        .send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        .await;
    assert_eq!(client.response().await.text(), "abcde");
    within(server).await.unwrap().unwrap();
}

/// An axum `Router` mounted under `/legacy` sees paths without the prefix, the query, the
/// headers and the body; the Tandem routes beside it are untouched.
#[tokio::test]
async fn an_axum_router_mounted_under_a_prefix() {
    use axum::{Router, extract::Path, routing::get, routing::post};

    let legacy = Router::new()
        .route("/users/{id}", get(|Path(id): Path<u32>| async move { format!("user {id}") }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .route("/", get(|| async { "legacy root" }));
    let mut app = app(&Counter::default());
    app.add_service("/legacy", legacy);
    let server = Server::start(app).await;

    assert_eq!(server.get("/legacy/users/7").await.text(), "user 7");
    assert_eq!(server.get("/legacy").await.text(), "legacy root");
    assert_eq!(server.get("/legacy/users/x").await.status, 400);
    assert_eq!(server.get("/legacy/none").await.status, 404);
    let echoed = server
        .request(b"POST /legacy/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    assert_eq!(echoed.text(), "hello");
    assert_eq!(server.get("/hello/tandem").await.text(), "Hello, tandem");
    server.stop().await;
}

/// A service's error is a 500, and the connection goes on.
#[tokio::test]
async fn a_failing_mounted_service_is_a_500() {
    let failing = tower::service_fn(|_req: http::Request<ServiceBody>| async {
        Err::<http::Response<String>, _>(std::io::Error::other("boom"))
    });
    let ok = tower::service_fn(|req: http::Request<ServiceBody>| async move {
        let query = req.uri().query().unwrap_or_default().to_owned();
        Ok::<_, Infallible>(http::Response::new(format!("{} {query}", req.uri().path())))
    });
    let mut app = Application::new();
    app.add_service("/fails", failing).add_service("/ok/", ok);
    let server = Server::start(app).await;
    assert_eq!(server.get("/fails/x").await.status, 500);
    assert_eq!(server.get("/ok/a/b?c=d").await.text(), "/a/b c=d");
    server.stop().await;
}

/// The response body is an `http_body::Body` for any consumer.
#[tokio::test]
async fn response_bodies_are_http_bodies() {
    let full = tandem_web::Body::Full(Bytes::from("abc"));
    assert_eq!(http_body::Body::size_hint(&full).exact(), Some(3));
    assert_eq!(full.collect().await.unwrap().to_bytes(), "abc");
    let chunks = futures_util::stream::iter([Ok(Bytes::from("a")), Ok(Bytes::from("b"))]);
    let stream = tandem_web::Body::Stream(Box::pin(chunks));
    assert_eq!(stream.collect().await.unwrap().to_bytes(), "ab");
    assert!(http_body::Body::is_end_stream(&tandem_web::Body::Empty));
}

/// tower-http's layers around a Tandem app, run by Tandem's own server: CORS answers a
/// preflight itself and marks responses, a timeout cuts a stuck handler off, tracing
/// passes requests through, and the first layer added is the outermost.
#[tokio::test]
async fn tower_layers_wrap_the_app_on_tandems_server() {
    use std::{sync::Arc, time::Duration};
    use tower_http::{cors::CorsLayer, timeout::TimeoutLayer, trace::TraceLayer};

    let stuck = Arc::new(tokio::sync::Notify::new());
    let mut app = app(&Counter::default());
    let never = Arc::clone(&stuck);
    app.add_get("/stuck", move |_req: Request| {
        let never = Arc::clone(&never);
        async move {
            never.notified().await;
            "released"
        }
    });
    let tag = |value: &'static str| {
        tower::util::MapResponseLayer::new(move |mut resp: http::Response<ServiceBody>| {
            resp.headers_mut().append("x-layer", http::HeaderValue::from_static(value));
            resp
        })
    };
    app.layer(tag("outer"))
        .layer(CorsLayer::permissive())
        .layer(TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(100),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(tag("inner"));
    let server = Server::start(app).await;

    let hello = server
        .request(b"GET /hello/cors HTTP/1.1\r\nHost: t\r\nOrigin: http://elsewhere.test\r\n\r\n")
        .await;
    assert_eq!(hello.text(), "Hello, cors");
    assert_eq!(hello.header("access-control-allow-origin"), Some("*"));
    let order: Vec<_> = hello.header_all("x-layer").collect();
    assert_eq!(order, ["inner", "outer"], "the inner layer sees the response first");

    let preflight = server
        .request(b"OPTIONS /echo HTTP/1.1\r\nHost: t\r\nOrigin: http://elsewhere.test\r\nAccess-Control-Request-Method: POST\r\n\r\n")
        .await;
    assert_eq!(preflight.status, 200);
    assert!(preflight.header("access-control-allow-methods").is_some());

    let echoed =
        server.request(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody").await;
    assert_eq!(echoed.text(), "body");

    assert_eq!(server.get("/stuck").await.status, 408);
    server.stop().await;
}

/// Without layers nothing of tower is on the path; with them, a frozen app called as a
/// service goes through them too.
#[tokio::test]
async fn a_layered_app_called_as_a_service_runs_its_layers() {
    let mut app = app(&Counter::default());
    app.layer(tower_http::cors::CorsLayer::permissive());
    let app = app.freeze().unwrap();
    let req = http::Request::get("http://t/hello/svc")
        .header("origin", "http://elsewhere.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(text(resp).await, "Hello, svc");

    let mut sub = Application::new();
    sub.layer(tower_http::cors::CorsLayer::permissive());
    let mut root = Application::new();
    root.add_subapp("/sub", sub);
    assert!(root.freeze().is_err(), "layers belong to the root app");
}

/// A service mounted inside a sub-application sees the path below its own mount, whatever
/// the prefixes above it: not a slice of the whole path cut at its own prefix's length,
/// which handed it another path (`/v1/api/users` arrived as `/api/users`, and
/// `/version/api/x` as `on/api/x`). Its tail stays as sent, `%2F` and all.
#[tokio::test]
async fn a_service_mounted_in_a_sub_application_sees_the_path_below_its_mount() {
    let seen = tower::service_fn(|req: http::Request<ServiceBody>| async move {
        Ok::<_, Infallible>(http::Response::new(req.uri().to_string()))
    });
    let mut v1 = Application::new();
    v1.add_service("/api", seen);
    let mut inner = Application::new();
    inner.add_service("/api", seen);
    let mut v2 = Application::new();
    v2.add_subapp("/inner", inner);
    let mut root = Application::new();
    root.add_subapp("/v1", v1).add_subapp("/version", v2);
    let app = root.freeze().unwrap();
    let cases = [
        ("/v1/api/users?page=2", "/users?page=2"),
        ("/v1/api", "/"),
        ("/v1/api/", "/"),
        ("/v1/api/a%2Fb/c", "/a%2Fb/c"),
        ("/version/inner/api/x", "/x"),
    ];
    for (path, expected) in cases {
        let req = http::Request::get(format!("http://t{path}")).body(Full::new(Bytes::new()));
        let resp = app.clone().oneshot(req.unwrap()).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(text(resp).await, expected, "{path}");
    }
}

/// Dot segments and encoded slashes never carry a request across a mount: routing is on
/// the raw path, so `/api/../secret` and `/api/..%2fsecret` go to the service mounted at
/// `/api` (which sees them below its mount, as sent), `/api%2f../secret` and
/// `/secret/../api/x` to neither, and the app's own `/secret` runs for none of them.
#[tokio::test]
async fn dot_segments_and_encoded_slashes_stay_on_their_side_of_a_mount() {
    let secret = Counter::default();
    let hits = secret.clone();
    let mut app = Application::new();
    app.add_get("/secret", move |_req: Request| {
        hits.hit();
        async { "secret" }
    });
    app.add_service(
        "/api",
        tower::service_fn(|req: http::Request<ServiceBody>| async move {
            Ok::<_, Infallible>(http::Response::new(format!("api saw {}", req.uri())))
        }),
    );
    let server = Server::start(app).await;
    assert_eq!(server.get("/api/../secret").await.text(), "api saw /../secret");
    assert_eq!(server.get("/api/..%2fsecret").await.text(), "api saw /..%2fsecret");
    assert_eq!(server.get("/api%2f../secret").await.status, 404);
    assert_eq!(server.get("/secret/../api/x").await.status, 404);
    assert_eq!(secret.get(), 0);
    assert_eq!(server.get("/secret").await.text(), "secret");
    server.stop().await;
}

/// Through tower layers, a request is held to its server's head limits, not the defaults:
/// a server that allows longer fields serves one through a layer as without it (the app
/// under the layers checked the head again with the default limits, and refused it 431).
#[tokio::test]
async fn a_layered_app_keeps_its_servers_head_limits() {
    let mut app = app(&Counter::default());
    app.layer(tower_http::cors::CorsLayer::permissive());
    let limits = tandem_proto::Limits::default().max_field_size(16 * 1024);
    let config = tandem_web::ServerConfig::default().with_limits(limits);
    let server = Server::start_with(app, config).await;
    let long = "v".repeat(12 * 1024);
    let request = format!("GET /hello/long HTTP/1.1\r\nHost: t\r\nX-Long: {long}\r\n\r\n");
    let resp = server.request(request.as_bytes()).await;
    assert_eq!((resp.status, resp.text()), (200, "Hello, long".to_owned()));
    server.stop().await;
}

/// Through tower layers, an HTTP/1.0 request is still read by HTTP/1.0's rules: one that
/// names no host is served, as without layers (the app under them read every request it
/// got back from them as HTTP/1.1, so it was a 400 for its missing `Host`).
#[tokio::test]
async fn a_layered_app_serves_http10_as_http10() {
    let mut app = app(&Counter::default());
    app.add_get("/version", |req: Request| async move { format!("{:?}", req.version()) });
    app.add_get("/host", |req: Request| async move { format!("{:?} {}", req.host(), req.url()) });
    app.layer(tower_http::cors::CorsLayer::permissive());
    let server = Server::start(app).await;
    for path in ["/hello/old", "/version", "/host"] {
        let request = format!("GET {path} HTTP/1.0\r\n\r\n");
        let resp = server.request(request.as_bytes()).await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        match path {
            "/version" => assert_eq!(resp.text(), "HTTP/1.0"),
            // The local address, as without layers.
            "/host" => assert_eq!(resp.text(), "Some(\"127.0.0.1\") http://127.0.0.1/host"),
            _ => {}
        }
    }
    server.stop().await;
}

/// An app with layers called as a tower service (hosted by hyper, say) checks a request's
/// head before its first layer, as Tandem's own servers do: a `Host` contradicting the
/// authority, too many fields or one too long reached every layer, and only the app under
/// them refused it.
#[tokio::test]
async fn a_layered_app_called_as_a_service_checks_the_head_before_its_layers() {
    let layered = Counter::default();
    let mut app = app(&Counter::default());
    let seen = layered.clone();
    app.layer(tower::util::MapRequestLayer::new(move |req: http::Request<ServiceBody>| {
        seen.hit();
        req
    }));
    let app = app.freeze().unwrap();
    // As hyper hands over an HTTP/2 request: its authority in the URI.
    let get = |host: &str| {
        http::Request::get("http://t.test/hello/svc")
            .version(http::Version::HTTP_2)
            .header("host", host)
    };
    let long = get("t.test").header("x-long", "l".repeat(9000));
    for (req, refused) in [(get("admin.internal"), 400), (long, 431)] {
        let resp = app.clone().oneshot(req.body(Full::new(Bytes::new())).unwrap()).await.unwrap();
        assert_eq!(resp.status(), refused);
    }
    assert_eq!(layered.get(), 0, "no layer saw a refused request");
    let resp = app.oneshot(get("t.test").body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    assert_eq!(text(resp).await, "Hello, svc");
    assert_eq!(layered.get(), 1);
}
