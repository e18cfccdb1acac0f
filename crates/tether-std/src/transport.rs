//! The byte streams a [`WebSocket`](crate::WebSocket) runs over.
//!
//! Owns the [`Transport`] trait (a blocking `Read + Write` stream whose read
//! timeout can be armed, so the connection's timers fire while the
//! application blocks in `read`) and its implementations for `TcpStream`,
//! `UnixStream`, rustls streams and [`MaybeTlsStream`]. It never interprets
//! the bytes it moves.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// A blocking byte stream with the controls the adapter needs.
///
/// Only [`set_read_timeout`](Transport::set_read_timeout) is required: it is
/// how the connection's timers (keep-alive, close timeout) fire while the
/// application blocks in [`WebSocket::read`](crate::WebSocket::read). The
/// other methods have defaults for streams that cannot do them; see each.
///
/// To run over a stream of your own that has no timeouts at all, return
/// `Err(io::ErrorKind::Unsupported.into())` from `set_read_timeout`: reads
/// then block until bytes arrive, so timers only run when there is traffic,
/// and `close` waits for the peer's Close without a time limit.
pub trait Transport: Read + Write {
    /// Sets how long a read may block before failing with `WouldBlock` or
    /// `TimedOut`; `None` blocks until bytes arrive. Never called with zero.
    ///
    /// # Errors
    /// As the system reports; `Unsupported` turns timers off (see above).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Sets how long a write may block; `None` blocks until the bytes are
    /// taken. Used to wake a blocked write at the connection's deadlines
    /// (keep-alive, close timeout), and to write the goodbye on drop
    /// without waiting when [`set_nonblocking`](Transport::set_nonblocking)
    /// is unsupported. The default reports `Unsupported` (writes then block
    /// as long as they need, and a drop sends no goodbye unless
    /// non-blocking mode works).
    ///
    /// # Errors
    /// As the system reports.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Switches non-blocking mode, in which reads with nothing to read fail
    /// at once with `WouldBlock`. [`WebSocket::send`](crate::WebSocket::send)
    /// uses it to take in waiting Pings (and answer them) without blocking.
    /// The default reports `Unsupported` (sends then leave incoming frames to
    /// the next `read`).
    ///
    /// # Errors
    /// As the system reports.
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        let _ = nonblocking;
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Ends the transport after the last bytes were written: TLS sends its
    /// `close_notify`, TCP its FIN (shutting down writing only: reading
    /// may go on, for the peer's end, when the core says,
    /// `tether::Connection::close_expected`). The default flushes.
    ///
    /// # Errors
    /// As the system reports; the adapter ignores them (the connection has
    /// already ended).
    fn shutdown(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// Whether a security layer's own handshake is still under way (a
    /// rustls stream before its handshake completed). A server whose
    /// WebSocket handshake failed then writes no HTTP answer: it could go
    /// out only by finishing that handshake, which a client that trickles
    /// its TLS hello would stretch past every deadline. The default says
    /// no.
    fn handshaking(&self) -> bool {
        false
    }

    /// One read that waits on the network at most once, so the read
    /// timeout bounds the call: as [`Read::read`], which it is by default.
    /// A transport whose `read` may wait more than once (a rustls stream
    /// reads record after record until it has plaintext to give, each read
    /// with a timeout of its own, so a peer that trickles a record byte by
    /// byte held `read`, and every deadline of the connection, for as long
    /// as it trickled) reads once here and fails with `WouldBlock` when
    /// that gave nothing to return yet; the adapter then looks at its
    /// deadlines and reads again.
    ///
    /// # Errors
    /// As [`Read::read`], plus `WouldBlock` as said.
    fn read_bounded(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(buf)
    }

    /// One write, as [`Write::write_vectored`], which it is by default,
    /// except that a transport whose own buffer is full says `WouldBlock`
    /// rather than `Ok(0)` (rustls, when its blocked write timed out at a
    /// deadline and read instead): the adapter retries a write that would
    /// block until the core's deadline ends the wait, and takes `Ok(0)` as
    /// a transport that cannot take more (`WriteZero`), as `std::io` does.
    ///
    /// # Errors
    /// As [`Write::write_vectored`], plus `WouldBlock` as said.
    fn write_bounded(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored(bufs)
    }

    /// Whether the transport holds bytes it has not written out yet (a
    /// TLS layer's records, its own alerts included), which a `flush`
    /// would wait on: the core's `Config::send_timeout` then counts them
    /// (`Connection::set_unflushed`). The default (a stream that writes
    /// straight to the socket) holds none.
    fn holds_unwritten(&self) -> bool {
        false
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, nonblocking)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Write)
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_nonblocking(self, nonblocking)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, Shutdown::Write)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        (**self).set_nonblocking(nonblocking)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        (**self).shutdown()
    }

    fn read_bounded(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_bounded(buf)
    }

    fn write_bounded(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (**self).write_bounded(bufs)
    }

    fn holds_unwritten(&self) -> bool {
        (**self).holds_unwritten()
    }

    fn handshaking(&self) -> bool {
        (**self).handshaking()
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        (**self).set_nonblocking(nonblocking)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        (**self).shutdown()
    }

    fn read_bounded(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_bounded(buf)
    }

    fn write_bounded(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (**self).write_bounded(bufs)
    }

    fn holds_unwritten(&self) -> bool {
        (**self).holds_unwritten()
    }

    fn handshaking(&self) -> bool {
        (**self).handshaking()
    }
}

