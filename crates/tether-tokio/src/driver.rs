//! The driver: moves bytes and time between the transport and the sans-IO
//! core, and holds no protocol logic (every decision is the core's).
//!
//! Whoever polls drives. The transport, the core and the received events
//! live in one [`Inner`]. With the default driver (`Driver::Shared`) it is
//! behind a mutex shared by the application's handles and a background
//! task while one is needed (with `Driver::Owner`, the owning handle holds
//! it alone and drives it the same way, see the `owned` module):
//! - while the application polls (`next()`, `send()`, `flush()`...), its
//!   own task reads, writes and runs the timers inline: a received message
//!   reaches the application with no hop between tasks, and a burst of
//!   answers goes out in one write;
//! - while nobody polls, the background task does the same, so Pongs and
//!   keep-alive frames go out whatever the application is doing, the
//!   closing handshake runs to its end, and a write that would block is
//!   retried when the socket becomes writable.
//!
//! The transport and timer are polled with one shared waker ([`Wakers`])
//! that wakes the application tasks waiting on this connection and reaches
//! the background task, which drives only when no application task will
//! (`background_must_drive`), so one party drives at a time and none
//! misses a wake-up.
//!
//! The background task lives only while the connection is active: once a
//! drive finds it resting (quiet for `Config::release_idle_after`, the
//! first time `Config::first_release_after`; nothing to write, no Close to
//! answer, both handles alive) the task ends, and the
//! next wake-up of the shared waker (input, the timer, a handle) spawns a
//! new one on the runtime the connection started in. An idle connection
//! holds no task of its own.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use bytes::Buf;
use futures_task::{ArcWake, waker_ref};
use tether::{Budget, BudgetCheck, CloseInfo, Connection, Event, Holder, State, TransportFailure};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Bytes read from the transport per read.
const READ_CHUNK: usize = 64 * 1024;

