//! Every limit and policy of a connection, in one place, with its default.

use core::time::Duration;

/// The keep-alive policy (modelled on .NET's `ManagedWebSocket`).
///
/// The interval counts from the last frame received (any received bytes
/// postpone the next keep-alive), and from the last keep-alive sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeepAlive {
    /// Send nothing of our own accord. The default: some servers mishandle
    /// unsolicited frames, so heartbeats are opt-in.
    #[default]
    Off,
    /// A one-way heartbeat: an empty, unsolicited Pong after each idle
    /// `interval` (RFC 6455 section 5.5.3 allows unsolicited Pongs; this is
    /// .NET's default). Keeps NATs and load balancers from cutting an idle
    /// line; does not detect a dead peer. Skipped while the last frame the
    /// connection sent of its own accord waits unwritten (they would pile
    /// up for a peer that reads nothing).
    Pong {
        /// Idle time before each Pong.
        interval: Duration,
    },
    /// Dead-peer detection: a Ping carrying a fresh counter after each idle
    /// `interval`; if no Pong echoing that counter arrives within `timeout`,
    /// the connection is aborted (final close 1006, `was_clean: false`).
    /// Unsolicited or stale Pongs do not count.
    Ping {
        /// Idle time before each Ping.
        interval: Duration,
        /// How long to wait for the matching Pong. A Ping queued behind bytes
        /// the peer is still taking (a large message to a slow reader) has
        /// not reached it: the wait goes on while our output moves, and
        /// ends once the peer takes nothing for a whole `timeout`. It runs also while the
        /// adapter holds off reading because the application has not taken
        /// `max_unread_bytes` of what arrived: an application that stops
        /// taking messages for longer ends the connection as a dead peer
        /// would (.NET's keep-alive likewise needs a pending receive).
        timeout: Duration,
    },
}

impl KeepAlive {
    /// The usual idle interval before a keep-alive frame, 30 s (what a
    /// load balancer's idle cut, often 60 s, leaves room for): the
    /// interval of [`KeepAlive::DEFAULT_PING`] and the CLI's `--interval`.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
    /// The usual wait for a keep-alive Ping's Pong, 10 s.
    pub const DEFAULT_PONG_WAIT: Duration = Duration::from_secs(10);
    /// A Ping after 30 s of quiet, its Pong awaited 10 s: what `tether
    /// serve` uses unless told otherwise.
    pub const DEFAULT_PING: Self = Self::Ping {
        interval: Self::DEFAULT_INTERVAL,
        timeout: Self::DEFAULT_PONG_WAIT,
    };
}

/// An application-level heartbeat: a data message sent after an idle
/// interval, for servers and proxies that ignore control frames (where a
/// protocol [`KeepAlive`] does not keep the line warm). Separate from, and
/// combinable with, the keep-alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Idle time (no data message sent or received) before the message.
    /// A message sent by the application postpones it by up to one more
    /// interval; it is skipped while the last frame the connection sent of
    /// its own accord waits unwritten.
    pub interval: Duration,
    /// What to send, e.g. `Message::text("ping")` or `{"type":"ping"}`.
    pub message: crate::Message,
}

