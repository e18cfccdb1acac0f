//! Failing the connection in order (RFC 6455 section 7.1.7, Autobahn 3.2,
//! 3.3, 4.1.3-4.1.5, 4.2.3-4.2.4, 5.15): a protocol violation found after
//! valid messages is reported after them. The events before it are
//! delivered, the application answers them, and only then does the failing
//! Close go out; nothing after the violation is processed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tether::{Config, Event, Message, Role, State};

/// The Autobahn shapes: valid messages, then a violation, then frames
/// that must not be processed.
fn shapes(role: Role) -> Vec<(&'static str, Vec<u8>, Vec<Message>)> {
    let hello = || frame(role, TEXT, b"Hello, world!");
    let mut out = Vec::new();
    // 3.2 / 3.3: text, text with RSV2, Ping
    let mut w = hello();
    w.extend(raw_frame(role, true, 2, TEXT, b"Hello, world!"));
    w.extend(frame(role, PING, b"Hello, world!"));
    out.push(("3.2", w, vec![Message::text("Hello, world!")]));
    // 4.1.3 / 4.1.4: text, reserved non-control opcode 5 (with payload), Ping
    for payload in [&b""[..], b"reserved opcode payload"] {
        let mut w = hello();
        w.extend(frame(role, 5, payload));
        w.extend(frame(role, PING, b""));
        out.push(("4.1.3", w, vec![Message::text("Hello, world!")]));
    }
    // 4.2.3 / 4.2.4: text, reserved control opcode 13, Ping
    let mut w = hello();
    w.extend(frame(role, 13, b"reserved opcode payload"));
    w.extend(frame(role, PING, b""));
    out.push(("4.2.3", w, vec![Message::text("Hello, world!")]));
    // 5.15: fragments 1+2 make a message; 3 is a continuation with none
    // open; 4 never counts
    let mut w = raw_frame(role, false, 0, TEXT, b"fragment1");
    w.extend(raw_frame(role, true, 0, CONT, b"fragment2"));
    w.extend(raw_frame(role, false, 0, CONT, b"fragment3"));
    w.extend(raw_frame(role, true, 0, TEXT, b"fragment4"));
    out.push(("5.15", w, vec![Message::text("fragment1fragment2")]));
    out
}

/// What the peer sees: the echoes, then our Close with `code`, nothing else.
fn assert_echoes_then_close(h: &mut Harness, echoes: &[Message], code: u16, what: &str) {
    let out = h.output();
    assert_eq!(out.len(), echoes.len() + 1, "{what}: {out:?}");
    for (frame, m) in out.iter().zip(echoes) {
        assert_eq!(&frame.payload[..], m.as_bytes(), "{what}: echo first");
    }
    assert_eq!(out.last().unwrap().close_code(), Some(code), "{what}");
    assert!(
        out.iter().all(|f| f.opcode != PONG),
        "{what}: no Pong after the violation"
    );
}

#[test]
fn rfc6455_7_1_7_messages_before_a_violation_are_answered_before_the_close() {
    for role in ROLES {
        for chunk in [usize::MAX, 1] {
            for (case, wire, messages) in shapes(role) {
                let what = format!("{role} case {case} chunk {chunk}");
                let mut h = Harness::new(role);
                h.feed_chunked(&wire, chunk.min(wire.len()));
                assert!(h.error.is_some(), "{what}: receive reports the violation");
                let events = h.echo();
                let got: Vec<Message> = events
                    .iter()
                    .filter_map(|e| match e {
                        Event::Message(m) => Some(m.clone()),
                        _ => None,
                    })
                    .collect();
                assert_eq!(got, messages, "{what}");
                assert!(matches!(events.last(), Some(Event::Closed(_))), "{what}");
                assert_eq!(h.conn.state(), State::Closed);
                let info = h.conn.close_info().unwrap();
                assert_eq!(info.code.as_u16(), 1002, "{what}");
                assert!(!info.was_clean);
                assert_echoes_then_close(&mut h, &messages, 1002, &what);
            }
        }
    }
}

#[test]
fn rfc6455_7_1_7_violation_with_nothing_waiting_fails_at_once() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed(&frame(role, TEXT, b"first"));
        assert_eq!(h.echo().len(), 1);
        h.feed(&raw_frame(role, true, 4, TEXT, b"bad"));
        // no event was waiting: the Close is queued by `receive` itself
        assert_eq!(h.conn.state(), State::Closed);
        h.assert_failed_with(1002);
    }
}

