//! A client that reconnects on *close*, driven by the core's sans-IO
//! [`ReconnectPolicy`].
//!
//! Owns the supervisor task: connect, forward messages both ways, and when
//! the connection ends, hand its [`CloseInfo`] to the core's [`Reconnector`]
//! and do what it decides (wait its delay and connect again, or stop).
//! Whether and when to come back is the policy's alone; this module never
//! judges a close code or computes a delay. Messages sent while
//! disconnected wait in a bounded queue and go out, in order, once
//! connected; over the bound they are refused with an error, never dropped
//! silently.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tether::handshake::WsUrl;
use tether::{CloseCode, CloseInfo, Event, Message};
use tokio::sync::{Notify, Semaphore, SemaphorePermit, mpsc};

use crate::{ClientOptions, Error};

use tether::reconnect::SendQueue;
pub use tether::reconnect::{
    Decision, Lifecycle, QueueFull, QueueLimit, ReconnectEvent, ReconnectPolicy, Reconnector,
    StopReason,
};

/// How a reconnecting client behaves: how each connection is made, when to
/// come back, and how many messages (and bytes) wait while disconnected. Built the same
/// way as [`ClientOptions`]: the core's generic options, the same type in
/// both adapters (`tether_std::ReconnectOptions` names it for its own).
///
/// ```
/// use std::time::Duration;
/// use tether_tokio::{ClientOptions, ReconnectOptions, ReconnectPolicy};
///
/// let options = ReconnectOptions::new(ClientOptions::new().connect_timeout(Duration::from_secs(5)))
///     .policy(ReconnectPolicy {
///         max_attempts: Some(10),
///         ..ReconnectPolicy::default()
///     })
///     .max_queued_messages(100);
/// ```
pub type ReconnectOptions = tether::reconnect::ReconnectOptions<ClientOptions>;

/// What the application's handle and the supervisor share.
#[derive(Debug)]
struct Outbox {
    queue: Mutex<Queue>,
    /// The supervisor has decided to stop: sends are refused.
    stopped: AtomicBool,
    /// Wakes the supervisor: a message was queued.
    queued: Notify,
    /// Wakes every [`ReconnectingClient::drained_to`]: messages left the
    /// queue, the client connected or disconnected, or it stopped.
    shrunk: Notify,
}

/// Messages waiting, and whether a connection is up.
#[derive(Debug)]
struct Queue {
    messages: SendQueue,
    connected: bool,
    /// How many times `connected` changed: a [`ReconnectingClient::drained_to`]
    /// completes when it differs from what it was when the future was made.
    changes: u64,
    /// The first message is being handed to the connection (a clone of it
    /// is in a send that may wait for room): it stays counted, and
    /// [`ReconnectingClient::take_queued`] leaves it, since it may go out.
    handing_over: bool,
}

