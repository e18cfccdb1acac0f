//! The application's handles: [`WebSocket`], and its halves [`WsSink`] and
//! [`WsStream`] from [`WebSocket::split`].
//!
//! Handles drive the connection themselves while they poll (see the
//! driver module): a message is read, decoded and handed over in the
//! polling task, and answers queued while more received messages wait are
//! written together. Receiving is cancel-safe: a `next()` dropped in
//! `tokio::select!` loses nothing, the message stays queued for the next
//! call.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::ready;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tether::{CloseCode, CloseInfo, Event, Message, MessageKind, State};

use crate::Error;
use crate::driver::{Batch, Inner, Party, Reply, Shared, SinkState};
use crate::owned::Owned;

/// The sending half: a [`Sink`] of [`Message`]s, plus control operations.
///
/// `poll_ready` waits while the connection's output queue is over
/// `Config::max_queued_output` (backpressure); `poll_flush` waits until
/// everything sent so far is written to the transport; `poll_close`
/// closes with 1000 and waits for the closing handshake to finish.
#[derive(Debug)]
pub struct WsSink {
    shared: Arc<Shared>,
}

/// The receiving half: a [`Stream`] of [`Message`]s.
///
/// The stream ends (`None`) when the connection ends; an end without a
/// clean closing handshake first yields `Err(Error::Closed(info))`. Use
/// [`WsStream::next_event`] to see Pings, Pongs and the final close too.
#[derive(Debug)]
pub struct WsStream {
    shared: Arc<Shared>,
    /// Items taken from the connection in one batch ([`Inner::take_items`]),
    /// read without the connection's lock. Boxed, and only while a batch
    /// is being read: the application's task carries the handle for the
    /// connection's whole life, idle included.
    #[allow(
        clippy::box_collection,
        reason = "8 bytes in the application's task instead of 32"
    )]
    batch: Option<Box<Batch>>,
    ended: bool,
    /// The last poll found the connection's turn spent and let the
    /// runtime's other tasks run first; this one drives.
    turn_yielded: bool,
}

/// A WebSocket connection. A [`Stream`] of received messages and a
/// [`Sink`] of messages to send; [`WebSocket::split`] gives halves that can
/// live on different tasks. Who drives it is [`Driver`](crate::Driver)'s
/// choice: by default the polling task, and a small background task while
/// nobody polls; with `Driver::Owner`, only the task that holds it.
#[derive(Debug)]
pub struct WebSocket {
    handles: Handles,
}

#[derive(Debug)]
enum Handles {
    Shared { sink: WsSink, stream: WsStream },
    Owned(Owned),
}

