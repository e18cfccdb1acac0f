//! The common load generator of the loopback benchmark: one client,
//! identical for every server, that speaks WebSocket over raw TCP.
//!
//! ```sh
//! loadgen [--libs tether,tungstenite,fastwebsockets,tokio-websockets]
//!         [--rounds 3] [--warmup 0.5] [--duration 2.5]
//!         [--sizes 16,1024,65536] [--loads 1x1,64x16] [--idle-conns 10000]
//!         [--no-echo] [--no-idle] [--core 1] [--server-core 0]
//!         [--server PATH] [--unconstrained]
//! loadgen --connect 127.0.0.1:9001 [--loads 64x16] [--sizes 1024] ...
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
//! generator near 1.0 would mean it, not the server, set the pace). Then
//! every connection sends a Close and waits for the server's.
//!
//! **Idle memory** (`"kind":"idle"`): a fresh server, its RSS
//! (`/proc/<pid>/status` `VmRSS`), then `--idle-conns` connections, each
//! completing the handshake and one 16 B echo (so the server has accepted
//! it and set it up for traffic; for `raw-tcp` a plain connect and a 1-byte
//! echo), then RSS again once it has settled; growth / connections is the
//! memory per idle connection. Sockets bind source addresses 127.0.0.1 to
//! 127.0.0.16 in turn, so ephemeral ports never run short.
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
use hdrhistogram::Histogram;
use tether_frame::{FrameEncoder, OpCode, Role, Rsv, ThreadRngMask};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::LocalSet;

type BoxError = Box<dyn Error>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The libraries `echo_server` runs, in the order they alternate.
const WS_LIBS: [&str; 4] = [
    "tether",
    "tungstenite",
    "fastwebsockets",
    "tokio-websockets",
];

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
}

