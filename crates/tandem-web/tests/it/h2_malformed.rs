//! Malformed and confusing HTTP/2 requests, and responses HTTP/2 cannot carry as they are,
//! sent frame by frame: a handler never sees a request whose authority is in doubt, and a
//! response with fields HTTP/2 forbids (RFC 9113 §8.2.2) still reaches the client.
#![cfg(feature = "http2")]

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tandem_web::{Application, Request, Response, ServiceBody};

use crate::{
    h2::{
        ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, Raw, SETTINGS, field,
        field_indexed_name, frame, get_block,
    },
    support::{Server, within},
};

/// An app whose `/who` answers the host it was given and counts its calls.
fn who(calls: &Arc<AtomicUsize>) -> Application {
    let mut app = Application::new();
    let calls = Arc::clone(calls);
    app.add_get("/who", move |req: Request| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { req.host().unwrap_or("-").to_owned() }
    });
    app
}

/// RFC 9113 §8.3.1: a `Host` field that names another authority than `:authority` makes
/// the request malformed. Answered 400 before any handler runs: otherwise the handler
/// (and `add_domain`'s routing) read `Host` while whatever checked `:authority` in front,
/// a proxy or the TLS name, vouched for the other. The same name in another case is the
/// same authority.
#[tokio::test]
async fn a_host_field_that_contradicts_the_authority_is_a_400() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = Server::start(who(&calls)).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    let mut block = get_block("/who");
    field(&mut block, b"host", b"admin.internal");
    conn.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block)).await;
    assert_eq!(conn.response(1).await.0, Some(400));
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let mut block = get_block("/who");
    field(&mut block, b"host", b"T");
    conn.send(&frame(HEADERS, END_HEADERS | END_STREAM, 3, &block)).await;
    assert_eq!(conn.response(3).await, (Some(200), b"T".to_vec()));
    conn.send(&frame(HEADERS, END_HEADERS | END_STREAM, 5, &get_block("/who"))).await;
    assert_eq!(conn.response(5).await, (Some(200), b"t".to_vec()));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(server.stop().await);
}

/// Through tower layers, an HTTP/2 request's head is checked before the first layer, as the
/// HTTP/1.1 parser checks a head before the layers see it: a `Host` that contradicts
/// `:authority`, more fields than `max_headers` or one longer than `max_field_size` is
/// refused (400, 431) with no layer run. A layer that acts on a request (logs it, counts it
/// against a quota, answers a CORS preflight itself, routes by `Host`) would otherwise act on
/// a request the app refuses, with the authority the app never saw.
#[tokio::test]
async fn a_malformed_head_reaches_no_tower_layer() {
    let (calls, layered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut app = who(&calls);
    let seen = Arc::clone(&layered);
    app.layer(tower::util::MapRequestLayer::new(move |req: http::Request<ServiceBody>| {
        seen.fetch_add(1, Ordering::SeqCst);
        req
    }));
    let limits = tandem_proto::Limits::default().max_headers(8).max_field_size(100);
    let config = tandem_web::ServerConfig::default().with_limits(limits);
    let server = Server::start_with(app, config).await;
    let mut other_host = get_block("/who");
    field(&mut other_host, b"host", b"admin.internal");
    let mut many = get_block("/who");
    for n in 0..8 {
        field(&mut many, format!("x-{n}").as_bytes(), b"1");
    }
    let mut long = get_block("/who");
    field(&mut long, b"x-long", &[b'l'; 200]);
    for (block, refused) in [(other_host, 400), (many, 431), (long, 431)] {
        assert_eq!(status_on_its_own(&server, &block, None).await, Some(refused));
    }
    assert_eq!((layered.load(Ordering::SeqCst), calls.load(Ordering::SeqCst)), (0, 0));
    assert_eq!(status_on_its_own(&server, &get_block("/who"), None).await, Some(200));
    assert_eq!((layered.load(Ordering::SeqCst), calls.load(Ordering::SeqCst)), (1, 1));
    assert!(server.stop().await);
}

/// Connection-specific fields in a response (RFC 9113 §8.2.2), whether a handler set them
/// or a tower layer added them, are dropped on HTTP/2 as HTTP/1.1's framing drops them: `h2`
/// refuses a head that carries one, and the client got a reset stream instead of the
/// answer.
#[tokio::test]
async fn connection_specific_response_fields_are_dropped_not_fatal() {
    let mut app = Application::new();
    app.add_get("/hop", |_req: Request| async {
        Response::text("hop").with_header("proxy-connection", "keep-alive")
    });
    let server = Server::start(app).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    conn.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get_block("/hop"))).await;
    assert_eq!(conn.response(1).await, (Some(200), b"hop".to_vec()));
    assert!(server.stop().await);

    let mut app = Application::new();
    app.add_get("/layered", |_req: Request| async { "layered" });
    app.layer(tower::util::MapResponseLayer::new(
        |mut resp: http::Response<tandem_web::ServiceBody>| {
            let fields = resp.headers_mut();
            fields.insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
            fields.insert("keep-alive", http::HeaderValue::from_static("timeout=5"));
            resp
        },
    ));
    let server = Server::start(app).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    conn.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get_block("/layered"))).await;
    assert_eq!(conn.response(1).await, (Some(200), b"layered".to_vec()));
    assert!(server.stop().await);
}

