//! The common load generator of the loopback benchmark: one client,
//! identical for every server, that speaks WebSocket over raw TCP.
//!
//! ```sh
//! loadgen [--libs tether,tungstenite,fastwebsockets,tokio-websockets,soketto,yawc,<peer>-batched,tether-core,floor]
//!         [--rounds 3] [--warmup 0.5] [--duration 2.5]
//!         [--sizes 16,1024,65536] [--loads 1x1,64x16] [--idle-conns 10000]
//!         [--no-echo] [--no-idle] [--core 1] [--server-core 0]
//!         [--server PATH] [--unconstrained]
//!         [--deflate-libs tether,tether-w12,ws,websockets] [--deflate-sizes 1024,65536]
//!         [--deflate-duration 1.5] [--no-deflate] [--peers DIR] [--interop DIR]
//! loadgen --connect 127.0.0.1:9001 [--loads 64x16] [--sizes 1024] [--compressed] ...
//! ```
//!
//! The first form starts `echo_server` (the binary beside this one, or
//! `--server`) once per library per round, in the same order every round
//! (A B C D A B C D ...), and prints one JSON object per line on stdout for
//! each measurement; `--connect` measures a server that is already running.
//! Progress goes to stderr.
//!
//! **Echo** (`"kind":"echo"`): for each load `CxK` (C connections, K
//! messages in flight on each) and payload size, C connections do the HTTP
//! upgrade themselves (a fixed request; the 101 and its accept key are
//! checked), then write binary frames that were encoded and masked once up
//! front with tether-frame's encoder (client role), and read the echoes,
//! parsing frame headers just far enough to count whole messages (payload
//! bytes are skipped, never copied). Each echo frees a slot that the writer
//! refills at once; the round-trip time of a message runs from just before
//! its frame is written to the read that completes its echo. Only messages
//! completed inside the measured window (after `--warmup`, for
//! `--duration`) count: messages/s and p50/p99 round trip from an HDR
//! histogram, and the CPU share of one core that the server and the load
//! generator used in the window (`server_cpu`, `loadgen_cpu`: a load
//! generator near 1.0 would mean it, not the server, set the pace), and the
//! server's share split into user and kernel time (`server_user`,
//! `server_sys`: what the library itself spends per message, and what the
//! system calls and the network stack spend for it). Then every
//! connection sends a Close and waits for the server's.
//!
//! **Compressed echo** (`"kind":"deflate_echo"`): the same closed loop
//! with permessage-deflate (RFC 7692) on, for each server that supports it:
//! tether (`echo_server --lib tether --deflate`, and `tether-w12` with
//! `--deflate-window 12`), Node `ws` (`peers/ws_echo.mjs`) and Python
//! `websockets` (`peers/websockets_echo.py`), the last two run from the
//! interop peers' installs (`bash interop/install.sh`) and pinned with
//! `taskset`. The upgrade offers [`DEFLATE_OFFER`] and fails unless the
//! answer accepts permessage-deflate. The payload is JSON-like text
//! ([`json_payload`]), compressed once up front as its own raw deflate
//! stream (level 6, the client window the answer allows, the trailing
//! `00 00 ff ff` removed) and sent as masked text frames with RSV1, so every
//! frame is valid with or without context takeover. The first echo on each
//! connection is read whole, inflated and compared with the payload; after
//! that, echoes (compressed, RSV1) are counted from their headers as above.
//! The JSON line adds the server's `extensions` answer, the client window,
//! and the compressed sizes each way (`request_bytes`, `reply_bytes`).
//!
//! **Idle memory** (`"kind":"idle"`): a fresh server, its RSS
//! (`/proc/<pid>/status` `VmRSS`), then `--idle-conns` connections, each
//! completing the handshake and one 16 B echo (so the server has accepted
//! it and set it up for traffic; for `raw-tcp` a plain connect and a 1-byte
//! echo), then RSS again once it has settled; growth / connections is the
//! memory per idle connection. Sockets bind source addresses 127.0.0.1 to
//! 127.0.0.16 in turn, so ephemeral ports never run short. `tether-core`
//! and `floor` are echo measuring sticks and are left out of it.
//!
//! This process runs a single-threaded tokio runtime pinned to its own core
//! (`--core`, default 1); the server is pinned to `--server-core` (0).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use hdrhistogram::Histogram;
use tether_benches::{CpuTime, cpu_time, status_bytes};
use tether_frame::{FrameEncoder, OpCode, Role, Rsv, ThreadRngMask};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::LocalSet;

type BoxError = Box<dyn Error>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The libraries `echo_server` runs, in the order they alternate.
const WS_LIBS: [&str; 16] = [
    "tether",
    // the tokio adapter with `Driver::Owner` (echo rows only)
    "tether-owner",
    // tether at its best for a burst, each driver (`send_many`; echo rows
    // only)
    "tether-batched",
    "tether-owner-batched",
    "tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "soketto",
    "yawc",
    // each peer at its best (echo_server's docs say how each batches)
    "tungstenite-batched",
    "fastwebsockets-batched",
    "tokio-websockets-batched",
    "soketto-batched",
    "yawc-batched",
    // tether's core in a loop of its own, and the least any echo does
    // (echo rows only: see `ECHO_ONLY`)
    "tether-core",
    "floor",
];

