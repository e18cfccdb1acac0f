//! A transport of the application's own (`tether_std::Transport`) that
//! holds bytes it has not written out, as a TLS layer does: the adapter
//! asks it (`Transport::holds_unwritten`), and the core's send timeout
//! counts those bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{RawPeer, assert_aborted, bounded, listen};
use tether::{Config, Message};
use tether_std::ClientOptions;

/// A TCP stream with a buffer of its own, written out before anything
/// else and on `flush`. Once `stuff` is set, its next read queues 8 MiB of
/// its own there (as rustls queues an alert while it reads): more than a
/// peer that reads nothing will ever take.
struct Holding {
    tcp: TcpStream,
    buf: Vec<u8>,
    stuff: Arc<AtomicBool>,
}

impl Holding {
    fn write_buf(&mut self) -> io::Result<()> {
        while !self.buf.is_empty() {
            match self.tcp.write(&self.buf)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => drop(self.buf.drain(..n)),
            }
        }
        Ok(())
    }
}

impl Read for Holding {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stuff.swap(false, Ordering::Relaxed) {
            self.buf.extend(std::iter::repeat_n(0u8, 8 << 20));
        }
        self.tcp.read(buf)
    }
}

impl Write for Holding {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_buf()?;
        self.tcp.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_buf()?;
        self.tcp.flush()
    }
}

impl tether_std::Transport for Holding {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(timeout)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.tcp.set_nonblocking(nonblocking)
    }

    fn holds_unwritten(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// RFC 6455 section 10.4: bytes the transport queued of its own accord
/// while the application only reads, behind a peer that takes nothing,
/// are bounded by `Config::send_timeout` too: the read that flushes them
/// ends with 1006 and says why. The adapter marked only what its own
/// writes left behind, and that flush blocked for ever.
#[test]
fn rfc6455_10_4_bytes_the_transport_holds_of_its_own_are_bounded_by_the_send_timeout() {
    bounded(Duration::from_secs(20), || {
        let (listener, url) = listen();
        let server = thread::spawn(move || {
            let mut peer = RawPeer::accept(&listener, Config::default());
            thread::sleep(Duration::from_millis(200));
            peer.send(Message::text("hello"));
            // reads nothing
            thread::sleep(Duration::from_secs(4));
            drop(peer);
        });
        let stuff = Arc::new(AtomicBool::new(false));
        let transport = Holding {
            tcp: TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/')).unwrap(),
            buf: Vec::new(),
            stuff: stuff.clone(),
        };
        let options = ClientOptions::new().config(Config {
            send_timeout: Some(Duration::from_millis(300)),
            ..Config::default()
        });
        let (mut ws, _) = tether_std::client(transport, &url, &options).unwrap();
        stuff.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let end = loop {
            match ws.read() {
                Ok(m) => assert_eq!(m, Message::text("hello")),
                Err(e) => break e,
            }
        };
        assert_aborted(
            &end,
            "send timeout",
            (started, Duration::from_secs(3)),
            "a transport's own bytes",
        );
        server.join().unwrap();
    });
}
