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
