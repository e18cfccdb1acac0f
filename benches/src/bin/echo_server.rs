//! An echo server for the loopback benchmark, one library at a time:
//!
//! ```sh
//! echo_server --lib tether|tether-owner|tether-core|tungstenite|fastwebsockets|tokio-websockets|soketto|yawc|floor|raw-tcp \
//!             [--addr 127.0.0.1:0] [--core 0] [--unconstrained]
//!             [--deflate [--deflate-window 9..15]]
//! ```
//!
//! Runs a single-threaded tokio runtime (`new_current_thread`) on a thread
//! pinned to one core (`--core`, default 0), so every library gets exactly
//! one core, the same one. Prints `listening <addr>` on stdout once ready and
//! exits when stdin closes (the load generator holds it), so a crashed
//! load generator never leaves a server behind.
//!
//! Every connection gets `TCP_NODELAY` and its own task (`tokio::spawn`,
//! with `--unconstrained` wrapped in `tokio::task::unconstrained` for every
//! library alike), and is served the way each library's documentation shows,
//! with default settings:
//! - `tether`: `tether_tokio::accept(tcp, &ServerOptions::default())`, then
//!   `ws.next()` / `ws.send(message)` (the `tether-tokio` echo example);
//! - `tether-owner`: the same, with `ServerOptions::driver(Driver::Owner)`
//!   (no lock, no background task: the connection's task alone drives it);
//! - `tungstenite`: `tokio_tungstenite::accept_async`, then `next` / `send`
//!   of each text or binary message (pings and the Close reply are
//!   tungstenite's own);
//! - `fastwebsockets`: hyper's HTTP/1 server with upgrades and
//!   `fastwebsockets::upgrade::upgrade`, then a `FragmentCollector` that
//!   writes back each text or binary frame (auto-close and auto-pong on,
//!   the defaults), as in its `echo_server` example;
//! - `tokio-websockets`: `ServerBuilder::new().accept(tcp)`, then `next` /
//!   `send` of each text or binary message;
//! - `soketto`: `handshake::Server::new(tcp.compat())` (tokio-util's
//!   compat layer: soketto speaks futures-io), `receive_request` and
//!   `send_response(Accept)`, then `into_builder().finish()`; per message
//!   `receive_data`, `send_binary_mut` (or `send_text` after a UTF-8
//!   check) and `flush`, as its crate-level server example (it answers the
//!   Close itself, inside `receive_data`);
//! - `yawc`: hyper's HTTP/1 server with upgrades and
//!   `yawc::WebSocket::upgrade_with_options`, then `next` / `send` of each
//!   text or binary frame (the Pong and the Close reply are yawc's own), as its
//!   crate-level server example; its options are the defaults except the
//!   limits (64 MiB a frame and a message, as tungstenite's,
//!   fastwebsockets' and tokio-websockets' defaults: yawc's own 1 MiB limit
//!   is exclusive, so it would refuse a 1 MiB message) and UTF-8 checking
//!   of text (off by default in yawc; every other server here checks);
//! - `raw-tcp`: no WebSocket at all: a task per accepted socket that echoes
//!   whatever bytes come. The floor for memory per connection.
//! - `tether-core`: tether's sans-IO `Connection` in a loop of the
//!   application's own, as an embedder drives it without the tokio
//!   adapter: after the handshake, one task per connection answers every
//!   received message with `Connection::send`, answers the peer's Close
//!   after them, writes what the core queued, then waits for input (read
//!   straight into `Connection::receive_buffer` when it offers one) or the
//!   core's next deadline (`poll_timeout`, one reused `Sleep`). Every
//!   check RFC 6455 asks for is the core's, as in `tether`; what it does
//!   not have is the adapter's shared state: no lock, no background task
//!   (Pings are answered and deadlines kept only while this loop runs,
//!   which is always here), no handles on other tasks.
//! - `floor`: the least work any WebSocket echo server on this runtime
//!   does, the floor for the echo rows: after the handshake (tether's
//!   sans-IO `ServerUpgrade`), one task per connection reads whatever has
//!   arrived into one reused buffer, turns each whole client frame into
//!   the server frame that echoes it (header rewritten, payload unmasked
//!   while copied into one reused output buffer), and writes all of them
//!   in one write per read. No library, no allocation per message or per
//!   read, no event queue, no shared state, and none of the checks RFC
//!   6455 asks for beyond answering a Close (no UTF-8, reserved bits,
//!   control frame rules or fragment reassembly: the load sends none of
//!   those). Not a WebSocket server anyone should run; what every
//!   library's echo pays at least, on the same runtime, core and load.
//!
//! And each peer at its best, the fastest way its public API allows (every
//! message still echoed, in order):
//! - `tungstenite-batched`, `tokio-websockets-batched`: after each awaited
//!   message, every message already readable is taken without waiting
//!   (`now_or_never`) and `feed`-ed, then one `flush` per burst, so a burst
//!   of echoes goes out in one write;
//! - `fastwebsockets-batched`: the upgraded stream wrapped in a write
//!   buffer that is written out only when the next read would wait (the
//!   frames of a burst leave in one write), through
//!   `WebSocket::after_handshake`;
//! - `soketto-batched`: the same soketto handshake and calls, over a
//!   `futures::io::BufReader` (8 KiB, as soketto's own examples read)
//!   on that same write-when-idle stream: no `flush` after each message,
//!   so the echoes of all the input already read leave in one write when
//!   the next receive would wait (soketto flushes its own Pong and Close
//!   answers);
//! - `yawc-batched`: as tungstenite's and tokio-websockets' (`Stream` +
//!   `Sink`: `feed` every readable frame, one `flush` per burst);
//! - `tether-batched`, `tether-owner-batched`: tether's tokio adapter (with
//!   `Driver::Shared` and `Driver::Owner`), after each awaited message
//!   every message already readable taken without waiting
//!   (`now_or_never`), and the burst answered with one
//!   `WebSocket::send_many` (the connection locked once per burst, not
//!   once per message). Unlike the peers' `-batched` servers, which feed
//!   each message before reading the next, it reads ahead of its answers:
//!   tether answers a peer's Close once the application asks past the
//!   messages before it, so the echoes of a burst that ends with the
//!   peer's Close are not sent. The load generator closes only after its
//!   measuring window, so the rates are not affected.
//!
//! `--deflate` (tether only) accepts permessage-deflate with
//! `tether::DeflateConfig::default()` (level 6, 15-bit windows, context
//! takeover, threshold 32 bytes); `--deflate-window N` sets both
//! `server_max_window_bits` and `client_max_window_bits` to N (12 gives
//! Python `websockets`' default windows). The compressed echo benchmark
//! runs the other libraries that support it (Node `ws`, Python
//! `websockets`) from `benches/peers/`; soketto and yawc implement it
//! too but run here without it (tungstenite, fastwebsockets and
//! tokio-websockets do not implement it).

