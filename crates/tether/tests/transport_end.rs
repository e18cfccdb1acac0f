//! When the transport closes, and who closes it (RFC 6455 section 7.1.1):
//! the core decides, in virtual time, through
//! `Connection::should_close_transport`, `close_expected` and the drain
//! and FIN-wait timers; an adapter only follows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io;
use std::time::Duration;

use common::*;
use tether::{CloseCode, Config, Role, State, TransportFailure};

/// Both sides exchange Closes: `role` starts, the peer (bytes made by
/// hand) answers.
fn clean_close(role: Role) -> Harness {
    let mut h = Harness::new(role);
    h.conn.close(h.now, CloseCode::NORMAL, "bye").unwrap();
    assert!(!h.conn.should_close_transport(), "still closing");
    h.feed(&frame(role, CLOSE, &close_payload(1000, b"")));
    assert_eq!(h.conn.state(), State::Closed);
    h
}

#[test]
fn rfc6455_7_1_1_open_connection_keeps_its_transport() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed(&frame(role, TEXT, b"hi"));
        let _ = h.events();
        assert!(!h.conn.should_close_transport());
        assert!(!h.conn.close_expected());
    }
}

#[test]
fn rfc6455_7_1_1_server_closes_the_transport_once_its_last_bytes_are_out() {
    let mut h = clean_close(Role::Server);
    assert!(
        !h.conn.should_close_transport(),
        "our Close is not written yet"
    );
    assert!(
        !h.conn.close_expected(),
        "a server does not wait for the client"
    );
    let _ = h.output();
    assert!(h.conn.should_close_transport());
}

#[test]
fn rfc6455_7_1_1_client_waits_for_the_server_to_close_first() {
    let mut h = clean_close(Role::Client);
    let _ = h.output();
    assert!(h.conn.close_expected(), "the server should close TCP first");
    assert!(!h.conn.should_close_transport());
    h.advance(Duration::from_millis(500));
    assert!(!h.conn.should_close_transport());
    h.conn.receive_eof();
    assert!(!h.conn.close_expected());
    assert!(h.conn.should_close_transport());
    assert_eq!(h.conn.state(), State::Closed, "the clean end stays clean");
    assert!(h.conn.close_info().unwrap().was_clean);
}

#[test]
fn rfc6455_7_1_1_client_closes_itself_after_fin_wait() {
    let mut h = clean_close(Role::Client);
    let _ = h.output();
    let fin_wait = h.conn.config().fin_wait;
    assert_eq!(h.jump_to_timeout(), Some(fin_wait));
    assert!(!h.conn.close_expected());
    assert!(h.conn.should_close_transport());
    // only the drain deadline is left, which changes nothing here
    let drain = h.conn.poll_timeout().unwrap() - h.now;
    assert_eq!(drain, h.conn.config().close_timeout - fin_wait);
}

