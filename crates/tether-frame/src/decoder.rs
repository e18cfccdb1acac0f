//! The streaming frame decoder over [`bytes::BytesMut`].
//!
//! Owns the state between "header parsed" and "payload complete". The caller
//! appends whatever bytes arrived to one `BytesMut` and calls
//! [`FrameDecoder::decode`] until it returns `Ok(None)`. Payload bytes are
//! unmasked in place as they arrive, once each; a complete payload is split off
//! the buffer without copying. [`FrameDecoder::partial_payload`] shows the
//! unmasked bytes of an incomplete frame, so the layer above can check a text
//! frame's UTF-8 before the frame is complete. Never does I/O, never panics.

use bytes::{Buf, BytesMut};

use crate::{FrameError, FrameHeader, Limits, Role, Status, apply_mask};

/// One whole frame: its header and its unmasked payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The header as received (`mask` still holds the key that was used).
    pub header: FrameHeader,
    /// The payload, already unmasked.
    pub payload: BytesMut,
}

/// Decodes frames for one role, under one set of [`Limits`].
///
/// After an error the decoder is finished: every later call returns the same
/// error, since RFC 6455 requires the connection to be failed.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    role: Role,
    limits: Limits,
    /// Header of the frame whose payload is arriving, and how many of its
    /// payload bytes (at the front of the buffer) are unmasked already.
    pending: Option<(FrameHeader, usize)>,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder for frames received by `role`.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            limits,
            pending: None,
            failed: None,
        }
    }

    /// The role this decoder receives for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits, e.g. once an extension has claimed RSV1. Applies
    /// from the next header on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Decodes the next frame from the front of `buf`.
    ///
    /// Returns `Ok(Some(frame))` and removes its bytes from `buf` when a whole
    /// frame is there; `Ok(None)` when more bytes are needed. A header is
    /// consumed (and validated) as soon as it is complete, so a frame over
    /// [`Limits::max_frame_size`] fails before any of its payload is buffered.
    /// Bytes of a frame that are not yet complete stay in `buf`, unmasked.
    ///
    /// # Errors
    /// The first rule the input breaks, as a [`FrameError`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let (header, unmasked) = match self.pending {
            Some(p) => p,
            None => match FrameHeader::parse(buf) {
                Ok(Status::Complete(header, used)) => {
                    if let Err(err) = header.validate(self.role, &self.limits) {
                        self.failed = Some(err);
                        return Err(err);
                    }
                    buf.advance(used);
                    (header, 0)
                }
                Ok(Status::Incomplete { .. }) => return Ok(None),
                Err(err) => {
                    self.failed = Some(err);
                    return Err(err);
                }
            },
        };
        // validate() guarantees the length fits in usize.
        let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        let available = buf.len().min(len);
        if let (Some(key), Some(fresh)) = (header.mask, buf.get_mut(unmasked..available)) {
            apply_mask(fresh, key, unmasked);
        }
        if available < len {
            self.pending = Some((header, available));
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(Frame {
            header,
            payload: buf.split_to(len),
        }))
    }

    /// The header of the frame whose payload is still arriving, if any.
    pub fn pending_header(&self) -> Option<&FrameHeader> {
        self.pending.as_ref().map(|(h, _)| h)
    }

    /// The header and the unmasked payload bytes received so far of the frame
    /// still arriving, read from the front of `buf` (the same buffer passed to
    /// [`FrameDecoder::decode`], unchanged since). `None` when no frame is
    /// pending.
    pub fn partial_payload<'b>(&self, buf: &'b [u8]) -> Option<(&FrameHeader, &'b [u8])> {
        let (header, unmasked) = self.pending.as_ref()?;
        Some((header, buf.get(..*unmasked)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpCode;

    #[test]
    fn rfc6455_5_2_payload_arriving_in_pieces_is_unmasked_once() {
        let mut dec = FrameDecoder::new(Role::Server, Limits::default());
        // RFC 6455 5.7: masked "Hello"
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&wire[..8]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        let (h, part) = dec.partial_payload(&buf).unwrap();
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(part, b"He");
        buf.extend_from_slice(&wire[8..10]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(dec.partial_payload(&buf).unwrap().1, b"Hell");
        buf.extend_from_slice(&wire[10..]);
        let frame = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&frame.payload[..], b"Hello");
        assert!(buf.is_empty());
        assert!(dec.partial_payload(&buf).is_none());
    }

    #[test]
    fn rfc6455_7_4_1_oversized_frame_fails_before_payload() {
        let limits = Limits {
            max_frame_size: 10,
            ..Limits::default()
        };
        let mut dec = FrameDecoder::new(Role::Client, limits);
        let mut buf = BytesMut::from(&[0x82u8, 11][..]);
        let err = dec.decode(&mut buf).unwrap_err();
        assert_eq!(err.close_code(), 1009);
        // the decoder stays failed
        assert_eq!(dec.decode(&mut buf), Err(err));
    }

    #[test]
    fn zero_copy_for_whole_frames() {
        let mut dec = FrameDecoder::new(Role::Client, Limits::default());
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0x82, 3, 1, 2, 3, 0x82, 1, 9]);
        let base = buf.as_ptr() as usize;
        let f1 = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            f1.payload.as_ptr() as usize,
            base + 2,
            "payload is a view, not a copy"
        );
        let f2 = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&f2.payload[..], &[9]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }
}
