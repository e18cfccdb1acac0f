//! A byte budget shared by many connections: what a whole server holds of
//! received messages its applications have not taken yet.
//!
//! Owns the count and the wake-ups; decides nothing about a single
//! connection. Adapters charge each received event's
//! [`Event::footprint`](crate::Event::footprint) while it waits for the
//! application and release it when taken; a connection reads no further
//! while the budget is spent (backpressure across the server), and is woken
//! when room comes back. No I/O, no clock.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::task::Waker;
use std::sync::Mutex;

/// A byte budget shared by many connections (e.g. all of a server's).
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    /// Connections waiting for room, woken when the budget drops below
    /// its limit.
    waiting: Mutex<Vec<Waker>>,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            waiting: Mutex::new(Vec::new()),
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Whether connections may read more: the budget is not spent.
    pub fn has_room(&self) -> bool {
        self.used() < self.limit
    }

    /// Charges `bytes` (an event now waiting for its application). The
    /// charge is made even past the limit: the bytes are already here; the
    /// limit stops further reading.
    pub fn charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Releases `bytes` charged before (the application took the event, or
    /// its connection ended). Wakes the waiting connections once there is
    /// room again.
    pub fn release(&self, bytes: usize) {
        let before = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(bytes))
            })
            .unwrap_or_else(|u| u);
        if before >= self.limit && before.saturating_sub(bytes) < self.limit {
            let waiting = core::mem::take(&mut *self.lock());
            for waker in waiting {
                waker.wake();
            }
        }
    }

    /// Asks to be woken with `waker` when room comes back; returns whether
    /// there is room already (then nothing is registered).
    pub fn wait_for_room(&self, waker: &Waker) -> bool {
        let mut waiting = self.lock();
        if self.has_room() {
            return true;
        }
        if !waiting.iter().any(|w| w.will_wake(waker)) {
            waiting.push(waker.clone());
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use core::sync::atomic::AtomicBool;
    use std::task::Wake;

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::Release);
        }
    }

    #[test]
    fn a_spent_budget_wakes_its_waiters_once_room_comes_back() {
        let budget = Budget::new(100);
        budget.charge(60);
        assert!(budget.has_room());
        budget.charge(60);
        assert!(!budget.has_room());
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        assert!(!budget.wait_for_room(&waker));
        budget.release(10); // 110: still spent
        assert!(!flag.0.load(Ordering::Acquire));
        budget.release(60); // 50: room
        assert!(flag.0.load(Ordering::Acquire));
        assert!(budget.wait_for_room(&waker));
        assert_eq!(budget.used(), 50);
    }
}
