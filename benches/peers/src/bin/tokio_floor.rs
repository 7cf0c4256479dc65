//! The floor for `cargo xtask bench server`: a tokio responder on one current-thread
//! runtime that answers every request with a canned response, parsing nothing but the
//! blank line that ends each head and whether the target is `/json`.
//!
//! What it costs per request is the socket work (the kernel's `recv` and `send`, and the
//! loopback delivery its `send` runs) and tokio's wake-up, with no HTTP at all, so each
//! server's distance above it is what its HTTP layer costs.

use bench_peers::serve_each_connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response the size of the others' (their fields, and a date of the real length).
const PLAINTEXT: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\n\
date: Tue, 01 Dec 2026 19:00:00 GMT\r\n\r\nHello, World!";
const JSON: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 27\r\n\
date: Tue, 01 Dec 2026 19:00:00 GMT\r\n\r\n{\"message\":\"Hello, World!\"}";

async fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let mut pending = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    loop {
        if stream.read_buf(&mut pending).await? == 0 {
            return Ok(());
        }
        let mut start = 0;
        while let Some(end) = pending[start..].windows(4).position(|w| w == b"\r\n\r\n") {
            let json = pending[start..].starts_with(b"GET /json");
            out.extend_from_slice(if json { JSON } else { PLAINTEXT });
            start += end + 4;
        }
        pending.drain(..start);
        stream.write_all(&out).await?;
        out.clear();
    }
}

fn main() -> std::io::Result<()> {
    serve_each_connection(|stream| async move {
        let _ = serve(stream).await;
    })
}
