//! [`ReconnectingClient`]: a blocking client that reconnects on *close*,
//! driven by the core's sans-IO [`ReconnectPolicy`].
//!
//! Owns the blocking loop around it: connect, read, and when a connection
//! ends, hand its [`CloseInfo`] to the core's [`Reconnector`] and do what it
//! decides (sleep its delay and connect again, or stop). Whether and when
//! to come back is the policy's alone; this module never judges a close
//! code or computes a delay. Messages sent while disconnected wait in a
//! bounded queue and go out, in order, right after the next connect; over
//! the bound they are refused with an error, never dropped silently.

use std::collections::VecDeque;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tether::handshake::WsUrl;
use tether::{CloseCode, CloseInfo, Event, Message, State};

use crate::{ClientOptions, Error, MaybeTlsStream, WebSocket};

use tether::reconnect::SendQueue;
pub use tether::reconnect::{
    Decision, Lifecycle, QueueFull, QueueLimit, ReconnectEvent, ReconnectPolicy, Reconnector,
    StopReason,
};

/// How a reconnecting client behaves: how each connection is made, when to
/// come back, and how many messages (and bytes) wait while disconnected. Built the same
/// way as [`ClientOptions`]: the core's generic options, the same type in
/// both adapters (`tether_tokio::ReconnectOptions` names it for its own).
///
/// ```
/// use std::time::Duration;
/// use tether_std::{ClientOptions, ReconnectOptions, ReconnectPolicy};
///
/// let options = ReconnectOptions::new(ClientOptions::new().connect_timeout(Duration::from_secs(5)))
///     .policy(ReconnectPolicy {
///         max_attempts: Some(10),
///         ..ReconnectPolicy::default()
///     })
///     .max_queued_messages(100);
/// ```
pub type ReconnectOptions = tether::reconnect::ReconnectOptions<ClientOptions>;

/// Where the client is between two events.
#[derive(Debug)]
enum Phase {
    /// Make attempt `attempt` (0: the first connect) once `at` has come.
    Connect { attempt: u32, at: Instant },
    /// A connection is up.
    Connected(Box<WebSocket<MaybeTlsStream>>),
    /// The policy (or the application) said stop: nothing more happens.
    Stopped,
}

/// A blocking WebSocket client that reconnects after every close its
/// [`ReconnectPolicy`] allows: the simple, one-thread counterpart of
/// `tether_tokio::ReconnectingClient`.
///
/// It is an [`Iterator`] of [`ReconnectEvent`]s. Each
/// [`next`](Iterator::next) blocks until there is something to report:
/// while disconnected it connects (sleeping the policy's delay between
/// attempts) and reports [`Lifecycle::Reconnecting`], `ConnectFailed`,
/// `Connected`; while connected it reads the next message (Pings are
/// answered and keep-alive runs meanwhile, as in [`WebSocket::read`]) and
/// reports how the connection ended with `Disconnected`. The last event is
/// [`Lifecycle::Stopped`]; `next` returns `None` from then on.
///
/// [`send`](Self::send) sends at once while connected; while disconnected
/// the message waits in a queue of at most
/// [`max_queued_messages`](ReconnectOptions::max_queued_messages) messages
/// and [`max_queued_bytes`](ReconnectOptions::max_queued_bytes) bytes (one
/// larger message may wait alone) and goes out, in order, right after the
/// next connect; beyond that it is refused with an error. [`close`](Self::close) closes and stops.
///
/// Nothing happens between calls: no thread runs behind the application,
/// so Pings are answered and timers run only while it is inside `next`,
/// `send` or `close`, and a connection that ends meanwhile is noticed by
/// the next `next`. An application that must send while no message comes
/// should use the tokio adapter. For the same reason there is no
/// `drained_to` here (the tokio client's wait for its queue to shrink):
/// the queue shrinks only inside `next` and `send`, so
/// [`queued`](Self::queued) after them says all.
///
/// ```no_run
/// use std::time::Duration;
/// use tether_std::{
///     ClientOptions, CloseCode, Lifecycle, Message, ReconnectEvent, ReconnectOptions,
///     ReconnectPolicy, ReconnectingClient,
/// };
///
/// let policy = ReconnectPolicy {
///     max_delay: Duration::from_secs(10),
///     intentional_codes: vec![CloseCode::new(4000)], // "do not come back"
///     ..ReconnectPolicy::default()
/// };
/// let options = ReconnectOptions::new(ClientOptions::new())
///     .policy(policy)
///     .max_queued_messages(100);
/// let mut client = ReconnectingClient::new("ws://127.0.0.1:9001/feed", options)?;
/// while let Some(event) = client.next() {
///     match event {
///         ReconnectEvent::Message(m) => println!("{}", m.as_text().unwrap_or("<binary>")),
///         ReconnectEvent::Lifecycle(Lifecycle::Connected { .. }) => {
///             // queued while disconnected, or sent at once: in order either way
///             client.send(Message::text("subscribe"))?;
///         }
///         ReconnectEvent::Lifecycle(Lifecycle::Stopped(reason)) => eprintln!("stopped: {reason:?}"),
///         ReconnectEvent::Lifecycle(other) => eprintln!("{other:?}"),
///     }
/// }
/// # Ok::<(), tether_std::Error>(())
/// ```
#[derive(Debug)]
pub struct ReconnectingClient {
    url: String,
    options: ClientOptions,
    reconnector: Reconnector,
    rng: StdRng,
    phase: Phase,
    /// Events decided but not yet returned, in order.
    events: VecDeque<ReconnectEvent>,
    /// Messages waiting for a connection, in order, within the options'
    /// limits.
    queue: SendQueue,
}

