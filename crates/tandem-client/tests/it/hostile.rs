//! Hostile and odd responses from raw listeners: checklist C of `docs/security.md` (C44–C48)
//! and its response vectors (R1–R8).

use crate::support::{RawServer, read_head, read_request, session, within, write};

/// A server that answers every request on every connection with `response`, and keeps the
/// connection open until the client closes it.
pub(crate) async fn always(response: &'static [u8]) -> RawServer {
    RawServer::start(move |mut stream, _| async move {
        while read_request(&mut stream).await.is_some() {
            write(&mut stream, response).await;
        }
    })
    .await
}

/// A server whose first connection answers once with `first` and then with `OK_KEEP`;
/// later connections answer `fresh`.
pub(crate) async fn first_then_fresh(first: &'static [u8]) -> RawServer {
    RawServer::start(move |mut stream, index| async move {
        while read_request(&mut stream).await.is_some() {
            let response: &[u8] = if index == 0 {
                first
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"
            };
            write(&mut stream, response).await;
        }
    })
    .await
}

pub(crate) async fn body_of(url: &str, s: &tandem_client::ClientSession) -> String {
    let mut resp = within(s.get(url).send()).await.unwrap();
    within(resp.text()).await.unwrap()
}

#[tokio::test]
async fn truncated_bodies_are_payload_errors() {
    // C45: Content-Length 5, 3 bytes, EOF.
    for response in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\ntiny",
    ] {
        let server = RawServer::start(move |mut stream, _| async move {
            read_request(&mut stream).await;
            write(&mut stream, response).await;
        })
        .await;
        let mut resp = within(session().get(&server.url("/")).send()).await.unwrap();
        let e = within(resp.read()).await.unwrap_err();
        assert!(e.is_payload(), "{e}");
    }
}

#[tokio::test]
async fn malformed_heads_are_errors_and_not_pooled() {
    // C46: NUL in a value, 10 000 fields, a 1 MiB status line; and a bad status code.
    let many: &'static [u8] = {
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..10_000 {
            r.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        r.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        r.leak()
    };
    let long: &'static [u8] = {
        let mut r = b"HTTP/1.1 200 ".to_vec();
        r.extend(std::iter::repeat_n(b'x', 1 << 20));
        r.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        r.leak()
    };
    for bad in [
        &b"HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 0\r\n\r\n"[..],
        many,
        long,
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ] {
        let server = first_then_fresh(bad).await;
        let s = session();
        let e = within(s.get(&server.url("/")).send()).await.unwrap_err();
        assert!(e.is_response(), "{e}");
        assert_eq!(body_of(&server.url("/"), &s).await, "fresh");
        assert_eq!(server.connections(), 2, "the bad connection was not pooled");
    }
}

