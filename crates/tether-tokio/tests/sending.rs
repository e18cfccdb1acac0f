//! Sending through the tokio adapter: the `Sink` contract (a fed message
//! is written without a flush, a flush fails once queued output was
//! discarded), backpressure while the output queue is full, and a send with
//! nothing unread is on the wire when it returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::SinkExt;
use tether::frame::OpCode;
use tether::{Config, Message};
use tether_tokio::ClientOptions;

#[tokio::test]
async fn a_send_with_nothing_unread_is_written_before_it_returns() {
    use std::io::Read;
    let (listener, url) = listener().await;
    let accept = tokio::spawn(async move { RawPeer::accept(&listener).await });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let peer = within(accept).await.unwrap();
    // read on a blocking socket from this task: nothing else runs on this
    // runtime meanwhile (the background task neither), so what arrives was
    // written by the send itself
    let mut raw = peer.stream.into_std().unwrap();
    raw.set_nonblocking(false).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..3u8 {
        within(ws.send(Message::binary(vec![i; 10]))).await.unwrap();
        // a client frame: 2 header bytes, the 4-byte mask, the payload
        let mut frame = [0u8; 16];
        raw.read_exact(&mut frame)
            .expect("the frame is on the wire");
        assert_eq!(frame[0], 0x80 | OpCode::Binary as u8);
        assert_eq!(frame[1], 0x80 | 10);
        let payload: Vec<u8> = (0..10).map(|j| frame[6 + j] ^ frame[2 + j % 4]).collect();
        assert_eq!(payload, vec![i; 10]);
    }
}

#[tokio::test]
async fn sink_waits_while_the_output_queue_is_full() {
    let (listener, url) = listener().await;
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        release_rx.await.unwrap();
        let mut n = 0;
        while let Some(f) = peer.frame().await {
            if f.header.opcode == OpCode::Binary {
                n += 1;
            }
            if n == 200 {
                break;
            }
        }
        n
    });
    let options = ClientOptions::new()
        .config(Config {
            max_queued_output: 256 * 1024,
            ..Config::default()
        })
        .max_unread_bytes(4 * tether::Event::OVERHEAD);
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let payload = Bytes::from(vec![7u8; 256 * 1024]);
    // the peer reads nothing: sends must stall well before 200 x 256 KiB are queued
    let mut sent = 0;
    let stalled = tokio::time::timeout(Duration::from_secs(1), async {
        for _ in 0..200 {
            ws.send(Message::binary(payload.clone())).await.unwrap();
            sent += 1;
        }
    })
    .await
    .is_err();
    assert!(stalled, "send never waited");
    assert!(sent < 200);
    release_tx.send(()).unwrap();
    for _ in sent..200 {
        within(ws.send(Message::binary(payload.clone())))
            .await
            .unwrap();
    }
    assert_eq!(within(server).await.unwrap(), 200);
}

/// `Sink::start_send` without `poll_flush` (`feed`): the background task
/// writes the message.
async fn feed_without_flush() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        let mut got = Vec::new();
        for _ in 0..3 {
            let f = peer.frame().await.unwrap();
            got.push(f.payload.to_vec());
        }
        got
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    for m in ["a", "b", "c"] {
        within(ws.feed(Message::text(m))).await.unwrap();
    }
    let got = within_secs(3, server)
        .await
        .expect("fed messages never written");
    assert_eq!(
        got.unwrap(),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
}