/// Servers measured in the echo runs but not the idle one: `tether-core`
/// and `floor` each hold a 64 KiB read buffer per connection for their
/// whole life (they are measuring sticks for the echo, not servers to keep
/// idle connections); `tether-owner` and the `-batched` tethers are the
/// same adapter as `tether` (the owner driver's idle connection, with the
/// task that owns it, is counted by
/// `crates/tether-tokio/tests/idle_memory.rs`).
const ECHO_ONLY: [&str; 5] = [
    "tether-core",
    "floor",
    "tether-owner",
    "tether-batched",
    "tether-owner-batched",
];

/// The servers of the compressed echo run, in the order they alternate:
/// tether with its default deflate settings (those of Node `ws`: level 6,
/// 15-bit windows), tether with 12-bit windows (Python `websockets`'
/// default), then the two peers. tungstenite, fastwebsockets and
/// tokio-websockets have no permessage-deflate; soketto (its `deflate`
/// feature) and yawc do, but are not in this run: only in the plain echo.
const DEFLATE_LIBS: [&str; 4] = ["tether", "tether-w12", "ws", "websockets"];

/// The permessage-deflate offer of the compressed echo run: no context
/// takeover on our side (each frame is its own deflate stream), and any
/// client window the server wants.
const DEFLATE_OFFER: &str =
    "permessage-deflate; client_no_context_takeover; client_max_window_bits";

/// The four bytes a sync flush ends with (RFC 7692 section 7.2.1).
const DEFLATE_TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Where `benches/peers` and the interop installs are, unless told.
const BENCHES_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The key of RFC 6455 section 1.3's example, and the accept value it
/// implies: every upgrade sends the first and checks for the second.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// How many connections the idle run sets up at once.
const CONNECT_CONCURRENCY: usize = 256;

/// Source addresses the connections cycle through (127.0.0.1 ...).
const SOURCE_ADDRS: u8 = 16;

/// The longest a run's closing (or one idle connection's setup) may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

// ----- arguments ------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Load {
    conns: usize,
    inflight: usize,
}

struct Args {
    libs: Vec<String>,
    rounds: usize,
    warmup: Duration,
    duration: Duration,
    sizes: Vec<usize>,
    loads: Vec<Load>,
    idle_conns: usize,
    echo: bool,
    idle: bool,
    core: usize,
    server_core: usize,
    server: Option<PathBuf>,
    unconstrained: bool,
    connect: Option<SocketAddr>,
    deflate_libs: Vec<String>,
    deflate_sizes: Vec<usize>,
    deflate_duration: Duration,
    deflate: bool,
    /// With `--connect`: measure compressed echo.
    compressed: bool,
    peers: PathBuf,
    interop: PathBuf,
}

/// Plain echo, or echo with permessage-deflate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Plain,
    Deflate,
}

const USAGE: &str = "loadgen [--libs tether,tungstenite,fastwebsockets,tokio-websockets,soketto,yawc,\
<peer>-batched,tether-core,floor] \
[--rounds 3] [--warmup 0.5] [--duration 2.5] [--sizes 16,1024,65536] [--loads 1x1,64x16] \
[--idle-conns 10000] [--no-echo] [--no-idle] [--core 1] [--server-core 0] [--server PATH] \
[--unconstrained] [--deflate-libs tether,tether-w12,ws,websockets] [--deflate-sizes 1024,65536] \
[--deflate-duration 1.5] [--no-deflate] [--peers DIR] [--interop DIR] [--connect ADDR] [--compressed]";

fn list<T>(value: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    value.split(',').map(|v| parse(v.trim())).collect()
}

fn args() -> Result<Args> {
    let mut args = Args {
        libs: WS_LIBS.iter().map(|s| (*s).to_owned()).collect(),
        rounds: 3,
        warmup: Duration::from_millis(500),
        duration: Duration::from_millis(2500),
        sizes: vec![16, 1024, 64 * 1024],
        loads: vec![
            Load {
                conns: 1,
                inflight: 1,
            },
            Load {
                conns: 64,
                inflight: 16,
            },
        ],
        idle_conns: 10_000,
        echo: true,
        idle: true,
        core: 1,
        server_core: 0,
        server: None,
        unconstrained: false,
        connect: None,
        deflate_libs: DEFLATE_LIBS.iter().map(|s| (*s).to_owned()).collect(),
        deflate_sizes: vec![1024, 64 * 1024],
        deflate_duration: Duration::from_millis(1500),
        deflate: true,
        compressed: false,
        peers: PathBuf::from(BENCHES_DIR).join("peers"),
        interop: PathBuf::from(BENCHES_DIR).join("../interop"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--libs" => args.libs = list(&value()?, |s| Ok(s.to_owned()))?,
            "--rounds" => args.rounds = value()?.parse()?,
            "--warmup" => args.warmup = Duration::try_from_secs_f64(value()?.parse()?)?,
            "--duration" => args.duration = Duration::try_from_secs_f64(value()?.parse()?)?,
            "--sizes" => args.sizes = list(&value()?, |s| Ok(s.parse()?))?,
            "--loads" => {
                args.loads = list(&value()?, |s| {
                    let (c, k) = s.split_once('x').ok_or("a load is CxK, e.g. 64x16")?;
                    Ok(Load {
                        conns: c.parse()?,
                        inflight: k.parse()?,
                    })
                })?;
            }
            "--idle-conns" => args.idle_conns = value()?.parse()?,
            "--no-echo" => args.echo = false,
            "--no-idle" => args.idle = false,
            "--core" => args.core = value()?.parse()?,
            "--server-core" => args.server_core = value()?.parse()?,
            "--server" => args.server = Some(value()?.into()),
            "--unconstrained" => args.unconstrained = true,
            "--connect" => args.connect = Some(value()?.parse()?),
            "--deflate-libs" => args.deflate_libs = list(&value()?, |s| Ok(s.to_owned()))?,
            "--deflate-sizes" => args.deflate_sizes = list(&value()?, |s| Ok(s.parse()?))?,
            "--deflate-duration" => {
                args.deflate_duration = Duration::try_from_secs_f64(value()?.parse()?)?;
            }
            "--no-deflate" => args.deflate = false,
            "--compressed" => args.compressed = true,
            "--peers" => args.peers = value()?.into(),
            "--interop" => args.interop = value()?.into(),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\nusage: {USAGE}").into()),
        }
    }
    if args.loads.iter().any(|l| l.conns == 0 || l.inflight == 0) || args.rounds == 0 {
        return Err("connections, messages in flight and rounds must be at least 1".into());
    }
    Ok(args)
}

