//! The sans-IO connection state machine.
//!
//! Owns one WebSocket connection after its opening handshake: frame decoding,
//! message reassembly, incremental UTF-8 checks, ping/pong, keep-alive and the
//! closing handshake. It never does I/O and never reads a clock: bytes and
//! time come in as arguments, events and bytes go out.
//!
//! # Driving a connection
//!
//! 1. Bytes read from the transport: [`Connection::receive`]; the transport
//!    reached end of input: [`Connection::receive_eof`].
//! 2. After every call that can change state, drain
//!    [`Connection::poll_event`] until `None`, and write
//!    [`Connection::poll_output`] to the transport.
//! 3. Arm one timer at [`Connection::poll_timeout`]; when it fires, call
//!    [`Connection::handle_timeout`]. Spurious calls are harmless.
//! 4. When [`Connection::state`] is `Closed` or `Aborted` and the output is
//!    written, close the transport (a client may first wait a little for
//!    the server to close it, RFC 6455 section 7.1.1).
//!
//! Pass input in chunks of bounded size (a read buffer) and drain events
//! between chunks: everything the connection holds is then bounded by the
//! [`Config`] limits.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use core::fmt;
use core::time::Duration;
use std::time::Instant;

use bytes::buf::Limit;
use bytes::{BufMut, Bytes, BytesMut};
use tether_frame::{
    Decoded, FrameDecoder, FrameEncoder, FrameHeader, Limits, MaskSource, OpCode, Role, Rsv,
};

use crate::close::parse_close_payload;
use crate::output::ZERO_COPY_MIN;
use crate::timers::{Timer, Timers};
use crate::utf8::Utf8Stream;
use crate::{
    CloseCode, CloseFrame, CloseInfo, Config, DecodeJob, Error, Extension, Initiator, InvalidInput,
    KeepAlive, MAX_CLOSE_REASON, Message, MessageKind, Output, Payload, ProtocolError, State,
    Utf8Bytes,
};

/// A received frame's payload on its way through the frame rules: split
/// off the read buffer, or copied out of it (small, held inline).
enum Body {
    Split(BytesMut),
    Small(Payload),
}

/// A received payload as the frame rules take it: [`Body`] or [`Payload`]
/// (`handle_frame` is made once for each, so neither waits on the other's
/// case in the fast path).
trait Received {
    fn is_utf8(&self) -> bool;
    fn into_payload(self) -> Payload;
    fn into_body(self) -> Body;
}

impl Received for BytesMut {
    #[inline(always)]
    fn is_utf8(&self) -> bool {
        simdutf8::basic::from_utf8(self).is_ok()
    }
    #[inline(always)]
    fn into_payload(self) -> Payload {
        Payload::from(self)
    }
    #[inline(always)]
    fn into_body(self) -> Body {
        Body::Split(self)
    }
}

impl Received for Payload {
    #[inline(always)]
    fn is_utf8(&self) -> bool {
        Payload::is_utf8(self)
    }
    #[inline(always)]
    fn into_payload(self) -> Payload {
        self
    }
    #[inline(always)]
    fn into_body(self) -> Body {
        Body::Small(self)
    }
}

impl core::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Split(bytes) => bytes,
            Self::Small(payload) => payload,
        }
    }
}

/// Something that happened on the connection, from [`Connection::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole data message.
    Message(Message),
    /// The peer sent a Ping. With `Config::auto_pong` the Pong is already
    /// queued; otherwise answer with [`Connection::pong`].
    Ping(Bytes),
    /// The peer sent a Pong: an answer to our Ping, or unsolicited (RFC 6455
    /// section 5.5.3). Never answered.
    Pong(Bytes),
    /// The connection ended; the last event. See [`CloseInfo`].
    Closed(CloseInfo),
}

/// A frame the connection sent of its own accord, not asked by a call of
/// the application: for logs and monitors ([`Connection::poll_sent`]), so
/// a user can see that their own keep-alive went out (some servers drop a
/// client for an unsolicited frame).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sent {
    /// A keep-alive Ping (`KeepAlive::Ping`), carrying its counter.
    KeepAlivePing(Bytes),
    /// A keep-alive Pong (`KeepAlive::Pong`): an unsolicited heartbeat.
    KeepAlivePong,
    /// The answer to the peer's Ping (`Config::auto_pong`), with its payload.
    Pong(Bytes),
    /// The application-level heartbeat message (`Config::heartbeat`).
    Heartbeat,
}

/// The most [`Sent`] notices kept for [`Connection::poll_sent`]; older ones
/// are dropped, so a connection nobody asks holds little.
const SENT_NOTICES: usize = 16;

impl Event {
    /// What the event weighs while it waits for the application, counted
    /// against `Config::max_unread_bytes`: its payload plus
    /// [`Event::OVERHEAD`], so empty messages and Pings cannot pile up for
    /// free.
    pub fn footprint(&self) -> usize {
        Self::OVERHEAD
            + match self {
                Self::Message(m) => m.len(),
                Self::Ping(p) | Self::Pong(p) => p.len(),
                Self::Closed(_) => 0,
            }
    }

    /// The fixed part of [`Event::footprint`]: about what an event and its
    /// queue slot cost beyond the payload.
    pub const OVERHEAD: usize = 64;
}

/// A message being received.
#[derive(Debug)]
struct Incoming {
    kind: MessageKind,
    /// RSV bits of the first frame (an extension transformed the message).
    rsv: Rsv,
    buf: BytesMut,
    /// Total payload declared by the frames so far.
    declared: u64,
    fragments: usize,
    /// Present for text that is checked as it arrives.
    utf8: Option<Utf8Stream>,
}

/// A fragmented message being sent.
#[derive(Debug)]
struct Sending {
    kind: MessageKind,
    utf8: Utf8Stream,
}

const SEND_STATES: &[State] = &[State::Open, State::CloseReceived];

/// The most payload bytes a message may take on the wire: the
/// message-size limit, and for one an extension transformed (RSV bits set:
/// permessage-deflate) 0.1% and 64 bytes more, since data that does not
/// compress comes out a little larger (stored blocks cost 5 bytes each);
/// what it inflates to is held to the limit itself as it is inflated.
fn wire_max(max: usize, rsv: Rsv) -> usize {
    if rsv.is_empty() {
        max
    } else {
        crate::config::transformed_max(max)
    }
}

/// The reason of the Close this endpoint sends when `Config::idle_timeout`
/// passes (with 1001).
const IDLE_TIMEOUT_REASON: &str = "idle timeout";

/// The connection's source of client mask keys, for its encoder.
struct Masks(Box<dyn MaskSource + Send>);

impl MaskSource for &mut Masks {
    #[inline]
    fn next_key(&mut self) -> [u8; 4] {
        self.0.next_key()
    }
}

/// Wire size of a Pong beyond its payload, counted against
/// `Config::max_pending_pongs`: a 2-byte header and a 4-byte mask.
const PONG_OVERHEAD: usize = 6;

/// The largest spare frame buffer an idle connection keeps for reuse
/// ([`Connection::release_idle_memory`]).
pub const IDLE_SPARE_MAX: usize = 64 * 1024;

/// The work a received frame counts for in a turn (`Config::turn_bytes`)
/// beyond its bytes: parsing it, its event or answer cost about what
/// copying and unmasking 256 bytes does, so a flood of tiny frames gets
/// about as much time per turn as bulk data.
pub const TURN_FRAME_COST: usize = 256;

/// The most events one decoding pass queues: once the connection's queue
/// holds this many, decoding stops and the rest of the input waits, as
/// bytes, in the input buffer ([`Connection::decoding_pending`]) until the
/// queue is taken. So the queue's allocation stays within
/// `EVENT_BATCH` x `size_of::<Event>()` (20 KiB) however many tiny frames
/// one read brings (a 64 KiB read of 16-byte messages is about 3,000),
/// and an adapter that swaps queues with it holds no more either: a
/// connection's peak memory stays under the allocator's thresholds
/// (glibc maps and unmaps larger blocks, a page fault per page each time
/// a connection is new). Decoding in batches of this size costs nothing
/// measurable.
pub const EVENT_BATCH: usize = 512;

/// The least pending payload worth reading straight into its frame's
/// buffer ([`Connection::receive_buffer`]); less goes through the input
/// buffer.
const DIRECT_READ_MIN: usize = 4096;

/// The most [`Connection::receive_buffer`] hands out of the input buffer
/// while large payloads arrive.
const AFTER_LARGE_READ: usize = 2 * 1024;

/// A frame large enough that the frames after it are read the way large
/// payloads are (see `Connection::note_large_payloads`), however little of
/// it is still to come: half the input buffer's reads (64 KiB, as both
/// adapters read), so most of it is read straight into its own buffer.
const LARGE_PAYLOAD: u64 = 32 * 1024;

/// The buffer [`Connection::receive_buffer`] handed out, for
/// [`Connection::received`] to take from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direct {
    None,
    /// The pending large frame's payload buffer.
    Payload,
    /// The input buffer, which held this many bytes before.
    Input(usize),
}

/// What failed in a transport, as an adapter tells
/// [`Connection::transport_failed`]: the connection's end names it in
/// these words, whichever adapter and transport report it.
#[derive(Clone, Copy, Debug)]
pub enum TransportFailure<'a> {
    /// Reading failed (or setting the transport up to read did).
    Read(&'a std::io::Error),
    /// Writing or flushing failed.
    Write(&'a std::io::Error),
}

impl fmt::Display for TransportFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "read failed: {e}"),
            Self::Write(e) => write!(f, "write failed: {e}"),
        }
    }
}

/// One WebSocket connection, either role, after the opening handshake.
pub struct Connection {
    role: Role,
    /// Shared with every connection made from the same `Arc` (a server's).
    config: Arc<Config>,
    state: State,
    /// The buffers and queues of bytes in flight; `None` once the
    /// connection has been quiet for `Config::release_idle_after` with
    /// nothing in them ([`Connection::release_idle_memory`]), so an idle
    /// connection carries only what it needs to wake up again.
    active: Option<Box<Active>>,
    /// Encoded frames waiting to be written (apart from [`Active`]: an
    /// adapter looks at it after every step, and must not rebuild the rest
    /// to find it empty).
    output: Output,
    /// Frames sent of our own accord, newest last, at most `SENT_NOTICES`
    /// (boxed on the first, freed with the idle buffers once taken; apart
    /// from [`Active`]: a keep-alive on an idle connection notes one, and an
    /// adapter that never takes them must not keep the rest alive).
    #[allow(
        clippy::box_collection,
        reason = "8 bytes on every connection instead of 32: most never note a frame"
    )]
    sent: Option<Box<VecDeque<Sent>>>,
    /// Large payloads have been arriving (read into their own buffers):
    /// reads into the input buffer between them are kept small.
    large_payloads: bool,
    /// A protocol violation found while events before it wait for the
    /// application: the failure is carried out once they are taken.
    deferred_failure: Option<Box<ProtocolError>>,
    /// The latest time passed in (for deadlines set outside a timed call).
    now: Instant,
    /// Where the mask keys of the frames a client sends come from: each
    /// frame is encoded by a [`FrameEncoder`] made of the role and these (a
    /// stored encoder would repeat the role in every connection).
    masks: Masks,
    extension: Option<Box<dyn Extension>>,
    /// Every deadline: keep-alive, its Pong, heartbeat, close, drain, FIN wait.
    timers: Timers,
    /// The counter the last keep-alive Ping carried; its Pong is due while
    /// the `PongDeadline` timer runs ([`Connection::pong_due`]).
    ping_counter: u64,
    close_info: Option<Box<CloseInfo>>,
    /// Whether the transport reached end of input.
    input_end: InputEnd,
    /// The transport failed ([`Connection::transport_failed`]): nothing
    /// more is written, and an end without the peer's Close is 1006 for
    /// the reason kept in `Active::failure`.
    transport_failed: bool,
    /// Output was given up (the peer took nothing until the drain deadline,
    /// or the transport failed).
    output_discarded: bool,
    /// The drain deadline passed.
    drain_expired: bool,
    /// A data message was sent since the heartbeat timer was armed.
    sent_since_heartbeat: bool,
    /// A data message was sent since the last call that told the time
    /// (`send` takes none), with an idle timeout to put off from that
    /// call's `now`, not from the time before the send.
    sent_untimed: bool,
    /// The peer's Close, while we have not answered it (`CloseReceived`).
    peer_close: Option<Box<CloseFrame>>,
    /// Who sent our Close: the application (`close`), or this endpoint on
    /// its own (the idle timeout).
    our_close_by: Initiator,
    /// A received message the extension is still decoding (over several
    /// turns); input waits behind it.
    decoding: Option<Box<Decoding>>,
    /// Decoding stopped with [`EVENT_BATCH`] events queued: the input
    /// buffer holds more, to be decoded once the queue is taken.
    input_held: bool,
    /// Work done since the turn began (`Config::turn_bytes`).
    turn_work: usize,
    /// The held-back timer fired: at the next budget check, the largest
    /// holder is evicted.
    budget_overdue: bool,
    /// Idle buffers were freed after `Config::release_idle_after` of quiet
    /// (until the next traffic).
    idle_released: bool,
    /// After our Close, the shared budget was spent at the last check:
    /// messages beyond the unread bound are dropped, not kept.
    closing_over_budget: bool,
    /// They were freed at least once (later quiet waits the whole
    /// `release_idle_after`, not `Config::first_release_after`).
    released_before: bool,
    /// The adapter holds off reading for the application
    /// ([`Connection::set_reading`]): deadlines that wait on the peer wait.
    not_reading: bool,
    /// When bytes last went in or out (as far as `now` was known).
    last_traffic: Instant,
}

/// What a connection holds only while bytes move: the decoder and the
/// input buffer, the message being reassembled and the events not yet
/// taken, owed Pongs and a fragmented send's state (the output queue and
/// the notices of frames sent are apart: see their fields).
/// Built on first use and dropped (all of it at once) when the connection
/// has been quiet for `Config::release_idle_after` with all of it empty.
/// Whether the transport's input has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InputEnd {
    /// Not yet.
    Open,
    /// Ended while input that came before it waited to be decoded (behind
    /// a full batch of events, or a message inflating over turns): the end
    /// is carried out once that input is (see [`Connection::receive_eof`]).
    Waits,
    /// Ended, and carried out.
    Reached,
}

