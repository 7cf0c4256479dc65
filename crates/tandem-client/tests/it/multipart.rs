//! Multipart on the client side: reading a `multipart/mixed` response part by part, and
//! writing mixed, nested and streamed bodies with `MultipartWriter`.

use tandem_client::MultipartWriter;
use tandem_web::{Application, Request, Response};

use crate::support::{RawServer, Server, read_request, session, within, write};

const MIXED: &str = "preamble\r\n--XyZ\r\ncontent-type: text/plain; charset=utf-8\r\n\r\nfirst part\r\n--XyZ\r\ncontent-type: application/json\r\ncontent-disposition: attachment; name=\"data\"; filename=\"d.json\"\r\n\r\n{\"a\":1}\r\n--XyZ--\r\n";

fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/mixed", |_req: Request| async {
        let mut r = Response::bytes(MIXED.as_bytes());
        r.set_content_type("multipart/mixed; boundary=XyZ").unwrap();
        r
    });
    app.add_get("/broken", |_req: Request| async {
        let mut r = Response::bytes(&b"--XyZ\r\ncontent-type: text/plain\r\n\r\nno end"[..]);
        r.set_content_type("multipart/mixed; boundary=XyZ").unwrap();
        r
    });
    // multer would keep the second `Content-Disposition`, aiohttp reads the first.
    app.add_get("/repeated", |_req: Request| async {
        let body = "--XyZ\r\nContent-Disposition: attachment; name=a\r\n\
                    content-disposition: attachment; name=b\r\n\r\nv\r\n--XyZ--\r\n";
        let mut r = Response::bytes(body.as_bytes());
        r.set_content_type("multipart/mixed; boundary=XyZ").unwrap();
        r
    });
    app.add_get("/plain", |_req: Request| async { Response::text("not multipart") });
    // Sends the body back with the request's content type.
    app.add_post("/echo", |mut req: Request| async move {
        let content_type = req.headers()["content-type"].to_str().unwrap().to_owned();
        let framing = req.headers().get("transfer-encoding").cloned();
        let body = req.read().await.unwrap();
        let mut r = Response::bytes(body);
        r.set_content_type(&content_type).unwrap();
        r.with_header("x-framing", framing.as_ref().map_or("length", |v| v.to_str().unwrap()))
    });
    app
}

