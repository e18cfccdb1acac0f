//! Loopback echo over HTTP/1.1, HTTP/2 and HTTP/3 side by side: the same
//! tether-tokio echo server and client, 64 WebSockets each, over 64 TCP
//! connections (HTTP/1.1 upgrade), over one HTTP/2 connection (RFC 8441,
//! cleartext prior knowledge) and over one QUIC connection (RFC 9220, TLS
//! 1.3 with a certificate made for the run).
//!
//! ```sh
//! multiplex [--protocols h1,h2,h3] [--sockets 64] [--sizes 16,1024,16384]
//!           [--warmup 0.5] [--duration 3] [--rounds 3] [--core 1] [--server-core 0]
//! ```
//!
//! For each round, protocol and size it starts a server (this binary with
//! `--serve`, pinned to `--server-core`, a current-thread runtime) and
//! runs the client here (pinned to `--core`, a current-thread runtime):
//! every WebSocket sends a binary message, waits for its echo and sends
//! the next (64 in flight in all). Only echoes completed inside the
//! measured window (after `--warmup`, for `--duration`) count: messages/s,
//! and p50/p99 round trip from an HDR histogram. Prints one JSON object a
//! line on stdout (`"kind":"multiplex"`); progress goes to stderr. The
//! protocols alternate within each round (h1 h2 h3 h1 h2 h3 ...).
//!
//! What differs between the rows is only the transport under the same
//! `Connection` and driver: a TCP socket per WebSocket, an h2 stream
//! (h2's framing and flow control, one TCP connection), or an h3 request
//! stream (quinn's QUIC over UDP, with its encryption, on one UDP socket).

use std::cell::RefCell;
use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use tether::Message;
use tether_tokio::http2::{Http2Client, Http2Server};
use tether_tokio::http3::{Http3Client, Http3Server, server_endpoint};
use tether_tokio::{ClientOptions, ServerOptions, WebSocket};

type Res<T> = Result<T, Box<dyn Error>>;

struct Args {
    protocols: Vec<String>,
    sockets: usize,
    sizes: Vec<usize>,
    warmup: Duration,
    duration: Duration,
    rounds: usize,
    core: usize,
    server_core: usize,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        protocols: vec!["h1".into(), "h2".into(), "h3".into()],
        sockets: 64,
        sizes: vec![16, 1024, 16384],
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(3),
        rounds: 3,
        core: 1,
        server_core: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--protocols" => {
                args.protocols = value()?.split(',').map(str::to_owned).collect();
            }
            "--sockets" => args.sockets = value()?.parse()?,
            "--sizes" => {
                args.sizes = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--warmup" => args.warmup = Duration::from_secs_f64(value()?.parse()?),
            "--duration" => args.duration = Duration::from_secs_f64(value()?.parse()?),
            "--rounds" => args.rounds = value()?.parse()?,
            "--core" => args.core = value()?.parse()?,
            "--server-core" => args.server_core = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    for p in &args.protocols {
        if !["h1", "h2", "h3"].contains(&p.as_str()) {
            return Err(format!("unknown protocol {p} (h1, h2 or h3)").into());
        }
    }
    Ok(args)
}

fn pin(core: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        eprintln!("multiplex: cannot pin to core {core}; running unpinned");
    }
}

