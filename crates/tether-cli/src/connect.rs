//! `tether connect URL`: an interactive client (`--reconnect`: see
//! [`crate::reconnect`]).
//!
//! Two tasks share the connection. The reader (this module's `run`) prints
//! every event and waits for the final close; the writer owns the sending
//! half and sends stdin lines (or, with `--echo`, what the reader hands it),
//! then closes. Keeping them apart means a server that answers while we are
//! still sending never finds us not reading: no write/write deadlock.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tether::handshake::ClientConfig;
use tether::{CloseCode, Event, Initiator, Message};
use tether_tokio::{ClientOptions, WsSink};
use tokio::io::{AsyncBufReadExt, BufReader, Stdin};
use tokio::sync::{mpsc, oneshot};

use crate::Interrupts;
use crate::cli::ConnectArgs;
use crate::exit;
use crate::jsonl;
use crate::show;
use crate::stderr::say;
use crate::unclean;

/// The proxy to connect through: `--proxy`, else the environment's unless
/// `--no-proxy` (shown with `-v`).
fn proxy(
    args: &ConnectArgs,
    options: ClientOptions,
    verbose: bool,
) -> Result<ClientOptions, tether::handshake::proxy::ProxyError> {
    use tether::handshake::proxy::{EnvProxy, proxy_from_env};
    if let Some(proxy) = &args.proxy {
        if verbose {
            say!("tether: through the proxy {proxy} (--proxy)");
        }
        return Ok(options.proxy(proxy.clone()));
    }
    // a bad URL is reported by the connect itself
    let Ok(url) = tether::handshake::WsUrl::parse(&args.url) else {
        return Ok(options);
    };
    if args.no_proxy {
        return Ok(options.no_proxy());
    }
    match proxy_from_env(url.is_secure(), url.host(), url.port(), |name| {
        std::env::var(name).ok()
    })? {
        EnvProxy::Use { proxy, variable } => {
            if verbose {
                say!("tether: through the proxy {proxy} (from {variable})");
            }
            Ok(options.proxy(proxy))
        }
        EnvProxy::Bypassed { variable } => {
            if verbose {
                say!("tether: no proxy for {} ({variable})", url.host());
            }
            Ok(options)
        }
        EnvProxy::Unset => Ok(options),
    }
}

/// Messages the reader may hand the writer with `--echo`: one, as the
/// reader waits until each echo is sent before it reads on.
const ECHO_QUEUE: usize = 1;

