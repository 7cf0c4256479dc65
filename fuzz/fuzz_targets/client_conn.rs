//! The client reading responses: a real `ClientSession` (its pool, redirect loop, head
//! parser, body reader and decompressors) against a server that answers each request with
//! the next piece of the input, written in arbitrary reads.
//!
//! The session's connector dials a Unix socket, the one transport besides TCP that the
//! connector can be pointed at; the server is a listener on it in the same current-thread
//! runtime, whose clock is paused, so an answer the input leaves hanging runs into the
//! request's timeout at once.
//!
//! Input: four control bytes, then the answers, separated by `\0\0`.
//! - byte 0: the number of requests (1 to 4, low two bits); bits 2 to 5 make request i a HEAD.
//! - byte 1: how each request reads its body, two bits each: whole, piece by piece, one
//!   piece and drop, or drop unread.
//! - byte 2: the size of the writes each answer goes out in (0: whole).
//! - byte 3: bit 0, half-close the connection after each answer; bit 1, decompress.
//!
//! The invariants, besides no panic: a body error is final (a read after it fails too); a
//! connection never carries another request after a response that the sans-IO parser and
//! decoder, reading the connection's bytes whole, find broken, incomplete or closing, nor
//! after a request whose response the client failed to read (a framing error, a timeout);
//! a body never yields more than the input, or the decompression limit, holds. Requests
//! carry their number in `x-seq`, and the server records each as it arrives, even while it
//! is still writing the previous answer, so "after" is the order the client sent them in.
#![no_main]

use std::{
    cell::RefCell,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::BytesMut;
use http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use tandem_client::{ClientSession, ClientTimeout, Connector, Error};
use tandem_proto::{BodyDecoder, BodyEvent, ResponseParser};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        UnixListener,
        unix::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::mpsc,
};

/// What the decompressors may produce per response.
const MAX_DECOMPRESSED: u64 = 1 << 20;

/// Shared between the server's connection tasks and the client's loop of one input.
#[derive(Default)]
struct State {
    /// The answers not yet given, in order.
    answers: Vec<Vec<u8>>,
    /// Every request as it arrived: its connection and the client's sequence number.
    arrivals: Vec<(usize, u64)>,
    /// Connections after whose last answer the reference finds the stream broken: any
    /// request arriving on one of them is a violation.
    broken: Vec<usize>,
    /// The first violation seen.
    violation: Option<String>,
}

type Shared = Arc<Mutex<State>>;