use std::error::Error;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::OnceLock;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};

type BoxError = Box<dyn Error + Send + Sync>;

/// The libraries this server can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lib {
    Tether,
    TetherOwner,
    TetherBatched,
    TetherOwnerBatched,
    Tungstenite,
    Fastwebsockets,
    TokioWebsockets,
    TungsteniteBatched,
    FastwebsocketsBatched,
    TokioWebsocketsBatched,
    Soketto,
    SokettoBatched,
    Yawc,
    YawcBatched,
    Floor,
    TetherCore,
    RawTcp,
}

impl Lib {
    fn parse(name: &str) -> Result<Self, BoxError> {
        Ok(match name {
            "tether" => Lib::Tether,
            "tether-owner" => Lib::TetherOwner,
            "tether-batched" => Lib::TetherBatched,
            "tether-owner-batched" => Lib::TetherOwnerBatched,
            "tungstenite" => Lib::Tungstenite,
            "fastwebsockets" => Lib::Fastwebsockets,
            "tokio-websockets" => Lib::TokioWebsockets,
            "tungstenite-batched" => Lib::TungsteniteBatched,
            "fastwebsockets-batched" => Lib::FastwebsocketsBatched,
            "tokio-websockets-batched" => Lib::TokioWebsocketsBatched,
            "soketto" => Lib::Soketto,
            "soketto-batched" => Lib::SokettoBatched,
            "yawc" => Lib::Yawc,
            "yawc-batched" => Lib::YawcBatched,
            "floor" => Lib::Floor,
            "tether-core" => Lib::TetherCore,
            "raw-tcp" => Lib::RawTcp,
            other => {
                return Err(format!(
                    "unknown --lib {other:?}: tether, tether-owner, tungstenite, fastwebsockets, \
                     tokio-websockets, soketto, yawc, their -batched forms, tether-core, floor \
                     or raw-tcp"
                )
                .into());
            }
        })
    }
}

