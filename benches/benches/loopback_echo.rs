//! Round trips over real TCP on 127.0.0.1: a client sends a binary message,
//! waits for the echo from a server of the same library, and repeats.
//! Libraries: tether-tokio, tokio-websockets and fastwebsockets on tokio,
//! plus tungstenite in its native blocking form (std threads, std
//! `TcpStream`) as a floor without an async runtime in the path.
//!
//! Groups `loopback_echo/1KiB` and `loopback_echo/64KiB` report round
//! trips/s (elements), so `tether / peer` is the speed-up.
//!
//! Fairness:
//! - One multi-thread tokio runtime (2 workers) per group; per library one
//!   server (accept loop spawned on the runtime, or one std thread for
//!   tungstenite) and one client connection, set up once per group and
//!   reused by every iteration; only the message phase is timed
//!   ([`ROUND_TRIPS`] round trips per iteration).
//! - The client loop runs on the benchmark thread in every case
//!   (`Runtime::block_on`, or plain blocking calls for tungstenite); servers
//!   run on other threads. tether-tokio's design adds a driver task per
//!   connection (the I/O runs there, the handle talks to it over channels):
//!   that hop is part of what its users get, so it is measured, not hidden.
//! - `TCP_NODELAY` on both ends for everyone; the same 64 MiB message limit
//!   everywhere; each echo's length is checked on every round trip, and a
//!   checked run precedes timing.
//! - Handshakes are each library's own, except fastwebsockets (whose
//!   handshake lives behind its hyper-based `upgrade` feature) and
//!   tungstenite (built without its `handshake` feature): both use tether's
//!   sans-IO handshake and then take over the stream
//!   (`after_handshake`/`from_raw_socket`). The handshake is not timed.
//! - Servers echo what they receive the natural way: tether and
//!   tokio-websockets send the received message back (zero-copy `Bytes`),
//!   fastwebsockets writes the received frame back, tungstenite `send`s the
//!   message (write + flush). Clients mask (a copy) as the RFC requires.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

use std::hint::black_box;
use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use tether_benches::{
    MAX_MESSAGE, binary_payload, client_handshake, client_handshake_blocking, server_handshake,
    server_handshake_blocking, size_label,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Round trips per timed iteration.
const ROUND_TRIPS: usize = 100;

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Spawns an accept loop that hands each connection (with `TCP_NODELAY`)
/// to `serve` in its own task.
async fn spawn_server<F, Fut>(serve: F) -> (JoinHandle<()>, SocketAddr)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (listener, addr) = listener().await;
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tcp.set_nodelay(true).expect("nodelay");
            tokio::spawn(serve(tcp));
        }
    });
    (task, addr)
}

// ----- tether-tokio ---------------------------------------------------------

fn tether_config() -> tether::Config {
    tether::Config {
        max_frame_size: MAX_MESSAGE,
        max_message_size: MAX_MESSAGE,
        ..tether::Config::default()
    }
}

async fn tether_serve(tcp: TcpStream) {
    let options = tether_tokio::ServerOptions::new().config(tether_config());
    let Ok((mut ws, _)) = tether_tokio::accept(tcp, &options).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}

async fn tether_client(addr: SocketAddr) -> tether_tokio::WebSocket {
    let options = tether_tokio::ClientOptions::new().config(tether_config());
    tether_tokio::connect(&url(addr), &options)
        .await
        .expect("tether: connect")
        .0
}

async fn tether_round_trips(ws: &mut tether_tokio::WebSocket, payload: &Bytes, n: usize) -> usize {
    let mut echoed = 0;
    for _ in 0..n {
        ws.send(tether::Message::Binary(payload.clone().into()))
            .await
            .expect("tether: send");
        let echo = ws
            .next()
            .await
            .expect("tether: an echo")
            .expect("tether: echo");
        assert_eq!(echo.len(), payload.len());
        echoed += black_box(echo).len();
    }
    echoed
}

// ----- tokio-websockets -----------------------------------------------------

fn tws_limits() -> tokio_websockets::Limits {
    tokio_websockets::Limits::default().max_payload_len(Some(MAX_MESSAGE))
}

async fn tws_serve(tcp: TcpStream) {
    let Ok((_, mut ws)) = tokio_websockets::ServerBuilder::new()
        .limits(tws_limits())
        .accept(tcp)
        .await
    else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_binary() || message.is_text()) && ws.send(message).await.is_err() {
            break;
        }
    }
}

type TwsClient = tokio_websockets::WebSocketStream<TcpStream>;

async fn tws_client(addr: SocketAddr) -> TwsClient {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    tokio_websockets::ClientBuilder::new()
        .uri(&url(addr))
        .expect("uri")
        .limits(tws_limits())
        .connect_on(tcp)
        .await
        .expect("tokio-websockets: connect")
        .0
}

async fn tws_round_trips(ws: &mut TwsClient, payload: &Bytes, n: usize) -> usize {
    let mut echoed = 0;
    for _ in 0..n {
        ws.send(tokio_websockets::Message::binary(payload.clone()))
            .await
            .expect("tokio-websockets: send");
        let echo = ws
            .next()
            .await
            .expect("tokio-websockets: an echo")
            .expect("tokio-websockets: echo");
        assert!(echo.is_binary());
        let echo = echo.into_payload();
        assert_eq!(echo.len(), payload.len());
        echoed += black_box(echo).len();
    }
    echoed
}

// ----- fastwebsockets -------------------------------------------------------

type FwsSocket = fastwebsockets::FragmentCollector<TcpStream>;

fn fws(tcp: TcpStream, role: fastwebsockets::Role) -> FwsSocket {
    let mut ws = fastwebsockets::WebSocket::after_handshake(tcp, role);
    ws.set_max_message_size(MAX_MESSAGE);
    fastwebsockets::FragmentCollector::new(ws)
}

