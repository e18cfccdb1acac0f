//! A server receiving masked binary messages from an in-memory buffer:
//! tether beside tungstenite, fastwebsockets and tokio-websockets, each
//! through its natural receive API.
//!
//! Groups `message_decode/<size>` (16 B, 125 B, 1 KiB, 64 KiB, 1 MiB) report
//! payload bytes/s, so `tether / peer` throughput is the speed-up;
//! `message_decode_msgs/16B` reports messages/s for the smallest size.
//!
//! Fairness:
//! - One input per size, built once with tether's `FrameEncoder` in the
//!   client role (a fresh mask key per frame, one message per frame), shared
//!   by all four. Every library reads it from the same [`MemStream`], so
//!   each pays one copy from the "socket" into its own buffer (tether's
//!   `receive` copies 64 KiB chunks the same way); setup is a reference
//!   count, not a copy.
//! - Every library is configured with the same 64 MiB message/frame limit
//!   (no one hits a limit) and runs as a server: each checks the mask bit
//!   (fastwebsockets does not), unmasks, and hands over each whole payload
//!   as an owned buffer (tether `Bytes`, tungstenite `Bytes`,
//!   fastwebsockets `BytesMut`, tokio-websockets `Payload`). Nothing is
//!   validated as UTF-8: the messages are binary.
//! - fastwebsockets is read through `FragmentCollector`, its documented API
//!   for whole messages (plain `WebSocket::read_frame` returns frames and
//!   leaves continuation-sequence checks to the caller; for these unfragmented
//!   messages the collector only adds that check).
//! - Building the connection object is inside the timed loop for everyone,
//!   amortised over [`message_count`] messages per iteration.
//! - Each bench runs once outside the timed loop and asserts it saw N
//!   messages and N x size payload bytes, each payload equal to what the
//!   client sent (so unmasked), so no library is timed doing nothing or
//!   less; async libraries run on one current-thread tokio runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use tether::{Config, Connection, Event, Message};
use tether_benches::{
    MAX_MESSAGE, MemStream, RECEIVE_CHUNK, SIZES, binary_payload, masked_frames, message_count,
    size_label,
};
use tokio::runtime::Runtime;

/// Messages and payload bytes seen.
type Seen = (usize, usize);

/// Counts a delivered payload (through `black_box`); in the checked run
/// (`expect` given) also compares it with what the client sent, so a
/// library that skipped unmasking would fail.
fn note(seen: &mut Seen, payload: &[u8], expect: Option<&[u8]>) {
    if let Some(expect) = expect {
        assert!(payload == expect, "payload differs from what was sent");
    }
    seen.0 += 1;
    seen.1 += black_box(payload).len();
}

fn tether_config() -> Config {
    Config {
        max_frame_size: MAX_MESSAGE,
        max_message_size: MAX_MESSAGE,
        ..Config::default()
    }
}

fn tether(input: &Bytes, config: &Config, expect: Option<&[u8]>) -> Seen {
    let now = Instant::now();
    let mut conn = Connection::new(tether::Role::Server, config.clone(), now);
    let mut seen = (0, 0);
    for chunk in input.chunks(RECEIVE_CHUNK) {
        conn.receive(now, chunk).expect("tether: valid input");
        while let Some(event) = conn.poll_event() {
            if let Event::Message(Message::Binary(payload)) = event {
                note(&mut seen, &payload, expect);
            }
        }
    }
    seen
}

fn tungstenite_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

fn tungstenite(input: &Bytes, count: usize, expect: Option<&[u8]>) -> Seen {
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        MemStream::new(input.clone()),
        tungstenite::protocol::Role::Server,
        Some(tungstenite_config()),
    );
    let mut seen = (0, 0);
    for _ in 0..count {
        if let tungstenite::Message::Binary(payload) = ws.read().expect("tungstenite: valid input")
        {
            note(&mut seen, &payload, expect);
        }
    }
    seen
}

async fn fastwebsockets(input: &Bytes, count: usize, expect: Option<&[u8]>) -> Seen {
    let mut ws = fastwebsockets::WebSocket::after_handshake(
        MemStream::new(input.clone()),
        fastwebsockets::Role::Server,
    );
    ws.set_auto_close(false);
    ws.set_max_message_size(MAX_MESSAGE);
    let mut ws = fastwebsockets::FragmentCollector::new(ws);
    let mut seen = (0, 0);
    for _ in 0..count {
        let frame = ws.read_frame().await.expect("fastwebsockets: valid input");
        if frame.opcode == fastwebsockets::OpCode::Binary {
            note(&mut seen, &frame.payload, expect);
        }
    }
    seen
}

async fn tokio_websockets(input: &Bytes, count: usize, expect: Option<&[u8]>) -> Seen {
    let mut ws = tokio_websockets::ServerBuilder::new()
        .limits(tokio_websockets::Limits::default().max_payload_len(Some(MAX_MESSAGE)))
        .serve(MemStream::new(input.clone()));
    let mut seen = (0, 0);
    for _ in 0..count {
        let message = ws
            .next()
            .await
            .expect("tokio-websockets: a message")
            .expect("tokio-websockets: valid input");
        if message.is_binary() {
            note(&mut seen, &message.into_payload(), expect);
        }
    }
    seen
}

/// Checks every library once on `input`, then adds one benchmark per library.
fn compare(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    input: &Bytes,
    count: usize,
    size: usize,
) {
    let expected = (count, count * size);
    let payload = binary_payload(size);
    let config = tether_config();
    assert_eq!(tether(input, &config, Some(&payload)), expected, "tether");
    assert_eq!(
        tungstenite(input, count, Some(&payload)),
        expected,
        "tungstenite"
    );
    assert_eq!(
        rt.block_on(fastwebsockets(input, count, Some(&payload))),
        expected,
        "fastwebsockets"
    );
    assert_eq!(
        rt.block_on(tokio_websockets(input, count, Some(&payload))),
        expected,
        "tokio-websockets"
    );

    group.bench_function("tether", |b| {
        b.iter(|| tether(black_box(input), &config, None))
    });
    group.bench_function("tungstenite", |b| {
        b.iter(|| tungstenite(black_box(input), count, None));
    });
    group.bench_function("fastwebsockets", |b| {
        b.iter(|| rt.block_on(fastwebsockets(black_box(input), count, None)));
    });
    group.bench_function("tokio-websockets", |b| {
        b.iter(|| rt.block_on(tokio_websockets(black_box(input), count, None)));
    });
}

fn message_decode(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");

    for size in SIZES {
        let count = message_count(size);
        let input = masked_frames(size, count).freeze();
        let mut group = c.benchmark_group(format!("message_decode/{}", size_label(size)));
        group.throughput(Throughput::Bytes((size * count) as u64));
        compare(&mut group, &rt, &input, count, size);
        group.finish();
    }

    let size = 16;
    let count = message_count(size);
    let input = masked_frames(size, count).freeze();
    let mut group = c.benchmark_group(format!("message_decode_msgs/{}", size_label(size)));
    group.throughput(Throughput::Elements(count as u64));
    compare(&mut group, &rt, &input, count, size);
    group.finish();
}

criterion_group!(benches, message_decode);
criterion_main!(benches);
