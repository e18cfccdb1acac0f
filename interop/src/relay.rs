//! A counting TCP relay: stands between a client and a server on
//! 127.0.0.1, forwards every byte untouched, and counts the bytes each way,
//! so a test can see what a compressed connection put on the wire. It is
//! plumbing, not a peer: both ends are the real client and server.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};

/// A relay for one connection, on its own threads.
#[derive(Debug)]
pub struct Relay {
    port: u16,
    handle: JoinHandle<(u64, u64)>,
}

impl Relay {
    /// Listens on an ephemeral port and relays the first connection to
    /// 127.0.0.1:`target`.
    ///
    /// # Panics
    /// When the listener cannot be bound.
    #[allow(clippy::expect_used)]
    pub fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let handle = thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return (0, 0);
            };
            let Ok(server) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], target))) else {
                return (0, 0);
            };
            let up = match (client.try_clone(), server.try_clone()) {
                (Ok(c), Ok(s)) => thread::spawn(move || pump(c, s)),
                _ => return (0, 0),
            };
            let down = pump(server, client);
            (up.join().unwrap_or(0), down)
        });
        Self { port, handle }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits until both directions ended; returns the bytes relayed
    /// (client to server, server to client).
    pub fn finish(self) -> (u64, u64) {
        self.handle.join().unwrap_or((0, 0))
    }
}

/// Copies `from` into `to` until EOF, then half-closes `to`; the count.
fn pump(mut from: TcpStream, mut to: TcpStream) -> u64 {
    let mut n = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                if to.write_all(buf.get(..k).unwrap_or_default()).is_err() {
                    break;
                }
                n += k as u64;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    n
}
