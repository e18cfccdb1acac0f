//! The closing handshake from our side, timeouts, transport loss and the
//! state errors (RFC 6455 sections 5.5.1, 7.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tether::{CloseCode, Config, Error, Event, Initiator, InvalidInput, Message, State};

#[test]
fn rfc6455_7_1_2_we_close_then_peer_answers_clean() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.close(h.now, CloseCode::new(4000), "bye").unwrap();
        assert_eq!(h.conn.state(), State::CloseSent);
        let out = h.output();
        assert_eq!(out[0].close_code(), Some(4000));
        assert_eq!(&out[0].payload[2..], b"bye");
        // data still arrives until the peer's Close
        h.feed(&frame(role, TEXT, b"late data"));
        h.feed(&frame(role, CLOSE, &close_payload(4000, b"")));
        let events = h.events();
        assert_eq!(events[0], Event::Message(Message::text("late data")));
        let info = Harness::closed(&events).unwrap();
        assert_eq!(
            (info.code.as_u16(), info.was_clean, info.initiator),
            (4000, true, Initiator::Application)
        );
        assert_eq!(h.conn.state(), State::Closed);
        assert!(
            h.output().is_empty(),
            "the peer's Close is not echoed back after ours"
        );
    }
}

#[test]
fn rfc6455_5_5_1_no_data_frames_after_our_close() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.close(h.now, CloseCode::NORMAL, "").unwrap();
        let err = h.conn.send(Message::text("x")).unwrap_err();
        match &err {
            Error::InvalidState { state, valid, .. } => {
                assert_eq!(*state, State::CloseSent);
                assert_eq!(*valid, &[State::Open, State::CloseReceived]);
            }
            other => panic!("{other}"),
        }
        assert_eq!(
            err.to_string(),
            "cannot send: the connection is CloseSent; allowed only when Open, CloseReceived"
        );
        // a Ping arriving now is answered with a Pong, a control frame
        // (5.5.2), and no data frame follows the Close
        h.feed(&frame(role, PING, b"p"));
        let ops: Vec<u8> = h.output().iter().map(|f| f.opcode).collect();
        assert_eq!(ops, vec![CLOSE, PONG]);
    }
}

#[test]
fn rfc6455_7_1_2_close_timeout_aborts_with_1006() {
    for role in ROLES {
        let mut h = Harness::with_config(
            role,
            Config {
                close_timeout: Duration::from_secs(3),
                ..Config::default()
            },
        );
        h.conn.close(h.now, CloseCode::NORMAL, "").unwrap();
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(h.conn.state(), State::Aborted);
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!((info.code.as_u16(), info.was_clean), (1006, false));
        assert!(info.reason.contains("close timeout"), "{}", info.reason);
    }
}

#[test]
fn rfc6455_7_1_5_transport_end_without_close_is_1006_not_clean() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed(&frame(role, TEXT, b"before the drop"));
        h.conn.receive_eof();
        let events = h.events();
        assert_eq!(events[0], Event::Message(Message::text("before the drop")));
        let info = Harness::closed(&events).unwrap();
        assert_eq!(
            (info.code.as_u16(), info.was_clean, info.initiator),
            (1006, false, Initiator::Remote)
        );
        assert!(
            info.reason
                .contains("without completing the close handshake")
        );
        assert_eq!(h.conn.state(), State::Aborted);
        // the .NET story: later sends say the state and why
        let err = h.conn.send(Message::text("x")).unwrap_err().to_string();
        assert!(err.contains("Aborted"), "{err}");
        assert!(err.contains("1006"), "{err}");
        assert!(err.contains("Open, CloseReceived"), "{err}");
    }
}

#[test]
fn rfc6455_7_4_2_reserved_codes_cannot_be_sent() {
    for role in ROLES {
        let mut h = Harness::new(role);
        for code in [1005u16, 1006, 1015, 999, 2000, 5000] {
            assert_eq!(
                h.conn.close(h.now, CloseCode::new(code), ""),
                Err(Error::InvalidInput(InvalidInput::CloseCode(
                    CloseCode::new(code)
                )))
            );
        }
        assert_eq!(
            h.conn.close(h.now, CloseCode::NORMAL, &"x".repeat(124)),
            Err(Error::InvalidInput(InvalidInput::CloseReasonTooLong(124)))
        );
        assert_eq!(h.conn.state(), State::Open);
        assert!(h.output().is_empty());
    }
}

