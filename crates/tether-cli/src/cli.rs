//! The command line: subcommands, flags and their help text (clap derive),
//! and the translation of flags into a `tether::Config`.
//!
//! Owns argument parsing and validation only: a value that parses here is
//! one the connection accepts (close codes, reason length, durations).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tether::reconnect::ReconnectPolicy;
use tether::{CloseCode, Config, KeepAlive, MAX_CLOSE_REASON};

/// A WebSocket (RFC 6455) server and client for the terminal.
///
/// `tether serve` runs an echo or broadcast server; `tether connect URL`
/// opens an interactive client that sends each stdin line as a text message
/// and prints what arrives.
#[derive(Debug, Parser)]
#[command(
    name = "tether",
    version,
    propagate_version = true,
    after_help = "Examples:\n  \
        tether serve                                  # echo server on ws://127.0.0.1:9001\n  \
        tether serve --mode broadcast -v              # relay \"echo <text>\" to every client, log connections\n  \
        tether connect ws://127.0.0.1:9001            # type lines, see the answers\n  \
        printf 'a\\nb\\n' | tether connect ws://127.0.0.1:9001\n  \
        tether connect --reconnect -v --intentional-code 4000 ws://127.0.0.1:9001   # come back after every close but 4000\n  \
        tether connect --echo 'ws://127.0.0.1:9001/runCase?case=1&agent=tether'   # for conformance suites"
)]
pub(crate) struct Cli {
    /// More output: -v logs connections (serve) or shows pings, pongs and the
    /// close (connect; with --reconnect, also the clean closes we asked for:
    /// each connect, retry and other disconnect is shown anyway);
    /// -vv adds debug logs, -vvv trace. RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a WebSocket server (echo or broadcast) until Ctrl-C.
    ///
    /// Prints `tether: listening on ws://ADDR (MODE)` to stderr once it
    /// accepts connections. Ctrl-C (or SIGTERM) closes every connection with
    /// 1001 (going away) and exits 0; a second Ctrl-C exits at once.
    Serve(Box<ServeArgs>),
    /// Connect to a WebSocket server: stdin lines are sent as text messages,
    /// received messages are printed to stdout.
    ///
    /// When stdin ends the client waits `--wait` seconds for answers, closes
    /// (with `--close-code`, default 1000), waits for the server's Close and
    /// exits. Exit status: 0 a normal end (our close, or the server's clean
    /// 1000, 1001 or 1005); 1 the command failed (stdin, stdout, a line not
    /// sent); 2 bad usage; 3 never connected (refused, handshake failed);
    /// 4 the server closed cleanly with another code (1011, 4000...);
    /// 5 an abnormal end (1006, a timeout, a protocol error); 130 a second
    /// Ctrl-C (or one before the connection is up: nothing to close yet).
    ///
    /// With `--reconnect` the client comes back after every close (a killed
    /// server, a lost network, a server's 1001 ...) with exponential backoff
    /// and full jitter, except after a close code marked with
    /// `--intentional-code`, and until `--max-attempts` attempts in a row
    /// failed. Lines read while disconnected wait (up to `--queue` lines
    /// and `--queue-bytes` bytes) and go
    /// out in order after reconnecting; when stdin ends, the client first
    /// sends what waits, then closes. Exit status: 0 after our own close or
    /// an intentional code; 1 when a line could not be sent or lines were
    /// still waiting at the end; 3 when it gave up before any connection
    /// came up, 5 when it gave up after one had. Every connect, retry and
    /// disconnect is shown on stderr (`-v` adds the clean closes we asked
    /// for).
    Connect(Box<ConnectArgs>),
    /// Print a shell completion script, e.g.
    /// `tether completions bash > /etc/bash_completion.d/tether`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `tether man | man -l -`.
    Man,
}

/// What `tether serve` does with messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// Send every message back to its sender as it came (text stays text,
    /// binary stays binary).
    Echo,
    /// Greet each client with `connection established`, then relay each
    /// text message to every client as `echo <text>` (binary as is).
    Broadcast,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Broadcast => "broadcast",
        }
    }
}

