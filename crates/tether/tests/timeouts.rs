//! Progress and idle timeouts, in virtual time (RFC 6455 section 10.4: an
//! endpoint limits what a peer can make it hold, in size and in time).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tether::{Config, Event, Role, State};

fn timeout_config() -> Config {
    Config {
        message_timeout: Some(Duration::from_secs(60)),
        ..Config::default()
    }
}

/// The connection failed with 1008 from a timer: once the application has
/// taken what came before (RFC 6455 7.1.7, in order), our Close 1008 is
/// out and the final event says so.
fn assert_stalled(h: &mut Harness) {
    let events = h.events();
    assert_eq!(h.conn.state(), State::Closed);
    let out = h.output();
    assert_eq!(
        out.last().and_then(|f| f.close_code()),
        Some(1008),
        "{out:?}"
    );
    let info = Harness::closed(&events).expect("a final event");
    assert_eq!(info.code.as_u16(), 1008);
    assert!(info.reason.contains("received nothing"), "{}", info.reason);
}

#[test]
fn rfc6455_10_4_a_stalled_fragmented_message_fails_with_1008() {
    for role in ROLES {
        let mut h = Harness::with_config(role, timeout_config());
        h.feed(&raw_frame(
            role,
            false,
            0,
            TEXT,
            b"first part, then nothing",
        ));
        h.advance(Duration::from_secs(59));
        assert_eq!(h.conn.state(), State::Open);
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(1)));
        assert_stalled(&mut h);
    }
}

#[test]
fn rfc6455_10_4_a_stalled_frame_payload_fails_with_1008() {
    for role in ROLES {
        let mut h = Harness::with_config(role, timeout_config());
        let whole = frame(role, BINARY, &[7u8; 1000]);
        h.feed(&whole[..whole.len() - 10]);
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(60)));
        assert_stalled(&mut h);
    }
}

#[test]
fn rfc6455_10_4_a_data_frame_header_split_and_stalled_fails_with_1008() {
    for role in ROLES {
        let mut h = Harness::with_config(role, timeout_config());
        let whole = frame(role, BINARY, &[7u8; 1000]);
        h.feed(&whole[..1]);
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(60)));
        assert_stalled(&mut h);
    }
}

#[test]
fn rfc6455_10_4_every_byte_of_the_message_is_progress() {
    for role in ROLES {
        let mut h = Harness::with_config(role, timeout_config());
        let whole = frame(role, BINARY, &[7u8; 1000]);
        h.feed(&whole[..100]);
        h.advance(Duration::from_secs(50));
        h.feed(&whole[100..200]);
        h.advance(Duration::from_secs(50));
        assert_eq!(h.conn.state(), State::Open, "100 s, progress at 50 s");
        h.feed(&whole[200..]);
        assert!(matches!(h.events()[..], [Event::Message(_)]));
        // nothing begun: no message deadline
        assert_eq!(h.conn.poll_timeout(), None);
    }
}

#[test]
fn rfc6455_10_4_control_frames_between_fragments_are_not_progress() {
    for role in ROLES {
        let mut h = Harness::with_config(role, timeout_config());
        h.feed(&raw_frame(role, false, 0, BINARY, b"begun"));
        for _ in 0..5 {
            h.advance(Duration::from_secs(10));
            h.feed(&frame(role, PING, b"still here"));
        }
        h.advance(Duration::from_secs(10));
        assert_stalled(&mut h);
    }
}

