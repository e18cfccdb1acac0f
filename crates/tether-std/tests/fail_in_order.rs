//! Failing in order through the blocking adapter (RFC 6455 section 7.1.7;
//! Autobahn 3.2, 4.1.3, 5.15): a valid message followed, in the same read,
//! by a violation is delivered and answered first; then our Close with
//! 1002 goes out, and nothing after the violation is answered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use tether::{Config, Event, Role};
use tether_std::{ClientOptions, Error, ServerOptions, WebSocket};

/// One frame with FIN, `rsv` (bits 1-3) and `opcode`, masked when it goes
/// to a server.
fn raw(to: Role, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![0x80 | rsv << 4 | opcode];
    if to == Role::Server {
        let key = [1u8, 2, 3, 4];
        out.push(0x80 | payload.len() as u8);
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.push(payload.len() as u8);
        out.extend_from_slice(payload);
    }
    out
}

/// text "hello", the same with RSV2 (no extension claims it), a Ping.
fn violation(to: Role) -> Vec<u8> {
    let mut wire = raw(to, 0, 0x1, b"hello");
    wire.extend(raw(to, 2, 0x1, b"hello"));
    wire.extend(raw(to, 0, 0x9, b"after"));
    wire
}

/// The application: echo every message until the end.
fn echo<S: tether_std::Transport>(ws: &mut WebSocket<S>) -> tether::CloseInfo {
    loop {
        match ws.read() {
            Ok(message) => {
                let _ = ws.send(message);
            }
            Err(Error::Closed(info)) => return info,
            Err(e) => panic!("{e}"),
        }
    }
}

/// What the raw peer sees: the echo, then our Close with 1002, no Pong.
fn assert_echo_then_close(peer: &mut RawPeer) {
    let limit = Duration::from_secs(5);
    match peer.next_event(limit) {
        Some(Event::Message(m)) => assert_eq!(m.as_bytes(), b"hello", "the echo goes out first"),
        other => panic!("expected the echo, got {other:?}"),
    }
    match peer.next_event(limit) {
        Some(Event::Closed(info)) => assert_eq!(info.code.as_u16(), 1002),
        other => panic!("expected our Close, got {other:?}"),
    }
}

#[test]
fn rfc6455_7_1_7_server_answers_the_message_before_failing() {
    bounded(Duration::from_secs(20), || {
        let (url, server) = serve(ServerOptions::new(), |mut ws| echo(&mut ws));
        let mut client = RawPeer::connect(&url, Config::default());
        client.stream.write_all(&violation(Role::Server)).unwrap();
        assert_echo_then_close(&mut client);
        let info = server.join().unwrap();
        assert_eq!(info.code.as_u16(), 1002);
        assert!(!info.was_clean);
    });
}

#[test]
fn rfc6455_7_1_7_client_answers_the_message_before_failing() {
    bounded(Duration::from_secs(20), || {
        let (listener, url) = listen();
        let client = std::thread::spawn(move || {
            let (mut ws, _) = tether_std::connect(&url, &ClientOptions::new()).unwrap();
            echo(&mut ws)
        });
        let mut server = RawPeer::accept(&listener, Config::default());
        server.stream.write_all(&violation(Role::Client)).unwrap();
        assert_echo_then_close(&mut server);
        drop(server);
        let info = client.join().unwrap();
        assert_eq!(info.code.as_u16(), 1002);
        assert_eq!(info.initiator, tether::Initiator::Local);
    });
}

#[test]
fn rfc6455_7_1_7_violation_alone_fails_at_once() {
    bounded(Duration::from_secs(20), || {
        let (url, server) = serve(ServerOptions::new(), |mut ws| echo(&mut ws));
        let mut client = RawPeer::connect(&url, Config::default());
        client
            .stream
            .write_all(&raw(Role::Server, 4, 0x2, b"x"))
            .unwrap();
        match client.next_event(Duration::from_secs(5)) {
            Some(Event::Closed(info)) => assert_eq!(info.code.as_u16(), 1002),
            other => panic!("expected our Close, got {other:?}"),
        }
        assert_eq!(server.join().unwrap().code.as_u16(), 1002);
    });
}

/// A client that keeps sending after the violation does not hold a failed
/// server past `Config::fin_wait`: the server lingers for the client's
/// end, reading and dropping what comes, up to that long, then closes (and
/// the client's writes fail from then on, not at once).
#[test]
fn rfc6455_7_1_7_a_client_that_keeps_sending_lingers_no_longer_than_fin_wait() {
    bounded(Duration::from_secs(20), || {
        let fin_wait = Duration::from_millis(300);
        let config = Config {
            fin_wait,
            ..Config::default()
        };
        let (url, server) = serve(ServerOptions::new().config(config), |mut ws| echo(&mut ws));
        let mut client = RawPeer::connect(&url, Config::default());
        let more = raw(Role::Server, 0, 0x2, &[7; 100]);
        let started = std::time::Instant::now();
        client
            .stream
            .write_all(&raw(Role::Server, 4, 0x2, b"x"))
            .unwrap();
        // sends on and on, never reading, until the server has closed
        while client.stream.write_all(&more).is_ok() {}
        let took = started.elapsed();
        assert_eq!(server.join().unwrap().code.as_u16(), 1002);
        assert!(
            took >= fin_wait && took < fin_wait * 4,
            "the server closed after {took:?}"
        );
    });
}
