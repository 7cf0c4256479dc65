//! The access log: every request once, WebSockets and abandoned responses included, with
//! the bytes that went out; on stderr in aiohttp's format when no subscriber is installed.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tandem_web::{AppRunner, Application, Request, Response, ServerConfig};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Notify,
};

use crate::{
    running::{access_lines, install_access_log},
    support::{Server, within},
};

/// This thread's access lines for `target` (the test runtimes are single-threaded, so a
/// server's lines are its test's), waiting (bounded) until there are `n`.
async fn lines_for(target: &str, n: usize) -> Vec<String> {
    let me = std::thread::current().id();
    let needle = format!("target={target} ");
    within(async {
        loop {
            let lines: Vec<String> =
                access_lines(me).into_iter().filter(|l| l.contains(&needle)).collect();
            if lines.len() >= n {
                return lines;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

/// The value of `field=` in a recorded line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line.find(&format!("{name}=")).map(|i| i + name.len() + 1).expect(name);
    line[start..].split(' ').next().unwrap()
}

/// Closes with a reset rather than a FIN, as a client that gives up does.
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
}

#[tokio::test]
async fn a_websocket_style_upgrade_is_logged_once_when_its_session_ends() {
    install_access_log();
    let mut app = Application::new();
    app.add_get("/shout", crate::upgrade::shout);
    let server = Server::start(app).await;
    let raw = server
        .raw(b"GET /shout HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\nping")
        .await;
    assert!(String::from_utf8(raw).unwrap().ends_with("ready\nPING"));
    assert!(server.stop().await);
    let lines = lines_for("/shout", 1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(field(&lines[0], "status"), "101", "{lines:?}");
    // What the new protocol wrote: "ready\n" and "PING".
    assert_eq!(field(&lines[0], "bytes"), "10", "{lines:?}");
    assert_eq!(field(&lines[0], "aborted"), "false", "{lines:?}");
    let remote = field(&lines[0], "remote");
    assert!(remote.starts_with("127.0.0.1:") && !remote.contains("Some"), "{lines:?}");
}

#[tokio::test]
async fn a_client_that_goes_away_mid_body_is_logged_once_with_the_bytes_sent() {
    const CHUNK: usize = 64 * 1024;
    install_access_log();
    let more = Arc::new(Notify::new());
    let mut app = Application::new();
    let m = Arc::clone(&more);
    app.add_get("/stream", move |_req: Request| {
        let more = Arc::clone(&m);
        async move {
            let first = futures_util::stream::once(async { Ok(Bytes::from(vec![b'a'; 1000])) });
            // The rest only once the client has gone: far more than any socket buffers.
            let rest = futures_util::stream::once(async move {
                more.notified().await;
                futures_util::stream::iter((0..1024).map(|_| Ok(Bytes::from(vec![b'b'; CHUNK]))))
            });
            Response::stream(futures_util::StreamExt::chain(
                first,
                futures_util::StreamExt::flatten(rest),
            ))
        }
    });
    // A whole body far larger than the socket buffers, written straight from its buffer.
    app.add_get("/big", |_req: Request| async { Response::bytes(vec![b'x'; 64 << 20]) });
    let server = Server::start(app).await;

    let mut client = within(TcpStream::connect(server.addr)).await.unwrap();
    client.write_all(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    while !got.windows(1000).any(|w| w.iter().all(|b| *b == b'a')) {
        assert_ne!(within(client.read_buf(&mut got)).await.unwrap(), 0, "closed early");
    }
    reset(client);
    more.notify_one();
    let lines = lines_for("/stream", 1).await;
    assert_eq!(field(&lines[0], "status"), "200", "{lines:?}");
    assert_eq!(field(&lines[0], "aborted"), "true", "{lines:?}");
    let bytes: usize = field(&lines[0], "bytes").parse().unwrap();
    assert!((1000..1000 + 1024 * CHUNK).contains(&bytes), "{lines:?}");

    let mut client = within(TcpStream::connect(server.addr)).await.unwrap();
    client.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut got = vec![0; 64 * 1024];
    within(client.read_exact(&mut got)).await.unwrap();
    reset(client);
    let lines = lines_for("/big", 1).await;
    assert_eq!(field(&lines[0], "aborted"), "true", "{lines:?}");
    let bytes: usize = field(&lines[0], "bytes").parse().unwrap();
    assert!(bytes < 64 << 20, "{lines:?}");

    assert!(server.stop().await);
    // Once each.
    assert_eq!(lines_for("/stream", 1).await.len(), 1);
    assert_eq!(lines_for("/big", 1).await.len(), 1);
}

/// Runs this test binary again with only the test `name`, where no subscriber is ever
/// installed, and returns what it printed on stderr.
fn child_stderr(name: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("TANDEM_STDERR_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{name} failed:\n{stderr}");
    stderr
}

#[test]
fn without_a_subscriber_requests_and_errors_are_printed_in_aiohttps_format() {
    let stderr = child_stderr("access_log::stderr_child");
    let time = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\]";
    let line = |rest: &str| regex_lite::Regex::new(&format!("(?m)^127\\.0\\.0\\.1 {time} {rest}$"));
    let hello = line(r#""GET /\?x=1 HTTP/1\.1" 200 5 "http://ref/" "test \\"agent\\"""#).unwrap();
    assert!(hello.is_match(&stderr), "{stderr}");
    let panicked = line(r#""GET /panic HTTP/1\.1" 500 26 "-" "-""#).unwrap();
    assert!(panicked.is_match(&stderr), "{stderr}");
    let error = regex_lite::Regex::new(&format!("(?m)^{time} ERROR handler panicked: boom$"));
    assert!(error.unwrap().is_match(&stderr), "{stderr}");
    // The runner with the stderr log off printed nothing of its request.
    assert!(!stderr.contains("/quiet"), "{stderr}");
}

/// [`without_a_subscriber_requests_and_errors_are_printed_in_aiohttps_format`]'s server, run
/// in a process of its own; nothing when run with the other tests.
#[tokio::test]
async fn stderr_child() {
    if std::env::var_os("TANDEM_STDERR_CHILD").is_none() {
        return;
    }
    let mut app = Application::new();
    app.add_get("/", |_req: Request| async { "hello" });
    app.add_get("/panic", |req: Request| async move {
        assert!(req.query_get("never").is_some(), "boom");
        "unreachable"
    });
    let get = |addr, request: &'static [u8]| async move {
        let mut stream = within(TcpStream::connect(addr)).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut reply = Vec::new();
        within(stream.read_to_end(&mut reply)).await.unwrap();
    };
    let mut runner = AppRunner::new(app).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tcp_site("127.0.0.1", 0).await.unwrap();
    get(
        addr,
        b"GET /?x=1 HTTP/1.1\r\nHost: a\r\nReferer: http://ref/\r\nUser-Agent: test \"agent\"\r\n\
          Connection: close\r\n\r\n",
    )
    .await;
    get(addr, b"GET /panic HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert!(runner.cleanup().await);

    let mut app = Application::new();
    app.add_get("/quiet", |_req: Request| async { "shh" });
    let config = ServerConfig::default().with_stderr_log(false);
    let mut runner = AppRunner::with_config(app, config).unwrap();
    runner.setup().await.unwrap();
    let addr = runner.tcp_site("127.0.0.1", 0).await.unwrap();
    get(addr, b"GET /quiet HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert!(runner.cleanup().await);
}