#[tokio::test]
async fn extra_bytes_after_a_response_discard_the_connection() {
    // C48: a poisoned queue must never be read as the next response.
    let server = first_then_fresh(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON",
    )
    .await;
    let s = session();
    assert_eq!(body_of(&server.url("/"), &s).await, "ok");
    assert_eq!(body_of(&server.url("/"), &s).await, "fresh");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn framing_that_cannot_be_trusted_is_not_reused() {
    for response in [
        // Both lengths: chunked wins, and the connection is spent.
        &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"[..],
        // Connection: close.
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        // HTTP/1.0 without keep-alive.
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ] {
        let server = first_then_fresh(response).await;
        let s = session();
        assert_eq!(body_of(&server.url("/"), &s).await, "ok");
        assert_eq!(body_of(&server.url("/"), &s).await, "fresh");
        assert_eq!(server.connections(), 2);
    }
}

#[tokio::test]
async fn a_request_asking_to_close_is_not_pooled() {
    let server = always(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    let s = session();
    let mut resp =
        within(s.get(&server.url("/")).header("connection", "close").send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "ok");
    assert_eq!(body_of(&server.url("/"), &s).await, "ok");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn body_until_close() {
    let server = RawServer::start(|mut stream, _| async move {
        read_request(&mut stream).await;
        write(&mut stream, b"HTTP/1.1 200 OK\r\n\r\nuntil ").await;
        write(&mut stream, b"close").await;
    })
    .await;
    assert_eq!(body_of(&server.url("/"), &session()).await, "until close");
}

#[tokio::test]
async fn interim_responses_are_skipped_and_bodiless_statuses_read_nothing() {
    let server = always(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )
    .await;
    let s = session();
    assert_eq!(body_of(&server.url("/"), &s).await, "ok");
    assert_eq!(body_of(&server.url("/"), &s).await, "ok");
    assert_eq!(server.connections(), 1);

    // 204 with a Content-Length: no body is read, and the connection stays usable.
    let server = always(b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n").await;
    let mut resp = within(s.get(&server.url("/")).send()).await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(within(resp.read()).await.unwrap().is_empty());

    // Raw fields keep their case and order; duplicates stay separate.
    let server =
        always(b"HTTP/1.1 200 OK\r\nX-Dup: 1\r\nContent-Length: 0\r\nx-dup: 2\r\n\r\n").await;
    let resp = within(s.get(&server.url("/")).send()).await.unwrap();
    let raw: Vec<_> = resp.raw_headers().collect();
    assert_eq!(raw, [("X-Dup", &b"1"[..]), ("Content-Length", b"0"), ("x-dup", b"2")]);
    assert_eq!(resp.headers().get_all("x-dup").iter().count(), 2);

    // Bare LF line ends, as aiohttp's lenient response parser accepts.
    let server = always(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nlf").await;
    assert_eq!(body_of(&server.url("/"), &s).await, "lf");
}

/// Interim (1xx) responses are bounded in number, as each is in size: a server that sends
/// them without end would otherwise hold the request until `total` (forever without one),
/// each arriving well within `sock_read`. Past `DEFAULT_MAX_INTERIM_RESPONSES` the request
/// fails as a response error and the final answer behind them is never read; up to it they
/// are skipped, with or without `Expect: 100-continue`, and the cap can be raised.
#[tokio::test]
async fn interim_responses_are_bounded_in_number() {
    let max = tandem_client::DEFAULT_MAX_INTERIM_RESPONSES;
    let answer = |interim: usize| -> &'static [u8] {
        let mut r = Vec::new();
        for _ in 0..interim {
            r.extend_from_slice(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
        }
        r.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        r.leak()
    };
    let s = session();
    let at_the_cap = always(answer(max)).await;
    assert_eq!(body_of(&at_the_cap.url("/"), &s).await, "ok");
    let past = always(answer(max + 1)).await;
    let e = within(s.get(&past.url("/")).send()).await.unwrap_err();
    assert!(e.is_response(), "{e}");
    // Waiting for `100 Continue`, the interim responses come before the body is sent.
    let past_at_once = RawServer::start(move |mut stream, _| async move {
        if !read_head(&mut stream).await {
            return;
        }
        write(&mut stream, answer(max + 1)).await;
        // Held open until the client hangs up.
        read_head(&mut stream).await;
    })
    .await;
    let expecting = s.post(&past_at_once.url("/")).body("x").expect_continue(true);
    let e = within(expecting.send()).await.unwrap_err();
    assert!(e.is_response(), "{e}");
    let flood = always(answer(10_000)).await;
    let e = within(s.get(&flood.url("/")).send()).await.unwrap_err();
    assert!(e.is_response(), "{e}");
    let raised = tandem_client::ClientSession::builder().max_interim_responses(10_000).build();
    assert_eq!(body_of(&flood.url("/"), &raised).await, "ok");
}

/// A server that reads a request's head, answers at once with `answer` without reading the
/// body, and closes: a 413 for an upload too large, as many servers send it. The client's
/// write of the rest of the body then fails, but the answer arrived first and is what the
/// caller gets, not a disconnection; the connection is not reused.
async fn answers_before_the_body(answer: &'static [u8]) -> RawServer {
    RawServer::start(move |mut stream, _| async move {
        if !read_head(&mut stream).await {
            return;
        }
        write(&mut stream, answer).await;
    })
    .await
}

#[tokio::test]
async fn an_answer_before_the_body_is_sent_is_the_response() {
    let server = answers_before_the_body(
        b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!",
    )
    .await;
    let s = session();
    let upload = vec![b'x'; 32 << 20];
    for method in [http::Method::POST, http::Method::PUT] {
        let req = s.request(method.clone(), &server.url("/up")).body(upload.clone());
        let mut resp = within(req.send()).await.unwrap_or_else(|e| panic!("{method}: {e}"));
        assert_eq!(resp.status(), 413);
        assert_eq!(within(resp.text()).await.unwrap(), "too big!");
    }
    // A streamed body, whose pieces the server never reads, too.
    let pieces = futures_util::stream::iter(
        (0..512).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 64 << 10]))),
    );
    let req = s.post(&server.url("/up")).body_stream(pieces);
    let resp = within(req.send()).await.unwrap();
    assert_eq!(resp.status(), 413);
    // And a file, sent with `sendfile`.
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, &upload).unwrap();
    std::io::Seek::rewind(&mut file).unwrap();
    let resp = within(s.post(&server.url("/up")).body_file(file).send()).await.unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(server.connections(), 4);
}

