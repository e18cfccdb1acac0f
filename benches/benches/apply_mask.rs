//! `apply_mask` beside a byte-wise loop and a plain memcpy of the same size.
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tether_benches::SIZES;
use tether_frame::{apply_mask, apply_mask_scalar};

fn masking(c: &mut Criterion) {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut group = c.benchmark_group("apply_mask");
    for size in SIZES {
        let mut buf = vec![0xA5u8; size];
        let src = vec![0x5Au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("tether", size), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), key, 1));
        });
        group.bench_function(BenchmarkId::new("bytewise", size), |b| {
            b.iter(|| apply_mask_scalar(black_box(&mut buf), key, 1));
        });
        group.bench_function(BenchmarkId::new("memcpy", size), |b| {
            b.iter(|| black_box(&mut buf).copy_from_slice(black_box(&src)));
        });
    }
    group.finish();
}

criterion_group!(benches, masking);
criterion_main!(benches);
