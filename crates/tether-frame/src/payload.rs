//! [`Payload`]: the bytes of a frame or message, held inline when small.
//!
//! Owns how a payload is held once it leaves the read buffer. One of at
//! most [`Payload::INLINE_CAPACITY`] bytes is kept inside the value: taking
//! it out of a read buffer is a copy of a few words, and cloning or dropping
//! it touches nothing else. A larger one is a [`Bytes`]: split off the read
//! buffer without copying, reference counted.
//!
//! Why: a `Bytes` split off a shared read buffer costs an atomic increment
//! of that buffer's reference count when it is split off and an atomic
//! decrement when the application drops it. For a 16-byte message those two
//! were half of all the time the connection spent on it (`benches/RESULTS.md`);
//! copying 16 bytes costs less than either.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;

use bytes::{Bytes, BytesMut};

/// How many bytes a [`Payload`] holds inline: as many as fit beside their
/// length in the 32 bytes of a `Bytes`, outside its vtable pointer (whose
/// null value marks the inline form).
const INLINE: usize = 23;

/// The inline form's storage: the bytes, then their length in the last
/// byte. Three words, so it is built and moved a word at a time (built a
/// byte at a time, then moved with wide loads, it stalled on
/// store-to-load forwarding: slower than the reference count it saves).
const INLINE_WORDS: usize = (INLINE + 1) / 8;

/// Payload bytes: inline when at most [`Payload::INLINE_CAPACITY`] long,
/// else a reference-counted [`Bytes`]. Dereferences to `[u8]`; equality,
/// ordering and hashing are those of the bytes, whichever way they are held.
///
/// ```
/// use tether_frame::Payload;
///
/// let small = Payload::copy_from_slice(b"ping");
/// assert!(small.is_inline());
/// assert_eq!(&small[..], b"ping");
/// let large = Payload::from(vec![7u8; 1000]);
/// assert!(!large.is_inline());
/// assert_eq!(large.len(), 1000);
/// assert_eq!(Payload::from(b"ping".to_vec()), small); // the bytes decide
/// ```
#[derive(Clone)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    /// `data[..len]`; the bytes past `len` mean nothing.
    Inline([u8; INLINE + 1]),
    Shared(Bytes),
}

impl Payload {
    /// The most bytes held inline.
    pub const INLINE_CAPACITY: usize = INLINE;

    /// An empty payload.
    pub const fn new() -> Self {
        Self(Repr::Inline([0; INLINE + 1]))
    }

    /// A payload of static bytes, without copying.
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        Self(Repr::Shared(Bytes::from_static(bytes)))
    }

    /// A copy of `data`: inline when it fits, else in an allocation of its
    /// own.
    pub fn copy_from_slice(data: &[u8]) -> Self {
        if data.len() <= INLINE {
            let mut inline = [0; INLINE];
            inline[..data.len()].copy_from_slice(data);
            Self::inline(data.len(), inline)
        } else {
            Self(Repr::Shared(Bytes::copy_from_slice(data)))
        }
    }

    /// The first `len` bytes of `data` (`len` at most
    /// [`Payload::INLINE_CAPACITY`]; a longer one is cut to it).
    #[inline]
    pub(crate) fn inline(len: usize, data: [u8; INLINE]) -> Self {
        let mut all = [0; INLINE + 1];
        all[..INLINE].copy_from_slice(&data);
        #[allow(clippy::cast_possible_truncation)] // at most INLINE
        {
            all[INLINE] = len.min(INLINE) as u8;
        }
        Self(Repr::Inline(all))
    }

    /// `words` in memory order, the last byte replaced by `len`.
    #[inline(always)]
    fn from_words(words: [u64; INLINE_WORDS], len: usize) -> Self {
        let mut all = [0; INLINE + 1];
        for (at, word) in all.chunks_exact_mut(8).zip(words) {
            at.copy_from_slice(&word.to_ne_bytes());
        }
        #[allow(clippy::cast_possible_truncation)] // at most INLINE
        {
            all[INLINE] = len.min(INLINE) as u8;
        }
        Self(Repr::Inline(all))
    }

    /// The first `len` bytes of `src` (all of them if fewer), XOR the
    /// key stream of `mask` when there is one: a small frame's payload
    /// taken out of the read buffer. `len` is at most
    /// [`Payload::INLINE_CAPACITY`].
    #[inline(always)]
    pub(crate) fn unmasked(src: &[u8], len: usize, mask: Option<[u8; 4]>) -> Self {
        // the key stream, a word at a time (payload byte i ^= key[i % 4])
        let key = mask.map_or(0, |[a, b, c, d]| {
            u64::from_ne_bytes([a, b, c, d, a, b, c, d])
        });
        let word = |bytes: &[u8], at: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(bytes.get(at..at + 8).unwrap_or(&[0; 8]));
            u64::from_ne_bytes(w) ^ key
        };
        let words = match src.get(..(INLINE + 1)) {
            // whole words; the bytes past `len` are whatever follows the
            // frame, and mean nothing here
            Some(whole) => [word(whole, 0), word(whole, 8), word(whole, 16)],
            None => {
                let mut tail = [0; INLINE + 1];
                let n = len.min(src.len()).min(INLINE);
                tail[..n].copy_from_slice(&src[..n]);
                [word(&tail, 0), word(&tail, 8), word(&tail, 16)]
            }
        };
        Self::from_words(words, len)
    }

    /// Whether the bytes are held inline (no allocation, no reference
    /// count).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline(_))
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(all) => all.get(..usize::from(all[INLINE])).unwrap_or_default(),
            Repr::Shared(bytes) => bytes,
        }
    }

    /// Whether the bytes are UTF-8. One held inline is checked on a copy,
    /// so a payload just built can stay in registers until it is stored
    /// (a check through a reference to it would put it in memory a word at
    /// a time, and moving it on from there with wide loads stalls).
    #[inline]
    pub fn is_utf8(&self) -> bool {
        match &self.0 {
            Repr::Inline(all) => {
                let copy = *all;
                let len = usize::from(copy[INLINE]);
                core::str::from_utf8(copy.get(..len).unwrap_or_default()).is_ok()
            }
            Repr::Shared(bytes) => core::str::from_utf8(bytes).is_ok(),
        }
    }

    /// The bytes as [`Bytes`]: free for a payload held that way, one
    /// allocation and a copy for one held inline.
    #[inline]
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Inline(_) => Bytes::copy_from_slice(self.as_slice()),
            Repr::Shared(bytes) => bytes,
        }
    }

    /// The `Bytes` behind a payload not held inline.
    ///
    /// # Errors
    /// Returns the payload back when it is held inline.
    pub fn try_into_shared(self) -> Result<Bytes, Self> {
        match self.0 {
            Repr::Shared(bytes) => Ok(bytes),
            Repr::Inline(_) => Err(self),
        }
    }
}