#[tokio::test]
async fn a_multipart_response_is_read_part_by_part() {
    let server = Server::start(app()).await;
    let s = session();
    let resp = within(s.get(&server.url("/mixed")).send()).await.unwrap();
    let mut parts = resp.multipart().unwrap();
    let first = within(parts.next_part()).await.unwrap().unwrap();
    assert_eq!(first.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(first.name(), None);
    assert_eq!(within(first.text()).await.unwrap(), "first part");
    let second = within(parts.next_part()).await.unwrap().unwrap();
    assert_eq!((second.name(), second.filename()), (Some("data"), Some("d.json")));
    assert_eq!(within(second.bytes()).await.unwrap(), r#"{"a":1}"#);
    assert!(within(parts.next_part()).await.unwrap().is_none());

    // A body that stops before its closing boundary is a payload error.
    let resp = within(s.get(&server.url("/broken")).send()).await.unwrap();
    let mut parts = resp.multipart().unwrap();
    let outcome = async {
        let mut part = parts.next_part().await?.expect("a first part");
        while part.chunk().await?.is_some() {}
        parts.next_part().await.map(|_| ())
    };
    assert!(within(outcome).await.unwrap_err().is_payload());

    let resp = within(s.get(&server.url("/plain")).send()).await.unwrap();
    let e = resp.multipart().unwrap_err();
    assert!(e.is_decode() && e.request_info().is_some());
    server.stop().await;
}

#[tokio::test]
async fn multipart_writer_mixed_nested_and_streamed() {
    let server = Server::start(app()).await;
    let s = session();
    let pieces =
        ["streamed ", "in ", "pieces"].map(|p| Ok::<_, std::io::Error>(bytes::Bytes::from(p)));
    let nested = MultipartWriter::new("alternative")
        .append_text("plain", "text/plain")
        .append("<b>rich</b>", "text/html");
    let writer = MultipartWriter::with_boundary("mixed", "outer-boundary")
        .unwrap()
        .append_json(&serde_json::json!({"id": 7}))
        .unwrap()
        .append_form([("a", "1 2"), ("b", "&")])
        .append_stream(futures_util::stream::iter(pieces), "application/octet-stream")
        .append_multipart(nested);
    let resp = within(s.post(&server.url("/echo")).multipart_writer(writer).send()).await.unwrap();
    assert_eq!(resp.headers()["x-framing"], "chunked");
    assert_eq!(resp.content_type(), "multipart/mixed");
    let mut parts = resp.multipart().unwrap();
    let mut seen = Vec::new();
    while let Some(part) = within(parts.next_part()).await.unwrap() {
        let kind = part.content_type().unwrap_or_default().to_owned();
        seen.push((
            kind,
            String::from_utf8_lossy(&within(part.bytes()).await.unwrap()).into_owned(),
        ));
    }
    assert_eq!(seen[0], ("application/json".to_owned(), r#"{"id":7}"#.to_owned()));
    assert_eq!(seen[1], ("application/x-www-form-urlencoded".to_owned(), "a=1+2&b=%26".to_owned()));
    assert_eq!(seen[2].1, "streamed in pieces");
    assert!(seen[3].0.starts_with("multipart/alternative; boundary="), "{seen:?}");
    assert!(seen[3].1.contains("text/html\r\n\r\n<b>rich</b>\r\n"), "{seen:?}");
    assert!(seen[3].1.ends_with("--\r\n"), "the nested body is closed");
    assert_eq!(seen.len(), 4);

    // Without the closing boundary (an MJPEG stream's shape), the body just stops.
    let open = MultipartWriter::with_boundary("x-mixed-replace", "frame")
        .unwrap()
        .append("jpeg", "image/jpeg");
    let mut resp =
        within(s.post(&server.url("/echo")).multipart_writer(open.close_boundary(false)).send())
            .await
            .unwrap();
    let body = within(resp.read()).await.unwrap();
    assert_eq!(body, "--frame\r\ncontent-type: image/jpeg\r\n\r\njpeg\r\n");
    assert!(MultipartWriter::with_boundary("mixed", "bad boundary\r\n").is_err());
    server.stop().await;
}

/// aiohttp's `part.set_content_encoding`: each part encoded by itself, a streamed one as it
/// is read, and named so in its own `Content-Encoding`.
#[cfg(feature = "compression")]
#[tokio::test]
async fn multipart_writer_parts_are_encoded_by_their_content_encoding() {
    use std::io::Read;

    use tandem_client::Compression;

    let server = Server::start(app()).await;
    let s = session();
    let text = "a line that compresses well\n".repeat(200);
    let pieces = text.as_bytes().chunks(1000).map(|c| Ok::<_, std::io::Error>(c.to_vec().into()));
    let writer = MultipartWriter::new("mixed")
        .append_stream(futures_util::stream::iter(pieces.collect::<Vec<_>>()), "text/plain")
        .content_encoding(Compression::Gzip)
        .unwrap()
        .append(text.clone(), "text/plain")
        .content_encoding(Compression::Deflate)
        .unwrap()
        .append("as it is", "text/plain");
    let resp = within(s.post(&server.url("/echo")).multipart_writer(writer).send()).await.unwrap();
    let mut parts = resp.multipart().unwrap();
    let mut seen = Vec::new();
    while let Some(part) = within(parts.next_part()).await.unwrap() {
        let coding = part.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_owned());
        seen.push((coding, within(part.bytes()).await.unwrap()));
    }
    assert_eq!(seen.len(), 3);
    let mut decoded = String::new();
    assert_eq!(seen[0].0.as_deref(), Some("gzip"));
    flate2::read::GzDecoder::new(&seen[0].1[..]).read_to_string(&mut decoded).unwrap();
    assert_eq!(decoded, text);
    assert!(seen[0].1.len() < text.len() / 10, "not compressed: {} bytes", seen[0].1.len());
    decoded.clear();
    assert_eq!(seen[1].0.as_deref(), Some("deflate"));
    flate2::read::ZlibDecoder::new(&seen[1].1[..]).read_to_string(&mut decoded).unwrap();
    assert_eq!(decoded, text);
    assert_eq!((seen[2].0.as_deref(), &seen[2].1[..]), (None, &b"as it is"[..]));

    // Nothing to encode, or a part already encoded by its caller: refused, not encoded twice.
    assert!(MultipartWriter::new("mixed").content_encoding(Compression::Gzip).is_err());
    let mut own = http::HeaderMap::new();
    own.insert("content-encoding", http::HeaderValue::from_static("br"));
    let twice = MultipartWriter::new("mixed").append_with_headers(own, "..");
    assert!(twice.content_encoding(Compression::Gzip).is_err());
    server.stop().await;
}

/// A multipart response whose part head (or preamble) never ends is refused once it passes a
/// bound, as the server refuses such an upload (`tandem_proto::MAX_PART_HEAD`, aiohttp
/// CVE-2026-34516), rather than buffered by multer for as long as the server sends it.
#[tokio::test]
async fn a_part_head_that_never_ends_is_refused() {
    let server = RawServer::start(|mut stream, _| async move {
        read_request(&mut stream).await;
        let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX: ";
        write(&mut stream, head.as_bytes()).await;
        let line = vec![b'a'; 64 * 1024];
        for _ in 0..64 {
            write(&mut stream, &line).await;
        }
        // Held open: the head never ends.
        read_request(&mut stream).await;
    })
    .await;
    let resp = within(session().get(&server.url("/")).send()).await.unwrap();
    let mut parts = resp.multipart().unwrap();
    let e = within(parts.next_part()).await.unwrap_err();
    assert!(e.is_payload(), "{e:?}");
}

/// A part whose head gives a field read as one value twice is refused, as the server refuses
/// such an upload, rather than read by whichever copy multer keeps.
#[tokio::test]
async fn a_part_repeating_a_field_read_as_one_is_refused() {
    let server = Server::start(app()).await;
    let resp = within(session().get(&server.url("/repeated")).send()).await.unwrap();
    let mut parts = resp.multipart().unwrap();
    let e = within(parts.next_part()).await.unwrap_err();
    assert!(e.is_payload(), "{e:?}");
    server.stop().await;
}
