//! Shared inputs for tether's criterion benchmarks (`cargo bench -p tether-benches`).

use bytes::BytesMut;
use tether_frame::{FrameEncoder, OpCode, Role, Rsv};

/// The payload sizes every frame benchmark runs over.
pub const SIZES: [usize; 5] = [16, 125, 1024, 64 * 1024, 1024 * 1024];

/// `count` masked binary frames of `size` bytes each, as a client sends them.
pub fn masked_frames(size: usize, count: usize) -> BytesMut {
    let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let mut n = 0u32;
    let mut enc = FrameEncoder::new(Role::Client, move || {
        n = n.wrapping_add(0x9E37_79B9);
        n.to_le_bytes()
    });
    let mut out = BytesMut::new();
    for _ in 0..count {
        enc.encode(true, Rsv::NONE, OpCode::Binary, &payload, &mut out);
    }
    out
}
