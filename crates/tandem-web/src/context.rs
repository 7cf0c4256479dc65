//! Per-request context: aiohttp runs each request in a copy of the server's `contextvars`
//! context, so a middleware can set a value that code deep under the handler reads without
//! the request being passed down (a request id for the logs, the current user for an audit
//! trail).
//!
//! Here the context is a typed map, one per request (in a thread-local while its request's
//! future is polled), set up by [`App::dispatch`](crate::App::dispatch) around the
//! middlewares and the handler: values are keyed by their type, as `Request::extensions`
//! are. A task the handler spawns starts
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

use std::{
    cell::RefCell,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::Extensions;

use crate::stream_response::Slot;

thread_local! {
    /// The state of the request whose future this thread is polling, if any: its context,
    /// and the slot a `StreamResponse` hands its head over in. A [`Scoped`] future moves its
    /// request's state in here for each poll and back out after it. One thread-local
    /// holds both because moving a value in and out costs every request at each poll.
    static CURRENT: RefCell<Option<RequestLocal>> = const { RefCell::new(None) };
}

struct RequestLocal {
    context: Extensions,
    prepared: Slot,
}

/// Stores `value` in the current request's context, replacing any value of its type.
/// Returns `false`, storing nothing, outside a request (in a signal, or in a spawned task
/// not wrapped in [`inherit`]).
pub fn set<T: Clone + Send + Sync + 'static>(value: T) -> bool {
    with_current(|local| local.context.insert(value)).is_some()
}

/// A copy of the value of type `T` in the current request's context, if one was set.
pub fn get<T: Clone + Send + Sync + 'static>() -> Option<T> {
    CURRENT
        .try_with(|current| current.borrow().as_ref().and_then(|l| l.context.get::<T>().cloned()))
        .ok()
        .flatten()
}

/// Removes the value of type `T` from the current request's context and returns it.
pub fn remove<T: Clone + Send + Sync + 'static>() -> Option<T> {
    with_current(|local| local.context.remove::<T>()).flatten()
}

/// `future` with a copy of the current context (an empty one outside a request): for a
/// task spawned from a handler, `tokio::spawn(context::inherit(work))`. What either side
/// sets later, the other does not see.
pub fn inherit<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let copy = CURRENT
        .try_with(|current| current.borrow().as_ref().map(|l| l.context.clone()))
        .ok()
        .flatten()
        .unwrap_or_default();
    // A spawned task cannot prepare its request's response.
    Scoped::new(RequestLocal { context: copy, prepared: Slot::Closed }, future)
}

/// `future` in a new, empty context, with a slot open for a `StreamResponse`: one
/// request's.
pub(crate) fn scope<F: Future>(future: F) -> impl Future<Output = F::Output> {
    Scoped::new(RequestLocal { context: Extensions::new(), prepared: Slot::Open }, future)
}

/// Runs `f` on the current request's `StreamResponse` slot; `None` outside a request.
pub(crate) fn with_slot<R>(f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    with_current(|local| f(&mut local.prepared))
}

/// Runs `f` on the current request's state; `None` outside a request.
fn with_current<R>(f: impl FnOnce(&mut RequestLocal) -> R) -> Option<R> {
    CURRENT.try_with(|current| current.borrow_mut().as_mut().map(f)).ok().flatten()
}

pin_project_lite::pin_project! {
    /// A future run with its request's state current at each poll, and at its drop when it
    /// is dropped unfinished (a cancelled handler's destructors still see their context),
    /// as tokio's task-locals do.
    struct Scoped<F> {
        #[pin]
        future: F,
        // After `future`, so it is dropped after it: see `PinnedDrop`.
        home: Home,
        finished: bool,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.finished {
                // Moved in here, and back out by `Home`'s drop once `future` is dropped. Not
                // if the thread's locals are gone (a runtime dropping its tasks as its thread
                // exits): the future is then dropped without its context, as tokio's
                // task-locals do, rather than panicking in a drop.
                this.home.entered = this.home.try_swap();
            }
        }
    }
}

impl<F> Scoped<F> {
    fn new(local: RequestLocal, future: F) -> Self {
        Scoped { future, home: Home { local: Some(local), entered: false }, finished: false }
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let entered = Entered::new(this.home);
        let polled = this.future.poll(cx);
        drop(entered);
        *this.finished = polled.is_ready();
        polled
    }
}

/// A request's state while it is not current, or, while it is, the state it displaced
/// (another request's, or none).
struct Home {
    local: Option<RequestLocal>,
    /// Whether the request's state is current, from a drop: moved back out on this one's.
    entered: bool,
}

impl Home {
    /// Exchanges this state with the current one.
    fn swap(&mut self) {
        CURRENT.with(|current| std::mem::swap(&mut *current.borrow_mut(), &mut self.local));
    }

    /// [`swap`](Self::swap) where it can be made (from a drop): whether it was.
    fn try_swap(&mut self) -> bool {
        CURRENT
            .try_with(|current| {
                let Ok(mut current) = current.try_borrow_mut() else { return false };
                std::mem::swap(&mut *current, &mut self.local);
                true
            })
            .unwrap_or(false)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if self.entered {
            self.try_swap();
        }
    }
}

/// A request's state made current for one poll; moved back out when dropped, a panic
/// included.
struct Entered<'a>(&'a mut Home);

impl<'a> Entered<'a> {
    fn new(home: &'a mut Home) -> Self {
        home.swap();
        Entered(home)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.swap();
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::Future,
        sync::{Arc, Mutex},
        task::{Context, Waker},
    };

    use super::{get, scope, set};

    /// Records, as it is dropped, what context it sees then.
    struct ReadsOnDrop(Arc<Mutex<Vec<Option<u32>>>>);

    impl Drop for ReadsOnDrop {
        fn drop(&mut self) {
            self.0.lock().unwrap().push(get::<u32>());
        }
    }

    #[test]
    fn a_request_dropped_unfinished_sees_its_context_while_it_drops() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let held = ReadsOnDrop(Arc::clone(&seen));
        let mut request = Box::pin(scope(async move {
            assert!(set(7_u32));
            let _held = held;
            std::future::pending::<()>().await;
        }));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(request.as_mut().poll(&mut cx).is_pending());
        // Between polls the request's context is not current.
        assert_eq!(get::<u32>(), None);
        drop(request);
        assert_eq!(*seen.lock().unwrap(), [Some(7)]);
        assert_eq!(get::<u32>(), None);
    }

    #[test]
    fn a_request_inside_another_leaves_the_outer_context_as_it_was() {
        let mut outer = Box::pin(scope(async {
            assert!(set(1_u32));
            let inner = scope(async {
                assert_eq!(get::<u32>(), None);
                assert!(set(2_u32));
                get::<u32>()
            });
            (inner.await, get::<u32>())
        }));
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(outer.as_mut().poll(&mut cx), std::task::Poll::Ready((Some(2), Some(1))));
        assert_eq!(get::<u32>(), None);
    }
}
