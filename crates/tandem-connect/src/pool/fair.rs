//! The global slots (`limit`), handed to waiting checkouts round-robin across hosts.
//!
//! A first-come-first-served queue lets one busy host starve the rest: fifty checkouts for
//! one host queued ahead of one for another make the other wait for all fifty. Here each
//! host (pool key) has its own queue of waiters, oldest first, and the hosts with waiters
//! take turns: a freed slot goes to the first waiter of the host at the front of the
//! rotation, and that host goes to the back if it has more. A host that starts waiting
//! joins at the back, so it waits for at most one slot per host already waiting.
//!
//! Hand-written because no well-kept crate does this: tokio's `Semaphore` (and
//! `async-lock`'s, `async-semaphore`'s) queue first come, first served with no notion of
//! a key, and tower's limits build on them. It is a counter and a few queues under one
//! lock; a freed slot is handed straight to the waiter it is meant for, so a checkout that
//! does not wait can never take it first.
//!
//! Waiters reach this queue holding their host's `limit_per_host` slot already (the pool
//! takes that one first), so whichever host's turn it is, its per-host limit allows it.

use std::{
    collections::{HashMap, VecDeque},
    hash::BuildHasherDefault,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Poll, Waker},
};

use super::{KeyHasher, PoolKey};

/// `limit` slots shared by every host, with a fair queue for them.
pub(super) struct FairSlots {
    limit: usize,
    state: Mutex<State>,
}

struct State {
    /// Slots held, including those handed to a waiter that has not yet woken.
    in_use: usize,
    /// The waiters of each host with any, oldest first.
    queues: HashMap<PoolKey, VecDeque<Arc<Ticket>>, BuildHasherDefault<KeyHasher>>,
    /// The hosts in `queues`, in the order they get the next freed slots.
    rotation: VecDeque<PoolKey>,
}

/// One waiter's place in its host's queue.
#[derive(Default)]
struct Ticket(Mutex<TicketState>);

#[derive(Default)]
struct TicketState {
    /// A slot was handed to it: it holds the slot from then on.
    granted: bool,
    waker: Option<Waker>,
}

