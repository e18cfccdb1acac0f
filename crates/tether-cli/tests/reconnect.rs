#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `tether connect --reconnect` (the real binary) against servers the test
//! controls on 127.0.0.1: a close with 1001 brings the client back, a close
//! with a code marked `--intentional-code` stops it, and lines typed while
//! the server is down wait and arrive in order once it is back.
//!
//! Every step is bounded by [`LIMIT`] and every child is killed when its
//! handle drops, so a failing test fails instead of hanging.

mod common;
#[path = "../../tether/tests/common/ports.rs"]
mod ports;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tether_tokio::WebSocket;
use tether_tokio::tether::{CloseCode, Message};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use common::{tether, within};

/// `tether connect --reconnect ...` with stdin, stdout and stderr piped;
/// killed when dropped.
fn spawn_client(args: &[&str]) -> Child {
    tether(&["connect", "--reconnect"])
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The client's stderr, line by line, as it comes.
struct Stderr {
    rx: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Stderr {
    fn of(child: &mut Child) -> Self {
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for the next line containing `needle`; returns it.
    async fn wait_for(&mut self, needle: &str) -> String {
        let seen = &mut self.seen;
        let rx = &mut self.rx;
        within(&format!("a stderr line with {needle:?}"), async {
            loop {
                let Some(line) = rx.recv().await else {
                    panic!("stderr ended before {needle:?}; seen: {seen:#?}")
                };
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        })
        .await
    }

    /// Everything, once the child has exited.
    async fn rest(mut self) -> Vec<String> {
        while let Some(line) = within("stderr to end", self.rx.recv()).await {
            self.seen.push(line);
        }
        self.seen
    }
}

/// A listener on a port below the ephemeral range: tests here let it go
/// and take it again, or need nobody to listen on it (`ports.rs`).
async fn listener() -> (TcpListener, String) {
    loop {
        // (another test may take the port between the check and the bind)
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", ports::free_port())).await {
            let url = format!("ws://{}/", listener.local_addr().unwrap());
            return (listener, url);
        }
    }
}

async fn accept(listener: &TcpListener) -> WebSocket {
    let (stream, _) = within("accept", listener.accept()).await.unwrap();
    within(
        "handshake",
        tether_tokio::accept(stream, &Default::default()),
    )
    .await
    .unwrap()
    .0
}

async fn next(ws: &mut WebSocket) -> Message {
    within("a message", ws.next()).await.unwrap().unwrap()
}

async fn type_line(stdin: &mut ChildStdin, line: &str) {
    stdin
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    stdin.flush().await.unwrap();
}

/// The CPU time process `pid` has used so far (user and system, from
/// `/proc/PID/stat`, in clock ticks of 1/100 s).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // the fields after the command name, which is in parentheses
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15, so 12 and 13 after the name
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// (a) The server closes with 1001: the client says so, reconnects, and
/// lines go out on the new connection; stdin's end closes and exits 0.
#[tokio::test]
async fn server_going_away_1001_is_followed_by_a_reconnect() {
    let (listener, url) = listener().await;
    let mut client = spawn_client(&["--verbose", "--max-delay", "0.2", &url]);
    let mut stdin = client.stdin.take().unwrap();
    let mut stderr = Stderr::of(&mut client);

    let mut ws = accept(&listener).await;
    stderr.wait_for(&format!("connected to {url}")).await;
    ws.send(Message::text("first")).await.unwrap();
    let info = within(
        "the server's close",
        ws.close(CloseCode::GOING_AWAY, "restarting"),
    )
    .await
    .unwrap();
    assert!(info.was_clean, "{info}");

    let line = stderr.wait_for("disconnected:").await;
    assert_eq!(
        line,
        "disconnected: 1001 (going away) \"restarting\", clean"
    );
    let line = stderr.wait_for("reconnecting").await;
    assert!(
        line.starts_with("reconnecting in ") && line.ends_with("(attempt 1)"),
        "{line}"
    );
    let mut ws = accept(&listener).await;
    let line = stderr.wait_for("connected to").await;
    assert_eq!(line, format!("connected to {url} (attempt 1)"));

    ws.send(Message::text("second")).await.unwrap();
    type_line(&mut stdin, "hello again").await;
    let got = next(&mut ws).await;
    assert_eq!(got, Message::text("hello again"));
    ws.send(got).await.unwrap();
    drop(stdin);
    // the client waits --wait for answers, then closes with 1000
    assert!(within("the client's close", ws.next()).await.is_none());
    let info = ws.close_info().unwrap();
    assert_eq!(info.code, CloseCode::NORMAL, "{info}");
    assert!(info.was_clean, "{info}");

    let output = within("the client to exit", client.wait_with_output())
        .await
        .unwrap();
    let stderr = stderr.rest().await;
    assert!(output.status.success(), "{:?}\n{stderr:#?}", output.status);
    assert_eq!(text(&output.stdout), "first\nsecond\nhello again\n");
    assert!(
        stderr
            .iter()
            .any(|l| l == "disconnected: 1000 (normal closure), clean"),
        "{stderr:#?}"
    );
    assert_eq!(
        stderr.last().map(String::as_str),
        Some("stopped: closed by us")
    );
}

/// (b) The server closes with 4000, marked intentional: the client prints
/// why it stops and exits 0 without coming back.
#[tokio::test]
async fn intentional_code_4000_stops_without_reconnecting() {
    let (listener, url) = listener().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let mut ws = accept(&listener).await;
            count.fetch_add(1, Ordering::SeqCst);
            ws.send(Message::text("bye soon")).await.unwrap();
            let _ = ws.close(CloseCode::new(4000), "go away for good").await;
        }
    });
    let mut client = spawn_client(&["--intentional-code", "4000", "--max-delay", "0.2", &url]);
    // stdin stays open: the server, not its end, stops this session
    let stdin = client.stdin.take().unwrap();
    let output = within("the client to exit", client.wait_with_output())
        .await
        .unwrap();
    drop(stdin);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    assert_eq!(text(&output.stdout), "bye soon\n", "{stderr}");
    // lifecycle lines on stderr by default, without -v
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!("connected to {url}").as_str(),
            "disconnected: 4000 (application code) \"go away for good\", clean",
            "stopped: the server closed with 4000 (application code) \"go away for good\", \
             marked intentional (--intentional-code): not reconnecting",
        ],
        "{stderr}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "no second connection");
}

