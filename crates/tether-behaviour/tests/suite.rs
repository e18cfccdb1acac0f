//! The behaviour suite: every scenario runs on both adapters (the tokio
//! one with each of its drivers), in both
//! roles, against the same scripted peer; both adapters must produce the
//! same transcript, and it must be the one written here. Named by the RFC
//! 6455 section each scenario exercises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tether::{CloseCode, Config, KeepAlive, Role};
use tether_behaviour::{
    Adapter, Endpoint, Peer, Received, Transcript, describe_close, describe_event, pair,
    take_reasons,
};

type AppScript = fn(&mut dyn Endpoint, &mut Vec<String>);
type PeerScript = fn(&mut Peer, Role, &mut Vec<String>);

/// Runs the application's and the peer's scripts at once, each logging
/// what it saw.
fn run(
    adapter: Adapter,
    role: Role,
    config: &Config,
    app: AppScript,
    peer: PeerScript,
) -> Transcript {
    let (mut endpoint, mut remote) = pair(adapter, role, config);
    let mut t = Transcript::default();
    take_reasons();
    std::thread::scope(|s| {
        let peer_log = s.spawn(|| {
            let mut log = Vec::new();
            peer(&mut remote, role, &mut log);
            log
        });
        app(endpoint.as_mut(), &mut t.app);
        t.reasons = take_reasons();
        t.peer = peer_log.join().expect("peer script");
    });
    t
}

/// Runs a scenario on both adapters in `role`; asserts they agree and
/// returns the transcript.
fn both(role: Role, config: &Config, app: AppScript, peer: PeerScript) -> Transcript {
    let std = run(Adapter::Std, role, config, app, peer);
    let tokio = run(Adapter::Tokio, role, config, app, peer);
    assert_eq!(
        std, tokio,
        "the adapters differ as {role:?} (left: std, right: tokio)"
    );
    let owner = run(Adapter::TokioOwner, role, config, app, peer);
    assert_eq!(
        std, owner,
        "the adapters differ as {role:?} (left: std, right: tokio with Driver::Owner)"
    );
    std
}

fn log_next(ws: &mut dyn Endpoint, log: &mut Vec<String>) {
    log.push(describe_event(ws.next_event().as_ref()));
}

fn log_recv(peer: &mut Peer, log: &mut Vec<String>) -> Received {
    let r = peer.recv();
    log.push(r.describe());
    r
}

/// The peer's end of the transport after the closing handshake: a server
/// peer closes TCP first and then sees the client's end; a client peer
/// waits for the server's.
fn peer_finishes(peer: &mut Peer, role: Role, log: &mut Vec<String>) {
    if role == Role::Client {
        // the endpoint is the client: the server (peer) closes TCP
        peer.shutdown();
    }
    log_recv(peer, log);
}

fn quick() -> Config {
    Config {
        close_timeout: Duration::from_millis(300),
        fin_wait: Duration::from_millis(300),
        ..Config::default()
    }
}

// ----- the closing handshake, in every order ------------------------------------

#[test]
fn rfc6455_7_1_2_the_application_closes_first() {
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, log| {
                ws.send_text("hi").unwrap();
                let info = ws.close(CloseCode::NORMAL, "bye").unwrap();
                log.push(describe_close(&info));
                log_next(ws, log);
                log.push(format!("send after the end: {:?}", ws.send_text("late")));
                log.push(format!(
                    "close again: {:?}",
                    ws.close(CloseCode::NORMAL, "").map(|i| describe_close(&i))
                ));
            },
            |peer, role, log| {
                log_recv(peer, log);
                log_recv(peer, log);
                peer.close(1000, "bye");
                peer_finishes(peer, role, log);
            },
        );
        assert_eq!(
            t.app,
            [
                "1000 clean by the application",
                // the final event stays readable after close() returned it
                "closed 1000 clean by the application",
                "send after the end: Err(\"Closed\")",
                "close again: Ok(\"1000 clean by the application\")",
            ],
            "{role:?}"
        );
        assert_eq!(t.peer, ["text hi", "close 1000 \"bye\"", "eof"], "{role:?}");
    }
}