// ----- the server process -----------------------------------------------------------

/// A running `echo_server`: ends when dropped (its stdin closes).
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl Server {
    /// `echo_server --lib <lib> [extra]`, pinned by its own `--core`.
    fn echo_server(args: &Args, lib: &str, extra: &[&str]) -> Result<Command> {
        let path = match &args.server {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("echo_server"),
        };
        let mut command = Command::new(&path);
        command
            .args(["--lib", lib, "--addr", "127.0.0.1:0", "--core"])
            .arg(args.server_core.to_string())
            .args(extra);
        if args.unconstrained {
            command.arg("--unconstrained");
        }
        Ok(command)
    }

    /// The server for `lib`: `echo_server` for plain echo; for compressed
    /// echo tether with `--deflate`, or a Node / Python peer from
    /// `--peers` under `taskset -c <server core>` (every thread it starts,
    /// e.g. Node's zlib workers, stays on that core).
    fn command(args: &Args, lib: &str, mode: Mode) -> Result<Command> {
        if mode == Mode::Plain {
            return Self::echo_server(args, lib, &[]);
        }
        let core = args.server_core.to_string();
        Ok(match lib {
            "tether" => Self::echo_server(args, "tether", &["--deflate"])?,
            "tether-w12" => {
                Self::echo_server(args, "tether", &["--deflate", "--deflate-window", "12"])?
            }
            "ws" => {
                let mut command = Command::new("taskset");
                command
                    .args(["-c", &core, "node"])
                    .arg(args.peers.join("ws_echo.mjs"))
                    .env("NODE_PATH", args.interop.join("node_modules"));
                command
            }
            "websockets" => {
                let mut command = Command::new("taskset");
                command
                    .args(["-c", &core])
                    .arg(args.interop.join(".venv/bin/python"))
                    .arg(args.peers.join("websockets_echo.py"));
                command
            }
            other => {
                return Err(format!(
                    "no compressed echo server {other:?}: tether, tether-w12, ws or websockets"
                )
                .into());
            }
        })
    }

    /// Starts `lib` and waits for its `listening <addr>` line.
    fn start(args: &Args, lib: &str, mode: Mode) -> Result<Self> {
        let mut command = Self::command(args, lib, mode)?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {command:?}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let hint = if mode == Mode::Deflate && !lib.starts_with("tether") {
            " (are the interop peers installed? bash interop/install.sh)"
        } else {
            ""
        };
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .ok_or_else(|| format!("{command:?} did not start: {line:?}{hint}"))?
            .parse()?;
        Ok(Self { child, stdin, addr })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // our own child, by its handle: it did not exit on stdin EOF
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- client side of the protocol ------------------------------------------------------

/// Connects from 127.0.0.`(1 + n % 16)`, with `TCP_NODELAY`.
async fn connect(addr: SocketAddr, n: usize) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    let source = Ipv4Addr::new(127, 0, 0, 1 + (n % usize::from(SOURCE_ADDRS)) as u8);
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// The HTTP upgrade: a fixed request (offering `extensions`, if any), then
/// the response head, which must be a 101 with the right accept key.
/// Returns what came after the head, and the head.
async fn upgrade(
    tcp: &mut TcpStream,
    addr: SocketAddr,
    extensions: Option<&str>,
) -> Result<(Vec<u8>, String)> {
    let offer = extensions.map_or(String::new(), |e| {
        format!("Sec-WebSocket-Extensions: {e}\r\n")
    });
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err("the server closed during the handshake".into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&head[..end]);
            if !text.starts_with("HTTP/1.1 101") {
                return Err(format!("expected a 101, got {:?}", text.lines().next()).into());
            }
            if !text.contains(ACCEPT) {
                return Err(format!("no accept key {ACCEPT} in {text:?}").into());
            }
            let text = text.into_owned();
            return Ok((head.split_off(end + 4), text));
        }
        if head.len() > 16 * 1024 {
            return Err("response head over 16 KiB".into());
        }
    }
}

