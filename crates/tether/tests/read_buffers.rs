//! What received messages keep of the read buffers they came in (RFC 6455
//! section 10.4: an endpoint bounds what a peer can make it hold). A
//! message that arrives whole is split off the buffer it was read into,
//! without a copy, and so keeps all of that buffer alive; the connection
//! keeps such buffers only while the messages split off them weigh at
//! least half of each (`Event::footprint`), and copies the messages out
//! otherwise. Measured by counting every allocation of this test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BufMut;
use common::*;
use counting::CURRENT;
use tether::{Config, Connection, Event, Role};

/// One measurement at a time: the counter is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// Feeds `wire` as a socket read of up to 64 KiB at a time would bring it:
/// into the connection's own buffer when it offers one, else through
/// `receive`. Events are left queued. Returns each read's address range
/// when it went into the connection's buffer.
fn read_all(conn: &mut Connection, wire: &[u8]) -> Vec<std::ops::Range<usize>> {
    let now = Instant::now();
    let mut ranges = Vec::new();
    for read in wire.chunks(64 * 1024) {
        if let Some(mut into) = conn.receive_buffer(read.len()) {
            assert!(into.remaining_mut() >= read.len());
            let at = into.chunk_mut().as_mut_ptr() as usize;
            into.put_slice(read);
            ranges.push(at..at + read.len());
            conn.received(now).unwrap();
        } else {
            conn.receive(now, read).unwrap();
        }
    }
    ranges
}

/// About 64 KiB that leave a 16-byte message and an empty one: the rest
/// is a fragmented message of empty frames, which weighs nothing once read.
fn filler_read(role: Role) -> Vec<u8> {
    let mut read = frame(role, BINARY, &[7; 16]);
    read.extend(raw_frame(role, false, 0, BINARY, b""));
    let cont = raw_frame(role, false, 0, CONT, b"");
    while read.len() + 2 * cont.len() <= 64 * 1024 {
        read.extend(&cont);
    }
    read.extend(raw_frame(role, true, 0, CONT, b""));
    read
}

#[test]
fn rfc6455_10_4_messages_among_empty_fragments_keep_no_read_buffer() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for role in ROLES {
        let wire = filler_read(role).repeat(100);
        let mut conn = Connection::new(role, Config::default(), Instant::now());
        let before = CURRENT.load(Ordering::Relaxed);
        read_all(&mut conn, &wire);
        let held = CURRENT.load(Ordering::Relaxed) - before;
        let events: Vec<&Event> = conn.queued_events().collect();
        assert_eq!(events.len(), 200);
        let weight: usize = events.iter().map(|e| e.footprint()).sum();
        // split off their reads, the 100 16-byte messages kept 6.4 MiB
        assert!(
            held <= 3 * weight + 128 * 1024,
            "{role:?}: {held} bytes held for {weight} bytes of events"
        );
    }
}

#[test]
fn rfc6455_10_4_messages_filling_their_reads_are_not_copied() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (role, size) in [
        (Role::Server, 1024),
        (Role::Client, 16),
        (Role::Server, 125),
    ] {
        let one = frame(role, BINARY, &vec![3; size]);
        let wire = one.repeat(4 * 64 * 1024 / one.len());
        let mut conn = Connection::new(role, Config::default(), Instant::now());
        let (mut direct, mut in_place) = (0, 0);
        for read in wire.chunks(64 * 1024) {
            let ranges = read_all(&mut conn, read);
            direct += ranges.len();
            // the application takes each message and drops it
            while let Some(event) = conn.poll_event() {
                let Event::Message(m) = event else { continue };
                let at = m.as_bytes().as_ptr() as usize;
                in_place += usize::from(ranges.iter().any(|r| r.contains(&at)));
            }
        }
        assert!(direct >= 3, "{role:?} {size}: read into the input buffer");
        // every message that arrived whole in such a read is still where
        // it was read
        let per_read = 64 * 1024 / one.len();
        assert!(
            in_place >= direct * (per_read - 1),
            "{role:?} {size}: {in_place} messages left where they were read"
        );
    }
}

#[test]
fn rfc6455_10_4_bulk_reads_go_into_the_buffer_while_messages_wait() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (role, size) in [
        (Role::Server, 1024),
        (Role::Client, 16),
        (Role::Server, 125),
    ] {
        let one = frame(role, BINARY, &vec![3; size]);
        let wire = one.repeat(8 * 64 * 1024 / one.len());
        let mut conn = Connection::new(role, Config::default(), Instant::now());
        let before = CURRENT.load(Ordering::Relaxed);
        // nothing is taken: every message split off a read keeps it
        let ranges = read_all(&mut conn, &wire);
        let held = CURRENT.load(Ordering::Relaxed) - before;
        // the first read makes the buffer; every later one goes into a
        // buffer of the connection's, with no copy
        assert!(
            ranges.len() >= 7,
            "{role:?} {size}: {} direct reads",
            ranges.len()
        );
        let weight: usize = conn.queued_events().map(Event::footprint).sum();
        let in_place = conn
            .queued_events()
            .filter(|e| {
                let Event::Message(m) = e else { return false };
                let at = m.as_bytes().as_ptr() as usize;
                ranges.iter().any(|r| r.contains(&at))
            })
            .count();
        let per_read = 64 * 1024 / one.len();
        assert!(
            in_place >= ranges.len() * (per_read - 1),
            "{role:?} {size}: {in_place} messages left where they were read"
        );
        assert!(
            held <= 3 * weight + 128 * 1024,
            "{role:?} {size}: {held} bytes held for {weight} bytes of events"
        );
    }
}
