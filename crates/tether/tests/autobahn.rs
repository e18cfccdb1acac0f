//! The rules of Autobahn TestSuite case groups 1-7 and 10, each checked for
//! both roles. Test names give the RFC 6455 section and the Autobahn cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tether::{Event, Message, State};

/// Feeds `frames` and echoes what arrives, as Autobahn's fuzzing peer expects.
fn echo_case(role: tether::Role, frames: &[Vec<u8>]) -> (Harness, Vec<Event>) {
    let mut h = Harness::new(role);
    for f in frames {
        h.feed(f);
    }
    let events = h.echo();
    (h, events)
}

// ---------------------------------------------------------------- 1: framing

#[test]
fn rfc6455_5_2_autobahn_1_1_and_1_2_text_and_binary_lengths_echo() {
    for role in ROLES {
        for len in [0usize, 125, 126, 127, 128, 65535, 65536] {
            for (op, make) in [(TEXT, b'*'), (BINARY, 0xfe)] {
                let payload = vec![make; len];
                let (mut h, events) = echo_case(role, &[frame(role, op, &payload)]);
                assert_eq!(events.len(), 1, "{role} len {len}");
                let out = h.output();
                assert_eq!(out.len(), 1);
                assert_eq!(out[0].opcode, op);
                assert_eq!(out[0].payload, payload);
                assert_eq!(
                    out[0].masked,
                    role == tether::Role::Client,
                    "rfc6455 5.1 masking by role"
                );
            }
        }
    }
}

#[test]
fn rfc6455_5_2_autobahn_1_1_8_payload_arriving_in_997_byte_chunks() {
    for role in ROLES {
        let payload = vec![b'*'; 65536];
        let mut h = Harness::new(role);
        h.feed_chunked(&frame(role, TEXT, &payload), 997);
        assert_eq!(h.messages(), vec![Message::text("*".repeat(65536))]);
    }
}

// ---------------------------------------------------------- 2: ping / pong

#[test]
fn rfc6455_5_5_2_autobahn_2_1_to_2_4_ping_answered_with_same_payload() {
    for role in ROLES {
        for payload in [
            &b""[..],
            b"Hello, world!",
            &[0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff],
            &[0xfe; 125],
        ] {
            let mut h = Harness::new(role);
            h.feed(&frame(role, PING, payload));
            assert_eq!(h.events(), vec![Event::Ping(payload.to_vec().into())]);
            let out = h.output();
            assert_eq!(out.len(), 1);
            assert_eq!((out[0].opcode, &out[0].payload[..]), (PONG, payload));
        }
    }
}

#[test]
fn rfc6455_5_5_autobahn_2_5_ping_over_125_bytes_fails_1002() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed(&frame(role, PING, &[0xfe; 126]));
        h.assert_failed_with(1002);
    }
}

#[test]
fn rfc6455_5_5_2_autobahn_2_6_ping_in_1_byte_chunks() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed_chunked(&frame(role, PING, &[0xfe; 125]), 1);
        let out = h.output();
        assert_eq!((out[0].opcode, out[0].payload.len()), (PONG, 125));
    }
}

#[test]
fn rfc6455_5_5_3_autobahn_2_7_and_2_8_unsolicited_pong_is_not_answered() {
    for role in ROLES {
        for payload in [&b""[..], b"unsolicited pong payload"] {
            let mut h = Harness::new(role);
            h.feed(&frame(role, PONG, payload));
            assert_eq!(h.events(), vec![Event::Pong(payload.to_vec().into())]);
            assert!(
                h.output().is_empty(),
                "an unsolicited Pong is never answered"
            );
        }
    }
}

#[test]
fn rfc6455_5_5_3_autobahn_2_9_pong_then_ping_answers_only_the_ping() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed(&frame(role, PONG, b"unsolicited"));
        h.feed(&frame(role, PING, b"ping payload"));
        let out = h.output();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].opcode, &out[0].payload[..]),
            (PONG, &b"ping payload"[..])
        );
    }
}

