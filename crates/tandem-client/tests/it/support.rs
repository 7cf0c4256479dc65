//! Test support: a Tandem server on a free port (`tandem_http::test::TestClient`'s, the one
//! harness for that), and raw listeners whose connections run a script, so a test controls
//! every byte the client reads.

#![allow(dead_code)]

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tandem_client::{ClientSession, CookieJar};
use tandem_http::test::TestClient;
use tandem_web::Application;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// The longest any single wait in a test may take before it counts as a hang.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The session's default `Accept-Encoding`: what it can decode, which is nothing without the
/// `compression` feature.
pub(crate) const ACCEPT_ENCODING: &str =
    if cfg!(feature = "compression") { "gzip, deflate, br, zstd" } else { "identity" };

/// Awaits `fut`, failing the test if it takes longer than [`TIMEOUT`].
pub(crate) async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, fut).await.expect("the test step finished in time")
}

/// A session that keeps cookies for 127.0.0.1, as tests need.
pub(crate) fn session() -> ClientSession {
    ClientSession::builder().cookie_jar(CookieJar::unsafe_hosts()).build()
}

/// A running Tandem server: a `TestClient`'s, whose own session the tests leave aside (each
/// builds the session its case needs).
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    client: TestClient,
}

impl Server {
    pub(crate) async fn start(app: Application) -> Server {
        let client = TestClient::new(app).await.expect("the app starts");
        Server { addr: client.addr().expect("a TCP server"), client }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.client.url(path)
    }

    pub(crate) async fn stop(self) {
        within(self.client.close()).await;
    }
}

/// A listener whose every connection runs `script(stream, index)`; it counts connections.
pub(crate) struct RawServer {
    pub(crate) addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl RawServer {
    pub(crate) async fn start<F, Fut>(script: F) -> RawServer
    where
        F: Fn(TcpStream, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let index = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(script(stream, index));
            }
        });
        RawServer { addr, accepted, task }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// This server as an http proxy with Basic credentials `pu:pp`.
    pub(crate) fn as_proxy(&self) -> tandem_client::Proxy {
        let origin =
            tandem_client::Origin::new(tandem_client::Scheme::Http, "127.0.0.1", self.addr.port());
        tandem_client::Proxy::new(origin).basic_auth("pu", "pp")
    }

    /// How many connections were accepted.
    pub(crate) fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (head, and a body by `Content-Length`) off `stream`; `None` at EOF.
pub(crate) async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if buf.len() >= end + 4 + len {
                return Some(buf);
            }
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads a request's head (up to its blank line, and whatever came with it) off `stream`,
/// leaving any body unread; `false` at EOF first.
pub(crate) async fn read_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut chunk = [0; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// Writes `bytes` and flushes.
pub(crate) async fn write(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
}
