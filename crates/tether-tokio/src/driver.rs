//! The driver: one task per connection that owns the transport and the
//! sans-IO core, and only moves bytes and time between them.
//!
//! Owning both in one task is what makes the known failures of other stacks
//! impossible here: a Pong or keep-alive frame is written as soon as the core
//! queues it (whatever the application is doing), a write that would block
//! is retried when the socket becomes writable, the closing handshake runs to
//! its end without the application polling, and an I/O error ends the
//! connection instead of leaving a caller looping. The driver holds no
//! protocol logic: every decision is the core's.

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tether::{CloseCode, CloseInfo, Connection, Event, Message, MessageKind, Role, State};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::PollSender;

/// Bytes read from the transport per read.
const READ_CHUNK: usize = 64 * 1024;

/// How long a client waits, after the closing handshake, for the server to
/// close TCP first (RFC 6455 section 7.1.1) before closing it itself.
const CLIENT_FIN_WAIT: Duration = Duration::from_secs(2);

/// What a handle asks the driver to do.
#[derive(Debug)]
pub(crate) enum Command {
    Send(Message),
    Fragment(MessageKind, Bytes, bool),
    Ping(Bytes),
    Pong(Bytes),
    /// Close, and answer `done` once the connection has ended.
    Close(CloseCode, String, Option<oneshot::Sender<CloseInfo>>),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// What the driver hands to the application's stream half.
#[derive(Debug)]
pub(crate) enum Item {
    Event(Event),
    /// The peer's Close arrived after every item before this one: once the
    /// application has read up to here (and sent its answers), the driver
    /// answers the Close.
    PeerClosed,
}

/// Requests that must not wait behind queued output.
#[derive(Debug)]
pub(crate) enum Control {
    /// The application has read everything before the peer's Close.
    ReplyClose,
    /// End now, without a closing handshake.
    Abort(String),
}

/// State the handles can read without asking the driver.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) close_info: Mutex<Option<CloseInfo>>,
    /// The last operation the core refused (reported by the next send).
    pub(crate) refused: Mutex<Option<tether::Error>>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::Open),
            close_info: Mutex::new(None),
            refused: Mutex::new(None),
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state.lock().map_or(State::Aborted, |s| *s)
    }

    pub(crate) fn close_info(&self) -> Option<CloseInfo> {
        self.close_info.lock().ok().and_then(|c| c.clone())
    }

    pub(crate) fn take_refused(&self) -> Option<tether::Error> {
        self.refused.lock().ok().and_then(|mut r| r.take())
    }
}

