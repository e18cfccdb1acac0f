//! The outcome of parsing a head that may not have fully arrived yet.
//!
//! Owns only [`Status`]; it never holds bytes. The caller keeps the buffer and
//! calls the parser again, from the start, when more bytes have arrived.

/// The outcome of parsing an HTTP head from a buffer that may hold only part
/// of it, in the style of `httparse::Status`.
///
/// The handshake heads of RFC 6455 section 4 end at the first empty line;
/// whatever follows belongs to the WebSocket connection (frames the peer sent
/// straight after its head), so [`Status::Complete`] says how many bytes the
/// head used and the caller hands `&buf[used..]` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// The head is complete and valid: the parsed value, and the number of
    /// bytes of the buffer the head used (including the final empty line).
    Complete(T, usize),
    /// The buffer ends before the head does, and nothing seen so far is wrong:
    /// read more bytes, append them and parse the whole buffer again.
    Partial,
}

impl<T> Status<T> {
    /// Whether the head was complete.
    pub const fn is_complete(&self) -> bool {
        matches!(self, Self::Complete(..))
    }

    /// Whether more bytes are needed.
    pub const fn is_partial(&self) -> bool {
        matches!(self, Self::Partial)
    }

    /// The value and the bytes used, or `None` while partial.
    pub fn complete(self) -> Option<(T, usize)> {
        match self {
            Self::Complete(value, used) => Some((value, used)),
            Self::Partial => None,
        }
    }
}
