//! A free loopback port below the kernel's ephemeral range (Linux:
//! 32768-60999), for a test that needs a port with nobody listening, or one
//! to listen on again later. Include it with `#[path = ".../ports.rs"] mod
//! ports;`.
//!
//! A port taken from the ephemeral range (binding port 0 and letting it go)
//! can be handed, while nobody listens on it, to another test's listener or
//! to the local end of any connection (the test's own client retrying it
//! among them): a listener then fails to bind again, or a "nobody listens"
//! connect reaches someone.
#![allow(dead_code)]

use std::net::TcpListener;

/// A port nobody listened on a moment ago (checked by binding it).
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    loop {
        let n = seed.wrapping_add(NEXT.fetch_add(7919, Ordering::Relaxed));
        let port = 20_000 + (n % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