/// `count` masked binary frames carrying `size` bytes each (a fresh key per
/// frame), and one masked Close (1000), encoded once with tether-frame.
fn client_frames(size: usize, count: usize) -> (Vec<u8>, Vec<u8>) {
    let payload = tether_benches::binary_payload(size);
    encode_frames(Rsv::NONE, OpCode::Binary, &payload, count)
}

/// `count` masked final frames of `opcode` carrying `payload` (a fresh key
/// per frame), and one masked Close (1000).
fn encode_frames(rsv: Rsv, opcode: OpCode, payload: &[u8], count: usize) -> (Vec<u8>, Vec<u8>) {
    let mut enc = FrameEncoder::new(Role::Client, ThreadRngMask);
    let mut out = BytesMut::new();
    for _ in 0..count {
        enc.encode(true, rsv, opcode, payload, &mut out);
    }
    let mut close = BytesMut::new();
    enc.encode(
        true,
        Rsv::NONE,
        OpCode::Close,
        &1000u16.to_be_bytes(),
        &mut close,
    );
    (out.to_vec(), close.to_vec())
}

// ----- permessage-deflate -----------------------------------------------------------------

/// JSON-like ASCII text of exactly `size` bytes: an array of records with
/// ids, names, numbers, flags and tags drawn from a small seeded generator,
/// so it compresses as API traffic does (repeated keys, varied values),
/// neither trivially nor not at all. Cut at `size`, so not valid JSON at
/// the end; valid UTF-8 always.
fn json_payload(size: usize) -> Vec<u8> {
    use std::fmt::Write as _;
    const NAMES: [&str; 8] = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    const TAGS: [&str; 6] = ["new", "priority", "archived", "beta", "eu-west", "mobile"];
    let mut seed: u32 = 0x9e37_79b9;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut text = String::with_capacity(size + 256);
    text.push('[');
    let mut id = 1000u32;
    while text.len() < size {
        let (a, b) = (next(), next());
        id += 1 + a % 7;
        // writing to a String cannot fail
        let _ = write!(
            text,
            "{{\"id\":{id},\"user\":\"{}_{:04}\",\"score\":{}.{:02},\"active\":{},\
             \"tags\":[\"{}\",\"{}\"],\"updated\":\"2024-{:02}-{:02}T{:02}:{:02}:{:02}Z\"}},",
            NAMES[(a % 8) as usize],
            b % 10_000,
            a % 1000,
            b % 100,
            a % 3 != 0,
            TAGS[(b % 6) as usize],
            TAGS[((a >> 8) % 6) as usize],
            1 + (b >> 8) % 12,
            1 + (a >> 16) % 28,
            (b >> 16) % 24,
            (a >> 20) % 60,
            (b >> 20) % 60,
        );
    }
    text.truncate(size);
    text.into_bytes()
}

/// `payload` as one complete raw deflate stream (level 6, `window_bits`),
/// ended by a sync flush whose `00 00 ff ff` is removed: a permessage-deflate
/// message payload (RFC 7692 section 7.2.1) that needs no earlier context.
fn deflate_message(payload: &[u8], window_bits: u8) -> Result<Vec<u8>> {
    let mut compress = Compress::new_with_window_bits(Compression::new(6), false, window_bits);
    let mut out = Vec::with_capacity(payload.len() + payload.len() / 8 + 64);
    let status = compress.compress_vec(payload, &mut out, FlushCompress::Sync)?;
    if compress.total_in() != payload.len() as u64 || !out.ends_with(&DEFLATE_TRAILER) {
        return Err(format!("deflate did not finish ({status:?})").into());
    }
    out.truncate(out.len() - DEFLATE_TRAILER.len());
    Ok(out)
}

/// The inverse, for a message that starts a fresh context (any window).
fn inflate_message(compressed: &[u8], limit: usize) -> Result<Vec<u8>> {
    let mut input = compressed.to_vec();
    input.extend_from_slice(&DEFLATE_TRAILER);
    let mut decompress = Decompress::new(false);
    let mut out = Vec::with_capacity(limit + 1);
    decompress.decompress_vec(&input, &mut out, FlushDecompress::Sync)?;
    if decompress.total_in() != input.len() as u64 {
        return Err("the echo inflates to more than was sent".into());
    }
    Ok(out)
}

/// The permessage-deflate entry of a 101 response head, if any.
fn deflate_answer(head: &str) -> Option<String> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-extensions"))
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .find(|ext| {
            ext.split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("permessage-deflate"))
        })
        .map(str::to_owned)
}

/// The window the answer lets a client compress with (15 when it says
/// nothing); zlib cannot write 8-bit windows, so 8 is an error here.
fn client_window_bits(answer: &str) -> Result<u8> {
    for param in answer.split(';').skip(1) {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("client_max_window_bits") {
            let bits: u8 = value.trim().trim_matches('"').parse().unwrap_or(15);
            if !(9..=15).contains(&bits) {
                return Err(
                    format!("client_max_window_bits={bits}: cannot compress with it").into(),
                );
            }
            return Ok(bits);
        }
    }
    Ok(15)
}

