//! `Driver::Owner`: the connection moves only while the task that holds
//! it polls. What that task can count on (its sends are on the wire when
//! they return, a burst's answers go out in order, what it reads leaves
//! the shared budget), and what happens when it lets go (a split or a drop
//! hands the connection to a background task, which answers the peer and
//! finishes the closing handshake). The behaviour suite
//! (`tether-behaviour`) runs every shared scenario on this driver too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use common::{RawClient, listener, within};
use futures_util::{SinkExt, StreamExt};
use tether::frame::OpCode;
use tether::{Budget, Message};
use tether_tokio::{Driver, ServerOptions, WebSocket};

fn owner() -> ServerOptions {
    ServerOptions::new().driver(Driver::Owner)
}

/// A server `WebSocket` with `options`, and a raw client facing it.
async fn pair(options: ServerOptions) -> (WebSocket, RawClient) {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tether_tokio::accept(tcp, &options).await.unwrap().0
    });
    let client = RawClient::connect(&url).await;
    (server.await.unwrap(), client)
}

/// Nothing drives an owner's connection after `send` returns, so a send
/// with nothing unread returns only once its frame reached the transport.
#[tokio::test]
async fn a_send_with_nothing_unread_is_on_the_wire_when_it_returns() {
    let (mut ws, mut client) = pair(owner()).await;
    within(ws.send(Message::text("first"))).await.unwrap();
    // the server's task now does something else entirely
    let frame = within(client.frame()).await.unwrap();
    assert_eq!(frame.header.opcode, OpCode::Text);
    assert_eq!(&frame.payload[..], b"first");
    drop(ws);
}

/// RFC 6455 5.4 / 6.1: a burst read in one go is answered in order, every
/// message once; the answers wait for the read that finds nothing unread.
#[tokio::test]
async fn rfc6455_6_1_a_burst_is_echoed_in_order() {
    let (mut ws, mut client) = pair(owner()).await;
    let mut burst = BytesMut::new();
    for i in 0..64u32 {
        client.encode(OpCode::Binary, &i.to_be_bytes(), &mut burst);
    }
    let echo = tokio::spawn(async move {
        for _ in 0..64 {
            let message = ws.next().await.unwrap().unwrap();
            ws.send(message).await.unwrap();
        }
        ws
    });
    tokio::io::AsyncWriteExt::write_all(&mut client.stream, &burst)
        .await
        .unwrap();
    for i in 0..64u32 {
        let frame = within(client.frame()).await.unwrap();
        assert_eq!(&frame.payload[..], &i.to_be_bytes(), "echo {i}");
    }
    drop(within(echo).await.unwrap());
}

/// RFC 6455 5.5.2: split, the halves are the shared driver's, whose
/// background task answers a Ping while neither half is polled.
#[tokio::test]
async fn rfc6455_5_5_2_after_split_a_ping_is_answered_while_nobody_polls() {
    let (ws, mut client) = pair(owner()).await;
    let (sink, stream) = ws.split();
    client.send(OpCode::Ping, b"anyone").await;
    let frame = within(client.frame()).await.unwrap();
    assert_eq!(frame.header.opcode, OpCode::Pong);
    assert_eq!(&frame.payload[..], b"anyone");
    drop((sink, stream));
}

/// RFC 6455 7.1.2 / 7.4.1: dropped while it owes the peer's Close an
/// answer, the connection is handed to a background task that answers it
/// with 1001 "going away" (the core's `go_away`, as when both halves of a
/// shared connection are dropped) and shuts TCP down.
#[tokio::test]
async fn rfc6455_7_1_2_a_dropped_owner_connection_answers_the_peer_s_close() {
    let (mut ws, mut client) = pair(owner()).await;
    let mut out = BytesMut::new();
    client.encode(OpCode::Text, b"one", &mut out);
    client.encode(OpCode::Close, &[0x03, 0xe8], &mut out);
    tokio::io::AsyncWriteExt::write_all(&mut client.stream, &out)
        .await
        .unwrap();
    // the owner reads the message (the Close arrived with it), then goes
    // before it came back for the next event
    let message = within(ws.next()).await.unwrap().unwrap();
    assert_eq!(message, Message::text("one"));
    drop(ws);
    let close = within(client.frame()).await.unwrap();
    assert_eq!(close.header.opcode, OpCode::Close);
    assert_eq!(&close.payload[..2], &1001u16.to_be_bytes());
    assert!(within(client.frame()).await.is_none(), "TCP closed after");
}