struct Args {
    lib: Lib,
    addr: SocketAddr,
    core: usize,
    unconstrained: bool,
    /// permessage-deflate for tether (`--deflate`), else off.
    deflate: Option<tether::DeflateConfig>,
}

fn args() -> Result<Args, BoxError> {
    let mut lib = None;
    let mut addr: SocketAddr = "127.0.0.1:0".parse()?;
    let mut core = 0;
    let mut unconstrained = false;
    let mut deflate = None;
    let mut window = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--lib" => lib = Some(Lib::parse(&value()?)?),
            "--addr" => addr = value()?.parse()?,
            "--core" => core = value()?.parse()?,
            "--unconstrained" => unconstrained = true,
            "--deflate" => deflate = Some(tether::DeflateConfig::default()),
            "--deflate-window" => window = Some(value()?.parse::<u8>()?),
            "-h" | "--help" => {
                println!(
                    "echo_server --lib tether|tungstenite|fastwebsockets|tokio-websockets|soketto|\
                     yawc|<peer>-batched|tether-core|floor|raw-tcp [--addr 127.0.0.1:0] [--core 0] [--unconstrained] \
                     [--deflate [--deflate-window 9..15]]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    let lib = lib.ok_or("--lib is required")?;
    if let Some(bits) = window {
        let config = deflate.as_mut().ok_or("--deflate-window needs --deflate")?;
        if !(9..=15).contains(&bits) {
            return Err("--deflate-window is 9 to 15".into());
        }
        config.server_max_window_bits = bits;
        config.client_max_window_bits = bits;
    }
    if deflate.is_some() && !matches!(lib, Lib::Tether | Lib::TetherOwner) {
        return Err(
            "--deflate is for --lib tether or tether-owner (the Rust peers run here without permessage-deflate)"
                .into(),
        );
    }
    Ok(Args {
        lib,
        addr,
        core,
        unconstrained,
        deflate,
    })
}

fn main() -> Result<(), BoxError> {
    let args = args()?;
    // 10,000 idle connections need more descriptors than the usual soft
    // limit of 1024: raise it to the hard limit.
    rlimit::increase_nofile_limit(u64::MAX)?;
    tether_benches::pin_to_core(args.core)?;
    // Exit when the load generator closes our stdin (or dies).
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        while let Ok(n) = std::io::stdin().read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), BoxError> {
    let driver = match args.lib {
        Lib::TetherOwner | Lib::TetherOwnerBatched => tether_tokio::Driver::Owner,
        _ => tether_tokio::Driver::Shared,
    };
    let options = tether_tokio::ServerOptions::new()
        .config(tether::Config {
            deflate: args.deflate,
            ..tether::Config::default()
        })
        .driver(driver);
    TETHER_OPTIONS
        .set(options)
        .map_err(|_| "server options set twice")?;
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(args.addr)?;
    // a deep backlog: the idle-memory run opens 10,000 connections quickly
    let listener = socket.listen(8192)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening {}", listener.local_addr()?)?;
    stdout.flush()?;
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // e.g. out of descriptors: say so, back off, keep serving
                eprintln!("echo_server: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            eprintln!("echo_server: nodelay: {e}");
        }
        match (args.lib, args.unconstrained) {
            (Lib::Tether | Lib::TetherOwner, false) => spawn(tether(tcp)),
            (Lib::Tether | Lib::TetherOwner, true) => {
                spawn(tokio::task::unconstrained(tether(tcp)));
            }
            (Lib::TetherBatched | Lib::TetherOwnerBatched, false) => spawn(tether_batched(tcp)),
            (Lib::TetherBatched | Lib::TetherOwnerBatched, true) => {
                spawn(tokio::task::unconstrained(tether_batched(tcp)));
            }
            (Lib::Tungstenite, false) => spawn(tungstenite(tcp)),
            (Lib::Tungstenite, true) => spawn(tokio::task::unconstrained(tungstenite(tcp))),
            (Lib::Fastwebsockets, u) => spawn(fastwebsockets(tcp, u)),
            (Lib::TokioWebsockets, false) => spawn(tokio_websockets(tcp)),
            (Lib::TokioWebsockets, true) => {
                spawn(tokio::task::unconstrained(tokio_websockets(tcp)));
            }
            (Lib::TungsteniteBatched, false) => spawn(tungstenite_batched(tcp)),
            (Lib::TungsteniteBatched, true) => {
                spawn(tokio::task::unconstrained(tungstenite_batched(tcp)));
            }
            (Lib::FastwebsocketsBatched, false) => spawn(fastwebsockets_batched(tcp)),
            (Lib::FastwebsocketsBatched, true) => {
                spawn(tokio::task::unconstrained(fastwebsockets_batched(tcp)));
            }
            (Lib::TokioWebsocketsBatched, false) => spawn(tokio_websockets_batched(tcp)),
            (Lib::TokioWebsocketsBatched, true) => {
                spawn(tokio::task::unconstrained(tokio_websockets_batched(tcp)));
            }
            (Lib::Soketto, false) => spawn(soketto(tcp)),
            (Lib::Soketto, true) => spawn(tokio::task::unconstrained(soketto(tcp))),
            (Lib::SokettoBatched, false) => spawn(soketto_batched(tcp)),
            (Lib::SokettoBatched, true) => {
                spawn(tokio::task::unconstrained(soketto_batched(tcp)));
            }
            (Lib::Yawc, u) => spawn(yawc(tcp, false, u)),
            (Lib::YawcBatched, u) => spawn(yawc(tcp, true, u)),
            (Lib::Floor, false) => spawn(floor(tcp)),
            (Lib::TetherCore, _) => spawn(tether_core(tcp)),
            (Lib::Floor, true) => spawn(tokio::task::unconstrained(floor(tcp))),
            (Lib::RawTcp, false) => spawn(raw_tcp(tcp)),
            (Lib::RawTcp, true) => spawn(tokio::task::unconstrained(raw_tcp(tcp))),
        }
    }
}

fn spawn<F: Future<Output = ()> + Send + 'static>(task: F) {
    drop(tokio::spawn(task));
}

