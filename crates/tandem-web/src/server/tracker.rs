//! [`TaskTracker`]: counts the server's tasks (accept loops, connections, a worker's
//! connections held by its runner) so that a shutdown can wait for them all.
//!
//! Hand-written rather than tokio-util's `TaskTracker`: that one sits behind tokio-util's
//! `rt` feature, which turns on futures-util's default features and with them a proc macro
//! (futures-macro, and syn under it), compiled first in every user's build for nothing the
//! server uses.

use std::{
    future::Future,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use tokio::sync::Notify;

use crate::handler::BoxFuture;

/// Set in [`Shared::state`] once the tracker is closed.
const CLOSED: usize = 1;
/// What a token adds to [`Shared::state`] (the low bit is [`CLOSED`]).
const ONE_TOKEN: usize = 2;

/// Counts the tokens taken on it (each tracked task holds one); once it is closed,
/// [`wait`](Self::wait) returns when none is left. Clones share one count.
#[derive(Clone, Debug, Default)]
pub(crate) struct TaskTracker(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    /// The live tokens times [`ONE_TOKEN`], plus [`CLOSED`] once closed.
    state: AtomicUsize,
    /// Woken when the tracker is closed and empty.
    done: Notify,
}

impl TaskTracker {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A hold on the tracker: [`wait`](Self::wait) does not return while it lives.
    pub(crate) fn token(&self) -> TaskToken {
        self.0.state.fetch_add(ONE_TOKEN, Ordering::Relaxed);
        TaskToken(Arc::clone(&self.0))
    }

    /// `future`, holding a token until it finishes or is dropped. A struct, not an `async`
    /// block, which would hold `future` twice (moved in, and pinned to await).
    pub(crate) fn track_future<F: Future>(&self, future: F) -> Tracked<F> {
        Tracked { future, _token: self.token() }
    }

    /// Runs `task` as a task of the current runtime, tracked until it ends or is dropped.
    ///
    /// Every task goes to tokio as the same boxed type: tokio's task code is generic over
    /// the future and compiled for each type spawned (twice over, for both runtimes'
    /// schedulers), so this compiles it once for all the server's kinds of task.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let task: BoxFuture<()> = Box::pin(self.track_future(task));
        tokio::spawn(task);
    }

    /// Lets [`wait`](Self::wait) return once no token is left.
    pub(crate) fn close(&self) {
        if self.0.state.fetch_or(CLOSED, Ordering::AcqRel) == 0 {
            self.0.done.notify_waiters();
        }
    }

    /// Returns once the tracker is closed and no token is left.
    pub(crate) async fn wait(&self) {
        loop {
            let mut done = pin!(self.0.done.notified());
            // Registered before the state is read, so a last token dropped in between
            // still wakes this waiter.
            done.as_mut().enable();
            if self.0.state.load(Ordering::Acquire) == CLOSED {
                return;
            }
            done.await;
        }
    }
}

pin_project_lite::pin_project! {
    /// [`TaskTracker::track_future`]'s future.
    pub(crate) struct Tracked<F> {
        #[pin]
        future: F,
        _token: TaskToken,
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

/// A hold on a [`TaskTracker`], let go when dropped.
pub(crate) struct TaskToken(Arc<Shared>);

impl Drop for TaskToken {
    fn drop(&mut self) {
        if self.0.state.fetch_sub(ONE_TOKEN, Ordering::AcqRel) == CLOSED + ONE_TOKEN {
            self.0.done.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;
    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn wait_returns_once_closed_and_every_token_is_gone() {
        let tracker = TaskTracker::new();
        let (first, second) = (tracker.token(), tracker.token());
        let mut wait = pin!(tracker.wait());
        assert!(wait.as_mut().now_or_never().is_none(), "open, two tokens");
        drop(first);
        tracker.close();
        assert!(wait.as_mut().now_or_never().is_none(), "closed, one token");
        drop(second);
        wait.await;
    }

    #[tokio::test]
    async fn an_empty_tracker_waits_until_closed() {
        let tracker = TaskTracker::new();
        let mut wait = pin!(tracker.wait());
        assert!(wait.as_mut().now_or_never().is_none());
        tracker.close();
        wait.await;
        // A token taken after the close holds the next wait again.
        let token = tracker.token();
        assert!(pin!(tracker.wait()).now_or_never().is_none());
        drop(token);
        tracker.wait().await;
    }

    #[tokio::test]
    async fn a_tracked_future_holds_its_token_until_it_is_dropped() {
        let tracker = TaskTracker::new();
        let pending = tracker.track_future(std::future::pending::<()>());
        tracker.close();
        assert!(pin!(tracker.wait()).now_or_never().is_none());
        drop(pending);
        tracker.wait().await;
    }

    #[tokio::test]
    async fn a_spawned_task_is_waited_for_until_it_ends() {
        let tracker = TaskTracker::new();
        let (finish, finished) = oneshot::channel::<()>();
        tracker.spawn(async move {
            let _ = finished.await;
        });
        tracker.close();
        let mut wait = pin!(tracker.wait());
        assert!(wait.as_mut().now_or_never().is_none());
        finish.send(()).expect("the task is running");
        wait.await;
    }
}
