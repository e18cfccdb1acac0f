//! The connection moves whatever the application does (the shared
//! driver's promise): Pings are answered while it only sends, or does
//! nothing, or left a `next()` cancelled in `select!`; answers queued behind
//! unread messages go out while it waits; an idle connection keeps no task
//! yet still answers; a backlog left unread with a Close or an error behind
//! it does not spin the driver; split halves on different threads echo and
//! close. Lost wake-ups show here as steps that never finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use futures_util::StreamExt;
use tether::frame::OpCode;
use tether::{CloseCode, Config, Event, Message};
use tether_tokio::{ClientOptions, ServerOptions};
use tokio::io::AsyncWriteExt;

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

#[tokio::test]
async fn pongs_go_out_while_the_application_only_sends() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        let mut pongs = 0;
        for i in 0..20u8 {
            peer.send(OpCode::Ping, &[i]).await;
            // the client application never reads; its driver must answer
            loop {
                let f = peer.frame().await.unwrap();
                match f.header.opcode {
                    OpCode::Pong => {
                        assert_eq!(&f.payload[..], &[i]);
                        pongs += 1;
                        break;
                    }
                    OpCode::Text => {}
                    other => panic!("{other:?}"),
                }
            }
        }
        pongs
    });
    let (ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let (mut sink, _stream) = ws.split();
    let sender = tokio::spawn(async move {
        loop {
            if sink.send(Message::text("busy")).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(within(server).await.unwrap(), 20);
    sender.abort();
}

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

/// The answers to messages that arrived together (one batch) are held
/// while the application still has some of them to read, then written
/// together; the last may wait for the application's next read. An
/// application that answers and then waits on something else (a database,
/// a timer) must still see every answer go out: the background task writes
/// them, at once (no timer of the connection's may be what sends them: the
/// idle release, which drives too, is set far beyond the test's limit).
/// The application answers the first `answered` of `messages` (the rest
/// stay unread), working `pause` on each before answering it.
async fn answers_go_out_while_the_application_waits(
    messages: usize,
    answered: usize,
    pause: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (ours, mut peer) = tokio::io::duplex(1 << 16);
    // unmasked server frames, all in one write: Binary, 3 bytes each
    let mut burst = Vec::new();
    for i in 0..messages {
        burst.extend_from_slice(&[0x82, 3, b'm', b'0' + i as u8, b'!']);
    }
    peer.write_all(&burst).await.unwrap();
    let config = Config {
        release_idle_after: Duration::from_secs(60),
        first_release_after: Duration::from_secs(60),
        ..Config::default()
    };
    let upgraded = tether::upgrade::Upgraded::new(tether::Role::Client, config);
    let mut ws = tether_tokio::from_upgraded(ours, upgraded, &[]);
    let app = tokio::spawn(async move {
        for _ in 0..answered {
            let m = ws.next().await.unwrap().unwrap();
            tokio::time::sleep(pause).await;
            ws.send(m).await.unwrap();
        }
        // the application waits on something else, its connection open
        std::future::pending::<()>().await;
        drop(ws);
    });
    // each answer: a masked client frame of 2 + 4 + 3 bytes
    let mut answers = vec![0u8; answered * 9];
    let read = tokio::time::timeout(Duration::from_secs(5), peer.read_exact(&mut answers)).await;
    app.abort();
    assert!(
        read.is_ok(),
        "not every answer went out while the application waited"
    );
    for (i, frame) in answers.chunks(9).enumerate() {
        assert_eq!(&frame[..2], &[0x82, 0x83], "answer {i}: {frame:?}");
        let (key, payload) = frame[2..].split_at(4);
        let unmasked: Vec<u8> = payload.iter().zip(key).map(|(b, k)| b ^ k).collect();
        assert_eq!(
            unmasked,
            [b'm', b'0' + i as u8, b'!'],
            "answer {i}, in order"
        );
    }
}

/// (messages, answered): a batch of one; a whole batch answered; an
/// application that stops in the middle of one.
const BATCHES: [(usize, usize); 5] = [(1, 1), (2, 2), (7, 7), (7, 3), (7, 1)];

#[tokio::test(start_paused = true)]
async fn every_answer_to_a_batch_goes_out_while_the_application_waits() {
    for (messages, answered) in BATCHES {
        for pause in [Duration::ZERO, Duration::from_millis(10)] {
            answers_go_out_while_the_application_waits(messages, answered, pause).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_to_a_batch_goes_out_while_the_application_waits_mt() {
    for (messages, answered) in BATCHES {
        for pause in [Duration::ZERO, Duration::from_millis(1)] {
            answers_go_out_while_the_application_waits(messages, answered, pause).await;
        }
    }
}

/// The background task exists only while the connection is active: once
/// the connection has been quiet for `Config::release_idle_after` (the
/// first time `Config::first_release_after`, 5 ms here) it ends
/// (an idle connection holds no task of its own), and whatever wakes the
/// connection later starts a new one: a Ping is answered, and a dropped
/// connection still says goodbye, with the application polling nothing.
#[tokio::test]
async fn an_idle_connection_keeps_no_task_and_still_answers_and_says_goodbye() {
    idle_without_a_task(None).await;
}

/// As above with one half dropped first: the background task retires all
/// the same (it stayed for as long as the other half lived), Pings are
/// still answered, and dropping the other half says goodbye.
#[tokio::test]
async fn with_one_half_dropped_an_idle_connection_keeps_no_task_either() {
    idle_without_a_task(Some(true)).await;
    idle_without_a_task(Some(false)).await;
}

/// The idle connection's rounds; `drop_sink_first`: drop that half (or
/// the stream) once at rest, before the Pings.
async fn idle_without_a_task(drop_sink_first: Option<bool>) {
    let (listener, url) = listener().await;
    let config = Config {
        release_idle_after: Duration::from_millis(20),
        ..Config::default()
    };
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tether_tokio::accept(tcp, &ServerOptions::new().config(config))
            .await
            .unwrap()
    });
    let mut peer = within(RawClient::connect(&url)).await;
    let (ws, _) = within(accept).await.unwrap();
    let tasks = tokio::runtime::Handle::current().metrics();
    let at_rest = || async {
        let start = Instant::now();
        while tasks.num_alive_tasks() > 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "a task stayed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    at_rest().await;
    let mut whole = Some(ws);
    let (mut sink, mut stream) = (None, None);
    if let Some(sink_first) = drop_sink_first {
        let (s, r) = whole.take().unwrap().split();
        (sink, stream) = (Some(s), Some(r));
        if sink_first {
            drop(sink.take());
        } else {
            drop(stream.take());
        }
    }
    at_rest().await;
    for round in 0..3 {
        peer.send(OpCode::Ping, format!("ping {round}").as_bytes())
            .await;
        let pong = within(peer.frame()).await.expect("a Pong");
        assert_eq!(pong.header.opcode, OpCode::Pong);
        assert_eq!(&pong.payload[..], format!("ping {round}").as_bytes());
        at_rest().await;
    }
    drop((whole, sink, stream));
    let close = within(peer.frame()).await.expect("a Close");
    assert_eq!(close.header.opcode, OpCode::Close);
    assert_eq!(&close.payload[..2], &1001u16.to_be_bytes());
}

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

/// Split halves on different worker threads: an echo of 2000 messages,
/// nothing lost or reordered, then a clean close seen by the reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_on_different_threads_echo_and_close_mt() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut ws = accept_one(&listener, &ServerOptions::default()).await;
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

/// A transport that is never out of input: masked empty Pings, one after
/// another, forever (what a flooding client sends), counting what was
/// read; what is written to it is dropped.
struct PingFlood {
    read: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl tokio::io::AsyncRead for PingFlood {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        const PING: [u8; 6] = [0x89, 0x80, 1, 2, 3, 4];
        let frames = buf.remaining() / PING.len();
        for _ in 0..frames {
            buf.put_slice(&PING);
        }
        self.read
            .fetch_add(frames * PING.len(), std::sync::atomic::Ordering::Relaxed);
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for PingFlood {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A Ping flood holds the application's task for about one turn
/// (`Config::turn_bytes`) per poll of `next()`, with either driver: the
/// Pings are answered and skipped, and the task lets the runtime's other
/// tasks run. With the shared driver, a `next()` that skipped Pings drove
/// turn after turn in one poll, bounded only by tokio's cooperative budget
/// (not at all over a transport outside it, as this one is).
#[test]
fn a_ping_flood_takes_about_one_turn_per_poll_with_either_driver() {
    for driver in [tether_tokio::Driver::Owner, tether_tokio::Driver::Shared] {
        let done = watchdog(Duration::from_secs(20), ping_flood_polls(driver));
        assert!(
            done.is_some(),
            "{driver:?}: a poll of next() never returned"
        );
    }
}

async fn ping_flood_polls(driver: tether_tokio::Driver) {
    use futures_util::FutureExt;
    use tether::upgrade::Upgraded;
    {
        let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let io = PingFlood { read: read.clone() };
        let config = Config::default();
        let turn = config.turn_bytes;
        let upgraded = Upgraded::new(tether::Role::Server, config);
        let mut ws = tether_tokio::from_upgraded_with(io, upgraded, &[], driver, None);
        for _ in 0..3 {
            let before = read.load(std::sync::atomic::Ordering::Relaxed);
            assert!(ws.next().now_or_never().is_none(), "{driver:?}");
            let taken = read.load(std::sync::atomic::Ordering::Relaxed) - before;
            assert!(
                taken <= 2 * turn + (128 << 10),
                "{driver:?}: one poll read {taken} bytes of Pings (a turn is {turn})"
            );
        }
        ws.abort();
    }
}
