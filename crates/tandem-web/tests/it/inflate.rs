//! `docs/security.md`, B34: a compressed request body is decoded inside `client_max_size`,
//! and a `br` body's window inside `brotli_window_log_max`.

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

/// `body` in brotli with a window of 2^`lgwin` bytes, in brotli's large-window extension
/// (not `br`, RFC 7932, but what the brotli library decodes unless told not to) if asked.
/// Flushed before its end, so its first metablock is not its last: a decoder then allocates
/// the whole window, not just the output's size.
fn brotli(body: &[u8], lgwin: i32, large_window: bool) -> Vec<u8> {
    let params = brotli::enc::BrotliEncoderParams { lgwin, large_window, ..Default::default() };
    let mut out = Vec::new();
    let mut w = brotli::CompressorWriter::with_params(&mut out, 4096, &params);
    w.write_all(body).unwrap();
    w.flush().unwrap();
    drop(w);
    out
}

fn post(coding: &str, body: &[u8]) -> Vec<u8> {
    post_to("/len", coding, body)
}

fn post_to(path: &str, coding: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: a\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
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
    // Two fields are one list of two codings, as `gzip, br` in one is: a 415, not the
    // body decoded by the first alone.
    let small = gzip(b"hello");
    let listed = server.request(&post("gzip, br", &small)).await;
    assert_eq!(listed.status, 415);
    let two_fields = server.request(&post("gzip\r\nContent-Encoding: br", &small)).await;
    assert_eq!(two_fields.status, 415);
    let garbage = server.request(&post("gzip", b"not gzip")).await;
    assert_eq!(garbage.status, 400);
    assert!(server.stop().await);
}

/// A `br` body of a few bytes (25 here) declaring brotli's large window of 2^30 made `read()` allocate
/// 1 GiB before any output, and one declaring the most RFC 7932 allows 16 MiB, whatever
/// `client_max_size`: the window is read at the body's first byte and past
/// `brotli_window_log_max` (2^24 by default, every `br` window; an application's own, inherited
/// by its sub-applications) the body is a 400, as other bodies that do not decode are; the
/// large-window extension always is.
#[tokio::test]
async fn brotli_windows_past_the_limit_are_refused_at_the_first_byte() {
    let read_len = |mut req: Request| async move {
        req.read().await.map(|body| Response::text(body.len().to_string()))
    };
    let mut tight = Application::new();
    tight.brotli_window_log_max(22);
    let mut inherits = Application::new();
    inherits.add_post("/len", read_len);
    tight.add_subapp("/sub", inherits);
    let mut app = Application::new();
    app.add_post("/len", read_len);
    app.add_subapp("/tight", tight);
    let server = Server::start(app).await;

    let body = b"hello, hello, hello";
    for lgwin in [10, 16, 22, 24] {
        let ok = server.request(&post("br", &brotli(body, lgwin, false))).await;
        assert_eq!((ok.status, ok.body.as_slice()), (200, &b"19"[..]), "window 2^{lgwin}");
    }
    let gib = brotli(body, 30, true);
    assert!(gib.len() < 32, "{} bytes", gib.len());
    for large in [gib, brotli(body, 25, true)] {
        let refused = server.request(&post("br", &large)).await;
        assert_eq!(refused.status, 400);
        assert_eq!(refused.body, b"400: body does not decode");
    }

    let refused = server.request(&post_to("/tight/sub/len", "br", &brotli(body, 24, false))).await;
    assert_eq!(refused.status, 400);
    let ok = server.request(&post_to("/tight/sub/len", "br", &brotli(body, 22, false))).await;
    assert_eq!((ok.status, ok.body.as_slice()), (200, &b"19"[..]));
    assert!(server.stop().await);
}
