//! The head timeout of one listener's TLS handshakes, watched by one timer.
//!
//! A `tokio::time::timeout` per handshake costs a syscall per connection on a server with
//! nothing else pending: each new handshake's timer is then the runtime's earliest, and
//! registering an earliest timer wakes tokio's driver through its eventfd, an extra
//! syscall and an extra turn of the event loop. A listener gives every handshake the same
//! timeout, so their deadlines fall in the order they started: a FIFO of them and one
//! sweeper task sleeping until the oldest register a timer about once per timeout, not
//! once per connection.
//!
//! A handshake that ends leaves its entry behind (removing it from the middle would need a
//! search); entries whose handshake has ended are dropped from the front whenever a new one
//! is pushed, so the queue holds the live handshakes plus at most those that started after
//! the oldest live one, and every entry leaves by its deadline at the latest.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

/// One listener's handshake deadlines; cloned into each connection's task.
#[derive(Clone)]
pub(super) struct HandshakeDeadlines {
    shared: Arc<Shared>,
}

struct Shared {
    timeout: Duration,
    state: Mutex<State>,
    /// Wakes the sweeper when it waits idle and a deadline arrives.
    wake: Notify,
}

#[derive(Default)]
struct State {
    /// Deadlines in the order they fall, each with what tells its handshake it expired.
    queue: VecDeque<(Instant, Weak<Notify>)>,
    /// The sweeper found the queue empty and waits on `wake` rather than on a timer.
    sweeper_idle: bool,
}

impl HandshakeDeadlines {
    /// The deadlines and their sweeper, a task to spawn that ends when `stop` is cancelled.
    pub(super) fn new(
        timeout: Duration,
        stop: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let shared = Arc::new(Shared {
            timeout,
            state: Mutex::new(State { sweeper_idle: true, ..State::default() }),
            wake: Notify::new(),
        });
        let sweeper = sweep(Arc::clone(&shared), stop);
        (Self { shared }, sweeper)
    }

    /// Starts a handshake's clock: the returned `Notify` is notified once its deadline
    /// passes, and only then (if the handshake still holds it).
    pub(super) fn watch(&self) -> Arc<Notify> {
        let expired = Arc::new(Notify::new());
        let deadline = Instant::now() + self.shared.timeout;
        let mut state = self.shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.queue.front().is_some_and(|(_, handshake)| handshake.strong_count() == 0) {
            state.queue.pop_front();
        }
        state.queue.push_back((deadline, Arc::downgrade(&expired)));
        if std::mem::take(&mut state.sweeper_idle) {
            self.shared.wake.notify_one();
        }
        expired
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner).queue.len()
    }
}

/// Sleeps until the oldest deadline, tells the handshakes whose deadlines have passed, and
/// sleeps again until the next; waits for a push when there is none.
async fn sweep(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let next = {
            let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            while let Some((deadline, handshake)) = state.queue.front() {
                if *deadline > now {
                    break;
                }
                if let Some(expired) = handshake.upgrade() {
                    expired.notify_one();
                }
                state.queue.pop_front();
            }
            let next = state.queue.front().map(|(deadline, _)| *deadline);
            state.sweeper_idle = next.is_none();
            next
        };
        let wait = async {
            match next {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => shared.wake.notified().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = wait => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(timeout: Duration) -> (HandshakeDeadlines, CancellationToken) {
        let stop = CancellationToken::new();
        let (deadlines, sweeper) = HandshakeDeadlines::new(timeout, stop.clone());
        tokio::spawn(sweeper);
        (deadlines, stop)
    }

    #[tokio::test(start_paused = true)]
    async fn a_handshake_still_running_at_its_deadline_is_told_in_order() {
        let (deadlines, stop) = start(Duration::from_secs(10));
        let first = deadlines.watch();
        tokio::time::advance(Duration::from_secs(4)).await;
        let second = deadlines.watch();
        let started = Instant::now();
        first.notified().await;
        assert_eq!(started.elapsed(), Duration::from_secs(6));
        second.notified().await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        // The sweeper went idle; a new deadline wakes it.
        let third = deadlines.watch();
        third.notified().await;
        assert_eq!(started.elapsed(), Duration::from_secs(20));
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn ended_handshakes_leave_the_queue_from_the_front() {
        let (deadlines, stop) = start(Duration::from_secs(10));
        for _ in 0..1000 {
            drop(deadlines.watch());
        }
        // Each push dropped the ended one before it.
        assert_eq!(deadlines.queued(), 1);
        let live = deadlines.watch();
        for _ in 0..10 {
            drop(deadlines.watch());
        }
        // Behind a live one the ended ones wait for its deadline.
        assert_eq!(deadlines.queued(), 11);
        live.notified().await;
        drop(deadlines.watch());
        assert_eq!(deadlines.queued(), 1);
        stop.cancel();
    }
}