#[test]
fn no_message_timeout_no_deadline() {
    let config = Config {
        message_timeout: None,
        ..Config::default()
    };
    let mut h = Harness::with_config(Role::Server, config);
    h.feed(&raw_frame(Role::Server, false, 0, TEXT, b"begun"));
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn the_idle_timeout_closes_with_1001_after_no_data_either_way() {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    for role in ROLES {
        let mut h = Harness::with_config(role, config.clone());
        h.advance(Duration::from_secs(3));
        h.feed(&frame(role, TEXT, b"data"));
        h.advance(Duration::from_secs(3));
        h.conn.send(tether::Message::text("ours")).unwrap();
        // as an adapter does when it writes the message
        h.conn.tell_time(h.now);
        h.advance(Duration::from_secs(3));
        // a Ping is not data
        h.feed(&frame(role, PING, b""));
        assert_eq!(h.conn.state(), State::Open);
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(h.conn.state(), State::CloseSent);
        let out = h.output();
        let close = out.iter().find(|f| f.opcode == CLOSE).expect("a Close");
        assert_eq!(close.close_code(), Some(1001));
        assert_eq!(&close.payload[2..], b"idle timeout");
        // a send meanwhile is refused, saying the state and why it was left
        let refused = h.conn.send(tether::Message::text("late")).unwrap_err();
        match &refused {
            tether::Error::InvalidState {
                state: State::CloseSent,
                cause: Some(cause),
                ..
            } => {
                assert_eq!(cause.code, tether::CloseCode::GOING_AWAY);
                assert_eq!(cause.reason, "idle timeout");
                assert_eq!(cause.initiator, tether::Initiator::Local);
                assert!(!cause.was_clean);
            }
            other => panic!("{other:?}"),
        }
        let text = refused.to_string();
        assert!(
            text.contains("CloseSent") && text.contains("idle timeout") && text.contains("1001"),
            "{text}"
        );
        // the peer answers: a clean end that we started on our own
        h.feed(&frame(role, CLOSE, &close_payload(1001, b"")));
        let info = Harness::closed(&h.events()).expect("the end");
        assert!(info.was_clean);
        assert_eq!(info.initiator, tether::Initiator::Local);
    }
}

// ----- a spent shared budget ------------------------------------------------

#[test]
fn rfc6455_10_4_the_largest_holder_of_a_spent_budget_is_evicted_with_1013() {
    use std::sync::Arc;
    use tether::{Budget, BudgetCheck, Initiator};
    let config = Config {
        budget_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let budget = Arc::new(Budget::new(1000));
    let mut big = Harness::with_config(Role::Server, config.clone());
    let mut small = Harness::with_config(Role::Server, config);
    let (big_share, small_share) = (budget.holder(), budget.holder());
    // their applications read nothing: what arrived is charged
    big_share.charge(700);
    small_share.charge(400);
    let (big_now, small_now) = (big.now, small.now);
    assert_eq!(
        big.conn.budget_check(&big_share, big_now),
        BudgetCheck::Wait
    );
    assert_eq!(
        small.conn.budget_check(&small_share, small_now),
        BudgetCheck::Wait
    );
    // the budget stays spent for budget_timeout
    assert_eq!(big.jump_to_timeout(), Some(Duration::from_secs(5)));
    assert_eq!(small.jump_to_timeout(), Some(Duration::from_secs(5)));
    let (big_now, small_now) = (big.now, small.now);
    // the smaller holder waits on; the largest goes, with 1013 at once
    assert_eq!(
        small.conn.budget_check(&small_share, small_now),
        BudgetCheck::Wait
    );
    assert_eq!(
        big.conn.budget_check(&big_share, big_now),
        BudgetCheck::Evicted
    );
    assert_eq!(big.conn.state(), State::Closed);
    let out = big.output();
    assert_eq!(
        out.last().and_then(|f| f.close_code()),
        Some(1013),
        "{out:?}"
    );
    let info = Harness::closed(&big.events()).expect("a final event");
    assert_eq!(info.code.as_u16(), 1013);
    assert!(!info.was_clean);
    assert_eq!(info.initiator, Initiator::Local);
    assert!(info.reason.contains("700 bytes"), "{}", info.reason);
    // the adapter drops the evicted connection's unread events: room again
    drop(big_share);
    assert_eq!(
        small.conn.budget_check(&small_share, small_now),
        BudgetCheck::Read
    );
    assert_eq!(
        small.conn.poll_timeout(),
        None,
        "no held-back deadline left"
    );
    assert_eq!(small.conn.state(), State::Open);
}

/// One eviction at a time: two connections holding the same most of a
/// spent budget, both past `budget_timeout`, are checked before the first
/// evicted gives its share back (two threads, at once). Only one goes; the
/// other goes only if the budget is still spent once that share is back.
/// (Both went, though one alone might have made room.)
#[test]
fn rfc6455_10_4_of_two_holding_the_same_most_only_one_is_evicted_at_a_time() {
    use std::sync::Arc;
    use tether::{Budget, BudgetCheck};
    let config = Config {
        budget_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    for still_spent in [false, true] {
        let budget = Arc::new(Budget::new(if still_spent { 500 } else { 700 }));
        let mut a = Harness::with_config(Role::Server, config.clone());
        let mut b = Harness::with_config(Role::Server, config.clone());
        let (a_share, b_share, c_share) = (budget.holder(), budget.holder(), budget.holder());
        a_share.charge(300);
        b_share.charge(300);
        c_share.charge(250);
        for (h, share) in [(&mut a, &a_share), (&mut b, &b_share)] {
            let now = h.now;
            assert_eq!(h.conn.budget_check(share, now), BudgetCheck::Wait);
            assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(5)));
        }
        let (a_now, b_now) = (a.now, b.now);
        assert_eq!(a.conn.budget_check(&a_share, a_now), BudgetCheck::Evicted);
        // a's adapter has not yet dropped its unread events
        assert_eq!(
            b.conn.budget_check(&b_share, b_now),
            BudgetCheck::Wait,
            "a tie evicted too"
        );
        assert_eq!(b.conn.state(), State::Open);
        a_share.release_all();
        let b_now = b.now;
        let expected = if still_spent {
            // 550 of 500: b, now the largest, goes
            BudgetCheck::Evicted
        } else {
            // 550 of 700: room again, b reads on
            BudgetCheck::Read
        };
        assert_eq!(
            b.conn.budget_check(&b_share, b_now),
            expected,
            "still spent: {still_spent}"
        );
    }
}

#[test]
fn a_connection_holding_nothing_of_a_spent_budget_reads_on_and_is_never_evicted() {
    use std::sync::Arc;
    use tether::{Budget, BudgetCheck};
    let budget = Arc::new(Budget::new(100));
    let hog = budget.holder();
    hog.charge(500);
    let mut h = Harness::with_config(Role::Server, Config::default());
    let share = budget.holder();
    let now = h.now;
    assert_eq!(h.conn.budget_check(&share, now), BudgetCheck::Read);
    assert_eq!(h.conn.poll_timeout(), None);
}

/// `timeout_in` turns the next deadline into a duration an adapter can
/// hand a socket or a sleep: the time left, never zero (a zero socket
/// timeout means "none"), `None` with nothing armed.
#[test]
fn rfc6455_7_1_1_timeout_in_is_the_time_to_the_next_deadline_never_zero() {
    let t0 = std::time::Instant::now();
    let close_timeout = Duration::from_secs(3);
    let config = Config {
        close_timeout,
        ..Config::default()
    };
    let mut conn = tether::Connection::new(Role::Server, config, t0);
    assert_eq!(conn.poll_timeout(), None);
    assert_eq!(conn.timeout_in(t0), None, "nothing armed");
    conn.close(t0, tether::CloseCode::NORMAL, "bye").unwrap();
    let at = conn.poll_timeout().expect("the close timeout is armed");
    assert_eq!(at, t0 + close_timeout);
    assert_eq!(conn.timeout_in(t0), Some(close_timeout));
    assert_eq!(
        conn.timeout_in(t0 + Duration::from_secs(1)),
        Some(Duration::from_secs(2))
    );
    // due, or past: the least a socket accepts, not zero
    assert_eq!(conn.timeout_in(at), Some(tether::TIMER_RESOLUTION));
    assert_eq!(
        conn.timeout_in(at + Duration::from_secs(5)),
        Some(tether::TIMER_RESOLUTION)
    );
}

/// The idle release's windows: a connection's first quiet frees its
/// buffers after `Config::first_release_after` (never later than
/// `release_idle_after`, never sooner than the timer resolution), every
/// later quiet after the whole `release_idle_after`.
#[test]
fn the_first_idle_release_waits_the_shorter_window_then_the_whole_one() {
    let ms = Duration::from_millis;
    for (first, whole, first_wait) in [
        (ms(5), ms(50), ms(5)),
        (ms(60), ms(2), ms(2)),
        (Duration::ZERO, ms(50), ms(1)),
    ] {
        let config = Config {
            release_idle_after: whole,
            first_release_after: first,
            ..Config::default()
        };
        let mut h = Harness::with_config(Role::Server, config);
        h.feed(&frame(Role::Server, TEXT, b"hello"));
        assert_eq!(h.events().len(), 1);
        assert!(!h.conn.note_idle(h.now));
        assert_eq!(h.jump_to_timeout(), Some(first_wait), "{first:?}/{whole:?}");
        assert!(h.conn.note_idle(h.now), "released after the first window");
        h.feed(&frame(Role::Server, TEXT, b"again"));
        assert_eq!(h.events().len(), 1);
        assert!(!h.conn.note_idle(h.now));
        assert_eq!(h.jump_to_timeout(), Some(whole), "{first:?}/{whole:?}");
        assert!(h.conn.note_idle(h.now), "released after the whole window");
    }
}

/// `Duration::MAX` in any of `Config`'s waits means "never", not a panic:
/// the connection arms nothing past what an `Instant` can hold, and it
/// still moves through a message, idleness and a close.
#[test]
fn waits_longer_than_time_can_hold_never_come() {
    let never = Duration::MAX;
    for role in [Role::Client, Role::Server] {
        let config = Config {
            message_timeout: Some(never),
            idle_timeout: Some(never),
            close_timeout: never,
            fin_wait: never,
            release_idle_after: never,
            first_release_after: never,
            budget_timeout: never,
            keep_alive: tether::KeepAlive::Ping {
                interval: never,
                timeout: never,
            },
            heartbeat: Some(tether::Heartbeat {
                interval: never,
                message: tether::Message::text("hb"),
            }),
            ..Config::default()
        };
        let mut h = Harness::with_config(role, config);
        h.feed(&frame(role, TEXT, b"hi"));
        assert_eq!(h.events().len(), 1);
        let _ = h.conn.note_idle(h.now);
        h.conn.handle_timeout(h.now + Duration::from_secs(1 << 30));
        // a fragment begun, then our Close with no answer
        h.feed(&raw_frame(role, false, 0, TEXT, b"par"));
        h.conn
            .close(h.now, tether::CloseCode::NORMAL, "bye")
            .unwrap();
        assert_eq!(h.conn.state(), State::CloseSent);
        h.conn.handle_timeout(h.now + Duration::from_secs(1 << 30));
        assert_eq!(
            h.conn.state(),
            State::CloseSent,
            "{role:?}: a wait that never comes came"
        );
        assert!(
            h.conn
                .poll_timeout()
                .is_none_or(|t| t > h.now + Duration::from_secs(1 << 30)),
            "{role:?}"
        );
    }
}

/// RFC 6455 10.4 bounds what a peer can make us hold, not what we hold
/// off reading: while the adapter does not read (the application has not
/// taken what came), a begun message's progress deadline does not blame
/// the peer; once reading resumes it starts again, whole, and a peer that
/// then sends nothing more is failed with 1008 as before.
#[test]
fn rfc6455_10_4_message_timeout_waits_while_we_do_not_read() {
    for role in ROLES {
        let mut h = Harness::with_config(role, timeout_config());
        h.feed(&raw_frame(role, false, 0, TEXT, b"begun"));
        h.conn.set_reading(h.now, false);
        for _ in 0..10 {
            h.advance(Duration::from_secs(60));
        }
        assert_eq!(h.conn.state(), State::Open, "{role:?}");
        h.conn.set_reading(h.now, true);
        h.advance(Duration::from_secs(59));
        assert_eq!(
            h.conn.state(),
            State::Open,
            "{role:?}: the wait starts again, whole"
        );
        h.advance(Duration::from_secs(1));
        assert_stalled(&mut h);
    }
}

/// `send` takes no time: the idle timeout it puts off counts from the next
/// call that tells the time, not from the one before the send (which
/// could be most of a wait ago), so a connection is never closed as idle
/// just after a message went out.
#[test]
fn the_idle_timeout_counts_from_the_first_look_after_a_send() {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    for role in ROLES {
        let mut h = Harness::with_config(role, config.clone());
        h.advance(Duration::from_secs(1));
        // sent at 9.9 s, say: the core last heard the time at 1 s
        h.conn.send(tether::Message::text("late")).unwrap();
        h.advance(Duration::from_secs(10));
        assert_eq!(
            h.conn.state(),
            State::Open,
            "{role:?}: idle right after a send"
        );
        h.advance(Duration::from_secs(10) - Duration::from_millis(1));
        assert_eq!(h.conn.state(), State::Open, "{role:?}");
        h.advance(Duration::from_millis(1));
        assert_eq!(h.conn.state(), State::CloseSent, "{role:?}");
    }
}

/// A connection that sent its Close reads on to the peer's answer even
/// with the shared budget spent and a share of it held: its application's
/// `close()` sees a prompt answer instead of waiting to be evicted with
/// 1013 or timed out with 1006. While the budget is spent it keeps nothing
/// beyond the unread bound on the way (`keeps_after_close`), so a peer
/// that sends on after our Close (an idle timeout's, which any peer can
/// bring about) cannot grow the server past its budget.
#[test]
fn rfc6455_7_1_2_our_close_reads_the_answer_whatever_the_budget() {
    use std::sync::Arc;
    use tether::{Budget, BudgetCheck, CloseCode};
    let budget = Arc::new(Budget::new(1000));
    let mut h = Harness::new(Role::Server);
    let share = budget.holder();
    share.charge(2000);
    let now = h.now;
    assert_eq!(h.conn.budget_check(&share, now), BudgetCheck::Wait);
    h.conn.close(now, CloseCode::NORMAL, "").unwrap();
    assert_eq!(h.conn.budget_check(&share, now), BudgetCheck::Read);
    // but nothing more is kept beyond the unread bound while it is spent
    assert!(!h.conn.keeps_after_close(0, 10));
    share.release(2000);
    assert_eq!(h.conn.budget_check(&share, now), BudgetCheck::Read);
    assert!(h.conn.keeps_after_close(0, 10));
    h.feed(&frame(Role::Server, CLOSE, &close_payload(1000, b"")));
    let info = Harness::closed(&h.events()).expect("the answer ends it");
    assert!(info.was_clean);
}

// ----- a peer that takes nothing we send ---------------------------------------

fn send_timeout_config() -> Config {
    Config {
        send_timeout: Some(Duration::from_secs(60)),
        ..Config::default()
    }
}

/// Writes `n` of the queued bytes, as a transport that took that many.
fn write_some(h: &mut Harness, n: usize) {
    use bytes::Buf;
    h.conn.poll_output().advance(n);
}

/// RFC 6455 section 10.4 (limits on what a peer can make us hold): output
/// that the peer takes none of for `send_timeout` aborts the connection:
/// 1006, not clean, the queued bytes given up, a reason that names it.
#[test]
fn rfc6455_10_4_output_the_peer_never_takes_aborts_after_send_timeout() {
    for role in ROLES {
        let mut h = Harness::with_config(role, send_timeout_config());
        h.conn
            .send(tether::Message::binary(vec![1u8; 4000]))
            .unwrap();
        assert!(h.conn.wants_time(), "the send timeout waits to be armed");
        h.conn.tell_time(h.now);
        assert!(!h.conn.wants_time());
        h.advance(Duration::from_secs(59));
        assert_eq!(h.conn.state(), State::Open);
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(1)));
        assert_eq!(h.conn.state(), State::Aborted);
        assert!(h.conn.output_discarded());
        assert_eq!(h.conn.queued_output(), 0, "nothing more is written");
        assert!(h.conn.should_close_transport());
        let info = Harness::closed(&h.events()).expect("the final event");
        assert_eq!(info.code.as_u16(), 1006);
        assert!(!info.was_clean);
        assert_eq!(info.initiator, tether::Initiator::Local);
        assert!(
            info.reason.contains("send timeout") && info.reason.contains("within 60s"),
            "{}",
            info.reason
        );
        // a later send says the state and why it was left
        let refused = h.conn.send(tether::Message::text("late")).unwrap_err();
        assert!(refused.to_string().contains("send timeout"), "{refused}");
    }
}

