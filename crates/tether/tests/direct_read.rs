//! Reading straight into the connection's own buffers
//! (`Connection::receive_buffer` / `received`: the input buffer, or a large
//! payload's own buffer) gives exactly the events `receive` gives, in both
//! roles, with the same limits and checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use bytes::BufMut;
use common::*;
use proptest::prelude::*;
use tether::{CloseCode, Config, Connection, Event, Role};

/// Feeds `wire` in pieces of the given sizes, through `receive_buffer`
/// whenever the connection offers one, else through `receive`. Returns the
/// events and how many bytes went the direct way.
/// Each event is kept as its `Debug` text, and dropped, as an application
/// that has handled it would (a message kept alive pins its read buffer).
fn feed_direct(conn: &mut Connection, wire: &[u8], sizes: &[usize]) -> (Vec<String>, usize) {
    let now = Instant::now();
    let mut at = 0;
    let mut direct = 0;
    let mut events = Vec::new();
    for size in sizes.iter().cycle() {
        if at >= wire.len() {
            break;
        }
        let end = (at + size.max(&1)).min(wire.len());
        if let Some(mut into) = conn.receive_buffer(end - at) {
            // a read offered no room would look like the end of input
            assert!(into.remaining_mut() > 0, "a buffer with no room");
            let n = into.remaining_mut().min(end - at);
            into.put_slice(&wire[at..at + n]);
            at += n;
            direct += n;
            let _ = conn.received(now);
        } else {
            let _ = conn.receive(now, &wire[at..end]);
            at = end;
        }
        while let Some(e) = conn.poll_event() {
            events.push(format!("{e:?}"));
        }
    }
    (events, direct)
}

fn feed_copy(conn: &mut Connection, wire: &[u8]) -> Vec<String> {
    let _ = conn.receive(Instant::now(), wire);
    std::iter::from_fn(|| conn.poll_event().map(|e| format!("{e:?}"))).collect()
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
        // small reads between large frames go through `receive`
        assert!(n * 10 >= wire.len() * 9, "most went direct ({n})");
        let mut b = Connection::new(role, Config::default(), Instant::now());
        assert_eq!(direct, feed_copy(&mut b, &wire));
        assert_eq!(direct.len(), 4);
    }
}

/// A read of many small frames whose last frame is large and still
/// arriving (`receive` then copies the read whole instead of stepping over
/// every header first, and the decoder moves that frame's partial payload
/// into its own buffer) gives the events of the same bytes in one piece,
/// in reads of every size and through either path.
#[test]
fn rfc6455_5_2_a_large_frame_behind_many_small_ones_matches_one_piece() {
    for role in ROLES {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 249) as u8).collect();
        let mut wire = Vec::new();
        for i in 0..100u8 {
            wire.extend(frame(role, BINARY, &[i; 125]));
        }
        wire.extend(frame(role, BINARY, &big));
        for i in 0..40u8 {
            wire.extend(frame(role, TEXT, &[b'a' + i % 26; 30]));
        }
        let mut one = Connection::new(role, Config::default(), Instant::now());
        let expected = feed_copy(&mut one, &wire);
        assert_eq!(expected.len(), 141);
        for read in [65_536, 20_000, 4_096, 777] {
            let mut conn = Connection::new(role, Config::default(), Instant::now());
            let mut events = Vec::new();
            for piece in wire.chunks(read) {
                conn.receive(Instant::now(), piece).unwrap();
                events.extend(std::iter::from_fn(|| {
                    conn.poll_event().map(|e| format!("{e:?}"))
                }));
            }
            assert_eq!(events, expected, "{role:?}, reads of {read}");
            let mut direct = Connection::new(role, Config::default(), Instant::now());
            let (events, _) = feed_direct(&mut direct, &wire, &[read]);
            assert_eq!(events, expected, "{role:?}, direct reads of {read}");
        }
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
        let last = events.last().expect("the final event");
        assert!(last.starts_with("Closed"), "{last}");
        assert!(
            conn.close_info()
                .is_some_and(|i| i.code == CloseCode::INVALID_PAYLOAD)
        );
        assert!(conn.receive_buffer(4096).is_none());
    }
}

