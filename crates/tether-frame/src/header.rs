//! The frame header (RFC 6455 section 5.2): parse from a partial buffer,
//! validate against role and limits, encode in the minimal form.
//!
//! Parsing never panics and never reads past the input: it reports how many
//! more bytes it needs. Parsing checks only what the header bytes alone can
//! break (reserved opcodes, the 64-bit length's top bit); [`FrameHeader::validate`]
//! then applies the rules that depend on who we are and what was negotiated.

use crate::{FrameError, OpCode, Role};

/// The longest header: 2 bytes + 8-byte extended length + 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The three reserved bits RSV1-RSV3 of the first header byte (section 5.2),
/// kept in their wire positions (RSV1 = 0x40, RSV2 = 0x20, RSV3 = 0x10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rsv(u8);

impl Rsv {
    /// No reserved bit.
    pub const NONE: Self = Self(0);
    /// RSV1 (claimed by permessage-deflate, RFC 7692).
    pub const RSV1: Self = Self(0x40);
    /// RSV2.
    pub const RSV2: Self = Self(0x20);
    /// RSV3.
    pub const RSV3: Self = Self(0x10);
    /// All three bits.
    pub const ALL: Self = Self(0x70);

    /// Keeps only bits 0x70 of `byte` (the first header byte or a mask of it).
    pub const fn from_bits_truncate(byte: u8) -> Self {
        Self(byte & 0x70)
    }
    /// The bits in their wire positions.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// No bit set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Both sets of bits.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
    /// Bits set here and not in `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl core::fmt::Display for Rsv {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for (bit, name) in [
            (Self::RSV1, "RSV1"),
            (Self::RSV2, "RSV2"),
            (Self::RSV3, "RSV3"),
        ] {
            if self.contains(bit) {
                if !first {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Limits and negotiated options that decide which headers are acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest payload one frame may declare. Checked from the header
    /// alone, before any payload is buffered; over it is
    /// [`FrameError::FrameTooLarge`] (close code 1009). Default 16 MiB.
    pub max_frame_size: u64,
    /// Reserved bits that negotiated extensions have claimed (e.g. RSV1 for
    /// permessage-deflate). Default none: any RSV bit is a protocol error.
    pub allowed_rsv: Rsv,
}

impl Limits {
    /// The default maximum frame payload: 16 MiB.
    pub const DEFAULT_MAX_FRAME_SIZE: u64 = 16 << 20;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: Self::DEFAULT_MAX_FRAME_SIZE,
            allowed_rsv: Rsv::NONE,
        }
    }
}

/// The outcome of parsing from a buffer that may hold only part of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// Parsed; the value and the number of bytes it used.
    Complete(T, usize),
    /// The buffer ends before the item does: at least `needed` more bytes
    /// must arrive before parsing can say more.
    Incomplete {
        /// The minimum number of extra bytes required.
        needed: usize,
    },
}

