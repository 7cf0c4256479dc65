//! A WebSocket client: each line typed goes to the server, each message back is printed.
//! aiohttp's `session.ws_connect` client example.
//!
//! ```text
//! cargo run --example ws_chat &        # a server to talk to
//! cargo run --example ws_echo_client -- ws://127.0.0.1:8080/ws
//! ```

use tandem_http::{
    ClientSession,
    ws::{CloseCode, Message, WebSocket, WsConnectExt},
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Sends every line of `input` and prints what comes back, until either side closes.
pub(crate) async fn talk<R>(
    mut ws: WebSocket,
    input: R,
    mut out: impl std::io::Write,
) -> Result<(), tandem_http::ws::Error>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    let mut lines = input.lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                if let Ok(Some(line)) = line {
                    ws.send_str(&line).await?;
                } else {
                    // End of input: say goodbye properly.
                    ws.close(CloseCode::OK, "bye").await?;
                    return Ok(());
                }
            }
            msg = ws.receive() => match msg {
                Message::Text(text) => { let _ = writeln!(out, "{text}"); }
                Message::Binary(data) => { let _ = writeln!(out, "<{} bytes>", data.len()); }
                Message::Error(e) => return Err(e),
                _ => return Ok(()),
            },
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:8080/ws".to_owned());
    let session = ClientSession::new();
    let ws = session.ws_connect(&url).await?;
    talk(ws, BufReader::new(tokio::io::stdin()), std::io::stdout()).await?;
    Ok(())
}
