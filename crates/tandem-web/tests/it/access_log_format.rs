//! The access log's format strings (aiohttp's `access_log_format`): every atom, text from
//! the client escaped, the client behind a trusted proxy and only there, over HTTP/1.1 and
//! HTTP/2, to a writer and as tracing events.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use tandem_web::{
    AccessLog, AccessLogFormat, Application, ErrorFormat, Request, Response, RunOptions,
    ServerConfig, TrustedProxies,
};

use crate::support::Server;

/// A writer the test reads back: the server's lines, whole.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "a line cut short: {text:?}");
        text.lines().map(str::to_owned).collect()
    }
}

/// `/all` answers `hello` with `X-Out: t-1`.
fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/all", |_req: Request| async {
        let mut response = Response::text("hello");
        response.headers_mut().insert("x-out", "t-1".parse().unwrap());
        response
    });
    app
}

/// A server of `app` logging in `format` to the returned lines.
async fn serve(app: Application, format: &str) -> (Server, Lines) {
    let lines = Lines::default();
    let config = ServerConfig::default()
        .with_access_log(AccessLog::writer(lines.clone()))
        .with_access_log_format(AccessLogFormat::new(format).unwrap());
    (Server::start_with(app, config).await, lines)
}

#[tokio::test]
async fn every_atom_of_aiohttps_format_is_written() {
    let format = "%a|%t|%P|%r|%s|%b|%T|%Tf|%D|%{User-Agent}i|%{Referer}i|%{X-Out}o|%{PATH}e|%%";
    let (server, lines) = serve(app(), format).await;
    let reply = server
        .raw(
            b"GET /all?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: probe/1\r\nConnection: close\r\n\r\n",
        )
        .await;
    assert!(reply.starts_with(b"HTTP/1.1 200 OK"));
    assert!(server.stop().await);
    let lines = lines.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let fields: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(fields.len(), 14, "{lines:?}");
    assert_eq!(fields[0], "127.0.0.1");
    let time = regex_lite::Regex::new(r"^\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\]$");
    assert!(time.unwrap().is_match(fields[1]), "{lines:?}");
    assert_eq!(fields[2], std::process::id().to_string());
    assert_eq!(fields[3..6], ["GET /all?x=1 HTTP/1.1", "200", "5"]);
    assert_eq!(fields[6], "0", "{lines:?}");
    let seconds: f64 = fields[7].parse().unwrap();
    assert_eq!(fields[7].split_once('.').map(|(_, f)| f.len()), Some(6), "{lines:?}");
    let micros: f64 = fields[8].parse().unwrap();
    assert!((seconds * 1e6 - micros).abs() <= 1.0, "{lines:?}");
    assert_eq!(fields[9..12], ["probe/1", "-", "t-1"]);
    assert_eq!(fields[12], std::env::var("PATH").unwrap());
    assert_eq!(fields[13], "%");
}

