//! `run_app`'s options (aiohttp's): several hosts, an already bound socket, a Unix path,
//! `reuse_port`; the connection knobs `tcp_keepalive`, `lingering_time` and `read_bufsize`.

use std::{
    io::{Read, Write},
    net::SocketAddr,
    time::Duration,
};

use tandem_web::{
    AppRunner, Application, DEFAULT_READ_BUFSIZE, Request, Response, RunOptions, ServerConfig,
};

use crate::support::{Server, within};

fn hello_app() -> Application {
    let mut app = Application::new();
    app.add_get("/", |_req: Request| async { Response::text("hello") });
    app.add_post("/ignore-body", |_req: Request| async { Response::text("ignored") });
    app
}

fn get(stream: &mut (impl Read + Write)) -> String {
    stream.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn run_app_serves_several_hosts_a_given_socket_and_a_unix_path_at_once() {
    // A free port for both hosts (aiohttp's `unused_port`).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let given = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let given_addr = given.local_addr().unwrap();
    let given_seen = given.try_clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.sock");

    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = RunOptions::new("127.0.0.1", port)
        .hosts(["127.0.0.1", "127.0.0.2"])
        .socket(given)
        .unix_path(&path)
        .backlog(16)
        .reuse_port(true)
        .config(ServerConfig::default().with_stderr_log(false))
        .on_listening(move |addr| addr_tx.send(addr).unwrap());
    let server = std::thread::spawn(move || {
        options.run_until(hello_app(), || async move {
            let _ = stop_rx.await;
        })
    });
    let first: SocketAddr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("listening");
    assert_eq!(first, SocketAddr::from(([127, 0, 0, 1], port)));

    let second = SocketAddr::from(([127, 0, 0, 2], port));
    for addr in [first, second, given_addr] {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(get(&mut stream).ends_with("\r\n\r\nhello"), "{addr}");
    }
    let mut unix = std::os::unix::net::UnixStream::connect(&path).unwrap();
    unix.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(get(&mut unix).ends_with("\r\n\r\nhello"));

    // reuse_port: another listener may share the port, as a second process would.
    let sharer = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sharer.set_reuse_port(true).unwrap();
    sharer.bind(&first.into()).expect("SO_REUSEPORT lets a second listener bind");
    // tcp_keepalive (on by default) is set on the given socket, for its connections.
    assert!(socket2::SockRef::from(&given_seen).keepalive().unwrap());

    stop_tx.send(()).unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn nothing_to_listen_on_is_an_error() {
    let err = RunOptions::new("127.0.0.1", 0)
        .hosts(Vec::<String>::new())
        .run_until(hello_app(), || async {})
        .unwrap_err();
    assert!(err.to_string().contains("nothing to listen on"), "{err}");
}

#[tokio::test]
async fn tcp_keepalive_follows_the_config() {
    for on in [true, false] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let seen = socket2::SockRef::from(&listener).try_clone().unwrap();
        seen.set_keepalive(!on).unwrap();
        let config = ServerConfig::default().with_tcp_keepalive(on).with_stderr_log(false);
        let mut runner = AppRunner::with_config(hello_app(), config).unwrap();
        runner.setup().await.unwrap();
        runner.serve_tcp(listener);
        assert_eq!(seen.keepalive().unwrap(), on);
        assert!(runner.cleanup().await);
    }
    assert!(ServerConfig::default().tcp_keepalive, "on by default, as aiohttp");
}

/// A response sent before its request body was read: the connection drains what comes for
/// at most the lingering time, then closes, though the body timeout is far longer.
#[tokio::test]
async fn lingering_time_bounds_draining_an_unread_body() {
    let config = ServerConfig::default().with_lingering_time(Duration::from_millis(50));
    assert_eq!(ServerConfig::default().lingering_time, tandem_web::DEFAULT_LINGERING_TIME);
    let server = Server::start_with(hello_app(), config).await;
    let mut client = server.connect().await;
    client
        .send(b"POST /ignore-body HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await;
    assert_eq!(client.response().await.text(), "ignored");
    // Bounded by the test's timeout (10 s), well under the 60 s body timeout.
    assert!(within(client.read_to_close()).await.is_empty());
    assert!(server.stop().await);
}

/// Reads the body chunk by chunk and answers `total largest` of the chunks' sizes.
async fn chunk_sizes(mut req: Request) -> Result<Response, tandem_web::HttpError> {
    let (mut total, mut largest) = (0, 0);
    while let Some(chunk) = req.content().chunk().await? {
        total += chunk.len();
        largest = largest.max(chunk.len());
    }
    Ok(Response::text(format!("{total} {largest}")))
}

/// A streamed upload never reaches a handler in chunks larger than `read_bufsize`: not with
/// a length, not with chunked framing whose chunks are larger, and not for the bytes that
/// came in with the head (sent in the same write, so the first read takes both).
#[tokio::test]
async fn read_bufsize_bounds_every_chunk_a_handler_reads() {
    const BUFSIZE: usize = 1000;
    let mut app = Application::new();
    app.add_post("/sizes", chunk_sizes);
    let server = Server::start_with(app, ServerConfig::default().with_read_bufsize(BUFSIZE)).await;
    let mut client = server.connect().await;
    let body = vec![b'x'; 100_000];
    let mut request = b"POST /sizes HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n".to_vec();
    request.extend_from_slice(&body);
    client.send(&request).await;
    let reply = client.response().await.text();
    let (total, largest) = reply.split_once(' ').unwrap();
    assert_eq!(total, "100000");
    assert!(largest.parse::<usize>().unwrap() <= BUFSIZE, "largest chunk {largest}");

    let mut request =
        b"POST /sizes HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
    request.extend_from_slice(&body);
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    client.send(&request).await;
    let reply = client.response().await.text();
    let (total, largest) = reply.split_once(' ').unwrap();
    assert_eq!(total, "100000");
    assert!(largest.parse::<usize>().unwrap() <= BUFSIZE, "largest chunk {largest}");
    assert!(server.stop().await);
}

/// By default a large upload is read in chunks of at most `DEFAULT_READ_BUFSIZE`.
#[tokio::test]
async fn read_bufsize_defaults_to_its_constant() {
    assert_eq!(ServerConfig::default().read_bufsize, DEFAULT_READ_BUFSIZE);
    let mut app = Application::new();
    app.add_post("/sizes", chunk_sizes);
    let server = Server::start(app).await;
    let body = vec![b'x'; 2 * DEFAULT_READ_BUFSIZE + 1];
    let request = crate::support::post_request("/sizes", "application/octet-stream", &body);
    let reply = server.request(&request).await.text();
    let (total, largest) = reply.split_once(' ').unwrap();
    assert_eq!(total, body.len().to_string());
    assert!(largest.parse::<usize>().unwrap() <= DEFAULT_READ_BUFSIZE, "largest chunk {largest}");
    assert!(server.stop().await);
}

/// `read()` takes a body of declared length whole, whatever `read_bufsize`, and leaves the
/// bytes after it (a pipelined request) for the connection; a body cut short is a 400.
#[tokio::test]
async fn read_takes_a_declared_length_whole_past_read_bufsize() {
    let mut app = Application::new();
    app.add_post("/len", |mut req: Request| async move {
        let body = req.read().await?;
        let whole = body.iter().all(|b| *b == b'x');
        Ok::<_, tandem_web::HttpError>(Response::text(format!("{} {whole}", body.len())))
    });
    app.add_get("/", |_req: Request| async { Response::text("next") });
    let server = Server::start_with(app, ServerConfig::default().with_read_bufsize(1000)).await;
    let mut client = server.connect().await;
    let body = vec![b'x'; 100_000];
    let mut request = crate::support::post_request("/len", "application/octet-stream", &body);
    request.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    client.send(&request).await;
    assert_eq!(client.response().await.text(), "100000 true");
    assert_eq!(client.response().await.text(), "next");

    let mut client = server.connect().await;
    client.send(b"POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nxxxx").await;
    tokio::io::AsyncWriteExt::shutdown(&mut client.stream).await.unwrap();
    assert_eq!(client.response().await.status, 400);
    assert!(server.stop().await);
}