pub(crate) struct Driver<S> {
    io: S,
    conn: Connection,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    events: mpsc::Sender<Item>,
    /// The same channel, for waiting on room without spinning.
    reserve: PollSender<Item>,
    control: mpsc::UnboundedReceiver<Control>,
    /// The application asked to answer the peer's Close; done once the
    /// commands it sent before are applied.
    reply_close: bool,
    /// The `PeerClosed` marker went to the application.
    marker_sent: bool,
    /// A message or the final event waiting for room in the channel; while
    /// it waits, nothing more is read (backpressure to the peer).
    pending: Option<Item>,
    read_open: bool,
    timer: Pin<Box<Sleep>>,
    flushes: Vec<oneshot::Sender<()>>,
    closers: Vec<oneshot::Sender<CloseInfo>>,
    shared: Arc<Shared>,
    /// When a client that finished the closing handshake stops waiting for
    /// the server's FIN.
    fin_deadline: Option<Instant>,
    shut_down: bool,
    /// Writing still works (false after a write error or when the last
    /// bytes could not be written in time).
    writable: bool,
    /// When an ended connection stops trying to write its last bytes (a
    /// peer that reads nothing must not hold the driver forever).
    drain_deadline: Option<Instant>,
    /// Bytes were handed to the transport since its last completed flush
    /// (TLS and buffered writers hold bytes until flushed).
    needs_flush: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    pub(crate) fn new(
        io: S,
        conn: Connection,
        commands: mpsc::Receiver<Command>,
        control: mpsc::UnboundedReceiver<Control>,
        events: mpsc::Sender<Item>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            io,
            conn,
            commands,
            commands_open: true,
            reserve: PollSender::new(events.clone()),
            events,
            control,
            reply_close: false,
            marker_sent: false,
            pending: None,
            read_open: true,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            flushes: Vec::new(),
            closers: Vec::new(),
            shared,
            fin_deadline: None,
            shut_down: false,
            writable: true,
            drain_deadline: None,
            needs_flush: false,
        }
    }

    fn now() -> std::time::Instant {
        Instant::now().into_std()
    }

    fn apply(&mut self, command: Command) {
        let now = Self::now();
        let result = match command {
            Command::Send(m) => self.conn.send(m),
            Command::Fragment(kind, data, fin) => self.conn.send_fragment(kind, data, fin),
            Command::Ping(p) => self.conn.ping(p),
            Command::Pong(p) => self.conn.pong(p),
            Command::Close(code, reason, done) => {
                self.closers.extend(done);
                match self.conn.state() {
                    // closing twice, or after the end, is not an error for a handle
                    State::CloseSent | State::Closed | State::Aborted => Ok(()),
                    _ => self.conn.close(now, code, &reason),
                }
            }
            Command::Flush(done) => {
                self.flushes.push(done);
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "operation refused");
            if let Ok(mut r) = self.shared.refused.lock() {
                *r = Some(e);
            }
        }
    }

    /// Writes queued output until done or the transport would block, then
    /// flushes the transport (TLS and buffered writers hold bytes until then).
    fn poll_write_output(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        loop {
            let out = self.conn.poll_output();
            if !out.has_remaining() {
                break;
            }
            let n = if self.io.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); 16];
                let count = out.chunks_vectored(&mut slices);
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]))?
            } else {
                ready!(Pin::new(&mut self.io).poll_write(cx, out.chunk()))?
            };
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.needs_flush = true;
            self.conn.poll_output().advance(n);
        }
        if self.needs_flush {
            ready!(Pin::new(&mut self.io).poll_flush(cx))?;
            self.needs_flush = false;
        }
        for done in self.flushes.drain(..) {
            let _ = done.send(());
        }
        Poll::Ready(Ok(()))
    }

    /// Hands events to the application. Ping/Pong events are informational
    /// (the core already answered): they are dropped when the channel is
    /// full rather than stopping the reads that let us answer the next Ping.
    /// The final `Closed` waits until our last bytes (e.g. the answer to the
    /// peer's Close) are written, so an application that exits on it loses
    /// nothing.
    fn forward_events(&mut self) {
        while self.pending.is_none() {
            if self.output_pending() && self.conn.state().is_terminal() {
                break;
            }
            let Some(event) = self.conn.poll_event() else {
                break;
            };
            match self.events.try_send(Item::Event(event)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(
                    e @ Item::Event(Event::Ping(_) | Event::Pong(_)),
                )) => {
                    tracing::trace!(event = ?e, "event channel full; control event dropped");
                }
                Err(mpsc::error::TrySendError::Full(e)) => self.pending = Some(e),
                // nobody listens any more: keep driving the protocol regardless
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        if self.pending.is_none() && self.conn.state() == State::CloseReceived && !self.marker_sent
        {
            self.marker_sent = true;
            // The application has read everything (or nothing came before the
            // Close): answer now rather than wait for it to read the marker.
            if self.events.capacity() == self.events.max_capacity() {
                self.reply_close = true;
                return;
            }
            match self.events.try_send(Item::PeerClosed) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(marker)) => self.pending = Some(marker),
                // nobody reads: answer at once
                Err(mpsc::error::TrySendError::Closed(_)) => self.reply_close = true,
            }
        }
    }

    fn output_pending(&self) -> bool {
        self.writable && (self.conn.has_output() || self.needs_flush)
    }

    fn publish(&self) {
        if let Ok(mut s) = self.shared.state.lock() {
            *s = self.conn.state();
        }
        if let Some(info) = self.conn.close_info()
            && let Ok(mut c) = self.shared.close_info.lock()
            && c.is_none()
        {
            *c = Some(info.clone());
        }
    }

    fn answer_closers(&mut self) {
        let info = self.conn.close_info().cloned().unwrap_or(CloseInfo {
            code: CloseCode::ABNORMAL,
            reason: "the connection ended".into(),
            was_clean: false,
            initiator: tether::Initiator::Local,
        });
        for done in self.closers.drain(..) {
            let _ = done.send(info.clone());
        }
    }

    fn finish(&mut self) {
        self.answer_closers();
        for done in self.flushes.drain(..) {
            let _ = done.send(());
        }
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let mut progress = false;

            // 1. a held-back event, as soon as the application makes room
            if self.pending.is_some() {
                match self.reserve.poll_reserve(cx) {
                    Poll::Ready(Ok(())) => {
                        if let Some(event) = self.pending.take() {
                            let _ = self.reserve.send_item(event);
                        }
                        progress = true;
                    }
                    Poll::Ready(Err(_)) => {
                        // the application dropped its receiver
                        self.pending = None;
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }

            // 2. commands, while the output queue has room (backpressure)
            let mut drained = !self.commands_open;
            while self.commands_open && (self.conn.can_send() || self.conn.state().is_terminal()) {
                match self.commands.poll_recv(cx) {
                    Poll::Ready(Some(cmd)) => {
                        self.apply(cmd);
                        progress = true;
                    }
                    Poll::Ready(None) => {
                        self.commands_open = false;
                        progress = true;
                    }
                    Poll::Pending => {
                        drained = true;
                        break;
                    }
                }
            }
            // every handle is gone (the sending half and the receiving half):
            // leave politely
            if !self.commands_open
                && self.events.is_closed()
                && matches!(self.conn.state(), State::Open | State::CloseReceived)
            {
                let _ = self.conn.close(Self::now(), CloseCode::GOING_AWAY, "");
                progress = true;
            }
            while let Poll::Ready(Some(control)) = self.control.poll_recv(cx) {
                progress = true;
                match control {
                    Control::ReplyClose => self.reply_close = true,
                    Control::Abort(reason) => {
                        self.conn.abort(&reason);
                        self.read_open = false;
                    }
                }
            }
            // answer the peer's Close after the answers sent before it
            if self.reply_close && drained && self.conn.state() == State::CloseReceived {
                self.reply_close = false;
                let _ = self.conn.reply_close();
                progress = true;
            }

            // 3. output: Pongs, keep-alives, Close and data go out now
            if self.output_pending() && !self.shut_down {
                match self.poll_write_output(cx) {
                    Poll::Ready(Ok(())) => progress = true,
                    Poll::Ready(Err(e)) => {
                        // no more writes: an ended connection would
                        // otherwise retry the same failing write forever
                        self.writable = false;
                        self.conn.abort(&format!("write failed: {e}"));
                        self.read_open = false;
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            } else if !self.flushes.is_empty() && !self.output_pending() {
                for done in self.flushes.drain(..) {
                    let _ = done.send(());
                }
            }

            // 4. input, unless an undelivered message holds it back
            if self.read_open && self.pending.is_none() {
                // On the stack, uninitialised: an idle connection holds no read
                // buffer, and nothing is zero-filled per read.
                let mut space = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
                let mut buf = ReadBuf::uninit(&mut space);
                match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                        self.read_open = false;
                        self.conn.receive_eof();
                        progress = true;
                    }
                    Poll::Ready(Ok(())) => {
                        // a protocol error is also an event (the final Closed)
                        let _ = self.conn.receive(Self::now(), buf.filled());
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => {
                        self.read_open = false;
                        if !self.conn.state().is_terminal() {
                            self.conn.abort(&format!("read failed: {e}"));
                        }
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }

            self.forward_events();

            // 5. time
            let now = Instant::now();
            if self
                .conn
                .poll_timeout()
                .is_some_and(|t| Instant::from_std(t) <= now)
            {
                let before = (self.conn.state(), self.conn.has_output());
                self.conn.handle_timeout(now.into_std());
                self.forward_events();
                let due_again = self
                    .conn
                    .poll_timeout()
                    .is_some_and(|t| Instant::from_std(t) <= now);
                // a timer that stays due would spin this loop: log, don't loop
                if due_again {
                    tracing::warn!("a connection timer stayed due after handle_timeout");
                }
                progress = !due_again || before != (self.conn.state(), self.conn.has_output());
            }
            self.publish();

            // an ended connection gets close_timeout to write its last bytes
            if self.conn.state().is_terminal() && self.output_pending() {
                let deadline = *self
                    .drain_deadline
                    .get_or_insert(now + self.conn.config().close_timeout);
                if now >= deadline {
                    tracing::debug!("peer did not take our last bytes in time; dropping them");
                    self.writable = false;
                    progress = true;
                }
            }

            // close() waiters learn the end once our last bytes are out, even
            // while the application has not read the events before it
            if self.conn.state().is_terminal() && !self.output_pending() {
                self.answer_closers();
            }

            // 6. the end: output written, final event delivered, transport closed
            self.forward_events();
            if self.conn.state().is_terminal() && !self.output_pending() && self.pending.is_none() {
                let wait_for_fin = self.conn.role() == Role::Client
                    && self.conn.state() == State::Closed
                    && self.read_open;
                if wait_for_fin {
                    let deadline = *self.fin_deadline.get_or_insert(now + CLIENT_FIN_WAIT);
                    if now >= deadline {
                        self.read_open = false;
                        progress = true;
                    }
                } else {
                    if !self.shut_down {
                        match Pin::new(&mut self.io).poll_shutdown(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(_) => self.shut_down = true,
                        }
                    }
                    self.finish();
                    return Poll::Ready(());
                }
            }

            if !progress {
                let next = [
                    self.conn.poll_timeout().map(Instant::from_std),
                    self.fin_deadline,
                    self.drain_deadline,
                ]
                .into_iter()
                .flatten()
                .min();
                if let Some(at) = next {
                    self.timer.as_mut().reset(at);
                    if self.timer.as_mut().poll(cx).is_ready() {
                        continue;
                    }
                }
                return Poll::Pending;
            }
        }
    }

    /// Runs the connection to its end.
    pub(crate) async fn run(mut self) {
        std::future::poll_fn(|cx| self.poll_drive(cx)).await;
        self.publish();
        tracing::debug!(close = ?self.conn.close_info(), "connection ended");
    }
}