/// tether's server options, set once in `serve` (default, or with
/// `--deflate`); a task borrows them rather than holding a copy.
static TETHER_OPTIONS: OnceLock<tether_tokio::ServerOptions> = OnceLock::new();

async fn tether(tcp: TcpStream) {
    let Some(options) = TETHER_OPTIONS.get() else {
        return;
    };
    let Ok((mut ws, _)) = tether_tokio::accept(tcp, options).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}

/// tether at its best for a burst: after each awaited message, the ones
/// already readable taken without waiting, all answered with one
/// `send_many`.
async fn tether_batched(tcp: TcpStream) {
    use futures_util::FutureExt;
    let Some(options) = TETHER_OPTIONS.get() else {
        return;
    };
    let Ok((mut ws, _)) = tether_tokio::accept(tcp, options).await else {
        return;
    };
    let mut burst = Vec::new();
    while let Some(Ok(first)) = ws.next().await {
        burst.push(first);
        let mut ended = false;
        loop {
            match ws.next().now_or_never() {
                Some(Some(Ok(message))) => burst.push(message),
                Some(_) => {
                    ended = true;
                    break;
                }
                None => break,
            }
        }
        if ws.send_many(burst.drain(..)).await.is_err() || ended {
            break;
        }
    }
}

async fn tungstenite(tcp: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_binary() || message.is_text()) && ws.send(message).await.is_err() {
            break;
        }
    }
}

