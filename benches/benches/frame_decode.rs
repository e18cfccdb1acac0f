//! A server decoding masked frames from memory, binary and text, at 16 B,
//! 125 B, 1 KiB, 64 KiB and 1 MiB: tether beside tungstenite,
//! fastwebsockets and tokio-websockets, with a `memcpy` of the same input
//! bytes as the ceiling, all in the same group.
//!
//! Groups `frame_decode/{binary,text}/<size>`, entries:
//! - `tether`: `tether_frame::FrameDecoder` fed 64 KiB reads the one-copy
//!   way (runs of whole frames are copied into its buffer and split off it,
//!   or copied out of it when small, `decode_small`;
//!   the payload of a frame still arriving goes straight from the read into
//!   the frame's own buffer with `feed_payload`), header parse and
//!   validation, unmask, plus `simdutf8` on each text payload (what
//!   `tether::Connection` runs on whole frames);
//! - `tether-connection`: the whole `tether::Connection::receive` path
//!   (frames, message reassembly, incremental UTF-8, events);
//! - `tungstenite`: `WebSocket::read` (its frame-level `FrameSocket::read`
//!   does not unmask, so the message API is its lowest that does);
//! - `fastwebsockets`: `WebSocket::read_frame` (unmasks; validates final text
//!   frames with simdutf8);
//! - `tokio-websockets`: `WebSocketStream::next` (its codec is private);
//! - `memcpy`: one copy of the whole input into a buffer allocated before
//!   timing: the floor no decoder that reads from a socket can beat;
//! - `ceiling`: one pass that copies and unmasks the input (plus the UTF-8
//!   check of each text payload): the least any decoder does with these
//!   bytes, which only a decoder handed them (not reading them from a
//!   stream) can reach;
//! - `floor`: the least a reader from a stream does to hand out each
//!   message as owned `Bytes` (what tether's adapters, tungstenite and
//!   tokio-websockets all hand out), with none of the protocol's rules: see
//!   [`floor`].
//!
//! Every group reports payload bytes/s, so `tether / peer` is the speed-up
//! and `tether / memcpy` the fraction of the ceiling.
//!
//! Fairness:
//! - One input per size and kind, built once with tether's `FrameEncoder` in
//!   the client role (a fresh mask key per frame, one message per frame),
//!   shared by all. The peers read it through [`MemStream`] (a copy into
//!   their buffers, as from a socket); tether copies the same 64 KiB reads.
//!   Building each decoder is timed for everyone, amortised over about
//!   4 MiB (or 4096 frames) per iteration.
//! - Same limits (64 MiB), same role (server: the mask bit is checked by
//!   all but fastwebsockets), every payload handed over whole.
//! - Checked before timing: every entry sees every message with exactly the
//!   bytes the client sent (so really unmasked), and for text the same input
//!   with one invalid byte in its last message fails in every entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

use std::hint::black_box;
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use tether::{Config, Connection, Event, Message};
use tether_benches::{
    MAX_MESSAGE, MemStream, RECEIVE_CHUNK, SIZES, binary_payload, masked_messages, message_count,
    size_label, text_payload,
};
use tether_frame::{
    Decoded, FrameDecoder, FrameHeader, Limits, MAX_HEADER_LEN, OpCode, Role, Status,
};
use tokio::runtime::Runtime;

/// Messages and payload bytes seen.
type Seen = (usize, usize);

/// What a run returns: what it saw, or the library's error.
type Outcome = Result<Seen, String>;

/// Binary or text: which opcode the input carries, and whether UTF-8 is
/// checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Binary,
    Text,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Binary => "binary",
            Kind::Text => "text",
        }
    }

    fn opcode(self) -> OpCode {
        match self {
            Kind::Binary => OpCode::Binary,
            Kind::Text => OpCode::Text,
        }
    }

    fn payload(self, size: usize) -> Vec<u8> {
        match self {
            Kind::Binary => binary_payload(size),
            Kind::Text => text_payload(size).into_bytes(),
        }
    }
}

