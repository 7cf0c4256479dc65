//! Checklist E of `docs/security.md`: frames and floods from a hostile client, answered with
//! the right close code and bounded memory, and a hostile server's floods against our client.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tandem_client::ClientSession;
use tandem_web::Request;
use tandem_ws::{Message, WebSocketResponse, WsConnectExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    Frame, OK_101, Server, const_str, fake_server_then, masked_frame, parse_frame, report,
    server_frame, upgrade_request, within,
};

/// What the handler's `receive` returned, for the test to check.
type Seen = Arc<Mutex<Vec<String>>>;

async fn server(max_msg_size: usize) -> (Server, Seen) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let server = Server::start("/ws", move |req: Request| {
        let log = Arc::clone(&log);
        async move {
            WebSocketResponse::new().max_msg_size(max_msg_size).prepare(
                &req,
                move |mut ws| async move {
                    loop {
                        let msg = ws.receive().await;
                        let end = msg.is_close();
                        log.lock().unwrap().push(format!("{msg:?}"));
                        if end {
                            break;
                        }
                    }
                },
            )
        }
    })
    .await;
    (server, seen)
}

/// Sends `frames` after the handshake (with `extra` handshake lines) and returns the close
/// frame the server answered with, checking the server then closed the connection.
async fn close_answer(server: &Server, extra: &str, frames: &[u8]) -> Frame {
    let mut raw = server.raw_ws("/ws", extra).await;
    // The server may close before reading everything: a failed write is fine.
    let _ = raw.stream.write_all(frames).await;
    let close = within(raw.frame()).await.expect("a close frame");
    assert_eq!(close.opcode, 8, "{close:?}");
    assert_eq!(within(raw.frame()).await, None, "then the connection closes");
    close
}

#[tokio::test]
async fn a_declared_length_of_2_pow_63_minus_1_is_1009_without_allocating() {
    let (server, seen) = server(tandem_ws::DEFAULT_MAX_MSG_SIZE).await;
    let mut head = vec![0x82, 0xFF];
    head.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(close_answer(&server, "", &head).await.close_code(), Some(1009));
    // A length with the top bit set is not a length at all.
    let mut head = vec![0x82, 0xFF];
    head.extend_from_slice(&(1u64 << 63).to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(close_answer(&server, "", &head).await.close_code(), Some(1002));
    server.stop().await;
    assert!(seen.lock().unwrap().iter().all(|m| m.starts_with("Error")), "{seen:?}");
}

#[tokio::test]
async fn a_frame_over_max_msg_size_is_refused_from_its_head() {
    let (server, seen) = server(1000).await;
    // Only the head is sent: the refusal cannot have waited for the payload.
    let frame = masked_frame(0x82, &[0; 1001]);
    assert_eq!(close_answer(&server, "", &frame[..8]).await.close_code(), Some(1009));
    server.stop().await;
    assert!(seen.lock().unwrap()[0].contains("TooBig"), "{seen:?}");
}

#[tokio::test]
async fn a_flood_of_one_byte_continuations_is_capped() {
    let (server, _) = server(10_000).await;
    let mut frames = masked_frame(0x02, b"x");
    for _ in 0..100_000 {
        frames.extend_from_slice(&masked_frame(0x00, b"x"));
    }
    assert_eq!(close_answer(&server, "", &frames).await.close_code(), Some(1009));
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::Compress::new(flate2::Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 100 + 1024);
    z.compress_vec(data, &mut out, flate2::FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]));
    out.truncate(out.len() - 4);
    out
}

#[tokio::test]
async fn a_deflate_bomb_is_1009_and_rsv1_without_deflate_is_1002() {
    let (server, seen) = server(1 << 20).await;
    let bomb = deflate(&vec![0; 8 << 20]);
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let close = close_answer(&server, offer, &masked_frame(0xC2, &bomb)).await;
    assert_eq!(close.close_code(), Some(1009));
    // The same frame on a connection that did not agree to compression.
    let close = close_answer(&server, "", &masked_frame(0xC2, &bomb)).await;
    assert_eq!(close.close_code(), Some(1002));
    // And compressed text that inflates fine is a message.
    let mut raw = server.raw_ws("/ws", offer).await;
    raw.send_frame(0xC1, &deflate(b"squeezed")).await;
    raw.send_frame(0x88, &1000u16.to_be_bytes()).await;
    assert_eq!(within(raw.frame()).await.unwrap().close_code(), Some(1000));
    server.stop().await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen[2], r#"Text("squeezed")"#, "{seen:?}");
}

