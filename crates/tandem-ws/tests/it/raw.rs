//! A `WebSocket` over a connection whose handshake was done elsewhere, and `WsSender` as a
//! `futures::Sink`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt, stream};
use tandem_ws::{CloseCode, Message, Role, WebSocket, WebSocketConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut).await.expect("in time")
}

#[tokio::test]
async fn raw_sockets_talk_both_ways_through_the_sink() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let mut client = WebSocket::from_raw_socket(a, Role::Client, WebSocketConfig::new());
    let config = WebSocketConfig::new().protocol("chat").max_msg_size(1024);
    let mut server = WebSocket::from_raw_socket(b, Role::Server, config);
    assert_eq!(server.protocol(), Some("chat"));
    assert!(!server.is_compressed());

    // The client sends through the Sink: one message, then a whole stream of them.
    let mut sink = client.sender();
    within(sink.send(Message::Text("hello".into()))).await.unwrap();
    let mut more =
        stream::iter([Ok(Message::Binary(vec![1, 2, 3].into())), Ok(Message::Text("last".into()))]);
    within(sink.send_all(&mut more)).await.unwrap();
    assert_eq!(within(server.receive_str()).await.unwrap(), "hello");
    assert_eq!(&within(server.receive_bytes()).await.unwrap()[..], [1, 2, 3]);
    assert_eq!(within(server.receive_str()).await.unwrap(), "last");

    // The server answers; the client reads it as a Stream.
    server.send_str("welcome").await.unwrap();
    assert_eq!(within(client.next()).await.unwrap().as_text(), Some("welcome"));

    // Over max_msg_size: the server closes with 1009.
    within(sink.send(Message::Binary(vec![0; 2048].into()))).await.unwrap();
    assert!(matches!(within(server.receive()).await, Message::Error(_)));
    assert_eq!(server.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
}

#[tokio::test]
async fn closing_the_sink_sends_a_close_frame() {
    let (a, b) = tokio::io::duplex(4096);
    let client = WebSocket::from_raw_socket(a, Role::Client, WebSocketConfig::new());
    let mut server = WebSocket::from_raw_socket(b, Role::Server, WebSocketConfig::new());
    let mut sink = client.sender();
    within(SinkExt::close(&mut sink)).await.unwrap();
    match within(server.receive()).await {
        Message::Close(code, _) => assert_eq!(code, CloseCode::OK),
        other => panic!("expected a close, got {other:?}"),
    }
    // A state is not a frame: the sink refuses it.
    assert!(within(sink.send(Message::Closed)).await.is_err());
}

#[tokio::test]
async fn a_raw_server_reads_what_a_client_masked() {
    // The peer is bytes written by hand: a masked text frame "hi", as any client sends it.
    let (mut peer, ours) = tokio::io::duplex(4096);
    let mut server = WebSocket::from_raw_socket(ours, Role::Server, WebSocketConfig::new());
    let mask = [1u8, 2, 3, 4];
    let payload: Vec<u8> = b"hi".iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m).collect();
    let mut frame = vec![0x81, 0x80 | 2];
    frame.extend_from_slice(&mask);
    frame.extend_from_slice(&payload);
    peer.write_all(&frame).await.unwrap();
    assert_eq!(within(server.receive_str()).await.unwrap(), "hi");
    // The server's own frames are unmasked.
    server.send_str("ok").await.unwrap();
    let mut head = [0u8; 4];
    within(peer.read_exact(&mut head)).await.unwrap();
    assert_eq!(head, [0x81, 2, b'o', b'k']);
}

/// The heartbeat times each ping's round trip, counts the pongs that did not come, and
/// closes only after `heartbeat_max_missed` in a row (aiohttp closes at the first).
#[tokio::test]
async fn the_heartbeat_reports_round_trips_and_tolerates_missed_pongs_as_told() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let every = Duration::from_millis(100);
    let config = WebSocketConfig::new().heartbeat(every).heartbeat_max_missed(3);
    let mut client = WebSocket::from_raw_socket(a, Role::Client, config);
    // The other side answers the first two pings by hand, then no more.
    let mut server =
        WebSocket::from_raw_socket(b, Role::Server, WebSocketConfig::new().autoping(false));
    let peer = tokio::spawn(async move {
        let mut answered = 0;
        while let Message::Ping(payload) = server.receive().await {
            if answered < 2 {
                server.pong(&payload).await.unwrap();
                answered += 1;
            }
        }
    });
    assert_eq!(client.heartbeat_stats(), tandem_ws::HeartbeatStats::default());
    let lost = within(client.receive()).await;
    assert!(matches!(&lost, Message::Error(e) if e.is_timeout()), "{lost:?}");
    let stats = client.heartbeat_stats();
    assert!(stats.missed_pongs >= 3 && stats.pings >= 5, "{stats:?}");
    let rtt = stats.round_trip.expect("the answered pings were timed");
    assert!(rtt < every / 2, "{rtt:?}");
    drop(client);
    within(peer).await.unwrap();
}
