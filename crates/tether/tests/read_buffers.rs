//! What received messages keep of the read buffers they came in (RFC 6455
//! section 10.4: an endpoint bounds what a peer can make it hold). A
//! message that arrives whole is split off the buffer it was read into,
//! without a copy, and so keeps all of that buffer alive (unless it is
//! small enough to be held inline in the message, `Payload`); the connection
//! keeps such buffers only while the messages split off them weigh at
//! least half of each (`Event::footprint`), and copies the messages out
//! otherwise. Measured by counting every allocation of this test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::BufMut;
use common::*;
use counting::CURRENT;
use tether::{Config, Connection, EVENT_BATCH, Event, Role};

/// One measurement at a time: the counter is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Messages that fill their reads: role, payload size, and the wire of
/// `reads` reads of 64 KiB of them.
fn filling_reads(reads: usize) -> impl Iterator<Item = (Role, usize, Vec<u8>)> {
    [
        (Role::Server, 1024),
        (Role::Client, 32),
        (Role::Server, 125),
    ]
    .into_iter()
    .map(move |(role, size)| {
        let one = frame(role, BINARY, &vec![3; size]);
        let wire = one.repeat(reads * 64 * 1024 / one.len());
        (role, one.len(), wire)
    })
}

/// Whether `m` lies in one of `reads` (it was not copied out of it).
fn in_reads(m: &tether::Message, reads: &[std::ops::Range<usize>]) -> bool {
    let at = m.as_bytes().as_ptr() as usize;
    reads.iter().any(|r| r.contains(&at))
}

/// What the events a connection holds may keep of the heap, by the
/// formula on `Config::max_unread_bytes`: four times what they weigh and
/// one read (64 KiB); and 64 KiB for the slack of the event queue's own
/// doubling.
fn assert_within_bound<'a>(what: &str, events: impl Iterator<Item = &'a Event>, held: usize) {
    let weight: usize = events.map(Event::footprint).sum();
    assert!(
        held <= 4 * weight + 2 * 64 * 1024,
        "{what}: {held} bytes held for {weight} bytes of events"
    );
}

/// Feeds `wire` as a socket read of up to 64 KiB at a time would bring it:
/// into the connection's own buffer when it offers one, else through
/// `receive`. After each read every event is taken into `unread`, where
/// the application leaves them (as an adapter's read-ahead holds them).
/// Returns each read's address range when it went into the connection's
/// buffer.
fn read_all(
    conn: &mut Connection,
    wire: &[u8],
    unread: &mut VecDeque<Event>,
) -> Vec<std::ops::Range<usize>> {
    let now = Instant::now();
    let mut ranges = Vec::new();
    for mut read in wire.chunks(64 * 1024) {
        while !read.is_empty() {
            if let Some(mut into) = conn.receive_buffer(read.len()) {
                // a socket read fills at most what it is offered
                let n = into.remaining_mut().min(read.len());
                assert!(n > 0, "an empty buffer offered");
                let at = into.chunk_mut().as_mut_ptr() as usize;
                into.put_slice(&read[..n]);
                ranges.push(at..at + n);
                conn.received(now).unwrap();
                read = &read[n..];
            } else {
                conn.receive(now, read).unwrap();
                read = &[];
            }
            take_all(conn, unread);
        }
    }
    ranges
}

/// Takes every event, as an adapter does: what is still to be decoded
/// (a message inflated over turns, the input behind a full batch of
/// `tether::EVENT_BATCH` events) is decoded as the events are taken.
fn take_all(conn: &mut Connection, unread: &mut VecDeque<Event>) {
    loop {
        conn.take_events(unread);
        if !conn.decoding_pending() {
            return;
        }
        conn.new_turn();
        conn.continue_decoding(Instant::now()).unwrap();
    }
}

/// About 64 KiB that leave a 32-byte message (too large to be held
/// inline, so split off the read) and an empty one: the rest is a
/// fragmented message of empty frames, which weighs nothing once read.
fn filler_read(role: Role) -> Vec<u8> {
    let mut read = frame(role, BINARY, &[7; 32]);
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
    let _serial = serial();
    for role in ROLES {
        let wire = filler_read(role).repeat(100);
        let mut conn = Connection::new(role, Config::default(), Instant::now());
        let before = CURRENT.load(Ordering::Relaxed);
        let mut unread = VecDeque::new();
        read_all(&mut conn, &wire, &mut unread);
        let held = CURRENT.load(Ordering::Relaxed) - before;
        assert_eq!(unread.len(), 200);
        // split off their reads, the 100 32-byte messages kept 6.4 MiB
        assert_within_bound(&format!("{role:?}"), unread.iter(), held);
    }
}

