//! One owner: a connection driven only by the task that holds its
//! [`WebSocket`](crate::WebSocket) ([`Driver::Owner`](crate::Driver::Owner)).
//!
//! The same [`Inner`] and the same drive as the shared driver (so the same
//! decisions, all the core's), without what sharing costs: no lock, no
//! waker slots, no background task. The transport and the timer are polled
//! with the owner's own waker, so the task that awaits `next()` is woken by
//! input and by the core's deadlines (a Ping is answered, a keep-alive goes
//! out, the close timeout fires while it waits). Nothing moves while that
//! task does something else: that is the price of this mode, as with
//! tokio-websockets or the blocking adapter.
//!
//! When the owner lets go, the connection is handed to the shared driver:
//! split, its halves work as any shared connection's; dropped unfinished,
//! its background task finishes it (leaving with 1001, as when both halves
//! are dropped). A connection the owner keeps but no longer polls moves no
//! further: after `close()` returned (the closing handshake done), a
//! client's transport is shut down by its next poll or by the drop.

use std::task::{Context, Poll};

use tether::{CloseCode, CloseInfo, Event, Message, State};

use crate::Error;
use crate::driver::{Inner, Shared, SinkState};
use crate::socket::{Op, apply_once};

/// A connection and the runtime it started in (to hand it to a background
/// task when the owner lets go).
pub(crate) struct Owned {
    /// Always `Some` while the owner holds it: taken only when it is
    /// handed over ([`Owned::into_shared`], `Drop`), after which no method
    /// runs. On the heap, with the runtime, so the application's task
    /// carries a pointer for them.
    held: Option<Box<Held>>,
    /// The message stream has ended (`None` delivered).
    pub(crate) ended: bool,
    /// `Sink::poll_close` completed: later calls return at once.
    sink_closed: bool,
}

/// What the owner holds on the heap.
struct Held {
    inner: Inner,
    runtime: tokio::runtime::Handle,
    /// `poll_event` let the runtime run after a drive that spent its turn.
    turn_yielded: bool,
    /// A send went out since the application last asked for the next
    /// message or event: the next send that writes at once also reads
    /// what has arrived (an application that only sends still answers
    /// Pings; one that reads between its sends reads there).
    sent_since_read: bool,
}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owned").finish_non_exhaustive()
    }
}

impl Owned {
    pub(crate) fn new(inner: Inner, runtime: tokio::runtime::Handle) -> Self {
        Self {
            held: Some(Box::new(Held {
                inner,
                runtime,
                turn_yielded: false,
                sent_since_read: false,
            })),
            ended: false,
            sink_closed: false,
        }
    }

    #[inline]
    fn held(&mut self) -> &mut Held {
        self.held.as_deref_mut().unwrap_or_else(let_go)
    }

    #[inline]
    fn inner(&mut self) -> &mut Inner {
        &mut self.held().inner
    }

    /// Hands the connection to the shared driver (for `split`).
    pub(crate) fn into_shared(mut self) -> std::sync::Arc<Shared> {
        let held = self.held.take().unwrap_or_else(let_go);
        Shared::adopt(held.inner, held.runtime)
    }

    pub(crate) fn state(&self) -> State {
        let held = self.held.as_deref().unwrap_or_else(let_go);
        held.inner.conn.state()
    }

    pub(crate) fn close_info(&self) -> Option<CloseInfo> {
        let held = self.held.as_deref().unwrap_or_else(let_go);
        held.inner.final_info()
    }

    /// Ends the connection at once and shuts the transport down now
    /// ([`Inner::shut_now`]; a shutdown that would wait is finished by the
    /// next drive).
    pub(crate) fn abort(&mut self) {
        let inner = self.inner();
        inner.abort("aborted by the application");
        // the transport closes now, as the shared driver's background task
        // closes it, not at the owner's next poll
        inner.shut_now();
    }