#[tokio::test]
async fn fed_messages_are_written_without_a_flush() {
    feed_without_flush().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fed_messages_are_written_without_a_flush_mt() {
    feed_without_flush().await;
}

/// `poll_flush` "waits until everything sent so far is written". When the
/// peer resets the connection with megabytes still queued, the write error
/// aborts the core, which discards the output; `flushed()` is then true
/// and `poll_flush` returns `Ok(())` for data that never left.
#[tokio::test]
async fn flush_fails_when_queued_output_was_discarded() {
    let (listener, url) = listener().await;
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let peer = RawPeer::accept(&listener).await;
        go_rx.await.unwrap();
        // unread data in its receive buffer: the close sends RST
        drop(peer);
    });
    let options = ClientOptions::new().config(Config {
        max_queued_output: 4 << 20,
        ..Config::default()
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let payload = Bytes::from(vec![1u8; 1 << 20]);
    // until sends stall: megabytes wait in the queue and the socket
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
    within(server).await.unwrap();
    let flushed = within(SinkExt::flush(&mut ws)).await;
    assert!(
        flushed.is_err(),
        "flush said Ok(()) for megabytes the peer never got; close: {:?}",
        ws.close_info()
    );
}

/// `Sink::close` "flushes and closes": with megabytes fed to a peer that
/// never reads, the close timeout gives the output up, and the close
/// fails saying how the connection ended (it said `Ok(())`, while the same
/// state made `poll_flush` fail), with either driver; and says so again
/// when called again (a second call said `Ok(())`).
#[tokio::test]
async fn sink_close_fails_when_queued_output_was_given_up() {
    for driver in [tether_tokio::Driver::Shared, tether_tokio::Driver::Owner] {
        let (listener, url) = listener().await;
        let server = tokio::spawn(async move {
            // reads nothing, holds the connection open
            let peer = RawPeer::accept(&listener).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(peer);
        });
        let options = ClientOptions::new().driver(driver).config(Config {
            max_queued_output: 64 << 20,
            close_timeout: Duration::from_millis(300),
            ..Config::default()
        });
        let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
        SinkExt::feed(&mut ws, Message::binary(vec![1u8; 32 << 20]))
            .await
            .unwrap();
        let closed = within(SinkExt::close(&mut ws)).await;
        match closed {
            Err(tether_tokio::Error::Closed(Some(info))) => {
                assert!(!info.was_clean, "{driver:?}: {info:?}");
            }
            other => panic!("{driver:?}: close said {other:?} for 32 MiB never written"),
        }
        let again = within(SinkExt::close(&mut ws)).await;
        assert!(
            matches!(again, Err(tether_tokio::Error::Closed(Some(_)))),
            "{driver:?}: a second close said {again:?}"
        );
        server.abort();
    }
}

/// After the end, `Sink::start_send` fails as `send` and `poll_ready` do,
/// with `Error::Closed` and how the connection ended (it said
/// `Misuse(InvalidState)`, so code matching `Closed` to see the end missed
/// it), with either driver.
#[tokio::test]
async fn start_send_after_the_end_says_closed_as_send_does() {
    use futures_util::Sink;
    for driver in [tether_tokio::Driver::Shared, tether_tokio::Driver::Owner] {
        let (listener, url) = listener().await;
        let server = tokio::spawn(async move {
            let mut ws = accept_one(&listener, &tether_tokio::ServerOptions::new()).await;
            ws.close(tether::CloseCode::NORMAL, "bye").await.unwrap();
        });
        let options = ClientOptions::new().driver(driver);
        let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
        use futures_util::StreamExt;
        while within(ws.next()).await.is_some() {}
        within(server).await.unwrap();
        let sent = ws.send(Message::text("late")).await;
        assert!(
            matches!(sent, Err(tether_tokio::Error::Closed(Some(_)))),
            "{driver:?}: {sent:?}"
        );
        let started = std::pin::Pin::new(&mut ws).start_send(Message::text("late"));
        assert!(
            matches!(started, Err(tether_tokio::Error::Closed(Some(ref info))) if info.reason == "bye"),
            "{driver:?}: {started:?}"
        );
    }
}

/// The `Sink` contract: a `start_send` after `poll_ready` said Ready is
/// accepted, even when another party drove the connection in between and
/// queued its own frames (here the reader half answers a Ping while the
/// transport takes nothing, so the Pong stays queued). It was refused with
/// `OutputFull`, which `SinkExt::send` reports as fatal.
#[tokio::test]
async fn start_send_after_poll_ready_is_accepted_whatever_the_connection_queued() {
    use futures_util::{Sink, Stream};
    use std::pin::Pin;
    use std::task::Poll;
    use tokio::io::AsyncWrite;
    let (ours, mut theirs) = tokio::io::duplex(64);
    let config = Config {
        max_queued_output: 0,
        ..Config::default()
    };
    let upgraded = tether::upgrade::Upgraded::new(tether::Role::Server, config);
    let ws = tether_tokio::from_upgraded(ours, upgraded, &[]);
    let (mut sink, mut stream) = ws.split();
    // a 64-byte frame fills the pipe; the queue is empty again
    within(sink.send(Message::binary(vec![0u8; 62])))
        .await
        .unwrap();
    std::future::poll_fn(|cx| {
        assert!(matches!(
            Pin::new(&mut sink).poll_ready(cx),
            Poll::Ready(Ok(()))
        ));
        // a masked, empty Ping from the peer
        let _ = Pin::new(&mut theirs).poll_write(cx, &[0x89, 0x80, 1, 2, 3, 4]);
        // the reader takes it; its Pong waits (the pipe is full)
        let _ = Pin::new(&mut stream).poll_next(cx);
        Poll::Ready(())
    })
    .await;
    Pin::new(&mut sink).start_send(Message::text("x")).unwrap();
}

/// `send_many` sends a burst in order, with each driver and through the
/// split sink: a burst larger than the output queue waits for room (the
/// peer reads only once released) and loses nothing; after the end it
/// fails as `send` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_many_sends_a_burst_in_order_and_waits_for_room() {
    use futures_util::StreamExt;
    for (driver, split) in [
        (tether_tokio::Driver::Shared, false),
        (tether_tokio::Driver::Shared, true),
        (tether_tokio::Driver::Owner, false),
    ] {
        const N: u32 = 300;
        let (listener, url) = listener().await;
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let mut peer = RawPeer::accept(&listener).await;
            release_rx.await.unwrap();
            let mut got = Vec::new();
            while got.len() < N as usize {
                let f = peer.frame().await.expect("a frame");
                assert_eq!(f.header.opcode, OpCode::Binary);
                got.push(u32::from_be_bytes(f.payload[..4].try_into().unwrap()));
            }
            peer.send(OpCode::Close, &1000u16.to_be_bytes()).await;
            got
        });
        let mut ws = connect_with_small_queue(&url, driver).await;
        // 300 x 16 KiB: far more than the queue and the sockets hold
        let burst = (0..N).map(|i| {
            let mut payload = vec![0u8; 16 * 1024];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            Message::binary(payload)
        });
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            release_tx.send(()).unwrap();
        });
        let (sent, rest) = if split {
            let (mut sink, stream) = ws.split();
            (within(sink.send_many(burst)).await, Err((sink, stream)))
        } else {
            (within(ws.send_many(burst)).await, Ok(ws))
        };
        sent.unwrap();
        release.await.unwrap();
        let got = within(server).await.unwrap();
        assert_eq!(
            got,
            (0..N).collect::<Vec<_>>(),
            "{driver:?}, split: {split}"
        );
        // the peer's Close ends it: a later burst fails as `send` does
        let late = [Message::text("late")];
        let failed = match rest {
            Err((mut sink, mut stream)) => {
                while within(stream.next()).await.is_some() {}
                within(sink.send_many(late)).await
            }
            Ok(mut ws) => {
                while within(ws.next()).await.is_some() {}
                within(ws.send_many(late)).await
            }
        };
        assert!(
            matches!(failed, Err(tether_tokio::Error::Closed(_))),
            "{driver:?}, split: {split}: {failed:?}"
        );
    }
}

