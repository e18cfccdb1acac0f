//! The tool's own stderr, never waited on: every line (`say!`, and the
//! log's events through [`Log`]) goes into a bounded queue that one thread
//! writes out, so a stderr nobody reads (a pipe that fills up, a paused
//! terminal) never holds a session, its connection or the runtime. Past
//! [`QUEUE_LINES`] lines waiting, a line is dropped and counted, and the
//! count is said where the gap is, once stderr takes lines again. At most
//! `QUEUE_LINES x (LINE_MAX + 7)` bytes of lines wait (a longer line is cut,
//! and waits in an allocation of its cut size).

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

/// What a line waits as: at most [`LINE_MAX`] bytes of it (cut at a
/// character boundary, saying so), and its newline, in an allocation of
/// just that (a cut line kept the whole line's allocation, so 256 of them
/// could hold far more than the bound the module promises).
fn queued_form(line: String) -> String {
    if line.len() <= LINE_MAX {
        let mut line = line;
        line.push('\n');
        return line;
    }
    let mut cut = LINE_MAX;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut kept = String::with_capacity(cut + CUT_MARK.len());
    kept.push_str(&line[..cut]);
    kept.push_str(CUT_MARK);
    kept
}

/// Ends a line cut at [`LINE_MAX`] bytes.
const CUT_MARK: &str = " [cut]\n";

/// Queues one line (without its newline) for stderr; never waits.
pub(crate) fn queue_line(line: String) {
    let line = queued_form(line);
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

    /// A line waits in at most `LINE_MAX` bytes and its ending, however
    /// long it was (the queue's bound, `QUEUE_LINES x LINE_MAX`, counts on
    /// it); a line within the limit waits whole.
    #[test]
    fn a_long_line_waits_cut_in_an_allocation_of_its_cut_size() {
        let long = "é".repeat(1 << 20); // 2 MiB, two bytes a character
        let cut = queued_form(long);
        assert!(cut.ends_with(" [cut]\n"), "{}", &cut[cut.len() - 20..]);
        assert!(cut.len() <= LINE_MAX + CUT_MARK.len(), "{}", cut.len());
        assert!(
            cut.capacity() <= LINE_MAX + CUT_MARK.len(),
            "a cut line holds {} bytes",
            cut.capacity()
        );
        assert!(cut.trim_end_matches(" [cut]\n").chars().all(|c| c == 'é'));
        let short = queued_form("hello".to_owned());
        assert_eq!(short, "hello\n");
    }

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
