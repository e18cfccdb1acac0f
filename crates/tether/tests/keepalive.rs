//! The keep-alive story (modelled on .NET's ManagedWebSocket), in virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tether::{Config, Event, KeepAlive, Role, State};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn with(role: tether::Role, keep_alive: KeepAlive) -> Harness {
    Harness::with_config(
        role,
        Config {
            keep_alive,
            ..Config::default()
        },
    )
}

#[test]
fn rfc6455_5_5_3_keepalive_pong_leaves_after_exactly_the_interval_and_repeats() {
    for role in ROLES {
        let mut h = with(role, KeepAlive::Pong { interval: secs(30) });
        assert_eq!(h.conn.poll_timeout(), Some(h.start + secs(30)));
        h.advance(secs(29) + Duration::from_millis(999));
        assert!(h.output().is_empty(), "nothing before 30 s");
        h.advance(Duration::from_millis(1));
        let out = h.output();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].opcode, out[0].payload.len()),
            (PONG, 0),
            "an empty unsolicited Pong"
        );
        for n in 2..=5u32 {
            assert_eq!(h.jump_to_timeout(), Some(secs(30)));
            assert_eq!(h.now - h.start, secs(30) * n);
            let out = h.output();
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].opcode, PONG);
        }
        assert_eq!(h.conn.state(), State::Open);
    }
}

#[test]
fn keepalive_off_never_sends_anything() {
    for role in ROLES {
        let mut h = with(role, KeepAlive::Off);
        assert_eq!(h.conn.poll_timeout(), None);
        for _ in 0..100 {
            h.advance(secs(3600));
        }
        assert!(h.output().is_empty());
        assert_eq!(h.conn.state(), State::Open);
    }
}

#[test]
fn keepalive_ping_with_silent_peer_aborts_at_interval_plus_timeout() {
    for role in ROLES {
        let mut h = with(
            role,
            KeepAlive::Ping {
                interval: secs(10),
                timeout: secs(5),
            },
        );
        assert_eq!(h.jump_to_timeout(), Some(secs(10)));
        let out = h.output();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].opcode, PING);
        assert_eq!(out[0].payload.len(), 8, "a counter payload");
        assert_eq!(h.conn.poll_timeout(), Some(h.start + secs(15)));
        h.advance(secs(5) - Duration::from_millis(1));
        assert_eq!(h.conn.state(), State::Open);
        h.advance(Duration::from_millis(1));
        assert_eq!(h.now - h.start, secs(15));
        assert_eq!(h.conn.state(), State::Aborted);
        let info = Harness::closed(&h.events()).unwrap();
        assert_eq!(info.code.as_u16(), 1006);
        assert!(!info.was_clean);
        assert!(
            info.reason.contains("keep-alive timeout"),
            "{}",
            info.reason
        );
        assert!(h.output().is_empty(), "1006 is never sent on the wire");
    }
}

#[test]
fn keepalive_ping_answered_keeps_the_connection_alive() {
    for role in ROLES {
        let mut h = with(
            role,
            KeepAlive::Ping {
                interval: secs(10),
                timeout: secs(5),
            },
        );
        for round in 0..50 {
            h.jump_to_timeout();
            let ping = h.output().pop().unwrap();
            assert_eq!(ping.opcode, PING, "round {round}");
            h.advance(secs(1));
            h.feed(&frame(role, PONG, &ping.payload));
            assert!(matches!(h.events()[..], [Event::Pong(_)]));
        }
        assert_eq!(h.conn.state(), State::Open);
        assert!(h.now - h.start >= secs(50 * 11));
    }
}

#[test]
fn keepalive_unsolicited_or_stale_pongs_do_not_keep_it_alive() {
    for role in ROLES {
        let mut h = with(
            role,
            KeepAlive::Ping {
                interval: secs(10),
                timeout: secs(5),
            },
        );
        h.jump_to_timeout();
        let first = h.output().pop().unwrap();
        h.feed(&frame(role, PONG, &first.payload));
        h.jump_to_timeout();
        let second = h.output().pop().unwrap();
        assert_ne!(
            first.payload, second.payload,
            "each Ping carries a fresh counter"
        );
        // the peer answers with the stale payload and with unsolicited Pongs
        h.advance(secs(1));
        h.feed(&frame(role, PONG, &first.payload));
        h.advance(secs(1));
        h.feed(&frame(role, PONG, b""));
        h.advance(secs(1));
        h.feed(&frame(role, PONG, b"whatever"));
        h.advance(secs(2));
        assert_eq!(h.conn.state(), State::Aborted);
        assert_eq!(Harness::closed(&h.events()).unwrap().code.as_u16(), 1006);
    }
}

