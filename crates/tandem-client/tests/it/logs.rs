//! No secret reaches a log: every span and event of the client, the connector and the
//! server, at TRACE, captured while requests carry credentials in the URL, `Authorization`,
//! `Cookie` and `Proxy-Authorization`, through a redirect and a proxy; errors whose message
//! names a URL with credentials in it; and responses, requests and sessions logged with
//! `Debug`.

use std::{
    fmt::{self, Write as _},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use http::StatusCode;
use tandem_client::{Origin, Proxy, Scheme};
use tandem_web::{Application, Request, Response};
use tracing::{
    Event, Metadata, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
    subscriber::Interest,
};

use crate::support::{Server, session, within};

/// A subscriber that wants everything and writes every span's and event's fields, as a
/// formatting subscriber would, into one string.
#[derive(Clone, Default)]
struct Capture {
    text: Arc<Mutex<String>>,
    next_id: Arc<AtomicU64>,
}

impl Capture {
    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    fn line(&self, kind: &str, meta: &Metadata<'_>, fields: &dyn Fn(&mut dyn Visit)) {
        let mut line = format!("{kind} {} {}:", meta.target(), meta.name());
        fields(&mut Fields(&mut line));
        line.push('\n');
        self.text.lock().unwrap().push_str(&line);
    }
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Subscriber for Capture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.line("span", span.metadata(), &|v| span.record(v));
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = String::from("record:");
        values.record(&mut Fields(&mut line));
        line.push('\n');
        self.text.lock().unwrap().push_str(&line);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        self.line("event", event.metadata(), &|v| event.record(v));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// What must never be logged: the URL's password, the `Authorization` it becomes, a bearer
/// token, a cookie, and the proxy's credentials and their encoding.
const SECRETS: [&str; 6] = [
    "secret",
    // base64 of `user:secret`, as `Authorization: Basic` carries it.
    "dXNlcjpzZWNyZXQ",
    "bearer-token-value",
    "cookie-value",
    "Basic",
    // base64 of `pu:proxy-secret`.
    "cHU6cHJveHktc2VjcmV0",
];

fn app() -> Application {
    let mut app = Application::new();
    // A redirect whose `Location` holds credentials too, so the redirect event sees some.
    app.add_get("/moved", |req: Request| async move {
        let host = req.headers()["host"].to_str().unwrap().to_owned();
        Response::new(StatusCode::FOUND)
            .with_header("location", &format!("http://user:secret@{host}/final"))
    });
    // Echoes the credentials it received, so the test knows they were on the wire.
    app.add_get("/final", |req: Request| async move {
        let h = req.headers();
        let field = |name: &str| h.get(name).map_or("", |v| v.to_str().unwrap()).to_owned();
        Response::text(format!(
            "{}|{}|{}",
            field("authorization"),
            field("cookie"),
            field("proxy-authorization")
        ))
    });
    // A cookie for the jar, so that a session's `Debug` has one to leave out.
    app.add_get("/login", |_req: Request| async {
        Response::text("in").with_header("set-cookie", "token=cookie-value-set; Path=/")
    });
    app
}

/// Runs [`secrets_are_not_captured`] in a process of its own. In the shared test binary,
/// other tests' threads (with no subscriber) register tracing callsites while this test's
/// thread-local capture is installed, and tracing's cached interest could then hide an event
/// from the capture (about one full run in five here); alone in a process it sees them all.
#[test]
fn nothing_secret_is_logged_at_trace() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "logs::secrets_are_not_captured", "--ignored", "--nocapture"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

/// The test's runtime has one thread, so the server's spans and events, the client's and
/// the connector's all reach the capturing subscriber set on it.
#[tokio::test]
#[ignore = "run alone, in a process of its own, by nothing_secret_is_logged_at_trace"]
async fn secrets_are_not_captured() {
    let capture = Capture::default();
    let guard = tracing::subscriber::set_default(capture.clone());
    let server = Server::start(app()).await;
    let port = server.addr.port();
    let s = session();

    // Credentials in the URL, a cookie, through a redirect whose Location holds credentials.
    let url = format!("http://user:secret@127.0.0.1:{port}/moved");
    let mut resp = within(s.get(&url).header("cookie", "sid=cookie-value").send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.history().len(), 1);
    assert_eq!(within(resp.text()).await.unwrap(), "Basic dXNlcjpzZWNyZXQ=|sid=cookie-value|");

    // A bearer token, and a plain-http proxy with credentials: the server itself is the
    // proxy, and reads the absolute-form target.
    let proxy =
        Proxy::new(Origin::new(Scheme::Http, "127.0.0.1", port)).basic_auth("pu", "proxy-secret");
    // (Without credentials in the URL: with an `Authorization` of the request's own, they
    // are an error, as in aiohttp.)
    let req = s
        .get(&format!("http://127.0.0.1:{port}/final"))
        .header("authorization", "Bearer bearer-token-value")
        .proxy(proxy);
    let mut resp = within(req.send()).await.unwrap();
    assert_eq!(
        within(resp.text()).await.unwrap(),
        "Bearer bearer-token-value||Basic cHU6cHJveHktc2VjcmV0"
    );

    // Errors that name the URL: one refused while building, one refused as a URL, one that
    // failed to connect. They are logged as callers would log them.
    let errors = [
        within(s.get(&url).header("x-bad", "a\nb").send()).await.unwrap_err(),
        within(s.get("http://user:secret@2130706433/").send()).await.unwrap_err(),
        within(s.get("user:secret@127.0.0.1/x").send()).await.unwrap_err(),
        within(s.get("http://user:secret@127.0.0.1:1/x").send()).await.unwrap_err(),
    ];
    for e in &errors {
        tracing::error!(error = %e, debug = ?e, "request failed");
    }

    // Values logged with `Debug`, as callers log them: a response (its request's fields and
    // its `Set-Cookie`), a request being built, and a session with a cookie in its jar and
    // credentials in its default fields and base URL.
    let mut login = within(s.get(&format!("http://127.0.0.1:{port}/login")).send()).await.unwrap();
    assert_eq!(within(login.text()).await.unwrap(), "in");
    assert_eq!(s.cookie_jar().len(), 1);
    let builder = s.get(&url).header("authorization", "Bearer bearer-token-value");
    let with_defaults = tandem_client::ClientSession::builder()
        .base_url(&format!("http://user:secret@127.0.0.1:{port}/"))
        .header("authorization", "Bearer bearer-token-value")
        .header("cookie", "sid=cookie-value")
        .build();
    tracing::debug!(response = ?resp, login = ?login, ?builder, session = ?s, ?with_defaults, "values");
    server.stop().await;
    drop(guard);

    let text = capture.text();
    // The capture saw what it should: the request spans, the redirect and the access log.
    assert!(text.contains("span tandem_client::session request:"), "{text}");
    assert!(text.contains("url=http://127.0.0.1:"), "{text}");
    assert!(text.contains("message=redirect"), "{text}");
    assert!(text.contains(&format!("to=http://127.0.0.1:{port}/final")), "{text}");
    assert!(text.contains("event tandem::access"), "{text}");
    assert!(text.contains("\"authorization\": <redacted>"), "{text}");
    assert!(text.contains("\"set-cookie\": <redacted>"), "{text}");
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret:?} was logged:\n{text}");
    }
}