#[tokio::test]
async fn broken_frames_get_their_close_codes() {
    let (server, _) = server(1 << 20).await;
    let cases: [(Vec<u8>, u16); 7] = [
        (masked_frame(0x81, b"\xff\xfe"), 1007), // text that is not UTF-8
        (masked_frame(0x88, &[0x03]), 1002),     // one-byte close payload
        (masked_frame(0x88, &999u16.to_be_bytes()), 1002), // a code no one may send
        (masked_frame(0x88, &1005u16.to_be_bytes()), 1002),
        (masked_frame(0x83, b""), 1002),      // reserved opcode
        (masked_frame(0x09, b""), 1002),      // fragmented ping
        (vec![0x81, 0x02, b'h', b'i'], 1002), // unmasked client frame
    ];
    for (frame, code) in cases {
        assert_eq!(close_answer(&server, "", &frame).await.close_code(), Some(code), "{frame:?}");
    }
}

/// A handshake head dribbled a byte at a time is refused at the head limit: the server
/// never reads far past it (RUSTSEC-2023-0065).
#[tokio::test]
async fn a_dribbled_header_flood_is_refused_at_the_head_limit() {
    let (server, _) = server(1 << 20).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let head = upgrade_request("/ws", "X-Flood: ");
    let head = head.trim_end_matches("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut sent = head.len();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        while write.write_all(b"a").await.is_ok() {
            sent += 1;
            if sent > 1 << 20 {
                break;
            }
        }
        sent
    });
    let mut answer = Vec::new();
    within(read.read_to_end(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let sent = within(writer).await.unwrap();
    assert!(sent < 1 << 20, "the server stopped reading long before 1 MiB: {sent}");
}

/// A client that stops reading while the server sends: the sends block (memory stays
/// bounded by the socket buffers and one message), and the heartbeat gives the
/// connection up, which also ends the blocked send.
#[tokio::test]
async fn a_peer_that_stops_reading_is_dropped_by_the_heartbeat() {
    let (report, rx) = report();
    let server = Server::start("/ws", move |req: Request| {
        let report = report.clone();
        async move {
            WebSocketResponse::new().heartbeat(Duration::from_millis(100)).prepare(
                &req,
                move |mut ws| async move {
                    let sender = ws.sender();
                    let flood = tokio::spawn(async move {
                        let chunk = vec![b'x'; 64 << 10];
                        let mut sent = 0usize;
                        loop {
                            if let Err(e) = sender.send_bytes(&chunk).await {
                                // The error and its causes: why the connection went is the
                                // cause's to say.
                                let chain = std::iter::successors(
                                    Some(&e as &dyn std::error::Error),
                                    |e| e.source(),
                                );
                                let chain: Vec<String> = chain.map(ToString::to_string).collect();
                                return (sent, chain.join(": "));
                            }
                            sent += 1;
                        }
                    });
                    let msg = ws.receive().await;
                    let (sent, error) = flood.await.unwrap();
                    report.send((format!("{msg:?}"), sent, error));
                },
            )
        }
    })
    .await;
    let _raw = server.raw_ws("/ws", "").await;
    let (msg, sent, error) = within(rx).await.unwrap();
    assert!(msg.contains("Timeout"), "{msg}");
    assert!(sent < 1000, "sends blocked instead of buffering: {sent} x 64 KiB");
    assert!(error.contains("closed") || error.contains("abort"), "{error}");
}

#[tokio::test]
async fn handler_sees_reserved_bits_as_an_error() {
    let (server, seen) = server(1 << 20).await;
    let close = close_answer(&server, "", &masked_frame(0xA1, b"x")).await;
    assert_eq!(close.close_code(), Some(1002));
    server.stop().await;
    assert!(seen.lock().unwrap()[0].starts_with("Error"), "{seen:?}");
}

/// Floods the server with masked empty pings, as fast as the socket takes them, and drains
/// what it answers, until the server closes the connection; `true` if it did within `limit`.
async fn flood_pings_until_closed(stream: tokio::net::TcpStream, limit: Duration) -> bool {
    let (mut read, mut write) = stream.into_split();
    let pings: Vec<u8> = std::iter::repeat_n(masked_frame(0x89, b""), 10_000).flatten().collect();
    let flood = tokio::spawn(async move { while write.write_all(&pings).await.is_ok() {} });
    let drained = tokio::time::timeout(limit, async move {
        let mut sink = vec![0; 64 << 10];
        while read.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    })
    .await;
    flood.abort();
    drained.is_ok()
}

/// What the handler of `server`'s `/ws` reported on `rx` while a peer flooded it with pings
/// (within 3 s, or the test fails: the handler's call did not return while the flood went
/// on), and whether the flood then saw the connection close.
async fn reported_under_a_ping_flood(
    server: &Server,
    rx: tokio::sync::oneshot::Receiver<String>,
) -> (String, bool) {
    let raw = server.raw_ws("/ws", "").await;
    let flood = tokio::spawn(flood_pings_until_closed(raw.stream, Duration::from_secs(4)));
    let reported = tokio::time::timeout(Duration::from_secs(3), rx)
        .await
        .expect("the handler's call returned while the flood went on")
        .unwrap();
    (reported, flood.await.unwrap())
}

/// A ping flood, on a connection whose 101 is not read yet, from a peer that reads every
/// frame and answers the server's close with its own once it sees it (after the ping
/// frames already sent, whole): `Ok` with the code of that close once the server closes the
/// connection, `None` if none came; `Err` if the server has not closed within `limit`.
async fn flood_pings_answering_close(
    stream: tokio::net::TcpStream,
    limit: Duration,
) -> Result<Option<u16>, tokio::time::error::Elapsed> {
    use std::sync::atomic::{AtomicBool, Ordering};

    let (mut read, mut write) = stream.into_split();
    let closing = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&closing);
    let pings: Vec<u8> = std::iter::repeat_n(masked_frame(0x89, b""), 10_000).flatten().collect();
    let flood = tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            if write.write_all(&pings).await.is_err() {
                return;
            }
        }
        let _ = write.write_all(&masked_frame(0x88, &1001u16.to_be_bytes())).await;
    });
    let drained = tokio::time::timeout(limit, async move {
        let (mut buf, mut chunk) = (Vec::new(), vec![0; 64 << 10]);
        let (mut past_head, mut close) = (false, None);
        while let Ok(n @ 1..) = read.read(&mut chunk).await {
            buf.extend_from_slice(&chunk[..n]);
            let mut used = 0;
            if !past_head {
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                (used, past_head) = (end + 4, true);
            }
            while let Some((frame, len)) = parse_frame(&buf[used..]) {
                used += len;
                if close.is_none() && frame.opcode == 8 {
                    close = frame.close_code();
                    closing.store(true, Ordering::SeqCst);
                }
            }
            buf.drain(..used);
        }
        close
    })
    .await;
    flood.abort();
    drained
}

