//! A server receiving masked text messages (valid UTF-8, mostly ASCII with
//! 2-, 3- and 4-byte characters mixed in) from an in-memory buffer: tether
//! beside tungstenite, fastwebsockets and tokio-websockets, so the cost of
//! UTF-8 validation is compared along with framing.
//!
//! Groups `text_decode/1KiB` and `text_decode/64KiB` report payload bytes/s.
//!
//! Fairness: as `message_decode` (same input builder, same [`MemStream`],
//! same limits, connection setup timed and amortised, a checked run before
//! timing), and every library validates each message as UTF-8 before
//! handing it over (checked before timing: the same input with one invalid
//! byte in its last message must fail in every library):
//! - tether: incrementally, as the frame's payload arrives; the message is a
//!   `Utf8Bytes` whose `as_str` is free.
//! - tungstenite: when the message completes (`Utf8Bytes::try_from`);
//!   `as_str` is free.
//! - tokio-websockets: incrementally in its decoder; `as_text` is free
//!   (the payload is flagged as validated).
//! - fastwebsockets: `read_frame` (here through `FragmentCollector`) checks
//!   every final text frame with simdutf8 (its default `simd` feature), but
//!   hands over bytes, not `&str`: getting a `&str` would mean validating
//!   again or `unsafe`. We take the validated bytes as they are, so it does
//!   no more work than the others.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use tether::OpCode;
use tether::{Config, Connection, Event, Message};
use tether_benches::{
    MAX_MESSAGE, MemStream, RECEIVE_CHUNK, masked_messages, masked_text_frames, message_count,
    size_label, text_payload,
};

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

/// What a run returns: what it saw, or the library's error.
type Outcome = Result<Seen, String>;

fn tether(input: &Bytes, config: &Config, expect: Option<&[u8]>) -> Outcome {
    let now = Instant::now();
    let mut conn = Connection::new(tether::Role::Server, config.clone(), now);
    let mut seen = (0, 0);
    for chunk in input.chunks(RECEIVE_CHUNK) {
        conn.receive(now, chunk).map_err(|e| e.to_string())?;
        while let Some(event) = conn.poll_event() {
            if let Event::Message(Message::Text(text)) = event {
                note(&mut seen, text.as_str().as_bytes(), expect);
            }
        }
    }
    Ok(seen)
}

fn tungstenite(input: &Bytes, count: usize, expect: Option<&[u8]>) -> Outcome {
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        MemStream::new(input.clone()),
        tungstenite::protocol::Role::Server,
        Some(config),
    );
    let mut seen = (0, 0);
    for _ in 0..count {
        if let tungstenite::Message::Text(text) = ws.read().map_err(|e| e.to_string())? {
            note(&mut seen, text.as_str().as_bytes(), expect);
        }
    }
    Ok(seen)
}

async fn fastwebsockets(input: &Bytes, count: usize, expect: Option<&[u8]>) -> Outcome {
    let mut ws = fastwebsockets::WebSocket::after_handshake(
        MemStream::new(input.clone()),
        fastwebsockets::Role::Server,
    );
    ws.set_auto_close(false);
    ws.set_max_message_size(MAX_MESSAGE);
    let mut ws = fastwebsockets::FragmentCollector::new(ws);
    let mut seen = (0, 0);
    for _ in 0..count {
        // validated by read_frame (simdutf8); handed over as bytes
        let frame = ws.read_frame().await.map_err(|e| e.to_string())?;
        if frame.opcode == fastwebsockets::OpCode::Text {
            note(&mut seen, &frame.payload[..], expect);
        }
    }
    Ok(seen)
}

async fn tokio_websockets(input: &Bytes, count: usize, expect: Option<&[u8]>) -> Outcome {
    let mut ws = tokio_websockets::ServerBuilder::new()
        .limits(tokio_websockets::Limits::default().max_payload_len(Some(MAX_MESSAGE)))
        .serve(MemStream::new(input.clone()));
    let mut seen = (0, 0);
    for _ in 0..count {
        let message = ws
            .next()
            .await
            .ok_or("tokio-websockets: end of stream")?
            .map_err(|e| e.to_string())?;
        if let Some(text) = message.as_text() {
            note(&mut seen, text.as_bytes(), expect);
        }
    }
    Ok(seen)
}

/// `count` text messages of `size` bytes, the last one's final byte
/// replaced by 0xFF (never valid UTF-8).
fn with_invalid_last(size: usize, count: usize) -> Bytes {
    let mut input = masked_text_frames(size, count - 1);
    let mut bad = text_payload(size).into_bytes();
    if let Some(last) = bad.last_mut() {
        *last = 0xFF;
    }
    input.extend_from_slice(&masked_messages(OpCode::Text, &bad, 1));
    input.freeze()
}

fn text_decode(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let config = Config {
        max_frame_size: MAX_MESSAGE,
        max_message_size: MAX_MESSAGE,
        ..Config::default()
    };

    for size in [1024, 64 * 1024] {
        let count = message_count(size);
        let input = masked_text_frames(size, count).freeze();
        let payload = text_payload(size);

        // every library delivers all the text...
        let expected = Ok((count, count * size));
        assert_eq!(
            tether(&input, &config, Some(payload.as_bytes())),
            expected,
            "tether"
        );
        assert_eq!(
            tungstenite(&input, count, Some(payload.as_bytes())),
            expected,
            "tungstenite"
        );
        assert_eq!(
            rt.block_on(fastwebsockets(&input, count, Some(payload.as_bytes()))),
            expected,
            "fastwebsockets"
        );
        assert_eq!(
            rt.block_on(tokio_websockets(&input, count, Some(payload.as_bytes()))),
            expected,
            "tokio-websockets"
        );
        // ...and really validates it: one bad byte in the last message fails
        let bad = with_invalid_last(size, count);
        assert!(tether(&bad, &config, None).is_err(), "tether validates");
        assert!(
            tungstenite(&bad, count, None).is_err(),
            "tungstenite validates"
        );
        assert!(
            rt.block_on(fastwebsockets(&bad, count, None)).is_err(),
            "fastwebsockets validates"
        );
        assert!(
            rt.block_on(tokio_websockets(&bad, count, None)).is_err(),
            "tokio-websockets validates"
        );

        let mut group = c.benchmark_group(format!("text_decode/{}", size_label(size)));
        group.throughput(Throughput::Bytes((size * count) as u64));
        group.bench_function("tether", |b| {
            b.iter(|| tether(black_box(&input), &config, None))
        });
        group.bench_function("tungstenite", |b| {
            b.iter(|| tungstenite(black_box(&input), count, None));
        });
        group.bench_function("fastwebsockets", |b| {
            b.iter(|| rt.block_on(fastwebsockets(black_box(&input), count, None)));
        });
        group.bench_function("tokio-websockets", |b| {
            b.iter(|| rt.block_on(tokio_websockets(black_box(&input), count, None)));
        });
        group.finish();
    }
}

criterion_group!(benches, text_decode);
criterion_main!(benches);
