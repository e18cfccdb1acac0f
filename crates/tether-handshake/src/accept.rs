//! The nonce and the accept value of RFC 6455 sections 1.3, 4.1 and 4.2.2.
//!
//! Owns the key arithmetic only: encoding a 16-byte nonce, checking that a
//! received key decodes to 16 bytes, and deriving `Sec-WebSocket-Accept`.
//! Never draws randomness except in [`generate_key`] (feature `rand`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest as _, Sha1};

/// The GUID a server appends to the client's key before hashing it
/// (RFC 6455 section 1.3).
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version RFC 6455 defines, sent in
/// `Sec-WebSocket-Version` (sections 4.1 and 4.4).
pub const WEBSOCKET_VERSION: &str = "13";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` value
/// (RFC 6455 sections 1.3 and 4.2.2 item 5.4): base64 of the SHA-1 of the key,
/// as sent (its base64 text), followed by [`WEBSOCKET_GUID`].
///
/// ```
/// assert_eq!(
///     tether_handshake::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(WEBSOCKET_GUID.as_bytes());
    STANDARD.encode(sha1.finalize())
}

/// The `Sec-WebSocket-Key` value for a 16-byte nonce: its base64
/// (RFC 6455 section 4.1 item 7). The nonce must be fresh and random for each
/// connection; [`generate_key`] draws one.
pub fn encode_key(nonce: [u8; 16]) -> String {
    STANDARD.encode(nonce)
}

/// A fresh `Sec-WebSocket-Key` value from a random 16-byte nonce drawn from
/// `rand`'s thread-local CSPRNG (RFC 6455 sections 4.1 item 7 and 10.3).
#[cfg(feature = "rand")]
pub fn generate_key() -> String {
    encode_key(rand::random::<[u8; 16]>())
}

/// What is wrong with a received key: `Ok` if it is the base64 of 16 bytes
/// (RFC 6455 section 4.2.1 item 5), else the decoded length, `None` when it is
/// not valid padded base64 at all.
pub(crate) fn check_key(key: &[u8]) -> Result<(), Option<usize>> {
    // 16 bytes encode to exactly 24 characters; refuse longer input before
    // decoding so a huge header costs nothing.
    if key.len() > 64 {
        // what it would decode to, when it has the shape of padded base64
        let body = key
            .strip_suffix(b"==")
            .or_else(|| key.strip_suffix(b"="))
            .unwrap_or(key);
        let base64 = body
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        let padding = key.len() - body.len();
        return Err((base64 && key.len().is_multiple_of(4)).then(|| key.len() / 4 * 3 - padding));
    }
    match STANDARD.decode(key) {
        Ok(bytes) if bytes.len() == 16 => Ok(()),
        Ok(bytes) => Err(Some(bytes.len())),
        Err(_) => Err(None),
    }
}
