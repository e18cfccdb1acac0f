//! Keep-alive and heartbeats through the tokio adapter: a Ping whose Pong
//! does not come aborts in time, a one-way Pong goes out while the
//! application only reads, the idle timeout counts what we send, an abort
//! found by the sending task wakes the reading one, and a heartbeat does not
//! spin the driver while closing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use tether::frame::OpCode;
use tether::upgrade::Upgraded;
use tether::{CloseCode, Config, Heartbeat, KeepAlive, Message, Role};
use tether_tokio::{ClientOptions, Error, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn keepalive_ping_with_silent_peer_aborts_within_interval_plus_timeout() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let peer = RawPeer::accept(&listener).await;
        // reads nothing, answers nothing
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(peer);
    });
    let options = ClientOptions::new().config(Config {
        keep_alive: KeepAlive::Ping {
            interval: Duration::from_millis(300),
            timeout: Duration::from_millis(300),
        },
        ..Config::default()
    });
    let started = Instant::now();
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let end = within(ws.next()).await;
    let elapsed = started.elapsed();
    match end {
        Some(Err(Error::Closed(Some(info)))) => {
            assert_eq!(info.code, CloseCode::ABNORMAL);
            assert!(
                info.reason.contains("keep-alive timeout"),
                "{}",
                info.reason
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    server.abort();
}

#[tokio::test]
async fn keepalive_pong_heartbeat_goes_out_while_the_application_only_reads() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        let started = Instant::now();
        for _ in 0..3 {
            let f = peer.frame().await.unwrap();
            assert_eq!(f.header.opcode, OpCode::Pong);
            assert!(f.payload.is_empty());
        }
        started.elapsed()
    });
    let options = ClientOptions::new().config(Config {
        keep_alive: KeepAlive::Pong {
            interval: Duration::from_millis(200),
        },
        ..Config::default()
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let reader = tokio::spawn(async move { ws.next().await.map(|r| r.is_ok()) });
    let elapsed = within(server).await.unwrap();
    assert!(elapsed >= Duration::from_millis(550), "{elapsed:?}");
    reader.abort();
}

/// `Config::idle_timeout` counts data messages either way: a server that
/// only sends (its peer says nothing) is not closed as idle while it does.
#[tokio::test]
async fn idle_timeout_counts_the_messages_we_send() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let options = ServerOptions::new().config(Config {
            idle_timeout: Some(Duration::from_millis(300)),
            ..Config::default()
        });
        let (ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        tokio::spawn(async move { while stream.next().await.is_some() {} });
        let start = Instant::now();
        let mut sent = 0u32;
        while start.elapsed() < Duration::from_millis(1000) {
            if sink.send(Message::text(format!("{sent}"))).await.is_err() {
                return Err(sent);
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(sent)
    });
    let mut peer = RawClient::connect(&url).await;
    // read everything, say nothing, until the server's Close
    while let Some(f) = peer.frame().await {
        if f.header.opcode == OpCode::Close {
            break;
        }
    }
    let result = within(server).await.unwrap();
    assert!(result.is_ok(), "closed as idle after {result:?} sends");
}

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
        elapsed < Duration::from_millis(2500),
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

/// A heartbeat must not spin the driver once closing has begun; the close
/// completes cleanly when the peer answers.
#[tokio::test]
async fn heartbeat_does_not_spin_the_driver_while_closing() {
    let (a, mut b) = tokio::io::duplex(1 << 20);
    let config = Config {
        close_timeout: Duration::from_secs(3),
        heartbeat: Some(Heartbeat {
            interval: Duration::from_millis(100),
            message: Message::text("hb"),
        }),
        ..Config::default()
    };
    let mut ws = tether_tokio::from_upgraded(a, Upgraded::new(Role::Client, config), &[]);
    let peer = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let _ = b.read(&mut buf).await.unwrap(); // our Close
        b.write_all(&[0x81, 4, b'l', b'a', b't', b'e'])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.write_all(&[0x88, 2, 0x03, 0xe8]).await.unwrap();
        b.shutdown().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let t = Instant::now();
    let info = ws.close(CloseCode::NORMAL, "").await.unwrap();
    let el = t.elapsed();
    let _ = peer.await;
    assert!(
        info.was_clean && el < Duration::from_secs(2),
        "info {info:?} after {el:?}"
    );
}

/// The send that finds the keep-alive's end returns it, and the final
/// `Closed` event is still delivered after it, as in the blocking adapter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_ended_by_the_keepalive_still_leaves_the_final_event() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let peer = RawPeer::accept(&listener).await;
        // reads nothing, answers nothing
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(peer);
    });
    let options = ClientOptions::new().config(Config {
        keep_alive: KeepAlive::Ping {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(200),
        },
        max_queued_output: 1 << 20,
        ..Config::default()
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let text = "x".repeat(16 << 10);
    let err = within(async {
        loop {
            if let Err(e) = ws.send(Message::text(text.clone())).await {
                break e;
            }
        }
    })
    .await;
    assert!(matches!(err, Error::Closed(Some(_))), "{err:?}");
    match within(ws.next_event()).await {
        Some(tether::Event::Closed(info)) => assert_eq!(info.code, CloseCode::ABNORMAL),
        other => panic!("{other:?} (state {:?})", ws.state()),
    }
    assert!(within(ws.next_event()).await.is_none());
    server.abort();
}

/// After the idle timeout sent our Close (RFC 6455 7.1.2), a send while
/// the answer is awaited is refused naming the state and why it was left:
/// the idle timeout's 1001, not only `CloseSent`, which the application,
/// that never asked to close, could not explain.
#[tokio::test(start_paused = true)]
async fn rfc6455_7_1_2_a_send_after_the_idle_timeout_says_why_the_connection_is_closing() {
    let (ours, mut peer) = tokio::io::duplex(1 << 16);
    let config = Config {
        idle_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let mut ws = tether_tokio::from_upgraded(ours, Upgraded::new(Role::Server, config), &[]);
    // the peer says nothing and never answers; the Close reaches it
    let mut got = Vec::new();
    tokio::select! {
        next = ws.next() => panic!("ended before the idle timeout: {next:?}"),
        () = async {
            let mut buf = [0u8; 64];
            while !got.windows(12).any(|w| w == b"idle timeout") {
                let n = peer.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
        } => {}
    }
    assert_eq!(ws.state(), tether::State::CloseSent);
    let err = ws.send(Message::text("late")).await.unwrap_err();
    match &err {
        Error::Misuse(tether::Error::InvalidState {
            state: tether::State::CloseSent,
            cause: Some(cause),
            ..
        }) => {
            assert_eq!(cause.code, CloseCode::GOING_AWAY);
            assert_eq!(cause.reason, "idle timeout");
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("idle timeout") && text.contains("CloseSent"),
        "{text}"
    );
}

/// A server connection over `io` (upgraded already) under `config`,
/// driven by `driver`.
fn server_over(
    io: tokio::io::DuplexStream,
    config: Config,
    driver: tether_tokio::Driver,
) -> tether_tokio::WebSocket {
    tether_tokio::from_upgraded_with(io, Upgraded::new(Role::Server, config), &[], driver, None)
}

/// The idle timeout counts from the last data either way, our echo
/// included: an application that answers a message at once is closed as
/// idle one idle timeout after the answer, with either driver. Its answer
/// went out without the core being told the time, so the count started
/// only when the stale deadline fired: closed twice the setting after the
/// last data.
#[tokio::test(start_paused = true)]
async fn rfc6455_7_1_2_the_idle_timeout_counts_from_our_answer() {
    use tokio::io::AsyncWriteExt;
    for driver in [tether_tokio::Driver::Shared, tether_tokio::Driver::Owner] {
        let (ours, mut peer) = tokio::io::duplex(1 << 16);
        let config = Config {
            idle_timeout: Some(Duration::from_secs(10)),
            // no idle release on the way, whose timer would tell the time
            first_release_after: Duration::from_secs(3600),
            release_idle_after: Duration::from_secs(3600),
            ..Config::default()
        };
        let mut ws = server_over(ours, config, driver);
        let echo = tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        });
        // a masked text "hi"
        peer.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i'])
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < 4 {
            let n = peer.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(&got[..4], &[0x81, 0x02, b'h', b'i'], "{driver:?}");
        let answered = tokio::time::Instant::now();
        got.drain(..4);
        while !got.windows(12).any(|w| w == b"idle timeout") {
            let n = peer.read(&mut buf).await.unwrap();
            assert!(n > 0, "{driver:?}: ended without the idle Close");
            got.extend_from_slice(&buf[..n]);
        }
        let after = answered.elapsed();
        assert!(
            after >= Duration::from_secs(10) && after < Duration::from_secs(11),
            "{driver:?}: closed as idle {after:?} after our answer"
        );
        echo.abort();
    }
}

/// RFC 6455 section 10.4, in virtual time, with the default `Config` (no
/// keep-alive, no idle timeout): a peer that reads nothing ends a send
/// that waits for room after `send_timeout` (60 s), with 1006, whichever
/// driver; a peer that reads 4 KiB every 50 s is never cut off, however
/// long it takes, over an in-memory duplex (which wakes the writer for
/// every byte read: a socket reports room only after more has drained,
/// `Config::send_timeout` says how much).
#[tokio::test(start_paused = true)]
async fn rfc6455_10_4_the_default_send_timeout_ends_a_send_nobody_takes() {
    for driver in [tether_tokio::Driver::Shared, tether_tokio::Driver::Owner] {
        for slow_reader in [false, true] {
            let (ours, mut peer) = tokio::io::duplex(64 << 10);
            let config = Config {
                max_queued_output: 256 << 10,
                ..Config::default()
            };
            assert_eq!(config.send_timeout, Some(Duration::from_secs(60)));
            let mut ws = server_over(ours, config, driver);
            let reader = tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    if slow_reader {
                        tokio::time::sleep(Duration::from_secs(50)).await;
                        if peer.read(&mut buf).await.unwrap_or(0) == 0 {
                            return;
                        }
                    } else {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        drop(peer);
                        return;
                    }
                }
            });
            let started = tokio::time::Instant::now();
            let payload = bytes::Bytes::from(vec![7u8; 16 << 10]);
            let ended = tokio::time::timeout(Duration::from_secs(600), async {
                loop {
                    if let Err(e) = ws.send(Message::binary(payload.clone())).await {
                        return e;
                    }
                }
            })
            .await;
            let what = format!("{driver:?}, slow reader {slow_reader}");
            if slow_reader {
                assert!(ended.is_err(), "{what}: cut off: {ended:?}");
                assert_eq!(ws.state(), tether::State::Open, "{what}");
            } else {
                let err = ended.unwrap_or_else(|_| panic!("{what}: still sending"));
                let info = ws.close_info().unwrap_or_else(|| panic!("{what}: {err}"));
                assert_eq!(info.code, CloseCode::ABNORMAL, "{what}: {info:?}");
                assert!(info.reason.contains("send timeout"), "{what}: {info:?}");
                let waited = started.elapsed();
                assert!(
                    waited >= Duration::from_secs(60) && waited < Duration::from_secs(62),
                    "{what}: {waited:?}"
                );
            }
            reader.abort();
        }
    }
}
