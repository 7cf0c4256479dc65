//! Each layer's error says its own message, and `source()` the rest, so a report that walks
//! the chain (anyhow's `{:#}`) names each cause once.

use tandem_http::{
    ClientSession,
    test::TestClient,
    web::{Application, Request, Response},
    ws::WsConnectExt,
};

/// Asserts that `err`'s chain names each error once in anyhow's `{:#}`, and returns it.
fn report(err: impl Into<anyhow::Error>) -> String {
    let err = err.into();
    let report = format!("{err:#}");
    for cause in err.chain() {
        let text = cause.to_string();
        assert_eq!(report.matches(&text).count(), 1, "{text:?} repeats in {report:?}");
    }
    report
}

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refused_connection_names_each_cause_once() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let err = ClientSession::new().get(&url).send().await.unwrap_err();
    assert!(err.is_connection_refused(), "{err:?}");
    assert_eq!(err.to_string(), format!("cannot connect for {url}"));
    let chain = report(err);
    assert!(
        chain.starts_with(&format!("cannot connect for {url}: connection failed: ")),
        "{chain}"
    );
    assert!(chain.contains("refused"), "{chain}");
}

#[tokio::test]
async fn websocket_errors_name_each_cause_once() {
    let ws_url = format!("ws://127.0.0.1:{}/", closed_port());
    let err = ClientSession::new().ws_connect(&ws_url).await.unwrap_err();
    assert!(err.is_client(), "{err:?}");
    let chain = report(err);
    assert!(chain.starts_with("WebSocket handshake request failed: cannot connect"), "{chain}");

    // A server that answers the handshake with a page: the handshake's own message, then why.
    let mut app = Application::new();
    app.add_get("/", |_req: Request| async { Response::text("not a WebSocket") });
    let client = TestClient::new(app).await.unwrap();
    let ws_url = client.url("/").replacen("http://", "ws://", 1);
    let err = client.session().ws_connect(&ws_url).await.unwrap_err();
    assert!(err.is_handshake(), "{err:?}");
    assert_eq!(report(err), "WebSocket handshake failed: invalid response status 200 OK");
    client.close().await;
}

#[tokio::test]
async fn a_port_in_use_names_the_address_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = tandem_http::web::serve(addr, Application::new()).await.unwrap_err();
    let chain = report(err);
    assert!(chain.starts_with(&format!("cannot listen on {addr}: ")), "{chain}");
}
