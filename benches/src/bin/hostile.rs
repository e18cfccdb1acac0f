//! `hostile`: the hostile-peer suite's attacker, one attack per run, against
//! a running WebSocket server (in `benches/hostile.sh`, a fresh
//! `tether serve` per attack), over loopback.
//!
//! ```sh
//! hostile ATTACK --addr HOST:PORT [--pid PID] [-n N] [--duration SECS]
//!         [--size BYTES] [--max-bytes BYTES] [--settle SECS] [--server TEXT]
//!         [--row NAME] [--raw] [--no-probe]
//! ```
//!
//! Every attack speaks raw TCP with frames built by hand (client frames
//! masked, RFC 6455 section 5.3, with one fixed key: a large payload is
//! masked once, up front, and the same bytes are sent again and again), so
//! the attacker itself is cheap. Each is bounded in time (`--duration`,
//! default 10 s; slowloris 15 s, past the server's 10 s handshake timeout)
//! and in traffic (`--max-bytes`, default 2 GiB written in all), and prints
//! one JSON line on stdout; progress and errors go to stderr. `-n` is the
//! attack's N (connections, clients, concurrency or bombs, below) and
//! `--size` its size. `--server` and `--row` only label the JSON line (the
//! server's command line, the report's row).
//!
//! | attack | N (`-n`) | size (`--size`) | what it does |
//! |---|---|---|---|
//! | `big-no-read` | 3 clients | 16 MiB | each sends binary messages of the size as fast as the server takes them and never reads the echoes |
//! | `partial-stall` | 10 clients | 16 MiB | each sends all but the last byte of one message of the size, then goes silent and waits for the server's Close |
//! | `idle` | 1000 connections | 1 MiB | each echoes one message of the size, then stays idle; memory per connection once all are up (`--raw`: a plain connect and a 1-byte echo instead, against a raw TCP echo server, for the floor) |
//! | `ping-flood` | 1 client | 8 (Ping payload) | Pings as fast as the server reads them, never reading the Pongs; then a Close, counting the Pongs that come back before the server's Close |
//! | `slowloris` | 500 connections | - | each writes its upgrade request one byte per second |
//! | `header-bomb` | 8 at a time | 64 KiB (the big header) | upgrade requests, in turn: one header of the size, 200 small headers, a head that never ends (64 KiB without its empty line, 4x the limit) |
//! | `tiny-fragments` | 1 client | 2,000,000 fragments | one binary message in 1-byte fragments |
//! | `max-connections` | 150 connections | - | opens them, 10 at a time, and holds the upgraded ones for the duration |
//! | `deflate-bomb` | 50 bombs | 256 MiB (inflated) | offers permessage-deflate, then sends one compressed message of zeros that inflates to the size; one connection after another |
//!
//! **Around every attack** (unless `--no-probe`), on a thread of its own
//! with its own runtime, so the attack's work does not delay it:
//! - a *probe* client connects before the attack starts and sends a 16-byte
//!   binary message every 100 ms, recording each echo's round trip (p50,
//!   p99, max, and the share over 100 ms, counting an echo that never came
//!   back as over); it answers Pings;
//! - every second, a *new* client connects, upgrades and echoes one message
//!   (time taken, or what it got instead: a status like 503, a reset...).
//!
//! With `--pid` (the server's), the server's `VmRSS` is sampled every 20 ms
//! from `/proc/PID/status` (`rss_sampled_peak`), with `VmHWM` at the end
//! (`rss_peak`: the kernel's own high-water mark, over the server's life,
//! which is this attack's when the server is fresh), `rss_before` just
//! before the attack, `rss_after` once the attack's sockets are closed and
//! `--settle` (default 1 s) has passed, and the CPU time the server used
//! during the attack (`/proc/PID/stat`, user + system, 10 ms ticks).

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use tether_benches::{CpuTime, cpu_time, status_bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, sleep_until, timeout, timeout_at};

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The key of RFC 6455 section 1.3's example, and the accept value it
/// implies: every upgrade sends the first and checks for the second.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The masking key of every frame we send. A fixed key lets a payload be
/// masked once and sent many times; the server unmasks it all the same.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const CONTINUATION: u8 = 0x0;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// How often the probe sends its echo, and the round trip it should beat.
const ECHO_EVERY: Duration = Duration::from_millis(100);
/// How often a new client connects during the attack.
const NEW_CONN_EVERY: Duration = Duration::from_secs(1);
/// The longest a new client's connect, upgrade and echo may take.
const NEW_CONN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the probe waits for echoes still under way when told to stop.
const PROBE_GRACE: Duration = Duration::from_millis(200);
/// Source addresses connections cycle through (127.0.0.1 ...), so ephemeral
/// ports never run short.
const SOURCE_ADDRS: u8 = 16;

// ----- arguments ---------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    BigNoRead,
    PartialStall,
    Idle,
    PingFlood,
    Slowloris,
    HeaderBomb,
    TinyFragments,
    MaxConnections,
    DeflateBomb,
}

impl Attack {
    const ALL: [Attack; 9] = [
        Attack::BigNoRead,
        Attack::PartialStall,
        Attack::Idle,
        Attack::PingFlood,
        Attack::Slowloris,
        Attack::HeaderBomb,
        Attack::TinyFragments,
        Attack::MaxConnections,
        Attack::DeflateBomb,
    ];

    fn name(self) -> &'static str {
        match self {
            Attack::BigNoRead => "big-no-read",
            Attack::PartialStall => "partial-stall",
            Attack::Idle => "idle",
            Attack::PingFlood => "ping-flood",
            Attack::Slowloris => "slowloris",
            Attack::HeaderBomb => "header-bomb",
            Attack::TinyFragments => "tiny-fragments",
            Attack::MaxConnections => "max-connections",
            Attack::DeflateBomb => "deflate-bomb",
        }
    }

    fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| format!("unknown attack {name:?}\nusage: {USAGE}").into())
    }

    /// The default N: clients, connections, concurrency or bombs.
    fn default_n(self) -> usize {
        match self {
            Attack::BigNoRead => 3,
            Attack::PartialStall => 10,
            Attack::Idle => 1000,
            Attack::PingFlood | Attack::TinyFragments => 1,
            Attack::Slowloris => 500,
            Attack::HeaderBomb => 8,
            Attack::MaxConnections => 150,
            Attack::DeflateBomb => 50,
        }
    }

    fn default_size(self) -> usize {
        match self {
            Attack::BigNoRead | Attack::PartialStall => 16 * MIB,
            Attack::Idle => MIB,
            Attack::PingFlood => 8,
            Attack::HeaderBomb => 64 * KIB,
            Attack::TinyFragments => 2_000_000,
            Attack::DeflateBomb => 256 * MIB,
            Attack::Slowloris | Attack::MaxConnections => 0,
        }
    }

    fn default_duration(self) -> Duration {
        match self {
            // past the server's default 10 s handshake timeout
            Attack::Slowloris => Duration::from_secs(15),
            _ => Duration::from_secs(10),
        }
    }
}

struct Args {
    attack: Attack,
    addr: SocketAddr,
    pid: Option<u32>,
    n: usize,
    duration: Duration,
    size: usize,
    max_bytes: u64,
    settle: Duration,
    server: String,
    row: String,
    raw: bool,
    probe: bool,
}

