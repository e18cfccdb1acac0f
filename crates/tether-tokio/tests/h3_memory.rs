//! What an HTTP/3 peer can make a tokio server hold with frames it never
//! completes, measured by counting every allocation of this test process
//! (its one test, so nothing else allocates meanwhile). The peer is a raw
//! QUIC client whose own send window is small, so what grows is the
//! server's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/counting.rs"]
mod counting;
#[path = "common/quic.rs"]
mod quic;

use std::sync::atomic::Ordering;
use std::time::Duration;

use counting::{CURRENT, PEAK};
use quic::{local_server, quic_h3_client_with};
use tether_tokio::ServerOptions;
use tether_tokio::http3::Http3Server;

/// RFC 9114 section 7.2.8: a frame of a type the server does not know is
/// ignored, its payload dropped as it arrives: 32 MiB of one (declaring
/// 1 TiB) on a request stream raise the server's allocations by a few
/// windows' worth, not by what was sent. The vendored h3 held such a
/// frame whole before skipping it, reading on while it came: memory
/// without bound from one frame header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9114_7_2_8_an_unknown_frame_is_dropped_as_it_arrives() {
    const MIB: usize = 1 << 20;
    const SENT: usize = 32 * MIB;
    let (cert, endpoint, port) = local_server();
    let options = ServerOptions::new().handshake_timeout(Duration::from_secs(60));
    tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        // waits for a request whose HEADERS never come
        let _ = server.accept().await;
        drop(endpoint);
    });
    let mut transport = quinn::TransportConfig::default();
    transport.send_window(256 * 1024);
    let (_client, connection) = quic_h3_client_with(cert, port, transport).await;
    let (mut send, _recv) = common::within(connection.open_bi()).await.unwrap();
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    // a reserved frame type (0x21, RFC 9114 section 7.2.8) declaring 2^40
    // bytes (an 8-byte varint), then 32 MiB of its payload
    let mut header = vec![0x21];
    header.extend_from_slice(&(0xC000_0000_0000_0000u64 | (1 << 40)).to_be_bytes());
    send.write_all(&header).await.unwrap();
    let chunk = vec![0u8; 64 * 1024];
    for _ in 0..SENT / chunk.len() {
        common::within(send.write_all(&chunk)).await.unwrap();
    }
    // what the server still has to take in is within the windows
    tokio::time::sleep(Duration::from_millis(200)).await;
    let held = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(
        held < 8 * MIB,
        "{} MiB of an unknown frame raised allocations by {held} bytes",
        SENT / MIB
    );
    assert!(
        connection.close_reason().is_none(),
        "an unknown frame is ignored, not an error: {:?}",
        connection.close_reason()
    );
}
