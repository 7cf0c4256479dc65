//! Independent peers: Python's websockets and aiohttp clients against our server, and our
//! client against an aiohttp WebSocket server. They run from the project's `.venv`
//! (`cargo xtask peers`).

use std::process::Stdio;

use tandem_client::ClientSession;
use tandem_web::{HttpError, Request, Response};
use tandem_ws::{CloseCode, Message, WebSocketResponse, WsConnectExt};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use crate::support::{Server, within};

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");

async fn python(script: &str, arg: &str) -> String {
    let out = within(Command::new(PYTHON).args(["-c", script, arg]).kill_on_drop(true).output())
        .await
        .expect("the venv's python runs (cargo xtask peers)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Echoes with a prefix, so the peer sees our server did the work.
async fn echo(req: Request) -> Result<Response, HttpError> {
    WebSocketResponse::new().protocols(["chat"]).prepare(&req, |mut ws| async move {
        loop {
            let sent = match ws.receive().await {
                Message::Text(text) => ws.send_str(&format!("echo {text}")).await,
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
async fn python_websockets_client_against_our_server() {
    let server = Server::start("/ws", echo).await;
    // websockets offers permessage-deflate by default, so this goes compressed.
    let script = r#"
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], subprotocols=["chat"], max_size=None) as ws:
        print(ws.subprotocol, ws.response.headers.get("Sec-WebSocket-Extensions"))
        await ws.send("hello")
        print(await ws.recv())
        await ws.send(bytes(range(256)) * 1000)
        print(len(await ws.recv()))
        await ws.close(code=4001, reason="done")
        print(ws.close_code)
asyncio.run(main())
"#;
    let out = python(script, &server.ws_url("/ws")).await;
    assert_eq!(
        out,
        "chat permessage-deflate; client_max_window_bits\necho hello\n256000\n4001\n"
            .replace("; client_max_window_bits", ""),
        "{out}"
    );
}

#[tokio::test]
async fn python_aiohttp_client_against_our_server() {
    let server = Server::start("/ws", echo).await;
    let script = r#"
import asyncio, sys, aiohttp
async def main():
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(sys.argv[1], protocols=["chat"], compress=15) as ws:
            print(ws.protocol, ws.compress)
            await ws.send_str("hi")
            print((await ws.receive()).data)
            await ws.ping(b"p")
            await ws.send_bytes(b"\x00" * 100000)
            msg = await ws.receive()
            print(msg.type.name, len(msg.data))
            await ws.close()
            print(ws.close_code)
asyncio.run(main())
"#;
    let out = python(script, &server.ws_url("/ws")).await;
    assert_eq!(out, "chat 15\necho hi\nBINARY 100000\n1000\n", "{out}");
}

#[tokio::test]
async fn our_client_against_an_aiohttp_server() {
    let script = r#"
import asyncio
from aiohttp import web
async def ws(request):
    ws = web.WebSocketResponse(protocols=["chat"])
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str("aiohttp " + msg.data + " " + str(ws.compress))
        elif msg.type == web.WSMsgType.BINARY:
            await ws.send_bytes(msg.data[::-1])
    return ws
async def main():
    app = web.Application()
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"#;
    let mut child = Command::new(PYTHON)
        .args(["-c", script])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the venv's python runs (cargo xtask peers)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = within(lines.next_line()).await.unwrap().expect("aiohttp prints its port");
    let url = format!("ws://127.0.0.1:{port}/ws");
    let session = ClientSession::new();
    for window in [0, 15] {
        let mut ws =
            within(session.ws_connect(&url).protocols(["chat"]).compress(window)).await.unwrap();
        assert_eq!(ws.protocol(), Some("chat"));
        ws.send_str("hello").await.unwrap();
        let expected = format!("aiohttp hello {window}");
        assert_eq!(within(ws.receive_str()).await.unwrap(), expected);
        ws.send_bytes(b"abc").await.unwrap();
        assert_eq!(&within(ws.receive_bytes()).await.unwrap()[..], b"cba");
        assert!(within(ws.close(CloseCode::OK, "")).await.unwrap());
        assert_eq!(ws.close_code(), Some(CloseCode::OK));
    }
}
