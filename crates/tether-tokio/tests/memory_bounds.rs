//! What a hostile client can make a tokio server connection hold, measured
//! by counting every allocation of this test process (RFC 6455 section
//! 10.4: an endpoint limits what a peer can make it buffer). The peer is
//! raw TCP writing frames built once before measuring, so what grows is the
//! server's. Each test asserts the bound documented on
//! `tether::Config::max_unread_bytes`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tether::Config;

#[path = "common/counting.rs"]
mod counting;
use counting::{CURRENT, PEAK};

/// One measurement at a time: the counters are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

const MIB: usize = 1 << 20;

/// `tether serve`'s limits: 16 MiB messages and frames, the library's
/// other defaults.
fn serve_config() -> Config {
    Config {
        max_message_size: 16 * MIB,
        max_frame_size: 16 * MIB,
        message_timeout: Some(Duration::from_millis(300)),
        ..Config::default()
    }
}

/// The bound `Config::max_unread_bytes` documents, for `config` (buffers
/// that grow by doubling counted at twice what they hold).
fn documented_bound(config: &Config) -> usize {
    64 * 1024
        + 64 * 1024
        + 2 * config.max_frame_size
        + 2 * config.max_message_size
        + 4 * config.max_unread_bytes
        + 2 * config.max_message_size
        + 2 * config.max_message_size
        + tether::EVENT_BATCH * 200
        + config.max_queued_output
        + config.max_message_size
        + 2 * config.max_pending_pongs
        + (2 * config.max_frame_size).max(MIB)
}

/// The terms of [`documented_bound`] a client sending whole 16 MiB frames
/// and never reading reaches, each once (no Close, no doubling past a
/// frame's exact size): a tighter check for that case.
fn whole_frames_bound(config: &Config) -> usize {
    64 * 1024
        + config.max_frame_size
        + config.max_message_size
        + 4 * config.max_unread_bytes
        + 64 * 1024
        + config.max_message_size
        + config.max_queued_output
        + config.max_message_size
        + config.max_pending_pongs
}

/// A masked binary frame of `len` bytes (what a client sends).
fn client_frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode, 0x80 | 127];
    out.extend_from_slice(&(len as u64).to_be_bytes());
    out.extend_from_slice(&[1, 2, 3, 4]);
    out.extend((0..len).map(|i| (i as u8) ^ [1, 2, 3, 4][i % 4]));
    out
}

/// A raw client: connects and upgrades; the server's 101 is read and
/// nothing else ever is.
fn raw_client(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

/// A tokio server that echoes every message, awaiting each send (as
/// `tether serve` does), on a runtime of its own; returns its address.
fn echo_server(rt: &tokio::runtime::Runtime, config: Config) -> std::net::SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let options = tether_tokio::ServerOptions::new().config(config);
        let (mut ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
        while let Some(Ok(m)) = ws.next().await {
            if ws.send(m).await.is_err() {
                break;
            }
        }
    });
    addr
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A client against `tether serve`'s limits that writes the message
/// `make` builds (16 MiB of payload; built once the counters are this
/// test's alone) until the server stops taking them (its bounds hold the
/// rest back in the kernel: 40 of them would be 640 MiB) and never reads
/// the echoes: the server's peak is held to `bound`. Returns how many were
/// taken and the peak.
fn never_reading_client_is_held_to(make: impl FnOnce() -> Vec<u8>, bound: usize) -> (usize, usize) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let message = make();
    let rt = runtime();
    let addr = echo_server(&rt, serve_config());
    let mut tcp = raw_client(addr);
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    tcp.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut sent = 0;
    for _ in 0..40 {
        if tcp.write_all(&message).is_err() {
            break;
        }
        sent += 1;
    }
    let held = PEAK.load(Ordering::Relaxed) - baseline;
    assert!(sent < 40, "the server took all 640 MiB");
    assert!(
        held <= bound,
        "the server held {} MiB at its peak; the bound is {} MiB",
        held / MIB,
        bound / MIB
    );
    drop(tcp);
    drop(rt);
    (sent, held)
}

#[test]
fn rfc6455_10_4_a_client_that_never_reads_its_echoes_is_held_to_the_bound() {
    let config = serve_config();
    let bound = whole_frames_bound(&config);
    assert!(bound <= documented_bound(&config));
    let (sent, held) = never_reading_client_is_held_to(|| client_frame(true, 0x2, 16 * MIB), bound);
    eprintln!(
        "16 MiB messages, echoes never read: {sent} taken, peak {} MiB (bound {} MiB)",
        held / MIB,
        bound / MIB
    );
}

/// The same client sending each 16 MiB message in fragments sized so
/// that every buffer that doubles ends just past a power of two (4 MiB - 1,
/// 4 MiB, 4 MiB, 4 MiB + 1): held to the documented bound, whose doubling
/// terms this reaches.
#[test]
fn rfc6455_10_4_fragments_that_make_buffers_double_are_held_to_the_bound() {
    let bound = documented_bound(&serve_config());
    let message = || {
        let mut message = client_frame(false, 0x2, 4 * MIB - 1);
        message.extend(client_frame(false, 0x0, 4 * MIB));
        message.extend(client_frame(false, 0x0, 4 * MIB));
        message.extend(client_frame(true, 0x0, 4 * MIB + 1));
        message
    };
    let (sent, held) = never_reading_client_is_held_to(message, bound);
    eprintln!(
        "16 MiB messages in doubling fragments, echoes never read: {sent} taken, peak {} MiB (bound {} MiB)",
        held / MIB,
        bound / MIB
    );
}

