//! Decoding in batches (`tether::EVENT_BATCH`): one read of tiny frames
//! (thousands of them in 64 KiB) queues at most one batch of events, and
//! the rest waits in the input buffer, as bytes, until the events are
//! taken. Nothing received is lost or reordered, however the input is
//! split and however the events are taken; a Ping behind a full batch is
//! answered once it is decoded; a violation behind one fails the
//! connection after every message before it; and the queue's allocation
//! stays within the batch's size, where a read of empty messages queued
//! 32,768 events (1.3 MB) before (RFC 6455 section 10.4: an endpoint
//! bounds what a peer can make it hold).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::VecDeque;
use std::time::Instant;

use bytes::BufMut;
use common::*;
use proptest::prelude::*;
use tether::{Config, Connection, EVENT_BATCH, Event, Message, Role};

/// `count` binary messages carrying their index (4 bytes, big-endian,
/// then `extra` bytes).
fn numbered(role: Role, count: usize, extra: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..count {
        let mut payload = u32::try_from(i).unwrap().to_be_bytes().to_vec();
        payload.resize(4 + extra, 0xAB);
        wire.extend(frame(role, BINARY, &payload));
    }
    wire
}

fn index(message: &Message) -> usize {
    let bytes = message.as_bytes();
    u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize
}

#[test]
fn rfc6455_10_4_a_read_of_tiny_frames_queues_one_batch() {
    for role in ROLES {
        let wire = numbered(role, 3000, 10);
        assert!(wire.len() <= 64 * 1024);
        let now = Instant::now();
        let mut conn = Connection::new(role, Config::default(), now);
        conn.receive(now, &wire).unwrap();
        assert_eq!(conn.queued_events().count(), EVENT_BATCH);
        // full: nothing to do until the events are taken, and nothing more
        // is read into the connection's buffer meanwhile
        assert!(!conn.decoding_pending());
        assert!(conn.receive_buffer(64 * 1024).is_none());
        conn.continue_decoding(now).unwrap();
        assert_eq!(conn.queued_events().count(), EVENT_BATCH);
        // taken: the next batch is pending, and poll_event decodes it
        let mut seen = Vec::new();
        for _ in 0..EVENT_BATCH {
            let Some(Event::Message(m)) = conn.poll_event() else {
                panic!("a message")
            };
            seen.push(index(&m));
        }
        assert!(conn.decoding_pending());
        while let Some(event) = conn.poll_event() {
            let Event::Message(m) = event else {
                panic!("{event:?}")
            };
            seen.push(index(&m));
        }
        assert_eq!(seen, (0..3000).collect::<Vec<_>>(), "{role:?}");
        assert!(!conn.decoding_pending());
        assert!(conn.receive_buffer(64 * 1024).is_some());
    }
}

#[test]
fn rfc6455_10_4_continue_decoding_queues_the_next_batch() {
    let role = Role::Server;
    let wire = numbered(role, 2 * EVENT_BATCH + 7, 0);
    let now = Instant::now();
    let mut conn = Connection::new(role, Config::default(), now);
    conn.receive(now, &wire).unwrap();
    let mut taken = VecDeque::new();
    conn.take_events(&mut taken);
    assert_eq!(taken.len(), EVENT_BATCH);
    assert!(conn.decoding_pending());
    conn.continue_decoding(now).unwrap();
    assert_eq!(conn.queued_events().count(), EVENT_BATCH);
    // take_events finding the queue empty decodes the last few itself
    conn.take_events(&mut taken);
    conn.take_events(&mut taken);
    assert_eq!(taken.len(), 2 * EVENT_BATCH + 7);
    assert!(!conn.decoding_pending());
    for (i, event) in taken.iter().enumerate() {
        let Event::Message(m) = event else {
            panic!("{event:?}")
        };
        assert_eq!(index(m), i);
    }
}

/// More input given to `receive` while a batch waits joins the input
/// behind it (nothing is dropped), and decoding resumes where it stopped.
#[test]
fn rfc6455_10_4_input_received_behind_a_full_batch_waits_its_turn() {
    for role in ROLES {
        let wire = numbered(role, 4 * EVENT_BATCH, 3);
        let now = Instant::now();
        let mut conn = Connection::new(role, Config::default(), now);
        // every read but the first arrives while a full batch is queued
        for read in wire.chunks(777) {
            conn.receive(now, read).unwrap();
        }
        let seen: Vec<usize> = std::iter::from_fn(|| conn.poll_event())
            .map(|e| match e {
                Event::Message(m) => index(&m),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seen, (0..4 * EVENT_BATCH).collect::<Vec<_>>(), "{role:?}");
    }
}

/// A Ping behind a full batch is answered once it is decoded, with its
/// payload; the Pongs of a flood still coalesce within their bound.
#[test]
fn rfc6455_5_5_2_a_ping_behind_a_full_batch_is_answered_when_decoded() {
    let role = Role::Server;
    let mut h = Harness::new(role);
    let mut wire = numbered(role, EVENT_BATCH + 10, 0);
    wire.extend(frame(role, PING, b"late"));
    h.feed(&wire);
    assert!(h.output().is_empty(), "not decoded yet");
    let events = h.events();
    assert_eq!(events.len(), EVENT_BATCH + 11);
    assert!(matches!(events.last(), Some(Event::Ping(p)) if &p[..] == b"late"));
    let out = h.output();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].opcode, PONG);
    assert_eq!(&out[0].payload[..], b"late");
}

