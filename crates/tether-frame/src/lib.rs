//! # tether-frame
//!
//! The frame layer of RFC 6455 (sections 5.1-5.7) as a sans-IO, `no_std` +
//! `alloc` crate: [`OpCode`], [`FrameHeader`] parse/validate/encode,
//! [`apply_mask`], the streaming [`FrameDecoder`] and the [`FrameEncoder`],
//! and [`Payload`], the bytes of a frame or message (held inline when
//! small, else a reference-counted `Bytes`).
//!
//! This crate never does I/O, never reads a clock and never panics on input:
//! every header is validated against the [`Role`] and [`Limits`] before any of
//! its payload is buffered, and every error names the rule that was broken and
//! the close code to send ([`FrameError::close_code`]).
//!
//! ```
//! use bytes::BytesMut;
//! use tether_frame::{FrameDecoder, FrameEncoder, Limits, OpCode, Role, Rsv};
//!
//! // A client encodes (and masks) a text frame...
//! let mut enc = FrameEncoder::new(Role::Client, || [0x37, 0xfa, 0x21, 0x3d]);
//! let mut wire = BytesMut::new();
//! enc.encode(true, Rsv::NONE, OpCode::Text, b"Hello", &mut wire);
//! assert_eq!(&wire[..], &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//!
//! // ...and a server decodes it.
//! let mut dec = FrameDecoder::new(Role::Server, Limits::default());
//! let frame = dec.decode(&mut wire).unwrap().unwrap();
//! assert_eq!(frame.header.opcode, OpCode::Text);
//! assert_eq!(&frame.payload[..], b"Hello");
//! ```
#![no_std]
// Audited `unsafe` only in `mask`: the calls into the AVX2 copies of the
// masking loops (`mask::wide::apply` and `copy`), after
// run-time detection, and `extend_masked`'s `set_len` over the bytes it
// has just written. Everything else is safe code.
#![deny(unsafe_code)]

// (`bytes` needs an allocator anyway; the decoder boxes its spare buffers)
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod decoder;
mod encoder;
mod error;
mod header;
mod mask;
mod opcode;
mod payload;
mod role;

pub use decoder::{Decoded, Frame, FrameDecoder};
#[cfg(feature = "rand")]
pub use encoder::ThreadRngMask;
pub use encoder::{EncodedHeader, FrameEncoder, MaskSource};
pub use error::FrameError;
pub use header::{FrameHeader, Limits, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Rsv, Status};
pub use mask::{apply_mask, apply_mask_scalar, copy_masked, extend_masked};
pub use opcode::OpCode;
pub use payload::Payload;
pub use role::Role;
