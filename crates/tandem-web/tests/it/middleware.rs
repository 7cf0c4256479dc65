//! Middlewares as the seeds write them: custom error pages, and a database transaction that
//! commits on success and rolls back on error. Also their order.

use std::sync::{Arc, Mutex};

use tandem_web::{Application, Error, HttpError, Next, Request, Response};

use crate::support::Server;

/// The seeds' error-page middleware: replaces 404 and 500 answers with HTML pages, keeping
/// the status.
async fn error_pages(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    match response.status().as_u16() {
        404 => Response::html("<h1>Nothing here</h1>").with_status(response.status()),
        500 => Response::html("<h1>Our fault</h1>").with_status(response.status()),
        _ => response,
    }
}

#[tokio::test]
async fn error_pages_replace_404_and_500() {
    let mut app = Application::new();
    app.middleware(error_pages);
    app.add_get("/fine", |_req: Request| async { "fine" });
    app.add_get("/boom", |_req: Request| async {
        Err::<Response, _>(std::io::Error::other("db down"))
    });
    app.add_get("/gone", |_req: Request| async {
        Err::<Response, _>(HttpError::not_found().with_text("no such poll"))
    });
    let server = Server::start(app).await;

    let missing = server.get("/missing").await;
    assert_eq!((missing.status, missing.text().as_str()), (404, "<h1>Nothing here</h1>"));
    assert_eq!(missing.header("content-type"), Some("text/html; charset=utf-8"));
    let gone = server.get("/gone").await;
    assert_eq!((gone.status, gone.text().as_str()), (404, "<h1>Nothing here</h1>"));
    let boom = server.get("/boom").await;
    assert_eq!((boom.status, boom.text().as_str()), (500, "<h1>Our fault</h1>"));
    assert_eq!(server.get("/fine").await.text(), "fine");
    server.stop().await;
}

/// The committed rows, and a log of what each request's transaction did.
#[derive(Default)]
struct Db {
    rows: Mutex<Vec<String>>,
    log: Mutex<Vec<&'static str>>,
}

/// One request's open transaction, shared between the middleware and the handler.
#[derive(Clone, Default)]
struct Tx(Arc<Mutex<Vec<String>>>);

/// The seeds' transaction middleware: begin, run the handler, commit if it succeeded,
/// roll back if it failed.
async fn transaction(mut req: Request, next: Next) -> Response {
    let db = req.state::<Db>().expect("the app has a Db");
    let tx = Tx::default();
    req.extensions_mut().insert(tx.clone());
    let response = next.run(req).await;
    let pending = std::mem::take(&mut *tx.0.lock().unwrap());
    if response.status().is_success() {
        db.rows.lock().unwrap().extend(pending);
        db.log.lock().unwrap().push("commit");
    } else {
        db.log.lock().unwrap().push("rollback");
    }
    response
}

async fn insert(req: Request) -> Result<Response, Error> {
    let tx = req.extensions().get::<Tx>().unwrap().clone();
    let row = req.match_info("row").unwrap().to_owned();
    tx.0.lock().unwrap().push(row.clone());
    if row.starts_with("bad") {
        return Err(std::io::Error::other("constraint violated").into());
    }
    Ok(Response::text(format!("inserted {row}")))
}

#[tokio::test]
async fn transactions_commit_on_success_and_roll_back_on_error() {
    let mut app = Application::new();
    app.set_state(Db::default());
    app.middleware(transaction);
    app.add_post("/rows/{row}", insert);
    app.add_get("/rows", |req: Request| async move {
        Response::text(req.state::<Db>().unwrap().rows.lock().unwrap().join(","))
    });
    let server = Server::start(app).await;

    let post =
        |row: &str| format!("POST /rows/{row} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(server.request(post("one").as_bytes()).await.status, 200);
    assert_eq!(server.request(post("bad-two").as_bytes()).await.status, 500);
    assert_eq!(server.request(post("three").as_bytes()).await.status, 200);
    assert_eq!(server.get("/rows").await.text(), "one,three");
    server.stop().await;
}

#[tokio::test]
async fn middlewares_run_in_order_and_may_answer_alone() {
    let trace = Arc::new(Mutex::new(Vec::new()));
    let mut app = Application::new();
    for name in ["outer", "inner"] {
        let trace = Arc::clone(&trace);
        app.middleware(move |req: Request, next: Next| {
            let trace = Arc::clone(&trace);
            async move {
                trace.lock().unwrap().push(format!("{name} in"));
                if name == "inner" && req.header("x-deny").is_some() {
                    return Response::text("denied").with_status(http::StatusCode::FORBIDDEN);
                }
                let response = next.run(req).await;
                trace.lock().unwrap().push(format!("{name} out"));
                response
            }
        });
    }
    let handler_trace = Arc::clone(&trace);
    app.add_get("/", move |_req: Request| {
        handler_trace.lock().unwrap().push("handler".to_owned());
        async { "ok" }
    });
    let server = Server::start(app).await;
    assert_eq!(server.get("/").await.text(), "ok");
    assert_eq!(
        *trace.lock().unwrap(),
        ["outer in", "inner in", "handler", "inner out", "outer out"]
    );
    trace.lock().unwrap().clear();
    let denied = server.request(b"GET / HTTP/1.1\r\nHost: t\r\nX-Deny: 1\r\n\r\n").await;
    assert_eq!(denied.status, 403);
    assert_eq!(*trace.lock().unwrap(), ["outer in", "inner in", "outer out"]);
    server.stop().await;
}