struct Active {
    decoder: FrameDecoder,
    input: BytesMut,
    /// The size of `input`'s allocation (0: none): after frames are split
    /// off its capacity reads 0, but it still holds the allocation. Set
    /// with `input_base` whenever `input` gets a new one
    /// ([`Active::input_room`]).
    input_alloc: usize,
    /// Where that allocation starts (an address, only compared): a
    /// payload that lies in it keeps all of it alive.
    input_base: usize,
    /// What the messages queued since that allocation was new (or last
    /// free) weigh ([`Event::footprint`]), but those copied out of it
    /// ([`Active::settle_pins`]).
    input_paid: usize,
    /// `events` at the last [`Active::settle_pins`]: the ones after it
    /// were queued since.
    events_mark: usize,
    /// How many of those are not messages (Ping, Pong, the final event).
    controls_new: usize,
    /// Which buffer [`Connection::receive_buffer`] last handed out.
    direct: Direct,
    /// Bytes the last read brought (`receive` or `received`).
    last_read: usize,
    events: EventQueue,
    incoming: Option<Incoming>,
    /// `on_frame_start` ran for the frame the decoder is in the middle of.
    frame_started: bool,
    /// Payload bytes of that frame already fed to the UTF-8 check.
    frame_checked: usize,
    /// Pongs owed to Pings, oldest first, not yet queued for output, and
    /// their size on the wire (bounded by `Config::max_pending_pongs`).
    pending_pongs: VecDeque<Bytes>,
    pending_pong_bytes: usize,
    sending: Option<Sending>,
    /// Bytes of the message the peer is sending, when last counted (for
    /// `Config::message_timeout`; here, not in the connection: only a
    /// connection with input in flight has a message in progress).
    progress_seen: usize,
    /// Why the transport failed ([`Connection::transport_failed`]), for
    /// the end: kept here, not in the connection, which only a failing
    /// one needs.
    failure: Option<Box<str>>,
}

/// What the events waiting to be taken come to ([`Connection::queued`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queued {
    /// How many there are.
    pub events: usize,
    /// How many of them are messages.
    pub messages: usize,
    /// What they weigh: the sum of their [`Event::footprint`]s, as counted
    /// against `Config::max_unread_bytes`.
    pub weight: usize,
    /// Whether the last is the final [`Event::Closed`].
    pub ends: bool,
}

/// The events waiting to be taken, with what they weigh and how many are
/// not messages, counted as they are queued: an adapter weighs a batch
/// before taking it ([`Connection::take_events`] empties the queue)
/// without a pass over its events. Once events are taken one by one
/// ([`Connection::poll_event`]), the counts are recounted when asked
/// instead (a pop would otherwise weigh each event again).
struct EventQueue {
    queue: VecDeque<Event>,
    /// The sum of their [`Event::footprint`]s, while `counted`.
    weight: usize,
    /// How many are Pings, Pongs or the final `Closed`, while `counted`.
    controls: usize,
    /// No event was popped since the queue was last empty (else the
    /// counts are stale).
    counted: bool,
}

impl Default for EventQueue {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            weight: 0,
            controls: 0,
            counted: true,
        }
    }
}

impl EventQueue {
    #[inline(always)]
    fn push(&mut self, event: Event) {
        self.weight += event.footprint();
        self.controls += usize::from(!matches!(event, Event::Message(_)));
        self.queue.push_back(event);
    }

    #[inline]
    fn pop(&mut self) -> Option<Event> {
        let event = self.queue.pop_front()?;
        if self.queue.is_empty() {
            self.reset_counts();
        } else {
            self.counted = false;
        }
        Some(event)
    }

    /// What they weigh, and how many are not messages.
    fn counts(&self) -> (usize, usize) {
        if self.counted {
            return (self.weight, self.controls);
        }
        self.queue.iter().fold((0, 0), |(weight, controls), e| {
            (
                weight + e.footprint(),
                controls + usize::from(!matches!(e, Event::Message(_))),
            )
        })
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.reset_counts();
    }

    /// Empty: counted again from nothing.
    fn reset_counts(&mut self) {
        (self.weight, self.controls, self.counted) = (0, 0, true);
    }

    /// Moves every event to the back of `into`. The shorter queue's events
    /// move, not the longer's: when `into` holds fewer (and this queue has
    /// room for them in front), they go in front of these and the two
    /// queues are swapped, so their allocations are reused in turn (a read
    /// of 16-byte frames queues a whole batch).
    fn take_into(&mut self, into: &mut VecDeque<Event>) {
        let room = self.queue.capacity() - self.queue.len();
        if into.len() < self.queue.len() && into.len() <= room {
            while let Some(event) = into.pop_back() {
                self.queue.push_front(event);
            }
            core::mem::swap(&mut self.queue, into);
        } else {
            into.append(&mut self.queue);
        }
        self.reset_counts();
    }
}

/// The decoder's limits: the configured frame size, and the RSV bits the
/// negotiated extension uses.
fn decoder_limits(config: &Config, extension: Option<&dyn Extension>) -> Limits {
    Limits {
        max_frame_size: config.max_frame_size as u64,
        allowed_rsv: extension.map_or(Rsv::NONE, |e| e.rsv()),
    }
}

#[cold]
#[inline(never)]
fn activate(role: Role, config: &Config, extension: Option<&dyn Extension>) -> Box<Active> {
    Box::new(Active::new(role, decoder_limits(config, extension)))
}

impl Active {
    fn new(role: Role, limits: Limits) -> Self {
        Self {
            decoder: FrameDecoder::new(role, limits),
            input: BytesMut::new(),
            input_alloc: 0,
            input_base: 0,
            input_paid: 0,
            events_mark: 0,
            controls_new: 0,
            direct: Direct::None,
            last_read: 0,
            events: EventQueue::default(),
            incoming: None,
            frame_started: false,
            frame_checked: 0,
            pending_pongs: VecDeque::new(),
            pending_pong_bytes: 0,
            sending: None,
            progress_seen: 0,
            failure: None,
        }
    }

    /// Holds nothing a later turn needs: no input (not even part of a
    /// header), no frame or message half received, nothing to hand over
    /// or write, no fragmented send open. (A buffer handed out by
    /// `receive_buffer` that the read left empty holds nothing either.)
    fn is_empty(&self) -> bool {
        self.input.is_empty()
            && self.decoder.pending_header().is_none()
            && !self.frame_started
            && self.incoming.is_none()
            && self.events.is_empty()
            && self.pending_pongs.is_empty()
            && self.sending.is_none()
    }

    /// Bounds what messages split off the input buffer keep alive. Each
    /// whole message is split off the buffer it was read into, without a
    /// copy, and so keeps all of that allocation alive (one of at most
    /// `Payload::INLINE_CAPACITY` bytes is copied into the message
    /// instead, and keeps nothing). The messages
    /// queued since the last call stay so while the messages queued since
    /// the allocation was new (or last free) weigh at least half of it
    /// ([`Event::footprint`]); otherwise those of them in it are copied
    /// out. So an allocation kept alive by messages the application has
    /// not taken is at most twice what they weigh (the oldest such
    /// allocation, its first messages taken, aside), and a 16-byte message
    /// after 64 KiB of empty fragments or Pings (which weigh nothing once
    /// read: Pings are copied, and dropped by an adapter whose queue is
    /// full) does not keep the 64 KiB. Every message weighs at least
    /// [`Event::OVERHEAD`], so many small ones settle without looking at
    /// each; a few large ones are weighed one by one.
    fn settle_pins(&mut self) {
        let mark = core::mem::replace(&mut self.events_mark, self.events.len());
        let controls = core::mem::take(&mut self.controls_new);
        let mark = mark.min(self.events.len());
        let messages = (self.events.len() - mark).saturating_sub(controls);
        if messages == 0 {
            return;
        }
        let half = self.input_alloc.div_ceil(2);
        let mut weight = messages * Event::OVERHEAD;
        if self.input_paid + weight < half {
            weight += self
                .events
                .queue
                .range(mark..)
                .map(|e| match e {
                    Event::Message(m) => m.len(),
                    _ => 0,
                })
                .sum::<usize>();
        }
        if self.input_paid + weight >= half {
            self.input_paid += weight;
        } else {
            self.copy_out(mark);
        }
    }

    /// Copies the messages queued from `mark` on that lie in the input
    /// buffer's allocation into their own.
    #[cold]
    #[inline(never)]
    fn copy_out(&mut self, mark: usize) {
        let (base, alloc) = (self.input_base, self.input_alloc);
        // (a copy weighs what the original did: the queue's weight holds)
        for event in self.events.queue.range_mut(mark..) {
            if let Event::Message(m) = event
                && lies_in(m.as_bytes(), base, alloc)
            {
                *m = match m {
                    Message::Text(t) => Message::Text(Utf8Bytes::from_validated(
                        Payload::copy_from_slice(t.as_bytes()),
                    )),
                    Message::Binary(b) => Message::Binary(Payload::copy_from_slice(b)),
                };
            }
        }
    }

    /// Room for `n` more bytes in the input buffer: in place when nothing
    /// split off it is still alive, else in an allocation of its own, of
    /// just what it needs (the bytes it holds move along; a message half
    /// reassembled in it is copied out, so no message keeps an allocation
    /// that is no longer the input buffer's unaccounted).
    fn input_room(&mut self, n: usize) {
        if self.input.capacity() - self.input.len() >= n {
            return;
        }
        self.settle_pins();
        if self.input_alloc > 0 && self.input.try_reclaim(n) {
            // nothing split off it is alive
            self.input_paid = 0;
            return;
        }
        self.unpin_incoming();
        let len = self.input.len();
        // doubling while input accumulates (behind a message still being
        // decoded), else just what is needed; grown from empty, so that
        // `bytes` keeps no "original capacity" for it (a buffer split off
        // it would otherwise grow to that size, up to 64 KiB, when
        // appended to: a two-byte fragmented message took 64 KiB)
        let mut fresh = BytesMut::new();
        fresh.reserve(len + n.max(len));
        fresh.extend_from_slice(&self.input);
        self.input = fresh;
        self.input_base = self.input.as_ptr() as usize;
        self.input_alloc = self.input.capacity();
        self.input_paid = 0;
    }

    /// A message half reassembled in the input buffer's allocation, which
    /// is about to be left, is copied out: delivered later, it would keep
    /// an allocation no longer weighed.
    fn unpin_incoming(&mut self) {
        let (base, alloc) = (self.input_base, self.input_alloc);
        if let Some(inc) = self.incoming.as_mut()
            && !inc.buf.is_empty()
            && lies_in(&inc.buf, base, alloc)
        {
            inc.buf = BytesMut::from(&inc.buf[..]);
        }
    }

    /// The input buffer goes (idle).
    fn drop_input(&mut self) {
        self.settle_pins();
        self.unpin_incoming();
        self.input = BytesMut::new();
        self.input_alloc = 0;
        self.input_base = 0;
        self.input_paid = 0;
    }
}

/// Whether `bytes` lie in the allocation of `alloc` bytes at address
/// `base` (split off it, so keeping it alive).
fn lies_in(bytes: &[u8], base: usize, alloc: usize) -> bool {
    (bytes.as_ptr() as usize).wrapping_sub(base) <= alloc
}

/// What a connection may do about a shared [`Budget`](crate::Budget), from
/// [`Connection::budget_check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetCheck {
    /// Read on: the budget has room, or this connection holds none of it.
    Read,
    /// Read nothing more until room comes back
    /// ([`Budget::wait_for_room`](crate::Budget::wait_for_room)) or the
    /// connection's next deadline.
    Wait,
    /// The budget stayed spent for `Config::budget_timeout` and this
    /// connection held the most of it: it was closed with 1013 (try again
    /// later). Drop its unread events (and their charge), then hand over
    /// its final event.
    Evicted,
}

/// A message being decoded by the extension over several turns.
struct Decoding {
    job: DecodeJob,
    /// Text already checked for UTF-8 as it arrived.
    checked: bool,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field(
                "buffered_input",
                &self.active.as_ref().map_or(0, |a| a.input.len()),
            )
            .field("queued_output", &self.queued_output())
            .field(
                "events",
                &self.active.as_ref().map_or(0, |a| a.events.len()),
            )
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection in state `Open` for `role`, at time `now`. Client mask
    /// keys come from `rand`'s thread-local CSPRNG.
    ///
    /// `config` is a [`Config`] or an `Arc<Config>`: a server gives each
    /// connection a clone of one `Arc`, so each holds a pointer to the
    /// config instead of its own copy (about 330 bytes).
    #[cfg(feature = "rand")]
    pub fn new(role: Role, config: impl Into<Arc<Config>>, now: Instant) -> Self {
        Self::with_mask_source(role, config, now, Box::new(tether_frame::ThreadRngMask))
    }

    /// Like `new`, with client mask keys from `masks` (RFC 6455 section 10.3
    /// requires them to be unpredictable).
    pub fn with_mask_source(
        role: Role,
        config: impl Into<Arc<Config>>,
        now: Instant,
        masks: Box<dyn MaskSource + Send>,
    ) -> Self {
        let config = config.into();
        let mut conn = Self {
            role,
            state: State::Open,
            active: None,
            output: Output::default(),
            sent: None,
            large_payloads: false,
            decoding: None,
            input_held: false,
            turn_work: 0,
            budget_overdue: false,
            idle_released: false,
            released_before: false,
            not_reading: false,
            last_traffic: now,
            deferred_failure: None,
            now,
            masks: Masks(masks),
            extension: None,
            timers: Timers::default(),
            ping_counter: 0,
            close_info: None,
            input_end: InputEnd::Open,
            transport_failed: false,
            output_discarded: false,
            drain_expired: false,
            sent_since_heartbeat: false,
            peer_close: None,
            our_close_by: Initiator::Application,
            sent_untimed: false,
            closing_over_budget: false,
            config,
        };
        if let Some(h) = &conn.config.heartbeat {
            conn.timers.set(Timer::Heartbeat, now, h.interval);
        }
        conn.postpone_keepalive(now);
        conn.postpone_idle(now);
        conn
    }

    /// Installs a negotiated extension: its RSV bits become legal on the
    /// first frame of data messages, and it transforms message payloads.
    pub fn set_extension(&mut self, extension: Box<dyn Extension>) {
        self.extension = Some(extension);
        let limits = decoder_limits(&self.config, self.extension.as_deref());
        if let Some(active) = &mut self.active {
            active.decoder.set_limits(limits);
        }
    }

    /// The fragmented send open, if any (without building the buffers).
    fn sending(&self) -> Option<&Sending> {
        self.active.as_ref()?.sending.as_ref()
    }

    /// The buffers and queues of bytes in flight, built again on first use
    /// after an idle connection dropped them.
    #[inline(always)]
    fn a(&mut self) -> &mut Active {
        self.active
            .get_or_insert_with(|| activate(self.role, &self.config, self.extension.as_deref()))
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.close_info.as_deref()
    }

    // ----- input -------------------------------------------------------