impl WebSocket {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            handles: Handles::Shared {
                sink: WsSink {
                    shared: shared.clone(),
                },
                stream: WsStream {
                    shared,
                    batch: None,
                    ended: false,
                    turn_yielded: false,
                },
            },
        }
    }

    pub(crate) fn owned(owned: Owned) -> Self {
        Self {
            handles: Handles::Owned(owned),
        }
    }

    /// Ends the connection at once, without a closing handshake (final close
    /// 1006, `was_clean: false`): for a peer that stopped reading, whose
    /// queued output would hold a `close` back. Does not wait.
    pub fn abort(&mut self) {
        match &mut self.handles {
            Handles::Shared { sink, .. } => sink.abort(),
            Handles::Owned(owned) => owned.abort(),
        }
    }

    /// Splits into a sending and a receiving half. With `Driver::Owner`,
    /// the connection goes to the shared driver first (the halves may live
    /// on different tasks, and a background task drives while neither
    /// polls).
    pub fn split(self) -> (WsSink, WsStream) {
        match self.handles {
            Handles::Shared { sink, stream } => (sink, stream),
            Handles::Owned(owned) => {
                let ended = owned.ended;
                let shared = owned.into_shared();
                (
                    WsSink {
                        shared: shared.clone(),
                    },
                    WsStream {
                        shared,
                        batch: None,
                        ended,
                        turn_yielded: false,
                    },
                )
            }
        }
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        match &self.handles {
            Handles::Shared { sink, .. } => sink.state(),
            Handles::Owned(owned) => owned.state(),
        }
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<CloseInfo> {
        match &self.handles {
            Handles::Shared { sink, .. } => sink.close_info(),
            Handles::Owned(owned) => owned.close_info(),
        }
    }

    /// The next event (message, Ping, Pong or the final close). Cancel-safe.
    pub async fn next_event(&mut self) -> Option<Event> {
        match &mut self.handles {
            Handles::Shared { stream, .. } => stream.next_event().await,
            Handles::Owned(owned) => std::future::poll_fn(|cx| owned.poll_event(cx)).await,
        }
    }

    /// Sends a message, waiting while the output queue is full. With
    /// `Driver::Owner`, also until it reached the transport, unless
    /// received messages wait unread (then the answers go out together at
    /// the next read).
    ///
    /// Cancelling it (a `select!` branch, a timeout) while it waits for
    /// room sends nothing; once the message is queued it goes out whatever
    /// happens to the future. With `Driver::Shared` the future completes as
    /// the message is queued; with `Driver::Owner` it may then still wait
    /// for the write, so a timeout around it can fire for a message that
    /// goes out: do not send it again on a timeout (wait for room with
    /// `poll_ready`, or for the write with `flush`, if that matters).
    ///
    /// # Errors
    /// [`Error::Closed`] once the connection has ended, and after a failed
    /// write while it reads on to its end; or the core's refusal of the
    /// previous operation.
    pub fn send(&mut self, message: Message) -> impl Future<Output = Result<(), Error>> + '_ {
        Queue::new(self.sender(), "send", SendMessage(message))
    }

    /// Sends `messages` in order, each as [`WebSocket::send`] would, as one
    /// burst: with `Driver::Shared` the connection is locked once for up
    /// to 256 that fit in its output queue rather than once per message,
    /// and they go out together. It waits for room as `send` does when the
    /// queue fills, holding one message in hand as `send` holds its own.
    /// Cancelled, the messages queued so far go out, the one in hand and
    /// the rest are not sent; an error stops it there (those queued before
    /// go out). With `Driver::Shared` the iterator runs under the
    /// connection's lock: it must be cheap and must not call into this
    /// connection (its other half included).
    ///
    /// For answers to a burst of received messages: send them before
    /// asking for the next event that could be the peer's Close, which is
    /// answered once the application asks past the messages before it
    /// (sends after that fail, as `send`s do).
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    pub fn send_many<'a, I>(
        &'a mut self,
        messages: I,
    ) -> impl Future<Output = Result<(), Error>> + 'a
    where
        I: IntoIterator<Item = Message>,
        I::IntoIter: 'a,
    {
        Burst::new(self.sender(), messages.into_iter())
    }

    /// Sends one fragment of a message (see `tether::Connection::send_fragment`).
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        Queue::new(
            self.sender(),
            "send a fragment",
            Once(Some(move |c: &mut tether::Connection| {
                c.send_fragment(kind, data, fin)
            })),
        )
    }

    /// Sends a Ping.
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    pub fn ping(&mut self, payload: Bytes) -> impl Future<Output = Result<(), Error>> + '_ {
        Queue::new(
            self.sender(),
            "ping",
            Once(Some(|c: &mut tether::Connection| c.ping(payload))),
        )
    }

    /// Sends a Pong (an unsolicited heartbeat, or an answer with auto-pong off).
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    pub fn pong(&mut self, payload: Bytes) -> impl Future<Output = Result<(), Error>> + '_ {
        Queue::new(
            self.sender(),
            "pong",
            Once(Some(|c: &mut tether::Connection| c.pong(payload))),
        )
    }

    /// Closes with `code` and `reason` and waits until the connection has
    /// ended (the peer answered, the close timeout passed, or the transport
    /// failed). Messages that arrive meanwhile stay readable. The
    /// transport is then closed when the core says (a client first waits
    /// for the server's FIN, within `Config::fin_wait`, RFC 6455 section
    /// 7.1.1): with `Driver::Owner` before `close` returns, since nobody
    /// drives the connection after it; with the shared driver by its
    /// background task.
    ///
    /// # Errors
    /// The core's refusal (e.g. a code that may not be sent).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, Error> {
        match &mut self.handles {
            Handles::Shared { sink, .. } => sink.close(code, reason).await,
            Handles::Owned(owned) => {
                tether::CloseFrame::check(code, reason).map_err(|e| Error::Misuse(e.into()))?;
                owned.start_close(code, reason)?;
                std::future::poll_fn(|cx| owned.poll_end(cx)).await;
                owned.close_info().ok_or(Error::Closed(None))
            }
        }
    }

    fn sender(&mut self) -> Sender<'_> {
        match &mut self.handles {
            Handles::Shared { sink, .. } => Sender::Shared(sink),
            Handles::Owned(owned) => Sender::Owned(owned),
        }
    }
}