/// A server that failed the connection has not had the client's Close:
/// the client may still be sending. It shuts down writing once its Close
/// is out, then reads on for the client's end (what comes is dropped), up
/// to `fin_wait`: closing with the client's bytes unread resets the
/// connection, and the client may lose our Close with the reset.
#[test]
fn rfc6455_7_1_7_a_server_that_failed_lingers_for_the_clients_end() {
    let mut h = Harness::new(Role::Server);
    h.feed(&frame(Role::Server, 3, b""));
    assert_eq!(h.conn.state(), State::Closed);
    assert!(!h.conn.should_close_transport(), "our Close is not out yet");
    let _ = h.output();
    assert!(h.conn.should_close_transport(), "shut down writing now");
    assert!(h.conn.close_expected(), "then read on for the client's end");
    // what the client still sends is dropped, nothing more is queued
    h.conn
        .receive(h.now, &frame(Role::Server, TEXT, b"late"))
        .unwrap();
    assert!(
        h.events()
            .iter()
            .all(|e| !matches!(e, tether::Event::Message(_)))
    );
    assert!(!h.conn.has_output());
    // what is dropped still counts in the adapter's turn: a client that
    // keeps sending does not hold a drive
    h.conn.new_turn();
    let turn = h.conn.config().turn_bytes;
    h.conn.receive(h.now, &vec![0u8; turn]).unwrap();
    assert!(h.conn.turn_spent());
    h.conn.receive_eof();
    assert!(!h.conn.close_expected(), "the client's end came");
    assert!(h.conn.should_close_transport());
    assert_eq!(h.conn.state(), State::Closed);
    assert_eq!(h.conn.close_info().unwrap().code, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn rfc6455_7_1_7_a_failed_servers_linger_ends_after_fin_wait() {
    let mut h = Harness::new(Role::Server);
    h.feed(&frame(Role::Server, 3, b""));
    let _ = h.output();
    assert!(h.conn.close_expected());
    assert_eq!(h.jump_to_timeout(), Some(h.conn.config().fin_wait));
    assert!(!h.conn.close_expected());
    assert!(h.conn.should_close_transport());
}

/// After a clean closing handshake the client has sent its Close and
/// sends nothing more: a server closes at once, with nothing to wait for.
/// After an abort or the peer's vanishing there is no one to wait for.
#[test]
fn rfc6455_7_1_1_a_server_lingers_only_after_a_failure() {
    let mut h = clean_close(Role::Server);
    let _ = h.output();
    assert!(!h.conn.close_expected());
    let mut h = Harness::new(Role::Server);
    h.conn.abort("gone");
    assert!(!h.conn.close_expected());
    let mut h = Harness::new(Role::Server);
    h.feed(&frame(Role::Server, TEXT, b"hi"));
    h.feed(&frame(Role::Server, 3, b""));
    h.conn.receive_eof();
    let _ = h.events();
    let _ = h.output();
    assert!(!h.conn.close_expected(), "the client's end already came");
}

#[test]
fn fin_wait_comes_from_the_config() {
    let config = Config {
        fin_wait: Duration::from_millis(250),
        ..Config::default()
    };
    let mut h = Harness::with_config(Role::Client, config);
    h.conn.close(h.now, CloseCode::NORMAL, "").unwrap();
    h.feed(&frame(Role::Client, CLOSE, &close_payload(1000, b"")));
    let _ = h.output();
    assert_eq!(h.jump_to_timeout(), Some(Duration::from_millis(250)));
    assert!(h.conn.should_close_transport());
}

#[test]
fn last_bytes_the_peer_never_takes_are_given_up_after_the_close_timeout() {
    for role in ROLES {
        // a violation: our Close is queued, and the peer reads nothing
        let mut h = Harness::new(role);
        h.feed(&frame(role, 3, b""));
        assert_eq!(h.conn.state(), State::Closed);
        assert!(h.conn.has_output());
        assert!(!h.conn.should_close_transport());
        let timeout = h.conn.config().close_timeout;
        let mut waited = Duration::ZERO;
        while !h.conn.should_close_transport() {
            waited += h.jump_to_timeout().expect("a deadline is armed");
        }
        assert!(waited >= timeout, "{waited:?}");
        assert!(h.conn.output_discarded());
        assert!(!h.conn.has_output());
    }
}

#[test]
fn the_drain_deadline_ends_the_wait_for_bytes_an_adapter_still_holds() {
    // written output: nothing is given up, but the deadline still passes
    // (an adapter may hold bytes of its own, e.g. a TLS record)
    let mut h = clean_close(Role::Server);
    let _ = h.output();
    assert!(h.conn.should_close_transport());
    assert!(!h.conn.drain_expired() && !h.conn.writing_over());
    assert_eq!(h.jump_to_timeout(), Some(h.conn.config().close_timeout));
    assert!(h.conn.drain_expired() && h.conn.writing_over());
    assert!(!h.conn.output_discarded());
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn an_aborted_connection_writes_nothing_more() {
    // what an adapter still holds (a TLS record) is given up at once
    for role in ROLES {
        let mut h = Harness::new(role);
        assert!(!h.conn.writing_over());
        h.conn.abort("gone");
        assert!(h.conn.writing_over());
    }
}

#[test]
fn aborted_connection_closes_its_transport_at_once() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.send(tether::Message::text("never sent")).unwrap();
        h.conn.abort("the application gave up");
        assert!(h.conn.should_close_transport());
        assert!(!h.conn.close_expected());
    }
}

#[test]
fn peer_vanishing_closes_the_transport() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.receive_eof();
        assert_eq!(h.conn.state(), State::Aborted);
        assert!(h.conn.should_close_transport());
    }
}