fn runtime() -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn main() -> Res<()> {
    let mut raw = std::env::args().skip(1);
    if raw.next().as_deref() == Some("--serve") {
        // --serve PROTOCOL CORE CERT KEY
        let protocol = raw.next().ok_or("--serve needs a protocol")?;
        let core: usize = raw.next().ok_or("--serve needs a core")?.parse()?;
        let cert = PathBuf::from(raw.next().ok_or("--serve needs a certificate")?);
        let key = PathBuf::from(raw.next().ok_or("--serve needs a key")?);
        pin(core);
        return runtime()?.block_on(serve(&protocol, &cert, &key));
    }
    let args = parse_args()?;
    let folder = std::env::temp_dir().join(format!("tether-multiplex-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let (cert, key) = (folder.join("cert.pem"), folder.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem())?;
    std::fs::write(&key, certified.key_pair.serialize_pem())?;
    let trusted = certified.cert.der().clone();
    pin(args.core);
    let rt = runtime()?;
    for round in 1..=args.rounds {
        for &size in &args.sizes {
            for protocol in &args.protocols {
                let server = Server::start(protocol, args.server_core, &cert, &key)?;
                let options = ClientOptions::new().add_root_certificate(trusted.clone());
                let result = rt.block_on(measure(protocol, server.port, &options, size, &args));
                drop(server);
                let m = result?;
                eprintln!(
                    "multiplex: round {round} {protocol} {size} B: {:.0} msg/s, p50 {} µs, p99 {} µs",
                    m.per_sec, m.p50_us, m.p99_us
                );
                println!(
                    "{{\"kind\":\"multiplex\",\"round\":{round},\"protocol\":\"{}\",\"sockets\":{},\"connections\":{},\"size\":{size},\"messages\":{},\"messages_per_sec\":{:.1},\"p50_us\":{},\"p99_us\":{}}}",
                    name(protocol),
                    args.sockets,
                    if protocol == "h1" { args.sockets } else { 1 },
                    m.count,
                    m.per_sec,
                    m.p50_us,
                    m.p99_us
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}

fn name(protocol: &str) -> &'static str {
    match protocol {
        "h1" => "http/1.1",
        "h2" => "h2",
        _ => "h3",
    }
}

/// A server process, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(protocol: &str, core: usize, cert: &Path, key: &Path) -> Res<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .arg(protocol)
            .arg(core.to_string())
            .arg(cert)
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port = line
            .trim()
            .strip_prefix("listening ")
            .ok_or_else(|| format!("server said {line:?}"))?
            .parse()?;
        Ok(Self { child, port })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The echo server of one protocol on 127.0.0.1: prints `listening PORT`
/// and echoes every message of every WebSocket until killed.
async fn serve(protocol: &str, cert: &Path, key: &Path) -> Res<()> {
    let options = ServerOptions::new();
    let say = |port: u16| -> Res<()> {
        let mut out = std::io::stdout();
        writeln!(out, "listening {port}")?;
        out.flush()?;
        Ok(())
    };
    if protocol == "h3" {
        let chain = tether_tokio::tls::load_certificates(cert)?;
        let key = tether_tokio::tls::load_private_key(key)?;
        let tls = tether_tokio::tls::server_config(chain, key, None)?;
        let endpoint = server_endpoint("127.0.0.1:0".parse()?, &tls, options.connection())?;
        say(endpoint.local_addr()?.port())?;
        while let Some(incoming) = endpoint.accept().await {
            let options = options.clone();
            tokio::spawn(async move {
                let Ok(mut server) = Http3Server::handshake(incoming, &options).await else {
                    return;
                };
                while let Some(next) = server.accept().await {
                    if let Ok((ws, _)) = next {
                        tokio::spawn(echo(ws));
                    }
                }
            });
        }
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    say(listener.local_addr()?.port())?;
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let options = options.clone();
        if protocol == "h2" {
            tokio::spawn(async move {
                let Ok(mut server) = Http2Server::handshake(tcp, &options).await else {
                    return;
                };
                while let Some(next) = server.accept().await {
                    if let Ok((ws, _)) = next {
                        tokio::spawn(echo(ws));
                    }
                }
            });
        } else {
            tokio::spawn(async move {
                if let Ok((ws, _)) = tether_tokio::accept(tcp, &options).await {
                    echo(ws).await;
                }
            });
        }
    }
}

async fn echo(mut ws: WebSocket) {
    while let Some(Ok(m)) = ws.next().await {
        if ws.send(m).await.is_err() {
            break;
        }
    }
}

struct Measured {
    count: u64,
    per_sec: f64,
    p50_us: u64,
    p99_us: u64,
}

/// Opens the sockets, runs the closed loop, closes them.
async fn measure(
    protocol: &str,
    port: u16,
    options: &ClientOptions,
    size: usize,
    args: &Args,
) -> Res<Measured> {
    let mut sockets = Vec::with_capacity(args.sockets);
    // kept for the run: the connection the WebSockets share
    let mut _h2 = None;
    let mut _h3 = None;
    match protocol {
        "h1" => {
            let url = format!("ws://127.0.0.1:{port}/");
            for _ in 0..args.sockets {
                sockets.push(tether_tokio::connect(&url, options).await?.0);
            }
        }
        "h2" => {
            let url = format!("ws://127.0.0.1:{port}/");
            let client = Http2Client::connect(&url, options).await?;
            for _ in 0..args.sockets {
                sockets.push(client.open(&url, options).await?.0);
            }
            _h2 = Some(client);
        }
        _ => {
            let url = format!("wss://localhost:{port}/");
            let client = Http3Client::connect(&url, options).await?;
            for _ in 0..args.sockets {
                sockets.push(client.open(&url, options).await?.0);
            }
            _h3 = Some(client);
        }
    }
    let histogram = Rc::new(RefCell::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let start = Instant::now();
    let (from, until) = (start + args.warmup, start + args.warmup + args.duration);
    let payload = bytes::Bytes::from(vec![0x5a; size]);
    let local = tokio::task::LocalSet::new();
    let mut tasks = Vec::new();
    for mut ws in sockets {
        let (histogram, payload) = (histogram.clone(), payload.clone());
        tasks.push(local.spawn_local(async move {
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                ws.send(Message::binary(payload.clone()))
                    .await
                    .map_err(|e| e.to_string())?;
                match ws.next().await {
                    Some(Ok(back)) if back.as_bytes().len() == payload.len() => {}
                    other => return Err(format!("echo failed: {other:?}")),
                }
                let done = Instant::now();
                if done >= from && done < until {
                    let micros = done.duration_since(sent).as_micros();
                    let _ = histogram
                        .borrow_mut()
                        .record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
                }
            }
            let _ = ws.close(tether::CloseCode::NORMAL, "").await;
            Ok::<_, String>(())
        }));
    }
    local
        .run_until(async {
            for t in tasks {
                t.await??;
            }
            Ok::<_, Box<dyn Error>>(())
        })
        .await?;
    let h = histogram.borrow();
    Ok(Measured {
        count: h.len(),
        per_sec: h.len() as f64 / args.duration.as_secs_f64(),
        p50_us: h.value_at_quantile(0.5),
        p99_us: h.value_at_quantile(0.99),
    })
}
