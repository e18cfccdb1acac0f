//! # tether-interop
//!
//! Test support for running tether against real peers: Node's `ws`, Python's
//! `websockets` and headless Chromium. The peers are pinned in
//! `interop/package.json` + `package-lock.json` and
//! `interop/requirements.txt`, installed by `interop/install.sh`, and
//! started by the tests in `interop/tests/` as child processes on ephemeral
//! ports of 127.0.0.1.
//!
//! - [`Peer`]: a child process that reports on stdout one event a line and
//!   takes commands on stdin; waits on its output (blocking or async) with a
//!   limit, and is killed on drop.
//! - [`Browser`]: headless Chromium on a fresh profile, killed on drop.
//! - [`payload`]: seeded test messages and the CRC-32 the peers report.
//! - [`Relay`]: a TCP relay that counts the bytes each way (what a
//!   compressed connection put on the wire).
//! - [`run_tokio`] and [`run_blocking`]: a whole test, bounded in time.
//!
//! A missing peer is a failure, never a skip: the message says to run
//! `bash interop/install.sh`.

mod browser;
pub mod payload;
mod peer;
mod relay;

use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

pub use browser::{Browser, CHROMIUM};
pub use peer::{Peer, field};
pub use relay::Relay;

/// The limit on one wait for a peer's output (and on one step of a test).
pub const STEP: Duration = Duration::from_secs(10);

/// The limit on a whole scenario.
pub const SCENARIO: Duration = Duration::from_secs(30);

/// The `interop/` folder (peers, `node_modules`, `.venv`).
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Panics with the way to install the peers: they are missing.
#[track_caller]
pub(crate) fn missing(what: &str) -> ! {
    panic!(
        "{what} is not installed: run `bash interop/install.sh` from the repository root \
         (interop tests fail rather than skip when a peer is missing)"
    )
}

/// Runs an async scenario on a fresh current-thread runtime and fails it
/// after `limit`. Dropping the future on timeout kills its peers.
///
/// # Panics
/// When the scenario panics or takes longer than `limit`.
pub fn run_tokio<F: Future<Output = ()>>(limit: Duration, scenario: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot build a tokio runtime: {e}"));
    runtime.block_on(async {
        if tokio::time::timeout(limit, scenario).await.is_err() {
            panic!("scenario did not finish within {limit:?}");
        }
    });
}

/// Bounds one async step of a scenario by [`STEP`].
///
/// # Panics
/// When the step takes longer.
#[track_caller]
pub fn within<F: Future>(step: F) -> impl Future<Output = F::Output> {
    let caller = std::panic::Location::caller();
    async move {
        match tokio::time::timeout(STEP, step).await {
            Ok(out) => out,
            Err(_) => panic!("step at {caller} did not finish within {STEP:?}"),
        }
    }
}

/// Runs a blocking scenario on its own thread and fails it after `limit`
/// (the thread is left behind; its peers end with the test process, as
/// they exit when their stdin closes).
///
/// # Panics
/// When the scenario panics (with its own message) or takes longer than
/// `limit`.
pub fn run_blocking<T, F>(limit: Duration, scenario: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let out = scenario();
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(limit) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("scenario did not finish within {limit:?}")
        }
    }
}
