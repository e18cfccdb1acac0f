//! Arbitrary bytes into the frame decoder, in both roles and arbitrary
//! chunkings. The decoder must never panic, never return a payload longer
//! than the limit, and unmasked partial payloads must be a prefix of the
//! frame that completes. `decode_small` (small whole frames copied out),
//! tried after `decode_small_from` (small whole frames decoded from a
//! slice), runs beside `decode` on the same chunks and must give the same
//! frames and the same errors.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tether_frame::{Decoded, FrameDecoder, FrameError, Limits, Payload, Role, Rsv};

fuzz_target!(|input: (bool, bool, u8, &[u8])| {
    let (server, allow_rsv1, chunk, data) = input;
    let role = if server { Role::Server } else { Role::Client };
    let limits = Limits {
        max_frame_size: 4096,
        allowed_rsv: if allow_rsv1 { Rsv::RSV1 } else { Rsv::NONE },
    };
    let mut dec = FrameDecoder::new(role, limits);
    let mut small = FrameDecoder::new(role, limits);
    let (mut buf, mut small_buf) = (BytesMut::new(), BytesMut::new());
    let chunk = usize::from(chunk).max(1);
    let mut partial: Vec<u8> = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        small_buf.extend_from_slice(piece);
        loop {
            let other = match small.decode_small_from(&small_buf) {
                Ok(Some((header, payload, used))) => {
                    assert!(payload.is_inline() && payload.len() <= Payload::INLINE_CAPACITY);
                    bytes::Buf::advance(&mut small_buf, used);
                    Ok(Some((header, payload.to_vec())))
                }
                Ok(None) => small_frame(small.decode_small(&mut small_buf)),
                Err(e) => Err(e),
            };
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.payload.len() as u64 <= limits.max_frame_size);
                    assert!(frame.payload.starts_with(&partial));
                    assert_eq!(other, Ok(Some((frame.header, frame.payload.to_vec()))));
                    partial.clear();
                }
                Ok(None) => {
                    assert_eq!(other, Ok(None));
                    break;
                }
                Err(e) => {
                    assert_eq!(other, Err(e));
                    return;
                }
            }
        }
        assert_eq!(buf, small_buf);
        if let Some((_, part)) = dec.partial_payload() {
            assert!(part.starts_with(&partial));
            partial = part.to_vec();
        }
    }
});

type Plain = Result<Option<(tether_frame::FrameHeader, Vec<u8>)>, FrameError>;

/// `decode_small`'s answer in `decode`'s terms; a small frame must be held
/// inline and no longer than an inline payload holds.
fn small_frame(decoded: Result<Option<Decoded>, FrameError>) -> Plain {
    Ok(match decoded? {
        None => None,
        Some(Decoded::Small { header, payload }) => {
            assert!(payload.is_inline() && payload.len() <= Payload::INLINE_CAPACITY);
            Some((header, payload.to_vec()))
        }
        Some(Decoded::Frame(frame)) => Some((frame.header, frame.payload.to_vec())),
    })
}
