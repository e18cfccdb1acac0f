//! What every test of the `tether` binary uses: the binary as a command,
//! and a bound on every step.
#![allow(dead_code, unreachable_pub)]

use std::process::Stdio;

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use tokio::process::Command;

/// Every test step is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Runs `f`, failing the test after [`LIMIT`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// The binary with `args`, stdin empty, stdout and stderr captured, no
/// inherited log settings, killed when its handle drops (override stdin or
/// stdout on the returned command as a test needs).
pub fn tether(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `tether serve` with `extra` flags: its URL and the stderr lines before it.
pub async fn serve(extra: &[&str]) -> (tokio::process::Child, String, Vec<String>) {
    let mut child = tether(&["serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut before = Vec::new();
    loop {
        let line = tokio::time::timeout(LIMIT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("serve exited before listening");
        if let Some(rest) = line.strip_prefix("tether: listening on ") {
            let url = rest.split(' ').next().unwrap().to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, url, before);
        }
        before.push(line);
    }
}

/// Runs `tether connect` with `args` and `input` on stdin; returns the exit
/// code, stdout and stderr (see [`run_with_input`]).
pub async fn connect(args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let mut command = tether(&["connect"]);
    command.args(args);
    run_with_input(command, input).await
}

/// Runs `command` with `input` on stdin; returns the exit code, stdout and
/// stderr. A connect that is refused before it reads stdin (a bad URL or
/// flag) may exit before the input is written: the broken pipe that gives
/// is not the test's failure, the exit code and stderr say what happened.
pub async fn run_with_input(mut command: Command, input: &str) -> (Option<i32>, String, String) {
    let mut child = command.stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    match stdin.write_all(input.as_bytes()).await {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    drop(stdin);
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("the command exits")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
