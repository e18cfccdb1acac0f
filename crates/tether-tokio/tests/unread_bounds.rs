//! How much received input the tokio adapter holds for an application
//! that does not read (RFC 6455 section 10.4): a batch the stream took
//! still counts against `Config::max_unread_bytes`, and past our Close,
//! what is read on to reach the peer's answer is bounded by
//! `Config::max_message_size`. (`memory_bounds.rs` measures the bytes
//! themselves with a counting allocator.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tether::upgrade::Upgraded;
use tether::{CloseCode, Config, Role};
use tokio::io::AsyncWriteExt;

/// The stream takes received messages in batches (one lock per batch):
/// what it took and has not handed to the application still counts as
/// unread, so an application that read one message and stopped holds at
/// most `max_unread_bytes` (plus one message) read ahead, not twice that;
/// everything still arrives, in order, once it reads again.
#[tokio::test(start_paused = true)]
async fn a_batch_taken_by_the_stream_still_counts_against_max_unread_bytes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;

    const MESSAGES: usize = 400;
    const UNREAD: usize = 10;
    let (ours, mut peer) = tokio::io::duplex(64);
    let written = Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    tokio::spawn(async move {
        for i in 0..MESSAGES {
            // an unmasked server frame: Binary, 16 bytes, the index first
            let mut frame = vec![0x82u8, 16];
            frame.extend_from_slice(&(i as u64).to_be_bytes());
            frame.extend_from_slice(&[0u8; 8]);
            if peer.write_all(&frame).await.is_err() {
                return;
            }
            count.fetch_add(1, Ordering::SeqCst);
        }
        // keep the pipe open until the client is done
        std::future::pending::<()>().await;
    });
    let config = Config {
        max_unread_bytes: UNREAD * (tether::Event::OVERHEAD + 16),
        ..Config::default()
    };
    let upgraded = tether::upgrade::Upgraded::new(tether::Role::Client, config);
    let mut ws = tether_tokio::from_upgraded(ours, upgraded, &[]);
    let first = ws.next().await.unwrap().unwrap();
    assert_eq!(&first.as_bytes()[..8], &0u64.to_be_bytes());
    // the application stops reading; the connection reads ahead what fits
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ahead = written.load(Ordering::SeqCst);
    // the one read, the unread bound, one message over it, and what the
    // 64-byte pipe and a frame being written hold
    assert!(
        ahead <= 1 + UNREAD + 1 + 64 / 18 + 1,
        "{ahead} messages read ahead by an application that read one"
    );
    assert!(ahead > UNREAD / 2, "read ahead only {ahead}");
    for i in 1..MESSAGES {
        let m = within(ws.next()).await.unwrap().unwrap();
        assert_eq!(&m.as_bytes()[..8], &(i as u64).to_be_bytes(), "in order");
    }
}

/// After our Close, messages beyond the read-ahead bound are kept only up
/// to `max_message_size` bytes in all (`Connection::keeps_after_close`);
/// past it they are dropped and reading goes on, so the peer's answer,
/// which arrives after more than one read's worth of messages, is read: a
/// clean close either way, with memory bounded (as the blocking adapter
/// does; this adapter once stopped reading there and timed out with 1006).
#[tokio::test]
async fn reading_past_the_read_ahead_while_closing_is_bounded_by_max_message_size() {
    for (max_message_size, all_kept) in [(1 << 20, true), (1000, false)] {
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
            (true, 1000),
            "max_message_size {max_message_size}: {info:?}"
        );
        // what was kept stays readable, within the bound
        let mut kept = 0;
        while let Some(Ok(m)) = ws.next().await {
            kept += m.len();
        }
        if all_kept {
            assert_eq!(kept, 100 * 900);
        } else {
            // past the bound some were dropped (what the core had already
            // decoded before our Close is delivered as the application reads)
            assert!(kept < 100 * 900, "kept {kept} bytes");
        }
        drop(b);
    }
}

/// While the adapter holds off reading for an application that takes
/// nothing, a message the peer has begun is not "stalled" (its rest may
/// be waiting unread): `Config::message_timeout` does not fail it with
/// 1008 then; once the application reads again, the message completes.
#[tokio::test(start_paused = true)]
async fn rfc6455_10_4_a_begun_message_is_not_stalled_while_we_do_not_read() {
    let (a, mut b) = tokio::io::duplex(1 << 20);
    let config = Config {
        message_timeout: Some(Duration::from_secs(1)),
        max_unread_bytes: 16 << 10,
        ..Config::default()
    };
    let mut ws = tether_tokio::from_upgraded(a, Upgraded::new(Role::Server, config), &[]);
    // masked with a zero key: a 20 KiB binary message, then the first
    // fragment of a text message
    let mut wire = vec![0x82, 0x80 | 127];
    wire.extend_from_slice(&(20u64 << 10).to_be_bytes());
    wire.extend_from_slice(&[0; 4]);
    wire.extend(std::iter::repeat_n(7u8, 20 << 10));
    wire.extend_from_slice(&[0x01, 0x85, 0, 0, 0, 0]);
    wire.extend_from_slice(b"begun");
    b.write_all(&wire).await.unwrap();
    // the application is away for ten message timeouts
    tokio::time::sleep(Duration::from_secs(10)).await;
    let first = within(ws.next()).await.unwrap().unwrap();
    assert_eq!(first.len(), 20 << 10);
    b.write_all(&[0x80, 0x83, 0, 0, 0, 0]).await.unwrap();
    b.write_all(b"end").await.unwrap();
    let second = within(ws.next()).await.unwrap();
    assert_eq!(second.unwrap(), tether::Message::text("begunend"));
}
