//! When to reconnect, and after what delay: a sans-IO policy any runtime can
//! drive (the tokio adapter's reconnecting client uses it).
//!
//! Decide on *how the connection ended* (a [`CloseInfo`]), never on errors:
//! a killed server or an idle load balancer that cuts the line raises no
//! error, only a close with 1006 and `was_clean: false`. The default policy
//! reconnects after every close except one the application initiated and
//! peer codes the application marks as intentional; delays grow
//! exponentially with full jitter, up to a cap, and reset once a connection
//! has stayed up long enough. Owns no timer and no socket: time and
//! randomness are arguments.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;
use std::time::Instant;

use rand::Rng;

use crate::upgrade::HandshakeError;
use crate::{CloseCode, CloseInfo, Initiator};

/// The least upper bound of a retry's delay, whatever the policy says:
/// 10 ms, so attempts at a server that refuses at once (a closed port on
/// this machine) average at least 5 ms apart.
pub const MIN_DELAY_CAP: Duration = Duration::from_millis(10);

/// The rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// The cap of the first retry's delay. Default 500 ms.
    pub initial_delay: Duration,
    /// The largest delay. Default 30 s. (The cap of any retry's delay is
    /// never under [`MIN_DELAY_CAP`], whatever this and `initial_delay`
    /// say.)
    pub max_delay: Duration,
    /// Give up after this many attempts in a row (`None`: never). Default none.
    pub max_attempts: Option<u32>,
    /// A connection that stayed up this long resets the attempt count.
    /// Default 30 s.
    pub reset_after: Duration,
    /// Close codes from the peer that mean "do not come back" (e.g. 4000 in
    /// an application protocol). Default none.
    pub intentional_codes: Vec<CloseCode>,
    /// Reconnect even after the application itself closed. Default false.
    pub after_application_close: bool,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
            reset_after: Duration::from_secs(30),
            intentional_codes: Vec::new(),
            after_application_close: false,
        }
    }
}

/// Why the policy says not to reconnect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The application closed the connection.
    ApplicationClosed,
    /// The peer closed with a code marked intentional.
    Intentional(CloseCode),
    /// `max_attempts` attempts in a row failed.
    GaveUp {
        /// Attempts made.
        attempts: u32,
    },
    /// The server answered the upgrade with a status that trying again
    /// will not change: not a WebSocket endpoint (e.g. 200 or 404), or a
    /// refusal (401, 403, 426...). See [`Reconnector::refused`].
    Refused {
        /// The HTTP status of the answer.
        status: u16,
    },
    /// The request cannot be made as configured (a reserved or invalid
    /// header, a subprotocol that is not a token...): asking again cannot
    /// change it. Says why. See [`Reconnector::handshake_failed`].
    Unusable(String),
}

/// How a reconnecting client behaves, for any adapter: how each connection
/// is made (`C`, the adapter's client options), when to come back
/// ([`ReconnectPolicy`]), and how many messages wait while disconnected.
/// Each adapter names it for its own options (`tether_std::ReconnectOptions`,
/// `tether_tokio::ReconnectOptions`), so both are built the same way:
/// `ReconnectOptions::new(client).policy(..).max_queued_messages(..)`.
#[derive(Clone, Debug, Default)]
pub struct ReconnectOptions<C> {
    client: C,
    policy: ReconnectPolicy,
    queue: QueueLimit,
}

impl<C> ReconnectOptions<C> {
    /// Connects each time with `client`, reconnects as
    /// [`ReconnectPolicy::default`] says, and refuses sends while
    /// disconnected (no queue).
    pub fn new(client: C) -> Self {
        Self {
            client,
            policy: ReconnectPolicy::default(),
            queue: QueueLimit::default(),
        }
    }

