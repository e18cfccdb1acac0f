//! # tether-tokio
//!
//! The tokio adapter for the [`tether`] sans-IO WebSocket core: `connect`
//! and `accept` over any `AsyncRead + AsyncWrite` (TCP, TLS, an upgraded
//! hyper/axum connection), a [`Stream`](futures_core::Stream) of messages and
//! a [`Sink`](futures_sink::Sink) of messages, [`WebSocket::split`] into
//! halves for different tasks, keep-alive and close timeouts on tokio timers,
//! and backpressure.
//!
//! Whoever polls drives: the task that awaits `next()` or `send()` reads,
//! decodes, writes and runs the timers itself, with no hop between tasks,
//! and answers queued while more received messages wait go out in one
//! write. While nobody polls, a small background task per connection does
//! the same, so Pongs and keep-alives go out while the application only
//! reads, only sends, or does neither, and the closing handshake completes
//! on its own. Receiving is cancel-safe (`next()` in `tokio::select!` loses
//! nothing).
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use tether::Message;
//!
//! # async fn run() -> Result<(), tether_tokio::Error> {
//! let (mut ws, _accepted) = tether_tokio::connect("ws://127.0.0.1:9001/", &Default::default()).await?;
//! ws.send(Message::text("hello")).await?;
//! while let Some(message) = ws.next().await {
//!     println!("{:?}", message?);
//! }
//! println!("ended: {:?}", ws.close_info());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod driver;
mod error;
pub mod reconnect;
mod socket;
#[cfg(feature = "tls")]
pub mod tls;

#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use tether::handshake::{AcceptOptions, Accepted, ClientConfig, Limits, Refusal, Request, WsUrl};
use tether::upgrade::{ClientUpgrade, HandshakeError, ServerUpgrade};
use tether::{Config, Connection, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use error::Error;
pub use reconnect::{Lifecycle, ReconnectEvent, ReconnectOptions, ReconnectingClient};
pub use socket::{WebSocket, WsSink, WsStream};
/// The core, re-exported.
pub use tether;

/// Bytes read per read during the opening handshake.
const HANDSHAKE_READ: usize = 4096;

/// How a client connects.
///
/// permessage-deflate (RFC 7692) is offered when `connection.deflate` is
/// set (feature `deflate`, on by default):
///
/// ```
/// # #[cfg(feature = "deflate")] {
/// let options = tether_tokio::ClientOptions {
///     connection: tether::Config {
///         deflate: Some(tether::DeflateConfig::default()),
///         ..Default::default()
///     },
///     ..Default::default()
/// };
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Limits, keep-alive and timeouts of the connection, and the
    /// extensions to offer (`Config::deflate`).
    pub connection: Config,
    /// Subprotocols, Origin and extra headers of the request. Extensions
    /// offered here by hand are not run: a server that accepts one fails
    /// the handshake; use `connection.deflate` for permessage-deflate.
    pub handshake: ClientConfig,
    /// Limit on the TCP (and TLS) connect. Default 10 s.
    pub connect_timeout: Duration,
    /// Received events read ahead of the application (messages, Pings,
    /// Pongs); when full, reading stops (backpressure). Default 64.
    pub channel_capacity: usize,
    /// TLS settings for `wss://`; `None` uses the Mozilla root store.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connection: Config::default(),
            handshake: ClientConfig::default(),
            connect_timeout: Duration::from_secs(10),
            channel_capacity: 64,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// How a server accepts.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Limits, keep-alive and timeouts of the connection; with
    /// `Config::deflate` set, a client's permessage-deflate offer is
    /// accepted (the first one that can be honoured).
    pub connection: Config,
    /// Limits on the request head (size, header count).
    pub limits: Limits,
    /// Received events read ahead of the application (messages, Pings,
    /// Pongs); when full, reading stops (backpressure). Default 64.
    pub channel_capacity: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            connection: Config::default(),
            limits: Limits::default(),
            channel_capacity: 64,
        }
    }
}

/// Connects to a `ws://` or `wss://` URL and runs the opening handshake.
///
/// # Errors
/// [`Error::Url`], [`Error::ConnectTimeout`], [`Error::Io`], [`Error::Tls`]
/// (e.g. `wss://` aimed at a plain server), or [`Error::Handshake`] (e.g. an
/// HTTP 200 where 101 was expected, or a TLS answer to `ws://`).
pub async fn connect(url: &str, options: &ClientOptions) -> Result<(WebSocket, Accepted), Error> {
    let parsed = WsUrl::parse(url).map_err(|e| Error::Url(e.to_string()))?;
    let tcp = tokio::time::timeout(
        options.connect_timeout,
        TcpStream::connect((parsed.host(), parsed.port())),
    )
    .await
    .map_err(|_| Error::ConnectTimeout(options.connect_timeout))??;
    tcp.set_nodelay(true)?;
    if parsed.is_secure() {
        #[cfg(feature = "tls")]
        {
            let tls = tokio::time::timeout(
                options.connect_timeout,
                tls::connect(tcp, parsed.host(), options.tls.clone()),
            )
            .await
            .map_err(|_| Error::ConnectTimeout(options.connect_timeout))??;
            return client(tls, url, options).await;
        }
        #[cfg(not(feature = "tls"))]
        return Err(Error::Tls(
            "wss:// needs tether-tokio's `tls` feature".into(),
        ));
    }
    client(tcp, url, options).await
}