#[test]
fn rfc6455_5_5_2_autobahn_2_10_and_2_11_each_ping_gets_its_own_pong_in_order() {
    for role in ROLES {
        // 2.10: ten Pings in one read; 2.11: octet by octet; and drained
        // after each Ping or only at the end: ten Pongs, in order, either way
        for chunk in [usize::MAX, 1] {
            for drain_each in [true, false] {
                let mut h = Harness::new(role);
                let mut out = Vec::new();
                for i in 0..10 {
                    h.feed_chunked(
                        &frame(role, PING, format!("payload-{i}").as_bytes()),
                        chunk.min(64),
                    );
                    if drain_each {
                        out.extend(h.output());
                    }
                }
                out.extend(h.output());
                let payloads: Vec<Vec<u8>> = out.iter().map(|f| f.payload.clone()).collect();
                let expected: Vec<Vec<u8>> = (0..10)
                    .map(|i| format!("payload-{i}").into_bytes())
                    .collect();
                assert_eq!(
                    payloads, expected,
                    "{role} chunk {chunk} drain {drain_each}"
                );
                assert!(out.iter().all(|f| f.opcode == PONG));
            }
        }
    }
}

#[test]
fn rfc6455_5_5_3_ping_flood_coalesces_past_the_pending_pong_bound() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let bound = h.conn.config().max_pending_pongs;
        // 10,000 Pings of 125 bytes, never drained: the owed Pongs stay
        // within the bound, and the latest Ping is answered
        for i in 0..10_000u32 {
            let mut payload = vec![b'p'; 125];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            h.feed(&frame(role, PING, &payload));
            assert!(
                h.conn.queued_output() == 0,
                "Pongs wait until output is taken"
            );
        }
        let _ = h.events();
        let out = h.output();
        let wire: usize = out.iter().map(|f| f.payload.len() + 6).sum();
        assert!(
            wire <= bound,
            "{wire} bytes of Pongs over the bound {bound}"
        );
        let last = out.last().unwrap();
        assert_eq!(&last.payload[..4], &9999u32.to_be_bytes());
        // the ones kept are the latest, in order
        let ids: Vec<u32> = out
            .iter()
            .map(|f| u32::from_be_bytes(f.payload[..4].try_into().unwrap()))
            .collect();
        let first = ids[0];
        assert_eq!(ids, (first..=9999).collect::<Vec<_>>());
    }
}

#[test]
fn rfc6455_5_5_3_pongs_to_a_peer_that_does_not_read_stay_bounded() {
    // An adapter looks at the output at every write step, also when the
    // transport takes nothing (the peer does not read): owed Pongs join
    // it only once the ones before are written, so a Ping flood from a
    // peer that never reads holds at most two Pong batches
    for role in ROLES {
        let mut h = Harness::new(role);
        let bound = h.conn.config().max_pending_pongs;
        for i in 0..10_000u32 {
            let mut payload = vec![b'p'; 125];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            h.feed(&frame(role, PING, &payload));
            let queued = h.conn.poll_output().len();
            assert!(
                queued <= bound,
                "{role:?}: {queued} bytes queued for a peer that reads nothing"
            );
        }
        let _ = h.events();
        // the peer reads again: what was queued, then the latest Pongs
        let first = h.output();
        let rest = h.output();
        let ids: Vec<u32> = first
            .iter()
            .chain(&rest)
            .map(|f| u32::from_be_bytes(f.payload[..4].try_into().unwrap()))
            .collect();
        assert_eq!(
            ids.first(),
            Some(&0),
            "{role:?}: the first Ping's Pong went out first"
        );
        assert_eq!(
            ids.last(),
            Some(&9999),
            "{role:?}: the latest Ping is answered"
        );
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{role:?}: in order");
        assert!(h.output().is_empty());
    }
}

// ---------------------------------------------------------- 3: reserved bits

#[test]
fn rfc6455_5_2_autobahn_3_1_to_3_7_reserved_bits_fail_1002() {
    for role in ROLES {
        for (rsv, op, payload) in [
            (1u8, TEXT, &b"Hello, world!"[..]),
            (2, TEXT, b"Hello, world!"),
            (3, TEXT, b"Hello, world!"),
            (4, BINARY, &[0xff; 8]),
            (5, PING, b"Hello, world!"),
            (6, CLOSE, &[0x03, 0xe8]),
            (7, CLOSE, &[0x03, 0xe8]),
        ] {
            let mut h = Harness::new(role);
            h.feed(&raw_frame(role, true, rsv, op, payload));
            h.assert_failed_with(1002);
        }
    }
}

