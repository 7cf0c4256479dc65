//! `FileResponse`: validators and conditional requests, byte ranges (`docs/security.md`,
//! F69), and the handler-facing API.
#![cfg(unix)]

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use tandem_web::{Application, FileResponse, Request, Response, file_response};

#[cfg(feature = "compression")]
use crate::files_support::decode;
use crate::files_support::{HELLO, Server, Tree, big_bytes, curl, get, request, tree};

/// `/hello` serves `hello.txt`, `/file/{name}` any file of the tree through `file_response`,
/// `/small-chunks/{name}` with 7-byte chunks, `/compressed/{name}` with compression on.
async fn serve(tree: &Tree) -> Server {
    let root = Arc::new(tree.root.clone());
    let mut app = Application::new();
    let path = tree.path("hello.txt");
    app.add_get("/hello", move |req: Request| {
        let path = path.clone();
        async move { file_response(&req, path).await }
    });
    let dir = Arc::clone(&root);
    app.add_route(None, "/file/{name}", move |req: Request| {
        let path = dir.join(req.match_info("name").unwrap_or_default());
        async move { file_response(&req, path).await }
    });
    let dir = Arc::clone(&root);
    app.add_get("/small-chunks/{name}", move |req: Request| {
        let path: PathBuf = dir.join(req.match_info("name").unwrap_or_default());
        async move { FileResponse::new(path).chunk_size(7).serve(&req).await }
    });
    let dir = Arc::clone(&root);
    app.add_get("/compressed/{name}", move |req: Request| {
        let path = dir.join(req.match_info("name").unwrap_or_default());
        async move {
            let mut response: Response = file_response(&req, path).await?;
            response.enable_compression();
            Ok::<_, tandem_web::HttpError>(response)
        }
    });
    Server::start(app).await
}

async fn validators(server: &Server) -> (String, String) {
    let reply = get(server.addr, "/hello", &[]).await;
    assert_eq!(reply.status, 200);
    (reply.header("etag").unwrap().to_owned(), reply.header("last-modified").unwrap().to_owned())
}

#[tokio::test]
async fn if_none_match_gives_304() {
    let tree = tree();
    let server = serve(&tree).await;
    let (etag, last_modified) = validators(&server).await;
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {etag}");
    for value in [etag.as_str(), "*", weak.as_str(), listed.as_str()] {
        let reply = get(server.addr, "/hello", &[("If-None-Match", value)]).await;
        assert_eq!(reply.status, 304, "{value}");
        assert!(reply.body.is_empty());
        assert_eq!(reply.header("etag"), Some(etag.as_str()));
        assert_eq!(reply.header("last-modified"), Some(last_modified.as_str()));
        assert_eq!(reply.header("content-length"), None);
    }
    for value in ["\"other\"", "garbage", "W/\"other\""] {
        let reply = get(server.addr, "/hello", &[("If-None-Match", value)]).await;
        assert_eq!((reply.status, reply.text().as_str()), (200, HELLO), "{value}");
    }
    // A method other than GET/HEAD gets 412 for a matching If-None-Match (RFC 9110 13.1.2).
    let post = request(server.addr, "POST", "/file/hello.txt", &[("If-None-Match", "*")]).await;
    assert_eq!(post.status, 412);
    // curl's own conditional request.
    let curl_reply = curl(&server.url("/hello"), &["-H", &format!("If-None-Match: {etag}")]).await;
    assert_eq!(curl_reply.status, 304);
    server.stop().await;
}

