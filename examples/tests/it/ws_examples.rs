//! The WebSocket examples: the chat room with three members, and the echo client talking
//! to it.

use tandem_http::{test::TestClient, ws::WsConnectExt};
use tokio::io::BufReader;

use crate::{ws_chat, ws_echo_client};

#[tokio::test]
async fn the_chat_room_relays_to_everyone_else() {
    let client = TestClient::new(ws_chat::app()).await.unwrap();
    let page = client.get("/").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("new WebSocket"), "{page}");
    let url = client.url("/ws").replacen("http", "ws", 1);
    let mut alice = client.session().ws_connect(&url).await.unwrap();
    let mut bob = client.session().ws_connect(&url).await.unwrap();
    // Alice hears Bob join (she was in the room first).
    assert_eq!(alice.receive_str().await.unwrap(), "user 1 joined");
    alice.send_str("hi bob").await.unwrap();
    assert_eq!(bob.receive_str().await.unwrap(), "user 0: hi bob");
    // The echo client joins, says one line, and leaves at the end of its input.
    let carol = client.session().ws_connect(&url).await.unwrap();
    let mut out = Vec::new();
    let input = BufReader::new(&b"hello all\n"[..]);
    ws_echo_client::talk(carol, input, &mut out).await.unwrap();
    for ws in [&mut alice, &mut bob] {
        assert_eq!(ws.receive_str().await.unwrap(), "user 2 joined");
        assert_eq!(ws.receive_str().await.unwrap(), "user 2: hello all");
        assert_eq!(ws.receive_str().await.unwrap(), "user 2 left");
    }
    drop(bob);
    assert_eq!(alice.receive_str().await.unwrap(), "user 1 left");
    assert!(alice.close(tandem_http::ws::CloseCode::OK, "").await.unwrap());
    assert!(client.close().await, "nothing was left in flight");
}
