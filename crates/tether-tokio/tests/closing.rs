//! The end of a connection through the tokio adapter (RFC 6455 section 7):
//! the closing handshake with and without the peer's application polling,
//! with an unread backlog, on a buffering transport and half by half; who
//! closes TCP when; an abort; a peer that vanishes or reads nothing; and
//! what an operation after the end, or refused while closing, reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tether::frame::OpCode;
use tether::upgrade::Upgraded;
use tether::{CloseCode, Config, Event, Message, Role, State};
use tether_tokio::{ClientOptions, Error, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn rfc6455_5_5_1_messages_before_a_close_are_answered_before_the_close_reply() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(echo_server(listener));
    let mut client = RawClient::connect(&url).await;
    // 100 messages and the Close in one write: the server application must
    // get to answer all of them before its Close reply goes out (as Node's ws does)
    let mut wire = bytes::BytesMut::new();
    for i in 0..100 {
        client.encode(OpCode::Text, format!("m{i}").as_bytes(), &mut wire);
    }
    client.encode(OpCode::Close, &1000u16.to_be_bytes(), &mut wire);
    tokio::io::AsyncWriteExt::write_all(&mut client.stream, &wire)
        .await
        .unwrap();
    for i in 0..100 {
        let f = within(client.frame()).await.unwrap();
        assert_eq!(f.header.opcode, OpCode::Text, "frame {i}");
        assert_eq!(&f.payload[..], format!("m{i}").as_bytes());
    }
    let f = within(client.frame()).await.unwrap();
    assert_eq!(f.header.opcode, OpCode::Close);
    assert_eq!(&f.payload[..2], &1000u16.to_be_bytes());
    within(server).await.unwrap();
}

/// An echo server (`next()` then `send()`). The peer's Close arrives just
/// after the last message: if the application has popped the message
/// (queue empty) but not yet queued its echo, a drive elsewhere (the
/// background task on the other worker) sees `items.is_empty()` and replies
/// at once, and the echo fails with InvalidState: the echo is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_5_5_1_echo_of_the_last_message_precedes_the_close_reply_mt() {
    let mut lost = 0;
    let rounds = 100;
    for _ in 0..rounds {
        let (listener, url) = listener().await;
        let server = tokio::spawn(async move {
            let mut ws = accept_one(&listener, &ServerOptions::default()).await;
            while let Some(Ok(m)) = ws.next().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        });
        let mut client = RawClient::connect(&url).await;
        let mut wire = BytesMut::new();
        client.encode(OpCode::Text, b"last", &mut wire);
        client.stream.write_all(&wire).await.unwrap();
        wire.clear();
        client.encode(OpCode::Close, &1000u16.to_be_bytes(), &mut wire);
        client.stream.write_all(&wire).await.unwrap();
        let f = within(client.frame()).await.unwrap();
        if f.header.opcode != OpCode::Text {
            lost += 1;
        }
        within(server).await.unwrap();
    }
    assert_eq!(
        lost, 0,
        "{lost} of {rounds} echoes lost behind the Close reply"
    );
}

#[tokio::test]
async fn close_completes_without_the_peer_application_polling() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let ws = accept_one(&listener, &ServerOptions::default()).await;
        // the server application never reads; hold the socket
        tokio::time::sleep(Duration::from_secs(3)).await;
        ws.close_info()
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let started = Instant::now();
    let info = within(ws.close(CloseCode::new(4000), "bye")).await.unwrap();
    // not the FIN wait (2 s)
    assert!(started.elapsed() < Duration::from_millis(1800));
    assert!(info.was_clean);
    assert_eq!(info.code.as_u16(), 4000);
    let server_view = within(server).await.unwrap().unwrap();
    assert_eq!(
        (
            server_view.code.as_u16(),
            server_view.reason.as_str(),
            server_view.was_clean
        ),
        (4000, "bye", true)
    );
}

