//! Multipart forms through `post()` and the streaming `multipart()` reader, and the hostile
//! checklist's section G (71–78) of `docs/security.md`. They need the `multipart` feature.
#![cfg(feature = "multipart")]

use std::time::Duration;

use serde_json::{Value, json};
use tandem_web::{
    Application, DEFAULT_MAX_FORM_FILES, FormValue, HttpError, Request, Response, json_response,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Counter, Server, form_counter, post_request, within};

/// Builds a `multipart/form-data` body from raw parts: each is its header lines and data.
fn multipart_body(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (headers, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

const B: &str = "XyZzY";
const CT: &str = "multipart/form-data; boundary=XyZzY";

/// `/form` answers what `post()` found; `/parts` what the streaming reader found;
/// `/after` counts how many `post()` calls completed.
fn app(limit: Option<usize>, done: &Counter) -> Application {
    let mut app = Application::new();
    if let Some(limit) = limit {
        app.client_max_size(limit);
    }
    let done = done.clone();
    app.add_route(None, "/form", move |mut req: Request| {
        let done = done.clone();
        async move {
            let form = req.post().await?;
            done.hit();
            let mut fields = Vec::new();
            for (name, value) in form {
                fields.push(match value {
                    FormValue::Text(text) => json!({"name": name, "text": text}),
                    FormValue::Bytes(bytes) => json!({"name": name, "bytes": bytes.len()}),
                    FormValue::File(mut file) => {
                        let data = file.read_to_end().await.map_err(|_| HttpError::internal_server_error())?;
                        assert_eq!(data.len() as u64, file.size());
                        json!({
                            "name": name,
                            "filename": file.filename(),
                            "content_type": file.content_type(),
                            "size": file.size(),
                            "head": String::from_utf8_lossy(&data[..data.len().min(16)]),
                            "encoding": file.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_owned()),
                        })
                    }
                });
            }
            Ok::<_, HttpError>(json_response(&fields))
        }
    });
    app.add_post("/parts", |mut req: Request| async move {
        let mut reader = req.multipart()?;
        let mut parts = Vec::new();
        while let Some(mut part) = reader.next_part().await? {
            let (name, filename) = (part.name().map(str::to_owned), part.filename().map(str::to_owned));
            let (mut chunks, mut data) = (0, Vec::new());
            while let Some(chunk) = part.chunk().await? {
                chunks += 1;
                data.extend_from_slice(&chunk);
            }
            parts.push(json!({"name": name, "filename": filename, "chunks": chunks, "data": String::from_utf8_lossy(&data)}));
        }
        Ok::<_, HttpError>(json_response(&parts))
    });
    app.add_get("/alive", |_req: Request| async { "alive" });
    app
}

async fn post_form(server: &Server, body: &[u8]) -> crate::support::Resp {
    server.request(&post_request("/form", CT, body)).await
}

#[tokio::test]
async fn forms_with_text_bytes_and_files() {
    let server = Server::start(app(None, &Counter::default())).await;
    let file = vec![b'f'; 200_000];
    let body = multipart_body(
        B,
        &[
            ("Content-Disposition: form-data; name=\"a\"", b"1"),
            ("Content-Disposition: form-data; name=\"a\"", b"2"),
            (
                "Content-Disposition: form-data; name=\"latin\"\r\nContent-Type: text/plain; charset=iso-8859-1",
                b"caf\xe9",
            ),
            (
                "Content-Disposition: form-data; name=\"data\"\r\nContent-Type: application/json",
                b"{\"k\": 1}",
            ),
            (
                "Content-Disposition: form-data; name=\"upload\"; filename=\"notes.txt\"\r\nContent-Type: text/plain",
                &file,
            ),
            ("Content-Disposition: form-data; name=\"raw\"; filename=\"blob\"", b"\x00\x01"),
            ("Content-Disposition: form-data; name=\"empty\"; filename=\"\"", b""),
        ],
    );
    let resp = post_form(&server, &body).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!([
            {"name": "a", "text": "1"},
            {"name": "a", "text": "2"},
            {"name": "latin", "text": "café"},
            {"name": "data", "bytes": 8},
            {"name": "upload", "filename": "notes.txt", "content_type": "text/plain", "size": 200_000, "head": "ffffffffffffffff", "encoding": null},
            {"name": "raw", "filename": "blob", "content_type": "application/octet-stream", "size": 2, "head": "\u{0}\u{1}", "encoding": null},
            {"name": "empty", "text": ""},
        ])
    );

    // Not a form, or not a method with a body: an empty form, as aiohttp.
    assert_eq!(
        server.request(&post_request("/form", "application/json", b"{}")).await.json(),
        json!([])
    );
    assert_eq!(server.get("/form").await.json(), json!([]));
    // A part without a name is a 400.
    let nameless = multipart_body(B, &[("Content-Disposition: form-data", b"x")]);
    assert_eq!(post_form(&server, &nameless).await.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn the_streaming_reader_yields_parts_and_chunks() {
    let server = Server::start(app(None, &Counter::default())).await;
    let big = vec![b'z'; 300_000];
    let body = multipart_body(
        B,
        &[
            ("Content-Disposition: form-data; name=\"small\"", b"tiny"),
            ("Content-Disposition: form-data; name=\"big\"; filename=\"big.bin\"", &big),
            (
                "Content-Disposition: form-data; name=\"b64\"\r\nContent-Transfer-Encoding: base64",
                b"aGVs\r\nbG8=",
            ),
            ("Content-Disposition: form-data; name=\"sized\"\r\nContent-Length: 5", b"exact"),
        ],
    );
    let mut client = server.connect().await;
    let request = post_request("/parts", CT, &body);
    // Sent in pieces, so parts and delimiters are split across reads.
    for piece in request.chunks(7_001) {
        client.send(piece).await;
    }
    let resp = client.response().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let parts = resp.json();
    assert_eq!(parts[0], json!({"name": "small", "filename": null, "chunks": 1, "data": "tiny"}));
    assert_eq!(parts[1]["filename"], "big.bin");
    assert_eq!(parts[1]["data"].as_str().unwrap().len(), 300_000);
    assert!(parts[1]["chunks"].as_u64().unwrap() > 1, "streamed, not buffered whole");
    assert_eq!(parts[2]["data"], "hello");
    assert_eq!(parts[3]["data"], "exact");
    server.stop().await;
}

/// G 71 (CVE-2024-30251): a part promising more than it has is an error, never a hang.
#[tokio::test]
async fn part_longer_than_its_data_is_an_error() {
    let server = Server::start(app(None, &Counter::default())).await;
    let head = format!(
        "--{B}\r\nContent-Disposition: form-data; name=\"f\"\r\nContent-Length: 1000\r\n\r\n"
    );
    // The HTTP body ends after 10 bytes of the part.
    let mut cut = head.clone().into_bytes();
    cut.extend_from_slice(b"0123456789");
    for path in ["/form", "/parts"] {
        let resp = server.request(&post_request(path, CT, &cut)).await;
        assert_eq!(resp.status, 400, "{path}");
    }
    // The part is closed properly, but is shorter than it said.
    let mut short = cut.clone();
    short.extend_from_slice(format!("\r\n--{B}--\r\n").as_bytes());
    assert_eq!(server.request(&post_request("/form", CT, &short)).await.status, 400);

    // The client stops sending mid-body and half-closes: still an answer, not a wait.
    let mut client = server.connect().await;
    client
        .send(format!("POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: {CT}\r\nContent-Length: 5000\r\n\r\n").as_bytes())
        .await;
    client.send(&cut).await;
    client.stream.shutdown().await.unwrap();
    assert_eq!(client.response().await.status, 400);
    assert_eq!(server.get("/alive").await.text(), "alive");
    server.stop().await;
}

/// G 72 (CVE-2025-69228, CVE-2026-34517): `client_max_size` bounds the whole form, and the
/// 413 comes as the limit passes, not after the field is buffered.
#[tokio::test]
async fn the_limit_is_the_whole_forms() {
    let done = Counter::default();
    let server = Server::start(app(None, &done)).await;
    let field = vec![b'x'; 900 * 1024];
    let parts: Vec<(String, &[u8])> = (0..3)
        .map(|i| (format!("Content-Disposition: form-data; name=\"f{i}\""), field.as_slice()))
        .collect();
    let parts: Vec<(&str, &[u8])> = parts.iter().map(|(h, d)| (h.as_str(), *d)).collect();
    let body = multipart_body(B, &parts);

    // Declared up front: refused before the body is read.
    let mut client = server.connect().await;
    client
        .send(format!("POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: {CT}\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await;
    assert_eq!(client.response().await.status, 413);

    // Chunked: refused as the count passes 1 MiB.
    assert_eq!(send_chunked(&server, &body, None).await, (413, true));

    // One 50 MiB file, chunked: the 413 arrives long before 50 MiB could have been sent.
    let mut huge =
        format!("--{B}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big\"\r\n\r\n")
            .into_bytes();
    huge.resize(50 * 1024 * 1024, b'y');
    let (status, stopped_early) = send_chunked(&server, &huge, Some(20 * 1024 * 1024)).await;
    assert_eq!((status, stopped_early), (413, true));
    assert_eq!(done.get(), 0);
    assert_eq!(server.get("/alive").await.text(), "alive");
    server.stop().await;
}

/// Posts `body` to `/form` chunked while reading the answer; returns its status and whether
/// it came before `bound` bytes (all of them, if `None`) were written.
async fn send_chunked(server: &Server, body: &[u8], bound: Option<usize>) -> (u16, bool) {
    let client = server.connect().await;
    let (mut read, mut write) = client.stream.into_split();
    let head = format!(
        "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: {CT}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let body = body.to_vec();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&written);
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(64 * 1024) {
            write.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            write.write_all(chunk).await?;
            write.write_all(b"\r\n").await?;
            counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::SeqCst);
        }
        write.write_all(b"0\r\n\r\n").await
    });
    let mut answer = vec![0u8; 4096];
    let n = within(read.read(&mut answer)).await.unwrap();
    let sent = written.load(std::sync::atomic::Ordering::SeqCst);
    writer.abort();
    let text = String::from_utf8_lossy(&answer[..n]);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, bound.is_none_or(|bound| sent < bound))
}

/// G 73 (CVE-2026-34516): part headers are bounded in count and size.
#[tokio::test]
async fn part_headers_are_bounded() {
    let server = Server::start(app(Some(4 * 1024 * 1024), &Counter::default())).await;
    let many = format!("Content-Disposition: form-data; name=\"f\"{}", "\r\nX-H: v".repeat(10_000));
    let body = multipart_body(B, &[(&many, b"x")]);
    assert_eq!(post_form(&server, &body).await.status, 400);
    // Over multer's 32 fields, though small.
    let some = format!("Content-Disposition: form-data; name=\"f\"{}", "\r\nX-H: v".repeat(40));
    assert_eq!(post_form(&server, &multipart_body(B, &[(&some, b"x")])).await.status, 400);

    // One 1 MiB header line, well within the 4 MiB body limit: a 400, not a 413.
    let long = format!(
        "Content-Disposition: form-data; name=\"f\"\r\nX-Long: {}",
        "a".repeat(1024 * 1024)
    );
    let body = multipart_body(B, &[(&long, b"x")]);
    let client = server.connect().await;
    let (mut read, mut write) = client.stream.into_split();
    let request = post_request("/form", CT, &body);
    let writer = tokio::spawn(async move { write.write_all(&request).await });
    let mut answer = vec![0u8; 4096];
    let n = within(read.read(&mut answer)).await.unwrap();
    writer.abort();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("headers too large"), "{text}");
    server.stop().await;
}

