//! tokio-tungstenite peer server for `cargo xtask bench ws`: a WebSocket echo
//! on any path (the bench uses `/`), on a current-thread tokio runtime (one
//! thread in all), like Tandem's single-worker `bench_server` and its `/ws`.
//!
//! ```text
//! tungstenite_server --port P
//! ```

use std::net::Ipv4Addr;

use bench_peers::{port_from_args, ws_config};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::accept_async_with_config;

/// Sends every text and binary message back until the client closes.
/// tungstenite answers pings and the close frame itself, while `next` polls.
async fn echo(stream: TcpStream) {
    // Tandem's server sets it on every connection too.
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = accept_async_with_config(stream, Some(ws_config())).await else { return };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

fn main() {
    let port = port_from_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(async move {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:{port}: {e}"));
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(echo(stream));
                }
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    });
}