impl Default for Payload {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for Payload {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Payload {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Payload {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Payload {}

impl PartialOrd for Payload {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Payload {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for Payload {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq<[u8]> for Payload {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for Payload {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Payload {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Payload {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_slice() == *other
    }
}

impl PartialEq<Vec<u8>> for Payload {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<Bytes> for Payload {
    fn eq(&self, other: &Bytes) -> bool {
        self.as_slice() == other.as_ref()
    }
}

/// As `Bytes` prints: `b"..."` with `\xNN` escapes.
impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("b\"")?;
        for &b in self.as_slice() {
            match b {
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\t' => f.write_str("\\t")?,
                b'\\' | b'"' => write!(f, "\\{}", char::from(b))?,
                b'\0' => f.write_str("\\0")?,
                0x20..=0x7e => write!(f, "{}", char::from(b))?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        f.write_str("\"")
    }
}

impl From<Bytes> for Payload {
    #[inline]
    fn from(bytes: Bytes) -> Self {
        Self(Repr::Shared(bytes))
    }
}

impl From<BytesMut> for Payload {
    #[inline]
    fn from(bytes: BytesMut) -> Self {
        Self(Repr::Shared(bytes.freeze()))
    }
}

impl From<Vec<u8>> for Payload {
    fn from(vec: Vec<u8>) -> Self {
        Self(Repr::Shared(Bytes::from(vec)))
    }
}

impl From<Box<[u8]>> for Payload {
    fn from(bytes: Box<[u8]>) -> Self {
        Self(Repr::Shared(Bytes::from(bytes)))
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Self {
        Self(Repr::Shared(Bytes::from(s)))
    }
}

impl From<&'static [u8]> for Payload {
    fn from(bytes: &'static [u8]) -> Self {
        Self::from_static(bytes)
    }
}

impl From<&'static str> for Payload {
    fn from(s: &'static str) -> Self {
        Self::from_static(s.as_bytes())
    }
}

impl From<Payload> for Bytes {
    fn from(payload: Payload) -> Self {
        payload.into_bytes()
    }
}

impl From<Payload> for Vec<u8> {
    fn from(payload: Payload) -> Self {
        match payload.0 {
            Repr::Inline(_) => payload.as_slice().to_vec(),
            Repr::Shared(bytes) => bytes.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn small_copies_are_inline_and_large_ones_shared() {
        for len in [0, 1, 16, INLINE] {
            let data: Vec<u8> = (0..len as u8).collect();
            let p = Payload::copy_from_slice(&data);
            assert!(p.is_inline(), "{len}");
            assert_eq!(p, data);
            assert_eq!(p.clone().into_bytes(), data);
            assert_eq!(Vec::from(p), data);
        }
        let data = [9u8; INLINE + 1];
        let p = Payload::copy_from_slice(&data);
        assert!(!p.is_inline());
        assert_eq!(p, data);
        assert_eq!(Payload::inline(INLINE + 5, [1; INLINE]).len(), INLINE);
    }

    #[test]
    fn equality_and_hash_follow_the_bytes_not_the_representation() {
        /// Records what is hashed.
        #[derive(Default)]
        struct Record(Vec<u8>);
        impl Hasher for Record {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, bytes: &[u8]) {
                self.0.extend_from_slice(bytes);
            }
        }
        let hashed = |p: &Payload| {
            let mut r = Record::default();
            p.hash(&mut r);
            r.0
        };
        let inline = Payload::copy_from_slice(b"same");
        let shared = Payload::from(Bytes::from_static(b"same"));
        assert_eq!(inline, shared);
        assert_eq!(inline.cmp(&shared), Ordering::Equal);
        assert_eq!(hashed(&inline), hashed(&shared));
        assert!(Payload::copy_from_slice(b"a") < Payload::from_static(b"b"));
        assert_eq!(inline.try_into_shared().unwrap_err(), shared);
    }

    #[test]
    fn prints_as_bytes_does() {
        let p = Payload::copy_from_slice(b"a\"\\\n\x00\xff ");
        assert_eq!(format!("{p:?}"), format!("{:?}", Bytes::from(p.to_vec())));
    }

    /// No larger than the `Bytes` it holds when large: the inline form is
    /// told apart by the null that `Bytes`' vtable pointer never holds. Not
    /// a guarantee of the language; if a compiler lays it out larger, this
    /// says so.
    #[test]
    fn no_larger_than_bytes() {
        assert_eq!(
            core::mem::size_of::<Payload>(),
            core::mem::size_of::<Bytes>()
        );
    }
}
