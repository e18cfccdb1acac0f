//! Shared test harness: raw frames as a peer would send them, a driver that
//! feeds them into a `Connection` in virtual time, and a decoder for what
//! the connection writes back.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tether::frame::{FrameDecoder, Limits};
use tether::{CloseInfo, Config, Connection, Error, Event, Message, Role};

/// Both roles, for tests that must hold for client and server alike.
pub const ROLES: [Role; 2] = [Role::Client, Role::Server];

/// Raw bytes of one frame sent *to* a connection of role `to`: masked when
/// `to` is a server. `opcode` is raw, so reserved opcodes can be sent.
pub fn raw_frame(to: Role, fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0F)];
    let mask_bit = if to == Role::Server { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if to == Role::Server {
        let key = [0x5a, 0x17, 0xc3, 0x9e];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A final frame with no reserved bits.
pub fn frame(to: Role, opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(to, true, 0, opcode, payload)
}

pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A Close payload: code and reason.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// One frame the connection wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
    pub masked: bool,
    /// The masking key, when masked.
    pub key: Option<[u8; 4]>,
    pub rsv1: bool,
}

impl Out {
    /// The close code of a Close frame, if it carries one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A connection under test in virtual time.
pub struct Harness {
    pub conn: Connection,
    pub now: Instant,
    pub start: Instant,
    peer: FrameDecoder,
    peer_buf: BytesMut,
    /// The first error returned by `receive`.
    pub error: Option<Error>,
}

impl Harness {
    pub fn new(role: Role) -> Self {
        Self::with_config(role, Config::default())
    }

    pub fn with_config(role: Role, config: Config) -> Self {
        let now = Instant::now();
        Self {
            conn: Connection::new(role, config, now),
            now,
            start: now,
            peer: FrameDecoder::new(
                role.peer(),
                Limits {
                    max_frame_size: u64::MAX >> 1,
                    ..Limits::default()
                },
            ),
            peer_buf: BytesMut::new(),
            error: None,
        }
    }

    pub fn role(&self) -> Role {
        self.conn.role()
    }

    /// Feeds bytes in one piece.
    pub fn feed(&mut self, bytes: &[u8]) -> &mut Self {
        if let Err(e) = self.conn.receive(self.now, bytes) {
            self.error.get_or_insert(e);
        }
        // as an adapter does: a message decoded over several turns is
        // finished before more is read
        while self.conn.decoding_pending() {
            self.conn.new_turn();
            if let Err(e) = self.conn.continue_decoding(self.now) {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Feeds bytes in pieces of `chunk` bytes (Autobahn's "chopped" cases).
    pub fn feed_chunked(&mut self, bytes: &[u8], chunk: usize) -> &mut Self {
        for piece in bytes.chunks(chunk) {
            self.feed(piece);
        }
        self
    }

    /// Every event queued so far.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// The messages among the events.
    pub fn messages(&mut self) -> Vec<Message> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// The final close event among `events`.
    pub fn closed(events: &[Event]) -> Option<CloseInfo> {
        events.iter().find_map(|e| match e {
            Event::Closed(c) => Some(c.clone()),
            _ => None,
        })
    }

    /// Lets the peer's decoder accept RSV1 (an extension was negotiated).
    pub fn peer_allows_rsv1(&mut self) {
        let mut limits = *self.peer.limits();
        limits.allowed_rsv = tether::frame::Rsv::RSV1;
        self.peer.set_limits(limits);
    }

    /// Every frame written so far, decoded as the peer would.
    pub fn output(&mut self) -> Vec<Out> {
        let bytes: Bytes = self.conn.take_output();
        self.peer_buf.extend_from_slice(&bytes);
        let mut frames = Vec::new();
        while let Some(f) = self
            .peer
            .decode(&mut self.peer_buf)
            .expect("connection wrote a valid frame")
        {
            frames.push(Out {
                fin: f.header.fin,
                opcode: f.header.opcode.as_u8(),
                payload: f.payload.to_vec(),
                masked: f.header.mask.is_some(),
                key: f.header.mask,
                rsv1: f.header.rsv.contains(tether::frame::Rsv::RSV1),
            });
        }
        frames
    }

    /// Moves virtual time forward by `d` and runs due timers.
    pub fn advance(&mut self, d: Duration) -> &mut Self {
        self.now += d;
        self.conn.handle_timeout(self.now);
        self
    }

    /// Jumps to the next timeout (if any) and runs it; returns the jump.
    pub fn jump_to_timeout(&mut self) -> Option<Duration> {
        let at = self.conn.poll_timeout()?;
        let d = at.saturating_duration_since(self.now);
        self.now = self.now.max(at);
        self.conn.handle_timeout(self.now);
        Some(d)
    }

    /// Echoes every message received so far (what Autobahn's test servers
    /// ask an implementation to do).
    /// Each message is answered as soon as it is taken, before the next
    /// event is polled, as an application's loop does.
    pub fn echo(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(e) = self.conn.poll_event() {
            if let Event::Message(m) = &e {
                self.conn.send(m.clone()).unwrap();
            }
            events.push(e);
        }
        events
    }

    /// Asserts the connection failed with `code`: our Close with that code
    /// went out, the state is Closed, and the final event says not clean.
    pub fn assert_failed_with(&mut self, code: u16) {
        let err = self
            .error
            .clone()
            .unwrap_or_else(|| panic!("no error; state {:?}", self.conn.state()));
        match &err {
            Error::Protocol(p) => assert_eq!(p.close_code().as_u16(), code, "{err}"),
            other => panic!("expected a protocol error, got {other}"),
        }
        assert_eq!(self.conn.state(), tether::State::Closed);
        let out = self.output();
        let close = out
            .iter()
            .rev()
            .find(|f| f.opcode == CLOSE)
            .expect("a Close was sent");
        assert_eq!(close.close_code(), Some(code));
        let info = self.conn.close_info().unwrap();
        assert_eq!(info.code.as_u16(), code);
        assert!(!info.was_clean);
    }
}