/// RFC 6455 section 7.1.1: after the closing handshake the server closes
/// TCP first and the client waits for it (within `Config::fin_wait`),
/// then closes its end. A client's `close` returns once that is done, so
/// the server sees our end even though the application does nothing more
/// (with `Driver::Owner` nobody drives after `close` returns: it returned
/// at the handshake's end, and the server's FIN, arriving a moment after
/// its Close, was never answered).
#[test]
fn rfc6455_7_1_1_a_client_closes_tcp_after_the_servers_late_fin() {
    let t = both(
        Role::Client,
        &quick(),
        |ws, log| {
            let info = ws.close(CloseCode::NORMAL, "").unwrap();
            log.push(describe_close(&info));
            log.push(format!("{:?}", ws.state()));
        },
        |peer, _role, log| {
            log_recv(peer, log);
            peer.close(1000, "");
            // the FIN a moment after the Close, well within fin_wait
            std::thread::sleep(Duration::from_millis(100));
            peer.shutdown();
            log_recv(peer, log);
        },
    );
    assert_eq!(t.app, ["1000 clean by the application", "Closed"]);
    assert_eq!(t.peer, ["close 1000 \"\"", "eof"]);
}

/// RFC 6455 section 7.1.1, a server that never closes TCP: the client
/// closes its end once `Config::fin_wait` has passed, and its `close`
/// returns then.
#[test]
fn rfc6455_7_1_1_a_client_closes_tcp_after_fin_wait_without_the_servers_fin() {
    let t = both(
        Role::Client,
        &quick(),
        |ws, log| {
            let info = ws.close(CloseCode::NORMAL, "").unwrap();
            log.push(describe_close(&info));
        },
        |peer, _role, log| {
            log_recv(peer, log);
            peer.close(1000, "");
            // no FIN from this side: the client's end arrives after its
            // fin_wait (300 ms), well before this wait runs out
            log.push(peer.recv_within(Duration::from_secs(3)).describe());
        },
    );
    assert_eq!(t.app, ["1000 clean by the application"]);
    assert_eq!(t.peer, ["close 1000 \"\"", "eof"]);
}

#[test]
fn rfc6455_7_1_3_the_peer_closes_first_after_messages() {
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, log| {
                for _ in 0..4 {
                    log_next(ws, log);
                }
                log.push(format!("send after the end: {:?}", ws.send_text("late")));
            },
            |peer, role, log| {
                peer.text("a");
                peer.text("b");
                peer.close(1001, "away");
                // our Close is answered only after the messages before it
                log_recv(peer, log);
                peer_finishes(peer, role, log);
            },
        );
        assert_eq!(
            t.app,
            [
                "text a",
                "text b",
                "closed 1001 clean by the peer",
                "end",
                "send after the end: Err(\"Closed\")",
            ],
            "{role:?}"
        );
        // the answer echoes the code (RFC 6455 section 5.5.1), no reason
        assert_eq!(t.peer, ["close 1001 \"\"", "eof"], "{role:?}");
    }
}

#[test]
fn rfc6455_7_1_1_a_dropped_socket_leaves_with_going_away() {
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, _log| ws.drop_socket(),
            |peer, role, log| {
                log_recv(peer, log);
                peer.close(1001, "");
                peer_finishes(peer, role, log);
            },
        );
        assert_eq!(t.peer, ["close 1001 \"\"", "eof"], "{role:?}");
    }
}

// ----- the peer misbehaving -----------------------------------------------------

#[test]
fn rfc6455_7_1_5_a_vanished_peer_is_an_abnormal_end() {
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, log| {
                log_next(ws, log);
                log_next(ws, log);
                log_next(ws, log);
            },
            |peer, _role, _log| {
                peer.text("last words");
                peer.vanish();
            },
        );
        assert_eq!(
            t.app,
            ["text last words", "closed 1006 unclean by the peer", "end"],
            "{role:?}"
        );
    }
}