/// Connects, runs the session, and returns the exit code (see
/// [`crate::exit`]: 0 normal end, 1 the command failed, 3 never connected,
/// 4 the server closed with a code that says why, 5 an abnormal end, 130
/// a second Ctrl-C).
pub(crate) async fn run(args: ConnectArgs, verbose: bool) -> ExitCode {
    if let Some(why) = args
        .connection
        .unused_keepalive_flags(crate::cli::KeepAliveMode::Off)
    {
        say!("tether: {why}");
        return exit::code(exit::USAGE);
    }
    let mut handshake = ClientConfig::new();
    for name in &args.subprotocol {
        handshake = handshake.subprotocol(name);
    }
    for (name, value) in &args.header {
        handshake = handshake.header(name, value);
    }
    if let Some(origin) = &args.origin {
        handshake = handshake.origin(origin);
    }
    let mut options = ClientOptions::new()
        .config(args.config())
        .handshake(handshake)
        .connect_timeout(args.connect_timeout);
    for path in &args.ca {
        match tether_tokio::tls::load_certificates(path) {
            Ok(certs) => {
                for cert in certs {
                    options = options.add_root_certificate(cert);
                }
            }
            Err(e) => {
                say!("tether: {e}");
                return exit::code(exit::USAGE);
            }
        }
    }
    let mut identity = None;
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        match crate::tls::client_identity(cert, key) {
            Ok((chain, key)) => {
                identity = Some(tether_tokio::tls::ClientIdentity::new(
                    chain.clone(),
                    key.clone_key(),
                ));
                options = options.client_certificate(chain, key);
            }
            Err(e) => {
                say!("tether: {e}");
                return exit::code(exit::USAGE);
            }
        }
    }
    if args.insecure {
        say!(
            "tether: WARNING: --insecure: the server's certificate is not checked; \
             anyone on the path can read and change this connection"
        );
        match tether_tokio::tls::insecure_client_config(identity.as_ref()) {
            Ok(config) => options = options.tls_config(config),
            Err(e) => {
                say!("tether: {e}");
                return exit::code(exit::FAILED);
            }
        }
    }
    options = match proxy(&args, options, verbose) {
        Ok(options) => options,
        Err(e) => {
            say!("tether: {e}");
            return exit::code(exit::USAGE);
        }
    };
    if args.reconnect {
        return crate::reconnect::run(args, options, verbose).await;
    }

    let mut interrupts = Interrupts::new();
    let connected = tokio::select! {
        connected = crate::http3::connect(&args, &options, verbose) => connected,
        () = interrupts.next() => return exit::code(exit::INTERRUPTED),
    };
    let (ws, accepted) = match connected {
        Ok(connected) => connected,
        Err(e) => return exit::not_connected(&args.url, &e),
    };
    let failed = Arc::new(AtomicBool::new(false));
    let mut stdout = Stdout::new();
    // stdout gone already (the session stops once it can)
    let mut gone = false;
    if args.jsonl {
        gone = stdout.put(
            || print_line(&jsonl::connected(&args.url, &accepted, None)),
            &failed,
        );
    } else if verbose {
        match accepted.subprotocol() {
            Some(p) => say!("connected to {} (subprotocol {p})", args.url),
            None => say!("connected to {}", args.url),
        }
        for extension in accepted.extensions() {
            say!("extension: {extension}");
        }
    }

    let (sink, mut stream) = ws.split();
    let (stop_tx, stop_rx) = oneshot::channel();
    let mut stop = Some(stop_tx);
    if gone && let Some(stop) = stop.take() {
        let _ = stop.send(());
    }
    let (mut echo, source) = if args.echo {
        let (tx, rx) = mpsc::channel(ECHO_QUEUE);
        (Some(tx), Source::Echo(rx))
    } else {
        let longest = args.config().max_message_size;
        (
            None,
            Source::Stdin(BufReader::new(tokio::io::stdin()), longest),
        )
    };
    let writer = tokio::spawn(write(
        sink,
        source,
        Closing {
            code: CloseCode::new(args.close_code),
            reason: args.close_reason.clone(),
            wait: args.wait,
        },
        stop_rx,
        failed.clone(),
    ));

    let mut interrupted = false;
    let info = loop {
        let event = tokio::select! {
            event = stream.next_event() => event,
            () = interrupts.next() => {
                if interrupt(&mut interrupted, &mut stop) {
                    continue;
                }
                return exit::code(exit::INTERRUPTED);
            }
        };
        match event {
            Some(Event::Message(message)) => {
                if stdout.put(|| print(&message, args.hex, args.jsonl), &failed)
                    && let Some(stop) = stop.take()
                {
                    let _ = stop.send(());
                }
                if let Some(tx) = &echo {
                    // wait until the echo is sent before reading on: a
                    // Close behind this message (e.g. failing on a
                    // violation that followed it) must go out after it
                    let handed = async {
                        let (sent_tx, sent_rx) = oneshot::channel();
                        tx.send((message, sent_tx)).await.ok()?;
                        sent_rx.await.ok()
                    };
                    tokio::select! {
                        sent = handed => {
                            if sent.is_none() {
                                // the writer is closing: nothing more goes out
                                echo = None;
                            }
                        }
                        () = interrupts.next() => {
                            if !interrupt(&mut interrupted, &mut stop) {
                                return exit::code(exit::INTERRUPTED);
                            }
                        }
                    }
                }
            }
            Some(Event::Ping(payload)) if args.jsonl => {
                if stdout.put(|| print_line(&jsonl::control("ping", &payload)), &failed)
                    && let Some(stop) = stop.take()
                {
                    let _ = stop.send(());
                }
            }
            Some(Event::Pong(payload)) if args.jsonl => {
                if stdout.put(|| print_line(&jsonl::control("pong", &payload)), &failed)
                    && let Some(stop) = stop.take()
                {
                    let _ = stop.send(());
                }
            }
            Some(Event::Ping(payload)) if verbose => {
                say!("{}", show::control("ping", &payload))
            }
            Some(Event::Pong(payload)) if verbose => {
                say!("{}", show::control("pong", &payload))
            }
            Some(Event::Ping(_) | Event::Pong(_)) => {}
            Some(Event::Closed(info)) => break info,
            None => {
                break stream
                    .close_info()
                    .unwrap_or_else(|| unclean("the connection ended without a final event"));
            }
        }
    };
    // Let the writer close (a no-op after the end) and wait for the
    // connection's task to finish writing: the answer to a server's Close
    // may still be queued when its Closed event reaches us.
    if let Some(stop) = stop.take() {
        let _ = stop.send(());
    }
    // (bounded by the core: its close, drain and FIN-wait timers)
    tokio::select! {
        _ = writer => {}
        () = interrupts.next() => {}
    }

    let peer_said_why = info.initiator == Initiator::Remote && info.code != CloseCode::NORMAL;
    if args.jsonl {
        stdout.put(|| print_line(&jsonl::closed(&info)), &failed);
    } else if verbose || !info.was_clean || peer_said_why {
        say!("{}", show::closed(&info));
    }
    match exit::for_end(&info) {
        0 if failed.load(Ordering::Relaxed) => exit::code(exit::FAILED),
        status => exit::code(status),
    }
}