/// Lines typed while the server is down wait (up to --queue; one more is
/// refused with an error) and arrive in order once it is back on the same
/// port. A refused line makes the exit status 1.
#[tokio::test]
async fn lines_typed_while_down_are_sent_in_order_after_reconnecting() {
    typed_while_down(
        &["--queue", "2"],
        ["one", "two", "three"],
        "tether: line 3 not sent: not connected, and 2 line(s) already wait (--queue 2)",
    )
    .await;
}

/// As above, bounded in bytes (`--queue-bytes`): a line that would take
/// what waits past it is refused, naming the flag.
#[tokio::test]
async fn lines_typed_while_down_are_bounded_in_bytes() {
    typed_while_down(
        &["--queue", "10", "--queue-bytes", "5"],
        ["abc", "de", "f"],
        "tether: line 3 not sent: not connected, and 2 line(s) of 5 bytes already wait: \
         this line's 1 bytes would pass --queue-bytes 5",
    )
    .await;
}

/// The client (with `flags`) connects, the server goes away, three lines
/// are typed and the third is refused with `refusal`; once the server is
/// back the first two arrive in order, and the exit status is 1.
async fn typed_while_down(flags: &[&str], lines: [&str; 3], refusal: &str) {
    let (listener, url) = listener().await;
    let addr = listener.local_addr().unwrap();
    let mut args = vec!["-v", "--max-delay", "0.2"];
    args.extend_from_slice(flags);
    args.push(&url);
    let mut client = spawn_client(&args);
    let mut stdin = client.stdin.take().unwrap();
    let mut stderr = Stderr::of(&mut client);

    let mut ws = accept(&listener).await;
    stderr.wait_for("connected to").await;
    // the server goes away entirely: the port refuses connections
    drop(listener);
    within("the server's close", ws.close(CloseCode::GOING_AWAY, ""))
        .await
        .unwrap();
    stderr.wait_for("disconnected: 1001 (going away)").await;
    stderr.wait_for("connect failed").await;

    for line in lines {
        type_line(&mut stdin, line).await;
    }
    let refused = stderr.wait_for("not sent").await;
    assert_eq!(refused, refusal);

    let listener = TcpListener::bind(addr).await.unwrap();
    let mut ws = accept(&listener).await;
    stderr.wait_for("connected to").await;
    assert_eq!(next(&mut ws).await, Message::text(lines[0]));
    assert_eq!(next(&mut ws).await, Message::text(lines[1]));
    drop(stdin);
    assert!(within("the client's close", ws.next()).await.is_none());
    assert_eq!(ws.close_info().unwrap().code, CloseCode::NORMAL);

    let status = within("the client to exit", client.wait()).await.unwrap();
    let stderr = stderr.rest().await;
    assert_eq!(status.code(), Some(1), "{stderr:#?}");
}