/// The peer closes and resets the connection before reading what we sent:
/// our next write fails, but its Close already sits in our socket (TCP is
/// in order). The end is its clean close with its code, not a transport
/// error, whichever adapter wrote or read first (the std adapter said
/// `Io` and 1006; the tokio one 1006 when its answer met the reset).
#[test]
fn rfc6455_7_1_5_a_close_before_a_reset_is_the_peers_clean_close() {
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, log| {
                log.push(format!("send: {:?}", ws.send_text("unread")));
                // the peer has sent its Close and reset the connection;
                // then a moment for the tokio adapter's own task to see it
                ws.await_cue();
                std::thread::sleep(Duration::from_millis(300));
                log.push(format!("send: {:?}", ws.send_text("after")));
                for _ in 0..4 {
                    log_next(ws, log);
                }
            },
            |peer, _role, _log| {
                // after the application's first message (unread); a Ping
                // whose Pong cannot go once the write failed
                peer.await_unread();
                peer.ping(b"p");
                peer.text("last");
                peer.close(4001, "bye");
                peer.reset();
                peer.cue();
            },
        );
        assert_eq!(
            t.app,
            [
                "send: Ok(())",
                "send: Err(\"Closed\")",
                "ping \"p\"",
                "text last",
                "closed 4001 clean by the peer",
                "end",
            ],
            "{role:?}"
        );
    }
}

/// The same with many messages before the peer's Close, more than the
/// application may leave unread: when our write fails, the input after
/// them waits in the connection (behind a full batch) or the socket. The
/// application still gets every message, then the peer's clean close (the
/// tokio adapter stopped decoding after the failure and never delivered
/// the end; the std one said `Io` before the messages).
#[test]
fn rfc6455_7_1_5_a_close_behind_unread_messages_before_a_reset_still_arrives() {
    let config = Config {
        max_unread_bytes: 8 << 10,
        ..quick()
    };
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &config,
            |ws, log| {
                log.push(format!("send: {:?}", ws.send_text("unread")));
                std::thread::sleep(Duration::from_millis(300));
                // fails (how depends on what the adapter read before)
                let _ = ws.send_text("after");
                let mut texts = 0;
                loop {
                    match ws.next_event() {
                        Some(tether::Event::Message(_)) => texts += 1,
                        other => {
                            log.push(format!("{texts} messages"));
                            log.push(describe_event(other.as_ref()));
                            break;
                        }
                    }
                }
                log_next(ws, log);
            },
            |peer, _role, _log| {
                peer.await_unread();
                let mut burst = Vec::new();
                for _ in 0..600 {
                    burst.extend(peer.frame(true, 0x1, b"m"));
                }
                peer.write(&burst);
                peer.close(4001, "bye");
                peer.reset();
            },
        );
        assert_eq!(
            t.app,
            [
                "send: Ok(())",
                "600 messages",
                "closed 4001 clean by the peer",
                "end",
            ],
            "{role:?}"
        );
    }
}

/// The application read "fine", then the end with our 1002, and the peer
/// received our Close with 1002 first.
fn assert_failed_after_the_message(t: &Transcript, role: Role) {
    assert_eq!(t.app[0], "text fine", "{role:?}");
    assert!(
        t.app[1].starts_with("closed 1002 "),
        "{role:?}: {:?}",
        t.app
    );
    assert_eq!(t.app[2], "end", "{role:?}");
    assert!(
        t.peer[0].starts_with("close 1002 "),
        "{role:?}: {:?}",
        t.peer
    );
}

