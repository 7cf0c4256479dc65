//! The server the benchmarks drive (`cargo xtask bench server`).
//!
//! ```text
//! cargo run --release --example bench_server -- --port P [--workers N] [--multi-thread]
//! ```
//!
//! - `GET /plaintext`: `Hello, World!` as text/plain;
//! - `GET /json`: `{"message":"Hello, World!"}`, serialised per request;
//! - `POST /echo`: the request body, read whole within the default 1 MiB limit.

use serde::Serialize;
use tandem::web::{Application, Request, Response, RunOptions, json_response};

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

async fn plaintext(_req: Request) -> Response {
    Response::with_content_type("text/plain", "Hello, World!")
}

async fn json(_req: Request) -> Response {
    json_response(&Message { message: "Hello, World!" })
}

async fn echo(mut req: Request) -> Result<Response, tandem::web::Error> {
    Ok(Response::bytes(req.read().await?))
}

fn main() -> Result<(), tandem::web::Error> {
    let mut port = 8080;
    let mut workers = 1;
    let mut multi_thread = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--workers" => workers = args.next().and_then(|n| n.parse().ok()).expect("--workers N"),
            "--multi-thread" => multi_thread = true,
            other => panic!("unknown argument {other:?}"),
        }
    }
    let mut app = Application::new();
    app.add_get("/plaintext", plaintext);
    app.add_get("/json", json);
    app.add_post("/echo", echo);
    RunOptions::new("127.0.0.1", port).workers(workers).multi_thread(multi_thread).run(app)
}