impl Ticket {
    fn new() -> Arc<Self> {
        #[cfg(test)]
        tests::LIVE_TICKETS.with(|n| n.set(n.get() + 1));
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, TicketState> {
        // No code panics while holding the lock.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
impl Drop for Ticket {
    fn drop(&mut self) {
        tests::LIVE_TICKETS.with(|n| n.set(n.get() - 1));
    }
}

/// One global slot; dropping it frees it (to the next waiter in turn, if any).
pub(crate) struct FairSlot {
    slots: Arc<FairSlots>,
}

impl FairSlots {
    /// `limit` slots (more than 0: no limit means no `FairSlots`).
    pub(super) fn new(limit: usize) -> Self {
        let state = State { in_use: 0, queues: HashMap::default(), rotation: VecDeque::new() };
        FairSlots { limit, state: Mutex::new(state) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; a count is never left half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot if one is free now. While anyone waits none is (freed slots go to waiters),
    /// so this never jumps the queue.
    pub(super) fn try_acquire(self: &Arc<Self>) -> Option<FairSlot> {
        let mut state = self.lock();
        if state.in_use == self.limit {
            return None;
        }
        state.in_use += 1;
        Some(FairSlot { slots: Arc::clone(self) })
    }

    /// A slot for a checkout for `key`: at once if one is free, else in `key`'s turn.
    /// Dropping the future gives up its place, or passes on a slot it was handed.
    pub(super) async fn acquire(self: &Arc<Self>, key: &PoolKey) -> FairSlot {
        let ticket = {
            let mut state = self.lock();
            if state.in_use < self.limit {
                state.in_use += 1;
                return FairSlot { slots: Arc::clone(self) };
            }
            let ticket = Ticket::new();
            if let Some(queue) = state.queues.get_mut(key) {
                queue.push_back(Arc::clone(&ticket));
            } else {
                state.queues.insert(key.clone(), VecDeque::from([Arc::clone(&ticket)]));
                state.rotation.push_back(key.clone());
            }
            ticket
        };
        let mut place = Place { slots: self, key, ticket: Some(ticket) };
        let ticket = place.ticket.as_deref().expect("a place holds its ticket until it leaves");
        std::future::poll_fn(|cx| {
            let mut t = ticket.lock();
            if t.granted {
                return Poll::Ready(());
            }
            if !t.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                t.waker = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        // Granted: the slot is this checkout's now, so leaving the line passes nothing on.
        place.ticket = None;
        FairSlot { slots: Arc::clone(self) }
    }

    /// Frees a slot: hands it to the next waiter in turn, or counts it free.
    fn release(&self) {
        let next = {
            let mut state = self.lock();
            let next = state.pass_on();
            if next.is_none() {
                state.in_use -= 1;
            }
            next
        };
        if let Some(waker) = next.and_then(|t| t.lock().waker.take()) {
            waker.wake();
        }
    }

    /// Waiters per host and slots in use, for tests.
    #[cfg(test)]
    fn snapshot(&self) -> (usize, usize) {
        let state = self.lock();
        (state.queues.values().map(VecDeque::len).sum(), state.in_use)
    }
}

impl State {
    /// Marks the next waiter in turn as holding a slot and returns it; `None` if nobody
    /// waits.
    fn pass_on(&mut self) -> Option<Arc<Ticket>> {
        let key = self.rotation.pop_front()?;
        let queue = self.queues.get_mut(&key)?;
        let ticket = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&key);
        } else {
            self.rotation.push_back(key);
        }
        ticket.lock().granted = true;
        Some(ticket)
    }
}

impl Drop for FairSlot {
    fn drop(&mut self) {
        self.slots.release();
    }
}

/// A waiter's place in line, for as long as its future waits: dropped (the checkout was
/// cancelled or timed out), it leaves the line, or passes on the slot it was just handed.
struct Place<'a> {
    slots: &'a Arc<FairSlots>,
    key: &'a PoolKey,
    /// `None` once the waiter has its slot and nothing is left to undo.
    ticket: Option<Arc<Ticket>>,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else { return };
        let mut state = self.slots.lock();
        if ticket.lock().granted {
            drop(state);
            self.slots.release();
            return;
        }
        let Some(queue) = state.queues.get_mut(self.key) else { return };
        queue.retain(|t| !Arc::ptr_eq(t, &ticket));
        if queue.is_empty() {
            state.queues.remove(self.key);
            state.rotation.retain(|k| k != self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::Future,
        pin::{Pin, pin},
        sync::Arc,
        task::{Context, Poll, Waker},
    };

    use super::{FairSlot, FairSlots};
    use crate::{Origin, Scheme, pool::PoolKey};

    fn key(port: u16) -> PoolKey {
        PoolKey::new(Origin::new(Scheme::Http, "127.0.0.1", port), 0, None, None)
    }

    thread_local! {
        /// Tickets alive on this test's thread: each test polls on its own thread.
        pub(super) static LIVE_TICKETS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Polls `fut` once with a no-op waker: its output if it is ready.
    fn poll_once<F: Future>(fut: Pin<&mut F>) -> Option<F::Output> {
        match fut.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        }
    }

    #[test]
    fn slots_go_round_robin_across_hosts() {
        let slots = Arc::new(FairSlots::new(1));
        let (a, b) = (key(1), key(2));
        let held = slots.try_acquire().unwrap();
        assert!(slots.try_acquire().is_none());
        let mut a1 = Box::pin(slots.acquire(&a));
        let mut a2 = Box::pin(slots.acquire(&a));
        let mut b1 = Box::pin(slots.acquire(&b));
        for fut in [&mut a1, &mut a2, &mut b1] {
            assert!(poll_once(fut.as_mut()).is_none());
        }
        assert_eq!(slots.snapshot(), (3, 1));

        drop(held);
        let got: FairSlot = poll_once(a1.as_mut()).expect("a's first waiter is first in turn");
        assert!(poll_once(a2.as_mut()).is_none(), "b's turn comes before a's second");
        drop(got);
        let got = poll_once(b1.as_mut()).expect("b's turn");
        drop(got);
        drop(poll_once(a2.as_mut()).expect("a again"));
        assert_eq!(slots.snapshot(), (0, 0));
        assert_eq!(
            LIVE_TICKETS.with(std::cell::Cell::get),
            0,
            "a granted waiter's ticket is freed"
        );
    }

    #[test]
    fn a_cancelled_waiter_leaves_the_line_and_passes_on_a_handed_slot() {
        let slots = Arc::new(FairSlots::new(1));
        let (a, b) = (key(1), key(2));
        let held = slots.try_acquire().unwrap();
        let mut a1 = Box::pin(slots.acquire(&a));
        let mut b1 = Box::pin(slots.acquire(&b));
        assert!(poll_once(a1.as_mut()).is_none());
        assert!(poll_once(b1.as_mut()).is_none());

        // Handed a slot, then cancelled before it woke: the slot goes on to b.
        drop(held);
        drop(a1);
        assert_eq!(slots.snapshot(), (0, 1));
        let got = poll_once(b1.as_mut()).expect("the slot a was handed");

        // Cancelled while waiting: it leaves the line, and the slot goes free.
        let mut a2 = Box::pin(slots.acquire(&a));
        assert!(poll_once(a2.as_mut()).is_none());
        drop(a2);
        assert_eq!(slots.snapshot(), (0, 1));
        drop(got);
        assert_eq!(slots.snapshot(), (0, 0));
        drop(slots.try_acquire().expect("free again"));
    }

    #[test]
    fn a_waiter_needs_no_queue_when_a_slot_is_free() {
        let slots = Arc::new(FairSlots::new(2));
        let a = key(1);
        let mut fut = pin!(slots.acquire(&a));
        let one = poll_once(fut.as_mut()).expect("free");
        let two = slots.try_acquire().expect("one left");
        assert!(slots.try_acquire().is_none());
        drop((one, two));
        assert_eq!(slots.snapshot(), (0, 0));
    }
}