impl WsSink {
    /// Ends the connection at once; see [`WebSocket::abort`].
    pub fn abort(&self) {
        abort(&self.shared);
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        self.shared.lock().conn.state()
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.shared.lock().final_info()
    }

    /// Completes once the connection has ended (its final event decided,
    /// our last bytes written or dropped), without driving it or taking
    /// anything from it: for a task that leaves the reading to the
    /// background task meanwhile (the reconnecting client's supervisor,
    /// while a received message waits for the application's room).
    pub(crate) fn ended(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            let inner = self.shared.lock();
            if inner.ended() {
                drop(inner);
                self.shared.wakers.unregister(Party::Writer);
                return Poll::Ready(());
            }
            // registered under the lock every drive holds, so the drive
            // that ends the connection wakes this waker
            self.shared.wakers.register(Party::Writer, cx.waker());
            Poll::Pending
        })
    }

    /// Waits for room in the output queue (writing meanwhile), then applies
    /// `op` to the core and starts writing.
    /// One lock of the connection when there is room (the common case): the
    /// room check and `op` happen under the same lock.
    fn queue<F>(&mut self, operation: &'static str, op: F) -> Queue<'_, Once<F>>
    where
        F: FnOnce(&mut tether::Connection) -> Result<(), tether::Error>,
    {
        Queue::new(Sender::Shared(self), operation, Once(Some(op)))
    }

    /// After queuing output: when the application has no received messages
    /// waiting, write now (just the write while the connection is simply
    /// open, `Shared::write_now`; a whole drive when that is not enough);
    /// otherwise the answers go out together once it
    /// has read them (or, if it stops reading, from the background task).
    /// The last answer to a batch of received messages also waits when the
    /// background task is already due to drive for the earlier ones: the
    /// application's next read (or else that drive) writes them all, so a
    /// read-answer loop makes one drive per batch, not two.
    fn start_writing(&self, inner: &mut Inner, cx: &Context<'_>) {
        if inner.has_unread() {
            self.shared.wakers.wake_background();
        } else if !self.shared.wakers.kicked() && !self.shared.write_now(inner) {
            self.shared.drive(inner, Party::Writer, cx, false);
            self.shared.wakers.unregister(Party::Writer);
        }
    }

    /// Ready when the connection accepts more output (or has ended: the
    /// error says how); the next `start_send` is then admitted whatever
    /// the connection queues of its own before it comes (another party may
    /// drive in between and queue a Pong).
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = self.shared.lock();
        self.room(&mut inner, cx, "send", &mut false)?;
        if !inner.conn.can_send() {
            return Poll::Pending;
        }
        inner.sink_admitted = true;
        self.shared.wakers.unregister(Party::Writer);
        Poll::Ready(Ok(()))
    }

    /// Checks the connection can still send; when its output queue is
    /// full, drives (writing) as the writer, registered to be woken, and
    /// notes that in `waited`.
    fn room(
        &self,
        inner: &mut Inner,
        cx: &mut Context<'_>,
        operation: &'static str,
        waited: &mut bool,
    ) -> Result<(), Error> {
        check(inner, operation)?;
        if !inner.conn.can_send() {
            *waited = true;
            self.shared.drive(inner, Party::Writer, cx, true);
            check(inner, operation)?;
        }
        Ok(())
    }

    /// Sends a message, waiting while the output queue is full.
    ///
    /// # Errors
    /// See [`WebSocket::send`].
    pub fn send(&mut self, message: Message) -> impl Future<Output = Result<(), Error>> + '_ {
        Queue::new(Sender::Shared(self), "send", SendMessage(message))
    }

    /// Sends `messages` as one burst; see [`WebSocket::send_many`].
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    pub fn send_many<'a, I>(
        &'a mut self,
        messages: I,
    ) -> impl Future<Output = Result<(), Error>> + 'a
    where
        I: IntoIterator<Item = Message>,
        I::IntoIter: 'a,
    {
        Burst::new(Sender::Shared(self), messages.into_iter())
    }

    /// Sends one fragment of a message.
    ///
    /// # Errors
    /// See [`WebSocket::send`].
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        self.queue("send a fragment", move |c| c.send_fragment(kind, data, fin))
    }

    /// Sends a Ping.
    ///
    /// # Errors
    /// See [`WebSocket::send`].
    pub fn ping(&mut self, payload: Bytes) -> impl Future<Output = Result<(), Error>> + '_ {
        self.queue("ping", |c| c.ping(payload))
    }

    /// Sends a Pong.
    ///
    /// # Errors
    /// See [`WebSocket::send`].
    pub fn pong(&mut self, payload: Bytes) -> impl Future<Output = Result<(), Error>> + '_ {
        self.queue("pong", |c| c.pong(payload))
    }

    /// Waits until everything sent so far is written to the transport.
    ///
    /// # Errors
    /// [`Error::Closed`] when the connection ended first.
    pub async fn flush(&mut self) -> Result<(), Error> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    /// Closes and waits for the end; see [`WebSocket::close`].
    ///
    /// # Errors
    /// The core's refusal (e.g. a code that may not be sent).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, Error> {
        tether::CloseFrame::check(code, reason).map_err(|e| Error::Misuse(e.into()))?;
        {
            let mut inner = self.shared.lock();
            // closing twice, or after the end, is not an error for a handle
            if matches!(inner.conn.state(), State::Open | State::CloseReceived) {
                let now = tokio::time::Instant::now().into_std();
                inner.conn.close(now, code, reason).map_err(Error::Misuse)?;
            }
        }
        std::future::poll_fn(|cx| self.poll_end(cx)).await;
        self.shared.lock().final_info().ok_or(Error::Closed(None))
    }

    /// Drives until the connection has ended and our last bytes are out.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.shared.lock();
        if !inner.ended() {
            self.shared.drive(&mut inner, Party::Writer, cx, true);
            if !inner.ended() {
                return Poll::Pending;
            }
        }
        self.shared.wakers.unregister(Party::Writer);
        Poll::Ready(())
    }
}

