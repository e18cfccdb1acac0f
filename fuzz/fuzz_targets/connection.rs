//! A whole connection under arbitrary input, in both roles: bytes from the
//! wire in any split, user operations and time steps, interleaved. Checked
//! after every step:
//! - nothing panics, and queued output stays within the configured limit
//!   (plus one message accepted while under it, plus control frames);
//! - events respect the limits (message size, control payloads <= 125),
//!   text is valid UTF-8, and nothing follows the one `Closed` event;
//! - every timer that was due has moved on after `handle_timeout` (a driver
//!   never busy-loops);
//! - after `transport_failed`, nothing more is queued for writing;
//! - whatever the connection writes is valid WebSocket: it is fed, in the
//!   pieces it was taken, to a second connection of the other role, which
//!   must never report a protocol error.
//!
//! The input format is hand-written (see `Input::arbitrary`) so that seeds
//! can be generated from the test vectors: `fuzz/seeds/generate.py`.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Buf, BufMut, Bytes};
use libfuzzer_sys::fuzz_target;
use tether::deflate::DeflateParams;
use tether::{
    CloseCode, Config, Connection, DeflateConfig, Error, Event, KeepAlive, Message, MessageKind,
    PerMessageDeflate, Role,
};

#[derive(Debug)]
enum Op {
    /// Bytes from the wire.
    Receive(Vec<u8>),
    Eof,
    SendText(String),
    SendBinary(Vec<u8>),
    Fragment {
        text: bool,
        fin: bool,
        data: Vec<u8>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
    ReplyClose,
    Abort,
    /// The transport failed (a write): `Connection::transport_failed`.
    TransportFailed,
    /// Milliseconds of time passing.
    Advance(u16),
    /// Write all queued output.
    Drain,
    /// Write only some of it (a short write).
    DrainSome(u16),
    /// The adapter reads, or holds off for the application
    /// (`Connection::set_reading`).
    SetReading(bool),
}

#[derive(Debug)]
struct Input {
    server: bool,
    /// permessage-deflate on both sides, and which sides reset their context.
    deflate: Option<(bool, bool)>,
    keep_alive: u8,
    auto_pong: bool,
    auto_close_reply: bool,
    ops: Vec<Op>,
}

fn byte(u: &mut Unstructured<'_>) -> u8 {
    u.bytes(1).map_or(0, |b| b[0])
}

fn word(u: &mut Unstructured<'_>) -> u16 {
    u16::from_le_bytes([byte(u), byte(u)])
}

/// A length (two bytes, little-endian, cut to what is left) and that many bytes.
fn chunk(u: &mut Unstructured<'_>) -> Vec<u8> {
    let len = usize::from(word(u)).min(u.len());
    u.bytes(len).map(<[u8]>::to_vec).unwrap_or_default()
}

/// Format: one flags byte (bit 0 server, bits 1-2 keep-alive, bit 3 auto
/// Pong, bit 4 automatic Close reply, bit 5 permessage-deflate, bits 6-7
/// server/client no context takeover), then operations until the input ends:
/// a tag byte (modulo 14) and its arguments, each byte string preceded by
/// its length as two little-endian bytes.
impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let flags = byte(u);
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < 10_000 {
            let op = match byte(u) % 14 {
                0 => Op::Receive(chunk(u)),
                1 => Op::Eof,
                2 => Op::SendText(String::from_utf8_lossy(&chunk(u)).into_owned()),
                3 => Op::SendBinary(chunk(u)),
                4 => {
                    let f = byte(u);
                    Op::Fragment {
                        text: f & 1 != 0,
                        fin: f & 2 != 0,
                        data: chunk(u),
                    }
                }
                5 => Op::Ping(chunk(u)),
                6 => Op::Pong(chunk(u)),
                7 => {
                    let code = word(u);
                    Op::Close(code, String::from_utf8_lossy(&chunk(u)).into_owned())
                }
                8 => Op::ReplyClose,
                // one byte more says which (`fuzz/seeds/generate.py`)
                9 => {
                    if byte(u) & 1 == 0 {
                        Op::Abort
                    } else {
                        Op::TransportFailed
                    }
                }
                10 => Op::Advance(word(u)),
                11 => Op::Drain,
                12 => Op::DrainSome(word(u)),
                _ => Op::SetReading(byte(u) & 1 != 0),
            };
            ops.push(op);
        }
        Ok(Input {
            server: flags & 1 != 0,
            deflate: (flags & 32 != 0).then_some((flags & 64 != 0, flags & 128 != 0)),
            keep_alive: (flags >> 1) & 3,
            auto_pong: flags & 8 != 0,
            auto_close_reply: flags & 16 != 0,
            ops,
        })
    }
}

const MAX_MESSAGE: usize = 8192;

/// Events of `conn`: limits hold and nothing follows `Closed`.
fn check_events(conn: &mut Connection, closed: &mut bool) {
    while let Some(event) = conn.poll_event() {
        assert!(!*closed, "an event after Closed: {event:?}");
        match event {
            Event::Message(m) => {
                assert!(m.len() <= MAX_MESSAGE);
                if m.kind() == MessageKind::Text {
                    assert!(std::str::from_utf8(m.as_bytes()).is_ok());
                }
            }
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
            Event::Closed(_) => *closed = true,
        }
    }
}