/// Reads one whole frame (after `pending`, bytes already read): returns its
/// first header byte, its payload (unmasked: a server's), and what followed.
async fn read_frame(tcp: &mut TcpStream, mut pending: Vec<u8>) -> Result<(u8, Vec<u8>, Vec<u8>)> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if pending.len() >= 2 {
            let (b0, b1) = (pending[0], pending[1]);
            let (extra, len) = match b1 & 0x7f {
                126 if pending.len() >= 4 => {
                    (2, u64::from(u16::from_be_bytes([pending[2], pending[3]])))
                }
                127 if pending.len() >= 10 => {
                    let mut len = [0u8; 8];
                    len.copy_from_slice(&pending[2..10]);
                    (8, u64::from_be_bytes(len))
                }
                126 | 127 => (usize::MAX, 0),
                n => (0, u64::from(n)),
            };
            if b1 & 0x80 != 0 {
                return Err("the server masked a frame".into());
            }
            if extra != usize::MAX {
                let start = 2 + extra;
                let end = start + usize::try_from(len)?;
                if pending.len() >= end {
                    let rest = pending.split_off(end);
                    pending.drain(..start);
                    return Ok((b0, pending, rest));
                }
            }
        }
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err("the server closed before its first echo".into());
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

/// What the first echo of a compressed run looked like.
struct FirstEcho {
    reply_bytes: usize,
    compressed: bool,
    leftover: Vec<u8>,
}

/// Sends one frame and reads its echo whole: it must be a final text frame
/// whose payload (inflated, when RSV1 says it is compressed) is `payload`.
async fn check_first_echo(
    tcp: &mut TcpStream,
    leftover: Vec<u8>,
    frame: &[u8],
    payload: &[u8],
) -> Result<FirstEcho> {
    tcp.write_all(frame).await?;
    let (b0, reply, leftover) = read_frame(tcp, leftover).await?;
    if b0 & 0x8f != 0x81 {
        return Err(format!("the echo is not one final text frame (first byte {b0:#04x})").into());
    }
    let compressed = b0 & 0x40 != 0;
    let inflated = if compressed {
        inflate_message(&reply, payload.len())?
    } else {
        reply.clone()
    };
    if inflated != payload {
        return Err(format!(
            "the echo differs from the payload ({} bytes back, {} sent)",
            inflated.len(),
            payload.len()
        )
        .into());
    }
    Ok(FirstEcho {
        reply_bytes: reply.len(),
        compressed,
        leftover,
    })
}

/// What the frame counter found at the end of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// The last frame of a text or binary message.
    Message,
    /// A Close frame.
    Close,
    /// Anything else (a continuation that is not final, Ping, Pong).
    Other,
}

/// Counts whole frames in a byte stream, reading headers only.
#[derive(Default)]
struct FrameCounter {
    head: [u8; 14],
    head_len: usize,
    /// Payload bytes still to skip, while `in_payload`.
    skip: u64,
    in_payload: bool,
    seen: Option<Seen>,
}

impl FrameCounter {
    /// The length of the header being collected (2 until its length byte).
    fn header_len(&self) -> usize {
        if self.head_len < 2 {
            return 2;
        }
        let b1 = self.head[1];
        2 + match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        } + if b1 & 0x80 != 0 { 4 } else { 0 }
    }

    /// Feeds `data`, calling `on_frame` at the end of each frame.
    fn feed(&mut self, mut data: &[u8], mut on_frame: impl FnMut(Seen)) {
        loop {
            if self.in_payload {
                let k = self.skip.min(data.len() as u64);
                self.skip -= k;
                data = &data[k as usize..];
                if self.skip > 0 {
                    return;
                }
                self.in_payload = false;
                on_frame(self.seen.unwrap_or(Seen::Other));
                continue;
            }
            if data.is_empty() {
                return;
            }
            while self.head_len < self.header_len() && !data.is_empty() {
                let k = (self.header_len() - self.head_len).min(data.len());
                self.head[self.head_len..self.head_len + k].copy_from_slice(&data[..k]);
                self.head_len += k;
                data = &data[k..];
            }
            if self.head_len < self.header_len() {
                return;
            }
            let (b0, b1) = (self.head[0], self.head[1]);
            self.skip = match b1 & 0x7f {
                126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                127 => {
                    let mut len = [0u8; 8];
                    len.copy_from_slice(&self.head[2..10]);
                    u64::from_be_bytes(len)
                }
                n => u64::from(n),
            };
            let fin = b0 & 0x80 != 0;
            self.seen = Some(match b0 & 0x0f {
                0x0..=0x2 if fin => Seen::Message,
                0x8 => Seen::Close,
                _ => Seen::Other,
            });
            self.head_len = 0;
            self.in_payload = true;
        }
    }
}

// ----- the echo run ---------------------------------------------------------------------

/// What every connection of one run shares (one thread: `Rc`, `Cell`).
struct Run {
    measure_from: Instant,
    measure_until: Instant,
    /// Round trips in nanoseconds, inside the window.
    rtt: RefCell<Histogram<u64>>,
    messages: Cell<u64>,
}

/// The send side of one connection: when each frame in flight was written,
/// and how many more may be.
struct Flight {
    sent: RefCell<VecDeque<Instant>>,
    credit: Cell<usize>,
    done: Cell<bool>,
    wake: Notify,
}