/// A client that reconnects after every close its [`ReconnectPolicy`]
/// allows: the tokio counterpart of `tether_std::ReconnectingClient`, with
/// the same options and the same methods where both can have them.
///
/// A supervisor task of its own connects, hands queued messages to the
/// connection and reads from it, so Pings are answered and keep-alive runs
/// whatever the application does. [`next`](Self::next) (or the `Stream`)
/// yields what it reports: messages, and the [`Lifecycle`] events
/// `Connected`, `Disconnected`, `ConnectFailed`, `Reconnecting`, then
/// `Stopped`, the last; `None` from then on. Read them: while messages
/// weighing `Config::max_unread_bytes` wait unread (one always gets
/// through), the supervisor reads no more from the connection, which
/// reads no further ahead than that either (backpressure, bounded in
/// bytes); it still hands what is sent to the connection and hears
/// [`close`](Self::close).
///
/// [`send`](Self::send) hands a message over at once while connected;
/// while disconnected it waits in a queue of at most
/// [`max_queued_messages`](ReconnectOptions::max_queued_messages) messages
/// and [`max_queued_bytes`](ReconnectOptions::max_queued_bytes) bytes (one
/// larger message may wait alone) and goes out, in order, right after the
/// next connect; beyond that it is refused with an error. Messages
/// accepted while connected and not yet handed to the connection when it
/// drops (at most [`QueueLimit::HANDOVER`], 1024 messages and 16 MiB, or
/// the queue's own limits when larger) stay queued, in order, for the next
/// connection, and count against those limits: none is dropped unasked
/// ([`take_queued`](Self::take_queued) gives them back). [`drained_to`](Self::drained_to) waits for the queue to
/// shrink. [`close`](Self::close) closes and stops; dropping the client
/// stops it too, its connection going with 1001 (going away).
///
/// ```no_run
/// use std::time::Duration;
/// use tether_tokio::{
///     ClientOptions, Lifecycle, ReconnectEvent, ReconnectOptions, ReconnectPolicy,
///     ReconnectingClient,
/// };
/// use tether_tokio::tether::{CloseCode, Message};
///
/// # async fn run() -> Result<(), tether_tokio::Error> {
/// let policy = ReconnectPolicy {
///     max_delay: Duration::from_secs(10),
///     intentional_codes: vec![CloseCode::new(4000)], // "do not come back"
///     ..ReconnectPolicy::default()
/// };
/// let options = ReconnectOptions::new(ClientOptions::new())
///     .policy(policy)
///     .max_queued_messages(100);
/// let mut client = ReconnectingClient::new("ws://127.0.0.1:9001/feed", options)?;
/// while let Some(event) = client.next().await {
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
/// # Ok(()) }
/// ```
///
/// Dropping the client stops it: its connection says goodbye as any
/// dropped connection does (1001, going away), read or not what it holds.
#[derive(Debug)]
pub struct ReconnectingClient {
    /// Events, each with the read-ahead budget its message took.
    events: mpsc::Receiver<(ReconnectEvent, u32)>,
    /// Bytes of messages the supervisor may hand over before the
    /// application takes them (`Config::max_unread_bytes`).
    budget: Arc<Semaphore>,
    outbox: Arc<Outbox>,
    close: mpsc::Sender<(CloseCode, String)>,
}

impl ReconnectingClient {
    /// A client for `url` (`ws://` or `wss://`) that connects each time
    /// with the options' [`ClientOptions`], reconnects as their policy says
    /// and keeps up to `max_queued_messages` messages of at most
    /// `max_queued_bytes` bytes while disconnected. Starts connecting at once, on a task of its own: call it inside a
    /// tokio runtime; [`next`](Self::next) reports how it goes.
    ///
    /// The jitter of the delays is drawn from a `StdRng` seeded by the
    /// operating system; [`with_rng`](Self::with_rng) takes a seed.
    ///
    /// # Errors
    /// [`Error::Url`] for a URL that is not `ws://` or `wss://` (no attempt
    /// could ever succeed); nothing is spawned then.
    ///
    /// # Panics
    /// Outside a tokio runtime (it spawns its supervisor task).
    pub fn new(url: &str, options: ReconnectOptions) -> Result<Self, Error> {
        Self::with_rng(url, options, StdRng::from_os_rng())
    }

    /// As [`new`](Self::new), with the random source of the delays' jitter
    /// (e.g. `StdRng::seed_from_u64(1)` for a reproducible sequence).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    ///
    /// # Panics
    /// As [`new`](Self::new).
    pub fn with_rng(url: &str, options: ReconnectOptions, rng: StdRng) -> Result<Self, Error> {
        WsUrl::parse(url).map_err(|e| Error::Url(e.to_string()))?;
        // messages waiting here are bounded in bytes by the budget (as
        // the connection's own read-ahead is); the channel only bounds the
        // number of lifecycle events
        let (ev_tx, events) = mpsc::channel(EVENTS);
        let budget = Arc::new(Semaphore::new(budget_of(&options)));
        let (close, close_rx) = mpsc::channel(1);
        let outbox = Arc::new(Outbox {
            queue: Mutex::new(Queue {
                messages: SendQueue::new(options.queue_limit()),
                connected: false,
                changes: 0,
                handing_over: false,
            }),
            stopped: AtomicBool::new(false),
            queued: Notify::new(),
            shrunk: Notify::new(),
        });
        tokio::spawn(supervise(
            url.to_owned(),
            options,
            rng,
            Relay {
                events: ev_tx,
                budget: budget.clone(),
            },
            outbox.clone(),
            close_rx,
        ));
        Ok(Self {
            events,
            budget,
            outbox,
            close,
        })
    }

