//! aiohttp's fuller `TraceConfig` signal set: a connection queued for a slot, created,
//! DNS lookups and cache hits, request chunks sent and response chunks received.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use tandem_client::{ClientSession, Connector, Origin, Trace};
use tandem_web::{Application, Request, Response};
use tokio::sync::Notify;
use url::Url;

use crate::support::{Server, within};

/// Records every event as a line, and wakes `queued` when a request waits for a slot.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    queued: Notify,
}

impl Recorder {
    fn push(&self, event: String) {
        self.events.lock().unwrap().push(event);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.events.lock().unwrap())
    }
}

impl Trace for Recorder {
    fn on_request_start(&self, method: &Method, url: &Url, _: &HeaderMap) {
        self.push(format!("start {method} {}", url.path()));
    }
    fn on_connection_queued_start(&self, _: &Origin) {
        self.push("queued".into());
        self.queued.notify_one();
    }
    fn on_connection_queued_end(&self, _: &Origin) {
        self.push("slot".into());
    }
    fn on_connection_create_start(&self, _: &Origin) {
        self.push("create start".into());
    }
    fn on_connection_create_end(&self, _: &Origin) {
        self.push("create end".into());
    }
    fn on_connection_create(&self, _: &Origin) {
        self.push("new connection".into());
    }
    fn on_connection_reuse(&self, _: &Origin) {
        self.push("reused".into());
    }
    fn on_dns_resolvehost_start(&self, host: &str) {
        self.push(format!("resolve {host}"));
    }
    fn on_dns_resolvehost_end(&self, host: &str) {
        self.push(format!("resolved {host}"));
    }
    fn on_dns_cache_hit(&self, host: &str) {
        self.push(format!("cache hit {host}"));
    }
    fn on_dns_cache_miss(&self, host: &str) {
        self.push(format!("cache miss {host}"));
    }
    fn on_request_chunk_sent(&self, _: &Method, _: &Url, chunk: &[u8]) {
        self.push(format!("sent {:?}", String::from_utf8_lossy(chunk)));
    }
    fn on_response_chunk_received(&self, _: &Method, _: &Url, chunk: &[u8]) {
        self.push(format!("received {:?}", String::from_utf8_lossy(chunk)));
    }
    fn on_request_end(&self, _: &Method, _: &Url, status: StatusCode) {
        self.push(format!("end {}", status.as_u16()));
    }
}

fn app() -> Application {
    let mut app = Application::new();
    app.add_post("/echo", |mut req: Request| async move {
        Response::text(String::from_utf8_lossy(&req.read().await.unwrap()).into_owned())
    });
    app.add_get("/hello", |_req: Request| async { Response::text("hello") });
    app
}

#[tokio::test]
async fn dns_connections_and_chunks_are_traced() {
    let server = Server::start(app()).await;
    let port = server.addr.port();
    let recorder = Arc::new(Recorder::default());
    let session = ClientSession::builder().trace(recorder.clone()).build();
    let url = format!("http://localhost:{port}/echo");
    // Closed after the answer, so the second request opens a new connection, and its name
    // comes from the DNS cache.
    for _ in 0..2 {
        let req = session.post(&url).header("connection", "close").body("hi there");
        let mut resp = within(req.send()).await.unwrap();
        assert_eq!(within(resp.text()).await.unwrap(), "hi there");
    }
    let events = recorder.take();
    let expected = [
        "start POST /echo",
        "create start",
        "cache miss localhost",
        "resolve localhost",
        "resolved localhost",
        "create end",
        "new connection",
        "sent \"hi there\"",
        "end 200",
        "received \"hi there\"",
        "start POST /echo",
        "create start",
        "cache hit localhost",
        "create end",
        "new connection",
        "sent \"hi there\"",
        "end 200",
        "received \"hi there\"",
    ];
    assert_eq!(events, expected);

    // A streamed body is reported chunk by chunk.
    let chunks = ["a", "bc"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
    let req = session.post(&url).body_stream(futures_util::stream::iter(chunks));
    let mut resp = within(req.send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "abc");
    let events = recorder.take();
    let sent: Vec<_> = events.iter().filter(|e| e.starts_with("sent")).collect();
    assert_eq!(sent, ["sent \"a\"", "sent \"bc\""]);
    server.stop().await;
}

#[tokio::test]
async fn a_request_waiting_for_a_slot_is_traced() {
    let server = Server::start(app()).await;
    let recorder = Arc::new(Recorder::default());
    let session = ClientSession::builder()
        .connector(Connector::builder().limit(1).build())
        .trace(recorder.clone())
        .build();
    // The first response holds the only slot until its body is read.
    let mut first = within(session.get(&server.url("/hello")).send()).await.unwrap();
    let second = tokio::spawn({
        let (session, url) = (session.clone(), server.url("/hello"));
        async move { within(session.get(&url).send()).await.unwrap().text().await.unwrap() }
    });
    within(recorder.queued.notified()).await;
    assert_eq!(within(first.text()).await.unwrap(), "hello");
    assert_eq!(within(second).await.unwrap(), "hello");
    let events = recorder.take();
    let queue: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.as_str(), "queued" | "slot" | "reused" | "new connection"))
        .collect();
    assert_eq!(queue, ["new connection", "queued", "slot", "reused"]);
    server.stop().await;
}
