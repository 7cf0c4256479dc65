//! Running an application: a Unix site, `RunOptions` workers both ways, `serve` in a
//! runtime, bind failures, the access log.

use std::{
    fmt::Write as _,
    future::IntoFuture,
    io::{Read, Write},
    sync::{Arc, Mutex},
};

use tandem_web::{AppRunner, Application, Request, Response, RunOptions, SiteAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::within;

fn hello_app() -> Application {
    let mut app = Application::new();
    app.add_get("/", |_req: Request| async { Response::text("hello") });
    app
}

#[tokio::test]
async fn a_unix_site_serves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.sock");
    let mut runner = AppRunner::new(hello_app()).unwrap();
    runner.setup().await.unwrap();
    runner.unix_site(&path).unwrap();

    let mut stream = within(tokio::net::UnixStream::connect(&path)).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    within(stream.read_to_end(&mut reply)).await.unwrap();
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nhello"), "{reply}");
    assert!(runner.cleanup().await);
}

#[tokio::test]
async fn the_runner_lists_where_its_sites_listen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.sock");
    let mut runner = AppRunner::new(hello_app()).unwrap();
    runner.setup().await.unwrap();
    assert_eq!(runner.addresses(), []);
    let first = runner.tcp_site("127.0.0.1", 0).await.unwrap();
    runner.unix_site(&path).unwrap();
    let second = runner.tcp_site("127.0.0.1", 0).await.unwrap();
    assert_ne!(first.port(), 0, "the port given, not the 0 asked for");
    assert_eq!(
        runner.addresses(),
        [SiteAddr::Tcp(first), SiteAddr::Unix(Some(path)), SiteAddr::Tcp(second)]
    );
    assert!(runner.cleanup().await);
}

/// Serves with `options` on a thread, makes `n` requests on separate connections, stops.
fn serve_and_stop(options: RunOptions, n: usize) -> Vec<String> {
    install_access_log();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = options.on_listening(move |addr| addr_tx.send(addr).unwrap());
    let server = std::thread::spawn(move || {
        options.run_until(hello_app(), || async move {
            let _ = stop_rx.await;
        })
    });
    let addr =
        addr_rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the server listens");
    let replies = (0..n)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
            stream.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            reply
        })
        .collect();
    stop_tx.send(()).unwrap();
    server.join().unwrap().unwrap();
    replies
}

#[test]
fn workers_with_reuseport_serve_and_stop() {
    let replies = serve_and_stop(RunOptions::new("127.0.0.1", 0).workers(2), 16);
    assert!(
        replies.iter().all(|r| r.starts_with("HTTP/1.1 200 OK") && r.ends_with("hello")),
        "{replies:?}"
    );
}

#[test]
fn workers_on_one_multi_thread_runtime_serve_and_stop() {
    let replies = serve_and_stop(RunOptions::new("127.0.0.1", 0).workers(2).multi_thread(true), 16);
    assert!(
        replies.iter().all(|r| r.starts_with("HTTP/1.1 200 OK") && r.ends_with("hello")),
        "{replies:?}"
    );
}

/// `tandem::access` events, with the thread that emitted each.
static ACCESS_LINES: Mutex<Vec<(std::thread::ThreadId, String)>> = Mutex::new(Vec::new());

/// The `tandem::access` lines emitted on `thread`.
pub(crate) fn access_lines(thread: std::thread::ThreadId) -> Vec<String> {
    let lines = ACCESS_LINES.lock().unwrap();
    lines.iter().filter(|(t, _)| *t == thread).map(|(_, line)| line.clone()).collect()
}

/// Records the fields of `tandem::access` events into [`ACCESS_LINES`].
///
/// Installed once as the process's global subscriber rather than as a thread-local one:
/// tracing caches each callsite's interest across threads, and a test on another thread
/// that reached the access-log callsite while a thread-local subscriber was being
/// installed could leave it cached as "never" (one run in twenty lost its lines).
struct AccessLog;

pub(crate) fn install_access_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(AccessLog).expect("no other global subscriber");
    });
}

