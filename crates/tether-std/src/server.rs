//! The server side: [`accept`] and [`accept_with`] run the opening
//! handshake on an accepted stream.
//!
//! Owns the moving of the handshake's bytes under a deadline (a slow or
//! silent client cannot hold the thread past the handshake timeout, and
//! the refusal's linger after it) and the writing of refusals, ended as
//! the core says (the refusal within `Config::close_timeout`, then a
//! linger of at most `Config::fin_wait` for the client's end). Parsing
//! and checking the request belong to
//! [`tether::upgrade::ServerUpgrade`]; the answer to
//! [`Request::accept`](tether::handshake::Request::accept). This module never
//! parses HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tether::Config;
use tether::handshake::{AcceptOptions, Limits, Refusal, Request};
use tether::upgrade::{HandshakeError, ServerUpgrade};

use crate::handshake_io::{self, Deadline, Read};
use crate::websocket::{Settings, adapter_config};
use crate::{Error, Transport, WebSocket};

/// How a server accepts: the connection's [`Config`], the request head
/// limits and the handshake timeout.
///
/// ```
/// use std::time::Duration;
/// use tether_std::ServerOptions;
/// let options = ServerOptions::new().handshake_timeout(Duration::from_secs(5));
/// ```
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// One config for every connection accepted with these options.
    config: Arc<Config>,
    limits: Limits,
    settings: Settings,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            config: adapter_config(Config::default()),
            limits: Limits::default(),
            settings: Settings::default(),
        }
    }
}

impl ServerOptions {
    /// The defaults: `Config::default()`, `Limits::default()` (16 KiB head,
    /// 64 headers), a 10 s handshake timeout, a 64 KiB read buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The connection's limits and policies (keep-alive, close timeout, ...).
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = adapter_config(config);
        self
    }

    /// Accepts a client's permessage-deflate (RFC 7692) offer with these
    /// settings (sets `Config::deflate`; `config()` after this replaces it).
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate(mut self, deflate: tether::DeflateConfig) -> Self {
        Arc::make_mut(&mut self.config).deflate = Some(deflate);
        self
    }

    /// Limits on the request head (over them: 431).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How long the opening handshake may take from `accept` on: the
    /// client's request read and our answer written (a TLS handshake on
    /// the stream included). Sets `Config::handshake_timeout` (default
    /// 10 s; `config()` after this replaces it).
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).handshake_timeout = timeout;
        self
    }

    /// Bytes of received events that may wait for the application before
    /// reading ahead stops: sets `Config::max_unread_bytes` (default 1 MiB;
    /// `config()` after this replaces it).
    #[must_use]
    pub fn max_unread_bytes(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).max_unread_bytes = bytes;
        self
    }

    /// The size of the read buffer, the most read per system call. Default
    /// 64 KiB.
    #[must_use]
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.settings.read_buffer_size = bytes;
        self
    }

    /// A byte budget shared by every connection accepted with these
    /// options (a server's, each connection on its own thread): received
    /// events waiting for their applications (`Event::footprint` each)
    /// count against it, and while it is spent no connection that holds
    /// some of it reads ahead (while its application sends; what it does
    /// not read waits in the socket, and the peer is pushed back). A
    /// connection holding none always reads, so one application that
    /// stops reading cannot stall the others. What the server's
    /// applications have not taken is at most the budget plus, per
    /// connection, one read (the read buffer, `read_buffer_size`) and the
    /// message it completes; frames and messages still arriving are bounded
    /// by each connection's own limits, as the tokio adapter's
    /// `ServerOptions::budget` counts them. When it stays spent for
    /// `Config::budget_timeout`, the connection holding the most is closed
    /// with 1013 (try again later) and its unread messages dropped
    /// (`Connection::budget_check` decides), at that connection's next
    /// call: a blocking connection does nothing between its application's
    /// calls. Default none: each connection is bounded only by its own
    /// `Config::max_unread_bytes`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tether_std::ServerOptions;
    /// let budget = Arc::new(tether::Budget::new(256 << 20));
    /// let options = ServerOptions::new().budget(budget);
    /// ```
    #[must_use]
    pub fn budget(mut self, budget: Arc<tether::Budget>) -> Self {
        self.settings.budget = Some(budget);
        self
    }
}

