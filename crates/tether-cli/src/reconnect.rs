//! `tether connect --reconnect URL`: the interactive client on
//! `tether_tokio::ReconnectingClient`.
//!
//! The reconnecting client owns the connections, the policy's decisions
//! (when to come back, when to stop) and the lines kept while
//! disconnected. This module only feeds it stdin lines (read on their own
//! task) or, with `--echo`, the messages it received (paced: while the
//! connection has no room for an echo, no more are read), prints what it
//! yields (messages on stdout; lifecycle events on
//! stderr, the clean closes we asked for only with `-v`) and decides when
//! to close: at the end of stdin once no
//! line waits, on Ctrl-C, or when stdout goes away.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tether::reconnect::StopReason;
use tether::{CloseCode, CloseInfo, Initiator, Message};
use tether_tokio::{
    ClientOptions, Lifecycle, ReconnectEvent, ReconnectOptions, ReconnectingClient,
};
use tokio::io::BufReader;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::Interrupts;
use crate::cli::ConnectArgs;
use crate::connect::{Source, next_message, print, print_line};
use crate::exit;
use crate::jsonl;
use crate::show;
use crate::stderr::say;

/// Lines handed to a connected client but not yet taken by its connection,
/// beyond which stdin is not read (so a large piped input is paced, never
/// refused while connected).
const HANDOFF: usize = 256;

/// As [`HANDOFF`], in bytes: half the client's least hand-over bound
/// (`QueueLimit::HANDOVER`), so a line of up to that much still fits. A
/// longer line the client refuses for room waits in
/// [`Session::pending`] until what waits is gone.
const HANDOFF_BYTES: usize = tether::reconnect::QueueLimit::HANDOVER.bytes / 2;

/// What the session knows, from the client's events and its own acts.
#[derive(Default)]
struct Session {
    connected: bool,
    /// `close` was called: nothing more is sent.
    closing: bool,
    /// Stdin has ended (never with `--echo`).
    input_ended: bool,
    sent_any: bool,
    /// At the end of stdin: when to close.
    close_at: Option<Instant>,
    /// A line or an echo the connected client had no room for: sent
    /// again, before any other, once nothing waits (one message alone
    /// always fits). Meanwhile stdin is not read, nor, for an echo, the
    /// client's messages.
    pending: Option<(Outgoing, Message)>,
    /// How the last connection ended.
    last_close: Option<CloseInfo>,
    /// The last connect error.
    last_error: Option<String>,
    stop: Option<StopReason>,
}

