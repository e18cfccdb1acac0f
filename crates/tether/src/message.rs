//! Application messages (RFC 6455 section 5.6) and validated text bytes.
//!
//! Owns [`Message`] and [`Utf8Bytes`]. Payloads are [`Payload`]s: a small
//! one (at most [`Payload::INLINE_CAPACITY`] bytes) held inside the message,
//! a larger one a `Bytes` split off the read buffer without a copy. Text is
//! kept as a payload known to be UTF-8, so a text message reaches the
//! application without a second validation pass.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Deref;

use bytes::Bytes;
use tether_frame::Payload;

/// Bytes that are valid UTF-8, cheap to clone (held inline when small,
/// else reference counted).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(Payload);

impl Utf8Bytes {
    /// Wraps `bytes` after checking that they are UTF-8.
    ///
    /// # Errors
    /// Returns the bytes back when they are not UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, Bytes> {
        if simdutf8::basic::from_utf8(&bytes).is_ok() {
            Ok(Self(bytes.into()))
        } else {
            Err(bytes)
        }
    }

    /// A static string, without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Payload::from_static(s.as_bytes()))
    }

    /// Wraps bytes the caller has already validated as UTF-8 (the
    /// connection's incremental validator). Crate-private: every public
    /// constructor validates.
    #[inline]
    pub(crate) fn from_validated(bytes: Payload) -> Self {
        debug_assert!(core::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The text.
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor of `Utf8Bytes` either validates the bytes
        // (`try_from_bytes`), takes them from a `&str`/`String`, or is
        // `from_validated`, which the connection calls only after its
        // `Utf8Stream` accepted the whole message (checked by the
        // debug_assert above in tests). The bytes are immutable afterwards.
        // This skips a second full validation pass per text message.
        unsafe { core::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as `Bytes`, giving up the UTF-8 guarantee (a copy when
    /// held inline: see [`Payload::into_bytes`]).
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }

    /// The underlying [`Payload`], giving up the UTF-8 guarantee.
    pub fn into_payload(self) -> Payload {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Payload::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self(Payload::copy_from_slice(s.as_bytes()))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Whether a data message is text or binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Arbitrary bytes (opcode 0x2).
    Binary,
}

/// A whole data message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// A text message, valid UTF-8 (RFC 6455 section 8.1).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Payload),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Payload>) -> Self {
        Self::Binary(data.into())
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Binary(_) => MessageKind::Binary,
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Binary(b) => b,
        }
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t.as_str()),
            Self::Binary(_) => None,
        }
    }

    /// The payload as `Bytes` (a copy when held inline: see
    /// [`Payload::into_bytes`]).
    pub fn into_bytes(self) -> Bytes {
        self.into_payload().into_bytes()
    }

    /// The payload.
    #[inline]
    pub fn into_payload(self) -> Payload {
        match self {
            Self::Text(t) => t.0,
            Self::Binary(b) => b,
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self::text(s)
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Self::text(s)
    }
}

impl From<Vec<u8>> for Message {
    fn from(v: Vec<u8>) -> Self {
        Self::binary(v)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Self::Binary(b.into())
    }
}

impl From<Payload> for Message {
    fn from(p: Payload) -> Self {
        Self::Binary(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every constructor yields bytes that `as_str` may read without
    /// re-validating (this module's one `unsafe`; run under Miri too).
    #[test]
    fn utf8_bytes_constructors_keep_the_invariant() {
        let all = [
            Utf8Bytes::from("héllo"),
            Utf8Bytes::from(String::from("wörld €")),
            Utf8Bytes::from_static("static 𝄞"),
            Utf8Bytes::try_from_bytes(Bytes::from_static("ok ✓".as_bytes())).unwrap(),
            Utf8Bytes::from_validated(Payload::from_static(b"validated")),
            Utf8Bytes::from_validated(Payload::copy_from_slice("inline ✓".as_bytes())),
        ];
        let texts: Vec<&str> = all.iter().map(Utf8Bytes::as_str).collect();
        assert_eq!(
            texts,
            [
                "héllo",
                "wörld €",
                "static 𝄞",
                "ok ✓",
                "validated",
                "inline ✓"
            ]
        );
        assert!(Utf8Bytes::try_from_bytes(Bytes::from_static(&[0xC3])).is_err());
        let m = Message::text("x");
        assert_eq!(m.as_text(), Some("x"));
    }

    /// A message is no larger for holding small payloads inline (a tag
    /// and a 32-byte payload, as with `Bytes`).
    #[test]
    fn a_message_is_forty_bytes() {
        assert_eq!(core::mem::size_of::<Message>(), 40);
    }
}