/// A transport: TCP, TLS, an upgraded hyper connection...
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The transport a connection holds: a TCP stream in place (most
/// connections: boxing it would cost each one more allocation, 48 bytes of
/// heap for its 40), anything else (TLS, an upgraded hyper connection)
/// boxed.
pub(crate) enum Transport {
    Tcp(TcpStream),
    Boxed(Box<dyn Io>),
}

impl Transport {
    pub(crate) fn new<S: Io + 'static>(stream: S) -> Self {
        let mut slot = Some(stream);
        let tcp = (&mut slot as &mut dyn Any).downcast_mut::<Option<TcpStream>>();
        if let Some(tcp) = tcp.and_then(Option::take) {
            return Self::Tcp(tcp);
        }
        match slot {
            Some(other) => Self::Boxed(Box::new(other)),
            None => unreachable!("taken above only when it was a TcpStream"),
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Boxed(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Boxed(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Self::Boxed(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(tcp) => tcp.is_write_vectored(),
            Self::Boxed(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Boxed(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Boxed(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

/// Received events the application's stream took in one go
/// ([`Inner::take_items`]), to read without the connection's lock.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) events: VecDeque<Event>,
    /// The peer's Close waits behind this many of `events`: once the
    /// application has read them and comes back, it is answered.
    pub(crate) close_after: Option<usize>,
}

/// The sending handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SinkState {
    Alive,
    /// Its `poll_close` completed: later calls return at once.
    Closed,
    /// Dropped.
    Gone,
}

/// Where the transport is in its life. Phases only move forward
/// ([`Inner::enter`]); each implies the ends of the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Reading and writing.
    Open,
    /// The input ended (the peer's FIN, a read error, an abort): nothing
    /// more is read; our last bytes still go out.
    InputEnded,
    /// Nothing more is written either: a write failed, or the core gave up
    /// our last bytes (the peer took nothing until the drain deadline).
    OutputGone,
    /// The transport was shut down when the core said; the end waits to
    /// be delivered behind received items the application has not read,
    /// and, lingering, for the peer's end (`Inner::poll_linger`).
    Shut,
    /// The transport was shut down and the end delivered: nothing moves.
    Finished,
}

/// Where answering the peer's Close (or carrying out a deferred failure)
/// stands. The core holds the answer until the application has read what
/// came before it (`Connection::awaits_close_reply`); this adapter keeps
/// its own queue, so it says when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Nothing waits for an answer.
    Unasked,
    /// It waits behind every unread item in `items` (all but a final
    /// `Closed`).
    Marked,
    /// It waits in the batch the stream took ([`Batch::close_after`]).
    MarkTaken,
    /// The application has read up to it: answer now.
    Due,
    /// Answered.
    Sent,
}

/// Which party is polling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Party {
    Reader,
    Writer,
    Background,
}

#[derive(Default)]
struct Slots {
    reader: Option<Waker>,
    writer: Option<Waker>,
    background: Option<Waker>,
}

/// How to reach the background task, taken under the slots' lock.
enum Background {
    /// It waits: wake it.
    Wake(Waker),
    /// There is none: spawn one.
    Spawn,
    /// It is being polled, or was already woken.
    Busy,
}

impl Slots {
    /// `task` is [`Wakers::task`], read and written only under the lock
    /// these slots are in.
    fn take_background(&mut self, task: &AtomicBool) -> Background {
        if let Some(waker) = self.background.take() {
            Background::Wake(waker)
        } else if !task.load(Ordering::Relaxed) {
            task.store(true, Ordering::Relaxed);
            Background::Spawn
        } else {
            Background::Busy
        }
    }
}

/// The waker the transport and the timer are polled with. It wakes every
/// party waiting on this connection. The background task, woken with the
/// application, drives only when nobody else has driven since the wake-up
/// (an application task may be woken and then not poll, e.g. a `next()`
/// cancelled in `select!`); otherwise it just waits again.
///
/// When no background task exists (it retired while the connection
/// rested: see the module docs), the wake-up spawns one.
pub(crate) struct Wakers {
    slots: Mutex<Slots>,
    /// The connection, for the background task spawned when one is needed.
    shared: Weak<Shared>,
    /// The runtime the connection started in, to spawn it on.
    runtime: tokio::runtime::Handle,
    /// The last drive left the connection resting: the background task
    /// may end.
    resting: AtomicBool,
    /// A background task exists (spawned, not yet retired or finished).
    /// Read and written only under the slots' lock (so `Relaxed`); kept
    /// out of [`Slots`] with the other flags, where it took a word of its
    /// own and this allocation a larger size class.
    task: AtomicBool,
    /// Drives so far, by any party.
    drives: AtomicU64,
    /// `drives` when the transport or timer last woke us.
    woken_at: AtomicU64,
    /// The background task must drive (a handle was dropped, or output was
    /// queued while the application may not poll soon).
    kick: AtomicBool,
    /// The connection was evicted (1013) while the stream held a batch of
    /// received items: the stream drops it, unread, before its next item
    /// (it reads the batch without the lock, so it looks here; here, not
    /// in `Shared`, where it took a word of its own). Cleared under the
    /// lock whenever the stream takes a batch.
    pub(crate) void_batch: AtomicBool,
}

impl Wakers {
    fn new(shared: Weak<Shared>, runtime: tokio::runtime::Handle) -> Self {
        Self {
            slots: Mutex::default(),
            shared,
            runtime,
            resting: AtomicBool::new(false),
            task: AtomicBool::new(false),
            drives: AtomicU64::new(0),
            woken_at: AtomicU64::new(0),
            kick: AtomicBool::new(false),
            void_batch: AtomicBool::new(false),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `party` waits for progress on this connection.
    pub(crate) fn register(&self, party: Party, waker: &Waker) {
        let mut slots = self.slots();
        let slot = match party {
            Party::Reader => &mut slots.reader,
            Party::Writer => &mut slots.writer,
            Party::Background => &mut slots.background,
        };
        match slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// `party` stopped waiting (its poll completed).
    pub(crate) fn unregister(&self, party: Party) {
        let mut slots = self.slots();
        match party {
            Party::Reader => slots.reader = None,
            Party::Writer => slots.writer = None,
            Party::Background => slots.background = None,
        }
    }

    /// Makes the background task drive.
    pub(crate) fn wake_background(&self) {
        // a load first: while a batch is read, every send after the first
        // finds the kick set, and a load costs less than a swap
        if self.kick.load(Ordering::Acquire) || self.kick.swap(true, Ordering::AcqRel) {
            // already kicked and not yet acted on: the background task
            // checks `kick` after registering, so it will drive (this spares
            // a lock per message sent while unread messages wait)
            return;
        }
        let background = self.slots().take_background(&self.task);
        self.reach(background);
    }

    /// Wakes or spawns the background task (outside the slots' lock).
    fn reach(&self, background: Background) {
        match background {
            Background::Wake(waker) => waker.wake(),
            Background::Spawn => {
                // none when every handle and task is gone: nothing to drive
                if let Some(shared) = self.shared.upgrade() {
                    self.runtime.spawn(background_task(shared));
                }
            }
            Background::Busy => {}
        }
    }

    /// For a resting background task: ends it unless it was woken (or
    /// kicked) since it registered; the next wake-up spawns a new one.
    fn retire_background(&self) -> bool {
        let mut slots = self.slots();
        if slots.background.is_none() || self.kick.load(Ordering::Acquire) {
            return false;
        }
        slots.background = None;
        self.task.store(false, Ordering::Relaxed);
        true
    }

    /// Wakes the application parties other than `party`.
    fn wake_others(&self, party: Party) {
        let (r, w) = {
            let mut s = self.slots();
            match party {
                Party::Reader => (None, s.writer.take()),
                Party::Writer => (s.reader.take(), None),
                Party::Background => (s.reader.take(), s.writer.take()),
            }
        };
        for waker in [r, w].into_iter().flatten() {
            waker.wake();
        }
    }

    fn wake_all(&self) {
        self.woken_at
            .store(self.drives.load(Ordering::Acquire), Ordering::Release);
        let (r, w, b) = {
            let mut s = self.slots();
            (
                s.reader.take(),
                s.writer.take(),
                s.take_background(&self.task),
            )
        };
        for waker in [r, w].into_iter().flatten() {
            waker.wake();
        }
        self.reach(b);
    }

    /// The background task was kicked and has not yet driven for it: it
    /// will, and write what was queued meanwhile, unless a drive of the
    /// application's does it first ([`Shared::drive`] clears the kick).
    pub(crate) fn kicked(&self) -> bool {
        self.kick.load(Ordering::Acquire)
    }

    /// For the background task, after registering: whether it must drive.
    fn background_must_drive(&self) -> bool {
        self.kick.swap(false, Ordering::AcqRel)
            || self.drives.load(Ordering::Acquire) <= self.woken_at.load(Ordering::Acquire)
    }
}

impl ArcWake for Wakers {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.wake_all();
    }
}

/// One connection: the transport, the core, and what was received but not
/// yet read by the application.
pub(crate) struct Inner {
    io: Transport,
    pub(crate) conn: Connection,
    /// Received items for the application, at most
    /// `Config::max_unread_bytes` of them (by `Event::footprint`; one
    /// message always fits).
    pub(crate) items: VecDeque<Event>,
    /// How many of `items` are messages.
    messages: usize,
    /// The footprint of `items`.
    unread: usize,
    /// The footprint of the items the application's stream took in one
    /// batch ([`Inner::take_items`]) and has not finished reading: they
    /// still count against `Config::max_unread_bytes` (and stay charged
    /// to the holder) until it has taken the last of them. (Every item
    /// but the final event weighs something, so 0 means no such batch.)
    taken: usize,
    /// This connection's share of the budget shared with other
    /// connections (a server's), if any: what its `items` hold of it.
    holder: Option<Holder>,
    /// Bytes of messages queued beyond `max_unread_bytes` after our Close.
    overflow: usize,
    /// A message or the final event waiting for room in `items`; while it
    /// waits, nothing more is read (backpressure to the peer).
    held: Option<Box<Event>>,
    /// Where answering the peer's Close stands.
    pub(crate) reply: Reply,
    /// The application came back for the next event after the last one it
    /// took (or has taken none): it has had its chance to answer what it
    /// read, so a Close waiting behind that can go out now. False while it
    /// holds an event it may still be answering.
    pub(crate) reader_caught_up: bool,
    /// Where the transport is in its life.
    phase: Phase,
    /// Bytes were handed to the transport since its last completed flush
    /// (TLS and buffered writers hold bytes until flushed).
    needs_flush: bool,
    /// Queued output was thrown away (abort, write error, or a peer that
    /// took nothing until the drain deadline): a flush must not succeed.
    pub(crate) discarded: bool,
    /// Armed only while the core has a deadline.
    timer: Option<Pin<Box<Sleep>>>,
    /// Live handles: the sending side and the receiving side.
    pub(crate) sink: SinkState,
    pub(crate) stream_alive: bool,
    /// The sink's `poll_ready` found room: its next `start_send` is
    /// accepted whatever the connection queued of its own since
    /// (`Connection::send_admitted`).
    pub(crate) sink_admitted: bool,
    /// The last drive found the connection quiet, with nothing to write
    /// (`Connection::note_idle`): its idle buffers are released.
    quiet: bool,
    /// The last read took less than it was offered: the transport had no
    /// more at that moment (a drive for the next events may stop there).
    read_short: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // what was never taken goes back to the shared budget (the holder
        // releases it when dropped)
    }
}

/// What the handles and the background task share.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Also the waker the transport and timer are polled with (borrowed
    /// as one per drive, `waker_ref`: no waker stored, no count touched).
    pub(crate) wakers: Arc<Wakers>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// The connection's shared state, and its first background task
    /// (spawned on `runtime`, the one the connection started in): for a
    /// new connection, one its owner hands over ([`crate::WebSocket::split`]),
    /// or one its owner dropped unfinished.
    pub(crate) fn adopt(inner: Inner, runtime: tokio::runtime::Handle) -> Arc<Self> {
        let shared = Arc::new_cyclic(|weak| Self {
            inner: Mutex::new(inner),
            wakers: Arc::new(Wakers::new(weak.clone(), runtime)),
        });
        let first = shared.wakers.slots().take_background(&shared.wakers.task);
        shared.wakers.reach(first);
        shared
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Polls the transport and timers as `party`: registers its waker, then
    /// makes every step of progress possible without waiting. Without
    /// `read`, only writes and timers (a send that writes at once).
    pub(crate) fn drive(&self, inner: &mut Inner, party: Party, cx: &Context<'_>, read: bool) {
        self.wakers.register(party, cx.waker());
        if read {
            // only a drive that reads takes over from the background task
            self.wakers.drives.fetch_add(1, Ordering::AcqRel);
        }
        let before = inner.snapshot();
        let waker = waker_ref(&self.wakers);
        let mut shared_cx = Context::from_waker(&waker);
        let batch_out = inner.taken > 0;
        let settled = inner.drive(&mut shared_cx, read);
        if read && settled && inner.flushed() {
            // whatever a kick asked the background task for (write what was
            // queued, see a handle's drop or an abort) was done here: every
            // kick follows a change made under this lock, which this drive
            // saw, so the background task need not drive again for it. Not
            // after a drive that only wrote: a kick for a dropped stream
            // asks for reading again, which such a drive does not do (on a
            // multi-threaded runtime the kick may come during it)
            self.wakers.kick.store(false, Ordering::Release);
        }
        if batch_out && inner.taken == 0 {
            // the stream's batch was given back in the drive: only an
            // eviction does that (the stream ends its batches itself)
            self.wakers.void_batch.store(true, Ordering::Release);
        }
        self.wakers
            .resting
            .store(inner.resting(), Ordering::Release);
        // what this party changed may be what another waits for (a message,
        // room to send, the end): no transport wake-up will tell them
        if inner.snapshot() != before {
            self.wakers.wake_others(party);
        }
    }

    /// [`Inner::write_now`] with the connection's shared waker.
    pub(crate) fn write_now(&self, inner: &mut Inner) -> bool {
        let waker = waker_ref(&self.wakers);
        inner.write_now(&mut Context::from_waker(&waker))
    }

    /// Wakes everyone waiting (the connection ended, or was aborted).
    pub(crate) fn wake_all(&self) {
        self.wakers.wake_all();
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl Inner {
    /// A connection over `io`, charging what it holds unread to `budget`.
    pub(crate) fn new(io: Transport, conn: Connection, budget: Option<Arc<Budget>>) -> Self {
        Self {
            io,
            conn,
            items: VecDeque::new(),
            messages: 0,
            unread: 0,
            taken: 0,
            holder: budget.as_ref().map(Budget::holder),
            overflow: 0,
            held: None,
            reply: Reply::Unasked,
            reader_caught_up: true,
            phase: Phase::Open,
            needs_flush: false,
            discarded: false,
            timer: None,
            sink: SinkState::Alive,
            stream_alive: true,
            sink_admitted: false,
            quiet: false,
            read_short: false,
        }
    }

    /// What waiting parties wait for: received items, the close reply, the
    /// state, the end, and room to send.
    fn snapshot(&self) -> (usize, Reply, State, bool, bool, bool) {
        (
            self.items.len(),
            self.reply,
            self.conn.state(),
            self.is_finished(),
            self.flushed(),
            self.conn.can_send(),
        )
    }

    /// Moves the transport's life forward to `phase` (never back).
    fn enter(&mut self, phase: Phase) {
        self.phase = self.phase.max(phase);
    }

    /// The transport was shut down and the end delivered.
    pub(crate) fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    fn output_pending(&self) -> bool {
        self.phase < Phase::OutputGone && (self.conn.has_output() || self.needs_flush)
    }

    /// Everything queued so far has reached the transport (and was flushed).
    pub(crate) fn flushed(&self) -> bool {
        !self.output_pending()
    }

    /// Nothing for a background task to do until the transport, the timer
    /// or a handle wakes the connection (each of which spawns a new one):
    /// quiet with nothing to write, no Close to answer. Items the
    /// application has not read yet may wait: the reader drives when it
    /// reads them. With one handle dropped too (the drop kicked a drive,
    /// which saw it): what arrives next wakes a new task, which reads it
    /// (and drops it, without a stream) and answers Pings as before.
    fn resting(&self) -> bool {
        self.quiet && self.phase == Phase::Open && self.reply == Reply::Unasked
    }

    /// The connection has ended and our last bytes are written (or dropped).
    pub(crate) fn ended(&self) -> bool {
        self.conn.state().is_terminal() && !self.output_pending()
    }

    /// How the connection ended, once it has (the core keeps it: the same
    /// info as the final `Closed` event).
    pub(crate) fn final_info(&self) -> Option<CloseInfo> {
        self.conn.close_info().cloned()
    }

    pub(crate) fn abort(&mut self, reason: &str) {
        self.discarded |= self.conn.has_output() || self.needs_flush;
        self.conn.abort(reason);
        // nothing more is read, nor written: bytes a transport still holds
        // unflushed (a TLS record) are not waited for, so the final event
        // is not held back behind a peer that takes nothing
        self.enter(Phase::OutputGone);
    }

    /// Shuts the transport down now if the core says it should be closed
    /// (after an abort, for an owner that may not poll again soon): one
    /// try, as the end step makes it; a shutdown that would wait (a TLS
    /// close_notify behind a full socket) is tried again by the owner's
    /// next drive, with its waker.
    pub(crate) fn shut_now(&mut self) {
        if self.phase < Phase::Shut && self.conn.should_close_transport() && !self.output_pending()
        {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            if Pin::new(&mut self.io).poll_shutdown(&mut cx).is_ready() {
                self.enter(Phase::Shut);
            }
        }
    }

    /// Writes what a send just queued, without a whole drive, when
    /// nothing but the output can have changed: the connection open, no
    /// Close to answer, the transport open, and its idle buffers not
    /// released (after a release, the send's traffic makes them wanted
    /// again: a drive that reads arms the next release, so a connection
    /// that pushes once after going quiet frees what the push regrew; with
    /// the shared driver, the drive's change of state wakes the reader,
    /// whose drive does it). True when everything queued went out.
    /// Otherwise (the transport would block, a write failed, or the
    /// connection is not simply open) the caller drives: that drive
    /// carries out what the write left (a failure already recorded here),
    /// registers the waits, and wakes whoever a change concerns. Nothing
    /// else is done here: a send only postpones the core's deadlines (the
    /// timer armed for an earlier one re-arms when it fires), queues no
    /// event, and no other party waits for the output to drain while the
    /// connection is open (the sender is the one that waits).
    pub(crate) fn write_now(&mut self, cx: &mut Context<'_>) -> bool {
        if self.phase != Phase::Open
            || self.reply != Reply::Unasked
            || self.conn.state() != State::Open
            || self.quiet
        {
            return false;
        }
        self.step_write(cx);
        if self.conn.wants_time() {
            // a message went out: the idle timeout counts from now
            self.conn.tell_time(now());
        }
        self.phase == Phase::Open && self.flushed() && !self.discarded
    }

    /// The next received item, for an owner that reads `items` itself
    /// (`Driver::Owner`): it is no longer unread (nor charged to the
    /// shared budget), and the application holds it (it may be answering
    /// it: a Close behind it waits until it comes back).
    #[inline]
    pub(crate) fn pop_item(&mut self) -> Option<Event> {
        let event = self.items.pop_front()?;
        self.reader_caught_up = false;
        if !matches!(event, Event::Closed(_)) {
            if matches!(event, Event::Message(_)) {
                self.messages = self.messages.saturating_sub(1);
            }
            let footprint = event.footprint();
            self.unread = self.unread.saturating_sub(footprint);
            if let Some(holder) = &self.holder {
                holder.release(footprint);
            }
        }
        Some(event)
    }

    /// For an owner, who has nobody to finish the connection after it: the
    /// final `Closed` waits until the transport is shut down (as the
    /// blocking adapter delivers it), so the owner keeps driving until
    /// then. The core bounds it: a client's wait for the server's FIN by
    /// `Config::fin_wait`, a shutdown that would wait (TLS to a peer that
    /// takes nothing) by its drain deadline (`Config::close_timeout`).
    pub(crate) fn end_waits_for_transport(&self) -> bool {
        matches!(self.items.front(), Some(Event::Closed(_))) && !self.is_finished()
    }

    /// [`Inner::pop_item`] when the next item is a message (nothing to
    /// decide: no Close waits behind it, it is not the end).
    #[inline]
    pub(crate) fn pop_message(&mut self) -> Option<tether::Message> {
        if !matches!(self.items.front(), Some(Event::Message(_))) {
            return None;
        }
        match self.pop_item() {
            Some(Event::Message(m)) => Some(m),
            _ => None,
        }
    }

    /// For an owner: the peer's Close waited behind received items, and
    /// the application has read them all and come back: answer it now.
    pub(crate) fn owner_came_back(&mut self) {
        if self.reply == Reply::Marked
            && self
                .items
                .front()
                .is_none_or(|e| matches!(e, Event::Closed(_)))
        {
            self.reply = Reply::Due;
        }
    }

    /// Writes queued output until done or the transport would block, then
    /// flushes the transport.
    fn poll_write_output(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        loop {
            let out = self.conn.poll_output();
            if !out.has_remaining() {
                break;
            }
            // one contiguous chunk (small messages: the frames of a burst
            // in one buffer) goes as a plain write, which costs the kernel
            // less than a one-slice writev
            let n = if self.io.is_write_vectored() && out.chunk().len() < out.remaining() {
                let mut slices = [IoSlice::new(&[]); tether::Output::VECTORED_SLICES];
                let count = out.chunks_vectored(&mut slices);
                match Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]) {
                    Poll::Ready(r) => r?,
                    Poll::Pending => return Poll::Pending,
                }
            } else {
                match Pin::new(&mut self.io).poll_write(cx, out.chunk()) {
                    Poll::Ready(r) => r?,
                    Poll::Pending => return Poll::Pending,
                }
            };
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.needs_flush = true;
            self.conn.poll_output().advance(n);
        }
        if self.needs_flush {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(r) => r?,
                Poll::Pending => {
                    // the transport holds bytes of ours (a TLS record, an
                    // HTTP/3 stream's buffer) that the core's queue no
                    // longer shows: its send timeout counts them
                    if !self.conn.unflushed() {
                        self.conn.set_unflushed(now(), true);
                    }
                    return Poll::Pending;
                }
            }
            self.needs_flush = false;
            if self.conn.unflushed() {
                self.conn.set_unflushed(now(), false);
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Moves the core's events into `items`. Ping/Pong events are
    /// informational (the core already answered): they are dropped when
    /// `items` is full rather than stopping the reads that let us answer the
    /// next Ping. The final `Closed` waits until our last bytes (e.g. the
    /// answer to the peer's Close) are written, so an application that exits
    /// on it loses nothing.
    fn forward_events(&mut self) {
        // what the connection sent of its own accord, for the logs (the
        // target `tether::sent`; `tether connect -v` shows it)
        while let Some(sent) = self.conn.poll_sent() {
            tracing::debug!(target: "tether::sent", ?sent, "sent of our own accord");
        }
        if let Some(event) = self.held.take() {
            if self.drops_after_close(&event) {
                tracing::debug!("a message read past our Close dropped (Config::max_message_size)");
            } else if self.holds_back(&event) || !self.make_room(&event) {
                self.held = Some(event);
                return;
            } else {
                self.push_event(*event);
            }
        }
        self.take_all_events();
        loop {
            if self.output_pending() && self.conn.state().is_terminal() {
                break;
            }
            if self.conn.decoding_pending() && self.conn.queued_events().next().is_none() {
                // the next batch is decoded by the next round's
                // `step_decode` (with the drive's clock), after an owner
                // had the chance to take these
                break;
            }
            let Some(event) = self.conn.poll_event() else {
                break;
            };
            if self.drops_after_close(&event) {
                tracing::debug!(
                    "a message read past our Close dropped (Config::max_message_size, or the server's budget spent)"
                );
            } else if self.make_room(&event) {
                self.push_event(event);
            } else if matches!(event, Event::Ping(_) | Event::Pong(_)) {
                tracing::trace!(?event, "receive queue full; control event dropped");
            } else {
                self.held = Some(Box::new(event));
                return;
            }
        }
        if self.conn.awaits_close_reply() && self.reply == Reply::Unasked {
            if (self.items.is_empty() && self.reader_caught_up) || !self.stream_alive {
                // the application has read and answered everything (or
                // nobody reads)
                self.reply = Reply::Due;
            } else {
                self.reply = Reply::Marked;
            }
        }
    }

    /// The common case of [`Inner::forward_events`] in one step: with
    /// nothing held here, and every event the core holds fitting (none of
    /// them the final `Closed`, which has its own rules), the core's whole
    /// queue joins `items` (`Connection::take_events`: swapped when `items`
    /// is empty, else appended as a block), weighed in one pass.
    fn take_all_events(&mut self) {
        if self.held.is_some()
            || self.reply == Reply::Marked
            || !self.stream_alive
            || (self.output_pending() && self.conn.state().is_terminal())
        {
            return;
        }
        // weighed as they were queued (no pass over them)
        let queued = self.conn.queued();
        let (footprint, messages) = (queued.weight, queued.messages);
        if queued.events == 0
            || queued.ends
            // (all of them fit only under the bound: a Ping or Pong that
            // reaches it is dropped, `Connection::keeps_control_event`)
            || self.unread_total().saturating_add(footprint) >= self.conn.config().max_unread_bytes
            // one at a time, each dropped (closing with the budget spent)
            || self.conn.drops_after_close()
        {
            return;
        }
        self.conn.take_events(&mut self.items);
        self.messages += messages;
        self.unread += footprint;
        if let Some(holder) = &self.holder {
            holder.charge(footprint);
        }
    }

    fn holds_back(&self, event: &Event) -> bool {
        matches!(event, Event::Closed(_)) && self.output_pending()
    }

    /// Whether one more received message of `len` bytes may wait for the
    /// application: while the unread ones weigh less than
    /// `Config::max_unread_bytes` (one always fits), or, once we sent our
    /// Close, while those beyond it are kept by the core's rule
    /// (`Connection::keeps_after_close`: up to `max_message_size` bytes in
    /// all; past it [`Inner::drops_after_close`] drops them, so the peer's
    /// answer is still read, with memory bounded).
    fn message_fits(&self, len: usize) -> bool {
        if self.conn.drops_after_close() {
            // closing with the shared budget spent: nothing more is kept
            return false;
        }
        let config = self.conn.config();
        if self.messages == 0 && self.taken == 0
            || self.unread_total().saturating_add(len + Event::OVERHEAD) <= config.max_unread_bytes
        {
            return true;
        }
        self.conn.state() == State::CloseSent && self.conn.keeps_after_close(self.overflow, len)
    }

    /// After our Close, a message that neither fits the read-ahead bound
    /// nor is kept beyond it (`Connection::keeps_after_close`): dropped,
    /// and reading goes on to the peer's Close.
    fn drops_after_close(&self, event: &Event) -> bool {
        matches!(event, Event::Message(m) if self.conn.state() == State::CloseSent
            && !self.message_fits(m.len()))
    }

    /// Whether `event` fits in `items`. Ping/Pong events (already
    /// answered) fit only while there is room (the core's rule,
    /// `Connection::keeps_control_event`); the final event always fits
    /// (once).
    fn make_room(&mut self, event: &Event) -> bool {
        match event {
            Event::Ping(_) | Event::Pong(_) => self
                .conn
                .keeps_control_event(self.unread_total(), event.footprint()),
            Event::Closed(_) => true,
            Event::Message(m) => {
                if !self.message_fits(m.len()) {
                    return false;
                }
                if (self.messages > 0 || self.taken > 0)
                    && self.unread_total().saturating_add(event.footprint())
                        > self.conn.config().max_unread_bytes
                {
                    self.overflow += m.len();
                }
                true
            }
        }
    }

    fn push_event(&mut self, event: Event) {
        if matches!(event, Event::Closed(_))
            && let Some(holder) = &self.holder
        {
            // ended: the core retires its share of the budget (what it
            // holds waits for the application, never evicted)
            let _ = self.conn.budget_check(holder, now());
        }
        if self.stream_alive {
            if matches!(event, Event::Message(_)) {
                self.messages += 1;
            }
            if !matches!(event, Event::Closed(_)) {
                let footprint = event.footprint();
                self.unread += footprint;
                if let Some(holder) = &self.holder {
                    holder.charge(footprint);
                }
            }
            self.items.push_back(event);
        }
    }

    /// Hands every queued item to the application's stream at once, in
    /// exchange for its `batch`, which it has read to the end: one lock per
    /// batch instead of one per message, and the two queues' allocations
    /// are reused in turn. What the stream takes still counts as unread
    /// (`taken`) until it has taken the last of it, so what a connection holds
    /// unread stays within `Config::max_unread_bytes` (plus one message).
    /// False when nothing is queued: the stream's batch then goes (its
    /// allocation kept in `items`, which the idle step frees).
    #[allow(
        clippy::box_collection,
        reason = "the stream's handle carries 8 bytes instead of 32"
    )]
    pub(crate) fn take_items(&mut self, batch: &mut Option<Box<Batch>>) -> bool {
        self.end_batch(batch);
        if self.items.is_empty() && self.reply != Reply::Marked {
            return false;
        }
        let batch = batch.insert(Box::default());
        std::mem::swap(&mut self.items, &mut batch.events);
        if self.reply == Reply::Marked {
            // the mark goes with the batch, before a final `Closed`
            let closed = matches!(batch.events.back(), Some(Event::Closed(_)));
            batch.close_after = Some(batch.events.len() - usize::from(closed));
            self.reply = Reply::MarkTaken;
        }
        self.taken = std::mem::take(&mut self.unread);
        self.messages = 0;
        true
    }

    /// The stream read its batch (or dropped it): its footprint is no
    /// longer unread, and its allocation comes back to `items` when larger
    /// (where the idle step frees it), so a stream that stops reading
    /// holds none.
    #[allow(
        clippy::box_collection,
        reason = "the stream's handle carries 8 bytes instead of 32"
    )]
    pub(crate) fn end_batch(&mut self, batch: &mut Option<Box<Batch>>) {
        self.return_batch();
        if let Some(mut old) = batch.take() {
            old.events.clear();
            // kept for the next batch unless the connection is already
            // quiet (its idle step, which frees `items`, has run)
            if !self.quiet && old.events.capacity() > self.items.capacity() && self.items.is_empty()
            {
                std::mem::swap(&mut self.items, &mut old.events);
            }
        }
    }

    /// The batch's footprint is no longer unread.
    fn return_batch(&mut self) {
        if let Some(holder) = &self.holder {
            holder.release(self.taken);
        }
        self.taken = 0;
    }

    /// Whether the application has received items it has not read
    /// (queued, or in the batch its stream took).
    pub(crate) fn has_unread(&self) -> bool {
        !self.items.is_empty() || self.taken > 0
    }

    /// Whether received messages wait unread (queued, or in the batch the
    /// stream took); Pings and Pongs, which need no answer, do not count.
    pub(crate) fn has_unread_messages(&self) -> bool {
        self.messages > 0 || self.taken > 0
    }

    /// Drops everything queued for the application: nobody will read it
    /// (the stream was dropped, with its batch), or the connection was
    /// evicted (then a batch the stream took goes too).
    pub(crate) fn clear_items(&mut self) {
        self.items.clear();
        self.messages = 0;
        if let Some(holder) = &self.holder {
            holder.release(self.unread);
        }
        self.unread = 0;
    }

    /// The stream is gone, with its batch: nothing it held is unread, and
    /// a Close that waited behind it is answered now (nobody will read
    /// what came before it).
    pub(crate) fn stream_dropped(&mut self) {
        if matches!(self.reply, Reply::Marked | Reply::MarkTaken) {
            self.reply = Reply::Due;
        }
        self.stream_alive = false;
        self.return_batch();
        self.clear_items();
    }

    /// Room for more received messages: reading may go on. (Ping/Pong
    /// events never stop reading: the next Ping must still be answered.)
    fn can_read(&self) -> bool {
        self.phase == Phase::Open && self.can_decode()
    }

    /// Room for the events of input already received: decoding goes on
    /// after the transport's end too (an end that waits for held input,
    /// `Connection::receive_eof`, comes once that is decoded).
    fn can_decode(&self) -> bool {
        // after our Close, reading goes on to the peer's answer: what is
        // not kept is dropped (`drops_after_close`)
        self.phase < Phase::Shut
            && self.held.is_none()
            && (self.message_fits(0) || self.conn.state() == State::CloseSent)
    }

    /// The footprint of what the application has not read: queued, and in
    /// the batch its stream took.
    fn unread_total(&self) -> usize {
        self.unread.saturating_add(self.taken)
    }

    /// Whether the shared budget lets this connection read, as the core
    /// decides (`Connection::budget_check`): when it must wait, asks to be
    /// woken once room comes back (the core's held-back deadline wakes it
    /// too); when the core evicted it (the budget stayed spent and it held
    /// the most), its unread items are dropped and their charge released.
    fn budget_allows_read(&mut self, cx: &Context<'_>, now: std::time::Instant) -> bool {
        let Some(holder) = &self.holder else {
            return true;
        };
        if holder.held() > 0 {
            // woken when an eviction is due and this connection may hold
            // the most, though it reads nothing (Budget::call_eviction)
            holder.watch(cx.waker());
        }
        match self.conn.budget_check(holder, now) {
            BudgetCheck::Read => true,
            BudgetCheck::Wait => holder.budget().wait_for_room(cx.waker()),
            BudgetCheck::Evicted => {
                tracing::debug!("evicted (1013): the shared budget stayed spent");
                self.held = None;
                self.clear_items();
                // a batch the stream took goes too, and its charge now:
                // the budget must come back for the others at once
                self.return_batch();
                false
            }
        }
    }

    /// One drive: the named steps below, repeated while any made progress;
    /// then the idle step arms the timer and returns. Every decision is the
    /// core's; each step only moves bytes, events or time. True when it
    /// settled (nothing more to do until a wake-up); false when it handed
    /// the rest to a later poll (its turn was spent, or the transport's
    /// shutdown is in progress).
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>, read: bool) -> bool {
        self.drive_rounds(cx, read, false)
    }

    /// A drive for an owner that wants the next events: it returns as soon
    /// as a round queued some for the application with nothing left to
    /// write and the transport read dry (its last read took less than
    /// offered) or the core holding more input behind a full batch of
    /// events (`Connection::decoding_pending`: the next drive decodes it),
    /// unsettled (no wait registered, no timer armed: the owner comes back
    /// for the next events once it has read these, and that drive does
    /// both). While reads come back full (large messages), it reads on up
    /// to the turn, as any drive does.
    pub(crate) fn drive_to_events(&mut self, cx: &mut Context<'_>) {
        self.drive_rounds(cx, true, true);
    }

    fn drive_rounds(&mut self, cx: &mut Context<'_>, read: bool, to_events: bool) -> bool {
        if self.is_finished() {
            return true;
        }
        let mut timer_spins = 0;
        self.quiet = false;
        self.conn.new_turn();
        // one clock read per drive (a drive's rounds take microseconds: its
        // reads are bounded by the turn, its writes by the socket), and a
        // fresh one when the timer says a deadline passed
        let mut clock = now();
        // what was sent since the last drive counts from here (the idle
        // timeout)
        self.conn.tell_time(clock);
        loop {
            let mut progress = self.step_handles_and_replies(clock);
            progress |= self.step_write(cx);
            let budget_allows = !read || {
                let before = self.conn.state();
                let allows = self.budget_allows_read(cx, clock);
                // an eviction queued our Close: the next round writes it
                progress |= self.conn.state() != before;
                allows
            };
            if read {
                // held off for the application (unread bound, budget, or a
                // full batch it has not taken): the core's deadlines that
                // wait on the peer wait too
                let reads = self.can_read()
                    && budget_allows
                    && (!self.conn.decoding_pending() || self.conn.should_decode(self.items.len()));
                self.conn.set_reading(clock, reads);
            }
            if read && budget_allows {
                progress |= if self.conn.decoding_pending() {
                    // a batch of events at a time, as the core says (after
                    // our Close, on to the peer's answer, bounded by
                    // `message_fits`), also after the transport's end
                    self.can_decode()
                        && self.conn.should_decode(self.items.len())
                        && self.step_decode(clock)
                } else {
                    self.can_read() && self.step_read(cx, clock)
                };
            }
            progress |= self.step_time(clock);
            progress |= self.step_events();
            match self.step_end(cx) {
                End::Finished => return true,
                End::Waiting => {
                    // the core's deadlines bound the wait (the drain
                    // deadline, fin_wait)
                    if self.arm_timer(cx, &mut timer_spins) {
                        clock = now();
                        continue;
                    }
                    return false;
                }
                End::Running => {}
            }
            if progress && self.conn.turn_spent() {
                // this connection had its turn (Config::turn_bytes): let
                // the runtime's other tasks run, and come back for the rest
                yield_to_runtime(cx);
                return false;
            }
            // (the final event alone does not count: it waits for the
            // transport's end, which this drive must wait for)
            if to_events
                && (self.read_short || self.conn.decoding_pending())
                && !self.items.is_empty()
                && !self.end_waits_for_transport()
                && self.flushed()
            {
                return false;
            }
            if progress {
                continue;
            }
            if self.step_idle(cx, read, &mut timer_spins, clock) {
                clock = now();
                continue;
            }
            return true;
        }
    }

    /// What the handles asked for: every handle gone (leave politely with
    /// 1001), or the application read up to the peer's Close (answer it).
    fn step_handles_and_replies(&mut self, now: std::time::Instant) -> bool {
        let mut progress = false;
        if self.sink == SinkState::Gone && !self.stream_alive && self.conn.go_away(now) {
            progress = true;
        }
        // answer the peer's Close after the answers sent before it
        if self.reply == Reply::Due && self.conn.awaits_close_reply() {
            self.reply = Reply::Sent;
            let _ = self.conn.reply_close(now);
            progress = true;
        }
        progress
    }

    /// Output: Pongs, keep-alives, Close and data go out now.
    fn step_write(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.output_pending() {
            return false;
        }
        match self.poll_write_output(cx) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(e)) => {
                // nothing more is written; reading goes on (TCP is in
                // order: a peer that sent its Close and reset the
                // connection makes our write fail before we read that
                // Close), and the core decides the end with what arrives
                // (its clean close, or 1006), bounded by its close timeout
                self.discarded |= self.conn.has_output() || self.needs_flush;
                self.needs_flush = false;
                self.conn
                    .transport_failed(now(), TransportFailure::Write(&e));
                true
            }
            Poll::Pending => false,
        }
    }

    /// Input, while there is room for what it brings: straight into the
    /// connection's own buffer when it offers one (the input buffer, or a
    /// large payload's), else through the thread's scratch buffer.
    fn step_read(&mut self, cx: &mut Context<'_>, now: std::time::Instant) -> bool {
        let result = match self.conn.receive_buffer(READ_CHUNK) {
            // no copy, nothing zero-filled
            Some(mut into) => {
                let offered = bytes::BufMut::remaining_mut(&into);
                match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut into) {
                    Poll::Ready(Ok(0)) => Poll::Ready(Ok(true)),
                    Poll::Ready(Ok(n)) => {
                        self.read_short = n < offered;
                        // a protocol error is also an event (the final Closed)
                        let _ = self.conn.received(now);
                        Poll::Ready(Ok(false))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
            None => self.read_through_scratch(cx, now),
        };
        let result = match result {
            // a TLS peer that closed TCP without close_notify: the end of
            // its input, as the core says (`tether::read_error_is_eof`)
            Poll::Ready(Err(e)) if tether::read_error_is_eof(&e) => Poll::Ready(Ok(true)),
            other => other,
        };
        match result {
            Poll::Ready(Ok(eof)) => {
                if eof {
                    self.enter(Phase::InputEnded);
                    self.conn.receive_eof();
                }
                true
            }
            Poll::Ready(Err(e)) => {
                // no more input, nor output: the core decides the end (a
                // Close received before the failure makes it clean)
                self.discarded |= self.conn.has_output() || self.needs_flush;
                self.conn.transport_failed(now, TransportFailure::Read(&e));
                self.conn.receive_eof();
                // bytes a transport still holds unflushed (a TLS record)
                // are not waited for
                self.enter(Phase::OutputGone);
                true
            }
            Poll::Pending => false,
        }
    }

    /// A read while the connection holds no input buffer (idle, or new),
    /// or holds one it keeps small (it reads a little at a time, see
    /// `Connection::receive_buffer`): into this thread's scratch buffer,
    /// then `receive` copies what arrived into the connection. An idle
    /// connection holds no read buffer, nothing is zero-filled, and the
    /// 64 KiB are paid once per thread, not per connection or per read (on
    /// the stack, each read probed its 16 pages: +11 ns of kernel time per
    /// 16-byte message echoed, in cache misses).
    fn read_through_scratch(
        &mut self,
        cx: &mut Context<'_>,
        now: std::time::Instant,
    ) -> Poll<std::io::Result<bool>> {
        thread_local! {
            /// Allocated on a thread's first such read; never zero-filled.
            static SCRATCH: std::cell::RefCell<Box<[std::mem::MaybeUninit<u8>]>> =
                std::cell::RefCell::new(Box::new_uninit_slice(READ_CHUNK));
        }
        let scratch = SCRATCH.try_with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut space) => Some(self.read_into(cx, now, &mut space)),
            // a transport that reads through another connection's driver
            // on this thread (a tunnel) while this one holds the scratch
            Err(_) => None,
        });
        match scratch {
            Ok(Some(read)) => read,
            // taken, or the thread is ending (its locals destroyed)
            Ok(None) | Err(_) => self.read_through_stack(cx, now),
        }
    }

    /// [`Inner::read_through_scratch`] when the scratch buffer is taken.
    /// Not inlined: its 64 KiB frame (probed page by page) is paid only by
    /// the reads that use it.
    #[inline(never)]
    fn read_through_stack(
        &mut self,
        cx: &mut Context<'_>,
        now: std::time::Instant,
    ) -> Poll<std::io::Result<bool>> {
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
        self.read_into(cx, now, &mut space)
    }

    /// Reads into `space` and hands what arrived to the core; `true` at
    /// the end of input.
    fn read_into(
        &mut self,
        cx: &mut Context<'_>,
        now: std::time::Instant,
        space: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<std::io::Result<bool>> {
        let mut buf = ReadBuf::uninit(space);
        match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Ok(true)),
            Poll::Ready(Ok(())) => {
                self.read_short = buf.remaining() > 0;
                let _ = self.conn.receive(now, buf.filled());
                Poll::Ready(Ok(false))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// What the core still has to decode (`Connection::decoding_pending`):
    /// the next part of a message an extension decodes over several turns,
    /// or the next batch of events (read nothing meanwhile).
    fn step_decode(&mut self, now: std::time::Instant) -> bool {
        // a protocol error is also an event (the final Closed)
        let _ = self.conn.continue_decoding(now);
        true
    }

    /// Time: the core's due timers run.
    fn step_time(&mut self, now: std::time::Instant) -> bool {
        let at = Instant::from_std(now);
        if self
            .conn
            .poll_timeout()
            .is_none_or(|t| Instant::from_std(t) > at)
        {
            return false;
        }
        self.conn.handle_timeout(at.into_std());
        let due_again = self
            .conn
            .poll_timeout()
            .is_some_and(|t| Instant::from_std(t) <= at);
        if due_again {
            tracing::warn!("a connection timer stayed due after handle_timeout");
        }
        // a timer ran: what it changed may concern any step (output, the
        // state, or a decision at the next budget check), so go round once
        // more; the core never leaves a deadline due at the instant it
        // handled, so the next round finds none
        true
    }

    /// Events to the application's queue; and once writing is over (an
    /// abort, or the core gave up our last bytes: the peer took nothing for
    /// close_timeout after the end), we give up ours, with the transport's.
    fn step_events(&mut self) -> bool {
        let (had, reply) = (self.items.len(), self.reply);
        self.forward_events();
        // a reply that became due is progress: the next round sends it (a
        // failure a timer deferred, with nothing unread, is carried out at
        // once rather than waiting for the next wake-up)
        let mut progress = self.items.len() != had || self.reply != reply;
        if self.conn.writing_over() && self.output_pending() {
            // an abort, or our last bytes out of time: what the core and the
            // transport still hold is given up (a TLS record that cannot be
            // flushed to a peer that takes nothing holds back nothing)
            tracing::debug!("writing is over; dropping the bytes not yet written");
            self.enter(Phase::OutputGone);
            self.discarded = true;
            // what waited for those bytes goes now (the final Closed),
            // before the end step finishes the connection
            self.forward_events();
            progress = true;
        }
        self.discarded |= self.conn.output_discarded();
        progress
    }

    /// The end, when the core says (our last bytes written, and a client no
    /// longer waiting for the server to close first): the final event
    /// delivered, the transport shut down.
    fn step_end(&mut self, cx: &mut Context<'_>) -> End {
        if !self.conn.should_close_transport() || self.output_pending() {
            return End::Running;
        }
        if self.phase < Phase::Shut {
            if Pin::new(&mut self.io).poll_shutdown(cx).is_pending() {
                // a transport whose shutdown writes (TLS's close_notify) to
                // a peer that takes nothing: once nothing more may be
                // written (an abort, a failed write, our last bytes given
                // up) or the core's drain deadline passed, the end does not
                // wait for it (the transport is closed when the connection
                // is dropped)
                if self.phase < Phase::OutputGone && !self.conn.writing_over() {
                    return End::Waiting;
                }
                tracing::debug!("the transport's shutdown would wait; ending without it");
            }
            self.enter(Phase::Shut);
        }
        if self.conn.close_expected() {
            // lingering: the peer's end is read for before the transport
            // is closed (a server that failed the connection)
            if self.poll_linger(cx).is_pending() || self.conn.close_expected() {
                return End::Waiting;
            }
        }
        if self.held.is_some() {
            // the transport is closed when the core says, whatever the
            // application reads; the final event follows what waits for it
            return End::Running;
        }
        tracing::debug!(close = ?self.conn.close_info(), "connection ended");
        self.enter(Phase::Finished);
        self.timer = None;
        End::Finished
    }

    /// Lingering after our writing was shut down, as the core says
    /// (`Connection::close_expected`: a server that failed the connection,
    /// until the client's end or `Config::fin_wait`): reads what the peer
    /// still sends, which the core drops, so the transport is not closed
    /// with it unread (a reset, with which the peer may lose our Close
    /// unread). Pending once nothing more has arrived (the transport wakes
    /// the connection); ready at the peer's end (or a failed read), or once
    /// the drive's turn is spent (`Config::turn_bytes`: what is dropped
    /// counts too), having asked the runtime to come back for the rest
    /// once its other tasks ran.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match self.read_through_scratch(cx, now()) {
                Poll::Ready(Ok(false)) => {
                    if self.conn.turn_spent() {
                        yield_to_runtime(cx);
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(Ok(true) | Err(_)) => {
                    self.conn.receive_eof();
                    return Poll::Ready(());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Nothing moved: free idle buffers and arm the timer at the core's
    /// next deadline. True when the timer is already due (drive again; the
    /// core never leaves a deadline due at the instant it handled, and one
    /// that stayed due anyway is left to a fresh poll, not looped on).
    fn step_idle(
        &mut self,
        cx: &mut Context<'_>,
        read: bool,
        timer_spins: &mut u32,
        now: std::time::Instant,
    ) -> bool {
        // waiting for input with nothing to write: an idle connection keeps
        // no buffers (after Config::release_idle_after of quiet, the first
        // time first_release_after, as the core decides), nor a queue once
        // the application has read it all
        self.quiet = read && !self.output_pending() && self.conn.note_idle(now);
        if self.quiet && self.items.is_empty() && self.held.is_none() && self.items.capacity() > 0 {
            self.items = VecDeque::new();
        }
        self.arm_timer(cx, timer_spins)
    }

    /// Arms the timer at the core's next deadline. True when it is already
    /// due (drive again; the core never leaves a deadline due at the
    /// instant it handled, and one that stayed due anyway is left to a
    /// fresh poll, not looped on).
    fn arm_timer(&mut self, cx: &mut Context<'_>, timer_spins: &mut u32) -> bool {
        let Some(at) = self.conn.poll_timeout().map(Instant::from_std) else {
            self.timer = None;
            return false;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        if timer.as_mut().poll(cx).is_ready() {
            // due: drive again (the core never arms a deadline at the
            // instant it handled, so this ends); should a deadline stay due
            // anyway, hand the rest to a fresh poll instead of looping here
            if *timer_spins < 2 {
                *timer_spins += 1;
                return true;
            }
            tracing::warn!("a connection timer stayed due; driving again later");
            cx.waker().wake_by_ref();
        }
        false
    }
}

/// Asks to be driven again once the runtime has run its other tasks and
/// polled for I/O, as `tokio::task::yield_now` does. Waking ourselves at
/// once would keep this connection always runnable, and a busy tokio worker
/// looks for I/O readiness only every 61 tasks: a flood of Pings then
/// delayed every other connection's input by 61 turns (p50 72 ms in
/// `benches/hostile.sh`'s ping-flood row, 1 s with 4 MiB turns).
pub(crate) fn yield_to_runtime(cx: &mut Context<'_>) {
    let mut yielded = std::pin::pin!(tokio::task::yield_now());
    // the first poll defers the wake-up and returns Pending; the waker is
    // kept by the runtime, not by this future
    if yielded.as_mut().poll(cx).is_ready() {
        cx.waker().wake_by_ref();
    }
}

/// Where [`Inner::step_end`] left the connection.
enum End {
    Running,
    /// The transport's shutdown is in progress, or, lingering, the peer's
    /// end is read for: drive again when woken (or at the core's deadline).
    Waiting,
    Finished,
}

/// The background task: drives the connection while the application does
/// not, until it has ended, or until it rests (the next wake-up spawns a
/// new one).
async fn background_task(shared: Arc<Shared>) {
    std::future::poll_fn(|cx| {
        shared.wakers.register(Party::Background, cx.waker());
        if shared.wakers.background_must_drive() {
            let mut inner = shared.lock();
            shared.drive(&mut inner, Party::Background, cx, true);
            if inner.is_finished() {
                drop(inner);
                // finished: no task is needed again (`task` stays set)
                shared.wakers.unregister(Party::Background);
                // whoever waits learns the end
                shared.wake_all();
                return Poll::Ready(());
            }
        }
        // resting after our drive or the application's: end, unless a
        // wake-up came meanwhile
        if shared.wakers.resting.load(Ordering::Acquire) && shared.wakers.retire_background() {
            return Poll::Ready(());
        }
        Poll::Pending
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::Transport;

    /// A TCP stream is held in place (one allocation per connection less);
    /// any other transport is boxed.
    #[tokio::test]
    async fn a_tcp_stream_is_held_in_place_and_other_transports_boxed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        assert!(matches!(Transport::new(tcp), Transport::Tcp(_)));
        let (duplex, _peer) = tokio::io::duplex(64);
        assert!(matches!(Transport::new(duplex), Transport::Boxed(_)));
    }
}
