//! The tool's own stderr, never waited on: every line (`say!`, and the
//! log's events through [`Log`]) goes into a bounded queue that one thread
//! writes out, so a stderr nobody reads (a pipe that fills up, a paused
//! terminal) never holds a session, its connection or the runtime. Past
//! [`QUEUE_LINES`] lines waiting, a line is dropped and counted, and the
//! count is said where the gap is, once stderr takes lines again. At most
//! `QUEUE_LINES x LINE_MAX` bytes wait.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Lines that may wait for stderr.
pub(crate) const QUEUE_LINES: usize = 256;

/// The longest line kept whole, in bytes; longer ones are cut (at a
/// character boundary) and say so.
pub(crate) const LINE_MAX: usize = 4096;

/// How long the end of the program waits for stderr to take what is
/// queued, while it takes nothing.
const FINISH_PATIENCE: Duration = Duration::from_secs(1);

struct Queue {
    sender: Mutex<Option<SyncSender<Item>>>,
    /// Told by the writer thread after each item it wrote.
    written: Mutex<Receiver<()>>,
}

/// A line, and how many were dropped just before it.
struct Item {
    dropped: u64,
    line: String,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn queue() -> &'static Queue {
    QUEUE.get_or_init(|| {
        let (sender, lines) = sync_channel::<Item>(QUEUE_LINES);
        let (done, written) = sync_channel::<()>(QUEUE_LINES + 1);
        let spawned = std::thread::Builder::new()
            .name("tether-stderr".into())
            .spawn(move || write_lines(&lines, &done, &mut std::io::stderr()));
        Queue {
            // without the thread (it could not start), lines are dropped
            // and counted rather than written in the caller's place
            sender: Mutex::new(spawned.ok().map(|_| sender)),
            written: Mutex::new(written),
        }
    })
}

/// The writer thread: each line in turn, the count of those dropped
/// before it first.
fn write_lines(lines: &Receiver<Item>, done: &SyncSender<()>, out: &mut impl Write) {
    while let Ok(Item { dropped, line }) = lines.recv() {
        if dropped > 0 {
            let _ = writeln!(
                out,
                "tether: {dropped} log line(s) dropped (stderr was not being read)"
            );
        }
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
        let _ = done.try_send(());
    }
}

/// Queues one line (without its newline) for stderr; never waits.
pub(crate) fn queue_line(mut line: String) {
    if line.len() > LINE_MAX {
        let mut cut = LINE_MAX;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str(" [cut]");
    }
    line.push('\n');
    let sender = queue()
        .sender
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    // the lines dropped since the last one queued go with this one, so
    // the count is said where the gap is
    let dropped = DROPPED.swap(0, Ordering::AcqRel);
    let queued = match sender {
        Some(sender) => match sender.try_send(Item { dropped, line }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        },
        None => false,
    };
    if !queued {
        DROPPED.fetch_add(dropped + 1, Ordering::AcqRel);
    }
}

/// Writes a line to stderr without ever waiting on it (see the module).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::stderr::queue_line(format!($($arg)*))
    };
}
pub(crate) use say;

/// At the end of the program: lets the writer take what is queued, while
/// stderr takes lines at all (it gives up after [`FINISH_PATIENCE`] of
/// nothing taken).
pub(crate) fn finish() {
    let Some(queue) = QUEUE.get() else {
        return;
    };
    // no more lines: the writer ends once the queue is empty
    drop(
        queue
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(),
    );
    let written = queue
        .written
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        match written.recv_timeout(FINISH_PATIENCE) {
            Ok(()) => {}
            // the writer is done, all written: stderr takes lines, so the
            // count of the last ones dropped can be said
            Err(RecvTimeoutError::Disconnected) => {
                let dropped = DROPPED.swap(0, Ordering::AcqRel);
                if dropped > 0 {
                    let _ = writeln!(
                        std::io::stderr(),
                        "tether: {dropped} log line(s) dropped (stderr was not being read)"
                    );
                }
                break;
            }
            // stderr took nothing for that long: give up
            Err(RecvTimeoutError::Timeout) => break,
        }
    }
}

/// The log's writer ([`tracing_subscriber`]'s `MakeWriter`): each event is
/// one line through the same queue, in order with the rest.
pub(crate) struct Log;

/// One event's bytes, queued when dropped.
pub(crate) struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0);
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        if !bytes.is_empty() {
            queue_line(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Log {
    type Writer = LogLine;

    fn make_writer(&'a self) -> Self::Writer {
        LogLine(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The writer says how many lines were dropped before the next line it
    /// writes, where the gap is, and writes every queued line in order.
    #[test]
    fn dropped_lines_are_counted_where_the_gap_is() {
        let (sender, lines) = sync_channel::<Item>(4);
        let (done, _written) = sync_channel::<()>(8);
        let item = |dropped, line: &str| Item {
            dropped,
            line: line.into(),
        };
        sender.send(item(0, "first\n")).unwrap();
        // three lines found no room between these
        sender.send(item(3, "second\n")).unwrap();
        drop(sender);
        let mut out = Vec::new();
        write_lines(&lines, &done, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "first\ntether: 3 log line(s) dropped (stderr was not being read)\nsecond\n"
        );
    }
}
