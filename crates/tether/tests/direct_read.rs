//! Reading a large payload straight into its frame's buffer
//! (`Connection::payload_buffer` / `payload_received`) gives exactly the
//! events `receive` gives, in both roles, with the same limits and checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use bytes::BufMut;
use common::*;
use proptest::prelude::*;
use tether::{CloseCode, Config, Connection, Event, Role};

/// Feeds `wire` in pieces of the given sizes, through `payload_buffer`
/// whenever the connection offers one, else through `receive`.
fn feed_direct(conn: &mut Connection, wire: &[u8], sizes: &[usize]) -> (Vec<Event>, usize) {
    let now = Instant::now();
    let mut at = 0;
    let mut direct = 0;
    let mut events = Vec::new();
    for size in sizes.iter().cycle() {
        if at >= wire.len() {
            break;
        }
        let end = (at + size.max(&1)).min(wire.len());
        if let Some(mut into) = conn.payload_buffer() {
            let n = into.remaining_mut().min(end - at);
            into.put_slice(&wire[at..at + n]);
            at += n;
            direct += n;
            let _ = conn.payload_received(now);
        } else {
            let _ = conn.receive(now, &wire[at..end]);
            at = end;
        }
        while let Some(e) = conn.poll_event() {
            events.push(e);
        }
    }
    (events, direct)
}

fn feed_copy(conn: &mut Connection, wire: &[u8]) -> Vec<Event> {
    let _ = conn.receive(Instant::now(), wire);
    std::iter::from_fn(|| conn.poll_event()).collect()
}

#[test]
fn rfc6455_5_2_large_payloads_read_into_their_buffer_match_receive() {
    for role in ROLES {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let text = "é✓ abc".repeat(20_000);
        let mut wire = frame(role, BINARY, &big);
        wire.extend(raw_frame(role, false, 0, TEXT, &text.as_bytes()[..50_001]));
        wire.extend(frame(role, PING, b"between"));
        wire.extend(raw_frame(role, true, 0, CONT, &text.as_bytes()[50_001..]));
        wire.extend(frame(role, BINARY, b"small"));
        let mut a = Connection::new(role, Config::default(), Instant::now());
        let (direct, n) = feed_direct(&mut a, &wire, &[7, 10_000, 1, 65_536, 3]);
        assert!(n > 300_000, "most of the payload went the direct way ({n})");
        let mut b = Connection::new(role, Config::default(), Instant::now());
        assert_eq!(direct, feed_copy(&mut b, &wire));
        assert_eq!(direct.len(), 4);
    }
}

/// Invalid UTF-8 in a text frame still arriving fails at once (1007), as
/// with `receive`: the direct path checks what it has so far.
#[test]
fn rfc6455_8_1_bad_utf8_read_into_the_buffer_fails_early() {
    for role in ROLES {
        let mut payload = vec![b'a'; 100_000];
        payload[20_000] = 0xff;
        let wire = frame(role, TEXT, &payload);
        let mut conn = Connection::new(role, Config::default(), Instant::now());
        let (events, _) = feed_direct(&mut conn, &wire[..40_000], &[8192]);
        match events.last() {
            Some(Event::Closed(info)) => assert_eq!(info.code, CloseCode::INVALID_PAYLOAD),
            other => panic!("{other:?}"),
        }
        assert!(conn.payload_buffer().is_none());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any split, any mix of direct and copied reads: the same events.
    #[test]
    fn rfc6455_5_4_any_split_of_direct_reads_gives_the_same_events(
        sizes in proptest::collection::vec(1usize..20_000, 1..8),
        lens in proptest::collection::vec(0usize..40_000, 1..5),
        server in any::<bool>(),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let mut wire = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            let payload: Vec<u8> = (0..*len).map(|j| (i + j) as u8).collect();
            wire.extend(frame(role, BINARY, &payload));
        }
        let mut a = Connection::new(role, Config::default(), Instant::now());
        let (direct, _) = feed_direct(&mut a, &wire, &sizes);
        let mut b = Connection::new(role, Config::default(), Instant::now());
        prop_assert_eq!(direct, feed_copy(&mut b, &wire));
    }
}
