//! `wss://`: the handshake over TLS from a session told to speak HTTP/2 (by prior knowledge,
//! so that ALPN would offer `h2` alone). An upgrade has no place in HTTP/2, so the
//! handshake's request keeps to HTTP/1.1 whatever the session says.

use futures_util::StreamExt;
use tandem_client::{ClientSession, Connector, Http2, TlsConfig};
use tandem_http::web::{AppRunner, Application, Identity, Request, ServerConfig};
use tandem_ws::{Message, WebSocketResponse, WsConnectExt};

use crate::support::within;

#[tokio::test]
async fn wss_keeps_to_http1_in_a_session_that_speaks_http2() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let pem = cert.cert.pem();
    let identity =
        Identity::from_pem(pem.as_bytes(), cert.key_pair.serialize_pem().as_bytes()).unwrap();
    let tls = tandem_http::web::TlsConfig::builder(identity).build().unwrap();
    let mut app = Application::new();
    app.add_get("/ws", |req: Request| async move {
        WebSocketResponse::new().prepare(&req, |mut ws| async move {
            if let Some(Message::Text(text)) = ws.next().await {
                let _ = ws.send_str(&format!("echo {text}")).await;
            }
        })
    });
    let config = ServerConfig::default().with_stderr_log(false);
    let mut runner = AppRunner::with_config(app, config).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tls_site("127.0.0.1", 0, &tls).await.unwrap();
    let trust = TlsConfig::builder().add_root_certificates_pem(pem.as_bytes()).unwrap();
    let connector = Connector::builder()
        .tls(trust.build().unwrap())
        .resolve("localhost", [std::net::SocketAddr::from(([127, 0, 0, 1], 0))])
        .build();
    let session =
        ClientSession::builder().connector(connector).http2(Http2::PriorKnowledge).build();
    let base = format!("localhost:{}", addr.port());
    let mut ws = within(session.ws_connect(&format!("wss://{base}/ws"))).await.unwrap();
    // The TLS facts of the connection the WebSocket runs on (aiohttp's `get_extra_info`).
    let tls = ws.connection_info().and_then(|c| c.tls.clone()).expect("TLS facts");
    assert_eq!(tls.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(tls.peer_certificate.as_deref(), Some(&cert.cert.der()[..]));
    assert!(tls.version.is_some() && tls.cipher.is_some(), "{tls:?}");
    ws.send_str("over TLS").await.unwrap();
    assert!(matches!(within(ws.next()).await, Some(Message::Text(t)) if t == "echo over TLS"));
    drop(ws);
    assert!(within(runner.cleanup()).await);
}