async fn fastwebsockets(tcp: TcpStream, unconstrained: bool) {
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};

    async fn echo(upgrade: fastwebsockets::upgrade::UpgradeFut) -> Result<(), BoxError> {
        let mut ws = fastwebsockets::FragmentCollector::new(upgrade.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                fastwebsockets::OpCode::Close => return Ok(()),
                fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                    ws.write_frame(frame).await?;
                }
                _ => {}
            }
        }
    }

    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| async move {
        let (response, upgrade) = fastwebsockets::upgrade::upgrade(&mut request)?;
        if unconstrained {
            spawn(tokio::task::unconstrained(async move {
                let _ = echo(upgrade).await;
            }));
        } else {
            spawn(async move {
                let _ = echo(upgrade).await;
            });
        }
        Ok::<Response<Empty<Bytes>>, fastwebsockets::WebSocketError>(response)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
        .with_upgrades();
    let _ = connection.await;
}

async fn tokio_websockets(tcp: TcpStream) {
    let Ok((_request, mut ws)) = tokio_websockets::ServerBuilder::new().accept(tcp).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_binary() || message.is_text()) && ws.send(message).await.is_err() {
            break;
        }
    }
}

/// Echoes every data message of a `Stream + Sink` WebSocket, a burst at a
/// time: after each awaited message, the ones already readable are taken
/// without waiting and fed, then flushed once.
async fn batched_echo<W, M, E>(mut ws: W, is_data: impl Fn(&M) -> bool)
where
    W: futures_util::Stream<Item = Result<M, E>> + futures_util::Sink<M> + Unpin,
{
    use futures_util::FutureExt;
    while let Some(Ok(first)) = ws.next().await {
        let mut next = Some(first);
        let mut ended = false;
        while let Some(message) = next.take() {
            if is_data(&message) && ws.feed(message).await.is_err() {
                return;
            }
            match ws.next().now_or_never() {
                Some(Some(Ok(message))) => next = Some(message),
                Some(_) => ended = true,
                None => {}
            }
        }
        if ws.flush().await.is_err() || ended {
            return;
        }
    }
}

async fn tungstenite_batched(tcp: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    batched_echo(ws, |m: &tungstenite::Message| m.is_binary() || m.is_text()).await;
}

async fn tokio_websockets_batched(tcp: TcpStream) {
    let Ok((_request, ws)) = tokio_websockets::ServerBuilder::new().accept(tcp).await else {
        return;
    };
    batched_echo(ws, |m: &tokio_websockets::Message| {
        m.is_binary() || m.is_text()
    })
    .await;
}

/// fastwebsockets over a stream whose writes wait in a buffer until the
/// next read would wait (then they go out in one write): its frames of a
/// burst leave together.
async fn fastwebsockets_batched(tcp: TcpStream) {
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};

    async fn echo(upgrade: fastwebsockets::upgrade::UpgradeFut) -> Result<(), BoxError> {
        let upgraded = upgrade.await?.into_inner();
        let ws = fastwebsockets::WebSocket::after_handshake(
            WriteWhenIdle::new(upgraded),
            fastwebsockets::Role::Server,
        );
        let mut ws = fastwebsockets::FragmentCollector::new(ws);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                fastwebsockets::OpCode::Close => break,
                fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                    ws.write_frame(frame).await?;
                }
                _ => {}
            }
        }
        // the Close answer (fastwebsockets' own) is still in the buffer
        let mut stream = ws.into_inner();
        tokio::io::AsyncWriteExt::flush(&mut stream).await?;
        Ok(())
    }

    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| async move {
        let (response, upgrade) = fastwebsockets::upgrade::upgrade(&mut request)?;
        spawn(async move {
            let _ = echo(upgrade).await;
        });
        Ok::<Response<Empty<Bytes>>, fastwebsockets::WebSocketError>(response)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
        .with_upgrades();
    let _ = connection.await;
}