/// Counts a delivered payload (through `black_box`); in the checked run
/// (`expect` given) also compares it with what the client sent, so an entry
/// that skipped unmasking would fail.
fn note(seen: &mut Seen, payload: &[u8], expect: Option<&[u8]>) -> Result<(), String> {
    if let Some(expect) = expect
        && payload != expect
    {
        return Err("payload differs from what was sent".into());
    }
    seen.0 += 1;
    seen.1 += black_box(payload).len();
    Ok(())
}

// ----- tether: the frame decoder ---------------------------------------------

fn tether_frame(
    seen: &mut Seen,
    opcode: OpCode,
    payload: &[u8],
    kind: Kind,
    expect: Option<&[u8]>,
) -> Result<(), String> {
    if opcode != kind.opcode() {
        return Ok(());
    }
    if kind == Kind::Text && simdutf8::basic::from_utf8(payload).is_err() {
        return Err("invalid UTF-8".into());
    }
    note(seen, payload, expect)
}

/// The run of whole frames at the front of `data`, plus the header of the
/// first incomplete frame (whose payload then goes straight into the
/// decoder's buffer for it), or all of `data` when it ends inside a header
/// or holds more than [`WALK_FRAMES`] frames: how a caller gets one copy per
/// byte of a large payload out of `FrameDecoder`, with the same walk (and
/// the same cap) as `tether::Connection::receive`. Walked uncapped, a read of
/// small frames took one cache miss per frame, each waiting for the one
/// before (the next frame's offset is in the header just loaded), a sixth
/// of the time of a 125-byte message.
fn whole_frames_prefix(data: &[u8]) -> usize {
    let mut off = 0;
    for _ in 0..WALK_FRAMES {
        let Some(rest) = data.get(off..).filter(|r| !r.is_empty()) else {
            return off;
        };
        let Some(len) = FrameHeader::peek_frame_len(rest) else {
            return data.len();
        };
        let end = usize::try_from(len).map_or(usize::MAX, |l| off.saturating_add(l));
        if end > data.len() {
            return match FrameHeader::parse(rest) {
                Ok(Status::Complete(_, used)) => off + used,
                _ => data.len(),
            };
        }
        off = end;
    }
    data.len()
}

/// How many frames [`whole_frames_prefix`] walks before taking the whole
/// read (`tether::Connection`'s own cap).
const WALK_FRAMES: usize = 16;

fn tether(input: &Bytes, kind: Kind, expect: Option<&[u8]>) -> Outcome {
    let limits = Limits {
        max_frame_size: MAX_MESSAGE as u64,
        ..Limits::default()
    };
    let mut dec = FrameDecoder::new(Role::Server, limits);
    let mut buf = BytesMut::new();
    let mut seen = (0, 0);
    for mut read in input.chunks(RECEIVE_CHUNK) {
        while !read.is_empty() {
            // a frame still arriving takes its payload straight from the read
            if let Some(need) = dec.payload_remaining() {
                let (now, rest) = read.split_at(need.min(read.len()));
                if let Some(frame) = dec.feed_payload(now) {
                    tether_frame(&mut seen, frame.header.opcode, &frame.payload, kind, expect)?;
                }
                read = rest;
                continue;
            }
            // whole frames (split off `buf` without copying) and the header
            // of an incomplete one; a header split across reads is finished
            let take = if buf.is_empty() {
                whole_frames_prefix(read)
            } else {
                read.len().min(MAX_HEADER_LEN)
            };
            buf.extend_from_slice(&read[..take]);
            read = &read[take..];
            // small frames copied out whole (no reference count touched),
            // larger ones split off
            while let Some(frame) = dec.decode_small(&mut buf).map_err(|e| e.to_string())? {
                match frame {
                    Decoded::Small { header, payload } => {
                        tether_frame(&mut seen, header.opcode, &payload, kind, expect)?;
                    }
                    Decoded::Frame(frame) => {
                        tether_frame(&mut seen, frame.header.opcode, &frame.payload, kind, expect)?;
                    }
                }
            }
        }
    }
    Ok(seen)
}

// ----- the floor -----------------------------------------------------------------

