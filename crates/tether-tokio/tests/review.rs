//! Regression tests for bugs a review found in the tokio driver and
//! handles, each over an in-memory duplex stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use tether::upgrade::Upgraded;

use futures_util::SinkExt;
use tether::{CloseCode, Config, Heartbeat, Message, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// After our Close, messages beyond the read-ahead bound are read only up to
/// `max_message_size` bytes in all: within that budget the peer's answer,
/// which arrives after more than one read's worth of messages, is read (a
/// clean close); past it reading stays stopped (memory stays bounded) and
/// the close ends by its timeout with 1006.
#[tokio::test]
async fn reading_past_the_read_ahead_while_closing_is_bounded_by_max_message_size() {
    for (max_message_size, clean) in [(1 << 20, true), (1000, false)] {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let config = Config {
            close_timeout: Duration::from_millis(300),
            max_message_size,
            // a read-ahead of a few messages: the rest is past it
            max_unread_bytes: 8 * 1024,
            ..Config::default()
        };
        let mut ws = tether_tokio::from_upgraded(a, Upgraded::new(Role::Client, config), &[]);
        let mut wire = Vec::new();
        // 100 messages of 900 bytes (more than one 64 KiB read), unread,
        // then the peer's Close
        for _ in 0..100 {
            wire.extend_from_slice(&[0x82, 126, 0x03, 0x84]);
            wire.extend_from_slice(&[7u8; 900]);
        }
        wire.extend_from_slice(&[0x88, 2, 0x03, 0xe8]);
        b.write_all(&wire).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let info = tokio::time::timeout(Duration::from_secs(5), ws.close(CloseCode::NORMAL, ""))
            .await
            .expect("close() returns")
            .unwrap();
        assert_eq!(
            (info.was_clean, info.code.as_u16()),
            if clean { (true, 1000) } else { (false, 1006) },
            "max_message_size {max_message_size}: {info:?}"
        );
        drop(b);
    }
}