impl ReconnectingClient {
    /// A client for `url` (`ws://` or `wss://`) that connects each time
    /// with the options' [`ClientOptions`], reconnects as their policy says
    /// and keeps up to `max_queued_messages` messages of at most
    /// `max_queued_bytes` bytes while disconnected. Connects on the first [`next`](Iterator::next), not here.
    ///
    /// The jitter of the delays is drawn from a `StdRng` seeded by the
    /// operating system; [`with_rng`](Self::with_rng) takes a seed.
    ///
    /// # Errors
    /// [`Error::Url`] for a URL that is not `ws://` or `wss://` (no attempt
    /// could ever succeed).
    pub fn new(url: &str, options: ReconnectOptions) -> Result<Self, Error> {
        Self::with_rng(url, options, StdRng::from_os_rng())
    }

    /// As [`new`](Self::new), with the random source of the delays' jitter
    /// (e.g. `StdRng::seed_from_u64(1)` for a reproducible sequence).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_rng(url: &str, options: ReconnectOptions, rng: StdRng) -> Result<Self, Error> {
        WsUrl::parse(url)?;
        let (client, policy, queue_limit) = options.into_parts();
        Ok(Self {
            url: url.to_owned(),
            options: client,
            reconnector: Reconnector::new(policy),
            rng,
            phase: Phase::Connect {
                attempt: 0,
                at: Instant::now(),
            },
            events: VecDeque::new(),
            queue: SendQueue::new(queue_limit),
        })
    }

    /// Sends `message`: at once while connected; while disconnected, or
    /// when the connection turns out to be ending (our Close is out) or to
    /// have ended, it is queued, to go out in order right after the next
    /// connect. `Ok` means sent or queued. A message the connection took
    /// goes at most once, as with the tokio client: if the connection
    /// fails while writing it, it is not sent again on the next one (its
    /// bytes may have reached the server), and `next` reports the end.
    /// Deadlines that passed while the application was away run first, so
    /// a connection that ended meanwhile refuses the message, which then
    /// waits for the next.
    ///
    /// A message queued when the client then stops is not sent; it stays
    /// in [`queued`](Self::queued) and [`take_queued`](Self::take_queued)
    /// gives it back.
    ///
    /// # Errors
    /// [`Error::QueueFull`] when the message must wait but
    /// `max_queued_messages` already do, or it would take what waits past
    /// `max_queued_bytes` (or queueing is off), and
    /// [`Error::Closed`] once the client has stopped: the message is
    /// neither sent nor kept. [`Error::Misuse`] when a connection that can
    /// send refuses this message.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        if matches!(self.phase, Phase::Stopped) {
            return Err(Error::Closed(CloseInfo::abnormal(
                "the reconnecting client has stopped; not sent",
            )));
        }
        if !matches!(self.phase, Phase::Connected(_)) {
            return self.enqueue(message);
        }
        // Earlier messages first (they wait only if a flush stopped).
        if !self.queue.is_empty() {
            self.flush_queue();
            if !self.queue.is_empty() {
                return self.enqueue(message);
            }
        }
        let Phase::Connected(ws) = &mut self.phase else {
            return self.enqueue(message);
        };
        match hand_over(ws, &message) {
            Handed::Taken => Ok(()),
            Handed::Refused(e) => Err(e),
            Handed::Ending => self.enqueue(message),
        }
    }

    /// Closes the connection with `code` and `reason` (completing the
    /// closing handshake, as [`WebSocket::close`] does) and stops: the
    /// events that follow are `Disconnected` (when a connection was up)
    /// and `Stopped(ApplicationClosed)` (unless the policy's
    /// `after_application_close` says to reconnect). Messages received but
    /// not yet read are dropped; queued ones stay in
    /// [`queued`](Self::queued). While disconnected it stops at once;
    /// after the client stopped it does nothing.
    ///
    /// # Errors
    /// [`Error::Misuse`] for a code that may not be sent (1005, 1006,
    /// 1015, ...) or a reason over 123 bytes: nothing is sent and the
    /// connection stays up.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        let mut ws = match phase {
            Phase::Connected(ws) => ws,
            Phase::Connect { .. } => {
                let reason = self.reconnector.application_closed_while_down();
                self.lifecycle(Lifecycle::Stopped(reason));
                return Ok(());
            }
            Phase::Stopped => return Ok(()),
        };
        let info = match ws.close(code, reason) {
            Ok(info) => info,
            Err(Error::Misuse(e)) if !ws.state().is_terminal() => {
                self.phase = Phase::Connected(ws);
                return Err(Error::Misuse(e));
            }
            Err(e) => ended_after(&ws, &e),
        };
        self.lifecycle(Lifecycle::Disconnected(info.clone()));
        let decision = self
            .reconnector
            .application_closed(Instant::now(), &mut self.rng);
        self.decide(decision);
        Ok(())
    }

    /// Whether a connection is up (as far as the client knows: an end not
    /// yet read is reported by the next [`next`](Iterator::next)).
    pub fn is_connected(&self) -> bool {
        matches!(&self.phase, Phase::Connected(ws) if !ws.state().is_terminal())
    }

    /// Whether the client has stopped (`Stopped` was decided).
    pub fn is_stopped(&self) -> bool {
        matches!(self.phase, Phase::Stopped)
    }

    /// Messages waiting for a connection.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The payload bytes of the messages waiting for a connection.
    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes()
    }

    /// Takes the messages waiting for a connection (e.g. after `Stopped`,
    /// to keep them elsewhere), in order.
    pub fn take_queued(&mut self) -> Vec<Message> {
        self.queue.take_from(0)
    }

    /// The policy with its running state (attempts so far).
    pub fn reconnector(&self) -> &Reconnector {
        &self.reconnector
    }

    /// The current connection, if one is up.
    pub fn websocket(&self) -> Option<&WebSocket<MaybeTlsStream>> {
        match &self.phase {
            Phase::Connected(ws) => Some(ws),
            _ => None,
        }
    }

    // ----- the loop ----------------------------------------------------------

    fn lifecycle(&mut self, event: Lifecycle) {
        self.events.push_back(ReconnectEvent::Lifecycle(event));
    }

    fn enqueue(&mut self, message: Message) -> Result<(), Error> {
        self.queue.push(message, false).map_err(Error::QueueFull)
    }

    /// Acts on the policy's decision: schedule the next attempt, or stop.
    fn decide(&mut self, decision: Decision) {
        match decision {
            Decision::Reconnect { attempt, delay } => {
                self.lifecycle(Lifecycle::Reconnecting { attempt, delay });
                self.phase = Phase::Connect {
                    attempt,
                    at: tether::deadline(Instant::now(), delay),
                };
            }
            Decision::Stop(reason) => {
                self.lifecycle(Lifecycle::Stopped(reason));
                self.phase = Phase::Stopped;
            }
        }
    }

    /// The connection ended with `info`: report it and ask the policy.
    fn ended(&mut self, info: CloseInfo) {
        self.phase = Phase::Stopped;
        self.lifecycle(Lifecycle::Disconnected(info.clone()));
        let decision = self
            .reconnector
            .closed(&info, Instant::now(), &mut self.rng);
        self.decide(decision);
    }

    /// Waits until `at`, then makes one connect attempt.
    fn attempt(&mut self, attempt: u32, at: Instant) {
        let wait = at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        match crate::connect(&self.url, &self.options) {
            Ok((ws, accepted)) => {
                self.reconnector.connected(Instant::now());
                self.lifecycle(Lifecycle::Connected {
                    attempt,
                    accepted: Box::new(accepted),
                });
                self.phase = Phase::Connected(Box::new(ws));
                self.flush_queue();
            }
            Err(e) => {
                self.lifecycle(Lifecycle::ConnectFailed(format!("{}: {e}", self.url)));
                // a refusal or a request that cannot be made stops (the core decides)
                let decision = match &e {
                    Error::Handshake(h) => self.reconnector.handshake_failed(h, &mut self.rng),
                    _ => self.reconnector.failed(&mut self.rng),
                };
                self.decide(decision);
            }
        }
    }

    /// Sends the queued messages in order; each leaves the queue once the
    /// connection took it. Stops at the first the connection does not take
    /// (normally because it has ended): that one and the rest stay queued,
    /// for the next connection or [`take_queued`](Self::take_queued).
    fn flush_queue(&mut self) {
        let Phase::Connected(ws) = &mut self.phase else {
            return;
        };
        while let Some(message) = self.queue.front() {
            match hand_over(ws, message) {
                Handed::Taken => {}
                Handed::Refused(_) | Handed::Ending => return,
            }
            self.queue.pop_front();
            if ws.state().is_terminal() || ws.connection().writing_over() {
                // taken, then its write failed: the rest waits
                return;
            }
        }
    }

    /// Reads the next event of the connection: a message, or its end.
    fn read(&mut self) -> Option<ReconnectEvent> {
        let Phase::Connected(ws) = &mut self.phase else {
            return None;
        };
        match ws.read_event() {
            Ok(Event::Message(message)) => return Some(ReconnectEvent::Message(message)),
            Ok(Event::Ping(_) | Event::Pong(_)) => return None,
            Ok(Event::Closed(info)) => self.ended(info),
            Err(e) => {
                // After a transport error the `Closed` event (1006) is
                // still queued: take it from the connection instead.
                let info = ended_after(ws, &e);
                self.ended(info);
            }
        }
        None
    }
}

