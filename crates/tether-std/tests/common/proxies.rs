//! Real proxy software for the proxy tests: Debian's `tinyproxy` (HTTP
//! CONNECT, with Basic credentials) and `microsocks` (SOCKS5, with
//! username/password), both installed by `interop/install.sh`, each
//! started on a free loopback port with a configuration made here and
//! killed on drop. One file for every crate's proxy tests (tether-tokio's
//! and the `tether` command's include it by path).
//!
//! A missing binary skips the test with a loud message, unless `CI` is
//! set: then it fails it, as CI must run them.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tether/tests/common/ports.rs"]
mod ports;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running proxy, killed on drop.
pub struct Proxy {
    child: Child,
    /// Its loopback port.
    pub port: u16,
    dir: PathBuf,
}

impl Proxy {
    /// `scheme://[user:password@]127.0.0.1:port`.
    pub fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => {
                format!("{scheme}://{user}:{password}@127.0.0.1:{}", self.port)
            }
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The binary's path, or `None` (after a loud message) when it is missing
/// and `CI` is unset; under `CI` a missing binary fails the test.
fn find(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{binary} is not installed, and CI is set: the proxy tests must run \
             (bash interop/install.sh installs it)"
        );
        eprintln!(
            "\n*** SKIPPED: {binary} is not installed, so this proxy test did not run \
             (bash interop/install.sh installs it; under CI=true this fails) ***\n"
        );
    }
    found
}

fn temp_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tether-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until `port` accepts, failing with the proxy's output if it
/// exits first.
fn wait_listening(mut child: Child, port: u16, dir: PathBuf, log: &Path) -> Proxy {
    let start = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Proxy { child, port, dir };
        }
        if let Some(status) = child.try_wait().unwrap() {
            let said = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the proxy exited with {status} before listening: {said}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the proxy is not listening on {port} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// tinyproxy on a free loopback port, allowing CONNECT to any port, with
/// Basic credentials required when `credentials` is given.
pub fn tinyproxy(credentials: Option<(&str, &str)>) -> Option<Proxy> {
    let binary = find("tinyproxy")?;
    let port = ports::free_port();
    let dir = temp_dir("tinyproxy");
    let log = dir.join("tinyproxy.log");
    // no ConnectPort line: CONNECT to every port is allowed
    let mut config = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\nLogLevel Info\n\
         LogFile \"{}\"\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
        log.display()
    );
    if let Some((user, password)) = credentials {
        config.push_str(&format!("BasicAuth {user} {password}\n"));
    }
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(&conf, config).unwrap();
    let child = Command::new(binary)
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(wait_listening(child, port, dir, &log))
}

/// microsocks (SOCKS5) on a free loopback port, with username/password
/// required when `credentials` is given.
pub fn microsocks(credentials: Option<(&str, &str)>) -> Option<Proxy> {
    let binary = find("microsocks")?;
    let port = ports::free_port();
    let dir = temp_dir("microsocks");
    let log = dir.join("microsocks.log");
    let mut command = Command::new(binary);
    command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((user, password)) = credentials {
        command.args(["-u", user, "-P", password]);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Some(wait_listening(child, port, dir, &log))
}
