//! What follows a hostile response on its connection (checklist C48 and the response
//! vectors of `docs/security.md`): framing that cannot be trusted, folded lines, a body where
//! none is allowed, a body dropped half-read, trailers past the limits. Each is an error or
//! read by its framing, and whatever comes after it on the connection is never read as the
//! next request's response.

use crate::{
    hostile::{always, body_of, first_then_fresh},
    support::{RawServer, read_request, session, within, write},
};

/// Framing the client cannot trust, each followed by a smuggled response in the same write:
/// two lengths (different: an error; equal: accepted, as aiohttp's lax parser), a list of
/// lengths or a signed one (errors), chunked twice (accepted), and `Transfer-Encoding` that
/// does not end in chunked (a body to the close, RFC 9112 §6.3, which the server here never
/// sends: the response is dropped unread). Whichever, the connection is never reused and
/// the smuggled response is never read as the next request's.
#[tokio::test]
async fn conflicting_framing_is_never_reused() {
    const SMUGGLED: &str = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON";
    for (head, outcome) in [
        ("Content-Length: 2\r\nContent-Length: 5", Err(())),
        ("Content-Length: 2\r\nContent-Length: 2", Ok(Some("2\r"))),
        ("Content-Length: 2, 2", Err(())),
        ("Content-Length: +2", Err(())),
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", Ok(Some("ok"))),
        ("Transfer-Encoding: chunked, chunked", Ok(Some("ok"))),
        ("Transfer-Encoding: gzip", Ok(None)),
        ("Transfer-Encoding: chunked, gzip", Ok(None)),
    ] {
        let response = format!("HTTP/1.1 200 OK\r\n{head}\r\n\r\n2\r\nok\r\n0\r\n\r\n{SMUGGLED}");
        let server = first_then_fresh(response.leak().as_bytes()).await;
        let s = session();
        match (within(s.get(&server.url("/")).send()).await, outcome) {
            (Err(e), Err(())) => assert!(e.is_response(), "{head}: {e}"),
            (Ok(mut resp), Ok(Some(body))) => {
                assert_eq!(within(resp.text()).await.unwrap(), body, "{head}");
            }
            (Ok(resp), Ok(None)) => drop(resp),
            (got, _) => panic!("{head}: {:?}", got.map(|r| r.status())),
        }
        assert_eq!(body_of(&server.url("/"), &s).await, "fresh", "{head}");
        assert_eq!(server.connections(), 2, "{head}");
    }
}

/// A folded line (obs-fold) or a bare CR in a response head is refused, never joined in a way
/// that could hide or make a framing field (`X: a` folded over `Transfer-Encoding: chunked`,
/// a folded `Content-Length`, a CR before `Transfer-Encoding`): a response error, and the
/// connection is not reused.
#[tokio::test]
async fn folded_lines_and_bare_crs_never_smuggle_a_framing_field() {
    for head in [
        "X: a\r\n b\r\nContent-Length: 2",
        "X: a\r\n\tb\r\nContent-Length: 2",
        "Content-Length: 2\r\nX: a\r\n Transfer-Encoding: chunked",
        "X: a\r\n\tContent-Length: 9\r\nContent-Length: 2",
        "Content-Length: 2\r\n 5",
        "Transfer-Encoding: chunked\r\n , gzip\r\nContent-Length: 2",
        "Content-Length: 2\r\nX: a\rTransfer-Encoding: chunked",
    ] {
        let response = format!("HTTP/1.1 200 OK\r\n{head}\r\n\r\nok");
        let server = first_then_fresh(response.leak().as_bytes()).await;
        let s = session();
        let e = within(s.get(&server.url("/")).send()).await.unwrap_err();
        assert!(e.is_response(), "{head:?}: {e}");
        assert_eq!(body_of(&server.url("/"), &s).await, "fresh", "{head:?}");
        assert_eq!(server.connections(), 2, "{head:?}");
    }
}