/// Limits and policies of a [`Connection`](crate::Connection).
///
/// Every buffer the wire can grow has a limit here; over a limit the peer
/// gets a precise close code and nothing received before is lost. Any
/// wait may be `Duration::MAX`, a wait that never comes (in the adapters'
/// deadlines, 30 years: [`deadline`](crate::deadline)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest payload of one frame; checked from the header, before any of
    /// the payload is buffered. Over it: close 1009. Default 16 MiB.
    pub max_frame_size: usize,
    /// Largest message, all fragments together; checked as each frame header
    /// arrives. Over it: close 1009. Default 64 MiB.
    pub max_message_size: usize,
    /// Most frames one message may span. Over it: close 1009. Default
    /// 1,048,576 (Autobahn 9.x sends 4 MiB in 64-byte fragments: 65,536).
    pub max_fragments: usize,
    /// Output bytes that may wait to be written before `send` refuses more
    /// (backpressure). One message is always accepted when the queue is
    /// under the limit, so a single large message can still go. The
    /// connection's own control frames are never refused (Pongs coalesce
    /// and Close is sent once, so they stay bounded); the application's
    /// `ping` and `pong` are, as `send` is, while the queue is over the
    /// limit ([`Error::OutputFull`](crate::Error::OutputFull)). Default
    /// 16 MiB.
    pub max_queued_output: usize,
    /// Bytes of received events (messages, Pings, Pongs; each counted as
    /// [`Event::footprint`](crate::Event::footprint)) that may wait for the
    /// application to take them, in the connection's queue and an
    /// adapter's read-ahead, before the adapter stops reading
    /// (backpressure: the rest waits in the kernel and then in the peer).
    /// One message always gets through however large, so a message up to
    /// `max_message_size` still arrives. After our Close, reading goes on
    /// to the peer's answer: messages past this bound are kept up to
    /// `max_message_size` bytes more and dropped beyond
    /// ([`Connection::keeps_after_close`](crate::Connection::keeps_after_close)).
    /// Default 1 MiB.
    ///
    /// With these limits, what a connection holds for the peer is at most,
    /// in bytes (buffers that grow by doubling counted at twice what they
    /// hold):
    /// - the adapter's read buffer (64 KiB; the blocking adapter's
    ///   `ServerOptions::read_buffer_size`) and one read more (the same
    ///   size: what waits undecoded behind a full batch of events is at
    ///   most one read);
    /// - 2 x `max_frame_size`: a frame arriving (its buffer reserved up to
    ///   1 MiB at first, then doubling, never past the frame's length: the
    ///   frame at most, twice that only while its last growth copies);
    /// - 2 x `max_message_size`: a message being assembled (its compressed
    ///   bytes, with permessage-deflate, may be 0.1% + 64 bytes more);
    /// - 4 x `max_unread_bytes` + 2 x `max_message_size`: received, not yet
    ///   taken (one message always gets through; a message split off the
    ///   buffer it was read into keeps all of that buffer alive, so such
    ///   buffers are kept only while the messages queued since each was
    ///   new weigh at least half of it, and the messages are copied out
    ///   otherwise (one small enough to be held inline, `Payload`, is
    ///   copied and keeps nothing); a message's own buffer is at most twice
    ///   its size);
    /// - 2 x `max_message_size` more after our Close: messages read past
    ///   the bound on the way to the peer's answer
    ///   ([`Connection::keeps_after_close`](crate::Connection::keeps_after_close));
    /// - [`EVENT_BATCH`](crate::EVENT_BATCH) x 200 (100 KiB): the events of
    ///   one read that the connection queued and the adapter has not taken,
    ///   40 bytes a slot and a Ping's or Pong's payload (up to 125 bytes) in
    ///   an allocation of its own;
    /// - `max_queued_output` + `max_message_size`: our output (one message
    ///   is always accepted), + 2 x `max_pending_pongs` (owed, and in the
    ///   output);
    /// - the frame decoder's spare buffers (allocations of received frames
    ///   the application has dropped, kept for reuse): at most the larger
    ///   of 1 MiB and 2 x `max_frame_size`;
    /// - the permessage-deflate contexts when negotiated: at most
    ///   5 x 2^bits + 300 KiB (about 450 KiB at 15-bit windows, README),
    ///   and while a message is compressed its output, at most twice its
    ///   length, counted with the output;
    /// - over HTTP/2 or HTTP/3, `transport_stream_window` (256 KiB):
    ///   received on the WebSocket's stream, held by the transport until
    ///   the adapter reads it.
    ///
    /// Idle, a connection keeps at most two spare frame buffers of
    /// [`IDLE_SPARE_MAX`](crate::IDLE_SPARE_MAX). `tether serve`'s
    /// defaults (16 MiB messages and frames) make that 196 MiB for the
    /// worst client; one that sends 16 MiB messages and never reads the
    /// echoes peaked at 64 MiB in the tokio adapter's allocation-counting
    /// test (`tests/memory_bounds.rs`; where the read-ahead by message
    /// count held 1 GiB and more), 128 MiB when each message came in
    /// fragments sized to make every doubling buffer double.
    pub max_unread_bytes: usize,
    /// How long to wait for the peer's Close after sending ours before
    /// aborting (final close 1006); how long the peer's Close, or a
    /// protocol violation found after unread messages, waits for the
    /// application before it is answered for it; and how long an ended
    /// connection's last bytes may take to be written before they are
    /// given up. A multiplexed server's connection (HTTP/2, HTTP/3) after
    /// its GOAWAY, once nothing is left open, gives the client this long
    /// to end it ([`crate::upgrade::Vacancy`]). Default 10 s.
    pub close_timeout: Duration,
    /// How long a client that ended the connection waits for the server to
    /// close the transport first (RFC 6455 section 7.1.1: the server closes
    /// TCP, so that it holds the TIME_WAIT state) before closing it itself;
    /// see [`Connection::should_close_transport`](crate::Connection::should_close_transport).
    /// A server that failed the connection (the peer has not sent its
    /// Close, so it may still be sending) shuts down writing and then
    /// reads on, dropping what comes, up to this long for the peer's end:
    /// closing with the peer's bytes unread would reset the connection,
    /// and a peer whose TCP sees the reset may lose our Close, and the
    /// answers before it, unread ([`Connection::close_expected`](crate::Connection::close_expected)).
    /// A server whose closing handshake completed does not wait. Default 2 s.
    pub fin_wait: Duration,
    /// How long a client may take to reach the server, as one deadline:
    /// TCP (every address the name resolves to), a proxy's tunnel, and the
    /// TLS handshake for `wss://` (over QUIC, its handshake, which is TLS),
    /// as curl's connect timeout counts them. Past it the connect fails
    /// (naming the TLS handshake when that was what had not finished).
    /// Every adapter applies it the same way. Default 10 s. It also bounds
    /// the wait for another connection to the same host to finish
    /// connecting (`one_connecting_per_host`).
    pub connect_timeout: Duration,
    /// A client connecting with it (`connect` in either adapter, over
    /// HTTP/1.1) opens a WebSocket to an IP address and port only while no
    /// other such connection of the process to it is in the CONNECTING
    /// state (TCP, a proxy's tunnel, TLS and the upgrade): it waits in
    /// line, within `connect_timeout`, until that one is established or
    /// has failed, as RFC 6455 section 4.1 requires of clients. Through a
    /// proxy that resolves the name (`http://`, `socks5h://`), the host
    /// name and port stand for the address. A connection that stays in
    /// the CONNECTING state holds the others to its host back for as long
    /// as its own timeouts allow. [`crate::connecting`] holds the rule.
    /// Off, this connection neither waits nor makes others wait (a load
    /// generator opening many connections to one server may want that;
    /// the RFC does not allow it). Default on.
    pub one_connecting_per_host: bool,
    /// How long the WebSocket opening handshake may take: for a client,
    /// from the moment the server is reached (after `connect_timeout`'s
    /// part) to the upgrade's answer (over HTTP/2 and HTTP/3, where one
    /// connection carries many WebSockets, the wait for the server's
    /// SETTINGS and each WebSocket's extended CONNECT get it each); for a
    /// server, as one deadline from
    /// the connection handed to the adapter to the 101 written, a TLS
    /// handshake the adapter runs on the way included (the blocking
    /// adapter's TLS stream, `tether serve --tls-cert/--tls-key`). Past it the handshake
    /// fails with `HandshakeError::Timeout`. Every adapter applies it the
    /// same way. Default 10 s.
    pub handshake_timeout: Duration,
    /// How long a message the peer began (its first frame's header, or a
    /// part of one, arrived) may go without receiving more of its bytes
    /// before the connection fails with 1008 (policy violation). Control
    /// frames in between do not count as progress. Bounds how long a
    /// stalled or trickling sender holds a partial message's buffer (up to
    /// `max_message_size`). It waits while the adapter holds off reading
    /// for the application (the rest may be there, unread), and starts
    /// again, whole, when reading resumes
    /// ([`Connection::set_reading`](crate::Connection::set_reading)).
    /// `None`: no limit. Default 60 s.
    pub message_timeout: Option<Duration>,
    /// How long bytes queued for the peer may wait with none of them taken
    /// by the transport (a peer that reads nothing fills its window and our
    /// socket's buffer, and every write waits) before the connection is
    /// aborted: final event 1006, not clean, reason "send timeout", the
    /// queued output given up (a Close could not be written either). Any
    /// byte taken waits again, so a slow reader is not cut off, only one
    /// that takes nothing, as far as the transport lets us see: a socket
    /// says it has room again only once a part of its buffer has drained
    /// (on Linux, a third of what it holds), a TLS layer's flush completes
    /// only once all it buffered is out (up to 64 KiB for rustls) and an
    /// HTTP/3 stream's once its chunk is (up to `transport_stream_window`,
    /// 256 KiB by default), and an HTTP/2 or HTTP/3
    /// stream takes none while the peer grants it no credit (a sibling
    /// stream that reads nothing can use up the connection's). So a peer
    /// must take that much within the timeout. Bytes the adapter's
    /// transport took but could not flush count as queued
    /// ([`Connection::set_unflushed`](crate::Connection::set_unflushed));
    /// bytes an application took with `take_output` are its own. The wait
    /// counts from the time the connection is told
    /// ([`Connection::tell_time`](crate::Connection::tell_time), which the
    /// adapters call as they write) after bytes were last taken. While
    /// closing, `close_timeout` bounds the same wait. Bounds how long such a
    /// peer holds a sender (a blocking `send`, a tokio `send` waiting for
    /// room) and our output buffer (up to `max_queued_output`), whatever
    /// else is configured. `None`: no limit. Default 60 s.
    pub send_timeout: Option<Duration>,
    /// How long the connection may go without a data message either way
    /// (Pings, Pongs and keep-alives do not count) before we close it with
    /// 1001 (going away), reason "idle timeout". A message we send counts
    /// from the first call after it that tells the time (`send` takes
    /// none; the adapters tell it as they write,
    /// [`Connection::tell_time`](crate::Connection::tell_time)). `None`: no
    /// limit. Default `None`.
    pub idle_timeout: Option<Duration>,
    /// Keep-alive policy. Default [`KeepAlive::Off`].
    pub keep_alive: KeepAlive,
    /// Application-level heartbeat. Default none.
    pub heartbeat: Option<Heartbeat>,
    /// Answer the peer's Close as soon as it arrives (RFC 6455 section
    /// 5.5.1). When off, the connection waits in `CloseReceived` (data may
    /// still be sent) until [`Connection::reply_close`](crate::Connection::reply_close)
    /// or [`Connection::close`](crate::Connection::close), or until
    /// `close_timeout` passes (then it answers by itself). Adapters turn it
    /// off to answer only after the application has read every message that
    /// came before the Close, as Node's `ws` does.
    ///
    /// A protocol violation found after messages the application has not
    /// taken waits the same way: when on, until
    /// [`Connection::poll_event`](crate::Connection::poll_event) has
    /// handed out the events before it; when off, until `reply_close`
    /// (or `close_timeout`). Default on.
    pub auto_close_reply: bool,
    /// Answer each Ping with a Pong carrying the same payload (RFC 6455
    /// section 5.5.2). When off, Pings are only events and the application
    /// answers with [`Connection::pong`](crate::Connection::pong). Default on.
    pub auto_pong: bool,
    /// Bytes of Pongs owed to Pings and not yet queued for output (each
    /// counted as its payload plus 6 bytes of header and mask). Each Ping
    /// gets its own Pong, in order, while they fit; past this bound the
    /// owed Pongs coalesce into one for the latest Ping (RFC 6455 section
    /// 5.5.3). Owed Pongs join the output only once the frames the
    /// connection sent of its own accord before them (Pongs, keep-alives,
    /// heartbeats) are written, so a Ping flood from a peer that does not
    /// read holds at most twice this much (owed, and in the output).
    /// Default 1 KiB (at least 7 Pongs of the largest size, 170 empty
    /// ones).
    pub max_pending_pongs: usize,
    /// A multiplexing transport's own idle timeout (QUIC's
    /// `max_idle_timeout`, RFC 9000 section 10.1; HTTP/3 WebSockets): a
    /// QUIC connection that hears nothing from its peer this long is gone,
    /// and a QUIC handshake that gets no answer fails after it. Default
    /// 30 s.
    pub transport_idle_timeout: Duration,
    /// How often a client's multiplexing transport proves it is alive
    /// while idle (a QUIC PING frame, RFC 9000 section 19.2), so
    /// `transport_idle_timeout` does not end a connection whose WebSockets
    /// are merely quiet. Transport upkeep, like TCP keepalive; the
    /// WebSocket's own keep-alive is `keep_alive`. Default 10 s.
    pub transport_keep_alive: Duration,
    /// How much a multiplexing transport lets the peer send ahead of the
    /// reader on one WebSocket's stream: the stream's receive window
    /// (HTTP/2, RFC 9113 section 6.9; HTTP/3 over QUIC, RFC 9000 section
    /// 4.1). What the transport holds for a WebSocket, received and not
    /// yet read, on top of the adapter's read buffer; a reader that stops
    /// stops releasing it, so backpressure reaches the sender. The
    /// connection's window is 64 streams' worth, so one stalled reader
    /// does not stall the others ([`Config::transport_windows`]). The
    /// same bounds hold what a stream's sending side may buffer in the
    /// transport beyond the connection's own output
    /// (`max_queued_output`): HTTP/2's send buffer per stream, and QUIC's
    /// bytes in flight per connection. Taken into 64 KiB to 2^31 - 1
    /// bytes (HTTP/2's largest window). Default 256 KiB.
    pub transport_stream_window: usize,
    /// The most WebSockets one multiplexing connection (HTTP/2, HTTP/3)
    /// carries at once, as a server tells its clients
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`, RFC 9113 section 6.5.2; QUIC's
    /// stream limit, RFC 9000 section 4.6): a client opens no more until
    /// one ends: one connection holds at most this many WebSockets' worth
    /// of a server's resources (a server that counts connections counts
    /// each of them too, [`Slot::another`](crate::Slot::another)). At least 1 (0 is
    /// taken as 1). On a client it bounds only streams the server would
    /// open, which WebSockets never do (an HTTP/2 client also refuses
    /// server push, so a server opens none there). Default 100.
    pub transport_max_streams: u32,
    /// How long a connection must stay quiet (nothing received or sent,
    /// nothing waiting) before it frees its idle buffers, once the adapter
    /// says it waits ([`Connection::note_idle`](crate::Connection::note_idle)).
    /// Freeing them at every pause of a busy connection and growing them
    /// again cost a fifth of a loaded echo server's instructions (malloc,
    /// realloc and free, measured with callgrind); an idle connection
    /// still gives its memory back. Default 50 ms.
    pub release_idle_after: Duration,
    /// The same, for a connection that has not yet freed its idle buffers
    /// (at most `release_idle_after`): the first quiet after a connection
    /// is set up is often the start of a long rest (most of a fleet of
    /// mostly idle connections), and a busy connection pays for it with
    /// one regrowth in its life, then waits `release_idle_after`. The
    /// buffers of connections set up in a burst are then given back
    /// before they are interleaved with the next connections' lasting
    /// state, where the allocator could not return their pages. Default
    /// 5 ms.
    pub first_release_after: Duration,
    /// How long a connection may be held back by a spent shared
    /// [`Budget`](crate::Budget) (a server's; it holds part of it and may
    /// read no further) before, if no connection holds more of it, it is
    /// evicted: its unread messages are dropped and it is closed with 1013
    /// (try again later), so the budget comes back for the others; when
    /// another holds more, that one is evicted instead, even if it reads
    /// nothing itself. See
    /// [`Connection::budget_check`](crate::Connection::budget_check).
    /// Both adapters use it when a server shares a budget between its
    /// connections (the blocking one checks at the connection's next call).
    /// Default 5 s.
    pub budget_timeout: Duration,
    /// The most work a connection does per turn, in bytes: bytes received,
    /// plus bytes an extension decoded (inflated), plus
    /// [`TURN_FRAME_COST`](crate::TURN_FRAME_COST) (256) per frame
    /// received, for the work a frame costs whatever its size (parsing it,
    /// its event, a Pong). Past it
    /// [`Connection::turn_spent`](crate::Connection::turn_spent) says so,
    /// and an adapter serving many connections on few threads lets the
    /// others run (the tokio adapter yields to the runtime); a message
    /// that inflates to more is inflated over several turns. So neither a
    /// flood of small frames nor a decompression bomb holds a thread for
    /// more than about this much work at a time: a turn of 1 MiB is about
    /// 1 ms of inflating, about 3,900 small frames (a Ping flood), or a
    /// loaded 64 KiB echo's whole burst of 16 messages per connection
    /// (with 256 KiB turns that burst was read and answered four messages
    /// at a time: about a quarter fewer messages/s, and a p99 over twice
    /// as long). Nothing is refused or lost. Default 1 MiB.
    pub turn_bytes: usize,
    /// permessage-deflate (RFC 7692): `Some` makes a client offer it and a
    /// server accept a client's offer, through [`crate::upgrade`] (which
    /// every adapter uses). Received compressed messages count against
    /// `max_message_size` by their inflated size; their compressed bytes
    /// may take 0.1% and 64 bytes more (data that does not compress comes
    /// out a little larger). Default `None` (off).
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::DeflateConfig>,
}

/// The most wire bytes a message of at most `max` bytes takes once an
/// extension transformed it (permessage-deflate): 0.1% and 64 bytes more,
/// since data that does not compress comes out a little larger (stored
/// blocks cost 5 bytes each).
pub(crate) fn transformed_max(max: usize) -> usize {
    max.saturating_add(max / 1024 + 64)
}

impl Config {
    /// Sets `max_message_size` to `max` and lowers `max_frame_size` (never
    /// raises it) to what such a message may take on the wire: no frame is
    /// larger than its message, but one compressed with permessage-deflate
    /// (when `deflate` is set) may take 0.1% and 64 bytes more than the
    /// limit, so the frame limit keeps that allowance. A frame limit already
    /// below that stays: a message it cannot carry in one frame must then
    /// come fragmented.
    pub fn limit_message_size(&mut self, max: usize) {
        self.max_message_size = max;
        #[cfg(feature = "deflate")]
        let wire = if self.deflate.is_some() {
            transformed_max(max)
        } else {
            max
        };
        #[cfg(not(feature = "deflate"))]
        let wire = max;
        self.max_frame_size = self.max_frame_size.min(wire);
    }

    /// A multiplexing transport's receive windows, in bytes: one stream's
    /// (`transport_stream_window`, taken into 64 KiB to 2^31 - 1) and the
    /// whole connection's, 64 streams' worth (at most 2^31 - 1), as HTTP/2
    /// and QUIC set them.
    pub fn transport_windows(&self) -> (u32, u32) {
        const LARGEST: usize = (1 << 31) - 1;
        const STREAMS: usize = 64;
        let stream = self.transport_stream_window.clamp(64 << 10, LARGEST);
        let connection = stream.saturating_mul(STREAMS).min(LARGEST);
        // both at most 2^31 - 1
        let fit = |n: usize| u32::try_from(n).unwrap_or(u32::MAX >> 1);
        (fit(stream), fit(connection))
    }

    /// The longest a connection under this config can take to end once
    /// it is closing (the application's `close`, the peer's Close, or a
    /// failure): `close_timeout` for the peer's answer, `close_timeout`
    /// for our last bytes, `fin_wait` for the server to close the
    /// transport, and, for a multiplexed server connection (HTTP/2,
    /// HTTP/3) once its last WebSocket has ended, `close_timeout` more for
    /// the client to end it after the GOAWAY ([`crate::upgrade::Vacancy`]).
    /// The core's timers end it by then whatever the peer does (a server
    /// shutting down: [`Config::shutdown_bound`], which also counts a
    /// handshake under way).
    pub fn close_bound(&self) -> Duration {
        self.close_timeout
            .saturating_mul(3)
            .saturating_add(self.fin_wait)
    }

    /// The longest a server's connection can take to end once the server
    /// shuts down: one still in its handshake gets `handshake_timeout` to
    /// finish it, then [`Config::close_bound`] to close (or fails, and
    /// lingers at most `fin_wait`, [`crate::upgrade::Refusing`]). A
    /// server shutting down can wait this long for all its connections.
    pub fn shutdown_bound(&self) -> Duration {
        self.handshake_timeout.saturating_add(self.close_bound())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_fragments: 1 << 20,
            max_queued_output: 16 << 20,
            close_timeout: Duration::from_secs(10),
            fin_wait: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
            one_connecting_per_host: true,
            handshake_timeout: Duration::from_secs(10),
            max_unread_bytes: 1 << 20,
            message_timeout: Some(Duration::from_secs(60)),
            send_timeout: Some(Duration::from_secs(60)),
            idle_timeout: None,
            keep_alive: KeepAlive::Off,
            heartbeat: None,
            auto_close_reply: true,
            auto_pong: true,
            max_pending_pongs: 1024,
            turn_bytes: 1 << 20,
            budget_timeout: Duration::from_secs(5),
            release_idle_after: Duration::from_millis(50),
            first_release_after: Duration::from_millis(5),
            transport_idle_timeout: Duration::from_secs(30),
            transport_keep_alive: Duration::from_secs(10),
            transport_stream_window: 256 << 10,
            transport_max_streams: 100,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    fn windows(stream: usize) -> (u32, u32) {
        Config {
            transport_stream_window: stream,
            ..Config::default()
        }
        .transport_windows()
    }

    #[test]
    fn rfc9113_6_9_1_transport_windows_stay_within_http2_bounds() {
        assert_eq!(windows(256 << 10), (256 << 10, 16 << 20));
        // at least 64 KiB (a zero window would stall every stream)
        assert_eq!(windows(0), (64 << 10, 4 << 20));
        // at most 2^31 - 1, the connection's too
        let largest = (1u32 << 31) - 1;
        assert_eq!(windows(usize::MAX), (largest, largest));
        assert_eq!(windows(64 << 20), (64 << 20, largest));
    }
}
