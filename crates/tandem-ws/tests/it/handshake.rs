//! The opening handshake on both sides (`docs/security.md`, E57 and E61).

use tandem_client::ClientSession;
use tandem_web::{HttpError, Request, Response};
use tandem_ws::{Message, WebSocketResponse, WsConnectExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{OK_101, Server, const_str, fake_server_then, upgrade_request, within};

async fn echo(req: Request) -> Result<Response, HttpError> {
    WebSocketResponse::new().protocols(["chat", "superchat"]).prepare(&req, |mut ws| async move {
        while let Message::Text(text) = ws.receive().await {
            let _ = ws.send_str(&text).await;
        }
    })
}

fn status_of(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or_default()
}

#[tokio::test]
async fn a_valid_handshake_gets_the_rfc_accept_key() {
    let server = Server::start("/ws", echo).await;
    let mut raw = server.raw_ws("/ws", "").await;
    assert!(
        raw.head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{}",
        raw.head
    );
    raw.send_frame(0x81, b"hi").await;
    let frame = raw.frame().await.unwrap();
    assert_eq!((frame.opcode, &frame.payload[..]), (1, &b"hi"[..]));
}

#[tokio::test]
async fn bad_handshakes_are_refused_and_not_upgraded() {
    let server = Server::start("/ws", echo).await;
    let cases = [
        (
            upgrade_request("/ws", "")
                .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12"),
            "426",
        ),
        (upgrade_request("/ws", "").replace("Sec-WebSocket-Version: 13\r\n", ""), "400"),
        (upgrade_request("/ws", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="), "400"),
        (
            upgrade_request("/ws", "")
                .replace("dGhlIHNhbXBsZSBub25jZQ==", "!!!!!!!!!!!!!!!!!!!!!!!!"),
            "400",
        ),
        (
            upgrade_request("/ws", "").replace("Connection: Upgrade", "Connection: notupgrade"),
            "400",
        ),
        (upgrade_request("/ws", "").replace("Upgrade: websocket", "Upgrade: h2c"), "400"),
        (upgrade_request("/ws", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), "400"),
        // A field read as one value, given twice (RFC 6455 §4.1 allows each once).
        (upgrade_request("/ws", "Sec-WebSocket-Version: 8\r\n"), "400"),
        (upgrade_request("/ws", "Sec-WebSocket-Version: 13\r\n"), "400"),
    ];
    for (request, status) in cases {
        let response = refused(&server, &request).await;
        assert_eq!(status_of(&response), status, "{request:?} -> {response}");
    }
    let version_7 = upgrade_request("/ws", "").replace("Version: 13", "Version: 7");
    let response = refused(&server, &version_7).await;
    assert!(response.contains("sec-websocket-version: 13\r\n"), "{response}");
}

/// Sends a handshake that must fail, asking the server to close after answering.
async fn refused(server: &Server, request: &str) -> String {
    let request = request.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    let response = server.raw_exchange(request.as_bytes()).await;
    assert!(!response.starts_with("HTTP/1.1 101"), "{response}");
    response
}

/// A rejected upgrade that carries a body: 400, and the body is read as a body, so the
/// request hidden in it is never dispatched (checklist E57); nor is the request after it,
/// as a refused upgrade closes the connection (a proxy may be tunnelling already).
#[tokio::test]
async fn an_upgrade_with_a_body_is_refused_and_its_body_is_not_a_request() {
    let hidden = "GET /ws HTTP/1.1\r\nHost: t\r\n\r\n";
    let request = upgrade_request("/ws", &format!("Content-Length: {}\r\n", hidden.len()));
    let server = Server::start("/ws", echo).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(format!("{request}{hidden}").as_bytes()).await.unwrap();
    stream.write_all(b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    within(stream.read_to_end(&mut out)).await.unwrap();
    let out = String::from_utf8_lossy(&out);
    let statuses: Vec<&str> =
        out.match_indices("HTTP/1.1 ").map(|(at, _)| &out[at + 9..at + 12]).collect();
    assert_eq!(statuses, ["400"], "{out}");
}

#[tokio::test]
async fn subprotocols_origin_and_the_session_headers_reach_the_handler() {
    let server = Server::start("/ws", |req: Request| async move {
        let origin = req.header("origin").unwrap_or_default().to_owned();
        let token = req.header("x-token").unwrap_or_default().to_owned();
        WebSocketResponse::new().protocols(["superchat"]).prepare(&req, move |ws| async move {
            let _ = ws.send_str(&format!("{origin} {token} {:?}", ws.protocol())).await;
        })
    })
    .await;
    let session = ClientSession::builder().header("x-token", "abc").build();
    let mut ws = session
        .ws_connect(&server.ws_url("/ws"))
        .protocols(["chat", "superchat"])
        .origin("http://example.com")
        .await
        .unwrap();
    assert_eq!(ws.protocol(), Some("superchat"));
    assert_eq!(ws.receive_str().await.unwrap(), r#"http://example.com abc Some("superchat")"#);
    // No overlap: no subprotocol, and the handshake still succeeds (as aiohttp).
    let ws = session.ws_connect(&server.ws_url("/ws")).protocols(["mqtt"]).await.unwrap();
    assert_eq!(ws.protocol(), None);
}

/// A one-shot HTTP server that answers any request with `response`, where `{accept}`
/// becomes the right accept key, then closes the connection.
async fn fake_server(response: &'static str) -> String {
    fake_server_then(response, |mut stream| async move {
        let _ = stream.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn the_client_refuses_a_bad_answer() {
    let session = ClientSession::new();
    let cases: [(&'static str, &str); 7] = [
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "invalid response status"),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            "invalid challenge response",
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: {accept}\r\n\r\n",
            "invalid upgrade header",
        ),
        (const_str(OK_101, "Sec-WebSocket-Protocol: chat\r\n\r\n"), "subprotocol"),
        (const_str(OK_101, "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"), "extension"),
        (const_str(OK_101, "Sec-WebSocket-Extensions: x-custom\r\n\r\n"), "extension"),
        (
            const_str(OK_101, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
            "invalid challenge response",
        ),
    ];
    for (response, why) in cases {
        let url = fake_server(response).await;
        let err = within(session.ws_connect(&url).connect()).await.unwrap_err();
        assert!(err.is_handshake(), "{response:?}: {err}");
        let detail = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
        assert!(detail.contains(why), "{response:?}: {err:?}");
    }
}

/// RFC 7692 §5: a client that offered permessage-deflate fails the connection on an answer
/// that repeats a parameter, sets one not defined for answers, or gives one a bad value.
#[tokio::test]
async fn the_client_refuses_a_bad_deflate_answer() {
    let session = ClientSession::new();
    for answer in [
        "permessage-deflate; client_max_window_bits=10; client_max_window_bits=15",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=12; server_max_window_bits=9",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; mystery",
    ] {
        let response = const_str(OK_101, &format!("Sec-WebSocket-Extensions: {answer}\r\n\r\n"));
        let url = fake_server(response).await;
        let err = within(session.ws_connect(&url).compress(15).connect()).await.unwrap_err();
        assert!(err.is_handshake(), "{answer}: {err}");
    }
    let fine = "permessage-deflate; server_no_context_takeover; client_max_window_bits=12";
    let url =
        fake_server(const_str(OK_101, &format!("Sec-WebSocket-Extensions: {fine}\r\n\r\n"))).await;
    let ws = within(session.ws_connect(&url).compress(15).connect()).await.unwrap();
    assert!(ws.is_compressed());
}

/// `ws_connect` goes through `WS_PROXY` (aiohttp's `trust_env`, rows 72 and 97), which
/// plain http requests do not take: the proxy here records what reached it and refuses.
#[tokio::test]
async fn ws_connect_takes_the_ws_proxy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://127.0.0.1:{}", proxy.local_addr().unwrap().port());
    let seen = tokio::spawn(async move {
        let (mut stream, _) = proxy.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0; 1];
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "the request head ends");
            head.push(byte[0]);
        }
        let refusal = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        stream.write_all(refusal).await.unwrap();
        String::from_utf8(head).unwrap()
    });
    let env =
        tandem_client::ProxyEnv::from_vars(|name| (name == "ws_proxy").then(|| proxy_url.clone()));
    let session = ClientSession::builder().proxy_env(env).build();
    let err = within(session.ws_connect("ws://chat.example.test/room")).await.unwrap_err();
    assert!(err.is_handshake(), "{err:?}");
    let head = within(seen).await.unwrap();
    assert!(head.starts_with("GET http://chat.example.test/room HTTP/1.1\r\n"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket"), "{head}");
}
