//! How a request body goes out: compressed (`compress`), chunked from memory (`chunked`),
//! and watched (`upload_progress`). A Tandem server decodes what it receives.

use std::sync::{Arc, Mutex};

#[cfg(feature = "compression")]
use bytes::Bytes;
use serde_json::{Value, json};
#[cfg(feature = "compression")]
use tandem_client::Compression;
use tandem_web::{Application, Error, Request, Response, json_response};

use crate::support::{Server, session, within};

async fn echo(mut req: Request) -> Result<Response, Error> {
    let header = |name: &str| req.headers().get(name).map(|v| v.to_str().unwrap_or("?").to_owned());
    let (encoding, framing, length, content_type) = (
        header("content-encoding"),
        header("transfer-encoding"),
        header("content-length"),
        header("content-type"),
    );
    let body = req.read().await?;
    Ok(json_response(&json!({
        "content-encoding": encoding,
        "transfer-encoding": framing,
        "content-length": length,
        "content-type": content_type,
        "body": String::from_utf8_lossy(&body),
    })))
}

fn app() -> Application {
    let mut app = Application::new();
    app.add_post("/echo", echo);
    app
}

async fn sent(req: tandem_client::RequestBuilder) -> Value {
    let mut resp = within(req.send()).await.unwrap();
    within(resp.json()).await.unwrap()
}

#[cfg(feature = "compression")]
#[tokio::test]
async fn compressed_bodies_whole_and_streamed() {
    let server = Server::start(app()).await;
    let s = session();
    let text = "hello hello hello hello ".repeat(100);
    let v = sent(s.post(&server.url("/echo")).body(text.clone()).compress(Compression::Gzip)).await;
    assert_eq!(v["content-encoding"], "gzip");
    assert!(v["content-length"].as_str().unwrap().parse::<usize>().unwrap() < text.len() / 4);
    assert_eq!(v["content-type"], "text/plain; charset=utf-8");
    assert_eq!(v["body"], text);

    let pieces = ["stream ", "of ", "pieces"].map(|p| Ok::<_, std::io::Error>(Bytes::from(p)));
    let stream = futures_util::stream::iter(pieces);
    let req = s.post(&server.url("/echo")).body_stream(stream).compress(Compression::Deflate);
    let v = sent(req).await;
    assert_eq!(
        (&v["content-encoding"], &v["transfer-encoding"]),
        (&json!("deflate"), &json!("chunked"))
    );
    assert_eq!(v["body"], "stream of pieces");

    let both = s.post(&server.url("/echo")).header("content-encoding", "br").body("x");
    let e = within(both.compress(Compression::Gzip).send()).await.unwrap_err();
    assert!(e.is_request(), "{e:?}");
    server.stop().await;
}

#[tokio::test]
async fn chunked_in_memory_bodies_and_upload_progress() {
    let server = Server::start(app()).await;
    let s = session();
    let v = sent(s.post(&server.url("/echo")).body("small").chunked(true)).await;
    assert_eq!((&v["transfer-encoding"], &v["content-length"]), (&json!("chunked"), &Value::Null));
    assert_eq!(
        (&v["body"], &v["content-type"]),
        (&json!("small"), &json!("text/plain; charset=utf-8"))
    );

    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let body = vec![b'x'; 150 * 1024];
    let req = s
        .post(&server.url("/echo"))
        .body(body)
        .upload_progress(move |written| record.lock().unwrap().push(written));
    let v = sent(req).await;
    assert_eq!(v["body"].as_str().unwrap().len(), 150 * 1024);
    assert_eq!(*seen.lock().unwrap(), [64 * 1024, 128 * 1024, 150 * 1024]);
    server.stop().await;
}

/// What a form arrived as: its content type's media type, a text field, and a file's name,
/// size and contents, as the server's `post()` parses it.
async fn form_echo(mut req: Request) -> Result<Response, Error> {
    let content_type = req.content_type();
    let mut form = req.post().await?;
    let title = form.get("title").map(str::to_owned);
    let file = match form.file_mut("upload") {
        Some(file) => {
            let data = file.read_to_end().await.map_err(Error::from)?;
            json!({"filename": file.filename(), "size": file.size(), "head": String::from_utf8_lossy(&data[..16])})
        }
        None => Value::Null,
    };
    Ok(json_response(&json!({"content_type": content_type, "title": title, "file": file})))
}