const USAGE: &str = "hostile ATTACK --addr HOST:PORT [--pid PID] [-n N] [--duration SECS] \
[--size BYTES] [--max-bytes BYTES] [--settle SECS] [--server TEXT] [--row NAME] [--raw] [--no-probe]\n\
attacks: big-no-read, partial-stall, idle, ping-flood, slowloris, header-bomb, tiny-fragments, \
max-connections, deflate-bomb (sizes take KiB, MiB, GiB suffixes)";

/// A byte count: `4096`, `64KiB`, `16MiB`, `2GiB`.
fn parse_bytes(s: &str) -> Result<u64> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let unit: u64 = match unit {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} in {s:?}").into()),
    };
    Ok(digits.parse::<u64>()? * unit)
}

fn args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let first = it.next().ok_or(USAGE)?;
    if first == "-h" || first == "--help" {
        println!("{USAGE}");
        std::process::exit(0);
    }
    let attack = Attack::parse(&first)?;
    let mut addr = None;
    let mut args = Args {
        attack,
        addr: SocketAddr::from(([127, 0, 0, 1], 9001)),
        pid: None,
        n: attack.default_n(),
        duration: attack.default_duration(),
        size: attack.default_size(),
        max_bytes: 2 << 30,
        settle: Duration::from_secs(1),
        server: String::new(),
        row: attack.name().to_owned(),
        raw: false,
        probe: true,
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = Some(value()?.parse()?),
            "--pid" => args.pid = Some(value()?.parse()?),
            "-n" => args.n = value()?.parse()?,
            "--duration" => args.duration = Duration::try_from_secs_f64(value()?.parse()?)?,
            "--size" => args.size = usize::try_from(parse_bytes(&value()?)?)?,
            "--max-bytes" => args.max_bytes = parse_bytes(&value()?)?,
            "--settle" => args.settle = Duration::try_from_secs_f64(value()?.parse()?)?,
            "--server" => args.server = value()?,
            "--row" => args.row = value()?,
            "--raw" => args.raw = true,
            "--no-probe" => args.probe = false,
            other => return Err(format!("unknown argument {other:?}\nusage: {USAGE}").into()),
        }
    }
    args.addr = addr.ok_or("--addr is required")?;
    if args.n == 0 {
        return Err("-n must be at least 1".into());
    }
    if args.raw && args.attack != Attack::Idle {
        return Err("--raw is for `idle` only".into());
    }
    if args.attack == Attack::PingFlood && args.size > 125 {
        return Err("a Ping carries at most 125 bytes (RFC 6455 section 5.5)".into());
    }
    Ok(args)
}

// ----- the run -------------------------------------------------------------------------

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostile: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = args()?;
    // thousands of sockets (idle, slowloris): the soft limit up to the hard one
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let monitor = args.pid.map(Monitor::start);
    let probe = if args.probe {
        Some(Probe::start(args.addr)?)
    } else {
        None
    };
    let rss_before = args.pid.and_then(|pid| status_bytes(pid, "VmRSS:").ok());
    let cpu_before = args
        .pid
        .and_then(|pid| cpu_time(pid).ok().map(CpuTime::total));
    let started = std::time::Instant::now();
    eprintln!("hostile: {} against {}", args.attack.name(), args.addr);
    // a last bound over every attack's own (each stops at its deadline)
    let bound = args.duration + Duration::from_secs(30);
    let outcome = runtime.block_on(async {
        match timeout(bound, attack(&args)).await {
            Ok(outcome) => outcome,
            Err(_) => Ok(Outcome::new(
                "-",
                format!("the attack overran its bound of {bound:?}"),
            )),
        }
    })?;
    // every attacking socket is closed when `attack` returns
    let attack_secs = started.elapsed().as_secs_f64();
    let cpu_after = args
        .pid
        .and_then(|pid| cpu_time(pid).ok().map(CpuTime::total));
    let probe = probe.map(Probe::stop);
    std::thread::sleep(args.settle);
    let rss_after = args.pid.and_then(|pid| status_bytes(pid, "VmRSS:").ok());
    let hwm = args.pid.and_then(|pid| status_bytes(pid, "VmHWM:").ok());
    let sampled_peak = monitor.map(Monitor::stop);
    drop(runtime);

    let mut line = Json::default();
    line.str("row", &args.row);
    line.str("attack", args.attack.name());
    line.str("server", &args.server);
    line.str("does", &outcome.does);
    line.str("status", &outcome.status);
    line.num("attack_secs", format!("{attack_secs:.2}"));
    line.num("sent_bytes", outcome.sent);
    line.opt("rss_before", rss_before);
    line.opt("rss_sampled_peak", sampled_peak);
    line.opt("rss_peak", hwm);
    line.opt("rss_after", rss_after);
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        line.num("server_cpu_secs", format!("{:.2}", after - before));
    }
    if let Some(probe) = probe {
        probe.write(&mut line);
    }
    for (key, value) in outcome.fields {
        line.raw(&key, value);
    }
    println!("{}", line.finish());
    Ok(())
}

async fn attack(args: &Args) -> Result<Outcome> {
    match args.attack {
        Attack::BigNoRead => big_no_read(args).await,
        Attack::PartialStall => partial_stall(args).await,
        Attack::Idle => idle(args).await,
        Attack::PingFlood => ping_flood(args).await,
        Attack::Slowloris => slowloris(args).await,
        Attack::HeaderBomb => header_bomb(args).await,
        Attack::TinyFragments => tiny_fragments(args).await,
        Attack::MaxConnections => max_connections(args).await,
        Attack::DeflateBomb => deflate_bomb(args).await,
    }
}

/// What an attack did and what it saw.
struct Outcome {
    /// One sentence: what the attack does, with its numbers.
    does: String,
    /// What the attackers saw (close codes, statuses, stalls), in short.
    status: String,
    /// Bytes the attackers wrote.
    sent: u64,
    /// Attack-specific JSON fields (already encoded values).
    fields: Vec<(String, String)>,
}

impl Outcome {
    fn new(does: impl Into<String>, status: impl Into<String>) -> Self {
        Self {
            does: does.into(),
            status: status.into(),
            sent: 0,
            fields: Vec::new(),
        }
    }

    fn num(&mut self, key: &str, value: impl std::fmt::Display) {
        self.fields.push((key.to_owned(), value.to_string()));
    }

    fn str(&mut self, key: &str, value: &str) {
        self.fields.push((key.to_owned(), json_string(value)));
    }
}

// ----- attacks -------------------------------------------------------------------------