/// Sends `block` (then `data` in one DATA frame, if any) as stream 1 of a connection of
/// its own, and returns the response's status: `None` if the stream was reset or the
/// connection closed.
async fn status_on_its_own(server: &Server, block: &[u8], data: Option<&[u8]>) -> Option<u16> {
    let mut conn = Raw::open(server.addr, &[]).await;
    let flags = if data.is_some() { END_HEADERS } else { END_HEADERS | END_STREAM };
    conn.send(&frame(HEADERS, flags, 1, block)).await;
    if let Some(data) = data {
        // The server may have reset the stream or closed already.
        conn.try_send(&frame(DATA, END_STREAM, 1, data)).await;
    }
    conn.response(1).await.0
}

/// Requests RFC 9113 §8.1.1 calls malformed never reach a handler as valid: fields HTTP/2
/// forbids (`connection`, `transfer-encoding`, `te` other than `trailers`, `upgrade`,
/// `keep-alive`), an uppercase field name, userinfo in `:authority`, a pseudo-header after a
/// field, a missing `:path`, and a `content-length` that the DATA frames contradict. `h2` resets each stream
/// or ends the connection (or the handler's read fails), and the server serves on.
#[tokio::test]
async fn malformed_requests_reach_no_handler() {
    let read = Arc::new(AtomicUsize::new(0));
    let mut app = who(&Arc::new(AtomicUsize::new(0)));
    let counted = Arc::clone(&read);
    app.add_post("/upload", move |mut req: Request| {
        let counted = Arc::clone(&counted);
        async move {
            let body = req.read().await?;
            counted.fetch_add(1, Ordering::SeqCst);
            Ok::<_, tandem_web::HttpError>(format!("{} bytes", body.len()))
        }
    });
    let server = Server::start(app).await;
    let forbidden: [(&[u8], &[u8]); 6] = [
        (b"connection", b"close"),
        (b"transfer-encoding", b"chunked"),
        (b"te", b"gzip"),
        (b"upgrade", b"websocket"),
        (b"keep-alive", b"timeout=5"),
        (b"X-Upper", b"1"),
    ];
    for (name, value) in forbidden {
        let mut block = get_block("/who");
        field(&mut block, name, value);
        let status = status_on_its_own(&server, &block, None).await;
        assert!(
            matches!(status, None | Some(400)),
            "{:?}: {status:?}",
            String::from_utf8_lossy(name)
        );
    }
    // An `:authority` with userinfo (RFC 9113 8.3.1 forbids it): refused as a `Host` with
    // `@` is, so no host can smuggle one past a router.
    let mut userinfo = vec![0x82, 0x86];
    field_indexed_name(&mut userinfo, 4, b"/who");
    field_indexed_name(&mut userinfo, 1, b"user@t");
    assert_eq!(status_on_its_own(&server, &userinfo, None).await, Some(400));
    // A pseudo-header after a regular field, and no `:path` at all.
    let mut late = vec![0x82, 0x86];
    field(&mut late, b"x-a", b"1");
    late.extend_from_slice(&get_block("/who")[2..]);
    let no_path = vec![0x82, 0x86, 0x41, 1, b't'];
    for block in [late, no_path] {
        assert!(matches!(status_on_its_own(&server, &block, None).await, None | Some(400)));
    }
    // `content-length` against the DATA: more, fewer, and none at all.
    for (declared, sent) in [(3, 5), (5, 3), (5, 0)] {
        let mut block = vec![0x83, 0x86];
        field_indexed_name(&mut block, 4, b"/upload");
        field_indexed_name(&mut block, 1, b"t");
        field(&mut block, b"content-length", declared.to_string().as_bytes());
        let data = vec![b'x'; sent];
        let status = status_on_its_own(&server, &block, (sent > 0).then_some(&data[..])).await;
        assert_ne!(status, Some(200), "{declared} declared, {sent} sent");
    }
    assert_eq!(read.load(Ordering::SeqCst), 0);
    assert_eq!(status_on_its_own(&server, &get_block("/who"), None).await, Some(200));
    assert!(server.stop().await);
}