/// One connection's closed loop: keep `inflight` messages in flight until
/// the window ends, then Close and wait for the server's Close.
async fn echo_connection(
    mut tcp: TcpStream,
    leftover: Vec<u8>,
    frames: Rc<(Vec<u8>, Vec<u8>)>,
    frame_len: usize,
    inflight: usize,
    run: Rc<Run>,
) -> Result<()> {
    let flight = Flight {
        sent: RefCell::new(VecDeque::with_capacity(inflight)),
        credit: Cell::new(inflight),
        done: Cell::new(false),
        wake: Notify::new(),
    };
    let (mut rd, mut wr) = tcp.split();
    let writer = async {
        loop {
            while flight.credit.get() == 0 && !flight.done.get() {
                flight.wake.notified().await;
            }
            if flight.done.get() {
                break;
            }
            let n = flight.credit.replace(0);
            let now = Instant::now();
            flight.sent.borrow_mut().extend(std::iter::repeat_n(now, n));
            wr.write_all(&frames.0[..n * frame_len]).await?;
        }
        wr.write_all(&frames.1).await?;
        Ok::<(), BoxError>(())
    };
    let reader = async {
        let mut counter = FrameCounter::default();
        let mut buf = vec![0u8; 256 * 1024];
        // true at the server's Close
        let on_frame = |seen: Seen, now: Instant| match seen {
            Seen::Message => {
                let sent = flight.sent.borrow_mut().pop_front();
                if let Some(sent) = sent
                    && now >= run.measure_from
                    && now < run.measure_until
                {
                    let ns = u64::try_from((now - sent).as_nanos()).unwrap_or(u64::MAX);
                    run.rtt.borrow_mut().saturating_record(ns.max(1));
                    run.messages.set(run.messages.get() + 1);
                }
                if now >= run.measure_until {
                    flight.done.set(true);
                } else {
                    flight.credit.set(flight.credit.get() + 1);
                }
                flight.wake.notify_one();
                false
            }
            Seen::Close => true,
            Seen::Other => false,
        };
        let mut closed = false;
        let now = Instant::now();
        counter.feed(&leftover, |s| closed |= on_frame(s, now));
        while !closed {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                return Err("the server closed the connection without a Close".into());
            }
            let now = Instant::now();
            counter.feed(&buf[..n], |s| closed |= on_frame(s, now));
        }
        Ok::<(), BoxError>(())
    };
    let (w, r) = tokio::join!(writer, reader);
    w?;
    r
}

/// CPU over the measured window, as shares of one core, sampled at its
/// start and end.
struct CpuShares {
    /// The server's user and system (kernel) time, if its pid is known.
    server: Option<CpuTime>,
    /// This process's user + system time.
    loadgen: f64,
}

/// What the server (if known) and this process used over the measured
/// window.
async fn cpu_over(run: Rc<Run>, server: Option<u32>) -> Result<CpuShares> {
    let me = std::process::id();
    tokio::time::sleep_until(run.measure_from.into()).await;
    let (s0, m0) = (server.map(cpu_time).transpose()?, cpu_time(me)?);
    tokio::time::sleep_until(run.measure_until.into()).await;
    let (s1, m1) = (server.map(cpu_time).transpose()?, cpu_time(me)?);
    let window = (run.measure_until - run.measure_from).as_secs_f64();
    Ok(CpuShares {
        server: s0.zip(s1).map(|(a, b)| CpuTime {
            user: (b.user - a.user) / window,
            system: (b.system - a.system) / window,
        }),
        loadgen: (m1.total() - m0.total()) / window,
    })
}

