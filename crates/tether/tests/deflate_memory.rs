//! What an idle permessage-deflate connection keeps, measured by counting
//! every allocation of this test process (RFC 7692 section 7.1.1: without
//! context takeover a context is reset after every message, so an idle
//! connection need not keep it).
#![cfg(feature = "deflate")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tether::upgrade::Upgraded;
use tether::{Config, Connection, DeflateConfig, Event, Message, Role};

#[path = "common/counting.rs"]
mod counting;
use counting::CURRENT;

static SERIAL: Mutex<()> = Mutex::new(());

/// A client and a server with permessage-deflate negotiated under `deflate`.
fn pair(deflate: DeflateConfig) -> (Connection, Connection) {
    let config = Config {
        deflate: Some(deflate),
        ..Config::default()
    };
    let now = Instant::now();
    let mut client = Upgraded::new(Role::Client, config.clone());
    let offer = client.offer().unwrap();
    let mut server = Upgraded::new(Role::Server, config);
    let answer = server.answer_offers([offer.as_bytes()]).unwrap().unwrap();
    client.check_answer([answer.as_bytes()]).unwrap();
    (
        client.into_connection(now, &[]),
        server.into_connection(now, &[]),
    )
}

/// Bytes both connections keep once idle, after compressed messages went
/// both ways.
fn idle_footprint(deflate: DeflateConfig) -> usize {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (mut client, mut server) = pair(deflate);
    let now = Instant::now();
    let text = "{\"symbol\":\"ACME\",\"price\":101.25,\"volume\":1200} ".repeat(200);
    let baseline = CURRENT.load(Ordering::Relaxed);
    for _ in 0..3 {
        client.send(Message::text(text.clone())).unwrap();
        let wire = client.take_output();
        server.receive(now, &wire).unwrap();
        let Some(Event::Message(m)) = server.poll_event() else {
            panic!("no message")
        };
        server.send(m).unwrap();
        let wire = server.take_output();
        client.receive(now, &wire).unwrap();
        assert!(matches!(client.poll_event(), Some(Event::Message(_))));
    }
    client.release_idle_memory();
    server.release_idle_memory();
    CURRENT.load(Ordering::Relaxed).saturating_sub(baseline)
}

#[test]
fn rfc7692_7_1_1_without_context_takeover_an_idle_connection_keeps_no_context() {
    let held = idle_footprint(DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    });
    eprintln!(
        "no context takeover: both ends keep {} KiB idle",
        held / 1024
    );
    // the target of 64 KiB per idle connection, for the two of them
    assert!(held <= 2 * 64 * 1024, "{} KiB", held / 1024);
}

/// The formula the README and `Config` give for an idle end with context
/// takeover at `w`-bit windows: at most 5 x 2^w + 300 KiB (zlib-rs's
/// compressor at flate2's memory level 8, its inflater, and the last 2^w
/// bytes inflated), for both ends here; and a smaller window keeps less.
#[test]
fn rfc7692_7_1_2_a_smaller_window_keeps_less_with_context_takeover() {
    let mut last = 0;
    for bits in 9u8..=15 {
        let held = idle_footprint(DeflateConfig {
            server_max_window_bits: bits,
            client_max_window_bits: bits,
            ..DeflateConfig::default()
        });
        let bound = 2 * ((5 << bits) + (300 << 10));
        eprintln!(
            "context takeover, both ends idle: {bits}-bit windows {} KiB (bound {} KiB)",
            held / 1024,
            bound / 1024
        );
        assert!(held <= bound, "{bits} bits: {held} > {bound}");
        assert!(held > last, "{bits} bits: {held} after {last}");
        last = held;
    }
}
