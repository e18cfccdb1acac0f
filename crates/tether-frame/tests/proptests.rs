//! Round-trip and robustness properties of the frame codec.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use proptest::prelude::*;
use tether_frame::{
    Decoded, Frame, FrameDecoder, FrameEncoder, FrameHeader, Limits, OpCode, Payload, Role, Rsv,
    Status,
};

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

/// A valid frame for the receiving role: control frames are short and final.
fn frame() -> impl Strategy<Value = (bool, OpCode, Vec<u8>)> {
    (any::<bool>(), opcode()).prop_flat_map(|(fin, op)| {
        let max = if op.is_control() { 125 } else { 70_000 };
        let fin = fin || op.is_control();
        // mostly small payloads, sometimes past the 16-bit length boundary
        let len = prop_oneof![4 => 0usize..200.min(max + 1), 1 => 0usize..=max];
        (
            Just(fin),
            Just(op),
            len.prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
        )
    })
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Client), Just(Role::Server)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Encode then decode gives back every header and payload, whatever
    /// split points the encoded bytes arrive in (RFC 6455 5.2).
    #[test]
    fn rfc6455_5_2_encode_decode_round_trip_any_split(
        sender in role(),
        frames in proptest::collection::vec(frame(), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        mode in 0u8..3,
    ) {
        let mut key_state = 0x1234_5678u32;
        let mut enc = FrameEncoder::new(sender, move || {
            key_state = key_state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            key_state.to_be_bytes()
        });
        let mut wire = BytesMut::new();
        for (fin, op, payload) in &frames {
            enc.encode(*fin, Rsv::NONE, *op, payload, &mut wire);
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();

        let mut dec = FrameDecoder::new(sender.peer(), Limits::default());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for w in points.windows(2) {
            buf.extend_from_slice(&wire[w[0]..w[1]]);
            loop {
                // `decode_small` copies whole small frames out, and
                // `decode_small_from` decodes them from a slice; the bytes
                // and headers are the same as `decode`'s
                if mode == 2
                    && let Some((header, payload, used)) = dec.decode_small_from(&buf).unwrap()
                {
                    prop_assert!(payload.is_inline());
                    prop_assert_eq!(used as u64, header.encoded_len() as u64 + header.payload_len);
                    bytes::Buf::advance(&mut buf, used);
                    out.push(Frame { header, payload: BytesMut::from(&payload[..]) });
                    continue;
                }
                let f = if mode >= 1 {
                    match dec.decode_small(&mut buf).unwrap() {
                        None => break,
                        Some(Decoded::Frame(f)) => f,
                        Some(Decoded::Small { header, payload }) => {
                            prop_assert!(payload.is_inline());
                            prop_assert!(payload.len() <= Payload::INLINE_CAPACITY);
                            Frame { header, payload: BytesMut::from(&payload[..]) }
                        }
                    }
                } else {
                    match dec.decode(&mut buf).unwrap() {
                        None => break,
                        Some(f) => f,
                    }
                };
                out.push(f);
            }
            // partial payloads are always a prefix of the real payload
            if let Some((h, part)) = dec.partial_payload() {
                let (_, _, p) = &frames[out.len()];
                prop_assert_eq!(h.opcode, frames[out.len()].1);
                prop_assert_eq!(part, &p[..part.len()]);
            }
        }
        prop_assert_eq!(out.len(), frames.len());
        for (f, (fin, op, payload)) in out.iter().zip(&frames) {
            prop_assert_eq!(f.header.fin, *fin);
            prop_assert_eq!(f.header.opcode, *op);
            prop_assert_eq!(f.header.mask.is_some(), sender == Role::Client);
            prop_assert_eq!(&f.payload[..], &payload[..]);
        }
        prop_assert!(buf.is_empty());
    }

    /// Any header encodes to its minimal form and parses back to itself.
    #[test]
    fn rfc6455_5_2_header_round_trip(
        fin in any::<bool>(),
        rsv in 0u8..8,
        op in opcode(),
        mask in proptest::option::of(any::<[u8; 4]>()),
        len in prop_oneof![0u64..130, 65_530u64..65_540, 0u64..(1 << 63)],
    ) {
        let h = FrameHeader { fin, rsv: Rsv::from_bits_truncate(rsv << 4), opcode: op, mask, payload_len: len };
        let (bytes, n) = h.encode();
        prop_assert_eq!(n, h.encoded_len());
        prop_assert_eq!(FrameHeader::parse(&bytes[..n]), Ok(Status::Complete(h, n)));
        for cut in 0..n {
            let parsed = FrameHeader::parse(&bytes[..cut]);
            let ok = matches!(parsed, Ok(Status::Incomplete { needed }) if needed >= 1 && cut + needed <= n);
            prop_assert!(ok, "cut {} of {}: {:?}", cut, n, parsed);
        }
    }

    /// Arbitrary bytes never panic the decoder, in either role, in any split.
    #[test]
    fn decoder_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..400),
        chunk in 1usize..50,
        server in any::<bool>(),
        small in any::<bool>(),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let mut dec = FrameDecoder::new(role, Limits { max_frame_size: 300, ..Limits::default() });
        let mut buf = BytesMut::new();
        'outer: for piece in data.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                let decoded = if small {
                    match dec.decode_small_from(&buf) {
                        Ok(Some((_, _, used))) => {
                            bytes::Buf::advance(&mut buf, used);
                            Ok(Some(()))
                        }
                        Ok(None) => dec.decode_small(&mut buf).map(|d| d.map(|_| ())),
                        Err(e) => Err(e),
                    }
                } else {
                    dec.decode(&mut buf).map(|d| d.map(|_| ()))
                };
                match decoded {
                    Ok(Some(())) => {}
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }
}

proptest! {
    /// `peek_frame_len` agrees with `parse` on every encodable header.
    #[test]
    fn rfc6455_5_2_peek_frame_len_matches_parse(
        op in opcode(),
        mask in proptest::option::of(any::<[u8; 4]>()),
        len in prop_oneof![0u64..130, 65_530u64..65_540, 0u64..(1 << 40)],
        cut in 0usize..14,
    ) {
        let h = FrameHeader { fin: true, rsv: Rsv::NONE, opcode: op, mask, payload_len: len };
        let (bytes, n) = h.encode();
        prop_assert_eq!(FrameHeader::peek_frame_len(&bytes[..n]), Some(len + n as u64));
        let cut = cut.min(n - 1);
        prop_assert_eq!(FrameHeader::peek_frame_len(&bytes[..cut]), None);
    }
}
