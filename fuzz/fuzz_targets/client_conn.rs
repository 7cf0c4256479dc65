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
//! decoder find broken, incomplete or closing, nor after one the client failed to read (a
//! framing error, a timeout); a body never yields more than the input, or the decompression
//! limit, holds.
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
    net::{UnixListener, UnixStream},
    task::JoinSet,
};

/// What the decompressors may produce per response.
const MAX_DECOMPRESSED: u64 = 1 << 20;

/// Shared between the server's connection tasks and the client's loop of one input.
#[derive(Default)]
struct State {
    /// The answers not yet given, in order.
    answers: Vec<Vec<u8>>,
    /// The connection each request arrived on, in order.
    requests: Vec<usize>,
    /// Connections whose response broke: none may carry another request.
    poisoned: Vec<usize>,
    /// A request arrived on a poisoned connection.
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

/// Reads one request head (the client sends no bodies here) and returns its method; `None`
/// at EOF.
async fn read_head(stream: &mut UnixStream, buf: &mut Vec<u8>) -> Option<Method> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            let method = head.split(|&b| b == b' ').next().unwrap_or_default();
            return Some(Method::from_bytes(method).unwrap_or(Method::GET));
        }
        let mut chunk = [0; 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether a client may reuse the connection after `answer` to a `method` request, by the
/// sans-IO parser and body decoder: interim heads, then a final head that keeps the
/// connection alive and a body that ends well. Bytes after it are not judged here: the
/// client may have finished the response before they arrive.
fn reusable(answer: &[u8], method: &Method) -> bool {
    let mut buf = BytesMut::from(answer);
    loop {
        let head = match ResponseParser::new().parse(&mut buf, method) {
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
            match body.decode(&mut buf) {
                Ok(Some(BodyEvent::End)) => return true,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return false,
            }
        }
    }
}

/// One server connection: each request takes the next answer, written `write_size` bytes
/// at a time; with no answer left, the connection closes.
async fn serve(
    mut stream: UnixStream,
    index: usize,
    state: Shared,
    write_size: usize,
    half_close: bool,
) {
    let mut buf = Vec::new();
    while let Some(method) = read_head(&mut stream, &mut buf).await {
        let answer = {
            let mut state = state.lock().unwrap();
            state.requests.push(index);
            if state.poisoned.contains(&index) {
                state.violation =
                    Some(format!("a request on connection {index}, after its response broke"));
            }
            if state.answers.is_empty() {
                return;
            }
            let answer = state.answers.remove(0);
            if !reusable(&answer, &method) {
                state.poisoned.push(index);
            }
            answer
        };
        let size = if write_size == 0 { answer.len().max(1) } else { write_size };
        for piece in answer.chunks(size) {
            if stream.write_all(piece).await.is_err() {
                return;
            }
            // Each write arrives as its own read: the client runs before the next one (the
            // clock is paused, so this costs no time).
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if half_close {
            let _ = stream.shutdown().await;
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

/// Marks the connection that answered the last request as one that must not be reused.
fn poison(state: &Shared) {
    let mut state = state.lock().unwrap();
    if let Some(&last) = state.requests.last() {
        state.poisoned.push(last);
    }
}

/// A read after a failed one must fail too.
async fn assert_final(resp: &mut tandem_client::ClientResponse, first: &Error) {
    let again = resp.content().read(1).await;
    assert!(again.is_err(), "a read after {first} succeeded: {again:?}");
}

async fn client(session: &ClientSession, state: &Shared, requests: &[(bool, u8)], bound: u64) {
    for &(head, mode) in requests {
        let builder = if head {
            session.head("http://fuzz.invalid/")
        } else {
            session.get("http://fuzz.invalid/")
        };
        let mut resp = match builder.send().await {
            Ok(resp) => resp,
            Err(e) => {
                if breaks_the_connection(&e) {
                    poison(state);
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
                poison(state);
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((control, rest)) = input.split_at_checked(4) else { return };
    let count = usize::from(control[0] & 3) + 1;
    let requests: Vec<(bool, u8)> =
        (0..count).map(|i| (control[0] >> (2 + i) & 1 == 1, control[1] >> (2 * i) & 3)).collect();
    let write_size = usize::from(control[2]);
    let half_close = control[3] & 1 == 1;
    let decompress = control[3] & 2 == 2;
    let answers = split_answers(rest);
    let bound = (rest.len() as u64).max(MAX_DECOMPRESSED);

    HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let harness = cell.get_or_insert_with(harness);
        let state: Shared = Arc::new(Mutex::new(State { answers, ..State::default() }));
        let path = harness.path.clone();
        harness.runtime.block_on(async {
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).unwrap();
            let mut server = JoinSet::new();
            let accept_state = state.clone();
            server.spawn(async move {
                let mut conns = JoinSet::new();
                let mut index = 0;
                while let Ok((stream, _)) = listener.accept().await {
                    conns.spawn(serve(stream, index, accept_state.clone(), write_size, half_close));
                    index += 1;
                }
            });
            let session = ClientSession::builder()
                .connector(Connector::builder().unix_socket(&path).build())
                .timeout(ClientTimeout {
                    sock_read: Some(Duration::from_secs(5)),
                    ..ClientTimeout::total(Duration::from_secs(30))
                })
                .auto_decompress(decompress)
                .max_decompressed_size(MAX_DECOMPRESSED)
                .max_redirects(3)
                .build();
            client(&session, &state, &requests, bound).await;
            drop(session);
            server.shutdown().await;
        });
        let state = state.lock().unwrap();
        if let Some(violation) = &state.violation {
            panic!("{violation} (requests per connection: {:?})", state.requests);
        }
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
