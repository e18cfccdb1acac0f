//! A whole connection under arbitrary input: bytes from the wire (any
//! split), user operations and time steps, in both roles. Nothing may panic,
//! and queued output must stay within the configured limit plus one message.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tether::{CloseCode, Config, Connection, KeepAlive, Message, MessageKind, Role};

#[derive(Arbitrary, Debug)]
enum Op {
    Receive(Vec<u8>),
    Eof,
    SendText(String),
    SendBinary(Vec<u8>),
    Fragment { text: bool, data: Vec<u8>, fin: bool },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
    Abort,
    Advance(u16),
    DrainOutput,
}

#[derive(Arbitrary, Debug)]
struct Input {
    server: bool,
    keep_alive: u8,
    auto_pong: bool,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let role = if input.server { Role::Server } else { Role::Client };
    let keep_alive = match input.keep_alive % 3 {
        0 => KeepAlive::Off,
        1 => KeepAlive::Pong { interval: Duration::from_millis(500) },
        _ => KeepAlive::Ping { interval: Duration::from_millis(500), timeout: Duration::from_millis(300) },
    };
    let config = Config {
        max_frame_size: 4096,
        max_message_size: 8192,
        max_fragments: 16,
        max_queued_output: 16384,
        close_timeout: Duration::from_secs(1),
        keep_alive,
        heartbeat: None,
        auto_close_reply: input.server,
        auto_pong: input.auto_pong,
    };
    let limit = config.max_queued_output;
    let mut now = Instant::now();
    let mut conn = Connection::new(role, config, now);
    for op in input.ops {
        match op {
            Op::Receive(bytes) => {
                let _ = conn.receive(now, &bytes);
            }
            Op::Eof => conn.receive_eof(),
            Op::SendText(s) => {
                let _ = conn.send(Message::text(s));
            }
            Op::SendBinary(b) => {
                let _ = conn.send(Message::binary(b));
            }
            Op::Fragment { text, data, fin } => {
                let kind = if text { MessageKind::Text } else { MessageKind::Binary };
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
            Op::Abort => conn.abort("fuzz"),
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                conn.handle_timeout(now);
                // every timer that was due has moved on (no busy loops in drivers)
                assert!(conn.poll_timeout().is_none_or(|t| t > now));
            }
            Op::DrainOutput => {
                let _ = conn.take_output();
            }
        }
        while conn.poll_event().is_some() {}
        // bounded: the limit, plus one message accepted while under it, plus control frames
        assert!(conn.queued_output() <= 2 * limit + 4096 + 1024);
    }
});