/// `send_many` returns as `send` does once its last message is queued, not
/// when the queue has room again: one message larger than the output
/// queue, to a peer that reads nothing, is taken at once with the shared
/// driver (it waited for room it no longer needed, and could then report
/// an error for a message already queued). An empty burst sends nothing
/// and succeeds, with either driver.
#[tokio::test]
async fn send_many_returns_once_its_last_message_is_queued() {
    for driver in [tether_tokio::Driver::Shared, tether_tokio::Driver::Owner] {
        let (listener, url) = listener().await;
        let server = tokio::spawn(async move {
            let peer = RawPeer::accept(&listener).await;
            tokio::time::sleep(Duration::from_secs(10)).await; // never reads
            drop(peer);
        });
        let mut ws = connect_with_small_queue(&url, driver).await;
        within(ws.send_many(Vec::new())).await.unwrap();
        if driver == tether_tokio::Driver::Shared {
            let big = Message::binary(vec![1u8; 8 << 20]);
            let sent = tokio::time::timeout(Duration::from_secs(2), ws.send_many([big])).await;
            assert!(
                matches!(sent, Ok(Ok(()))),
                "send_many waited for room after its last message: {sent:?}"
            );
        }
        server.abort();
    }
}

/// A client whose output queue holds 64 KiB, so a burst of sends fills it.
async fn connect_with_small_queue(
    url: &str,
    driver: tether_tokio::Driver,
) -> tether_tokio::WebSocket {
    let options = ClientOptions::new()
        .config(Config {
            max_queued_output: 64 * 1024,
            ..Config::default()
        })
        .driver(driver);
    let (ws, _) = within(tether_tokio::connect(url, &options)).await.unwrap();
    ws
}
