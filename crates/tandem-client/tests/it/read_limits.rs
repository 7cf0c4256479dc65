//! The response head's limits (`max_line_size`, `max_field_size`, `max_headers`) and
//! `read_bufsize`, on the session and per request (aiohttp's row 9), against raw listeners
//! that send heads past them.

use std::sync::Arc;

use tandem_client::{ClientSession, DEFAULT_MAX_FIELD_SIZE, DEFAULT_MAX_LINE_SIZE, Error};

use crate::support::{RawServer, read_request, session, within, write};

/// A server answering every request on every connection with `response`.
async fn always(response: Vec<u8>) -> RawServer {
    let response = Arc::new(response);
    RawServer::start(move |mut stream, _| {
        let response = response.clone();
        async move {
            while read_request(&mut stream).await.is_some() {
                write(&mut stream, &response).await;
            }
        }
    })
    .await
}

/// A response whose status line's reason is `reason_len` bytes, with `fields` fields of
/// `field_len` bytes each (name, colon, space and value).
fn response(reason_len: usize, fields: usize, field_len: usize) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 {}\r\n", "r".repeat(reason_len)).into_bytes();
    for i in 0..fields {
        let name = format!("x-{i:04}: ");
        let value = "v".repeat(field_len - name.len());
        r.extend_from_slice(format!("{name}{value}\r\n").as_bytes());
    }
    r.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
    r
}

async fn get(s: &ClientSession, url: &str) -> Result<String, Error> {
    let mut resp = within(s.get(url).send()).await?;
    within(resp.text()).await
}

/// Which limit an error says was passed.
fn which(e: &Error) -> [bool; 3] {
    assert!(e.is_response(), "{e}");
    [e.is_line_too_long(), e.is_field_too_long(), e.is_too_many_headers()]
}

#[tokio::test]
async fn each_head_limit_has_its_own_error_at_aiohttps_defaults() {
    // "HTTP/1.1 200 " is 13 bytes: the longest status line allowed, and one byte more.
    let line_ok = always(response(DEFAULT_MAX_LINE_SIZE - 13, 1, 10)).await;
    let line_long = always(response(DEFAULT_MAX_LINE_SIZE - 12, 1, 10)).await;
    let field_ok = always(response(2, 1, DEFAULT_MAX_FIELD_SIZE)).await;
    let field_long = always(response(2, 1, DEFAULT_MAX_FIELD_SIZE + 1)).await;
    // 127 fields and Content-Length make aiohttp's 128; one more is too many.
    let count_ok = always(response(2, 127, 10)).await;
    let count_over = always(response(2, 128, 10)).await;
    let s = session();
    for ok in [&line_ok, &field_ok, &count_ok] {
        assert_eq!(get(&s, &ok.url("/")).await.unwrap(), "ok");
    }
    let e = get(&s, &line_long.url("/")).await.unwrap_err();
    assert_eq!(which(&e), [true, false, false], "{e}");
    let e = get(&s, &field_long.url("/")).await.unwrap_err();
    assert_eq!(which(&e), [false, true, false], "{e}");
    let e = get(&s, &count_over.url("/")).await.unwrap_err();
    assert_eq!(which(&e), [false, false, true], "{e}");
}

#[tokio::test]
async fn the_session_sets_the_limits_and_a_request_overrides_them() {
    let server = always(response(100, 3, 200)).await;
    let url = server.url("/");
    let strict = ClientSession::builder().max_line_size(50).max_field_size(100).max_headers(2);
    let strict = strict.build();
    let e = get(&strict, &url).await.unwrap_err();
    assert!(e.is_line_too_long(), "{e}");
    let line_ok = strict.get(&url).max_line_size(200);
    let e = within(line_ok.send()).await.unwrap_err();
    assert!(e.is_field_too_long(), "{e}");
    let field_ok = strict.get(&url).max_line_size(200).max_field_size(300);
    let e = within(field_ok.send()).await.unwrap_err();
    assert!(e.is_too_many_headers(), "{e}");
    let all_ok = strict.get(&url).max_line_size(200).max_field_size(300).max_headers(4);
    let mut resp = within(all_ok.send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "ok");

    // And the other way: a request tightens a lenient session's limit.
    let lenient = session();
    assert_eq!(get(&lenient, &url).await.unwrap(), "ok");
    let e = within(lenient.get(&url).max_headers(2).send()).await.unwrap_err();
    assert!(e.is_too_many_headers(), "{e}");
}

#[tokio::test]
async fn a_field_limit_past_the_head_limit_takes_the_head_limit_along() {
    // One 100 KB field is more than the 64 KiB a head may hold by default.
    let server = always(response(2, 1, 100_000)).await;
    let e = get(&session(), &server.url("/")).await.unwrap_err();
    assert!(e.is_field_too_long(), "{e}");
    let s = ClientSession::builder().max_field_size(100_000).build();
    assert_eq!(get(&s, &server.url("/")).await.unwrap(), "ok");
}

/// The sizes of the pieces `content().chunk()` hands out for `GET url`, which are the
/// reads' sizes, after checking the body is `expected`.
async fn pieces(request: tandem_client::RequestBuilder, expected: &[u8]) -> Vec<usize> {
    let mut resp = within(request.send()).await.unwrap();
    let (mut got, mut sizes) = (Vec::new(), Vec::new());
    while let Some(piece) = within(resp.content().chunk()).await.unwrap() {
        sizes.push(piece.len());
        got.extend_from_slice(&piece);
    }
    assert!(got == expected, "{} bytes", got.len());
    sizes
}

/// A body of `len` bytes that does not repeat at a power of two.
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn read_bufsize_bounds_the_reads_and_a_request_overrides_it() {
    let sent = body(1 << 20);
    let mut reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", sent.len());
    let server = always([std::mem::take(&mut reply).into_bytes(), sent.clone()].concat()).await;
    let s = ClientSession::builder().read_bufsize(4096).build();
    let small = pieces(s.get(&server.url("/")), &sent).await;
    assert!(small.iter().all(|&n| n <= 4096), "{small:?}");
    let large = pieces(s.get(&server.url("/")).read_bufsize(256 * 1024), &sent).await;
    assert!(large.iter().any(|&n| n > 4096), "{large:?}");
    assert!(large.iter().all(|&n| n <= 256 * 1024), "{large:?}");
}

#[tokio::test]
async fn reads_of_a_body_of_unknown_length_grow_with_it() {
    let sent = Arc::new(body(8 << 20));
    let body_sent = sent.clone();
    let server = RawServer::start(move |mut stream, _| {
        let sent = body_sent.clone();
        async move {
            read_request(&mut stream).await;
            write(&mut stream, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").await;
            write(&mut stream, &sent).await;
        }
    })
    .await;
    let sizes = pieces(session().get(&server.url("/")), &sent).await;
    // Reads of 16 KiB throughout would take 512 pieces; growing ones, far fewer.
    assert!(sizes.len() < 256, "{} pieces", sizes.len());
    assert!(sizes.iter().all(|&n| n <= tandem_client::DEFAULT_READ_BUFSIZE));
}