#[test]
fn rfc6455_5_2_autobahn_3_2_message_before_bad_frame_is_kept_and_answered() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let mut wire = frame(role, TEXT, b"Hello, world!");
        wire.extend(raw_frame(role, true, 2, TEXT, b"Hello, world!"));
        wire.extend(frame(role, PING, b"Hello, world!"));
        h.feed(&wire);
        let events = h.events();
        assert_eq!(
            events[0],
            Event::Message(Message::text("Hello, world!")),
            "nothing received before the error is lost"
        );
        assert!(matches!(events[1], Event::Closed(_)));
        assert_eq!(
            events.len(),
            2,
            "the Ping after the bad frame is not processed"
        );
        h.assert_failed_with(1002);
        assert!(h.output().is_empty(), "no Pong after failing");
    }
}

// ---------------------------------------------------------- 4: opcodes

#[test]
fn rfc6455_5_2_autobahn_4_1_and_4_2_reserved_opcodes_fail_1002() {
    for role in ROLES {
        for op in (3u8..=7).chain(11..=15) {
            for payload in [&b""[..], b"reserved opcode payload"] {
                let mut h = Harness::new(role);
                h.feed(&frame(role, op, payload));
                h.assert_failed_with(1002);
            }
        }
    }
}

#[test]
fn rfc6455_5_2_autobahn_4_1_3_text_then_reserved_opcode_then_ping() {
    for role in ROLES {
        let mut wire = frame(role, TEXT, b"Hello, world!");
        wire.extend(frame(role, 5, b""));
        wire.extend(frame(role, PING, b""));
        let mut h = Harness::new(role);
        h.feed(&wire);
        assert_eq!(h.messages(), vec![Message::text("Hello, world!")]);
        h.assert_failed_with(1002);
    }
}

// ---------------------------------------------------------- 5: fragmentation

#[test]
fn rfc6455_5_5_autobahn_5_1_and_5_2_fragmented_control_frames_fail_1002() {
    for role in ROLES {
        for op in [PING, PONG] {
            let mut h = Harness::new(role);
            let mut wire = raw_frame(role, false, 0, op, b"fragment1");
            wire.extend(raw_frame(role, true, 0, CONT, b"fragment2"));
            h.feed(&wire);
            h.assert_failed_with(1002);
        }
    }
}

#[test]
fn rfc6455_5_4_autobahn_5_3_to_5_5_fragmented_text_reassembles_in_any_chunking() {
    for role in ROLES {
        for chunk in [usize::MAX, 1, 3] {
            let mut wire = raw_frame(role, false, 0, TEXT, b"fragment1");
            wire.extend(raw_frame(role, true, 0, CONT, b"fragment2"));
            let mut h = Harness::new(role);
            h.feed_chunked(&wire, chunk.min(wire.len()));
            assert_eq!(h.messages(), vec![Message::text("fragment1fragment2")]);
        }
    }
}

#[test]
fn rfc6455_5_4_autobahn_5_6_to_5_8_control_frame_between_fragments() {
    for role in ROLES {
        for chunk in [usize::MAX, 1] {
            let mut wire = raw_frame(role, false, 0, TEXT, b"fragment1");
            wire.extend(frame(role, PING, b"ping payload"));
            wire.extend(raw_frame(role, true, 0, CONT, b"fragment2"));
            let mut h = Harness::new(role);
            h.feed_chunked(&wire, chunk.min(wire.len()));
            assert_eq!(
                h.events(),
                vec![
                    Event::Ping(b"ping payload".to_vec().into()),
                    Event::Message(Message::text("fragment1fragment2"))
                ]
            );
            let out = h.output();
            assert_eq!(
                (out[0].opcode, &out[0].payload[..]),
                (PONG, &b"ping payload"[..])
            );
        }
    }
}

#[test]
fn rfc6455_5_4_autobahn_5_9_to_5_14_continuation_with_nothing_to_continue_fails_1002() {
    for role in ROLES {
        for (fin, chunk) in [
            (true, usize::MAX),
            (true, 1),
            (false, usize::MAX),
            (false, 1),
        ] {
            let mut wire = raw_frame(role, fin, 0, CONT, b"non-continuation payload");
            wire.extend(frame(role, TEXT, b"Hello, world!"));
            let mut h = Harness::new(role);
            h.feed_chunked(&wire, chunk.min(wire.len()));
            assert!(h.messages().is_empty());
            h.assert_failed_with(1002);
        }
    }
}