#[test]
fn keepalive_incoming_data_postpones_the_next_ping() {
    for role in ROLES {
        let mut h = with(
            role,
            KeepAlive::Ping {
                interval: secs(10),
                timeout: secs(5),
            },
        );
        for _ in 0..20 {
            h.advance(secs(9));
            h.feed(&frame(role, TEXT, b"tick"));
        }
        assert!(h.output().is_empty(), "no Ping while data keeps arriving");
        assert_eq!(h.conn.poll_timeout(), Some(h.now + secs(10)));
        h.advance(secs(10));
        assert_eq!(h.output()[0].opcode, PING);
    }
}

#[test]
fn keepalive_pong_mode_is_postponed_by_incoming_frames() {
    for role in ROLES {
        let mut h = with(role, KeepAlive::Pong { interval: secs(30) });
        h.advance(secs(20));
        h.feed(&frame(role, PING, b"p"));
        assert_eq!(h.output().len(), 1, "just the answer to the Ping");
        h.advance(secs(29));
        assert!(h.output().is_empty());
        h.advance(secs(1));
        assert_eq!(h.output()[0].opcode, PONG);
    }
}

#[test]
fn keepalive_stops_after_close() {
    for role in ROLES {
        let mut h = with(role, KeepAlive::Pong { interval: secs(1) });
        h.feed(&frame(role, CLOSE, &close_payload(1000, b"")));
        h.output();
        h.advance(secs(10));
        assert!(h.output().is_empty());
        assert_eq!(h.conn.poll_timeout(), None);
    }
}

#[test]
fn heartbeat_message_after_idle_interval_separate_from_keepalive() {
    use tether::{Heartbeat, Message};
    for role in ROLES {
        let config = Config {
            heartbeat: Some(Heartbeat {
                interval: secs(60),
                message: Message::text("{\"type\":\"ping\"}"),
            }),
            ..Config::default()
        };
        let mut h = Harness::with_config(role, config);
        // control frames do not count as activity for the heartbeat
        h.advance(secs(30));
        h.feed(&frame(role, PING, b""));
        h.output();
        h.advance(secs(30));
        let out = h.output();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].opcode, &out[0].payload[..]),
            (TEXT, &b"{\"type\":\"ping\"}"[..])
        );
        // a received message postpones it
        h.advance(secs(50));
        h.feed(&frame(role, TEXT, b"data"));
        h.advance(secs(59));
        assert!(h.output().is_empty());
        h.advance(secs(1));
        assert_eq!(h.output()[0].opcode, TEXT);
        // a sent message postpones it too (by up to one interval)
        h.conn.send(Message::text("mine")).unwrap();
        h.output();
        h.advance(secs(60));
        assert!(h.output().is_empty());
        h.advance(secs(60));
        assert_eq!(h.output()[0].payload, b"{\"type\":\"ping\"}");
    }
}

/// A data frame arriving after our Close once re-armed the
/// heartbeat, which then stayed in the past forever (adapters spun on it).
#[test]
fn every_timer_moves_past_now_after_handle_timeout_even_while_closing() {
    use tether::{CloseCode, Heartbeat, Message};
    for role in ROLES {
        let config = Config {
            heartbeat: Some(Heartbeat {
                interval: secs(1),
                message: Message::text("hb"),
            }),
            keep_alive: KeepAlive::Ping {
                interval: secs(1),
                timeout: secs(1),
            },
            close_timeout: secs(30),
            ..Config::default()
        };
        let mut h = Harness::with_config(role, config);
        h.conn.close(h.now, CloseCode::NORMAL, "").unwrap();
        h.feed(&frame(role, TEXT, b"late"));
        for _ in 0..10 {
            h.advance(secs(2));
            if let Some(t) = h.conn.poll_timeout() {
                assert!(t > h.now, "a timer stayed due: {t:?} <= {:?}", h.now);
            }
        }
    }
}