/// soketto's server handshake on `stream`: the request (soketto checks
/// it), then the 101; `None` if either fails.
async fn soketto_accept<T>(stream: T) -> Option<(soketto::Sender<T>, soketto::Receiver<T>)>
where
    T: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin,
{
    use soketto::handshake::{Server, server::Response};
    let mut server = Server::new(stream);
    let key = server.receive_request().await.ok()?.key();
    let accept = Response::Accept {
        key,
        protocol: None,
    };
    server.send_response(&accept).await.ok()?;
    Some(server.into_builder().finish())
}

/// Echoes every data message until the peer closes (soketto answers the
/// Close inside `receive_data`, which then fails with `Closed`) or an
/// error; with `flush_each`, flushes after every message.
async fn soketto_echo<T>(
    mut sender: soketto::Sender<T>,
    mut receiver: soketto::Receiver<T>,
    flush_each: bool,
) where
    T: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin,
{
    // on the task's state between awaits, as in soketto's examples
    let mut message = Vec::new();
    loop {
        message.clear();
        let sent = match receiver.receive_data(&mut message).await {
            Ok(soketto::Data::Binary(_)) => sender.send_binary_mut(&mut message).await,
            // soketto leaves UTF-8 to the application (its examples check)
            Ok(soketto::Data::Text(_)) => match std::str::from_utf8(&message) {
                Ok(text) => sender.send_text(text).await,
                Err(_) => return,
            },
            Err(_) => return,
        };
        if sent.is_err() || (flush_each && sender.flush().await.is_err()) {
            return;
        }
    }
}

/// soketto as its crate-level server example: the socket as it comes
/// (through tokio-util's compat layer), a flush after every message.
async fn soketto(tcp: TcpStream) {
    use tokio_util::compat::TokioAsyncReadCompatExt;
    let Some((sender, receiver)) = soketto_accept(tcp.compat()).await else {
        return;
    };
    soketto_echo(sender, receiver, true).await;
}

/// soketto at its best: reads through an 8 KiB buffer (soketto reads a
/// frame header a few bytes at a time), writes wait in `WriteWhenIdle`
/// until the next read would wait, and no flush per message, so a burst's
/// echoes leave in one write.
async fn soketto_batched(tcp: TcpStream) {
    use tokio_util::compat::TokioAsyncReadCompatExt;
    let stream = futures_util::io::BufReader::new(WriteWhenIdle::new(tcp).compat());
    let Some((sender, receiver)) = soketto_accept(stream).await else {
        return;
    };
    soketto_echo(sender, receiver, false).await;
}

/// yawc's options here: its defaults, except 64 MiB limits (those of
/// tungstenite, fastwebsockets and tokio-websockets; yawc's default 1 MiB
/// is exclusive, refusing a 1 MiB message) and UTF-8 checks of text, which
/// every other server here does.
fn yawc_options() -> yawc::Options {
    yawc::Options::default()
        .with_limits(64 << 20, 64 << 20)
        .with_utf8()
}

