//! `Connection::release_idle_memory` frees only what holds nothing: a frame
//! split across the call (header or payload) still completes, and output
//! still queued is still written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::*;
use tether::{Config, Connection, Event, Message};

#[test]
fn release_between_any_two_bytes_loses_nothing() {
    for role in ROLES {
        let big: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut wire = frame(role, BINARY, b"first");
        wire.extend(frame(role, BINARY, &big));
        wire.extend(frame(role, PING, b"p"));
        for cut in [1, 3, 8, 9, 20, 5_000, wire.len() - 1] {
            let now = Instant::now();
            let mut conn = Connection::new(role, Config::default(), now);
            conn.send(Message::binary(Bytes::from_static(b"queued")))
                .unwrap();
            conn.receive(now, &wire[..cut]).unwrap();
            conn.release_idle_memory();
            conn.receive(now, &wire[cut..]).unwrap();
            conn.release_idle_memory();
            let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
            assert_eq!(events.len(), 3, "cut at {cut}");
            assert!(matches!(&events[1], Event::Message(m) if m.as_bytes() == &big[..]));
            // our message and the Pong are still there to write
            let out = conn.take_output();
            assert!(out.len() > "queued".len() + 2, "cut at {cut}");
        }
    }
}