/// One frame header (RFC 6455 section 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// The reserved bits RSV1-RSV3.
    pub rsv: Rsv,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// A final, unmasked frame with no reserved bits.
    pub const fn new(opcode: OpCode, payload_len: u64) -> Self {
        Self {
            fin: true,
            rsv: Rsv::NONE,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Parses a header from the start of `buf`.
    ///
    /// Returns [`Status::Incomplete`] with the number of missing bytes if
    /// `buf` ends inside the header; never reads past `buf`.
    ///
    /// # Errors
    /// [`FrameError::ReservedOpCode`] and [`FrameError::LengthTopBitSet`],
    /// the errors visible in the header bytes alone. Role, size and RSV rules
    /// are checked by [`FrameHeader::validate`].
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Status<Self>, FrameError> {
        let [b0, b1, rest @ ..] = buf else {
            return Ok(Status::Incomplete {
                needed: 2 - buf.len(),
            });
        };
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, ext_len) = match b1 & 0x7F {
            126 => match rest {
                [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
                _ => {
                    return Ok(Status::Incomplete {
                        needed: 2 + 2 + usize::from(masked) * 4 - buf.len(),
                    });
                }
            },
            127 => match rest.first_chunk::<8>() {
                Some(bytes) => {
                    let len = u64::from_be_bytes(*bytes);
                    if len >> 63 != 0 {
                        return Err(FrameError::LengthTopBitSet);
                    }
                    (len, 8)
                }
                None => {
                    // The top bit is in the first extended byte: report it as
                    // soon as that byte is here, not after all eight.
                    if rest.first().is_some_and(|b| b & 0x80 != 0) {
                        return Err(FrameError::LengthTopBitSet);
                    }
                    return Ok(Status::Incomplete {
                        needed: 2 + 8 + usize::from(masked) * 4 - buf.len(),
                    });
                }
            },
            short => (u64::from(short), 0),
        };
        let header_len = 2 + ext_len + if masked { 4 } else { 0 };
        let mask = if masked {
            match rest.get(ext_len..ext_len + 4) {
                Some(&[k0, k1, k2, k3]) => Some([k0, k1, k2, k3]),
                _ => {
                    return Ok(Status::Incomplete {
                        needed: header_len - buf.len(),
                    });
                }
            }
        } else {
            None
        };
        Ok(Status::Complete(
            Self {
                fin: b0 & 0x80 != 0,
                rsv: Rsv::from_bits_truncate(*b0),
                opcode,
                mask,
                payload_len,
            },
            header_len,
        ))
    }

    /// The whole length (header plus payload) of the frame starting at
    /// `buf`, read from its header alone without checking it; `None` when
    /// `buf` ends inside the header. For scanning runs of whole frames;
    /// [`FrameHeader::parse`] and [`FrameHeader::validate`] still decide
    /// whether a frame is acceptable. Saturates instead of overflowing.
    #[inline]
    pub fn peek_frame_len(buf: &[u8]) -> Option<u64> {
        let [_, b1, rest @ ..] = buf else { return None };
        let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
        let (payload, ext) = match b1 & 0x7F {
            126 => (u64::from(u16::from_be_bytes(*rest.first_chunk::<2>()?)), 2),
            127 => (u64::from_be_bytes(*rest.first_chunk::<8>()?), 8),
            short => (u64::from(short), 0),
        };
        let header = 2 + ext + mask;
        (buf.len() >= header as usize).then(|| payload.saturating_add(header))
    }

    /// Checks the rules that depend on our role and limits, in this order:
    /// reserved bits (5.2), control-frame rules (5.5), masking (5.1), size (7.4.1).
    ///
    /// # Errors
    /// The first rule broken, as a [`FrameError`].
    #[inline]
    pub fn validate(&self, role: Role, limits: &Limits) -> Result<(), FrameError> {
        let extra = self.rsv.difference(limits.allowed_rsv);
        if !extra.is_empty() {
            return Err(FrameError::ReservedBitsSet {
                rsv: self.rsv,
                allowed: limits.allowed_rsv,
            });
        }
        if self.opcode.is_control() {
            if self.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(FrameError::ControlFrameTooLong {
                    opcode: self.opcode,
                    len: self.payload_len,
                });
            }
            if !self.fin {
                return Err(FrameError::FragmentedControlFrame(self.opcode));
            }
        }
        match (role, self.mask.is_some()) {
            (Role::Server, false) => return Err(FrameError::UnmaskedFrameFromClient),
            (Role::Client, true) => return Err(FrameError::MaskedFrameFromServer),
            _ => {}
        }
        if self.payload_len > limits.max_frame_size || usize::try_from(self.payload_len).is_err() {
            return Err(FrameError::FrameTooLarge {
                len: self.payload_len,
                max: limits.max_frame_size,
            });
        }
        Ok(())
    }

    /// The number of bytes [`FrameHeader::encode`] writes: 2, 4 or 10, plus
    /// 4 with a mask. Always the minimal length form (section 5.2).
    pub const fn encoded_len(&self) -> usize {
        let ext = if self.payload_len < 126 {
            0
        } else if self.payload_len <= 0xFFFF {
            2
        } else {
            8
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes the header in its minimal form. Returns the bytes and how
    /// many of them are used (see [`FrameHeader::encoded_len`]).
    ///
    /// A `payload_len` of 2^63 or more cannot be represented; its top bit
    /// is cleared, as no conforming frame can carry it.
    pub fn encode(&self) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut out = [0u8; MAX_HEADER_LEN];
        out[0] = u8::from(self.fin) << 7 | self.rsv.bits() | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = 2;
        if self.payload_len < 126 {
            out[1] = mask_bit | self.payload_len as u8;
        } else if self.payload_len <= 0xFFFF {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
            n = 4;
        } else {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&(self.payload_len & (u64::MAX >> 1)).to_be_bytes());
            n = 10;
        }
        if let Some(key) = self.mask {
            out[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        (out, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(buf: &[u8]) -> (FrameHeader, usize) {
        match FrameHeader::parse(buf) {
            Ok(Status::Complete(h, n)) => (h, n),
            other => panic!("expected a complete header, got {other:?}"),
        }
    }

    #[test]
    fn rfc6455_5_2_incomplete_reports_needed_bytes() {
        assert_eq!(
            FrameHeader::parse(&[]),
            Ok(Status::Incomplete { needed: 2 })
        );
        assert_eq!(
            FrameHeader::parse(&[0x81]),
            Ok(Status::Incomplete { needed: 1 })
        );
        // 16-bit length, masked: 2 + 2 + 4 = 8 bytes
        assert_eq!(
            FrameHeader::parse(&[0x82, 0xFE, 0x01]),
            Ok(Status::Incomplete { needed: 5 })
        );
        // 64-bit length, unmasked: 10 bytes
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7F, 0, 0, 0]),
            Ok(Status::Incomplete { needed: 5 })
        );
        // 7-bit length, masked, key cut short
        assert_eq!(
            FrameHeader::parse(&[0x81, 0x85, 1, 2]),
            Ok(Status::Incomplete { needed: 2 })
        );
    }

    #[test]
    fn rfc6455_5_2_length_64_top_bit_set_is_error() {
        let mut buf = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&buf), Err(FrameError::LengthTopBitSet));
        // reported as soon as the first length byte arrives
        assert_eq!(
            FrameHeader::parse(&buf[..3]),
            Err(FrameError::LengthTopBitSet)
        );
        buf[2] = 0x7F;
        assert!(matches!(FrameHeader::parse(&buf), Ok(Status::Complete(..))));
    }

    #[test]
    fn rfc6455_5_2_reserved_opcode_in_header_is_error() {
        assert_eq!(
            FrameHeader::parse(&[0x83, 0x00]),
            Err(FrameError::ReservedOpCode(3))
        );
        assert_eq!(
            FrameHeader::parse(&[0x8B, 0x00]),
            Err(FrameError::ReservedOpCode(0xB))
        );
    }

    #[test]
    fn rfc6455_5_2_lengths_7_16_64() {
        assert_eq!(parse_ok(&[0x82, 125]).0.payload_len, 125);
        assert_eq!(parse_ok(&[0x82, 126, 0x01, 0x00]).0.payload_len, 256);
        let (h, n) = parse_ok(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn rfc6455_5_2_non_minimal_length_is_accepted() {
        // The minimal-length rule binds senders; receivers accept either form.
        assert_eq!(parse_ok(&[0x82, 126, 0x00, 0x05]).0.payload_len, 5);
    }

    #[test]
    fn rfc6455_5_2_encode_is_minimal() {
        for (len, expect) in [
            (0u64, 2usize),
            (125, 2),
            (126, 4),
            (0xFFFF, 4),
            (0x10000, 10),
        ] {
            let h = FrameHeader::new(OpCode::Binary, len);
            assert_eq!(h.encode().1, expect, "len {len}");
            assert_eq!(h.encoded_len(), expect);
            let masked = FrameHeader {
                mask: Some([1, 2, 3, 4]),
                ..h
            };
            assert_eq!(masked.encode().1, expect + 4);
        }
    }

    fn validate(h: FrameHeader, role: Role) -> Result<(), FrameError> {
        h.validate(role, &Limits::default())
    }

    #[test]
    fn rfc6455_5_5_control_frame_payload_over_125() {
        let h = FrameHeader::new(OpCode::Ping, 126);
        assert_eq!(
            validate(h, Role::Client),
            Err(FrameError::ControlFrameTooLong {
                opcode: OpCode::Ping,
                len: 126
            })
        );
        assert_eq!(
            validate(FrameHeader::new(OpCode::Ping, 125), Role::Client),
            Ok(())
        );
        assert_eq!(
            FrameError::ControlFrameTooLong {
                opcode: OpCode::Ping,
                len: 126
            }
            .close_code(),
            1002
        );
    }

    #[test]
    fn rfc6455_5_5_control_frame_without_fin() {
        for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
            let h = FrameHeader {
                fin: false,
                ..FrameHeader::new(op, 0)
            };
            assert_eq!(
                validate(h, Role::Client),
                Err(FrameError::FragmentedControlFrame(op))
            );
        }
    }

    #[test]
    fn rfc6455_5_2_rsv_bits_without_extension() {
        for rsv in [Rsv::RSV1, Rsv::RSV2, Rsv::RSV3, Rsv::ALL] {
            let h = FrameHeader {
                rsv,
                ..FrameHeader::new(OpCode::Text, 0)
            };
            assert_eq!(
                validate(h, Role::Client),
                Err(FrameError::ReservedBitsSet {
                    rsv,
                    allowed: Rsv::NONE
                })
            );
        }
        // an extension that claimed RSV1 allows exactly RSV1
        let limits = Limits {
            allowed_rsv: Rsv::RSV1,
            ..Limits::default()
        };
        let h = FrameHeader {
            rsv: Rsv::RSV1,
            ..FrameHeader::new(OpCode::Text, 0)
        };
        assert_eq!(h.validate(Role::Client, &limits), Ok(()));
        let h = FrameHeader {
            rsv: Rsv::RSV2,
            ..h
        };
        assert!(h.validate(Role::Client, &limits).is_err());
    }

    #[test]
    fn rfc6455_5_1_server_rejects_unmasked_frame() {
        let h = FrameHeader::new(OpCode::Text, 5);
        assert_eq!(
            validate(h, Role::Server),
            Err(FrameError::UnmaskedFrameFromClient)
        );
        let masked = FrameHeader {
            mask: Some([0; 4]),
            ..h
        };
        assert_eq!(validate(masked, Role::Server), Ok(()));
    }

    #[test]
    fn rfc6455_5_1_client_rejects_masked_frame() {
        let h = FrameHeader {
            mask: Some([1, 2, 3, 4]),
            ..FrameHeader::new(OpCode::Text, 5)
        };
        assert_eq!(
            validate(h, Role::Client),
            Err(FrameError::MaskedFrameFromServer)
        );
    }

    #[test]
    fn rfc6455_7_4_1_frame_over_limit_is_1009() {
        let limits = Limits {
            max_frame_size: 1000,
            ..Limits::default()
        };
        let h = FrameHeader::new(OpCode::Binary, 1001);
        let err = h.validate(Role::Client, &limits).unwrap_err();
        assert_eq!(
            err,
            FrameError::FrameTooLarge {
                len: 1001,
                max: 1000
            }
        );
        assert_eq!(err.close_code(), 1009);
        assert_eq!(
            FrameHeader::new(OpCode::Binary, 1000).validate(Role::Client, &limits),
            Ok(())
        );
    }
}