/// yawc: hyper's HTTP/1 server with upgrades and `WebSocket::upgrade`, as
/// its server example; then `next` / `send` per frame, or with `batched`
/// every readable frame fed and one flush per burst.
async fn yawc(tcp: TcpStream, batched: bool, unconstrained: bool) {
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};

    fn is_data(frame: &yawc::Frame) -> bool {
        matches!(frame.opcode(), yawc::OpCode::Text | yawc::OpCode::Binary)
    }

    async fn echo(upgrade: yawc::UpgradeFut, batched: bool) {
        let Ok(mut ws) = upgrade.await else {
            return;
        };
        if batched {
            // yawc's `Stream` yields frames, not results
            batched_echo(ws.map(Ok::<_, std::convert::Infallible>), is_data).await;
            return;
        }
        // after the Close (answered by yawc) the stream ends
        while let Some(frame) = ws.next().await {
            if is_data(&frame) && ws.send(frame).await.is_err() {
                break;
            }
        }
    }

    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| async move {
        let (response, upgrade) =
            yawc::WebSocket::upgrade_with_options(&mut request, yawc_options())?;
        if unconstrained {
            spawn(tokio::task::unconstrained(echo(upgrade, batched)));
        } else {
            spawn(echo(upgrade, batched));
        }
        Ok::<Response<Empty<Bytes>>, yawc::WebSocketError>(response)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
        .with_upgrades();
    let _ = connection.await;
}

/// A stream whose writes are buffered and written out when a read finds
/// nothing to read (or on flush of a full buffer).
struct WriteWhenIdle<S> {
    inner: S,
    out: Vec<u8>,
    written: usize,
}