/// Input that arrived before the transport ended is decoded before the
/// end is carried out, even when it waits behind a full batch of events
/// (`EVENT_BATCH`) when the end is reported: every message and the peer's
/// Close come out, and the end is the peer's clean Close, as when the
/// events are taken between the two calls. The held input was dropped and
/// the end reported as 1006, not clean.
#[test]
fn rfc6455_7_1_5_input_held_behind_a_full_batch_is_decoded_before_the_end() {
    for role in ROLES {
        for taken_first in [true, false] {
            let mut h = Harness::new(role);
            let count = tether::EVENT_BATCH + 1;
            let mut bytes = Vec::new();
            for _ in 0..count {
                bytes.extend_from_slice(&frame(role, TEXT, b"m"));
            }
            bytes.extend_from_slice(&frame(role, CLOSE, &close_payload(1000, b"done")));
            h.feed(&bytes);
            let mut events = if taken_first { h.events() } else { Vec::new() };
            h.conn.receive_eof();
            events.extend(h.events());
            let messages = events
                .iter()
                .filter(|e| matches!(e, tether::Event::Message(_)))
                .count();
            assert_eq!(messages, count, "{role:?} taken first: {taken_first}");
            let end = Harness::closed(&events).expect("no Closed event");
            assert_eq!(
                end.code,
                CloseCode::NORMAL,
                "{role:?} {taken_first}: {end:?}"
            );
            assert!(end.was_clean, "{end:?}");
            assert_eq!(end.reason, "done");
            assert!(h.conn.state().is_terminal());
        }
    }
}

// ----- a failed transport ---------------------------------------------------

/// A write failed (a reset, a broken pipe) after the peer's Close had
/// arrived: TCP is in order, so the adapter reads on and tells the core of
/// the input's end; the end is clean with the peer's code, as for the end
/// of input after the peer's Close (our answer could not go; the peer
/// left first).
#[test]
fn rfc6455_7_1_5_a_transport_failing_after_the_peers_close_is_a_clean_end() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.send(tether::Message::text("unsent")).unwrap();
        h.feed(&frame(role, CLOSE, &close_payload(4001, b"leaving")));
        assert!(h.conn.has_output(), "the message and our answer wait");
        h.conn.transport_failed(
            h.now,
            TransportFailure::Write(&io::Error::other("broken pipe")),
        );
        h.conn.receive_eof();
        assert_eq!(h.conn.state(), State::Closed);
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!(
            (info.code.as_u16(), info.was_clean, info.initiator),
            (4001, true, tether::Initiator::Remote)
        );
        assert_eq!(info.reason, "leaving");
        assert!(h.conn.writing_over());
        assert!(!h.conn.has_output());
        assert!(h.conn.output_discarded(), "the message never went out");
        assert!(h.conn.should_close_transport());
    }
}

/// Our write failed first; the peer's Close is read after it (it was in
/// our socket): the end is still its clean close. Nothing more is written
/// meanwhile, our answer to it included.
#[test]
fn rfc6455_7_1_5_a_close_read_after_a_failed_write_is_a_clean_end() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.send(tether::Message::text("unsent")).unwrap();
        h.conn.transport_failed(
            h.now,
            TransportFailure::Write(&io::Error::other("connection reset by peer")),
        );
        assert!(h.conn.writing_over());
        assert_eq!(h.conn.state(), State::Open, "reading on");
        h.feed(&frame(role, TEXT, b"before its close"));
        h.feed(&frame(role, CLOSE, &close_payload(1000, b"")));
        assert!(!h.conn.has_output(), "nothing written after the failure");
        h.conn.receive_eof();
        let events = h.events();
        assert_eq!(
            events[0],
            tether::Event::Message(tether::Message::text("before its close"))
        );
        let info = Harness::closed(&events).unwrap();
        assert_eq!((info.code.as_u16(), info.was_clean), (1000, true));
    }
}

