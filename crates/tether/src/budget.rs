//! A byte budget shared by many connections: what a whole server holds of
//! received messages its applications have not taken yet.
//!
//! Owns the count, each connection's share ([`Holder`]) and the wake-ups.
//! Adapters charge each received event's
//! [`Event::footprint`](crate::Event::footprint) to the connection's
//! holder while it waits for the application and release it when taken.
//! What a connection does about a spent budget (read on, wait, or be
//! evicted with 1013) is decided by
//! [`Connection::budget_check`](crate::Connection::budget_check). No I/O,
//! no clock.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    /// Every holder's share (dead ones pruned as new ones come).
    holders: Mutex<Vec<Weak<Share>>>,
    /// A connection held back waited `Config::budget_timeout` with the
    /// budget still spent, and holds less than another: the one holding
    /// the most is to be evicted at its next check ([`Budget::call_eviction`]).
    eviction_due: AtomicBool,
    /// A holder was evicted and has not yet given its share back
    /// ([`Holder::begin_eviction`]): no other is evicted meanwhile, so two
    /// connections holding the same most, checked at once on two threads,
    /// do not both go when one would do.
    evicting: AtomicBool,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            waiting: Mutex::new(Vec::new()),
            holders: Mutex::new(Vec::new()),
            eviction_due: AtomicBool::new(false),
            evicting: AtomicBool::new(false),
        }
    }

    /// A share of this budget for one connection: what it charges is
    /// counted as its own too, and released when the holder is dropped.
    pub fn holder(self: &Arc<Self>) -> Holder {
        let share = Arc::new(Share {
            held: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            evicting: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        let mut holders = lock(&self.holders);
        if holders.len() == holders.capacity() {
            holders.retain(|h| h.strong_count() > 0);
        }
        holders.push(Arc::downgrade(&share));
        drop(holders);
        Holder {
            budget: self.clone(),
            share,
        }
    }

    /// The most any one holder that may still be evicted holds now (not
    /// counting retired ones: their connections ended).
    pub fn largest_share(&self) -> usize {
        lock(&self.holders)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|h| !h.retired.load(Ordering::Acquire))
            .map(|h| h.held.load(Ordering::Acquire))
            .max()
            .unwrap_or(0)
    }

    /// A connection held back waited `Config::budget_timeout` with the
    /// budget still spent, and another holds more: marks an eviction due
    /// and wakes the holder that holds the most (its [`Holder::watch`]
    /// waker), which [`Connection::budget_check`](crate::Connection::budget_check)
    /// then evicts. Without the wake-up, a connection whose application
    /// stopped reading, and that reads no more itself (its own unread
    /// bound), is not driven, and was never evicted while the others
    /// waited.
    pub fn call_eviction(&self) {
        self.eviction_due.store(true, Ordering::Release);
        let largest = lock(&self.holders)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|h| !h.retired.load(Ordering::Acquire))
            .max_by_key(|h| h.held.load(Ordering::Acquire));
        let waker = largest.and_then(|share| lock(&share.waker).take());
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether an eviction is due ([`Budget::call_eviction`]) and the
    /// budget is still spent.
    pub fn eviction_due(&self) -> bool {
        self.eviction_due.load(Ordering::Acquire) && !self.has_room()
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
            // room again: whatever eviction was due is not
            self.eviction_due.store(false, Ordering::Release);
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
        lock(&self.waiting)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One connection's share of a [`Budget`]: charges and releases go to
/// both. Dropping it releases what it still holds.
#[derive(Debug)]
pub struct Holder {
    budget: Arc<Budget>,
    share: Arc<Share>,
}

/// What one connection holds, whether it has ended, and how to wake it.
#[derive(Debug)]
struct Share {
    held: AtomicUsize,
    retired: AtomicBool,
    /// Evicted, its share not yet given back (it holds the budget's
    /// `evicting`).
    evicting: AtomicBool,
    /// Woken when an eviction is due and this share may be the largest.
    waker: Mutex<Option<Waker>>,
}

impl Holder {
    /// The budget this is a share of.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Bytes this connection holds of the budget.
    pub fn held(&self) -> usize {
        self.share.held.load(Ordering::Acquire)
    }

    /// Whether this connection is held back: it holds some of a budget
    /// that is spent (one holding none may always read). The rule
    /// [`Connection::budget_check`](crate::Connection::budget_check) applies,
    /// for an adapter that asks between checks whether to read on.
    pub fn held_back(&self) -> bool {
        self.held() > 0 && !self.budget.has_room()
    }

    /// The connection ended ([`Connection::budget_check`](crate::Connection::budget_check)
    /// says so): what it still holds waits for its application only, it
    /// can no longer be evicted, and it no longer counts as the largest
    /// share, so a live connection holding the most of the rest can be.
    /// (A dead connection holding the most kept every other one from
    /// being evicted, the budget spent until its application read on.)
    pub fn retire(&self) {
        self.share.retired.store(true, Ordering::Release);
        self.end_eviction();
    }

    /// Registers `waker` to be woken when this connection must look at the
    /// budget although nothing else wakes it: an eviction is due and it
    /// may hold the most ([`Budget::call_eviction`]). An adapter registers
    /// the waker its connection is driven with whenever it holds a share.
    pub fn watch(&self, waker: &Waker) {
        let mut slot = lock(&self.share.waker);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    /// Charges `bytes` (an event now waiting for the application).
    pub fn charge(&self, bytes: usize) {
        self.share.held.fetch_add(bytes, Ordering::AcqRel);
        self.budget.charge(bytes);
    }

    /// This connection is to be evicted (it holds the most of a budget
    /// that stayed spent): true when no other eviction is under way, and
    /// then one is until this holder gives its whole share back (or is
    /// dropped or retired); the eviction that was due
    /// ([`Budget::call_eviction`]) is done. False when another connection
    /// was evicted and has not yet given its share back: this one waits
    /// to see whether that made room.
    pub fn begin_eviction(&self) -> bool {
        let budget = &self.budget;
        if budget
            .evicting
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.share.evicting.store(true, Ordering::Release);
        budget.eviction_due.store(false, Ordering::Release);
        true
    }

    /// Ends this holder's eviction, if it has one under way.
    fn end_eviction(&self) {
        if self.share.evicting.swap(false, Ordering::AcqRel) {
            self.budget.evicting.store(false, Ordering::Release);
        }
    }

    /// Releases up to `bytes` of what this connection holds (an event was
    /// taken).
    pub fn release(&self, bytes: usize) {
        let before = self
            .share
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                Some(h.saturating_sub(bytes))
            })
            .unwrap_or_else(|h| h);
        // the budget first: another holder must not see the eviction over
        // while the budget still counts what this one gave back
        self.budget.release(bytes.min(before));
        if before <= bytes {
            self.end_eviction();
        }
    }

    /// Releases everything this connection holds (its unread events were
    /// dropped).
    pub fn release_all(&self) {
        let held = self.share.held.swap(0, Ordering::AcqRel);
        self.budget.release(held);
        self.end_eviction();
    }

    /// Whether no other holder holds more than this one (and this one
    /// holds something): the first to go when the budget stays spent.
    pub fn is_largest(&self) -> bool {
        let held = self.held();
        held > 0 && held >= self.budget.largest_share()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.release_all();
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

    #[test]
    fn a_called_eviction_wakes_the_largest_holder_until_room_comes_back() {
        let budget = Arc::new(Budget::new(100));
        let (a, b) = (budget.holder(), budget.holder());
        let (fa, fb) = (
            Arc::new(Flag(AtomicBool::new(false))),
            Arc::new(Flag(AtomicBool::new(false))),
        );
        a.watch(&Waker::from(fa.clone()));
        b.watch(&Waker::from(fb.clone()));
        a.charge(70);
        b.charge(40);
        assert!(!budget.eviction_due());
        budget.call_eviction();
        assert!(fa.0.load(Ordering::Acquire), "the largest is woken");
        assert!(!fb.0.load(Ordering::Acquire));
        assert!(budget.eviction_due());
        // room again: nothing is due any more
        a.release(70);
        assert!(!budget.eviction_due());
    }

    #[test]
    fn holders_count_their_own_share_and_give_it_back_when_dropped() {
        let budget = Arc::new(Budget::new(1000));
        let a = budget.holder();
        let b = budget.holder();
        a.charge(300);
        b.charge(200);
        assert_eq!((a.held(), b.held(), budget.used()), (300, 200, 500));
        assert!(a.is_largest() && !b.is_largest());
        a.release(250);
        assert!(b.is_largest() && !a.is_largest());
        b.release(1000); // never more than it holds
        assert_eq!((b.held(), budget.used()), (0, 50));
        assert!(!b.is_largest(), "holding nothing, never the largest");
        drop(a);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.largest_share(), 0);
        // dead holders are pruned as new ones come
        for _ in 0..100 {
            budget.holder().charge(1);
        }
        assert!(budget.holders.lock().unwrap().len() <= 64);
        assert_eq!(budget.used(), 0);
    }

    /// An ended connection's share still counts in what is used, but not
    /// as the largest: the live connection holding the most of the rest is
    /// the one to go (a dead one holding the most kept every live one from
    /// being evicted while the budget stayed spent).
    #[test]
    fn a_retired_share_is_never_the_largest() {
        let budget = Arc::new(Budget::new(100));
        let dead = budget.holder();
        let live = budget.holder();
        dead.charge(90);
        live.charge(20);
        assert!(!live.is_largest());
        dead.retire();
        assert!(live.is_largest());
        assert!(!budget.has_room());
        assert_eq!(budget.largest_share(), 20);
        drop(dead);
        assert_eq!(budget.used(), 20);
    }

    #[test]
    fn one_eviction_at_a_time_until_the_evicted_share_is_back() {
        let budget = Arc::new(Budget::new(100));
        let (a, b) = (budget.holder(), budget.holder());
        a.charge(80);
        b.charge(80);
        budget.call_eviction();
        assert!(a.begin_eviction());
        assert!(!budget.eviction_due(), "the called eviction is done");
        assert!(!b.begin_eviction(), "a's eviction is under way");
        a.release(30);
        assert!(!b.begin_eviction(), "a still holds some");
        a.release(50);
        assert!(b.begin_eviction(), "a gave all back");
        // retiring or dropping an evicted holder ends its eviction too
        b.retire();
        let c = budget.holder();
        assert!(c.begin_eviction());
        drop(c);
        assert!(a.begin_eviction());
    }
}
