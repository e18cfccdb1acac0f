//! Pings, Pongs and keep-alive (RFC 6455 sections 5.5.2 and 5.5.3) as a
//! peer sees them on the wire: output must never wait for the application.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{RawPeer, assert_aborted, bounded, listen, serve};
use tether_std::{
    ClientOptions, CloseCode, Config, Error, Event, Initiator, KeepAlive, Message, ServerOptions,
    connect,
};

fn keep_alive(keep_alive: KeepAlive) -> Config {
    Config {
        keep_alive,
        ..Config::default()
    }
}

#[test]
fn rfc6455_5_5_2_ping_answered_while_the_app_only_reads() {
    bounded(Duration::from_secs(10), || {
        // The server's application blocks in read() and never sends.
        let (url, server) = serve(ServerOptions::new(), |mut ws| ws.read());
        let mut peer = RawPeer::connect(&url, Config::default());
        for payload in [&b"one"[..], b"two", b""] {
            peer.ping(payload);
            assert_eq!(
                peer.next_event(Duration::from_secs(2)),
                Some(Event::Pong(Bytes::from_static(payload)))
            );
        }
        peer.send(Message::text("done"));
        assert_eq!(server.join().unwrap().unwrap(), Message::text("done"));
    });
}

#[test]
fn rfc6455_5_5_2_ping_answered_while_the_app_only_sends() {
    ping_answered_while_the_app_only_sends(Config::default());
}

/// The same with turns of no bytes at all (`Config::turn_bytes` 0): a
/// send still reads ahead once (it read nothing ahead, so the Ping waited
/// unanswered while the application only sent).
#[test]
fn rfc6455_5_5_2_ping_answered_while_the_app_only_sends_with_empty_turns() {
    ping_answered_while_the_app_only_sends(Config {
        turn_bytes: 0,
        ..Config::default()
    });
}

