//! Hostile and heavy peers against the server's own TLS driver (`server/tls_stream.rs`)
//! moving much data: one that stops reading, a body read in another task while the
//! response streams, a megabyte of pipelined uploads, and responses larger than the
//! socket's buffers.

use std::time::Duration;

use tandem_web::{Application, Error, Request, ServerConfig, StreamResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    Ca, TlsServer,
    hostile::{VERSIONS, connect_with_version, count, localhost_tls, read_to_close},
    rustls_connect,
};
use crate::support::{TIMEOUT, within};

/// A peer that asks for a large response and stops reading is dropped at the send timeout:
/// what it reads afterwards is what the buffers held, then the end, far short of the body.
#[tokio::test]
async fn a_peer_that_stops_reading_is_dropped_at_the_send_timeout() {
    const SEND_TIMEOUT: Duration = Duration::from_millis(200);
    const BODY: usize = 32 << 20;
    let ca = Ca::new("test CA");
    let mut app = Application::new();
    app.add_get("/big", |_req: Request| async { "x".repeat(BODY) });
    let config = ServerConfig::default().with_send_timeout(SEND_TIMEOUT);
    let mut runner = tandem_web::AppRunner::with_config(app, config).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &localhost_tls(&ca)).await.unwrap();
    let mut stream = rustls_connect(addr.port(), &ca, "localhost").await;
    within(stream.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")).await.unwrap();
    // The peer's stall is the input under test: it reads nothing for a few send timeouts.
    tokio::time::sleep(SEND_TIMEOUT * 4).await;
    let (got, end) = read_to_close(&mut stream).await;
    assert!(got.len() < BODY, "the whole body came: {} bytes, {end:?}", got.len());
    assert!(within(runner.cleanup()).await);
}

/// A handler reads its request body in a task of its own while it streams a large response:
/// the two halves of the one TLS session move together, neither starves the other.
#[tokio::test]
async fn a_body_read_in_another_task_while_the_response_streams() {
    const UPLOAD: usize = 2 << 20;
    const CHUNK: usize = 16 * 1024;
    const CHUNKS: usize = 128;
    let ca = Ca::new("test CA");
    let mut app = Application::new();
    app.add_post("/echo-len", |mut req: Request| async move {
        let mut body = req.take_content();
        let reader = tokio::spawn(async move {
            let mut total = 0;
            while let Some(chunk) = body.chunk().await? {
                total += chunk.len();
            }
            Ok::<_, Error>(total)
        });
        let mut response = StreamResponse::new();
        response.prepare(&req).await?;
        for _ in 0..CHUNKS {
            response.write(vec![b'y'; CHUNK]).await?;
        }
        let total = reader.await??;
        response.write(format!("|{total} read")).await?;
        response.write_eof().await?;
        Ok::<_, Error>(response)
    });
    let mut runner = tandem_web::AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &localhost_tls(&ca)).await.unwrap();
    let stream = rustls_connect(addr.port(), &ca, "localhost").await;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let upload = tokio::spawn(async move {
        let head = format!(
            "POST /echo-len HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Length: {UPLOAD}\r\n\r\n"
        );
        writer.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..UPLOAD / CHUNK {
            writer.write_all(&[b'u'; CHUNK]).await.unwrap();
        }
        writer.flush().await.unwrap();
        writer
    });
    let (got, end) = read_to_close(&mut reader).await;
    let _writer = within(upload).await.unwrap();
    assert!(end.is_none(), "{end:?}");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{}", &text[..text.len().min(300)]);
    assert_eq!(count(&got, b"y"), CHUNK * CHUNKS);
    assert!(text.contains(&format!("|{UPLOAD} read")), "{}", &text[text.len() - 100..]);
    assert!(within(runner.cleanup()).await);
}