/// What the owner reads leaves the shared budget at once; the bytes it
/// has not read stay charged.
#[tokio::test]
async fn what_an_owner_reads_leaves_the_shared_budget() {
    let budget = Arc::new(Budget::new(1 << 20));
    let (mut ws, mut client) = pair(owner().budget(budget.clone())).await;
    let mut out = BytesMut::new();
    for _ in 0..4 {
        client.encode(OpCode::Binary, &[7; 1000], &mut out);
    }
    tokio::io::AsyncWriteExt::write_all(&mut client.stream, &out)
        .await
        .unwrap();
    let mut read = 0;
    while read < 4 {
        let message = within(ws.next()).await.unwrap().unwrap();
        assert_eq!(message.len(), 1000);
        read += 1;
        // what is still queued is charged; what was read is not
        assert!(budget.used() <= (4 - read) * (1000 + tether::Event::OVERHEAD));
    }
    assert_eq!(budget.used(), 0);
    drop(ws);
}

/// The `Sink` side: `feed` queues without writing, `flush` writes them all,
/// `close` ends the connection with 1000 and waits for the peer's answer.
#[tokio::test]
async fn the_sink_feeds_flushes_and_closes() {
    let (mut ws, mut client) = pair(owner()).await;
    for i in 0..3u8 {
        within(ws.feed(Message::binary(vec![i]))).await.unwrap();
    }
    within(ws.flush()).await.unwrap();
    for i in 0..3u8 {
        let frame = within(client.frame()).await.unwrap();
        assert_eq!(&frame.payload[..], &[i]);
    }
    let closing = tokio::spawn(async move {
        within(SinkExt::close(&mut ws)).await.unwrap();
        ws
    });
    let close = within(client.frame()).await.unwrap();
    assert_eq!(close.header.opcode, OpCode::Close);
    assert_eq!(&close.payload[..2], &[0x03, 0xe8]);
    client.send(OpCode::Close, &[0x03, 0xe8]).await;
    // the server closes TCP first (RFC 6455 7.1.1)
    assert!(within(client.frame()).await.is_none());
    let ws = within(closing).await.unwrap();
    let info = ws.close_info().unwrap();
    assert!(info.was_clean, "{info:?}");
}

/// With a paused clock: while the owner waits in `next()`, the core's
/// keep-alive Ping goes out on time (the owner's task is woken by the
/// core's deadline, not only by input).
#[tokio::test(start_paused = true)]
async fn keep_alive_goes_out_while_the_owner_waits_in_next() {
    let config = tether::Config {
        keep_alive: tether::KeepAlive::Ping {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        },
        ..tether::Config::default()
    };
    let (mut ws, mut client) = pair(owner().config(config)).await;
    let waiting = tokio::spawn(async move {
        let next = ws.next().await;
        (ws, next.map(|m| m.unwrap()))
    });
    let ping = within(client.frame()).await.unwrap();
    assert_eq!(ping.header.opcode, OpCode::Ping);
    client.send(OpCode::Text, b"hi").await;
    let (ws, next) = within(waiting).await.unwrap();
    assert_eq!(next, Some(Message::text("hi")));
    drop(ws);
}

/// RFC 6455 5.5.2: Pings a send read in (answered, queued as events the
/// application may never read) hold no later send back: only unread
/// messages make answers wait for the next read.
#[tokio::test]
async fn rfc6455_5_5_2_unread_pings_hold_no_send_back() {
    let config = tether::Config {
        first_release_after: Duration::from_millis(5),
        ..tether::Config::default()
    };
    let (mut ws, mut client) = pair(owner().config(config)).await;
    // the owner waits a little for input, long enough for the connection
    // to go quiet (its idle buffers released), then stops polling
    assert!(
        tokio::time::timeout(Duration::from_millis(50), ws.next())
            .await
            .is_err()
    );
    client.send(OpCode::Ping, b"still there?").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    // this send drives (the connection was quiet): it reads the Ping,
    // answers it, and queues its event for the application
    within(ws.send(Message::text("one"))).await.unwrap();
    within(ws.send(Message::text("two"))).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let frame = within(client.frame()).await.unwrap();
        seen.push((frame.header.opcode, frame.payload.to_vec()));
    }
    // the drive writes what is queued before it reads: "one", then the
    // Ping's answer, then "two", written by its own send although the
    // Ping's event was never read
    assert_eq!(
        seen,
        [
            (OpCode::Text, b"one".to_vec()),
            (OpCode::Pong, b"still there?".to_vec()),
            (OpCode::Text, b"two".to_vec()),
        ]
    );
    drop(ws);
}

/// The owner's `WebSocket` moves between tasks (`Send`), as the shared
/// driver's does.
#[test]
fn an_owned_websocket_is_send() {
    fn send<T: Send>() {}
    send::<WebSocket>();
}