/// Ends the connection at once, and lets every waiting party see it.
fn abort(shared: &Shared) {
    shared.lock().abort("aborted by the application");
    shared.wake_all();
    shared.wakers.wake_background();
}

/// What a [`Queue`] sends through.
enum Sender<'a> {
    Shared(&'a mut WsSink),
    Owned(&'a mut Owned),
}

/// The future of [`WsSink::send`] and its kin: a named type rather than an
/// `async fn` chain, so an application task that awaits a send carries
/// its message once (each `async` layer kept its own copy: 272 bytes, now
/// the size of this struct), for the connection's whole life.
struct Queue<'a, O> {
    sender: Sender<'a>,
    operation: &'static str,
    /// The operation on the core, applied once there is room.
    op: O,
    /// `op` has been applied.
    applied: bool,
    /// Registered as the writer while the queue was full.
    waited: bool,
}

/// An operation on the core that a [`Queue`] applies once (the queue
/// keeps count).
pub(crate) trait Op {
    /// Applies it; called at most once.
    fn apply(&mut self, conn: &mut tether::Connection) -> Result<(), tether::Error>;
}

/// Any operation, as a closure.
pub(crate) struct Once<F>(Option<F>);

impl<F> Op for Once<F>
where
    F: FnOnce(&mut tether::Connection) -> Result<(), tether::Error>,
{
    #[inline]
    fn apply(&mut self, conn: &mut tether::Connection) -> Result<(), tether::Error> {
        self.0.take().map_or(Ok(()), |op| op(conn))
    }
}