/// `tether serve` flags.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the startup line
    /// shows the one chosen).
    #[arg(long, default_value = "127.0.0.1:9001", value_name = "HOST:PORT")]
    pub(crate) addr: SocketAddr,

    /// What to do with received messages.
    #[arg(long, value_enum, default_value_t = Mode::Echo)]
    pub(crate) mode: Mode,

    /// Broadcast: bytes of messages that may wait for one slow client
    /// before it is closed with 1008 (policy violation), so it never holds
    /// up the others (one message always fits; each counts its payload and
    /// 64 bytes for its place in the queue). Default 8 MiB.
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) queue_bytes: u64,

    /// Most clients connected at once; past it a new client takes the slot
    /// of the oldest unfinished handshake, and gets HTTP 503 before any
    /// upgrade only when every slot holds an established connection
    /// (counted and logged once per episode). Over HTTP/2 or HTTP/3 each
    /// WebSocket counts: the first holds its connection's slot for as long
    /// as the connection lasts, each other one a slot of its own, and one
    /// past the limit gets 503 on its stream; a connection carries at most
    /// 100 WebSockets at once (`Config::transport_max_streams`); a QUIC
    /// connection past the limit is refused with CONNECTION_REFUSED.
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_connections: u32,

    /// Bytes of received messages not yet handled that all connections
    /// together may hold; while they do, no connection reads more
    /// (backpressure across the server). Default 256 MiB.
    #[arg(long, default_value_t = 256 << 20, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) budget_bytes: u64,

    /// Seconds the budget may stay spent before the connection holding the
    /// most of it is closed with 1013 (try again later) and its unread
    /// messages dropped. Default 5.
    #[arg(long, default_value = "5", value_name = "SECS", value_parser = parse_secs)]
    pub(crate) budget_timeout: Duration,

    /// Serve wss://: the certificate chain, PEM (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,

    /// Serve wss://: the private key, PEM (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,

    /// Serve wss:// with a certificate made at startup for localhost and
    /// 127.0.0.1 (for local use): its PEM is written to a file whose path
    /// and SHA-256 fingerprint are printed, for `connect --ca FILE`.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub(crate) tls_self_signed: bool,

    /// Mutual TLS: require every client to present a certificate signed by
    /// a CA in this PEM file (a client without one, or with another CA's,
    /// fails the TLS handshake); repeatable. Needs --tls-cert or
    /// --tls-self-signed.
    #[arg(long, value_name = "FILE")]
    pub(crate) client_ca: Vec<std::path::PathBuf>,

    /// Serve WebSockets over HTTP/2 too (RFC 8441: extended CONNECT, many
    /// on one connection), beside HTTP/1.1 on the same port: with TLS the
    /// client picks by ALPN (h2), without it by the HTTP/2 preface (prior
    /// knowledge).
    #[arg(long)]
    pub(crate) http2: bool,

    /// Serve WebSockets over HTTP/3 too (RFC 9220: QUIC, many on one
    /// connection), on the UDP port of the same number. QUIC is always
    /// TLS: needs --tls-cert/--tls-key or --tls-self-signed. Its
    /// WebSockets share --budget-bytes; its connections share
    /// --max-connections with TCP's (one that finds every slot established
    /// is refused with CONNECTION_REFUSED).
    #[arg(long)]
    pub(crate) http3: bool,

    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
}