    /// When to reconnect and how long to wait first (a [`Reconnector`]
    /// decides with it). Default [`ReconnectPolicy::default`].
    #[must_use]
    pub fn policy(mut self, policy: ReconnectPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Messages kept while disconnected, sent in order right after the next
    /// connect; a send beyond is refused (the adapters' `QueueFull`). `0`
    /// refuses every send while disconnected. Default 0.
    #[must_use]
    pub fn max_queued_messages(mut self, messages: usize) -> Self {
        self.queue.messages = messages;
        self
    }

    /// Bytes of messages (payloads) kept while disconnected: a message that
    /// would take what waits past this is refused (the adapters'
    /// `QueueFull`), unless nothing waits, so one message of any size can
    /// wait alone. What waits is at most the larger of this and one
    /// message. Default [`QueueLimit::DEFAULT_BYTES`] (16 MiB).
    #[must_use]
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.queue.bytes = bytes;
        self
    }

    /// The parts: the client options, the policy and the queue's limits.
    pub fn into_parts(self) -> (C, ReconnectPolicy, QueueLimit) {
        (self.client, self.policy, self.queue)
    }

    /// The client options.
    pub fn client_options(&self) -> &C {
        &self.client
    }

    /// The policy.
    pub fn reconnect_policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// What may wait while disconnected.
    pub fn queue_limit(&self) -> QueueLimit {
        self.queue
    }
}

/// What may wait in a reconnecting client's queue, in messages and in
/// bytes of payload ([`ReconnectOptions::max_queued_messages`],
/// [`ReconnectOptions::max_queued_bytes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimit {
    /// Most messages waiting.
    pub messages: usize,
    /// Most bytes of payload waiting, but for one message alone, which may
    /// be larger.
    pub bytes: usize,
}

impl QueueLimit {
    /// The default byte bound: 16 MiB, as `Config::max_queued_output`'s.
    pub const DEFAULT_BYTES: usize = 16 << 20;

    /// While a connection is up, messages wait only until they are handed
    /// to it (whose own `Config::max_queued_output` then applies); this
    /// bounds that wait when the queue's own limits are lower: 1024
    /// messages, 16 MiB.
    pub const HANDOVER: Self = Self {
        messages: 1024,
        bytes: 16 << 20,
    };

    /// The limits in force while a connection is up: each the larger of
    /// this and [`HANDOVER`](Self::HANDOVER)'s, so a client that queues
    /// nothing while disconnected still hands messages over.
    #[must_use]
    pub fn while_connected(self) -> Self {
        Self {
            messages: self.messages.max(Self::HANDOVER.messages),
            bytes: self.bytes.max(Self::HANDOVER.bytes),
        }
    }
}

impl Default for QueueLimit {
    /// No message kept while disconnected; [`DEFAULT_BYTES`](Self::DEFAULT_BYTES).
    fn default() -> Self {
        Self {
            messages: 0,
            bytes: Self::DEFAULT_BYTES,
        }
    }
}

/// A send refused by a full [`SendQueue`]: the message was neither sent
/// nor kept. Says what waited and the limits in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueFull {
    /// Messages waiting.
    pub queued: usize,
    /// Their payload bytes.
    pub queued_bytes: usize,
    /// The refused message's payload bytes.
    pub refused_bytes: usize,
    /// The limits in force ([`QueueLimit::while_connected`] while a
    /// connection was up).
    pub limit: QueueLimit,
    /// Whether a connection was up.
    pub connected: bool,
}

impl core::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Self {
            queued,
            queued_bytes,
            refused_bytes,
            limit,
            connected,
        } = self;
        let by_count = queued >= &limit.messages;
        match (connected, by_count) {
            (false, true) if limit.messages == 0 => f.write_str(
                "not connected, and nothing may wait for a connection (max_queued_messages is 0)",
            ),
            (false, true) => write!(
                f,
                "not connected, and {queued} message(s) already wait (limit {}: max_queued_messages)",
                limit.messages
            ),
            (false, false) => write!(
                f,
                "not connected, and {queued} message(s) of {queued_bytes} bytes already wait: \
                 {refused_bytes} bytes more would pass the limit of {} bytes (max_queued_bytes)",
                limit.bytes
            ),
            (true, true) => write!(
                f,
                "{queued} message(s) already wait to be handed to the connection (limit {} while connected)",
                limit.messages
            ),
            (true, false) => write!(
                f,
                "{queued} message(s) of {queued_bytes} bytes already wait to be handed to the \
                 connection: {refused_bytes} bytes more would pass the limit of {} bytes while connected",
                limit.bytes
            ),
        }
    }
}

