//! A peer process: started with piped stdio, its stdout read line by line
//! on a thread into a queue that tests wait on (blocking or async), its
//! stderr kept for the failure message, killed (SIGKILL) on drop (when its
//! transcript is printed: the test harness shows it if the test failed).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::{STEP, interop_dir, missing};

/// A running peer program. See the module docs of the peers in
/// `interop/peers/` for the lines each one prints and the commands it takes.
#[derive(Debug)]
pub struct Peer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Output>,
}

#[derive(Debug, Default)]
struct Output {
    state: Mutex<State>,
    /// Wakes a blocking waiter.
    cond: Condvar,
    /// Wakes an async waiter (one consumer: `notify_one` keeps a permit).
    notify: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Stdout lines not yet consumed by a wait.
    queue: VecDeque<String>,
    /// Everything the peer printed, for failure messages.
    transcript: Vec<String>,
    /// Stdout has ended (the process exited or closed it).
    ended: bool,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, line: String, stdout: bool) {
        let mut state = self.lock();
        if stdout {
            state.transcript.push(line.clone());
            state.queue.push_back(line);
        } else {
            state.transcript.push(format!("(stderr) {line}"));
        }
        drop(state);
        self.cond.notify_all();
        self.notify.notify_one();
    }

    fn end(&self) {
        self.lock().ended = true;
        self.cond.notify_all();
        self.notify.notify_one();
    }
}

/// What a wait found.
enum Next {
    Line(String),
    Ended,
    Pending,
}

impl State {
    fn next(&mut self) -> Next {
        match self.queue.pop_front() {
            Some(line) => Next::Line(line),
            None if self.ended => Next::Ended,
            None => Next::Pending,
        }
    }
}