    /// Feeds bytes read from the transport at time `now`. Any split of the
    /// input gives the same events. Queues output (Pongs, the Close echo)
    /// and events; drain both afterwards. Receiving postpones the next
    /// keep-alive. Input after the connection ended is ignored.
    ///
    /// At most [`EVENT_BATCH`] events are decoded and queued at once; the
    /// rest of the input waits, as bytes, and is decoded as the events are
    /// taken ([`Connection::decoding_pending`]).
    ///
    /// # Errors
    /// [`Error::Protocol`] when the input decoded in this call breaks RFC
    /// 6455 or a limit: our Close with the matching code is queued and the
    /// state is `Closed`, at once, or, while events decoded before the
    /// error wait (or with `Config::auto_close_reply` off, until
    /// [`Connection::reply_close`]), once they are taken
    /// ([`Connection::deferred_failure`] meanwhile); a final
    /// [`Event::Closed`] follows the events decoded before the error. A
    /// violation in input that waited behind a full batch is found when
    /// that input is decoded: it ends the connection the same way, and the
    /// final `Closed` event says why.
    pub fn receive(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        if self.state.is_terminal() {
            // dropped (read only for the peer's end, `close_expected`), but
            // part of the turn: a peer that keeps sending does not hold
            // the adapter's drive
            self.turn_work = self.turn_work.saturating_add(data.len());
            return Ok(());
        }
        // before and after: the messages this call queues are the ones
        // after the mark
        self.settle_pins();
        let result = self.receive_data(now, data);
        self.settle_pins();
        result
    }

    /// [`Active::settle_pins`], when there are buffers.
    #[inline]
    fn settle_pins(&mut self) {
        if let Some(a) = self.active.as_deref_mut() {
            a.settle_pins();
        }
    }

    fn receive_data(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        self.tell_time(now);
        if !data.is_empty() {
            self.postpone_keepalive(now);
            self.note_traffic();
        }
        // Each byte is copied once: runs of whole frames go into `input` (and
        // are split off it without copying, or copied out of it into the
        // message when small), while the payload of a frame
        // still arriving goes straight into that frame's own buffer (but
        // behind more than `WALK_FRAMES` frames in one read: copied with
        // them, then copied again into its buffer).
        self.turn_work = self.turn_work.saturating_add(data.len());
        self.a().last_read = data.len();
        if self.input_held {
            // the input that waited comes first, as far as the queue has room
            self.process(now)?;
        }
        let mut data = data;
        while !data.is_empty() {
            if self.input_stopped() {
                self.a().input.clear();
                return Ok(());
            }
            if self.decoding.is_some() || self.input_held {
                // a message is still being decoded, or a batch of events
                // waits to be taken: what follows waits (an adapter reads
                // no more until `continue_decoding` ends it)
                let a = self.a();
                a.input_room(data.len());
                a.input.extend_from_slice(data);
                break;
            }
            if let Some(need) = self.a().decoder.payload_remaining() {
                let take = need.min(data.len());
                let done = self.a().decoder.feed_payload(&data[..take]);
                data = &data[take..];
                match done {
                    Some(frame) => self.handle_frame(now, frame.header, frame.payload)?,
                    None => self.check_partial()?,
                }
                continue;
            }
            let a = self.a();
            if a.input.is_empty() && a.decoder.payload_remaining().is_none() {
                // tiny whole frames straight from the read, nothing buffered
                let used = self.receive_small(now, data)?;
                data = data.get(used..).unwrap_or_default();
                if used > 0 {
                    continue;
                }
            }
            let a = self.a();
            if a.events.len() >= EVENT_BATCH {
                // a full batch: the rest of the read waits as bytes, as it
                // came (`process` finds the frames in it when it resumes)
                a.input_room(data.len());
                a.input.extend_from_slice(data);
                self.input_held = true;
                break;
            }
            let take = if a.input.is_empty() {
                whole_frames_prefix(data)
            } else {
                // finish a header that was split across reads
                data.len().min(tether_frame::MAX_HEADER_LEN)
            };
            // room for the whole read: should decoding stop at a full
            // batch, the rest joins the input without moving what is there
            a.input_room(data.len());
            a.input.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.process(now)?;
        }
        self.note_large_payloads();
        self.track_progress(now);
        Ok(())
    }

    /// Decodes the whole frames of at most `Payload::INLINE_CAPACITY`
    /// bytes at the front of `data` (with nothing buffered before them),
    /// up to a full batch of events or input no longer taken; how many
    /// bytes they took. Copied into a buffer first, a read of 16-byte
    /// messages was scanned for frame boundaries, copied, then decoded:
    /// a third of the time of a 64 KiB read.
    #[inline]
    fn receive_small(&mut self, now: Instant, data: &[u8]) -> Result<usize, Error> {
        let mut used = 0;
        loop {
            if self.input_stopped() || self.decoding.is_some() {
                return Ok(used);
            }
            let a = self.a();
            if a.events.len() >= EVENT_BATCH {
                return Ok(used);
            }
            let rest = data.get(used..).unwrap_or_default();
            match a.decoder.decode_small_from(rest) {
                Err(e) => return Err(self.fail(e.into())),
                Ok(Some((header, payload, took))) => {
                    used += took;
                    self.handle_frame(now, header, payload)?;
                }
                Ok(None) => return Ok(used),
            }
        }
    }

    /// Whether large payloads are arriving: a frame of [`LARGE_PAYLOAD`] or
    /// more is pending (noted before a read into its buffer is taken, so a
    /// read that finished one counts too). That
    /// frame's payload may be nearly all in already (a 64 KiB frame
    /// straddling 64 KiB reads lacks only its last bytes): what counts is
    /// that it is large, so the next read is small and the payload after it
    /// goes to its own buffer, instead of every such frame being read into
    /// the input buffer and copied out of it. Smaller frames are read a
    /// whole read at a time (their remainder still goes to its own buffer
    /// when it is [`DIRECT_READ_MIN`] or more): a read per frame would
    /// cost more than the copy it saves.
    fn note_large_payloads(&mut self) {
        self.large_payloads = self.active.as_ref().is_some_and(|a| {
            a.decoder
                .pending_header()
                .is_some_and(|h| h.payload_len >= LARGE_PAYLOAD)
        });
    }

    /// For transports that can read into a buffer they are handed (tokio's
    /// `AsyncRead` through `tokio_util::io::poll_read_buf`, a `BufMut`
    /// reader): the connection's own buffer the next read can go straight
    /// into, so no byte is copied on its way in. While the payload of a
    /// large frame is arriving, that frame's buffer (at most what the frame
    /// still needs); otherwise the spare room of the input buffer, at most
    /// `max` bytes (between frames of 32 KiB or more, 2 KiB beyond what a
    /// pending one still needs, so the next payload goes to its own
    /// buffer). An input buffer whose messages have all been dropped is
    /// reused whole, even when it is smaller than `max` (a connection
    /// reading a little at a time, such as an echo, reads into the buffer
    /// of its reads' size that it already holds, instead of through a
    /// buffer of the caller's and a copy). Append at most what it offers
    /// (`BufMut::remaining_mut`, never more than the buffer holds), then
    /// call [`Connection::received`]; what is appended counts exactly as
    /// the same bytes given to [`Connection::receive`] would (any split of
    /// the input gives the same events).
    ///
    /// `None` (read into a buffer of your own and call `receive`):
    /// - while the connection holds no input buffer (it has freed its idle
    ///   buffers, [`Connection::release_idle_memory`], or never had one):
    ///   an idle connection holds no read buffer, and the first read after
    ///   a pause goes through `receive`, which allocates it again;
    /// - when the input buffer has too little room, cannot be reused in
    ///   place (a message split off it is still alive, or it would have
    ///   under 4 KiB of room), and the last read was small (under half of
    ///   `max`): a connection
    ///   reading a little at a time keeps a buffer of just what it
    ///   received. After a large read a new buffer is handed out instead;
    ///   the messages split off the old one keep it only while they weigh
    ///   at least half of it (else they are copied out), so what unread
    ///   messages keep of read buffers stays within the bound
    ///   `Config::max_unread_bytes` documents;
    /// - while a message or a batch of events is pending
    ///   ([`Connection::decoding_pending`]), or once input is no longer
    ///   taken.
    pub fn receive_buffer(&mut self, max: usize) -> Option<Limit<&mut BytesMut>> {
        if self.input_stopped() || self.decoding.is_some() || self.input_held {
            return None;
        }
        // none while the connection holds no buffers (idle, or new)
        let large_payloads = self.large_payloads;
        let into_payload = self.receives_into_payload();
        let a = self.active.as_deref_mut()?;
        if into_payload {
            let into = a.decoder.payload_buffer()?;
            a.direct = Direct::Payload;
            return Some(into);
        }
        if a.input_alloc == 0 || max == 0 {
            return None;
        }
        // After large payloads, read little into the input buffer: what a
        // pending frame still needs (under `DIRECT_READ_MIN`, or it would
        // have had its own buffer), the next header and a few KiB, so the
        // rest of the next large payload goes to its own buffer instead of
        // being copied there.
        let max = if large_payloads {
            let need = a.decoder.payload_remaining().unwrap_or(0);
            max.min(need.saturating_add(AFTER_LARGE_READ))
        } else {
            max
        };
        let spare = a.input.capacity() - a.input.len();
        if spare < max.min(DIRECT_READ_MIN) {
            a.settle_pins();
            if a.input.try_reclaim(max) {
                // every message split off it has been dropped
                a.input_paid = 0;
            } else if a.input_alloc.saturating_sub(a.input.len()) >= max.min(DIRECT_READ_MIN)
                && a.input
                    .try_reclaim(a.input_alloc.saturating_sub(a.input.len()))
            {
                // every message split off it has been dropped, and it is
                // the size reads have had: read into all of it (a
                // connection reading a little at a time reads no more than
                // that at once, and nothing is copied on its way in). At
                // least as much room as asked of a buffer that is kept: a
                // read offered no room at all would look like the end.
                a.input_paid = 0;
            } else if a.last_read < max / 2 {
                // A connection reading a little at a time (an echo, a
                // handshake's first message, a connection about to go idle)
                // reads through `receive`, which copies just what arrived
                // into a buffer of that size: it holds no 64 KiB it does not
                // use, and a message it keeps does not keep one either.
                return None;
            } else {
                // Bulk input: a new buffer for the next read, while the
                // messages split off this one keep it (as long as they
                // weigh at least half of it: `Active::settle_pins`).
                a.input_room(max);
            }
        }
        // no more than the buffer holds: appending past it would move the
        // input to a new allocation behind the connection's back
        let spare = a.input.capacity() - a.input.len();
        a.direct = Direct::Input(a.input.len());
        Some((&mut a.input).limit(max.min(spare)))
    }

    /// Whether [`Connection::receive_buffer`] hands out a large frame's own
    /// buffer now: that frame's payload is arriving, 4 KiB or more of it
    /// is still to come, and no input waits before it. A reader that needs
    /// initialised memory (`std::io::Read`) reads straight into it only
    /// then, zero-filling the piece it reads into first: the fill writes
    /// lines the read then finds in cache, and costs less than reading into
    /// a buffer of its own and copying out of it. Into the input buffer,
    /// which a read may fill only a little, the fill would cost more than
    /// the copy it saves.
    pub fn receives_into_payload(&self) -> bool {
        !self.input_stopped()
            && self.decoding.is_none()
            && !self.input_held
            && self.active.as_deref().is_some_and(|a| {
                a.input.is_empty()
                    && a.decoder
                        .payload_remaining()
                        .is_some_and(|need| need >= DIRECT_READ_MIN)
            })
    }

    /// Takes the bytes appended through [`Connection::receive_buffer`] at
    /// time `now`, as [`Connection::receive`] would take them. Does nothing
    /// when no buffer was handed out.
    ///
    /// # Errors
    /// As [`Connection::receive`].
    pub fn received(&mut self, now: Instant) -> Result<(), Error> {
        let Some(a) = self.active.as_deref_mut() else {
            return Ok(());
        };
        let direct = core::mem::replace(&mut a.direct, Direct::None);
        a.settle_pins();
        let result = self.take_direct(now, direct);
        self.settle_pins();
        result
    }

    fn take_direct(&mut self, now: Instant, direct: Direct) -> Result<(), Error> {
        let a = self.a();
        let appended = match direct {
            Direct::None => return Ok(()),
            Direct::Payload => a.decoder.payload_appended_len(),
            Direct::Input(before) => a.input.len().saturating_sub(before),
        };
        if self.state.is_terminal() || self.input_stopped() {
            self.a().input.clear();
            return Ok(());
        }
        self.tell_time(now);
        if appended > 0 {
            self.postpone_keepalive(now);
            self.note_traffic();
        }
        self.turn_work = self.turn_work.saturating_add(appended);
        self.a().last_read = appended;
        self.note_large_payloads();
        if direct == Direct::Payload {
            match self.a().decoder.payload_appended() {
                Some(frame) => self.handle_frame(now, frame.header, frame.payload)?,
                None => self.check_partial()?,
            }
        } else {
            self.process(now)?;
        }
        self.track_progress(now);
        Ok(())
    }

    /// Whether received input is still to be decoded:
    /// - a message an extension works on over several turns of
    ///   `Config::turn_bytes` (permessage-deflate inflating a message much
    ///   larger than it was on the wire);
    /// - or frames that arrived behind a full batch of events: decoding
    ///   stops once [`EVENT_BATCH`] events are queued, and the rest of the
    ///   read waits in the input buffer, as bytes, until they are taken
    ///   (pending once the queue has room again: `continue_decoding`
    ///   always has something to do while this is `true`).
    ///
    /// While it is, read nothing more from the transport (input given to
    /// [`Connection::receive`] meanwhile waits behind it, in memory): call
    /// [`Connection::continue_decoding`] instead, after letting other
    /// connections run if [`Connection::turn_spent`].
    /// [`Connection::poll_event`] and [`Connection::take_events`] decode
    /// the next batch themselves when they find the queue empty, so a loop
    /// that takes every event after each `receive` needs no more.
    pub fn decoding_pending(&self) -> bool {
        !self.input_stopped()
            && (self.decoding.is_some()
                || self.input_held
                    && self
                        .active
                        .as_ref()
                        .is_some_and(|a| a.events.len() < EVENT_BATCH))
    }

    /// Whether an adapter holding `unread` events the application has not
    /// taken should decode the next part now
    /// ([`Connection::continue_decoding`]): something is pending, and
    /// fewer than a batch ([`EVENT_BATCH`]) wait, so the next is decoded
    /// once the application has taken the last (the rest waits as bytes,
    /// and nothing more is read); or our Close was sent, so the peer's
    /// answer behind unread messages is reached (the adapter's bound on
    /// unread bytes still applies).
    pub fn should_decode(&self, unread: usize) -> bool {
        self.decoding_pending() && (unread < EVENT_BATCH || self.state == State::CloseSent)
    }

    /// Goes on with what [`Connection::decoding_pending`] reports: the
    /// message an extension decodes, for at most the rest of the turn
    /// (`Config::turn_bytes`), then the input that waited behind it, up to
    /// the next [`EVENT_BATCH`] events queued (none while the queue still
    /// holds a full batch). Does nothing when nothing is pending.
    ///
    /// # Errors
    /// As [`Connection::receive`] (e.g. 1009 when the message inflates
    /// past `max_message_size`, 1007 for corrupt compressed data).
    pub fn continue_decoding(&mut self, now: Instant) -> Result<(), Error> {
        if !self.decoding_pending() {
            return Ok(());
        }
        self.tell_time(now);
        self.settle_pins();
        if let Err(e) = self.decode_some() {
            self.settle_pins();
            return Err(self.fail(e));
        }
        if self.decoding.is_none() && self.active.as_ref().is_some_and(|a| !a.input.is_empty()) {
            let result = self.process(now);
            self.settle_pins();
            result?;
        }
        self.end_of_input_after_held();
        self.track_progress(now);
        Ok(())
    }

