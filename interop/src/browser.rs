//! Headless Chromium on a fresh profile, as a [`Peer`] (its output is kept
//! for failure messages), stopped on drop with its profile removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{Peer, missing};

/// Where Debian's `chromium` package installs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium that opened one URL.
#[derive(Debug)]
pub struct Browser {
    process: Option<Peer>,
    profile: PathBuf,
}

impl Browser {
    /// Starts headless Chromium on `url` with a fresh profile, no sandbox
    /// (tests run as root), no GPU, and none of the background traffic
    /// (updates, sync, QUIC) that would leave 127.0.0.1.
    ///
    /// # Panics
    /// When Chromium is missing (run `bash interop/install.sh`) or cannot
    /// start.
    pub fn open(url: &str) -> Self {
        if !Path::new(CHROMIUM).is_file() {
            missing("Chromium (/usr/bin/chromium)");
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let profile = std::env::temp_dir().join(format!(
            "tether-interop-chromium-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        if let Err(e) = std::fs::create_dir_all(&profile) {
            panic!("cannot create {}: {e}", profile.display());
        }
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            url.to_owned(),
        ];
        let process = Peer::spawn("chromium", CHROMIUM, &args);
        Self {
            process: Some(process),
            profile,
        }
    }

    /// Chromium's output so far (for failure messages).
    pub fn transcript(&self) -> String {
        self.process
            .as_ref()
            .map(Peer::transcript)
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Stop Chromium gracefully, so it ends and reaps its own child
        // processes (zygote, renderer, GPU, network service), then remove
        // its profile.
        if let Some(mut process) = self.process.take() {
            process.terminate(Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