/// Messages of at most `Payload::INLINE_CAPACITY` bytes are copied into
/// the message itself: held unread, they keep no read buffer at all, only
/// the event queue they wait in.
#[test]
fn rfc6455_10_4_small_messages_are_held_inline_and_keep_no_read_buffer() {
    let _serial = serial();
    for role in ROLES {
        for size in [0, 1, 16, tether::Payload::INLINE_CAPACITY] {
            let one = frame(role, BINARY, &vec![5; size]);
            let wire = one.repeat(4 * 64 * 1024 / one.len());
            let mut conn = Connection::new(role, Config::default(), Instant::now());
            let before = CURRENT.load(Ordering::Relaxed);
            let mut unread = VecDeque::new();
            let ranges = read_all(&mut conn, &wire, &mut unread);
            let held = CURRENT.load(Ordering::Relaxed) - before;
            let count = wire.len() / one.len();
            assert_eq!(unread.len(), count);
            for event in &unread {
                let Event::Message(m) = event else {
                    panic!("{event:?}")
                };
                assert_eq!(m.as_bytes(), &vec![5; size][..]);
                assert!(!in_reads(m, &ranges), "{role:?} {size}: in a read");
            }
            // the queue (at most twice its events, 48 bytes a slot) and
            // the one read buffer the connection keeps
            let queue = 2 * count * 48;
            assert!(
                held <= queue + 2 * 64 * 1024,
                "{role:?} {size}: {held} bytes held for {count} messages"
            );
        }
    }
}

#[test]
fn rfc6455_10_4_messages_filling_their_reads_are_not_copied() {
    let _serial = serial();
    for (role, frame_len, wire) in filling_reads(4) {
        let mut conn = Connection::new(role, Config::default(), Instant::now());
        let (mut direct, mut in_place) = (0, 0);
        let mut unread = VecDeque::new();
        for read in wire.chunks(64 * 1024) {
            let ranges = read_all(&mut conn, read, &mut unread);
            direct += ranges.len();
            // the application takes each message and drops it
            for event in unread.drain(..) {
                let Event::Message(m) = event else { continue };
                in_place += usize::from(in_reads(&m, &ranges));
            }
        }
        assert!(
            direct >= 3,
            "{role:?} {frame_len}: read into the input buffer"
        );
        // every message that arrived whole in such a read is still where
        // it was read
        let per_read = 64 * 1024 / frame_len;
        assert!(
            in_place >= direct * (per_read - 1),
            "{role:?} {frame_len}: {in_place} messages left where they were read"
        );
    }
}

#[test]
fn rfc6455_10_4_bulk_reads_go_into_the_buffer_while_messages_wait() {
    let _serial = serial();
    for (role, frame_len, wire) in filling_reads(8) {
        let mut conn = Connection::new(role, Config::default(), Instant::now());
        let before = CURRENT.load(Ordering::Relaxed);
        // nothing is read: every message split off a read keeps it
        let mut unread = VecDeque::new();
        let ranges = read_all(&mut conn, &wire, &mut unread);
        let held = CURRENT.load(Ordering::Relaxed) - before;
        // the first read makes the buffer; every later one goes into a
        // buffer of the connection's, with no copy
        assert!(
            ranges.len() >= 7,
            "{role:?} {frame_len}: {} direct reads",
            ranges.len()
        );
        let in_place = unread
            .iter()
            .filter(|e| matches!(e, Event::Message(m) if in_reads(m, &ranges)))
            .count();
        let per_read = 64 * 1024 / frame_len;
        assert!(
            in_place >= ranges.len() * (per_read - 1),
            "{role:?} {frame_len}: {in_place} messages left where they were read"
        );
        assert_within_bound(&format!("{role:?} {frame_len}"), unread.iter(), held);
    }
}