/// One echo measurement: returns the JSON line's fields.
async fn echo_run(
    addr: SocketAddr,
    server: Option<u32>,
    load: Load,
    size: usize,
    args: &Args,
    mode: Mode,
) -> Result<String> {
    let offer = (mode == Mode::Deflate).then_some(DEFLATE_OFFER);
    let mut conns = Vec::with_capacity(load.conns);
    let mut answer: Option<String> = None;
    for n in 0..load.conns {
        let mut tcp = connect(addr, n).await?;
        let (leftover, head) = upgrade(&mut tcp, addr, offer).await?;
        if mode == Mode::Deflate {
            let this = deflate_answer(&head)
                .ok_or_else(|| format!("the server declined permessage-deflate: {head:?}"))?;
            if answer.as_ref().is_some_and(|a| *a != this) {
                return Err(format!("answers differ: {answer:?} then {this:?}").into());
            }
            answer = Some(this);
        }
        conns.push((tcp, leftover));
    }
    let (frames, extra, duration) = match &answer {
        None => (
            client_frames(size, load.inflight),
            String::new(),
            args.duration,
        ),
        Some(answer) => {
            let bits = client_window_bits(answer)?;
            let payload = json_payload(size);
            let compressed = deflate_message(&payload, bits)?;
            let frames = encode_frames(Rsv::RSV1, OpCode::Text, &compressed, load.inflight);
            let frame_len = frames.0.len() / load.inflight;
            let mut first: Option<FirstEcho> = None;
            for (tcp, leftover) in &mut conns {
                let frame = &frames.0[..frame_len];
                let mut echo =
                    check_first_echo(tcp, std::mem::take(leftover), frame, &payload).await?;
                *leftover = std::mem::take(&mut echo.leftover);
                first.get_or_insert(echo);
            }
            let first = first.ok_or("no connections")?;
            let extra = format!(
                "\"extensions\":\"{}\",\"client_window_bits\":{bits},\"request_bytes\":{},\
                 \"reply_bytes\":{},\"reply_compressed\":{},",
                answer.replace(['"', '\\'], "'"),
                compressed.len(),
                first.reply_bytes,
                first.compressed
            );
            (frames, extra, args.deflate_duration)
        }
    };
    let frame_len = frames.0.len() / load.inflight;
    let frames = Rc::new(frames);
    let start = Instant::now();
    let run = Rc::new(Run {
        measure_from: start + args.warmup,
        measure_until: start + args.warmup + duration,
        rtt: RefCell::new(Histogram::new_with_bounds(1, 60_000_000_000, 3)?),
        messages: Cell::new(0),
    });
    let cpu = tokio::task::spawn_local(cpu_over(run.clone(), server));
    let mut tasks = Vec::with_capacity(load.conns);
    for (tcp, leftover) in conns {
        tasks.push(tokio::task::spawn_local(echo_connection(
            tcp,
            leftover,
            frames.clone(),
            frame_len,
            load.inflight,
            run.clone(),
        )));
    }
    let deadline = run.measure_until + DRAIN_TIMEOUT;
    for task in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, task)
            .await
            .map_err(|_| "connections did not close in time")???;
    }
    let CpuShares {
        server,
        loadgen: loadgen_cpu,
    } = cpu.await??;
    // the server's share, and its user and kernel parts: how much of its
    // time per message is the library's own and how much the kernel's
    let server_cpu = server.map_or_else(
        || "null,\"server_user\":null,\"server_sys\":null".into(),
        |s| {
            format!(
                "{:.3},\"server_user\":{:.3},\"server_sys\":{:.3}",
                s.total(),
                s.user,
                s.system
            )
        },
    );
    let rtt = run.rtt.borrow();
    let us = |q: f64| rtt.value_at_quantile(q) as f64 / 1000.0;
    Ok(format!(
        "{extra}\"conns\":{},\"inflight\":{},\"size\":{size},\"messages\":{},\"msgs_per_s\":{:.1},\
         \"p50_us\":{:.2},\"p99_us\":{:.2},\"max_us\":{:.2},\"server_cpu\":{server_cpu},\
         \"loadgen_cpu\":{loadgen_cpu:.3}",
        load.conns,
        load.inflight,
        run.messages.get(),
        run.messages.get() as f64 / duration.as_secs_f64(),
        us(0.5),
        us(0.99),
        rtt.max() as f64 / 1000.0
    ))
}

// ----- the idle-memory run ----------------------------------------------------------------

/// Opens one connection that the server has fully set up: WebSocket
/// handshake and one 16 B echo, or (raw TCP) a 1-byte echo.
async fn idle_connection(
    addr: SocketAddr,
    n: usize,
    ws: bool,
    probe: Rc<Vec<u8>>,
) -> Result<TcpStream> {
    let mut tcp = connect(addr, n).await?;
    if ws {
        let (leftover, _) = upgrade(&mut tcp, addr, None).await?;
        tcp.write_all(&probe).await?;
        let mut counter = FrameCounter::default();
        let mut done = false;
        counter.feed(&leftover, |s| done |= s == Seen::Message);
        let mut buf = [0u8; 256];
        while !done {
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                return Err("closed before the echo".into());
            }
            counter.feed(&buf[..n], |s| done |= s == Seen::Message);
        }
    } else {
        tcp.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await?;
    }
    Ok(tcp)
}

