//! The server's real connection loop, fed arbitrary byte streams in arbitrary reads over an
//! in-memory duplex, into an app whose handlers read the body whole, read one chunk, read
//! it to the end swallowing errors, or ignore it (chosen by the path's first letter).
//!
//! The invariant: handlers see only requests that the sans-IO parser and body decoder,
//! run over the same bytes, find before the first framing error or `Connection: close`,
//! in order. A request smuggled past a broken body, or one parsed after a close, is a
//! target the reference never reached. Panics and unbounded memory are libFuzzer's to
//! catch.
#![no_main]

use std::{
    cell::RefCell,
    sync::{Arc, Mutex},
};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tandem_proto::{BodyDecoder, BodyEvent, Limits, RequestParser};
use tandem_web::{AppRunner, Application, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Seen = Arc<Mutex<Vec<String>>>;

struct Harness {
    runtime: tokio::runtime::Runtime,
    runner: AppRunner,
    seen: Seen,
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

async fn handle(mut req: Request, seen: Seen) -> Response {
    let target = req.head().target().to_owned();
    seen.lock().unwrap().push(target);
    let first = req.path().as_bytes().get(1).copied();
    match first {
        Some(b'r') => match req.read().await {
            Ok(body) => Response::bytes(body),
            Err(err) => Response::text(err.text()).with_status(err.status()),
        },
        Some(b'p') => {
            let _ = req.content().chunk().await;
            Response::text("partial")
        }
        Some(b's') => {
            let mut n = 0;
            while let Ok(Some(chunk)) = req.content().chunk().await {
                n += chunk.len();
            }
            // The error, if any, is swallowed: the handler answers as if all went well.
            Response::text(n.to_string())
        }
        _ => Response::text("ignored"),
    }
}

fn harness() -> Harness {
    // Paused time: a wait the input leaves hanging (a body that never ends) runs into its
    // timeout at once instead of stalling the fuzzer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let seen: Seen = Arc::default();
    let mut app = Application::new();
    let s = Arc::clone(&seen);
    app.add_route(None, "/{tail:.*}", move |req: Request| handle(req, Arc::clone(&s)));
    let mut runner = AppRunner::new(app).unwrap();
    runtime.block_on(runner.setup()).unwrap();
    Harness { runtime, runner, seen }
}

/// The targets a correct server may dispatch from `input`, in order: each request the
/// parser finds, up to and including the first whose body breaks or that ends the
/// connection.
fn reachable(input: &[u8]) -> Vec<String> {
    let limits = Limits::default();
    let mut parser = RequestParser::with_limits(limits);
    let mut buf = BytesMut::from(input);
    let mut targets = Vec::new();
    while let Ok(Some(head)) = parser.parse(&mut buf) {
        targets.push(head.target().to_owned());
        if !head.keep_alive() {
            break;
        }
        let mut body = BodyDecoder::with_limits(head.framing(), parser.limits());
        let complete = loop {
            match body.decode(&mut buf) {
                Ok(Some(BodyEvent::End)) => break true,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break false,
            }
        };
        if !complete {
            break;
        }
    }
    targets
}

/// Whether `sub` appears in `all` in order (handlers are not called for unrouted targets).
fn is_subsequence(sub: &[String], all: &[String]) -> bool {
    let mut all = all.iter();
    sub.iter().all(|s| all.any(|a| a == s))
}

fuzz_target!(|input: &[u8]| {
    // The first four bytes choose the sizes of the reads the rest arrives in.
    let Some((sizes, data)) = input.split_at_checked(4) else { return };
    let sizes: Vec<usize> = sizes.iter().map(|&b| usize::from(b).max(1)).collect();
    HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let harness = cell.get_or_insert_with(harness);
        harness.seen.lock().unwrap().clear();
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let serve = harness.runner.serve_connection(server, None);
        let (mut client_read, mut client_write) = tokio::io::split(&mut client);
        harness.runtime.block_on(async {
            let write = async {
                let mut rest = data;
                for &size in sizes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (now, later) = rest.split_at(size.min(rest.len()));
                    if client_write.write_all(now).await.is_err() {
                        return;
                    }
                    rest = later;
                    tokio::task::yield_now().await;
                }
                let _ = client_write.shutdown().await;
            };
            let read = async {
                let mut out = Vec::new();
                let _ = client_read.read_to_end(&mut out).await;
            };
            tokio::join!(serve, write, read);
        });
        // A connection that opens with HTTP/2's preface is served as h2c, whose requests
        // this HTTP/1.1 oracle cannot list; it must still end, which the run above shows.
        if data.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") {
            return;
        }
        let seen = harness.seen.lock().unwrap().clone();
        let allowed = reachable(data);
        assert!(
            is_subsequence(&seen, &allowed),
            "dispatched {seen:?}, but only {allowed:?} are reachable"
        );
    });
});