    /// Whether this turn's work is done: the bytes received plus the
    /// bytes an extension decoded plus [`TURN_FRAME_COST`] per frame since
    /// [`Connection::new_turn`] reached `Config::turn_bytes`. An adapter
    /// that runs many connections on few threads lets the others run now
    /// (the tokio adapter yields to the runtime) and starts a new turn
    /// when it comes back, so one peer's
    /// flood of frames or a decompression bomb holds a thread for about
    /// one turn at a time. Nothing is refused; it is only a point to
    /// yield at.
    pub fn turn_spent(&self) -> bool {
        self.turn_work >= self.config.turn_bytes
    }

    /// Starts a turn (see [`Connection::turn_spent`]): an adapter calls it
    /// each time it takes the connection up again.
    pub fn new_turn(&mut self) {
        self.turn_work = 0;
    }

    /// Tells the connection whether its adapter reads: `false` while it holds
    /// off for the application (what arrived weighs `Config::max_unread_bytes`
    /// untaken, or a shared budget is spent), `true` when it reads again.
    /// A begun message's `Config::message_timeout` cannot blame the peer
    /// for what may be waiting unread: while nothing is read it does not
    /// end the connection, and when reading resumes it starts again,
    /// whole, at `now`. (The keep-alive Pong's timeout runs on: it is what
    /// ends a dead peer, and it must not be put off without end by an
    /// application that stopped taking what arrived.) Both adapters call it
    /// before each read they would make.
    pub fn set_reading(&mut self, now: Instant, reading: bool) {
        if reading != self.not_reading {
            return;
        }
        self.not_reading = !reading;
        if !reading {
            return;
        }
        if let Some(after) = self.config.message_timeout
            && self.timers.is_armed(Timer::Progress)
        {
            self.timers.set(Timer::Progress, now, after);
        }
    }

    /// Asks whether this connection may read more while it shares `holder`'s
    /// [`Budget`](crate::Budget) with others (a server's connections), and
    /// keeps the held-back deadline. An adapter calls it before each read,
    /// with the holder its unread events are charged to:
    ///
    /// - [`BudgetCheck::Read`] when the budget has room, or this connection
    ///   holds none of it (its application takes what arrives: it must not
    ///   wait on others that do not), or it sent its Close (it reads on to
    ///   the peer's answer, keeping nothing beyond the unread bound while
    ///   the budget is spent: [`Connection::keeps_after_close`]), or it has ended (call
    ///   it once then: its holder is retired,
    ///   [`Holder::retire`](crate::Holder::retire)).
    /// - [`BudgetCheck::Wait`] otherwise: read nothing more; the deadline
    ///   `Config::budget_timeout` is armed ([`Connection::poll_timeout`]).
    /// - [`BudgetCheck::Evicted`] when that deadline passed with the budget
    ///   still spent, no connection holding more than this one, and no
    ///   other eviction under way ([`Holder::begin_eviction`](crate::Holder::begin_eviction):
    ///   an evicted connection that has not yet given its share back may
    ///   still make room, and of two holding the same most only one goes): our
    ///   Close with 1013 (try again later) is queued at once, unread events
    ///   are dropped (the adapter drops its own and releases their charge),
    ///   and the final event follows (`Closed`, 1013, `was_clean: false`,
    ///   initiated locally). A connection that was not the largest calls
    ///   the eviction of the largest ([`Budget::call_eviction`](crate::Budget::call_eviction),
    ///   which wakes it: it is evicted at its next check, even when it
    ///   reads nothing itself) and waits another `budget_timeout`.
    pub fn budget_check(&mut self, holder: &crate::Holder, now: Instant) -> BudgetCheck {
        if self.state.is_terminal() {
            // what it holds waits for its application only: never evicted,
            // and not the largest share that keeps others from being
            holder.retire();
            return BudgetCheck::Read;
        }
        // after our Close, reading goes on to the peer's answer whatever the
        // budget; while it is spent, nothing more is kept beyond the unread
        // bound (`Connection::keeps_after_close`), so the budget still
        // bounds what the server holds
        let spent = holder.held_back();
        if self.state == State::CloseSent {
            self.closing_over_budget = spent;
        }
        if !spent || self.state == State::CloseSent {
            self.timers.stop(Timer::HeldBack);
            self.budget_overdue = false;
            return BudgetCheck::Read;
        }
        let overdue = core::mem::take(&mut self.budget_overdue);
        // due: its own wait passed, or another's did (which woke the
        // largest holder, maybe this one, for it)
        // (one eviction at a time: another evicted connection may give
        // room back yet, and a tie must not take both)
        if (overdue || holder.budget().eviction_due())
            && holder.is_largest()
            && holder.begin_eviction()
        {
            self.evict(holder.held());
            return BudgetCheck::Evicted;
        }
        if overdue {
            // another holds more: it goes, woken for it if it waits on
            // nothing else
            holder.budget().call_eviction();
        }
        // first held back, or overdue but not the largest: (again) later
        if overdue || !self.timers.is_armed(Timer::HeldBack) {
            self.timers
                .set(Timer::HeldBack, now, self.config.budget_timeout);
        }
        BudgetCheck::Wait
    }

    /// Ends the connection at once with 1013, dropping unread events: it
    /// held `held` bytes of a shared budget that stayed spent.
    fn evict(&mut self, held: usize) {
        if let Some(a) = &mut self.active {
            a.events.clear();
        }
        let reason = format!(
            "evicted: held {held} bytes of the server's spent memory budget for {}",
            fmt_duration(self.config.budget_timeout)
        );
        if matches!(self.state, State::Open | State::CloseReceived) {
            self.write_close(
                Some(CloseCode::TRY_AGAIN_LATER),
                "server busy, try again later",
            );
        }
        self.end(
            State::Closed,
            CloseCode::TRY_AGAIN_LATER,
            reason,
            false,
            Initiator::Local,
        );
    }

    /// The adapter waits for the peer with nothing to write or hand over.
    /// Frame buffers over [`IDLE_SPARE_MAX`] are freed at once. Once the
    /// connection has stayed quiet for `Config::release_idle_after` (until
    /// it has released once, `Config::first_release_after`; a deadline in
    /// [`Connection::poll_timeout`]), it frees its idle
    /// buffers ([`Connection::release_idle_memory`]) by itself, and this
    /// returns true until the next traffic: the adapter frees its own idle
    /// buffers then. Traffic either way in between puts the release off,
    /// so a busy connection's brief pauses do not free and regrow them.
    pub fn note_idle(&mut self, now: Instant) -> bool {
        // Buffers over IDLE_SPARE_MAX go at once, as before the delay: a
        // server taking large messages one connection after another then
        // reuses the same memory instead of holding one buffer per
        // connection for the quiet time (the hostile suite's idle rows went
        // from 20 to 111 KiB of RSS per connection when they waited too).
        if let Some(a) = &mut self.active {
            a.decoder.release_spares_over(IDLE_SPARE_MAX);
            if a.input.is_empty() && a.input_alloc > IDLE_SPARE_MAX {
                a.drop_input();
            }
        }
        if self.idle_released {
            return true;
        }
        if !self.timers.is_armed(Timer::Release) {
            self.timers.set(Timer::Release, now, self.release_window());
        }
        false
    }

    /// How long quiet must last before the idle buffers go: less the first
    /// time (`Config::first_release_after`).
    fn release_window(&self) -> Duration {
        if self.released_before {
            self.config.release_idle_after
        } else {
            self.config
                .first_release_after
                .min(self.config.release_idle_after)
        }
    }

    /// Bytes went in or out: idle buffers are wanted again. The release
    /// deadline is not moved here (that would reset the adapter's timer at
    /// every message): when it comes, it looks at the last traffic.
    #[inline]
    fn note_traffic(&mut self) {
        self.last_traffic = self.now;
        self.idle_released = false;
    }

    /// Frees what holds nothing. When nothing is in flight (no input, not
    /// even part of a header, no message half received, no event or owed
    /// Pong waiting, no fragmented send open), every buffer and
    /// queue of bytes in flight goes at once, the decoder with its spare
    /// frame buffers too; otherwise the empty input buffer, the drained
    /// event queue and the decoder's spares over [`IDLE_SPARE_MAX`] (64
    /// KiB, the largest that 64 KiB echoes reuse without page faults) go.
    /// The empty output queue and the emptied queue of sent notices go
    /// either way, and an extension frees what
    /// it can rebuild ([`Extension::release_idle`]: permessage-deflate its
    /// contexts without context takeover, never while it is still decoding
    /// a message over several turns). Everything comes back on the next
    /// use.
    ///
    /// The connection calls it itself once it has been quiet for
    /// `Config::release_idle_after` (the first time
    /// `Config::first_release_after`; see [`Connection::note_idle`]), so an
    /// idle connection holds its struct and nothing else on the heap
    /// (`tests/footprint.rs`); an adapter may call it when it knows the
    /// connection will stay idle.
    pub fn release_idle_memory(&mut self) {
        self.output.release();
        if !self.output_waits() && !self.state.is_terminal() {
            // written since the send timeout last looked: a queue built
            // anew counts its bytes taken from zero, so the old deadline
            // could not see they moved
            self.timers.stop(Timer::Output);
        }
        if self.sent.as_ref().is_some_and(|s| s.is_empty()) {
            self.sent = None;
        }
        if self.active.as_ref().is_some_and(|a| a.is_empty()) {
            self.active = None;
        } else if let Some(a) = &mut self.active {
            if a.input.is_empty() {
                a.drop_input();
            }
            if a.events.is_empty() {
                a.events = EventQueue::default();
            }
            a.decoder.release_spares_over(IDLE_SPARE_MAX);
        }
        // A message the extension is still decoding (over several turns)
        // needs its state: the connection is waiting for its next turn,
        // not idle. Freeing the inflater there corrupted the message.
        if self.decoding.is_none()
            && let Some(extension) = &mut self.extension
        {
            extension.release_idle();
        }
    }

    /// The transport failed: a write or a read error (a reset, a broken
    /// pipe). Nothing more is written: queued output is dropped
    /// ([`Connection::output_discarded`] when there was some;
    /// [`Connection::writing_over`] from now on).
    ///
    /// What the peer sent before the failure may still be readable (TCP
    /// delivers in order: a peer that sent its Close and reset the
    /// connection makes our write fail before we read that Close), so the
    /// adapter reads on, within its usual bounds, and calls
    /// [`Connection::receive_eof`] when reading ends (the end of input, or a
    /// read error: after a read error, call both). The end is then the end
    /// of input's: a peer whose Close arrived closed properly, and the end
    /// is clean with its code; a protocol violation received is carried
    /// out (not clean); otherwise the connection is `Aborted`, 1006, not
    /// clean, its reason naming the failure in the same words whichever
    /// adapter reports it ("read failed: ...", "write failed: ...",
    /// [`TransportFailure`]). Reading on is bounded by `Config::close_timeout`
    /// from `now` (unless that timer already runs): then the end comes with
    /// what was read. Meanwhile operations that send are refused
    /// ([`Error::TransportFailed`]), and no keep-alive, heartbeat or idle
    /// timer runs. Once ended, nothing changes but the output's discarding.
    pub fn transport_failed(&mut self, now: Instant, failure: TransportFailure<'_>) {
        if !self.transport_failed {
            self.transport_failed = true;
            if !self.state.is_terminal() {
                let a = self.a();
                a.failure = Some(failure.to_string().into());
                // owed Pongs cannot go either (and would count as output)
                a.pending_pongs.clear();
                a.pending_pong_bytes = 0;
                // nothing more is sent: no keep-alive, heartbeat or idle
                // close (whose Ping or Close could not go out), and the
                // close timeout alone bounds the wait for the input's end
                for timer in [
                    Timer::KeepAlive,
                    Timer::PongDeadline,
                    Timer::Heartbeat,
                    Timer::Idle,
                    Timer::Progress,
                ] {
                    self.timers.stop(timer);
                }
                if !self.timers.is_armed(Timer::Close) {
                    self.timers
                        .set(Timer::Close, now, self.config.close_timeout);
                }
            }
        }
        if !self.output.is_empty() {
            self.output = Output::default();
            self.output_discarded = true;
        } else if self.output.unflushed() {
            // what the transport held is gone with it
            self.output = Output::default();
        }
    }

    /// The transport reached end of input (or failed). Without a completed
    /// closing handshake this ends the connection as `Aborted` with 1006 and
    /// `was_clean: false` ("the peer closed the connection without completing
    /// the close handshake").
    ///
    /// Input received before it and still waiting to be decoded (behind a
    /// full batch of events, or a message an extension decodes over several
    /// turns; [`Connection::decoding_pending`]) is decoded first, as events
    /// are taken and [`Connection::continue_decoding`] is called: the end
    /// follows it, and is the peer's clean Close if one was in it.
    pub fn receive_eof(&mut self) {
        self.timers.stop(Timer::FinWait);
        if self.state.is_terminal() {
            self.input_end = InputEnd::Reached;
            return;
        }
        if self.input_held || self.decoding.is_some() {
            self.input_end = InputEnd::Waits;
            return;
        }
        self.input_end = InputEnd::Reached;
        self.end_of_input();
    }

    /// Carries out an end of input that waited for the input before it,
    /// once that is all decoded.
    fn end_of_input_after_held(&mut self) {
        if self.input_end == InputEnd::Waits && !self.input_held && self.decoding.is_none() {
            self.input_end = InputEnd::Reached;
            if !self.state.is_terminal() {
                self.end_of_input();
            }
        }
    }

    fn end_of_input(&mut self) {
        if let Some(err) = self.deferred_failure.take() {
            // the peer left after breaking the protocol: our Close still
            // goes out if it can, and the end reports the violation
            self.carry_out_failure(*err);
            return;
        }
        if let (State::CloseReceived, Some(peer)) = (self.state, self.peer_close.take()) {
            // the peer closed properly and left before our answer could go
            self.end(
                State::Closed,
                peer.code,
                peer.reason,
                true,
                Initiator::Remote,
            );
            return;
        }
        // after our Close, the end is still the one we started
        let failure = if self.transport_failed {
            let kept = self.active.as_mut().and_then(|a| a.failure.take());
            Some(kept.map_or_else(|| "the transport failed".into(), String::from))
        } else {
            None
        };
        let (reason, initiator) = match (self.state, failure) {
            (State::CloseSent, Some(failure)) => (failure, self.our_close_by),
            (_, Some(failure)) => (failure, Initiator::Local),
            (State::CloseSent, None) => (
                "the peer closed the transport before answering our Close".into(),
                self.our_close_by,
            ),
            (_, None) => (
                "the peer closed the transport without completing the close handshake".into(),
                Initiator::Remote,
            ),
        };
        self.end(
            State::Aborted,
            CloseCode::ABNORMAL,
            reason,
            false,
            initiator,
        );
    }

