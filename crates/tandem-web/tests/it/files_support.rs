//! Helpers for the static-file, file-response and compression tests: a server on
//! 127.0.0.1, a raw HTTP/1.1 client that sends the bytes exactly as given (so nothing
//! normalises a hostile path), curl as an independent client, and a fixture tree.

use std::{
    fmt::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use tandem_web::{AppRunner, Application};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A running server; [`Server::stop`] shuts it down.
pub(crate) struct Server {
    runner: AppRunner,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) async fn start(app: Application) -> Server {
        let mut runner = AppRunner::new(app).expect("app freezes");
        runner.setup().await.expect("startup");
        let addr = runner.tcp_site("127.0.0.1", 0).await.expect("bind");
        Server { runner, addr }
    }

    pub(crate) async fn stop(self) {
        self.runner.cleanup().await;
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A response as read off the wire.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The first value of `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses a whole response; `dechunk` decodes a chunked body (curl has done it already).
    fn parse(raw: &[u8], dechunk: bool) -> Reply {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<_> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut reply = Reply { status, headers, body: raw[end + 4..].to_vec() };
        if dechunk && reply.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            reply.body = dechunk_body(&reply.body);
        }
        reply
    }
}

fn dechunk_body(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        assert_eq!(&data[size..size + 2], b"\r\n", "chunk data ends with CRLF");
        data = &data[size + 2..];
    }
}

/// Sends `request` as is and reads the answer until the server closes.
pub(crate) async fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        out
    };
    let out = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the server answered within 10 s");
    Reply::parse(&out, true)
}

/// `method target` with `headers`, `Connection: close`, sent raw.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut text = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(text, "{name}: {value}\r\n");
    }
    text.push_str("\r\n");
    raw(addr, text.as_bytes()).await
}

pub(crate) async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "GET", target, headers).await
}

/// curl, an independent client: `curl -s -i --path-as-is url args...`.
pub(crate) async fn curl(url: &str, args: &[&str]) -> Reply {
    let output = tokio::process::Command::new("curl")
        .args(["-s", "-i", "--path-as-is", "--max-time", "10"])
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("curl runs");
    assert!(output.status.success(), "curl {url} {args:?} failed: {output:?}");
    Reply::parse(&output.stdout, false)
}

/// Decodes a body with the named content coding (`None`: identity).
#[cfg(feature = "compression")]
pub(crate) fn decode(coding: Option<&str>, body: &[u8]) -> Vec<u8> {
    use std::io::Read;

    let mut out = Vec::new();
    match coding {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body).read_to_end(&mut out).unwrap();
        }
        Some("deflate") => {
            flate2::read::ZlibDecoder::new(body).read_to_end(&mut out).unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(body, 4096).read_to_end(&mut out).unwrap();
        }
        Some(other) => panic!("unexpected coding {other}"),
    }
    out
}

/// Secret bytes placed outside the static root: they must never appear in an answer.
pub(crate) const SECRET: &str = "TOPSECRET-outside-the-root";

/// `hello.txt`'s contents.
pub(crate) const HELLO: &str = "hello world\n";

/// A static root and a sibling directory outside it, in a temporary directory.
pub(crate) struct Tree {
    _tmp: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) outside: PathBuf,
}

impl Tree {
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// Bytes of a large file, not repetitive enough to compress to nothing.
pub(crate) fn big_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            b'a' + (state % 26) as u8
        })
        .collect()
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap();
}

/// The fixture: regular files of several types, a subdirectory, hostile names, precompressed
/// siblings (good and linked out of the root), symlinks in and out, a loop and a FIFO.
#[cfg(unix)]
pub(crate) fn tree() -> Tree {
    use std::os::unix::fs::symlink;

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    write(&outside.join("secret.txt"), SECRET.as_bytes());
    write(&outside.join("secret.gz"), SECRET.as_bytes());

    write(&root.join("hello.txt"), HELLO.as_bytes());
    write(&root.join("page.html"), b"<!doctype html><p>hi</p>");
    write(&root.join("style.css"), b"p { color: red }");
    write(&root.join("data.json"), b"{\"a\": 1}");
    write(&root.join("image.png"), b"\x89PNG\r\n\x1a\nnot really");
    write(&root.join("blob.unknownext"), b"blob");
    write(&root.join("empty.txt"), b"");
    write(&root.join("a"), b"file named a");
    write(&root.join("big.bin"), &big_bytes(300 * 1024 + 7));
    write(&root.join("sub/inner.txt"), b"inner");
    write(&root.join("<img src=x onerror=alert(1)>.txt"), b"xss");
    write(&root.join("<script>alert(\"x\")&amp.html"), b"xss");

    // Precompressed siblings that are real files.
    write(&root.join("pre.txt"), b"identity bytes");
    write(&root.join("pre.txt.gz"), b"gzip sibling bytes");
    write(&root.join("pre.txt.br"), b"br sibling bytes");
    // Siblings linked out of the root (CVE-2024-42367), and one that is a directory.
    write(&root.join("evil.txt"), b"evil identity");
    symlink(outside.join("secret.gz"), root.join("evil.txt.gz")).unwrap();
    symlink(outside.join("secret.gz"), root.join("evil.txt.br")).unwrap();
    symlink(outside.join("secret.gz"), root.join("ghost.txt.gz")).unwrap();
    write(&root.join("dirsib.txt"), b"dirsib identity");
    std::fs::create_dir(root.join("dirsib.txt.gz")).unwrap();

    // Symlinks: out of the root (file and directory), inside it, and a loop.
    symlink(outside.join("secret.txt"), root.join("link_out.txt")).unwrap();
    symlink(&outside, root.join("linkdir")).unwrap();
    symlink(root.join("hello.txt"), root.join("alias.txt")).unwrap();
    symlink(root.join("loop2"), root.join("loop1")).unwrap();
    symlink(root.join("loop1"), root.join("loop2")).unwrap();

    let fifo = root.join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());

    Tree { _tmp: tmp, root, outside }
}

/// Whether `reply` leaked anything from outside the root.
pub(crate) fn leaks(reply: &Reply) -> bool {
    let text = reply.text();
    text.contains(SECRET) || text.contains("root:") || text.contains("[fonts]")
}