/// Runs the session until the client stops; returns the exit code
/// (`exit.rs`): 0 after our own close (end of stdin, Ctrl-C) or an
/// intentional close code; 1 when a line was refused or never sent; 2 for
/// a URL that cannot be used; 3 when it gave up before any connection
/// came up, or a server refused the upgrade; 5 when it gave up after a
/// connection had come up, or our close was not clean; 130 after a second
/// Ctrl-C.
pub(crate) async fn run(args: ConnectArgs, client: ClientOptions, verbose: bool) -> ExitCode {
    let failed = Arc::new(AtomicBool::new(false));
    let mut interrupts = Interrupts::new();
    let options = ReconnectOptions::new(client)
        .policy(args.policy())
        .max_queued_messages(args.queue)
        .max_queued_bytes(args.reconnect_queue_bytes);
    let mut client = match ReconnectingClient::new(&args.url, options) {
        Ok(client) => client,
        // a URL no attempt could reach: as `tether connect` without --reconnect
        Err(e) => return exit::not_connected(&args.url, &e),
    };
    let longest = args.config().max_message_size;
    let mut lines = (!args.echo).then(|| read_stdin(failed.clone(), longest));
    let mut s = Session::default();
    let mut stdout = crate::connect::Stdout::new();
    let mut interrupted = false;

    loop {
        // A line or an echo refused for room goes again once nothing waits
        // (or the connection is gone, and the queue's own limits decide);
        // once closing, nothing more is sent
        if !s.closing
            && (client.queued() == 0 || !client.is_connected())
            && let Some((what, message)) = s.pending.take()
        {
            send(&mut s, &client, &failed, what, message);
        }
        // At the end of stdin, close once no line waits for a connection
        // (after --wait, when lines went out, for the last answers). Whether
        // they went out is the client's word: its `Connected` event may
        // still be on its way when the queue drains.
        if s.input_ended && !s.closing && s.pending.is_none() && client.queued() == 0 {
            let now = Instant::now();
            let at = *s
                .close_at
                .get_or_insert(if client.is_connected() && s.sent_any {
                    tether::deadline(now.into_std(), args.wait).into()
                } else {
                    now
                });
            if now >= at {
                s.closing = true;
                close(&client, CloseCode::new(args.close_code), &args.close_reason);
            }
        }
        let paced =
            s.connected && (client.queued() >= HANDOFF || client.queued_bytes() >= HANDOFF_BYTES);
        let take_lines = lines.is_some() && !s.closing && !paced && s.pending.is_none();
        // What else to wait for: the queue to shrink (to empty at the end
        // of stdin or for a line or echo refused for room, below HANDOFF while
        // paced), then the time to close.
        let drain_to = if client.is_stopped() || s.closing {
            None
        } else if (s.input_ended && s.close_at.is_none()) || s.pending.is_some() {
            Some(0)
        } else if lines.is_some() && paced {
            // paced by count: below HANDOFF; by bytes: one message fewer
            // (a count the queue is already under would not wait at all)
            let queued = client.queued();
            Some(if queued >= HANDOFF {
                HANDOFF - 1
            } else {
                queued.saturating_sub(1)
            })
        } else {
            None
        };
        // made before `client.next()` borrows the client for the select
        let drained = or_never(drain_to.map(|n| client.drained_to(n)));
        let close_time = or_never(
            s.close_at
                .filter(|_| !s.closing)
                .map(tokio::time::sleep_until),
        );

        // an echo waiting for room holds the next message back, while
        // connected (once closing, nothing more is sent: it stays unsent,
        // and the events are read to the end). Asked after `drained` was
        // made: that future completes on any change of connection from
        // then on, so a connection that goes down cannot leave the events
        // unread while it waits
        let echo_waits =
            matches!(s.pending, Some((Outgoing::Echo, _))) && !s.closing && client.is_connected();
        tokio::select! {
            event = client.next(), if !echo_waits => match event {
                None => break,
                Some(ReconnectEvent::Message(message)) => {
                    // e.g. `| head -1`: nobody reads any more, so leave
                    if stdout.put(|| print(&message, args.hex, args.jsonl), &failed)
                        && !s.closing
                    {
                        s.closing = true;
                        close(&client, CloseCode::GOING_AWAY, "");
                    }
                    if args.echo && !s.closing {
                        send(&mut s, &client, &failed, Outgoing::Echo, message);
                    }
                }
                Some(ReconnectEvent::Lifecycle(event)) => {
                    if args.jsonl
                        && stdout.put(|| print_line(&lifecycle_json(&event, &args.url)), &failed)
                        && !s.closing
                    {
                        s.closing = true;
                        close(&client, CloseCode::GOING_AWAY, "");
                    }
                    lifecycle(&mut s, event, &args.url, verbose && !args.jsonl);
                }
            },
            line = next_line(&mut lines), if take_lines => match line {
                Some((number, message)) => {
                    send(&mut s, &client, &failed, Outgoing::Line(number), message);
                }
                None => {
                    lines = None;
                    s.input_ended = true;
                }
            },
            () = interrupts.next() => {
                if interrupted {
                    crate::interrupted_again();
                    return exit::code(exit::INTERRUPTED);
                }
                interrupted = true;
                if !s.closing {
                    s.closing = true;
                    close(&client, CloseCode::GOING_AWAY, "");
                }
            }
            () = drained => {}
            () = close_time => {}
        }
    }

    let unsent = client.queued() + usize::from(s.pending.is_some());
    if unsent > 0 {
        say!(
            "tether: {unsent} message(s) were still waiting to be sent at the end, and were not sent"
        );
        failed.store(true, Ordering::Relaxed);
    }
    let status = match &s.stop {
        // our close: clean, unless the connection it ended was not
        Some(StopReason::ApplicationClosed) => match &s.last_close {
            Some(info) if info.initiator == Initiator::Application && !info.was_clean => {
                exit::ABNORMAL
            }
            _ => 0,
        },
        Some(StopReason::Intentional(_)) => 0,
        // never connected, or connected and then lost
        Some(StopReason::GaveUp { .. } | StopReason::Refused { .. }) if s.last_close.is_none() => {
            exit::NEVER_CONNECTED
        }
        Some(StopReason::GaveUp { .. } | StopReason::Refused { .. }) => exit::ABNORMAL,
        Some(StopReason::Unusable(_)) => exit::USAGE,
        None => {
            say!("tether: the reconnecting client ended without saying why");
            exit::FAILED
        }
    };
    match status {
        0 if failed.load(Ordering::Relaxed) => exit::code(exit::FAILED),
        status => exit::code(status),
    }
}

/// Records a lifecycle event and shows it on stderr (stdout is for
/// messages only): connected, disconnected with the code and its meaning,
/// a failed connect, reconnecting in N, and why it stopped; `-v` adds our
/// own close ending as asked.
/// A lifecycle event as `--jsonl` prints it.
fn lifecycle_json(event: &Lifecycle, url: &str) -> String {
    match event {
        Lifecycle::Connected { attempt, accepted } => {
            jsonl::connected(url, accepted, Some(*attempt))
        }
        Lifecycle::Disconnected(info) => jsonl::disconnected(info),
        Lifecycle::ConnectFailed(error) => jsonl::connect_failed(error),
        Lifecycle::Reconnecting { attempt, delay } => jsonl::reconnecting(*attempt, *delay),
        Lifecycle::Stopped(reason) => jsonl::stopped(reason),
    }
}

