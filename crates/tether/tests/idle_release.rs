//! An idle connection gives its buffers back once it has been quiet for
//! `Config::release_idle_after` (`Connection::note_idle`; the first time
//! for `Config::first_release_after`), and a busy one does not free and
//! regrow them at every pause. Measured by counting every allocation of
//! this test process (so one test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use counting::CURRENT;
use tether::{Config, Event, Role};

#[test]
fn buffers_are_freed_after_the_quiet_time_and_not_before() {
    let config = Config {
        release_idle_after: Duration::from_millis(50),
        first_release_after: Duration::from_millis(5),
        ..Config::default()
    };
    let mut h = Harness::with_config(Role::Server, config);
    // a 200 KiB message: buffers over IDLE_SPARE_MAX (64 KiB) go as soon
    // as the adapter waits
    h.feed(&frame(Role::Server, BINARY, &vec![7u8; 200 << 10]));
    assert_eq!(h.events().len(), 1);
    let held = CURRENT.load(Ordering::Relaxed);
    assert!(!h.conn.note_idle(h.now));
    let after_large = CURRENT.load(Ordering::Relaxed);
    assert!(
        after_large + (150 << 10) < held,
        "held {held}, then {after_large}"
    );

    // a 60 KiB message: its buffers wait for the quiet time, the first
    // time the shorter one
    h.feed(&frame(Role::Server, BINARY, &vec![7u8; 60 << 10]));
    assert_eq!(h.events().len(), 1);
    let held = CURRENT.load(Ordering::Relaxed);
    assert!(!h.conn.note_idle(h.now));
    assert_eq!(h.jump_to_timeout(), Some(Duration::from_millis(5)));
    assert!(
        h.conn.note_idle(h.now),
        "freed after the first 5 ms of quiet"
    );
    let idle = CURRENT.load(Ordering::Relaxed);
    assert!(idle + (30 << 10) < held, "held {held}, idle {idle}");

    // from then on, the whole quiet time
    h.feed(&frame(Role::Server, BINARY, &vec![7u8; 60 << 10]));
    assert_eq!(h.events().len(), 1);
    let held = CURRENT.load(Ordering::Relaxed);
    assert!(!h.conn.note_idle(h.now));
    assert_eq!(
        h.conn.poll_timeout(),
        Some(h.now + Duration::from_millis(50))
    );
    // traffic 30 ms in puts the release off (the deadline stays: no timer
    // reset per message), to 50 ms after that traffic
    h.advance(Duration::from_millis(30));
    h.feed(&frame(Role::Server, TEXT, b"still here"));
    assert!(matches!(h.events()[..], [Event::Message(_)]));
    assert_eq!(h.jump_to_timeout(), Some(Duration::from_millis(20)));
    assert!(!h.conn.note_idle(h.now), "quiet for 20 ms only");
    assert!(
        CURRENT.load(Ordering::Relaxed) + (30 << 10) > held,
        "nothing freed during traffic"
    );
    assert_eq!(h.jump_to_timeout(), Some(Duration::from_millis(30)));
    // 50 ms of quiet: freed, and the adapter is told to free its own
    assert!(h.conn.note_idle(h.now));
    let idle = CURRENT.load(Ordering::Relaxed);
    assert!(idle + (30 << 10) < held, "held {held}, idle {idle}");
    assert_eq!(h.conn.poll_timeout(), None, "no deadline left while idle");
    // traffic again: no longer released
    h.feed(&frame(Role::Server, TEXT, b"back"));
    assert!(!h.conn.note_idle(h.now));
}