/// N clients send `size`-byte binary messages as fast as the server takes
/// them and never read the echoes.
async fn big_no_read(args: &Args) -> Result<Outcome> {
    let frame = Arc::new(frame(FIN | BINARY, &vec![0; args.size]));
    let deadline = Instant::now() + args.duration;
    let cap = args.max_bytes / args.n as u64;
    let mut clients = JoinSet::new();
    for n in 0..args.n {
        let (addr, frame) = (args.addr, frame.clone());
        clients.spawn(async move {
            let (mut tcp, _, _) = handshake(addr, n, "").await?;
            let mut sent = Sent::default();
            let mut messages = 0u64;
            let end = loop {
                if sent.bytes + frame.len() as u64 > cap {
                    break "traffic cap".to_owned();
                }
                match timeout_at(deadline, write_counted(&mut tcp, &frame, &mut sent)).await {
                    Err(_) => break "write blocked".to_owned(),
                    Ok(Err(e)) => break io_label(&e),
                    Ok(Ok(())) => messages += 1,
                }
            };
            let idle = deadline.saturating_duration_since(sent.last.unwrap_or(deadline));
            // dropped unread: the kernel resets the connection
            Ok::<_, String>((messages, sent.bytes, end, idle))
        });
    }
    let mut outcome = Outcome::new(
        format!(
            "{} clients send {} binary messages as fast as the server takes them, never read, {} s",
            args.n,
            size(args.size),
            secs(args.duration)
        ),
        "",
    );
    let mut ends = Tally::default();
    let (mut messages, mut stalled) = (Vec::new(), Vec::new());
    while let Some(client) = clients.join_next().await {
        match client? {
            Ok((m, bytes, end, idle)) => {
                outcome.sent += bytes;
                messages.push(m);
                stalled.push(idle.as_secs_f64());
                ends.add(end);
            }
            Err(e) => ends.add(format!("upgrade: {e}")),
        }
    }
    messages.sort_unstable();
    let min_stall = stalled.iter().copied().fold(f64::INFINITY, f64::min);
    let (fewest, most) = (
        messages.first().copied().unwrap_or(0),
        messages.last().copied().unwrap_or(0),
    );
    outcome.status = format!(
        "{ends}; {} messages each, then no progress for the last {:.1} s or more; no close",
        if fewest == most {
            most.to_string()
        } else {
            format!("{fewest}-{most}")
        },
        if min_stall.is_finite() {
            min_stall
        } else {
            0.0
        },
    );
    outcome.str("ends", &ends.to_string());
    Ok(outcome)
}

/// N clients each send all of a `size`-byte message but its last byte, then
/// go silent; the server's message timeout should close them (1008).
async fn partial_stall(args: &Args) -> Result<Outcome> {
    let frame = Arc::new(frame(FIN | BINARY, &vec![0; args.size]));
    let deadline = Instant::now() + args.duration;
    let mut clients = JoinSet::new();
    for n in 0..args.n {
        let (addr, frame) = (args.addr, frame.clone());
        clients.spawn(async move {
            let (mut tcp, mut buf, _) = handshake(addr, n, "").await?;
            let mut sent = Sent::default();
            let part = frame.get(..frame.len() - 1).unwrap_or_default();
            let end = match timeout_at(deadline, write_counted(&mut tcp, part, &mut sent)).await {
                Err(_) => Stalled::NotSent("still writing at the end".to_owned()),
                Ok(Err(e)) => Stalled::NotSent(io_label(&e)),
                Ok(Ok(())) => {
                    let silent_from = Instant::now();
                    match timeout_at(deadline, until_close(&mut tcp, &mut buf)).await {
                        Ok(end) => Stalled::Ended(end, silent_from.elapsed()),
                        Err(_) => Stalled::Open,
                    }
                }
            };
            // kept until every client is done, so the server's memory can be
            // read with the silent ones still connected
            Ok::<_, String>((sent.bytes, end, tcp))
        });
    }
    let mut outcome = Outcome::new(
        format!(
            "{} clients each send all but the last byte of a {} message, then go silent",
            args.n,
            size(args.size)
        ),
        "",
    );
    let mut ends = Tally::default();
    let mut waits = Vec::new();
    let mut kept = Vec::new();
    let mut open = 0;
    while let Some(client) = clients.join_next().await {
        match client? {
            Ok((bytes, end, tcp)) => {
                outcome.sent += bytes;
                kept.push(tcp);
                match end {
                    Stalled::NotSent(e) => ends.add(format!("not sent: {e}")),
                    Stalled::Ended(end, waited) => {
                        ends.add(end);
                        waits.push(waited.as_secs_f64());
                    }
                    Stalled::Open => {
                        open += 1;
                        ends.add(format!("still open after {} s", secs(args.duration)));
                    }
                }
            }
            Err(e) => ends.add(format!("upgrade: {e}")),
        }
    }
    // the server's memory with the clients it did not close still connected
    let rss_open = match args.pid {
        Some(pid) => Some(status_bytes(pid, "VmRSS:")?),
        None => None,
    };
    drop(kept);
    waits.sort_by(f64::total_cmp);
    let mut status = ends.to_string();
    if let (Some(lo), Some(hi)) = (waits.first(), waits.last()) {
        let _ = write!(
            status,
            "; the closes came {lo:.1}-{hi:.1} s into the silence"
        );
    }
    if let Some(rss) = rss_open.filter(|_| open > 0) {
        let _ = write!(
            status,
            "; server RSS {} with the {open} open one(s) still connected",
            size(rss as usize)
        );
    }
    outcome.status = status;
    outcome.str("ends", &ends.to_string());
    outcome.num("still_open", open);
    if let Some(rss) = rss_open {
        outcome.num("rss_at_end", rss);
    }
    Ok(outcome)
}

/// How a stalling client ended.
enum Stalled {
    /// Its partial message did not go out.
    NotSent(String),
    /// The server closed (the code), this long into the silence.
    Ended(String, Duration),
    /// Nothing came before the deadline.
    Open,
}

/// N connections each echo one `size`-byte message, then stay idle; the
/// server's memory per connection once all are up. `--raw`: a plain
/// connect and a 1-byte echo (against a raw TCP echo server).
async fn idle(args: &Args) -> Result<Outcome> {
    let pid = args
        .pid
        .ok_or("idle needs --pid (it measures the server)")?;
    let frame = Arc::new(frame(FIN | BINARY, &vec![0; args.size]));
    let expect = args.size as u64;
    let rss_base = settled_rss(pid).await?;
    let deadline = Instant::now() + args.duration;
    let gate = Arc::new(Semaphore::new(32));
    let mut conns = JoinSet::new();
    for n in 0..args.n {
        let (addr, frame, gate, raw) = (args.addr, frame.clone(), gate.clone(), args.raw);
        conns.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let setup = async {
                if raw {
                    let mut tcp = connect(addr, n).await.map_err(|e| io_label(&e))?;
                    tcp.write_all(b"x").await.map_err(|e| io_label(&e))?;
                    let mut one = [0u8; 1];
                    tcp.read_exact(&mut one).await.map_err(|e| io_label(&e))?;
                    return Ok((tcp, 1));
                }
                let (mut tcp, mut buf, _) = handshake(addr, n, "").await?;
                tcp.write_all(&frame).await.map_err(|e| io_label(&e))?;
                match read_frame(&mut tcp, &mut buf, 0).await {
                    Ok(Some(f)) if f.opcode() == BINARY && f.len == expect => {
                        Ok((tcp, frame.len() as u64))
                    }
                    Ok(Some(f)) => Err(f.label()),
                    Ok(None) => Err("eof".to_owned()),
                    Err(e) => Err(io_label(&e)),
                }
            };
            timeout_at(deadline, setup)
                .await
                .unwrap_or_else(|_| Err("not set up in time".to_owned()))
        });
    }
    let mut kept = Vec::with_capacity(args.n);
    let mut failed = Tally::default();
    let mut sent = 0;
    while let Some(conn) = conns.join_next().await {
        match conn? {
            Ok((tcp, bytes)) => {
                kept.push(tcp);
                sent += bytes;
            }
            Err(e) => failed.add(e),
        }
    }
    let rss_idle = settled_rss(pid).await?;
    let per_conn = rss_idle.saturating_sub(rss_base) / (kept.len().max(1) as u64);
    let what = if args.raw {
        "a connect and a 1-byte echo (raw TCP, no WebSocket)".to_owned()
    } else {
        format!("one {} echo", size(args.size))
    };
    let mut outcome = Outcome::new(
        format!("{} connections, each after {what}, then idle", args.n),
        if failed.is_empty() {
            format!(
                "{} set up; {} per connection",
                kept.len(),
                size(per_conn as usize)
            )
        } else {
            format!(
                "{} set up, failed: {failed}; {} per connection",
                kept.len(),
                size(per_conn as usize)
            )
        },
    );
    outcome.sent = sent;
    outcome.num("conns", kept.len());
    outcome.num("rss_base", rss_base);
    outcome.num("rss_idle", rss_idle);
    outcome.num("per_conn_bytes", per_conn);
    drop(kept);
    Ok(outcome)
}

