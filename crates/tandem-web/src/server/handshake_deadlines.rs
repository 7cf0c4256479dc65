//! The head timeout of one listener's TLS handshakes, and the server's shutdown, watched by
//! one task.
//!
//! A `tokio::time::timeout` per handshake costs a syscall per connection on a server with
//! nothing else pending: each new handshake's timer is then the runtime's earliest, and
//! registering an earliest timer wakes tokio's driver through its eventfd, an extra
//! syscall and an extra turn of the event loop. A listener gives every handshake the same
//! timeout, so their deadlines fall in the order they started: a FIFO of them and one
//! sweeper task sleeping until the oldest register a timer about once per timeout, not
//! once per connection.
//!
//! The same sweeper tells every handshake in the queue when the server stops, so a
//! handshake waits on one flag and one waker of its own rather than also on the shutdown
//! token, whose waiters sit in a list behind a lock taken at every poll and at the end.
//!
//! A handshake that ends leaves its entry behind (removing it from the middle would need a
//! search); entries whose handshake has ended are dropped from the front whenever a new one
//! is pushed, and every entry leaves by its deadline at the latest. Behind one stalled
//! handshake, though, the ended ones would pile up for a whole timeout (a peer's flood of
//! failing handshakes at thousands a second), so once the queue doubles since it was last
//! swept through, the ended entries are removed from the middle too: it holds at most twice
//! the live handshakes (or [`COMPACT_FLOOR`]), and the sweep through it is paid for by the
//! pushes that doubled it.

use std::{
    collections::VecDeque,
    pin::pin,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU8, Ordering},
    },
    task::Poll,
    time::Duration,
};

use futures_util::{
    future::{self, Either},
    task::AtomicWaker,
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

/// The queue's length below which ended entries behind a live one are left for the front to
/// drop: a sweep through so few costs more than the memory it gives back.
const COMPACT_FLOOR: usize = 64;

struct State {
    /// Deadlines in the order they fall, each with what tells its handshake it is cut off.
    queue: VecDeque<(Instant, Weak<Watched>)>,
    /// The queue's length at which the ended entries are next removed from its middle.
    compact_at: usize,
    /// The sweeper found the queue empty and waits on `wake` rather than on a timer.
    sweeper_idle: bool,
    /// The server is stopping: the sweeper has told the queue and ended, so a handshake
    /// that starts now is told at once.
    stopped: bool,
}

/// Why a handshake was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cutoff {
    /// Its deadline passed.
    Expired,
    /// The server is stopping.
    Stopping,
}

const RUNNING: u8 = 0;
const EXPIRED: u8 = 1;
const STOPPING: u8 = 2;

/// One handshake's side of the watch: whether it is cut off, and its task's waker.
struct Watched {
    cutoff: AtomicU8,
    waker: AtomicWaker,
}

impl Watched {
    fn cut_off(&self, why: u8) {
        // The first reason stays: a handshake told it expired is not then told to stop.
        let _ = self.cutoff.compare_exchange(RUNNING, why, Ordering::Release, Ordering::Relaxed);
        self.waker.wake();
    }
}

/// A handshake's watch, from [`HandshakeDeadlines::watch`]; dropping it ends the watch.
pub(super) struct Watch(Arc<Watched>);

impl Watch {
    /// Runs `work` until it finishes or the handshake is cut off.
    pub(super) async fn bound<F: Future>(&self, work: F) -> Result<F::Output, Cutoff> {
        let mut work = pin!(work);
        std::future::poll_fn(|cx| {
            // Registered before the flag is read, so a cut-off in between still wakes us.
            self.0.waker.register(cx.waker());
            match self.0.cutoff.load(Ordering::Acquire) {
                RUNNING => work.as_mut().poll(cx).map(Ok),
                EXPIRED => Poll::Ready(Err(Cutoff::Expired)),
                _ => Poll::Ready(Err(Cutoff::Stopping)),
            }
        })
        .await
    }
}

