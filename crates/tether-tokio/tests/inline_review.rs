//! Review of the inline ("whoever polls drives") tokio driver: lost
//! wake-ups, spins, close semantics and the Sink contract, over real TCP on
//! 127.0.0.1. A test that fails here demonstrates a bug.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::time::{Duration, Instant};
use tether::upgrade::Upgraded;

use bytes::{Bytes, BytesMut};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tether::frame::OpCode;
use tether::{CloseCode, Config, Event, KeepAlive, Message, Role};
use tether_tokio::{ClientOptions, Error, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A step that must finish within `secs` seconds.
async fn within_secs<T>(secs: u64, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .ok()
}

/// Runs `fut` on its own current-thread runtime in its own thread. `None`
/// when it did not finish within `limit`: a driver spinning under its lock
/// blocks its whole runtime, so a tokio timeout inside it cannot fire. (A
/// spinning thread keeps running until the test binary exits.)
fn watchdog<F>(limit: Duration, fut: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(fut);
        let _ = tx.send(out);
    });
    rx.recv_timeout(limit).ok()
}

/// CPU time this thread has used (Linux): with a current-thread runtime on
/// its own thread, the CPU its tasks used.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    Duration::from_nanos(stat.split_whitespace().next().unwrap().parse().unwrap())
}

// ---------------------------------------------------------------------------
// Ping events fill the receive queue and stop the reads that answer Pings
// ---------------------------------------------------------------------------