impl std::error::Error for QueueFull {}

/// The messages a reconnecting client keeps until a connection takes
/// them, in order, bounded by a [`QueueLimit`] in messages and in bytes:
/// what waits is at most `limit.messages` messages and the larger of
/// `limit.bytes` and one message's payload. Shared by the adapters'
/// reconnecting clients, so both admit and refuse the same sends.
#[derive(Clone, Debug, Default)]
pub struct SendQueue {
    messages: std::collections::VecDeque<crate::Message>,
    bytes: usize,
    limit: QueueLimit,
}

impl SendQueue {
    /// An empty queue with these limits (while disconnected).
    pub fn new(limit: QueueLimit) -> Self {
        Self {
            messages: std::collections::VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Appends `message`, if it fits the limits in force (`connected`:
    /// [`QueueLimit::while_connected`]): fewer messages than the limit wait,
    /// and with it they weigh at most the byte limit, or nothing waits.
    ///
    /// # Errors
    /// [`QueueFull`] when it does not fit; the message is dropped.
    pub fn push(&mut self, message: crate::Message, connected: bool) -> Result<(), QueueFull> {
        let limit = if connected {
            self.limit.while_connected()
        } else {
            self.limit
        };
        let len = message.len();
        let fits_bytes = self.messages.is_empty() || self.bytes.saturating_add(len) <= limit.bytes;
        if self.messages.len() >= limit.messages || !fits_bytes {
            return Err(QueueFull {
                queued: self.messages.len(),
                queued_bytes: self.bytes,
                refused_bytes: len,
                limit,
                connected,
            });
        }
        self.bytes += len;
        self.messages.push_back(message);
        Ok(())
    }

    /// The first message, left in place.
    pub fn front(&self) -> Option<&crate::Message> {
        self.messages.front()
    }

    /// Removes the first message.
    pub fn pop_front(&mut self) -> Option<crate::Message> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.len();
        Some(message)
    }

    /// Takes every message from the `keep`-th on, in order.
    pub fn take_from(&mut self, keep: usize) -> Vec<crate::Message> {
        let keep = keep.min(self.messages.len());
        let taken: Vec<crate::Message> = self.messages.drain(keep..).collect();
        self.bytes -= taken.iter().map(crate::Message::len).sum::<usize>();
        taken
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Payload bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The limits while disconnected.
    pub fn limit(&self) -> QueueLimit {
        self.limit
    }
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait `delay`, then make attempt number `attempt` (1-based).
    Reconnect {
        /// The attempt about to be made.
        attempt: u32,
        /// How long to wait first.
        delay: Duration,
    },
    /// Do not reconnect.
    Stop(StopReason),
}

/// A change in the client's life.
/// Shared by the adapters' reconnecting clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// A connection is up (`attempt` 0 for the first connection).
    Connected {
        /// The reconnect attempt that succeeded (0: the initial connect).
        attempt: u32,
        /// What the server's answer agreed for this connection: its
        /// subprotocol and extensions, which may differ from the last
        /// connection's (another server behind the same URL).
        accepted: Box<crate::handshake::Accepted>,
    },
    /// The connection ended, as the core reported it.
    Disconnected(CloseInfo),
    /// A connect attempt failed before the WebSocket was up.
    ConnectFailed(String),
    /// Waiting `delay` before attempt `attempt`.
    Reconnecting {
        /// The attempt about to be made (1-based).
        attempt: u32,
        /// The wait before it.
        delay: Duration,
    },
    /// The policy said stop: the application closed, the peer closed with
    /// an intentional code, attempts ran out, the upgrade was refused, or
    /// the connection cannot be made ([`StopReason`]). The last event.
    Stopped(StopReason),
}

/// What a reconnecting client yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReconnectEvent {
    /// A message from the server.
    Message(crate::Message),
    /// A lifecycle change.
    Lifecycle(Lifecycle),
}

/// The policy with its running state (attempts so far, when the current
/// connection came up).
#[derive(Clone, Debug)]
pub struct Reconnector {
    policy: ReconnectPolicy,
    attempts: u32,
    connected_at: Option<Instant>,
}

impl Reconnector {
    /// A reconnector with no attempts made.
    pub fn new(policy: ReconnectPolicy) -> Self {
        Self {
            policy,
            attempts: 0,
            connected_at: None,
        }
    }