    /// Sends `message`: handed to the connection at once while connected;
    /// while disconnected it is queued, to go out in order right after the
    /// next connect. `Ok` means handed over or queued. A message the
    /// connection took goes at most once, as with the blocking client: if
    /// the connection fails while writing it, it is not sent again on the
    /// next one (its bytes may have reached the server); one a connection
    /// that is ending refuses waits for the next.
    ///
    /// A message queued when the client then stops is not sent; it stays
    /// in [`queued`](Self::queued) and [`take_queued`](Self::take_queued)
    /// gives it back.
    ///
    /// # Errors
    /// [`Error::QueueFull`] when the message must wait but
    /// `max_queued_messages` already do, or it would take what waits past
    /// `max_queued_bytes` (or queueing is off; while connected, the limits
    /// are at least [`QueueLimit::HANDOVER`]'s), and
    /// [`Error::Closed`] once the client has stopped: the message is
    /// neither sent nor kept.
    pub fn send(&self, message: Message) -> Result<(), Error> {
        if self.is_stopped() {
            return Err(stopped());
        }
        let mut queue = self.outbox.queue.lock().map_err(|_| stopped())?;
        // while connected, the queue only holds what is being handed over
        let connected = queue.connected;
        queue
            .messages
            .push(message, connected)
            .map_err(Error::QueueFull)?;
        drop(queue);
        self.outbox.queued.notify_one();
        Ok(())
    }