/// close() returns by close_timeout even while the application has left
/// more unread messages than the channel holds.
#[tokio::test]
async fn close_returns_with_an_unread_backlog() {
    let (a, mut b) = tokio::io::duplex(1 << 20);
    let config = Config {
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let mut ws = tether_tokio::from_upgraded(a, Upgraded::new(Role::Client, config), &[]);
    let mut frames = Vec::new();
    for _ in 0..100 {
        frames.extend_from_slice(&[0x81, 1, b'x']);
    }
    b.write_all(&frames).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = tokio::time::timeout(Duration::from_secs(5), ws.close(CloseCode::NORMAL, "")).await;
    drop(b);
    assert!(
        r.is_ok(),
        "close() still waiting 5 s after a 300 ms close_timeout"
    );
}

/// `close()` "waits until the connection has ended (the peer answered...)".
/// With `max_unread_bytes` of unread messages, reading stops, so the peer's
/// prompt Close reply is never read: `close()` takes the whole
/// close_timeout and reports 1006 / `was_clean: false` although the peer
/// answered at once.
#[tokio::test]
async fn close_with_an_unread_backlog_sees_the_peers_prompt_reply() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut ws = accept_one(&listener, &ServerOptions::default()).await;
        for i in 0..10 {
            ws.send(Message::text(format!("s{i}"))).await.unwrap();
        }
        // reads until the end: answers our Close at once
        while let Some(m) = ws.next().await {
            let _ = m;
        }
        ws.close_info()
    });
    let options = ClientOptions::new()
        .config(Config {
            close_timeout: Duration::from_secs(2),
            ..Config::default()
        })
        .max_unread_bytes(4 * tether::Event::OVERHEAD);
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // the 10 messages arrive
    let started = Instant::now();
    let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
    let elapsed = started.elapsed();
    let server_view = within(server).await.unwrap();
    assert!(
        info.was_clean && elapsed < Duration::from_millis(1800),
        "close() took {elapsed:?}: {info:?} (server saw {server_view:?})"
    );
}

/// `SinkExt::close` twice: the second is a no-op, not a panic.
#[tokio::test]
async fn sink_close_twice_is_harmless() {
    let (a, mut b) = tokio::io::duplex(1 << 20);
    let mut ws =
        tether_tokio::from_upgraded(a, Upgraded::new(Role::Client, Config::default()), &[]);
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let _ = b.read(&mut buf).await.unwrap();
        b.write_all(&[0x88, 2, 0x03, 0xe8]).await.unwrap();
        drop(b);
    });
    SinkExt::close(&mut ws).await.unwrap();
    SinkExt::close(&mut ws).await.unwrap();
}

/// Dropping the sending half while the receiving half still reads does not
/// close the connection.
#[tokio::test]
async fn dropping_only_the_sink_keeps_the_connection_open() {
    let (a, mut b) = tokio::io::duplex(1 << 20);
    let ws = tether_tokio::from_upgraded(a, Upgraded::new(Role::Client, Config::default()), &[]);
    let (sink, mut stream) = ws.split();
    drop(sink);
    b.write_all(&[0x81, 2, b'h', b'i']).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(2), stream.next_message())
        .await
        .unwrap();
    assert_eq!(m.unwrap().unwrap(), Message::text("hi"));
    // nothing was written: no Close went out
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_millis(200), b.read(&mut buf)).await;
    assert!(r.is_err(), "unexpected bytes: {r:?}");
    // dropping the receiving half too leaves with 1001
    drop(stream);
    let n = tokio::time::timeout(Duration::from_secs(2), b.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(n >= 2);
    assert_eq!(
        &buf[..2],
        &[0x88, 0x82],
        "a masked Close with a 2-byte code (1001)"
    );
}

/// Dropping the receiving half with unread messages and the peer's Close
/// queued answers the Close at once (nobody will read up to it).
#[tokio::test]
async fn dropping_the_stream_half_answers_a_pending_peer_close() {
    let (listener, url) = listener().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let ws = accept_one(&listener, &ServerOptions::default()).await;
        let (sink, stream) = ws.split();
        rx.await.unwrap();
        drop(stream);
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(sink);
    });
    let mut client = RawClient::connect(&url).await;
    let mut wire = BytesMut::new();
    for i in 0..3 {
        client.encode(OpCode::Text, format!("m{i}").as_bytes(), &mut wire);
    }
    client.encode(OpCode::Close, &1000u16.to_be_bytes(), &mut wire);
    client.stream.write_all(&wire).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.send(()).unwrap();
    let f = within_secs(1, client.frame())
        .await
        .expect("no Close reply after the receiving half was dropped")
        .unwrap();
    assert_eq!(f.header.opcode, OpCode::Close);
    server.abort();
}