/// A peer that keeps the socket readable (a ping flood, every ping answered) never lets a
/// `receive` see a message, so the receive timeout must still end it: the reader's timers
/// are not starved by bytes that are always ready.
#[tokio::test]
async fn a_ping_flood_does_not_hold_off_the_receive_timeout() {
    let (report, rx) = report();
    let server = Server::start("/ws", move |req: Request| {
        let report = report.clone();
        async move {
            WebSocketResponse::new().receive_timeout(Duration::from_millis(200)).prepare(
                &req,
                move |mut ws| async move {
                    let msg = ws.receive().await;
                    report.send(format!("{msg:?}"));
                },
            )
        }
    })
    .await;
    let (msg, closed) = reported_under_a_ping_flood(&server, rx).await;
    assert!(msg.contains("Timeout") || msg.contains("timeout"), "{msg}");
    assert!(closed, "the connection closed once the handler returned");
}

/// The closing handshake against a peer that never sends its close frame but keeps
/// sending others: the close timeout still ends it and the connection is dropped.
#[tokio::test]
async fn a_flood_does_not_hold_off_the_close_timeout() {
    let (report, rx) = report();
    let server = Server::start("/ws", move |req: Request| {
        let report = report.clone();
        async move {
            WebSocketResponse::new().close_timeout(Duration::from_millis(200)).prepare(
                &req,
                move |mut ws| async move {
                    let closed = ws.close(tandem_ws::CloseCode::OK, "bye").await;
                    report.send(format!("{closed:?}"));
                },
            )
        }
    })
    .await;
    let (closed, dropped) = reported_under_a_ping_flood(&server, rx).await;
    assert_eq!(closed, "Ok(true)");
    assert!(dropped, "the server dropped the connection");
}