/// A slow reader is not a stalled one: every byte it takes puts the
/// deadline off by a whole `send_timeout`, however long the output lasts.
#[test]
fn rfc6455_10_4_a_peer_taking_our_output_slowly_is_never_cut_off() {
    for role in ROLES {
        let mut h = Harness::with_config(role, send_timeout_config());
        h.conn
            .send(tether::Message::binary(vec![1u8; 4000]))
            .unwrap();
        h.conn.tell_time(h.now);
        for _ in 0..10 {
            h.advance(Duration::from_secs(50));
            write_some(&mut h, 1);
            // as an adapter does after a write
            h.conn.tell_time(h.now);
        }
        assert_eq!(h.conn.state(), State::Open, "500 s, a byte every 50 s");
        // the rest taken: no deadline left
        let _ = h.conn.take_output();
        h.conn.tell_time(h.now);
        assert_eq!(h.conn.poll_timeout(), None);
        // nothing taken for the last 60 s of a new send
        h.conn.send(tether::Message::text("more")).unwrap();
        h.conn.tell_time(h.now);
        assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(60)));
        assert_eq!(h.conn.state(), State::Aborted);
    }
}

/// Bytes taken without the time told since are still seen when the
/// deadline comes (`handle_timeout` tells it first): the wait starts again
/// from there, it does not abort.
#[test]
fn rfc6455_10_4_bytes_taken_before_the_deadline_put_it_off_from_there() {
    let mut h = Harness::with_config(Role::Server, send_timeout_config());
    h.conn
        .send(tether::Message::binary(vec![1u8; 4000]))
        .unwrap();
    h.conn.tell_time(h.now);
    h.now += Duration::from_secs(30);
    write_some(&mut h, 100);
    assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(30)));
    assert_eq!(h.conn.state(), State::Open);
    assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(60)));
    assert_eq!(h.conn.state(), State::Aborted);
}

