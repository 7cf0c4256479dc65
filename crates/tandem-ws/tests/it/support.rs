//! A Tandem server on a free loopback port, and a raw WebSocket client that writes frames by
//! hand, so tests control every byte.
//!
//! Timeouts here are upper bounds that turn a hang into a failure; no test sleeps to
//! synchronise.

use std::{
    future::IntoFuture,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tandem_http::test::TestClient;
use tandem_web::{Application, Handler};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
};

/// The longest any single wait may take before it counts as a hang.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// What a handler reports back to its test, once: cloned into the route's handler, sent from
/// inside the WebSocket callback.
pub(crate) struct Report<T>(Arc<Mutex<Option<oneshot::Sender<T>>>>);

impl<T> Clone for Report<T> {
    fn clone(&self) -> Self {
        Report(Arc::clone(&self.0))
    }
}

impl<T> Report<T> {
    pub(crate) fn send(&self, value: T) {
        if let Some(tx) = self.0.lock().unwrap().take() {
            let _ = tx.send(value);
        }
    }
}

pub(crate) fn report<T>() -> (Report<T>, oneshot::Receiver<T>) {
    let (tx, rx) = oneshot::channel();
    (Report(Arc::new(Mutex::new(Some(tx)))), rx)
}

/// A handshake request for `path`, with a valid key; `extra` lines end in `\r\n`.
pub(crate) fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

pub(crate) async fn within<F: IntoFuture>(fut: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, fut.into_future()).await.expect("timed out: a peer hung")
}

/// A running server with one route: `tandem_http::test::TestClient`, the one harness for an
/// app on a loopback port, with the raw-socket helpers these tests need beside it.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    client: TestClient,
}

impl Server {
    pub(crate) async fn start<H: Handler>(path: &str, handler: H) -> Server {
        let mut app = Application::new();
        app.add_get(path, handler);
        Server::start_app(app).await
    }

    pub(crate) async fn start_app(app: Application) -> Server {
        let client = within(TestClient::new(app)).await.expect("the app starts");
        Server { addr: client.addr().expect("a TCP server"), client }
    }

    pub(crate) fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Graceful shutdown; returns whether everything in flight finished.
    pub(crate) async fn stop(self) -> bool {
        within(self.client.close()).await
    }

    /// A raw connection that has completed the handshake for `path`.
    pub(crate) async fn raw_ws(&self, path: &str, extra: &str) -> RawWs {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let mut raw = RawWs { stream, buf: Vec::new(), head: String::new() };
        raw.send(upgrade_request(path, extra).as_bytes()).await;
        raw.head = raw.read_head().await;
        assert!(raw.head.starts_with("HTTP/1.1 101"), "{}", raw.head);
        raw
    }

    /// Sends `request` on a new connection and returns the response head and whatever
    /// followed until the server closed.
    pub(crate) async fn raw_exchange(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = Vec::new();
        within(stream.read_to_end(&mut out)).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// One frame as read off the wire (server frames are unmasked).
#[derive(Debug, PartialEq)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    pub(crate) rsv1: bool,
    pub(crate) opcode: u8,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame.
    pub(crate) fn close_code(&self) -> Option<u16> {
        (self.opcode == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A client speaking raw frames.
pub(crate) struct RawWs {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
    /// The server's 101 response head.
    pub(crate) head: String,
}

impl RawWs {
    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self) -> bool {
        self.buf.reserve(8192);
        within(self.stream.read_buf(&mut self.buf)).await.unwrap_or(0) > 0
    }

    async fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8(head).unwrap();
            }
            assert!(self.fill().await, "closed before the head ended");
        }
    }

    /// The next frame, or `None` once the server closed the connection.
    pub(crate) async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// A masked frame with the given first byte.
    pub(crate) async fn send_frame(&mut self, first: u8, payload: &[u8]) {
        self.send(&masked_frame(first, payload)).await;
    }
}

/// A client frame: `first` (FIN, RSV, opcode), masked with a fixed key.
pub(crate) fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    frame_bytes(first, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
}

/// A server frame: `first` (FIN, RSV, opcode), unmasked.
pub(crate) fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    frame_bytes(first, payload, None)
}

fn frame_bytes(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 0x7E);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 0x7F);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A 101 with the right accept key (see [`fake_server_then`]), its head not yet ended.
pub(crate) const OK_101: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n";

/// `head` then `tail`, for a [`fake_server_then`] response.
pub(crate) fn const_str(head: &str, tail: &str) -> &'static str {
    Box::leak(format!("{head}{tail}").into_boxed_str())
}

/// A one-shot HTTP server for the client's tests: it answers the first request with
/// `response`, where `{accept}` becomes the right accept key for the request's
/// `Sec-WebSocket-Key`, then hands the connection to `then`.
pub(crate) async fn fake_server_then<F, Fut>(response: &'static str, then: F) -> String
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 4096];
        let mut head = String::new();
        while !head.contains("\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            head.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let key = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("sec-websocket-key: ")
                    .or_else(|| l.strip_prefix("Sec-WebSocket-Key: "))
            })
            .unwrap()
            .trim()
            .to_owned();
        let accept = {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
            ctx.update(key.as_bytes());
            ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ctx.finish())
        };
        let _ = stream.write_all(response.replace("{accept}", &accept).as_bytes()).await;
        then(stream).await;
    });
    format!("ws://{addr}/")
}

/// The frame at the start of `buf` and its length on the wire, once it is all there.
pub(crate) fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let [b0, b1, ..] = *buf else { return None };
    let (len, at) = match b1 & 0x7F {
        126 => (u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize, 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((
        Frame { fin: b0 & 0x80 != 0, rsv1: b0 & 0x40 != 0, opcode: b0 & 0x0F, payload },
        at + len,
    ))
}