/// Without the peer's Close, a failed transport is 1006, not clean, and
/// says why; nothing more is written, a violation's Close included.
#[test]
fn rfc6455_7_1_5_a_transport_failing_without_a_close_is_1006_with_its_cause() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed(&frame(role, TEXT, b"before the failure"));
        h.conn.transport_failed(
            h.now,
            TransportFailure::Read(&io::Error::other("connection reset by peer")),
        );
        h.conn.receive_eof();
        let events = h.events();
        assert_eq!(
            events[0],
            tether::Event::Message(tether::Message::text("before the failure"))
        );
        let info = Harness::closed(&events).unwrap();
        assert_eq!((info.code.as_u16(), info.was_clean), (1006, false));
        assert_eq!(info.reason, "read failed: connection reset by peer");
        assert_eq!(h.conn.state(), State::Aborted);
        // after our own Close: still ours
        let mut h = Harness::new(role);
        h.conn.close(h.now, CloseCode::NORMAL, "").unwrap();
        let _ = h.output();
        h.conn
            .transport_failed(h.now, TransportFailure::Read(&io::Error::other("reset")));
        h.conn.receive_eof();
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!(
            (info.code.as_u16(), info.initiator),
            (1006, tether::Initiator::Application)
        );
        assert_eq!(info.reason, "read failed: reset");
        // a violation that arrived before the failure is carried out,
        // with no Close written
        let mut h = Harness::new(role);
        h.feed(&frame(role, TEXT, &[0xff]));
        h.conn.transport_failed(
            h.now,
            TransportFailure::Write(&io::Error::other("broken pipe")),
        );
        h.conn.receive_eof();
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!(info.code.as_u16(), 1007, "{info:?}");
        assert!(!h.conn.has_output());
    }
}

/// Reading on after a failed write is bounded by the close timeout: input
/// that never ends (the application reads nothing more, so the adapter
/// reads nothing more) ends the connection then, 1006 for the failure.
#[test]
fn rfc6455_7_1_5_reading_on_after_a_failed_write_is_bounded_by_the_close_timeout() {
    for role in ROLES {
        let config = Config {
            close_timeout: Duration::from_secs(3),
            ..Config::default()
        };
        let mut h = Harness::with_config(role, config);
        h.conn.transport_failed(
            h.now,
            TransportFailure::Write(&io::Error::other("broken pipe")),
        );
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(3)));
        let info = Harness::closed(&h.events()).expect("the end");
        assert_eq!((info.code.as_u16(), info.was_clean), (1006, false));
        assert_eq!(info.reason, "write failed: broken pipe");
    }
}

/// Input held behind a full batch when the transport ends is decoded
/// first: a Close in it still makes the end clean.
#[test]
fn rfc6455_7_1_5_a_close_held_behind_a_full_batch_counts_after_a_failure() {
    for role in ROLES {
        let mut h = Harness::new(role);
        let mut bytes = Vec::new();
        for _ in 0..tether::EVENT_BATCH + 10 {
            bytes.extend(frame(role, TEXT, b"x"));
        }
        bytes.extend(frame(role, CLOSE, &close_payload(1000, b"")));
        h.feed(&bytes);
        h.conn.transport_failed(
            h.now,
            TransportFailure::Write(&io::Error::other("broken pipe")),
        );
        h.conn.receive_eof();
        let mut events = h.events();
        while h.conn.decoding_pending() {
            let now = h.now;
            let _ = h.conn.continue_decoding(now);
            events.extend(h.events());
        }
        let info = Harness::closed(&events).expect("an end");
        assert!(info.was_clean, "{info:?}");
        assert_eq!(info.code.as_u16(), 1000);
    }
}

