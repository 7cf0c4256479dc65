//! The server's graceful shutdown as the reader sees it: a flag to read after every read of
//! the socket, not a future to poll.
//!
//! Why not poll the future there: a peer that keeps the socket readable (a ping flood) never
//! lets the reader's wait reach the shutdown, so the reader must look for it between reads
//! as well, and polling the signal (tokio-util's cancellation future) takes two locks each
//! time. Instead it is polled once, here, with a waker of our own that sets a flag and wakes
//! the reader's task: after that, looking is one atomic load.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures_util::task::AtomicWaker;

/// Resolves when the server begins its graceful shutdown.
pub(crate) type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(crate) struct Shutdown {
    /// Kept, never polled again, so that our waker stays registered with the signal.
    _signal: Signal,
    fired: Arc<Fired>,
}

/// What the signal wakes: the flag, then the reader's task if it is waiting.
#[derive(Default)]
struct Fired {
    flag: AtomicBool,
    reader: AtomicWaker,
}

impl Wake for Fired {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::Release);
        self.reader.wake();
    }
}

impl Shutdown {
    pub(crate) fn new(mut signal: Signal) -> Self {
        let fired = Arc::new(Fired::default());
        let waker = Waker::from(Arc::clone(&fired));
        if signal.as_mut().poll(&mut Context::from_waker(&waker)) == Poll::Ready(()) {
            fired.flag.store(true, Ordering::Release);
        }
        Shutdown { _signal: signal, fired }
    }

    /// Whether the shutdown has begun. The signal wakes our waker only when it resolves
    /// (a cancellation token's waiters are woken by its cancellation alone), so the flag is
    /// never set early.
    pub(crate) fn has_begun(&self) -> bool {
        self.fired.flag.load(Ordering::Acquire)
    }

    /// As [`has_begun`](Self::has_begun), waking the task `cx` belongs to when it begins.
    pub(crate) fn poll_begun(&self, cx: &Context<'_>) -> bool {
        self.fired.reader.register(cx.waker());
        self.has_begun()
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown").field("begun", &self.has_begun()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Waker};

    use tokio_util::sync::CancellationToken;

    use super::Shutdown;

    #[test]
    fn the_flag_is_set_by_the_signal_alone_and_wakes_the_reader() {
        let token = CancellationToken::new();
        let shutdown = Shutdown::new(Box::pin(token.clone().cancelled_owned()));
        let (woken, waker) = counting_waker();
        assert!(!shutdown.poll_begun(&Context::from_waker(&waker)));
        assert!(!shutdown.has_begun());
        token.cancel();
        assert!(shutdown.has_begun());
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Begun before it was made.
        let shutdown = Shutdown::new(Box::pin(token.cancelled_owned()));
        assert!(shutdown.has_begun());
    }

    fn counting_waker() -> (std::sync::Arc<std::sync::atomic::AtomicUsize>, Waker) {
        struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let count = std::sync::Arc::default();
        (std::sync::Arc::clone(&count), Waker::from(std::sync::Arc::new(Count(count))))
    }
}