/// A ping flood from a peer that never reads the pongs (hostile-inputs E63): each pong waits
/// for room in the socket and the reader reads nothing meanwhile, so the flood waits in the
/// peer's socket rather than in a queue of pongs, and the server's send timeout ends the
/// connection without a heartbeat.
#[tokio::test]
async fn a_ping_flood_whose_pongs_are_never_read_ends_at_the_send_timeout() {
    use tandem_web::{AppRunner, Application, ServerConfig};

    let (report, rx) = report();
    let mut app = Application::new();
    app.add_get("/ws", move |req: Request| {
        let report = report.clone();
        async move {
            WebSocketResponse::new().prepare(&req, move |mut ws| async move {
                let msg = ws.receive().await;
                report.send(format!("{msg:?}"));
            })
        }
    });
    let config = ServerConfig::default().with_send_timeout(Duration::from_millis(200));
    let mut runner = AppRunner::with_config(app, config).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tcp_site("127.0.0.1", 0).await.unwrap();
    let flood = flood_unread_pings(addr).await;
    let msg = within(rx).await.unwrap();
    assert!(msg.contains("Error") && msg.contains("TimedOut"), "{msg}");
    flood.abort();
    within(runner.cleanup()).await;
}

/// Connects to `addr`, asks for `/ws`, and floods pings without reading a byte, not even
/// the 101, until the server closes the connection.
async fn flood_unread_pings(addr: std::net::SocketAddr) -> tokio::task::JoinHandle<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(upgrade_request("/ws", "").as_bytes()).await.unwrap();
    tokio::spawn(flood_pings_never_reading(stream, masked_frame))
}

/// Pings of the largest payload, so their pongs fill the socket's buffers soon, written with
/// `frame` (masked from a client, not from a server) until the connection fails.
async fn flood_pings_never_reading(
    mut stream: tokio::net::TcpStream,
    frame: fn(u8, &[u8]) -> Vec<u8>,
) {
    let pings: Vec<u8> = std::iter::repeat_n(frame(0x89, &[b'p'; 125]), 1000).flatten().collect();
    while stream.write_all(&pings).await.is_ok() {}
}

/// The same flood against a heartbeat, with the default send timeout (60 s): the pong the
/// reader owes waits for room in the socket, and the heartbeat still gives the peer up (the
/// reader wrote its pong with no deadline, so only the send timeout ended it).
#[tokio::test]
async fn a_ping_flood_whose_pongs_are_never_read_ends_at_the_heartbeat() {
    let (report, rx) = report();
    let server = Server::start("/ws", move |req: Request| {
        let report = report.clone();
        async move {
            WebSocketResponse::new().heartbeat(Duration::from_millis(100)).prepare(
                &req,
                move |mut ws| async move {
                    let msg = ws.receive().await;
                    report.send(msg);
                },
            )
        }
    })
    .await;
    let flood = flood_unread_pings(server.addr).await;
    let msg = tokio::time::timeout(Duration::from_secs(3), rx)
        .await
        .expect("the heartbeat ended the handler's receive")
        .unwrap();
    assert!(matches!(&msg, Message::Error(e) if e.is_timeout()), "{msg:?}");
    flood.abort();
}

/// Our client against a server that floods pings and never reads the pongs: the heartbeat
/// ends the client's receive as it ends the server's, and the client has no send timeout
/// behind it (before, its receive never returned).
#[tokio::test]
async fn our_clients_heartbeat_ends_a_ping_flood_it_cannot_answer() {
    let response = const_str(OK_101, "\r\n");
    let url =
        fake_server_then(response, |stream| flood_pings_never_reading(stream, server_frame)).await;
    let mut ws =
        ClientSession::new().ws_connect(&url).heartbeat(Duration::from_millis(100)).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(3), ws.receive())
        .await
        .expect("the heartbeat ended the client's receive");
    assert!(matches!(&msg, Message::Error(e) if e.is_timeout()), "{msg:?}");
    assert!(ws.is_closed());
}

