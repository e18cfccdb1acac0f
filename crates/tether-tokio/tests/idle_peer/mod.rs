//! The blocking peer of the tests that count a server's heap
//! (`idle_memory.rs`, `push_after_idle.rs`): a `std::net` client whose
//! request and frame are built before anything is counted, so what the
//! counting allocator sees is the server's.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// The upgrade request, without the blank line that ends it (a test adds
/// its headers first).
pub const REQUEST_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n";

/// A masked binary frame of 16 bytes (mask key zero: the payload as is).
pub const FRAME: [u8; 22] = [
    0x82, 0x90, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];

/// Connects to `addr`, upgrades with `headers` added to the request, sends
/// [`FRAME`] and reads the server's echo of it whole: the socket, and the
/// echo's payload as it came (compressed, when `headers` negotiated it).
pub fn connect_and_echo(addr: SocketAddr, headers: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(REQUEST_HEAD).unwrap();
    client.write_all(headers).unwrap();
    client.write_all(b"\r\n").unwrap();
    // the 101 head, then the echo: one unmasked frame of under 126 bytes
    let mut buf = [0u8; 1024];
    let mut have = 0;
    let head = loop {
        let n = client.read(&mut buf[have..]).unwrap();
        assert!(n > 0, "the server closed during the handshake");
        have += n;
        if let Some(at) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    assert!(
        buf.starts_with(b"HTTP/1.1 101"),
        "not upgraded: {:?}",
        String::from_utf8_lossy(&buf[..head])
    );
    client.write_all(&FRAME).unwrap();
    while have < head + 2 || have < head + 2 + usize::from(buf[head + 1] & 0x7f) {
        let n = client.read(&mut buf[have..]).unwrap();
        assert!(n > 0, "the server closed before echoing");
        have += n;
    }
    let len = usize::from(buf[head + 1] & 0x7f);
    assert!(
        len < 126,
        "an echo of {len} bytes: a 16-byte message's echo fits the short form"
    );
    (client, buf[head + 2..head + 2 + len].to_vec())
}