/// A send: the message is moved out whole, tag and payload together.
/// Held as `Option<Message>` (or in a closure inside one), it was moved
/// out by its payload alone after the tag was read, at an offset that
/// straddled the stores that put it there, and stalled on store
/// forwarding (2.5% of a 16-byte echo).
pub(crate) struct SendMessage(Message);

impl Op for SendMessage {
    #[inline]
    fn apply(&mut self, conn: &mut tether::Connection) -> Result<(), tether::Error> {
        let message = core::mem::replace(&mut self.0, Message::binary(tether::Payload::new()));
        conn.send(message)
    }
}

impl<'a, O: Op> Queue<'a, O> {
    fn new(sender: Sender<'a>, operation: &'static str, op: O) -> Self {
        Self {
            sender,
            operation,
            op,
            applied: false,
            waited: false,
        }
    }
}

// `op` is only moved out, never pinned.
impl<O> Unpin for Queue<'_, O> {}

impl<O: Op> Future for Queue<'_, O> {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let sink = match &mut this.sender {
            Sender::Shared(sink) => &**sink,
            Sender::Owned(owned) => {
                return owned.poll_queue(cx, this.operation, &mut this.op, &mut this.applied);
            }
        };
        let mut inner = sink.shared.lock();
        let result = match sink.room(&mut inner, cx, this.operation, &mut this.waited) {
            Err(e) => Err(e),
            Ok(()) if !inner.conn.can_send() => return Poll::Pending,
            Ok(()) => match apply_once(&mut this.op, &mut this.applied, &mut inner.conn) {
                Ok(()) => {
                    sink.start_writing(&mut inner, cx);
                    Ok(())
                }
                Err(e) => Err(Error::Misuse(e)),
            },
        };
        drop(inner);
        if this.waited {
            // registered while the queue was full: no longer waiting
            sink.shared.wakers.unregister(Party::Writer);
        }
        Poll::Ready(result)
    }
}

/// The future of [`WebSocket::send_many`]: each message as a [`Queue`]
/// would send it, the shared connection locked once for as many as fit
/// (up to [`BURST_PER_LOCK`]).
struct Burst<'a, It> {
    sender: Sender<'a>,
    messages: It,
    /// The message in hand, taken from `messages` and waiting for room
    /// (as a `send` holds its own): only one at a time.
    next: Option<Message>,
    /// The owner driver queued messages without a write: what is left is
    /// `send`'s wait for them to be written.
    finishing: bool,
    /// Registered as the writer while the queue was full.
    waited: bool,
}

/// At most this many messages per hold of the shared connection's lock:
/// a long burst on a socket that takes everything lets the reader and the
/// background task in between.
const BURST_PER_LOCK: usize = 256;

// `messages` is only advanced, never pinned.
impl<It> Unpin for Burst<'_, It> {}

impl<'a, It: Iterator<Item = Message>> Burst<'a, It> {
    fn new(sender: Sender<'a>, messages: It) -> Self {
        Self {
            sender,
            messages,
            next: None,
            finishing: false,
            waited: false,
        }
    }
}

