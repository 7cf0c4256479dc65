//! HAR 1.2: a session's exchanges recorded (fields, bodies, redaction, timings, one entry
//! per redirect hop), saved, and replayed offline with the server gone.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;
use tandem_client::{ClientSession, HarRecorder, HarReplay};
use tandem_web::{Application, Request, Response};

use crate::support::{Server, within};

fn app(count: &Arc<AtomicUsize>) -> Application {
    let mut app = Application::new();
    let c = count.clone();
    app.add_get("/count", move |_req: Request| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Response::text(format!("call {n}")) }
    });
    app.add_post("/echo", |mut req: Request| async move {
        let body = req.read().await.unwrap_or_default();
        Response::text(String::from_utf8_lossy(&body).into_owned()).with_header("x-echo", "1")
    });
    app.add_get("/bin", |_req: Request| async {
        Response::bytes(Bytes::from_static(&[0xff, 0, 1]))
    });
    app.add_get("/go", |_req: Request| async {
        Response::new(StatusCode::FOUND).with_header("location", "/count")
    });
    app
}

#[tokio::test]
async fn a_recorded_session_replays_offline() {
    let count = Arc::new(AtomicUsize::new(0));
    let server = Server::start(app(&count)).await;
    let har = HarRecorder::new().bodies(true);
    let s = ClientSession::builder().middleware(har.clone()).timings(true).build();
    let text = |req: tandem_client::RequestBuilder| async move {
        let mut resp = within(req.send()).await.unwrap();
        (resp.status(), within(resp.read()).await.unwrap())
    };
    assert_eq!(text(s.get(&server.url("/count"))).await.1, "call 1");
    let echo = s.post(&server.url("/echo")).bearer_auth("s3cret").body("ping");
    assert_eq!(text(echo).await.1, "ping");
    assert_eq!(text(s.get(&server.url("/bin"))).await.1, &[0xff, 0, 1][..]);
    assert_eq!(text(s.get(&server.url("/go"))).await.1, "call 2");

    let log = har.to_json();
    let entries = log["log"]["entries"].as_array().unwrap();
    assert_eq!(log["log"]["version"], "1.2");
    let urls: Vec<_> = entries.iter().map(|e| e["request"]["url"].as_str().unwrap()).collect();
    let paths: Vec<_> = urls.iter().map(|u| &u[u.rfind('/').unwrap()..]).collect();
    assert_eq!(paths, ["/count", "/echo", "/bin", "/go", "/count"], "one entry per hop");
    let echo = &entries[1];
    assert_eq!(echo["request"]["method"], "POST");
    assert_eq!(echo["request"]["postData"]["text"], "ping");
    let field = |fields: &Value, name: &str| {
        fields.as_array().unwrap().iter().find(|f| f["name"] == name).map(|f| f["value"].clone())
    };
    assert_eq!(field(&echo["request"]["headers"], "authorization").unwrap(), "[redacted]");
    assert_eq!(field(&echo["response"]["headers"], "x-echo").unwrap(), "1");
    assert_eq!(echo["response"]["content"]["text"], "ping");
    assert_eq!(entries[2]["response"]["content"]["encoding"], "base64");
    assert_eq!(entries[3]["response"]["status"], 302);
    assert!(entries[3]["response"]["redirectURL"].as_str().unwrap().ends_with("/count"));
    for entry in entries {
        let started = entry["startedDateTime"].as_str().unwrap();
        assert!(started.len() == 24 && started.ends_with('Z'), "{started}");
        for phase in ["send", "wait", "receive"] {
            assert!(entry["timings"][phase].as_f64().unwrap() >= 0.0, "{phase}: {entry}");
        }
    }
    assert!(entries[0]["timings"]["connect"].as_f64().unwrap() >= 0.0, "a new connection");
    assert_eq!(entries[1]["timings"]["connect"], -1.0, "a pooled one");
    assert!(!log.to_string().contains("s3cret"));

    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("har-test-{}.har", std::process::id()));
    har.save(&path).unwrap();
    let replay = HarReplay::from_file(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let urls = (server.url("/count"), server.url("/bin"), server.url("/echo"));
    server.stop().await;

    // The server is gone: every answer comes from the log, in the order it was recorded.
    let offline = ClientSession::builder().middleware(replay).build();
    assert_eq!(text(offline.get(&urls.0)).await.1, "call 1");
    assert_eq!(text(offline.get(&urls.0)).await.1, "call 2");
    assert_eq!(text(offline.get(&urls.0)).await.1, "call 2", "the last again");
    assert_eq!(text(offline.get(&urls.1)).await.1, &[0xff, 0, 1][..]);
    let (status, body) = text(offline.post(&urls.2).body("ping")).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ping"[..]));
    let e = within(offline.delete(&urls.2).send()).await.unwrap_err();
    assert!(e.is_middleware(), "{e}");
    // The replay's own message is the error's source.
    let why = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
    assert!(why.contains("no HAR entry for DELETE"), "{e:?}");
}

#[tokio::test]
async fn recording_without_bodies_passes_responses_through() {
    let count = Arc::new(AtomicUsize::new(0));
    let server = Server::start(app(&count)).await;
    let har = HarRecorder::new().redact(false);
    let s = ClientSession::builder().middleware(har.clone()).build();
    let req = s.get(&server.url("/count")).bearer_auth("visible");
    let mut resp = within(req.send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "call 1");
    let log = har.to_json();
    let entry = &log["log"]["entries"][0];
    assert!(entry["response"]["content"].get("text").is_none());
    assert_eq!(entry["response"]["content"]["size"], 6);
    assert!(log.to_string().contains("Bearer visible"));
    server.stop().await;
}