impl Peer {
    /// Starts `interop/peers/<script>` with Node, where the pinned `ws`
    /// is installed (`interop/node_modules`).
    ///
    /// # Panics
    /// When Node or `ws` is missing (run `bash interop/install.sh`), or the
    /// process cannot start.
    pub fn node(script: &str, args: &[&str]) -> Self {
        let dir = interop_dir();
        if !dir.join("node_modules/ws/package.json").is_file() {
            missing("Node's `ws` (interop/node_modules)");
        }
        let script = dir.join("peers").join(script);
        let mut all = vec![script.to_string_lossy().into_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        Self::spawn(&format!("node {}", display(&script)), "node", &all)
    }

    /// Starts `interop/peers/<script>` with the Python of `interop/.venv`,
    /// where the pinned `websockets` is installed.
    ///
    /// # Panics
    /// When the venv is missing (run `bash interop/install.sh`), or the
    /// process cannot start.
    pub fn python(script: &str, args: &[&str]) -> Self {
        let dir = interop_dir();
        let python = dir.join(".venv/bin/python");
        if !python.is_file() {
            missing("Python's `websockets` (interop/.venv)");
        }
        let script = dir.join("peers").join(script);
        let mut all = vec![script.to_string_lossy().into_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        Self::spawn(
            &format!("python {}", display(&script)),
            &python.to_string_lossy(),
            &all,
        )
    }

    /// Starts any program with piped stdio.
    ///
    /// # Panics
    /// When the process cannot start.
    pub fn spawn(name: &str, program: &str, args: &[String]) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    missing(program)
                }
                panic!("cannot start {name}: {e}")
            });
        let output = Arc::new(Output::default());
        if let Some(stdout) = child.stdout.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                read_lines(stdout, |line| output.push(line, true));
                output.end();
            });
        }
        if let Some(stderr) = child.stderr.take() {
            let output = output.clone();
            std::thread::spawn(move || read_lines(stderr, |line| output.push(line, false)));
        }
        let stdin = child.stdin.take();
        Self {
            name: name.to_owned(),
            child,
            stdin,
            output,
        }
    }

    /// Sends one command line to the peer's stdin.
    ///
    /// # Panics
    /// When the peer's stdin is closed.
    pub fn send(&mut self, command: &str) {
        let sent = self
            .stdin
            .as_mut()
            .map(|stdin| writeln!(stdin, "{command}").and_then(|()| stdin.flush()));
        if !matches!(sent, Some(Ok(()))) {
            self.fail(&format!("cannot send {command:?}: stdin is closed"));
        }
    }

    /// Waits for the `listening <port>` line and returns the port.
    ///
    /// # Panics
    /// As [`Peer::until`].
    pub async fn port(&mut self) -> u16 {
        let line = self.line("listening ").await;
        self.parse_port(&line)
    }

    /// Blocking [`Peer::port`].
    ///
    /// # Panics
    /// As [`Peer::until`].
    pub fn port_blocking(&mut self) -> u16 {
        let line = self.line_blocking("listening ");
        self.parse_port(&line)
    }

    fn parse_port(&self, line: &str) -> u16 {
        line.trim_start_matches("listening ")
            .trim()
            .parse()
            .unwrap_or_else(|_| self.fail(&format!("bad listening line {line:?}")))
    }

    /// Waits (at most [`STEP`]) for the next line that starts with
    /// `prefix` and returns it, skipping the lines before.
    ///
    /// # Panics
    /// As [`Peer::until`].
    pub async fn line(&mut self, prefix: &str) -> String {
        self.until(prefix).await.pop().unwrap_or_default()
    }

    /// Blocking [`Peer::line`].
    ///
    /// # Panics
    /// As [`Peer::until`].
    pub fn line_blocking(&mut self, prefix: &str) -> String {
        self.until_blocking(prefix).pop().unwrap_or_default()
    }

    /// Waits (at most [`STEP`]) for the next line that starts with
    /// `prefix`; returns every line consumed, that one last.
    ///
    /// # Panics
    /// When the peer ends or the wait times out, with everything the peer
    /// printed.
    pub async fn until(&mut self, prefix: &str) -> Vec<String> {
        self.until_within(prefix, STEP).await
    }

    /// [`Peer::until`] with another limit than [`STEP`].
    ///
    /// # Panics
    /// As [`Peer::until`].
    pub async fn until_within(&mut self, prefix: &str, limit: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let next = self.output.lock().next();
            match next {
                Next::Line(line) => {
                    let done = line.starts_with(prefix);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Next::Ended => self.fail(&format!("ended before a line {prefix:?}")),
                Next::Pending => {
                    if tokio::time::timeout_at(deadline, self.output.notify.notified())
                        .await
                        .is_err()
                    {
                        self.fail(&format!("no line {prefix:?} within {limit:?}"));
                    }
                }
            }
        }
    }

    /// Blocking [`Peer::until`].
    ///
    /// # Panics
    /// As [`Peer::until`].
    pub fn until_blocking(&mut self, prefix: &str) -> Vec<String> {
        self.until_blocking_within(prefix, STEP)
    }

    /// Blocking [`Peer::until_within`].
    ///
    /// # Panics
    /// As [`Peer::until`].
    pub fn until_blocking_within(&mut self, prefix: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        let mut state = self.output.lock();
        loop {
            match state.next() {
                Next::Line(line) => {
                    let done = line.starts_with(prefix);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Next::Ended => {
                    drop(state);
                    self.fail(&format!("ended before a line {prefix:?}"));
                }
                Next::Pending => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        drop(state);
                        self.fail(&format!("no line {prefix:?} within {limit:?}"));
                    }
                    state = self
                        .output
                        .cond
                        .wait_timeout(state, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop (SIGTERM, so it can end its own children)
    /// and kills it if it has not exited within `grace`.
    pub fn terminate(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + grace;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.kill();
    }

    /// Everything the peer printed so far, one line each.
    pub fn transcript(&self) -> String {
        self.output.lock().transcript.join("\n")
    }

    /// Fails the test with the peer's transcript.
    ///
    /// # Panics
    /// Always.
    #[track_caller]
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{}: {what}\n--- its output ---\n{}\n---",
            self.name,
            self.transcript()
        )
    }
}

impl Drop for Peer {
    /// Kills the process and prints its transcript, which the test harness
    /// shows only when the test fails.
    fn drop(&mut self) {
        self.kill();
        eprintln!(
            "--- output of {} ---\n{}\n---",
            self.name,
            self.transcript()
        );
    }
}

/// The value of `key=value` in a report line (`reason=` takes the rest of
/// the line), or "" when absent.
pub fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let needle = format!("{key}=");
    let Some(start) = line
        .match_indices(&needle)
        .find(|(i, _)| *i == 0 || line.as_bytes().get(i - 1) == Some(&b' '))
        .map(|(i, _)| i + needle.len())
    else {
        return "";
    };
    let rest = line.get(start..).unwrap_or("");
    if key == "reason" {
        rest
    } else {
        rest.split(' ').next().unwrap_or("")
    }
}

fn read_lines(stream: impl Read, mut each: impl FnMut(String)) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
        let line = String::from_utf8_lossy(&buf);
        each(line.trim_end_matches(['\n', '\r']).to_owned());
        buf.clear();
    }
}

fn display(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
