//! A server connection that went quiet and released its idle buffers, then
//! pushes a message (the application sends while its reader waits in
//! `next()`), releases what the push regrew once it is quiet again: heap
//! bytes counted by this test binary's allocator (its only test, so nothing
//! else allocates meanwhile), plain and with permessage-deflate without
//! context takeover (whose compressor is rebuilt for the push). The peers
//! are blocking `std::net` sockets, so what is counted is the server's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../../tether/tests/common/counting.rs"]
mod counting;
mod idle_peer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tether::{Config, DeflateConfig, Message};
use tether_tokio::ServerOptions;

/// Connections per run.
const N: usize = 100;

/// The most a pushed-to connection may hold, once quiet again, above what
/// it held before the push, in heap bytes per connection: measured 26-34
/// (allocator rounding); 0.7-1.1 KiB plain and 241 KiB with deflate when the push's
/// write skipped re-arming the release.
const REGROWN_MAX: isize = 128;

/// Heap bytes per connection, once quiet again after one push each, above
/// what the same idle connections held before it.
fn regrown_after_push(deflate: bool) -> isize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let options = ServerOptions::new().config(Config {
        release_idle_after: Duration::from_millis(10),
        deflate: deflate.then(|| DeflateConfig {
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        }),
        ..Config::default()
    });
    let sinks = Arc::new(Mutex::new(Vec::with_capacity(N)));
    let (push_tx, push_rx) = std::sync::mpsc::channel::<()>();
    let (pushed_tx, pushed_rx) = std::sync::mpsc::channel::<()>();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let held = sinks.clone();
    let server = std::thread::spawn(move || {
        rt.block_on(async move {
            let serve = async {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let (sinks, options) = (held.clone(), options.clone());
                    tokio::spawn(async move {
                        let (socket, _) = tether_tokio::accept(stream, &options).await.unwrap();
                        let (mut sink, mut stream) = socket.split();
                        let message = stream.next().await.unwrap().unwrap();
                        sink.send(message).await.unwrap();
                        sinks.lock().unwrap().push(sink);
                        // the reader waits in next() from here on
                        while stream.next().await.is_some() {}
                    });
                }
            };
            let push = async {
                tokio::task::spawn_blocking(move || push_rx.recv())
                    .await
                    .unwrap()
                    .unwrap();
                let mut all = std::mem::take(&mut *held.lock().unwrap());
                for sink in &mut all {
                    sink.send(Message::binary(vec![7u8; 1000])).await.unwrap();
                }
                held.lock().unwrap().extend(all);
                pushed_tx.send(()).unwrap();
                std::future::pending::<()>().await;
            };
            tokio::select! {
                () = serve => {}
                () = push => {}
                _ = tokio::task::spawn_blocking(move || stop_rx.recv()) => {}
            }
        });
    });
    let mut clients = Vec::with_capacity(N);
    for _ in 0..N {
        let headers: &[u8] = if deflate {
            b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
        } else {
            b""
        };
        let (client, _echo) = idle_peer::connect_and_echo(addr, headers);
        clients.push(client);
    }
    // quiet past release_idle_after: every connection released its buffers
    let before = counting::settled(Duration::from_millis(300)) as isize;
    assert_eq!(sinks.lock().unwrap().len(), N, "every connection set up");
    push_tx.send(()).unwrap();
    pushed_rx.recv().unwrap();
    // quiet again, well past release_idle_after
    let after = counting::settled(Duration::from_millis(300)) as isize;
    stop_tx.send(()).unwrap();
    server.join().unwrap();
    drop(clients);
    (after - before) / N as isize
}

#[test]
fn a_connection_that_pushes_after_going_quiet_releases_what_the_push_regrew() {
    let plain = regrown_after_push(false);
    assert!(
        plain <= REGROWN_MAX,
        "{plain} bytes per connection kept after a push"
    );
    let deflate = regrown_after_push(true);
    assert!(
        deflate <= REGROWN_MAX,
        "{deflate} bytes per connection kept after a push (deflate)"
    );
}
