//! aiohttp's fuller `TraceConfig` signal set: a connection queued for a slot, created,
//! DNS lookups and cache hits, request chunks sent and response chunks received.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use tandem_client::{ClientSession, Connector, Origin, Trace, TraceRequestCtx};
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
    fn on_request_start(&self, _: &TraceRequestCtx, method: &Method, url: &Url, _: &HeaderMap) {
        self.push(format!("start {method} {}", url.path()));
    }
    fn on_connection_queued_start(&self, _: &TraceRequestCtx, _: &Origin) {
        self.push("queued".into());
        self.queued.notify_one();
    }
    fn on_connection_queued_end(&self, _: &TraceRequestCtx, _: &Origin) {
        self.push("slot".into());
    }
    fn on_connection_create_start(&self, _: &TraceRequestCtx, _: &Origin) {
        self.push("create start".into());
    }
    fn on_connection_create_end(&self, _: &TraceRequestCtx, _: &Origin) {
        self.push("create end".into());
    }
    fn on_connection_create(&self, _: &TraceRequestCtx, _: &Origin) {
        self.push("new connection".into());
    }
    fn on_connection_reuse(&self, _: &TraceRequestCtx, _: &Origin) {
        self.push("reused".into());
    }
    fn on_dns_resolvehost_start(&self, _: &TraceRequestCtx, host: &str) {
        self.push(format!("resolve {host}"));
    }
    fn on_dns_resolvehost_end(&self, _: &TraceRequestCtx, host: &str) {
        self.push(format!("resolved {host}"));
    }
    fn on_dns_cache_hit(&self, _: &TraceRequestCtx, host: &str) {
        self.push(format!("cache hit {host}"));
    }
    fn on_dns_cache_miss(&self, _: &TraceRequestCtx, host: &str) {
        self.push(format!("cache miss {host}"));
    }
    fn on_request_chunk_sent(&self, _: &TraceRequestCtx, _: &Method, _: &Url, chunk: &[u8]) {
        self.push(format!("sent {:?}", String::from_utf8_lossy(chunk)));
    }
    fn on_response_chunk_received(&self, _: &TraceRequestCtx, _: &Method, _: &Url, chunk: &[u8]) {
        self.push(format!("received {:?}", String::from_utf8_lossy(chunk)));
    }
    fn on_request_end(&self, _: &TraceRequestCtx, _: &Method, _: &Url, status: StatusCode) {
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

    // So is a file, read rather than sent with `sendfile`, so the traces see its bytes.
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, b"from a file").unwrap();
    std::io::Seek::rewind(&mut file).unwrap();
    let mut resp = within(session.post(&url).body_file(file).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "from a file");
    let events = recorder.take();
    let sent: Vec<_> = events.iter().filter(|e| e.starts_with("sent")).collect();
    assert_eq!(sent, ["sent \"from a file\""]);
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

/// Records which request each event belongs to, by the name it was sent with.
#[derive(Default)]
struct ByName(Mutex<Vec<(Option<&'static str>, &'static str)>>);

impl ByName {
    fn push(&self, ctx: &TraceRequestCtx, event: &'static str) {
        self.0.lock().unwrap().push((ctx.get::<&'static str>().copied(), event));
    }
}

impl Trace for ByName {
    fn on_request_start(&self, ctx: &TraceRequestCtx, _: &Method, _: &Url, _: &HeaderMap) {
        self.push(ctx, "start");
    }
    fn on_connection_create_start(&self, ctx: &TraceRequestCtx, _: &Origin) {
        self.push(ctx, "create start");
    }
    fn on_dns_resolvehost_start(&self, ctx: &TraceRequestCtx, _: &str) {
        self.push(ctx, "resolve");
    }
    fn on_request_headers_sent(&self, ctx: &TraceRequestCtx, _: &Method, _: &Url, _: &HeaderMap) {
        self.push(ctx, "headers sent");
    }
    fn on_response_chunk_received(&self, ctx: &TraceRequestCtx, _: &Method, _: &Url, _: &[u8]) {
        self.push(ctx, "received");
    }
    fn on_request_end(&self, ctx: &TraceRequestCtx, _: &Method, _: &Url, _: StatusCode) {
        self.push(ctx, "end");
    }
}

/// aiohttp's `trace_request_ctx`: every event of a request, the connector's included, carries
/// the value it was sent with; a request sent without one gives its events none.
#[tokio::test]
async fn every_event_carries_its_requests_ctx() {
    let server = Server::start(app()).await;
    let url = format!("http://localhost:{}/hello", server.addr.port());
    for timings in [false, true] {
        let names = Arc::new(ByName::default());
        let session = ClientSession::builder().trace(names.clone()).timings(timings).build();
        for name in [Some("first"), None] {
            let req = session.get(&url).header("connection", "close");
            let req = match name {
                Some(name) => req.trace_request_ctx(name),
                None => req,
            };
            let mut resp = within(req.send()).await.unwrap();
            assert_eq!(within(resp.text()).await.unwrap(), "hello");
        }
        let events = std::mem::take(&mut *names.0.lock().unwrap());
        let of =
            |name| events.iter().filter(|(n, _)| *n == name).map(|(_, e)| *e).collect::<Vec<_>>();
        let first = ["start", "create start", "resolve", "headers sent", "end", "received"];
        assert_eq!(of(Some("first")), first, "timings {timings}");
        // The second finds the name in the DNS cache, so it resolves nothing.
        let second = ["start", "create start", "headers sent", "end", "received"];
        assert_eq!(of(None), second, "timings {timings}");
    }
    server.stop().await;
}