#[test]
fn rfc6455_5_4_autobahn_5_15_continuation_after_finished_message_fails_1002() {
    for role in ROLES {
        let mut wire = raw_frame(role, false, 0, TEXT, b"fragment1");
        wire.extend(raw_frame(role, true, 0, CONT, b"fragment2"));
        wire.extend(raw_frame(role, false, 0, CONT, b"fragment3"));
        wire.extend(raw_frame(role, true, 0, CONT, b"fragment4"));
        let mut h = Harness::new(role);
        h.feed(&wire);
        assert_eq!(h.messages(), vec![Message::text("fragment1fragment2")]);
        h.assert_failed_with(1002);
    }
}

#[test]
fn rfc6455_5_4_autobahn_5_16_to_5_18_new_message_while_one_is_open_fails_1002() {
    for role in ROLES {
        for second in [TEXT, BINARY] {
            let mut wire = raw_frame(role, false, 0, TEXT, b"fragment1");
            wire.extend(raw_frame(role, true, 0, second, b"fragment2"));
            let mut h = Harness::new(role);
            h.feed(&wire);
            assert!(h.messages().is_empty());
            h.assert_failed_with(1002);
        }
    }
}

#[test]
fn rfc6455_5_4_autobahn_5_19_and_5_20_pings_between_fragments_over_time() {
    for role in ROLES {
        let mut h = Harness::new(role);
        for (i, fin) in [false, false, false, false, true].into_iter().enumerate() {
            let op = if i == 0 { TEXT } else { CONT };
            h.feed(&raw_frame(
                role,
                fin,
                0,
                op,
                format!("fragment{}", i + 1).as_bytes(),
            ));
            h.feed(&frame(role, PING, format!("pongme {}!", i + 1).as_bytes()));
            h.advance(std::time::Duration::from_secs(1));
            let out = h.output();
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].payload, format!("pongme {}!", i + 1).as_bytes());
        }
        assert_eq!(
            h.messages(),
            vec![Message::text(
                "fragment1fragment2fragment3fragment4fragment5"
            )]
        );
    }
}

// ---------------------------------------------------------- 6: UTF-8

const HELLO_UTF8: &[u8] = "Hello-µ@ßöäüàá-UTF-8!!".as_bytes();

#[test]
fn rfc6455_8_1_autobahn_6_1_to_6_2_valid_utf8_in_any_fragmentation() {
    for role in ROLES {
        // 6.1: empty fragments
        let mut wire = raw_frame(role, false, 0, TEXT, b"");
        wire.extend(raw_frame(role, false, 0, CONT, b""));
        wire.extend(raw_frame(role, true, 0, CONT, b""));
        let mut h = Harness::new(role);
        h.feed(&wire);
        assert_eq!(h.messages(), vec![Message::text("")]);
        // 6.2: one frame, then one fragment per byte (characters split across frames)
        for frag in [HELLO_UTF8.len(), 1, 2, 3] {
            let pieces: Vec<&[u8]> = HELLO_UTF8.chunks(frag).collect();
            let mut wire = Vec::new();
            for (i, p) in pieces.iter().enumerate() {
                wire.extend(raw_frame(
                    role,
                    i + 1 == pieces.len(),
                    0,
                    if i == 0 { TEXT } else { CONT },
                    p,
                ));
            }
            let mut h = Harness::new(role);
            h.feed(&wire);
            assert_eq!(
                h.messages(),
                vec![Message::text(std::str::from_utf8(HELLO_UTF8).unwrap())]
            );
        }
    }
}

#[test]
fn rfc6455_8_1_autobahn_6_3_invalid_utf8_fails_1007() {
    // κόσμε followed by an encoded surrogate (ED A0 80), then "edited"
    let bad: &[u8] = &[
        0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65,
        0x64, 0x69, 0x74, 0x65, 0x64,
    ];
    for role in ROLES {
        for frag in [bad.len(), 1] {
            let pieces: Vec<&[u8]> = bad.chunks(frag).collect();
            let mut wire = Vec::new();
            for (i, p) in pieces.iter().enumerate() {
                wire.extend(raw_frame(
                    role,
                    i + 1 == pieces.len(),
                    0,
                    if i == 0 { TEXT } else { CONT },
                    p,
                ));
            }
            let mut h = Harness::new(role);
            h.feed(&wire);
            assert!(h.messages().is_empty());
            h.assert_failed_with(1007);
        }
    }
}