#[test]
fn rfc6455_7_1_7_a_violation_fails_the_connection_after_what_came_before() {
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, log| {
                log_next(ws, log);
                log_next(ws, log);
                log_next(ws, log);
            },
            |peer, role, log| {
                peer.text("fine");
                // opcode 0x3 is reserved (RFC 6455 section 5.2)
                let bad = peer.frame(true, 0x3, b"?");
                peer.write(&bad);
                log_recv(peer, log);
                peer.close(1002, "");
                peer_finishes(peer, role, log);
            },
        );
        assert_failed_after_the_message(&t, role);
        assert_eq!(t.peer[1], "eof", "{role:?}");
    }
}

/// RFC 6455 section 7.1.7 with a peer still sending: what it sends after
/// we failed the connection is read and dropped until its end. A
/// transport closed at once answers it with a reset: the peer's next
/// write fails, and a peer that meets the failure before reading may lose
/// our Close, and the answers before it, unread (Autobahn's case 4.1.5
/// did, now and then, against the tokio adapter: it sends a Ping after
/// the violation). A server shuts down writing and lingers for the
/// client's end; a client waits for the server's, as after any end.
#[test]
fn rfc6455_7_1_7_a_failure_does_not_reset_a_peer_still_sending() {
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, log| {
                log_next(ws, log);
                log_next(ws, log);
                log_next(ws, log);
                // and lets go of it: the transport's end is the adapter's
                ws.drop_socket();
            },
            |peer, role, log| {
                peer.text("fine");
                let bad = peer.frame(true, 0x3, b"?");
                peer.write(&bad);
                // our Close has come, with a server's FIN behind it
                log_recv(peer, log);
                std::thread::sleep(Duration::from_millis(50));
                // what the peer still sends: once a reset answered the
                // first, the second write fails
                log.push(peer.try_text("late"));
                std::thread::sleep(Duration::from_millis(50));
                log.push(peer.try_text("later"));
                peer_finishes(peer, role, log);
            },
        );
        assert_failed_after_the_message(&t, role);
        assert_eq!(t.peer[1..], ["write ok", "write ok", "eof"], "{role:?}");
    }
}

#[test]
fn rfc6455_5_5_2_a_ping_is_answered_with_its_payload() {
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, log| {
                log_next(ws, log);
                log_next(ws, log);
            },
            |peer, role, log| {
                peer.ping(b"are you there");
                log_recv(peer, log);
                peer.close(1000, "");
                log_recv(peer, log);
                peer_finishes(peer, role, log);
            },
        );
        assert_eq!(
            t.app,
            ["ping \"are you there\"", "closed 1000 clean by the peer"],
            "{role:?}"
        );
        assert_eq!(
            t.peer,
            ["pong 13 bytes", "close 1000 \"\"", "eof"],
            "{role:?}"
        );
    }
}

/// RFC 6455 section 5.5.2 while the application only sends: Pings the
/// application never reads fill no bound that stops reading (they were
/// answered as they arrived, and past `max_unread_bytes` their events are
/// dropped, `Connection::keeps_control_event`), so a Ping that comes after
/// 100 of them is answered too. The blocking adapter stopped reading ahead
/// once their events filled the bound, and the last Ping went unanswered.
#[test]
fn rfc6455_5_5_2_pings_are_answered_while_the_application_only_sends() {
    let config = Config {
        // 31 Ping events of 64 bytes, the 32nd would reach it
        max_unread_bytes: 2048,
        ..quick()
    };
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &config,
            |ws, log| {
                // only sends, until the peer has its last Pong
                let mut ticks = 0;
                while !ws.cued() {
                    ws.send_text("tick").unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                    ticks += 1;
                    assert!(ticks < 500, "the last Ping unanswered after 10 s");
                }
                let info = ws.close(CloseCode::NORMAL, "").unwrap();
                log.push(describe_close(&info));
            },
            |peer, role, log| {
                let burst: Vec<u8> = (0..100).flat_map(|_| peer.frame(true, 0x9, b"")).collect();
                peer.write(&burst);
                // the application sends meanwhile: it has read the burst
                std::thread::sleep(Duration::from_millis(300));
                peer.ping(b"last");
                // (owed Pongs may be coalesced: only the last one counts)
                let mut last = false;
                loop {
                    match peer.recv() {
                        Received::Frame(tether::OpCode::Pong, payload) => {
                            last = payload == b"last";
                            if last {
                                peer.cue();
                            }
                        }
                        Received::Frame(tether::OpCode::Text, _) => {}
                        other => {
                            log.push(format!("the last Ping answered: {last}"));
                            log.push(other.describe());
                            break;
                        }
                    }
                }
                peer.close(1000, "");
                peer_finishes(peer, role, log);
            },
        );
        assert_eq!(t.app, ["1000 clean by the application"], "{role:?}");
        assert_eq!(
            t.peer,
            ["the last Ping answered: true", "close 1000 \"\"", "eof"],
            "{role:?}"
        );
    }
}

