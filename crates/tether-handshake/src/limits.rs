//! Size limits on a handshake head, shared by both sides.
//!
//! Owns the numbers only. A parser must check them before it reads or
//! allocates past them, and must never read more than `max_head_len` bytes of
//! the caller's buffer (the first five bytes excepted, which tell TLS and
//! non-HTTP apart).

/// Bounds on the HTTP head of an opening handshake (RFC 6455 section 4; the
/// refusal for a request over them is 431, RFC 6585 section 5).
///
/// Both the server's request parser and the client's response check stop
/// with an error as soon as a head is over a limit, even while it is still
/// incomplete, so a peer that never ends its head cannot make us buffer more.
///
/// Each call parses the buffer from its start, so its cost grows with the
/// buffer: an adapter should call again only when new bytes have arrived,
/// and bound the whole handshake with a timeout (a peer trickling one byte
/// at a time costs up to `max_head_len` parses).
///
/// ```
/// use tether_handshake::Limits;
/// let limits = Limits::default().with_max_head_len(4096).with_max_headers(32);
/// assert_eq!(limits.max_head_len, 4096);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest head accepted, in bytes, from the first byte through the
    /// empty line that ends it. Default 16 KiB: a browser's upgrade request is
    /// about 550 bytes, but cookies and tokens can add several KiB, and 16 KiB
    /// is what Node's HTTP server allows.
    pub max_head_len: usize,
    /// The most header fields accepted. Default 64: Chromium sends 14.
    /// The parser needs one slot per field, so this also bounds its memory.
    pub max_headers: usize,
}

impl Limits {
    /// The defaults: 16 KiB of head, 64 header fields.
    pub const DEFAULT: Self = Self {
        max_head_len: 16 * 1024,
        max_headers: 64,
    };

    /// The defaults, as a `const fn`.
    pub const fn new() -> Self {
        Self::DEFAULT
    }

    /// These limits with `max_head_len` set to `bytes`.
    #[must_use]
    pub const fn with_max_head_len(mut self, bytes: usize) -> Self {
        self.max_head_len = bytes;
        self
    }

    /// These limits with `max_headers` set to `count`.
    #[must_use]
    pub const fn with_max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