/// `tether connect` flags.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The server, `ws://host[:port][/path]` or `wss://...`.
    pub(crate) url: String,

    /// Send every received message back (text or binary) instead of reading
    /// stdin: an echo client that conformance suites can drive.
    #[arg(long)]
    pub(crate) echo: bool,

    /// Print binary messages as hex instead of `<binary N bytes>`.
    #[arg(long)]
    pub(crate) hex: bool,

    /// Print every event as one JSON object per line on stdout (message,
    /// ping, pong, connected, closed; with --reconnect: message, connected,
    /// disconnected, which carries each connection's close, connect_failed,
    /// reconnecting, stopped), for pipelines and monitors. Errors stay
    /// plain text on stderr.
    #[arg(long)]
    pub(crate) jsonl: bool,

    /// Offer a subprotocol (Sec-WebSocket-Protocol); repeat for more, in
    /// order of preference.
    #[arg(long, value_name = "NAME")]
    pub(crate) subprotocol: Vec<String>,

    /// Add a request header, e.g. `--header 'Authorization: Bearer abc'`;
    /// repeatable.
    #[arg(long, value_name = "NAME: VALUE", value_parser = parse_header)]
    pub(crate) header: Vec<(String, String)>,

    /// Send this Origin header (as a browser would).
    #[arg(long)]
    pub(crate) origin: Option<String>,

    /// Close code sent when stdin ends: 1000-1003, 1007-1014 or 3000-4999.
    #[arg(long, default_value_t = 1000, value_name = "CODE", value_parser = parse_close_code)]
    pub(crate) close_code: u16,

    /// Close reason sent when stdin ends (at most 123 bytes of UTF-8).
    #[arg(long, default_value = "", value_name = "TEXT", value_parser = parse_close_reason)]
    pub(crate) close_reason: String,

    /// Seconds to keep receiving after stdin ends, before closing, so the
    /// server can answer the last lines (a server answers our Close at once
    /// and sends nothing after it). 0 closes at once; so does an empty stdin.
    #[arg(long, default_value = "0.5", value_name = "SECS", value_parser = parse_wait)]
    pub(crate) wait: Duration,

    /// Reconnect after the connection ends, as long as the policy below
    /// allows (see `tether help connect`).
    #[arg(long)]
    pub(crate) reconnect: bool,

    /// With --reconnect: give up after this many failed attempts in a row
    /// (a connection that stays up 30 s resets the count). Default: never.
    #[arg(long, value_name = "N", requires = "reconnect", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_attempts: Option<u32>,

    /// With --reconnect: the longest wait before an attempt, in seconds
    /// (waits start at up to 0.5 s and double). Default 30.
    #[arg(long, value_name = "SECS", requires = "reconnect", value_parser = parse_secs)]
    pub(crate) max_delay: Option<Duration>,

    /// With --reconnect: a close code from the server that means "do not
    /// come back" (e.g. 4000); repeatable. The client then stops and exits 0.
    #[arg(long, value_name = "CODE", requires = "reconnect", value_parser = parse_close_code)]
    pub(crate) intentional_code: Vec<u16>,

    /// With --reconnect: lines kept while disconnected, sent in order after
    /// reconnecting. A line beyond is refused (an error on stderr, exit 1);
    /// 0 refuses every line while disconnected.
    #[arg(
        long,
        default_value_t = 100,
        value_name = "LINES",
        requires = "reconnect"
    )]
    pub(crate) queue: usize,

    /// With --reconnect: bytes of lines kept while disconnected; a line
    /// that would take them past it is refused (an error on stderr, exit
    /// 1), unless none waits: one longer line may wait alone.
    #[arg(
        long = "queue-bytes",
        default_value_t = tether::reconnect::QueueLimit::DEFAULT_BYTES,
        value_name = "BYTES",
        requires = "reconnect"
    )]
    pub(crate) reconnect_queue_bytes: usize,

    /// Trust the certificates in this PEM file for wss:// too (a private
    /// CA, or a self-signed server certificate); repeatable.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Vec<std::path::PathBuf>,

    /// wss:// without checking the server's certificate: encrypted, but
    /// anyone on the path can pose as the server. For testing only.
    #[arg(long, conflicts_with = "ca")]
    pub(crate) insecure: bool,

    /// Connect through this proxy: http://[user:password@]host[:port]
    /// (CONNECT), socks5://... (the target resolved here) or socks5h://...
    /// (resolved by the proxy). Without it, https_proxy/HTTPS_PROXY
    /// (wss://), http_proxy/HTTP_PROXY (ws://), ALL_PROXY and NO_PROXY are
    /// honoured, as curl does; -v shows the choice.
    #[arg(long, value_name = "URL", value_parser = parse_proxy, conflicts_with = "no_proxy")]
    pub(crate) proxy: Option<tether::handshake::proxy::ProxyUrl>,

    /// Connect directly, ignoring the proxy environment variables.
    #[arg(long)]
    pub(crate) no_proxy: bool,

    /// Mutual TLS: present this client certificate (PEM, the chain) when a
    /// wss:// server asks for one (with --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub(crate) cert: Option<std::path::PathBuf>,

    /// Mutual TLS: the private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<std::path::PathBuf>,

    /// Connect over HTTP/2 (RFC 8441 extended CONNECT): wss:// asks for h2
    /// by TLS ALPN, ws:// speaks it with prior knowledge. A server without
    /// HTTP/2 or without extended CONNECT is an error naming which, unless
    /// --http1-fallback. Through a proxy as HTTP/1.1 is.
    #[arg(long, group = "over", conflicts_with = "reconnect")]
    pub(crate) http2: bool,

    /// Connect over HTTP/3 (RFC 9220 extended CONNECT on QUIC, UDP to the
    /// URL's port); wss:// only, as QUIC is always TLS (--ca and
    /// --insecure apply). A server without HTTP/3 or without extended
    /// CONNECT is an error naming which, unless --http1-fallback. Not
    /// through a proxy (QUIC is UDP): one the environment chooses is an
    /// error naming it (--no-proxy), or with --http1-fallback HTTP/1.1
    /// goes through it.
    #[arg(long, group = "over", conflicts_with_all = ["proxy", "reconnect"])]
    pub(crate) http3: bool,

    /// With --http2 or --http3: when the server does not offer it or
    /// extended CONNECT, connect over HTTP/1.1 instead (-v says so).
    #[arg(long, requires = "over")]
    pub(crate) http1_fallback: bool,

    /// Seconds reaching the server may take: TCP (through a proxy), and
    /// TLS for wss://, as one deadline.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = parse_secs)]
    pub(crate) connect_timeout: Duration,

    /// An application-level heartbeat: after this many idle seconds (no
    /// message either way) send --heartbeat-message, for servers and
    /// proxies that ignore Ping/Pong.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub(crate) heartbeat: Option<Duration>,

    /// The heartbeat's text (with --heartbeat).
    #[arg(
        long,
        default_value = "ping",
        value_name = "TEXT",
        requires = "heartbeat"
    )]
    pub(crate) heartbeat_message: String,

    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
}