    /// The rules.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Attempts made in a row since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// A connection came up at `now`.
    pub fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// The upper bound of the delay before attempt `attempt` (1-based):
    /// `min(max_delay, initial_delay * 2^(attempt-1))`, and never under
    /// [`MIN_DELAY_CAP`] (a zero delay in the policy would retry a server
    /// that refuses at once in a busy loop). The delay itself is drawn
    /// uniformly from zero to this bound ("full jitter").
    pub fn delay_cap(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.policy
            .initial_delay
            .checked_mul(factor)
            .map_or(self.policy.max_delay, |d| d.min(self.policy.max_delay))
            .max(MIN_DELAY_CAP)
    }

    /// The connection came up at `connected` (if it did) and ended with
    /// `info` at `now`: reconnect or not, and when.
    pub fn closed(&mut self, info: &CloseInfo, now: Instant, rng: &mut impl Rng) -> Decision {
        if info.initiator == Initiator::Application && !self.policy.after_application_close {
            return Decision::Stop(StopReason::ApplicationClosed);
        }
        if info.initiator == Initiator::Remote && self.policy.intentional_codes.contains(&info.code)
        {
            return Decision::Stop(StopReason::Intentional(info.code));
        }
        self.reset_if_it_stayed_up(now);
        self.next(rng)
    }

    /// The application asked the reconnecting client to close, at `now`
    /// (whatever the close info says: the peer's Close may have crossed
    /// ours, or the connection may have ended just before): stop, unless
    /// `after_application_close` asks to reconnect. Every reconnecting
    /// client decides this here.
    pub fn application_closed(&mut self, now: Instant, rng: &mut impl Rng) -> Decision {
        if !self.policy.after_application_close {
            self.connected_at = None;
            return Decision::Stop(StopReason::ApplicationClosed);
        }
        self.reset_if_it_stayed_up(now);
        self.next(rng)
    }

    /// The application asked to close while no connection is up (waiting
    /// to reconnect): stop, whatever `after_application_close` says, since
    /// that reconnects after closing a connection and there is none to
    /// close. Every reconnecting client decides this here.
    pub fn application_closed_while_down(&mut self) -> StopReason {
        self.connected_at = None;
        StopReason::ApplicationClosed
    }

    fn reset_if_it_stayed_up(&mut self, now: Instant) {
        if let Some(up) = self.connected_at.take()
            && now.saturating_duration_since(up) >= self.policy.reset_after
        {
            self.attempts = 0;
        }
    }

    /// The server answered the upgrade with `status` instead of 101: try
    /// again (with backoff) only when the status says it may pass (408
    /// request timeout, 429 too many requests, 5xx server errors); any
    /// other answer stops ([`StopReason::Refused`]): an endpoint that
    /// answers 200 or 404 will not turn into a WebSocket by being asked
    /// again.
    pub fn refused(&mut self, status: u16, rng: &mut impl Rng) -> Decision {
        if matches!(status, 408 | 429 | 500..=599) {
            return self.failed(rng);
        }
        self.connected_at = None;
        Decision::Stop(StopReason::Refused { status })
    }