impl tracing::Subscriber for AccessLog {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "tandem::access"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let _ = write!(self.0, "{}={value:?} ", field.name());
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        ACCESS_LINES.lock().unwrap().push((std::thread::current().id(), fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn every_request_is_in_the_access_log() {
    install_access_log();
    // The test runtime is single-threaded, so the server's lines are this thread's.
    let me = std::thread::current().id();
    let server = crate::support::Server::start(hello_app()).await;
    assert_eq!(server.get("/").await.status, 200);
    assert_eq!(server.get("/missing?x=1").await.status, 404);
    assert!(server.stop().await);
    let lines: Vec<String> = ACCESS_LINES
        .lock()
        .unwrap()
        .iter()
        .filter(|(thread, _)| *thread == me)
        .map(|(_, line)| line.clone())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("method=GET")
            && lines[0].contains("target=/ ")
            && lines[0].contains("status=200"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("target=/missing?x=1") && lines[1].contains("status=404"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn run_app_inside_a_runtime_is_an_error_that_says_so() {
    let err = tandem_web::run_app(hello_app(), "127.0.0.1", 0).unwrap_err();
    assert!(err.is_inside_runtime(), "{err}");
    assert!(err.to_string().contains("tandem_web::serve"), "{err}");
}

#[test]
fn run_until_makes_its_stop_future_inside_the_server_runtime() {
    // `tokio::time::sleep` needs a runtime where it is made, as many futures do: made
    // before `run_until` starts its runtime, it would panic.
    RunOptions::new("127.0.0.1", 0)
        .run_until(hello_app(), || tokio::time::sleep(std::time::Duration::from_millis(1)))
        .unwrap();
}

#[tokio::test]
async fn serve_in_a_runtime_drains_and_runs_the_signals() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = Mutex::new(Some(entered_tx));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut app = hello_app();
    let r = Arc::clone(&release);
    app.add_get("/slow", move |_req: Request| {
        let (r, entered) = (Arc::clone(&r), entered_tx.lock().unwrap().take());
        async move {
            let _ = entered.map(|e| e.send(()));
            r.notified().await;
            Response::text("finished")
        }
    });
    for (signal, name) in [(0, "shutdown"), (1, "cleanup")] {
        let e = Arc::clone(&events);
        let record = move |_app: tandem_web::App| {
            e.lock().unwrap().push(name);
            async { Ok::<_, tandem_web::Error>(()) }
        };
        if signal == 0 {
            app.on_shutdown(record)
        } else {
            app.on_cleanup(record)
        };
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tandem_web::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );
    let mut stream = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    stream.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    within(entered).await.unwrap();
    stop.send(()).unwrap();
    // The request in flight finishes after shutdown has begun.
    release.notify_one();
    let mut reply = String::new();
    within(stream.read_to_string(&mut reply)).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK") && reply.ends_with("finished"), "{reply}");
    within(server).await.unwrap().unwrap();
    assert_eq!(*events.lock().unwrap(), ["shutdown", "cleanup"]);
}

#[tokio::test]
async fn a_port_in_use_is_an_error_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let named = |err: tandem_web::Error| {
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert!(chain.contains(&format!("cannot listen on {addr}:")), "{chain}");
        assert!(chain.contains("in use"), "{chain}");
    };
    named(tandem_web::serve(addr, hello_app()).await.unwrap_err());
    named(tandem_web::serve(addr.to_string(), hello_app()).await.unwrap_err());
    named(tandem_web::serve(("127.0.0.1", addr.port()), hello_app()).await.unwrap_err());
    let runner = AppRunner::new(hello_app()).unwrap();
    named(runner.tcp_site("127.0.0.1", addr.port()).await.unwrap_err());
    // Outside the runtime, as `run_app` runs.
    let port = addr.port();
    let run = std::thread::spawn(move || {
        RunOptions::new("127.0.0.1", port).run_until(hello_app(), || async {})
    });
    named(run.join().unwrap().unwrap_err());
    let run = std::thread::spawn(move || {
        RunOptions::new("127.0.0.1", port).workers(2).run_until(hello_app(), || async {})
    });
    named(run.join().unwrap().unwrap_err());
    drop(taken);
}
