//! Seeded test messages and the checksum the peers report.
//!
//! [`messages`] yields text and binary messages in turn: first the length
//! edge cases of RFC 6455 section 5.2 (0, 1, 125, 126, 127, 65535, 65536 and
//! 1 MiB, each as binary and as text), then sizes drawn log-uniformly up to
//! 1 MiB, so every length encoding is hit often while the total stays near
//! 75 MB per 1,000 messages. Text mixes 1- to 4-byte UTF-8 characters.
//! `interop/peers/ws_client.py` follows the same plan with Python's RNG.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use tether::Message;

/// The largest message: 1 MiB.
pub const MAX: usize = 1 << 20;

/// The payload lengths every run starts with (RFC 6455 section 5.2: the 7-bit,
/// 16-bit and 64-bit length encodings and their edges).
pub const EDGE_SIZES: [usize; 8] = [0, 1, 125, 126, 127, 65535, 65536, MAX];

const ALPHABET: &[char] = &[
    'a', 'b', 'c', 'x', 'y', 'z', ' ', '0', '9', 'é', 'ß', '€', '中', '😀',
];

/// `count` messages from `seed`: binary at even indexes, text at odd ones.
pub fn messages(seed: u64, count: usize) -> impl Iterator<Item = Message> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(move |i| {
        let size = match EDGE_SIZES.get(i / 2) {
            Some(&size) => size,
            None => {
                let exp: f64 = rng.random_range(0.0..20.0);
                (exp.exp2() as usize).min(MAX)
            }
        };
        if i % 2 == 0 {
            let mut data = vec![0u8; size];
            rng.fill_bytes(&mut data);
            Message::binary(Bytes::from(data))
        } else {
            let mut text = String::with_capacity(size);
            while text.len() < size {
                let c = ALPHABET[rng.random_range(0..ALPHABET.len())];
                if text.len() + c.len_utf8() > size {
                    break;
                }
                text.push(c);
            }
            Message::text(text)
        }
    })
}

/// The largest message of [`mixed_messages`]: 256 KiB.
pub const MIXED_MAX: usize = 1 << 18;

const WORDS: &[&str] = &[
    "alpha", "beta", "gamma", "delta", "été", "€", "{\"id\":", "},", "\n",
];

/// `count` messages from `seed` for compression runs, four kinds in turn:
/// random bytes and random text (incompressible, or nearly), then bytes
/// and text made of a few words (very compressible). Sizes: the edge cases
/// first (each in all four kinds), then log-uniform up to 256 KiB.
pub fn mixed_messages(seed: u64, count: usize) -> impl Iterator<Item = Message> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(move |i| {
        let size = match EDGE_SIZES.get(i / 4).filter(|&&s| s < MIXED_MAX) {
            Some(&size) => size,
            None => {
                let exp: f64 = rng.random_range(0.0..18.0);
                (exp.exp2() as usize).min(MIXED_MAX)
            }
        };
        match i % 4 {
            0 => {
                let mut data = vec![0u8; size];
                rng.fill_bytes(&mut data);
                Message::binary(Bytes::from(data))
            }
            1 => {
                let mut text = String::with_capacity(size);
                while text.len() < size {
                    let c = ALPHABET[rng.random_range(0..ALPHABET.len())];
                    if text.len() + c.len_utf8() > size {
                        break;
                    }
                    text.push(c);
                }
                Message::text(text)
            }
            kind => {
                let mut text = String::with_capacity(size + 8);
                while text.len() < size {
                    text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
                    text.push(' ');
                }
                if kind == 2 {
                    Message::binary(Bytes::from(text.into_bytes()))
                } else {
                    Message::text(text)
                }
            }
        }
    })
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE, as zlib's `crc32(data, crc)`): continues `crc` over `data`.
pub fn crc32(crc: u32, data: &[u8]) -> u32 {
    let mut crc = !crc;
    for &byte in data {
        crc = CRC_TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
    }
    !crc
}

/// Message counts, bytes and CRC-32 over a sequence of messages, as the
/// peers report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages.
    pub messages: usize,
    /// Text messages.
    pub text: usize,
    /// Binary messages.
    pub binary: usize,
    /// Payload bytes.
    pub bytes: usize,
    /// CRC-32 over the payloads in order.
    pub crc: u32,
}

impl Tally {
    /// Counts one more message.
    pub fn add(&mut self, message: &Message) {
        self.messages += 1;
        match message {
            Message::Text(_) => self.text += 1,
            Message::Binary(_) => self.binary += 1,
        }
        self.bytes += message.as_bytes().len();
        self.crc = crc32(self.crc, message.as_bytes());
    }

    /// The tally in a peer's report line (`messages=`, `text=`, `binary=`,
    /// `bytes=`, `crc=`).
    pub fn from_report(line: &str) -> Self {
        let number = |key| crate::field(line, key).parse().unwrap_or(usize::MAX);
        Self {
            messages: number("messages"),
            text: number("text"),
            binary: number("binary"),
            bytes: number("bytes"),
            crc: crate::field(line, "crc").parse().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(0, b""), 0);
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn messages_start_with_the_edge_sizes_and_stay_under_1_mib() {
        let all: Vec<Message> = messages(7, 100).collect();
        for (i, size) in EDGE_SIZES.iter().enumerate() {
            assert_eq!(all[2 * i].as_bytes().len(), *size);
            assert!(all[2 * i + 1].as_bytes().len() + 3 >= *size);
        }
        assert!(all.iter().all(|m| m.as_bytes().len() <= MAX));
        let again: Vec<Message> = messages(7, 100).collect();
        assert_eq!(all, again);
    }
}