#[tokio::test]
async fn a_client_cannot_end_a_field_or_forge_a_line() {
    let (server, lines) = serve(app(), r#"%a "%r" %s "%{User-Agent}i""#).await;
    // A tab (the one control byte a field value may hold), quotes and a backslash, and a
    // byte that is not UTF-8.
    let hostile = b"GET /all?q=%22x HTTP/1.1\r\nHost: a\r\nUser-Agent: a\tb\" 200 \"c\\d\xff\r\n\
                    Connection: close\r\n\r\n";
    let reply = server.raw(hostile).await;
    assert!(reply.starts_with(b"HTTP/1.1 200 OK"), "{}", String::from_utf8_lossy(&reply));
    // A bare LF inside a field, to start a line of its own: refused, and nothing forged.
    let forged = b"GET /all HTTP/1.1\r\nHost: a\r\n\
                   User-Agent: x\n127.0.0.1 \"GET /admin HTTP/1.1\" 200 \"-\"\r\n\r\n";
    assert!(server.raw(forged).await.starts_with(b"HTTP/1.1 400"));
    assert!(server.stop().await);
    let lines = lines.lines();
    assert_eq!(
        lines,
        ["127.0.0.1 \"GET /all?q=%22x HTTP/1.1\" 200 \"a\\x09b\\\" 200 \\\"c\\\\d\u{fffd}\""],
        "{lines:?}"
    );
}

#[tokio::test]
async fn the_client_is_the_one_a_trusted_proxy_names_and_no_one_else() {
    let request = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\n\
             Connection: close\r\n\r\n"
        )
    };
    // From a peer that is not a trusted proxy, the header is the client's own word.
    let mut untrusting = app();
    untrusting.middleware(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
    let (server, lines) = serve(untrusting, "%a %s").await;
    server.raw(request("/all").as_bytes()).await;
    assert!(server.stop().await);
    assert_eq!(lines.lines(), ["127.0.0.1 200"]);

    // Through a trusted proxy: the client it names, an error rendered by the application
    // included.
    let mut trusting = app();
    trusting.middleware(TrustedProxies::new(["127.0.0.1"]).unwrap());
    trusting.error_renderer(ErrorFormat::Json);
    let (server, lines) = serve(trusting, "%a %s").await;
    server.raw(request("/all").as_bytes()).await;
    server.raw(request("/missing").as_bytes()).await;
    assert!(server.stop().await);
    assert_eq!(lines.lines(), ["203.0.113.9 200", "203.0.113.9 404"]);
}

#[tokio::test]
async fn with_a_format_a_tracing_event_has_the_line_for_its_message() {
    let me = std::thread::current().id();
    let config = ServerConfig::default()
        .with_access_log(AccessLog::Tracing)
        .with_access_log_format(AccessLogFormat::new("%s %{X-Out}o %r").unwrap());
    let server = Server::start_with(app(), config).await;
    server.raw(b"GET /all?traced HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert!(server.stop().await);
    let lines = crate::running::access_lines(me);
    let line = lines.iter().find(|l| l.contains("target=/all?traced ")).expect("an event");
    assert!(line.starts_with("message=200 t-1 GET /all?traced HTTP/1.1 "), "{line}");
    assert!(line.contains("status=200 ") && line.contains("peer=127.0.0.1:"), "{line}");
}

#[test]
fn a_bad_format_is_refused_when_the_server_is_configured() {
    let err = AccessLogFormat::new("%a %Q").unwrap_err();
    assert!(err.is_access_log_format(), "{err}");
    assert!(err.to_string().contains("%Q"), "{err}");
    let err = RunOptions::new("127.0.0.1", 0).access_log_format("%{Referer").unwrap_err();
    assert!(err.is_access_log_format(), "{err}");
}

#[tokio::test]
async fn access_log_off_writes_nothing() {
    let me = std::thread::current().id();
    let config = ServerConfig::default().with_access_log(AccessLog::Off);
    let server = Server::start_with(app(), config).await;
    server.raw(b"GET /all?unlogged HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert!(server.stop().await);
    let lines = crate::running::access_lines(me);
    assert!(!lines.iter().any(|l| l.contains("unlogged")), "{lines:?}");
}

#[cfg(feature = "http2")]
#[tokio::test]
async fn http2_requests_are_written_in_the_format_too() {
    let format = r#"%a "%r" %s %b "%{User-Agent}i" "%{X-Out}o""#;
    let (server, lines) = serve(app(), format).await;
    let curl = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--http2-prior-knowledge", "-A", "h2 \"agent\"\t1"])
        .arg(server.url("/all?x=2"))
        .kill_on_drop(true)
        .output();
    let out = crate::support::within(curl).await.expect("curl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"hello");
    assert!(server.stop().await);
    assert_eq!(
        lines.lines(),
        [r#"127.0.0.1 "GET /all?x=2 HTTP/2.0" 200 5 "h2 \"agent\"\x091" "t-1""#]
    );
}