/// G 74: a boundary over 70 characters, or none, is a 400 from both readers.
#[tokio::test]
async fn bad_boundaries_are_400() {
    let server = Server::start(app(None, &Counter::default())).await;
    let long = "b".repeat(71);
    let body = multipart_body(&long, &[("Content-Disposition: form-data; name=\"a\"", b"1")]);
    for path in ["/form", "/parts"] {
        let ct = format!("multipart/form-data; boundary={long}");
        assert_eq!(server.request(&post_request(path, &ct, &body)).await.status, 400, "{path}");
        assert_eq!(
            server.request(&post_request(path, "multipart/form-data", &body)).await.status,
            400
        );
    }
    let ok = "b".repeat(70);
    let body = multipart_body(&ok, &[("Content-Disposition: form-data; name=\"a\"", b"1")]);
    let ct = format!("multipart/form-data; boundary=\"{ok}\"");
    assert_eq!(server.request(&post_request("/form", &ct, &body)).await.status, 200);
    server.stop().await;
}

/// G 75: ten thousand tiny parts within the limit parse in bounded time.
#[tokio::test]
async fn many_tiny_parts() {
    let server = Server::start(app(None, &Counter::default())).await;
    let parts = vec![("Content-Disposition: form-data; name=\"t\"", &b"1"[..]); 10_000];
    let body = multipart_body(B, &parts);
    assert!(body.len() < 1024 * 1024);
    let resp = tokio::time::timeout(Duration::from_secs(5), post_form(&server, &body))
        .await
        .expect("bounded time");
    assert_eq!(resp.json().as_array().unwrap().len(), 10_000);
    server.stop().await;
}

