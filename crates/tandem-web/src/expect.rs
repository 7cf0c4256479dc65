//! `Expect: 100-continue`, answered per route: aiohttp's `expect_handler`.
//!
//! A client that sends `Expect: 100-continue` waits for `100 Continue` before it sends its
//! body, so that a server can refuse a large upload (too big, not authorised) before the
//! bytes travel. The connection routes the request first, then runs the route's expect
//! handler, before any middleware, as aiohttp does; the `100 Continue` goes out only when
//! the handler lets the request through.

use std::{
    future::Future,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

use crate::{BoxFuture, Request, Response};

/// A route's check of an `Expect: 100-continue` request, before its body is sent
/// (aiohttp's `expect_handler`), set with
/// [`RouteRef::expect_handler`](crate::RouteRef::expect_handler).
///
/// It gets the request without its body. `None` lets the request through: the server
/// sends `100 Continue`, and then the middlewares and the route's handler run, as for
/// any request. `Some(response)` refuses it: that response is sent instead (417, 401,
/// 413...), no middleware or handler runs, the body is never read, and the connection
/// closes after the response, since the client may or may not send the body anyway and its
/// bytes cannot be told from a next request.
///
/// On HTTP/2 the check runs the same way; the `100` is an informational HEADERS frame, and
/// a refusal ends the stream without its body.
///
/// Without one, a route lets every request through (aiohttp's default handler). An
/// expectation other than `100-continue` never reaches a handler: the connection answers
/// 417 before routing. Requests without `Expect`, and HTTP/1.0 ones (which must ignore
/// it), skip the check.
///
/// ```
/// use tandem_web::{Application, HttpError, Request, Response};
///
/// let mut app = Application::new();
/// app.add_post("/upload", |mut req: Request| async move {
///     let body = req.read().await?;
///     Ok::<_, HttpError>(Response::text(format!("{} bytes", body.len())))
/// })
/// .expect_handler(|req: Request| async move {
///     // Refused before the client sends a byte of its body.
///     (req.header("authorization").is_none())
///         .then(|| HttpError::unauthorized().into_response())
/// });
/// ```
pub trait ExpectHandler: Send + Sync + 'static {
    /// Checks one request: `None` to let it through, or the response that refuses it.
    fn check(&self, req: Request) -> BoxFuture<Option<Response>>;
}

impl<F, Fut> ExpectHandler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<Response>> + Send + 'static,
{
    fn check(&self, req: Request) -> BoxFuture<Option<Response>> {
        Box::pin(self(req))
    }
}

pub(crate) type BoxExpect = Arc<dyn ExpectHandler>;

/// How the dispatch tells the connection whether to send `100 Continue`: `true` once the
/// route let the request through. Kept in the request's extensions, so that it crosses
/// tower layers with the request; the connection treats a signal dropped unsent as a
/// refusal (the body was never asked for).
#[derive(Clone, Debug)]
pub(crate) struct ContinueSignal(Arc<Mutex<Option<oneshot::Sender<bool>>>>);

impl ContinueSignal {
    /// A signal, and the receiver the connection waits on.
    pub(crate) fn new() -> (Self, oneshot::Receiver<bool>) {
        let (tx, rx) = oneshot::channel();
        (ContinueSignal(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    /// Says whether the body may come; only the first word counts.
    pub(crate) fn send(&self, go: bool) {
        let sender = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(sender) = sender {
            let _ = sender.send(go);
        }
    }
}