/// One client writes Pings as fast as the server reads them and does not
/// read the Pongs; then it sends a Close and counts what comes back.
async fn ping_flood(args: &Args) -> Result<Outcome> {
    let ping = frame(FIN | PING, &vec![b'p'; args.size]);
    let per_chunk = (64 * KIB / ping.len()).max(1);
    let chunk = ping.repeat(per_chunk);
    let (mut tcp, mut buf, _) = handshake(args.addr, 0, "").await?;
    let start = Instant::now();
    let deadline = start + args.duration;
    let mut sent = Sent::default();
    let end = loop {
        if sent.bytes + chunk.len() as u64 > args.max_bytes {
            break "traffic cap".to_owned();
        }
        match timeout_at(deadline, write_counted(&mut tcp, &chunk, &mut sent)).await {
            Err(_) => break "the time bound".to_owned(),
            Ok(Err(e)) => break format!("write failed: {}", io_label(&e)),
            Ok(Ok(())) => {}
        }
    };
    let flood = start.elapsed();
    let pings = sent.bytes / ping.len() as u64;
    // a Ping cut short by the deadline is finished first, so the Close that
    // follows starts a frame of its own
    let cut = (sent.bytes % ping.len() as u64) as usize;
    if let Some(rest) = ping.get(cut..).filter(|_| cut > 0) {
        let finish = write_counted(&mut tcp, rest, &mut sent);
        if !matches!(timeout(Duration::from_secs(5), finish).await, Ok(Ok(()))) {
            return Err("could not finish the last Ping within 5 s".into());
        }
    }
    // then a Close: what comes back before the server's Close?
    let after = async {
        let mut pongs = 0u64;
        if let Err(e) = tcp.write_all(&close_frame(1000)).await {
            return (pongs, io_label(&e));
        }
        loop {
            match read_frame(&mut tcp, &mut buf, 125).await {
                Ok(Some(f)) if f.opcode() == PONG => pongs += 1,
                Ok(Some(f)) if f.opcode() == CLOSE => return (pongs, f.label()),
                Ok(Some(_)) => {}
                Ok(None) => return (pongs, "eof".to_owned()),
                Err(e) => return (pongs, io_label(&e)),
            }
        }
    };
    let (pongs, close) = timeout(Duration::from_secs(5), after)
        .await
        .unwrap_or((0, "no close within 5 s".to_owned()));
    let mut outcome = Outcome::new(
        format!(
            "1 client sends {}-byte Pings for {} s without reading the Pongs, then a Close",
            args.size,
            secs(args.duration)
        ),
        format!(
            "flood ended by {end}: {pings} Pings in {:.1} s ({:.0}/s); {pongs} Pongs read after; then {close}",
            flood.as_secs_f64(),
            pings as f64 / flood.as_secs_f64().max(1e-9)
        ),
    );
    outcome.sent = sent.bytes;
    outcome.num("pings", pings);
    outcome.num("pongs_after", pongs);
    outcome.str("close", &close);
    Ok(outcome)
}

/// N connections write their upgrade request one byte per second.
async fn slowloris(args: &Args) -> Result<Outcome> {
    let request = Arc::new(request(args.addr, "").into_bytes());
    let deadline = Instant::now() + args.duration;
    let mut conns = JoinSet::new();
    for n in 0..args.n {
        let (addr, request) = (args.addr, request.clone());
        conns.spawn(async move {
            let mut tcp = connect(addr, n).await.map_err(|e| io_label(&e))?;
            let start = Instant::now();
            let mut next = start;
            let mut written = 0usize;
            let mut answer = String::new();
            let mut buf = [0u8; 512];
            let end = loop {
                tokio::select! {
                    read = tcp.read(&mut buf) => match read {
                        Ok(0) => break "eof".to_owned(),
                        Ok(k) => {
                            if answer.is_empty() {
                                let text = String::from_utf8_lossy(buf.get(..k).unwrap_or_default());
                                answer = text.lines().next().unwrap_or_default().to_owned();
                            }
                        }
                        Err(e) => break io_label(&e),
                    },
                    () = sleep_until(next) => {
                        let Some(byte) = request.get(written..=written) else {
                            break "request complete".to_owned();
                        };
                        if let Err(e) = tcp.write_all(byte).await {
                            break format!("write: {}", io_label(&e));
                        }
                        written += 1;
                        next += Duration::from_secs(1);
                    }
                    () = sleep_until(deadline) => break "still open".to_owned(),
                }
            };
            let end = if answer.is_empty() {
                end
            } else {
                format!("{answer:?}, then {end}")
            };
            Ok::<_, String>((end, start.elapsed(), written))
        });
    }
    let mut ends = Tally::default();
    let mut lifetimes = Vec::new();
    let mut sent = 0;
    while let Some(conn) = conns.join_next().await {
        match conn? {
            Ok((end, lived, written)) => {
                if end != "still open" {
                    lifetimes.push(lived.as_secs_f64());
                }
                ends.add(end);
                sent += written as u64;
            }
            Err(e) => ends.add(format!("connect: {e}")),
        }
    }
    lifetimes.sort_by(f64::total_cmp);
    let mut outcome = Outcome::new(
        format!(
            "{} connections write their upgrade request 1 byte per second ({} s)",
            args.n,
            secs(args.duration)
        ),
        match (lifetimes.first(), lifetimes.last()) {
            (Some(lo), Some(hi)) => format!(
                "{ends}; ended after {lo:.1}-{hi:.1} s (p50 {:.1} s)",
                percentile(&lifetimes, 0.5)
            ),
            _ => ends.to_string(),
        },
    );
    outcome.sent = sent;
    outcome.str("ends", &ends.to_string());
    Ok(outcome)
}