#[tokio::test]
async fn if_modified_since() {
    let tree = tree();
    let server = serve(&tree).await;
    let (_, last_modified) = validators(&server).await;
    let long_ago = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1));
    let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(10 * 365 * 86400));
    let cases = [
        (last_modified.as_str(), 304),
        (long_ago.as_str(), 200),
        (future.as_str(), 200),
        ("not a date", 200),
        ("Sun, 06 Nov 1994 08:49:37 GMT garbage", 200),
        ("", 200),
    ];
    for (value, status) in cases {
        let reply = get(server.addr, "/hello", &[("If-Modified-Since", value)]).await;
        assert_eq!(reply.status, status, "If-Modified-Since: {value}");
    }
    // If-None-Match takes precedence: a tag that does not match means 200 whatever the date.
    let both = [("If-None-Match", "\"other\""), ("If-Modified-Since", last_modified.as_str())];
    assert_eq!(get(server.addr, "/hello", &both).await.status, 200);
    let curl_reply = curl(&server.url("/hello"), &["-z", &last_modified]).await;
    assert_eq!(curl_reply.status, 304);
    server.stop().await;
}

#[tokio::test]
async fn if_match_and_if_unmodified_since_give_412() {
    let tree = tree();
    let server = serve(&tree).await;
    let (etag, last_modified) = validators(&server).await;
    let weak = format!("W/{etag}");
    let long_ago = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1));
    let cases = [
        (vec![("If-Match", "\"other\"")], 412),
        (vec![("If-Match", weak.as_str())], 412),
        (vec![("If-Match", etag.as_str())], 200),
        (vec![("If-Match", "*")], 200),
        (vec![("If-Unmodified-Since", long_ago.as_str())], 412),
        (vec![("If-Unmodified-Since", last_modified.as_str())], 200),
        (vec![("If-Unmodified-Since", "garbage")], 200),
        // If-Match wins over If-Unmodified-Since.
        (vec![("If-Match", etag.as_str()), ("If-Unmodified-Since", long_ago.as_str())], 200),
    ];
    for (headers, status) in cases {
        let reply = get(server.addr, "/hello", &headers).await;
        assert_eq!(reply.status, status, "{headers:?}");
        if status == 412 {
            assert!(reply.body.is_empty());
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn single_ranges_give_206() {
    let tree = tree();
    let server = serve(&tree).await;
    let cases = [
        ("0-4", "hello", "bytes 0-4/12"),
        ("6-", "world\n", "bytes 6-11/12"),
        ("-3", "ld\n", "bytes 9-11/12"),
        ("-1000", HELLO, "bytes 0-11/12"),
        ("0-999", HELLO, "bytes 0-11/12"),
        ("11-11", "\n", "bytes 11-11/12"),
        ("0-18446744073709551616", HELLO, "bytes 0-11/12"),
    ];
    for (range, body, content_range) in cases {
        let reply = curl(&server.url("/hello"), &["-r", range]).await;
        assert_eq!(reply.status, 206, "{range}");
        assert_eq!(reply.text(), body, "{range}");
        assert_eq!(reply.header("content-range"), Some(content_range), "{range}");
        assert_eq!(reply.header("content-length"), Some(body.len().to_string().as_str()));
    }
    // A range across several small chunks, and one deep in a big file.
    let reply = get(server.addr, "/small-chunks/hello.txt", &[("Range", "bytes=2-9")]).await;
    assert_eq!((reply.status, reply.text().as_str()), (206, "llo worl"));
    let big = big_bytes(300 * 1024 + 7);
    let reply = curl(&server.url("/file/big.bin"), &["-r", "100000-250000"]).await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body, &big[100_000..=250_000]);
    let head = request(server.addr, "HEAD", "/hello", &[("Range", "bytes=0-4")]).await;
    assert_eq!((head.status, head.header("content-length")), (206, Some("5")));
    assert!(head.body.is_empty());
    server.stop().await;
}

/// F69: every hostile range is a 416 with the size, never a multipart body.
#[tokio::test]
async fn hostile_ranges_give_416() {
    let tree = tree();
    let server = serve(&tree).await;
    let thousand = format!("bytes={}", vec!["0-0"; 1000].join(","));
    let ranges = [
        thousand.as_str(),
        "bytes=0-,0-,0-",
        "bytes=0-1,3-4",
        "bytes=5-1",
        "bytes=-0",
        "bytes=12-",
        "bytes=99999999999-",
        "bytes=99999999999999999999999-",
        "bytes=¹-²",
        "bytes=١-٢",
        "items=0-1",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes= 0-1",
        "bytes=0x1-2",
    ];
    for range in ranges {
        let started = Instant::now();
        let reply = get(server.addr, "/hello", &[("Range", range)]).await;
        let shown = &range[..range.len().min(40)];
        assert_eq!(reply.status, 416, "{shown}");
        assert_eq!(reply.header("content-range"), Some("bytes */12"), "{shown}");
        assert!(!reply.header("content-type").unwrap_or_default().contains("multipart"));
        assert!(reply.body.is_empty(), "{shown}");
        assert!(started.elapsed() < Duration::from_secs(2), "{shown}");
    }
    let empty = get(server.addr, "/file/empty.txt", &[("Range", "bytes=0-")]).await;
    assert_eq!((empty.status, empty.header("content-range")), (416, Some("bytes */0")));
    server.stop().await;
}

#[tokio::test]
async fn if_range_decides_between_206_and_200() {
    let tree = tree();
    let server = serve(&tree).await;
    let (etag, last_modified) = validators(&server).await;
    let weak = format!("W/{etag}");
    let long_ago = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1));
    let cases = [
        (etag.as_str(), 206),
        (last_modified.as_str(), 206),
        ("\"stale\"", 200),
        (weak.as_str(), 200),
        (long_ago.as_str(), 200),
        ("garbage", 200),
    ];
    for (if_range, status) in cases {
        let headers = [("Range", "bytes=0-4"), ("If-Range", if_range)];
        let reply = get(server.addr, "/hello", &headers).await;
        assert_eq!(reply.status, status, "If-Range: {if_range}");
        let body = if status == 206 { "hello" } else { HELLO };
        assert_eq!(reply.text(), body);
    }
    // A stale If-Range also overrides an otherwise unsatisfiable range: the whole file.
    let headers = [("Range", "bytes=5-1"), ("If-Range", "\"stale\"")];
    assert_eq!(get(server.addr, "/hello", &headers).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn missing_directories_and_fifos_are_404() {
    let tree = tree();
    let server = serve(&tree).await;
    for name in ["nope.txt", "sub", "fifo", "loop1"] {
        let started = Instant::now();
        let reply = get(server.addr, &format!("/file/{name}"), &[]).await;
        assert_eq!(reply.status, 404, "{name}");
        assert!(started.elapsed() < Duration::from_secs(3), "{name} blocked");
    }
    // Outside add_static there is no sandbox, but a sibling must still not be a symlink.
    let evil = get(server.addr, "/file/evil.txt", &[("Accept-Encoding", "gzip, br")]).await;
    assert_eq!((evil.status, evil.text().as_str()), (200, "evil identity"));
    server.stop().await;
}

#[cfg(feature = "compression")]
#[tokio::test]
async fn compression_of_a_file_streams_it_chunked() {
    let tree = tree();
    let server = serve(&tree).await;
    let big = big_bytes(300 * 1024 + 7);
    for coding in ["gzip", "br", "deflate"] {
        let reply = get(server.addr, "/compressed/big.bin", &[("Accept-Encoding", coding)]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-encoding"), Some(coding));
        assert_eq!(reply.header("content-length"), None, "compressed streams are chunked");
        assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
        assert!(reply.header("etag").unwrap().starts_with("W/\""), "weakened");
        assert_eq!(decode(Some(coding), &reply.body), big, "{coding}");
    }
    // A range of a file is never compressed: Content-Range counts identity bytes.
    let range = [("Accept-Encoding", "gzip"), ("Range", "bytes=0-4")];
    let reply = get(server.addr, "/compressed/hello.txt", &range).await;
    assert_eq!((reply.status, reply.header("content-encoding")), (206, None));
    assert_eq!(reply.text(), "hello");
    server.stop().await;
}