#[test]
fn rfc6455_8_1_autobahn_6_4_fail_fast_before_the_frame_completes() {
    for role in ROLES {
        // 6.4.1: first fragment valid, second has the invalid byte, third never comes
        let mut h = Harness::new(role);
        h.feed(&raw_frame(
            role,
            false,
            0,
            TEXT,
            &[
                0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5,
            ],
        ));
        assert!(h.error.is_none());
        h.feed(&raw_frame(role, false, 0, CONT, &[0xf4, 0x90, 0x80, 0x80]));
        h.assert_failed_with(1007);

        // 6.4.3: one frame, only part of it has arrived, the invalid prefix is enough
        let mut payload = vec![
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xf4, 0x90,
        ];
        payload.extend(vec![b'x'; 1000]);
        let wire = frame(role, TEXT, &payload);
        let header_len = if role == tether::Role::Server { 8 } else { 4 };
        let mut h = Harness::new(role);
        h.feed(&wire[..header_len + 11]);
        assert!(h.error.is_none(), "valid so far");
        h.feed(&wire[header_len + 11..header_len + 13]);
        h.assert_failed_with(1007);
    }
}

#[test]
fn rfc6455_8_1_autobahn_6_5_to_6_23_utf8_boundaries() {
    let valid: &[&[u8]] = &[
        &[
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5,
        ], // κόσμε
        &[0x00],
        &[0xc2, 0x80],
        &[0xe0, 0xa0, 0x80],
        &[0xf0, 0x90, 0x80, 0x80],
        &[0x7f],
        &[0xdf, 0xbf],
        &[0xef, 0xbf, 0xbf],
        &[0xf4, 0x8f, 0xbf, 0xbf],
        &[0xed, 0x9f, 0xbf],
        &[0xee, 0x80, 0x80],
        &[0xef, 0xbf, 0xbd],
        &[0xef, 0xbf, 0xbe], // U+FFFE is a valid scalar value
    ];
    let invalid: &[&[u8]] = &[
        &[0xf4, 0x90, 0x80, 0x80], // > U+10FFFF
        &[0xf8, 0x88, 0x80, 0x80, 0x80],
        &[0x80],
        &[0xbf],
        &[0xc0, 0x20],
        &[0xe0, 0x80, 0x20],
        &[0xc0],
        &[0xe0, 0x80],
        &[0xfe],
        &[0xff],
        &[0xc0, 0xaf], // overlong '/'
        &[0xe0, 0x80, 0xaf],
        &[0xf0, 0x80, 0x80, 0xaf],
        &[0xed, 0xa0, 0x80], // surrogates
        &[0xed, 0xbf, 0xbf],
        &[0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80],
    ];
    for role in ROLES {
        for case in valid {
            for frag in [case.len(), 1] {
                let mut h = Harness::new(role);
                let pieces: Vec<&[u8]> = case.chunks(frag).collect();
                for (i, p) in pieces.iter().enumerate() {
                    h.feed(&raw_frame(
                        role,
                        i + 1 == pieces.len(),
                        0,
                        if i == 0 { TEXT } else { CONT },
                        p,
                    ));
                }
                assert!(h.error.is_none(), "{case:x?} should be valid");
                assert_eq!(h.messages()[0].as_bytes(), *case);
            }
        }
        for case in invalid {
            for frag in [case.len(), 1] {
                let mut h = Harness::new(role);
                let pieces: Vec<&[u8]> = case.chunks(frag).collect();
                for (i, p) in pieces.iter().enumerate() {
                    h.feed(&raw_frame(
                        role,
                        i + 1 == pieces.len(),
                        0,
                        if i == 0 { TEXT } else { CONT },
                        p,
                    ));
                }
                h.assert_failed_with(1007);
            }
        }
    }
}

// ---------------------------------------------------------- 7: close

