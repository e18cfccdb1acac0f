//! The blocking server's budget (`ServerOptions::budget`) bounds memory,
//! measured: what its connections allocate while their applications only
//! send and their clients flood them stays within the budget plus, per
//! connection, one read and the message it completes (the formula on
//! `ServerOptions::budget`), where without it each reads ahead its whole
//! `max_unread_bytes`. A test binary of its own: one global allocator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
#[path = "../../tether-tokio/tests/common/counting.rs"]
mod counting;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use tether::{Budget, Config, Message};
use tether_std::ServerOptions;

const CONNECTIONS: usize = 8;
const SIZE: usize = 16 * 1024;
const MESSAGES: usize = 128;
const BUDGET: usize = 256 * 1024;
const READ_BUFFER: usize = 64 * 1024;

/// MESSAGES binary frames of SIZE bytes, masked as a client's, in one
/// buffer (built before anything is measured).
fn flood() -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x82, 0x80 | 126];
    frame.extend_from_slice(&(SIZE as u16).to_be_bytes());
    frame.extend_from_slice(&mask);
    frame.extend((0..SIZE).map(|i| 9 ^ mask[i % 4]));
    frame.repeat(MESSAGES)
}

/// A raw client's upgrade request, written by hand, so it allocates
/// nothing while it floods; its answer is read by [`read_answer`].
fn raw_request(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    tcp
}

/// Reads the server's answer to [`raw_request`], to its blank line.
fn read_answer(tcp: &mut TcpStream) {
    let mut head = [0u8; 1024];
    let mut len = 0;
    while !head[..len].ends_with(b"\r\n\r\n") {
        len += tcp.read(&mut head[len..len + 1]).unwrap();
    }
}

#[test]
fn rfc6455_10_4_a_spent_budget_bounds_what_the_blocking_server_allocates() {
    // a failure on a thread of its own fails the test, not a barrier wait
    common::bounded(Duration::from_secs(60), measure);
}

fn measure() {
    let budget = Arc::new(Budget::new(BUDGET));
    let options = ServerOptions::new()
        .config(Config {
            budget_timeout: Duration::from_secs(60),
            ..Config::default()
        })
        .read_buffer_size(READ_BUFFER)
        .budget(budget.clone());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let flood = Arc::new(flood());
    let go = Arc::new(Barrier::new(2 * CONNECTIONS + 1));
    let done = Arc::new(Barrier::new(CONNECTIONS + 1));
    let mut clients = Vec::new();
    let servers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let mut client = raw_request(addr);
            let (tcp, _) = listener.accept().unwrap();
            let (mut ws, _) = tether_std::accept(tcp, &options).unwrap();
            read_answer(&mut client);
            let (flood, go_client) = (flood.clone(), go.clone());
            clients.push(thread::spawn(move || {
                go_client.wait();
                // waits while the server holds back (until its application
                // reads at the end)
                let _ = client.write_all(&flood);
                client
            }));
            let tick = Message::text("tick");
            let (go, done) = (go.clone(), done.clone());
            thread::spawn(move || {
                go.wait();
                // the application only sends: each send reads ahead
                let until = Instant::now() + Duration::from_millis(1500);
                while Instant::now() < until {
                    ws.send(tick.clone()).unwrap();
                    thread::sleep(Duration::from_millis(5));
                }
                done.wait();
                ws
            })
        })
        .collect();
    // everything set up: what the flood makes the server hold is measured
    let before = counting::CURRENT.load(Ordering::Relaxed);
    counting::PEAK.store(before, Ordering::Relaxed);
    go.wait();
    done.wait();
    let grew = counting::PEAK.load(Ordering::Relaxed) - before;
    let used = budget.used();
    // the budget, plus per connection one read and the message it
    // completes (and the decoder's frame buffer for the next one), plus
    // what the sends and their threads allocate
    let bound = BUDGET + CONNECTIONS * (READ_BUFFER + 3 * SIZE) + 256 * 1024;
    assert!(
        grew <= bound,
        "the server grew by {grew} bytes (budget used {used}), over {bound}"
    );
    assert!(
        !budget.has_room(),
        "the flood spent the budget: used {used}"
    );
    // nothing lost: every message is still there for its application
    for server in servers {
        let mut ws = server.join().unwrap();
        for _ in 0..MESSAGES {
            assert_eq!(ws.read().unwrap().len(), SIZE);
        }
    }
    for client in clients {
        drop(client.join().unwrap());
    }
}