impl<It: Iterator<Item = Message>> Future for Burst<'_, It> {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let sink = match &mut this.sender {
            // every message queued without a write, then `send`'s wait for
            // the write (with messages still unread, none: one write per
            // burst, at the next read)
            Sender::Owned(owned) => loop {
                if this.finishing {
                    let mut nothing =
                        Once(None::<fn(&mut tether::Connection) -> Result<(), tether::Error>>);
                    return owned.poll_queue(cx, "send", &mut nothing, &mut true);
                }
                let Some(message) = this.next.take().or_else(|| this.messages.next()) else {
                    this.finishing = true;
                    continue;
                };
                match owned.poll_room(cx, "send") {
                    Poll::Ready(Ok(())) => owned.start_send(message)?,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        this.next = Some(message);
                        return Poll::Pending;
                    }
                }
            },
            Sender::Shared(sink) => &**sink,
        };
        let mut inner = sink.shared.lock();
        let mut queued = 0;
        let result = loop {
            let Some(message) = this.next.take().or_else(|| this.messages.next()) else {
                break Ok(());
            };
            // room for it: when the queue is full, `room` drove as the
            // writer (writing what this burst queued) and registered it
            if let Err(e) = sink.room(&mut inner, cx, "send", &mut this.waited) {
                break Err(e);
            }
            if !inner.conn.can_send() {
                this.next = Some(message);
                return Poll::Pending;
            }
            if let Err(e) = inner.conn.send(message) {
                break Err(Error::Misuse(e));
            }
            queued += 1;
            if queued == BURST_PER_LOCK {
                // the rest after the others had their turn at the lock
                sink.start_writing(&mut inner, cx);
                drop(inner);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        };
        if queued > 0 {
            sink.start_writing(&mut inner, cx);
        }
        drop(inner);
        if this.waited {
            // registered while the queue was full: no longer waiting
            sink.shared.wakers.unregister(Party::Writer);
        }
        Poll::Ready(result)
    }
}

/// Applies `op` unless `applied` says it was.
#[inline]
pub(crate) fn apply_once(
    op: &mut impl Op,
    applied: &mut bool,
    conn: &mut tether::Connection,
) -> Result<(), tether::Error> {
    if core::mem::replace(applied, true) {
        return Ok(());
    }
    op.apply(conn)
}

/// The error for `operation` when it cannot go ahead: a state that allows no
/// sending.
#[inline]
pub(crate) fn check(inner: &mut Inner, operation: &'static str) -> Result<(), Error> {
    inner
        .conn
        .check_send(operation)
        .map_err(|refused| refusal(inner, refused))
}

/// [`check`]'s error, out of the way of every send that needs none: the end,
/// with how it came (as the blocking adapter reports it), or the core's
/// refusal, which names the state and why it was left.
#[cold]
fn refusal(inner: &mut Inner, refused: tether::Error) -> Error {
    if inner.conn.state().is_terminal()
        // the transport failed: the connection is ending (how, its final
        // event will say), as a failure met in a drive is reported
        || matches!(refused, tether::Error::TransportFailed { .. })
    {
        Error::Closed(inner.final_info())
    } else {
        Error::Misuse(refused)
    }
}

impl Drop for WsSink {
    fn drop(&mut self) {
        self.shared.lock().sink = SinkState::Gone;
        // its waker, if it waited, would be woken (and kept) for nothing
        self.shared.wakers.unregister(Party::Writer);
        self.shared.wakers.wake_background();
    }
}

