//! Shared helpers: a time bound for every test, listeners on ephemeral
//! ports, and a raw peer (tether's sans-IO core over a bare socket, no
//! adapter) to observe exactly what the adapter writes.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tether::handshake::{AcceptOptions, ClientConfig, ClientHandshake, Limits};
use tether::upgrade::{ClientUpgrade, ServerUpgrade};
use tether::{Config, Connection, Event, Message, Role};
use tether_std::{ServerOptions, WebSocket};

/// Runs `f` on its own thread and fails the test if it takes longer than
/// `limit` (a hung thread is left behind; the test does not hang).
pub fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => {
            let _ = handle.join();
            value
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish within {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread ended without sending"),
        },
    }
}

/// A listener on an ephemeral port of 127.0.0.1, and its `ws://` URL.
pub fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, format!("ws://127.0.0.1:{port}/"))
}

/// Accepts one connection with `options` on a thread and runs `handler`.
pub fn serve<T: Send + 'static>(
    options: ServerOptions,
    handler: impl FnOnce(WebSocket<TcpStream>) -> T + Send + 'static,
) -> (String, thread::JoinHandle<T>) {
    let (listener, url) = listen();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let (ws, _) = tether_std::accept(stream, &options).unwrap();
        handler(ws)
    });
    (url, handle)
}

/// A peer with no adapter: tether's core over a bare socket.
pub struct RawPeer {
    pub stream: TcpStream,
    pub conn: Connection,
    buf: Vec<u8>,
}

impl RawPeer {
    /// Connects and runs the client handshake for `url` by hand.
    pub fn connect(url: &str, config: Config) -> Self {
        let addr = url.trim_start_matches("ws://").trim_end_matches('/');
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let hs = ClientHandshake::new(url, ClientConfig::new()).unwrap();
        let mut upgrade = ClientUpgrade::new(hs);
        stream.write_all(upgrade.request()).unwrap();
        let mut buf = vec![0; 64 * 1024];
        let leftover = loop {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "server closed during the handshake");
            if let Some((_, rest)) = upgrade.receive(&buf[..n]).unwrap() {
                break rest;
            }
        };
        let mut peer = Self {
            stream,
            conn: Connection::new(Role::Client, config, Instant::now()),
            buf,
        };
        peer.conn.receive(Instant::now(), &leftover).unwrap();
        peer
    }

    /// Accepts one connection and answers its upgrade by hand.
    pub fn accept(listener: &TcpListener, config: Config) -> Self {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut upgrade = ServerUpgrade::new(Limits::default());
        let mut buf = vec![0; 64 * 1024];
        let (request, leftover) = loop {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "client closed during the handshake");
            if let Some(done) = upgrade.receive(&buf[..n]).unwrap() {
                break done;
            }
        };
        stream
            .write_all(&request.accept(&AcceptOptions::new()).unwrap())
            .unwrap();
        let mut peer = Self {
            stream,
            conn: Connection::new(Role::Server, config, Instant::now()),
            buf,
        };
        peer.conn.receive(Instant::now(), &leftover).unwrap();
        peer
    }

    /// Writes whatever the core queued.
    pub fn flush(&mut self) {
        let out = self.conn.take_output();
        self.stream.write_all(&out).unwrap();
    }

    pub fn send(&mut self, message: Message) {
        self.conn.send(message).unwrap();
        self.flush();
    }

    pub fn ping(&mut self, payload: &'static [u8]) {
        self.conn.ping(payload.into()).unwrap();
        self.flush();
    }

    /// The next event within `limit`, or `None`. Reads the socket as needed;
    /// end of input becomes the core's 1006.
    pub fn next_event(&mut self, limit: Duration) -> Option<Event> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(event) = self.conn.poll_event() {
                return Some(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut self.buf) {
                Ok(0) => self.conn.receive_eof(),
                Ok(n) => {
                    let _ = self.conn.receive(Instant::now(), &self.buf[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("raw peer read failed: {e}"),
            }
        }
    }

    /// Whether the other side closed the TCP connection within `limit`
    /// (reads and drops anything before the end).
    pub fn sees_eof(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut self.buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// `len` bytes of a repeating pattern.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Asserts that `end` is the connection's abnormal end, 1006 for `why`
/// (a word of its reason), come within `within` of `started`; `case`
/// names the case in a failure.
pub fn assert_aborted(
    end: &tether_std::Error,
    why: &str,
    (started, within): (Instant, Duration),
    case: &str,
) {
    match end {
        tether_std::Error::Closed(info) => {
            assert_eq!(info.code.as_u16(), 1006, "{case}: {info:?}");
            assert!(info.reason.contains(why), "{case}: {info:?}");
        }
        other => panic!("{case}: expected the end (1006, {why}), got {other:?}"),
    }
    assert!(
        started.elapsed() < within,
        "{case}: ended after {:?}",
        started.elapsed()
    );
}