impl<S> WriteWhenIdle<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            out: Vec::new(),
            written: 0,
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> WriteWhenIdle<S> {
    /// Writes the buffer out; Ready once it is empty.
    fn poll_drain(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        while self.written < self.out.len() {
            match std::pin::Pin::new(&mut self.inner).poll_write(cx, &self.out[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.out.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncRead
    for WriteWhenIdle<S>
{
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => {
                // nothing to read: now the buffered frames go out
                if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Pending
            }
            ready => ready,
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteWhenIdle<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        // a full buffer goes out first (bounded: 1 MiB)
        if this.out.len() >= 1 << 20 {
            match this.poll_drain(cx) {
                std::task::Poll::Ready(Ok(())) => {}
                other => return other.map_ok(|()| 0),
            }
        }
        this.out.extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        // fastwebsockets never flushes on its own (each frame is written
        // at once); its echo flushes only at the end. soketto flushes its
        // Pong and Close answers; soketto-batched never flushes otherwise
        let this = self.get_mut();
        match this.poll_drain(cx) {
            std::task::Poll::Ready(Ok(())) => std::pin::Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match this.poll_drain(cx) {
            std::task::Poll::Ready(Ok(())) => std::pin::Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

/// The least work a WebSocket echo does (see the module docs, `floor`).
async fn floor(mut tcp: TcpStream) {
    use bytes::Buf;
    use tether_frame::{FrameHeader, OpCode, Status, copy_masked};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const READ: usize = 64 * 1024;
    if tether_benches::server_handshake(&mut tcp).await.is_err() {
        return;
    }
    let mut input = bytes::BytesMut::with_capacity(READ);
    let mut out: Vec<u8> = Vec::with_capacity(READ);
    loop {
        input.reserve(READ);
        match tcp.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut closed = false;
        let mut at = 0;
        while let Ok(Status::Complete(header, used)) = FrameHeader::parse(&input[at..]) {
            let Ok(len) = usize::try_from(header.payload_len) else {
                return;
            };
            let Some(payload) = input.get(at + used..at + used + len) else {
                break; // the rest of this frame has not arrived yet
            };
            let Some(key) = header.mask else {
                return; // a client must mask
            };
            let reply = match header.opcode {
                OpCode::Ping => Some(OpCode::Pong),
                OpCode::Pong => None,
                other => Some(other),
            };
            if let Some(opcode) = reply {
                let (head, head_len) = FrameHeader::new(opcode, header.payload_len).encode();
                out.extend_from_slice(&head[..head_len]);
                let start = out.len();
                out.resize(start + len, 0);
                copy_masked(&mut out[start..], payload, key, 0);
            }
            at += used + len;
            if header.opcode == OpCode::Close {
                closed = true;
                break;
            }
        }
        input.advance(at);
        if !out.is_empty() {
            if tcp.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if closed {
            return;
        }
    }
}

/// tether's sans-IO core in a loop of the application's own, the way an
/// embedder drives it (see the module docs, `tether-core`).
async fn tether_core(mut tcp: TcpStream) {
    use bytes::Buf;
    use tether::{Connection, Event, Role};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What one wait brought.
    enum Woke {
        /// Bytes appended to the connection's own buffer.
        Direct(std::io::Result<usize>),
        /// Bytes read into `spare`.
        Spare(std::io::Result<usize>),
        /// The core's deadline passed.
        Deadline,
    }

    const READ: usize = 64 * 1024;
    if tether_benches::server_handshake(&mut tcp).await.is_err() {
        return;
    }
    let clock = || tokio::time::Instant::now().into_std();
    // the Close is answered here, after the answers to what came before it
    static CONFIG: OnceLock<std::sync::Arc<tether::Config>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        std::sync::Arc::new(tether::Config {
            auto_close_reply: false,
            ..tether::Config::default()
        })
    });
    let mut conn = Connection::new(Role::Server, config.clone(), clock());
    // for reads while the connection offers no buffer of its own (its
    // first read, or one after it released its idle buffers)
    let mut spare = vec![0u8; READ];
    let timer = tokio::time::sleep(std::time::Duration::from_secs(3600));
    tokio::pin!(timer);
    loop {
        // every message received so far is answered; what else came
        // (Pings, already answered by the core; the end) needs nothing
        while let Some(event) = conn.poll_event() {
            if let Event::Message(message) = event {
                // refused only once the connection is closing
                let _ = conn.send(message);
            }
        }
        if conn.awaits_close_reply() {
            // everything before the peer's Close has been answered
            let _ = conn.reply_close(tokio::time::Instant::now().into_std());
        }
        // everything queued, in as few writes as the socket takes
        while conn.poll_output().has_remaining() {
            match tcp.write(conn.poll_output().chunk()).await {
                Ok(0) | Err(_) => {
                    conn.abort("write failed");
                    return;
                }
                Ok(n) => conn.poll_output().advance(n),
            }
        }
        if conn.should_close_transport() {
            let _ = tcp.shutdown().await;
            return;
        }
        let deadline = conn.poll_timeout().map(tokio::time::Instant::from_std);
        if let Some(at) = deadline
            && timer.deadline() != at
        {
            timer.as_mut().reset(at);
        }
        let woke = match conn.receive_buffer(READ) {
            Some(mut into) => tokio::select! {
                r = tcp.read_buf(&mut into) => Woke::Direct(r),
                () = &mut timer, if deadline.is_some() => Woke::Deadline,
            },
            None => tokio::select! {
                r = tcp.read(&mut spare) => Woke::Spare(r),
                () = &mut timer, if deadline.is_some() => Woke::Deadline,
            },
        };
        // a protocol error is queued as the end (our Close, the final
        // event); what was decoded before it is answered above
        match woke {
            Woke::Direct(Ok(0)) | Woke::Spare(Ok(0)) => conn.receive_eof(),
            Woke::Direct(Ok(_)) => {
                let _ = conn.received(clock());
            }
            Woke::Spare(Ok(n)) => {
                let _ = conn.receive(clock(), &spare[..n]);
            }
            Woke::Direct(Err(_)) | Woke::Spare(Err(_)) => {
                conn.abort("read failed");
                conn.receive_eof();
            }
            Woke::Deadline => conn.handle_timeout(clock()),
        }
    }
}

async fn raw_tcp(tcp: TcpStream) {
    loop {
        if tcp.readable().await.is_err() {
            return;
        }
        // on the stack only between awaits: not part of the task's state
        let mut buf = [0u8; 4096];
        match tcp.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                // best effort: the floor only needs to answer a probe
                let _ = tcp.try_write(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}