/// Logs every event to the end, a run of 4-byte binary messages numbered
/// from 0 (checked in order) as one line.
fn log_to_the_end(ws: &mut dyn Endpoint, log: &mut Vec<String>) {
    let mut next = 0u32;
    loop {
        match ws.next_event() {
            Some(tether::Event::Message(tether::Message::Binary(b))) if b.len() == 4 => {
                let index = u32::from_be_bytes(b[..].try_into().unwrap());
                assert_eq!(index, next, "out of order");
                next += 1;
            }
            event => {
                if next > 0 {
                    log.push(format!("{next} binary messages in order"));
                    next = 0;
                }
                log.push(describe_event(event.as_ref()));
                if matches!(event, None | Some(tether::Event::Closed(_))) {
                    break;
                }
            }
        }
    }
}

/// `count` binary messages of 4 bytes, numbered from 0, as one write.
fn numbered_burst(peer: &Peer, count: usize) -> Vec<u8> {
    let mut burst = Vec::new();
    for i in 0..count {
        let index = u32::try_from(i).unwrap().to_be_bytes();
        burst.extend(peer.frame(true, 0x2, &index));
    }
    burst
}

/// RFC 6455 section 7.1.2: closing with thousands of tiny messages unread
/// (more than a batch, `tether::EVENT_BATCH`, of which the rest waits
/// undecoded): the close reads on to the peer's answer behind them, ends
/// clean, and the messages stay readable.
#[test]
fn rfc6455_7_1_2_close_reaches_the_answer_behind_unread_tiny_messages() {
    const BURST: usize = 3 * tether::EVENT_BATCH;
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, log| {
                let info = ws.close(CloseCode::NORMAL, "bye").unwrap();
                log.push(describe_close(&info));
                log_to_the_end(ws, log);
            },
            |peer, role, log| {
                let burst = numbered_burst(peer, BURST);
                peer.write(&burst);
                log_recv(peer, log);
                peer.close(1000, "");
                peer_finishes(peer, role, log);
            },
        );
        assert_eq!(
            t.app,
            [
                "1000 clean by the application".to_string(),
                format!("{BURST} binary messages in order"),
                "closed 1000 clean by the application".into(),
            ],
            "{role:?}"
        );
        assert_eq!(t.peer, ["close 1000 \"bye\"", "eof"], "{role:?}");
    }
}

/// RFC 6455 section 10.4: thousands of tiny messages in one write are
/// decoded a batch at a time (`tether::EVENT_BATCH`), the rest waiting as
/// bytes: every adapter delivers all of them in order, then the Ping
/// behind them (answered once decoded) and the message after it.
#[test]
fn rfc6455_10_4_a_burst_of_tiny_messages_arrives_whole_and_in_order() {
    const BURST: usize = 3 * tether::EVENT_BATCH + 5;
    for role in [Role::Client, Role::Server] {
        let t = both(role, &quick(), log_to_the_end, |peer, role, log| {
            let mut burst = numbered_burst(peer, BURST);
            burst.extend(peer.frame(true, 0x9, b"behind"));
            burst.extend(peer.frame(true, 0x1, b"last"));
            peer.write(&burst);
            log_recv(peer, log);
            peer.close(1000, "");
            log_recv(peer, log);
            peer_finishes(peer, role, log);
        });
        assert_eq!(
            t.app,
            [
                format!("{BURST} binary messages in order"),
                "ping \"behind\"".into(),
                "text last".into(),
                "closed 1000 clean by the peer".into(),
            ],
            "{role:?}"
        );
        assert_eq!(
            t.peer,
            ["pong 6 bytes", "close 1000 \"\"", "eof"],
            "{role:?}"
        );
    }
}