/// G 76: nested multipart is refused by `post()`, however deep, without recursion.
#[tokio::test]
async fn nested_multipart_is_refused() {
    let server = Server::start(app(None, &Counter::default())).await;
    let mut inner = b"leaf".to_vec();
    for depth in 0..1000 {
        let boundary = format!("n{depth}");
        let header = format!(
            "Content-Disposition: form-data; name=\"n\"\r\nContent-Type: multipart/mixed; boundary=n{}",
            depth + 1
        );
        inner = multipart_body(&boundary, &[(&header, &inner)]);
    }
    let resp =
        server.request(&post_request("/form", "multipart/form-data; boundary=n999", &inner)).await;
    assert_eq!(resp.status, 400);
    assert!(resp.text().contains("nested"), "{}", resp.text());
    server.stop().await;
}

/// G 77: strict part lengths, base64 and unsupported transfer encodings; per-part
/// `Content-Encoding` is passed through undecoded, so a bomb cannot inflate.
#[tokio::test]
async fn part_framing_and_encodings() {
    let server = Server::start(app(None, &Counter::default())).await;
    for length in ["+5", "-1", "1_0", "5 5"] {
        let header =
            format!("Content-Disposition: form-data; name=\"f\"\r\nContent-Length: {length}");
        assert_eq!(
            post_form(&server, &multipart_body(B, &[(&header, b"hello")])).await.status,
            400,
            "{length}"
        );
    }
    let exact = "Content-Disposition: form-data; name=\"f\"\r\nContent-Length: 5";
    assert_eq!(post_form(&server, &multipart_body(B, &[(exact, b"hello")])).await.status, 200);

    let b64 = "Content-Disposition: form-data; name=\"f\"\r\nContent-Transfer-Encoding: base64";
    assert_eq!(
        post_form(&server, &multipart_body(B, &[(b64, b"aGVsbG8=")])).await.json()[0]["text"],
        "hello"
    );
    assert_eq!(post_form(&server, &multipart_body(B, &[(b64, b"a!b@c#")])).await.status, 400);
    let qp =
        "Content-Disposition: form-data; name=\"f\"\r\nContent-Transfer-Encoding: quoted-printable";
    assert_eq!(post_form(&server, &multipart_body(B, &[(qp, b"a=3Db")])).await.status, 400);

    // A gzip "bomb" part: kept as sent, never inflated.
    let bomb = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0xff, 0xed, 0xc1, 0x01, 0x0d];
    let gz =
        "Content-Disposition: form-data; name=\"f\"; filename=\"z.gz\"\r\nContent-Encoding: gzip";
    let resp = post_form(&server, &multipart_body(B, &[(gz, &bomb)])).await;
    assert_eq!(resp.json()[0]["size"], bomb.len());
    assert_eq!(resp.json()[0]["encoding"], "gzip");
    server.stop().await;
}

