//! `add_static`: content types, HEAD, traversal (`docs/security.md`, F64–F70), symlinks,
//! precompressed siblings, FIFOs and directory listings.
#![cfg(unix)]

use std::time::{Duration, Instant};

use tandem_web::{Application, StaticOptions};

use crate::files_support::{HELLO, Server, Tree, big_bytes, curl, get, leaks, request, tree};

async fn serve(tree: &Tree, options: StaticOptions) -> Server {
    let mut app = Application::new();
    app.add_static("/static", &tree.root, options).unwrap();
    Server::start(app).await
}

#[tokio::test]
async fn content_types_and_validators() {
    let tree = tree();
    let server = serve(&tree, StaticOptions::default()).await;
    for (file, content_type) in [
        ("hello.txt", "text/plain"),
        ("page.html", "text/html"),
        ("style.css", "text/css"),
        ("data.json", "application/json"),
        ("image.png", "image/png"),
        ("blob.unknownext", "application/octet-stream"),
    ] {
        let reply = curl(&server.url(&format!("/static/{file}")), &[]).await;
        assert_eq!(reply.status, 200, "{file}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{file}");
        assert_eq!(reply.body, std::fs::read(tree.path(file)).unwrap(), "{file}");
        assert_eq!(reply.header("content-length"), Some(reply.body.len().to_string().as_str()));
        assert_eq!(reply.header("accept-ranges"), Some("bytes"));
        assert!(reply.header("last-modified").is_some_and(|v| v.ends_with(" GMT")));
        let etag = reply.header("etag").unwrap();
        let (mtime, size) = etag.trim_matches('"').split_once('-').unwrap();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "strong: {etag}");
        assert!(u128::from_str_radix(mtime, 16).is_ok());
        assert_eq!(u64::from_str_radix(size, 16).unwrap(), reply.body.len() as u64);
    }
    let empty = curl(&server.url("/static/empty.txt"), &[]).await;
    assert_eq!((empty.status, empty.header("content-length")), (200, Some("0")));
    let alias = curl(&server.url("/static/alias.txt"), &[]).await;
    assert_eq!((alias.status, alias.text().as_str()), (200, HELLO), "a link inside the root");
    let nested = curl(&server.url("/static/sub/inner.txt"), &[]).await;
    assert_eq!((nested.status, nested.text().as_str()), (200, "inner"));
    server.stop().await;
}