/// Runs the server's opening handshake on `stream` and accepts any valid
/// upgrade (no subprotocol). Returns the socket and the request (path,
/// headers...), as the tokio adapter's `accept` does. See [`accept_with`].
///
/// # Errors
/// As [`accept_with`].
pub fn accept<S: Transport>(
    stream: S,
    options: &ServerOptions,
) -> Result<(WebSocket<S>, Request), Error> {
    accept_with(stream, options, |_| Ok(AcceptOptions::new()))
}

/// Runs the server's opening handshake on `stream`: reads the request
/// (within the handshake timeout), lets `callback` look at it (path,
/// headers, Origin, offered subprotocols) and pick the [`AcceptOptions`]
/// (e.g. a subprotocol with [`Request::pick_subprotocol`]) or a
/// [`Refusal`], then writes the 101 or the refusal.
///
/// Do not accept extensions in the options: the adapter answers the ones
/// its config switches on (permessage-deflate with `Config::deflate`) and
/// runs only those.
///
/// # Errors
/// [`Error::Handshake`] with [`HandshakeError::Request`] for a request that
/// is not a valid upgrade (its refusal, e.g. 400 or 426, was written first,
/// to a TLS ClientHello too, so a `wss://` client can name the cause),
/// [`HandshakeError::Eof`] when the client stopped,
/// [`HandshakeError::Timeout`] when it was too slow (a 408 was written,
/// unless a TLS handshake was still under way);
/// [`Error::Refused`] when the callback refused (the refusal was written);
/// [`Error::Handshake`] with [`HandshakeError::Build`] when the options
/// cannot be written (a 500 was written); [`Error::Io`] or [`Error::Tls`]
/// when the stream fails. A refusal is followed by the core's linger
/// ([`tether::upgrade::Refusing`]): these return once the client has
/// ended the transport, or `Config::fin_wait` (2 s) after the refusal
/// went out at most.
pub fn accept_with<S, F>(
    mut stream: S,
    options: &ServerOptions,
    callback: F,
) -> Result<(WebSocket<S>, Request), Error>
where
    S: Transport,
    F: FnOnce(&Request) -> Result<AcceptOptions, Refusal>,
{
    let deadline = Deadline::after(options.config.handshake_timeout, tether::Role::Server);
    // answers a permessage-deflate offer when the config's `deflate` is set
    let mut upgrade = ServerUpgrade::with_config(options.limits, &options.config);
    // on this thread's stack: no heap buffer per handshake
    let mut buf = [0u8; tether::upgrade::HEAD_READ];
    let (request, leftover) = loop {
        let read = match handshake_io::read(&mut stream, &mut buf, deadline) {
            Ok(Read::Eof) => Err(upgrade.eof()),
            Ok(Read::Data(n)) => upgrade.receive(buf.get(..n).unwrap_or_default()),
            // the client was too slow: 408, then the linger
            Err(Error::Handshake(e)) => Err(e),
            Err(e) => return Err(e),
        };
        match read {
            Ok(Some(done)) => break done,
            Ok(None) => {}
            Err(e) => {
                let ending = upgrade.fail(&e, Instant::now());
                // the request's buffer is not held through the linger
                drop(upgrade);
                handshake_io::linger(&mut stream, &ending, &mut buf, deadline.role);
                return Err(e.into());
            }
        }
    };
    let accept = match callback(&request) {
        Ok(accept) => accept,
        Err(refusal) => {
            let ending = upgrade.refuse(&refusal, Instant::now());
            drop((upgrade, request, leftover));
            handshake_io::linger(&mut stream, &ending, &mut buf, deadline.role);
            return Err(Error::Refused(refusal));
        }
    };
    let answer = match upgrade.accept(&request, accept) {
        Ok(answer) => answer,
        Err(e) => {
            let e = HandshakeError::Build(e);
            let ending = upgrade.fail(&e, Instant::now());
            drop((upgrade, request, leftover));
            handshake_io::linger(&mut stream, &ending, &mut buf, deadline.role);
            return Err(e.into());
        }
    };
    // a 101 cut short by the deadline is not followed by a 408: the
    // transport is just dropped
    handshake_io::write_all(&mut stream, &answer, deadline)?;
    handshake_io::clear_timeouts(&stream)?;
    let conn = upgrade.into_connection(options.config.clone(), Instant::now(), &leftover);
    let ws = WebSocket::with_settings(stream, conn, &options.settings)?;
    Ok((ws, request))
}