/// Dropping an open connection says goodbye with 1001 (going away), as the
/// blocking adapter does, without the application waiting for the answer.
#[tokio::test]
async fn dropping_an_open_connection_sends_1001() {
    let (listener, url) = listener().await;
    let client = tokio::spawn(async move {
        let (ws, _) = tether_tokio::connect(&url, &ClientOptions::default())
            .await
            .unwrap();
        drop(ws);
    });
    let mut peer = within(RawPeer::accept(&listener)).await;
    within(client).await.unwrap();
    let close = within(peer.frame()).await.expect("a Close");
    assert_eq!(close.header.opcode, OpCode::Close);
    assert_eq!(&close.payload[..2], &1001u16.to_be_bytes());
}

/// A transport that buffers writes (as tokio-rustls does) gets flushed until
/// everything is out.
#[tokio::test]
async fn buffered_transports_are_flushed_to_the_end() {
    let (a, mut b) = tokio::io::duplex(64);
    let io = tokio::io::BufWriter::new(a);
    let mut ws =
        tether_tokio::from_upgraded(io, Upgraded::new(Role::Server, Config::default()), &[]);
    ws.send(Message::binary(vec![7u8; 1000])).await.unwrap();
    let mut got = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(2), async {
        let mut buf = [0u8; 256];
        while got.len() < 1004 {
            let n = b.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(r.is_ok(), "only {} of 1004 bytes arrived", got.len());
}

/// The final `Closed` waits until our last bytes are written: on a
/// buffering transport whose peer does not read, the Close reply (behind
/// a large message) is not out, so `Closed` is not delivered yet; once the
/// peer reads everything, it is.
#[tokio::test]
async fn final_closed_waits_for_our_last_bytes_on_a_buffering_transport() {
    let (a, mut b) = tokio::io::duplex(256);
    let io = tokio::io::BufWriter::new(a);
    let mut ws =
        tether_tokio::from_upgraded(io, Upgraded::new(Role::Server, Config::default()), &[]);
    ws.send(Message::binary(vec![7u8; 4000])).await.unwrap();
    // the peer's Close (masked, empty key)
    b.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), ws.next_event()).await;
    assert!(
        early.is_err(),
        "Closed before our bytes were out: {early:?}"
    );
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = b.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    match within(ws.next_event()).await {
        Some(Event::Closed(info)) => assert!(info.was_clean),
        other => panic!("{other:?}"),
    }
    drop(ws);
    let got = within(reader).await.unwrap();
    // 4 header bytes + 4000 payload, then the Close reply 0x88 0x02 03 e8
    assert_eq!(got.len(), 4004 + 4);
    assert_eq!(&got[4004..], &[0x88, 0x02, 0x03, 0xe8]);
}

/// RFC 6455 7.1.1: the server closes TCP first, right after the closing
/// handshake; the tether client waits for that FIN.
#[tokio::test]
async fn rfc6455_7_1_1_server_closes_tcp_right_after_the_closing_handshake() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut ws = accept_one(&listener, &ServerOptions::default()).await;
        while ws.next().await.is_some() {}
        // hold the handle: the shutdown must not wait for its drop
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(ws);
    });
    let mut client = RawClient::connect(&url).await;
    let mut wire = BytesMut::new();
    client.encode(OpCode::Close, &1000u16.to_be_bytes(), &mut wire);
    client.stream.write_all(&wire).await.unwrap();
    let f = within(client.frame()).await.unwrap();
    assert_eq!(f.header.opcode, OpCode::Close);
    let mut buf = [0u8; 16];
    let n = within_secs(5, client.stream.read(&mut buf))
        .await
        .expect("server did not close TCP after the closing handshake")
        .unwrap();
    assert_eq!(n, 0);
    server.abort();
}

