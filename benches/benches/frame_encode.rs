//! Encoding binary frames into memory, client side (masked, a fresh key per
//! frame) and server side (unmasked), at 16 B, 125 B, 1 KiB, 64 KiB and
//! 1 MiB: tether beside tungstenite, fastwebsockets and tokio-websockets.
//!
//! Groups `frame_encode/{client,server}/<size>` report payload bytes/s.
//! Each entry turns a payload the caller holds into the frame's wire bytes
//! (header, then payload, masked for the client) in a buffer reused between
//! frames, through the library's lowest public encoder:
//! - `tether`: `FrameEncoder::encode` into a `BytesMut` (keys from
//!   `ThreadRngMask`, as `tether::Connection` draws them);
//! - `tungstenite`: `Frame::message(..).format(&mut Vec)` (keys from the
//!   same `rand` thread RNG tungstenite uses; masking in `format` copies the
//!   payload once more than its internal write path does);
//! - `fastwebsockets`: `Frame::binary`, `Frame::mask` (its own `rand` key),
//!   `Frame::write(&mut Vec)`;
//! - `tokio-websockets`: `WebSocketStream::send` into [`MemStream`] with a
//!   sink (its frame encoder is private), the sink copying what is written
//!   as a socket would; keys from its `fastrand`.
//!
//! Checked before timing: one frame from each entry decodes (tether's
//! decoder, in the receiving role) to the payload that was sent, masked
//! exactly when it should be.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::SinkExt;
use tether_benches::{MemStream, SIZES, binary_payload, message_count, size_label};
use tether_frame::{
    FrameDecoder, FrameEncoder, Limits, MaskSource, OpCode, Role, Rsv, ThreadRngMask,
};
use tokio::runtime::Runtime;

/// The sink given to tokio-websockets: room for one frame of the largest
/// size, so it is emptied (not reallocated) between frames.
const SINK: usize = (1 << 20) + 64;

fn tether(enc: &mut FrameEncoder<ThreadRngMask>, payload: &[u8], out: &mut BytesMut) {
    out.clear();
    enc.encode(true, Rsv::NONE, OpCode::Binary, payload, out);
    black_box(&out[..]);
}

fn tungstenite(role: Role, payload: &Bytes, out: &mut Vec<u8>) {
    use tungstenite::protocol::frame::{Frame, coding::Data, coding::OpCode};
    out.clear();
    let mut frame = Frame::message(payload.clone(), OpCode::Data(Data::Binary), true);
    if role == Role::Client {
        frame.header_mut().mask = Some(ThreadRngMask.next_key());
    }
    frame.format(out).expect("tungstenite: write to a Vec");
    black_box(&out[..]);
}

/// Returns the frame's length: `Frame::write` writes over the front of `out`
/// (growing it when needed) and hands back the frame's slice.
fn fastwebsockets(role: Role, payload: &[u8], out: &mut Vec<u8>) -> usize {
    let mut frame = fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(payload));
    if role == Role::Client {
        frame.mask();
    }
    black_box(frame.write(out)).len()
}

type TwsSink = tokio_websockets::WebSocketStream<MemStream>;

fn tws_socket(role: Role) -> TwsSink {
    let stream = MemStream::with_sink(Bytes::new(), SINK);
    match role {
        Role::Client => tokio_websockets::ClientBuilder::new().take_over(stream),
        Role::Server => tokio_websockets::ServerBuilder::new().serve(stream),
    }
}

async fn tokio_websockets(ws: &mut TwsSink, payload: &Bytes) {
    ws.send(tokio_websockets::Message::binary(payload.clone()))
        .await
        .expect("tokio-websockets: send into memory");
    black_box(ws.get_ref().sink());
}

/// Decodes one frame as the receiving side and checks it.
fn check(name: &str, role: Role, wire: &[u8], payload: &[u8]) {
    let receiver = match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut dec = FrameDecoder::new(
        receiver,
        Limits {
            max_frame_size: 2 << 20,
            ..Limits::default()
        },
    );
    let mut buf = BytesMut::from(wire);
    let frame = dec
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: incomplete frame"));
    assert!(buf.is_empty(), "{name}: one frame");
    assert_eq!(frame.header.opcode, OpCode::Binary, "{name}");
    assert_eq!(frame.header.mask.is_some(), role == Role::Client, "{name}");
    assert!(frame.payload == payload, "{name}: payload");
}

fn compare(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    role: Role,
    size: usize,
    count: usize,
) {
    let payload = Bytes::from(binary_payload(size));
    let mut enc = FrameEncoder::new(role, ThreadRngMask);
    let mut out = BytesMut::new();
    let mut vec = Vec::new();
    let mut tws = tws_socket(role);

    tether(&mut enc, &payload, &mut out);
    check("tether", role, &out, &payload);
    tungstenite(role, &payload, &mut vec);
    check("tungstenite", role, &vec, &payload);
    let len = fastwebsockets(role, &payload, &mut vec);
    check("fastwebsockets", role, &vec[..len], &payload);
    tws.get_mut().clear_sink();
    rt.block_on(tokio_websockets(&mut tws, &payload));
    check("tokio-websockets", role, tws.get_ref().sink(), &payload);

    group.bench_function("tether", |b| {
        b.iter(|| {
            for _ in 0..count {
                tether(&mut enc, black_box(&payload), &mut out);
            }
        });
    });
    group.bench_function("tungstenite", |b| {
        b.iter(|| {
            for _ in 0..count {
                tungstenite(role, black_box(&payload), &mut vec);
            }
        });
    });
    group.bench_function("fastwebsockets", |b| {
        b.iter(|| {
            for _ in 0..count {
                fastwebsockets(role, black_box(&payload), &mut vec);
            }
        });
    });
    group.bench_function("tokio-websockets", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..count {
                    tokio_websockets(&mut tws, black_box(&payload)).await;
                }
            });
        });
    });
}

fn frame_encode(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    for (role, label) in [(Role::Client, "client"), (Role::Server, "server")] {
        for size in SIZES {
            let count = message_count(size);
            let mut group = c.benchmark_group(format!("frame_encode/{label}/{}", size_label(size)));
            group.throughput(Throughput::Bytes((size * count) as u64));
            compare(&mut group, &rt, role, size, count);
            group.finish();
        }
    }
}

criterion_group!(benches, frame_encode);
criterion_main!(benches);