/// Upgrade requests over the head limits, in turn: one huge header, many
/// small headers, a head that never ends; `-n` at a time.
async fn header_bomb(args: &Args) -> Result<Outcome> {
    let big = request(args.addr, &format!("X-Bomb: {}\r\n", "a".repeat(args.size)));
    let mut many = String::new();
    for i in 0..200 {
        let _ = write!(many, "X-Many-{i}: {i}\r\n");
    }
    let many = request(args.addr, &many);
    let mut endless = format!("GET / HTTP/1.1\r\nHost: {}\r\nX-Endless: ", args.addr);
    endless.push_str(&"a".repeat(64 * KIB));
    let variants: Arc<[(&str, Vec<u8>); 3]> = Arc::new([
        ("one huge header", big.into_bytes()),
        ("200 headers", many.into_bytes()),
        ("endless head", endless.into_bytes()),
    ]);
    let deadline = Instant::now() + args.duration;
    let next = Arc::new(AtomicUsize::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..args.n {
        let (addr, variants, next, written) =
            (args.addr, variants.clone(), next.clone(), written.clone());
        let max_bytes = args.max_bytes;
        workers.spawn(async move {
            let mut seen = Vec::new();
            while Instant::now() < deadline && written.load(Ordering::Relaxed) < max_bytes {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, bytes)) = variants.get(i % variants.len()) else {
                    break;
                };
                let answer = timeout(
                    Duration::from_secs(5),
                    send_and_answer(addr, i, bytes, &written),
                )
                .await
                .unwrap_or_else(|_| "no answer within 5 s".to_owned());
                seen.push((i % variants.len(), answer));
            }
            seen
        });
    }
    let mut tallies: Vec<Tally> = variants.iter().map(|_| Tally::default()).collect();
    while let Some(seen) = workers.join_next().await {
        for (variant, answer) in seen? {
            if let Some(tally) = tallies.get_mut(variant) {
                tally.add(answer);
            }
        }
    }
    let mut status = variants
        .iter()
        .zip(&tallies)
        .map(|((name, _), tally)| format!("{name}: {tally}"))
        .collect::<Vec<_>>()
        .join("; ");
    if written.load(Ordering::Relaxed) >= args.max_bytes {
        status.push_str(" (stopped early by the traffic cap)");
    }
    let mut outcome = Outcome::new(
        format!(
            "upgrade requests, {} at a time for {} s: one {} header / 200 headers / a 64 KiB head without its end",
            args.n,
            secs(args.duration),
            size(args.size)
        ),
        status,
    );
    outcome.sent = written.load(Ordering::Relaxed);
    outcome.num("requests", tallies.iter().map(|t| t.total()).sum::<u64>());
    Ok(outcome)
}

/// Writes `bytes` on a new connection while reading the answer; returns
/// the answer's status (or eof, reset...) as soon as it comes.
async fn send_and_answer(addr: SocketAddr, n: usize, bytes: &[u8], written: &AtomicU64) -> String {
    let mut tcp = match connect(addr, n).await {
        Ok(tcp) => tcp,
        Err(e) => return format!("connect: {}", io_label(&e)),
    };
    let (mut reader, mut writer) = tcp.split();
    let write = async {
        for chunk in bytes.chunks(16 * KIB) {
            if writer.write_all(chunk).await.is_err() {
                break;
            }
            written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        answer = read_answer(&mut reader) => answer.label(),
        () = write => unreachable!("pending"),
    }
}

/// One binary message in 1-byte fragments, `--size` of them (by default
/// past the server's 1,048,576-fragment limit).
async fn tiny_fragments(args: &Args) -> Result<Outcome> {
    let fragments = args.size.max(2);
    let first = frame(BINARY, b"f");
    let middle = frame(CONTINUATION, b"f");
    let last = frame(FIN | CONTINUATION, b"f");
    let per_chunk = 8192;
    let chunk = middle.repeat(per_chunk);
    let (mut tcp, mut buf, _) = handshake(args.addr, 0, "").await?;
    let start = Instant::now();
    let deadline = start + args.duration;
    let (mut reader, mut writer) = tcp.split();
    let mut sent = Sent::default();
    let write = async {
        write_counted(&mut writer, &first, &mut sent).await?;
        let mut left = fragments - 2;
        while left > 0 {
            let k = left.min(per_chunk);
            let bytes = chunk.get(..k * middle.len()).unwrap_or_default();
            write_counted(&mut writer, bytes, &mut sent).await?;
            left -= k;
        }
        write_counted(&mut writer, &last, &mut sent).await?;
        std::io::Result::Ok(())
    };
    let read = async {
        loop {
            match read_frame(&mut reader, &mut buf, 125).await {
                Ok(Some(f)) if f.opcode() == BINARY => {
                    return format!("echoed ({} bytes)", f.len);
                }
                Ok(Some(f)) if f.opcode() == CLOSE => return f.label(),
                Ok(Some(_)) => {}
                Ok(None) => return "eof".to_owned(),
                Err(e) => return io_label(&e),
            }
        }
    };
    let (end, written_all) = timeout_at(deadline, async {
        tokio::pin!(read);
        tokio::select! {
            end = &mut read => (end, false),
            wrote = write => match wrote {
                // all written: wait for the answer
                Ok(()) => (read.await, true),
                Err(e) => (format!("write failed: {}", io_label(&e)), false),
            },
        }
    })
    .await
    .unwrap_or_else(|_| ("nothing by the end".to_owned(), false));
    let took = start.elapsed();
    let written = sent.bytes.saturating_sub(first.len() as u64) / middle.len() as u64 + 1;
    let mut outcome = Outcome::new(
        format!(
            "1 client sends one binary message as {fragments} fragments of 1 byte ({} on the wire)",
            size(fragments * middle.len())
        ),
        format!(
            "{end} after {:.0} ms, {written} fragments written{}",
            took.as_secs_f64() * 1000.0,
            if written_all { " (all)" } else { "" }
        ),
    );
    outcome.sent = sent.bytes;
    outcome.num("fragments_written", written);
    outcome.str("close", &end);
    Ok(outcome)
}

/// N connections, 10 at a time, each upgrading; the upgraded ones are held
/// for the duration (with `tether serve --max-connections`, the rest get
/// 503).
async fn max_connections(args: &Args) -> Result<Outcome> {
    let deadline = Instant::now() + args.duration;
    let gate = Arc::new(Semaphore::new(10));
    let mut conns = JoinSet::new();
    for n in 0..args.n {
        let (addr, gate) = (args.addr, gate.clone());
        conns.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            match timeout(Duration::from_secs(5), handshake(addr, n, "")).await {
                Ok(Ok((tcp, _, _))) => Ok(tcp),
                Ok(Err(e)) => Err(e),
                Err(_) => Err("no answer within 5 s".to_owned()),
            }
        });
    }
    let mut kept = Vec::new();
    let mut answers = Tally::default();
    while let Some(conn) = conns.join_next().await {
        match conn? {
            Ok(tcp) => {
                kept.push(tcp);
                answers.add("101".to_owned());
            }
            Err(e) => answers.add(e),
        }
    }
    let upgraded = kept.len();
    sleep_until(deadline).await;
    for tcp in &mut kept {
        let _ = timeout(
            Duration::from_millis(100),
            tcp.write_all(&close_frame(1000)),
        )
        .await;
    }
    drop(kept);
    let mut outcome = Outcome::new(
        format!(
            "{} connections upgrade, 10 at a time; the upgraded ones are held {} s",
            args.n,
            secs(args.duration)
        ),
        format!("answers: {answers}"),
    );
    outcome.num("upgraded", upgraded);
    outcome.num(
        "refused_503",
        answers.0.get("503").copied().unwrap_or_default(),
    );
    Ok(outcome)
}