struct Harness {
    runtime: tokio::runtime::Runtime,
    path: std::path::PathBuf,
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

fn harness() -> Harness {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let path = std::env::temp_dir().join(format!("tandem-fuzz-client-{}.sock", std::process::id()));
    Harness { runtime, path }
}

/// Reads one request head (the client sends no bodies here) and returns its method and
/// `x-seq`; `None` at EOF.
async fn read_head(read: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> Option<(Method, u64)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            let head = String::from_utf8_lossy(&head).into_owned();
            let method = head.split(' ').next().unwrap_or_default();
            let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
            let seq = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase().strip_prefix("x-seq:").map(str::to_owned)
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(u64::MAX);
            return Some((method, seq));
        }
        let mut chunk = [0; 1024];
        match read.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether the next response in `stream` (what is left of earlier answers on the
/// connection, then this one) leaves the connection reusable, by the sans-IO parser and
/// body decoder: interim heads, then a final head that keeps the connection alive and a
/// body that ends well. What follows it stays in `stream` for the next answer; the client
/// may have finished this response before those bytes arrived.
fn reusable(stream: &mut BytesMut, method: &Method) -> bool {
    loop {
        let head = match ResponseParser::new().parse(stream, method) {
            Ok(Some(head)) => head,
            Ok(None) | Err(_) => return false,
        };
        let status = head.status();
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return false;
        }
        // Interim heads are skipped whatever they say; the final one decides.
        if status.is_informational() {
            continue;
        }
        if !head.keep_alive() {
            return false;
        }
        let mut body = BodyDecoder::new(head.framing());
        loop {
            match body.decode(stream) {
                Ok(Some(BodyEvent::End)) => return true,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return false,
            }
        }
    }
}

/// The reading side of one server connection: records each request as it arrives (even
/// while the previous answer is still being written) and hands its method to the writer.
async fn read_requests(
    mut read: OwnedReadHalf,
    index: usize,
    state: Shared,
    requests: mpsc::UnboundedSender<Method>,
) {
    let mut buf = Vec::new();
    while let Some((method, seq)) = read_head(&mut read, &mut buf).await {
        {
            let mut state = state.lock().unwrap();
            state.arrivals.push((index, seq));
            if state.broken.contains(&index) && state.violation.is_none() {
                state.violation = Some(format!(
                    "request {seq} arrived on connection {index}, after a response the reference finds broken"
                ));
            }
        }
        let _ = requests.send(method);
    }
}

/// The writing side: each request takes the next answer, written `write_size` bytes at a
/// time; with no answer left, it stops writing.
async fn write_answers(
    mut write: OwnedWriteHalf,
    index: usize,
    state: Shared,
    mut requests: mpsc::UnboundedReceiver<Method>,
    (write_size, half_close): (usize, bool),
) {
    let mut stream = BytesMut::new();
    while let Some(method) = requests.recv().await {
        let answer = {
            let mut state = state.lock().unwrap();
            if state.answers.is_empty() {
                return;
            }
            let answer = state.answers.remove(0);
            stream.extend_from_slice(&answer);
            if !reusable(&mut stream, &method) {
                state.broken.push(index);
            }
            answer
        };
        let size = if write_size == 0 { answer.len().max(1) } else { write_size };
        for piece in answer.chunks(size) {
            if write.write_all(piece).await.is_err() {
                return;
            }
            // Each write arrives as its own read: the client runs before the next one (the
            // clock is paused, so this costs no time).
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if half_close {
            let _ = write.shutdown().await;
            return;
        }
    }
}

/// Whether `e` means the connection's bytes can no longer be trusted: a head or framing
/// error from the parser, or a timeout or I/O error in the middle of a response. (A body
/// that fails to decompress was framed correctly, and its connection may be reused.)
fn breaks_the_connection(e: &Error) -> bool {
    let framing = std::error::Error::source(e)
        .is_some_and(|s| s.downcast_ref::<tandem_proto::Error>().is_some());
    framing || e.is_timeout() || e.is_io() || e.is_disconnected() || e.is_response()
}

/// A read after a failed one must fail too.
async fn assert_final(resp: &mut tandem_client::ClientResponse, first: &Error) {
    let again = resp.content().read(1).await;
    assert!(again.is_err(), "a read after {first} succeeded: {again:?}");
}

/// Sends each request in turn and reads its body as told; returns the sequence numbers of
/// the requests that failed in a way that spends their connection.
async fn client(session: &ClientSession, requests: &[(bool, u8)], bound: u64) -> Vec<u64> {
    let mut failed_requests = Vec::new();
    for (seq, &(head, mode)) in (0u64..).zip(requests) {
        let builder = if head {
            session.head("http://fuzz.invalid/")
        } else {
            session.get("http://fuzz.invalid/")
        };
        let mut resp = match builder.header("x-seq", seq.to_string()).send().await {
            Ok(resp) => resp,
            Err(e) => {
                if breaks_the_connection(&e) {
                    failed_requests.push(seq);
                }
                continue;
            }
        };
        let mut received = 0u64;
        let failed = match mode {
            // Whole.
            0 => match resp.read().await {
                Ok(body) => {
                    received = body.len() as u64;
                    None
                }
                Err(e) => Some(e),
            },
            // Piece by piece, to the end.
            1 => loop {
                match resp.content().chunk().await {
                    Ok(Some(piece)) => received += piece.len() as u64,
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            },
            // One piece, then the response is dropped.
            2 => resp.content().chunk().await.err(),
            // Dropped unread.
            _ => None,
        };
        assert!(received <= bound, "{received} body bytes from a bound of {bound}");
        if let Some(e) = failed {
            assert!(!e.is_request(), "a response read failed as a request error: {e}");
            assert_final(&mut resp, &e).await;
            if breaks_the_connection(&e) {
                failed_requests.push(seq);
            }
        }
    }
    failed_requests
}

/// A request that failed spends the connection its last attempt went out on (the last to
/// arrive with its number): no later request may arrive on that connection.
fn check_failed(arrivals: &[(usize, u64)], failed: &[u64]) {
    for &seq in failed {
        let Some(&(conn, _)) = arrivals.iter().rev().find(|(_, s)| *s == seq) else { continue };
        if let Some((_, later)) = arrivals.iter().find(|(c, s)| *c == conn && *s > seq) {
            panic!(
                "request {later} went out on connection {conn} after request {seq} failed on it \
                 (arrivals: {arrivals:?})"
            );
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((control, rest)) = input.split_at_checked(4) else { return };
    let count = usize::from(control[0] & 3) + 1;
    let requests: Vec<(bool, u8)> =
        (0..count).map(|i| (control[0] >> (2 + i) & 1 == 1, control[1] >> (2 * i) & 3)).collect();
    let writes = (usize::from(control[2]), control[3] & 1 == 1);
    let decompress = control[3] & 2 == 2;
    let answers = split_answers(rest);
    let bound = (rest.len() as u64).max(MAX_DECOMPRESSED);

    HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let harness = cell.get_or_insert_with(harness);
        let state: Shared = Arc::new(Mutex::new(State { answers, ..State::default() }));
        let path = harness.path.clone();
        let failed = harness.runtime.block_on(async {
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).unwrap();
            let readers = Arc::new(Mutex::new(Vec::new()));
            let writers = Arc::new(Mutex::new(Vec::new()));
            let (accept_state, accept_readers, accept_writers) =
                (state.clone(), readers.clone(), writers.clone());
            let accept = tokio::spawn(async move {
                let mut index = 0;
                while let Ok((stream, _)) = listener.accept().await {
                    let (read, write) = stream.into_split();
                    let (tx, rx) = mpsc::unbounded_channel();
                    let reader = read_requests(read, index, accept_state.clone(), tx);
                    let writer = write_answers(write, index, accept_state.clone(), rx, writes);
                    accept_readers.lock().unwrap().push(tokio::spawn(reader));
                    accept_writers.lock().unwrap().push(tokio::spawn(writer));
                    index += 1;
                }
            });
            let session = ClientSession::builder()
                .connector(Connector::builder().unix_socket(&path).build())
                .timeout(
                    ClientTimeout::total(Duration::from_secs(30))
                        .with_sock_read(Duration::from_secs(5)),
                )
                .auto_decompress(decompress)
                .max_decompressed_size(MAX_DECOMPRESSED)
                .max_redirects(3)
                .build();
            let failed = client(&session, &requests, bound).await;
            // Every connection closes with the session; each reader then records what
            // was still on its way and ends at EOF.
            drop(session);
            accept.abort();
            let readers = std::mem::take(&mut *readers.lock().unwrap());
            for reader in readers {
                let _ = tokio::time::timeout(Duration::from_secs(60), reader).await;
            }
            for writer in std::mem::take(&mut *writers.lock().unwrap()) {
                writer.abort();
            }
            failed
        });
        let state = state.lock().unwrap();
        if let Some(violation) = &state.violation {
            panic!("{violation} (arrivals: {:?})", state.arrivals);
        }
        check_failed(&state.arrivals, &failed);
    });
});

/// The answers: the input split at each `\0\0`.
fn split_answers(all: &[u8]) -> Vec<Vec<u8>> {
    let mut answers = Vec::new();
    let mut rest = all;
    while let Some(at) = rest.windows(2).position(|w| w == b"\0\0") {
        answers.push(rest[..at].to_vec());
        rest = &rest[at + 2..];
    }
    answers.push(rest.to_vec());
    answers
}