/// A megabyte of pipelined uploads in one write, far more than rustls holds decrypted at
/// once, is read through and every request answered in order.
#[tokio::test]
async fn a_megabyte_of_pipelined_uploads_is_answered_in_order() {
    const REQUESTS: usize = 100;
    let ca = Ca::new("test CA");
    let server = TlsServer::start(&localhost_tls(&ca)).await;
    let mut burst = Vec::new();
    for i in 0..REQUESTS {
        let size = 10_000 + i;
        let close = if i + 1 == REQUESTS { "Connection: close\r\n" } else { "" };
        let head = format!(
            "POST /len HTTP/1.1\r\nHost: localhost\r\n{close}Content-Length: {size}\r\n\r\n"
        );
        burst.extend_from_slice(head.as_bytes());
        burst.resize(burst.len() + size, b'p');
    }
    for version in VERSIONS {
        let stream = connect_with_version(server.port(), &ca, version).await;
        let (mut reader, mut writer) = tokio::io::split(stream);
        let burst = burst.clone();
        let upload = tokio::spawn(async move {
            writer.write_all(&burst).await.unwrap();
            writer
        });
        let (got, end) = read_to_close(&mut reader).await;
        let _writer = within(upload).await.unwrap();
        assert!(end.is_none(), "{version:?}: {end:?}");
        let text = String::from_utf8_lossy(&got);
        let lengths: Vec<&str> = text
            .split("HTTP/1.1 200 OK\r\n")
            .skip(1)
            .map(|response| response.split_once("\r\n\r\n").unwrap().1)
            .collect();
        let want: Vec<String> = (0..REQUESTS).map(|i| format!("{} bytes", 10_000 + i)).collect();
        assert_eq!(lengths, want, "{version:?}");
    }
    assert_eq!(server.dispatched(), 2 * REQUESTS);
    server.stop().await;
}

/// Keep-alive responses larger than the socket's buffers, to a client that reads them as
/// they come: each arrives whole while the connection stays open, none waits in rustls's
/// buffer for a next write that only a next request would bring.
#[tokio::test]
async fn large_keep_alive_responses_arrive_whole_without_a_close() {
    const BODY: usize = 16 << 20;
    let ca = Ca::new("test CA");
    let mut app = Application::new();
    app.add_get("/big", |_req: Request| async { "z".repeat(BODY) });
    let mut runner = tandem_web::AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &localhost_tls(&ca)).await.unwrap();
    for version in VERSIONS {
        let mut stream = connect_with_version(addr.port(), &ca, version).await;
        for round in 0..3 {
            within(stream.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"))
                .await
                .unwrap();
            // The head is short and comes first; then only the body's length is counted.
            let mut got = Vec::new();
            let mut chunk = vec![0; 64 * 1024];
            let mut body = None;
            while body.is_none_or(|body| body < BODY) {
                let read = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk)).await;
                let n = read
                    .unwrap_or_else(|_| panic!("{version:?} round {round}: {body:?} of {BODY}"))
                    .unwrap();
                assert!(n > 0, "{version:?} round {round}: closed after {body:?} body bytes");
                if let Some(body) = &mut body {
                    *body += n;
                } else {
                    got.extend_from_slice(&chunk[..n]);
                    let end = got.windows(4).position(|w| w == b"\r\n\r\n");
                    body = end.map(|end| got.len() - end - 4);
                }
            }
            assert_eq!(body, Some(BODY), "{version:?} round {round}");
        }
    }
    assert!(within(runner.cleanup()).await);
}

/// A streamed response's large chunk reaches the client whole while the handler waits
/// before its next one (as a server-sent event must), not held in rustls's buffer until a
/// next write.
#[tokio::test]
async fn a_large_streamed_chunk_arrives_whole_while_the_handler_waits() {
    const CHUNK: usize = 16 << 20;
    let ca = Ca::new("test CA");
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut app = Application::new();
    let wait = std::sync::Arc::clone(&gate);
    app.add_get("/events", move |req: Request| {
        let wait = std::sync::Arc::clone(&wait);
        async move {
            let mut response = StreamResponse::new();
            response.prepare(&req).await?;
            response.write(vec![b'e'; CHUNK]).await?;
            wait.notified().await;
            response.write_eof().await?;
            Ok::<_, Error>(response)
        }
    });
    let mut runner = tandem_web::AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &localhost_tls(&ca)).await.unwrap();
    let mut stream = rustls_connect(addr.port(), &ca, "localhost").await;
    let request = b"GET /events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    within(stream.write_all(request)).await.unwrap();
    let mut chunk = vec![0; 64 * 1024];
    // The head and the chunk's size line come first; after them, only 'e's.
    let mut head = Vec::new();
    let mut seen = None;
    while seen.is_none_or(|seen| seen < CHUNK) {
        let read = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk)).await;
        let n = read.unwrap_or_else(|_| panic!("{seen:?} of {CHUNK} bytes")).unwrap();
        assert!(n > 0, "closed early");
        if let Some(seen) = &mut seen {
            *seen += n;
        } else {
            head.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&head);
            let start = text.find("\r\n\r\n1000000\r\n").map(|at| at + 13);
            seen = start.map(|start| head.len() - start);
        }
    }
    gate.notify_one();
    let _ = read_to_close(&mut stream).await;
    assert!(within(runner.cleanup()).await);
}