/// The least work of a reader that reads from a stream and hands out each
/// message as an owned `Bytes`, and nothing of the protocol's rules: each
/// 64 KiB read copied onto the end of its buffer (which is reclaimed once
/// the payloads split off it are dropped), each frame's length and key read
/// from its header (no other field looked at: no opcode, FIN, RSV, mask-bit
/// or size rule), its payload split off the buffer (a reference count taken
/// with the split and given back when it is dropped) and unmasked in place
/// with tether's fastest unmask, and each text payload's UTF-8 checked.
///
/// No conforming decoder that reads from a stream and hands out owned
/// payloads does less per message, so what a small-message target leaves
/// for the rules, the message and its event, and the reading API is the
/// target's time per message less this row's.
fn floor(input: &Bytes, kind: Kind, expect: Option<&[u8]>) -> Outcome {
    let mut buf = BytesMut::with_capacity(RECEIVE_CHUNK);
    let mut seen = (0, 0);
    for read in input.chunks(RECEIVE_CHUNK) {
        buf.extend_from_slice(read);
        while let Some(&[_, b1]) = buf.first_chunk::<2>() {
            let (len, at) = match b1 & 0x7F {
                126 => match buf.get(2..4) {
                    Some(&[a, b]) => (usize::from(u16::from_be_bytes([a, b])), 4),
                    _ => break,
                },
                127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                    Some(bytes) => (usize::try_from(u64::from_be_bytes(bytes)).unwrap(), 10),
                    None => break,
                },
                short => (usize::from(short), 2),
            };
            let Some(&[k0, k1, k2, k3]) = buf.get(at..at + 4) else {
                break;
            };
            if buf.len() < at + 4 + len {
                break;
            }
            let mut frame = buf.split_to(at + 4 + len);
            frame.advance(at + 4);
            tether_frame::apply_mask(&mut frame, [k0, k1, k2, k3], 0);
            let payload = frame.freeze();
            if kind == Kind::Text && simdutf8::basic::from_utf8(&payload).is_err() {
                return Err("invalid UTF-8".into());
            }
            note(&mut seen, &payload, expect)?;
        }
    }
    Ok(seen)
}

// ----- tether: the whole connection --------------------------------------------

fn tether_config() -> Config {
    Config {
        max_frame_size: MAX_MESSAGE,
        max_message_size: MAX_MESSAGE,
        ..Config::default()
    }
}

/// Takes the connection's events, noting each message.
fn take_events(
    conn: &mut Connection,
    seen: &mut Seen,
    expect: Option<&[u8]>,
) -> Result<(), String> {
    while let Some(event) = conn.poll_event() {
        match event {
            Event::Message(Message::Binary(payload)) => note(seen, &payload, expect)?,
            Event::Message(Message::Text(text)) => note(seen, text.as_str().as_bytes(), expect)?,
            // a violation found behind a full batch of events ends the
            // connection there (`receive` returned before reaching it)
            Event::Closed(info) if !info.was_clean => {
                return Err(format!("closed {}", u16::from(info.code)));
            }
            _ => {}
        }
    }
    Ok(())
}

fn tether_connection(input: &Bytes, config: &Config, expect: Option<&[u8]>) -> Outcome {
    let now = Instant::now();
    let mut conn = Connection::new(tether::Role::Server, config.clone(), now);
    let mut seen = (0, 0);
    for chunk in input.chunks(RECEIVE_CHUNK) {
        conn.receive(now, chunk).map_err(|e| e.to_string())?;
        take_events(&mut conn, &mut seen, expect)?;
    }
    Ok(seen)
}

/// `Connection` read the way a transport that reads into a buffer it is
/// handed does (tokio's `AsyncRead`): straight into the connection's own
/// buffer (`receive_buffer`, `received`), each read taking what a 64 KiB
/// read of the in-memory stream would; `receive` only where the connection
/// offers no buffer (the first read).
fn tether_direct(input: &Bytes, config: &Config, expect: Option<&[u8]>) -> Outcome {
    let now = Instant::now();
    let mut conn = Connection::new(tether::Role::Server, config.clone(), now);
    let mut seen = (0, 0);
    let mut at = 0;
    while at < input.len() {
        let want = RECEIVE_CHUNK.min(input.len() - at);
        match conn.receive_buffer(want) {
            Some(mut into) => {
                let n = into.remaining_mut().min(want);
                into.put_slice(&input[at..at + n]);
                at += n;
                conn.received(now).map_err(|e| e.to_string())?;
            }
            None => {
                conn.receive(now, &input[at..at + want])
                    .map_err(|e| e.to_string())?;
                at += want;
            }
        }
        take_events(&mut conn, &mut seen, expect)?;
    }
    Ok(seen)
}

