//! Blocking reads and writes bounded by the handshake deadline.
//!
//! Owns the timing of the opening handshake only: every read and write
//! before the connection exists goes through here, with the stream's
//! timeouts set to what is left of the handshake timeout, so a peer that
//! trickles or sends nothing cannot hold a thread. The HTTP itself is the
//! core's ([`tether::upgrade`]); this module never looks at the bytes.

use std::io;
use std::time::{Duration, Instant};

use tether::Role;
use tether::upgrade::HandshakeError;

use crate::{Error, Transport};

/// What one bounded read gave.
pub(crate) enum Read {
    /// Bytes, in `buf[..n]`.
    Data(usize),
    /// The peer ended the transport.
    Eof,
}

/// The deadline of one opening handshake, and our side of it (which
/// names whose certificate a TLS failure rejected).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Instant,
    timeout: Duration,
    pub(crate) role: Role,
}

impl Deadline {
    pub(crate) fn after(timeout: Duration, role: Role) -> Self {
        Self {
            at: tether::deadline(Instant::now(), timeout),
            timeout,
            role,
        }
    }

    /// What is left, or the timeout error once nothing is.
    fn left(&self) -> Result<Duration, Error> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(self.expired())
        } else {
            Ok(left)
        }
    }

    /// The deadline `at` of a refused handshake's ending
    /// ([`linger`]), which reports no error of its own when it passes.
    fn at(at: Instant, role: Role) -> Self {
        Self {
            at,
            timeout: Duration::ZERO,
            role,
        }
    }

    /// When it passes.
    pub(crate) fn instant(&self) -> Instant {
        self.at
    }

    pub(crate) fn expired(&self) -> Error {
        Error::Handshake(HandshakeError::Timeout(self.timeout))
    }
}

/// One read of at most `buf.len()` bytes before the deadline.
pub(crate) fn read<S: Transport>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Deadline,
) -> Result<Read, Error> {
    loop {
        let left = deadline.left()?;
        set(stream.set_read_timeout(Some(left)))?;
        match stream.read_bounded(buf) {
            Ok(0) => return Ok(Read::Eof),
            Ok(n) => return Ok(Read::Data(n)),
            Err(e) if tether::read_error_is_eof(&e) => return Ok(Read::Eof),
            Err(e) if retry(&e) => {}
            Err(e) => return Err(crate::tls::map_io(e, deadline.role)),
        }
    }
}

/// Writes all of `bytes` (and flushes) before the deadline.
pub(crate) fn write_all<S: Transport>(
    stream: &mut S,
    mut bytes: &[u8],
    deadline: Deadline,
) -> Result<(), Error> {
    while !bytes.is_empty() {
        let left = deadline.left()?;
        set(stream.set_write_timeout(Some(left)))?;
        match stream.write_bounded(&[io::IoSlice::new(bytes)]) {
            Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if retry(&e) => {}
            Err(e) => return Err(crate::tls::map_io(e, deadline.role)),
        }
    }
    loop {
        match stream.flush() {
            Ok(()) => return Ok(()),
            Err(e) if retry(&e) => {
                deadline.left()?;
            }
            Err(e) => return Err(crate::tls::map_io(e, deadline.role)),
        }
    }
}

/// Ends a server handshake that failed or was refused, as the core says
/// ([`tether::upgrade::Refusing`]): the answer and the end of our writing
/// before its send deadline, then reads that drop what the client still
/// sends until its end or the read deadline, so the transport is not
/// closed with bytes unread (a reset that may destroy the answer before
/// the client reads it). Best effort: the handshake failed anyway, and
/// any error ends it. No buffer grows: what is read lands in `buf` and is
/// dropped.
pub(crate) fn linger<S: Transport>(
    stream: &mut S,
    ending: &tether::upgrade::Refusing,
    buf: &mut [u8],
    role: Role,
) {
    let send = Deadline::at(ending.send_deadline(), role);
    // no answer through a TLS handshake still under way: it would go out
    // only by finishing that handshake, at the client's pace
    let response = ending.response().filter(|_| !stream.handshaking());
    if let Some(response) = response
        && write_all(stream, response, send).is_err()
    {
        return;
    }
    // the end of our writing (TLS close_notify, TCP FIN), bounded too
    match send.left() {
        Ok(left) if set(stream.set_write_timeout(Some(left))).is_ok() => {}
        _ => return,
    }
    if stream.shutdown().is_err() {
        return;
    }
    let Some(until) = ending.read_deadline(Instant::now()) else {
        return;
    };
    let until = Deadline::at(until, role);
    while let Ok(Read::Data(_)) = read(stream, buf, until) {}
}

/// Clears the timeouts the handshake set, before the connection starts.
pub(crate) fn clear_timeouts<S: Transport>(stream: &S) -> Result<(), Error> {
    set(stream.set_read_timeout(None))?;
    set(stream.set_write_timeout(None))
}

/// `Unsupported` is not an error here: such a stream just has no deadline.
fn set(result: io::Result<()>) -> Result<(), Error> {
    match result {
        Err(e) if e.kind() != io::ErrorKind::Unsupported => Err(Error::Io(e)),
        _ => Ok(()),
    }
}

fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
