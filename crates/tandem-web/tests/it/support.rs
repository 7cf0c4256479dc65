//! Test support: a server on 127.0.0.1 with a free port, and a raw-bytes client that parses
//! responses by hand, so the tests see exactly what went over the wire.
//!
//! Timeouts here are upper bounds that turn a hang into a failure; no test sleeps to
//! synchronise.

#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use tandem_web::{AppRunner, Application, ServerConfig};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The longest any single wait in a test may take before it counts as a hang.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// A running server.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    runner: AppRunner,
}

impl Server {
    /// Serves `app` with the default configuration.
    pub(crate) async fn start(app: Application) -> Server {
        Server::start_with(app, ServerConfig::default()).await
    }

    /// Serves `app` with `config`.
    pub(crate) async fn start_with(app: Application, config: ServerConfig) -> Server {
        // Before any server can reach the access-log callsite (see `install_access_log`).
        crate::running::install_access_log();
        let mut runner = AppRunner::with_config(app, config).expect("the app freezes");
        runner.setup().await.expect("startup signals succeed");
        let addr = runner.tcp_site("127.0.0.1", 0).await.expect("bind 127.0.0.1:0");
        Server { addr, runner }
    }

    /// `http://127.0.0.1:port{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Shuts down gracefully; returns whether in-flight requests all finished.
    pub(crate) async fn stop(self) -> bool {
        within(self.runner.cleanup()).await
    }

    /// Opens a raw connection.
    pub(crate) async fn connect(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Sends `bytes` on a new connection and returns everything the server wrote until it
    /// closed.
    pub(crate) async fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut client = self.connect().await;
        client.send(bytes).await;
        client.read_to_close().await
    }

    /// Sends one request on a new connection and parses the response.
    pub(crate) async fn request(&self, bytes: &[u8]) -> Resp {
        let mut client = self.connect().await;
        client.send(bytes).await;
        client.response().await
    }

    /// `GET path` on a new connection.
    pub(crate) async fn get(&self, path: &str) -> Resp {
        self.request(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await
    }
}

/// Awaits `fut`, failing the test if it takes longer than [`TIMEOUT`].
pub(crate) async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, fut).await.expect("timed out: the server hung")
}

/// A raw client connection with its unread bytes.
pub(crate) struct Client {
    pub(crate) stream: TcpStream,
    pub(crate) buf: Vec<u8>,
    eof: bool,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Client {
        let stream = within(TcpStream::connect(addr)).await.expect("connect");
        Client { stream, buf: Vec::new(), eof: false }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        within(self.stream.write_all(bytes)).await.expect("write");
    }

    /// Reads more bytes; returns false at EOF (a reset counts as EOF).
    async fn fill(&mut self) -> bool {
        self.buf.reserve(16 * 1024);
        match within(self.stream.read_buf(&mut self.buf)).await {
            Ok(0) | Err(_) => {
                self.eof = true;
                false
            }
            Ok(_) => true,
        }
    }

    /// The next whole response; `head` says it answers a HEAD (so it has no body).
    pub(crate) async fn response_to(&mut self, head: bool) -> Resp {
        loop {
            if let Some((resp, used)) = parse_response(&self.buf, head, self.eof) {
                self.buf.drain(..used);
                return resp;
            }
            assert!(
                !self.eof,
                "connection closed before a whole response; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.fill().await;
        }
    }

    /// The next whole response to a request other than HEAD.
    pub(crate) async fn response(&mut self) -> Resp {
        self.response_to(false).await
    }

    /// Everything until the server closes, including what is already buffered.
    pub(crate) async fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.buf)
    }

    /// Whether the server closes the connection without sending anything more.
    pub(crate) async fn closes_quietly(&mut self) -> bool {
        self.read_to_close().await.is_empty()
    }
}

/// A parsed response.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) version: String,
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// Whether the body was chunked on the wire.
    pub(crate) chunked: bool,
}

impl Resp {
    /// The first value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub(crate) fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// Parses one response from the front of `buf`: `None` if it is not all there yet. A body
/// delimited by the close is complete only once `eof` is set.
pub(crate) fn parse_response(buf: &[u8], head: bool, eof: bool) -> Option<(Resp, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&buf[..end - 4]).expect("an ASCII head");
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap().to_owned();
    let status: u16 = parts.next().unwrap().parse().expect("a status code");
    let reason = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (n, v) = line.split_once(':').expect("a header line");
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut resp = Resp { version, status, reason, headers, body: Vec::new(), chunked: false };
    let after_head = &buf[end..];
    if head || status < 200 || status == 204 || status == 304 {
        return Some((resp, end));
    }
    if resp.header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        resp.chunked = true;
        let mut at = 0;
        loop {
            let line_end = after_head[at..].windows(2).position(|w| w == b"\r\n")? + at;
            let size_text = std::str::from_utf8(&after_head[at..line_end]).unwrap();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .expect("a chunk size");
            at = line_end + 2;
            if size == 0 {
                // No trailers in these tests: the last chunk ends with an empty line.
                if after_head.len() < at + 2 {
                    return None;
                }
                assert_eq!(&after_head[at..at + 2], b"\r\n", "no trailers expected");
                return Some((resp, end + at + 2));
            }
            if after_head.len() < at + size + 2 {
                return None;
            }
            resp.body.extend_from_slice(&after_head[at..at + size]);
            assert_eq!(&after_head[at + size..at + size + 2], b"\r\n", "chunk data ends with CRLF");
            at += size + 2;
        }
    }
    if let Some(length) = resp.header("content-length") {
        let length: usize = length.parse().expect("a Content-Length");
        if after_head.len() < length {
            return None;
        }
        resp.body = after_head[..length].to_vec();
        return Some((resp, end + length));
    }
    if !eof {
        return None;
    }
    resp.body = after_head.to_vec();
    Some((resp, buf.len()))
}

/// Counts calls, for "this handler never ran" assertions.
#[derive(Clone, Default)]
pub(crate) struct Counter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Counter {
    pub(crate) fn hit(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An application whose `POST /form` answers how many fields `post()` read (`N fields`),
/// or `post()`'s error.
pub(crate) fn form_counter() -> Application {
    let mut app = Application::new();
    app.add_post("/form", |mut req: tandem_web::Request| async move {
        let form = req.post().await?;
        Ok::<_, tandem_web::HttpError>(tandem_web::Response::text(format!("{} fields", form.len())))
    });
    app
}

/// A POST of `body` with `content_type`, framed by Content-Length.
pub(crate) fn post_request(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}