#[tokio::test]
async fn stale_pooled_connection_is_retried_once() {
    // The first connection answers once and closes, as a server whose keep-alive timer
    // fired; the client picks it from the pool, fails before any response byte, and retries
    // on a new connection.
    let server = RawServer::start(|mut stream, index| async move {
        while read_request(&mut stream).await.is_some() {
            write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
            if index == 0 {
                return;
            }
        }
    })
    .await;
    let s = session();
    assert_eq!(body_of(&server.url("/"), &s).await, "ok");
    assert_eq!(body_of(&server.url("/"), &s).await, "ok");
    assert_eq!(server.connections(), 2);
}

/// The server reads the second request on a kept-alive connection and closes without an
/// answer, as one whose keep-alive timer fired just then: the request may or may not have
/// been acted on. A GET is sent again on a new connection; a POST is not (it could pay
/// twice), and fails as disconnected, as aiohttp's client does.
#[tokio::test]
async fn a_stale_pooled_connection_is_retried_only_for_idempotent_methods() {
    let server = RawServer::start(|mut stream, index| async move {
        let mut n = 0;
        while read_request(&mut stream).await.is_some() {
            n += 1;
            if index % 2 == 0 && n == 2 {
                return;
            }
            write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        }
    })
    .await;
    let s = session();
    assert_eq!(body_of(&server.url("/"), &s).await, "ok");
    assert_eq!(body_of(&server.url("/"), &s).await, "ok", "the GET was sent again");
    assert_eq!(server.connections(), 2);
    // Connection 1 is pooled now, but it is an odd one, which answers always: open a third.
    drop(s);
    let s = session();
    assert_eq!(body_of(&server.url("/"), &s).await, "ok");
    let e = within(s.post(&server.url("/")).body("pay").send()).await.unwrap_err();
    assert!(e.is_disconnected(), "{e}");
    assert_eq!(server.connections(), 3, "the POST was not sent again");
}

#[tokio::test]
async fn a_new_connection_closed_without_answer_is_disconnected() {
    let server = RawServer::start(|mut stream, _| async move {
        read_request(&mut stream).await;
    })
    .await;
    let e = within(session().get(&server.url("/")).send()).await.unwrap_err();
    assert!(e.is_disconnected(), "{e}");
    assert_eq!(server.connections(), 1, "a fresh connection is not retried");
}

#[tokio::test]
async fn injection_is_refused_before_anything_is_sent() {
    // C44: nothing reaches the socket; the server sees only the later, valid request.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = RawServer::start(move |mut stream, _| {
        let record = record.clone();
        async move {
            while let Some(req) = read_request(&mut stream).await {
                record.lock().unwrap().push(req);
                write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
            }
        }
    })
    .await;
    let s = session();
    assert!(http::Method::from_bytes(b"GET\r\nX: y").is_err());
    let e = within(s.get(&server.url("/")).header("x-a", "1\r\nX-Injected: 1").send())
        .await
        .unwrap_err();
    assert!(e.is_request());
    let e = within(s.get(&format!("{}\r\nX-Injected: 1", server.url("/a"))).send()).await;
    assert!(e.unwrap_err().is_invalid_url());
    assert_eq!(body_of(&server.url("/ok"), &s).await, "ok");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].starts_with(b"GET /ok HTTP/1.1\r\n"));
    assert!(!seen[0].windows(10).any(|w| w.eq_ignore_ascii_case(b"x-injected")));
}

#[tokio::test]
async fn plain_http_through_a_proxy_is_absolute_form_with_its_credentials() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let proxy = RawServer::start(move |mut stream, _| {
        let record = record.clone();
        async move {
            while let Some(req) = read_request(&mut stream).await {
                record.lock().unwrap().push(String::from_utf8(req).unwrap());
                write(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nproxied").await;
            }
        }
    })
    .await;
    let proxy_at = proxy.as_proxy();
    let s = session();
    let resp = s
        .get("http://origin.invalid:8080/x?q=1")
        .header("authorization", "Bearer origin")
        .proxy(proxy_at.clone());
    let mut resp = within(resp.send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "proxied");
    let with_session_proxy = tandem_client::ClientSession::builder().proxy(proxy_at).build();
    assert_eq!(body_of("http://other.invalid/", &with_session_proxy).await, "proxied");
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("GET http://origin.invalid:8080/x?q=1 HTTP/1.1\r\n"),
        "{}",
        seen[0]
    );
    assert!(seen[0].contains("host: origin.invalid:8080\r\n"));
    assert!(seen[0].contains("proxy-authorization: Basic cHU6cHA=\r\n"));
    assert!(seen[0].contains("authorization: Bearer origin\r\n"));
    assert!(seen[1].starts_with("GET http://other.invalid/ HTTP/1.1\r\n"));
}