/// `close` from our client to a server that reads nothing, its socket full: the close frame
/// waits at most the close timeout, then the connection is given up (before, `close` waited
/// for room in the socket forever).
#[tokio::test]
async fn our_clients_close_is_bounded_when_the_server_reads_nothing() {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let url = fake_server_then(const_str(OK_101, "\r\n"), |stream| async move {
        let _ = released.await;
        drop(stream);
    })
    .await;
    let mut ws = ClientSession::new()
        .ws_connect(&url)
        .close_timeout(Duration::from_millis(200))
        .await
        .unwrap();
    // More than loopback's buffers hold: the send stops at a full socket, holding the
    // writer. On this test's one thread, the yield lets it run until it does.
    let sender = ws.sender();
    let stuck = tokio::spawn(async move { sender.send_bytes(&vec![0; 64 << 20]).await });
    tokio::task::yield_now().await;
    assert!(!stuck.is_finished(), "64 MiB went into a socket nobody reads");
    let started = std::time::Instant::now();
    assert!(within(ws.close(tandem_ws::CloseCode::OK, "")).await.unwrap());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(ws.is_closed());
    assert_eq!(ws.close_code(), Some(tandem_ws::CloseCode::ABNORMAL_CLOSURE));
    // Giving up aborted the stuck send too.
    assert!(within(stuck).await.unwrap().is_err());
    drop(release);
}

/// The server's graceful shutdown against a WebSocket whose peer floods it and never
/// closes: the reader sees the shutdown between reads of the flood, as it does when the
/// socket is quiet, so the peer gets its 1001 close and the handler ends, before the
/// shutdown timeout would have cut the connection (with no close frame).
#[tokio::test]
async fn a_flooding_websocket_does_not_hold_up_the_servers_shutdown() {
    use tandem_web::{AppRunner, Application, ServerConfig};

    let (report, rx) = report();
    let mut app = Application::new();
    app.add_get("/ws", move |req: Request| {
        let report = report.clone();
        async move {
            WebSocketResponse::new().prepare(&req, move |mut ws| async move {
                let first = ws.receive().await;
                report.send(format!("{first:?}"));
                // Until the closing handshake ends, so that the close is not cut short.
                while !matches!(
                    ws.receive().await,
                    Message::Close(..) | Message::Closed | Message::Error(_)
                ) {}
            })
        }
    });
    let config = ServerConfig::default().with_shutdown_timeout(Duration::from_millis(300));
    let mut runner = AppRunner::with_config(app, config).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tcp_site("127.0.0.1", 0).await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut hello = upgrade_request("/ws", "").into_bytes();
    hello.extend(masked_frame(0x81, b"go"));
    stream.write_all(&hello).await.unwrap();
    // The 101 is drained with the pongs.
    let flood = tokio::spawn(flood_pings_answering_close(stream, Duration::from_secs(5)));
    assert!(within(rx).await.unwrap().contains("go"), "the handler is reading");
    let started = std::time::Instant::now();
    within(runner.cleanup()).await;
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let close = flood.await.unwrap().expect("the connection was dropped");
    assert_eq!(close, Some(1001), "Going Away, not the shutdown timeout's cut");
}

/// A send cancelled mid-frame (a handler's timeout around a send to a peer that reads
/// slowly) leaves half a frame on the wire. Nothing may follow it: the peer would read the
/// next frame's bytes as the rest of that payload, and bytes of a later message as frame
/// heads, frames injected by whoever chose that message. The next send is refused instead,
/// and the write side shut, so the peer sees the frame cut short and the end.
#[tokio::test]
async fn a_send_cancelled_mid_frame_is_never_followed_by_another_frame() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = Server::start("/ws", move |req: Request| {
        let tx = tx.clone();
        async move {
            WebSocketResponse::new().prepare(&req, move |ws| async move {
                let big = vec![0; 64 << 20];
                let send = ws.send_bytes(&big);
                let cut = tokio::time::timeout(Duration::from_millis(200), send).await.is_err();
                let _ = tx.send(format!("cut: {cut}"));
                let next = ws.send_str("injected").await;
                let _ = tx.send(format!("{next:?}"));
            })
        }
    })
    .await;
    let mut raw = server.raw_ws("/ws", "").await;
    // The peer reads nothing until the send is cut, then everything until the end.
    assert_eq!(within(rx.recv()).await.unwrap(), "cut: true", "64 MiB fit in the sockets");
    let mut rest = Vec::new();
    within(raw.stream.read_to_end(&mut rest)).await.unwrap();
    assert!(!rest.windows(8).any(|w| w == b"injected"), "a frame followed the cut one");
    let next = within(rx.recv()).await.unwrap();
    assert!(next.starts_with("Err"), "{next}");
}
