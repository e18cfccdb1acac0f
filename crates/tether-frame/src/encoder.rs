//! Writing frames: header plus payload, masked for the client role.
//!
//! Owns the choice of masking key (through a [`MaskSource`]) and the write
//! into an output buffer. [`FrameEncoder::encode_header`] gives the header
//! alone for callers that write header and payload as separate (vectored)
//! buffers.

use bytes::BytesMut;

use crate::{FrameHeader, MAX_HEADER_LEN, OpCode, Role, Rsv, apply_mask};

/// Supplies masking keys for client frames. RFC 6455 section 5.3 requires
/// each key to be freshly chosen and unpredictable; [`ThreadRngMask`] (the
/// `rand` feature) is such a source. Closures `FnMut() -> [u8; 4]` are
/// sources too (useful for tests that need fixed keys).
pub trait MaskSource {
    /// The key for the next frame.
    fn next_key(&mut self) -> [u8; 4];
}

impl<F: FnMut() -> [u8; 4]> MaskSource for F {
    fn next_key(&mut self) -> [u8; 4] {
        self()
    }
}

/// Keys from `rand`'s thread-local CSPRNG.
#[cfg(feature = "rand")]
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadRngMask;

#[cfg(feature = "rand")]
impl MaskSource for ThreadRngMask {
    fn next_key(&mut self) -> [u8; 4] {
        rand::random()
    }
}

/// An encoded header, ready to be written before its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedHeader {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
    /// The key the payload must be masked with, for the client role.
    pub mask: Option<[u8; 4]>,
}

impl EncodedHeader {
    /// The header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Encodes frames for one role: a client masks every frame with a key from
/// its [`MaskSource`], a server never masks (RFC 6455 section 5.1).
#[derive(Clone, Debug)]
pub struct FrameEncoder<M> {
    role: Role,
    masks: M,
}

impl<M: MaskSource> FrameEncoder<M> {
    /// An encoder for `role`, drawing client keys from `masks`.
    pub fn new(role: Role, masks: M) -> Self {
        Self { role, masks }
    }

    /// The role this encoder sends as.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Encodes the header of a frame with `payload_len` bytes of payload,
    /// drawing a fresh key for the client role.
    pub fn encode_header(
        &mut self,
        fin: bool,
        rsv: Rsv,
        opcode: OpCode,
        payload_len: u64,
    ) -> EncodedHeader {
        let mask = self.role.masks_outgoing().then(|| self.masks.next_key());
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        };
        let (bytes, len) = header.encode();
        EncodedHeader {
            bytes,
            len: len as u8,
            mask,
        }
    }

    /// Appends one whole frame (header, then payload, masked for the client
    /// role) to `out`. Does not check control-frame rules: the caller must
    /// keep control payloads within 125 bytes and set `fin` on them.
    // The same bytes as `encode_header` then the payload, written straight
    // into `out` with fixed-size copies per header form (no 14-byte header
    // array copied by length), after one reservation.
    #[inline]
    pub fn encode(
        &mut self,
        fin: bool,
        rsv: Rsv,
        opcode: OpCode,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        let mask = self.role.masks_outgoing().then(|| self.masks.next_key());
        let b0 = u8::from(fin) << 7 | rsv.bits() | opcode.as_u8();
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        let len = payload.len();
        out.reserve(MAX_HEADER_LEN + len);
        if len < 126 {
            out.extend_from_slice(&[b0, mask_bit | len as u8]);
        } else if let Ok(len) = u16::try_from(len) {
            let [l0, l1] = len.to_be_bytes();
            out.extend_from_slice(&[b0, mask_bit | 126, l0, l1]);
        } else {
            // a slice's length is below 2^63, as the 64-bit form requires
            let [l0, l1, l2, l3, l4, l5, l6, l7] = (len as u64).to_be_bytes();
            out.extend_from_slice(&[b0, mask_bit | 127, l0, l1, l2, l3, l4, l5, l6, l7]);
        }
        match mask {
            Some(key) => {
                out.extend_from_slice(&key);
                let start = out.len();
                out.extend_from_slice(payload);
                if let Some(tail) = out.get_mut(start..) {
                    apply_mask(tail, key, 0);
                }
            }
            None => out.extend_from_slice(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply_mask_scalar;
    use alloc::vec;

    /// `encode` writes exactly the minimal header (RFC 6455 section 5.2)
    /// that `encode_header` gives, then the payload, masked for a client.
    #[test]
    fn rfc6455_5_2_encode_is_header_then_payload() {
        for role in [Role::Client, Role::Server] {
            for len in [0usize, 1, 125, 126, 127, 0xFFFF, 0x1_0000, 70_000] {
                let payload: alloc::vec::Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let key = [0x37, 0xfa, 0x21, 0x3d];
                let mut enc = FrameEncoder::new(role, move || key);
                let mut out = BytesMut::from(&b"before"[..]);
                enc.encode(false, Rsv::RSV1, OpCode::Text, &payload, &mut out);
                let header = enc.encode_header(false, Rsv::RSV1, OpCode::Text, len as u64);
                let mut expect = vec![];
                expect.extend_from_slice(b"before");
                expect.extend_from_slice(header.as_bytes());
                let mut body = payload.clone();
                if role == Role::Client {
                    apply_mask_scalar(&mut body, key, 0);
                }
                expect.extend_from_slice(&body);
                assert_eq!(&out[..], &expect[..], "{role:?} {len}");
            }
        }
    }
}
