//! [`WebSocket`]: one open connection on a blocking [`Transport`].
//!
//! Owns the driving loop of the sans-IO [`Connection`]: read into a buffer,
//! [`Connection::receive`] (or, while a large frame's payload arrives,
//! straight into that frame's buffer: [`Connection::receives_into_payload`]),
//! drain [`Connection::poll_event`], write
//! [`Connection::poll_output`], arm the read timeout from
//! [`Connection::poll_timeout`] and call [`Connection::handle_timeout`] when
//! it fires; then end the transport once the connection has ended. It must
//! never decide anything the protocol decides (what to answer, when to
//! close, which code): that is the core's, and a missing rule goes there.
//!
//! Three promises, each held by a test:
//! - Output never waits for the application: Pongs, keep-alives and the
//!   Close echo are written inside `read`, and `send` also takes in what has
//!   already arrived (without blocking) so a Ping is answered while the
//!   application only sends. A write that fails with `WouldBlock` or
//!   `Interrupted` is retried; queued bytes are never dropped.
//! - [`WebSocket::close`] completes the closing handshake by itself.
//! - After a transport error every call returns at once.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use tether::upgrade::Upgraded;
use tether::{
    Budget, BudgetCheck, CloseCode, CloseInfo, Config, Connection, Event, Holder, Message,
    MessageKind, State, TransportFailure,
};

use crate::{Error, Transport};

/// Adapter settings that are not protocol limits or waits (those are the
/// core's, in [`Config`]).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) read_buffer_size: usize,
    /// A byte budget shared with other connections (a server's,
    /// `ServerOptions::budget`), charged with what waits for the
    /// application.
    pub(crate) budget: Option<Arc<Budget>>,
}

impl Settings {
    pub(crate) const DEFAULT_READ_BUFFER: usize = 64 * 1024;
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            read_buffer_size: Self::DEFAULT_READ_BUFFER,
            budget: None,
        }
    }
}

/// The connection's config as this adapter runs it: a peer's Close (and a
/// violation after unread messages) is answered once the application has
/// read what came before it (see `read_event`), so an echo server answers
/// every message a client sent before closing, as Node's ws does.
/// Held once by the options and shared by every connection made with them.
pub(crate) fn adapter_config(config: Config) -> Arc<Config> {
    Arc::new(Config {
        auto_close_reply: false,
        ..config
    })
}

/// An open WebSocket connection over a blocking transport `S`.
///
/// Get one from [`connect`](crate::connect), [`client`](crate::client),
/// [`accept`](crate::accept) or [`accept_with`](crate::accept_with), then:
///
/// - [`read`](Self::read) the next message (Pings are answered and timers
///   run while it blocks); [`read_event`](Self::read_event) to see Pings,
///   Pongs and the final `Closed` too;
/// - [`send`](Self::send), [`send_fragment`](Self::send_fragment),
///   [`ping`](Self::ping), [`pong`](Self::pong): each writes its frame
///   before returning, then answers whatever already arrived;
/// - [`close`](Self::close): sends the Close and completes the closing
///   handshake.
///
/// Every method takes `&mut self`: one thread drives a connection. The
/// connection ends with a [`CloseInfo`] (the peer's code, ours, or 1006
/// when the transport ended without a Close); once it has, `read` and
/// `send` return [`Error::Closed`] with it.
///
/// Writes block until the transport takes the bytes, waking at the core's
/// deadlines to run its timers with what has arrived taken in (so a
/// keep-alive Ping the peer never answers ends a blocked `send` with 1006,
/// and a Pong that came counts), but messages are only read in between:
/// two peers that both only send large messages and never read can fill
/// each other's buffers, until `Config::send_timeout` (60 s by default)
/// ends the connection whose bytes nobody took. Read on the same thread
/// between sends (or use the tokio adapter for full duplex).
pub struct WebSocket<S: Transport> {
    stream: Stream<S>,
    conn: Connection,
    buf: Box<[u8]>,
    /// Events taken from the connection, not yet given to the application.
    events: VecDeque<Event>,
    /// What the events in `events` weigh (`Event::footprint`).
    held: usize,
    /// This connection's share of a budget shared with others: `held` is
    /// charged to it.
    holder: Option<Holder>,
    /// The read timeout armed on the stream (`None`: blocking).
    armed: Option<Duration>,
    /// The write timeout armed on the stream (`None`: none).
    write_armed: Option<Duration>,
    /// The stream supports read timeouts (timers can fire in `read`).
    timers: bool,
    /// The stream supports non-blocking mode (`send` can read ahead).
    nonblocking: bool,
    /// The transport failed: no more I/O on it.
    broken: bool,
    /// The transport has been ended (shut down).
    ended: bool,
    /// `close` was called: messages beyond the read-ahead bound are dropped.
    closing: bool,
    /// The transport failed while events received before the failure
    /// waited for the application: reported after them (before the final
    /// `Closed`), so nothing received is lost to the error.
    failure: Option<io::Error>,
}