impl Sink<Message> for WsSink {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_room(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        let mut inner = self.shared.lock();
        // after the end, the same error as `send` and `poll_ready`
        check(&mut inner, "send")?;
        let was_idle = !inner.conn.has_output();
        let sent = if std::mem::take(&mut inner.sink_admitted) {
            inner.conn.send_admitted(item)
        } else {
            inner.conn.send(item)
        };
        sent.map_err(Error::Misuse)?;
        // poll_flush writes; until the application calls it, the background
        // task does
        if was_idle {
            self.shared.wakers.wake_background();
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = self.shared.lock();
        if !inner.flushed() {
            self.shared.drive(&mut inner, Party::Writer, cx, true);
        }
        if inner.discarded {
            self.shared.wakers.unregister(Party::Writer);
            return Poll::Ready(Err(Error::Closed(inner.final_info())));
        }
        if inner.flushed() {
            self.shared.wakers.unregister(Party::Writer);
            return Poll::Ready(Ok(()));
        }
        if inner.is_finished() {
            self.shared.wakers.unregister(Party::Writer);
            return Poll::Ready(Err(Error::Closed(inner.final_info())));
        }
        Poll::Pending
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        {
            let mut inner = self.shared.lock();
            if inner.sink == SinkState::Closed {
                // the same answer as the call that closed it
                return Poll::Ready(if inner.discarded {
                    Err(Error::Closed(inner.final_info()))
                } else {
                    Ok(())
                });
            }
            if matches!(inner.conn.state(), State::Open | State::CloseReceived) {
                let now = tokio::time::Instant::now().into_std();
                let _ = inner.conn.close(now, CloseCode::NORMAL, "");
            }
        }
        if self.poll_end(cx).is_pending() {
            return Poll::Pending;
        }
        // done: later calls return at once and send no second Close
        let mut inner = self.shared.lock();
        inner.sink = SinkState::Closed;
        // what was sent but given up never went out: not a close that
        // flushed (as `poll_flush` says)
        if inner.discarded {
            return Poll::Ready(Err(Error::Closed(inner.final_info())));
        }
        Poll::Ready(Ok(()))
    }
}

impl WsStream {
    /// The connection's state.
    pub fn state(&self) -> State {
        self.shared.lock().conn.state()
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.shared.lock().final_info()
    }

    /// The next event: a message, a Ping or Pong (already answered when
    /// auto-pong is on; may be dropped when the application lags, since
    /// they need no action), or the final [`Event::Closed`]. `None` after
    /// the end. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if self.batch.is_some() && self.shared.wakers.void_batch.load(Ordering::Acquire) {
            // evicted (1013) meanwhile: the batch goes unread, as the
            // queue did (its charge was already given back)
            let mut inner = self.shared.lock();
            if self.shared.wakers.void_batch.swap(false, Ordering::AcqRel) {
                inner.end_batch(&mut self.batch);
            }
        }
        // the batch taken last time, without the lock (but for its last
        // event, whose taking releases the batch's charge: what the
        // application has read is no longer unread)
        if let Some(batch) = self.batch.as_deref_mut() {
            if batch.close_after == Some(0) {
                // everything before the peer's Close has been read (and
                // answered), and the application came back: answer it
                batch.close_after = None;
                let mut inner = self.shared.lock();
                inner.reply = Reply::Due;
                if batch.events.is_empty() {
                    inner.end_batch(&mut self.batch);
                }
                drop(inner);
                return self.poll_event(cx);
            }
            if let Some(event) = batch.events.pop_front() {
                if let Some(before) = &mut batch.close_after {
                    *before -= 1;
                }
                if batch.events.is_empty() {
                    let mut inner = self.shared.lock();
                    if batch.close_after.is_some() {
                        // the peer's Close waits behind this last event:
                        // the mark goes back to the (otherwise empty)
                        // queue, and the batch's charge goes now
                        inner.reply = Reply::Marked;
                    }
                    inner.end_batch(&mut self.batch);
                }
                return Poll::Ready(Some(event));
            }
        }
        let mut inner = self.shared.lock();
        let mut drove = false;
        loop {
            // no batch out: nothing to void (what an eviction, even in the
            // drive just done, left queued is the end, to be read)
            self.shared
                .wakers
                .void_batch
                .store(false, Ordering::Release);
            if inner.take_items(&mut self.batch) {
                inner.reader_caught_up = false;
                if drove {
                    self.shared.wakers.unregister(Party::Reader);
                }
                drop(inner);
                return self.poll_event(cx);
            }
            if inner.is_finished() {
                self.shared.wakers.unregister(Party::Reader);
                return Poll::Ready(None);
            }
            if drove {
                return Poll::Pending;
            }
            if inner.conn.turn_spent() && !self.turn_yielded {
                // the last drive had its turn (a Ping flood, or large
                // messages arriving without pause): the runtime's other
                // tasks run first, as with the owner driver; a reader
                // that skips Pings must not drive turn after turn in one
                // poll
                self.turn_yielded = true;
                crate::driver::yield_to_runtime(cx);
                return Poll::Pending;
            }
            self.turn_yielded = false;
            inner.reader_caught_up = true;
            self.shared.drive(&mut inner, Party::Reader, cx, true);
            drove = true;
        }
    }

    /// The next message. Cancel-safe. See the [`Stream`] impl.
    pub async fn next_message(&mut self) -> Option<Result<Message, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Drop for WsStream {
    fn drop(&mut self) {
        {
            self.batch = None;
            // nobody will read what is queued: a pending Close is answered
            self.shared.lock().stream_dropped();
        }
        self.shared.wakers.unregister(Party::Reader);
        self.shared.wakers.wake_background();
    }
}

