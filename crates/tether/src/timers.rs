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
    /// An ended connection's last bytes must be written by then
    /// (`Config::close_timeout`), or they are given up.
    Drain,
    /// A client that completed the closing handshake waits until then for
    /// the server to close the transport first (`Config::fin_wait`, RFC
    /// 6455 section 7.1.1).
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
    /// Quiet since `Config::release_idle_after` before this: idle buffers
    /// are freed.
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
        Timer::Drain,
        Timer::FinWait,
        Timer::Release,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// A deadline per [`Timer`] kind.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    slots: [Option<Instant>; 10],
}

/// The least a deadline lies after the `now` that armed it: a zero
/// interval or timeout is this much. So a deadline armed while handling
/// timers at `now` is never due at that same `now`, and an adapter never
/// needs to wait less than this.
pub const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

impl Timers {
    /// Arms `timer` for `after` past `now` (at least [`TIMER_RESOLUTION`]).
    pub(crate) fn set(&mut self, timer: Timer, now: Instant, after: Duration) {
        self.slots[timer.index()] = Some(now + after.max(TIMER_RESOLUTION));
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.slots[timer.index()] = None;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.slots[timer.index()]
    }

    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// Disarms `timer` and says whether it was due at `now`.
    pub(crate) fn take_due(&mut self, timer: Timer, now: Instant) -> bool {
        let slot = &mut self.slots[timer.index()];
        if slot.is_some_and(|at| at <= now) {
            *slot = None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