    /// No more input is processed: the connection ended, the peer's Close
    /// arrived (nothing after it is processed, RFC 6455 5.5.1), or a
    /// protocol violation waits to be carried out.
    fn input_stopped(&self) -> bool {
        self.state.is_terminal()
            || self.state == State::CloseReceived
            || self.deferred_failure.is_some()
    }

    fn process(&mut self, now: Instant) -> Result<(), Error> {
        self.input_held = false;
        loop {
            if self.input_stopped() {
                self.a().input.clear();
                return Ok(());
            }
            if self.decoding.is_some() {
                return Ok(());
            }
            let a = self.a();
            if a.events.len() >= EVENT_BATCH {
                // the rest waits as bytes until the queue is taken
                self.input_held = !a.input.is_empty();
                return Ok(());
            }
            match a.decoder.decode_small(&mut a.input) {
                Err(e) => return Err(self.fail(e.into())),
                // a small payload held inline: no reference count to touch
                // now or when the application drops it
                Ok(Some(Decoded::Small { header, payload })) => {
                    self.handle_frame(now, header, payload)?;
                }
                Ok(Some(Decoded::Frame(frame))) => {
                    self.handle_frame(now, frame.header, frame.payload)?;
                }
                Ok(None) => return self.check_partial(),
            }
        }
    }

    // Inlined into the receive loop so the frame's fields stay in registers:
    // moving a `Frame` through memory between functions costs more than the
    // rest of the work on a small frame (store-to-load forwarding stalls).
    #[inline(always)]
    fn handle_frame<P: Received>(
        &mut self,
        now: Instant,
        h: FrameHeader,
        payload: P,
    ) -> Result<(), Error> {
        self.turn_work = self.turn_work.saturating_add(TURN_FRAME_COST);
        // Fast path: a whole, unfragmented, untransformed message that
        // arrived in one piece (the common case); same rules as below.
        // Nothing in it calls out while the payload is live (not even
        // `a()`, which may rebuild the buffers: the decoder lives in them,
        // so they are there), so a small payload stays in registers until
        // it is stored in its queue slot; spilled to the stack a word at a
        // time and copied into the slot with wide loads, it stalled on
        // store forwarding (a quarter of the time of a 16-byte message).
        if let Some(a) = self.active.as_deref_mut()
            && h.fin
            && !a.frame_started
            && a.incoming.is_none()
            && h.rsv.is_empty()
            && matches!(h.opcode, OpCode::Text | OpCode::Binary)
        {
            if h.payload_len > self.config.max_message_size as u64 {
                drop(payload);
                return Err(self.fail(ProtocolError::MessageTooLarge {
                    size: h.payload_len,
                    max: self.config.max_message_size,
                }));
            }
            if h.opcode == OpCode::Text && !payload.is_utf8() {
                drop(payload);
                return Err(self.fail(ProtocolError::InvalidUtf8));
            }
            let message = if h.opcode == OpCode::Text {
                Message::Text(Utf8Bytes::from_validated(payload.into_payload()))
            } else {
                Message::Binary(payload.into_payload())
            };
            if a.events.len() < a.events.capacity() {
                a.events.push(Event::Message(message));
            } else {
                self.push_event_grow(Event::Message(message));
            }
            self.postpone_heartbeat(now);
            return Ok(());
        }
        self.handle_frame_slow(now, h, payload.into_body())
    }

    /// `events.push_back` when it must grow (out of the fast path).
    #[inline(never)]
    fn push_event_grow(&mut self, event: Event) {
        self.a().events.push(event);
    }

    /// Every frame but a whole, unfragmented, untransformed data message.
    #[inline(never)]
    fn handle_frame_slow(
        &mut self,
        now: Instant,
        header: FrameHeader,
        body: Body,
    ) -> Result<(), Error> {
        if !self.a().frame_started {
            self.on_frame_start(&header).map_err(|e| self.fail(e))?;
        }
        self.a().frame_started = false;
        let checked = core::mem::take(&mut self.a().frame_checked);
        self.on_frame(now, header, body, checked)
            .map_err(|e| self.fail(e))
    }

    /// Rules for a frame whose payload is still arriving: sequence and size
    /// as soon as its header is known, and UTF-8 of the text so far (fail
    /// fast, Autobahn 6.4).
    fn check_partial(&mut self) -> Result<(), Error> {
        let Some(header) = self.a().decoder.pending_header().copied() else {
            return Ok(());
        };
        if !self.a().frame_started {
            self.on_frame_start(&header).map_err(|e| self.fail(e))?;
            self.a().frame_started = true;
        }
        let a = self.a();
        if let (Some(inc), Some((_, part))) = (
            a.incoming.as_mut().filter(|_| header.opcode.is_data()),
            a.decoder.partial_payload(),
        ) && let Some(utf8) = inc.utf8.as_mut()
        {
            let fresh = part.get(a.frame_checked..).unwrap_or_default();
            let ok = utf8.feed(fresh).is_ok();
            a.frame_checked = part.len();
            if !ok {
                return Err(self.fail(ProtocolError::InvalidUtf8));
            }
        }
        Ok(())
    }