#[tokio::test]
async fn big_file_is_streamed_with_its_length() {
    let tree = tree();
    let server = serve(&tree, StaticOptions::default()).await;
    let reply = curl(&server.url("/static/big.bin"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, big_bytes(300 * 1024 + 7));
    assert_eq!(reply.header("content-length"), Some("307207"));
    assert_eq!(reply.header("transfer-encoding"), None, "a file is not chunked");
    server.stop().await;
}

#[tokio::test]
async fn head_has_the_length_and_no_body() {
    let tree = tree();
    let server = serve(&tree, StaticOptions::default()).await;
    let reply = request(server.addr, "HEAD", "/static/big.bin", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("307207"));
    assert!(reply.body.is_empty(), "HEAD sent {} body bytes", reply.body.len());
    let curl_head = curl(&server.url("/static/hello.txt"), &["-I"]).await;
    assert_eq!(curl_head.header("content-length"), Some("12"));
    assert_eq!(curl_head.header("content-type"), Some("text/plain"));
    server.stop().await;
}

/// F64, F65: every traversal string, sent raw, gets exactly the answer a missing file gets,
/// and never a byte from outside the root. The parser lets them all through (none is a 400),
/// so each refusal here is the static handler's. Several name files that exist outside the
/// root, and `a%00` a file (`a`) that exists inside it, so a 404 is not luck.
#[tokio::test]
async fn traversal_set_is_the_same_404_as_a_missing_file() {
    let tree = tree();
    let server = serve(&tree, StaticOptions::default()).await;
    let missing = get(server.addr, "/static/no-such-file", &[]).await;
    assert_eq!(missing.status, 404);
    let deep = "../".repeat(12);
    let targets = [
        format!("/static/{deep}etc/passwd"),
        "/static/../../etc/passwd".to_owned(),
        "/static/../outside/secret.txt".to_owned(),
        "/static/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/static/%2e%2e/outside/secret.txt".to_owned(),
        format!("/static/{}etc/passwd", "%2E%2E%2F".repeat(12)),
        "/static/%2E%2E%2Foutside%2Fsecret.txt".to_owned(),
        format!("/static/{}etc/passwd", "..%2f".repeat(12)),
        "/static/..%2foutside%2fsecret.txt".to_owned(),
        "/static/%252e%252e/%252e%252e/etc/passwd".to_owned(),
        "/static/%252e%252e%252foutside%252fsecret.txt".to_owned(),
        "/static/..\\..\\windows\\win.ini".to_owned(),
        "/static/..\\outside\\secret.txt".to_owned(),
        "/static/..%5c..%5cwindows".to_owned(),
        "/static/..%5coutside%5csecret.txt".to_owned(),
        "/static/C:/windows/win.ini".to_owned(),
        "/static/c:%5cwindows%5cwin.ini".to_owned(),
        "/static//etc/passwd".to_owned(),
        format!("/static//{}", tree.outside.join("secret.txt").display()),
        "/static/%2fetc%2fpasswd".to_owned(),
        "/static/\\\\server\\share".to_owned(),
        "/static/%5c%5cserver%5cshare".to_owned(),
        "/static/a%00.txt".to_owned(),
        "/static/a%00".to_owned(),
        "/static/hello.txt%00.png".to_owned(),
        "/static/sub/../../outside/secret.txt".to_owned(),
        "/static/sub/%2e%2e/hello.txt".to_owned(),
        "/static/.../hello.txt".to_owned(),
        "/static/hello.txt::$DATA".to_owned(),
        // Mixed and unusual spellings of a climb: half-encoded dots, overlong UTF-8 (a
        // decoder that maps `%c0%ae` to `.`), full-width dots, IIS's `%u`, a path parameter
        // (Tomcat's `..;`), NUL and double encoding after the dots, trailing dots and spaces.
        "/static/.%2e/outside/secret.txt".to_owned(),
        "/static/%2e./outside/secret.txt".to_owned(),
        "/static/%c0%ae%c0%ae/outside/secret.txt".to_owned(),
        "/static/%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt".to_owned(),
        "/static/%ef%bc%8e%ef%bc%8e/outside/secret.txt".to_owned(),
        "/static/%u002e%u002e/outside/secret.txt".to_owned(),
        "/static/..;/outside/secret.txt".to_owned(),
        "/static/..%00/outside/secret.txt".to_owned(),
        "/static/..%252foutside%252fsecret.txt".to_owned(),
        "/static/.. /outside/secret.txt".replace(' ', "%20"),
        "/static/../outside/secret.txt.".to_owned(),
    ];
    for target in &targets {
        let reply = get(server.addr, target, &[]).await;
        assert!(!leaks(&reply), "{target} leaked: {}", reply.text());
        assert_eq!(reply.status, 404, "{target}");
        assert_eq!(reply.body, missing.body, "{target}: same body as a missing file");
        assert_eq!(reply.header("content-type"), missing.header("content-type"), "{target}");
    }
    // curl as the client, told not to normalise.
    for target in ["/static/../../etc/passwd", "/static/%2e%2e/outside/secret.txt"] {
        let reply = curl(&server.url(target), &[]).await;
        assert_eq!(reply.status, 404, "{target}");
        assert!(!leaks(&reply), "{target}");
    }
    server.stop().await;
}

/// F66: symlinks out of the root, a symlinked directory, a loop.
#[tokio::test]
async fn symlinks_stay_in_the_sandbox() {
    let tree = tree();
    let server = serve(&tree, StaticOptions::default()).await;
    for target in [
        "/static/link_out.txt",
        "/static/linkdir/secret.txt",
        "/static/linkdir/",
        "/static/linkdir",
        "/static/loop1",
        "/static/loop2/x",
    ] {
        let started = Instant::now();
        let reply = get(server.addr, target, &[("Accept-Encoding", "gzip, br")]).await;
        assert_eq!(reply.status, 404, "{target}");
        assert!(!leaks(&reply), "{target}");
        assert!(started.elapsed() < Duration::from_secs(5), "{target} was slow");
    }
    server.stop().await;
}

#[tokio::test]
async fn follow_symlinks_lets_links_out_but_not_the_url() {
    let tree = tree();
    let options = StaticOptions::default().with_follow_symlinks(true);
    let server = serve(&tree, options).await;
    let link = get(server.addr, "/static/link_out.txt", &[]).await;
    assert_eq!(link.status, 200, "the owner's link may point out");
    assert!(leaks(&link));
    let through_dir = get(server.addr, "/static/linkdir/secret.txt", &[]).await;
    assert_eq!(through_dir.status, 200);
    for target in [
        "/static/../outside/secret.txt",
        "/static/%2e%2e/outside/secret.txt",
        "/static/..%2foutside%2fsecret.txt",
        "/static//etc/passwd",
        "/static/loop1",
    ] {
        let reply = get(server.addr, target, &[]).await;
        assert_eq!(reply.status, 404, "{target}");
        assert!(!leaks(&reply), "{target}");
    }
    server.stop().await;
}

/// F66 for precompressed siblings (CVE-2024-42367) and the happy path.
#[tokio::test]
async fn precompressed_siblings() {
    let tree = tree();
    let server = serve(&tree, StaticOptions::default()).await;
    let cases = [
        ("gzip", Some("gzip"), "gzip sibling bytes"),
        ("br", Some("br"), "br sibling bytes"),
        ("gzip, deflate, br", Some("br"), "br sibling bytes"),
        ("br;q=0.5, gzip", Some("gzip"), "gzip sibling bytes"),
        ("br;q=0, gzip;q=0", None, "identity bytes"),
        ("identity", None, "identity bytes"),
        ("deflate", None, "identity bytes"),
    ];
    for (accept, coding, body) in cases {
        let reply = get(server.addr, "/static/pre.txt", &[("Accept-Encoding", accept)]).await;
        assert_eq!(reply.status, 200, "{accept}");
        assert_eq!(reply.header("content-encoding"), coding, "{accept}");
        assert_eq!(reply.text(), body, "{accept}");
        assert_eq!(reply.header("content-type"), Some("text/plain"), "{accept}");
        if coding.is_some() {
            assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
        }
    }
    let plain = get(server.addr, "/static/pre.txt", &[]).await;
    assert_eq!((plain.header("content-encoding"), plain.text().as_str()), (None, "identity bytes"));

    // A sibling that is a symlink out of the root is skipped: the identity file is sent.
    for accept in ["gzip", "br", "gzip, br"] {
        let reply = get(server.addr, "/static/evil.txt", &[("Accept-Encoding", accept)]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-encoding"), None, "{accept}");
        assert_eq!(reply.text(), "evil identity");
        let ghost = get(server.addr, "/static/ghost.txt", &[("Accept-Encoding", accept)]).await;
        assert_eq!(ghost.status, 404, "a sibling alone does not make a file");
        assert!(!leaks(&ghost));
    }
    let direct = get(server.addr, "/static/evil.txt.gz", &[]).await;
    assert_eq!(direct.status, 404);
    assert!(!leaks(&direct));
    let dir_sibling = get(server.addr, "/static/dirsib.txt", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!((dir_sibling.status, dir_sibling.text().as_str()), (200, "dirsib identity"));
    server.stop().await;
}

/// F67: a FIFO is refused at once, without opening it for reading (which would block).
#[tokio::test]
async fn fifo_is_404_without_blocking() {
    let tree = tree();
    let server = serve(&tree, StaticOptions::default().with_show_index(true)).await;
    for method in ["GET", "HEAD"] {
        let started = Instant::now();
        let reply = request(server.addr, method, "/static/fifo", &[]).await;
        assert_eq!(reply.status, 404, "{method}");
        assert!(started.elapsed() < Duration::from_secs(3), "{method} blocked");
    }
    // The listing stats the FIFO too, and must not block either.
    let listing = get(server.addr, "/static/", &[]).await;
    assert_eq!(listing.status, 200);
    assert!(listing.text().contains(">fifo</a>"));
    server.stop().await;
}

#[tokio::test]
async fn directories_without_index_are_403_and_never_redirected() {
    let tree = tree();
    let server = serve(&tree, StaticOptions::default()).await;
    for target in ["/static/sub", "/static/sub/", "/static/", "/static/sub/deeper"] {
        let reply = get(server.addr, target, &[]).await;
        assert_eq!(reply.status, 403, "{target}");
        assert_eq!(reply.header("location"), None, "{target}");
    }
    server.stop().await;
}

/// F68: names are escaped in the listing (CVE-2024-27306).
#[tokio::test]
async fn index_escapes_names() {
    let tree = tree();
    let server = serve(&tree, StaticOptions::default().with_show_index(true)).await;
    let reply = curl(&server.url("/static/"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/html; charset=utf-8"));
    let html = reply.text();
    assert!(html.contains("<title>Index of /</title>"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.txt</a>"), "{html}");
    assert!(html.contains(">&lt;script&gt;alert(&quot;x&quot;)&amp;amp.html</a>"), "{html}");
    assert!(!html.contains("<img") && !html.contains("<script"), "{html}");
    assert!(
        html.contains("href=\"/static/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt\""),
        "{html}"
    );
    assert!(html.contains("<li><a href=\"/static/sub/\">sub/</a></li>"), "{html}");
    assert!(html.contains("<li><a href=\"/static/hello.txt\">hello.txt</a></li>"), "{html}");

    // Without the trailing slash the links still point inside the directory.
    let sub = get(server.addr, "/static/sub", &[]).await;
    assert_eq!(sub.status, 200);
    assert_eq!(sub.header("location"), None);
    let html = sub.text();
    assert!(html.contains("<title>Index of /sub</title>"), "{html}");
    assert!(html.contains("href=\"/static/sub/inner.txt\""), "{html}");
    assert!(html.contains("href=\"/static/sub/deeper/\""), "{html}");
    // The linked file itself is escaped on the way back, too.
    let xss =
        curl(&server.url("/static/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt"), &[]).await;
    assert_eq!((xss.status, xss.text().as_str()), (200, "xss"));
    server.stop().await;
}

/// F70: served at `/`, a path beginning with `//` is refused, never redirected, and a
/// listing's links never start with `//`.
#[tokio::test]
async fn double_slash_paths_never_make_an_off_origin_link() {
    let tree = tree();
    let mut app = Application::new();
    app.add_static("/", &tree.root, StaticOptions::default().with_show_index(true)).unwrap();
    let server = Server::start(app).await;
    for target in ["//sub", "//evil.example/sub", "//evil.example/%2e%2e/sub", "///sub/"] {
        let reply = get(server.addr, target, &[]).await;
        assert_eq!(reply.header("location"), None, "{target}");
        assert!(!reply.text().contains("href=\"//"), "{target}");
        assert_eq!(reply.status, 404, "{target}");
    }
    let listing = get(server.addr, "/sub", &[]).await;
    assert_eq!(listing.status, 200);
    assert!(listing.text().contains("href=\"/sub/inner.txt\""), "{}", listing.text());
    assert!(!listing.text().contains("href=\"//"));
    let file = get(server.addr, "/hello.txt", &[]).await;
    assert_eq!((file.status, file.text().as_str()), (200, HELLO));
    server.stop().await;
}

#[tokio::test]
async fn add_static_checks_its_arguments() {
    let tree = tree();
    let mut app = Application::new();
    assert!(app.add_static("/s", tree.root.join("nope"), StaticOptions::default()).is_err());
    assert!(app.add_static("/s", tree.root.join("hello.txt"), StaticOptions::default()).is_err());
    assert!(app.add_static("s", &tree.root, StaticOptions::default()).is_err());
    assert!(app.add_static("/{x}", &tree.root, StaticOptions::default()).is_err());
    app.add_static("/files/", &tree.root, StaticOptions::default()).unwrap().name("files");
    let server = Server::start(app).await;
    let reply = get(server.addr, "/files/hello.txt", &[]).await;
    assert_eq!((reply.status, reply.text().as_str()), (200, HELLO));
    server.stop().await;
}

/// Reads one response off a keep-alive connection: its head, then `Content-Length` bytes of
/// body (none for HEAD); the status, the head and the body.
async fn read_one(
    stream: &mut tokio::net::TcpStream,
    pending: &mut Vec<u8>,
    head_only: bool,
) -> (u16, String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut chunk = vec![0; 64 * 1024];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ")?.parse().ok())
                .unwrap_or(0);
            let length = if head_only { 0 } else { length };
            if pending.len() >= end + 4 + length {
                let body = pending[end + 4..end + 4 + length].to_vec();
                pending.drain(..end + 4 + length);
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, head, body);
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk));
        let n = read.await.expect("the server answered within 10 s").unwrap();
        assert!(n > 0, "closed mid-response: {}", String::from_utf8_lossy(pending));
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// A file large enough to go by `sendfile` on plain TCP, and small ones from the cache,
/// whole and in ranges, on one keep-alive connection, some requests pipelined: every body
/// has exactly the file's bytes and every response is framed right for the next.
#[tokio::test]
async fn sendfile_and_cached_bodies_are_exact_on_one_connection() {
    use tokio::io::AsyncWriteExt;
    let tree = tree();
    let server = serve(&tree, StaticOptions::default()).await;
    let big = big_bytes(300 * 1024 + 7);
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut pending = Vec::new();
    let get = |path: &str, extra: &str| format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
    let cases: [(&str, &str, &[u8]); 6] = [
        ("/static/big.bin", "", &big),
        ("/static/big.bin", "Range: bytes=100000-250000\r\n", &big[100_000..=250_000]),
        ("/static/big.bin", "Range: bytes=-7\r\n", &big[big.len() - 7..]),
        ("/static/hello.txt", "", HELLO.as_bytes()),
        ("/static/hello.txt", "Range: bytes=6-\r\n", b"world\n"),
        ("/static/big.bin", "", &big),
    ];
    // Twice: the first time opens and caches the files, the second serves them from the cache.
    for round in 0..2 {
        for (path, extra, want) in cases {
            stream.write_all(get(path, extra).as_bytes()).await.unwrap();
            let (status, head, body) = read_one(&mut stream, &mut pending, false).await;
            assert_eq!(status, if extra.is_empty() { 200 } else { 206 }, "{path} {extra}");
            assert!(body == want, "round {round}: {path} {extra}: {} bytes, {head}", body.len());
        }
    }
    // Pipelined: a HEAD, the big file and a small one in one write.
    let pipelined = [
        "HEAD /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n",
        &get("/static/big.bin", ""),
        &get("/static/hello.txt", ""),
    ]
    .concat();
    stream.write_all(pipelined.as_bytes()).await.unwrap();
    let (status, head, body) = read_one(&mut stream, &mut pending, true).await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains(&format!("content-length: {}", big.len())));
    assert!(body.is_empty());
    assert!(read_one(&mut stream, &mut pending, false).await.2 == big);
    assert_eq!(read_one(&mut stream, &mut pending, false).await.2, HELLO.as_bytes());
    server.stop().await;
}

/// The open-file cache never serves a file as it was: rewritten (another size), replaced by
/// a rename (another inode, same size), small or large, removed; with no cache at all the
/// answers are the same.
#[tokio::test]
async fn a_changed_file_is_served_fresh_after_the_cache() {
    let tree = tree();
    for options in [StaticOptions::default(), StaticOptions::default().with_open_file_cache(0)] {
        let server = serve(&tree, options).await;
        let path = tree.path("fresh.txt");
        let fetch = || async { get(server.addr, "/static/fresh.txt", &[]).await };
        std::fs::write(&path, "first").unwrap();
        assert_eq!(fetch().await.text(), "first");
        assert_eq!(fetch().await.text(), "first");
        std::fs::write(&path, "the second").unwrap();
        assert_eq!(fetch().await.text(), "the second");
        let replacement = tree.path("replacement.tmp");
        std::fs::write(&replacement, "the third!").unwrap();
        std::fs::rename(&replacement, &path).unwrap();
        let reply = fetch().await;
        assert_eq!(reply.text(), "the third!");
        assert_eq!(reply.header("content-length"), Some("10"));
        // Large files, sent from the open file rather than from cached bytes.
        let (one, two) = (big_bytes(100_000), big_bytes(120_000));
        std::fs::write(&path, &one).unwrap();
        assert!(fetch().await.body == one);
        assert!(fetch().await.body == one);
        let replacement = tree.path("replacement.tmp");
        std::fs::write(&replacement, &two).unwrap();
        std::fs::rename(&replacement, &path).unwrap();
        assert!(fetch().await.body == two);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(fetch().await.status, 404);
        server.stop().await;
    }
}

/// A cached file replaced by a symlink out of the root is refused like any such link: the
/// cache answers only for the file its checks passed.
#[tokio::test]
async fn a_cached_file_swapped_for_a_link_out_of_the_root_is_refused() {
    let tree = tree();
    let server = serve(&tree, StaticOptions::default()).await;
    let path = tree.path("swap.txt");
    std::fs::write(&path, "inside").unwrap();
    assert_eq!(get(server.addr, "/static/swap.txt", &[]).await.text(), "inside");
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(tree.outside.join("secret.txt"), &path).unwrap();
    let reply = get(server.addr, "/static/swap.txt", &[]).await;
    assert_eq!(reply.status, 404);
    assert!(!leaks(&reply));
    server.stop().await;
}

/// Sends `requests` on a new connection and reads until 128 KiB of the answer have come, so
/// that the server is mid-file on a file of tens of MiB. Returns the connection, what came,
/// and where the head ends, having checked that it declares `size` bytes.
async fn mid_file(
    addr: std::net::SocketAddr,
    requests: &str,
    size: usize,
) -> (tokio::net::TcpStream, Vec<u8>, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(requests.as_bytes()).await.unwrap();
    let (mut got, mut chunk) = (Vec::new(), vec![0; 64 * 1024]);
    while got.len() < 128 * 1024 {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("the file's first bytes")
            .unwrap();
        assert!(n > 0, "closed before the body");
        got.extend_from_slice(&chunk[..n]);
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    assert!(head.contains(&format!("content-length: {size}")), "{head}");
    (stream, got, head_end)
}

/// A file that changes size while it is sent (checklist F, `docs/security.md`): one that
/// shrinks ends its body short of `Content-Length` and the connection closes, so nothing
/// after it is read as the next response and the request behind it is never answered; one
/// that grows is sent at the length its head declared, and the connection carries on.
/// (What a body holds of a file rewritten under it is whatever the file held as it went.)
#[tokio::test]
async fn a_file_that_shrinks_or_grows_while_sent_is_never_misframed() {
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let tree = tree();
    let server = serve(&tree, StaticOptions::default()).await;
    let get = |path: &str| format!("GET /static/{path} HTTP/1.1\r\nHost: t\r\n\r\n");

    // Larger than loopback's socket buffers can hold, so the server is mid-file when it
    // shrinks.
    let size = 32 << 20;
    let path = tree.path("shrinks.bin");
    std::fs::write(&path, vec![b's'; size]).unwrap();
    let requests = [get("shrinks.bin"), get("hello.txt")].concat();
    let (mut stream, mut got, head_end) = mid_file(server.addr, &requests, size).await;
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1 << 20).unwrap();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got))
        .await
        .expect("the connection closes once the file ends short")
        .unwrap();
    let body = &got[head_end..];
    assert!(body.len() < size, "a short body, {} bytes", body.len());
    // The bytes still in the socket's buffers when the file shrank may read as zeros
    // (`sendfile` queues the page cache's pages, not copies): the message is broken either
    // way, and nothing after it is another response.
    assert!(!body.windows(9).any(|w| w == b"HTTP/1.1 "), "no response after the short body");

    // Grows, as large and appended once the server is mid-file: exactly the declared
    // length is sent, and the next response follows it at once (an appended byte sent
    // would stand where that response's status line must begin).
    let path = tree.path("grows.bin");
    std::fs::write(&path, vec![b'g'; size]).unwrap();
    let (mut stream, mut got, head_end) = mid_file(server.addr, &get("grows.bin"), size).await;
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&vec![b'x'; 1 << 20]).unwrap();
    let mut chunk = vec![0; 64 * 1024];
    // The body is read a chunk at a time rather than gathered, so 32 MiB costs no
    // rescanning; whatever comes past its end is kept for the next response.
    let mut body_left = size;
    let mut rest = got.split_off(head_end);
    while rest.len() < body_left {
        assert!(rest.iter().all(|&b| b == b'g'), "only the file's first bytes in the body");
        body_left -= rest.len();
        rest.clear();
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("the rest of the body")
            .unwrap();
        assert!(n > 0, "closed mid-body, {body_left} bytes short");
        rest.extend_from_slice(&chunk[..n]);
    }
    assert!(
        rest[..body_left].iter().all(|&b| b == b'g'),
        "only the file's first bytes in the body"
    );
    let mut pending = rest.split_off(body_left);
    stream.write_all(get("hello.txt").as_bytes()).await.unwrap();
    let (status, head, body) = read_one(&mut stream, &mut pending, false).await;
    assert!(
        head.starts_with("HTTP/1.1 200 "),
        "the next response right after the body: {head:.40}"
    );
    assert_eq!((status, body.as_slice()), (200, HELLO.as_bytes()));
    server.stop().await;
}
