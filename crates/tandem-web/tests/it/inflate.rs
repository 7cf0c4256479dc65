//! `docs/security.md`, B34: a compressed request body is decoded inside `client_max_size`.

use std::io::Write;

use tandem_web::{Application, Request, Response};

use crate::support::Server;

/// At the best level, as a bomb maker would: zlib's fast level (flate2's backend is zlib-rs
/// once tandem-ws is in the build) leaves 1 MiB of zeros ten times larger.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn post(coding: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST /len HTTP/1.1\r\nHost: a\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

#[tokio::test]
async fn gzip_bodies_are_decoded_and_bombs_stop_at_the_limit() {
    let mut app = Application::new();
    app.add_post("/len", |mut req: Request| async move {
        req.read().await.map(|body| Response::text(body.len().to_string()))
    });
    let server = Server::start(app).await;

    let ok = server.request(&post("gzip", &gzip(&vec![b'x'; 100_000]))).await;
    assert_eq!((ok.status, ok.body.as_slice()), (200, &b"100000"[..]));

    // About 1 KiB on the wire, 1 MiB + 1 decoded: one byte over the default limit.
    let bomb = gzip(&vec![0; (1 << 20) + 1]);
    assert!(bomb.len() < 8 * 1024);
    let refused = server.request(&post("gzip", &bomb)).await;
    assert_eq!(refused.status, 413);

    let unknown = server.request(&post("zip", b"abc")).await;
    assert_eq!(unknown.status, 415);
    let garbage = server.request(&post("gzip", b"not gzip")).await;
    assert_eq!(garbage.status, 400);
    assert!(server.stop().await);
}
