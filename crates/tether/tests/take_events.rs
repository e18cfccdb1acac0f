//! `Connection::take_events` (all queued events at once, for an adapter
//! that keeps its own queue) gives exactly what `poll_event` called until
//! `None` gives, in order, however the input is split and however much of
//! the taken queue is still unread; with `auto_close_reply` on, a violation
//! found behind unread events is carried out by the take that finds the
//! queue empty, as by `poll_event`. `Connection::queued` (kept as events
//! come and go) says what a pass over the queued events says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::time::Instant;

use common::*;
use proptest::prelude::*;
use tether::{Config, Connection, Event};

fn wire(role: tether::Role, frames: &[(u8, usize)], bad_tail: bool) -> Vec<u8> {
    let mut wire = Vec::new();
    for (i, &(kind, len)) in frames.iter().enumerate() {
        let payload: Vec<u8> = (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect();
        let opcode = [TEXT, BINARY, PING, PONG][usize::from(kind % 4)];
        let payload = if opcode == PING || opcode == PONG {
            &payload[..len.min(125)]
        } else {
            &payload[..]
        };
        wire.extend(frame(role, opcode, payload));
    }
    if bad_tail {
        // a reserved opcode: the connection fails (1002) after the rest
        wire.extend(raw_frame(role, true, 0, 0x3, b"x"));
    } else {
        wire.extend(frame(role, CLOSE, &close_payload(1000, b"bye")));
    }
    wire
}

/// What `Connection::queued` must say, by a pass over the queued events.
fn summed(conn: &Connection) -> tether::Queued {
    let events: Vec<&Event> = conn.queued_events().collect();
    tether::Queued {
        events: events.len(),
        messages: events
            .iter()
            .filter(|e| matches!(e, Event::Message(_)))
            .count(),
        weight: events.iter().map(|e| e.footprint()).sum(),
        ends: matches!(events.last(), Some(Event::Closed(_))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn take_events_gives_what_poll_event_gives(
        frames in proptest::collection::vec((any::<u8>(), 0usize..300), 0..40),
        cuts in proptest::collection::vec(1usize..700, 1..8),
        reads in proptest::collection::vec(0usize..6, 1..8),
        bad_tail in any::<bool>(),
        auto_close_reply in any::<bool>(),
        server in any::<bool>(),
    ) {
        let role = if server { tether::Role::Server } else { tether::Role::Client };
        let wire = wire(role, &frames, bad_tail);
        let config = Config { auto_close_reply, ..Config::default() };
        let now = Instant::now();
        let mut polled = Connection::new(role, config.clone(), now);
        let mut taken = Connection::new(role, config, now);
        let (mut by_poll, mut by_take) = (Vec::new(), Vec::new());
        let mut queue: VecDeque<Event> = VecDeque::new();
        let mut at = 0;
        for (cut, read) in cuts.iter().cycle().zip(reads.iter().cycle()) {
            if at >= wire.len() {
                break;
            }
            let end = (at + cut).min(wire.len());
            let _ = polled.receive(now, &wire[at..end]);
            let _ = taken.receive(now, &wire[at..end]);
            at = end;
            prop_assert_eq!(taken.queued(), summed(&taken));
            // one at a time: what is left is kept weighed
            if let Some(e) = polled.poll_event() {
                by_poll.push(format!("{e:?}"));
                prop_assert_eq!(polled.queued(), summed(&polled));
            }
            while let Some(e) = polled.poll_event() {
                by_poll.push(format!("{e:?}"));
            }
            taken.take_events(&mut queue);
            prop_assert_eq!(taken.queued(), summed(&taken));
            // the adapter's application reads only some of what it took
            for e in queue.drain(..(*read).min(queue.len())) {
                by_take.push(format!("{e:?}"));
            }
        }
        // the application reads the rest; the queue found empty carries
        // out a deferred failure
        loop {
            for e in queue.drain(..) {
                by_take.push(format!("{e:?}"));
            }
            taken.take_events(&mut queue);
            if queue.is_empty() {
                break;
            }
        }
        while let Some(e) = polled.poll_event() {
            by_poll.push(format!("{e:?}"));
        }
        prop_assert_eq!(&by_take, &by_poll);
        prop_assert_eq!(taken.state(), polled.state());
        // (a client masks with random keys: the same frames, other bytes)
        let (out_taken, out_polled) = (taken.take_output(), polled.take_output());
        prop_assert_eq!(out_taken.len(), out_polled.len());
        if server {
            prop_assert_eq!(out_taken, out_polled);
        }
    }
}
