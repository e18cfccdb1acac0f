//! What an idle connection costs a server: the `Connection` struct, a
//! pointer to the one `Config` all of the server's connections share, and
//! nothing else on the heap once its buffers are released. Measured by
//! counting every allocation of this test binary (its only test, so no
//! other test allocates meanwhile).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::mem::size_of;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use counting::CURRENT;
use tether::{Config, Connection, Event, KeepAlive, Role, Sent};

/// The most a `Connection` may weigh. It was 1,296 bytes with its own copy
/// of `Config` (328), its timers as `Option<Instant>`s, its rarely used
/// state and its buffers of bytes in flight inline (688 with only the last
/// two inline, 344 with the output queue's buffers inline, 296 with a
/// stored encoder, the keep-alive Ping's counter twice and the message
/// timeout's count); raising this bound raises every idle connection's
/// cost.
const CONNECTION_BYTES: usize = 264;

/// What one untaken notice of a frame sent keeps on the heap: its queue's
/// box and buffer (the buffers of bytes in flight, about 330 bytes more,
/// are not rebuilt for it, nor kept alive by it).
const NOTICE_BYTES: usize = 192;

#[test]
fn an_idle_connection_holds_its_struct_and_a_shared_config_only() {
    assert!(
        size_of::<Connection>() <= CONNECTION_BYTES,
        "Connection is {} bytes",
        size_of::<Connection>()
    );
    let config = Arc::new(Config {
        release_idle_after: Duration::from_millis(50),
        ..Config::default()
    });
    const N: usize = 1_000;
    let mut now = Instant::now();
    let mut conns: Vec<Connection> = Vec::with_capacity(N);
    let start = CURRENT.load(Ordering::Relaxed);
    let probe = frame(Role::Server, BINARY, &[7; 16]);
    for _ in 0..N {
        let mut conn = Connection::new(Role::Server, config.clone(), now);
        // set up for traffic: one 16 B message in, echoed out
        conn.receive(now, &probe).unwrap();
        let Some(Event::Message(m)) = conn.poll_event() else {
            panic!("no message");
        };
        conn.send(m).unwrap();
        assert!(!conn.take_output().is_empty());
        // the adapter waits for input with nothing to write
        assert!(!conn.note_idle(now));
        conns.push(conn);
    }
    assert_eq!(Arc::strong_count(&config), N + 1, "one config, shared");
    // quiet for release_idle_after: each gives its buffers back
    now += Duration::from_millis(50);
    for conn in &mut conns {
        conn.handle_timeout(now);
        assert!(conn.poll_event().is_none());
        assert!(conn.note_idle(now), "released");
    }
    let heap = CURRENT.load(Ordering::Relaxed).saturating_sub(start) / N;
    assert_eq!(heap, 0, "an idle connection holds {heap} heap bytes");
    // and each comes back to work as before: a message in, its echo out
    for conn in &mut conns {
        conn.receive(now, &probe).unwrap();
        let Some(Event::Message(m)) = conn.poll_event() else {
            panic!("no message after the release");
        };
        assert_eq!(m.as_bytes(), &[7; 16]);
        conn.send(m).unwrap();
        assert_eq!(conn.take_output().len(), 2 + 16);
    }
    drop(conns);

    // A keep-alive on an idle connection whose notices nobody takes (the
    // blocking adapter never calls poll_sent): the notice waits, nothing
    // else is rebuilt or kept.
    let config = Arc::new(Config {
        release_idle_after: Duration::from_millis(50),
        keep_alive: KeepAlive::Pong {
            interval: Duration::from_secs(1),
        },
        ..Config::default()
    });
    let mut conns: Vec<Connection> = (0..N)
        .map(|_| Connection::new(Role::Server, config.clone(), now))
        .collect();
    let base = CURRENT.load(Ordering::Relaxed);
    now += Duration::from_secs(1);
    for conn in &mut conns {
        conn.handle_timeout(now);
        assert_eq!(conn.take_output().len(), 2, "the keep-alive Pong");
        assert!(!conn.note_idle(now));
    }
    now += Duration::from_millis(50);
    for conn in &mut conns {
        conn.handle_timeout(now);
        assert!(conn.note_idle(now), "released");
    }
    let held = CURRENT.load(Ordering::Relaxed).saturating_sub(base) / N;
    assert!(
        held <= NOTICE_BYTES,
        "an idle connection with an untaken keep-alive notice holds {held} heap bytes \
         (expected at most {NOTICE_BYTES}: the notice queue only)"
    );
    for conn in &mut conns {
        assert!(matches!(conn.poll_sent(), Some(Sent::KeepAlivePong)));
    }
}