// ----- time -----------------------------------------------------------------

#[test]
fn rfc6455_7_1_1_close_gives_up_on_a_silent_peer_after_close_timeout() {
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, log| {
                let started = std::time::Instant::now();
                let info = ws.close(CloseCode::NORMAL, "anyone?").unwrap();
                log.push(describe_close(&info));
                let waited = started.elapsed();
                assert!(waited >= Duration::from_millis(300), "{waited:?}");
                log_next(ws, log);
            },
            |peer, _role, log| {
                // reads our Close, never answers, keeps TCP open
                log_recv(peer, log);
                log_recv(peer, log);
            },
        );
        assert_eq!(
            t.app,
            [
                "1006 unclean by the application",
                "closed 1006 unclean by the application"
            ],
            "{role:?}"
        );
        assert_eq!(t.peer, ["close 1000 \"anyone?\"", "eof"], "{role:?}");
    }
}

#[test]
fn keep_alive_ping_without_a_pong_ends_the_connection() {
    let config = Config {
        keep_alive: KeepAlive::Ping {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(200),
        },
        ..quick()
    };
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &config,
            |ws, log| {
                log_next(ws, log);
                log_next(ws, log);
            },
            |peer, _role, log| {
                // reads the keep-alive Ping and stays silent
                log_recv(peer, log);
                loop {
                    let r = peer.recv();
                    if !matches!(r, Received::Frame(..)) {
                        log.push(r.describe());
                        break;
                    }
                }
            },
        );
        assert_eq!(t.app, ["closed 1006 unclean by us", "end"], "{role:?}");
        assert_eq!(t.peer[0], "ping 8 bytes", "{role:?}");
        assert_eq!(t.peer[1], "eof", "{role:?}");
    }
}

/// The application only sends, 16 KiB at a time, until a send is refused;
/// then logs the next two events.
fn send_until_refused(ws: &mut dyn Endpoint, log: &mut Vec<String>) {
    let text = "x".repeat(16 << 10);
    let started = std::time::Instant::now();
    loop {
        if let Err(e) = ws.send_text(&text) {
            log.push(format!("send: {e}"));
            break;
        }
        assert!(
            started.elapsed() < tether_behaviour::PATIENCE,
            "still sending"
        );
    }
    log_next(ws, log);
    log_next(ws, log);
}

/// The peer reads nothing until the endpoint has given up (1.5 s), then
/// drains what it wrote to the end, logging how it ended.
fn read_late_to_the_end(peer: &mut Peer, _role: Role, log: &mut Vec<String>) {
    std::thread::sleep(Duration::from_millis(1500));
    loop {
        let r = peer.recv();
        if !matches!(r, Received::Frame(..)) {
            log.push(r.describe());
            break;
        }
    }
}

/// A peer that neither reads nor answers, while the application only
/// sends: the keep-alive Ping's deadline ends the connection, and the send
/// that waits for room (tokio) or in a write (blocking) returns the end,
/// in every adapter (the blocking adapter's send waited forever).
#[test]
fn keep_alive_ping_without_a_pong_ends_a_send_the_peer_never_takes() {
    let config = Config {
        keep_alive: KeepAlive::Ping {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(200),
        },
        max_queued_output: 1 << 20,
        ..quick()
    };
    for role in [Role::Client, Role::Server] {
        let t = both(role, &config, send_until_refused, read_late_to_the_end);
        assert_eq!(
            t.app,
            ["send: Closed", "closed 1006 unclean by us", "end"],
            "{role:?}"
        );
    }
}

