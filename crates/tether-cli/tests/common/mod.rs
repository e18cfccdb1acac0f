//! What every test of the `tether` binary uses: the binary as a command,
//! and a bound on every step.
#![allow(dead_code, unreachable_pub)]

use std::process::Stdio;
use std::time::Duration;

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