#[test]
fn rfc6455_5_5_control_payload_over_125_cannot_be_sent() {
    let mut h = Harness::new(tether::Role::Client);
    assert!(h.conn.ping(vec![0u8; 126].into()).is_err());
    assert!(h.conn.pong(vec![0u8; 126].into()).is_err());
    h.conn.ping(vec![0u8; 125].into()).unwrap();
    assert_eq!(h.output()[0].payload.len(), 125);
}

#[test]
fn abort_ends_at_once() {
    let mut h = Harness::new(tether::Role::Client);
    h.conn.abort("application gave up");
    assert_eq!(h.conn.state(), State::Aborted);
    let info = Harness::closed(&h.events()).unwrap();
    assert_eq!(
        (info.code.as_u16(), info.reason.as_str()),
        (1006, "application gave up")
    );
    assert!(h.output().is_empty());
}

#[test]
fn auto_pong_off_leaves_the_answer_to_the_application() {
    for role in ROLES {
        let mut h = Harness::with_config(
            role,
            Config {
                auto_pong: false,
                ..Config::default()
            },
        );
        h.feed(&frame(role, PING, b"answer me"));
        assert_eq!(h.events(), vec![Event::Ping(b"answer me".to_vec().into())]);
        assert!(h.output().is_empty());
        h.conn.pong(b"answer me".to_vec().into()).unwrap();
        assert_eq!(h.output()[0].payload, b"answer me");
    }
}

/// RFC 6455 section 5.5.1: a Close may come in the middle of a fragmented
/// message (a control frame may be injected between fragments, 5.4), and
/// no data frame follows it: the message stays unfinished, and its next
/// fragment is refused, as is any other data.
#[test]
fn rfc6455_5_5_1_a_close_in_the_middle_of_a_fragmented_send_ends_it() {
    use tether::MessageKind;
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn
            .send_fragment(MessageKind::Text, "first half".into(), false)
            .unwrap();
        h.conn.close(h.now, CloseCode::GOING_AWAY, "").unwrap();
        assert!(matches!(
            h.conn
                .send_fragment(MessageKind::Text, " second half".into(), true),
            Err(Error::InvalidState {
                state: State::CloseSent,
                ..
            })
        ));
        assert!(h.conn.send(Message::text("other")).is_err());
        let out = h.output();
        let shape: Vec<(u8, bool)> = out.iter().map(|f| (f.opcode, f.fin)).collect();
        assert_eq!(shape, vec![(TEXT, false), (CLOSE, true)], "{role:?}");
        assert_eq!(out[1].close_code(), Some(1001));
    }
}

/// RFC 6455 section 5.3: a client masks every frame with a fresh key, one
/// its peer cannot predict (here: 256 frames, data and control, 256
/// different keys; the chance that a random source repeats one is about
/// one in 130,000).
#[test]
fn rfc6455_5_3_each_client_frame_has_a_fresh_masking_key() {
    let mut h = Harness::new(tether::Role::Client);
    for i in 0..256u32 {
        if i % 4 == 0 {
            h.conn.ping(i.to_be_bytes().to_vec().into()).unwrap();
        } else {
            h.conn
                .send(Message::binary(i.to_be_bytes().to_vec()))
                .unwrap();
        }
    }
    let out = h.output();
    assert_eq!(out.len(), 256);
    let keys: std::collections::HashSet<[u8; 4]> =
        out.iter().map(|f| f.key.expect("masked")).collect();
    assert_eq!(keys.len(), 256, "a masking key was used twice");
}

#[test]
fn rfc6455_5_4_fragmented_send_with_interleaved_ping() {
    use tether::MessageKind;
    for role in ROLES {
        let mut h = Harness::new(role);
        let euro = "€".as_bytes();
        h.conn
            .send_fragment(MessageKind::Text, euro[..1].to_vec().into(), false)
            .unwrap();
        assert!(matches!(
            h.conn.send(Message::text("no")),
            Err(Error::InvalidInput(InvalidInput::FragmentedSendOpen))
        ));
        h.conn.ping("mid".into()).unwrap();
        assert!(
            h.conn
                .send_fragment(MessageKind::Binary, "x".into(), true)
                .is_err()
        );
        assert_eq!(
            h.conn
                .send_fragment(MessageKind::Text, euro[1..2].to_vec().into(), true),
            Err(Error::InvalidInput(InvalidInput::InvalidUtf8)),
            "the message would end inside a character"
        );
        h.conn
            .send_fragment(MessageKind::Text, euro[1..].to_vec().into(), true)
            .unwrap();
        let out = h.output();
        let shape: Vec<(u8, bool)> = out.iter().map(|f| (f.opcode, f.fin)).collect();
        assert_eq!(shape, vec![(TEXT, false), (PING, true), (CONT, true)]);
        h.conn.send(Message::text("next")).unwrap();
    }
}

