//! `Response::enable_compression`: the coding chosen from `Accept-Encoding`, whole and
//! streamed bodies decoded back, and the responses left alone.

use std::fmt::Write;

use bytes::Bytes;
use futures_util::stream;
use http::StatusCode;
use tandem_web::{Application, Request, Response};

use crate::files_support::{Server, decode, get, request};

fn text() -> String {
    let mut text = String::new();
    for i in 0..2000 {
        let _ = writeln!(text, "line {i} of a compressible body");
    }
    text
}

fn chunks() -> Vec<String> {
    (0..50).map(|i| format!("chunk {i}: {}\n", "x".repeat(i * 37))).collect()
}

async fn serve() -> Server {
    let mut app = Application::new();
    app.add_get("/full", |_req: Request| async {
        let mut response = Response::text(text());
        response.enable_compression();
        response
    });
    app.add_get("/small", |_req: Request| async {
        let mut response = Response::text("tiny");
        response.enable_compression();
        response
    });
    app.add_get("/stream", |_req: Request| async {
        let parts = chunks().into_iter().map(|c| Ok(Bytes::from(c)));
        let mut response = Response::stream(stream::iter(parts));
        response.enable_compression();
        response
    });
    app.add_get("/stream-with-length", |_req: Request| async {
        let body: String = chunks().concat();
        let length = body.len().to_string();
        let parts = chunks().into_iter().map(|c| Ok(Bytes::from(c)));
        let mut response =
            Response::stream(stream::iter(parts)).with_header("content-length", &length);
        response.enable_compression();
        response
    });
    app.add_get("/plain", |_req: Request| async { Response::text(text()) });
    app.add_get("/encoded", |_req: Request| async {
        let mut response = Response::bytes("already").with_header("content-encoding", "x-custom");
        response.enable_compression();
        response
    });
    app.add_get("/no-content", |_req: Request| async {
        let mut response = Response::text("ignored").with_status(StatusCode::NO_CONTENT);
        response.enable_compression();
        response
    });
    app.add_get("/not-modified", |_req: Request| async {
        let mut response = Response::text("ignored").with_status(StatusCode::NOT_MODIFIED);
        response.enable_compression();
        response
    });
    app.add_get("/vary", |_req: Request| async {
        let mut response = Response::text(text()).with_header("vary", "Cookie");
        response.enable_compression();
        response
    });
    app.add_get("/etag", |_req: Request| async {
        let mut response = Response::text(text()).with_header("etag", "\"v1\"");
        response.enable_compression();
        response
    });
    Server::start(app).await
}

/// The coding chosen for each `Accept-Encoding`, and the body decoded back, for a whole and
/// a streamed body.
#[tokio::test]
async fn round_trips_and_q_values() {
    let server = serve().await;
    let cases: [(Option<&str>, Option<&str>); 16] = [
        (Some("gzip"), Some("gzip")),
        (Some("deflate"), Some("deflate")),
        (Some("br"), Some("br")),
        (Some("gzip, deflate, br"), Some("br")),
        (Some("gzip, deflate"), Some("gzip")),
        (Some("br;q=0.1, gzip;q=0.5, deflate;q=0.2"), Some("gzip")),
        (Some("br;q=0, gzip"), Some("gzip")),
        (Some("gzip;q=0"), None),
        (Some("gzip;q=0, deflate;q=0, br;q=0"), None),
        (Some("identity"), None),
        (Some("*"), Some("br")),
        (Some("*;q=0, deflate"), Some("deflate")),
        (Some("br;q=0, *;q=0.5"), Some("gzip")),
        (Some("GZip;Q=0.9"), Some("gzip")),
        (Some("compress, zstd"), None),
        (None, None),
    ];
    let stream_body = chunks().concat().into_bytes();
    for (accept, coding) in cases {
        let headers: Vec<_> = accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
        let full = get(server.addr, "/full", &headers).await;
        assert_eq!(full.status, 200);
        assert_eq!(full.header("content-encoding"), coding, "/full {accept:?}");
        assert_eq!(full.header("vary"), Some("Accept-Encoding"), "/full {accept:?}");
        assert_eq!(full.header("content-length"), Some(full.body.len().to_string().as_str()));
        assert_eq!(decode(coding, &full.body), text().into_bytes(), "/full {accept:?}");
        if coding.is_some() {
            assert!(full.body.len() < text().len() / 4, "compressed {accept:?}");
        }

        let streamed = get(server.addr, "/stream", &headers).await;
        assert_eq!(streamed.header("content-encoding"), coding, "/stream {accept:?}");
        assert_eq!(streamed.header("transfer-encoding"), Some("chunked"));
        assert_eq!(decode(coding, &streamed.body), stream_body, "/stream {accept:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_declared_length_is_dropped_when_a_stream_is_compressed() {
    let server = serve().await;
    let body = chunks().concat().into_bytes();
    for coding in ["gzip", "deflate", "br"] {
        let reply = get(server.addr, "/stream-with-length", &[("Accept-Encoding", coding)]).await;
        assert_eq!(reply.header("content-encoding"), Some(coding));
        assert_eq!(reply.header("content-length"), None);
        assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
        assert_eq!(decode(Some(coding), &reply.body), body);
    }
    let identity = get(server.addr, "/stream-with-length", &[]).await;
    assert_eq!(identity.header("content-length"), Some(body.len().to_string().as_str()));
    assert_eq!(identity.body, body);
    let small = get(server.addr, "/small", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(decode(Some("gzip"), &small.body), b"tiny");
    server.stop().await;
}

#[tokio::test]
async fn responses_left_alone() {
    let server = serve().await;
    let gzip = [("Accept-Encoding", "gzip, br")];
    let plain = get(server.addr, "/plain", &gzip).await;
    assert_eq!((plain.header("content-encoding"), plain.header("vary")), (None, None));
    assert_eq!(plain.body, text().into_bytes(), "not asked to compress");

    let encoded = get(server.addr, "/encoded", &gzip).await;
    assert_eq!(encoded.header("content-encoding"), Some("x-custom"));
    assert_eq!(encoded.body, b"already");

    for target in ["/no-content", "/not-modified"] {
        let reply = get(server.addr, target, &gzip).await;
        assert_eq!(reply.header("content-encoding"), None, "{target}");
        assert!(reply.body.is_empty(), "{target}");
    }

    let head = request(server.addr, "HEAD", "/full", &gzip).await;
    assert_eq!(head.header("content-encoding"), None);
    assert_eq!(head.header("content-length"), Some(text().len().to_string().as_str()));
    assert!(head.body.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn vary_and_etag() {
    let server = serve().await;
    let reply = get(server.addr, "/vary", &[("Accept-Encoding", "gzip")]).await;
    let vary: Vec<_> =
        reply.headers.iter().filter(|(n, _)| n == "vary").map(|(_, v)| v.as_str()).collect();
    assert_eq!(vary, ["Cookie", "Accept-Encoding"]);
    let etag = get(server.addr, "/etag", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(etag.header("etag"), Some("W/\"v1\""), "a strong tag is weakened");
    let identity = get(server.addr, "/etag", &[]).await;
    assert_eq!(identity.header("etag"), Some("\"v1\""));
    server.stop().await;
}