    /// An attempt's opening handshake failed with `error`: a refusal is
    /// [`refused`](Self::refused); a request that cannot be built as
    /// configured ([`HandshakeError::Build`]) stops
    /// ([`StopReason::Unusable`]), since every attempt would fail the same
    /// way; anything else is [`failed`](Self::failed). Every reconnecting
    /// client decides a failed handshake here.
    pub fn handshake_failed(&mut self, error: &HandshakeError, rng: &mut impl Rng) -> Decision {
        if let Some(status) = error.refused_status() {
            return self.refused(status, rng);
        }
        if let HandshakeError::Build(e) = error {
            self.connected_at = None;
            return Decision::Stop(StopReason::Unusable(e.to_string()));
        }
        self.failed(rng)
    }

    /// An attempt to connect failed (refused, timed out, handshake error).
    pub fn failed(&mut self, rng: &mut impl Rng) -> Decision {
        self.connected_at = None;
        self.next(rng)
    }

    fn next(&mut self, rng: &mut impl Rng) -> Decision {
        if self
            .policy
            .max_attempts
            .is_some_and(|max| self.attempts >= max)
        {
            return Decision::Stop(StopReason::GaveUp {
                attempts: self.attempts,
            });
        }
        self.attempts += 1;
        let cap = self.delay_cap(self.attempts);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Decision::Reconnect {
            attempt: self.attempts,
            delay: Duration::from_nanos(rng.random_range(0..=nanos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn info(code: u16, initiator: Initiator) -> CloseInfo {
        CloseInfo {
            code: CloseCode::new(code),
            reason: String::new(),
            was_clean: code != 1006,
            initiator,
        }
    }

    /// RFC 6455 section 7.2.3: the first delay is random, and later ones
    /// back off (truncated exponential). Each delay is drawn uniformly from
    /// zero to its attempt's cap ("full jitter"): over many draws, every
    /// tenth of `[0, cap]` is hit, the mean is near half the cap, and the
    /// caps double up to `max_delay`.
    #[test]
    fn rfc6455_7_2_3_delays_are_random_within_caps_that_back_off() {
        let policy = ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1600),
            max_attempts: None,
            ..ReconnectPolicy::default()
        };
        let mut rng = StdRng::seed_from_u64(7);
        let r = Reconnector::new(policy.clone());
        let caps: alloc::vec::Vec<u128> = (1..=7)
            .map(|attempt| r.delay_cap(attempt).as_millis())
            .collect();
        assert_eq!(caps, [100, 200, 400, 800, 1600, 1600, 1600]);
        for attempt in [1u32, 3, 6] {
            let cap = r.delay_cap(attempt);
            let mut tenths = [0u32; 10];
            let mut sum = Duration::ZERO;
            const DRAWS: u32 = 2000;
            for _ in 0..DRAWS {
                // a fresh reconnector per draw, brought to `attempt`
                let mut r = Reconnector::new(policy.clone());
                let mut delay = Duration::ZERO;
                for expected in 1..=attempt {
                    match r.failed(&mut rng) {
                        Decision::Reconnect {
                            attempt: a,
                            delay: d,
                        } => {
                            assert_eq!(a, expected);
                            delay = d;
                        }
                        other => panic!("{other:?}"),
                    }
                }
                assert!(delay <= cap, "{delay:?} over {cap:?}");
                let tenth = (delay.as_nanos() * 10 / (cap.as_nanos() + 1)) as usize;
                tenths[tenth] += 1;
                sum += delay;
            }
            assert!(
                tenths.iter().all(|&n| n > DRAWS / 20),
                "attempt {attempt}: not spread over [0, {cap:?}]: {tenths:?}"
            );
            let mean = sum / DRAWS;
            assert!(
                mean > cap * 2 / 5 && mean < cap * 3 / 5,
                "attempt {attempt}: mean {mean:?} of [0, {cap:?}]"
            );
        }
    }

    #[test]
    fn the_applications_close_stops_unless_the_policy_reconnects_after_it() {
        let mut rng = StdRng::seed_from_u64(2);
        let now = Instant::now();
        let mut r = Reconnector::new(ReconnectPolicy::default());
        assert_eq!(
            r.application_closed(now, &mut rng),
            Decision::Stop(StopReason::ApplicationClosed)
        );
        let mut r = Reconnector::new(ReconnectPolicy {
            after_application_close: true,
            ..ReconnectPolicy::default()
        });
        assert!(matches!(
            r.application_closed(now, &mut rng),
            Decision::Reconnect { attempt: 1, .. }
        ));
        // with no connection up there is nothing to close and come back
        // from: a close while waiting to reconnect stops either way
        assert_eq!(
            r.application_closed_while_down(),
            StopReason::ApplicationClosed
        );
    }

    /// A policy of no delay at all still spaces attempts: the cap is never
    /// under `MIN_DELAY_CAP` (a zero cap retried a closed local port in a
    /// busy loop).
    #[test]
    fn a_zero_delay_policy_still_waits_up_to_the_least_cap() {
        let r = Reconnector::new(ReconnectPolicy {
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..ReconnectPolicy::default()
        });
        for attempt in [1, 2, 30] {
            assert_eq!(r.delay_cap(attempt), MIN_DELAY_CAP);
        }
    }

    #[test]
    fn a_refusal_that_asking_again_cannot_change_stops() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut r = Reconnector::new(ReconnectPolicy::default());
        for status in [200u16, 301, 400, 403, 404, 426] {
            assert_eq!(
                r.refused(status, &mut rng),
                Decision::Stop(StopReason::Refused { status })
            );
        }
        for status in [408u16, 429, 500, 502, 503] {
            assert!(
                matches!(r.refused(status, &mut rng), Decision::Reconnect { .. }),
                "{status}"
            );
        }
    }

    /// A request that cannot be built as configured stops at once: every
    /// attempt would fail the same way (it was retried with backoff
    /// forever); a refusal is decided as `refused`; other handshake
    /// failures are retried.
    #[test]
    fn a_request_that_cannot_be_made_stops_and_other_handshake_failures_retry() {
        use tether_handshake::{BuildError, ResponseError};
        let mut rng = StdRng::seed_from_u64(4);
        let mut r = Reconnector::new(ReconnectPolicy::default());
        let reserved = HandshakeError::Build(BuildError::ReservedHeader {
            name: "Upgrade".into(),
        });
        let Decision::Stop(StopReason::Unusable(why)) = r.handshake_failed(&reserved, &mut rng)
        else {
            panic!("a reserved header was retried");
        };
        assert!(why.contains("Upgrade"), "{why}");
        let refused = HandshakeError::Response(ResponseError::UnexpectedStatus {
            status: 404,
            reason: String::new(),
            headers: tether_handshake::Headers::default(),
        });
        assert_eq!(
            r.handshake_failed(&refused, &mut rng),
            Decision::Stop(StopReason::Refused { status: 404 })
        );
        let garbled = HandshakeError::Response(ResponseError::MissingUpgrade);
        assert!(matches!(
            r.handshake_failed(&garbled, &mut rng),
            Decision::Reconnect { attempt: 1, .. }
        ));
    }

    #[test]
    fn application_close_and_intentional_codes_stop() {
        let policy = ReconnectPolicy {
            intentional_codes: alloc::vec![CloseCode::new(4000)],
            ..ReconnectPolicy::default()
        };
        let mut r = Reconnector::new(policy);
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        assert_eq!(
            r.closed(&info(1000, Initiator::Application), now, &mut rng),
            Decision::Stop(StopReason::ApplicationClosed)
        );
        assert_eq!(
            r.closed(&info(4000, Initiator::Remote), now, &mut rng),
            Decision::Stop(StopReason::Intentional(CloseCode::new(4000)))
        );
        for (code, who) in [
            (1001, Initiator::Remote),
            (1006, Initiator::Remote),
            (1006, Initiator::Local),
            (1000, Initiator::Remote),
        ] {
            assert!(
                matches!(
                    r.closed(&info(code, who), now, &mut rng),
                    Decision::Reconnect { .. }
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn gives_up_after_max_attempts_and_resets_after_a_stable_connection() {
        let policy = ReconnectPolicy {
            max_attempts: Some(3),
            reset_after: Duration::from_secs(10),
            ..ReconnectPolicy::default()
        };
        let mut r = Reconnector::new(policy);
        let mut rng = StdRng::seed_from_u64(2);
        for attempt in 1..=3 {
            assert!(
                matches!(r.failed(&mut rng), Decision::Reconnect { attempt: a, .. } if a == attempt)
            );
        }
        assert_eq!(
            r.failed(&mut rng),
            Decision::Stop(StopReason::GaveUp { attempts: 3 })
        );
        // a connection that stays up 10 s resets the count
        let t0 = Instant::now();
        r.connected(t0);
        let d = r.closed(
            &info(1006, Initiator::Remote),
            t0 + Duration::from_secs(10),
            &mut rng,
        );
        assert!(matches!(d, Decision::Reconnect { attempt: 1, .. }), "{d:?}");
        // a short one does not
        r.connected(t0);
        let d = r.closed(
            &info(1006, Initiator::Remote),
            t0 + Duration::from_secs(1),
            &mut rng,
        );
        assert!(matches!(d, Decision::Reconnect { attempt: 2, .. }), "{d:?}");
    }

    proptest! {
        /// Delays stay within [0, max(10 ms, min(max, initial * 2^(n-1)))] and the
        /// decisions follow the rules, whatever the sequence of endings.
        #[test]
        fn backoff_within_bounds_and_decisions_follow_rules(
            seed in any::<u64>(),
            initial_ms in 1u64..2000,
            max_ms in 1u64..60_000,
            max_attempts in proptest::option::of(1u32..20),
            endings in proptest::collection::vec((prop_oneof![Just(1000u16), Just(1001), Just(1006), Just(4000), Just(4001)], 0u8..3, 0u64..100), 1..60),
        ) {
            let policy = ReconnectPolicy {
                initial_delay: Duration::from_millis(initial_ms),
                max_delay: Duration::from_millis(max_ms),
                max_attempts,
                reset_after: Duration::from_secs(50),
                intentional_codes: alloc::vec![CloseCode::new(4000)],
                after_application_close: false,
            };
            let mut r = Reconnector::new(policy.clone());
            let mut rng = StdRng::seed_from_u64(seed);
            let t0 = Instant::now();
            let mut expected_attempts = 0u32;
            for (code, who, up_secs) in endings {
                let who = [Initiator::Application, Initiator::Local, Initiator::Remote][usize::from(who)];
                r.connected(t0);
                let decision = r.closed(&info(code, who), t0 + Duration::from_secs(up_secs), &mut rng);
                if who == Initiator::Application {
                    prop_assert_eq!(decision, Decision::Stop(StopReason::ApplicationClosed));
                    continue;
                }
                if who == Initiator::Remote && code == 4000 {
                    prop_assert_eq!(decision, Decision::Stop(StopReason::Intentional(CloseCode::new(4000))));
                    continue;
                }
                if up_secs >= 50 {
                    expected_attempts = 0;
                }
                if max_attempts.is_some_and(|m| expected_attempts >= m) {
                    prop_assert_eq!(decision, Decision::Stop(StopReason::GaveUp { attempts: expected_attempts }));
                    continue;
                }
                expected_attempts += 1;
                match decision {
                    Decision::Reconnect { attempt, delay } => {
                        prop_assert_eq!(attempt, expected_attempts);
                        let cap = policy.initial_delay.saturating_mul(1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX)).min(policy.max_delay).max(MIN_DELAY_CAP);
                        prop_assert!(delay <= cap, "delay {:?} over cap {:?}", delay, cap);
                        prop_assert!(cap <= policy.max_delay.max(MIN_DELAY_CAP));
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
    }

    fn bin(len: usize) -> crate::Message {
        crate::Message::binary(alloc::vec![0u8; len])
    }

    #[test]
    fn send_queue_is_bounded_by_messages_and_by_bytes() {
        let mut q = SendQueue::new(QueueLimit {
            messages: 3,
            bytes: 100,
        });
        q.push(bin(60), false).unwrap();
        q.push(bin(40), false).unwrap();
        // 100 bytes wait: one byte more would pass the byte limit
        let full = q.push(bin(1), false).unwrap_err();
        assert_eq!(
            (full.queued, full.queued_bytes, full.refused_bytes),
            (2, 100, 1)
        );
        assert!(full.to_string().contains("max_queued_bytes"), "{full}");
        // an empty message still fits, then the count is reached
        q.push(bin(0), false).unwrap();
        let full = q.push(bin(0), false).unwrap_err();
        assert!(
            full.to_string().contains("limit 3: max_queued_messages"),
            "{full}"
        );
        assert_eq!(q.pop_front().unwrap().len(), 60);
        assert_eq!((q.len(), q.bytes()), (2, 40));
        assert_eq!(q.take_from(1).len(), 1);
        assert_eq!((q.len(), q.bytes()), (1, 40));
        assert_eq!(q.take_from(0).len(), 1);
        assert_eq!((q.len(), q.bytes()), (0, 0));
    }

    #[test]
    fn one_message_larger_than_the_byte_limit_waits_alone() {
        let mut q = SendQueue::new(QueueLimit {
            messages: 10,
            bytes: 100,
        });
        q.push(bin(1000), false).unwrap();
        assert!(q.push(bin(1), false).is_err());
        assert_eq!(q.bytes(), 1000);
    }

    #[test]
    fn while_connected_the_handover_limits_apply_when_larger() {
        let mut q = SendQueue::new(QueueLimit::default());
        let off = q.push(bin(1), false).unwrap_err();
        assert_eq!(
            off.to_string(),
            "not connected, and nothing may wait for a connection (max_queued_messages is 0)"
        );
        for _ in 0..QueueLimit::HANDOVER.messages {
            q.push(bin(1), true).unwrap();
        }
        let full = q.push(bin(1), true).unwrap_err();
        assert!(full.connected);
        assert!(full.to_string().contains("while connected"), "{full}");
        let mut q = SendQueue::new(QueueLimit::default());
        q.push(bin(QueueLimit::HANDOVER.bytes), true).unwrap();
        let full = q.push(bin(1), true).unwrap_err();
        assert!(full.to_string().contains("bytes while connected"), "{full}");
    }

    proptest! {
        /// The model: whatever is pushed, popped and taken, the queue keeps
        /// its order, its byte count is its payloads' sum, and what waits
        /// stays within the limits (bytes: but for one message alone).
        #[test]
        fn send_queue_keeps_order_and_bounds(
            ops in proptest::collection::vec((0u8..4, 0usize..300), 0..200),
            messages in 0usize..20,
            bytes in 0usize..1000,
        ) {
            let limit = QueueLimit { messages, bytes };
            let mut q = SendQueue::new(limit);
            let mut model: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
            let mut id = 0usize;
            for (op, len) in ops {
                match op {
                    0 | 1 => {
                        id += 1;
                        let mut payload = alloc::vec![0u8; len.max(8)];
                        payload[..8].copy_from_slice(&(id as u64).to_le_bytes());
                        payload.truncate(len.max(8));
                        let fits = model.len() < messages
                            && (model.is_empty() || model.iter().sum::<usize>() + payload.len() <= bytes);
                        let n = payload.len();
                        prop_assert_eq!(q.push(crate::Message::binary(payload), false).is_ok(), fits);
                        if fits { model.push_back(n); }
                    }
                    2 => {
                        let got = q.pop_front().map(|m| m.len());
                        prop_assert_eq!(got, model.pop_front());
                    }
                    _ => {
                        let keep = len % 4;
                        let taken = q.take_from(keep);
                        let expect: Vec<usize> = model.drain(keep.min(model.len())..).collect();
                        prop_assert_eq!(taken.iter().map(crate::Message::len).collect::<Vec<_>>(), expect);
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.bytes(), model.iter().sum::<usize>());
                prop_assert!(q.len() <= messages);
                prop_assert!(q.len() <= 1 || q.bytes() <= bytes);
            }
        }
    }
}
