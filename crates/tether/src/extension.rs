//! The extension hook (RFC 6455 section 9): room for permessage-deflate
//! (RFC 7692) and others without a redesign of the connection.
//!
//! An [`Extension`] claims RSV bits and transforms whole message payloads:
//! incoming after reassembly, outgoing before framing. The connection keeps
//! the framing rules: RSV bits only on the first frame of a data message,
//! and UTF-8 of a transformed text message is checked after `decode`.

use alloc::string::String;

use bytes::{Bytes, BytesMut};
use tether_frame::Rsv;

use crate::{CloseCode, MessageKind};

/// Why an extension refused a message; becomes the connection's close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionError {
    /// The close code to send (e.g. 1007 for a corrupt compressed stream,
    /// 1009 when the decoded size is over the limit).
    pub code: CloseCode,
    /// What went wrong, in plain words.
    pub reason: String,
}

/// A received message being decoded over several steps
/// ([`Extension::decode_step`]): what arrived and how far decoding got.
#[derive(Debug)]
pub struct DecodeJob {
    /// The message's kind.
    pub kind: MessageKind,
    /// RSV bits of its first frame.
    pub rsv: Rsv,
    /// The payload as received (reassembled).
    pub input: BytesMut,
    /// Which part of its input the extension is at (its own numbering; 0,
    /// the payload, at the start; permessage-deflate's 1 is the trailer it
    /// appends).
    pub stage: u8,
    /// Bytes of the current stage's input already decoded.
    pub consumed: usize,
    /// The output so far.
    pub output: alloc::vec::Vec<u8>,
    /// Work done beyond the output, in bytes of output it counts as
    /// (permessage-deflate: for each stream restarted past a final
    /// block); the connection counts it with the output toward the turn.
    pub overhead: usize,
}

impl DecodeJob {
    /// A job for a message as received.
    pub fn new(kind: MessageKind, rsv: Rsv, input: BytesMut) -> Self {
        Self {
            kind,
            rsv,
            input,
            consumed: 0,
            stage: 0,
            output: alloc::vec::Vec::new(),
            overhead: 0,
        }
    }
}

/// A negotiated per-message extension.
pub trait Extension: Send {
    /// The extension's name, as in `Sec-WebSocket-Extensions`.
    fn name(&self) -> &str;

    /// The reserved bits this extension claims; frames may carry them.
    fn rsv(&self) -> Rsv;

    /// Transforms a received message whose first frame carried `rsv`
    /// (non-empty: a message without the bits is passed through untouched).
    /// The result must not exceed `max_size` bytes, and an implementation
    /// should refuse (with 1009) as soon as its output passes that, rather
    /// than after producing it all (a decompression bomb).
    ///
    /// # Errors
    /// An [`ExtensionError`] fails the connection with its code.
    fn decode(
        &mut self,
        kind: MessageKind,
        rsv: Rsv,
        payload: BytesMut,
        max_size: usize,
    ) -> Result<Bytes, ExtensionError>;

    /// Transforms a received message in steps, so that a message whose
    /// decoding is much more work than its size on the wire (a
    /// decompression bomb) does not hold the caller's thread for all of it
    /// at once: each call adds at most about `step` bytes of output to
    /// `job` and returns `Ok(None)` while more is left, then the whole
    /// payload. The same rules as [`Extension::decode`] (`max_size`, errors).
    /// Default: all at once through `decode` (for extensions whose work is
    /// proportional to their input).
    ///
    /// # Errors
    /// An [`ExtensionError`] fails the connection with its code.
    fn decode_step(
        &mut self,
        job: &mut DecodeJob,
        max_size: usize,
        step: usize,
    ) -> Result<Option<Bytes>, ExtensionError> {
        let _ = step;
        let payload = core::mem::take(&mut job.input);
        self.decode(job.kind, job.rsv, payload, max_size).map(Some)
    }

    /// Transforms a message to send. Returns the RSV bits for its first
    /// frame and the payload to frame (`Rsv::NONE` and the payload as it
    /// was, to send this message untransformed).
    fn encode(&mut self, kind: MessageKind, payload: Bytes) -> (Rsv, Bytes);

    /// The connection went idle ([`Connection::release_idle_memory`](crate::Connection::release_idle_memory)):
    /// free what can be built again for the next message without changing
    /// its result (e.g. a compression context that is reset after every
    /// message anyway). Default: nothing.
    fn release_idle(&mut self) {}
}