fn lifecycle(s: &mut Session, event: Lifecycle, url: &str, verbose: bool) {
    match event {
        Lifecycle::Connected { attempt, .. } => {
            s.connected = true;
            say!("{}", show::connected(url, attempt));
        }
        Lifecycle::Disconnected(info) => {
            s.connected = false;
            if verbose || !s.closing || !info.was_clean {
                say!("{}", show::disconnected(&info));
            }
            s.last_close = Some(info);
        }
        Lifecycle::ConnectFailed(error) => {
            say!("connect failed: {error}");
            s.last_error = Some(error);
        }
        Lifecycle::Reconnecting { attempt, delay } => {
            say!("{}", show::reconnecting(attempt, delay));
        }
        Lifecycle::Stopped(reason) => {
            match &reason {
                StopReason::ApplicationClosed if verbose => {
                    say!("{}", show::stopped(&reason, None));
                }
                StopReason::ApplicationClosed => {}
                StopReason::Intentional(_) => {
                    let said = s.last_close.as_ref().map(|info| info.reason.as_str());
                    say!("{}", show::stopped(&reason, said));
                }
                StopReason::GaveUp { .. } => {
                    say!(
                        "tether: {}",
                        show::stopped(&reason, s.last_error.as_deref())
                    );
                }
                StopReason::Refused { .. } | StopReason::Unusable(_) => {
                    say!("tether: {}", show::stopped(&reason, None));
                }
            }
            s.stop = Some(reason);
        }
    }
}

/// Asks the client to close and stop; its `Disconnected` and `Stopped`
/// events follow.
fn close(client: &ReconnectingClient, code: CloseCode, reason: &str) {
    // the flags' parsers accept only a code and a reason a Close can carry
    if let Err(e) = client.close(code, reason) {
        say!("tether: cannot close: {e}");
    }
}

/// Completes with `future`; never without one.
async fn or_never(future: Option<impl Future<Output = ()>>) {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// What the session sends: a stdin line (numbered from 1), or the echo of
/// a received message (`--echo`).
#[derive(Clone, Copy, Debug)]
enum Outgoing {
    Line(u64),
    Echo,
}

/// Hands a line or an echo to the client. One it has no room for while
/// connected waits in `s.pending` (meanwhile stdin is not read, nor, for
/// an echo, received messages: the connection paces the session, as
/// without `--reconnect`); one it refuses otherwise is reported, and the
/// session fails.
fn send(
    s: &mut Session,
    client: &ReconnectingClient,
    failed: &AtomicBool,
    what: Outgoing,
    message: Message,
) {
    // a clone shares the payload: kept in case the send is refused
    match client.send(message.clone()) {
        Ok(()) => s.sent_any = true,
        Err(tether_tokio::Error::QueueFull(full)) if full.connected && !s.closing => {
            s.pending = Some((what, message));
        }
        Err(e) => {
            match what {
                Outgoing::Line(number) => say!("tether: line {number} not sent: {}", refusal(&e)),
                Outgoing::Echo => say!("tether: message not echoed: {}", refusal(&e)),
            }
            failed.store(true, Ordering::Relaxed);
        }
    }
}

/// Why the client refused a message, in words, naming the flags.
fn refusal(error: &tether_tokio::Error) -> String {
    let tether_tokio::Error::QueueFull(full) = error else {
        return error.to_string();
    };
    if full.connected {
        error.to_string()
    } else if full.limit.messages == 0 {
        "not connected, and --queue is 0".to_owned()
    } else if full.queued >= full.limit.messages {
        format!(
            "not connected, and {} line(s) already wait (--queue {})",
            full.queued, full.limit.messages
        )
    } else {
        format!(
            "not connected, and {} line(s) of {} bytes already wait: this line's {} bytes would pass --queue-bytes {}",
            full.queued, full.queued_bytes, full.refused_bytes, full.limit.bytes
        )
    }
}

/// Reads stdin on its own task: each line (numbered from 1) a text
/// message; the channel closes at the end of stdin. Lines that are not
/// UTF-8 are reported and skipped (and mark the session failed).
fn read_stdin(failed: Arc<AtomicBool>, longest: usize) -> mpsc::Receiver<(u64, Message)> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut source = Source::Stdin(BufReader::new(tokio::io::stdin()), longest);
        let mut line = Vec::new();
        let mut number = 0u64;
        while let Some((message, _)) =
            next_message(&mut source, &mut line, &mut number, &failed).await
        {
            if tx.send((number, message)).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// The next stdin line; never resolves once stdin is gone.
async fn next_line(lines: &mut Option<mpsc::Receiver<(u64, Message)>>) -> Option<(u64, Message)> {
    match lines {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