/// A connection that holds no input buffer (new, or after freeing its
/// idle buffers) hands none out, nor grows one after small reads: the
/// first read after a pause goes through `receive`, and reads go direct
/// once they come large. So an idle connection, or one that reads a little
/// at a time, holds no 64 KiB read buffer.
#[test]
fn idle_connection_holds_no_read_buffer() {
    let role = Role::Server;
    let mut conn = Connection::new(role, Config::default(), Instant::now());
    assert!(conn.receive_buffer(65_536).is_none());
    conn.receive(Instant::now(), &frame(role, BINARY, b"hello"))
        .unwrap();
    assert!(matches!(conn.poll_event(), Some(Event::Message(_))));
    assert!(
        conn.receive_buffer(65_536).is_none(),
        "small reads: no growth"
    );
    conn.receive(Instant::now(), &frame(role, BINARY, &[7; 40_000]))
        .unwrap();
    assert!(matches!(conn.poll_event(), Some(Event::Message(_))));
    let into = conn
        .receive_buffer(65_536)
        .expect("a buffer after a large read");
    assert!(into.remaining_mut() > 0 && into.remaining_mut() <= 65_536);
    conn.received(Instant::now()).unwrap();
    conn.release_idle_memory();
    assert!(conn.receive_buffer(65_536).is_none());
}

/// A connection reading a little at a time (an echo: a burst of 16
/// messages of 1 KiB per read) reads straight into the input buffer it
/// already holds once every message split off it has been dropped: the
/// buffer stays the size of its reads (no 64 KiB), nothing is copied on
/// its way in, and it offers no more than it holds. While a message keeps
/// it, reads go through `receive`.
#[test]
fn a_buffer_of_small_reads_is_reused_whole_once_its_messages_are_dropped() {
    let now = Instant::now();
    for role in [Role::Server, Role::Client] {
        let burst = frame(role, BINARY, &[4; 1024]).repeat(16);
        let mut conn = Connection::new(role, Config::default(), now);
        conn.receive(now, &burst).unwrap();
        let mut kept = Vec::new();
        while let Some(Event::Message(m)) = conn.poll_event() {
            kept.push(m);
        }
        assert_eq!(kept.len(), 16);
        let first = kept[0].as_bytes().as_ptr() as usize;
        assert!(
            conn.receive_buffer(65_536).is_none(),
            "{role:?}: kept messages pin the buffer"
        );
        drop(kept);
        let mut into = conn
            .receive_buffer(65_536)
            .expect("the input buffer, reused whole");
        let room = into.remaining_mut();
        assert!(room >= burst.len() && room < 65_536, "{role:?}: {room}");
        let at = into.chunk_mut().as_mut_ptr() as usize;
        assert!(
            (at..at + room).contains(&first),
            "{role:?}: the buffer the first burst was read into"
        );
        into.put_slice(&burst);
        conn.received(now).unwrap();
        let mut again = 0;
        while let Some(event) = conn.poll_event() {
            assert!(
                matches!(&event, Event::Message(m) if m.as_bytes() == [4; 1024]),
                "{event:?}"
            );
            again += 1;
        }
        assert_eq!(again, 16, "{role:?}");
    }
}

/// How a stream of identical frames went when read 64 KiB at a time, as
/// both adapters read.
struct Reads {
    /// Reads made (each offered buffer, or a `receive` where none was).
    reads: usize,
    /// Bytes read straight into their frame's own buffer (the buffer
    /// offered is exactly what the frame still needs).
    own: usize,
}

/// Reads `frames` copies of the frame carrying `payload` to `role` the way
/// an adapter does: into the buffer `receive_buffer` offers, else through
/// `receive`. Every message must be `payload` (and is dropped at once, as
/// a message kept would pin its buffer).
fn read_frames(role: Role, payload: &[u8], frames: usize) -> Reads {
    let one = frame(role, BINARY, payload);
    let wire = one.repeat(frames);
    let mut conn = Connection::new(role, Config::default(), Instant::now());
    let now = Instant::now();
    let (mut at, mut messages) = (0, 0);
    let mut seen = Reads { reads: 0, own: 0 };
    while at < wire.len() {
        let want = 65_536.min(wire.len() - at);
        seen.reads += 1;
        // the bytes the frame `at` is in still needs
        let frame_end = (at / one.len() + 1) * one.len();
        let payload_start = frame_end - payload.len();
        match conn.receive_buffer(want) {
            Some(mut into) => {
                let n = into.remaining_mut().min(want);
                if at >= payload_start && into.remaining_mut() == frame_end - at {
                    seen.own += n;
                }
                into.put_slice(&wire[at..at + n]);
                at += n;
                conn.received(now).unwrap();
            }
            None => {
                conn.receive(now, &wire[at..at + want]).unwrap();
                at += want;
            }
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => assert_eq!(m.as_bytes(), payload),
                other => panic!("{other:?}"),
            }
            messages += 1;
        }
    }
    assert_eq!(messages, frames);
    seen
}