/// A response that has no body (204, 304, an answer to HEAD) but carries one anyway, in the
/// same write or a later one, or a body the caller dropped half-read: whatever follows on
/// that connection is never read as the next request's response. The later write lands
/// before the next request is sent (the server says so), as a poisoned queue would.
#[tokio::test]
async fn bytes_behind_a_bodiless_or_abandoned_response_are_never_the_next_response() {
    const POISON: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON";
    let cases: [(http::Method, &'static [u8]); 4] = [
        (http::Method::GET, b"HTTP/1.1 204 No Content\r\nContent-Length: 47\r\n\r\n"),
        (http::Method::GET, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 47\r\n\r\n"),
        (http::Method::HEAD, b"HTTP/1.1 200 OK\r\nContent-Length: 47\r\n\r\n"),
        (http::Method::GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"),
    ];
    for (method, head) in cases {
        for separate in [false, true] {
            let (wrote, written) = tokio::sync::mpsc::unbounded_channel::<()>();
            let server = RawServer::start(move |mut stream, index| {
                let wrote = wrote.clone();
                async move {
                    while read_request(&mut stream).await.is_some() {
                        if index > 0 {
                            write(
                                &mut stream,
                                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh",
                            )
                            .await;
                            continue;
                        }
                        if separate {
                            write(&mut stream, head).await;
                            write(&mut stream, POISON).await;
                        } else {
                            write(&mut stream, &[head, POISON].concat()).await;
                        }
                        let _ = wrote.send(());
                    }
                }
            })
            .await;
            let mut written = written;
            let s = session();
            let mut first =
                within(s.request(method.clone(), &server.url("/")).send()).await.unwrap();
            if head.ends_with(b"ok\r\n") {
                // The caller reads one piece of the chunked body and drops the rest.
                assert_eq!(&within(first.content().chunk()).await.unwrap().unwrap()[..], b"ok");
            } else {
                assert!(within(first.read()).await.unwrap().is_empty());
            }
            drop(first);
            within(written.recv()).await.unwrap();
            assert_eq!(body_of(&server.url("/"), &s).await, "fresh", "{method} {head:?}");
            assert_eq!(server.connections(), 2);
        }
    }
}

/// A chunked body's trailer fields are held to the session's head limits, as the
/// `max_headers` and `max_field_size` documentation says: past them the body is a payload
/// error and the connection is not reused. Within them they are read past and the
/// connection is reused.
#[tokio::test]
async fn trailers_are_held_to_the_sessions_head_limits() {
    let server = first_then_fresh(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\
          A: 1\r\nB: 2\r\nC: 3\r\n\r\n",
    )
    .await;
    let few = tandem_client::ClientSession::builder().max_headers(2).build();
    let mut resp = within(few.get(&server.url("/")).send()).await.unwrap();
    let e = within(resp.read()).await.unwrap_err();
    assert!(e.is_payload(), "{e}");
    assert_eq!(body_of(&server.url("/"), &few).await, "fresh");

    let server = first_then_fresh(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\
          Long: 0123456789abcdef0123456789abcdef\r\n\r\n",
    )
    .await;
    let short = tandem_client::ClientSession::builder().max_field_size(30).build();
    let mut resp = within(short.get(&server.url("/")).send()).await.unwrap();
    assert!(within(resp.read()).await.unwrap_err().is_payload());

    // Within the limits: read past, and the connection is reused.
    let server = always(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\
          A: 1\r\nB: 2\r\n\r\n",
    )
    .await;
    assert_eq!(body_of(&server.url("/"), &few).await, "ok");
    assert_eq!(body_of(&server.url("/"), &few).await, "ok");
    assert_eq!(server.connections(), 1);
}

/// A request cancelled after it was sent (its future dropped: a caller's own timeout, a
/// `select!`) or timed out while its body was read: the answer that comes later on that
/// connection is never read as the next request's response.
#[tokio::test]
async fn the_answer_to_a_cancelled_or_timed_out_request_is_never_the_next_response() {
    use tokio::sync::mpsc;

    let (got_request, mut request_read) = mpsc::unbounded_channel::<()>();
    let (cancelled, answer_now) = mpsc::unbounded_channel::<()>();
    let answer_now = std::sync::Arc::new(tokio::sync::Mutex::new(answer_now));
    let server = RawServer::start(move |mut stream, index| {
        let (got_request, answer_now) = (got_request.clone(), answer_now.clone());
        async move {
            while read_request(&mut stream).await.is_some() {
                if index == 0 {
                    let _ = got_request.send(());
                    answer_now.lock().await.recv().await;
                    write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSTALE!").await;
                } else if index == 1 {
                    // Half a body; the request times out reading the rest.
                    write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhalf").await;
                } else {
                    write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh").await;
                }
            }
        }
    })
    .await;
    let s = session();
    tokio::select! {
        _ = s.get(&server.url("/")).send() => panic!("answered before it was cancelled"),
        _ = request_read.recv() => {}
    }
    cancelled.send(()).unwrap();
    let timeout = tandem_client::ClientTimeout::total(std::time::Duration::from_millis(200));
    let mut half = within(s.get(&server.url("/")).timeout(timeout).send()).await.unwrap();
    assert!(within(half.read()).await.unwrap_err().is_timeout());
    drop(half);
    assert_eq!(body_of(&server.url("/"), &s).await, "fresh");
    assert_eq!(server.connections(), 3);
}