    /// Asks the supervisor to close the connection with `code` and `reason`
    /// (it completes the closing handshake) and to stop: the events that
    /// follow are `Disconnected` (when a connection was up) and
    /// `Stopped(ApplicationClosed)` (unless the policy's
    /// `after_application_close` says to reconnect). Returns at once; read
    /// [`next`](Self::next) to see the end. Messages received but not yet
    /// read stay readable; queued ones stay in [`queued`](Self::queued).
    /// While waiting to reconnect it stops at once (`Stopped` only); during
    /// a connect attempt, once the attempt is over (closing the connection
    /// if it came up). A second call before the first is carried out, or a
    /// call after the client stopped, does nothing.
    ///
    /// # Errors
    /// [`Error::Misuse`] for a code that may not be sent (1005, 1006,
    /// 1015, ...) or a reason over 123 bytes: nothing is sent and the
    /// connection stays up.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        // the connection's own checks, made before the request leaves
        tether::CloseFrame::check(code, reason).map_err(|e| Error::Misuse(e.into()))?;
        // full: a close is already on its way; closed: the client stopped
        let _ = self.close.try_send((code, reason.to_owned()));
        Ok(())
    }

    /// Whether a connection is up (as the supervisor knows it: set before
    /// `Connected` is reported, cleared before `Disconnected` is).
    pub fn is_connected(&self) -> bool {
        self.outbox.queue.lock().is_ok_and(|q| q.connected)
    }

    /// Whether the client has stopped (`Stopped` was decided; the event
    /// follows in [`next`](Self::next)).
    pub fn is_stopped(&self) -> bool {
        self.outbox.stopped.load(Ordering::Acquire)
    }

    /// Messages waiting: for a connection while disconnected, to be handed
    /// to the connection while connected.
    pub fn queued(&self) -> usize {
        self.outbox.queue.lock().map_or(0, |q| q.messages.len())
    }

    /// The payload bytes of the messages waiting (see [`queued`](Self::queued)).
    pub fn queued_bytes(&self) -> usize {
        self.outbox.queue.lock().map_or(0, |q| q.messages.bytes())
    }

    /// Takes the messages waiting (e.g. after `Stopped`, to keep them
    /// elsewhere), in order; none of them will be sent. While connected,
    /// the one being handed to the connection at that moment (it may be
    /// waiting for room) is not taken: it may already be on its way.
    pub fn take_queued(&self) -> Vec<Message> {
        let taken: Vec<Message> = self
            .outbox
            .queue
            .lock()
            .map(|mut q| {
                let keep = usize::from(q.handing_over);
                q.messages.take_from(keep)
            })
            .unwrap_or_default();
        if !taken.is_empty() {
            self.outbox.shrunk.notify_waiters();
        }
        taken
    }

    /// A future that completes once at most `at_most` messages wait in the
    /// queue (see [`queued`](Self::queued)): at once if that is already
    /// so, otherwise when enough have left it. `drained_to(0)`: every
    /// message sent so far has been handed to a connection. It also
    /// completes once the client has stopped (check
    /// [`is_stopped`](Self::is_stopped)): what still waits then stays for
    /// [`take_queued`](Self::take_queued). And it completes when the
    /// client connects or disconnects after it was made (check
    /// [`is_connected`](Self::is_connected)): once down, what waits is
    /// kept for the next connection, within the queue's limits, which a
    /// producer paced while connected must heed again; once up, the
    /// hand-over bound applies instead. A producer that does not read
    /// [`next`](Self::next) while it waits (its lifecycle events among
    /// what it leaves unread) thus never waits for a connection that is
    /// gone, nor misses one that came.
    ///
    /// A message leaves the queue when the connection takes it (into its
    /// own output: written or being written, which says nothing of the
    /// server having read it), or when `take_queued` takes it back. Await
    /// this instead of polling `queued()`: to pace a producer while
    /// connected, or to close once what was sent has gone out.
    ///
    /// The future holds its own handle on the queue, not a borrow of the
    /// client, so it can wait in one `tokio::select!` beside
    /// [`next`](Self::next). Cancel-safe: it only watches the queue, so
    /// dropping it loses nothing.
    pub fn drained_to(&self, at_most: usize) -> impl Future<Output = ()> + Send + 'static {
        let outbox = self.outbox.clone();
        // the connection's state as it is now, not when first polled
        let made_at = outbox.queue.lock().map_or(0, |q| q.changes);
        async move {
            loop {
                // registered before the check, so a change after it wakes us
                let shrunk = outbox.shrunk.notified();
                let (waiting, changes) = outbox
                    .queue
                    .lock()
                    .map_or((0, made_at), |q| (q.messages.len(), q.changes));
                if waiting <= at_most
                    || outbox.stopped.load(Ordering::Acquire)
                    || changes != made_at
                {
                    return;
                }
                shrunk.await;
            }
        }
    }

    /// The next message or lifecycle event; `None` after `Stopped`.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Option<ReconnectEvent> {
        let (event, taken) = self.events.recv().await?;
        self.budget.add_permits(taken as usize);
        Some(event)
    }
}

impl Drop for ReconnectingClient {
    fn drop(&mut self) {
        // a supervisor waiting for room to hand over a message (the
        // application stopped reading before it dropped the client) stops
        // waiting, sees the drop and lets the connection go
        self.budget.close();
    }
}

impl futures_core::Stream for ReconnectingClient {
    type Item = ReconnectEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.events.poll_recv(cx).map(|event| {
            event.map(|(event, taken)| {
                self.budget.add_permits(taken as usize);
                event
            })
        })
    }
}

/// The error for a send after the client stopped.
fn stopped() -> Error {
    Error::Closed(Some(CloseInfo::abnormal(
        "the reconnecting client has stopped; not sent",
    )))
}

fn set_connected(outbox: &Outbox, connected: bool) {
    let changed = outbox.queue.lock().is_ok_and(|mut q| {
        let changed = q.connected != connected;
        if changed {
            q.connected = connected;
            q.changes += 1;
        }
        changed
    });
    if changed {
        // every `drained_to` made before completes
        outbox.shrunk.notify_waiters();
    }
}