impl ConnectArgs {
    /// The client's `Config`: the connection flags plus the heartbeat.
    pub(crate) fn config(&self) -> Config {
        let mut config = self.connection.config();
        config.heartbeat = self.heartbeat.map(|interval| tether::Heartbeat {
            interval,
            message: tether::Message::text(self.heartbeat_message.clone()),
        });
        config
    }

    /// The reconnect policy: the defaults, with these flags applied.
    pub(crate) fn policy(&self) -> ReconnectPolicy {
        let defaults = ReconnectPolicy::default();
        ReconnectPolicy {
            max_attempts: self.max_attempts,
            max_delay: self.max_delay.unwrap_or(defaults.max_delay),
            intentional_codes: self
                .intentional_code
                .iter()
                .map(|&code| CloseCode::new(code))
                .collect(),
            ..defaults
        }
    }
}

/// The keep-alive policy, as in `tether::KeepAlive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeepAliveMode {
    /// Send nothing of our own accord.
    Off,
    /// An empty unsolicited Pong after each idle --interval (keeps NATs and
    /// proxies from cutting an idle line).
    Pong,
    /// A Ping after each idle --interval; no matching Pong within --timeout
    /// ends the connection (1006): dead-peer detection.
    Ping,
}

/// Connection flags shared by both subcommands.
#[derive(Debug, Args)]
pub(crate) struct ConnectionArgs {
    /// Keep-alive policy of each connection. Default: off for `connect`
    /// (some servers drop a client for unsolicited frames), ping for
    /// `serve` (dead clients are found and their memory freed).
    #[arg(long, value_enum)]
    pub(crate) keepalive: Option<KeepAliveMode>,

    /// Keep-alive: idle seconds before each Ping or Pong (fractions
    /// allowed). Default 30. Needs a keep-alive (`--keepalive` for
    /// `connect`, where it is off by default).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub(crate) interval: Option<Duration>,

