//! A chat room over WebSockets, with the browser page that uses it: aiohttp's chat demo.
//!
//! ```text
//! cargo run --example ws_chat
//! # then open http://127.0.0.1:8080/ in two browser tabs
//! ```
//!
//! Each text a client sends goes to every other client. The room is application state: a
//! map from a connection number to that connection's [`WsSender`], which any task may use.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tandem_http::{
    web::{Application, HttpError, Request, Response, run_app},
    ws::{Message, WebSocketResponse, WsSender},
};

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>Tandem chat</title>
<ul id="log"></ul>
<form id="f"><input id="text" autocomplete="off" autofocus><button>Send</button></form>
<script>
  const log = document.getElementById("log");
  const say = (line) => { const li = document.createElement("li"); li.textContent = line; log.append(li); };
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onmessage = (e) => say(e.data);
  ws.onclose = () => say("(disconnected)");
  document.getElementById("f").onsubmit = (e) => {
    e.preventDefault();
    const input = document.getElementById("text");
    ws.send(input.value);
    say("you: " + input.value);
    input.value = "";
  };
</script>
"#;

/// Everyone connected, by connection number.
#[derive(Default)]
pub(crate) struct Room {
    next_id: AtomicU64,
    members: Mutex<HashMap<u64, WsSender>>,
}

impl Room {
    /// Sends `text` to every member but `from`.
    async fn broadcast(&self, from: u64, text: &str) {
        let others: Vec<WsSender> = {
            let members = self.members.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            members.iter().filter(|(id, _)| **id != from).map(|(_, s)| s.clone()).collect()
        };
        for sender in others {
            // A member that just left fails to receive; the room forgets it on its own.
            let _ = sender.send_str(text).await;
        }
    }

    fn members(&self) -> std::sync::MutexGuard<'_, HashMap<u64, WsSender>> {
        self.members.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn index(_req: Request) -> Response {
    Response::html(PAGE)
}

async fn chat(req: Request) -> Result<Response, HttpError> {
    let room = req.state::<Room>().ok_or_else(HttpError::internal_server_error)?;
    // Browsers drop connections silently; the heartbeat notices.
    WebSocketResponse::new().heartbeat(Duration::from_secs(30)).prepare(
        &req,
        move |mut ws| async move {
            let id = room.next_id.fetch_add(1, Ordering::Relaxed);
            room.broadcast(id, &format!("user {id} joined")).await;
            room.members().insert(id, ws.sender());
            while let Message::Text(text) = ws.receive().await {
                room.broadcast(id, &format!("user {id}: {text}")).await;
            }
            room.members().remove(&id);
            room.broadcast(id, &format!("user {id} left")).await;
        },
    )
}

/// The application, apart from serving it, so `tests/it` can run it.
pub(crate) fn app() -> Application {
    let mut app = Application::new();
    app.set_state(Room::default());
    app.add_get("/", index);
    app.add_get("/ws", chat);
    app
}

fn main() -> Result<(), tandem_http::web::Error> {
    run_app(app(), "127.0.0.1", 8080)
}