/// A rustls stream (client or server side) over any transport: the
/// timeouts and non-blocking mode are the socket's; shutdown sends TLS
/// `close_notify` before shutting the socket.
#[cfg(feature = "tls")]
impl<C, D, T> Transport for rustls::StreamOwned<C, T>
where
    C: core::ops::DerefMut + core::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
    T: Transport,
{
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(timeout)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking)
    }

    /// Records rustls has not written out: ours, or its own (an alert it
    /// queued while reading, behind a full socket).
    fn holds_unwritten(&self) -> bool {
        self.conn.wants_write() || self.sock.holds_unwritten()
    }

    fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        // The alert (and anything still buffered in rustls) goes out within
        // the socket's write timeout, or at once when it is non-blocking
        // (the adapter's choice: see `WebSocket::end_transport`); TCP is
        // shut down either way.
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.sock.shutdown()
    }

    /// Plaintext rustls already holds; else its own records out (a
    /// handshake's next flight), one read from the socket, and what that
    /// decrypted, or `WouldBlock` (rustls' own `read` would read on).
    fn read_bounded(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.conn.reader().read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return done,
        }
        if !self.conn.wants_read() {
            // nothing rustls can take in now: its own read knows what to do
            return self.read(buf);
        }
        // records of its own that cannot go out now (a full socket, a
        // broken pipe) must not keep what arrived from being read: the
        // peer's Pong or Close may be there; a write error comes back on
        // the next write
        let _ = self.write_own_records();
        let n = self.conn.read_tls(&mut self.sock)?;
        if let Err(e) = self.conn.process_new_packets() {
            // the alert that says why goes out first, as rustls' own read does
            let _ = self.write_own_records();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        let _ = self.write_own_records();
        match self.conn.reader().read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            // the socket's end without a whole record (rustls reports it)
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.read(buf),
            done => done,
        }
    }

    /// rustls' own write; when it took nothing (its buffer is full), one
    /// write of what it holds to the socket, within the socket's write
    /// timeout, tells why: progress (`WouldBlock`: again), the timeout
    /// (the caller's deadline), or a socket that takes nothing (`Ok(0)`:
    /// broken, as for any transport).
    fn write_bounded(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // `StreamOwned` writes only the first slice (a frame's header
        // would go out as a record and a write of its own); `Stream`
        // takes them all
        let taken = rustls::Stream::new(&mut self.conn, &mut self.sock).write_vectored(bufs);
        match taken {
            Ok(0) if bufs.iter().any(|b| !b.is_empty()) => {
                match self.conn.write_tls(&mut self.sock)? {
                    0 => Ok(0),
                    _ => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
            done => done,
        }
    }
}

#[cfg(feature = "tls")]
trait OwnRecords {
    fn write_own_records(&mut self) -> io::Result<()>;
}

#[cfg(feature = "tls")]
impl<C, D, T> OwnRecords for rustls::StreamOwned<C, T>
where
    C: core::ops::DerefMut + core::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
    T: Transport,
{
    /// Writes what rustls queued of its own (within the socket's write
    /// timeout).
    fn write_own_records(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock)? == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// The stream [`connect`](crate::connect) returns: plain TCP for `ws://`,
/// TLS over TCP for `wss://` (with the `tls` feature).
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: rustls over TCP.
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.get_ref(),
        }
    }

    /// Whether this is TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write_vectored(bufs),
            // `StreamOwned` writes one slice at a time; `Stream` takes all.
            #[cfg(feature = "tls")]
            Self::Tls(s) => {
                let s = &mut **s;
                rustls::Stream::new(&mut s.conn, &mut s.sock).write_vectored(bufs)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.flush(),
        }
    }
}

impl Transport for MaybeTlsStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.tcp().set_nonblocking(nonblocking)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => Transport::shutdown(s),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Transport::shutdown(&mut **s),
        }
    }

    fn read_bounded(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.read_bounded(buf),
        }
    }

    fn write_bounded(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.write_bounded(bufs),
        }
    }

    fn holds_unwritten(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.holds_unwritten(),
        }
    }

    fn handshaking(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.handshaking(),
        }
    }
}
