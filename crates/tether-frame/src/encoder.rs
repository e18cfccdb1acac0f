//! Writing frames: header plus payload, masked for the client role.
//!
//! Owns the choice of masking key (through a [`MaskSource`]) and the write
//! into an output buffer. [`FrameEncoder::encode_header`] gives the header
//! alone for callers that write header and payload as separate (vectored)
//! buffers.

use bytes::{BufMut, BytesMut};

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
    pub fn encode(
        &mut self,
        fin: bool,
        rsv: Rsv,
        opcode: OpCode,
        payload: &[u8],
        out: &mut BytesMut,
    ) {
        let header = self.encode_header(fin, rsv, opcode, payload.len() as u64);
        out.reserve(header.as_bytes().len() + payload.len());
        out.put_slice(header.as_bytes());
        let start = out.len();
        out.put_slice(payload);
        if let (Some(key), Some(tail)) = (header.mask, out.get_mut(start..)) {
            apply_mask(tail, key, 0);
        }
    }
}
