//! The server the benchmarks drive (`cargo xtask bench server`).
//!
//! ```text
//! cargo run --release --example bench_server -- --port P [--workers N] [--multi-thread]
//!     [--tls-cert PEM --tls-key PEM] [--static DIR] [--upload-file PATH]
//!     [--read-bufsize BYTES]
//! ```
//!
//! With `--tls-cert` (a chain, leaf first) and `--tls-key` it serves the same routes over
//! HTTPS instead (`cargo xtask bench tls`).
//!
//! - `GET /plaintext`: `Hello, World!` as text/plain;
//! - `GET /json`: `{"message":"Hello, World!"}`, serialised per request;
//! - `POST /echo`: the request body, read whole within the default 1 MiB limit;
//! - `GET /ws`: a WebSocket echo for `cargo xtask bench ws`, taking messages up to 2 MiB;
//! - `GET /static/...`: with `--static DIR`, the files under DIR (`add_static`), for
//!   `cargo xtask bench bulk`;
//! - `POST /upload`: with `--upload-file PATH`, the request body written to PATH chunk by
//!   chunk as it is read, answered with its size, for `cargo xtask bench bulk`.
//!
//! `--read-bufsize` sets `ServerConfig::read_bufsize`, to compare read sizes on the upload
//! rows.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;
use tandem_http::web::{
    Application, HttpError, Request, Response, RunOptions, ServerConfig, StaticOptions, TlsConfig,
    json_response,
};
use tandem_http::ws::{Message as WsMessage, WebSocket, WebSocketResponse};

/// Room for the WebSocket bench's 1 MiB messages (aiohttp's 4 MiB default would do too;
/// `ws_load` and the tungstenite peers set the same 2 MiB).
const WS_MAX_MSG_SIZE: usize = 2 * 1024 * 1024;

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

async fn echo(mut req: Request) -> Result<Response, tandem_http::web::Error> {
    Ok(Response::bytes(req.read().await?))
}

/// Where `POST /upload` writes, kept as application state.
struct UploadFile(PathBuf);

/// Streams the body to the upload file with a blocking write per chunk: on tmpfs or the
/// page cache a write is a copy, cheaper than a hop to tokio's blocking pool, and the hyper
/// peer writes the same way.
async fn upload(mut req: Request) -> Result<Response, tandem_http::web::Error> {
    let path = req.state::<UploadFile>().expect("main sets the upload file");
    let mut file = std::fs::File::create(&path.0)?;
    let mut written = 0u64;
    while let Some(chunk) = req.content().chunk().await? {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
    Ok(Response::text(written.to_string()))
}

async fn websocket(req: Request) -> Result<Response, HttpError> {
    WebSocketResponse::new().max_msg_size(WS_MAX_MSG_SIZE).prepare(&req, ws_echo)
}

/// Sends each text and binary message back; anything else (a close, an error) ends it.
async fn ws_echo(mut ws: WebSocket) {
    loop {
        let sent = match ws.receive().await {
            WsMessage::Text(text) => ws.send_str(&text).await,
            WsMessage::Binary(data) => ws.send_bytes(&data).await,
            _ => break,
        };
        if sent.is_err() {
            break;
        }
    }
}

fn main() -> Result<(), tandem_http::web::Error> {
    let mut port = 8080;
    let mut workers = 1;
    let mut multi_thread = false;
    let (mut tls_cert, mut tls_key) = (None, None);
    let (mut static_dir, mut upload_file) = (None, None);
    let mut config = ServerConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--workers" => workers = args.next().and_then(|n| n.parse().ok()).expect("--workers N"),
            "--multi-thread" => multi_thread = true,
            "--tls-cert" => tls_cert = Some(args.next().expect("--tls-cert PEM")),
            "--tls-key" => tls_key = Some(args.next().expect("--tls-key PEM")),
            "--static" => static_dir = Some(args.next().expect("--static DIR")),
            "--upload-file" => upload_file = Some(args.next().expect("--upload-file PATH")),
            "--read-bufsize" => {
                let size = args.next().and_then(|n| n.parse().ok()).expect("--read-bufsize BYTES");
                config = config.with_read_bufsize(size);
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    let mut app = Application::new();
    app.add_get("/plaintext", plaintext);
    app.add_get("/json", json);
    app.add_post("/echo", echo);
    app.add_get("/ws", websocket);
    if let Some(dir) = static_dir {
        app.add_static("/static", dir, StaticOptions::default())?;
    }
    if let Some(path) = upload_file {
        app.set_state(UploadFile(path.into()));
        app.add_post("/upload", upload);
    }
    // No access log on stderr: the servers it is measured against log nothing either.
    let config = config.with_stderr_log(false);
    let mut options = RunOptions::new("127.0.0.1", port)
        .workers(workers)
        .multi_thread(multi_thread)
        .config(config);
    match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => options = options.tls(TlsConfig::from_pem_files(cert, key)?),
        (None, None) => {}
        _ => panic!("--tls-cert and --tls-key go together"),
    }
    options.run(app)
}