    /// Sequence and size rules, applied as soon as a header is known.
    fn on_frame_start(&mut self, h: &FrameHeader) -> Result<(), ProtocolError> {
        if h.opcode.is_control() {
            if !h.rsv.is_empty() {
                return Err(ProtocolError::ReservedBitsOnFrame(h.opcode));
            }
            return Ok(());
        }
        let max = self.config.max_message_size;
        let max_fragments = self.config.max_fragments;
        match (h.opcode, self.a().incoming.as_mut()) {
            (OpCode::Continuation, None) => Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(inc)) => {
                if !h.rsv.is_empty() {
                    return Err(ProtocolError::ReservedBitsOnFrame(h.opcode));
                }
                inc.fragments += 1;
                if inc.fragments > max_fragments {
                    return Err(ProtocolError::TooManyFragments { max: max_fragments });
                }
                inc.declared = inc.declared.saturating_add(h.payload_len);
                let max = wire_max(max, inc.rsv);
                if inc.declared > max as u64 {
                    return Err(ProtocolError::MessageTooLarge {
                        size: inc.declared,
                        max,
                    });
                }
                Ok(())
            }
            (op, Some(_)) => Err(ProtocolError::ExpectedContinuation(op)),
            (op, None) => {
                let max = wire_max(max, h.rsv);
                if h.payload_len > max as u64 {
                    return Err(ProtocolError::MessageTooLarge {
                        size: h.payload_len,
                        max,
                    });
                }
                let kind = if op == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                self.a().incoming = Some(Incoming {
                    kind,
                    rsv: h.rsv,
                    buf: BytesMut::new(),
                    declared: h.payload_len,
                    fragments: 1,
                    utf8: (kind == MessageKind::Text && h.rsv.is_empty()).then(Utf8Stream::default),
                });
                Ok(())
            }
        }
    }

    fn on_frame(
        &mut self,
        now: Instant,
        h: FrameHeader,
        payload: Body,
        checked: usize,
    ) -> Result<(), ProtocolError> {
        match h.opcode {
            // Control payloads (at most 125 bytes) are copied: kept split
            // off the read buffer, a Ping's answer or event would keep all
            // of it alive.
            OpCode::Ping => {
                let payload = Bytes::copy_from_slice(&payload);
                // answered until the connection ends: after our own Close
                // too (RFC 6455 5.5.2 exempts only an endpoint that received
                // a Close; a Pong is no data frame, 5.5.1)
                if self.config.auto_pong
                    && matches!(
                        self.state,
                        State::Open | State::CloseReceived | State::CloseSent
                    )
                {
                    self.owe_pong(payload.clone());
                }
                let a = self.a();
                a.controls_new += 1;
                a.events.push(Event::Ping(payload));
                Ok(())
            }
            OpCode::Pong => {
                if self.pong_due() && payload[..] == self.ping_counter.to_be_bytes() {
                    self.timers.stop(Timer::PongDeadline);
                    // answered: nothing more to put off
                    self.output.ping_answered();
                    self.postpone_keepalive(now);
                }
                let a = self.a();
                a.controls_new += 1;
                a.events.push(Event::Pong(Bytes::copy_from_slice(&payload)));
                Ok(())
            }
            OpCode::Close => self.on_close(now, &payload),
            _ => {
                self.postpone_heartbeat(now);
                let Some(inc) = self.a().incoming.as_mut() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                if let Some(utf8) = inc.utf8.as_mut() {
                    utf8.feed(payload.get(checked..).unwrap_or_default())
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                match payload {
                    // the first fragment's buffer becomes the message's
                    Body::Split(first) if inc.buf.is_empty() => inc.buf = first,
                    payload => {
                        if !inc.buf.try_reclaim(payload.len()) {
                            // split off the input buffer, full, or none yet
                            // (a first fragment held inline): a buffer of
                            // its own, doubling, not sized by what `bytes`
                            // remembers of the buffer it was split off
                            let len = inc.buf.len();
                            let mut own = BytesMut::new();
                            own.reserve((len + payload.len()).max(2 * len));
                            own.extend_from_slice(&inc.buf);
                            inc.buf = own;
                        }
                        inc.buf.extend_from_slice(&payload);
                    }
                }
                if h.fin {
                    self.finish_message()?;
                }
                Ok(())
            }
        }
    }

    fn finish_message(&mut self) -> Result<(), ProtocolError> {
        let Some(inc) = self.a().incoming.take() else {
            return Ok(());
        };
        let checked = inc.utf8.is_some();
        if let Some(utf8) = inc.utf8 {
            utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if self.extension.is_some() && !inc.rsv.is_empty() {
            self.decoding = Some(Box::new(Decoding {
                job: DecodeJob::new(inc.kind, inc.rsv, inc.buf),
                checked,
            }));
            return self.decode_some();
        }
        self.deliver(inc.kind, inc.buf.freeze().into(), checked)
    }

    /// Decodes more of the message the extension is working on: up to
    /// what is left of the turn (`Config::turn_bytes`, at least a
    /// sixteenth of it), delivering it when done.
    fn decode_some(&mut self) -> Result<(), ProtocolError> {
        let (Some(ext), Some(decoding)) = (self.extension.as_mut(), self.decoding.as_mut()) else {
            return Ok(());
        };
        let turn = self.config.turn_bytes.max(1);
        let step = turn.saturating_sub(self.turn_work).max(turn / 16);
        let before = decoding.job.output.len();
        let overhead_before = decoding.job.overhead;
        let done = ext
            .decode_step(&mut decoding.job, self.config.max_message_size, step)
            .map_err(|e| ProtocolError::Extension {
                code: e.code,
                reason: e.reason,
            });
        let made = match &done {
            Ok(Some(payload)) => payload.len().saturating_sub(before),
            _ => decoding.job.output.len().saturating_sub(before),
        } + decoding.job.overhead.saturating_sub(overhead_before);
        self.turn_work = self.turn_work.saturating_add(made);
        match done {
            Ok(None) => Ok(()),
            Ok(Some(payload)) => {
                let Some(decoding) = self.decoding.take() else {
                    return Ok(());
                };
                self.deliver(decoding.job.kind, payload.into(), decoding.checked)
            }
            Err(e) => {
                self.decoding = None;
                Err(e)
            }
        }
    }

    /// A whole message: checked (text not checked as it arrived, because an
    /// extension transformed it, is checked once decoded: RFC 7692 section
    /// 6, RFC 6455 section 8.1) and queued for the application.
    fn deliver(
        &mut self,
        kind: MessageKind,
        payload: Payload,
        checked: bool,
    ) -> Result<(), ProtocolError> {
        if kind == MessageKind::Text && !checked && simdutf8::basic::from_utf8(&payload).is_err() {
            return Err(ProtocolError::InvalidUtf8);
        }
        let message = match kind {
            MessageKind::Text => Message::Text(Utf8Bytes::from_validated(payload)),
            MessageKind::Binary => Message::Binary(payload),
        };
        self.a().events.push(Event::Message(message));
        Ok(())
    }

    fn on_close(&mut self, now: Instant, payload: &[u8]) -> Result<(), ProtocolError> {
        let frame = parse_close_payload(payload)?;
        let (code, reason) = match frame {
            Some(f) => (f.code, f.reason),
            None => (CloseCode::NO_STATUS_RECEIVED, String::new()),
        };
        match self.state {
            State::Open if !self.config.auto_close_reply => {
                // Wait for the application (or the close timeout) to answer.
                self.state = State::CloseReceived;
                self.peer_close = Some(Box::new(CloseFrame { code, reason }));
                self.start_closing(now);
            }
            State::Open => {
                self.peer_close = Some(Box::new(CloseFrame { code, reason }));
                self.answer_peer_close(None);
            }
            State::CloseSent => {
                self.end(State::Closed, code, reason, true, self.our_close_by);
            }
            _ => {}
        }
        Ok(())
    }

    /// RFC 6455 5.5.1: answer the peer's Close, echoing its code unless the
    /// application chose one, and end cleanly.
    fn answer_peer_close(&mut self, ours: Option<(CloseCode, &str)>) {
        let peer = self.peer_close.take().map_or_else(
            || CloseFrame {
                code: CloseCode::NO_STATUS_RECEIVED,
                reason: String::new(),
            },
            |peer| *peer,
        );
        self.flush_pending_pongs();
        match ours {
            Some((code, reason)) => self.write_close(Some(code), reason),
            None if peer.code == CloseCode::NO_STATUS_RECEIVED => self.write_close(None, ""),
            None => self.write_close(Some(peer.code), ""),
        }
        self.end(
            State::Closed,
            peer.code,
            peer.reason,
            true,
            Initiator::Remote,
        );
    }

    /// Fails the connection (RFC 6455 section 7.1.7): our Close with the
    /// error's code, unless one was already sent; then `Closed`.
    ///
    /// In order: while events decoded before the violation wait for the
    /// application (or, with `Config::auto_close_reply` off, until the
    /// caller says the application took them, [`Connection::reply_close`]),
    /// the failure is deferred. Input stops at once (nothing after the
    /// violation is processed) and data may still be sent, so the answers
    /// to those messages go out before our Close; `close_timeout` bounds
    /// the wait.
    fn fail(&mut self, err: ProtocolError) -> Error {
        let defer = self.state == State::Open
            && (!self.config.auto_close_reply
                || self.active.as_ref().is_some_and(|a| !a.events.is_empty()));
        if defer {
            self.deferred_failure = Some(Box::new(err.clone()));
            if let Some(a) = &mut self.active {
                a.input.clear();
                a.incoming = None;
            }
            self.decoding = None;
            self.start_closing(self.now);
        } else {
            self.carry_out_failure(err.clone());
        }
        Error::Protocol(err)
    }

    fn carry_out_failure(&mut self, err: ProtocolError) {
        let code = err.close_code();
        let text = err.to_string();
        if matches!(self.state, State::Open | State::CloseReceived) {
            self.flush_pending_pongs();
            self.write_close(Some(code), truncate_utf8(&text, MAX_CLOSE_REASON));
        }
        self.end(State::Closed, code, text, false, Initiator::Local);
    }

    /// Queues a Pong for a Ping, in order behind the Pongs still owed. Past
    /// `Config::max_pending_pongs` bytes the owed Pongs coalesce into the
    /// one for the latest Ping (RFC 6455 5.5.3 allows answering only the
    /// latest), so a Ping flood holds a bounded amount.
    fn owe_pong(&mut self, payload: Bytes) {
        if self.transport_failed {
            // it could not go out
            return;
        }
        let cost = payload.len() + PONG_OVERHEAD;
        let max = self.config.max_pending_pongs;
        let a = self.a();
        if a.pending_pong_bytes + cost > max {
            a.pending_pongs.clear();
            a.pending_pong_bytes = 0;
        }
        a.pending_pong_bytes += cost;
        a.pending_pongs.push_back(payload);
    }

    fn end(
        &mut self,
        state: State,
        code: CloseCode,
        reason: String,
        was_clean: bool,
        initiator: Initiator,
    ) {
        let info = CloseInfo {
            code,
            reason,
            was_clean,
            initiator,
        };
        self.state = state;
        if state == State::Aborted || self.transport_failed {
            // nothing more is sent on an aborted connection, or over a
            // failed transport (a violation's Close included)
            self.output = Output::default();
        }
        self.close_info = Some(Box::new(info.clone()));
        let a = self.a();
        a.controls_new += 1;
        a.events.push(Event::Closed(info));
        a.input.clear();
        a.incoming = None;
        // a frame still arriving will not: its buffer (up to 1 MiB is
        // reserved from a header alone) goes now, not with the connection
        a.decoder.discard_pending();
        a.sending = None;
        a.pending_pongs.clear();
        a.pending_pong_bytes = 0;
        self.decoding = None;
        self.deferred_failure = None;
        for timer in [
            Timer::Close,
            Timer::PongDeadline,
            Timer::Heartbeat,
            Timer::KeepAlive,
            Timer::Progress,
            Timer::Idle,
            Timer::HeldBack,
        ] {
            self.timers.stop(timer);
        }
        self.output.ping_answered();
        // no send timeout once ended: the drain deadline takes the slot
        self.timers.stop(Timer::Output);
        if state == State::Closed {
            // our last bytes get close_timeout to be written
            self.timers
                .set(Timer::Output, self.now, self.config.close_timeout);
            // RFC 6455 7.1.1: the server closes the transport first; the
            // client waits for that, a little. A server that failed the
            // connection has not had the peer's Close: the peer may still
            // be sending, so it shuts down writing first and then reads on
            // (dropping it) for the peer's end, a little: closing with
            // those bytes unread resets the connection, and the peer may
            // lose our Close, unread, with the reset
            if self.input_end == InputEnd::Open && (self.role == Role::Client || !was_clean) {
                self.timers
                    .set(Timer::FinWait, self.now, self.config.fin_wait);
            }
        }
    }

    /// Closing has begun (our Close sent, the peer's received, or a failure
    /// deferred): keep-alive and heartbeat stop, and `close_timeout` bounds
    /// what is left.
    fn start_closing(&mut self, now: Instant) {
        for timer in [
            Timer::PongDeadline,
            Timer::Heartbeat,
            Timer::KeepAlive,
            Timer::Progress,
            Timer::Idle,
        ] {
            self.timers.stop(timer);
        }
        // no Pong is awaited any more: nothing to put off
        self.output.ping_answered();
        self.timers
            .set(Timer::Close, now, self.config.close_timeout);
    }

    // ----- events and output --------------------------------------------

    /// The next event, if any. Call until `None` after each input, timeout
    /// or operation.
    ///
    /// With `Config::auto_close_reply` on, a protocol violation found after
    /// events that were still queued is carried out by the call that finds
    /// the queue empty (the application has taken those events and had its
    /// chance to answer them): our Close is queued after those answers and
    /// the final [`Event::Closed`] is returned.
    ///
    /// Finding the queue empty while input waits behind a full batch
    /// ([`Connection::decoding_pending`]), it decodes the next
    /// [`EVENT_BATCH`] events first (at the time of the last `receive`):
    /// this may queue output (Pongs, our Close after a violation).
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        match self.active.as_mut().and_then(|a| a.events.pop()) {
            Some(event) => Some(event),
            None => self.next_batch_or_deferred(),
        }
    }

    /// The queue is empty: the next batch of held input, decoded, or the
    /// failure deferred behind the events taken.
    #[inline(never)]
    fn next_batch_or_deferred(&mut self) -> Option<Event> {
        if self.decode_held()
            && let Some(event) = self.active.as_mut().and_then(|a| a.events.pop())
        {
            return Some(event);
        }
        self.deferred_event()
    }

    /// Decodes the next batch of input held behind a full queue, at the
    /// time of the read that brought it; whether there was any.
    fn decode_held(&mut self) -> bool {
        if !self.input_held || self.decoding.is_some() {
            return false;
        }
        let now = self.now;
        self.settle_pins();
        // a protocol error is queued as the end (our Close, the final event)
        let _ = self.process(now);
        self.settle_pins();
        self.end_of_input_after_held();
        true
    }

    /// Takes every queued event at once, appended to `into` in order: the
    /// events [`Connection::poll_event`] would return one by one. The
    /// shorter queue's events move, not the longer's: when `into` holds
    /// fewer (and the connection's queue has room for them in front), they
    /// go in front of the connection's and the two queues are swapped, so
    /// their allocations are reused in turn (an adapter keeping its own
    /// queue of unread events moves a whole read's worth in one step).
    /// Look at them first with [`Connection::queued_events`]. Finding the
    /// queue empty while input waits behind a full batch, it decodes the
    /// next batch first, as `poll_event` does.
    ///
    /// With `Config::auto_close_reply` on, a violation found behind queued
    /// events is carried out by the take that finds the queue empty (as by
    /// the `poll_event` that finds it empty): the application has had its
    /// chance to answer what it took before our Close goes out.
    pub fn take_events(&mut self, into: &mut VecDeque<Event>) {
        if self.active.as_ref().is_none_or(|a| a.events.is_empty()) {
            self.decode_held();
        }
        if self.active.as_ref().is_none_or(|a| a.events.is_empty()) {
            // as `poll_event` finding the queue empty
            match self.deferred_event() {
                Some(event) => into.push_back(event),
                None => return,
            }
        }
        if let Some(a) = self.active.as_mut().filter(|a| !a.events.is_empty()) {
            a.events.take_into(into);
        }
    }

    /// What the queued events come to, kept as they come and go (no pass
    /// over them): to weigh them before [`Connection::take_events`].
    pub fn queued(&self) -> Queued {
        self.active.as_ref().map_or_else(Queued::default, |a| {
            let q = &a.events;
            let (weight, controls) = q.counts();
            Queued {
                events: q.len(),
                messages: q.len() - controls,
                weight,
                ends: matches!(q.queue.back(), Some(Event::Closed(_))),
            }
        })
    }

    /// The queued events, oldest first, without taking them (to look at
    /// them before [`Connection::take_events`]).
    pub fn queued_events(&self) -> impl Iterator<Item = &Event> {
        self.active.iter().flat_map(|a| a.events.queue.iter())
    }

    #[inline(never)]
    fn deferred_event(&mut self) -> Option<Event> {
        if !self.config.auto_close_reply {
            return None;
        }
        let err = self.deferred_failure.take()?;
        self.carry_out_failure(*err);
        self.a().events.pop()
    }

    /// The bytes to write to the transport, as a [`bytes::Buf`]: write
    /// `chunk()`/`chunks_vectored()` and `advance` by what was written.
    /// Owed Pongs join the queue here once the frames the connection sent
    /// of its own accord before them (Pongs, keep-alives, heartbeats) have
    /// been written, so Pings that arrive faster than output is written
    /// coalesce into one Pong (within `Config::max_pending_pongs`), however
    /// often this is called while the peer does not read.
    pub fn poll_output(&mut self) -> &mut Output {
        if self.output.own_written() {
            self.flush_pending_pongs();
        }
        &mut self.output
    }

    /// Takes all bytes to write as one buffer (a copy when several chunks
    /// are queued; use [`Connection::poll_output`] for vectored writes).
    pub fn take_output(&mut self) -> Bytes {
        let first = self.poll_output().take_all();
        if !self.has_output() {
            return first;
        }
        // owed Pongs waited for what was just taken (now written)
        let rest = self.poll_output().take_all();
        if first.is_empty() {
            return rest;
        }
        let mut all = bytes::BytesMut::with_capacity(first.len() + rest.len());
        all.extend_from_slice(&first);
        all.extend_from_slice(&rest);
        all.freeze()
    }

    /// Whether there is anything to write.
    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
            || self
                .active
                .as_ref()
                .is_some_and(|a| !a.pending_pongs.is_empty())
    }

    /// Bytes queued for the transport (not counting an owed Pong).
    pub fn queued_output(&self) -> usize {
        self.output.len()
    }

    /// Whether `send` would accept a message now (the output queue is
    /// within `Config::max_queued_output`, the state allows sending, and the
    /// transport has not failed).
    pub fn can_send(&self) -> bool {
        SEND_STATES.contains(&self.state)
            && !self.transport_failed
            && self.queued_output() <= self.config.max_queued_output
    }

    /// The next frame the connection sent of its own accord (keep-alive,
    /// heartbeat, the answer to a Ping), oldest first; `None` when there is
    /// none. Only the latest 16 are kept. For logs and monitors: nothing
    /// needs to take them.
    pub fn poll_sent(&mut self) -> Option<Sent> {
        self.sent.as_mut()?.pop_front()
    }

    fn note_sent(&mut self, sent: Sent) {
        let notices = self.sent.get_or_insert_with(Box::default);
        if notices.len() >= SENT_NOTICES {
            notices.pop_front();
        }
        notices.push_back(sent);
    }

    fn flush_pending_pongs(&mut self) {
        if self
            .active
            .as_ref()
            .is_none_or(|a| a.pending_pongs.is_empty())
        {
            return;
        }
        self.a().pending_pong_bytes = 0;
        while let Some(payload) = self.a().pending_pongs.pop_front() {
            self.note_sent(Sent::Pong(payload.clone()));
            self.write_frame(true, Rsv::NONE, OpCode::Pong, payload.into());
        }
        self.output.mark_own();
    }

    /// Queues one frame, encoded by a [`FrameEncoder`] for our role: into
    /// the output's tail when masked or small, else the header there and a
    /// large server payload by reference (written vectored, not copied).
    fn write_frame(&mut self, fin: bool, rsv: Rsv, opcode: OpCode, payload: Payload) {
        if self.transport_failed {
            // nothing more can be written (`Connection::transport_failed`)
            self.output_discarded = true;
            return;
        }
        self.note_traffic();
        if self.role.masks_outgoing() || payload.len() < ZERO_COPY_MIN {
            let tail = self.output.tail_mut();
            let before = tail.len();
            FrameEncoder::new(self.role, &mut self.masks).encode(fin, rsv, opcode, &payload, tail);
            let added = tail.len() - before;
            self.output.grew(added);
        } else {
            let header = FrameEncoder::new(self.role, &mut self.masks).encode_header(
                fin,
                rsv,
                opcode,
                payload.len() as u64,
            );
            self.output.push_slice(header.as_bytes());
            self.output.push_bytes(payload.into_bytes());
        }
    }

    fn write_close(&mut self, code: Option<CloseCode>, reason: &str) {
        let mut payload = BytesMut::with_capacity(2 + reason.len());
        if let Some(code) = code {
            payload.extend_from_slice(&code.as_u16().to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        self.write_frame(true, Rsv::NONE, OpCode::Close, payload.into());
    }

    // ----- operations ---------------------------------------------------

    fn check_state(&self, operation: &'static str, valid: &'static [State]) -> Result<(), Error> {
        if valid.contains(&self.state) {
            Ok(())
        } else {
            Err(self.invalid_state(operation, valid))
        }
    }

    #[cold]
    fn invalid_state(&self, operation: &'static str, valid: &'static [State]) -> Error {
        Error::InvalidState {
            operation,
            state: self.state,
            valid,
            cause: self.leaving_cause(),
        }
    }

    /// Whether a message, fragment, Ping or Pong may be sent in the current
    /// state (`Open` or `CloseReceived`), with the error [`Connection::send`]
    /// would give when not: for an adapter that refuses before it reaches
    /// the core, in the core's words. Room in the output queue is
    /// [`Connection::can_send`]'s.
    ///
    /// # Errors
    /// [`Error::InvalidState`], with why the connection left `Open`;
    /// [`Error::TransportFailed`] once the transport failed
    /// ([`Connection::transport_failed`]).
    #[inline]
    pub fn check_send(&self, operation: &'static str) -> Result<(), Error> {
        if matches!(self.state, State::Open | State::CloseReceived) {
            if self.transport_failed {
                return Err(self.failed_transport(operation));
            }
            Ok(())
        } else {
            Err(self.invalid_state(operation, SEND_STATES))
        }
    }

    /// [`Error::TransportFailed`] for `operation`, with the failure kept.
    #[cold]
    fn failed_transport(&self, operation: &'static str) -> Error {
        let reason = self
            .active
            .as_ref()
            .and_then(|a| a.failure.as_deref())
            .unwrap_or("the transport failed");
        Error::TransportFailed {
            operation,
            reason: reason.to_owned(),
        }
    }

    /// Why the connection left `Open`, once it has: how it ended, or, while
    /// our Close waits for the answer, that Close when this endpoint sent it
    /// on its own (the idle timeout; `was_clean: false` until the answer).
    /// A Close the application sent is the application's to know: `None`
    /// until the end. (No operation is refused in `CloseReceived`.)
    fn leaving_cause(&self) -> Option<CloseInfo> {
        if let Some(info) = self.close_info.as_deref() {
            return Some(info.clone());
        }
        (self.state == State::CloseSent && self.our_close_by == Initiator::Local).then(|| {
            CloseInfo {
                code: CloseCode::GOING_AWAY,
                reason: IDLE_TIMEOUT_REASON.to_owned(),
                was_clean: false,
                initiator: Initiator::Local,
            }
        })
    }

    fn check_room(&self) -> Result<(), Error> {
        let queued = self.queued_output();
        if queued > self.config.max_queued_output {
            return Err(Error::OutputFull {
                queued,
                limit: self.config.max_queued_output,
            });
        }
        Ok(())
    }

    /// Queues a whole message as one frame (transformed by the extension,
    /// if one is installed).
    ///
    /// # Errors
    /// [`Error::InvalidState`] unless `Open` or `CloseReceived`;
    /// [`Error::TransportFailed`] once the transport failed;
    /// [`Error::OutputFull`] while more than `Config::max_queued_output`
    /// bytes wait (the message is not queued); [`Error::InvalidInput`]
    /// while a fragmented send is open.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        self.send_checked(message, true)
    }

    /// As [`send`](Connection::send), without the room check: for a message
    /// admitted when [`can_send`](Connection::can_send) said there was room,
    /// by a caller that checks and sends in two steps, as a `Sink`'s
    /// `poll_ready` and `start_send` do, while other parties may drive the
    /// connection in between and queue its own frames (a Pong, a
    /// keep-alive Ping). One such message per check keeps the output within
    /// the same bound: `max_queued_output`, one message, and the
    /// connection's own control frames.
    ///
    /// # Errors
    /// As [`send`](Connection::send), but never [`Error::OutputFull`].
    pub fn send_admitted(&mut self, message: Message) -> Result<(), Error> {
        self.send_checked(message, false)
    }

    fn send_checked(&mut self, message: Message, room: bool) -> Result<(), Error> {
        self.check_send("send")?;
        if self.sending().is_some() {
            return Err(InvalidInput::FragmentedSendOpen.into());
        }
        if room {
            self.check_room()?;
        }
        let kind = message.kind();
        let payload = message.into_payload();
        let (rsv, payload) = match self.extension.as_mut() {
            Some(ext) => {
                let (rsv, payload) = ext.encode(kind, payload.into_bytes());
                (rsv, payload.into())
            }
            None => (Rsv::NONE, payload),
        };
        let opcode = match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        self.flush_pending_pongs();
        self.write_frame(true, rsv, opcode, payload);
        self.sent_since_heartbeat = true;
        self.postpone_idle(self.now);
        self.sent_untimed = self.config.idle_timeout.is_some();
        Ok(())
    }

    /// Queues one fragment of a message (RFC 6455 section 5.4): the first
    /// call starts a message of `kind`, later calls continue it, and `fin`
    /// ends it. Text fragments are checked to keep the message UTF-8 (a
    /// character may be split between fragments). Control frames may be
    /// sent between fragments; other messages may not. Fragments are not
    /// passed through the extension.
    ///
    /// # Errors
    /// As [`Connection::send`], plus [`InvalidInput::InvalidUtf8`] and
    /// [`InvalidInput::FragmentedSendOpen`] for a fragment of the other kind.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> Result<(), Error> {
        self.check_send("send")?;
        let (opcode, utf8) = match self.sending() {
            None => (
                match kind {
                    MessageKind::Text => OpCode::Text,
                    MessageKind::Binary => OpCode::Binary,
                },
                Utf8Stream::default(),
            ),
            Some(s) if s.kind == kind => (OpCode::Continuation, s.utf8),
            Some(_) => return Err(InvalidInput::FragmentedSendOpen.into()),
        };
        self.check_room()?;
        let mut utf8 = utf8;
        if kind == MessageKind::Text {
            let ok = utf8.feed(&data).is_ok() && (!fin || utf8.finish().is_ok());
            if !ok {
                return Err(InvalidInput::InvalidUtf8.into());
            }
        }
        self.flush_pending_pongs();
        self.write_frame(fin, Rsv::NONE, opcode, data.into());
        let sending = (!fin).then_some(Sending { kind, utf8 });
        if sending.is_some() || self.active.is_some() {
            self.a().sending = sending;
        }
        self.sent_since_heartbeat = true;
        self.postpone_idle(self.now);
        self.sent_untimed = self.config.idle_timeout.is_some();
        Ok(())
    }

    /// Queues a Ping (at most 125 bytes of payload).
    ///
    /// # Errors
    /// [`Error::InvalidState`] unless `Open` or `CloseReceived`;
    /// [`Error::TransportFailed`] once the transport failed;
    /// [`Error::OutputFull`] while the output queue is over
    /// `Config::max_queued_output`; [`InvalidInput::ControlPayloadTooLong`].
    pub fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
        self.control("ping", OpCode::Ping, payload)
    }

    /// Queues a Pong: the answer to a Ping when `Config::auto_pong` is off,
    /// or an unsolicited heartbeat (at most 125 bytes of payload).
    ///
    /// # Errors
    /// As [`Connection::ping`].
    pub fn pong(&mut self, payload: Bytes) -> Result<(), Error> {
        self.control("pong", OpCode::Pong, payload)
    }

    fn control(
        &mut self,
        operation: &'static str,
        opcode: OpCode,
        payload: Bytes,
    ) -> Result<(), Error> {
        self.check_send(operation)?;
        self.check_room()?;
        if payload.len() > tether_frame::MAX_CONTROL_PAYLOAD {
            return Err(InvalidInput::ControlPayloadTooLong(payload.len()).into());
        }
        self.write_frame(true, Rsv::NONE, opcode, payload.into());
        Ok(())
    }

    /// Starts the closing handshake (RFC 6455 section 7.1.2) at time `now`:
    /// queues our Close and moves to `CloseSent`; no data frame is sent after
    /// it. If the peer does not answer within `Config::close_timeout`, the
    /// connection is aborted (1006). From `CloseReceived` this completes the
    /// handshake.
    ///
    /// # Errors
    /// [`Error::InvalidState`] unless `Open` or `CloseReceived`;
    /// (after [`Connection::transport_failed`] it is accepted and does
    /// nothing: no Close can go out, and the end comes with the input);
    /// [`InvalidInput::CloseCode`] for 1005, 1006, 1015 and codes outside
    /// 1000-1003, 1007-1014, 3000-4999; [`InvalidInput::CloseReasonTooLong`]
    /// for a reason over 123 bytes.
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.check_state("close", SEND_STATES)?;
        CloseFrame::check(code, reason)?;
        if self.transport_failed {
            // our Close cannot go out: the end comes with the input (the
            // peer's Close may be in it), not from us
            return Ok(());
        }
        // the waits that closing arms (the close timeout; when this
        // answers the peer's Close, the drain and the FIN wait) count
        // from now
        self.tell_time(now);
        if let Some(a) = &mut self.active {
            a.sending = None;
        }
        if let Some(err) = self.deferred_failure.take() {
            // the peer broke the protocol: that is what our Close says
            self.carry_out_failure(*err);
            return Ok(());
        }
        match self.state {
            State::CloseReceived => self.answer_peer_close(Some((code, reason))),
            _ => {
                self.flush_pending_pongs();
                self.write_close(Some(code), reason);
                self.state = State::CloseSent;
                self.start_closing(now);
            }
        }
        Ok(())
    }

    /// Answers the peer's Close (in `CloseReceived`, with
    /// `Config::auto_close_reply` off) by echoing its code, completing the
    /// closing handshake: state `Closed`, final event with the peer's code
    /// and reason, `was_clean: true`. The waits that follow (our answer's
    /// time to be written, a client's wait for the server to end the
    /// transport) count from `now`.
    ///
    /// # Errors
    /// [`Error::InvalidState`] in any other state.
    pub fn reply_close(&mut self, now: Instant) -> Result<(), Error> {
        self.tell_time(now);
        if let Some(err) = self.deferred_failure.take() {
            self.carry_out_failure(*err);
            return Ok(());
        }
        self.check_state("reply to the peer's Close", &[State::CloseReceived])?;
        self.answer_peer_close(None);
        Ok(())
    }

    /// The peer's Close while it waits for our answer (`CloseReceived`).
    pub fn peer_close(&self) -> Option<&CloseFrame> {
        self.peer_close.as_deref()
    }

    /// A Close waits for the application to take the events before it:
    /// the answer to the peer's Close (`CloseReceived` with
    /// `Config::auto_close_reply` off), or the Close of a protocol
    /// violation found after those events ([`Connection::deferred_failure`]).
    /// An adapter calls [`Connection::reply_close`] once the application
    /// has read every event queued before this became true.
    pub fn awaits_close_reply(&self) -> bool {
        self.deferred_failure.is_some()
            || (self.state == State::CloseReceived && self.peer_close.is_some())
    }

    /// The protocol violation whose failure is deferred until the events
    /// before it are taken (see [`Connection::poll_event`]); input is no
    /// longer processed meanwhile.
    pub fn deferred_failure(&self) -> Option<&ProtocolError> {
        self.deferred_failure.as_deref()
    }

    /// The application went away without closing (an adapter's handle was
    /// dropped): when the connection is open, or owes the peer's Close an
    /// answer, our Close with 1001 "going away" (RFC 6455 section 7.4.1) is
    /// queued, so the peer sees an intended end rather than 1006. Returns
    /// whether it was; otherwise nothing changes.
    pub fn go_away(&mut self, now: Instant) -> bool {
        matches!(self.state, State::Open | State::CloseReceived)
            && self.close(now, CloseCode::GOING_AWAY, "").is_ok()
    }

    /// Ends the connection at once, without a closing handshake: state
    /// `Aborted`, final event 1006 with `reason`. Nothing more is sent.
    pub fn abort(&mut self, reason: &str) {
        if !self.state.is_terminal() {
            self.end(
                State::Aborted,
                CloseCode::ABNORMAL,
                reason.into(),
                false,
                Initiator::Local,
            );
        }
    }

    // ----- time ------------------------------------------------------------

    /// A data message arrived: the application-level heartbeat waits again
    /// (only while `Open`; closing stops it).
    fn postpone_heartbeat(&mut self, now: Instant) {
        if let (Some(h), State::Open, false) =
            (&self.config.heartbeat, self.state, self.transport_failed)
        {
            self.timers.set(Timer::Heartbeat, now, h.interval);
        }
        self.postpone_idle(now);
    }

    /// Whether the connection wants the time told
    /// ([`Connection::tell_time`]): a data message was sent since it was
    /// last told, and the idle timeout (`Config::idle_timeout`) counts from
    /// then; or output is queued and `Config::send_timeout` does not count
    /// for it yet. False otherwise, so an adapter that writes everything a
    /// send queued, with no idle timeout, reads no clock for it.
    pub fn wants_time(&self) -> bool {
        self.sent_untimed || self.output_untimed()
    }

    /// Output is queued and `Config::send_timeout` does not yet count for
    /// it: the first time told after a send arms it.
    fn output_untimed(&self) -> bool {
        self.config.send_timeout.is_some()
            && self.output_waits()
            && !self.state.is_terminal()
            && !self.timers.is_armed(Timer::Output)
    }

    /// Bytes of ours wait for the peer: queued here, or held unflushed by
    /// the adapter's transport.
    fn output_waits(&self) -> bool {
        !self.output.is_empty() || self.output.unflushed()
    }

    /// Tells the connection whether the adapter's transport holds bytes of
    /// ours it has not flushed: a TLS stream that took a record its socket
    /// cannot take yet, an HTTP/3 stream's send buffer waiting for credit.
    /// `Config::send_timeout` counts them as queued output (the queue here
    /// may be empty while they wait), and their flush as bytes taken. An
    /// adapter says `true` when a flush would wait (the tokio adapter) or
    /// before a flush that may block (the blocking adapter, after a write),
    /// and `false` when it completes. Without it, a peer that reads nothing
    /// held a send whose last bytes a TLS layer had taken for ever.
    pub fn set_unflushed(&mut self, now: Instant, unflushed: bool) {
        if !self.output.set_unflushed(unflushed) {
            return;
        }
        if !unflushed && !self.state.is_terminal() {
            // flushed: bytes taken, the send timeout waits again (or stops)
            self.timers.stop(Timer::Output);
        }
        self.track_output(now);
    }

    /// Whether the adapter last said its transport holds bytes of ours
    /// unflushed ([`Connection::set_unflushed`]): an adapter asks before
    /// reading the clock to say they were flushed.
    pub fn unflushed(&self) -> bool {
        self.output.unflushed()
    }

    /// Tells the connection the time, for what the calls that take none
    /// (`send`, `send_fragment`) did since the last call that took it: the
    /// idle timeout counts from the first time told after a data message
    /// went out (counting from the call before the send could close a
    /// connection as idle just after a message went out). Every timed call
    /// does this too; an adapter calls it when it writes what such calls
    /// queued, so the count starts as the message leaves. Cheap: no timer
    /// runs.
    pub fn tell_time(&mut self, now: Instant) {
        self.now = now;
        if core::mem::take(&mut self.sent_untimed) {
            self.postpone_idle(now);
        }
        self.track_output(now);
    }

    /// `Config::send_timeout`: waits again from `now` when output is
    /// queued and bytes were taken since the last look (or it was not
    /// counting yet); stops when nothing is queued. Not once ended (the
    /// drain deadline holds the slot) nor over a failed transport.
    fn track_output(&mut self, now: Instant) {
        let Some(after) = self.config.send_timeout else {
            return;
        };
        if self.state.is_terminal() {
            return;
        }
        if !self.output_waits() || self.transport_failed {
            self.timers.stop(Timer::Output);
            return;
        }
        if self.output.moved() || !self.timers.is_armed(Timer::Output) {
            self.timers.set(Timer::Output, now, after);
        }
    }

    /// A data message went either way: the idle timeout waits again (only
    /// while `Open`).
    fn postpone_idle(&mut self, now: Instant) {
        if let (Some(t), State::Open, false) =
            (self.config.idle_timeout, self.state, self.transport_failed)
        {
            self.timers.set(Timer::Idle, now, t);
        }
    }

    /// Bytes of the data message the peer is sending, when one is begun:
    /// its fragments so far, the data frame still arriving, and a data
    /// frame's header split across reads. Control frames do not count.
    fn message_in_progress(&self) -> Option<usize> {
        let a = self.active.as_deref()?;
        let whole = a.incoming.as_ref().map(|m| m.buf.len());
        let frame = a
            .decoder
            .partial_payload()
            .filter(|(h, _)| h.opcode.is_data())
            .map(|(_, p)| p.len());
        let header = a
            .input
            .first()
            .filter(|b| *b & 0x08 == 0)
            .map(|_| a.input.len());
        match (whole, frame, header) {
            (None, None, None) => None,
            _ => Some(whole.unwrap_or(0) + frame.unwrap_or(0) + header.unwrap_or(0)),
        }
    }

    /// After input: the message timeout waits again when the peer's
    /// message grew, stops when none is begun.
    fn track_progress(&mut self, now: Instant) {
        let Some(timeout) = self.config.message_timeout else {
            return;
        };
        // after a failed transport the close timeout alone bounds reading
        if self.input_stopped() || self.transport_failed {
            self.timers.stop(Timer::Progress);
            return;
        }
        match self.message_in_progress() {
            None => {
                if let Some(a) = self.active.as_deref_mut() {
                    a.progress_seen = 0;
                }
                self.timers.stop(Timer::Progress);
            }
            Some(bytes) => {
                // a message in progress lies in the active state
                let seen = self
                    .active
                    .as_deref_mut()
                    .map(|a| std::mem::replace(&mut a.progress_seen, bytes));
                if seen != Some(bytes) || !self.timers.is_armed(Timer::Progress) {
                    self.timers.set(Timer::Progress, now, timeout);
                }
            }
        }
    }

    /// The keep-alive Ping's Pong is due: its deadline runs (set with the
    /// Ping, stopped by the matching Pong and when closing begins).
    fn pong_due(&self) -> bool {
        self.timers.is_armed(Timer::PongDeadline)
    }

    fn postpone_keepalive(&mut self, now: Instant) {
        if self.pong_due() || self.state != State::Open || self.transport_failed {
            return;
        }
        match self.config.keep_alive {
            KeepAlive::Off => self.timers.stop(Timer::KeepAlive),
            KeepAlive::Pong { interval } | KeepAlive::Ping { interval, .. } => {
                self.timers.set(Timer::KeepAlive, now, interval);
            }
        }
    }

    /// The next moment [`Connection::handle_timeout`] must be called: the
    /// earliest armed timer (keep-alive, its Pong deadline, heartbeat,
    /// close timeout, the deadline for our last bytes, a client's wait for
    /// the server to close the transport). `None` when none is armed.
    /// A deadline armed by a call at `now` lies at least
    /// [`TIMER_RESOLUTION`](crate::TIMER_RESOLUTION) after it, so after
    /// `handle_timeout(now)` nothing is due at that same `now`: a driver
    /// never spins on a zero interval.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next(|_| true)
    }

    /// How long from `now` until [`Connection::poll_timeout`], for an
    /// adapter that can only wait for a duration (a socket's read or write
    /// timeout, a sleep): never less than
    /// [`TIMER_RESOLUTION`](crate::TIMER_RESOLUTION), since a zero socket
    /// timeout means "no timeout" (a deadline already due gives that much:
    /// call [`Connection::handle_timeout`] first). `None` when no timer is
    /// armed.
    pub fn timeout_in(&self, now: Instant) -> Option<Duration> {
        self.poll_timeout().map(|at| {
            at.saturating_duration_since(now)
                .max(crate::TIMER_RESOLUTION)
        })
    }

    /// Runs the timers that are due at `now`, each kind at most once:
    /// sends the keep-alive Pong or Ping or the heartbeat; on the close
    /// timeout answers the peer's Close or carries out a deferred failure
    /// for the application, or aborts when the peer never answered ours;
    /// aborts on a missed keep-alive Pong (final event 1006, `was_clean:
    /// false`); gives up output the peer would not take; ends a client's
    /// wait for the server to close the transport. Calling it early does
    /// nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tell_time(now);
        // whether the frames we last sent of our own accord are written: a
        // keep-alive or heartbeat is not queued while one the peer has not
        // taken waits (taken once, so two due together both go)
        let line_clear = self.output.own_written();
        for timer in Timer::ALL {
            if self.timers.take_due(timer, now) {
                self.on_timer(timer, now, line_clear);
            }
        }
    }

    fn on_timer(&mut self, timer: Timer, now: Instant, line_clear: bool) {
        match timer {
            Timer::Close => self.on_close_timeout(),
            Timer::PongDeadline => {
                let timeout = match self.config.keep_alive {
                    KeepAlive::Ping { timeout, .. } => timeout,
                    _ => Duration::ZERO,
                };
                if self.output.ping_held_up() {
                    // our Ping still waits behind bytes the peer is taking
                    // (a large message to a slow reader): not yet received,
                    // so not unanswered; look again a timeout later
                    self.timers.set(Timer::PongDeadline, now, timeout);
                    return;
                }
                let reason = format!(
                    "keep-alive timeout: no Pong within {} of our Ping",
                    fmt_duration(timeout)
                );
                self.abort(&reason);
            }
            Timer::Heartbeat => {
                let Some(h) = self
                    .config
                    .heartbeat
                    .as_ref()
                    .filter(|_| self.state == State::Open)
                else {
                    return; // no heartbeat once closing has begun
                };
                let (interval, message) = (h.interval, h.message.clone());
                self.timers.set(Timer::Heartbeat, now, interval);
                // not while the last frame of our own accord waits unwritten:
                // one per interval would pile up for a peer that reads nothing
                if !core::mem::take(&mut self.sent_since_heartbeat)
                    && self.sending().is_none()
                    && line_clear
                {
                    let opcode = match message.kind() {
                        MessageKind::Text => OpCode::Text,
                        MessageKind::Binary => OpCode::Binary,
                    };
                    self.note_sent(Sent::Heartbeat);
                    self.write_frame(true, Rsv::NONE, opcode, message.into_payload());
                    self.output.mark_own();
                }
            }
            Timer::KeepAlive => {
                if !matches!(self.state, State::Open | State::CloseReceived) {
                    return;
                }
                match self.config.keep_alive {
                    KeepAlive::Off => {}
                    KeepAlive::Pong { interval } => {
                        // as the heartbeat: not while the last one waits
                        if line_clear {
                            self.note_sent(Sent::KeepAlivePong);
                            self.write_frame(true, Rsv::NONE, OpCode::Pong, Payload::new());
                            self.output.mark_own();
                        }
                        self.timers.set(Timer::KeepAlive, now, interval);
                    }
                    KeepAlive::Ping { timeout, .. } => {
                        self.ping_counter = self.ping_counter.wrapping_add(1);
                        let payload = Bytes::copy_from_slice(&self.ping_counter.to_be_bytes());
                        self.note_sent(Sent::KeepAlivePing(payload.clone()));
                        self.write_frame(true, Rsv::NONE, OpCode::Ping, payload.into());
                        self.output.mark_ping();
                        self.timers.set(Timer::PongDeadline, now, timeout);
                    }
                }
            }
            Timer::Output if !self.state.is_terminal() => self.on_send_timeout(),
            Timer::Output => {
                self.drain_expired = true;
                if !self.output.is_empty() {
                    // the peer took nothing for close_timeout: give up
                    self.output = Output::default();
                    self.output_discarded = true;
                } else if self.output.unflushed() {
                    // the adapter gives up what its transport holds
                    // (`drain_expired`): nothing is kept for it
                    self.output = Output::default();
                }
            }
            // the peer did not end its side in time: a client closes
            // first itself, a server stops lingering and closes
            Timer::FinWait => {}
            Timer::Progress => {
                if let Some(after) = self.config.message_timeout
                    && self.message_in_progress().is_some()
                    && !self.input_stopped()
                {
                    if self.not_reading {
                        // the rest may be waiting unread: not the peer's fault
                        self.timers.set(Timer::Progress, now, after);
                    } else {
                        let _ = self.fail(ProtocolError::MessageStalled { after });
                    }
                }
            }
            Timer::HeldBack => self.budget_overdue = true,
            Timer::Release => {
                let Some(quiet_until) = self.last_traffic.checked_add(self.release_window()) else {
                    // a window past what time can hold: never
                    return;
                };
                if now >= quiet_until {
                    self.release_idle_memory();
                    self.idle_released = true;
                    self.released_before = true;
                } else {
                    // traffic since: look again once that much quiet passed
                    self.timers.set(
                        Timer::Release,
                        now,
                        quiet_until.saturating_duration_since(now),
                    );
                }
            }
            Timer::Idle => {
                if self.state == State::Open
                    && self
                        .close(now, CloseCode::GOING_AWAY, IDLE_TIMEOUT_REASON)
                        .is_ok()
                {
                    self.our_close_by = Initiator::Local;
                }
            }
        }
    }

    /// `Config::send_timeout` passed with none of the queued output taken
    /// (bytes taken meanwhile were seen by `tell_time`, which `handle_timeout`
    /// calls first, and put the deadline off): the peer takes nothing, so
    /// nothing more is sent, a Close included; the connection aborts.
    fn on_send_timeout(&mut self) {
        let Some(after) = self.config.send_timeout else {
            return;
        };
        if !self.output_waits() || self.transport_failed {
            return;
        }
        let queued = self.output.len();
        let what = match (queued, self.output.unflushed()) {
            (0, _) => "the bytes our transport holds for it".to_owned(),
            (n, true) => format!("the {n} bytes queued for it, nor what our transport holds,"),
            (n, false) => format!("the {n} bytes queued for it"),
        };
        let reason = format!(
            "send timeout: the peer took none of {what} within {}",
            fmt_duration(after)
        );
        self.output_discarded = true;
        self.abort(&reason);
    }

    /// `Config::close_timeout` passed while closing.
    fn on_close_timeout(&mut self) {
        if self.transport_failed {
            // the input after a failed transport did not end in time: the
            // end comes with what was read (once it has ended, only the
            // application's pace is left: the end waits for it)
            if self.input_end == InputEnd::Open {
                self.end_of_input();
            }
            return;
        }
        if let Some(err) = self.deferred_failure.take() {
            // the application did not take its events in time
            self.carry_out_failure(*err);
            return;
        }
        match self.state {
            // the application did not answer in time: answer for it
            State::CloseReceived => self.answer_peer_close(None),
            State::CloseSent => {
                let reason = format!(
                    "close timeout: the peer did not answer our Close within {}",
                    fmt_duration(self.config.close_timeout)
                );
                self.end(
                    State::Aborted,
                    CloseCode::ABNORMAL,
                    reason,
                    false,
                    self.our_close_by,
                );
            }
            _ => {}
        }
    }

    // ----- the transport ---------------------------------------------------

    /// Whether the transport should be shut down now: the connection has
    /// ended, our last bytes are written (or were given up after
    /// `Config::close_timeout`), and a client no longer waits for the
    /// server to close first (RFC 6455 section 7.1.1: up to
    /// `Config::fin_wait`, or until [`Connection::receive_eof`]). An
    /// adapter flushes its transport and shuts down writing; then, while
    /// [`Connection::close_expected`] says so, reads on (giving what comes
    /// to [`Connection::receive`], which drops it, and the end to
    /// [`Connection::receive_eof`]), and closes the transport after.
    pub fn should_close_transport(&self) -> bool {
        self.state.is_terminal()
            && self.queued_output() == 0
            && (self.role == Role::Server || !self.timers.is_armed(Timer::FinWait))
    }

    /// Whether the peer's end of the transport is awaited: keep reading
    /// (what comes is dropped) until it comes or the time runs out
    /// (`Config::fin_wait`). A client that ended waits for the server to
    /// close first, before [`Connection::should_close_transport`]; a
    /// server that failed the connection waits after shutting down
    /// writing (the peer had not sent its Close, so it may still be
    /// sending: closing with its bytes unread would reset the connection,
    /// and the peer may lose what we sent last, unread, with the reset).
    pub fn close_expected(&self) -> bool {
        self.timers.is_armed(Timer::FinWait)
    }

    /// Whether queued output was given up: the peer did not take it by the
    /// drain deadline (`Config::close_timeout` after the end), or the
    /// transport failed with output still queued, or something was queued
    /// after ([`Connection::transport_failed`]).
    pub fn output_discarded(&self) -> bool {
        self.output_discarded
    }

    /// Whether the time for an ended connection's last bytes has run out
    /// (`Config::close_timeout` after the end; the drain timer stays armed
    /// until then). An adapter that still holds bytes of its own (a TLS
    /// record not yet flushed) gives them up now and closes the transport.
    pub fn drain_expired(&self) -> bool {
        self.drain_expired
    }

    /// Whether a received Ping or Pong event of `footprint` bytes
    /// ([`Event::footprint`]) still waits for the application when events
    /// weighing `unread` bytes already do: while together they stay under
    /// `Config::max_unread_bytes`. Past that it is dropped: it only tells
    /// (the Ping was answered as it was decoded), and so such events never
    /// fill the bound that stops reading, and a peer's keep-alive Pings are
    /// answered however long the application does not read. Reading stops
    /// only for messages (one always gets through). Both adapters ask this,
    /// so either keeps the same events.
    pub fn keeps_control_event(&self, unread: usize, footprint: usize) -> bool {
        unread.saturating_add(footprint) < self.config.max_unread_bytes
    }

    /// After our Close, whether a received message of `len` bytes is still
    /// kept for the application when an adapter already keeps `kept` bytes
    /// of messages beyond its read-ahead bound: while they stay within
    /// `Config::max_message_size`. Past that the message is dropped, and
    /// reading goes on to the peer's Close: the application asked to end,
    /// memory stays bounded, and the close is clean rather than timed out.
    /// Both adapters ask this, so a peer that sends on after our Close
    /// gets the same end from either. Nothing is kept while a shared budget
    /// this connection holds some of is spent (as
    /// [`Connection::budget_check`] last found): reading goes on to the
    /// answer, and the budget still bounds what the server holds.
    pub fn keeps_after_close(&self, kept: usize, len: usize) -> bool {
        !self.closing_over_budget && kept.saturating_add(len) <= self.config.max_message_size
    }

    /// After our Close, with a shared budget this connection holds some of
    /// spent (as [`Connection::budget_check`] last found): every received
    /// message is dropped, not kept, whatever the unread bound, while
    /// reading goes on to the peer's answer. An adapter with a budget asks
    /// this before keeping a message, so the budget bounds what a closing
    /// connection holds too.
    pub fn drops_after_close(&self) -> bool {
        self.state == State::CloseSent && self.closing_over_budget
    }

    /// Whether writing is over: the connection was aborted (a timeout,
    /// [`Connection::abort`]: nothing more is sent), the transport failed
    /// ([`Connection::transport_failed`]: the state may still be `Open`
    /// while the input is read to its end), or an ended one's last bytes
    /// ran out of time ([`Connection::drain_expired`]). An adapter that still holds bytes
    /// of its own (a TLS record not yet flushed) gives them up and closes
    /// the transport, rather than wait for a peer that takes nothing.
    pub fn writing_over(&self) -> bool {
        self.state == State::Aborted || self.drain_expired || self.transport_failed
    }
}