const USAGE: &str = "loadgen [--libs tether,tungstenite,fastwebsockets,tokio-websockets] \
[--rounds 3] [--warmup 0.5] [--duration 2.5] [--sizes 16,1024,65536] [--loads 1x1,64x16] \
[--idle-conns 10000] [--no-echo] [--no-idle] [--core 1] [--server-core 0] [--server PATH] \
[--unconstrained] [--connect ADDR]";

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
    fn start(args: &Args, lib: &str) -> Result<Self> {
        let path = match &args.server {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("echo_server"),
        };
        let mut command = Command::new(&path);
        command
            .args(["--lib", lib, "--addr", "127.0.0.1:0", "--core"])
            .arg(args.server_core.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if args.unconstrained {
            command.arg("--unconstrained");
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", path.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .ok_or_else(|| format!("echo_server --lib {lib} did not start: {line:?}"))?
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

/// `VmRSS` of a process, in bytes.
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// CPU time a process has used (user + system, all threads), in seconds,
/// from `/proc/<pid>/stat` (`utime`, `stime`; USER_HZ is 100 on Linux).
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').ok_or("bad /proc stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> { Ok(fields.get(i).ok_or("short /proc stat")?.parse()?) };
    Ok((ticks(11)? + ticks(12)?) as f64 / 100.0)
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

/// The HTTP upgrade: a fixed request, then the response head, which must be
/// a 101 with the right accept key. Returns what came after the head.
async fn upgrade(tcp: &mut TcpStream, addr: SocketAddr) -> Result<Vec<u8>> {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
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
            return Ok(head.split_off(end + 4));
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
    let mut enc = FrameEncoder::new(Role::Client, ThreadRngMask);
    let mut out = BytesMut::new();
    for _ in 0..count {
        enc.encode(true, Rsv::NONE, OpCode::Binary, &payload, &mut out);
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

/// The share of one core the server (if known) and this process used over
/// the measured window, sampled at its start and end.
async fn cpu_over(run: Rc<Run>, server: Option<u32>) -> Result<(Option<f64>, f64)> {
    let me = std::process::id();
    tokio::time::sleep_until(run.measure_from.into()).await;
    let (s0, m0) = (server.map(cpu_seconds).transpose()?, cpu_seconds(me)?);
    tokio::time::sleep_until(run.measure_until.into()).await;
    let (s1, m1) = (server.map(cpu_seconds).transpose()?, cpu_seconds(me)?);
    let window = (run.measure_until - run.measure_from).as_secs_f64();
    let server = s0.zip(s1).map(|(a, b)| (b - a) / window);
    Ok((server, (m1 - m0) / window))
}

/// One echo measurement: returns the JSON line's fields.
async fn echo_run(
    addr: SocketAddr,
    server: Option<u32>,
    load: Load,
    size: usize,
    args: &Args,
) -> Result<String> {
    let frames = client_frames(size, load.inflight);
    let frame_len = frames.0.len() / load.inflight;
    let frames = Rc::new(frames);
    let mut conns = Vec::with_capacity(load.conns);
    for n in 0..load.conns {
        let mut tcp = connect(addr, n).await?;
        let leftover = upgrade(&mut tcp, addr).await?;
        conns.push((tcp, leftover));
    }
    let start = Instant::now();
    let run = Rc::new(Run {
        measure_from: start + args.warmup,
        measure_until: start + args.warmup + args.duration,
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
    let (server_cpu, loadgen_cpu) = cpu.await??;
    let server_cpu = server_cpu.map_or("null".into(), |c| format!("{c:.3}"));
    let rtt = run.rtt.borrow();
    let us = |q: f64| rtt.value_at_quantile(q) as f64 / 1000.0;
    Ok(format!(
        "\"conns\":{},\"inflight\":{},\"size\":{size},\"messages\":{},\"msgs_per_s\":{:.1},\
         \"p50_us\":{:.2},\"p99_us\":{:.2},\"max_us\":{:.2},\"server_cpu\":{server_cpu},\
         \"loadgen_cpu\":{loadgen_cpu:.3}",
        load.conns,
        load.inflight,
        run.messages.get(),
        run.messages.get() as f64 / args.duration.as_secs_f64(),
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
        let leftover = upgrade(&mut tcp, addr).await?;
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
    let mut last = rss(pid)?;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = rss(pid)?;
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

fn main() -> Result<()> {
    let args = args()?;
    rlimit::increase_nofile_limit(u64::MAX)?;
    tether_benches::pin_to_core(args.core)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = LocalSet::new();

    if let Some(addr) = args.connect {
        for load in &args.loads {
            for &size in &args.sizes {
                let fields = local.block_on(&rt, echo_run(addr, None, *load, size, &args))?;
                emit(&format!("\"kind\":\"echo\",\"lib\":\"{addr}\",{fields}"))?;
            }
        }
        return Ok(());
    }

    for round in 1..=args.rounds {
        if args.echo {
            for lib in &args.libs {
                let server = Server::start(&args, lib)?;
                for load in &args.loads {
                    for &size in &args.sizes {
                        eprintln!(
                            "loadgen: round {round} echo {lib} {}x{} {size} B",
                            load.conns, load.inflight
                        );
                        let fields = local
                            .block_on(
                                &rt,
                                echo_run(server.addr, Some(server.pid()), *load, size, &args),
                            )
                            .map_err(|e| format!("{lib} echo {size} B: {e}"))?;
                        emit(&format!(
                            "\"kind\":\"echo\",\"round\":{round},\"lib\":\"{lib}\",{fields}"
                        ))?;
                    }
                }
            }
        }
        if args.idle {
            for lib in args.libs.iter().map(String::as_str).chain(["raw-tcp"]) {
                eprintln!("loadgen: round {round} idle {lib} x{}", args.idle_conns);
                let server = Server::start(&args, lib)?;
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
    fn counter_counts_frames_split_anywhere() {
        // server frames: 16 B binary, 70 KiB binary (64-bit length),
        // 200 B text (16-bit length), Ping, Close
        let mut wire = BytesMut::new();
        let mut enc = FrameEncoder::new(Role::Server, ThreadRngMask);
        enc.encode(true, Rsv::NONE, OpCode::Binary, &[7; 16], &mut wire);
        enc.encode(true, Rsv::NONE, OpCode::Binary, &[7; 70 * 1024], &mut wire);
        enc.encode(true, Rsv::NONE, OpCode::Text, &[b'a'; 200], &mut wire);
        enc.encode(true, Rsv::NONE, OpCode::Ping, b"", &mut wire);
        enc.encode(true, Rsv::NONE, OpCode::Close, &[3, 232], &mut wire);
        let expected = vec![
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
