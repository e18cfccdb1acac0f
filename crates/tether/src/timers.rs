//! The connection's one timer table.
//!
//! Owns a deadline slot per [`Timer`] kind; [`Connection::poll_timeout`]
//! (crate::Connection::poll_timeout) is the earliest armed slot and
//! [`Connection::handle_timeout`](crate::Connection::handle_timeout) walks
//! the due ones in [`Timer::ALL`] order, each at most once per call, so a
//! zero interval cannot spin. Never reads a clock: every instant comes in
//! as an argument.

use std::time::{Duration, Instant};

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The closing handshake's bound (`Config::close_timeout`): our Close
    /// unanswered, the peer's Close or a deferred failure not yet carried
    /// out.
    Close,
    /// The keep-alive Ping's Pong is due (`KeepAlive::Ping::timeout`).
    PongDeadline,
    /// The application-level heartbeat (`Config::heartbeat`).
    Heartbeat,
    /// The next keep-alive Pong or Ping (`Config::keep_alive`).
    KeepAlive,
    /// Queued output must move: while the connection lives, some of it
    /// must be written by then (`Config::send_timeout`, counted again from
    /// each time the connection is told of the time and sees bytes taken),
    /// or the connection aborts; once it has ended, its last bytes must be
    /// all written by then (`Config::close_timeout`), or they are given up.
    /// One slot for both: they never run at once.
    Output,
    /// The peer's end of the transport is awaited until then
    /// (`Config::fin_wait`): a client's, before closing its own, for the
    /// server to close first (RFC 6455 section 7.1.1); a server's that
    /// failed the connection, after shutting down writing (lingering, so
    /// that what the peer still sends is read rather than reset).
    FinWait,
    /// A message the peer began must receive more of its bytes by then
    /// (`Config::message_timeout`).
    Progress,
    /// No data message either way until then ends the connection
    /// (`Config::idle_timeout`).
    Idle,
    /// Held back by a spent shared budget since `Config::budget_timeout`
    /// before this: the largest holders are evicted.
    HeldBack,
    /// Quiet since `Config::release_idle_after` (the first time
    /// `Config::first_release_after`) before this: idle buffers are freed.
    Release,
}

impl Timer {
    /// Every kind, in the order due timers are handled.
    pub(crate) const ALL: [Timer; 10] = [
        Timer::Close,
        Timer::PongDeadline,
        Timer::Progress,
        Timer::Idle,
        Timer::HeldBack,
        Timer::Heartbeat,
        Timer::KeepAlive,
        Timer::Output,
        Timer::FinWait,
        Timer::Release,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// A deadline per [`Timer`] kind.
///
/// Each slot holds its deadline as nanoseconds past `base` plus one (0: not
/// armed), 8 bytes instead of an `Option<Instant>`'s 16: every connection
/// carries this table for its whole life.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    base: Option<Instant>,
    slots: [u64; 10],
}

/// The least a deadline lies after the `now` that armed it: a zero
/// interval or timeout is this much. So a deadline armed while handling
/// timers at `now` is never due at that same `now`, and an adapter never
/// needs to wait less than this.
pub const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// As far as a `Config` wait is taken to mean anything: 30 years. Longer
/// (`Duration::MAX` included) means "never".
const NEVER: Duration = Duration::from_secs(30 * 365 * 86_400);

/// A `Config` wait as a transport library that adds it to its own clock
/// takes it (QUIC's idle timeout and keep-alive): `None`, never, from
/// 30 years up, which such a clock would overflow.
pub fn finite_wait(wait: Duration) -> Option<Duration> {
    (wait < NEVER).then_some(wait)
}

/// The instant `after` past `now`, for an adapter's deadlines taken from
/// `Config` waits: one past what an `Instant` can hold (`Duration::MAX`,
/// meaning "never") is 30 years away instead of a panic.
pub fn deadline(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(NEVER))
        .unwrap_or(now)
}