/// The most frame headers [`whole_frames_prefix`] steps over. Each step
/// waits on the load of the header before it (about 7 ns on the bench
/// machine): a 64 KiB read of 125-byte frames took 3.5 µs to walk, a tenth
/// of the time `receive` spent on it, to save the copy of at most one
/// incomplete frame's partial payload. Past this many frames, the read's
/// frames average under `len / WALK_FRAMES` bytes, and the rest of it is
/// copied whole (the decoder copies the partial payload of a frame at its
/// end on into the frame's own buffer, as it does for a read into
/// `receive_buffer`).
const WALK_FRAMES: usize = 16;

/// The length of the run of whole frames at the front of `data`, plus the
/// header of the first incomplete frame (its payload is then fed straight
/// into the frame's own buffer), or all of `data` when it ends inside a
/// header, holds bytes the decoder will reject, or holds more than
/// [`WALK_FRAMES`] frames.
fn whole_frames_prefix(data: &[u8]) -> usize {
    let mut off = 0;
    for _ in 0..WALK_FRAMES {
        let rest = data.get(off..).unwrap_or_default();
        if rest.is_empty() {
            return off;
        }
        let Some(len) = FrameHeader::peek_frame_len(rest) else {
            return data.len(); // ends inside a header
        };
        let end = usize::try_from(len).map_or(usize::MAX, |l| off.saturating_add(l));
        if end > data.len() {
            // include the incomplete frame's header only: its payload is
            // fed straight into the frame's own buffer
            return match FrameHeader::parse(rest) {
                Ok(tether_frame::Status::Complete(_, used)) => off + used,
                _ => data.len(),
            };
        }
        off = end;
    }
    data.len()
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
