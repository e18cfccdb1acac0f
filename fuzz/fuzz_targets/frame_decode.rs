//! Arbitrary bytes into the frame decoder, in both roles and arbitrary
//! chunkings. The decoder must never panic, never return a payload longer
//! than the limit, and unmasked partial payloads must be a prefix of the
//! frame that completes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tether_frame::{FrameDecoder, Limits, Role, Rsv};

fuzz_target!(|input: (bool, bool, u8, &[u8])| {
    let (server, allow_rsv1, chunk, data) = input;
    let role = if server { Role::Server } else { Role::Client };
    let limits = Limits {
        max_frame_size: 4096,
        allowed_rsv: if allow_rsv1 { Rsv::RSV1 } else { Rsv::NONE },
    };
    let mut dec = FrameDecoder::new(role, limits);
    let mut buf = BytesMut::new();
    let chunk = usize::from(chunk).max(1);
    let mut partial: Vec<u8> = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.payload.len() as u64 <= limits.max_frame_size);
                    assert!(frame.payload.starts_with(&partial));
                    partial.clear();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if let Some((_, part)) = dec.partial_payload() {
            assert!(part.starts_with(&partial));
            partial = part.to_vec();
        }
    }
});