impl Stream for WsStream {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        // The common case, without a call: a message of the batch taken
        // last time that is not its last (whose taking goes through the
        // lock), with no Close waiting behind the batch and no eviction.
        let this = &mut *self;
        if let Some(batch) = this.batch.as_deref_mut()
            && batch.close_after.is_none()
            && batch.events.len() > 1
            && matches!(batch.events.front(), Some(Event::Message(_)))
            && !this.shared.wakers.void_batch.load(Ordering::Acquire)
            && let Some(Event::Message(m)) = batch.events.pop_front()
        {
            return Poll::Ready(Some(Ok(m)));
        }
        let mut skipped = false;
        loop {
            if skipped && self.batch.is_none() {
                // Pings or Pongs skipped, and the next event needs the
                // connection again (a drive, at least its lock): one batch
                // per poll, as with the owner driver, so a Ping flood (each
                // answered) lets the runtime's other tasks run
                crate::driver::yield_to_runtime(cx);
                return Poll::Pending;
            }
            let event = ready!(self.poll_event(cx));
            if let Some(item) = message_of(event, &mut self.ended) {
                return Poll::Ready(item);
            }
            skipped = true;
        }
    }
}

/// What the message stream makes of an event: a message, the end (`None`,
/// or an unclean end's error, once), or nothing (a Ping or Pong: read on).
pub(crate) fn message_of(
    event: Option<Event>,
    ended: &mut bool,
) -> Option<Option<Result<Message, Error>>> {
    match event {
        Some(Event::Message(m)) => Some(Some(Ok(m))),
        Some(Event::Ping(_) | Event::Pong(_)) => None,
        Some(Event::Closed(info)) => {
            *ended = true;
            if info.was_clean {
                Some(None)
            } else {
                Some(Some(Err(Error::Closed(Some(info)))))
            }
        }
        None => {
            *ended = true;
            Some(None)
        }
    }
}

impl Stream for WebSocket {
    type Item = Result<Message, Error>;

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.handles {
            Handles::Shared { stream, .. } => Pin::new(stream).poll_next(cx),
            Handles::Owned(owned) => owned.poll_message(cx),
        }
    }
}

impl Sink<Message> for WebSocket {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match &mut self.handles {
            Handles::Shared { sink, .. } => Pin::new(sink).poll_ready(cx),
            Handles::Owned(owned) => owned.poll_room(cx, "send"),
        }
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        match &mut self.handles {
            Handles::Shared { sink, .. } => Pin::new(sink).start_send(item),
            Handles::Owned(owned) => owned.start_send(item),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match &mut self.handles {
            Handles::Shared { sink, .. } => Pin::new(sink).poll_flush(cx),
            Handles::Owned(owned) => owned.poll_flush(cx),
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match &mut self.handles {
            Handles::Shared { sink, .. } => Pin::new(sink).poll_close(cx),
            Handles::Owned(owned) => owned.poll_close(cx),
        }
    }
}
