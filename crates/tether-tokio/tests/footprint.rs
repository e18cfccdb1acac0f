//! What an application's task carries for its connection's whole life: the
//! handshake futures keep their state on the heap, so awaiting `accept` or
//! `connect` in a connection's task (as every server does) adds a pointer,
//! not the handshake's buffers and parser (5.4 KiB in `tether serve`'s task
//! before, the bulk of an idle connection's memory).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::mem::size_of_val;

#[tokio::test]
async fn the_handshake_futures_hold_their_state_on_the_heap() {
    let (a, b) = tokio::io::duplex(64);
    let server_options = tether_tokio::ServerOptions::new();
    let accept = tether_tokio::accept(a, &server_options);
    let accept_with = tether_tokio::accept_with(b, &server_options, |_| {
        Ok(tether::handshake::AcceptOptions::new())
    });
    let client_options = tether_tokio::ClientOptions::new();
    let connect = tether_tokio::connect("ws://127.0.0.1:9/", &client_options);
    let (c, _d) = tokio::io::duplex(64);
    let client = tether_tokio::client(c, "ws://127.0.0.1:9/", &client_options);
    for (name, size) in [
        ("accept", size_of_val(&accept)),
        ("accept_with", size_of_val(&accept_with)),
        ("connect", size_of_val(&connect)),
        ("client", size_of_val(&client)),
    ] {
        assert!(size <= 16, "{name}'s future is {size} bytes");
    }
}