/// Messages of two one-byte fragments: the first is split off the input
/// buffer, and appending the second to it must not grow it to what
/// `bytes` remembers of the input buffer's size (64 KiB each, 2.1 GB for
/// 2.1 MB of events, before).
#[test]
fn rfc6455_5_4_small_fragmented_messages_keep_no_read_buffer() {
    let _serial = serial();
    for role in ROLES {
        let mut one = raw_frame(role, false, 0, BINARY, &[1]);
        one.extend(raw_frame(role, true, 0, CONT, &[2]));
        let wire = one.repeat(3 * 64 * 1024 / one.len());
        let mut conn = Connection::new(role, Config::default(), Instant::now());
        let before = CURRENT.load(Ordering::Relaxed);
        let mut unread = VecDeque::new();
        read_all(&mut conn, &wire, &mut unread);
        let held = CURRENT.load(Ordering::Relaxed) - before;
        assert_eq!(unread.len(), wire.len() / one.len());
        assert!(
            unread
                .iter()
                .all(|e| matches!(e, Event::Message(m) if m.as_bytes() == [1, 2]))
        );
        assert_within_bound(&format!("{role:?}"), unread.iter(), held);
    }
}

/// A message half received when the connection, waiting, lets its input
/// buffer go (`note_idle` frees an empty one over 64 KiB): its first
/// fragment, still in that buffer, is copied out, or the message would
/// keep the buffer unweighed once delivered (50 messages of 16 bytes held
/// 3.4 MB before).
#[test]
fn a_message_half_received_when_the_input_buffer_goes_keeps_none_of_it() {
    let _serial = serial();
    let role = Role::Server;
    let now = Instant::now();
    let cont = raw_frame(role, false, 0, CONT, b"");
    let last = raw_frame(role, true, 0, CONT, b"");
    let first = raw_frame(role, false, 0, BINARY, &[5; 16]);
    let fill = |read: &mut Vec<u8>, upto: usize| {
        while read.len() + cont.len() <= upto {
            read.extend(&cont);
        }
    };
    let feed = |conn: &mut Connection, read: &[u8]| {
        if let Some(mut into) = conn.receive_buffer(64 * 1024)
            && into.remaining_mut() >= read.len()
        {
            into.put_slice(read);
            conn.received(now).unwrap();
        } else {
            conn.receive(now, read).unwrap();
        }
        conn.note_idle(now);
    };
    let mut conn = Connection::new(role, Config::default(), now);
    let before = CURRENT.load(Ordering::Relaxed);
    // a message starts, filler, the first byte of the next header
    let mut read = first.clone();
    fill(&mut read, 40 * 1024);
    read.push(cont[0]);
    feed(&mut conn, &read);
    for _ in 0..50 {
        // into a new buffer of 64 KiB and a byte: the header's rest,
        // filler, the message ends, the next starts, filler
        let mut read = cont[1..].to_vec();
        fill(&mut read, 20 * 1024);
        read.extend(&last);
        read.extend(&first);
        fill(&mut read, 60 * 1024);
        feed(&mut conn, &read);
        // that buffer went (empty, over 64 KiB); through `receive`:
        // filler, the message ends, the next starts, one byte of a header
        let mut read = Vec::new();
        fill(&mut read, 20 * 1024);
        read.extend(&last);
        read.extend(&first);
        fill(&mut read, 40 * 1024);
        read.push(cont[0]);
        feed(&mut conn, &read);
    }
    let held = CURRENT.load(Ordering::Relaxed) - before;
    assert_eq!(conn.queued_events().count(), 100);
    assert_within_bound("half received", conn.queued_events(), held);
}