#[test]
fn rfc6455_5_5_1_autobahn_7_1_1_message_then_close_is_echoed() {
    for role in ROLES {
        let mut wire = frame(role, TEXT, b"Hello World!");
        wire.extend(frame(role, CLOSE, &close_payload(1000, b"")));
        let mut h = Harness::new(role);
        h.feed(&wire);
        let events = h.events();
        assert_eq!(events[0], Event::Message(Message::text("Hello World!")));
        let info = Harness::closed(&events).unwrap();
        assert_eq!((info.code.as_u16(), info.was_clean), (1000, true));
        assert_eq!(h.conn.state(), State::Closed);
        let out = h.output();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].close_code(), Some(1000));
    }
}

#[test]
fn rfc6455_5_5_1_autobahn_7_1_2_to_7_1_4_nothing_after_close_is_processed() {
    for role in ROLES {
        for after in [
            frame(role, CLOSE, &close_payload(1000, b"")),
            frame(role, PING, b""),
            frame(role, TEXT, b"after close"),
        ] {
            let mut wire = frame(role, CLOSE, &close_payload(1000, b""));
            wire.extend(after);
            let mut h = Harness::new(role);
            h.feed(&wire);
            let events = h.events();
            assert_eq!(events.len(), 1, "{events:?}");
            assert!(matches!(events[0], Event::Closed(_)));
            let out = h.output();
            assert_eq!(out.len(), 1, "only our Close: {out:?}");
            assert_eq!(out[0].opcode, CLOSE);
            assert!(
                h.conn.send(Message::text("x")).is_err(),
                "no data after Close"
            );
        }
    }
}

#[test]
fn rfc6455_5_5_1_autobahn_7_1_5_close_in_the_middle_of_a_fragmented_message() {
    for role in ROLES {
        let mut wire = raw_frame(role, false, 0, TEXT, b"fragment1");
        wire.extend(frame(role, CLOSE, &close_payload(1000, b"")));
        wire.extend(raw_frame(role, true, 0, CONT, b"fragment2"));
        let mut h = Harness::new(role);
        h.feed(&wire);
        assert!(h.messages().is_empty());
        assert_eq!(h.output()[0].close_code(), Some(1000));
    }
}

#[test]
fn rfc6455_5_5_1_autobahn_7_1_6_large_message_ping_close() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let big = vec![b'B'; 256 * 1024];
        let mut wire = frame(role, TEXT, &big);
        wire.extend(frame(role, PING, b"ping"));
        wire.extend(frame(role, CLOSE, &close_payload(1000, b"")));
        h.feed_chunked(&wire, 4096);
        let events = h.events();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0].clone(),
            Event::Message(Message::text(String::from_utf8(big.clone()).unwrap()))
        );
        let out = h.output();
        // Pong, then our Close; an echo of the message after the Close is refused
        assert_eq!(
            out.iter().map(|f| f.opcode).collect::<Vec<_>>(),
            vec![PONG, CLOSE]
        );
        let err = h.conn.send(Message::text("late")).unwrap_err();
        assert!(err.to_string().contains("Closed"), "{err}");
    }
}

#[test]
fn rfc6455_5_5_1_autobahn_7_3_1_empty_close_is_echoed_empty_and_reported_1005() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed(&frame(role, CLOSE, b""));
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!(info.code.as_u16(), 1005);
        assert!(info.was_clean);
        let out = h.output();
        assert_eq!((out[0].opcode, out[0].payload.len()), (CLOSE, 0));
    }
}

#[test]
fn rfc6455_5_5_1_autobahn_7_3_2_one_byte_close_payload_fails_1002() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed(&frame(role, CLOSE, &[0x03]));
        h.assert_failed_with(1002);
    }
}

#[test]
fn rfc6455_5_5_1_autobahn_7_3_3_to_7_3_5_close_with_code_and_reason() {
    for role in ROLES {
        for reason in [&b""[..], b"Hello World!", &[b'*'; 123]] {
            let mut h = Harness::new(role);
            h.feed(&frame(role, CLOSE, &close_payload(1000, reason)));
            let info = Harness::closed(&h.events()).unwrap();
            assert_eq!(info.reason.as_bytes(), reason);
            assert_eq!(h.output()[0].close_code(), Some(1000));
        }
    }
}

