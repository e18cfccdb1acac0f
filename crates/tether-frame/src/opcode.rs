//! Frame opcodes (RFC 6455 section 5.2 and 11.8).
//!
//! Owns the mapping between the 4-bit opcode field and [`OpCode`]. The six
//! defined opcodes decode; the reserved ones (0x3-0x7 for data, 0xB-0xF for
//! control) are reported as errors because no extension here defines them.

use crate::FrameError;

/// The kind of a frame, from the low 4 bits of its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message (RFC 6455 section 5.4).
    Continuation,
    /// 0x1: the first frame of a UTF-8 text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: starts or answers the closing handshake (section 5.5.1).
    Close,
    /// 0x9: asks the peer for a Pong (section 5.5.2).
    Ping,
    /// 0xA: answers a Ping, or is an unsolicited heartbeat (section 5.5.3).
    Pong,
}

impl OpCode {
    /// Decodes the 4-bit opcode field.
    ///
    /// # Errors
    /// [`FrameError::ReservedOpCode`] for 0x3-0x7 and 0xB-0xF (RFC 6455 section 5.2:
    /// "If an unknown opcode is received, the receiving endpoint MUST _Fail the
    /// WebSocket Connection_").
    pub const fn from_u8(bits: u8) -> Result<Self, FrameError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(FrameError::ReservedOpCode(other)),
        })
    }

    /// The 4-bit wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Control frames (Close, Ping, Pong) have the high opcode bit set
    /// (section 5.5): at most 125 bytes of payload and never fragmented.
    pub const fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }

    /// Data frames: Continuation, Text and Binary (section 5.6).
    pub const fn is_data(self) -> bool {
        !self.is_control()
    }
}

impl core::fmt::Display for OpCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Continuation => "Continuation",
            Self::Text => "Text",
            Self::Binary => "Binary",
            Self::Close => "Close",
            Self::Ping => "Ping",
            Self::Pong => "Pong",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_5_2_defined_opcodes_round_trip() {
        for op in [
            OpCode::Continuation,
            OpCode::Text,
            OpCode::Binary,
            OpCode::Close,
            OpCode::Ping,
            OpCode::Pong,
        ] {
            assert_eq!(OpCode::from_u8(op.as_u8()), Ok(op));
        }
    }

    #[test]
    fn rfc6455_5_2_reserved_opcodes_are_errors() {
        for bits in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(OpCode::from_u8(bits), Err(FrameError::ReservedOpCode(bits)));
        }
    }

    #[test]
    fn rfc6455_5_5_control_opcodes() {
        assert!(OpCode::Close.is_control());
        assert!(OpCode::Ping.is_control());
        assert!(OpCode::Pong.is_control());
        assert!(OpCode::Text.is_data());
        assert!(OpCode::Binary.is_data());
        assert!(OpCode::Continuation.is_data());
    }
}