/// Ctrl-C: the first asks the writer to close with 1001 (going away) and
/// returns true; the second returns false: the caller gives up waiting.
fn interrupt(interrupted: &mut bool, stop: &mut Option<oneshot::Sender<()>>) -> bool {
    if *interrupted {
        crate::interrupted_again();
        return false;
    }
    *interrupted = true;
    if let Some(stop) = stop.take() {
        let _ = stop.send(());
    }
    true
}

/// Writes one message and a newline to stdout, flushed at once
/// (interactive): as text, or as a JSON object with `--jsonl`.
pub(crate) fn print(message: &Message, hex: bool, jsonl: bool) -> std::io::Result<()> {
    if jsonl {
        return print_line(&jsonl::message(message, hex));
    }
    print_line(&show::message(message, hex))
}

/// Writes `line` and a newline to stdout, flushed at once.
/// Our stdout, open until a write to it fails: a reader that left (a
/// broken pipe, e.g. `| head -1`) ends the session without failing it; any
/// other failure (a full disk) fails the command, which its exit status
/// says. Every line of output goes through it, `--jsonl`'s included.
pub(crate) struct Stdout {
    open: bool,
}

impl Stdout {
    pub(crate) fn new() -> Self {
        Self { open: true }
    }

    /// Writes with `write` while stdout is open; true when stdout has just
    /// gone away (the caller stops the session).
    pub(crate) fn put(
        &mut self,
        write: impl FnOnce() -> std::io::Result<()>,
        failed: &AtomicBool,
    ) -> bool {
        if !self.open {
            return false;
        }
        match write() {
            Ok(()) => false,
            Err(e) => {
                self.open = false;
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    say!("tether: cannot write to stdout: {e}");
                    failed.store(true, Ordering::Relaxed);
                }
                true
            }
        }
    }
}

pub(crate) fn print_line(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Where the writer's messages come from.
pub(crate) enum Source {
    /// Each line a text message (without its `\n` or `\r\n`), of at most
    /// the given bytes (the connection's `max_message_size`): a longer
    /// one is reported and skipped, never held whole.
    Stdin(BufReader<Stdin>, usize),
    /// Messages to send back, from the reader, each with a signal that it
    /// was sent.
    Echo(mpsc::Receiver<(Message, oneshot::Sender<()>)>),
}

/// How the writer closes once its source ends.
struct Closing {
    code: CloseCode,
    reason: String,
    /// Time for the server to answer the last lines first (skipped when
    /// nothing was sent).
    wait: Duration,
}

/// Why the writer stopped sending.
enum WriterEnd {
    /// The reader asked (Ctrl-C, stdout gone, or the connection ended).
    Stopped,
    /// Stdin reached its end (or, with `--echo`, the reader is gone).
    SourceEnded,
    /// A send failed: the connection is ending.
    ConnectionEnded,
}

/// Sends until the source ends, then closes; on `stop`, closes with 1001 at
/// once. Returns once the connection's task has finished. Reports its own
/// errors on stderr and in `failed`.
async fn write(
    mut sink: WsSink,
    mut source: Source,
    closing: Closing,
    mut stop: oneshot::Receiver<()>,
    failed: Arc<AtomicBool>,
) {
    let mut line = Vec::new();
    let mut line_number = 0u64;
    let mut sent_any = false;
    let end = loop {
        let next = tokio::select! {
            biased;
            _ = &mut stop => break WriterEnd::Stopped,
            next = next_message(&mut source, &mut line, &mut line_number, &failed) => next,
        };
        let Some((message, sent_signal)) = next else {
            break WriterEnd::SourceEnded;
        };
        tokio::select! {
            biased;
            _ = &mut stop => break WriterEnd::Stopped,
            sent = sink.send(message) => {
                if let Err(e) = sent {
                    // the connection is ending: the reader reports how;
                    // a line of stdin that did not go out fails the
                    // command (exit 1, as `--reconnect` says "line N not
                    // sent"); an echo the end overtook does not
                    if sent_signal.is_none() {
                        say!("tether: a line was not sent: {e}");
                        failed.store(true, Ordering::Relaxed);
                    } else {
                        tracing::debug!("not echoed: {e}");
                    }
                    break WriterEnd::ConnectionEnded;
                }
                sent_any = true;
                if let Some(signal) = sent_signal {
                    let _ = signal.send(());
                }
            }
        }
    };
    // with --echo, the reader must not wait on a queue nobody empties
    drop(source);
    let (code, reason) = match end {
        WriterEnd::Stopped | WriterEnd::ConnectionEnded => (CloseCode::GOING_AWAY, ""),
        WriterEnd::SourceEnded if !sent_any || closing.wait.is_zero() => {
            (closing.code, closing.reason.as_str())
        }
        WriterEnd::SourceEnded => tokio::select! {
            biased;
            _ = &mut stop => (CloseCode::GOING_AWAY, ""),
            () = tokio::time::sleep(closing.wait) => (closing.code, closing.reason.as_str()),
        },
    };
    // After the end this sends nothing and returns once the connection's
    // task has written its last bytes (e.g. our answer to the server's
    // Close): the process must not exit before that.
    if let Err(e) = sink.close(code, reason).await {
        say!("tether: cannot close: {e}");
        failed.store(true, Ordering::Relaxed);
    }
}

/// Reads one line of `input`, through its `\n`, into `line`, keeping at
/// most `longest + 2` bytes of it (enough to tell it is too long, with its
/// `\r\n`): a line of any length costs no more memory. Returns how many
/// bytes the line had with its ending (0 at the end of input) and
/// without it (`\n` or `\r\n`: what would be sent).
async fn read_line_capped(
    input: &mut (impl tokio::io::AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    longest: usize,
) -> std::io::Result<(usize, usize)> {
    let mut total = 0;
    let mut last = None;
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            return Ok((total, total));
        }
        let (end, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buf.len(), false),
        };
        let room = longest.saturating_add(2).saturating_sub(line.len());
        line.extend_from_slice(&buf[..end.min(room)]);
        // the byte before the newline, which may be in an earlier piece
        let before = if end >= 2 {
            buf.get(end - 2).copied()
        } else {
            last
        };
        last = buf.get(end.saturating_sub(1)).copied();
        input.consume(end);
        total += end;
        if done {
            let ending = if before == Some(b'\r') { 2 } else { 1 };
            return Ok((total, total - ending));
        }
    }
}