#[test]
fn rfc6455_5_5_autobahn_7_3_6_close_reason_of_124_bytes_fails_1002() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed(&frame(role, CLOSE, &close_payload(1000, &[b'*'; 124])));
        h.assert_failed_with(1002);
    }
}

#[test]
fn rfc6455_5_5_1_autobahn_7_5_1_close_reason_not_utf8_fails_1007() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let reason = [
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
            0x65,
        ];
        h.feed(&frame(role, CLOSE, &close_payload(1000, &reason)));
        h.assert_failed_with(1007);
    }
}

#[test]
fn rfc6455_7_4_1_autobahn_7_7_valid_close_codes_are_echoed() {
    for role in ROLES {
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            let mut h = Harness::new(role);
            h.feed(&frame(role, CLOSE, &close_payload(code, b"")));
            let info = Harness::closed(&h.events()).unwrap();
            assert_eq!((info.code.as_u16(), info.was_clean), (code, true));
            assert_eq!(h.output()[0].close_code(), Some(code));
        }
    }
}

#[test]
fn rfc6455_7_4_1_autobahn_7_9_and_7_13_invalid_close_codes_fail_1002() {
    for role in ROLES {
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let mut h = Harness::new(role);
            h.feed(&frame(role, CLOSE, &close_payload(code, b"")));
            h.assert_failed_with(1002);
        }
    }
}

// ---------------------------------------------------------- 10: misc

#[test]
fn rfc6455_5_4_autobahn_10_1_1_64k_message_in_many_fragments() {
    for role in ROLES {
        let payload = vec![b'*'; 65536];
        let mut wire = Vec::new();
        let pieces: Vec<&[u8]> = payload.chunks(1300).collect();
        for (i, p) in pieces.iter().enumerate() {
            wire.extend(raw_frame(
                role,
                i + 1 == pieces.len(),
                0,
                if i == 0 { TEXT } else { CONT },
                p,
            ));
        }
        let mut h = Harness::new(role);
        h.feed_chunked(&wire, 1000);
        let events = h.echo();
        assert_eq!(events.len(), 1);
        assert_eq!(h.output()[0].payload.len(), 65536);
    }
}

// ------------------------------------------------ role rules and limits

#[test]
fn rfc6455_5_1_server_fails_on_unmasked_and_client_on_masked_frames() {
    let mut h = Harness::new(tether::Role::Server);
    h.feed(&frame(tether::Role::Client, TEXT, b"unmasked"));
    h.assert_failed_with(1002);
    let mut h = Harness::new(tether::Role::Client);
    h.feed(&frame(tether::Role::Server, TEXT, b"masked"));
    h.assert_failed_with(1002);
}

#[test]
fn rfc6455_7_4_1_message_over_limit_fails_1009_from_the_header() {
    for role in ROLES {
        let config = tether::Config {
            max_message_size: 1000,
            ..Default::default()
        };
        // one frame over the message limit: fails on the header alone
        let mut h = Harness::with_config(role, config.clone());
        let wire = frame(role, BINARY, &[0; 1001]);
        h.feed(&wire[..12]);
        h.assert_failed_with(1009);
        // fragments that add up to more than the limit
        let mut h = Harness::with_config(role, config.clone());
        h.feed(&raw_frame(role, false, 0, BINARY, &[0; 600]));
        h.feed(&raw_frame(role, true, 0, CONT, &[0; 600])[..8]);
        h.assert_failed_with(1009);
        // the frame limit
        let mut h = Harness::with_config(
            role,
            tether::Config {
                max_frame_size: 100,
                ..Default::default()
            },
        );
        h.feed(&frame(role, BINARY, &[0; 101])[..8]);
        h.assert_failed_with(1009);
    }
}

#[test]
fn rfc6455_5_4_too_many_fragments_fails_1009() {
    for role in ROLES {
        let mut h = Harness::with_config(
            role,
            tether::Config {
                max_fragments: 10,
                ..Default::default()
            },
        );
        h.feed(&raw_frame(role, false, 0, BINARY, b"x"));
        for _ in 0..9 {
            h.feed(&raw_frame(role, false, 0, CONT, b"x"));
        }
        assert!(h.error.is_none());
        h.feed(&raw_frame(role, false, 0, CONT, b"x"));
        h.assert_failed_with(1009);
    }
}
