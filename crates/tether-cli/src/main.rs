//! `tether`: a WebSocket server and client for the terminal, on the
//! `tether-tokio` adapter.
//!
//! - `tether serve [--addr 127.0.0.1:9001] [--mode echo|broadcast]`
//! - `tether connect URL` (`--reconnect` to come back after each close)
//! - `tether completions bash|zsh|fish|...`, `tether man`
//!
//! See `tether --help` and `tether help serve|connect` for every flag. This
//! file owns the process: logging, the runtime, and the exit code. It never
//! speaks the protocol itself; `serve`, `broadcast` and `connect` drive
//! `tether-tokio` handles.
#![forbid(unsafe_code)]

mod broadcast;
mod cli;
mod connect;
mod exit;
mod http2;
mod http3;
mod jsonl;
mod reconnect;
mod serve;
mod show;
mod stderr;
mod tls;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tether::CloseInfo;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "tether", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tether: cannot write the manual: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Serve(_) | Command::Connect(_) => {}
    }
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tether: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Connect(args) => connect::run(*args, cli.verbose > 0).await,
            // answered above, before the runtime
            Command::Completions { .. } | Command::Man => ExitCode::SUCCESS,
        }
    });
    // tokio's stdin reads on a blocking thread that cannot be cancelled: do
    // not wait for it (it would hold the exit until the user hits Enter).
    runtime.shutdown_background();
    // what is still queued for stderr, while stderr takes it
    stderr::finish();
    code
}

/// Logs go to stderr. `-v` info (and our own keep-alive frames), `-vv`
/// debug, `-vvv` trace; without `-v`, `RUST_LOG` if set, else warnings
/// only.
fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        // -v also shows the frames our connection sent of its own accord
        // (keep-alive, heartbeat, answers to Pings): a server that drops
        // us for one can be seen doing so
        1 => EnvFilter::new("info,tether::sent=debug"),
        2 => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // through the tool's queue: a stderr nobody reads never holds
        // the session (see `stderr`)
        .with_writer(stderr::Log)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Ctrl-C, and SIGTERM on Unix, as notifications that are not lost between
/// two waits (a signal that arrives while nobody waits is kept). A task of
/// its own listens: the second signal ends the process with 130 even when
/// the session cannot look (blocked writing to a stdout or stderr that
/// nobody drains, a paused terminal), so "a second Ctrl-C exits" holds
/// whatever the session is doing.
pub(crate) struct Interrupts {
    seen: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl Interrupts {
    /// Starts listening. Must be called inside the runtime.
    pub(crate) fn new() -> Self {
        let (tx, seen) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut signals = Signals::new();
            let mut count = 0u32;
            loop {
                signals.next().await;
                count += 1;
                let _ = tx.send(());
                if count >= 2 {
                    // without a word: stderr may be as stalled as stdout
                    // (`2>&1` into the same undrained pipe), and a write
                    // there would hold this task too; the session says it
                    // when it can look first
                    std::process::exit(i32::from(exit::INTERRUPTED));
                }
            }
        });
        Self { seen }
    }

    /// Resolves at the next Ctrl-C (or SIGTERM). Cancel-safe.
    pub(crate) async fn next(&mut self) {
        if self.seen.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

/// Says, once, that a second interrupt ends the process without waiting.
pub(crate) fn interrupted_again() {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        stderr::say!("tether: interrupted again; exiting without waiting for the close");
    }
}

/// The signals themselves.
struct Signals {
    #[cfg(unix)]
    signals: Vec<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = [SignalKind::interrupt(), SignalKind::terminate()]
                .into_iter()
                .filter_map(|kind| match signal(kind) {
                    Ok(signal) => Some(signal),
                    Err(e) => {
                        tracing::warn!("cannot listen for signals: {e}");
                        None
                    }
                })
                .collect();
            Self { signals }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        std::future::poll_fn(|cx| {
            for signal in &mut self.signals {
                if let std::task::Poll::Ready(Some(())) = signal.poll_recv(cx) {
                    return std::task::Poll::Ready(());
                }
            }
            std::task::Poll::Pending
        })
        .await;
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A final state for a connection whose end we did not see (it timed out,
/// or its task went away without a final event).
pub(crate) fn unclean(reason: &str) -> CloseInfo {
    CloseInfo::abnormal(reason)
}
