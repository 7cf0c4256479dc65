//! A response body whose framing breaks is final for its connection: the error is a payload
//! error, every later read returns it again, and the connection is never reused, however
//! the caller goes on (reads again, drops the response, or the redirect loop drains it).
//! Each broken body is followed, in the same write, by a well-formed response: a client
//! that read on, or pooled the connection, would take it as the next one.

use std::sync::{Arc, Mutex};

use tandem_client::ClientSession;
use tokio::io::AsyncWriteExt;

use crate::support::{RawServer, read_request, session, within, write};

/// What a client must never read: a response smuggled after the broken body.
const SMUGGLED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled";

/// Chunked bodies that begin with a good chunk (`ok`) and then break.
const BROKEN_CHUNKED: [&[u8]; 9] = [
    // A sign, a `0x` prefix, whitespace inside the size.
    b"2\r\nok\r\n+3\r\nabc\r\n0\r\n\r\n",
    b"2\r\nok\r\n0x3\r\nabc\r\n0\r\n\r\n",
    b"2\r\nok\r\n3 3\r\nabc\r\n0\r\n\r\n",
    // 17 hex digits: one that overflows, and one that would fit.
    b"2\r\nok\r\n10000000000000000\r\nabc\r\n0\r\n\r\n",
    b"2\r\nok\r\n00000000000000003\r\nabc\r\n0\r\n\r\n",
    // Chunk data not followed by CRLF (the 0 that follows is never a last chunk).
    b"2\r\nok\r\n5\r\nABCDE0\r\n\r\n",
    b"2\r\nok\r\n5\r\nABCDEXX\r\n0\r\n\r\n",
    // A bare LF inside a chunk extension (aiohttp's CVE-2024-52304).
    b"2\r\nok\r\n3;a\nb\r\nabc\r\n0\r\n\r\n",
    // Not hex at all.
    b"2\r\nok\r\nzz\r\nabc\r\n0\r\n\r\n",
];

/// A server whose first connection answers its first request with `head` and `body` (and
/// the smuggled response after it), or, with `eof`, with `head` and `body` and then a
/// half-close; every later request gets `fresh`. It records, per request, the connection it
/// came on, and keeps every connection open as long as the client does.
async fn broken_then_fresh(
    head: &'static [u8],
    body: &'static [u8],
    eof: bool,
) -> (RawServer, Arc<Mutex<Vec<usize>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = RawServer::start(move |mut stream, index| {
        let record = record.clone();
        async move {
            while read_request(&mut stream).await.is_some() {
                let first = {
                    let mut seen = record.lock().unwrap();
                    seen.push(index);
                    seen.len() == 1
                };
                if !first {
                    write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh").await;
                    continue;
                }
                let mut response = [head, body].concat();
                if !eof {
                    response.extend_from_slice(SMUGGLED);
                }
                write(&mut stream, &response).await;
                if eof {
                    // Half-closed: a client that pooled the connection could still write a
                    // request on it, and the server would see it.
                    let _ = stream.shutdown().await;
                }
            }
        }
    })
    .await;
    (server, seen)
}

/// After the broken first response, a second request is answered `fresh` on a second
/// connection, and the first connection never carried another request.
async fn next_request_is_fresh(s: &ClientSession, server: &RawServer, seen: &Mutex<Vec<usize>>) {
    let mut resp = within(s.get(&server.url("/next")).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "fresh");
    assert_eq!(server.connections(), 2, "the broken connection was not reused");
    assert_eq!(*seen.lock().unwrap(), [0, 1]);
}