fn ping_answered_while_the_app_only_sends(config: Config) {
    bounded(Duration::from_secs(10), move || {
        // The server's application sends every 20 ms and never reads.
        let (url, server) = serve(ServerOptions::new().config(config), |mut ws| {
            for i in 0..100 {
                if ws.send(Message::text(format!("tick {i}"))).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let mut peer = RawPeer::connect(&url, Config::default());
        // the server is sending: its first tick has come
        assert!(matches!(
            peer.next_event(Duration::from_secs(5)),
            Some(Event::Message(_))
        ));
        peer.ping(b"still there?");
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match peer.next_event(left) {
                Some(Event::Message(_)) => {}
                Some(Event::Pong(payload)) => {
                    assert_eq!(&payload[..], b"still there?");
                    break;
                }
                other => panic!("expected the Pong while the server sends, got {other:?}"),
            }
        }
        drop(peer);
        server.join().unwrap();
    });
}

#[test]
fn rfc6455_5_5_3_keep_alive_pongs_while_the_app_only_reads() {
    bounded(Duration::from_secs(10), || {
        let interval = Duration::from_millis(100);
        let options = ServerOptions::new().config(keep_alive(KeepAlive::Pong { interval }));
        let (url, server) = serve(options, |mut ws| ws.read());
        // before the server's connection exists, so before its first interval
        let start = Instant::now();
        let mut peer = RawPeer::connect(&url, Config::default());
        // The peer sends nothing: unsolicited, empty Pongs keep coming, and
        // the peer's core does not answer them.
        for _ in 0..3 {
            assert_eq!(
                peer.next_event(Duration::from_secs(1)),
                Some(Event::Pong(Bytes::new()))
            );
            assert!(
                !peer.conn.has_output(),
                "an unsolicited Pong is never answered"
            );
        }
        assert!(start.elapsed() >= interval * 3 - Duration::from_millis(20));
        peer.send(Message::text("bye"));
        assert_eq!(server.join().unwrap().unwrap(), Message::text("bye"));
    });
}

#[test]
fn rfc6455_5_5_3_keep_alive_runs_while_the_app_only_sends() {
    bounded(Duration::from_secs(10), || {
        let interval = Duration::from_millis(100);
        let options = ServerOptions::new().config(keep_alive(KeepAlive::Pong { interval }));
        let (url, server) = serve(options, |mut ws| {
            for _ in 0..40 {
                if ws.send(Message::text("tick")).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        let mut peer = RawPeer::connect(&url, Config::default());
        let mut pongs = 0;
        while pongs < 2 {
            match peer.next_event(Duration::from_secs(1)) {
                Some(Event::Message(_)) => {}
                Some(Event::Pong(p)) if p.is_empty() => pongs += 1,
                other => panic!("expected ticks and keep-alive Pongs, got {other:?}"),
            }
        }
        drop(peer);
        server.join().unwrap();
    });
}

#[test]
fn keep_alive_ping_to_a_silent_peer_aborts_with_1006() {
    bounded(Duration::from_secs(10), || {
        // A server that accepts the upgrade with tether's parser and then
        // reads nothing at all.
        let (listener, url) = listen();
        let (done, done_rx) = std::sync::mpsc::channel::<()>();
        let silent = std::thread::spawn(move || {
            let peer = RawPeer::accept(&listener, Config::default());
            let _ = done_rx.recv_timeout(Duration::from_secs(3)); // until the test is done
            drop(peer);
        });
        let (interval, timeout) = (Duration::from_millis(200), Duration::from_millis(300));
        let options =
            ClientOptions::new().config(keep_alive(KeepAlive::Ping { interval, timeout }));
        // before the connection (and its keep-alive) starts
        let start = Instant::now();
        let (mut ws, _) = connect(&url, &options).unwrap();
        let Err(Error::Closed(info)) = ws.read() else {
            panic!("expected the keep-alive to end the connection");
        };
        let took = start.elapsed();
        assert_eq!(info.code, CloseCode::ABNORMAL);
        assert!(!info.was_clean);
        assert_eq!(info.initiator, Initiator::Local);
        assert!(info.reason.contains("keep-alive"), "{}", info.reason);
        assert!(
            took >= interval + timeout - Duration::from_millis(20)
                && took < interval + timeout + Duration::from_millis(1500),
            "aborted after {took:?}"
        );
        // Every later call reports the same end at once.
        assert!(matches!(ws.read(), Err(Error::Closed(i)) if i.code == CloseCode::ABNORMAL));
        assert!(matches!(ws.send(Message::text("x")), Err(Error::Closed(_))));
        drop(done);
        silent.join().unwrap();
    });
}

#[test]
fn keep_alive_ping_answered_keeps_the_connection() {
    bounded(Duration::from_secs(10), || {
        let (url, server) = serve(ServerOptions::new(), |mut ws| ws.read());
        let (interval, timeout) = (Duration::from_millis(50), Duration::from_millis(200));
        let options =
            ClientOptions::new().config(keep_alive(KeepAlive::Ping { interval, timeout }));
        let (mut ws, _) = connect(&url, &options).unwrap();
        // Several keep-alive rounds while the client only reads: the
        // server's Pongs come back and nothing ends.
        let mut pongs = 0;
        while pongs < 4 {
            match ws.read_event().unwrap() {
                Event::Pong(_) => pongs += 1,
                other => panic!("expected keep-alive Pongs, got {other:?}"),
            }
        }
        ws.send(Message::text("fine")).unwrap();
        assert_eq!(server.join().unwrap().unwrap(), Message::text("fine"));
    });
}

#[test]
fn rfc6455_5_5_2_read_event_shows_pings_and_auto_pong_can_be_off() {
    bounded(Duration::from_secs(10), || {
        let config = Config {
            auto_pong: false,
            ..Config::default()
        };
        let (url, server) = serve(ServerOptions::new().config(config), |mut ws| {
            // The application answers by itself, with its own payload.
            let Event::Ping(payload) = ws.read_event().unwrap() else {
                panic!("expected a Ping");
            };
            assert_eq!(&payload[..], b"manual");
            ws.pong(&b"answered by hand"[..]).unwrap();
            ws.read()
        });
        let mut peer = RawPeer::connect(&url, Config::default());
        peer.ping(b"manual");
        assert_eq!(
            peer.next_event(Duration::from_secs(2)),
            Some(Event::Pong(Bytes::from_static(b"answered by hand")))
        );
        peer.send(Message::text("ok"));
        assert_eq!(server.join().unwrap().unwrap(), Message::text("ok"));
    });
}

/// A send that blocks because the peer takes nothing still runs the core's
/// timers: with `KeepAlive::Ping`, a peer that neither reads nor answers
/// is dead at the Pong deadline, and `send` returns the end (1006), as in
/// the tokio adapter, instead of blocking forever in the write.
#[test]
fn rfc6455_5_5_2_keep_alive_timeout_ends_a_send_the_peer_never_takes() {
    bounded(Duration::from_secs(20), || {
        let (url, server) = serve(ServerOptions::new(), |ws| {
            // reads nothing, answers nothing
            std::thread::sleep(Duration::from_secs(3));
            drop(ws);
        });
        let config = keep_alive(KeepAlive::Ping {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(300),
        });
        let (mut ws, _) = connect(&url, &ClientOptions::new().config(config)).unwrap();
        let payload = Bytes::from(vec![7u8; 1 << 20]);
        let started = Instant::now();
        let err = loop {
            match ws.send(Message::binary(payload.clone())) {
                Ok(()) => assert!(started.elapsed() < Duration::from_secs(3), "still sending"),
                Err(e) => break e,
            }
        };
        assert_aborted(
            &err,
            "keep-alive",
            (started, Duration::from_secs(3)),
            "a send the peer never takes",
        );
        server.join().unwrap();
    });
}