/// ARCHITECTURE: "Ping/Pong events, being already answered, are dropped
/// rather than stalling reads", and Pongs go out "whatever the application
/// does". An application that never reads gets `max_unread_bytes` of Ping
/// events queued; then `can_read` is false and the next Ping is never read,
/// so never answered.
async fn pings_beyond_capacity(only_sends: bool) -> usize {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        let mut pongs = 0;
        for i in 0..12u8 {
            peer.send(OpCode::Ping, &[i]).await;
            let answered = within_secs(2, async {
                loop {
                    let f = peer.frame().await.unwrap();
                    match f.header.opcode {
                        OpCode::Pong => {
                            assert_eq!(&f.payload[..], &[i]);
                            return;
                        }
                        OpCode::Text => {}
                        other => panic!("{other:?}"),
                    }
                }
            })
            .await;
            if answered.is_none() {
                break;
            }
            pongs += 1;
        }
        pongs
    });
    let options = ClientOptions::new().max_unread_bytes(4 * tether::Event::OVERHEAD);
    let (ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let (mut sink, stream) = ws.split();
    let sender = tokio::spawn(async move {
        let _keep = stream; // held, never read
        loop {
            if only_sends && sink.send(Message::text("busy")).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let pongs = within(server).await.unwrap();
    sender.abort();
    pongs
}

#[tokio::test]
async fn pings_beyond_the_read_ahead_are_answered_while_the_app_only_sends() {
    assert_eq!(pings_beyond_capacity(true).await, 12, "Pongs stopped");
}

#[tokio::test]
async fn pings_beyond_the_read_ahead_are_answered_while_the_app_does_nothing() {
    assert_eq!(pings_beyond_capacity(false).await, 12, "Pongs stopped");
}

// ---------------------------------------------------------------------------
// A drain deadline that stays in the timer set spins the driver
// ---------------------------------------------------------------------------

/// The peer sends `capacity - 1` messages and its Close; the application
/// reads nothing for a while. The core answers the Close at close_timeout
/// (state Closed with our reply queued), which arms `drain_deadline`; the
/// reply is written, but the final `Closed` stays `held` (the queue is
/// full), so the connection cannot finish and `drain_deadline` stays in the
/// timer minimum after it passed: `timer.poll` is Ready at once and the
/// drive loop `continue`s until tokio's coop budget makes the Sleep return
/// Pending (waking the shared waker), so the background task busy-loops,
/// burning a core until the application reads.
#[test]
fn unread_backlog_then_peer_close_does_not_spin_the_driver() {
    let out = watchdog(Duration::from_secs(6), async {
        let (listener, url) = listener().await;
        let client = tokio::spawn(async move {
            let mut client = RawClient::connect(&url).await;
            let mut wire = BytesMut::new();
            for i in 0..3 {
                client.encode(OpCode::Text, format!("m{i}").as_bytes(), &mut wire);
            }
            client.encode(OpCode::Close, &1000u16.to_be_bytes(), &mut wire);
            client.stream.write_all(&wire).await.unwrap();
            // read the Close reply, then hold the socket
            while let Some(f) = client.frame().await {
                if f.header.opcode == OpCode::Close {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_secs(4)).await;
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let options = ServerOptions::new()
            .config(Config {
                close_timeout: Duration::from_millis(300),
                ..Config::default()
            })
            .max_unread_bytes(4 * tether::Event::OVERHEAD);
        let (mut ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
        // a slow application: reads nothing for 1.5 s; the drain deadline
        // passes at ~0.6 s
        tokio::time::sleep(Duration::from_millis(800)).await;
        let cpu = thread_cpu();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let cpu = thread_cpu() - cpu;
        let mut got = 0;
        while let Some(m) = ws.next().await {
            m.unwrap();
            got += 1;
        }
        client.abort();
        (got, cpu)
    });
    let (got, cpu) = out.expect("the runtime hung");
    assert_eq!(got, 3);
    assert!(
        cpu < Duration::from_millis(100),
        "an idle connection used {cpu:?} of CPU in 700 ms: the driver spins on a past drain_deadline"
    );
}

/// The same spin after a protocol error: the error queues our Close and
/// ends the connection in the same drive iteration, before the write step,
/// so `drain_deadline` is armed on every protocol error; with more
/// messages before the error than the queue holds, the spin follows.
#[test]
fn unread_backlog_then_protocol_error_does_not_spin_the_driver() {
    let out = watchdog(Duration::from_secs(6), async {
        let (listener, url) = listener().await;
        let client = tokio::spawn(async move {
            let mut client = RawClient::connect(&url).await;
            let mut wire = BytesMut::new();
            for i in 0..6 {
                client.encode(OpCode::Text, format!("m{i}").as_bytes(), &mut wire);
            }
            // a reserved opcode: 1002
            wire.extend_from_slice(&[0x83, 0x80, 0, 0, 0, 0]);
            client.stream.write_all(&wire).await.unwrap();
            tokio::time::sleep(Duration::from_secs(4)).await;
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let options = ServerOptions::new()
            .config(Config {
                close_timeout: Duration::from_millis(300),
                ..Config::default()
            })
            .max_unread_bytes(4 * tether::Event::OVERHEAD);
        let (mut ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        let cpu = thread_cpu();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let cpu = thread_cpu() - cpu;
        let mut got = 0;
        loop {
            match ws.next_event().await {
                Some(Event::Message(_)) => got += 1,
                Some(Event::Closed(info)) => {
                    assert_eq!(info.code.as_u16(), 1002);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        client.abort();
        (got, cpu)
    });
    let (got, cpu) = out.expect("the runtime hung");
    assert_eq!(got, 6);
    assert!(
        cpu < Duration::from_millis(100),
        "an idle connection used {cpu:?} of CPU in 700 ms: the driver spins on a past drain_deadline"
    );
}

// ---------------------------------------------------------------------------
// A timer handled early by another party: the reader is never woken
// ---------------------------------------------------------------------------

/// The sending task's inline drive (`start_writing`, read=false) sees the
/// keep-alive deadline pass (`Instant::now() >= t`) before tokio's timer
/// fires (it rounds up to the next ms), aborts the connection, queues the
/// final `Closed` and finishes; the timer is then dropped and nothing wakes
/// the reading task (only dropping the sending half would, through the
/// background task's final `wake_all`). Over TCP the ACK of our FIN may
/// happen to wake it; over an in-memory stream (an upgraded hyper
/// connection, a duplex) no transport event follows, and the reader waits
/// on a silent peer forever.
async fn keepalive_abort_found_by_the_sender() {
    let (a, b) = tokio::io::duplex(64 << 20);
    let config = Config {
        keep_alive: KeepAlive::Ping {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(200),
        },
        ..Config::default()
    };
    let ws = tether_tokio::from_upgraded(a, Upgraded::new(Role::Client, config), &[]);
    let (mut sink, mut stream) = ws.split();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    let writer = tokio::spawn(async move {
        let mut sent = 0u64;
        while sink.send(Message::text("x")).await.is_ok() {
            sent += 1;
            tokio::task::yield_now().await;
        }
        let _ = sent_tx.send(sent);
        // the sending side lives on (e.g. a writer task waiting for its
        // next job); dropping it would kick the background task, whose end
        // wakes everyone
        std::future::pending::<()>().await;
        drop(sink);
    });
    let started = Instant::now();
    let end = within_secs(3, stream.next()).await;
    let elapsed = started.elapsed();
    let sent = within(sent_rx).await.unwrap();
    writer.abort();
    drop(b); // the silent peer
    // (tokio's `timeout` polls the inner future once more when it expires:
    // a reader never woken still finds the end then, 3 s late)
    assert!(
        elapsed < Duration::from_millis(1500),
        "reader not woken: it saw {end:?} only after {elapsed:?}, when the test's \
         timeout polled it (the writer, {sent} sends, found the abort at ~400 ms)"
    );
    match end {
        Some(Some(Err(Error::Closed(Some(info))))) => {
            assert!(info.reason.contains("keep-alive"), "{info:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn keepalive_abort_found_by_the_sending_task_wakes_the_reading_task() {
    keepalive_abort_found_by_the_sender().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_abort_found_by_the_sending_task_wakes_the_reading_task_mt() {
    keepalive_abort_found_by_the_sender().await;
}

// ---------------------------------------------------------------------------
// Sink contract: flush after the output was discarded
// ---------------------------------------------------------------------------

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
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            ws.send(Message::binary(payload.clone())).await.unwrap();
        }
    })
    .await;
    go_tx.send(()).unwrap();
    within(server).await.unwrap();
    let flushed = within(SinkExt::flush(&mut ws)).await;
    assert!(
        flushed.is_err(),
        "flush said Ok(()) for megabytes the peer never got; close: {:?}",
        ws.close_info()
    );
}

// ---------------------------------------------------------------------------
// close() with an unread backlog
// ---------------------------------------------------------------------------

/// `close()` "waits until the connection has ended (the peer answered...)".
/// With `max_unread_bytes` of unread messages, reading stops, so the peer's
/// prompt Close reply is never read: `close()` takes the whole
/// close_timeout and reports 1006 / `was_clean: false` although the peer
/// answered at once.
#[tokio::test]
async fn close_with_an_unread_backlog_sees_the_peers_prompt_reply() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (mut ws, _) = tether_tokio::accept(tcp, &ServerOptions::default())
            .await
            .unwrap();
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
        info.was_clean && elapsed < Duration::from_secs(1),
        "close() took {elapsed:?}: {info:?} (server saw {server_view:?})"
    );
}

// ---------------------------------------------------------------------------
// Close reply before the application answered what it read (multi-thread)
// ---------------------------------------------------------------------------

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
            let (tcp, _) = listener.accept().await.unwrap();
            let (mut ws, _) = tether_tokio::accept(tcp, &ServerOptions::default())
                .await
                .unwrap();
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

// ---------------------------------------------------------------------------
// Behaviour pinned down (expected to pass)
// ---------------------------------------------------------------------------

/// A `next()` cancelled in `select!` leaves the application's task as the
/// registered reader; the application then stops polling the socket. The
/// background task must still drive: Pings are answered.
async fn cancelled_next_then_idle() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut pongs = 0;
        for i in 0..5u8 {
            peer.send(OpCode::Ping, &[i]).await;
            match within_secs(2, peer.frame()).await {
                Some(Some(f)) if f.header.opcode == OpCode::Pong => pongs += 1,
                other => panic!("ping {i}: {other:?}"),
            }
        }
        pongs
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    tokio::select! {
        m = ws.next() => panic!("{m:?}"),
        () = tokio::time::sleep(Duration::from_millis(20)) => {}
    }
    // the application does something else for a while, holding `ws`
    let pongs = within(server).await.unwrap();
    assert_eq!(pongs, 5);
    drop(ws);
}

#[tokio::test]
async fn pings_answered_after_a_cancelled_next_while_the_app_is_idle() {
    cancelled_next_then_idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_answered_after_a_cancelled_next_while_the_app_is_idle_mt() {
    cancelled_next_then_idle().await;
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

/// Split halves on different worker threads: an echo of 2000 messages,
/// nothing lost or reordered, then a clean close seen by the reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_on_different_threads_echo_and_close_mt() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (mut ws, _) = tether_tokio::accept(tcp, &ServerOptions::default())
            .await
            .unwrap();
        while let Some(Ok(m)) = ws.next().await {
            if ws.send(m).await.is_err() {
                break;
            }
        }
    });
    let (ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    const N: usize = 2000;
    let writer = tokio::spawn(async move {
        for i in 0..N {
            sink.send(Message::text(format!("{i}"))).await.unwrap();
        }
        sink
    });
    let reader = tokio::spawn(async move {
        for i in 0..N {
            let m = stream.next().await.unwrap().unwrap();
            assert_eq!(m.as_text().unwrap(), format!("{i}"));
        }
        stream
    });
    let mut sink = within(writer).await.unwrap();
    let mut stream = within(reader).await.unwrap();
    let closer = tokio::spawn(async move { sink.close(CloseCode::NORMAL, "").await });
    assert!(within(stream.next()).await.is_none());
    assert!(within(closer).await.unwrap().unwrap().was_clean);
    within(server).await.unwrap();
}

/// Dropping the receiving half with unread messages and the peer's Close
/// queued answers the Close at once (nobody will read up to it).
#[tokio::test]
async fn dropping_the_stream_half_answers_a_pending_peer_close() {
    let (listener, url) = listener().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (ws, _) = tether_tokio::accept(tcp, &ServerOptions::default())
            .await
            .unwrap();
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

/// RFC 6455 7.1.1: the server closes TCP first, right after the closing
/// handshake; the tether client waits for that FIN.
#[tokio::test]
async fn rfc6455_7_1_1_server_closes_tcp_right_after_the_closing_handshake() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (mut ws, _) = tether_tokio::accept(tcp, &ServerOptions::default())
            .await
            .unwrap();
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
    let n = within_secs(1, client.stream.read(&mut buf))
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
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(3),
        "client FIN after {waited:?}"
    );
    drop(ws);
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