#[test]
fn rfc6455_10_4_a_message_that_stalls_is_dropped_with_its_memory() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rt = runtime();
    let addr = echo_server(&rt, serve_config());
    let mut tcp = raw_client(addr);
    let frame = client_frame(true, 0x2, 16 * MIB);
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    // all of a 16 MiB message but its last byte, then silence
    tcp.write_all(&frame[..frame.len() - 1]).unwrap();
    // the message timeout (300 ms) ends it: 1008, and the memory goes back
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = [0u8; 256];
    let n = tcp.read(&mut answer).unwrap();
    assert!(n >= 4 && answer[0] == 0x88, "a Close: {:?}", &answer[..n]);
    assert_eq!(u16::from_be_bytes([answer[2], answer[3]]), 1008);
    // the partial message was held until then (the peak since the first
    // byte: a fixed wait for it to be read could come too early)
    let during = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(
        during >= 15 * MIB,
        "the partial message is held: {during} bytes"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let after = CURRENT.load(Ordering::Relaxed).saturating_sub(baseline);
        if after < MIB {
            break;
        }
        assert!(Instant::now() < deadline, "still held: {after} bytes");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(rt);
}

#[test]
fn an_idle_connection_gives_back_a_large_frames_buffer() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rt = runtime();
    let addr = echo_server(&rt, serve_config());
    let mut tcp = raw_client(addr);
    let frame = client_frame(true, 0x2, 8 * MIB);
    let baseline = CURRENT.load(Ordering::Relaxed);
    // in pieces, so the frame collects in a buffer of its own
    for piece in frame.chunks(256 * 1024) {
        tcp.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    // read the echo back, then stay idle
    let mut echoed = 0;
    let mut buf = vec![0u8; 1 << 20];
    while echoed < 8 * MIB + 10 {
        echoed += tcp.read(&mut buf).unwrap();
    }
    drop(buf);
    // the idle release comes once the connection is quiet: wait for it
    // (bounded), not a fixed time
    let bound = 2 * tether::IDLE_SPARE_MAX + 256 * 1024;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let idle = CURRENT.load(Ordering::Relaxed).saturating_sub(baseline);
        if idle <= bound {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "an idle connection still holds {} KiB 5 s after an 8 MiB message",
            idle / 1024
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(tcp);
    drop(rt);
}

/// A masked client frame with a payload of `len` bytes (under 126).
fn small_client_frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
    assert!(len < 126);
    let mut out = vec![(u8::from(fin) << 7) | opcode, 0x80 | len as u8, 1, 2, 3, 4];
    out.extend((0..len).map(|i| (i as u8) ^ [1, 2, 3, 4][i % 4]));
    out
}

/// A server whose application never reads: the adapter reads ahead for
/// it up to `max_unread_bytes` of events, then stops reading.
fn idle_reader_server(rt: &tokio::runtime::Runtime, config: Config) -> std::net::SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let options = tether_tokio::ServerOptions::new().config(config);
    rt.spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
        std::future::pending::<()>().await;
        drop(ws);
    });
    addr
}

/// A message split off the buffer it was read into keeps all of it: with
/// a fragmented message of empty frames (which weighs nothing once read
/// and ends as one empty message) around each 16-byte message, 64 KiB
/// each (109 MiB at the peak against a bound of 1.2 MiB, before the core
/// copied such messages out). Pings as filler fill the unread queue
/// themselves, so reading stops early either way.
#[test]
fn rfc6455_10_4_small_messages_among_empty_fragments_cannot_keep_a_read_buffer_each() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let config = Config {
        max_frame_size: 64 * 1024,
        max_message_size: 64 * 1024,
        max_queued_output: 64 * 1024,
        max_unread_bytes: 256 * 1024,
        ..Config::default()
    };
    let bound = documented_bound(&config);
    let rt = runtime();
    let addr = idle_reader_server(&rt, config);
    let mut tcp = raw_client(addr);
    let mut chunk = small_client_frame(true, 0x2, 16);
    chunk.extend(small_client_frame(false, 0x2, 0));
    while chunk.len() < 64 * 1024 - 12 {
        chunk.extend(small_client_frame(false, 0x0, 0));
    }
    chunk.extend(small_client_frame(true, 0x0, 0));
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    tcp.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut sent = 0;
    // 4,000 such reads would keep 256 MiB
    for _ in 0..4000 {
        if tcp.write_all(&chunk).is_err() {
            break;
        }
        sent += 1;
    }
    let held = PEAK.load(Ordering::Relaxed) - baseline;
    eprintln!(
        "{sent} chunks of 64 KiB taken, peak {} KiB (bound {} KiB)",
        held / 1024,
        bound / 1024
    );
    assert!(sent < 4000, "the server took all 256 MiB");
    // it read until its unread queue was full (256 KiB of two events of
    // 80 and 64 bytes per chunk), not less
    assert!(
        sent > 1500,
        "the server stopped reading after {sent} chunks"
    );
    assert!(
        held <= bound,
        "the server held {} KiB at its peak; the documented bound is {} KiB",
        held / 1024,
        bound / 1024
    );
    drop(tcp);
    drop(rt);
}
