//! Handlers and middlewares: async functions from a request to a response.

use std::{future::Future, panic::AssertUnwindSafe, pin::Pin, sync::Arc};

use crate::{
    HttpError, Request,
    response::{IntoResponse, Response},
};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A request handler: any `async fn(Request) -> impl IntoResponse`, such as
/// `Result<Response, Error>`, so that `?` works inside.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request.
    fn call(&self, req: Request) -> BoxFuture<Response>;
}

impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn call(&self, req: Request) -> BoxFuture<Response> {
        let fut = self(req);
        Box::pin(async move { fut.await.into_response() })
    }
}

pub(crate) type BoxHandler = Arc<dyn Handler>;

/// A middleware: `async fn(Request, Next) -> impl IntoResponse`, in aiohttp's new style.
/// It may change the request, answer by itself, or call `next.run(req)` and change the
/// response. Middlewares run in the order they were added, outermost first.
///
/// ```
/// use tandem_web::{Next, Request, Response};
///
/// async fn error_pages(req: Request, next: Next) -> Response {
///     let response = next.run(req).await;
///     if response.status() == 404 {
///         return Response::html("<h1>Not here</h1>").with_status(response.status());
///     }
///     response
/// }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Handles one request, calling `next` to go on.
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response>;
}

impl<F, Fut, R> Middleware for F
where
    F: Fn(Request, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        let fut = self(req, next);
        Box::pin(async move { fut.await.into_response() })
    }
}

pub(crate) type Middlewares = Arc<[Arc<dyn Middleware>]>;

/// The rest of the chain after a middleware: the following middlewares, then the handler.
#[derive(Clone)]
pub struct Next {
    middlewares: Middlewares,
    index: usize,
    handler: BoxHandler,
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &(self.middlewares.len() - self.index))
            .finish_non_exhaustive()
    }
}

impl Next {
    pub(crate) fn new(middlewares: Middlewares, handler: BoxHandler) -> Self {
        Next { middlewares, index: 0, handler }
    }

    /// Runs the rest of the chain.
    pub async fn run(self, req: Request) -> Response {
        self.call(req).await
    }

    pub(crate) fn call(mut self, req: Request) -> BoxFuture<Response> {
        match self.middlewares.get(self.index).cloned() {
            Some(middleware) => {
                self.index += 1;
                middleware.call(req, self)
            }
            None => self.handler.call(req),
        }
    }
}

/// Runs a future that yields a response, turning a panic into a 500 so the connection and
/// the server live on (the panic is logged).
pub(crate) async fn catch_panic(mut fut: BoxFuture<Response>) -> Response {
    std::future::poll_fn(|cx| poll_catching_panic(&mut fut, cx)).await
}

/// What a panic said, if it said it with a string (as `panic!` does).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Polls a handler's future once, a panic in it answered as [`catch_panic`] does.
#[expect(
    clippy::inline_always,
    reason = "every request's handler is polled through it; with `catch_panic` as a second \
              caller, plain `#[inline]` leaves a call per poll"
)]
#[inline(always)]
pub(crate) fn poll_catching_panic(
    fut: &mut BoxFuture<Response>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Response> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
        Ok(polled) => polled,
        Err(panic) => {
            crate::log::error("handler panicked", &panic_message(panic.as_ref()));
            std::task::Poll::Ready(HttpError::internal_server_error().into_response())
        }
    }
}