/// G 78: file names come back verbatim (they are documented as untrusted), whatever they hold.
#[tokio::test]
async fn filenames_are_returned_verbatim() {
    let server = Server::start(app(None, &Counter::default())).await;
    let body = multipart_body(
        B,
        &[
            ("Content-Disposition: form-data; name=\"f\"; filename=\"../../etc/passwd\"", b"1"),
            ("Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''..%2F..%2Fx", b"2"),
            ("Content-Disposition: form-data; name=\"f\"; filename*=bogus''x", b"3"),
            ("Content-Disposition: form-data; name=\"f\"; filename=\"C:\\\\boot.ini\"", b"4"),
            ("Content-Disposition: form-data; name=\"f\"; filename=", b"5"),
        ],
    );
    let resp = post_form(&server, &body).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let json = resp.json();
    let names: Vec<Value> =
        json.as_array().unwrap().iter().map(|f| f["filename"].clone()).collect();
    assert_eq!(
        names,
        [
            json!("../../etc/passwd"),
            json!("../../x"),
            json!("bogus''x"),
            json!("C:\\boot.ini"),
            Value::Null
        ]
    );
    assert_eq!(json[4]["text"], "5", "an empty file name is an ordinary field");
    server.stop().await;
}

#[tokio::test]
async fn multipart_reader_needs_a_multipart_body() {
    let server = Server::start(app(None, &Counter::default())).await;
    let resp = server.request(&post_request("/parts", "text/plain", b"x")).await;
    assert_eq!(resp.status, 400);
    server.stop().await;
}