/// RSS once it stops moving: sampled every 200 ms until two samples agree
/// within 0.5% (at most 5 s).
async fn settled_rss(pid: u32) -> Result<u64> {
    let mut last = status_bytes(pid, "VmRSS:")?;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = status_bytes(pid, "VmRSS:")?;
        if now.abs_diff(last) * 200 <= last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

async fn idle_run(server: &Server, conns: usize, ws: bool) -> Result<String> {
    let before = settled_rss(server.pid()).await?;
    let (probe, _) = client_frames(16, 1);
    let probe = Rc::new(probe);
    let limit = Rc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = Vec::with_capacity(conns);
    for n in 0..conns {
        let (limit, probe, addr) = (limit.clone(), probe.clone(), server.addr);
        tasks.push(tokio::task::spawn_local(async move {
            let _permit = limit.acquire().await?;
            tokio::time::timeout(DRAIN_TIMEOUT, idle_connection(addr, n, ws, probe))
                .await
                .map_err(|_| "connection setup timed out")?
        }));
    }
    let mut held = Vec::with_capacity(conns);
    for task in tasks {
        held.push(task.await??);
    }
    let after = settled_rss(server.pid()).await?;
    drop(held);
    Ok(format!(
        "\"conns\":{conns},\"rss_before\":{before},\"rss_after\":{after},\"bytes_per_conn\":{:.1}",
        (after as f64 - before as f64) / conns as f64
    ))
}

// ----- main -----------------------------------------------------------------------------

fn emit(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{{{line}}}")?;
    out.flush()?;
    Ok(())
}

/// Every load and size of one round against a fresh `lib` server.
fn echo_lib(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    local: &LocalSet,
    round: usize,
    lib: &str,
    mode: Mode,
) -> Result<()> {
    let (kind, sizes) = match mode {
        Mode::Plain => ("echo", &args.sizes),
        Mode::Deflate => ("deflate_echo", &args.deflate_sizes),
    };
    let server = Server::start(args, lib, mode)?;
    for load in &args.loads {
        for &size in sizes {
            eprintln!(
                "loadgen: round {round} {kind} {lib} {}x{} {size} B",
                load.conns, load.inflight
            );
            let fields = local
                .block_on(
                    rt,
                    echo_run(server.addr, Some(server.pid()), *load, size, args, mode),
                )
                .map_err(|e| format!("{lib} {kind} {size} B: {e}"))?;
            emit(&format!(
                "\"kind\":\"{kind}\",\"round\":{round},\"lib\":\"{lib}\",{fields}"
            ))?;
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = args()?;
    rlimit::increase_nofile_limit(u64::MAX)?;
    tether_benches::pin_to_core(args.core)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = LocalSet::new();

    if let Some(addr) = args.connect {
        let (mode, kind, sizes) = if args.compressed {
            (Mode::Deflate, "deflate_echo", &args.deflate_sizes)
        } else {
            (Mode::Plain, "echo", &args.sizes)
        };
        for load in &args.loads {
            for &size in sizes {
                let fields = local.block_on(&rt, echo_run(addr, None, *load, size, &args, mode))?;
                emit(&format!("\"kind\":\"{kind}\",\"lib\":\"{addr}\",{fields}"))?;
            }
        }
        return Ok(());
    }

    for round in 1..=args.rounds {
        if args.echo {
            for lib in &args.libs {
                echo_lib(&args, &rt, &local, round, lib, Mode::Plain)?;
            }
        }
        if args.deflate {
            for lib in &args.deflate_libs {
                echo_lib(&args, &rt, &local, round, lib, Mode::Deflate)?;
            }
        }
        if args.idle {
            let idle_libs = args.libs.iter().map(String::as_str);
            for lib in idle_libs
                .filter(|lib| !ECHO_ONLY.contains(lib))
                .chain(["raw-tcp"])
            {
                eprintln!("loadgen: round {round} idle {lib} x{}", args.idle_conns);
                let server = Server::start(&args, lib, Mode::Plain)?;
                let ws = lib != "raw-tcp";
                let fields = local
                    .block_on(&rt, idle_run(&server, args.idle_conns, ws))
                    .map_err(|e| format!("{lib} idle: {e}"))?;
                emit(&format!(
                    "\"kind\":\"idle\",\"round\":{round},\"lib\":\"{lib}\",{fields}"
                ))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_payload_is_exact_text_that_compresses() -> Result<()> {
        for size in [16, 1024, 65536] {
            let payload = json_payload(size);
            assert_eq!(payload.len(), size);
            assert!(std::str::from_utf8(&payload).is_ok());
            let compressed = deflate_message(&payload, 12)?;
            assert_eq!(inflate_message(&compressed, size)?, payload);
            if size >= 1024 {
                // compressible, not trivially so
                assert!(compressed.len() * 2 < size, "{size}: {}", compressed.len());
                assert!(compressed.len() * 20 > size, "{size}: {}", compressed.len());
            }
        }
        Ok(())
    }

    #[test]
    fn deflate_answers_and_client_windows() -> Result<()> {
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                    sec-websocket-extensions: foo, permessage-deflate; server_max_window_bits=12; \
                    client_max_window_bits=12\r\n";
        let answer = deflate_answer(head).ok_or("no answer")?;
        assert_eq!(
            answer,
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
        );
        assert_eq!(client_window_bits(&answer)?, 12);
        assert_eq!(client_window_bits("permessage-deflate")?, 15);
        assert_eq!(
            client_window_bits("permessage-deflate; client_max_window_bits=\"10\"")?,
            10
        );
        assert!(client_window_bits("permessage-deflate; client_max_window_bits=8").is_err());
        assert!(deflate_answer("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n").is_none());
        Ok(())
    }

    #[test]
    fn counter_counts_frames_split_anywhere() {
        // server frames: 16 B binary, 70 KiB binary (64-bit length),
        // 200 B text (16-bit length), 300 B compressed text, Ping, Close
        let mut wire = BytesMut::new();
        let mut enc = FrameEncoder::new(Role::Server, ThreadRngMask);
        enc.encode(true, Rsv::NONE, OpCode::Binary, &[7; 16], &mut wire);
        enc.encode(true, Rsv::NONE, OpCode::Binary, &[7; 70 * 1024], &mut wire);
        enc.encode(true, Rsv::NONE, OpCode::Text, &[b'a'; 200], &mut wire);
        // a compressed message (permessage-deflate: RSV1)
        enc.encode(true, Rsv::RSV1, OpCode::Text, &[b'z'; 300], &mut wire);
        enc.encode(true, Rsv::NONE, OpCode::Ping, b"", &mut wire);
        enc.encode(true, Rsv::NONE, OpCode::Close, &[3, 232], &mut wire);
        let expected = vec![
            Seen::Message,
            Seen::Message,
            Seen::Message,
            Seen::Message,
            Seen::Other,
            Seen::Close,
        ];
        for step in [1, 2, 3, 7, 13, 1000, wire.len()] {
            let mut counter = FrameCounter::default();
            let mut seen = Vec::new();
            for chunk in wire.chunks(step) {
                counter.feed(chunk, |s| seen.push(s));
            }
            assert_eq!(seen, expected, "step {step}");
        }
    }
}