/// permessage-deflate (RFC 7692): a compressed message of 16 KiB of empty
/// stored blocks inflates to 16 bytes, and must not keep the 64 KiB its
/// output was first given (20 of them held 1.4 MB before).
#[cfg(feature = "deflate")]
#[test]
fn rfc7692_small_inflated_messages_keep_no_large_buffer() {
    let _serial = serial();
    let config = Config {
        deflate: Some(tether::DeflateConfig::default()),
        ..Config::default()
    };
    let now = Instant::now();
    use tether::upgrade::Upgraded;
    let offer = Upgraded::new(Role::Client, config.clone()).offer().unwrap();
    let mut server = Upgraded::new(Role::Server, config);
    server.answer_offers([offer.as_bytes()]).unwrap().unwrap();
    let mut conn = server.into_connection(now, &[]);
    // empty stored blocks, then one of 16 bytes, final
    let mut payload = Vec::new();
    while payload.len() < 16 * 1024 {
        payload.extend([0u8, 0, 0, 0xff, 0xff]);
    }
    payload.extend([1u8, 16, 0, 0xef, 0xff]);
    payload.extend([9u8; 16]);
    let one = raw_frame(Role::Server, true, 4, BINARY, &payload);
    // the connection's own lasting state first (the inflater and its
    // window, kept with context takeover): what is measured is what the
    // messages hold
    let mut unread = VecDeque::new();
    read_all(&mut conn, &one, &mut unread);
    unread.clear();
    let wire = one.repeat(20);
    let before = CURRENT.load(Ordering::Relaxed);
    read_all(&mut conn, &wire, &mut unread);
    while conn.decoding_pending() {
        conn.new_turn();
        conn.continue_decoding(now).unwrap();
    }
    take_all(&mut conn, &mut unread);
    let held = CURRENT.load(Ordering::Relaxed) - before;
    assert_eq!(unread.len(), 20);
    assert!(
        unread
            .iter()
            .all(|e| matches!(e, Event::Message(m) if m.as_bytes() == [9; 16]))
    );
    assert_within_bound("inflated", unread.iter(), held);
}

/// Decoding in batches (`tether::EVENT_BATCH`): the queue's allocation
/// stays within one batch. A read of 64 KiB of empty messages (32,768 of
/// them, 1.3 MB of events queued at once before) holds the connection to
/// its input buffer and the queue of one batch; taking them batch by
/// batch leaves no larger queue behind.
#[test]
fn rfc6455_10_4_the_event_queue_holds_one_batch_of_tiny_frames() {
    let _serial = serial();
    for role in ROLES {
        let one = frame(role, BINARY, b"");
        let wire = one.repeat(64 * 1024 / one.len());
        let now = Instant::now();
        let mut conn = Connection::new(role, Config::default(), now);
        let before = CURRENT.load(Ordering::Relaxed);
        conn.receive(now, &wire).unwrap();
        let held = CURRENT.load(Ordering::Relaxed) - before;
        let queue = 2 * EVENT_BATCH * size_of::<Event>();
        assert!(
            held <= 64 * 1024 + queue + 4096,
            "{role:?}: {held} bytes held after one read"
        );
        // taking them all, batch by batch, leaves no larger queue behind
        let mut count = 0;
        let mut taken = VecDeque::new();
        loop {
            conn.take_events(&mut taken);
            if taken.is_empty() {
                break;
            }
            count += taken.len();
            assert!(taken.len() <= EVENT_BATCH);
            taken.clear();
            let now_held = CURRENT.load(Ordering::Relaxed) - before;
            assert!(now_held <= 64 * 1024 + 2 * queue + 4096, "{now_held}");
        }
        assert_eq!(count, wire.len() / one.len());
    }
}

/// A frame still arriving when the connection ends gives its buffer back
/// at once (up to 1 MiB is reserved from its header alone): an ended
/// connection an application still holds keeps none of it. It was kept
/// until the connection was dropped.
#[test]
fn rfc6455_7_1_5_a_frame_cut_off_by_the_end_gives_its_buffer_back() {
    let _serial = serial();
    let now = Instant::now();
    let mut conn = Connection::new(Role::Server, Config::default(), now);
    let whole = frame(Role::Server, BINARY, &vec![7u8; 4 << 20]);
    let before = CURRENT.load(Ordering::Relaxed);
    conn.receive(now, &whole[..64 * 1024]).unwrap();
    let arriving = CURRENT.load(Ordering::Relaxed).saturating_sub(before);
    assert!(arriving >= 1 << 20, "reserved {arriving} bytes");
    conn.receive_eof();
    let mut unread = VecDeque::new();
    take_all(&mut conn, &mut unread);
    assert!(matches!(unread.back(), Some(Event::Closed(_))));
    // what is left: the event queue and a read's worth of input buffer,
    // freed once idle as any connection's
    let after = CURRENT.load(Ordering::Relaxed).saturating_sub(before);
    assert!(after < 128 * 1024, "still held once ended: {after} bytes");
}