/// Connections offering permessage-deflate, one after another, each sending
/// one compressed message of zeros that inflates to `--size`.
async fn deflate_bomb(args: &Args) -> Result<Outcome> {
    let compressed = deflate_zeros(args.size)?;
    let bomb = frame(FIN | RSV1 | BINARY, &compressed);
    let start = Instant::now();
    let deadline = start + args.duration;
    let mut ends = Tally::default();
    let mut sent = 0;
    let mut bombs = 0;
    let mut waits = Vec::new();
    while bombs < args.n && Instant::now() < deadline {
        bombs += 1;
        let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
        let (mut tcp, mut buf, head) = match handshake(args.addr, bombs, offer).await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                ends.add(format!("upgrade: {e}"));
                continue;
            }
        };
        if !head.to_ascii_lowercase().contains("permessage-deflate") {
            return Err("the server declined permessage-deflate (run it with --deflate)".into());
        }
        let (mut reader, mut writer) = tcp.split();
        let mut out = Sent::default();
        let write = async {
            let wrote = write_counted(&mut writer, &bomb, &mut out).await;
            (wrote, Instant::now())
        };
        let end = timeout(Duration::from_secs(10), async {
            tokio::pin!(write);
            let until = until_close(&mut reader, &mut buf);
            tokio::pin!(until);
            let mut wrote_at = None;
            loop {
                tokio::select! {
                    end = &mut until => return (end, wrote_at),
                    (wrote, at) = &mut write, if wrote_at.is_none() => {
                        if let Err(e) = wrote {
                            return (format!("write failed: {}", io_label(&e)), None);
                        }
                        wrote_at = Some(at);
                    }
                }
            }
        })
        .await;
        sent += out.bytes;
        match end {
            Ok((end, wrote_at)) => {
                if let Some(at) = wrote_at {
                    waits.push(at.elapsed().as_secs_f64() * 1000.0);
                }
                ends.add(end);
            }
            Err(_) => ends.add("no close within 10 s".to_owned()),
        }
    }
    waits.sort_by(f64::total_cmp);
    let mut outcome = Outcome::new(
        format!(
            "{bombs} connections one after another, each one permessage-deflate message of {} inflating to {} of zeros",
            size(compressed.len()),
            size(args.size)
        ),
        format!(
            "{ends}; the close came {:.0} ms (p50) after the last byte",
            percentile(&waits, 0.5)
        ),
    );
    outcome.sent = sent;
    outcome.num("bombs", bombs);
    outcome.num("compressed_bytes", compressed.len());
    outcome.num(
        "attack_secs_bombs",
        format!("{:.2}", start.elapsed().as_secs_f64()),
    );
    outcome.str("ends", &ends.to_string());
    Ok(outcome)
}

/// `inflated` zeros as one raw deflate stream (level 9), ended by a sync
/// flush whose `00 00 ff ff` is removed (RFC 7692 section 7.2.1).
fn deflate_zeros(inflated: usize) -> Result<Vec<u8>> {
    let zeros = vec![0u8; MIB];
    let mut compress = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(inflated / 512 + 1024);
    let mut left = inflated;
    while left > 0 {
        let input = zeros.get(..left.min(MIB)).unwrap_or_default();
        let before = compress.total_in();
        while compress.total_in() - before < input.len() as u64 {
            let done = (compress.total_in() - before) as usize;
            out.reserve(64 * KIB);
            compress.compress_vec(
                input.get(done..).unwrap_or_default(),
                &mut out,
                FlushCompress::None,
            )?;
        }
        left -= input.len();
    }
    loop {
        out.reserve(64 * KIB);
        let before = out.len();
        compress.compress_vec(&[], &mut out, FlushCompress::Sync)?;
        if out.len() == before || out.len() < out.capacity() {
            break;
        }
    }
    if !out.ends_with(&[0x00, 0x00, 0xff, 0xff]) {
        return Err("deflate did not end with a sync flush".into());
    }
    out.truncate(out.len() - 4);
    Ok(out)
}

// ----- the probe ---------------------------------------------------------------------------

/// What the probe and the new clients saw during the attack.
#[derive(Default)]
struct ProbeReport {
    /// Each echo sent, with its round trip if it came back.
    echoes: Vec<Option<Duration>>,
    /// How the probe's connection ended, if it did before the end.
    ended: Option<String>,
    /// Each new client: its connect + upgrade + echo time, or what it got.
    new_conns: Vec<Result<Duration, String>>,
}

impl ProbeReport {
    fn write(&self, line: &mut Json) {
        let mut ms: Vec<f64> = self
            .echoes
            .iter()
            .flatten()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let lost = self.echoes.iter().filter(|e| e.is_none()).count();
        let over = lost + ms.iter().filter(|&&m| m > 100.0).count();
        line.num("echoes", self.echoes.len());
        line.num("echo_p50_ms", format!("{:.2}", percentile(&ms, 0.5)));
        line.num("echo_p99_ms", format!("{:.2}", percentile(&ms, 0.99)));
        line.num(
            "echo_max_ms",
            format!("{:.2}", ms.last().copied().unwrap_or(0.0)),
        );
        line.num("echo_lost", lost);
        line.num("echo_over_100ms", over);
        line.num(
            "echo_over_share",
            format!("{:.4}", over as f64 / self.echoes.len().max(1) as f64),
        );
        match &self.ended {
            Some(how) => line.str("probe_ended", how),
            None => line.raw("probe_ended", "null".to_owned()),
        }
        let mut new_ms: Vec<f64> = self
            .new_conns
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        new_ms.sort_by(f64::total_cmp);
        let mut failed = Tally::default();
        for conn in &self.new_conns {
            if let Err(e) = conn {
                failed.add(e.clone());
            }
        }
        line.num("new_conns", self.new_conns.len());
        line.num("new_conn_ok", new_ms.len());
        line.num(
            "new_conn_max_ms",
            format!("{:.2}", new_ms.last().copied().unwrap_or(0.0)),
        );
        line.str("new_conn_failed", &failed.to_string());
    }
}

/// The probe's thread: a client that echoes every 100 ms, and a new client
/// every second.
struct Probe {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<ProbeReport>,
}

impl Probe {
    /// Starts the probe and returns once its connection is up.
    fn start(addr: SocketAddr) -> Result<Self> {
        let (stop, stop_rx) = watch::channel(false);
        let (ready, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("probe".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(probe(addr, stop_rx, ready)),
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        ProbeReport::default()
                    }
                }
            })?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(Self { stop, thread }),
            Ok(Err(e)) => Err(format!("the probe could not connect: {e}").into()),
            Err(_) => Err("the probe did not connect within 10 s".into()),
        }
    }

    /// Stops sending, waits briefly for echoes under way, and reports.
    fn stop(self) -> ProbeReport {
        let _ = self.stop.send(true);
        self.thread.join().unwrap_or_default()
    }
}