/// Piped input larger than what may wait for the connection (16 MiB while
/// connected) is paced, never refused: with a server that reads nothing
/// for a while, 1 MiB lines fill the connection and what waits for it,
/// then a 12 MiB line cannot join them; it waits, goes out once they
/// have, and every line arrives once, in order, with exit status 0.
#[tokio::test]
async fn a_large_piped_input_is_paced_while_connected_not_refused() {
    const MIB: usize = 1 << 20;
    let sizes: Vec<usize> = (0..48)
        .map(|_| MIB)
        .chain([12 * MIB])
        .chain((0..24).map(|_| MIB))
        .collect();
    let (listener, url) = listener().await;
    let mut client = spawn_client(&[&url]);
    let mut stdin = client.stdin.take().unwrap();
    let stderr = Stderr::of(&mut client);
    let mut ws = accept(&listener).await;
    let input: Vec<u8> = sizes
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| {
            let mut line = vec![b'a' + u8::try_from(i % 26).unwrap(); n];
            line.push(b'\n');
            line
        })
        .collect();
    let writer = tokio::spawn(async move {
        stdin.write_all(&input).await.unwrap();
        // stdin ends: the client sends what waits, then closes
    });
    // read nothing for a while: everything backs up into the client,
    // which waits without spinning (paced by bytes, it waited on a count
    // it was already under, and looped at full speed)
    let pid = client.id().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cpu_time(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = cpu_time(pid) - before;
    assert!(
        spent < Duration::from_millis(500),
        "the client spun: {spent:?} of CPU in 1 s"
    );
    for (i, &n) in sizes.iter().enumerate() {
        let m = next(&mut ws).await;
        assert_eq!(m.len(), n, "line {}", i + 1);
        assert_eq!(m.as_bytes()[0], b'a' + u8::try_from(i % 26).unwrap());
    }
    within("stdin written", writer).await.unwrap();
    assert!(within("the client's close", ws.next()).await.is_none());
    let status = within("the client to exit", client.wait()).await.unwrap();
    let stderr = stderr.rest().await;
    assert_eq!(status.code(), Some(0), "{stderr:#?}");
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_the_last_error() {
    // nobody listens on this port
    let (listener, url) = listener().await;
    drop(listener);
    let mut client = spawn_client(&["--max-attempts", "2", "--max-delay", "0.1", &url]);
    let stdin = client.stdin.take().unwrap();
    let output = within("the client to exit", client.wait_with_output())
        .await
        .unwrap();
    drop(stdin);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "never connected: {stderr}");
    // each failed attempt and retry is shown, then why it stopped
    assert_eq!(stderr.matches("connect failed: ").count(), 3, "{stderr}");
    assert_eq!(stderr.matches("reconnecting in ").count(), 2, "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("tether: gave up after 2 attempts; last: "),
        "{stderr}"
    );
}

/// A server answering 200 is not a WebSocket endpoint: asking again will
/// not change that, so the client stops at once, says why, and exits 3.
#[tokio::test]
async fn a_server_answering_200_is_not_retried() {
    let (listener, url) = listener().await;
    let http = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .await
            .unwrap();
        let _ = stream.shutdown().await;
        // a second attempt would be accepted here: there must be none
        tokio::time::timeout(Duration::from_millis(500), listener.accept())
            .await
            .is_err()
    });
    let mut client = spawn_client(&["--max-delay", "0.1", &url]);
    let stdin = client.stdin.take().unwrap();
    let output = within("the client to exit", client.wait_with_output())
        .await
        .unwrap();
    drop(stdin);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("connect failed: ") && stderr.contains("200"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stopped: the server answered 200, which asking again will not change"),
        "{stderr}"
    );
    assert!(
        within("the HTTP server", http).await.unwrap(),
        "no second attempt"
    );
}

/// `--reconnect --echo` echoes every message, in order, however large and
/// fast they come: while the connection has no room for an echo, the
/// client reads no more until it has (as plain `--echo` does). With two
/// echoes waiting past the hand-over's 16 MiB (`QueueLimit::HANDOVER`),
/// it reported "message not echoed" and dropped the second.
#[tokio::test]
async fn echo_is_paced_by_the_connection_not_dropped() {
    const COUNT: usize = 8;
    const SIZE: usize = 12 << 20;
    let (listener, url) = listener().await;
    let mut client = spawn_client(&["--echo", &url]);
    let stdin = client.stdin.take().unwrap();
    let stderr = Stderr::of(&mut client);
    let mut stdout = client.stdout.take().unwrap();
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink).await;
    });
    let (stream, _) = within("accept", listener.accept()).await.unwrap();
    // the server reads little ahead, so the client's echoes back up
    let options = tether_tokio::ServerOptions::new().max_unread_bytes(256 << 10);
    let (ws, _) = within("handshake", tether_tokio::accept(stream, &options))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    let sender = tokio::spawn(async move {
        for i in 0..COUNT {
            let line = format!("{i:06}{}", "x".repeat(SIZE - 6));
            tx.send(Message::text(line)).await.unwrap();
        }
        tx
    });
    // read nothing until the client's output, its hand-over and the
    // socket buffers are full
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..COUNT {
        let got = within("an echo", rx.next()).await.unwrap().unwrap();
        let text = got.as_text().unwrap();
        assert_eq!(&text[..6], format!("{i:06}"), "echo {i} out of order");
        assert_eq!(text.len(), SIZE);
    }
    let _tx = within("the sender", sender).await.unwrap();
    drop(stdin);
    client.start_kill().unwrap();
    let _ = within("the client to exit", client.wait()).await;
    let stderr = stderr.rest().await;
    assert!(
        !stderr.iter().any(|l| l.contains("not echoed")),
        "{stderr:#?}"
    );
}
