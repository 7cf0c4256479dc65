//! Messages both ways between our server and our client: text, binary, JSON, pings,
//! compression, concurrent senders, closing, timeouts and shutdown.

use std::time::Duration;

use futures_util::StreamExt;
use tandem_client::ClientSession;
use tandem_web::{HttpError, Request, Response};
use tandem_ws::{CloseCode, FrameType, Message, WebSocketResponse, WsConnectExt};

use crate::support::{Server, report, within};

async fn echo(req: Request) -> Result<Response, HttpError> {
    WebSocketResponse::new().prepare(&req, |mut ws| async move {
        while let Some(msg) = ws.next().await {
            let sent = match msg {
                Message::Text(text) => ws.send_str(&text).await,
                Message::Binary(data) => ws.send_bytes(&data).await,
                _ => break,
            };
            if sent.is_err() {
                break;
            }
        }
    })
}

#[tokio::test]
async fn text_binary_and_json_echo_with_and_without_compression() {
    let server = Server::start("/ws", echo).await;
    let session = ClientSession::new();
    for window in [0, 15, 9] {
        let mut ws =
            within(session.ws_connect(&server.ws_url("/ws")).compress(window)).await.unwrap();
        assert_eq!(ws.is_compressed(), window != 0);
        ws.send_str("héllo").await.unwrap();
        assert_eq!(ws.receive_str().await.unwrap(), "héllo");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        ws.send_bytes(&big).await.unwrap();
        assert_eq!(&within(ws.receive_bytes()).await.unwrap()[..], &big[..]);
        ws.send_json(&serde_json::json!({"n": 1})).await.unwrap();
        let value: serde_json::Value = ws.receive_json().await.unwrap();
        assert_eq!(value["n"], 1);
        assert!(ws.close(CloseCode::OK, "bye").await.unwrap());
        assert!(ws.is_closed());
        assert_eq!(ws.close_code(), Some(CloseCode::OK));
        assert!(!ws.close(CloseCode::OK, "again").await.unwrap(), "already closed");
    }
}

#[tokio::test]
async fn the_handler_sees_the_clients_close_code_and_reason() {
    let (report, rx) = report();
    let server = Server::start("/ws", move |req: Request| {
        let report = report.clone();
        async move {
            WebSocketResponse::new().prepare(&req, move |mut ws| async move {
                let msg = ws.receive().await;
                report.send(format!("{msg:?} then {:?}", ws.receive().await));
            })
        }
    })
    .await;
    let mut ws = ClientSession::new().ws_connect(&server.ws_url("/ws")).await.unwrap();
    assert!(ws.close(CloseCode(4000), "done here").await.unwrap());
    assert_eq!(within(rx).await.unwrap(), r#"Close(CloseCode(4000), "done here") then Closed"#);
}

#[tokio::test]
async fn pings_are_answered_unless_autoping_is_off() {
    let server = Server::start("/ws", |req: Request| async move {
        WebSocketResponse::new().autoping(false).prepare(&req, |mut ws| async move {
            // Report what arrived, then pong by hand.
            if let Message::Ping(payload) = ws.receive().await {
                let _ = ws.send_str(&format!("ping {}", String::from_utf8_lossy(&payload))).await;
                let _ = ws.pong(&payload).await;
            }
            let _ = ws.receive().await;
        })
    })
    .await;
    let mut ws =
        ClientSession::new().ws_connect(&server.ws_url("/ws")).autoping(false).await.unwrap();
    ws.ping(b"abc").await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "ping abc");
    assert!(matches!(within(ws.receive()).await, Message::Pong(p) if &p[..] == b"abc"));
}