    /// The next event: what is already queued, else a drive (reading,
    /// writing, running due timers) with the owner's waker registered.
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let Held {
            inner,
            turn_yielded,
            sent_since_read,
            ..
        } = self.held();
        *sent_since_read = false;
        // the application came back: a Close behind what it read is answered
        inner.owner_came_back();
        let mut drove = false;
        loop {
            if !inner.end_waits_for_transport()
                && let Some(event) = inner.pop_item()
            {
                return Poll::Ready(Some(event));
            }
            if inner.is_finished() {
                return Poll::Ready(None);
            }
            if drove {
                return Poll::Pending;
            }
            if inner.conn.turn_spent() && !*turn_yielded {
                // the last drive had its turn (a flood, or large messages
                // arriving without pause): let the runtime's other tasks
                // run first, as the shared driver does
                *turn_yielded = true;
                crate::driver::yield_to_runtime(cx);
                return Poll::Pending;
            }
            *turn_yielded = false;
            inner.reader_caught_up = true;
            inner.drive_to_events(cx);
            drove = true;
        }
    }

    /// The next message (Pings and Pongs skipped), the end as `None`, an
    /// unclean end as its error.
    #[inline]
    pub(crate) fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let mut drove = false;
        self.held().sent_since_read = false;
        loop {
            // the common case, straight from the queue
            let inner = self.inner();
            if let Some(message) = inner.pop_message() {
                return Poll::Ready(Some(Ok(message)));
            }
            // the next event needs a drive (nothing queued, or only the end
            // waiting for the transport): one per poll, so a turn's worth
            // of Pings (answered, skipped here) does not keep this task
            // from letting the runtime's others run
            if inner.items.is_empty() || inner.end_waits_for_transport() {
                if drove {
                    crate::driver::yield_to_runtime(cx);
                    return Poll::Pending;
                }
                drove = true;
            }
            let event = match self.poll_event(cx) {
                Poll::Ready(event) => event,
                Poll::Pending => return Poll::Pending,
            };
            if let Some(item) = crate::socket::message_of(event, &mut self.ended) {
                return Poll::Ready(item);
            }
        }
    }

    /// Applies `op` once there is room, then writes, as `send` does: with
    /// received messages still unread, the answers wait for the read that
    /// finds none (one write per burst); otherwise it waits until
    /// everything queued reached the transport, reading what has arrived
    /// (within `Config::max_unread_bytes`, so Pings are answered while the
    /// application only sends, and two owners sending at each other do not
    /// both wait forever). Unread Pings and
    /// Pongs (already answered) hold nothing back. An error when what was
    /// queued was given up (a failed write: the connection reads on to its
    /// end, nothing more is sent).
    #[inline]
    pub(crate) fn poll_queue<O: Op>(
        &mut self,
        cx: &mut Context<'_>,
        operation: &'static str,
        op: &mut O,
        applied: &mut bool,
    ) -> Poll<Result<(), Error>> {
        let pending = !*applied;
        if pending {
            match self.poll_room(cx, operation) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let Held {
            inner,
            sent_since_read,
            ..
        } = self.held();
        if pending {
            apply_once(op, applied, &mut inner.conn).map_err(Error::Misuse)?;
            if inner.has_unread_messages() {
                return Poll::Ready(Ok(()));
            }
            if inner.write_now(cx) {
                // out. An application that sends again without reading in
                // between takes in what has arrived here, without waiting,
                // so a Ping is answered (and a keep-alive's Pong seen)
                // while it only sends, as the blocking adapter's send does
                if core::mem::replace(sent_since_read, true) {
                    inner.drive(cx, true);
                }
                return Poll::Ready(Ok(()));
            }
        }
        if !(inner.has_unread_messages() || inner.flushed()) {
            inner.drive(cx, true);
        }
        if inner.discarded {
            return Poll::Ready(Err(Error::Closed(inner.final_info())));
        }
        if inner.has_unread_messages() || inner.flushed() {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// Ready when the connection accepts more output (`Sink::poll_ready`,
    /// and a send before it applies its operation).
    #[inline]
    pub(crate) fn poll_room(
        &mut self,
        cx: &mut Context<'_>,
        operation: &'static str,
    ) -> Poll<Result<(), Error>> {
        let inner = self.inner();
        crate::socket::check(inner, operation)?;
        if !inner.conn.can_send() {
            inner.drive(cx, true);
            crate::socket::check(inner, operation)?;
            if !inner.conn.can_send() {
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Queues a message without writing (`Sink::start_send`).
    pub(crate) fn start_send(&mut self, message: Message) -> Result<(), Error> {
        let inner = self.inner();
        // after the end, the same error as `send` and `poll_ready`
        crate::socket::check(inner, "send")?;
        inner.conn.send(message).map_err(Error::Misuse)
    }

    /// Writes until everything sent so far reached the transport.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let inner = self.inner();
        if !inner.flushed() {
            inner.drive(cx, true);
        }
        if inner.discarded {
            return Poll::Ready(Err(Error::Closed(inner.final_info())));
        }
        if inner.flushed() {
            return Poll::Ready(Ok(()));
        }
        if inner.is_finished() {
            return Poll::Ready(Err(Error::Closed(inner.final_info())));
        }
        Poll::Pending
    }

    /// Closes with 1000 and drives to the end (`Sink::poll_close`); an
    /// error when output sent before was given up instead of written.
    pub(crate) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.sink_closed {
            // the same answer as the call that closed it
            let inner = self.inner();
            return Poll::Ready(if inner.discarded {
                Err(Error::Closed(inner.final_info()))
            } else {
                Ok(())
            });
        }
        // 1000 with no reason is always a valid Close
        let _ = self.start_close(CloseCode::NORMAL, "");
        if self.poll_end(cx).is_pending() {
            return Poll::Pending;
        }
        // done: later calls return at once and send no second Close
        self.sink_closed = true;
        // what was sent but given up never went out: not a close that
        // flushed (as `poll_flush` says)
        let inner = self.inner();
        if inner.discarded {
            return Poll::Ready(Err(Error::Closed(inner.final_info())));
        }
        Poll::Ready(Ok(()))
    }

    /// Closes with `code` and `reason`, without waiting.
    pub(crate) fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let inner = self.inner();
        // closing twice, or after the end, is not an error for a handle
        if matches!(inner.conn.state(), State::Open | State::CloseReceived) {
            let now = tokio::time::Instant::now().into_std();
            inner.conn.close(now, code, reason).map_err(Error::Misuse)?;
        }
        Ok(())
    }

    /// Drives until the connection is finished: ended, our last bytes
    /// out, and the transport closed when the core says (a client after
    /// the server's FIN or `Config::fin_wait`, RFC 6455 section 7.1.1).
    /// Nobody drives an owner's connection after `close` returns, so it
    /// cannot return at the handshake's end, as the shared driver's does
    /// (its background task finishes the rest); this is how the blocking
    /// adapter's `close` returns too.
    pub(crate) fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let inner = self.inner();
        if !inner.is_finished() {
            inner.drive(cx, true);
            if !inner.is_finished() {
                return Poll::Pending;
            }
        }
        Poll::Ready(())
    }
}

impl Drop for Owned {
    /// An unfinished connection goes to a background task, as when both
    /// halves of a shared one are dropped: nobody reads (a Close waiting
    /// behind unread items is answered), nobody sends (it leaves with
    /// 1001), and the closing handshake runs to its end.
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        let Held {
            mut inner, runtime, ..
        } = *held;
        if inner.is_finished() {
            return;
        }
        inner.stream_dropped();
        inner.sink = SinkState::Gone;
        // the spawned task holds the connection until it ends
        drop(Shared::adopt(inner, runtime));
    }
}

/// The connection is taken only when the owner lets go (`split`, `Drop`),
/// after which no method runs.
#[cold]
fn let_go<T>() -> T {
    unreachable!("the connection is taken only when the owner lets go")
}