#[test]
fn output_full_refuses_send_until_written() {
    let mut h = Harness::with_config(
        tether::Role::Server,
        Config {
            max_queued_output: 1000,
            ..Config::default()
        },
    );
    h.conn.send(Message::binary(vec![0u8; 5000])).unwrap();
    assert!(!h.conn.can_send());
    assert!(matches!(
        h.conn.send(Message::text("x")),
        Err(Error::OutputFull { limit: 1000, .. })
    ));
    h.output();
    assert!(h.conn.can_send());
    h.conn.send(Message::text("x")).unwrap();
}

fn deferred(role: tether::Role) -> Harness {
    Harness::with_config(
        role,
        Config {
            auto_close_reply: false,
            close_timeout: Duration::from_secs(5),
            ..Config::default()
        },
    )
}

#[test]
fn rfc6455_5_5_1_deferred_reply_lets_the_application_answer_messages_before_the_close() {
    for role in ROLES {
        let mut h = deferred(role);
        let mut wire = frame(role, TEXT, b"one");
        wire.extend(frame(role, TEXT, b"two"));
        wire.extend(frame(role, CLOSE, &close_payload(1000, b"done")));
        wire.extend(frame(role, TEXT, b"after the close"));
        h.feed(&wire);
        assert_eq!(h.conn.state(), State::CloseReceived);
        assert_eq!(h.conn.peer_close().map(|c| c.code), Some(CloseCode::NORMAL));
        // the messages before the Close, and no final event yet
        assert_eq!(
            h.events(),
            vec![
                Event::Message(Message::text("one")),
                Event::Message(Message::text("two"))
            ]
        );
        assert!(h.output().is_empty(), "no reply yet");
        // the application answers them, then completes the handshake
        h.conn.send(Message::text("echo one")).unwrap();
        h.conn.send(Message::text("echo two")).unwrap();
        h.conn.reply_close(h.now).unwrap();
        let out = h.output();
        let ops: Vec<u8> = out.iter().map(|f| f.opcode).collect();
        assert_eq!(ops, vec![TEXT, TEXT, CLOSE]);
        assert_eq!(out[2].close_code(), Some(1000));
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!(
            (
                info.code.as_u16(),
                info.reason.as_str(),
                info.was_clean,
                info.initiator
            ),
            (1000, "done", true, Initiator::Remote)
        );
        assert_eq!(h.conn.state(), State::Closed);
        assert!(h.conn.reply_close(h.now).is_err());
    }
}

#[test]
fn rfc6455_5_5_1_deferred_reply_is_sent_by_itself_after_the_close_timeout() {
    for role in ROLES {
        let mut h = deferred(role);
        h.feed(&frame(role, CLOSE, &close_payload(4000, b"")));
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(h.output()[0].close_code(), Some(4000));
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!((info.code.as_u16(), info.was_clean), (4000, true));
    }
}

#[test]
fn rfc6455_7_1_2_close_from_close_received_sends_our_code_and_reports_the_peers() {
    for role in ROLES {
        let mut h = deferred(role);
        h.feed(&frame(role, CLOSE, b""));
        h.conn.close(h.now, CloseCode::new(4001), "ours").unwrap();
        assert_eq!(h.output()[0].close_code(), Some(4001));
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!(
            (info.code.as_u16(), info.was_clean, info.initiator),
            (1005, true, Initiator::Remote)
        );
        // EOF after the peer's Close, before our answer, is still a clean end
        let mut h = deferred(role);
        h.feed(&frame(role, CLOSE, &close_payload(1001, b"")));
        h.conn.receive_eof();
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!((info.code.as_u16(), info.was_clean), (1001, true));
    }
}

#[test]
fn abort_drops_queued_output() {
    let mut h = Harness::new(tether::Role::Server);
    h.conn.send(Message::binary(vec![0u8; 10_000])).unwrap();
    h.conn.abort("peer stopped reading");
    assert!(!h.conn.has_output(), "nothing more is sent after an abort");
}

