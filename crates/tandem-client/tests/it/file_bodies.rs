//! A file as a request body (`body_file`): its bytes arrive exactly, over plain TCP (sent
//! with `sendfile`) and over TLS, by HTTP/1.1 and HTTP/2 (read in pieces); an empty file; a
//! file that grew is sent at its length when set, and one that shrank fails the request and
//! leaves no connection behind for the next. A file with no size of its own (a pipe, a
//! `/proc` file) is sent whole, chunked.

use std::io::{Seek, SeekFrom, Write};

use serde_json::{Value, json};
use sha2::Digest as _;
use tandem_web::{Application, Error, Request, Response, json_response};

use crate::support::{Server, session, within};

/// Larger than the socket buffers, so `sendfile` has to wait for room more than once.
const LARGE: usize = 3 * 1024 * 1024 + 5;

fn sha256(data: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(data).to_vec()
}

/// What the server received: its framing, length and digest.
async fn received(mut req: Request) -> Result<Response, Error> {
    let header = |name: &str| req.headers().get(name).map(|v| v.to_str().unwrap_or("?").to_owned());
    let (length, content_type) = (header("content-length"), header("content-type"));
    let transfer_encoding = header("transfer-encoding");
    let body = req.read().await?;
    Ok(json_response(&json!({
        "content-length": length,
        "transfer-encoding": transfer_encoding,
        "content-type": content_type,
        "len": body.len(),
        "sha256": sha256(&body),
    })))
}

fn app() -> Application {
    let mut app = Application::new();
    app.client_max_size(8 * 1024 * 1024);
    app.add_post("/file", received);
    app
}

fn file_of(bytes: &[u8]) -> std::fs::File {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(bytes).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file
}

fn large() -> Vec<u8> {
    (0..LARGE).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

async fn sent(req: tandem_client::RequestBuilder) -> Value {
    let mut resp = within(req.send()).await.unwrap();
    assert_eq!(resp.status(), 200);
    within(resp.json()).await.unwrap()
}

fn expected(data: &[u8]) -> Value {
    json!({
        "content-length": data.len().to_string(),
        "transfer-encoding": null,
        "content-type": "application/octet-stream",
        "len": data.len(),
        "sha256": sha256(data),
    })
}

#[tokio::test]
async fn a_file_arrives_exactly_over_plain_tcp_and_an_empty_one_too() {
    let server = Server::start(app()).await;
    let s = session();
    let data = large();
    assert_eq!(sent(s.post(&server.url("/file")).body_file(file_of(&data))).await, expected(&data));
    // From the file's position on.
    let mut file = file_of(&data);
    file.seek(SeekFrom::Start(1000)).unwrap();
    assert_eq!(sent(s.post(&server.url("/file")).body_file(file)).await, expected(&data[1000..]));
    assert_eq!(sent(s.post(&server.url("/file")).body_file(file_of(b""))).await, expected(b""));
    server.stop().await;
}

/// Over TLS the file is read in pieces, on HTTP/1.1 and on HTTP/2.
#[cfg(feature = "tls")]
#[tokio::test]
async fn a_file_arrives_exactly_over_tls() {
    use tandem_client::{ClientSession, Connector, Http2};

    let (runner, addr, trust) = crate::http2::tls_server(app()).await;
    let connector = Connector::builder()
        .tls(trust)
        .resolve("localhost", [std::net::SocketAddr::from(([127, 0, 0, 1], 0))])
        .build();
    let s = ClientSession::builder().connector(connector).build();
    let url = format!("https://localhost:{}/file", addr.port());
    let data = large();
    for version in [Http2::Never, Http2::Auto] {
        let req = s.post(&url).http2(version).body_file(file_of(&data));
        assert_eq!(sent(req).await, expected(&data), "{version:?}");
    }
    // Cut short, read in pieces: the same failure as with `sendfile`.
    let file = file_of(&data);
    let req = s.post(&url).http2(Http2::Never).body_file(file.try_clone().unwrap());
    file.set_len(100_000).unwrap();
    let e = within(req.send()).await.unwrap_err();
    assert!(e.is_request() && format!("{e:?}").contains("after 100000 of the"), "{e:?}");
    assert!(within(runner.cleanup()).await);
}

/// The length is taken when the body is set: bytes added later are not sent, and a file
/// cut short fails the request clearly; its connection is closed, not reused for the next
/// request (which would otherwise be read as the rest of the body).
#[tokio::test]
async fn a_file_that_changes_size_never_breaks_the_framing() {
    let server = Server::start(app()).await;
    let s = session();
    let data = large();
    let mut file = file_of(&data);
    let req = s.post(&server.url("/file")).body_file(file.try_clone().unwrap());
    file.seek(SeekFrom::End(0)).unwrap();
    file.write_all(b"more").unwrap();
    assert_eq!(sent(req).await, expected(&data));

    let file = file_of(&data);
    let req = s.post(&server.url("/file")).body_file(file.try_clone().unwrap());
    file.set_len(100_000).unwrap();
    let e = within(req.send()).await.unwrap_err();
    assert!(e.is_request(), "{e:?}");
    let message = format!("{e:?}");
    assert!(message.contains(&format!("after 100000 of the {LARGE} bytes")), "{message}");
    let mut want = expected(b"next");
    want["content-type"] = json!("text/plain; charset=utf-8");
    assert_eq!(sent(s.post(&server.url("/file")).body("next")).await, want);
    server.stop().await;
}

/// What the server receives from a body of no known length.
fn expected_chunked(data: &[u8]) -> Value {
    let mut want = expected(data);
    want["content-length"] = json!(null);
    want["transfer-encoding"] = json!("chunked");
    want
}

/// A pipe cannot seek, and a `/proc` file's metadata says it is empty: each is read until
/// it ends and sent whole with chunked framing, not refused or sent as empty.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_pipe_and_a_proc_file_arrive_whole_and_chunked() {
    let server = Server::start(app()).await;
    let s = session();
    let data = large();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let written = data.clone();
    let writing = std::thread::spawn(move || writer.write_all(&written).unwrap());
    let pipe = std::fs::File::from(std::os::fd::OwnedFd::from(reader));
    assert_eq!(sent(s.post(&server.url("/file")).body_file(pipe)).await, expected_chunked(&data));
    writing.join().unwrap();

    let path = "/proc/self/cmdline";
    let (file, data) = (std::fs::File::open(path).unwrap(), std::fs::read(path).unwrap());
    assert_eq!(file.metadata().unwrap().len(), 0, "a /proc file's metadata has no length");
    assert!(!data.is_empty());
    assert_eq!(sent(s.post(&server.url("/file")).body_file(file)).await, expected_chunked(&data));
    server.stop().await;
}