async fn probe(
    addr: SocketAddr,
    mut stop: watch::Receiver<bool>,
    ready: mpsc::Sender<Result<(), String>>,
) -> ProbeReport {
    let mut report = ProbeReport::default();
    let (mut tcp, mut buf) = match timeout(Duration::from_secs(5), handshake(addr, 0, "")).await {
        Ok(Ok((tcp, buf, _))) => (tcp, buf),
        Ok(Err(e)) => {
            let _ = ready.send(Err(e));
            return report;
        }
        Err(_) => {
            let _ = ready.send(Err("no answer within 5 s".to_owned()));
            return report;
        }
    };
    let _ = ready.send(Ok(()));
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut echo_tick = interval(ECHO_EVERY);
    echo_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut conn_tick = interval(NEW_CONN_EVERY);
    conn_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut new_conns = JoinSet::new();
    let mut stopping: Option<Instant> = None;
    'run: loop {
        buf.reserve(4 * KIB);
        let grace = async move {
            match stopping {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            read = tcp.read_buf(&mut buf) => match read {
                Ok(0) => {
                    report.ended = Some("eof".to_owned());
                    break;
                }
                Err(e) => {
                    report.ended = Some(io_label(&e));
                    break;
                }
                Ok(_) => {
                    while let Some(f) = take_frame(&mut buf) {
                        match f.opcode() {
                            BINARY => {
                                let seq = f.payload.get(..8).and_then(|s| <[u8; 8]>::try_from(s).ok());
                                let seq = seq.map_or(usize::MAX, |s| u64::from_be_bytes(s) as usize);
                                if let (Some(at), Some(echo)) = (sent_at.get(seq), report.echoes.get_mut(seq)) {
                                    *echo = Some(at.elapsed());
                                }
                            }
                            PING => {
                                if let Err(e) = tcp.write_all(&frame(FIN | PONG, &f.payload)).await {
                                    report.ended = Some(io_label(&e));
                                    break 'run;
                                }
                            }
                            CLOSE => {
                                report.ended = Some(f.label());
                                break 'run;
                            }
                            _ => {}
                        }
                    }
                }
            },
            () = grace => break,
            _ = stop.changed(), if stopping.is_none() => {
                stopping = Some(Instant::now() + PROBE_GRACE);
            }
            _ = echo_tick.tick(), if stopping.is_none() => {
                let seq = sent_at.len() as u64;
                let mut payload = seq.to_be_bytes().to_vec();
                payload.extend_from_slice(b"probe!!!");
                sent_at.push(Instant::now());
                report.echoes.push(None);
                if let Err(e) = tcp.write_all(&frame(FIN | BINARY, &payload)).await {
                    report.ended = Some(format!("write: {}", io_label(&e)));
                    break;
                }
            }
            _ = conn_tick.tick(), if stopping.is_none() => {
                new_conns.spawn(new_connection(addr));
            }
        }
    }
    if report.ended.is_none() {
        let _ = timeout(
            Duration::from_millis(100),
            tcp.write_all(&close_frame(1000)),
        )
        .await;
    }
    while let Some(conn) = new_conns.join_next().await {
        report
            .new_conns
            .push(conn.unwrap_or_else(|e| Err(e.to_string())));
    }
    report
}

/// A new client: connect, upgrade, one echo; the time it all took.
async fn new_connection(addr: SocketAddr) -> Result<Duration, String> {
    let start = Instant::now();
    let attempt = async {
        let (mut tcp, mut buf, _) = handshake(addr, 1, "").await?;
        tcp.write_all(&frame(FIN | BINARY, b"new connection"))
            .await
            .map_err(|e| io_label(&e))?;
        loop {
            match read_frame(&mut tcp, &mut buf, 125).await {
                Ok(Some(f)) if f.opcode() == BINARY => break,
                Ok(Some(f)) if f.opcode() == CLOSE => return Err(f.label()),
                Ok(Some(_)) => {}
                Ok(None) => return Err("eof".to_owned()),
                Err(e) => return Err(io_label(&e)),
            }
        }
        let took = start.elapsed();
        let _ = tcp.write_all(&close_frame(1000)).await;
        Ok(took)
    };
    timeout(NEW_CONN_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err("no echo within 5 s".to_owned()))
}

// ----- the server's process ------------------------------------------------------------------