/// The streaming reader: a part that is itself multipart is read as one, and a part's
/// `Content-Encoding` is undone on request, within a limit.
#[tokio::test]
async fn nested_parts_and_decoded_parts() {
    let mut app = Application::new();
    app.add_post("/parts", |mut req: Request| async move {
        let mut reader = req.multipart()?;
        let mut out = Vec::new();
        while let Some(part) = reader.next_part().await? {
            let name = part.name().unwrap_or_default().to_owned();
            if part.is_multipart() {
                let mut nested = part.multipart()?;
                while let Some(inner) = nested.next_part().await? {
                    let file = inner.filename().unwrap_or_default().to_owned();
                    let text = inner.text().await?;
                    out.push(format!("{name}/{file}={text}"));
                }
            } else {
                let data = part.bytes_decoded(64).await?;
                out.push(format!("{name}={}", String::from_utf8_lossy(&data)));
            }
        }
        Ok::<_, HttpError>(Response::text(out.join(";")))
    });
    let server = Server::start(app).await;
    let inner = multipart_body(
        "in1",
        &[
            ("Content-Disposition: file; filename=\"a.txt\"", b"first"),
            ("Content-Disposition: file; filename=\"b.txt\"", b"second"),
        ],
    );
    let gzipped: &[u8] = &[
        31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 203, 72, 205, 201, 201, 87, 200, 64, 144, 0, 128, 136,
        249, 229, 17, 0, 0, 0,
    ];
    let body = multipart_body(
        B,
        &[
            (
                "Content-Disposition: form-data; name=\"files\"\r\nContent-Type: multipart/mixed; boundary=in1",
                &inner,
            ),
            ("Content-Disposition: form-data; name=\"z\"\r\nContent-Encoding: gzip", gzipped),
            ("Content-Disposition: form-data; name=\"plain\"", b"as is"),
        ],
    );
    let resp = server.request(&post_request("/parts", CT, &body)).await;
    #[cfg(feature = "compression")]
    assert_eq!(resp.text(), "files/a.txt=first;files/b.txt=second;z=hello hello hello;plain=as is");
    #[cfg(not(feature = "compression"))]
    assert_eq!(resp.status, 415);

    // Past the limit, decoded or not: a 413, however small the part was on the wire.
    #[cfg(feature = "compression")]
    {
        // 100 000 zero bytes, gzipped into 132.
        let mut bomb = vec![31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 237, 193, 49, 1, 0, 0, 0, 194, 160];
        bomb.extend_from_slice(&[245, 79, 109, 13, 15, 160]);
        bomb.extend_from_slice(&[0; 96]);
        bomb.extend_from_slice(&[128, 87, 3, 125, 149, 17, 212, 160, 134, 1, 0]);
        let header = "Content-Disposition: form-data; name=\"bomb\"\r\nContent-Encoding: gzip";
        let body = multipart_body(B, &[(header, &bomb)]);
        assert_eq!(server.request(&post_request("/parts", CT, &body)).await.status, 413);
    }
    let long = vec![b'x'; 65];
    let body = multipart_body(B, &[("Content-Disposition: form-data; name=\"long\"", &long)]);
    assert_eq!(server.request(&post_request("/parts", CT, &body)).await.status, 413);
    // A part that says it is multipart but has no valid boundary.
    let body = multipart_body(
        B,
        &[("Content-Disposition: form-data; name=\"x\"\r\nContent-Type: multipart/mixed", b"junk")],
    );
    assert_eq!(server.request(&post_request("/parts", CT, &body)).await.status, 400);
    server.stop().await;
}