/// The next message to send (with the signal to give once it is sent, for
/// an echo); `None` when the source has ended.
pub(crate) async fn next_message(
    source: &mut Source,
    line: &mut Vec<u8>,
    line_number: &mut u64,
    failed: &AtomicBool,
) -> Option<(Message, Option<oneshot::Sender<()>>)> {
    let (input, longest) = match source {
        Source::Echo(rx) => return rx.recv().await.map(|(m, sent)| (m, Some(sent))),
        Source::Stdin(input, longest) => (input, *longest),
    };
    loop {
        line.clear();
        match read_line_capped(input, line, longest).await {
            Ok((0, _)) => return None,
            Ok((_, total)) => {
                *line_number += 1;
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                if line.len() > longest {
                    say!(
                        "tether: line {line_number} of stdin is {total} bytes, over the {longest}-byte message limit (--max-message); not sent"
                    );
                    failed.store(true, Ordering::Relaxed);
                    continue;
                }
                match std::str::from_utf8(line) {
                    Ok(text) => return Some((Message::text(text), None)),
                    Err(e) => {
                        say!("tether: line {line_number} of stdin is not UTF-8 ({e}); not sent");
                        failed.store(true, Ordering::Relaxed);
                    }
                }
            }
            Err(e) => {
                say!("tether: cannot read stdin: {e}");
                failed.store(true, Ordering::Relaxed);
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_line_capped;

    /// A line of any length keeps at most `longest + 2` bytes (the check
    /// that it is too long, and its `\r\n`), and reports its whole length;
    /// the next line starts clean.
    #[tokio::test]
    async fn a_long_line_keeps_at_most_the_limit_and_two_bytes() {
        let mut input = vec![b'x'; 1 << 20];
        input.extend(b"\nnext\n");
        let mut reader = tokio::io::BufReader::with_capacity(4096, &input[..]);
        let mut line = Vec::new();
        let total = read_line_capped(&mut reader, &mut line, 16).await.unwrap();
        assert_eq!(total, ((1 << 20) + 1, 1 << 20));
        assert_eq!(line.len(), 18);
        assert!(line.capacity() < 4096, "{} bytes kept", line.capacity());
        line.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut line, 16).await.unwrap(),
            (5, 4)
        );
        assert_eq!(line, b"next\n");
        line.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut line, 16).await.unwrap(),
            (0, 0)
        );
    }

    /// A line's length is reported without its ending, `\n` or `\r\n`, also
    /// when the `\r` came in an earlier read than the `\n` (a 1025-byte
    /// line was "1026 bytes").
    #[tokio::test]
    async fn a_lines_length_leaves_out_its_ending() {
        let mut input = vec![b'x'; 1025];
        input.extend(b"\r\nlast");
        // the \r ends the first read
        let mut reader = tokio::io::BufReader::with_capacity(1026, &input[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_line_capped(&mut reader, &mut line, 16).await.unwrap(),
            (1027, 1025)
        );
        line.clear();
        // the last line, without an ending
        assert_eq!(
            read_line_capped(&mut reader, &mut line, 16).await.unwrap(),
            (4, 4)
        );
    }
}
