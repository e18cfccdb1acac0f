//! Messages on either side of what a `Payload` holds inline (RFC 6455
//! section 5.6: data frames carry the application's bytes unchanged; 8.1:
//! text is UTF-8). Small whole frames are copied out of the read buffer
//! and held in the message; larger ones are split off it. Both must give
//! the same bytes, the same equality, and the same UTF-8 verdict, whether
//! the frame arrives whole or in pieces, through `receive` or read into
//! `receive_buffer`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Instant;

use bytes::BufMut;
use common::*;
use tether::{Config, Connection, Event, Message, Payload};

const INLINE: usize = Payload::INLINE_CAPACITY;

/// Sizes around the inline capacity, and the control-frame limit.
const SIZES: [usize; 9] = [
    0,
    1,
    2,
    INLINE - 1,
    INLINE,
    INLINE + 1,
    INLINE + 2,
    125,
    126,
];

/// Text of exactly `len` bytes with multi-byte characters throughout (so
/// one straddles the inline boundary).
fn text_of(len: usize) -> String {
    let mut s = String::new();
    for c in ['é', 'x', '€', '𝄞'].iter().cycle() {
        if s.len() + c.len_utf8() > len {
            break;
        }
        s.push(*c);
    }
    while s.len() < len {
        s.push('y');
    }
    s
}

/// Feeds `wire` in pieces of `piece` bytes, alternately through `receive`
/// and, when offered, into `receive_buffer`; returns the events.
fn feed(conn: &mut Connection, wire: &[u8], piece: usize) -> Vec<Event> {
    let now = Instant::now();
    let mut events = Vec::new();
    for (i, part) in wire.chunks(piece).enumerate() {
        if i % 2 == 1
            && let Some(mut into) = conn.receive_buffer(part.len())
            && into.remaining_mut() >= part.len()
        {
            into.put_slice(part);
            let _ = conn.received(now);
        } else {
            let _ = conn.receive(now, part);
        }
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    events
}

#[test]
fn rfc6455_5_6_messages_around_the_inline_size_arrive_unchanged() {
    for role in ROLES {
        for piece in [1, 7, 64 * 1024] {
            let mut wire = Vec::new();
            let mut sent = Vec::new();
            for size in SIZES {
                let bytes: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
                wire.extend(frame(role, BINARY, &bytes));
                sent.push(Message::binary(bytes));
                let text = text_of(size);
                wire.extend(frame(role, TEXT, text.as_bytes()));
                sent.push(Message::text(text));
            }
            let mut conn = Connection::new(role, Config::default(), Instant::now());
            let got: Vec<Message> = feed(&mut conn, &wire, piece)
                .into_iter()
                .map(|e| match e {
                    Event::Message(m) => m,
                    other => panic!("{role:?} {piece}: {other:?}"),
                })
                .collect();
            assert_eq!(got, sent, "{role:?} in pieces of {piece}");
            for m in &got {
                assert_eq!(m.len(), m.as_bytes().len());
                if let Message::Text(t) = m {
                    assert_eq!(t.as_str().as_bytes(), m.as_bytes());
                }
            }
        }
    }
}

/// Invalid UTF-8 in a small text frame fails the connection with 1007 as
/// in a large one (RFC 6455 8.1), wherever the bad byte sits.
#[test]
fn rfc6455_8_1_invalid_utf8_in_small_and_large_text_closes_1007() {
    for role in ROLES {
        for size in [1, INLINE - 1, INLINE, INLINE + 1, 125] {
            for bad_at in [0, size / 2, size - 1] {
                let mut bytes = vec![b'a'; size];
                bytes[bad_at] = 0xFF;
                let wire = frame(role, TEXT, &bytes);
                let mut conn = Connection::new(role, Config::default(), Instant::now());
                let events = feed(&mut conn, &wire, 64 * 1024);
                let what = format!("{role:?} {size} bytes, bad byte at {bad_at}");
                assert!(
                    !events.iter().any(|e| matches!(e, Event::Message(_))),
                    "{what}: {events:?}"
                );
                let _ = conn.take_output();
                assert_eq!(
                    conn.close_info().map(|c| c.code.as_u16()),
                    Some(1007),
                    "{what}"
                );
            }
        }
    }
}

/// A small message is held inline, a larger one is not; the two compare,
/// order and hash by their bytes alone.
#[test]
fn small_received_messages_are_held_inline() {
    for role in ROLES {
        let mut wire = frame(role, BINARY, &[1; INLINE]);
        wire.extend(frame(role, BINARY, &[1; INLINE + 1]));
        let mut conn = Connection::new(role, Config::default(), Instant::now());
        let events = feed(&mut conn, &wire, 64 * 1024);
        let [
            Event::Message(Message::Binary(small)),
            Event::Message(Message::Binary(large)),
        ] = &events[..]
        else {
            panic!("{events:?}")
        };
        assert!(small.is_inline(), "{role:?}");
        assert!(!large.is_inline(), "{role:?}");
        assert_eq!(*small, Payload::from(vec![1; INLINE]));
        assert_eq!(*large, Payload::copy_from_slice(&[1; INLINE + 1]));
    }
}