/// Lifecycle events the channel holds before the supervisor waits for the
/// application (messages are bounded in bytes by the budget instead).
const EVENTS: usize = 64;

/// The read-ahead budget in permits (bytes), as the semaphore holds them.
fn budget_of(options: &ReconnectOptions) -> usize {
    options
        .client_options()
        .connection()
        .max_unread_bytes
        .clamp(1, (u32::MAX as usize).min(Semaphore::MAX_PERMITS))
}

/// An event, with the read-ahead budget its message took.
type Slot = (ReconnectEvent, u32);

/// The supervisor's way to the application: events, and the byte budget
/// its messages draw on.
struct Relay {
    events: mpsc::Sender<Slot>,
    budget: Arc<Semaphore>,
}

impl Relay {
    async fn lifecycle(&self, event: Lifecycle) {
        tracing::debug!(?event, "reconnecting client");
        let _ = self
            .events
            .send((ReconnectEvent::Lifecycle(event), 0))
            .await;
    }

    /// What a received message takes of the budget (one message always
    /// fits: a larger one waits for all of it).
    fn weight(message: &Message, total: usize) -> u32 {
        let weight = Event::Message(message.clone()).footprint().min(total);
        u32::try_from(weight).unwrap_or(u32::MAX)
    }

    /// Waits for room to hand over a message of `taken` bytes: that much
    /// of the budget, and a place in the channel. `None` once nobody reads
    /// (the client was dropped). Cancel-safe: what it took so far goes
    /// back, so the supervisor may wait for it beside other work.
    async fn room(&self, taken: u32) -> Option<(SemaphorePermit<'_>, mpsc::Permit<'_, Slot>)> {
        let permit = self.budget.acquire_many(taken).await.ok()?;
        let slot = self.events.reserve().await.ok()?;
        Some((permit, slot))
    }
}