impl<S: Transport + std::fmt::Debug> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("stream", &*self.stream)
            .field("conn", &self.conn)
            .field("unread_events", &self.events.len())
            .field("broken", &self.broken)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<S: Transport> WebSocket<S> {
    /// Wraps a stream whose opening handshake ran elsewhere (e.g. your own
    /// HTTP server), with the extensions `upgraded` negotiated
    /// (permessage-deflate when its `Config::deflate` is set, see
    /// [`Upgraded`]). `leftover` is what followed the handshake head in the
    /// last read (the peer's first frames); pass `&[]` if none.
    ///
    /// # Errors
    /// [`Error::Io`] when writing an answer to `leftover` fails.
    pub fn from_upgraded(stream: S, upgraded: Upgraded, leftover: &[u8]) -> Result<Self, Error> {
        let mut upgraded = upgraded;
        upgraded.config_mut().auto_close_reply = false;
        // a protocol error in the first bytes is the connection's first
        // failure: its Closed event says why
        let conn = upgraded.into_connection(Instant::now(), leftover);
        Self::with_settings(stream, conn, &Settings::default())
    }

    /// Runs `conn` (built by the handshake, leftover received) over `stream`.
    pub(crate) fn with_settings(
        stream: S,
        conn: Connection,
        settings: &Settings,
    ) -> Result<Self, Error> {
        let mut ws = Self {
            conn,
            buf: vec![0; settings.read_buffer_size.max(1)].into_boxed_slice(),
            events: VecDeque::new(),
            held: 0,
            holder: settings.budget.as_ref().map(Budget::holder),
            armed: Some(Duration::ZERO), // unknown: the first read arms for sure
            write_armed: None,
            timers: true,
            nonblocking: true,
            broken: false,
            ended: false,
            closing: false,
            failure: None,
            stream: Stream(Some(stream)),
        };
        // Blocking mode, no write timeout: the driving loop arms what it needs.
        for set in [
            ws.stream.set_nonblocking(false),
            ws.stream.set_write_timeout(None),
        ] {
            if let Err(e) = set
                && e.kind() != io::ErrorKind::Unsupported
            {
                return Err(ws.fail_io(e));
            }
        }
        ws.settle()?;
        Ok(ws)
    }

    // ----- the application's calls -----------------------------------------

    /// The next message. Blocks until one arrives, answering Pings and
    /// running keep-alive and close timers meanwhile.
    ///
    /// Pings and Pongs are skipped (use [`read_event`](Self::read_event) to
    /// see them; with `Config::auto_pong` off you must, to answer them).
    ///
    /// # Errors
    /// [`Error::Closed`] once the connection has ended (the transport is
    /// then already shut down), with how: the peer's Close code and reason,
    /// ours after a protocol error, or 1006 with `was_clean: false` when the
    /// transport ended without a Close or a timer expired. [`Error::Io`]
    /// when the transport fails, once the messages received before the
    /// failure have been read (then `Closed` with 1006 from the next call).
    pub fn read(&mut self) -> Result<Message, Error> {
        // the common case, straight from the queue: a message taken with
        // the read before (not moved through `read_event`'s result)
        if matches!(self.events.front(), Some(Event::Message(_)))
            && let Some(event) = self.events.pop_front()
        {
            self.unhold(event.footprint());
            if let Event::Message(message) = event {
                return Ok(message);
            }
        }
        loop {
            match self.read_event()? {
                Event::Message(message) => return Ok(message),
                Event::Closed(info) => return Err(Error::Closed(info)),
                Event::Ping(_) | Event::Pong(_) => {}
            }
        }
    }

    /// The next event: a message, a Ping (already answered when
    /// `Config::auto_pong` is on), a Pong, or `Closed` (once, last; the
    /// transport is then already shut down). Blocks as [`read`](Self::read).
    ///
    /// # Errors
    /// [`Error::Closed`] after the `Closed` event was returned;
    /// [`Error::Io`] when the transport fails, once the events received
    /// before the failure have been returned (the `Closed` event, 1006,
    /// comes next).
    pub fn read_event(&mut self) -> Result<Event, Error> {
        loop {
            // a failure waits behind what was received before it (input
            // the connection still decodes included) and for the end it
            // leads to: reported when that end is not clean (the peer's
            // Close may still be read after a failed write)
            if matches!(self.events.front(), None | Some(Event::Closed(_)))
                && !self.conn.decoding_pending()
                && self.failure.is_some()
                && let Some(info) = self.ended_with()
            {
                let failure = self.failure.take();
                if let Some(e) = failure.filter(|_| !info.was_clean) {
                    return Err(Error::Io(e));
                }
            }
            if let Some(event) = self.events.pop_front() {
                self.unhold(event.footprint());
                if matches!(event, Event::Closed(_)) {
                    // the end: the transport ends when the core says (it
                    // may not have been, when the end came in a send)
                    self.end_transport();
                }
                return Ok(event);
            }
            if let Some(info) = self.ended_with() {
                self.end_transport();
                return Err(Error::Closed(info));
            }
            if self.conn.awaits_close_reply() {
                // everything before the peer's Close (or a protocol
                // violation) has been read: answer it (or fail now)
                let _ = self.conn.reply_close(Instant::now());
                self.settle()?;
                continue;
            }
            if !self.conn.has_output() {
                // about to wait for the peer with nothing to hand over: an
                // idle connection keeps no large buffers (after
                // Config::release_idle_after of quiet, the first time
                // first_release_after, from the core's timer)
                self.conn.note_idle(Instant::now());
            }
            match self.read_once() {
                Ok(()) => {}
                // what was received before the failure is handed out first,
                // and the failure once its end is known (above)
                Err(Error::Io(e)) => self.failure = Some(e),
                // the end (the peer's Close read after a failed write): its
                // events, the final one included, come next
                Err(Error::Closed(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a whole message as one frame. Returns once it is written; then
    /// takes in, without blocking, what the peer already sent, so a waiting
    /// Ping is answered even by an application that only sends (messages
    /// that arrived are kept for `read`, up to `Config::max_unread_bytes`).
    ///
    /// # Errors
    /// [`Error::Closed`] if the connection has ended; [`Error::Misuse`]
    /// for a message the connection refuses; [`Error::Io`] when writing
    /// fails.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        let result = self.conn.send(message);
        self.after_queue(result)
    }

    /// Sends one fragment of a message (RFC 6455 section 5.4): the first
    /// call starts a message of `kind`, later calls continue it, and `fin`
    /// ends it. Other messages may not be sent until it ends; Pings and
    /// Pongs may. Text fragments may split a character; the whole message
    /// must be UTF-8.
    ///
    /// # Errors
    /// As [`send`](Self::send), plus [`Error::Misuse`] for a text fragment
    /// that makes the message invalid UTF-8 or a fragment of the other kind.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: impl Into<Bytes>,
        fin: bool,
    ) -> Result<(), Error> {
        let result = self.conn.send_fragment(kind, data.into(), fin);
        self.after_queue(result)
    }

    /// Sends a Ping (payload at most 125 bytes). Its Pong comes back as an
    /// [`Event::Pong`] from [`read_event`](Self::read_event).
    ///
    /// # Errors
    /// As [`send`](Self::send); [`Error::Misuse`] for a payload over 125
    /// bytes.
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        let result = self.conn.ping(payload.into());
        self.after_queue(result)
    }

    /// Sends a Pong: the answer to a Ping when `Config::auto_pong` is off,
    /// or an unsolicited heartbeat (RFC 6455 section 5.5.3).
    ///
    /// # Errors
    /// As [`ping`](Self::ping).
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        let result = self.conn.pong(payload.into());
        self.after_queue(result)
    }

    /// Closes the connection (RFC 6455 section 7.1.2) and waits for the end:
    /// sends our Close with `code` and `reason`, reads what the peer still
    /// sends until its Close arrives, `Config::close_timeout` passes, or the
    /// transport ends; then ends the transport when the core says (a
    /// server at once; a client first waits up to `Config::fin_wait` for
    /// the server to close TCP, RFC 6455 section 7.1.1). Messages not yet
    /// read, and those that arrive meanwhile (up to `max_message_size`
    /// bytes in all; beyond that they are dropped), stay readable with
    /// [`read`](Self::read). Closing after the end returns the end again:
    /// the same contract as the tokio adapter's `close`.
    ///
    /// Returns how the connection ended: clean with the peer's answering
    /// code, or 1006 with `was_clean: false` after a timeout or a lost
    /// transport.
    ///
    /// # Errors
    /// [`Error::Misuse`] for a code that may not be sent (1005, 1006,
    /// 1015, ...) or a reason over 123 bytes (nothing is sent);
    /// [`Error::Io`] when the transport fails during the close.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, Error> {
        if let Some(info) = self.ended_with() {
            self.end_transport();
            return Ok(info);
        }
        tether::CloseFrame::check(code, reason).map_err(|e| Error::Misuse(e.into()))?;
        // already closing (our Close sent on its own, e.g. the idle
        // timeout): wait for the end, as the tokio adapter does
        if matches!(self.conn.state(), State::Open | State::CloseReceived) {
            let now = Instant::now();
            if let Err(e) = self.conn.close(now, code, reason) {
                return Err(self.refused(e));
            }
        }
        self.closing = true;
        // Bounded by the core's timers: a peer that reads nothing must not
        // hold `close` past the close timeout.
        // A failed write ends nothing by itself: reading goes on to the end
        // (the peer's Close may be there), which says whether the failure
        // is reported.
        let mut failed = None;
        match self.flush_output() {
            Ok(()) | Err(Error::Closed(_)) => {}
            Err(Error::Io(e)) => failed = Some(e),
            Err(e) => return Err(e),
        }
        loop {
            if let Some(info) = self.ended_with() {
                self.end_transport();
                return match failed {
                    Some(e) if !info.was_clean => Err(Error::Io(e)),
                    _ => Ok(info),
                };
            }
            match self.read_once() {
                // ended meanwhile (a failed write of our last answer
                // says so): the loop returns how
                Ok(()) | Err(Error::Closed(_)) => {}
                Err(Error::Io(e)) => failed = Some(e),
                Err(e) => return Err(e),
            }
        }
    }

    // ----- accessors ---------------------------------------------------------

    /// The connection's state: `Open`, `CloseSent` during `close`, then
    /// `Closed` (a Close was exchanged or we failed the connection) or
    /// `Aborted` (transport lost, timeout).
    pub fn state(&self) -> State {
        self.conn.state()
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.conn.close_info()
    }

    /// The sans-IO connection inside, to inspect (role, config, queued
    /// output).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The transport, mutably. Reading or writing it directly corrupts the
    /// connection; use it for socket options.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The transport, giving up the connection (without closing it: no
    /// Close is sent, as it would be on drop), blocking, with no read or
    /// write timeout.
    pub fn into_inner(mut self) -> S {
        // as the application will use it: blocking, no timeouts of ours
        let _ = self.stream.set_nonblocking(false);
        let _ = self.stream.set_read_timeout(None);
        let _ = self.stream.set_write_timeout(None);
        match self.stream.0.take() {
            Some(stream) => stream,
            // only this method takes the stream, and it consumes `self`
            None => unreachable!("the stream is taken only by into_inner"),
        }
    }

    // ----- the driving loop -----------------------------------------------

    /// How the connection ended, if it has.
    fn ended_with(&self) -> Option<CloseInfo> {
        if self.conn.state().is_terminal() {
            self.conn.close_info().cloned()
        } else {
            None
        }
    }

    /// One blocking read, bounded by the next timer; its bytes, end of
    /// input or the timer go to the connection; then [`Self::settle`].
    fn read_once(&mut self) -> Result<(), Error> {
        if self.decode_pending() {
            return self.settle();
        }
        if self.broken {
            // the failed transport is not read again: what was taken in
            // before is all there is (the core ends with it)
            self.conn.receive_eof();
            return self.settle();
        }
        self.note_reading();
        let now = Instant::now();
        let deadline = self.conn.poll_timeout();
        if deadline.is_some_and(|d| d <= now) {
            // what arrived while the application was away first: a
            // deadline that waits on the peer must see it
            self.take_arrived();
            self.conn.handle_timeout(Instant::now());
            return self.settle();
        }
        self.arm_read_timeout(self.conn.timeout_in(now))?;
        let read = if self.conn.receives_into_payload() {
            self.read_into_payload()
        } else {
            self.read_plain()
        };
        match read {
            Ok(0) => self.conn.receive_eof(),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                self.note_reading();
                self.conn.handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // rustls: the peer closed TCP without close_notify
            Err(e) if tether::read_error_is_eof(&e) => self.conn.receive_eof(),
            Err(e) => return Err(self.fail_io(e)),
        }
        self.settle()
    }

    /// Reads straight into the buffer of the frame whose large payload is
    /// arriving (`Connection::receives_into_payload`), at most the read
    /// buffer's size at a time: `Read` needs initialised memory, so that
    /// piece is zero-filled first, which leaves its lines in cache for the
    /// read and the unmask that follow. Through the read buffer, each byte
    /// was copied in, then copied out while unmasked: at 1 MiB frames the
    /// copy out cost as much as the read. Gives the connection what
    /// arrived; how many bytes that was.
    fn read_into_payload(&mut self) -> io::Result<usize> {
        let Some(mut into) = self.conn.receive_buffer(self.buf.len()) else {
            return self.read_plain();
        };
        let want = into.remaining_mut();
        let body = &mut **into.get_mut();
        let start = body.len();
        // within what it holds: growing it would move what is there
        let piece = want.min(body.capacity() - start);
        if piece == 0 {
            // (the decoder reserves room before handing it out)
            let _ = self.conn.received(Instant::now());
            return self.read_plain();
        }
        body.resize(start + piece, 0);
        let read = self
            .stream
            .read_bounded(body.get_mut(start..).unwrap_or_default());
        body.truncate(start + *read.as_ref().unwrap_or(&0));
        // what arrived (nothing, on an error or the end) is taken; a
        // protocol error ends the connection as in `take_in`
        let _ = self.conn.received(Instant::now());
        read
    }

    /// Reads into the read buffer and gives the connection what arrived;
    /// how many bytes that was.
    fn read_plain(&mut self) -> io::Result<usize> {
        let n = self.stream.read_bounded(&mut self.buf)?;
        if n > 0 {
            self.take_in(n);
        }
        Ok(n)
    }

    /// Gives the connection the `n` bytes just read. A protocol error ends
    /// the connection (the Close with its code is queued and the Closed
    /// event says why).
    fn take_in(&mut self, n: usize) {
        let data = self.buf.get(..n).unwrap_or_default();
        let _ = self.conn.receive(Instant::now(), data);
    }

    /// Instead of reading: the next part of what the connection still has
    /// to decode (`Connection::decoding_pending`), a message it inflates
    /// over several turns (`Config::turn_bytes`; this adapter runs each
    /// connection on its caller's thread, so there is no one else to
    /// yield to, and each turn is a new one) or the next batch of events.
    /// Whether there was any.
    fn decode_pending(&mut self) -> bool {
        if !self.conn.decoding_pending() {
            return false;
        }
        self.conn.new_turn();
        let _ = self.conn.continue_decoding(Instant::now());
        true
    }

    fn arm_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        if !self.timers {
            return Ok(());
        }
        if timeout.is_none() && self.armed.is_none() {
            return Ok(());
        }
        match self.stream.set_read_timeout(timeout) {
            Ok(()) => {
                self.armed = timeout;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                self.timers = false;
                Ok(())
            }
            Err(e) => Err(self.fail_io(e)),
        }
    }

    /// After an operation queued something: write it, then read ahead.
    /// The write waits at most until the core's next deadline at a time,
    /// taking in what arrived meanwhile, so the core's timers run while
    /// the peer takes nothing (a keep-alive Ping unanswered aborts, as in
    /// the tokio adapter); when that ends the connection, the error says so.
    fn after_queue(&mut self, queued: Result<(), tether::Error>) -> Result<(), Error> {
        if let Err(e) = queued {
            if matches!(e, tether::Error::TransportFailed { .. }) {
                // reading on to the end, and its deadline, go on in an
                // application that only sends
                self.read_ahead();
            }
            return Err(self.refused(e));
        }
        self.flush_output()?;
        if self.conn.writing_over()
            && let Some(info) = self.ended_with()
        {
            let _ = self.settle();
            return Err(Error::Closed(info));
        }
        self.read_ahead();
        Ok(())
    }

    /// Brings the connection up to date before the application hands it
    /// something (the reconnecting client): what already arrived is taken
    /// in and the deadlines that passed while nobody called run, so a
    /// connection whose keep-alive ran out meanwhile says it has ended
    /// instead of taking a message it would throw away.
    pub(crate) fn catch_up(&mut self) {
        self.read_ahead();
    }

    /// Takes in what has already arrived without blocking, runs due timers,
    /// and writes what they queued (the Pong for a waiting Ping, a
    /// keep-alive). Failures end the connection; the next call reports them.
    fn read_ahead(&mut self) {
        if self.broken || self.conn.state().is_terminal() {
            return;
        }
        self.take_arrived();
        self.conn.handle_timeout(Instant::now());
        self.note_reading();
        let _ = self.settle();
    }

    /// Tells the core whether we read (`Connection::set_reading`): not
    /// while the messages waiting for the application weigh
    /// `Config::max_unread_bytes` or more, nor while a shared budget is
    /// spent and this connection holds some of it (the core decides,
    /// `Connection::budget_check`; it may evict this connection instead).
    fn note_reading(&mut self) {
        // the budget first, whatever the unread bound says: a connection at
        // its own bound may be the largest holder, to be evicted
        let budget_allows = self.budget_allows();
        let reading = self.held < self.conn.config().max_unread_bytes && budget_allows;
        self.conn.set_reading(Instant::now(), reading);
    }

    /// Whether the shared budget, if any, lets this connection read ahead,
    /// as the core decides. A connection that holds nothing always may (the
    /// application is reading: one message always gets through). Evicted
    /// (the budget stayed spent `Config::budget_timeout` and this one held
    /// the most): the messages waiting for the application are dropped,
    /// their charge released, and the core's Close 1013 and final event
    /// follow. No waker is registered: a blocking connection reads only
    /// inside the application's calls, so it looks again at its next one
    /// (its own held-back deadline, `Timer::HeldBack`, brings one while
    /// the application sends or reads).
    fn budget_allows(&mut self) -> bool {
        let Some(holder) = &self.holder else {
            return true;
        };
        match self.conn.budget_check(holder, Instant::now()) {
            BudgetCheck::Read => true,
            BudgetCheck::Wait => false,
            BudgetCheck::Evicted => {
                let dropped: usize = self
                    .events
                    .iter()
                    .filter(|e| !matches!(e, Event::Closed(_)))
                    .map(Event::footprint)
                    .sum();
                self.events.retain(|e| matches!(e, Event::Closed(_)));
                self.unhold(dropped);
                false
            }
        }
    }

    /// Whether reading ahead goes on after what it took so far: under the
    /// read-ahead bound, and not held back by the shared budget (the
    /// core's rule, `Holder::held_back`; the next `note_reading` decides
    /// what a spent budget means).
    fn reads_on(&self) -> bool {
        self.held < self.conn.config().max_unread_bytes
            && self.holder.as_ref().is_none_or(|h| !h.held_back())
    }

    /// Events weighing `bytes` now wait for the application.
    fn hold(&mut self, bytes: usize) {
        self.held += bytes;
        if let Some(holder) = &self.holder {
            holder.charge(bytes);
        }
    }

    /// Events weighing `bytes` were handed to the application (or dropped).
    fn unhold(&mut self, bytes: usize) {
        let bytes = bytes.min(self.held);
        self.held -= bytes;
        if let Some(holder) = &self.holder {
            holder.release(bytes);
        }
    }

    /// Takes in what has already arrived, without blocking (while the
    /// messages waiting for the application weigh less than
    /// `Config::max_unread_bytes`). Failures end the connection.
    fn take_arrived(&mut self) {
        self.note_reading();
        if !self.nonblocking || self.broken || self.conn.state().is_terminal() || !self.reads_on() {
            return;
        }
        match self.stream.set_nonblocking(true) {
            Ok(()) => {
                let failure = self.read_available();
                let restored = self.stream.set_nonblocking(false);
                if let Some(e) = failure.or(restored.err()) {
                    let _ = self.fail_io(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Unsupported => self.nonblocking = false,
            Err(e) => {
                let _ = self.fail_io(e);
            }
        }
    }

    /// Reads in non-blocking mode until nothing is left (or enough messages
    /// wait). Returns the transport's error, if it failed.
    fn read_available(&mut self) -> Option<io::Error> {
        // One turn of the core's (`Config::turn_bytes`): a peer that keeps
        // sending cannot hold `send` here.
        self.conn.new_turn();
        let mut first = true;
        // at least one pass (a turn of 0 bytes still answers a Ping)
        while core::mem::take(&mut first) || !self.conn.turn_spent() {
            if self.decode_pending() {
                self.drain_events();
                if !self.reads_on() || self.conn.state().is_terminal() {
                    return None;
                }
                continue;
            }
            match self.stream.read_bounded(&mut self.buf) {
                Ok(0) => {
                    self.conn.receive_eof();
                    return None;
                }
                Ok(n) => {
                    self.take_in(n);
                    self.drain_events();
                    if !self.reads_on() || self.conn.state().is_terminal() {
                        return None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if tether::read_error_is_eof(&e) => {
                    self.conn.receive_eof();
                    return None;
                }
                Err(e) => return Some(e),
            }
        }
        None
    }

    /// Takes the events, writes the output, and ends the transport once the
    /// connection has ended.
    fn settle(&mut self) -> Result<(), Error> {
        self.drain_events();
        let written = self.flush_output();
        // what the write brought (its events, the end); the next batch of
        // input only when the core says the unread events call for it
        // (`Connection::should_decode`, the tokio adapter's rule too): one
        // batch held at a time, not two
        if self.events.is_empty()
            || self.conn.queued().events > 0
            || self.conn.state().is_terminal()
            || self.conn.should_decode(self.events.len())
        {
            self.drain_events();
        }
        if self.conn.state().is_terminal() {
            self.end_transport();
        }
        written
    }

    /// Takes the core's events into `events`, weighed as they wait for the
    /// application. Answered Pings and Pongs are kept by the core's rule
    /// (`Connection::keeps_control_event`: only under the read-ahead bound,
    /// as the tokio adapter keeps them), so they never fill the bound that
    /// stops reading ahead: a peer's Pings are answered while the
    /// application only sends. After `close`, messages beyond the bound
    /// are kept or dropped by the core's rule too.
    fn drain_events(&mut self) {
        if !self.closing {
            // all at once (swapped with ours, or appended when ours holds
            // more), weighed as they were queued; when the core's queue is
            // empty, `take_events` decodes the next batch first: weighed
            // after the take
            let before = self.events.len();
            let queued = self.conn.queued();
            self.conn.take_events(&mut self.events);
            let (weight, controls) = if queued.events > 0 {
                let ends = usize::from(queued.ends);
                (queued.weight, queued.events > queued.messages + ends)
            } else {
                self.events.range(before..).fold((0, false), |(w, c), e| {
                    let control = matches!(e, Event::Ping(_) | Event::Pong(_));
                    (w + e.footprint(), c || control)
                })
            };
            if !controls || self.held.saturating_add(weight) < self.conn.config().max_unread_bytes {
                self.hold(weight);
                return;
            }
            // weighed one by one, dropping the Pings and Pongs that do not
            // fit
            let (conn, mut index, mut weight) = (&self.conn, 0, 0);
            let held = self.held;
            self.events.retain(|event| {
                index += 1;
                if index <= before {
                    return true;
                }
                let footprint = event.footprint();
                let kept = !matches!(event, Event::Ping(_) | Event::Pong(_))
                    || conn.keeps_control_event(held + weight, footprint);
                if kept {
                    weight += footprint;
                }
                kept
            });
            self.hold(weight);
            return;
        }
        // what is held beyond the read-ahead bound, as the tokio adapter
        // counts it for the core's rule
        let bound = self.conn.config().max_unread_bytes;
        while let Some(event) = self.conn.poll_event() {
            let kept = match &event {
                // read only to reach the peer's Close: bounded, dropped, as
                // the tokio adapter does (the core's rule)
                Event::Message(m) => self
                    .conn
                    .keeps_after_close(self.held.saturating_sub(bound), m.len()),
                // already answered: kept only while they fit the read-ahead
                // bound (the core's rule; a peer sending Pings while we wait
                // for its Close grew this without end)
                Event::Ping(_) | Event::Pong(_) => {
                    self.conn.keeps_control_event(self.held, event.footprint())
                }
                Event::Closed(_) => true,
            };
            if !kept {
                continue;
            }
            self.hold(event.footprint());
            self.events.push_back(event);
        }
    }

    /// Writes all queued output (vectored), retrying `Interrupted` and
    /// `WouldBlock`. Bytes are only taken off the queue once the transport
    /// accepted them. Each write waits at most until the core's next
    /// deadline; a deadline that passes goes to the core, with what arrived
    /// meanwhile (so a Pong to our keep-alive Ping counts): a keep-alive or
    /// close timeout aborts, the drain deadline gives up the output, so a
    /// peer that takes nothing holds the loop only as long as the core
    /// allows.
    fn flush_output(&mut self) -> Result<(), Error> {
        if self.broken || self.ended {
            return Ok(());
        }
        self.write_all_output()
    }

    /// Before a write: the core's next deadline, with a write timeout armed
    /// not to pass it; `None` when it had passed and went to the core (look
    /// again). The armed timeout is kept while it ends before the deadline
    /// (a write that times out early is retried), and armed anew at half
    /// the time left, so a stream of sends costs no system call each.
    fn write_deadline(&mut self) -> Option<Option<Instant>> {
        let now = Instant::now();
        // what the last write took (or the send before it queued) counts
        // from now: the idle timeout, `Config::send_timeout`
        self.conn.tell_time(now);
        let deadline = self.conn.poll_timeout();
        let wanted = match deadline {
            Some(at) if at <= now => {
                self.take_arrived();
                self.conn.handle_timeout(now);
                // a held-back deadline that just passed is acted on now
                // (eviction), not at the next deadline
                self.note_reading();
                self.drain_events();
                return None;
            }
            Some(at) => Some(at - now),
            None => None,
        };
        let arm = wanted.map(|left| (left / 2).max(tether::TIMER_RESOLUTION));
        if !timeout_fits(self.write_armed, wanted) && self.stream.set_write_timeout(arm).is_ok() {
            self.write_armed = arm;
        }
        // over TLS a blocked write may read (rustls completes its I/O in
        // both directions): that read is bounded the same way
        if !timeout_fits(self.armed, wanted) {
            let _ = self.arm_read_timeout(arm);
        }
        Some(deadline)
    }

    fn write_all_output(&mut self) -> Result<(), Error> {
        loop {
            let Some(deadline) = self.write_deadline() else {
                continue;
            };
            let output = self.conn.poll_output();
            if output.is_empty() {
                break;
            }
            let mut slices = [IoSlice::new(&[]); tether::Output::VECTORED_SLICES];
            let n = output.chunks_vectored(&mut slices);
            match self
                .stream
                .write_bounded(slices.get(..n).unwrap_or_default())
            {
                // nothing taken, no error: the transport cannot take more
                // (std::io's reading, and the tokio adapter's; a rustls
                // stream whose buffer is full says WouldBlock here instead,
                // `Transport::write_bounded`)
                Ok(0) => return Err(self.fail_write(io::ErrorKind::WriteZero.into())),
                Ok(written) => output.advance(written),
                Err(e) => self.write_failed(e, deadline)?,
            }
        }
        // what the transport holds itself (a TLS record), bounded the
        // same way: once the core says writing is over (the close timeout
        // aborted the connection, or the drain deadline passed) it is given
        // up with the rest (a TLS stream whose socket stays full never
        // flushes)
        // Those bytes wait for the peer as the queue's do: the core's send
        // timeout counts them until the flush completes (a flush that
        // blocks with nothing else armed blocked for ever): ours, or the
        // transport's own (a TLS alert rustls queued while reading, behind
        // a full socket). A plain socket holds none, and says so.
        if self.stream.holds_unwritten() {
            self.conn.set_unflushed(Instant::now(), true);
        }
        let flushed = loop {
            let Some(deadline) = self.write_deadline() else {
                continue;
            };
            if self.conn.writing_over() {
                break Ok(());
            }
            match self.stream.flush() {
                Ok(()) => break Ok(()),
                Err(e) => {
                    if let Err(e) = self.write_failed(e, deadline) {
                        break Err(e);
                    }
                }
            }
        };
        if self.conn.unflushed() {
            self.conn.set_unflushed(Instant::now(), false);
        }
        flushed
    }

    /// Decides whether a failed write is retried: a timeout at a core
    /// deadline is retried after the loop hands the deadline to the core;
    /// `WouldBlock` without one pauses briefly.
    fn write_failed(&mut self, e: io::Error, deadline: Option<Instant>) -> Result<(), Error> {
        match e.kind() {
            io::ErrorKind::Interrupted => Ok(()),
            _ if is_timeout(&e) => {
                if deadline.is_none() {
                    // a non-blocking stream, or a write timeout set outside
                    // this crate, and no deadline of the core's to wait
                    // for: pause for the core's timer resolution
                    std::thread::sleep(tether::TIMER_RESOLUTION);
                }
                Ok(())
            }
            _ => Err(self.fail_write(e)),
        }
    }

    /// Reading from the transport failed (or setting it up did): no more
    /// I/O is attempted, and the core decides the end with what it was
    /// given (`Connection::transport_failed`, then the end of input): the
    /// peer's clean close when its Close had arrived, else 1006.
    /// `Error::Closed` when the end is clean, else the I/O error.
    fn fail_io(&mut self, e: io::Error) -> Error {
        if !self.broken {
            self.broken = true;
            self.conn
                .transport_failed(Instant::now(), TransportFailure::Read(&e));
            self.conn.receive_eof();
        }
        self.failed_with(e)
    }

    /// Writing to the transport failed: nothing more is written, and
    /// reading goes on, first at once without blocking (TCP is in order: a
    /// peer that sent its Close and reset the connection made this write
    /// fail before we read that Close), then as the application reads;
    /// the core decides the end (`Connection::transport_failed`), bounded
    /// by its close timeout. `Error::Closed` when it has ended cleanly
    /// already, else the I/O error.
    fn fail_write(&mut self, e: io::Error) -> Error {
        self.conn
            .transport_failed(Instant::now(), TransportFailure::Write(&e));
        // what has arrived, without blocking, within the read-ahead bound
        // (a read error then ends the input)
        self.take_arrived();
        self.failed_with(e)
    }

    /// After a failure: the events the core queued, the transport ended
    /// once the connection has, and the error to report.
    fn failed_with(&mut self, e: io::Error) -> Error {
        self.drain_events();
        if self.conn.state().is_terminal() {
            self.end_transport();
        }
        match self.ended_with() {
            Some(info) if info.was_clean => Error::Closed(info),
            _ => Error::Io(e),
        }
    }

    /// An operation the connection refused: `Closed` when it has ended.
    fn refused(&self, e: tether::Error) -> Error {
        match (e, self.ended_with()) {
            (tether::Error::InvalidState { .. }, Some(info)) => Error::Closed(info),
            // the transport failed (a write): reported as the I/O failure
            // it is, until the end is known
            (e @ tether::Error::TransportFailed { .. }, _) => {
                Error::Io(io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()))
            }
            (e, _) => Error::Misuse(e),
        }
    }

    /// Ends the transport once the connection has ended, when the core
    /// says (RFC 6455 section 7.1.1: a client whose closing handshake
    /// completed first waits, up to `Config::fin_wait`, for the server to
    /// close TCP); then shuts it down.
    fn end_transport(&mut self) {
        if let Some(holder) = &self.holder
            && self.conn.state().is_terminal()
        {
            // ended (cleanly or on a failure): the core retires its share
            // of the budget (what it holds waits for its application only;
            // never evicted, nor the largest share that keeps others from
            // being)
            let _ = self.conn.budget_check(holder, Instant::now());
        }
        if self.ended {
            return;
        }
        self.ended = true;
        if !self.broken {
            // a client waits for the server to close first
            self.await_peer_end(true);
        }
        // what the transport still writes as it ends (TLS close_notify):
        // within what is left of the core's drain deadline, or, once
        // writing is over (the peer took nothing), only what it takes at once
        if self.conn.writing_over() {
            let _ = self.stream.set_nonblocking(true);
        } else {
            let left = self
                .conn
                .timeout_in(Instant::now())
                .unwrap_or(self.conn.config().close_timeout);
            if self.stream.set_write_timeout(Some(left)).is_ok() {
                self.write_armed = Some(left);
            }
        }
        let _ = self.stream.shutdown();
        if !self.broken && self.conn.close_expected() {
            // a server that failed the connection lingers for the client's
            // end, so that what it still sends is read, not reset. Its
            // reads wait, bounded by the core's timer, whatever mode the
            // shutdown needed: non-blocking, each read would find nothing
            // at once, count as the timer's wake-up, and spin until
            // fin_wait (when it outlasts the drain deadline)
            let _ = self.stream.set_nonblocking(false);
            self.await_peer_end(false);
        }
    }

    /// Reads (and drops) while the core awaits the peer's end of the
    /// transport (`Connection::close_expected`), bounded by the core's
    /// timer: before our shutdown while the core says not to shut down yet
    /// (a client, for the server to close first), or after it.
    fn await_peer_end(&mut self, before_shutdown: bool) {
        while self.conn.close_expected()
            && !(before_shutdown && self.conn.should_close_transport())
            && self.timers
        {
            let now = Instant::now();
            let Some(at) = self.conn.poll_timeout() else {
                return;
            };
            if at <= now {
                self.conn.handle_timeout(now);
                continue;
            }
            let timeout = self.conn.timeout_in(now);
            if self.stream.set_read_timeout(timeout).is_err() {
                return;
            }
            self.armed = timeout;
            match self.stream.read_bounded(&mut self.buf) {
                Ok(0) => self.conn.receive_eof(),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => self.conn.handle_timeout(Instant::now()),
                Err(_) => self.conn.receive_eof(),
            }
        }
    }
}

/// Dropping a connection that is still open says goodbye, as the tokio
/// adapter does: our Close with 1001 (going away), written without
/// blocking (what the transport takes at once), without waiting for the
/// answer; then the transport is shut down. The peer sees 1001 rather than
/// 1006. Use [`WebSocket::close`] to wait for the answer.
impl<S: Transport> Drop for WebSocket<S> {
    fn drop(&mut self) {
        let Some(stream) = self.stream.0.as_mut() else {
            return; // into_inner took the transport
        };
        if self.broken || self.ended {
            return;
        }
        // the goodbye (1001) is written without waiting: non-blocking, or,
        // on a transport that cannot be, with the shortest timeouts (a TLS
        // write may read too); one that has neither drops without it (a
        // write could block forever)
        let quick = Some(tether::TIMER_RESOLUTION);
        if self.conn.go_away(Instant::now())
            && (stream.set_nonblocking(true).is_ok()
                || (stream.set_write_timeout(quick).is_ok()
                    && stream.set_read_timeout(quick).is_ok()))
        {
            let output = self.conn.poll_output();
            while !output.is_empty() {
                let mut slices = [IoSlice::new(&[]); tether::Output::VECTORED_SLICES];
                let n = output.chunks_vectored(&mut slices);
                match stream.write_vectored(slices.get(..n).unwrap_or_default()) {
                    Ok(0) | Err(_) => break,
                    Ok(written) => output.advance(written),
                }
            }
            let _ = stream.flush();
        }
        // a drop never waits: TLS close_notify goes only if taken at once
        let _ = stream.set_nonblocking(true);
        let _ = stream.shutdown();
    }
}

/// Whether a timeout armed on the stream (`armed`) may stay for a wait of
/// `left` (`None`: no deadline): it must not end after the deadline, and
/// is renewed once it would wake a blocked call four times or more before
/// it (armed at half the time left, so a stream of calls costs no system
/// call each, and a far deadline after a near one is not waited for in
/// 1 ms steps).
fn timeout_fits(armed: Option<Duration>, left: Option<Duration>) -> bool {
    match (armed, left) {
        (None, None) => true,
        (Some(armed), Some(left)) => armed <= left && armed >= left / 4,
        _ => false,
    }
}

/// The transport, in an `Option` only so that [`WebSocket::into_inner`] can
/// take it out of a type that implements `Drop`; it is `Some` for the whole
/// life of the `WebSocket`.
struct Stream<S>(Option<S>);

impl<S> std::ops::Deref for Stream<S> {
    type Target = S;

    fn deref(&self) -> &S {
        match &self.0 {
            Some(stream) => stream,
            None => unreachable!("the stream is taken only by into_inner"),
        }
    }
}

impl<S> std::ops::DerefMut for Stream<S> {
    fn deref_mut(&mut self) -> &mut S {
        match &mut self.0 {
            Some(stream) => stream,
            None => unreachable!("the stream is taken only by into_inner"),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::io::Write;
    use std::os::unix::net::UnixStream;

    use tether::upgrade::Upgraded;
    use tether::{Config, EVENT_BATCH, Message, Role};

    use super::WebSocket;

    /// RFC 6455 section 10.4 (limits on what a peer makes us hold): one
    /// read of many tiny frames is decoded a batch at a time, and the
    /// adapter takes the next batch only once the application has read
    /// the one before. It took a second batch after each write (two
    /// batches of events held, the queue regrown for them on every new
    /// connection: a third of the time of reading a burst of 16-byte
    /// messages went to page faults).
    #[test]
    fn rfc6455_10_4_a_burst_of_tiny_frames_is_held_one_batch_at_a_time() {
        let (mut peer, ours) = UnixStream::pair().unwrap();
        let count = 4 * EVENT_BATCH;
        // client frames, masked with a zero key: 16 bytes each
        let frame = [[0x82, 0x80 | 16, 0, 0, 0, 0].as_slice(), &[7; 16]].concat();
        peer.write_all(&frame.repeat(count)).unwrap();
        let upgraded = Upgraded::new(Role::Server, Config::default());
        let mut ws = WebSocket::from_upgraded(ours, upgraded, &[]).unwrap();
        for read in 0..count {
            assert_eq!(ws.read().unwrap(), Message::binary(vec![7; 16]));
            let held = ws.events.len() + ws.conn.queued().events;
            assert!(
                held < EVENT_BATCH,
                "after read {read}: {held} events decoded and not yet read"
            );
        }
    }
}