#[tokio::test]
async fn many_tasks_send_at_once_and_frames_never_interleave() {
    let server = Server::start("/ws", |req: Request| async move {
        WebSocketResponse::new().prepare(&req, |ws| async move {
            let tasks: Vec<_> = (0..8)
                .map(|t| {
                    let sender = ws.sender();
                    tokio::spawn(async move {
                        for i in 0..100 {
                            let body = format!("{t}:{i}:{}", "x".repeat(1000 * t));
                            sender.send_str(&body).await.unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let mut ws = ws;
            let _ = ws.close(CloseCode::OK, "").await;
        })
    })
    .await;
    let mut ws = ClientSession::new().ws_connect(&server.ws_url("/ws")).await.unwrap();
    let mut next = [0; 8];
    while let Some(msg) = within(ws.next()).await {
        let Message::Text(text) = msg else { panic!("{msg:?}") };
        let mut parts = text.splitn(3, ':');
        let t: usize = parts.next().unwrap().parse().unwrap();
        let i: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(parts.next().unwrap().len(), 1000 * t);
        assert_eq!(i, next[t], "each sender's messages arrive in order");
        next[t] += 1;
    }
    assert_eq!(next, [100; 8]);
}

#[tokio::test]
async fn receive_timeout_returns_a_timeout_and_keeps_the_connection() {
    let server = Server::start("/ws", |req: Request| async move {
        WebSocketResponse::new().receive_timeout(Duration::from_millis(50)).prepare(
            &req,
            |mut ws| async move {
                let first = ws.receive().await;
                let verdict = matches!(&first, Message::Error(e) if e.is_timeout());
                let _ = ws.send_str(&format!("timed out: {verdict}")).await;
                let second = ws.receive().await;
                let _ = ws.send_str(&format!("then {second:?}")).await;
            },
        )
    })
    .await;
    let mut ws = ClientSession::new().ws_connect(&server.ws_url("/ws")).await.unwrap();
    assert_eq!(within(ws.receive_str()).await.unwrap(), "timed out: true");
    ws.send_str("late").await.unwrap();
    assert_eq!(within(ws.receive_str()).await.unwrap(), r#"then Text("late")"#);
}

/// A client that stops answering pings is dropped once half the heartbeat passes.
#[tokio::test]
async fn the_heartbeat_closes_a_silent_peer() {
    let (report, rx) = report();
    let server = Server::start("/ws", move |req: Request| {
        let report = report.clone();
        async move {
            WebSocketResponse::new().heartbeat(Duration::from_millis(100)).prepare(
                &req,
                move |mut ws| async move {
                    let msg = ws.receive().await;
                    let lost = matches!(&msg, Message::Error(e) if e.is_timeout());
                    report.send((lost, ws.close_code()));
                },
            )
        }
    })
    .await;
    // With autoping off and nobody reading, the client never answers.
    let mut ws =
        ClientSession::new().ws_connect(&server.ws_url("/ws")).autoping(false).await.unwrap();
    assert_eq!(within(rx).await.unwrap(), (true, Some(CloseCode::ABNORMAL_CLOSURE)));
    // The server dropped the connection: the client sees the ping, then the end.
    assert!(matches!(within(ws.receive()).await, Message::Ping(_)));
    assert!(matches!(within(ws.receive()).await, Message::Closed));
}

#[tokio::test]
async fn a_peer_that_answers_keeps_the_heartbeat_happy() {
    let server = Server::start("/ws", |req: Request| async move {
        WebSocketResponse::new().heartbeat(Duration::from_millis(20)).prepare(
            &req,
            |mut ws| async move {
                let msg = ws.receive().await;
                let _ = ws.send_str(&format!("{msg:?}")).await;
            },
        )
    })
    .await;
    // Pongs by hand, so the test can count the heartbeats it survived.
    let mut ws =
        ClientSession::new().ws_connect(&server.ws_url("/ws")).autoping(false).await.unwrap();
    for _ in 0..5 {
        match within(ws.receive()).await {
            Message::Ping(payload) => ws.pong(&payload).await.unwrap(),
            other => panic!("{other:?}"),
        }
    }
    ws.send_str("still here").await.unwrap();
    loop {
        match within(ws.receive()).await {
            Message::Ping(payload) => ws.pong(&payload).await.unwrap(),
            Message::Text(text) => break assert_eq!(text, r#"Text("still here")"#),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn server_shutdown_closes_websockets_with_going_away() {
    let server = Server::start("/ws", echo).await;
    let mut ws = ClientSession::new().ws_connect(&server.ws_url("/ws")).await.unwrap();
    ws.send_str("up").await.unwrap();
    assert_eq!(ws.receive_str().await.unwrap(), "up");
    let stopping = tokio::spawn(server.stop());
    match within(ws.receive()).await {
        Message::Close(code, _) => assert_eq!(code, CloseCode::GOING_AWAY),
        other => panic!("{other:?}"),
    }
    assert!(within(stopping).await.unwrap(), "the server finished gracefully");
}

#[tokio::test]
async fn a_message_over_max_msg_size_closes_with_1009() {
    let server = Server::start("/ws", |req: Request| async move {
        WebSocketResponse::new().max_msg_size(1024).prepare(&req, |mut ws| async move {
            let msg = ws.receive().await;
            assert!(matches!(msg, Message::Error(ref e) if e.is_message_too_big()), "{msg:?}");
        })
    })
    .await;
    for window in [0, 15] {
        let mut ws =
            ClientSession::new().ws_connect(&server.ws_url("/ws")).compress(window).await.unwrap();
        ws.send_bytes(&vec![0; 2048]).await.unwrap();
        match within(ws.receive()).await {
            Message::Close(code, _) => assert_eq!(code, CloseCode::MESSAGE_TOO_BIG),
            other => panic!("{other:?}"),
        }
    }
}

/// A close sent through a `WsSender` shows up in the reader as `Closing`, then the peer's
/// answer as `Close`, as aiohttp's CLOSING and CLOSE.
#[tokio::test]
async fn a_close_from_a_sender_is_closing_then_close() {
    let (report, rx) = report();
    let server = Server::start("/ws", move |req: Request| {
        let report = report.clone();
        async move {
            WebSocketResponse::new().prepare(&req, move |mut ws| async move {
                let sender = ws.sender();
                tokio::spawn(async move { sender.close(CloseCode(4100), "from a task").await })
                    .await
                    .unwrap()
                    .unwrap();
                let first = ws.receive().await;
                let second = ws.receive().await;
                report.send(format!("{first:?} {second:?} {}", ws.is_closed()));
            })
        }
    })
    .await;
    let mut ws = ClientSession::new().ws_connect(&server.ws_url("/ws")).await.unwrap();
    match within(ws.receive()).await {
        Message::Close(code, reason) => {
            assert_eq!((code.0, reason.as_str()), (4100, "from a task"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(within(rx).await.unwrap(), r#"Closing Close(CloseCode(4100), "") true"#);
}

/// `send_frame` sends a whole message with compression chosen per message (aiohttp's
/// `compress=`), and `send_json_with` writes JSON with the caller's serializer: a raw client
/// that agreed to permessage-deflate sees which frames came compressed (RSV1).
#[tokio::test]
async fn send_frame_chooses_compression_per_message_and_send_json_with_its_serializer() {
    let server = Server::start("/ws", |req: Request| async move {
        WebSocketResponse::new().prepare(&req, |mut ws| async move {
            ws.send_frame(FrameType::Text, b"as is", false).await.unwrap();
            ws.send_frame(FrameType::Binary, b"squeezed", true).await.unwrap();
            ws.send_str("squeezed by default").await.unwrap();
            let upper = |v: &str| Ok::<_, std::io::Error>(format!("\"{}\"", v.to_uppercase()));
            ws.send_json_with("shout", upper).await.unwrap();
            let refused = |_: &str| Err::<String, _>(std::io::Error::other("no"));
            assert!(ws.send_json_with("x", refused).await.unwrap_err().is_json());
            let bad = ws.send_frame(FrameType::Text, b"\xff", false).await.unwrap_err();
            assert!(bad.is_protocol());
            let long = ws.send_frame(FrameType::Ping, &[0; 126], false).await.unwrap_err();
            assert!(long.is_protocol());
            // A ping is never compressed, whatever is asked.
            ws.send_frame(FrameType::Ping, b"beat", true).await.unwrap();
            let _ = ws.close(CloseCode::OK, "").await;
        })
    })
    .await;
    let mut raw = server.raw_ws("/ws", "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
    let mut frames = Vec::new();
    while let Some(frame) = within(raw.frame()).await {
        if frame.opcode == 8 {
            break;
        }
        frames.push((frame.opcode, frame.rsv1));
    }
    assert_eq!(frames, [(1, false), (2, true), (1, true), (1, true), (9, false)]);
}

/// `receive_str` on a binary message is a type error that says what came, not "closed",
/// and the connection goes on (aiohttp's `WSMessageTypeError`).
#[tokio::test]
async fn receive_str_on_a_binary_message_is_a_type_error() {
    let server = Server::start("/ws", echo).await;
    let mut ws = within(ClientSession::new().ws_connect(&server.ws_url("/ws"))).await.unwrap();
    ws.send_bytes(b"\x00\x01").await.unwrap();
    let err = within(ws.receive_str()).await.unwrap_err();
    assert!(err.is_message_type() && !err.is_closed(), "{err:?}");
    let why = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(why, "text asked for, binary of 2 bytes received");
    ws.send_str("still open").await.unwrap();
    assert_eq!(within(ws.receive_str()).await.unwrap(), "still open");
    assert!(within(ws.close(CloseCode::OK, "bye")).await.unwrap());
}