    /// Keep-alive ping: seconds to wait for the matching Pong. Default 10.
    /// Needs `--keepalive ping` (the default for `serve`).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub(crate) timeout: Option<Duration>,

    /// Largest message accepted, in bytes; a bigger one closes the
    /// connection with 1009 (message too big). Default 64 MiB for
    /// `connect`, 16 MiB for `serve`. `connect` also sends no stdin line
    /// longer than this (it is reported and skipped, exit status 1).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_message: Option<u64>,

    /// Seconds the opening handshake may take: `connect`, once the server
    /// is reached; `serve`, from the connection accepted to the 101, TLS
    /// included.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = parse_secs)]
    pub(crate) handshake_timeout: Duration,

    /// Seconds a message the peer began may go without more of its bytes
    /// before the connection fails with 1008 (a stalled sender); 0: no
    /// limit.
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = parse_wait)]
    pub(crate) message_timeout: Duration,

    /// Seconds bytes queued for the peer may wait with none of them taken
    /// (a peer that reads nothing) before the connection is aborted (1006);
    /// 0: no limit.
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = parse_wait)]
    pub(crate) send_timeout: Duration,

    /// Seconds without a data message either way before the connection is
    /// closed with 1001 ("idle timeout"); 0 (the default): no limit.
    #[arg(long, default_value = "0", value_name = "SECS", value_parser = parse_wait)]
    pub(crate) idle_timeout: Duration,

    /// permessage-deflate (RFC 7692): `connect` offers it, `serve` accepts
    /// a client's offer; messages of 32 bytes or more are then compressed.
    /// Off by default.
    #[arg(long)]
    pub(crate) deflate: bool,

    /// permessage-deflate: the largest LZ77 window, as a power of two
    /// (9-15), for both directions: smaller windows hold less memory per
    /// connection and compress a little less. Default 15.
    #[arg(long, default_value_t = 15, value_name = "BITS", value_parser = clap::value_parser!(u8).range(9..=15), requires = "deflate")]
    pub(crate) deflate_window_bits: u8,

    /// permessage-deflate: reset the compression contexts after every
    /// message, both ways (RFC 7692 section 7.1.1), so an idle connection
    /// holds none; costs some ratio.
    #[arg(long, requires = "deflate")]
    pub(crate) deflate_no_context_takeover: bool,
}

/// Largest message `tether serve` accepts unless `--max-message` says
/// otherwise: 16 MiB, the largest the Autobahn suite sends (case 9.1.6),
/// against the library's 64 MiB (Python websockets: 1 MiB, Node ws: 100
/// MiB), so each client can make the server hold a quarter as much.
pub(crate) const SERVE_MAX_MESSAGE: usize = 16 << 20;

impl ConnectionArgs {
    /// The client's `Config` (`connect`): defaults, with these flags
    /// applied; keep-alive off unless asked.
    pub(crate) fn config(&self) -> Config {
        self.config_with(KeepAliveMode::Off, None)
    }

    /// The server's `Config` (`serve`): keep-alive Pings unless
    /// `--keepalive` says otherwise, messages up to [`SERVE_MAX_MESSAGE`].
    pub(crate) fn server_config(&self) -> Config {
        self.config_with(KeepAliveMode::Ping, Some(SERVE_MAX_MESSAGE))
    }