/// Every way a body can break, each as `(head, body, eof)`.
fn cases() -> Vec<(&'static [u8], &'static [u8], bool)> {
    let chunked = &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..];
    let mut cases: Vec<_> = BROKEN_CHUNKED.iter().map(|body| (chunked, *body, false)).collect();
    // The connection ends in the middle of the body: by length, and inside a chunk.
    cases.push((b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", b"ok", true));
    cases.push((chunked, b"2\r\nok\r\n5\r\nab", true));
    cases
}

#[tokio::test]
async fn a_broken_body_fails_every_read_and_is_never_reused() {
    for (head, body, eof) in cases() {
        let case = String::from_utf8_lossy(body);
        let (server, seen) = broken_then_fresh(head, body, eof).await;
        let s = session();
        let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
        // The good part comes out as it arrived (with the data of a chunk that is cut short
        // or lacks its CRLF: it is handed out before its end is seen); then the error, never
        // the end of the body, and the same error again.
        let mut received = Vec::new();
        let e = loop {
            match within(resp.content().chunk()).await {
                Ok(Some(piece)) => received.extend_from_slice(&piece),
                Ok(None) => panic!("{case:?}: a broken body read as complete"),
                Err(e) => break e,
            }
        };
        assert!(e.is_payload(), "{case:?}: {e}");
        let data = ["ok", "okABCDE", "okab"].map(str::as_bytes);
        assert!(data.contains(&&received[..]), "{case:?}: {received:?}");
        let again = within(resp.read()).await.unwrap_err();
        assert!(again.is_payload(), "{case:?}: {again}");
        let again = within(resp.content().read(1)).await.unwrap_err();
        assert!(again.is_payload(), "{case:?}: {again}");
        assert!(!resp.content().at_eof());
        drop(resp);
        next_request_is_fresh(&s, &server, &seen).await;
    }
}

#[tokio::test]
async fn a_broken_body_read_whole_then_dropped_is_never_reused() {
    for (head, body, eof) in cases() {
        let case = String::from_utf8_lossy(body);
        let (server, seen) = broken_then_fresh(head, body, eof).await;
        let s = session();
        let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
        let e = within(resp.text()).await.unwrap_err();
        assert!(e.is_payload(), "{case:?}: {e}");
        // Read again as a whole: the error, not the body cut short; nor any of its bytes.
        let again = within(resp.read()).await.unwrap_err();
        assert!(again.is_payload(), "{case:?}: {again}");
        let again = within(resp.content().read(1)).await.unwrap_err();
        assert!(again.is_payload(), "{case:?}: {again}");
        let again = within(resp.content().readline()).await.unwrap_err();
        assert!(again.is_payload(), "{case:?}: {again}");
        drop(resp);
        next_request_is_fresh(&s, &server, &seen).await;
    }
}

#[tokio::test]
async fn a_broken_redirect_body_is_not_reused_by_the_next_hop() {
    // The redirect loop drains a redirect's body to reuse its connection; a broken one
    // must close it instead, and the next hop go out on a new connection.
    for (_, body, eof) in cases() {
        let case = String::from_utf8_lossy(body);
        let head: &'static [u8] = if body.starts_with(b"ok") {
            b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 10\r\n\r\n"
        } else {
            b"HTTP/1.1 302 Found\r\nLocation: /next\r\nTransfer-Encoding: chunked\r\n\r\n"
        };
        let (server, seen) = broken_then_fresh(head, body, eof).await;
        let s = session();
        let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
        assert_eq!(within(resp.text()).await.unwrap(), "fresh", "{case:?}");
        assert_eq!(resp.history().len(), 1);
        assert_eq!(server.connections(), 2, "{case:?}: the broken connection was not reused");
        assert_eq!(*seen.lock().unwrap(), [0, 1], "{case:?}");
    }
}

/// A body that cannot be decompressed fails every later read too, rather than reading on
/// past the bytes that did not decode.
#[cfg(feature = "compression")]
#[tokio::test]
async fn a_body_that_does_not_decompress_fails_every_read() {
    let server = RawServer::start(|mut stream, _| async move {
        while read_request(&mut stream).await.is_some() {
            write(
                &mut stream,
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 12\r\n\r\nnot gzip at all!",
            )
            .await;
        }
    })
    .await;
    let mut resp = within(session().get(&server.url("/")).send()).await.unwrap();
    let e = within(resp.read()).await.unwrap_err();
    assert!(e.is_payload(), "{e}");
    for _ in 0..2 {
        let again = within(resp.read()).await.unwrap_err();
        assert!(again.is_payload(), "{again}");
    }
}
