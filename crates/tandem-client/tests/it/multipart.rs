//! Multipart on the client side: reading a `multipart/mixed` response part by part.

use tandem_web::{Application, Request, Response};

use crate::support::{Server, session, within};

const MIXED: &str = "preamble\r\n--XyZ\r\ncontent-type: text/plain; charset=utf-8\r\n\r\nfirst part\r\n--XyZ\r\ncontent-type: application/json\r\ncontent-disposition: attachment; name=\"data\"; filename=\"d.json\"\r\n\r\n{\"a\":1}\r\n--XyZ--\r\n";

fn app() -> Application {
    let mut app = Application::new();
    app.add_get("/mixed", |_req: Request| async {
        let mut r = Response::bytes(MIXED.as_bytes());
        r.set_content_type("multipart/mixed; boundary=XyZ").unwrap();
        r
    });
    app.add_get("/broken", |_req: Request| async {
        let mut r = Response::bytes(&b"--XyZ\r\ncontent-type: text/plain\r\n\r\nno end"[..]);
        r.set_content_type("multipart/mixed; boundary=XyZ").unwrap();
        r
    });
    app.add_get("/plain", |_req: Request| async { Response::text("not multipart") });
    app
}

#[tokio::test]
async fn a_multipart_response_is_read_part_by_part() {
    let server = Server::start(app()).await;
    let s = session();
    let resp = within(s.get(&server.url("/mixed")).send()).await.unwrap();
    let mut parts = resp.multipart().unwrap();
    let first = within(parts.next_part()).await.unwrap().unwrap();
    assert_eq!(first.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(first.name(), None);
    assert_eq!(within(first.text()).await.unwrap(), "first part");
    let second = within(parts.next_part()).await.unwrap().unwrap();
    assert_eq!((second.name(), second.filename()), (Some("data"), Some("d.json")));
    assert_eq!(within(second.bytes()).await.unwrap(), r#"{"a":1}"#);
    assert!(within(parts.next_part()).await.unwrap().is_none());

    // A body that stops before its closing boundary is a payload error.
    let resp = within(s.get(&server.url("/broken")).send()).await.unwrap();
    let mut parts = resp.multipart().unwrap();
    let outcome = async {
        let mut part = parts.next_part().await?.expect("a first part");
        while part.chunk().await?.is_some() {}
        parts.next_part().await.map(|_| ())
    };
    assert!(within(outcome).await.unwrap_err().is_payload());

    let resp = within(s.get(&server.url("/plain")).send()).await.unwrap();
    let e = resp.multipart().unwrap_err();
    assert!(e.is_decode() && e.request_info().is_some());
    server.stop().await;
}