/// RFC 6455 section 7.1.7: a violation behind a full batch fails the
/// connection (1002) after every message before it is delivered.
#[test]
fn rfc6455_7_1_7_a_violation_behind_a_full_batch_fails_after_the_messages() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let mut wire = numbered(role, EVENT_BATCH + 100, 0);
        wire.extend(raw_frame(role, true, 0, 0x3, b"x"));
        wire.extend(numbered(role, 5, 0));
        h.feed(&wire);
        assert!(h.error.is_none(), "not reached yet");
        let events = h.events();
        let messages = events
            .iter()
            .filter(|e| matches!(e, Event::Message(_)))
            .count();
        assert_eq!(messages, EVENT_BATCH + 100, "{role:?}");
        let info = Harness::closed(&events).expect("closed");
        assert_eq!(u16::from(info.code), 1002);
        let out = h.output();
        assert_eq!(out.last().unwrap().opcode, CLOSE);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any split of the input, read through `receive` or the connection's
    /// own buffer, and any way of taking the events (one by one, all at
    /// once, or `continue_decoding` when pending), gives every message
    /// and Ping in order, and a Pong for each Ping.
    #[test]
    fn batches_lose_and_reorder_nothing(
        count in 0usize..(3 * EVENT_BATCH),
        pings in proptest::collection::vec(0usize..(3 * EVENT_BATCH), 0..6),
        cuts in proptest::collection::vec(1usize..9000, 1..6),
        how in proptest::collection::vec(0u8..4, 1..6),
        server in any::<bool>(),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        for i in 0..count {
            if pings.contains(&i) {
                wire.extend(frame(role, PING, &[7; 3]));
                expect.push(None);
            }
            let payload = u32::try_from(i).unwrap().to_be_bytes();
            wire.extend(frame(role, BINARY, &payload));
            expect.push(Some(i));
        }
        let mut h = Harness::new(role);
        let now = h.now;
        let mut seen = Vec::new();
        let mut taken = VecDeque::new();
        let mut pongs = 0;
        let mut at = 0;
        let mut step = 0;
        let note = |event: Event, seen: &mut Vec<Option<usize>>| match event {
            Event::Message(m) => seen.push(Some(index(&m))),
            Event::Ping(_) => seen.push(None),
            other => panic!("{other:?}"),
        };
        while at < wire.len() || h.conn.decoding_pending() || h.conn.queued_events().next().is_some() {
            let way = how[step % how.len()];
            let cut = cuts[step % cuts.len()];
            step += 1;
            if at < wire.len() && !h.conn.decoding_pending() {
                let end = (at + cut).min(wire.len());
                let read = &wire[at..end];
                match h.conn.receive_buffer(read.len()) {
                    Some(mut into) if way % 2 == 0 => {
                        let n = read.len().min(into.chunk_mut().len());
                        into.put_slice(&read[..n]);
                        h.conn.received(now).unwrap();
                        at += n;
                    }
                    _ => {
                        h.conn.receive(now, read).unwrap();
                        at = end;
                    }
                }
            }
            match way {
                0 => {
                    while let Some(event) = h.conn.poll_event() {
                        note(event, &mut seen);
                    }
                }
                1 => {
                    h.conn.take_events(&mut taken);
                    for event in taken.drain(..) {
                        note(event, &mut seen);
                    }
                }
                2 => {
                    // one event only: the rest stays queued for later
                    if let Some(event) = h.conn.poll_event() {
                        note(event, &mut seen);
                    }
                }
                _ => {
                    h.conn.take_events(&mut taken);
                    for event in taken.drain(..) {
                        note(event, &mut seen);
                    }
                    h.conn.continue_decoding(now).unwrap();
                }
            }
            pongs += h.output().iter().filter(|f| f.opcode == PONG).count();
            prop_assert!(h.conn.queued_events().count() <= EVENT_BATCH);
        }
        prop_assert_eq!(seen, expect);
        prop_assert!(pongs <= pings.len().min(count));
        prop_assert_eq!(pongs > 0, pings.iter().any(|&p| p < count));
    }
}

/// The batch's queue is the 20 KiB its docs and `Config`'s memory formula
/// say: 512 events of 40 bytes (an event is a message, and a message is 40
/// bytes, `Payload` holding up to 23 inline).
#[test]
fn a_full_batch_queues_twenty_kib() {
    assert_eq!(size_of::<Event>(), 40);
    assert_eq!(EVENT_BATCH * size_of::<Event>(), 20 * 1024);
}

/// `should_decode`: the next batch once the adapter holds fewer than a
/// batch unread; after our Close, whatever it holds (RFC 6455 section
/// 7.1.2: the peer's answer behind unread messages must be reached).
#[test]
fn rfc6455_7_1_2_should_decode_holds_back_a_batch_until_our_close() {
    let role = Role::Server;
    let wire = numbered(role, 3 * EVENT_BATCH, 0);
    let now = Instant::now();
    let mut conn = Connection::new(role, Config::default(), now);
    conn.receive(now, &wire).unwrap();
    // the core's own queue is full: nothing to decode yet
    assert!(!conn.should_decode(0));
    let mut unread = VecDeque::new();
    conn.take_events(&mut unread);
    assert!(conn.should_decode(EVENT_BATCH - 1));
    assert!(!conn.should_decode(EVENT_BATCH));
    conn.close(now, tether::CloseCode::NORMAL, "bye").unwrap();
    assert!(conn.should_decode(EVENT_BATCH));
    assert!(conn.should_decode(10 * EVENT_BATCH));
    conn.continue_decoding(now).unwrap();
    assert_eq!(conn.queued_events().count(), EVENT_BATCH);
}