#[tokio::test]
async fn form_data_chooses_its_encoding_and_streams_files_from_disk() {
    let mut app = app();
    app.add_post("/form", form_echo);
    let server = Server::start(app).await;
    let s = session();
    let form = tandem_client::FormData::new().text("title", "a & b");
    let v = sent(s.post(&server.url("/form")).data(&form)).await;
    assert_eq!(v["content_type"], "application/x-www-form-urlencoded");
    assert_eq!(v["title"], "a & b");

    // A file on disk, larger than one read, goes in a streamed multipart body.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let contents: Vec<u8> =
        (0..300_000u32).map(|i| b"0123456789abcdef"[(i % 16) as usize]).collect();
    std::fs::write(&path, &contents).unwrap();
    let form = form.file_path("upload", &path, "application/octet-stream");
    let v = sent(s.post(&server.url("/form")).data(&form)).await;
    assert_eq!(v["content_type"], "multipart/form-data");
    assert_eq!(v["title"], "a & b");
    assert_eq!(v["file"]["filename"], "big.bin");
    assert_eq!(v["file"]["size"], 300_000);
    assert_eq!(v["file"]["head"], "0123456789abcdef");

    // A file that cannot be read fails the request.
    let gone =
        tandem_client::FormData::new().file_path("upload", dir.path().join("nope"), "text/plain");
    let e = within(s.post(&server.url("/form")).data(&gone).send()).await.unwrap_err();
    assert!(e.is_request(), "{e:?}");
    server.stop().await;
}

/// A form whose files' sizes their metadata gives goes with `Content-Length`, as aiohttp's
/// does, not chunked; a file that changes size before it is read fails the request.
#[tokio::test]
async fn a_form_with_files_of_known_size_goes_with_content_length() {
    let server = Server::start(app()).await;
    let s = session();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "file contents\n".repeat(10_000)).unwrap();
    let form =
        tandem_client::FormData::new().text("title", "t").file_path("f", &path, "text/plain");
    let whole = form.to_bytes().unwrap();

    let v = sent(s.post(&server.url("/echo")).multipart(&form)).await;
    assert_eq!(v["transfer-encoding"], Value::Null);
    assert_eq!(v["content-length"], whole.len().to_string());
    assert_eq!(v["body"], String::from_utf8_lossy(&whole).into_owned());
    let v = sent(s.post(&server.url("/echo")).multipart(&form).chunked(true)).await;
    assert_eq!((&v["transfer-encoding"], &v["content-length"]), (&json!("chunked"), &Value::Null));
    assert_eq!(v["body"], String::from_utf8_lossy(&whole).into_owned());

    // The size is read when the body is set: a file that grows or shrinks after it would
    // make the body disagree with its Content-Length, so the request fails instead.
    for contents in ["file contents\n".repeat(10_001), "short".to_owned()] {
        std::fs::write(&path, "file contents\n".repeat(10_000)).unwrap();
        let request = s.post(&server.url("/echo")).multipart(&form);
        std::fs::write(&path, &contents).unwrap();
        let e = within(request.send()).await.unwrap_err();
        assert!(e.is_request() && format!("{e:?}").contains("Content-Length"), "{e:?}");
    }
    server.stop().await;
}

/// `read_until_eof(false)`: a body delimited by close reads as empty, even from a server
/// that never closes; by default it is read to the close.
#[tokio::test]
async fn read_until_eof_false_reads_a_close_delimited_body_as_empty() {
    use tokio::io::AsyncReadExt;
    let server = crate::support::RawServer::start(|mut stream, _| async move {
        let request = crate::support::read_request(&mut stream).await.unwrap_or_default();
        let hold = String::from_utf8_lossy(&request).contains("/hold");
        if String::from_utf8_lossy(&request).contains("/framed") {
            let framed = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nframed";
            crate::support::write(&mut stream, framed).await;
            return;
        }
        crate::support::write(
            &mut stream,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
        )
        .await;
        if hold {
            // Keeps the connection open until the client drops it.
            let _ = stream.read(&mut [0; 1]).await;
        }
    })
    .await;
    let s = session();
    let mut resp = within(s.get(&server.url("/close")).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "until close");
    let mut resp = within(s.get(&server.url("/hold")).read_until_eof(false).send()).await.unwrap();
    assert_eq!(within(resp.read()).await.unwrap(), "");
    // A framed body is read as usual.
    let mut resp =
        within(s.get(&server.url("/framed")).read_until_eof(false).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "framed");
}