/// The tokio adapter as an application uses it: `next()` on a
/// `WebSocket` over the in-memory stream (`from_upgraded`: no handshake).
async fn tether_tokio(
    input: &Bytes,
    config: &Config,
    count: usize,
    expect: Option<&[u8]>,
) -> Outcome {
    let upgraded = tether::upgrade::Upgraded::new(tether::Role::Server, config.clone());
    let mut ws = tether_tokio::from_upgraded(MemStream::new(input.clone()), upgraded, &[]);
    let mut seen = (0, 0);
    for _ in 0..count {
        match ws
            .next()
            .await
            .ok_or("tether-tokio: end of stream")?
            .map_err(|e| e.to_string())?
        {
            Message::Binary(payload) => note(&mut seen, &payload, expect)?,
            Message::Text(text) => note(&mut seen, text.as_str().as_bytes(), expect)?,
        }
    }
    // to the end of the input (the connection ends with it), then let the
    // adapter's background task see its handles gone and finish, as it
    // would on a running server (a current-thread `block_on` that never
    // waits would otherwise keep every iteration's connection alive)
    while ws.next().await.is_some() {}
    drop(ws);
    tokio::task::yield_now().await;
    Ok(seen)
}

/// The blocking adapter as an application uses it: `read()` on a
/// `WebSocket` over the in-memory stream.
fn tether_std(input: &Bytes, config: &Config, count: usize, expect: Option<&[u8]>) -> Outcome {
    let upgraded = tether::upgrade::Upgraded::new(tether::Role::Server, config.clone());
    let mut ws = tether_std::WebSocket::from_upgraded(MemStream::new(input.clone()), upgraded, &[])
        .map_err(|e| e.to_string())?;
    let mut seen = (0, 0);
    for _ in 0..count {
        match ws.read().map_err(|e| e.to_string())? {
            Message::Binary(payload) => note(&mut seen, &payload, expect)?,
            Message::Text(text) => note(&mut seen, text.as_str().as_bytes(), expect)?,
        }
    }
    Ok(seen)
}

// ----- peers ---------------------------------------------------------------------

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
        match ws.read().map_err(|e| e.to_string())? {
            tungstenite::Message::Binary(payload) => note(&mut seen, &payload, expect)?,
            tungstenite::Message::Text(text) => note(&mut seen, text.as_str().as_bytes(), expect)?,
            _ => {}
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
    let mut seen = (0, 0);
    for _ in 0..count {
        // text: validated by read_frame (simdutf8), handed over as bytes
        let frame = ws.read_frame().await.map_err(|e| e.to_string())?;
        if matches!(
            frame.opcode,
            fastwebsockets::OpCode::Binary | fastwebsockets::OpCode::Text
        ) {
            note(&mut seen, &frame.payload, expect)?;
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
            note(&mut seen, text.as_bytes(), expect)?;
        } else if message.is_binary() {
            note(&mut seen, &message.into_payload(), expect)?;
        }
    }
    Ok(seen)
}

/// `count` text messages of `size` bytes, the last one's final byte
/// replaced by 0xFF (never valid UTF-8).
fn with_invalid_last(size: usize, count: usize) -> Bytes {
    let payload = Kind::Text.payload(size);
    let mut input = masked_messages(OpCode::Text, &payload, count - 1);
    let mut bad = payload;
    if let Some(last) = bad.last_mut() {
        *last = 0xFF;
    }
    input.extend_from_slice(&masked_messages(OpCode::Text, &bad, 1));
    input.freeze()
}

