//! The one error type of this crate.
//!
//! Owns [`Error`] and [`TlsError`] and their messages. Each message says in
//! plain words what failed and, where a likely cause is known (a `wss://` URL
//! aimed at a plain server, a refused upgrade), names it. This module never
//! decides anything about the protocol: errors of the connection itself come
//! from the core as [`tether::Error`] or as the [`CloseInfo`] it ended with.

use core::fmt;
use std::io;

use tether::CloseInfo;
use tether::handshake::{Refusal, UrlError};
use tether::upgrade::HandshakeError;

/// Everything that can go wrong in this crate.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not a usable `ws://` or `wss://` URL.
    Url(UrlError),
    /// The TCP connection could not be made: the name did not resolve, the
    /// connection was refused, or the connect timeout passed.
    Connect {
        /// The host, as in the URL.
        host: String,
        /// The port.
        port: u16,
        /// What the system said.
        source: io::Error,
    },
    /// TLS could not be set up or failed. See [`TlsError::kind`].
    Tls(TlsError),
    /// The proxy could not be reached or did not open the tunnel: its
    /// refusal named (an HTTP status such as 407, a SOCKS5 reply code or
    /// authentication failure). The same variant in both adapters.
    Proxy(tether::handshake::proxy::ProxyError),
    /// The opening handshake did not complete: a bad answer or request, the
    /// peer closed the transport, or the handshake timeout passed.
    Handshake(HandshakeError),
    /// Our side refused the client's upgrade request (from the callback of
    /// [`accept_with`](crate::accept_with)); this refusal was sent.
    Refused(Refusal),
    /// The transport failed (read or write). Nothing more is written; after
    /// a failed write the connection still reads on to its end (the peer's
    /// Close may be there: then the end is its clean close, reported as
    /// `Closed`), and sends meanwhile fail with this too. After a failed
    /// read, or an end without the peer's Close, it reports 1006.
    Io(io::Error),
    /// The application's call was refused by the connection (rustls'
    /// `ApiMisuse`): an operation in a state that does not allow it (the
    /// text names the operation, the state, why the connection left `Open`
    /// and the states that allow it), a bad argument (a close code that
    /// may not be sent, a Ping payload over 125 bytes, invalid UTF-8 in a
    /// text fragment), or a full output queue. The peer's violations never
    /// appear here: they end the connection, reported by `Closed` with the
    /// close code we sent. The same variant in both adapters.
    Misuse(tether::Error),
    /// The connection has ended, and this is how: the peer's Close, ours,
    /// a protocol error, a timeout, or a transport lost without a Close
    /// (1006, `was_clean: false`).
    Closed(CloseInfo),
    /// A reconnecting client's send queue is full: what waits, the limits
    /// in force (in messages and in bytes) and whether a connection was up.
    /// The message was neither sent nor kept. The same in both adapters.
    QueueFull(tether::reconnect::QueueFull),
}

impl Error {
    /// How the connection ended, when this error says it has.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        match self {
            Self::Closed(info) => Some(info),
            Self::Misuse(tether::Error::InvalidState { cause, .. }) => cause.as_ref(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(e) => write!(f, "invalid WebSocket URL: {e}"),
            Self::Connect { host, port, source } => {
                write!(f, "cannot connect to {host} port {port}: {source}")
            }
            Self::Tls(e) => fmt::Display::fmt(e, f),
            Self::Proxy(e) => fmt::Display::fmt(e, f),
            Self::Handshake(e) => fmt::Display::fmt(e, f),
            Self::Refused(r) => write!(
                f,
                "the upgrade request was refused with {} {}: {}",
                r.status(),
                r.reason_phrase(),
                r.body()
            ),
            Self::Io(e) => write!(f, "the connection failed: {e}"),
            Self::Misuse(e) => fmt::Display::fmt(e, f),
            Self::Closed(info) => write!(f, "the WebSocket connection is closed: {info}"),
            Self::QueueFull(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Url(e) => Some(e),
            Self::Connect { source, .. } => Some(source),
            Self::Tls(e) => Some(e),
            Self::Proxy(e) => Some(e),
            Self::Handshake(e) => Some(e),
            Self::Io(e) => Some(e),
            Self::Misuse(e) => Some(e),
            Self::Refused(_) | Self::Closed(_) | Self::QueueFull(_) => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Self::Url(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl From<TlsError> for Error {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

/// What kind of TLS failure a [`TlsError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// A `wss://` URL, but this build has no `tls` feature.
    NotEnabled,
    /// The host of the URL cannot be a TLS server name.
    ServerName,
    /// A root certificate or TLS configuration could not be used.
    Config,
    /// The server answered something that is not TLS, or closed the
    /// connection on our ClientHello: most likely a plain `ws://` server.
    NotTls,
    /// The TLS handshake failed (certificate not trusted, no common
    /// protocol version, alert from the server, ...).
    Handshake,
    /// The TLS handshake did not complete within the connect timeout
    /// (`Config::connect_timeout`, which counts reaching the server, TLS
    /// included).
    Timeout,
}

/// A TLS failure, with its kind and the error from rustls or the transport.
#[derive(Debug)]
pub struct TlsError {
    kind: TlsErrorKind,
    detail: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl TlsError {
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn new(
        kind: TlsErrorKind,
        detail: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            kind,
            detail: detail.into(),
            source,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> TlsErrorKind {
        self.kind
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TlsErrorKind::NotEnabled => {
                "wss:// needs TLS, and tether-std was built without its `tls` feature"
            }
            TlsErrorKind::ServerName => "the host cannot be used as a TLS server name",
            TlsErrorKind::Config => "cannot set up TLS",
            TlsErrorKind::NotTls => {
                return write!(
                    f,
                    "the server did not answer TLS: is it a plain ws:// server? ({}; connect to it with ws://)",
                    self.detail
                );
            }
            TlsErrorKind::Handshake => "the TLS handshake failed",
            TlsErrorKind::Timeout => {
                return write!(
                    f,
                    "the TLS handshake did not complete within {}",
                    self.detail
                );
            }
        };
        f.write_str(what)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