#[test]
fn rfc6455_7_4_1_an_application_that_goes_away_leaves_with_1001() {
    for role in ROLES {
        let mut h = Harness::new(role);
        assert!(h.conn.go_away(h.now));
        assert_eq!(h.conn.state(), State::CloseSent);
        assert_eq!(h.output()[0].close_code(), Some(1001));
        // once closing or ended, going away changes nothing
        assert!(!h.conn.go_away(h.now));
        assert!(h.output().is_empty());
        h.conn.abort("gone");
        assert!(!h.conn.go_away(h.now));
        assert_eq!(h.conn.state(), State::Aborted);
    }
}

#[test]
fn rfc6455_5_5_1_messages_past_our_close_are_kept_up_to_max_message_size() {
    let h = Harness::with_config(
        tether::Role::Server,
        Config {
            max_message_size: 1000,
            ..Config::default()
        },
    );
    assert!(h.conn.keeps_after_close(0, 1000));
    assert!(h.conn.keeps_after_close(600, 400));
    assert!(!h.conn.keeps_after_close(600, 401));
    assert!(!h.conn.keeps_after_close(usize::MAX, 1));
}

/// RFC 6455 5.5.2: a Ping is answered unless a Close was received; a Close
/// we sent does not exempt us (and a Pong is no data frame, 5.5.1), so a
/// peer that pings while it finishes before answering our Close gets its
/// Pong. It got none: Pings were answered only in Open and CloseReceived.
#[test]
fn rfc6455_5_5_2_a_ping_after_our_close_is_answered() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.close(h.now, CloseCode::NORMAL, "").unwrap();
        let _ = h.conn.take_output();
        h.feed(&frame(role, PING, b"still there?"));
        let out = h.output();
        assert!(
            out.iter()
                .any(|f| f.opcode == PONG && &f.payload[..] == b"still there?"),
            "{role:?}: {out:?}"
        );
        assert_eq!(h.conn.state(), State::CloseSent, "{role:?}");
    }
}

/// After the application's Close, a peer that ends the transport without
/// answering leaves an unclean end that the application still started
/// (`Initiator::Application`, as when the close timeout passes), so a
/// reconnect policy does not take it for the peer's doing. It said
/// `Remote`.
#[test]
fn rfc6455_7_1_5_an_unanswered_close_ended_by_the_peer_is_still_ours() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.close(h.now, CloseCode::NORMAL, "bye").unwrap();
        let _ = h.conn.take_output();
        h.conn.receive_eof();
        let info = Harness::closed(&h.events()).expect("the end");
        assert_eq!(
            (info.code, info.was_clean, info.initiator),
            (CloseCode::ABNORMAL, false, Initiator::Application),
            "{role:?}"
        );
    }
}

/// Answering the peer's Close 4 s after it came, with `close(now, ..)` or
/// the adapters' usual `reply_close(now)` (once the application has read
/// up to it), arms the waits that follow from that `now`: a client's wait
/// for the server to end the transport (RFC 6455 section 7.1.1,
/// `Config::fin_wait`, 2 s) and the time our Close gets to be written
/// (`close_timeout`). They counted from when the peer's Close arrived, so
/// the FIN wait had already passed and the client closed TCP first.
#[test]
fn rfc6455_7_1_1_an_answer_made_later_waits_its_whole_fin_wait() {
    type Answer = fn(&mut tether::Connection, std::time::Instant);
    let answers: [(&str, Answer); 2] = [
        ("close", |c, now| {
            c.close(now, CloseCode::NORMAL, "").unwrap()
        }),
        ("reply_close", |c, now| c.reply_close(now).unwrap()),
    ];
    for (how, answer) in answers {
        let mut h = deferred(tether::Role::Client);
        let t0 = h.now;
        h.feed(&frame(
            tether::Role::Client,
            CLOSE,
            &close_payload(1000, b""),
        ));
        h.now = t0 + Duration::from_secs(4);
        answer(&mut h.conn, h.now);
        let _ = h.conn.take_output();
        h.advance(Duration::from_millis(1));
        assert!(h.conn.close_expected(), "{how}: the FIN wait had passed");
        assert!(!h.conn.should_close_transport(), "{how}");
        let next = h.conn.poll_timeout().unwrap();
        assert!(
            next >= t0 + Duration::from_secs(6),
            "{how}: {:?}",
            next - t0
        );
    }
}