/// RFC 6455 section 10.4: a peer that reads nothing, with no keep-alive
/// configured: `Config::send_timeout` ends the connection (1006, not
/// clean), and the send waiting for room (tokio) or in a write (blocking)
/// returns the end, in every adapter (the blocking adapter's send waited
/// forever with the default configuration).
#[test]
fn rfc6455_10_4_a_send_the_peer_never_takes_ends_after_send_timeout() {
    let config = Config {
        send_timeout: Some(Duration::from_millis(300)),
        max_queued_output: 1 << 20,
        ..quick()
    };
    for role in [Role::Client, Role::Server] {
        let t = both(role, &config, send_until_refused, read_late_to_the_end);
        assert_eq!(
            t.app,
            ["send: Closed", "closed 1006 unclean by us", "end"],
            "{role:?}"
        );
        assert_eq!(t.peer, ["eof"], "{role:?}: no Close after the abort");
    }
}

// ----- a slow reader --------------------------------------------------------

/// How many messages the flooding peer got out (read by the application's
/// script once the peer's Close arrived).
static SENT: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_reader_that_stops_pushes_back_on_the_peer_and_loses_nothing() {
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &quick(),
            |ws, log| {
                // wait while the peer floods, then read everything
                ws.await_cue();
                let mut count = 0usize;
                loop {
                    match ws.next_event() {
                        Some(tether::Event::Message(m)) => {
                            assert_eq!(m.len(), 16 * 1024);
                            count += 1;
                        }
                        other => {
                            log.push(describe_event(other.as_ref()));
                            break;
                        }
                    }
                }
                let sent = SENT.load(Ordering::Acquire);
                log.push(format!(
                    "read all {}: {}",
                    if sent > 64 { "of many" } else { "of few" },
                    count == sent
                ));
            },
            |peer, role, log| {
                let max = 4096; // 64 MiB
                let sent = peer.flood(&[7u8; 16 * 1024], max);
                SENT.store(sent, Ordering::Release);
                log.push(format!("stopped before all: {}", sent < max));
                peer.close(1000, "done");
                log_recv(peer, log);
                peer_finishes(peer, role, log);
            },
        );
        assert_eq!(
            t.peer,
            ["stopped before all: true", "close 1000 \"\"", "eof"],
            "{role:?}"
        );
        assert_eq!(
            t.app,
            ["closed 1000 clean by the peer", "read all of many: true"],
            "{role:?}"
        );
    }
}

#[test]
fn rfc6455_10_4_a_stalled_message_fails_with_1008_in_time() {
    let config = Config {
        message_timeout: Some(Duration::from_millis(300)),
        ..quick()
    };
    for role in [Role::Client, Role::Server] {
        let t = both(
            role,
            &config,
            |ws, log| {
                let started = std::time::Instant::now();
                log_next(ws, log);
                let waited = started.elapsed();
                assert!(waited < Duration::from_secs(2), "{waited:?}");
                log_next(ws, log);
            },
            |peer, role, log| {
                // a 1 KiB message, all but its last byte, then silence
                let whole = peer.frame(true, 0x2, &[7u8; 1024]);
                peer.write(&whole[..whole.len() - 1]);
                let r = log_recv(peer, log);
                assert!(matches!(r, Received::Frame(..)), "{r:?}");
                peer.close(1008, "");
                peer_finishes(peer, role, log);
            },
        );
        assert!(
            t.app[0].starts_with("closed 1008 unclean by us"),
            "{role:?}: {:?}",
            t.app
        );
        assert_eq!(t.app[1], "end");
        assert!(
            t.peer[0].starts_with("close 1008 "),
            "{role:?}: {:?}",
            t.peer
        );
    }
}
