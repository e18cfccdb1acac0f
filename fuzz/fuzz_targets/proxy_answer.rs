//! Arbitrary bytes as a proxy's answers (`ProxyConnect::receive`): HTTP
//! CONNECT and SOCKS5 (with and without credentials), whole and fed in
//! arbitrary pieces. The exchange must never panic, must give the same
//! outcome however the bytes are split (for an error, the same kind: its
//! words may quote what had arrived) and write the same, and an error
//! must say something, never the password (unless the proxy itself
//! sent those bytes: an error may quote its answer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::mem::{Discriminant, discriminant};

use tether_handshake::proxy::{ProxyConnect, ProxyError, ProxyUrl, Target};

const PROXIES: [&str; 4] = [
    "http://proxy:3128",
    "http://user:secret@proxy:3128",
    "socks5h://proxy:1080",
    "socks5h://user:secret@proxy:1080",
];

/// The outcome of feeding `data` in pieces of `chunk` bytes: done or not,
/// or the error's kind; and everything the exchange wrote.
fn feed(
    proxy: &ProxyUrl,
    data: &[u8],
    chunk: usize,
) -> (Result<bool, Discriminant<ProxyError>>, Vec<u8>) {
    let mut exchange =
        ProxyConnect::new(proxy, Target::Name("example.com".into(), 443)).expect("a valid target");
    let mut wrote = exchange.take_output();
    for piece in data.chunks(chunk.max(1)) {
        if let Err(e) = exchange.receive(piece) {
            // what it queued before the refusal counts as written too
            wrote.extend(exchange.take_output());
            let said = e.to_string();
            assert!(!said.is_empty());
            // the proxy's own bytes may be quoted, and may hold the word
            let quoted = data.windows(6).any(|w| w == b"secret");
            assert!(
                quoted || !said.contains("secret"),
                "a password in an error: {said}"
            );
            return (Err(discriminant(&e)), wrote);
        }
        wrote.extend(exchange.take_output());
    }
    (Ok(exchange.is_done()), wrote)
}

fuzz_target!(|input: (u8, u8, &[u8])| {
    let (which, chunk, data) = input;
    let proxy = ProxyUrl::parse(PROXIES[usize::from(which) % PROXIES.len()]).expect("a valid URL");
    let whole = feed(&proxy, data, data.len().max(1));
    let pieces = feed(&proxy, data, usize::from(chunk));
    let bytewise = feed(&proxy, data, 1);
    assert_eq!(whole, pieces, "split in pieces of {chunk}");
    assert_eq!(whole, bytewise, "one byte at a time");
});