/// 64 KiB frames read 64 KiB at a time (as both adapters read) straddle
/// every read by their header, so each read would leave the frame it
/// carries a few bytes short, and its payload would be read into the input
/// buffer and copied into the frame's own: a frame that large makes the
/// next read small, so the payload after it is read straight into its own
/// buffer and never copied.
#[test]
fn rfc6455_5_2_large_frames_straddling_reads_are_read_into_their_own_buffer() {
    for role in ROLES {
        let payload: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
        let frames = 20;
        let Reads { own, .. } = read_frames(role, &payload, frames);
        // all but the first frame and the few KiB read with each header
        assert!(
            own >= (frames - 1) * (payload.len() - 4096),
            "{role:?}: {own} bytes of {frames} frames read into their own buffer"
        );
    }
}

/// Frames under 32 KiB are read a whole read (64 KiB) at a time, however
/// their remainders went: a small read before each would cost a read per
/// frame to save copying a few KiB.
#[test]
fn rfc6455_5_2_moderate_frames_are_read_many_per_read() {
    for size in [6_000usize, 8_192, 20_000] {
        let frames = 200;
        let Reads { reads, .. } = read_frames(Role::Server, &vec![b'x'; size], frames);
        assert!(
            reads * 4 <= frames * 3,
            "{size}-byte frames: {reads} reads for {frames} frames"
        );
    }
}

/// A message the application keeps pins the buffer it was split off, so
/// that buffer is not handed out again while one is alive: after a large
/// read the next read goes into a new buffer, after a small one through
/// `receive`, which copies just what arrived.
#[test]
fn a_kept_message_is_not_read_over() {
    let role = Role::Server;
    let mut conn = Connection::new(role, Config::default(), Instant::now());
    conn.receive(Instant::now(), &frame(role, BINARY, &[1; 40_000]))
        .unwrap();
    let Some(Event::Message(kept)) = conn.poll_event() else {
        panic!("a message")
    };
    let pinned = kept.as_bytes().as_ptr_range();
    let mut into = conn.receive_buffer(65_536).expect("a new buffer");
    assert_eq!(into.remaining_mut(), 65_536);
    let at = into.chunk_mut().as_mut_ptr().cast_const();
    assert!(
        !pinned.contains(&at) && at != pinned.end,
        "not the kept message's buffer"
    );
    into.put_slice(&frame(role, BINARY, b"second"));
    conn.received(Instant::now()).unwrap();
    assert!(matches!(conn.poll_event(), Some(Event::Message(m)) if m.as_bytes() == b"second"));
    assert!(kept.as_bytes().iter().all(|&b| b == 1));
    // a small read, kept: the next read goes through `receive`
    let small = frame(role, BINARY, &[2; 100]);
    let mut conn = Connection::new(role, Config::default(), Instant::now());
    conn.receive(Instant::now(), &small).unwrap();
    let kept = conn.poll_event();
    assert!(matches!(kept, Some(Event::Message(_))), "{kept:?}");
    assert!(
        conn.receive_buffer(65_536).is_none(),
        "a kept message pins the buffer"
    );
    conn.receive(Instant::now(), &frame(role, BINARY, b"second"))
        .unwrap();
    assert!(matches!(conn.poll_event(), Some(Event::Message(m)) if m.as_bytes() == b"second"));
    assert!(matches!(kept, Some(Event::Message(m)) if m.as_bytes() == [2; 100]));
}

/// Small frames split anywhere, each piece read into the input buffer:
/// the same events as one `receive` of the whole input.
#[test]
fn rfc6455_5_4_small_frames_read_into_the_input_buffer_match_receive() {
    for role in ROLES {
        let mut wire = Vec::new();
        for i in 0..5000u32 {
            let body = format!("message {i}");
            if i % 2 == 0 {
                wire.extend(frame(role, TEXT, body.as_bytes()));
            } else {
                wire.extend(frame(role, BINARY, body.as_bytes()));
            }
        }
        let mut a = Connection::new(role, Config::default(), Instant::now());
        let (direct, n) = feed_direct(&mut a, &wire, &[40_000, 40_000, 13, 700]);
        // the second large read, and the small ones after it, go direct
        assert!(n >= 20_000, "the large reads went direct ({n})");
        let mut b = Connection::new(role, Config::default(), Instant::now());
        assert_eq!(direct, feed_copy(&mut b, &wire));
        assert_eq!(direct.len(), 5000);
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