impl HandshakeDeadlines {
    /// The deadlines and their sweeper, a task to spawn that ends when `stop` is cancelled,
    /// after telling the handshakes it watches.
    pub(super) fn new(
        timeout: Duration,
        stop: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let shared = Arc::new(Shared {
            timeout,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                compact_at: COMPACT_FLOOR,
                sweeper_idle: true,
                stopped: false,
            }),
            wake: Notify::new(),
        });
        let sweeper = sweep(Arc::clone(&shared), stop);
        (Self { shared }, sweeper)
    }

    /// Starts a handshake's clock: the watch is cut off once its deadline passes or the
    /// server stops, whichever comes first, while it is held.
    pub(super) fn watch(&self) -> Watch {
        let watched =
            Arc::new(Watched { cutoff: AtomicU8::new(RUNNING), waker: AtomicWaker::new() });
        let deadline = Instant::now() + self.shared.timeout;
        let mut state = self.shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.stopped {
            watched.cut_off(STOPPING);
            return Watch(watched);
        }
        while state.queue.front().is_some_and(|(_, handshake)| handshake.strong_count() == 0) {
            state.queue.pop_front();
        }
        if state.queue.len() >= state.compact_at {
            state.queue.retain(|(_, handshake)| handshake.strong_count() > 0);
            state.compact_at = (2 * state.queue.len()).max(COMPACT_FLOOR);
            let keep = state.compact_at;
            state.queue.shrink_to(keep);
        }
        state.queue.push_back((deadline, Arc::downgrade(&watched)));
        if std::mem::take(&mut state.sweeper_idle) {
            self.shared.wake.notify_one();
        }
        Watch(watched)
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner).queue.len()
    }
}

/// Sleeps until the oldest deadline, cuts off the handshakes whose deadlines have passed,
/// and sleeps again until the next; waits for a push when there is none. Once `stop` is
/// cancelled it cuts off every handshake left and ends.
async fn sweep(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let next = {
            let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            while let Some((deadline, handshake)) = state.queue.front() {
                if *deadline > now {
                    break;
                }
                if let Some(watched) = handshake.upgrade() {
                    watched.cut_off(EXPIRED);
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
        // The stop is polled first, so a deadline due as the server stops counts as stopping.
        if let Either::Left(_) = future::select(pin!(stop.cancelled()), pin!(wait)).await {
            break;
        }
    }
    let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
    state.stopped = true;
    for (_, handshake) in state.queue.drain(..) {
        if let Some(watched) = handshake.upgrade() {
            watched.cut_off(STOPPING);
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

    /// Why `watch` was cut off, for a handshake that never finishes.
    async fn cut_off(watch: &Watch) -> Cutoff {
        watch.bound(std::future::pending::<()>()).await.unwrap_err()
    }

    #[tokio::test(start_paused = true)]
    async fn a_handshake_still_running_at_its_deadline_is_cut_off_in_order() {
        let (deadlines, stop) = start(Duration::from_secs(10));
        let first = deadlines.watch();
        tokio::time::advance(Duration::from_secs(4)).await;
        let second = deadlines.watch();
        let started = Instant::now();
        assert_eq!(cut_off(&first).await, Cutoff::Expired);
        assert_eq!(started.elapsed(), Duration::from_secs(6));
        assert_eq!(cut_off(&second).await, Cutoff::Expired);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        // The sweeper went idle; a new deadline wakes it.
        let third = deadlines.watch();
        assert_eq!(cut_off(&third).await, Cutoff::Expired);
        assert_eq!(started.elapsed(), Duration::from_secs(20));
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_handshake_that_finishes_in_time_gives_its_output() {
        let (deadlines, stop) = start(Duration::from_secs(10));
        let watch = deadlines.watch();
        let finished = watch.bound(tokio::time::sleep(Duration::from_secs(9))).await;
        assert_eq!(finished, Ok(()));
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_cuts_off_the_handshakes_running_and_any_that_start_after() {
        let (deadlines, stop) = start(Duration::from_secs(10));
        let running = deadlines.watch();
        let waiting = tokio::spawn(async move { cut_off(&running).await });
        tokio::task::yield_now().await;
        let started = Instant::now();
        stop.cancel();
        assert_eq!(waiting.await.unwrap(), Cutoff::Stopping);
        assert_eq!(started.elapsed(), Duration::ZERO);
        // The sweeper marked the queue stopped before it told `running`, and has ended: a
        // handshake that starts now is cut off at once.
        assert_eq!(cut_off(&deadlines.watch()).await, Cutoff::Stopping);
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
        cut_off(&live).await;
        drop(deadlines.watch());
        assert_eq!(deadlines.queued(), 1);
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn ended_handshakes_behind_a_stalled_one_do_not_pile_up() {
        let (deadlines, stop) = start(Duration::from_secs(10));
        let stalled = deadlines.watch();
        for _ in 0..100_000 {
            drop(deadlines.watch());
        }
        assert!(deadlines.queued() <= COMPACT_FLOOR, "{} queued", deadlines.queued());
        // Live handshakes are all kept, in deadline order, however many there are.
        let live: Vec<Watch> = (0..1000).map(|_| deadlines.watch()).collect();
        for _ in 0..100_000 {
            drop(deadlines.watch());
        }
        let queued = deadlines.queued();
        assert!((1001..=2 * 1001 + 1).contains(&queued), "{queued} queued");
        assert_eq!(cut_off(&stalled).await, Cutoff::Expired);
        for watch in &live {
            assert_eq!(cut_off(watch).await, Cutoff::Expired);
        }
        stop.cancel();
    }
}