#[test]
fn rfc6455_7_1_7_deferred_failure_keeps_sending_open_and_stops_input() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let mut wire = frame(role, BINARY, b"one");
        wire.extend(frame(role, 4, b""));
        h.feed(&wire);
        assert_eq!(h.conn.state(), State::Open, "sending stays allowed");
        assert!(h.conn.deferred_failure().is_some());
        assert!(h.conn.awaits_close_reply());
        // later input is not processed
        h.feed(&frame(role, TEXT, b"after"));
        h.feed(&frame(role, PING, b"after"));
        assert_eq!(
            h.conn.poll_event(),
            Some(Event::Message(Message::binary(&b"one"[..])))
        );
        h.conn.send(Message::text("answer")).unwrap();
        assert!(matches!(h.conn.poll_event(), Some(Event::Closed(_))));
        assert_eq!(h.conn.poll_event(), None);
        let out = h.output();
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].payload, b"answer");
        assert_eq!(out[1].close_code(), Some(1002));
    }
}

#[test]
fn rfc6455_7_1_7_without_auto_reply_the_failure_waits_for_reply_close() {
    // adapters keep their own queue of events: they call `reply_close`
    // once the application has read what came before
    for role in ROLES {
        let config = Config {
            auto_close_reply: false,
            ..Config::default()
        };
        let mut h = Harness::with_config(role, config);
        let mut wire = frame(role, TEXT, b"hi");
        wire.extend(raw_frame(role, true, 1, TEXT, b"bad"));
        h.feed(&wire);
        let events = h.events();
        assert_eq!(events, vec![Event::Message(Message::text("hi"))]);
        assert!(h.conn.awaits_close_reply());
        assert_eq!(h.conn.state(), State::Open);
        assert!(
            h.output().is_empty(),
            "no Close before the application answered"
        );
        h.conn.send(Message::text("hi")).unwrap();
        h.conn.reply_close(h.now).unwrap();
        assert!(!h.conn.awaits_close_reply());
        assert_eq!(h.conn.state(), State::Closed);
        assert_echoes_then_close(&mut h, &[Message::text("hi")], 1002, "reply_close");
        assert!(matches!(h.events().as_slice(), [Event::Closed(c)] if c.code.as_u16() == 1002));
    }
}

#[test]
fn rfc6455_7_1_7_without_auto_reply_a_violation_alone_also_waits() {
    for role in ROLES {
        let config = Config {
            auto_close_reply: false,
            ..Config::default()
        };
        let mut h = Harness::with_config(role, config);
        h.feed(&frame(role, 3, b""));
        assert!(h.conn.awaits_close_reply());
        h.conn.reply_close(h.now).unwrap();
        h.assert_failed_with(1002);
    }
}

#[test]
fn rfc6455_7_1_7_deferred_failure_bounded_by_the_close_timeout() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let mut wire = frame(role, TEXT, b"never taken");
        wire.extend(frame(role, 6, b""));
        h.feed(&wire);
        let timeout = h.conn.config().close_timeout;
        let at = h.conn.poll_timeout().expect("the wait is bounded");
        assert_eq!(at - h.now, timeout);
        h.advance(timeout - Duration::from_millis(1));
        assert_eq!(h.conn.state(), State::Open);
        h.advance(Duration::from_millis(1));
        h.assert_failed_with(1002);
        let events = h.events();
        assert_eq!(events[0], Event::Message(Message::text("never taken")));
        assert!(matches!(events[1], Event::Closed(_)));
    }
}

#[test]
fn rfc6455_7_1_7_peer_leaving_during_the_wait_ends_with_the_violation() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let mut wire = frame(role, TEXT, b"m");
        wire.extend(frame(role, 7, b""));
        h.feed(&wire);
        h.conn.receive_eof();
        h.assert_failed_with(1002);
    }
}

#[test]
fn rfc6455_7_1_7_application_close_during_the_wait_sends_the_violation_code() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let mut wire = frame(role, TEXT, b"m");
        wire.extend(raw_frame(role, true, 0, CONT, b"stray"));
        h.feed(&wire);
        h.conn
            .close(h.now, tether::CloseCode::NORMAL, "bye")
            .unwrap();
        h.assert_failed_with(1002);
    }
}

/// What `receive` returns says what happened: a violation behind a message
/// the application has not taken is deferred (the state stays `Open`,
/// nothing is queued, `deferred_failure` names it), so the error does not
/// claim the connection closed; one with nothing waiting closes at once.
#[test]
fn rfc6455_7_1_7_the_error_says_whether_the_failure_waits() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let mut wire = frame(role, TEXT, b"Hello");
        wire.extend(frame(role, 3, b""));
        let err = h.conn.receive(h.now, &wire).unwrap_err();
        assert_eq!(h.conn.state(), State::Open);
        assert!(h.conn.deferred_failure().is_some());
        assert_eq!(h.conn.queued_output(), 0);
        let text = err.to_string();
        assert!(!text.contains("closed"), "{role:?}: {text}");
        assert!(text.contains("1002"), "{role:?}: {text}");

        let mut h = Harness::new(role);
        let err = h.conn.receive(h.now, &frame(role, 3, b"")).unwrap_err();
        assert_eq!(h.conn.state(), State::Closed, "{role:?}");
        assert!(err.to_string().contains("1002"), "{role:?}: {err}");
    }
}