/// While reading on after a failed write, nothing more is sent: a Ping
/// read then owes no Pong (which would count as output waiting), sends
/// are refused saying why, and no keep-alive runs whose Pong could not
/// come (its timeout gave a misleading end).
#[test]
fn rfc6455_7_1_5_after_a_failed_write_nothing_more_is_sent_or_awaited() {
    for role in ROLES {
        let config = Config {
            keep_alive: tether::KeepAlive::Ping {
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
            },
            close_timeout: Duration::from_secs(5),
            ..Config::default()
        };
        let mut h = Harness::with_config(role, config);
        h.conn.transport_failed(
            h.now,
            TransportFailure::Write(&io::Error::other("broken pipe")),
        );
        h.feed(&frame(role, PING, b"are you there"));
        assert!(!h.conn.has_output(), "a Pong owed after the failure");
        let refused = h.conn.send(tether::Message::text("late")).unwrap_err();
        assert!(
            matches!(&refused, tether::Error::TransportFailed { operation: "send", reason } if reason == "write failed: broken pipe"),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("broken pipe"), "{refused}");
        assert!(matches!(
            h.conn.ping(bytes::Bytes::from_static(b"x")),
            Err(tether::Error::TransportFailed { .. })
        ));
        // the only deadline left is the bound on reading on
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(5)));
        let info = Harness::closed(&h.events()).expect("the end");
        assert_eq!(info.reason, "write failed: broken pipe");
    }
}

/// Once the input has ended behind a full batch, the close timeout does
/// not cut what is still to be decoded: only the application's pace is
/// left, and the peer's Close in it still makes the end clean.
#[test]
fn rfc6455_7_1_5_the_close_timeout_waits_for_input_held_after_the_end() {
    for role in ROLES {
        let config = Config {
            close_timeout: Duration::from_secs(2),
            ..Config::default()
        };
        let mut h = Harness::with_config(role, config);
        let mut bytes = Vec::new();
        for _ in 0..tether::EVENT_BATCH + 10 {
            bytes.extend(frame(role, TEXT, b"x"));
        }
        bytes.extend(frame(role, CLOSE, &close_payload(1000, b"")));
        h.feed(&bytes);
        h.conn
            .transport_failed(h.now, TransportFailure::Read(&io::Error::other("reset")));
        h.conn.receive_eof();
        // the application is slow: the close timeout passes first
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(h.conn.state(), State::Open, "held input cut off");
        let mut events = h.events();
        while h.conn.decoding_pending() {
            let now = h.now;
            let _ = h.conn.continue_decoding(now);
            events.extend(h.events());
        }
        let messages = events
            .iter()
            .filter(|e| matches!(e, tether::Event::Message(_)))
            .count();
        assert_eq!(messages, tether::EVENT_BATCH + 10);
        let info = Harness::closed(&events).expect("an end");
        assert!(info.was_clean, "{info:?}");
    }
}

/// Closing after a failed write changes nothing: our Close cannot go out,
/// so the end comes with the input, and a peer's Close read then is the
/// peer's clean close (it was credited to us, as if it answered ours).
#[test]
fn rfc6455_7_1_5_closing_after_a_failed_write_leaves_the_end_to_the_peer() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.transport_failed(
            h.now,
            TransportFailure::Write(&io::Error::other("broken pipe")),
        );
        let now = h.now;
        h.conn.close(now, CloseCode::GOING_AWAY, "").unwrap();
        assert_eq!(h.conn.state(), State::Open);
        assert!(!h.conn.can_send());
        h.feed(&frame(role, CLOSE, &close_payload(4001, b"bye")));
        h.conn.receive_eof();
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!(
            (info.code.as_u16(), info.was_clean, info.initiator),
            (4001, true, tether::Initiator::Remote)
        );
    }
}
