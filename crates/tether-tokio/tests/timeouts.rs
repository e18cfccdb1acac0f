//! The core's timers through the tokio adapter, many connections at once:
//! a timer that fails a connection while its application waits must be
//! carried out when it fires, not at the next wake-up for another reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tether::Config;

/// A client frame of `len` bytes, masked.
fn client_frame(len: usize) -> Vec<u8> {
    let mut out = vec![0x82, 0x80 | 126];
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&[1, 2, 3, 4]);
    out.extend((0..len).map(|i| 7 ^ [1, 2, 3, 4][i % 4]));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_10_4_every_stalled_connection_is_failed_when_its_timer_fires() {
    const CLIENTS: usize = 12;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = tether_tokio::ServerOptions::new().config(Config {
        message_timeout: Some(Duration::from_millis(300)),
        ..Config::default()
    });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let options = options.clone();
            tokio::spawn(async move {
                let (mut ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
                // an application waiting for its next message
                while let Some(Ok(m)) = ws.next().await {
                    let _ = ws.send(m).await;
                }
            });
        }
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut tcp = std::net::TcpStream::connect(addr).unwrap();
                write!(
                    tcp,
                    "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                .unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    tcp.read_exact(&mut byte).unwrap();
                    head.push(byte[0]);
                }
                let frame = client_frame(1024);
                tcp.write_all(&frame[..frame.len() - 1]).unwrap();
                let started = Instant::now();
                tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let mut answer = [0u8; 128];
                let n = tcp.read(&mut answer).expect("a Close before 3 s");
                assert!(n >= 4 && answer[0] == 0x88, "{:?}", &answer[..n]);
                assert_eq!(u16::from_be_bytes([answer[2], answer[3]]), 1008);
                started.elapsed()
            })
        })
        .collect();
    for client in clients {
        let waited = client.join().expect("every client gets its 1008 in time");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }
}
