//! What every test of the `tether` binary uses: the binary as a command,
//! and a bound on every step.
#![allow(dead_code, unreachable_pub)]

use std::process::Stdio;

use std::time::Duration;
use tokio::io::AsyncBufReadExt;

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