/// Runs the client handshake for `url` over an already connected stream.
///
/// # Errors
/// As [`connect`], for the handshake part.
pub async fn client<S>(
    mut stream: S,
    url: &str,
    options: &ClientOptions,
) -> Result<(WebSocket, Accepted), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // offers permessage-deflate when options.connection.deflate is set
    let mut upgrade =
        ClientUpgrade::with_config(url, options.handshake.clone(), &options.connection)?;
    let (accepted, rest) = tokio::time::timeout(options.connection.handshake_timeout, async {
        stream.write_all(upgrade.request()).await?;
        // on the heap and freed after the handshake: a buffer in this
        // future would stay in the caller's task for the connection's life
        let mut buf = vec![0u8; HANDSHAKE_READ];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(Error::Handshake(upgrade.eof()));
            }
            if let Some(done) = upgrade.receive(&buf[..n])? {
                return Ok(done);
            }
        }
    })
    .await
    .map_err(|_| {
        Error::Handshake(HandshakeError::Timeout(
            options.connection.handshake_timeout,
        ))
    })??;
    let now = tokio::time::Instant::now().into_std();
    let conn = upgrade.into_connection(adapter_config(&options.connection), now, &rest);
    let ws = start(stream, conn, options.channel_capacity);
    Ok((ws, accepted))
}

/// Accepts a WebSocket on `stream` with default choices (no subprotocol;
/// permessage-deflate only if `options.connection.deflate` is set).
/// Returns the socket and the request (path, headers...).
///
/// # Errors
/// [`Error::Handshake`] for a bad request (its refusal, e.g. 400 or 426, is
/// written first), [`Error::Io`], or a handshake timeout.
pub async fn accept<S>(stream: S, options: &ServerOptions) -> Result<(WebSocket, Request), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_with(stream, options, |_| Ok(AcceptOptions::new())).await
}

/// Accepts a WebSocket, letting `decide` pick a subprotocol (and headers)
/// or refuse with a [`Refusal`] (e.g. 403), which is written before
/// returning [`Error::Refused`].
///
/// # Errors
/// As [`accept`], plus [`Error::Refused`].
pub async fn accept_with<S, F>(
    mut stream: S,
    options: &ServerOptions,
    decide: F,
) -> Result<(WebSocket, Request), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request) -> Result<AcceptOptions, Refusal>,
{
    // answers a permessage-deflate offer when options.connection.deflate is set
    let mut upgrade = ServerUpgrade::with_config(options.limits, &options.connection);
    let read = tokio::time::timeout(options.connection.handshake_timeout, async {
        // on the heap and freed after the handshake: a buffer in this
        // future would stay in the caller's task for the connection's life
        let mut buf = vec![0u8; HANDSHAKE_READ];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(Error::Handshake(upgrade.eof()));
            }
            match upgrade.receive(&buf[..n]) {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => {}
                Err(e) => {
                    refuse(&mut stream, ServerUpgrade::failure_response(&e)).await;
                    return Err(Error::Handshake(e));
                }
            }
        }
    })
    .await
    .map_err(|_| {
        Error::Handshake(HandshakeError::Timeout(
            options.connection.handshake_timeout,
        ))
    })?;
    let (request, rest) = read?;
    match decide(&request) {
        Ok(choice) => {
            let response = match upgrade.accept(&request, choice) {
                Ok(response) => response,
                Err(e) => {
                    let e = HandshakeError::Build(e);
                    refuse(&mut stream, ServerUpgrade::failure_response(&e)).await;
                    return Err(Error::Handshake(e));
                }
            };
            stream.write_all(&response).await?;
            let now = tokio::time::Instant::now().into_std();
            let conn = upgrade.into_connection(adapter_config(&options.connection), now, &rest);
            let ws = start(stream, conn, options.channel_capacity);
            Ok((ws, request))
        }
        Err(refusal) => {
            refuse(&mut stream, Some(refusal.to_bytes())).await;
            Err(Error::Refused {
                status: refusal.status(),
                reason: refusal.body().to_string(),
            })
        }
    }
}

/// Writes what a failed handshake answers (best effort: it failed anyway),
/// then shuts the transport down.
async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, response: Option<Vec<u8>>) {
    if let Some(response) = response {
        let _ = stream.write_all(&response).await;
    }
    let _ = stream.shutdown().await;
}

/// Starts a connection on a stream whose opening handshake is already done
/// (e.g. a hyper or axum upgraded connection). `leftover` holds any bytes
/// read after the handshake head.
pub fn from_upgraded<S>(stream: S, role: Role, config: Config, leftover: &[u8]) -> WebSocket
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let now = tokio::time::Instant::now().into_std();
    let mut conn = Connection::new(role, adapter_config(&config), now);
    // a protocol error in the first bytes is reported as the final event
    let _ = conn.receive(now, leftover);
    start(stream, conn, 64)
}

/// The connection's config as this adapter runs it: the peer's Close (and
/// a violation after unread messages) is answered once the application has
/// read what came before it (see `driver::Item::PeerClosed`).
fn adapter_config(config: &Config) -> Config {
    Config {
        auto_close_reply: false,
        ..config.clone()
    }
}

fn start<S>(stream: S, conn: Connection, capacity: usize) -> WebSocket
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = driver::Shared::new(Box::new(stream), conn, capacity);
    tokio::spawn(driver::background(shared.clone()));
    WebSocket::new(shared)
}