#[test]
fn no_send_timeout_no_deadline() {
    let config = Config {
        send_timeout: None,
        ..Config::default()
    };
    let mut h = Harness::with_config(Role::Client, config);
    h.conn.send(tether::Message::text("never taken")).unwrap();
    assert!(!h.conn.wants_time());
    h.conn.tell_time(h.now);
    assert_eq!(h.conn.poll_timeout(), None);
}

/// Once the connection has ended, the last bytes have `close_timeout` to
/// be written, counted from the end (the drain), not `send_timeout` from
/// when they were queued: the two never run at once.
#[test]
fn rfc6455_7_1_1_after_the_close_the_drain_deadline_replaces_the_send_timeout() {
    let config = Config {
        send_timeout: Some(Duration::from_secs(5)),
        close_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let mut h = Harness::with_config(Role::Server, config);
    h.conn
        .send(tether::Message::binary(vec![1u8; 4000]))
        .unwrap();
    h.conn.tell_time(h.now);
    // the peer closes; our answer queues behind the unwritten message
    h.feed(&frame(Role::Server, CLOSE, &close_payload(1000, b"")));
    assert_eq!(h.conn.state(), State::Closed);
    assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(10)));
    assert!(h.conn.drain_expired());
    assert!(h.conn.output_discarded());
    let info = Harness::closed(&h.events()).expect("the end");
    assert!(info.was_clean, "the handshake completed: {info:?}");
}