/// Checks every entry on `input` (and, for text, that one bad byte fails
/// each), then adds one benchmark per entry.
fn compare(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    kind: Kind,
    size: usize,
    count: usize,
) {
    let payload = kind.payload(size);
    let input = masked_messages(kind.opcode(), &payload, count).freeze();
    let config = tether_config();
    let expect = Some(&payload[..]);
    let expected = Ok((count, count * size));
    assert_eq!(tether(&input, kind, expect), expected, "tether");
    assert_eq!(floor(&input, kind, expect), expected, "floor");
    assert_eq!(
        tether_connection(&input, &config, expect),
        expected,
        "tether-connection"
    );
    assert_eq!(
        tether_direct(&input, &config, expect),
        expected,
        "tether-direct"
    );
    assert_eq!(
        rt.block_on(tether_tokio(&input, &config, count, expect)),
        expected,
        "tether-tokio"
    );
    assert_eq!(
        tether_std(&input, &config, count, expect),
        expected,
        "tether-std"
    );
    assert_eq!(tungstenite(&input, count, expect), expected, "tungstenite");
    assert_eq!(
        rt.block_on(fastwebsockets(&input, count, expect)),
        expected,
        "fastwebsockets"
    );
    assert_eq!(
        rt.block_on(tokio_websockets(&input, count, expect)),
        expected,
        "tokio-websockets"
    );
    if kind == Kind::Text {
        let bad = with_invalid_last(size, count);
        assert!(tether(&bad, kind, None).is_err(), "tether validates");
        assert!(floor(&bad, kind, None).is_err(), "floor checks UTF-8");
        assert!(
            tether_connection(&bad, &config, None).is_err(),
            "tether-connection validates"
        );
        assert!(
            tether_direct(&bad, &config, None).is_err(),
            "tether-direct validates"
        );
        assert!(
            rt.block_on(tether_tokio(&bad, &config, count, None))
                .is_err(),
            "tether-tokio validates"
        );
        assert!(
            tether_std(&bad, &config, count, None).is_err(),
            "tether-std validates"
        );
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
    }

    group.bench_function("tether", |b| {
        b.iter(|| tether(black_box(&input), kind, None));
    });
    group.bench_function("tether-connection", |b| {
        b.iter(|| tether_connection(black_box(&input), &config, None));
    });
    group.bench_function("tether-direct", |b| {
        b.iter(|| tether_direct(black_box(&input), &config, None));
    });
    group.bench_function("tether-tokio", |b| {
        b.iter(|| rt.block_on(tether_tokio(black_box(&input), &config, count, None)));
    });
    group.bench_function("tether-std", |b| {
        b.iter(|| tether_std(black_box(&input), &config, count, None));
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
    // a measuring stick for the small-message targets (at 64 KiB and up
    // the `ceiling` is; a reader from a stream meets the two-pass bound)
    if size <= 1024 {
        group.bench_function("floor", |b| {
            b.iter(|| floor(black_box(&input), kind, None));
        });
    }
    let mut copy = vec![0u8; input.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| black_box(&mut copy[..]).copy_from_slice(black_box(&input[..])));
    });
    // The least any decoder must do with these bytes: one pass that copies
    // and unmasks them (tether's fastest, `copy_masked`), and for text one
    // UTF-8 check of every payload: the ceiling issue 18's large-message
    // targets are measured against.
    group.bench_function("ceiling", |b| {
        b.iter(|| {
            tether_frame::copy_masked(
                black_box(&mut copy[..]),
                black_box(&input[..]),
                [1, 2, 3, 4],
                0,
            );
            if kind == Kind::Text {
                for _ in 0..count {
                    black_box(simdutf8::basic::from_utf8(black_box(&payload[..])).is_ok());
                }
            }
        });
    });
}

fn frame_decode(c: &mut Criterion) {
    // time and I/O on, as an application's runtime has them (the tether
    // adapter arms timers: keep-alive, idle release)
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    for kind in [Kind::Binary, Kind::Text] {
        for size in SIZES {
            let count = message_count(size);
            let mut group = c.benchmark_group(format!(
                "frame_decode/{}/{}",
                kind.label(),
                size_label(size)
            ));
            group.throughput(Throughput::Bytes((size * count) as u64));
            compare(&mut group, &rt, kind, size, count);
            group.finish();
        }
    }
}

criterion_group!(benches, frame_decode);
criterion_main!(benches);
