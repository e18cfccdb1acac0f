//! The adapter's error: I/O, handshake, protocol, TLS, or "already closed".

use std::{fmt, io, time::Duration};

use tether::CloseInfo;
use tether::upgrade::HandshakeError;

/// An error from connecting, accepting, sending or receiving.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    Io(io::Error),
    /// The opening handshake failed; the message names the likely cause.
    Handshake(HandshakeError),
    /// The application's call was refused by the connection (rustls'
    /// `ApiMisuse`): an operation in a state that does not allow it (the
    /// text names the operation, the state, why the connection left `Open`
    /// and the states that allow it), a bad argument (a close code that
    /// may not be sent, a Ping payload over 125 bytes, invalid UTF-8 in a
    /// text fragment), or a full output queue. The peer's violations never
    /// appear here: they end the connection, reported by `Closed` with the
    /// close code we sent. The same variant in both adapters.
    Misuse(tether::Error),
    /// The connection has ended, or its transport failed and it is ending
    /// (it reads on to the peer's last bytes, which decide how: its final
    /// event says); how it ended, when known (`None` until then).
    Closed(Option<CloseInfo>),
    /// The URL is not a usable `ws://` or `wss://` URL.
    Url(String),
    /// TLS failed; the message names the likely cause.
    Tls(String),
    /// No address of the server could be connected (the name did not
    /// resolve, every address refused or failed, or another connection to
    /// it was still connecting when the connect timeout ran out: RFC 6455
    /// section 4.1): the host and port named, as the blocking adapter's
    /// `Error::Connect` names them.
    Connect {
        /// The host, as in the URL.
        host: String,
        /// The port.
        port: u16,
        /// What the system said.
        source: io::Error,
    },
    /// Connecting took longer than allowed.
    ConnectTimeout(Duration),
    /// The proxy could not be reached or did not open the tunnel: its
    /// refusal named (an HTTP status such as 407, a SOCKS5 reply code or
    /// authentication failure). The same variant in both adapters.
    Proxy(tether::handshake::proxy::ProxyError),
    /// A reconnecting client's send queue is full: what waits, the limits
    /// in force (in messages and in bytes) and whether a connection was up.
    /// The message was neither sent nor kept. The same in both adapters.
    QueueFull(tether::reconnect::QueueFull),
    /// The server cannot carry a WebSocket over HTTP/2 or HTTP/3: it did
    /// not agree to the protocol (TLS ALPN), or did not enable extended
    /// CONNECT (`SETTINGS_ENABLE_CONNECT_PROTOCOL`, RFC 8441 section 3, RFC
    /// 9220 section 3). The message names which; HTTP/1.1 may still work.
    ExtendedConnectUnavailable(String),
    /// The application refused the upgrade; this response was sent.
    Refused {
        /// The HTTP status sent.
        status: u16,
        /// The body sent.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "the connection failed: {e}"),
            Self::Handshake(e) => fmt::Display::fmt(e, f),
            Self::Misuse(e) => fmt::Display::fmt(e, f),
            Self::Closed(Some(info)) => write!(f, "the WebSocket connection is closed: {info}"),
            Self::Closed(None) => f.write_str("the WebSocket connection is closed"),
            Self::Url(e) => write!(f, "invalid WebSocket URL: {e}"),
            Self::Tls(e) => f.write_str(e),
            Self::Connect { host, port, source } => {
                write!(f, "cannot connect to {host} port {port}: {source}")
            }
            Self::ConnectTimeout(d) => write!(f, "could not connect within {d:?}"),
            Self::Proxy(e) => fmt::Display::fmt(e, f),
            Self::QueueFull(e) => fmt::Display::fmt(e, f),
            Self::ExtendedConnectUnavailable(why) => f.write_str(why),
            Self::Refused { status, reason } => {
                let phrase = tether::handshake::http::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(
                    f,
                    "the upgrade request was refused with {status} {phrase}: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) | Self::Connect { source: e, .. } => Some(e),
            Self::Handshake(e) => Some(e),
            Self::Misuse(e) => Some(e),
            Self::Proxy(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl From<tether::Error> for Error {
    fn from(e: tether::Error) -> Self {
        Self::Misuse(e)
    }
}
