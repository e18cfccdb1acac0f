//! Large frames through the blocking adapter (RFC 6455 sections 5.2, 5.3
//! and 8.1). The payload of a frame with 4 KiB or more still to come is
//! read straight into that frame's own buffer, a piece at a time
//! (`std::io::Read` needs initialised memory, so each piece is zero-filled
//! first), and unmasked there. Whatever sizes the reads come in, each
//! message is the bytes that were sent, a Ping between large frames is
//! answered, and invalid UTF-8 in a large text frame ends the connection
//! with 1007 once the messages before it have been read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tether/tests/common/mod.rs"]
mod wire;

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether::upgrade::Upgraded;
use tether::{CloseCode, Config, Connection, Event, Message, Role};
use tether_std::{Error, Transport, WebSocket};
use wire::{BINARY, PING, TEXT, frame};

/// A transport that hands out `wire` in reads of the sizes in `sizes`, in
/// turn (or less, when the caller's buffer is smaller), then the end; what
/// is written goes to `written`.
struct Dribble {
    wire: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    turn: usize,
    written: Arc<Mutex<Vec<u8>>>,
}

impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.sizes[self.turn % self.sizes.len()];
        self.turn += 1;
        let n = size.min(buf.len()).min(self.wire.len() - self.at);
        buf[..n].copy_from_slice(&self.wire[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Dribble {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Dribble {
    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

/// A server reading `wire` (client frames, masked) in reads of `sizes`;
/// and what it writes.
fn server(wire: Vec<u8>, sizes: &[usize]) -> (WebSocket<Dribble>, Arc<Mutex<Vec<u8>>>) {
    let written = Arc::new(Mutex::new(Vec::new()));
    let stream = Dribble {
        wire,
        at: 0,
        sizes: sizes.to_vec(),
        turn: 0,
        written: Arc::clone(&written),
    };
    let upgraded = Upgraded::new(Role::Server, Config::default());
    let ws = WebSocket::from_upgraded(stream, upgraded, &[]).unwrap();
    (ws, written)
}

/// The frames the server wrote, as the client decodes them.
fn seen_by_the_client(written: &[u8]) -> Vec<Event> {
    let mut client = Connection::new(Role::Client, Config::default(), Instant::now());
    let _ = client.receive(Instant::now(), written);
    std::iter::from_fn(|| client.poll_event()).collect()
}

/// Bytes that are not one repeated value, so a piece unmasked at the
/// wrong offset or read twice shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Valid UTF-8 of `len` bytes or a little less, of two-, three- and
/// four-byte characters, so characters straddle the reads.
fn wide_text(len: usize) -> String {
    let mut text = String::new();
    for c in ['é', '€', '😀', 'a'].iter().cycle() {
        if text.len() + c.len_utf8() > len {
            break;
        }
        text.push(*c);
    }
    text
}

/// Read sizes: whole read buffers, odd sizes around the 4 KiB line, and
/// reads of a few bytes.
const READS: [&[usize]; 4] = [&[64 * 1024], &[1, 4097, 70_001], &[777], &[5000, 3, 65_535]];

#[test]
fn rfc6455_5_3_large_payloads_read_into_their_frame_buffer_arrive_whole() {
    let big = pattern(1 << 20);
    let text = wide_text(70_000);
    let small = pattern(5000);
    let mut wire = frame(Role::Server, BINARY, &big);
    wire.extend(frame(Role::Server, PING, b"between"));
    wire.extend(frame(Role::Server, TEXT, text.as_bytes()));
    wire.extend(frame(Role::Server, BINARY, &small));
    for sizes in READS {
        let (mut ws, written) = server(wire.clone(), sizes);
        assert_eq!(
            ws.read().unwrap(),
            Message::binary(big.clone()),
            "{sizes:?}"
        );
        assert_eq!(ws.read().unwrap(), Message::text(text.clone()), "{sizes:?}");
        assert_eq!(
            ws.read().unwrap(),
            Message::binary(small.clone()),
            "{sizes:?}"
        );
        // then the end of the stream, without a Close
        match ws.read() {
            Err(Error::Closed(info)) => assert!(!info.was_clean, "{sizes:?}: {info:?}"),
            other => panic!("{sizes:?}: {other:?}"),
        }
        let seen = seen_by_the_client(&written.lock().unwrap());
        assert!(
            matches!(seen.first(), Some(Event::Pong(p)) if p.as_ref() == b"between"),
            "{sizes:?}: the Ping is answered: {seen:?}"
        );
    }
}

#[test]
fn rfc6455_8_1_invalid_utf8_in_a_large_text_frame_fails_with_1007() {
    let before = pattern(70_000);
    let mut bad = wide_text(70_000).into_bytes();
    bad[40_000] = 0xFF;
    let mut wire = frame(Role::Server, BINARY, &before);
    wire.extend(frame(Role::Server, TEXT, &bad));
    for sizes in READS {
        let (mut ws, written) = server(wire.clone(), sizes);
        assert_eq!(
            ws.read().unwrap(),
            Message::binary(before.clone()),
            "{sizes:?}"
        );
        match ws.read() {
            Err(Error::Closed(info)) => {
                assert_eq!(info.code, CloseCode::INVALID_PAYLOAD, "{sizes:?}");
            }
            other => panic!("{sizes:?}: {other:?}"),
        }
        let seen = seen_by_the_client(&written.lock().unwrap());
        assert!(
            matches!(seen.last(), Some(Event::Closed(info)) if info.code == CloseCode::INVALID_PAYLOAD),
            "{sizes:?}: our Close says 1007: {seen:?}"
        );
    }
}