/// Bytes the adapter's transport took but has not flushed (a TLS record
/// behind a full socket) still wait for the peer: the send timeout counts
/// them while the adapter says so (`set_unflushed`), and their flush is
/// bytes taken.
#[test]
fn rfc6455_10_4_bytes_the_transport_holds_unflushed_count_for_the_send_timeout() {
    let mut h = Harness::with_config(Role::Client, send_timeout_config());
    h.conn
        .send(tether::Message::text("into the TLS layer"))
        .unwrap();
    h.conn.tell_time(h.now);
    // the transport takes it all, and cannot flush it
    let _ = h.conn.take_output();
    let now = h.now;
    h.conn.set_unflushed(now, true);
    h.conn.tell_time(now);
    h.advance(Duration::from_secs(30));
    // flushed: bytes taken, nothing waits
    let now = h.now;
    h.conn.set_unflushed(now, false);
    assert_eq!(h.conn.poll_timeout(), None);
    // the next one stays in the transport for good
    h.conn.send(tether::Message::text("stuck")).unwrap();
    h.conn.tell_time(h.now);
    let _ = h.conn.take_output();
    let now = h.now;
    h.conn.set_unflushed(now, true);
    h.conn.tell_time(now);
    assert_eq!(h.jump_to_timeout(), Some(Duration::from_secs(60)));
    assert_eq!(h.conn.state(), State::Aborted);
    let info = Harness::closed(&h.events()).expect("the end");
    assert!(
        info.reason
            .contains("none of the bytes our transport holds"),
        "{}",
        info.reason
    );
}
