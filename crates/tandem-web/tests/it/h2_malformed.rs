//! Malformed and confusing HTTP/2 requests, and responses HTTP/2 cannot carry as they are,
//! sent frame by frame: a handler never sees a request whose authority is in doubt, and a
//! response with fields HTTP/2 forbids (RFC 9113 §8.2.2) still reaches the client.
#![cfg(feature = "http2")]

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tandem_web::{Application, Request, Response};

use crate::{
    h2::{END_HEADERS, END_STREAM, HEADERS, Raw, field, frame, get_block},
    support::Server,
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
