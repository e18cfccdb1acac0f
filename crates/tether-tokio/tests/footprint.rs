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

/// An application task is as large as the largest future it awaits, for
/// its whole life, idle included: an echo loop that awaits `send` carries
/// that future's size even while it waits in `next()`. Each of these was
/// an `async fn` chain that kept a copy of its message per layer (`send`:
/// 272 bytes).
#[tokio::test]
async fn the_futures_an_application_awaits_are_small() {
    use bytes::Bytes;
    use futures_util::StreamExt;
    use tether::{CloseCode, Message, MessageKind};

    let (a, _b) = tokio::io::duplex(64);
    let upgraded = tether::upgrade::Upgraded::new(tether::Role::Server, tether::Config::default());
    let mut ws = tether_tokio::from_upgraded(a, upgraded, &[]);
    // two handles (an `Arc` each), the stream's flag and the pointer to
    // the batch of received items it reads without the connection's lock
    let mut sizes = vec![("WebSocket", size_of_val(&ws), 32)];
    sizes.push((
        "send",
        size_of_val(&ws.send(Message::binary(Bytes::new()))),
        80,
    ));
    let fragment = ws.send_fragment(MessageKind::Binary, Bytes::new(), true);
    sizes.push(("send_fragment", size_of_val(&fragment), 80));
    drop(fragment);
    sizes.push(("ping", size_of_val(&ws.ping(Bytes::new())), 80));
    sizes.push(("pong", size_of_val(&ws.pong(Bytes::new())), 80));
    sizes.push((
        "close",
        size_of_val(&ws.close(CloseCode::NORMAL, "bye")),
        96,
    ));
    sizes.push(("next_event", size_of_val(&ws.next_event()), 48));
    sizes.push(("next", size_of_val(&ws.next()), 16));
    for (name, size, most) in sizes {
        assert!(size <= most, "{name}: {size} bytes, more than {most}");
    }
}
