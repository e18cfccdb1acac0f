//! Decoding masked binary frames as a server receives them, per payload size.
//! Throughput is reported in payload bytes; for small sizes read frames/s off
//! the element count of the `frames` group.
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tether_benches::{SIZES, masked_frames};
use tether_frame::{FrameDecoder, Limits, Role};

fn frame_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decode");
    for size in SIZES {
        // enough frames per iteration to amortise the setup copy
        let count = (4 << 20) / size.max(1024) * if size < 1024 { 16 } else { 1 };
        let count = count.clamp(4, 4096);
        let input = masked_frames(size, count);
        group.throughput(Throughput::Bytes((size * count) as u64));
        group.bench_with_input(BenchmarkId::new("tether", size), &input, |b, input| {
            let limits = Limits {
                max_frame_size: 2 << 20,
                ..Limits::default()
            };
            b.iter_batched_ref(
                || input.clone(),
                |buf| {
                    let mut dec = FrameDecoder::new(Role::Server, limits);
                    let mut n = 0;
                    while let Ok(Some(frame)) = dec.decode(buf) {
                        n += frame.payload.len();
                    }
                    black_box(n)
                },
                criterion::BatchSize::LargeInput,
            );
        });
    }
    group.finish();

    let mut frames = c.benchmark_group("frame_decode_frames");
    let size = 16;
    let count = 4096;
    let input = masked_frames(size, count);
    frames.throughput(Throughput::Elements(count as u64));
    frames.bench_function(BenchmarkId::new("tether", size), |b| {
        b.iter_batched_ref(
            || input.clone(),
            |buf| {
                let mut dec = FrameDecoder::new(Role::Server, Limits::default());
                let mut n = 0;
                while let Ok(Some(frame)) = dec.decode(buf) {
                    n += frame.payload.len();
                }
                black_box(n)
            },
            criterion::BatchSize::LargeInput,
        );
    });
    frames.finish();
}

criterion_group!(benches, frame_decode);
criterion_main!(benches);