    /// Why `--interval` or `--timeout` would do nothing under the
    /// keep-alive in force (`default` when `--keepalive` is not given):
    /// refused as bad usage rather than silently ignored.
    pub(crate) fn unused_keepalive_flags(&self, default: KeepAliveMode) -> Option<&'static str> {
        match self.keepalive.unwrap_or(default) {
            KeepAliveMode::Off if self.interval.is_some() || self.timeout.is_some() => Some(
                "--interval and --timeout set a keep-alive, and it is off: add --keepalive ping (or pong)",
            ),
            KeepAliveMode::Pong if self.timeout.is_some() => Some(
                "--timeout is how long a keep-alive Ping waits for its Pong: it needs --keepalive ping",
            ),
            _ => None,
        }
    }

    fn config_with(&self, keepalive: KeepAliveMode, max_message: Option<usize>) -> Config {
        let mut config = Config {
            handshake_timeout: self.handshake_timeout,
            message_timeout: (!self.message_timeout.is_zero()).then_some(self.message_timeout),
            send_timeout: (!self.send_timeout.is_zero()).then_some(self.send_timeout),
            idle_timeout: (!self.idle_timeout.is_zero()).then_some(self.idle_timeout),
            keep_alive: match self.keepalive.unwrap_or(keepalive) {
                KeepAliveMode::Off => KeepAlive::Off,
                KeepAliveMode::Pong => KeepAlive::Pong {
                    interval: self.interval.unwrap_or(KeepAlive::DEFAULT_INTERVAL),
                },
                KeepAliveMode::Ping => KeepAlive::Ping {
                    interval: self.interval.unwrap_or(KeepAlive::DEFAULT_INTERVAL),
                    timeout: self.timeout.unwrap_or(KeepAlive::DEFAULT_PONG_WAIT),
                },
            },
            ..Config::default()
        };
        let max_message = self
            .max_message
            .map(|max| usize::try_from(max).unwrap_or(usize::MAX))
            .or(max_message);
        if self.deflate {
            config.deflate = Some(tether::DeflateConfig {
                server_max_window_bits: self.deflate_window_bits,
                client_max_window_bits: self.deflate_window_bits,
                server_no_context_takeover: self.deflate_no_context_takeover,
                client_no_context_takeover: self.deflate_no_context_takeover,
                ..tether::DeflateConfig::default()
            });
        }
        if let Some(max) = max_message {
            // the frame limit too, as far as such a message takes on the
            // wire (compressed, a little more)
            config.limit_message_size(max);
        }
        config
    }
}

/// A proxy URL (`http://`, `socks5://`, `socks5h://`, with user and
/// password if any).
fn parse_proxy(s: &str) -> Result<tether::handshake::proxy::ProxyUrl, String> {
    tether::handshake::proxy::ProxyUrl::parse(s).map_err(|e| e.to_string())
}

/// A positive number of seconds, fractions allowed ("30", "0.25").
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number of seconds, found {s:?}"))?;
    if secs <= 0.0 {
        return Err("must be more than 0 seconds".into());
    }
    let wait = Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))?;
    // 1e-10 is more than 0 but rounds to no wait at all
    if wait.is_zero() {
        return Err(format!("{s:?} rounds to no wait at all"));
    }
    Ok(wait)
}

/// Like [`parse_secs`], but 0 is allowed.
fn parse_wait(s: &str) -> Result<Duration, String> {
    if s.trim().parse::<f64>() == Ok(0.0) {
        return Ok(Duration::ZERO);
    }
    parse_secs(s)
}

