//! Client middlewares: the order they run in, a request's own and opting out of the
//! session's, several sends from one middleware, one run per redirect hop, and streamed
//! bodies that are never replayed.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::StatusCode;
use tandem_client::{
    BoxFuture, ClientNext, ClientRequest, ClientResponse, ClientSession, Error, Middleware,
};
use tandem_web::{Application, Request, Response};

use crate::support::{Server, within};

/// Records `name>` on the way in and `<name` on the way out.
struct Mark {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Middleware for Mark {
    fn handle(
        &self,
        mut req: ClientRequest,
        next: ClientNext,
    ) -> BoxFuture<'_, Result<ClientResponse, Error>> {
        Box::pin(async move {
            self.log.lock().unwrap().push(format!("{}>", self.name));
            req.headers_mut().append("x-mark", self.name.parse().unwrap());
            let resp = next.run(req).await?;
            self.log.lock().unwrap().push(format!("<{}", self.name));
            Ok(resp)
        })
    }
}

fn app() -> Application {
    let mut app = Application::new();
    app.add_route(None, "/marks", |req: Request| async move {
        let marks: Vec<_> = req
            .headers()
            .get_all("x-mark")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        Response::text(marks.join(","))
    });
    app.add_get("/redirect", |_req: Request| async {
        Response::new(StatusCode::FOUND).with_header("location", "/marks")
    });
    // 401 until the request carries `x-token: ok`.
    app.add_get("/guarded", |req: Request| async move {
        if req.header("x-token") == Some("ok") {
            Response::text("in")
        } else {
            Response::text("who are you?").with_status(StatusCode::UNAUTHORIZED)
        }
    });
    app
}

fn marks(log: &Arc<Mutex<Vec<String>>>, names: &[&'static str]) -> Vec<Mark> {
    names.iter().map(|name| Mark { name, log: log.clone() }).collect()
}

#[tokio::test]
async fn session_then_request_middlewares_in_onion_order() {
    let server = Server::start(app()).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let [a, b, c]: [Mark; 3] = marks(&log, &["a", "b", "c"]).try_into().ok().unwrap();
    let session = ClientSession::builder().middleware(a).middleware(b).build();
    let mut resp = within(session.get(&server.url("/marks")).middleware(c).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "a,b,c");
    assert_eq!(*log.lock().unwrap(), ["a>", "b>", "c>", "<c", "<b", "<a"]);

    // Opting out of the session's: only the request's own run.
    log.lock().unwrap().clear();
    let [d]: [Mark; 1] = marks(&log, &["d"]).try_into().ok().unwrap();
    let request = session.get(&server.url("/marks")).session_middlewares(false).middleware(d);
    let mut resp = within(request.send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "d");
    assert_eq!(*log.lock().unwrap(), ["d>", "<d"]);

    // And with none at all, the request goes straight out.
    log.lock().unwrap().clear();
    let request = session.get(&server.url("/marks")).session_middlewares(false);
    assert_eq!(within(within(request.send()).await.unwrap().text()).await.unwrap(), "");
    assert!(log.lock().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_middleware_runs_once_per_redirect_hop() {
    let server = Server::start(app()).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let [a]: [Mark; 1] = marks(&log, &["a"]).try_into().ok().unwrap();
    let session = ClientSession::builder().middleware(a).build();
    let mut resp = within(session.get(&server.url("/redirect")).send()).await.unwrap();
    assert_eq!(within(resp.text()).await.unwrap(), "a", "the second hop got its own mark");
    assert_eq!(resp.history().len(), 1);
    assert_eq!(*log.lock().unwrap(), ["a>", "<a", "a>", "<a"]);
    server.stop().await;
}

/// A plain `async fn` is a middleware; it may send again after looking at the answer,
/// and the connection of the answer it drops goes back to the pool.
async fn log_in(req: ClientRequest, next: ClientNext) -> Result<ClientResponse, Error> {
    let mut again = req.try_clone().expect("a whole body can be sent again");
    let mut resp = next.run(req).await?;
    if resp.status() != StatusCode::UNAUTHORIZED {
        return Ok(resp);
    }
    resp.release().await;
    again.headers_mut().insert("x-token", "ok".parse().unwrap());
    next.run(again).await
}

#[tokio::test]
async fn an_async_fn_middleware_can_send_twice() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder().middleware(log_in).build();
    let mut resp = within(session.get(&server.url("/guarded")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(within(resp.text()).await.unwrap(), "in");
    let stats = session.connector().pool_stats();
    assert_eq!(stats.iter().map(|(_, s)| s.idle).sum::<usize>(), 1, "one connection served both");
    server.stop().await;
}

#[tokio::test]
async fn a_streamed_body_cannot_be_cloned_for_a_resend() {
    let server = Server::start(app()).await;
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let session = ClientSession::builder()
        .middleware(move |req: ClientRequest, next: ClientNext| {
            *record.lock().unwrap() = Some((req.is_streamed(), req.try_clone().is_none()));
            next.run(req)
        })
        .build();
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from("x"))]);
    let resp = within(session.post(&server.url("/marks")).body_stream(stream).send()).await;
    assert_eq!(resp.unwrap().status(), StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), Some((true, true)));
    server.stop().await;
}

#[tokio::test]
async fn a_middleware_changing_the_url_to_a_non_http_one_fails_the_hop() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .middleware(|mut req: ClientRequest, next: ClientNext| {
            req.set_url("ftp://example.com/".parse().unwrap());
            next.run(req)
        })
        .build();
    let e = within(session.get(&server.url("/marks")).send()).await.unwrap_err();
    assert!(e.is_invalid_url(), "{e}");
    server.stop().await;
}

#[tokio::test]
async fn a_middleware_can_refuse_without_sending() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .middleware(|req: ClientRequest, next: ClientNext| async move {
            if req.url().path().starts_with("/guarded") {
                return Err(Error::middleware("no guarded paths from here"));
            }
            next.run(req).await
        })
        .build();
    let e = within(session.get(&server.url("/guarded")).send()).await.unwrap_err();
    assert!(e.is_middleware(), "{e}");
    assert_eq!(e.url().map(url::Url::path), Some("/guarded"));
    let source = std::error::Error::source(&e).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("no guarded paths from here"));
    let resp = within(session.get(&server.url("/marks")).send()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    server.stop().await;
}
