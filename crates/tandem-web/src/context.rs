//! Per-request context: aiohttp runs each request in a copy of the server's `contextvars`
//! context, so a middleware can set a value that code deep under the handler reads without
//! the request being passed down (a request id for the logs, the current user for an audit
//! trail).
//!
//! Here the context is a task-local typed map, one per request, set up by
//! [`App::dispatch`](crate::App::dispatch) around the middlewares and the handler: values
//! are keyed by their type, as `Request::extensions` are. A task the handler spawns starts
//! with no context unless it is wrapped in [`inherit`], which copies the current one, as
//! asyncio copies the context into a new task.
//!
//! ```
//! use tandem_web::{Application, Next, Request, Response, context};
//!
//! #[derive(Clone)]
//! struct RequestId(String);
//!
//! fn log(message: &str) -> String {
//!     // No request in sight, and still the id.
//!     let id = context::get::<RequestId>().map(|id| id.0).unwrap_or_default();
//!     format!("[{id}] {message}")
//! }
//!
//! let mut app = Application::new();
//! app.middleware(|req: Request, next: Next| async move {
//!     let id = req.header("x-request-id").unwrap_or("-").to_owned();
//!     context::set(RequestId(id));
//!     next.run(req).await
//! });
//! app.add_get("/", |_req: Request| async { Response::text(log("hello")) });
//! ```

use std::{cell::RefCell, future::Future};

use http::Extensions;

use crate::stream_response::Slot;

tokio::task_local! {
    /// One request's task-local state: its context, and the slot a `StreamResponse` hands
    /// its head over in. One task-local holds both because entering a task-local's scope
    /// costs every request a swap in and out at each poll.
    static REQUEST: RefCell<RequestLocal>;
}

struct RequestLocal {
    context: Extensions,
    prepared: Slot,
}

/// Stores `value` in the current request's context, replacing any value of its type.
/// Returns `false`, storing nothing, outside a request (in a signal, or in a spawned task
/// not wrapped in [`inherit`]).
pub fn set<T: Clone + Send + Sync + 'static>(value: T) -> bool {
    REQUEST.try_with(|local| local.borrow_mut().context.insert(value)).is_ok()
}

/// A copy of the value of type `T` in the current request's context, if one was set.
pub fn get<T: Clone + Send + Sync + 'static>() -> Option<T> {
    REQUEST.try_with(|local| local.borrow().context.get::<T>().cloned()).ok().flatten()
}

/// Removes the value of type `T` from the current request's context and returns it.
pub fn remove<T: Clone + Send + Sync + 'static>() -> Option<T> {
    REQUEST.try_with(|local| local.borrow_mut().context.remove::<T>()).ok().flatten()
}

/// `future` with a copy of the current context (an empty one outside a request): for a
/// task spawned from a handler, `tokio::spawn(context::inherit(work))`. What either side
/// sets later, the other does not see.
pub fn inherit<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let copy = REQUEST.try_with(|local| local.borrow().context.clone()).unwrap_or_default();
    // A spawned task cannot prepare its request's response.
    REQUEST.scope(RefCell::new(RequestLocal { context: copy, prepared: Slot::Closed }), future)
}

/// `future` in a new, empty context, with a slot open for a `StreamResponse`: one
/// request's.
pub(crate) fn scope<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let local = RequestLocal { context: Extensions::new(), prepared: Slot::Open };
    REQUEST.scope(RefCell::new(local), future)
}

/// Runs `f` on the current request's `StreamResponse` slot; `None` outside a request.
pub(crate) fn with_slot<R>(f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    REQUEST.try_with(|local| f(&mut local.borrow_mut().prepared)).ok()
}
