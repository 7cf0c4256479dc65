//! The WebSocket conformance suite's two roles, for `cargo xtask autobahn`.
//!
//! ```text
//! cargo run --release --example autobahn -- server --port 9002
//! cargo run --release --example autobahn -- client --url ws://127.0.0.1:9001
//! ```
//!
//! The server echoes every message on `/` with permessage-deflate accepted; the client runs
//! every case of a `wstest -m fuzzingserver`, echoing likewise, then asks for the report.
//! Group 9 sends messages of up to 16 MiB, so both sides allow that much.

use tandem_http::{
    ClientSession,
    web::{Application, HttpError, Request, Response, run_app},
    ws::{Message, WebSocket, WebSocketResponse, WsConnectExt},
};

const MAX_MSG_SIZE: usize = 16 * 1024 * 1024;
const AGENT: &str = "Tandem";

/// Sends back each text and binary message until the peer closes.
async fn echo(mut ws: WebSocket) {
    loop {
        let sent = match ws.receive().await {
            Message::Text(text) => ws.send_str(&text).await,
            Message::Binary(data) => ws.send_bytes(&data).await,
            _ => break,
        };
        if sent.is_err() {
            break;
        }
    }
}

async fn handler(req: Request) -> Result<Response, HttpError> {
    WebSocketResponse::new().max_msg_size(MAX_MSG_SIZE).prepare(&req, echo)
}

async fn run_client(base: &str) -> Result<(), Box<dyn std::error::Error>> {
    let session = ClientSession::new();
    let mut ws = session.ws_connect(&format!("{base}/getCaseCount")).await?;
    let count: u32 = ws.receive_str().await?.parse()?;
    ws.close(tandem_http::ws::CloseCode::OK, "").await?;
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        match session.ws_connect(&url).compress(15).max_msg_size(MAX_MSG_SIZE).await {
            Ok(ws) => echo(ws).await,
            Err(e) => eprintln!("case {case}: {e}"),
        }
    }
    let mut ws = session.ws_connect(&format!("{base}/updateReports?agent={AGENT}")).await?;
    ws.close(tandem_http::ws::CloseCode::OK, "").await?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["server", "--port", port] => {
            let mut app = Application::new();
            app.add_get("/", handler);
            Ok(run_app(app, "127.0.0.1", port.parse()?)?)
        }
        ["client", "--url", url] => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(run_client(url)),
        _ => {
            Err("usage: autobahn server --port PORT | autobahn client --url ws://HOST:PORT".into())
        }
    }
}