async fn fws_serve(mut tcp: TcpStream) {
    if server_handshake(&mut tcp).await.is_err() {
        return;
    }
    let mut ws = fws(tcp, fastwebsockets::Role::Server);
    while let Ok(frame) = ws.read_frame().await {
        use fastwebsockets::OpCode;
        let opcode = frame.opcode;
        if opcode == OpCode::Close {
            break; // answered by auto_close
        }
        if matches!(opcode, OpCode::Binary | OpCode::Text) && ws.write_frame(frame).await.is_err() {
            break;
        }
    }
}

async fn fws_client(addr: SocketAddr) -> FwsSocket {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    client_handshake(&mut tcp, &url(addr))
        .await
        .expect("fastwebsockets: handshake");
    fws(tcp, fastwebsockets::Role::Client)
}

async fn fws_round_trips(ws: &mut FwsSocket, payload: &Bytes, n: usize) -> usize {
    let mut echoed = 0;
    for _ in 0..n {
        // masking needs an owned copy, made by write_frame from the borrow
        let frame = fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(payload));
        ws.write_frame(frame).await.expect("fastwebsockets: send");
        let echo = ws.read_frame().await.expect("fastwebsockets: echo");
        assert_eq!(echo.opcode, fastwebsockets::OpCode::Binary);
        assert_eq!(echo.payload.len(), payload.len());
        echoed += black_box(echo.payload).len();
    }
    echoed
}

// ----- tungstenite (blocking) -----------------------------------------------

type TungSocket = tungstenite::WebSocket<std::net::TcpStream>;

fn tung_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// A server thread that accepts one connection and echoes until it ends.
fn tung_server() -> (std::thread::JoinHandle<()>, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let thread = std::thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return;
        };
        tcp.set_nodelay(true).expect("nodelay");
        if server_handshake_blocking(&mut tcp).is_err() {
            return;
        }
        let mut ws = tungstenite::WebSocket::from_raw_socket(
            tcp,
            tungstenite::protocol::Role::Server,
            Some(tung_config()),
        );
        while let Ok(message) = ws.read() {
            if (message.is_binary() || message.is_text()) && ws.send(message).is_err() {
                break;
            }
        }
    });
    (thread, addr)
}

fn tung_client(addr: SocketAddr) -> TungSocket {
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    client_handshake_blocking(&mut tcp, &url(addr)).expect("tungstenite: handshake");
    tungstenite::WebSocket::from_raw_socket(
        tcp,
        tungstenite::protocol::Role::Client,
        Some(tung_config()),
    )
}

fn tung_round_trips(ws: &mut TungSocket, payload: &Bytes, n: usize) -> usize {
    let mut echoed = 0;
    for _ in 0..n {
        ws.send(tungstenite::Message::Binary(payload.clone()))
            .expect("tungstenite: send");
        let tungstenite::Message::Binary(echo) = ws.read().expect("tungstenite: echo") else {
            panic!("tungstenite: expected a binary echo");
        };
        assert_eq!(echo.len(), payload.len());
        echoed += black_box(echo).len();
    }
    echoed
}

// ----- the groups -------------------------------------------------------------

fn loopback_echo(c: &mut Criterion) {
    for size in [1024, 64 * 1024] {
        let rt: Runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let payload = Bytes::from(binary_payload(size));
        let expected = ROUND_TRIPS * size;

        let mut group = c.benchmark_group(format!("loopback_echo/{}", size_label(size)));
        group.throughput(Throughput::Elements(ROUND_TRIPS as u64));
        // one iteration is 100 round trips (milliseconds): flat sampling
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(20);

        {
            let (server, addr) = rt.block_on(spawn_server(tether_serve));
            let mut ws = rt.block_on(tether_client(addr));
            let seen = rt.block_on(tether_round_trips(&mut ws, &payload, ROUND_TRIPS));
            assert_eq!(seen, expected, "tether");
            group.bench_function("tether", |b| {
                b.iter(|| rt.block_on(tether_round_trips(&mut ws, &payload, ROUND_TRIPS)));
            });
            drop(ws);
            server.abort();
        }
        {
            let (server, addr) = rt.block_on(spawn_server(tws_serve));
            let mut ws = rt.block_on(tws_client(addr));
            let seen = rt.block_on(tws_round_trips(&mut ws, &payload, ROUND_TRIPS));
            assert_eq!(seen, expected, "tokio-websockets");
            group.bench_function("tokio-websockets", |b| {
                b.iter(|| rt.block_on(tws_round_trips(&mut ws, &payload, ROUND_TRIPS)));
            });
            drop(ws);
            server.abort();
        }
        {
            let (server, addr) = rt.block_on(spawn_server(fws_serve));
            let mut ws = rt.block_on(fws_client(addr));
            let seen = rt.block_on(fws_round_trips(&mut ws, &payload, ROUND_TRIPS));
            assert_eq!(seen, expected, "fastwebsockets");
            group.bench_function("fastwebsockets", |b| {
                b.iter(|| rt.block_on(fws_round_trips(&mut ws, &payload, ROUND_TRIPS)));
            });
            drop(ws);
            server.abort();
        }
        {
            let (server, addr) = tung_server();
            let mut ws = tung_client(addr);
            let seen = tung_round_trips(&mut ws, &payload, ROUND_TRIPS);
            assert_eq!(seen, expected, "tungstenite");
            group.bench_function("tungstenite-blocking", |b| {
                b.iter(|| tung_round_trips(&mut ws, &payload, ROUND_TRIPS));
            });
            drop(ws);
            server.join().expect("tungstenite server thread");
        }
        group.finish();
    }
}

criterion_group!(benches, loopback_echo);
criterion_main!(benches);
