//! Request options: the one-shot `request()`, `skip_auto_headers`, HTTP/1.0, and
//! `raise_for_status` as a function.

use http::{Method, StatusCode, Version};
use tandem_client::ClientSession;

use crate::support::{RawServer, read_request, session, within, write};

/// Answers every request with its head as the body, keeping the connection open unless the
/// request is HTTP/1.0 without keep-alive.
async fn head_echo() -> RawServer {
    RawServer::start(|mut stream, _| async move {
        while let Some(req) = read_request(&mut stream).await {
            let end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            let head = String::from_utf8_lossy(&req[..end]).into_owned();
            let status = if head.contains("/missing") { "404 Not Found" } else { "200 OK" };
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{head}",
                head.len()
            );
            write(&mut stream, answer.as_bytes()).await;
        }
    })
    .await
}

async fn sent_head(req: tandem_client::RequestBuilder) -> String {
    let mut resp = within(req.send()).await.unwrap();
    within(resp.text()).await.unwrap().to_ascii_lowercase()
}

#[tokio::test]
async fn one_shot_request_uses_a_fresh_connection_each_time() {
    let server = head_echo().await;
    for expected in 1..=2 {
        let head = sent_head(tandem_client::request(Method::GET, &server.url("/one"))).await;
        assert!(head.starts_with("get /one http/1.1"), "{head}");
        assert_eq!(server.connections(), expected);
    }
    // The facade names it too, as `aiohttp.request`.
    let mut resp = within(tandem_http::request(Method::POST, &server.url("/two")).body("x").send())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(within(resp.text()).await.unwrap().starts_with("POST /two"));
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn skip_auto_headers_per_session_and_per_request() {
    let server = head_echo().await;
    let head = sent_head(session().post(&server.url("/")).body("x")).await;
    for field in ["user-agent:", "accept:", "accept-encoding:", "content-type:"] {
        assert!(head.contains(field), "{field} in {head}");
    }
    let s = ClientSession::builder().skip_auto_headers(["user-agent", "accept"]).build();
    let head = sent_head(s.post(&server.url("/")).body("x")).await;
    assert!(!head.contains("user-agent:") && !head.contains("accept:"), "{head}");
    assert!(head.contains("accept-encoding:") && head.contains("content-type:"), "{head}");
    // A request adds its own; an explicit field is still sent; Host and the length stay.
    let req = s
        .post(&server.url("/"))
        .body("x")
        .skip_auto_headers(["content-type", "accept-encoding"])
        .header("user-agent", "mine");
    let head = sent_head(req).await;
    assert!(!head.contains("content-type:") && !head.contains("accept-encoding:"), "{head}");
    assert!(head.contains("user-agent: mine"), "{head}");
    assert!(head.contains("host:") && head.contains("content-length: 1"), "{head}");
    // The session's next request without a list of its own has its fields back.
    let head = sent_head(s.post(&server.url("/")).body("x")).await;
    assert!(head.contains("content-type:"), "{head}");
}

#[tokio::test]
async fn http10_requests() {
    let server = head_echo().await;
    let head = sent_head(session().get(&server.url("/old")).version(Version::HTTP_10)).await;
    assert!(head.starts_with("get /old http/1.0\r\n"), "{head}");
    assert!(head.contains("connection: keep-alive"), "{head}");
    let s = ClientSession::builder().version(Version::HTTP_10).build();
    let head = sent_head(s.get(&server.url("/old"))).await;
    assert!(head.starts_with("get /old http/1.0\r\n"), "{head}");
    // HTTP/1.0 has no chunked framing: a streamed body cannot be sent.
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from("x"))]);
    let e = within(s.post(&server.url("/")).body_stream(stream).send()).await.unwrap_err();
    assert!(e.is_request(), "{e:?}");
    // Only 1.0 and 1.1 can be asked for.
    let e = within(session().get(&server.url("/")).version(Version::HTTP_3).send()).await;
    assert!(e.unwrap_err().is_request());
    assert!(ClientSession::builder().version(Version::HTTP_09).try_build().is_err());
}

#[derive(Debug)]
struct Quota(String);

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "quota: {}", self.0)
    }
}

impl std::error::Error for Quota {}

#[tokio::test]
async fn raise_for_status_as_a_function() {
    let server = head_echo().await;
    // The function reads the body and fails with an error of its own.
    let s = ClientSession::builder()
        .raise_for_status_with(|resp| {
            Box::pin(async move {
                if resp.status() == StatusCode::NOT_FOUND {
                    let body = resp.text().await?;
                    return Err(Quota(body.lines().next().unwrap_or_default().to_owned()).into());
                }
                Ok(())
            })
        })
        .build();
    let e = within(s.get(&server.url("/missing")).send()).await.unwrap_err();
    assert!(e.is_status() && e.status() == Some(StatusCode::NOT_FOUND), "{e:?}");
    let quota = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<Quota>()).unwrap();
    assert_eq!(quota.0, "GET /missing HTTP/1.1");
    assert_eq!(e.request_info().map(|r| r.url().path()), Some("/missing"));
    assert!(within(s.get(&server.url("/fine")).send()).await.is_ok());
    // A request's own setting wins, either way; a tandem Error from the function is kept.
    let resp = within(s.get(&server.url("/missing")).raise_for_status(false).send()).await;
    assert_eq!(resp.unwrap().status(), StatusCode::NOT_FOUND);
    let req = session()
        .get(&server.url("/missing"))
        .raise_for_status_with(|resp| Box::pin(async move { Ok(resp.raise_for_status()?) }));
    let e = within(req.send()).await.unwrap_err();
    assert!(e.is_status() && std::error::Error::source(&e).is_none(), "{e:?}");
}