/// What `conn` wrote, into the peer: it must be valid WebSocket.
fn deliver(peer: &mut Connection, now: Instant, bytes: &[u8]) {
    if let Err(e @ Error::Protocol(_)) = peer.receive(now, bytes) {
        panic!("our own output broke the protocol: {e}");
    }
    while peer.decoding_pending() {
        peer.new_turn();
        if let Err(e @ Error::Protocol(_)) = peer.continue_decoding(now) {
            panic!("our own output broke the protocol: {e}");
        }
    }
    while peer.poll_event().is_some() {}
    let _ = peer.take_output();
}

/// Reads `bytes` the way a transport that reads into a buffer it is handed
/// does: into `receive_buffer` (at most what it offers), then `received`;
/// through `receive` where no buffer is offered.
fn receive_direct(conn: &mut Connection, now: Instant, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let Some(mut into) = conn.receive_buffer(bytes.len()) else {
            let _ = conn.receive(now, bytes);
            return;
        };
        let n = into.remaining_mut().min(bytes.len());
        if n == 0 {
            let _ = conn.received(now);
            let _ = conn.receive(now, bytes);
            return;
        }
        into.put_slice(&bytes[..n]);
        bytes = &bytes[n..];
        let _ = conn.received(now);
    }
}

fuzz_target!(|input: Input| {
    let role = if input.server {
        Role::Server
    } else {
        Role::Client
    };
    let peer_role = if input.server {
        Role::Client
    } else {
        Role::Server
    };
    let keep_alive = match input.keep_alive {
        0 | 3 => KeepAlive::Off,
        1 => KeepAlive::Pong {
            interval: Duration::from_millis(500),
        },
        _ => KeepAlive::Ping {
            interval: Duration::from_millis(500),
            timeout: Duration::from_millis(300),
        },
    };
    let config = Config {
        max_frame_size: 4096,
        max_message_size: MAX_MESSAGE,
        max_fragments: 16,
        max_queued_output: 16384,
        close_timeout: Duration::from_secs(1),
        keep_alive,
        heartbeat: None,
        auto_close_reply: input.auto_close_reply,
        auto_pong: input.auto_pong,
        ..Config::default()
    };
    let limit = config.max_queued_output;
    let mut now = Instant::now();
    let mut conn = Connection::new(role, config, now);
    let mut peer = Connection::new(peer_role, Config::default(), now);
    if let Some((server_no_context_takeover, client_no_context_takeover)) = input.deflate {
        // as negotiated; every message compressed (threshold 0), fastest level
        let params = DeflateParams {
            server_no_context_takeover,
            client_no_context_takeover,
            ..DeflateParams::default()
        };
        let settings = DeflateConfig {
            threshold: 0,
            level: 1,
            ..DeflateConfig::default()
        };
        conn.set_extension(Box::new(PerMessageDeflate::new(role, &params, &settings)));
        peer.set_extension(Box::new(PerMessageDeflate::new(
            peer_role, &params, &settings,
        )));
    }
    let mut closed = false;
    let mut transport_failed = false;
    for op in input.ops {
        match op {
            Op::Receive(bytes) => {
                // both ways in: an even-sized read as a transport reading
                // into the buffers the connection hands out, an odd one
                // through `receive`
                if bytes.len() % 2 == 0 {
                    receive_direct(&mut conn, now, &bytes);
                } else {
                    let _ = conn.receive(now, &bytes);
                }
                // some turns of a message decoded over several, or all
                let mut turns = 0;
                while conn.decoding_pending() && turns < 64 {
                    conn.new_turn();
                    let _ = conn.continue_decoding(now);
                    turns += 1;
                }
            }
            Op::Eof => conn.receive_eof(),
            Op::SendText(s) => {
                let _ = conn.send(Message::text(s));
            }
            Op::SendBinary(b) => {
                let _ = conn.send(Message::binary(b));
            }
            Op::Fragment { text, fin, data } => {
                let kind = if text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                let _ = conn.send_fragment(kind, Bytes::from(data), fin);
            }
            Op::Ping(p) => {
                let _ = conn.ping(Bytes::from(p));
            }
            Op::Pong(p) => {
                let _ = conn.pong(Bytes::from(p));
            }
            Op::Close(code, reason) => {
                let _ = conn.close(now, CloseCode::new(code), &reason);
            }
            Op::ReplyClose => {
                let _ = conn.reply_close(now);
            }
            Op::Abort => conn.abort("fuzz"),
            Op::TransportFailed => {
                let failure = std::io::Error::other("fuzz");
                conn.transport_failed(now, tether::TransportFailure::Write(&failure));
                transport_failed = true;
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                conn.handle_timeout(now);
                assert!(
                    conn.poll_timeout().is_none_or(|t| t > now),
                    "a timer stayed due"
                );
            }
            Op::Drain => {
                let out = conn.take_output();
                deliver(&mut peer, now, &out);
            }
            Op::DrainSome(n) => {
                let output = conn.poll_output();
                let n = usize::from(n).min(output.remaining());
                let taken = output.copy_to_bytes(n);
                deliver(&mut peer, now, &taken);
            }
            Op::SetReading(reading) => conn.set_reading(now, reading),
        }
        check_events(&mut conn, &mut closed);
        if transport_failed {
            // nothing more is written over a failed transport
            assert!(!conn.has_output(), "output after the transport failed");
            assert!(conn.writing_over());
        }
        // bounded: the limit, plus one message accepted while under it, plus control frames
        assert!(conn.queued_output() <= 2 * limit + 4096 + 1024);
    }
});