/// Pseudo-header fields a request may not carry as sent (RFC 9113 8.3.1) reach no handler:
/// `:path` must be the path and query alone (an absolute URI there would be routed by its
/// path while whatever vetted `:path` in front saw another string), `*` only for OPTIONS,
/// never empty, given once; no unknown pseudo-header, no `:status`, no `:protocol` (extended
/// CONNECT is not enabled), no `:path` on CONNECT, and `:method` and `:scheme` present.
/// Each is refused by a 400 or by `h2` resetting the stream.
#[tokio::test]
async fn pseudo_header_rules_hold() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = Server::start(who(&calls)).await;
    let get_path = |path: &[u8]| {
        let mut block = vec![0x82, 0x86];
        field_indexed_name(&mut block, 4, path);
        field_indexed_name(&mut block, 1, b"t");
        block
    };
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("absolute :path", get_path(b"http://t/who")),
        ("absolute :path, other host", get_path(b"https://admin.internal/who")),
        ("relative :path", get_path(b"who")),
        ("* on GET", get_path(b"*")),
        ("empty :path", get_path(b"")),
    ];
    let mut twice = get_block("/who");
    field_indexed_name(&mut twice, 4, b"/who");
    cases.push(("two :path", twice));
    for (what, name, value) in [
        ("unknown pseudo-header", &b":foo"[..], &b"1"[..]),
        (":status", b":status", b"200"),
        (":protocol", b":protocol", b"websocket"),
    ] {
        let mut block = get_block("/who");
        field(&mut block, name, value);
        cases.push((what, block));
    }
    // CONNECT (static entry 2 is `:method`) with a `:path`; no `:method`; no `:scheme`.
    let mut connect = Vec::new();
    field_indexed_name(&mut connect, 2, b"CONNECT");
    field_indexed_name(&mut connect, 1, b"t:443");
    field_indexed_name(&mut connect, 4, b"/who");
    cases.push(("CONNECT with :path", connect));
    cases.push(("no :method", get_block("/who")[1..].to_vec()));
    let mut no_scheme = vec![0x82];
    no_scheme.extend_from_slice(&get_block("/who")[2..]);
    cases.push(("no :scheme", no_scheme));
    for (what, block) in cases {
        let status = status_on_its_own(&server, &block, None).await;
        assert!(matches!(status, None | Some(400)), "{what}: {status:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(status_on_its_own(&server, &get_block("/who"), None).await, Some(200));
    assert!(server.stop().await);
}

/// A request's trailers over HTTP/2 are held to the limits HTTP/1.1's trailers are
/// (`max_headers` fields, `max_field_size` a field, `max_trailer_size` in all): past any of
/// them the body's read fails with a 400, where before they passed whole within `h2`'s 64 KiB
/// header list. Trailers within them still arrive.
#[tokio::test]
async fn request_trailers_are_held_to_the_trailer_limits() {
    let mut app = Application::new();
    app.add_post("/upload", |mut req: Request| async move {
        let body = req.read().await?;
        let trailers = req.content().trailers().map_or(0, http::HeaderMap::len);
        Ok::<_, tandem_web::HttpError>(format!("{} bytes, {trailers} trailers", body.len()))
    });
    let server = Server::start(app).await;
    let upload = |trailers: &[(String, String)]| {
        let mut head = vec![0x83, 0x86];
        field_indexed_name(&mut head, 4, b"/upload");
        field_indexed_name(&mut head, 1, b"t");
        let mut block = Vec::new();
        for (name, value) in trailers {
            field(&mut block, name.as_bytes(), value.as_bytes());
        }
        let mut bytes = frame(HEADERS, END_HEADERS, 1, &head);
        bytes.extend(frame(DATA, 0, 1, b"hello"));
        // In frames of at most 16 KiB, the peer's frame size limit.
        let mut pieces = block.chunks(16 * 1024).peekable();
        let mut kind = HEADERS;
        while let Some(piece) = pieces.next() {
            let last = if pieces.peek().is_none() { END_HEADERS } else { 0 };
            let end = if kind == HEADERS { END_STREAM } else { 0 };
            bytes.extend(frame(kind, last | end, 1, piece));
            kind = CONTINUATION;
        }
        bytes
    };
    let many: Vec<_> = (0..200).map(|n| (format!("x-t-{n}"), "1".to_owned())).collect();
    let long = vec![("x-long".to_owned(), "l".repeat(10 * 1024))];
    let large: Vec<_> = (0..20).map(|n| (format!("x-t-{n}"), "v".repeat(1000))).collect();
    for trailers in [many, long, large] {
        let mut conn = Raw::open(server.addr, &[]).await;
        conn.send(&upload(&trailers)).await;
        let (status, body) = conn.response(1).await;
        assert_eq!(
            status,
            Some(400),
            "{} trailers: {:?}",
            trailers.len(),
            String::from_utf8_lossy(&body)
        );
    }
    let mut conn = Raw::open(server.addr, &[]).await;
    conn.send(&upload(&[("x-sum".to_owned(), "1".to_owned())])).await;
    assert_eq!(conn.response(1).await, (Some(200), b"5 bytes, 1 trailers".to_vec()));
    assert!(server.stop().await);
}

/// CVE-2025-8671 ("MadeYouReset"): the peer makes the server reset each stream it opens
/// (DATA past the `content-length` its head declared is a stream error, RFC 9113 8.1.1), so
/// no stream stays open and the stream limit never bites while each started a handler.
/// `h2` ends the connection with `ENHANCE_YOUR_CALM` past `max_local_error_reset_streams`,
/// every one of the 150 handlers started is cancelled, and the server serves on. (The cap
/// on handlers running at once, twice the stream limit, 200 here, is not reached, so not
/// tested: the 150 start 50 a round, and at most a round's own and the last round's not
/// yet cancelled run at once, 50 to 100. A `WINDOW_UPDATE` of 0 on a stream, the other
/// usual primitive, `h2` answers with a connection error at once.)
#[tokio::test]
async fn streams_the_peer_makes_the_server_reset_end_the_connection() {
    let (started, live) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (s, l) = (Arc::clone(&started), Arc::clone(&live));
    let mut app = Application::new();
    app.add_get("/park", move |_req: Request| {
        s.fetch_add(1, Ordering::SeqCst);
        let live = Live::count(&l);
        async move {
            std::future::pending::<()>().await;
            drop(live);
            "never"
        }
    });
    let http2 = tandem_web::Http2Config::default().with_max_local_error_reset_streams(100);
    let config = tandem_web::ServerConfig::default().with_http2(http2);
    let server = Server::start_with(app, config).await;
    let mut conn = Raw::open(server.addr, &[]).await;
    // In rounds of 50 streams: each round's handlers are running before the frames that
    // make the server reset their streams are sent. Three rounds pass the limit of 100.
    let mut id = 1;
    for round in 1..=3 {
        let ids: Vec<u32> = (0..50).map(|n| id + 2 * n).collect();
        id += 100;
        let mut heads = Vec::new();
        for &stream in &ids {
            let mut block = get_block("/park");
            field(&mut block, b"content-length", b"0");
            heads.extend(frame(HEADERS, END_HEADERS, stream, &block));
        }
        conn.send(&heads).await;
        within(async {
            while started.load(Ordering::SeqCst) < round * 50 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        let resets: Vec<u8> = ids.iter().flat_map(|&stream| frame(DATA, 0, stream, b"x")).collect();
        // The server may end the connection before the last of them.
        conn.try_send(&resets).await;
    }
    let goaway = conn.until(|f| f.kind == GOAWAY).await;
    assert_eq!(goaway.map(|g| g.goaway_parts().1), Some(0xb), "ENHANCE_YOUR_CALM");
    assert!(conn.until(|_| false).await.is_none(), "closed");
    within(async {
        while live.load(Ordering::SeqCst) != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let started = started.load(Ordering::SeqCst);
    assert_eq!(started, 150, "every handler started, then was cancelled");
    assert_eq!(status_on_its_own(&server, &get_block("/park-not"), None).await, Some(404));
    assert!(server.stop().await);
}

/// Counts a running handler until dropped (cancelled).
struct Live(Arc<AtomicUsize>);

impl Live {
    fn count(live: &Arc<AtomicUsize>) -> Live {
        live.fetch_add(1, Ordering::SeqCst);
        Live(Arc::clone(live))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A header block that never ends opens no stream, so it holds the connection no longer
/// than the keep-alive timeout: HEADERS without `END_HEADERS` and then silence is closed like
/// an idle connection; a drip of CONTINUATION frames is ended sooner, by `h2`'s bound on a
/// block's frames (`ENHANCE_YOUR_CALM`).
#[tokio::test]
async fn a_header_block_that_never_ends_is_cut_off() {
    const KEEPALIVE: std::time::Duration = std::time::Duration::from_millis(300);
    let config = tandem_web::ServerConfig::default().with_keepalive_timeout(KEEPALIVE);
    let server = Server::start_with(who(&Arc::new(AtomicUsize::new(0))), config).await;
    for drip in [false, true] {
        let mut conn = Raw::open(server.addr, &[]).await;
        // The server's SETTINGS acked first: no frame may come between a block's pieces.
        conn.until(|f| f.kind == SETTINGS && f.flags & ACK == 0).await.unwrap();
        let started = tokio::time::Instant::now();
        conn.send(&frame(HEADERS, 0, 1, &get_block("/who"))).await;
        let mut piece = Vec::new();
        field(&mut piece, b"x-slow", b"1");
        let mut goaway = None;
        loop {
            if drip {
                conn.try_send(&frame(CONTINUATION, 0, 1, &piece)).await;
            }
            // The drip's pace: one piece, then what the server says for 50 ms.
            match tokio::time::timeout(std::time::Duration::from_millis(50), conn.frame()).await {
                Ok(None) => break,
                Ok(Some(f)) if f.kind == GOAWAY => goaway = Some(f.goaway_parts().1),
                Ok(Some(_)) | Err(_) => {}
            }
            assert!(started.elapsed() < crate::support::TIMEOUT, "still open");
        }
        if drip {
            assert_eq!(goaway, Some(0xb), "ENHANCE_YOUR_CALM");
        } else {
            assert!(started.elapsed() >= KEEPALIVE, "closed after {:?}", started.elapsed());
        }
    }
    assert!(server.stop().await);
}

/// `Upgrade: h2c` (RFC 7540's upgrade, removed by RFC 9113) is not switched to: the request
/// is answered on HTTP/1.1, no `101`, and as after any upgrade not taken, the connection
/// closes after the answer, so HTTP/2 frames a client sends behind it are never read, as
/// frames or as requests.
#[tokio::test]
async fn an_h2c_upgrade_is_answered_on_http1_then_closed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = Server::start(who(&calls)).await;
    let mut client = server.connect().await;
    let mut bytes = b"GET /who HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                      Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
        .to_vec();
    bytes.extend_from_slice(crate::h2::PREFACE);
    bytes.extend(frame(SETTINGS, 0, 0, &[]));
    bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &get_block("/who")));
    client.send(&bytes).await;
    let resp = client.response().await;
    assert_eq!((resp.version.as_str(), resp.status, resp.text()), ("HTTP/1.1", 200, "h".into()));
    assert!(resp.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("connection") && v == "close"));
    assert!(client.closes_quietly().await, "closed after the answer, nothing more");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(server.stop().await);
}