impl Iterator for ReconnectingClient {
    type Item = ReconnectEvent;

    /// The next message or lifecycle event; blocks until there is one (see
    /// the type's documentation). `None` once `Stopped` was returned.
    fn next(&mut self) -> Option<ReconnectEvent> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            match self.phase {
                Phase::Stopped => return None,
                Phase::Connect { attempt, at } => self.attempt(attempt, at),
                Phase::Connected(_) => {
                    if let Some(event) = self.read() {
                        return Some(event);
                    }
                }
            }
        }
    }
}

impl std::iter::FusedIterator for ReconnectingClient {}

/// What a connection did with a message handed to it.
enum Handed {
    /// It took the message: written, or its write failed after it was
    /// taken (the connection's end is reported by `next`). Either way the
    /// message is not sent again, as the tokio client hands a message over
    /// once: its bytes may have reached the server, and a second copy on
    /// the next connection could arrive twice.
    Taken,
    /// The connection is ending by itself (our Close is out, e.g. for the
    /// idle timeout, or the peer's was answered), has ended, or its
    /// transport failed: the message did not go, and waits for the next
    /// connection.
    Ending,
    /// A connection that can send refused this message: the
    /// application's error.
    Refused(Error),
}

/// Sends `message` on `ws`, saying whether it was taken.
fn hand_over(ws: &mut WebSocket<MaybeTlsStream>, message: &Message) -> Handed {
    // deadlines that passed while the application was away run first: a
    // connection that ended meanwhile must refuse the message, not take it
    // and throw it away unwritten
    ws.catch_up();
    // whether the connection could take a message before this one: a send
    // that fails after that either was refused for itself (`Misuse`) or
    // was taken and failed in its write
    let open =
        matches!(ws.state(), State::Open | State::CloseReceived) && !ws.connection().writing_over();
    match ws.send(message.clone()) {
        Ok(()) => Handed::Taken,
        Err(e @ Error::Misuse(_)) if open => Handed::Refused(e),
        Err(_) if open => Handed::Taken,
        Err(_) => Handed::Ending,
    }
}

/// How the connection ended, after `error` from it.
fn ended_after(ws: &WebSocket<MaybeTlsStream>, error: &Error) -> CloseInfo {
    error
        .close_info()
        .or_else(|| ws.close_info())
        .cloned()
        .unwrap_or_else(|| CloseInfo::abnormal(format!("the connection failed: {error}")))
}