#[tokio::test]
async fn rfc6455_7_1_1_client_waits_for_the_servers_fin_then_closes() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        let f = peer.frame().await.unwrap();
        assert_eq!(f.header.opcode, OpCode::Close);
        peer.send(OpCode::Close, &1000u16.to_be_bytes()).await;
        // keep TCP open: the client must not close it at once
        let started = Instant::now();
        let mut buf = [0u8; 16];
        let n = within(peer.stream.read(&mut buf)).await.unwrap();
        (n, started.elapsed())
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let info = within(ws.close(CloseCode::NORMAL, "")).await.unwrap();
    assert!(info.was_clean);
    let (n, waited) = within(server).await.unwrap();
    assert_eq!(n, 0);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(4),
        "client FIN after {waited:?}"
    );
    drop(ws);
}

#[tokio::test]
async fn rfc6455_7_1_5_server_drops_tcp_without_close_gives_1006() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let peer = RawPeer::accept(&listener).await;
        drop(peer);
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    within(server).await.unwrap();
    match within(ws.next()).await {
        Some(Err(Error::Closed(Some(info)))) => {
            assert_eq!(info.code, CloseCode::ABNORMAL);
            assert!(!info.was_clean);
        }
        other => panic!("{other:?}"),
    }
    assert!(within(ws.next()).await.is_none());
    assert_eq!(ws.state(), State::Aborted);
    // close after the transport died returns at once instead of looping
    let started = Instant::now();
    let res = within(ws.close(CloseCode::NORMAL, "")).await;
    assert!(started.elapsed() < Duration::from_secs(2), "{res:?}");
}

#[tokio::test]
async fn abort_ends_a_connection_whose_peer_stopped_reading() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let peer = RawPeer::accept(&listener).await;
        tokio::time::sleep(Duration::from_secs(10)).await; // never reads
        drop(peer);
    });
    let options = ClientOptions::new()
        .config(Config {
            max_queued_output: 64 * 1024,
            ..Config::default()
        })
        .max_unread_bytes(2 * tether::Event::OVERHEAD);
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let payload = Bytes::from(vec![1u8; 1 << 20]);
    // fill the socket buffers and the queue until sends stall
    let mut sent = 0;
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            ws.send(Message::binary(payload.clone())).await.unwrap();
            sent += 1;
        }
    })
    .await;
    assert!(sent < 64, "sends never stalled: {sent} MiB taken");
    let started = Instant::now();
    ws.abort();
    match within(ws.next()).await {
        Some(Err(Error::Closed(Some(info)))) => {
            assert_eq!(info.code, CloseCode::ABNORMAL);
            assert!(info.reason.contains("aborted"), "{}", info.reason);
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    server.abort();
}

#[tokio::test]
async fn an_ended_connection_does_not_wait_forever_for_a_peer_that_reads_nothing() {
    let (listener, url) = listener().await;
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        go_rx.await.unwrap();
        // a reserved opcode: the client fails the connection (1002), but its
        // Close sits behind megabytes this peer never reads
        peer.send(OpCode::Ping, b"").await;
        tokio::io::AsyncWriteExt::write_all(&mut peer.stream, &[0x83, 0x00])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(peer);
    });
    let options = ClientOptions::new().config(Config {
        close_timeout: Duration::from_millis(500),
        max_queued_output: 8 << 20,
        ..Config::default()
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let payload = Bytes::from(vec![5u8; 1 << 20]);
    // until sends stall
    let mut sent = 0;
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            ws.send(Message::binary(payload.clone())).await.unwrap();
            sent += 1;
        }
    })
    .await;
    assert!(sent < 64, "sends never stalled: {sent} MiB taken");
    go_tx.send(()).unwrap();
    let started = Instant::now();
    match within(ws.next()).await {
        Some(Err(Error::Closed(Some(info)))) => assert_eq!(info.code.as_u16(), 1002),
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.abort();
}

/// A transport that takes every write and never finishes a flush, as TLS
/// does with a record it cannot push to a peer that stopped reading.
struct NeverFlushes(tokio::io::DuplexStream);