/// Completes with `future`; never without one.
async fn or_never<T>(future: Option<impl Future<Output = T>>) -> T {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// A received message the supervisor holds until the application has room
/// for it, with its weight in the budget.
struct Relaying {
    message: Message,
    taken: u32,
}

async fn supervise(
    url: String,
    options: ReconnectOptions,
    mut rng: StdRng,
    relay: Relay,
    outbox: Arc<Outbox>,
    close_rx: mpsc::Receiver<(CloseCode, String)>,
) {
    let reason = run(&url, &options, &mut rng, &relay, &outbox, close_rx).await;
    // refuse sends and release `drained_to` before the last event is seen
    outbox.stopped.store(true, Ordering::Release);
    outbox.shrunk.notify_waiters();
    relay.lifecycle(Lifecycle::Stopped(reason)).await;
}

/// Carries out the application's close: our Close with its code and
/// reason. Returns `true` when the client was dropped instead (stop now:
/// its connection goes as any dropped one does, with the core's goodbye,
/// 1001 going away, that the driver's background task sees through).
async fn close_command(
    cmd: Option<(CloseCode, String)>,
    sink: &mut crate::WsSink,
    closing: &mut bool,
) -> bool {
    let Some((code, reason)) = cmd else {
        return true;
    };
    *closing = true;
    let _ = sink.close(code, &reason).await;
    false
}

/// Connects, relays and reconnects until the policy (or the application)
/// says stop; returns why.
async fn run(
    url: &str,
    options: &ReconnectOptions,
    rng: &mut StdRng,
    relay: &Relay,
    outbox: &Outbox,
    mut close_rx: mpsc::Receiver<(CloseCode, String)>,
) -> StopReason {
    let mut reconnector = Reconnector::new(options.reconnect_policy().clone());
    let mut attempt = 0u32;
    let emit = |e: Lifecycle| relay.lifecycle(e);
    let total = budget_of(options);
    loop {
        let decision = match crate::connect(url, options.client_options()).await {
            Ok((ws, accepted)) => {
                reconnector.connected(tokio::time::Instant::now().into_std());
                set_connected(outbox, true);
                emit(Lifecycle::Connected {
                    attempt,
                    accepted: Box::new(accepted),
                })
                .await;
                let (mut sink, mut stream) = ws.split();
                let mut closing = false;
                // a received message waiting for the application's room:
                // meanwhile the connection is not read (its own read-ahead
                // then holds what arrives), but queued messages are still
                // handed over and a close is still heard
                let mut relaying: Option<Relaying> = None;
                // the connection ended while a message waited for room:
                // reported down at once, so neither a sender waiting in
                // `drained_to` nor the queue waits for an application that
                // is not reading; the messages before its end still come
                let mut ended = false;
                let info = loop {
                    // hand over what is queued, in order; keep it if the
                    // connection refuses. The wait for room hears a close:
                    // a peer that reads nothing must not hold it
                    loop {
                        let next = outbox.queue.lock().ok().and_then(|mut q| {
                            let front = q.messages.front().cloned();
                            q.handing_over = front.is_some();
                            front
                        });
                        let Some(message) = next else { break };
                        let sent = tokio::select! {
                            sent = sink.send(message) => sent.is_ok(),
                            cmd = close_rx.recv(), if !closing => {
                                if close_command(cmd, &mut sink, &mut closing).await {
                                    return StopReason::ApplicationClosed;
                                }
                                false
                            }
                        };
                        if let Ok(mut q) = outbox.queue.lock() {
                            q.handing_over = false;
                            if sent {
                                q.messages.pop_front();
                            }
                        }
                        if !sent {
                            break;
                        }
                        outbox.shrunk.notify_waiters();
                    }
                    let waiting = relaying.as_ref().map(|r| r.taken);
                    tokio::select! {
                        room = or_never(waiting.map(|taken| relay.room(taken))) => match room {
                            Some((permit, slot)) => {
                                permit.forget();
                                if let Some(r) = relaying.take() {
                                    slot.send((ReconnectEvent::Message(r.message), r.taken));
                                }
                            }
                            // nobody reads any more: the client was dropped
                            None => return StopReason::ApplicationClosed,
                        },
                        event = stream.next_event(), if relaying.is_none() => match event {
                            Some(Event::Message(message)) => {
                                let taken = Relay::weight(&message, total);
                                relaying = Some(Relaying { message, taken });
                            }
                            Some(Event::Closed(info)) => break info,
                            Some(_) => {}
                            None => break stream
                                .close_info()
                                .unwrap_or_else(|| CloseInfo::abnormal("the connection ended")),
                        },
                        () = sink.ended(), if relaying.is_some() && !ended => {
                            ended = true;
                            set_connected(outbox, false);
                        }
                        () = outbox.queued.notified() => {}
                        cmd = close_rx.recv(), if !closing => {
                            if close_command(cmd, &mut sink, &mut closing).await {
                                return StopReason::ApplicationClosed;
                            }
                        }
                    }
                };
                set_connected(outbox, false);
                emit(Lifecycle::Disconnected(info.clone())).await;
                let now = tokio::time::Instant::now().into_std();
                if closing {
                    // we asked to close: even if the peer's Close crossed ours
                    reconnector.application_closed(now, rng)
                } else {
                    reconnector.closed(&info, now, rng)
                }
            }
            Err(e) => {
                emit(Lifecycle::ConnectFailed(format!("{url}: {e}"))).await;
                // a refusal or a request that cannot be made stops (the core decides)
                match &e {
                    Error::Handshake(h) => reconnector.handshake_failed(h, rng),
                    _ => reconnector.failed(rng),
                }
            }
        };
        match decision {
            Decision::Reconnect {
                attempt: next,
                delay,
            } => {
                attempt = next;
                emit(Lifecycle::Reconnecting { attempt, delay }).await;
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = close_rx.recv() => return reconnector.application_closed_while_down(),
                }
            }
            Decision::Stop(reason) => return reason,
        }
    }
}