#[test]
fn frames_sent_of_our_own_accord_are_reported_for_logs() {
    let config = Config {
        keep_alive: KeepAlive::Pong {
            interval: Duration::from_secs(1),
        },
        ..Config::default()
    };
    let mut h = Harness::with_config(Role::Client, config);
    assert_eq!(h.conn.poll_sent(), None);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.conn.poll_sent(), Some(tether::Sent::KeepAlivePong));
    h.feed(&frame(Role::Client, PING, b"are you there"));
    let _ = h.output();
    assert_eq!(
        h.conn.poll_sent(),
        Some(tether::Sent::Pong(bytes::Bytes::from_static(
            b"are you there"
        )))
    );
    // bounded: a flood of Pings leaves at most 16 notices
    for _ in 0..100 {
        h.feed(&frame(Role::Client, PING, b"x"));
        let _ = h.output();
    }
    let mut kept = 0;
    while h.conn.poll_sent().is_some() {
        kept += 1;
    }
    assert!(kept <= 16, "{kept}");
}

#[test]
fn zero_intervals_never_leave_a_timer_due_at_the_same_instant() {
    let config = Config {
        keep_alive: KeepAlive::Pong {
            interval: Duration::ZERO,
        },
        heartbeat: Some(tether::Heartbeat {
            interval: Duration::ZERO,
            message: tether::Message::text("hb"),
        }),
        ..Config::default()
    };
    let mut h = Harness::with_config(Role::Client, config);
    for _ in 0..5 {
        let now = h.now;
        h.conn.handle_timeout(now);
        let next = h.conn.poll_timeout().expect("armed");
        assert!(next >= now + tether::TIMER_RESOLUTION, "due again at once");
        h.now = next;
    }
}

/// Frames the connection sends of its own accord to keep the line warm
/// are not queued behind output the peer has not taken (the line is not
/// idle, and a peer that reads nothing would grow our output by one per
/// interval, forever): a one-way Pong or a heartbeat goes only when
/// everything before it was written. Once written, they resume.
#[test]
fn keepalive_and_heartbeat_wait_while_output_is_not_taken() {
    use tether::{Heartbeat, Message};
    for role in ROLES {
        let config = Config {
            keep_alive: KeepAlive::Pong { interval: secs(30) },
            heartbeat: Some(Heartbeat {
                interval: secs(60),
                message: Message::text("{\"type\":\"ping\"}"),
            }),
            // the peer takes nothing for hours here, which the send
            // timeout would end
            send_timeout: None,
            ..Config::default()
        };
        let mut h = Harness::with_config(role, config);
        // the first ones go out; the peer then takes nothing
        h.advance(secs(60));
        let first = h.conn.queued_output();
        assert!(first > 0, "{role:?}");
        for _ in 0..1000 {
            h.advance(secs(30));
            assert_eq!(
                h.conn.queued_output(),
                first,
                "{role:?}: grew while not taken"
            );
        }
        // the peer reads again: what waited goes, then they resume
        assert!(!h.output().is_empty());
        h.advance(secs(60));
        let resumed = h.output();
        assert!(
            resumed.iter().any(|f| f.opcode == PONG),
            "{role:?}: {resumed:?}"
        );
        assert!(
            resumed.iter().any(|f| f.opcode == TEXT),
            "{role:?}: {resumed:?}"
        );
    }
}

/// The keep-alive Pong's deadline runs on while the adapter does not read
/// (unlike a begun message's progress deadline): it is what ends a dead
/// peer, and an application that stopped taking messages must not put it
/// off without end.
#[test]
fn keepalive_pong_deadline_runs_while_we_do_not_read() {
    for role in ROLES {
        let mut h = with(
            role,
            KeepAlive::Ping {
                interval: secs(30),
                timeout: secs(10),
            },
        );
        h.advance(secs(30));
        assert_eq!(h.output()[0].opcode, PING);
        h.conn.set_reading(h.now, false);
        h.advance(secs(9));
        assert_eq!(h.conn.state(), State::Open, "{role:?}");
        h.advance(secs(1));
        assert_eq!(h.conn.state(), State::Aborted, "{role:?}");
    }
}