impl tokio::io::AsyncRead for NeverFlushes {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for NeverFlushes {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
}

/// An aborted connection writes nothing more, so bytes the transport still
/// holds unflushed do not hold back its end: our Close goes out, the peer
/// never answers, and `close()` returns 1006 at the core's close timeout
/// (it waited forever for a flush that never came; both drivers share the
/// step that decides it).
#[tokio::test(start_paused = true)]
async fn an_aborted_connection_ends_although_the_transport_never_flushes() {
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let config = Config {
        close_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let mut ws =
        tether_tokio::from_upgraded(NeverFlushes(a), Upgraded::new(Role::Server, config), &[]);
    // the peer reads what comes and never answers
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 256];
        while b.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    let started = tokio::time::Instant::now();
    let info = tokio::time::timeout(Duration::from_secs(60), ws.close(CloseCode::NORMAL, ""))
        .await
        .expect("close() never returned");
    match info {
        Ok(info) | Err(Error::Closed(Some(info))) => {
            assert_eq!(info.code, CloseCode::ABNORMAL);
            assert!(!info.was_clean);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() <= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    reader.abort();
}

/// An operation after the end reports the end and how it came (`Closed`
/// with the peer's 1000, as the blocking adapter does).
#[tokio::test]
async fn operations_after_the_end_report_the_end() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        peer.send(OpCode::Close, &[0x03, 0xe8]).await;
        while peer.frame().await.is_some() {}
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    while within(ws.next()).await.is_some() {}
    within(server).await.unwrap();
    for err in [
        ws.ping(Bytes::from_static(b"x")).await.unwrap_err(),
        ws.pong(Bytes::new()).await.unwrap_err(),
        ws.send(Message::text("x")).await.unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::Closed(Some(info)) if info.code == CloseCode::NORMAL),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("1000"),
            "the cause is named: {err}"
        );
    }
}

/// An operation refused while closing names itself and the state
/// (`Misuse`, with the core's words).
#[tokio::test]
async fn an_operation_refused_while_closing_names_itself_and_the_state() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        // reads our Close and never answers: we stay in CloseSent
        let mut peer = RawPeer::accept(&listener).await;
        let _ = peer.frame().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    // our Close goes out; stop waiting for the answer (the state stays)
    tokio::select! {
        _ = ws.close(CloseCode::NORMAL, "") => panic!("the peer never answers"),
        () = tokio::time::sleep(Duration::from_millis(200)) => {}
    }
    assert_eq!(ws.state(), State::CloseSent);
    let err = ws.ping(Bytes::from_static(b"x")).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Misuse(tether::Error::InvalidState {
                operation: "ping",
                state: State::CloseSent,
                ..
            })
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("cannot ping") && text.contains("CloseSent"),
        "{text}"
    );
    ws.abort();
    server.abort();
}

/// An abort closes the transport when the core says, whatever the
/// application reads: with the read-ahead full and a message waiting for
/// room, the peer sees the end at once, and the application still gets
/// the messages read before and then the end when it reads. The
/// transport stayed open until the application read (the end waited
/// behind the message; with `Driver::Owner`, until its next poll).
#[tokio::test]
async fn rfc6455_7_1_1_an_abort_closes_the_transport_behind_an_unread_backlog() {
    for driver in [tether_tokio::Driver::Shared, tether_tokio::Driver::Owner] {
        let (listener, url) = listener().await;
        let (eof_tx, eof_rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            let mut peer = RawPeer::accept(&listener).await;
            for _ in 0..20 {
                peer.send(OpCode::Text, &[b'x'; 1024]).await;
            }
            // read until the end: the client's abort sends no Close
            while peer.frame().await.is_some() {}
            let _ = eof_tx.send(());
        });
        let options = ClientOptions::new().driver(driver).config(Config {
            max_unread_bytes: 4 << 10,
            ..Config::default()
        });
        let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
        // the read-ahead fills while the application reads nothing
        tokio::time::sleep(Duration::from_millis(200)).await;
        ws.abort();
        within_secs(3, eof_rx)
            .await
            .unwrap_or_else(|| panic!("{driver:?}: the transport stayed open"))
            .unwrap();
        let mut messages = 0;
        let mut end = None;
        while let Some(item) = within(ws.next()).await {
            match item {
                Ok(_) => messages += 1,
                Err(e) => end = Some(e),
            }
        }
        // the shared driver read ahead while nobody polled; the owner's
        // connection reads only when polled, so it had read nothing
        if driver == tether_tokio::Driver::Shared {
            assert!(messages > 0, "{driver:?}");
        }
        assert!(end.is_some(), "{driver:?}: no end reported");
        within(server).await.unwrap();
    }
}
