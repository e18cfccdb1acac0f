//! Errors found in a frame header (RFC 6455 sections 5.2, 5.5 and 7.4.1).
//!
//! Every variant is something the *peer* did wrong on the wire; each maps to
//! the close code the connection must send when it fails ([`FrameError::close_code`]).

use crate::{OpCode, Rsv};

/// The peer sent a frame that breaks RFC 6455, or one larger than our limits.
///
/// Each variant says what came and what was allowed, and maps to the close
/// code to send with [`FrameError::close_code`]: 1009 ("message too big") for
/// [`FrameError::FrameTooLarge`], 1002 ("protocol error") for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Opcode 0x3-0x7 or 0xB-0xF: reserved for future use (section 5.2).
    ReservedOpCode(u8),
    /// A 64-bit payload length with its most significant bit set (section 5.2).
    LengthTopBitSet,
    /// A control frame whose payload is over 125 bytes (section 5.5).
    ControlFrameTooLong {
        /// The control frame's opcode.
        opcode: OpCode,
        /// The declared payload length.
        len: u64,
    },
    /// A control frame without FIN: control frames must not be fragmented (section 5.5).
    FragmentedControlFrame(OpCode),
    /// RSV1, RSV2 or RSV3 set while no negotiated extension claimed it (section 5.2).
    ReservedBitsSet {
        /// The reserved bits that were set.
        rsv: Rsv,
        /// The bits negotiated extensions allow.
        allowed: Rsv,
    },
    /// A server received a frame without a mask: clients must mask every frame (section 5.1).
    UnmaskedFrameFromClient,
    /// A client received a masked frame: servers must never mask (section 5.1).
    MaskedFrameFromServer,
    /// The declared payload length is over the configured maximum frame size;
    /// rejected from the header alone, before any payload is buffered (section 7.4.1, 1009).
    FrameTooLarge {
        /// The declared payload length.
        len: u64,
        /// The configured maximum.
        max: u64,
    },
}

impl FrameError {
    /// The close code to send when failing the connection for this error
    /// (RFC 6455 section 7.4.1): 1009 for an over-limit frame, 1002 otherwise.
    pub const fn close_code(&self) -> u16 {
        match self {
            Self::FrameTooLarge { .. } => 1009,
            _ => 1002,
        }
    }
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ReservedOpCode(op) => {
                write!(f, "reserved opcode {op:#x} received (RFC 6455 5.2)")
            }
            Self::LengthTopBitSet => {
                f.write_str("64-bit payload length has its most significant bit set (RFC 6455 5.2)")
            }
            Self::ControlFrameTooLong { opcode, len } => write!(
                f,
                "{opcode} frame with {len} bytes of payload; control frames allow at most 125 (RFC 6455 5.5)"
            ),
            Self::FragmentedControlFrame(opcode) => write!(
                f,
                "{opcode} frame without FIN; control frames must not be fragmented (RFC 6455 5.5)"
            ),
            Self::ReservedBitsSet { rsv, allowed } => write!(
                f,
                "reserved bits {rsv} set but only {allowed} negotiated (RFC 6455 5.2)"
            ),
            Self::UnmaskedFrameFromClient => {
                f.write_str("client sent an unmasked frame; clients must mask (RFC 6455 5.1)")
            }
            Self::MaskedFrameFromServer => {
                f.write_str("server sent a masked frame; servers must not mask (RFC 6455 5.1)")
            }
            Self::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes is over the limit of {max} bytes")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}
