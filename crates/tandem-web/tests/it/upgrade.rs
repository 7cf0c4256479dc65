//! The upgrade hook: after a 101 the handler's callback owns the raw connection, and bytes
//! the client sent right behind its head reach the new protocol, not the HTTP parser.

use http::StatusCode;
use tandem_web::{Application, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::Server;

/// Switches to a protocol that says "ready", then shouts back the four bytes it reads.
pub(crate) async fn shout(_req: Request) -> Response {
    Response::new(StatusCode::SWITCHING_PROTOCOLS)
        .with_header("upgrade", "shout")
        .with_header("connection", "upgrade")
        .on_upgrade(|mut io| async move {
            io.write_all(b"ready\n").await.unwrap();
            let mut word = [0u8; 4];
            io.read_exact(&mut word).await.unwrap();
            io.write_all(&word.to_ascii_uppercase()).await.unwrap();
        })
}

#[tokio::test]
async fn a_101_hands_the_connection_to_the_callback() {
    let mut app = Application::new();
    app.add_get("/shout", shout);
    app.add_get("/plain", |_req: Request| async { Response::text("no upgrade here") });
    let server = Server::start(app).await;

    // "ping" follows the head in the same write, before the client has seen the 101.
    let raw = server
        .raw(b"GET /shout HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\nping")
        .await;
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 101 Switching Protocols"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: shout"), "{head}");
    assert_eq!(rest, "ready\nPING");

    // The callback is ignored unless the status is 101, and HTTP goes on as usual.
    let plain = server.get("/plain").await;
    assert_eq!(plain.status, 200);
    assert!(server.stop().await);
}

/// After the switch the connection is the callback's, but its writes are still the
/// server's: a peer that stops reading while the new protocol sends (a WebSocket's messages,
/// say, with no heartbeat) is cut off by the send timeout, so the socket buffers hold the
/// most that is ever queued and the connection is not held for good.
#[tokio::test]
async fn an_upgraded_peer_that_stops_reading_is_cut_off_by_the_send_timeout() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let mut app = Application::new();
    app.add_get("/flood", move |_req: Request| {
        let tx = Arc::clone(&tx);
        async move {
            Response::new(StatusCode::SWITCHING_PROTOCOLS)
                .with_header("upgrade", "flood")
                .with_header("connection", "upgrade")
                .on_upgrade(move |mut io| async move {
                    let chunk = vec![b'x'; 64 << 10];
                    let mut sent = 0usize;
                    let mut stalled = Instant::now();
                    let err = loop {
                        match io.write_all(&chunk).await {
                            Ok(()) => {
                                sent += chunk.len();
                                stalled = Instant::now();
                            }
                            Err(err) => break err,
                        }
                    };
                    let _ = tx.lock().unwrap().take().unwrap().send((
                        err.kind(),
                        sent,
                        stalled.elapsed(),
                    ));
                })
        }
    });
    let config = tandem_web::ServerConfig::default().with_send_timeout(Duration::from_millis(200));
    let server = Server::start_with(app, config).await;
    let mut client = server.connect().await;
    client
        .send(b"GET /flood HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: flood\r\n\r\n")
        .await;
    // The client reads nothing at all, the 101 included.
    let (kind, sent, stalled) = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("the send was cut off")
        .unwrap();
    assert_eq!(kind, std::io::ErrorKind::TimedOut);
    assert!(sent < 64 << 20, "sent {sent} bytes to a peer that reads nothing");
    assert!(stalled >= Duration::from_millis(200), "{stalled:?}");
    drop(client);
    assert!(server.stop().await);
}