/// A keep-alive Ping queued behind a large message the peer is still
/// taking (slowly) has not reached it: its Pong deadline does not end the
/// connection while our output moves. A peer that takes nothing for a
/// whole timeout is still dead at its end; once the Ping is out, the
/// deadline holds as before.
#[test]
fn keepalive_ping_behind_a_slow_but_moving_send_is_not_a_dead_peer() {
    use bytes::Buf;
    for role in ROLES {
        let mut h = ping_behind_a_large_send(role);
        // the peer takes 64 KiB every 5 s: slow, alive
        for _ in 0..20 {
            h.advance(secs(5));
            assert_eq!(
                h.conn.state(),
                State::Open,
                "{role:?}: aborted while taking our bytes"
            );
            h.conn.poll_output().advance(64 << 10);
        }
        // it stops taking anything: dead within a timeout or two
        h.advance(secs(10));
        h.advance(secs(10));
        assert_eq!(h.conn.state(), State::Aborted, "{role:?}");

        // a slow peer that then takes the rest, our Ping with it: the Pong
        // gets a whole timeout from the look after that, not what is left
        let mut h = ping_behind_a_slow_send_just_before_its_deadline(role);
        let rest = h.conn.take_output();
        assert!(rest.len() > 1 << 20, "{role:?}");
        h.advance(Duration::from_millis(1)); // the look just after
        assert_eq!(
            h.conn.state(),
            State::Open,
            "{role:?}: no time for the Pong"
        );
        h.advance(secs(10) - Duration::from_millis(1));
        assert_eq!(h.conn.state(), State::Open, "{role:?}");
        h.advance(Duration::from_millis(1));
        assert_eq!(
            h.conn.state(),
            State::Aborted,
            "{role:?}: no Pong in a whole timeout"
        );

        // the Ping written, no Pong: the deadline holds
        let mut h = with(
            role,
            KeepAlive::Ping {
                interval: secs(30),
                timeout: secs(10),
            },
        );
        h.advance(secs(30));
        assert_eq!(h.output()[0].opcode, PING);
        h.advance(secs(10));
        assert_eq!(h.conn.state(), State::Aborted, "{role:?}");
    }
}

/// A keep-alive Ping (every 30 s, 10 s for the Pong) that joined, 30 s in,
/// the output behind a 4 MiB message none of which was taken yet.
fn ping_behind_a_large_send(role: Role) -> Harness {
    let mut h = with(
        role,
        KeepAlive::Ping {
            interval: secs(30),
            timeout: secs(10),
        },
    );
    h.conn
        .send(tether::Message::binary(vec![7u8; 4 << 20]))
        .unwrap();
    h.advance(secs(30));
    h
}

/// The same Ping, when the peer takes 64 KiB every 5 s: the harness a millisecond before
/// the (put off) Pong deadline, the rest of the output not yet taken.
fn ping_behind_a_slow_send_just_before_its_deadline(role: Role) -> Harness {
    use bytes::Buf;
    let mut h = ping_behind_a_large_send(role);
    for _ in 0..3 {
        h.advance(secs(5));
        h.conn.poll_output().advance(64 << 10);
    }
    let deadline = h.conn.poll_timeout().unwrap();
    h.now = deadline - Duration::from_millis(1);
    h
}

/// A Ping that waited behind a slow send gets a whole timeout for its Pong
/// from the look after it went out, also when the connection's idle
/// buffers were released in between (the output queue, empty then, is
/// freed): the note that the deadline had been put off went with it, and
/// the peer was declared dead a millisecond after our Ping reached it.
#[test]
fn keepalive_a_released_output_queue_keeps_the_ping_s_put_off_deadline() {
    for role in ROLES {
        let mut h = ping_behind_a_slow_send_just_before_its_deadline(role);
        let _ = h.conn.take_output();
        // quiet now: an adapter frees the idle buffers
        h.conn.release_idle_memory();
        h.advance(Duration::from_millis(1));
        assert_eq!(
            h.conn.state(),
            State::Open,
            "{role:?}: no time for the Pong"
        );
        h.advance(secs(10));
        assert_eq!(h.conn.state(), State::Aborted, "{role:?}");
    }
}