/// `Name: value` (the value may be empty or contain colons).
fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("expected `Name: value`, found {s:?} (no colon)"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("expected `Name: value`, found {s:?} (no name)"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// A close code that may be sent (RFC 6455 section 7.4).
fn parse_close_code(s: &str) -> Result<u16, String> {
    let code: u16 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a close code (a number), found {s:?}"))?;
    let close = CloseCode::new(code);
    if close.is_valid_on_wire() {
        Ok(code)
    } else {
        Err(format!(
            "{close} may not be sent in a Close frame; use 1000-1003, 1007-1014 or 3000-4999 \
             (RFC 6455 section 7.4)"
        ))
    }
}

fn parse_close_reason(s: &str) -> Result<String, String> {
    if s.len() > MAX_CLOSE_REASON {
        Err(format!(
            "the reason is {} bytes; a Close frame holds at most {MAX_CLOSE_REASON}",
            s.len()
        ))
    } else {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_accept_fractions_and_refuse_zero() {
        assert_eq!(parse_secs("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
        // more than 0, but no wait once rounded
        assert!(parse_secs("1e-10").is_err());
        assert_eq!(parse_wait("0"), Ok(Duration::ZERO));
        assert_eq!(parse_wait("1.5"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn headers_split_at_the_first_colon() {
        assert_eq!(
            parse_header("Authorization: Bearer a:b"),
            Ok(("Authorization".into(), "Bearer a:b".into()))
        );
        assert_eq!(parse_header("X-Empty:"), Ok(("X-Empty".into(), "".into())));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": value").is_err());
    }

    #[test]
    fn close_codes_that_may_not_be_sent_are_refused() {
        assert_eq!(parse_close_code("1000"), Ok(1000));
        assert_eq!(parse_close_code("4999"), Ok(4999));
        let err = parse_close_code("1005").unwrap_err();
        assert!(err.contains("1005 (no status code received)"), "{err}");
        assert!(parse_close_code("1006").is_err());
        assert!(parse_close_code("70000").is_err());
        assert!(parse_close_reason(&"x".repeat(124)).is_err());
        assert!(parse_close_reason(&"x".repeat(123)).is_ok());
    }

    #[test]
    fn deflate_flag_switches_permessage_deflate_on_for_both_commands() {
        for command in ["serve", "connect"] {
            let mut argv = vec!["tether", command, "--deflate"];
            if command == "connect" {
                argv.push("ws://127.0.0.1:9001/");
            }
            let cli = Cli::try_parse_from(argv).unwrap();
            let connection = match cli.command {
                Command::Serve(args) => args.connection,
                Command::Connect(args) => args.connection,
                other => panic!("{other:?}"),
            };
            assert_eq!(
                connection.config().deflate,
                Some(tether::DeflateConfig::default())
            );
        }
    }

    #[test]
    fn deflate_memory_flags_make_the_config() {
        let cli = Cli::try_parse_from([
            "tether",
            "serve",
            "--deflate",
            "--deflate-window-bits",
            "10",
            "--deflate-no-context-takeover",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let deflate = args.connection.server_config().deflate.unwrap();
        assert_eq!(
            (
                deflate.server_max_window_bits,
                deflate.client_max_window_bits
            ),
            (10, 10)
        );
        assert!(deflate.server_no_context_takeover && deflate.client_no_context_takeover);
        // without --deflate the memory flags are refused
        assert!(Cli::try_parse_from(["tether", "serve", "--deflate-window-bits", "10"]).is_err());
    }

    #[test]
    fn keepalive_flags_make_the_config() {
        let cli = Cli::try_parse_from([
            "tether",
            "serve",
            "--keepalive",
            "ping",
            "--interval",
            "2",
            "--timeout",
            "0.5",
            "--max-message",
            "1000",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let config = args.connection.config();
        assert_eq!(
            config.keep_alive,
            KeepAlive::Ping {
                interval: Duration::from_secs(2),
                timeout: Duration::from_millis(500)
            }
        );
        assert_eq!(config.max_message_size, 1000);
        assert_eq!(config.max_frame_size, 1000);
        assert_eq!(config.deflate, None);
        // with permessage-deflate, a message within the limit may take a
        // little more on the wire (the core's allowance)
        let cli =
            Cli::try_parse_from(["tether", "serve", "--deflate", "--max-message", "1000"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let config = args.connection.config();
        assert_eq!(config.max_message_size, 1000);
        assert_eq!(config.max_frame_size, 1000 + 64);
        // without the flags, serve pings with the core's defaults
        let Command::Serve(plain) = Cli::try_parse_from(["tether", "serve"]).unwrap().command
        else {
            panic!("not serve")
        };
        assert_eq!(
            plain.connection.server_config().keep_alive,
            KeepAlive::DEFAULT_PING
        );
        assert_eq!(args.mode, Mode::Echo);
        assert_eq!(args.addr, "127.0.0.1:9001".parse().unwrap());
    }

    /// The flags' defaults are the library's, where the CLI does not mean
    /// to differ (keep-alive, and `serve`'s message size, are its own):
    /// they are written twice, once for `--help`, so this holds them
    /// together.
    #[test]
    fn flag_defaults_are_the_library_defaults() {
        let library = Config::default();
        let Command::Connect(connect) = Cli::try_parse_from(["tether", "connect", "ws://x/"])
            .unwrap()
            .command
        else {
            panic!("not connect")
        };
        let Command::Serve(serve) = Cli::try_parse_from(["tether", "serve"]).unwrap().command
        else {
            panic!("not serve")
        };
        for config in [connect.config(), serve.connection.server_config()] {
            assert_eq!(config.handshake_timeout, library.handshake_timeout);
            assert_eq!(config.message_timeout, library.message_timeout);
            assert_eq!(config.send_timeout, library.send_timeout);
            assert_eq!(config.idle_timeout, library.idle_timeout);
            assert_eq!(config.close_timeout, library.close_timeout);
            assert_eq!(config.max_unread_bytes, library.max_unread_bytes);
        }
        assert_eq!(connect.config().max_message_size, library.max_message_size);
        assert_eq!(connect.connect_timeout, library.connect_timeout);
        assert_eq!(serve.budget_timeout, library.budget_timeout);
        let Command::Serve(deflating) = Cli::try_parse_from(["tether", "serve", "--deflate"])
            .unwrap()
            .command
        else {
            panic!("not serve")
        };
        assert_eq!(
            deflating.connection.server_config().deflate,
            Some(tether::DeflateConfig::default())
        );
    }

    #[test]
    fn reconnect_flags_make_the_policy_and_need_reconnect() {
        let cli = Cli::try_parse_from([
            "tether",
            "connect",
            "--reconnect",
            "--max-attempts",
            "3",
            "--max-delay",
            "2.5",
            "--intentional-code",
            "4000",
            "--intentional-code",
            "4001",
            "--queue",
            "7",
            "--queue-bytes",
            "4096",
            "ws://x/",
        ])
        .unwrap();
        let Command::Connect(args) = cli.command else {
            panic!("not connect")
        };
        assert!(args.reconnect);
        assert_eq!(args.queue, 7);
        assert_eq!(args.reconnect_queue_bytes, 4096);
        let policy = args.policy();
        assert_eq!(policy.max_attempts, Some(3));
        assert_eq!(policy.max_delay, Duration::from_millis(2500));
        assert_eq!(
            policy.intentional_codes,
            [CloseCode::new(4000), CloseCode::new(4001)]
        );
        assert_eq!(
            policy.initial_delay,
            ReconnectPolicy::default().initial_delay
        );

        // defaults: never give up, 30 s cap, no intentional code, 100
        // lines of at most 16 MiB
        let cli = Cli::try_parse_from(["tether", "connect", "--reconnect", "ws://x/"]).unwrap();
        let Command::Connect(args) = cli.command else {
            panic!("not connect")
        };
        assert_eq!(args.queue, 100);
        assert_eq!(args.reconnect_queue_bytes, 16 << 20);
        assert_eq!(args.policy(), ReconnectPolicy::default());
        let cli = Cli::try_parse_from(["tether", "connect", "ws://x/"]).unwrap();
        let Command::Connect(args) = cli.command else {
            panic!("not connect")
        };
        assert!(!args.reconnect);

        for flags in [
            &["--max-attempts", "3"][..],
            &["--max-delay", "1"],
            &["--intentional-code", "4000"],
            &["--queue", "5"],
            &["--queue-bytes", "5"],
        ] {
            let mut argv = vec!["tether", "connect"];
            argv.extend_from_slice(flags);
            argv.push("ws://x/");
            let err = Cli::try_parse_from(argv).unwrap_err();
            assert!(err.to_string().contains("--reconnect"), "{flags:?}: {err}");
        }
        for bad in [
            &["--max-attempts", "0"][..],
            &["--max-delay", "0"],
            &["--intentional-code", "1006"],
        ] {
            let mut argv = vec!["tether", "connect", "--reconnect"];
            argv.extend_from_slice(bad);
            argv.push("ws://x/");
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn verbose_is_global() {
        let cli = Cli::try_parse_from(["tether", "connect", "ws://x/", "-v", "--verbose"]).unwrap();
        assert_eq!(cli.verbose, 2);
        let cli = Cli::try_parse_from(["tether", "-v", "serve"]).unwrap();
        assert_eq!(cli.verbose, 1);
    }
}