impl Timers {
    /// Arms `timer` for `after` past `now` (at least [`TIMER_RESOLUTION`]).
    /// A deadline past what an `Instant` can hold never comes: the timer is
    /// left unarmed (`Duration::MAX` in a `Config` wait means "never").
    pub(crate) fn set(&mut self, timer: Timer, now: Instant, after: Duration) {
        match now.checked_add(after.max(TIMER_RESOLUTION)) {
            Some(at) => self.slots[timer.index()] = self.encode(at),
            None => self.stop(timer),
        }
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.slots[timer.index()] = 0;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.decode(self.slots[timer.index()])
    }

    /// `at` as a slot value; the base moves back (and every armed slot
    /// with it) when `at` lies before it.
    fn encode(&mut self, at: Instant) -> u64 {
        let base = *self.base.get_or_insert(at);
        if let Some(back) = base.checked_duration_since(at).filter(|d| !d.is_zero()) {
            let back = nanos(back);
            for slot in self.slots.iter_mut().filter(|s| **s != 0) {
                *slot = slot.saturating_add(back);
            }
            self.base = Some(at);
            return 1;
        }
        nanos(at.duration_since(base)).saturating_add(1)
    }

    fn decode(&self, slot: u64) -> Option<Instant> {
        let base = self.base?;
        (slot != 0).then(|| base + Duration::from_nanos(slot - 1))
    }

    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// Disarms `timer` and says whether it was due at `now`.
    pub(crate) fn take_due(&mut self, timer: Timer, now: Instant) -> bool {
        if self.get(timer).is_some_and(|at| at <= now) {
            self.stop(timer);
            true
        } else {
            false
        }
    }

    /// The earliest deadline among the kinds `counts` accepts.
    pub(crate) fn next(&self, mut counts: impl FnMut(Timer) -> bool) -> Option<Instant> {
        Timer::ALL
            .into_iter()
            .filter(|&t| counts(t))
            .filter_map(|t| self.get(t))
            .min()
    }
}

/// A duration in nanoseconds, saturated (584 years fit).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_wait_of_duration_max_is_never_not_a_panic() {
        let now = Instant::now();
        assert_eq!(finite_wait(Duration::MAX), None);
        assert_eq!(finite_wait(NEVER), None);
        let day = Duration::from_secs(86_400);
        assert_eq!(finite_wait(day), Some(day));
        assert_eq!(deadline(now, day), now + day);
        assert!(deadline(now, Duration::MAX) >= now + NEVER);
        let mut t = Timers::default();
        t.set(Timer::Idle, now, Duration::MAX);
        assert!(!t.is_armed(Timer::Idle));
    }

    #[test]
    fn earliest_armed_slot_and_due_once() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        assert_eq!(timers.next(|_| true), None);
        timers.set(Timer::KeepAlive, t0, Duration::from_secs(5));
        timers.set(Timer::Close, t0, Duration::from_secs(2));
        assert_eq!(timers.next(|_| true), Some(t0 + Duration::from_secs(2)));
        assert_eq!(
            timers.next(|t| t != Timer::Close),
            Some(t0 + Duration::from_secs(5))
        );
        assert!(!timers.take_due(Timer::Close, t0));
        assert!(timers.take_due(Timer::Close, t0 + Duration::from_secs(2)));
        assert!(!timers.is_armed(Timer::Close));
        assert!(!timers.take_due(Timer::Close, t0 + Duration::from_secs(9)));
    }

    #[test]
    fn a_deadline_before_the_first_one_set_keeps_every_deadline_exact() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut timers = Timers::default();
        timers.set(Timer::Idle, t0, Duration::from_millis(1500));
        timers.set(
            Timer::Close,
            t0 - Duration::from_secs(30),
            Duration::from_nanos(1_000_123),
        );
        timers.set(Timer::Output, t0, Duration::ZERO);
        assert_eq!(
            timers.get(Timer::Idle),
            Some(t0 + Duration::from_millis(1500))
        );
        assert_eq!(
            timers.get(Timer::Close),
            Some(t0 - Duration::from_secs(30) + Duration::from_nanos(1_000_123))
        );
        assert_eq!(timers.get(Timer::Output), Some(t0 + TIMER_RESOLUTION));
        assert_eq!(timers.next(|_| true), timers.get(Timer::Close));
        timers.stop(Timer::Close);
        assert_eq!(timers.next(|_| true), Some(t0 + TIMER_RESOLUTION));
        assert!(core::mem::size_of::<Timers>() <= 96);
    }
}