/// The server's `VmRSS` once it stops moving: sampled every 250 ms until
/// two samples in a row differ by less than 64 KiB (at most 5 s).
async fn settled_rss(pid: u32) -> Result<u64> {
    let mut last = status_bytes(pid, "VmRSS:")?;
    for _ in 0..20 {
        sleep(Duration::from_millis(250)).await;
        let now = status_bytes(pid, "VmRSS:")?;
        if now.abs_diff(last) < 64 * KIB as u64 {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Samples the server's `VmRSS` every 20 ms on a thread of its own; the
/// highest sample when stopped.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Monitor {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                if let Ok(rss) = status_bytes(pid, "VmRSS:") {
                    peak = peak.max(rss);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        Self { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

// ----- the client side of the protocol, by hand ----------------------------------------------

/// Connects from 127.0.0.`(1 + n % 16)`, with `TCP_NODELAY`.
async fn connect(addr: SocketAddr, n: usize) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    let source = Ipv4Addr::new(127, 0, 0, 1 + (n % usize::from(SOURCE_ADDRS)) as u8);
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// An upgrade request (RFC 6455 section 4.1), with `extra` header lines.
fn request(addr: SocketAddr, extra: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Connects and upgrades: the socket, what came after the 101's head, and
/// the head; or what came instead (`503`, `eof`, `reset`...).
async fn handshake(
    addr: SocketAddr,
    n: usize,
    extra: &str,
) -> Result<(TcpStream, BytesMut, String), String> {
    let mut tcp = connect(addr, n)
        .await
        .map_err(|e| format!("connect: {}", io_label(&e)))?;
    tcp.write_all(request(addr, extra).as_bytes())
        .await
        .map_err(|e| io_label(&e))?;
    match read_answer(&mut tcp).await {
        Answer::Status {
            code: 101,
            head,
            rest,
        } => {
            if head.contains(ACCEPT) {
                Ok((tcp, rest, head))
            } else {
                Err("101 without the expected accept key".to_owned())
            }
        }
        other => Err(other.label()),
    }
}

/// What came back for a request.
enum Answer {
    /// A response head: its status, the head, and the bytes after it.
    Status {
        code: u16,
        head: String,
        rest: BytesMut,
    },
    /// The connection ended before any byte came.
    Eof,
    /// Anything else: a reset, a head that makes no sense...
    Other(String),
}

impl Answer {
    fn label(&self) -> String {
        match self {
            Answer::Status { code, .. } => code.to_string(),
            Answer::Eof => "eof".to_owned(),
            Answer::Other(what) => what.clone(),
        }
    }
}

/// Reads an HTTP response head.
async fn read_answer<R: AsyncRead + Unpin>(reader: &mut R) -> Answer {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = buf.split_to(end + 4);
            let head = String::from_utf8_lossy(&head).into_owned();
            let code = head
                .strip_prefix("HTTP/1.1 ")
                .and_then(|s| s.get(..3))
                .and_then(|s| s.parse().ok());
            return match code {
                Some(code) => Answer::Status {
                    code,
                    head,
                    rest: buf,
                },
                None => Answer::Other(format!("not HTTP: {:?}", head.lines().next())),
            };
        }
        if buf.len() > 64 * KIB {
            return Answer::Other("a response head over 64 KiB".to_owned());
        }
        buf.reserve(4 * KIB);
        match reader.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() => return Answer::Eof,
            Ok(0) => return Answer::Other("eof inside the response head".to_owned()),
            Ok(_) => {}
            Err(e) => return Answer::Other(io_label(&e)),
        }
    }
}

/// A masked frame (client to server) with this first byte (FIN, RSV,
/// opcode) and payload.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 14);
    out.push(first);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    let start = out.len();
    out.extend_from_slice(payload);
    for (byte, key) in out.iter_mut().skip(start).zip(MASK.iter().cycle()) {
        *byte ^= key;
    }
    out
}

fn close_frame(code: u16) -> Vec<u8> {
    frame(FIN | CLOSE, &code.to_be_bytes())
}

/// A frame from the server: its first byte, its payload length, and the
/// first bytes of its payload (as many as the reader kept).
struct Frame {
    first: u8,
    len: u64,
    payload: Vec<u8>,
}

impl Frame {
    fn opcode(&self) -> u8 {
        self.first & 0x0f
    }

    /// `close 1009`, `close (no code)`, or the opcode.
    fn label(&self) -> String {
        match self.opcode() {
            CLOSE => match self.payload.get(..2) {
                Some(&[hi, lo]) => format!("close {}", u16::from_be_bytes([hi, lo])),
                _ => "close (no code)".to_owned(),
            },
            op => format!("opcode {op}"),
        }
    }
}

/// A frame header at the start of `bytes`: first byte, payload length and
/// header length, once all of the header is there.
fn parse_header(bytes: &[u8]) -> Option<(u8, u64, usize)> {
    let (&first, rest) = bytes.split_first()?;
    let &second = rest.first()?;
    let (len, mut header) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    if second & 0x80 != 0 {
        // a server must not mask (RFC 6455 section 5.1); skip the key
        header += 4;
    }
    (bytes.len() >= header).then_some((first, len, header))
}

/// A whole frame from the start of `buf`, if all of it is there.
fn take_frame(buf: &mut BytesMut) -> Option<Frame> {
    let (first, len, header) = parse_header(buf)?;
    let total = header.checked_add(usize::try_from(len).ok()?)?;
    if buf.len() < total {
        return None;
    }
    buf.advance(header);
    let payload = buf.split_to(total - header).to_vec();
    Some(Frame {
        first,
        len,
        payload,
    })
}

/// The next frame, keeping the first `keep` bytes of its payload and
/// skipping the rest as it streams by; `None` at a clean end of stream.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    keep: usize,
) -> std::io::Result<Option<Frame>> {
    let (first, len, header) = loop {
        if let Some(parsed) = parse_header(buf) {
            break parsed;
        }
        buf.reserve(64 * KIB);
        if reader.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
    };
    buf.advance(header);
    let mut left = len;
    let mut payload = Vec::new();
    loop {
        let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let chunk = buf.split_to(take);
        let room = keep.saturating_sub(payload.len()).min(chunk.len());
        payload.extend_from_slice(chunk.get(..room).unwrap_or_default());
        left -= take as u64;
        if left == 0 {
            return Ok(Some(Frame {
                first,
                len,
                payload,
            }));
        }
        buf.reserve(64 * KIB);
        if reader.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Reads (and drops) frames until the server's Close: its code, or how the
/// stream ended instead.
async fn until_close<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut BytesMut) -> String {
    loop {
        match read_frame(reader, buf, 125).await {
            Ok(Some(f)) if f.opcode() == CLOSE => return f.label(),
            Ok(Some(_)) => {}
            Ok(None) => return "eof".to_owned(),
            Err(e) => return io_label(&e),
        }
    }
}

/// Bytes written so far, and when the last of them went.
#[derive(Default)]
struct Sent {
    bytes: u64,
    last: Option<Instant>,
}

/// `write_all`, counting each write as it completes (so a write cut short
/// by a timeout still counts what went).
async fn write_counted<W: AsyncWrite + Unpin>(
    writer: &mut W,
    data: &[u8],
    sent: &mut Sent,
) -> std::io::Result<()> {
    let mut off = 0;
    while let Some(rest) = data.get(off..).filter(|r| !r.is_empty()) {
        let n = writer.write(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        off += n;
        sent.bytes += n as u64;
        sent.last = Some(Instant::now());
    }
    Ok(())
}

/// Short names for the errors an attacker sees.
fn io_label(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionReset => "reset".to_owned(),
        ErrorKind::BrokenPipe => "broken pipe".to_owned(),
        ErrorKind::ConnectionRefused => "refused".to_owned(),
        ErrorKind::UnexpectedEof => "eof".to_owned(),
        _ => e.to_string(),
    }
}

// ----- small things --------------------------------------------------------------------

/// How many times each outcome was seen, most frequent first when shown.
#[derive(Default)]
struct Tally(BTreeMap<String, u64>);

impl Tally {
    fn add(&mut self, what: String) {
        *self.0.entry(what).or_default() += 1;
    }

    fn total(&self) -> u64 {
        self.0.values().sum()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut entries: Vec<_> = self.0.iter().collect();
        entries.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let total = self.total();
        for (i, (what, count)) in entries.into_iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{count}/{total} {what}")?;
        }
        Ok(())
    }
}

/// The value at quantile `q` of sorted `values` (nearest rank); 0 if none.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or(0.0)
}

/// `16 MiB`, `260.3 KiB`, `17 B`.
fn size(bytes: usize) -> String {
    let b = bytes as f64;
    if bytes >= MIB {
        trim(format!("{:.1}", b / MIB as f64)) + " MiB"
    } else if bytes >= KIB {
        trim(format!("{:.1}", b / KIB as f64)) + " KiB"
    } else {
        format!("{bytes} B")
    }
}

fn trim(s: String) -> String {
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

fn secs(d: Duration) -> String {
    trim(format!("{:.1}", d.as_secs_f64()))
}

/// A JSON object written field by field.
#[derive(Default)]
struct Json(String);

impl Json {
    fn raw(&mut self, key: &str, value: String) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0.push_str(&json_string(key));
        self.0.push(':');
        self.0.push_str(&value);
    }

    fn num(&mut self, key: &str, value: impl std::fmt::Display) {
        self.raw(key, value.to_string());
    }

    fn str(&mut self, key: &str, value: &str) {
        self.raw(key, json_string(value));
    }

    fn opt(&mut self, key: &str, value: Option<u64>) {
        self.raw(key, value.map_or("null".to_owned(), |v| v.to_string()));
    }

    fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn frames_round_trip_through_the_header_parser() {
        for len in [0, 125, 126, 65535, 65536] {
            let f = frame(FIN | BINARY, &vec![7; len]);
            let (first, parsed, header) = parse_header(&f).unwrap();
            assert_eq!((first, parsed), (FIN | BINARY, len as u64));
            // masked: key after the length
            assert_eq!(f.len(), header + len);
            let unmasked: Vec<u8> = f[header..]
                .iter()
                .zip(MASK.iter().cycle())
                .map(|(b, k)| b ^ k)
                .collect();
            assert!(unmasked.iter().all(|&b| b == 7));
        }
    }

    #[test]
    fn deflate_zeros_inflates_to_the_size() {
        let compressed = deflate_zeros(3 * MIB + 5).unwrap();
        let mut input = compressed.clone();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut inflate = flate2::Decompress::new(false);
        let mut out = Vec::with_capacity(4 * MIB);
        inflate
            .decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
            .unwrap();
        assert_eq!(out.len(), 3 * MIB + 5);
        assert!(out.iter().all(|&b| b == 0));
        assert!(compressed.len() < 8 * KIB, "{}", compressed.len());
    }

    #[test]
    fn sizes_and_tallies_read_well() {
        assert_eq!(parse_bytes("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("4MB").is_err());
        assert_eq!(size(16 * MIB), "16 MiB");
        assert_eq!(size(1536), "1.5 KiB");
        let mut tally = Tally::default();
        tally.add("431".into());
        tally.add("431".into());
        tally.add("reset".into());
        assert_eq!(tally.to_string(), "2/3 431, 1/3 reset");
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.99), 4.0);
    }
}