/// G 75 with files: each file part is spooled to a temporary file, which holds descriptors
/// while the form lives, so a form of many tiny files within `client_max_size` could take
/// every descriptor the process has (12 000 empty file parts fit in 780 KB). `post()`
/// refuses the file past `max_form_files` with a 413, before spooling it.
#[tokio::test]
async fn the_files_of_a_form_are_bounded_in_number() {
    let mut limited = form_counter();
    limited.max_form_files(3).max_form_fields(5);
    // A sub-application inherits its parent's limit.
    limited.add_subapp("/sub", form_counter());
    let file = ("Content-Disposition: form-data; name=f; filename=a", &b""[..]);
    let text = ("Content-Disposition: form-data; name=t", &b"x"[..]);
    let server = Server::start(limited).await;
    for path in ["/form", "/sub/form"] {
        let within = multipart_body(B, &[file, text, file, text, file]);
        let resp = server.request(&post_request(path, CT, &within)).await;
        assert_eq!((resp.status, resp.text()), (200, "5 fields".to_owned()), "{path}");
        let past = multipart_body(B, &[file, file, file, file]);
        let resp = server.request(&post_request(path, CT, &past)).await;
        assert_eq!(resp.status, 413, "{path}: {}", resp.text());
        // Fields of any kind count against `max_form_fields`.
        let fields = multipart_body(B, &[text, text, text, text, text, text]);
        let resp = server.request(&post_request(path, CT, &fields)).await;
        assert_eq!(resp.status, 413, "{path}: {}", resp.text());
    }
    server.stop().await;

    // The default, past which a form of empty files is refused.
    let server = Server::start(form_counter()).await;
    let body = |n| multipart_body(B, &vec![file; n]);
    let at = server.request(&post_request("/form", CT, &body(DEFAULT_MAX_FORM_FILES))).await;
    assert_eq!(at.status, 200, "{}", at.text());
    let past = server.request(&post_request("/form", CT, &body(10_000))).await;
    assert_eq!(past.status, 413, "{}", past.text());
    server.stop().await;
}

/// A parameter given twice (`boundary`, `name`, `filename`, `charset`), or a part's field
/// read as one value given twice, is read differently by different parsers (the first, the
/// last, or none), so what a proxy or an upload filter in front checked may not be what the
/// handler gets: each is refused with a 400, through `post()` and the streaming reader
/// alike.
#[tokio::test]
async fn repeated_parameters_are_refused() {
    let server = Server::start(app(None, &Counter::default())).await;
    let body = multipart_body(B, &[("Content-Disposition: form-data; name=\"a\"", b"1")]);
    for ct in [
        "multipart/form-data; boundary=XyZzY; boundary=other",
        "multipart/form-data; boundary=XyZzY; BOUNDARY=\"XyZzY\"",
    ] {
        for path in ["/form", "/parts"] {
            let resp = server.request(&post_request(path, ct, &body)).await;
            assert_eq!(resp.status, 400, "{path} {ct}: {}", resp.text());
        }
    }
    for disposition in [
        "Content-Disposition: form-data; name=\"a\"; name=\"b\"",
        "Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"; filename=\"a.php\"",
    ] {
        let body = multipart_body(B, &[(disposition, b"1")]);
        for path in ["/form", "/parts"] {
            let resp = server.request(&post_request(path, CT, &body)).await;
            assert_eq!(resp.status, 400, "{path} {disposition}: {}", resp.text());
        }
    }
    // A part's field read as one value, given twice.
    for fields in [
        "Content-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; name=\"b\"",
        "Content-Disposition: form-data; name=\"a\"\r\nContent-Length: 1\r\ncontent-length: 1",
        "Content-Disposition: form-data; name=\"a\"\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Transfer-Encoding: binary",
        "Content-Disposition: form-data; name=\"a\"\r\nContent-Type: text/plain\r\n\
         Content-Type: application/octet-stream",
    ] {
        let body = multipart_body(B, &[(fields, b"1")]);
        for path in ["/form", "/parts"] {
            let resp = server.request(&post_request(path, CT, &body)).await;
            assert_eq!(resp.status, 400, "{path} {fields}: {}", resp.text());
        }
    }
    let twice = "Content-Disposition: form-data; name=\"t\"\r\n\
                 Content-Type: text/plain; charset=latin1; charset=utf-8";
    let resp = post_form(&server, &multipart_body(B, &[(twice, b"caf\xe9")])).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    // Once each, the same parts are a form.
    let once = multipart_body(
        B,
        &[("Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"", b"1")],
    );
    assert_eq!(post_form(&server, &once).await.status, 200);
    server.stop().await;
}
