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
//! on its own. That task exists only while the connection is active: a
//! quiet connection ends it, and the next input, timer or dropped handle
//! starts a new one, so an idle connection costs no task. Receiving is
//! cancel-safe (`next()` in `tokio::select!` loses
//! nothing).
//!
//! That is [`Driver::Shared`], the default. With [`Driver::Owner`]
//! (`ServerOptions::driver`, `ClientOptions::driver`) only the task that
//! holds the [`WebSocket`] drives it, while it polls: no lock and no
//! background task, so each message costs less; Pongs, keep-alives and the
//! close timeout then run while that task awaits `next()`, as with the
//! blocking adapter. Made for the usual loop that awaits `next()` and
//! answers; `split()` (or dropping it unfinished) hands the connection to
//! the shared driver.
//!
//! Each drive is the core's driving loop (see the [`tether`] crate docs) as
//! named steps: write the core's output, read into it, run its due timers,
//! hand its events to the application, and end the transport when
//! `Connection::should_close_transport` says. Every wait and every close
//! decision is the core's ([`tether::Config`]: `connect_timeout`,
//! `close_timeout`, `fin_wait`, `handshake_timeout`, keep-alive); this
//! crate adds only I/O options (TLS, a proxy: its exchange is the core's,
//! `tether::handshake::proxy`). The blocking adapter,
//! `tether-std`, behaves the same (one behaviour suite runs against both).
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
#[cfg(feature = "http2")]
pub mod http2;
#[cfg(feature = "http3")]
pub mod http3;
mod owned;
mod prefixed;
mod proxy;
pub mod reconnect;
mod socket;
#[cfg(any(feature = "http2", feature = "http3"))]
mod tenants;
#[cfg(feature = "tls")]
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use tether::connecting::{Gate, Pass, Remote};
use tether::handshake::proxy::{ProxyPolicy, ProxyUrl};
use tether::handshake::{AcceptOptions, Accepted, ClientConfig, Limits, Refusal, Request, WsUrl};
use tether::upgrade::{ClientUpgrade, HandshakeError, ServerUpgrade, Upgraded};
use tether::{Config, Connection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use error::Error;
pub use prefixed::Prefixed;
pub use reconnect::{
    Lifecycle, QueueFull, QueueLimit, ReconnectEvent, ReconnectOptions, ReconnectPolicy,
    ReconnectingClient, StopReason,
};
pub use socket::{WebSocket, WsSink, WsStream};

/// Who drives a connection: reads, writes and runs its timers.
///
/// Set with [`ClientOptions::driver`] or [`ServerOptions::driver`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Driver {
    /// The task that polls it (`next()`, `send()`...), and a small
    /// background task while none does: Pongs, keep-alives and the closing
    /// handshake go on whatever the application is doing, and
    /// [`WebSocket::split`]'s halves may live on different tasks. The
    /// parties share the connection behind a lock.
    #[default]
    Shared,
    /// Only the task that holds the [`WebSocket`], while it polls it, as
    /// the blocking adapter and tokio-websockets work: no lock and no
    /// background task, so each message costs less. Pings are answered,
    /// keep-alives go out and the core's deadlines (close timeout, idle
    /// release, the shared budget's wait and eviction) run while that task
    /// awaits `next()`, `close()`, a flush, or a send (a send after
    /// another with no `next()` between them also takes in what has
    /// arrived, so a Ping is answered while the application only sends); a
    /// task busy elsewhere leaves them waiting. For the usual loop that awaits
    /// `next()` and answers. `send()` returns once its bytes reached the
    /// transport (or, when received messages wait unread, leaves the
    /// answers to go out together at the next read); an error if they
    /// were given up. The final `Closed` comes once the transport is shut
    /// down. [`WebSocket::split`] hands the connection to the shared
    /// driver; so does dropping it unfinished, whose background task then
    /// finishes the closing handshake. The `WebSocket` is `Send` (it moves
    /// between tasks) but not `Sync` with either driver.
    Owner,
}
/// The core, re-exported.
pub use tether;

/// How a client connects: the connection's [`Config`], the handshake's
/// extras, the connect timeout and TLS. Built the same way
/// as `tether_std::ClientOptions` (the same methods).
///
/// ```
/// use std::time::Duration;
/// let options = tether_tokio::ClientOptions::new()
///     .subprotocol("chat")
///     .header("Authorization", "Bearer abc")
///     .connect_timeout(Duration::from_secs(5));
/// # #[cfg(feature = "deflate")]
/// let options = options.deflate(tether::DeflateConfig::default());
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    config: Arc<Config>,
    handshake: ClientConfig,
    nodelay: bool,
    driver: Driver,
    proxy: ProxyPolicy,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
    #[cfg(feature = "tls")]
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    #[cfg(feature = "tls")]
    identity: Option<tls::ClientIdentity>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            config: adapter_config(Config::default()),
            handshake: ClientConfig::default(),
            nodelay: true,
            driver: Driver::Shared,
            proxy: ProxyPolicy::Direct,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            roots: Vec::new(),
            #[cfg(feature = "tls")]
            identity: None,
        }
    }
}

impl ClientOptions {
    /// The defaults: no subprotocol or extra header, `Config::default()`,
    /// 10 s to connect, `TCP_NODELAY` on, the Mozilla root store for
    /// `wss://`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The connection's limits and policies (keep-alive, close timeout,
    /// handshake timeout, permessage-deflate...).
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = adapter_config(config);
        self
    }

    /// The connection's config as set, with `auto_close_reply` off (this
    /// adapter answers the peer's Close itself).
    pub fn connection(&self) -> &Config {
        &self.config
    }

    /// Offers permessage-deflate (RFC 7692) with these settings (sets
    /// `Config::deflate`; `config()` after this replaces it).
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate(mut self, deflate: tether::DeflateConfig) -> Self {
        Arc::make_mut(&mut self.config).deflate = Some(deflate);
        self
    }

    /// The handshake's extras at once (subprotocols, Origin, headers, head
    /// limits). Do not offer extensions here: only those the config
    /// switches on are run, and a server that accepts another fails the
    /// handshake.
    #[must_use]
    pub fn handshake(mut self, handshake: ClientConfig) -> Self {
        self.handshake = handshake;
        self
    }

    /// Offers a subprotocol (call again for more, in order of preference);
    /// the server's pick is in the returned [`Accepted`].
    #[must_use]
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.handshake = self.handshake.subprotocol(name);
        self
    }

    /// Sends an `Origin` header.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.handshake = self.handshake.origin(origin);
        self
    }

    /// Adds a request header, e.g. `Authorization` (not one the handshake
    /// writes itself).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.handshake = self.handshake.header(name, value);
        self
    }

    /// Limits on the server's answer head.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.handshake = self.handshake.limits(limits);
        self
    }

    /// How long reaching the server may take, as one deadline: TCP (every
    /// address the name resolves to), a proxy's tunnel, and the TLS
    /// handshake for `wss://`. Sets `Config::connect_timeout` (default
    /// 10 s; `config()` after this replaces it).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).connect_timeout = timeout;
        self
    }

    /// How long the WebSocket opening handshake may take once the server
    /// is reached (the upgrade request and its answer): sets
    /// `Config::handshake_timeout` (default 10 s; `config()` after this
    /// replaces it).
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).handshake_timeout = timeout;
        self
    }

    /// How long a client waits, after the closing handshake, for the server
    /// to close TCP first (RFC 6455 section 7.1.1) before closing it
    /// itself: sets `Config::fin_wait` (default 2 s; `config()` after this
    /// replaces it).
    #[must_use]
    pub fn fin_wait(mut self, wait: Duration) -> Self {
        Arc::make_mut(&mut self.config).fin_wait = wait;
        self
    }

    /// Whether to set `TCP_NODELAY` (small frames go out at once). Default on.
    #[must_use]
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// Who drives each connection (default [`Driver::Shared`]).
    #[must_use]
    pub fn driver(mut self, driver: Driver) -> Self {
        self.driver = driver;
        self
    }

    /// Bytes of received events that may wait for the application before
    /// reading stops (backpressure): sets `Config::max_unread_bytes`
    /// (default 1 MiB; `config()` after this replaces it).
    #[must_use]
    pub fn max_unread_bytes(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).max_unread_bytes = bytes;
        self
    }

    /// Connects through this proxy (`http://` CONNECT, `socks5://` or
    /// `socks5h://`, credentials from the URL): TCP to the proxy, its
    /// exchange, then TLS for `wss://` and the upgrade through the tunnel.
    /// The connect timeout covers the proxy's exchange. The same method as
    /// `tether_std::ClientOptions::proxy`.
    #[must_use]
    pub fn proxy(mut self, proxy: ProxyUrl) -> Self {
        self.proxy = ProxyPolicy::Url(proxy);
        self
    }

    /// Connects directly, whatever the environment says (the default).
    #[must_use]
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyPolicy::Direct;
        self
    }

    /// Uses the proxy the environment variables choose when connecting
    /// (`https_proxy`/`HTTPS_PROXY` for `wss://`, `http_proxy`/`HTTP_PROXY`
    /// for `ws://`, `ALL_PROXY`, exemptions in `NO_PROXY`; see
    /// `tether::handshake::proxy::proxy_from_env`). Off by default: a
    /// library does not follow the process's environment unless asked
    /// (the `tether` command asks, as curl does).
    #[must_use]
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy = ProxyPolicy::FromEnv;
        self
    }

    /// Uses this rustls configuration for `wss://` instead of the default
    /// (the Mozilla root store, the ring provider).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Trusts this root certificate for `wss://` too, beside the Mozilla
    /// root store (e.g. a private CA). Ignored when
    /// [`tls_config`](Self::tls_config) is set.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn add_root_certificate(
        mut self,
        cert: rustls::pki_types::CertificateDer<'static>,
    ) -> Self {
        self.roots.push(cert);
        self
    }

    /// Presents this certificate chain (the client's certificate first)
    /// and key when a `wss://` server asks for a client certificate (mutual
    /// TLS). Ignored when [`tls_config`](Self::tls_config) is set (give that
    /// config the certificate itself). The same method as
    /// `tether_std::ClientOptions::client_certificate`.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn client_certificate(
        mut self,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Self {
        self.identity = Some(tls::ClientIdentity::new(chain, key));
        self
    }

    /// The rustls config `wss://` runs with: the application's, the default
    /// plus the extra roots and client certificate, or `None` for the
    /// default.
    #[cfg(feature = "tls")]
    fn tls_client_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, Error> {
        if let Some(config) = &self.tls {
            return Ok(Some(config.clone()));
        }
        if self.roots.is_empty() && self.identity.is_none() {
            return Ok(None);
        }
        tether::tls::client_config(&self.roots, self.identity.as_ref())
            .map(Some)
            .map_err(Error::Tls)
    }
}

/// How a server accepts: the connection's [`Config`], the request head
/// limits. Built the same way as
/// `tether_std::ServerOptions`.
///
/// ```
/// use std::time::Duration;
/// let options = tether_tokio::ServerOptions::new().handshake_timeout(Duration::from_secs(5));
/// ```
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// One config for every connection accepted with these options.
    config: Arc<Config>,
    limits: Limits,
    budget: Option<Arc<tether::Budget>>,
    driver: Driver,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            config: adapter_config(Config::default()),
            limits: Limits::default(),
            budget: None,
            driver: Driver::Shared,
        }
    }
}

impl ServerOptions {
    /// The defaults: `Config::default()`, `Limits::default()` (16 KiB head,
    /// 64 headers).
    pub fn new() -> Self {
        Self::default()
    }

    /// The connection's limits and policies (keep-alive, close timeout,
    /// handshake timeout, permessage-deflate...).
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = adapter_config(config);
        self
    }

    /// The connection's config as set, with `auto_close_reply` off (this
    /// adapter answers the peer's Close itself).
    pub fn connection(&self) -> &Config {
        &self.config
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

    /// A byte budget shared by every connection accepted with these
    /// options (a server's): received messages their applications have not
    /// taken count against it, and while it is spent no connection that
    /// already holds some of it reads more (backpressure across the
    /// server; each is woken when room comes back), except one that sent
    /// its Close: it reads on to the peer's answer, keeping nothing more. A connection holding
    /// none may always read, so one application that stops reading cannot
    /// stall the others: what the server's applications have not taken is
    /// at most the budget plus, per connection, one message (and one
    /// read). Frames and messages still arriving are not charged: each
    /// connection's own limits bound them (`Config::max_unread_bytes`
    /// gives the whole formula), so what a server holds in all is the
    /// budget plus that much per connection. When it stays spent for
    /// `Config::budget_timeout`, the connection holding the most is closed
    /// with 1013 (try again later) and its unread messages dropped
    /// (`Connection::budget_check` decides). Default none: each connection
    /// is bounded only by its own `Config::max_unread_bytes`.
    #[must_use]
    pub fn budget(mut self, budget: Arc<tether::Budget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// How long the opening handshake may take from `accept` on: the
    /// client's request read and our answer written. A TLS handshake run
    /// before `accept` (tokio-rustls' `TlsAcceptor`) is the caller's to
    /// bound; `tether serve --tls-cert/--tls-key` counts it in the same deadline. Sets
    /// `Config::handshake_timeout` (default 10 s; `config()` after this
    /// replaces it).
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).handshake_timeout = timeout;
        self
    }

    /// Bytes of received events that may wait for the application before
    /// reading stops (backpressure): sets `Config::max_unread_bytes`
    /// (default 1 MiB; `config()` after this replaces it).
    #[must_use]
    pub fn max_unread_bytes(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).max_unread_bytes = bytes;
        self
    }

    /// Who drives each connection (default [`Driver::Shared`]).
    #[must_use]
    pub fn driver(mut self, driver: Driver) -> Self {
        self.driver = driver;
        self
    }
}

/// Connects to a `ws://` or `wss://` URL and runs the opening handshake:
/// TCP (through a proxy when the options say so, [`ClientOptions::proxy`],
/// [`ClientOptions::proxy_from_env`]) and TLS for `wss://` within the
/// connect timeout, then the upgrade within the handshake timeout, as the
/// blocking adapter does.
///
/// # Errors
/// [`Error::Url`], [`Error::Connect`] (host and port named; also when
/// another connection to the host was still connecting as the connect
/// timeout ran out, `Config::one_connecting_per_host`),
/// [`Error::ConnectTimeout`], [`Error::Io`], [`Error::Proxy`]
/// (the proxy unreachable, or its refusal named), [`Error::Tls`]
/// (e.g. `wss://` aimed at a plain server, or a TLS handshake not done
/// within the connect timeout), or [`Error::Handshake`] (e.g. an HTTP 200
/// where 101 was expected, a TLS answer to `ws://`, or the handshake
/// timeout).
///
/// The handshake's state lives on the heap until it completes, so the
/// caller's task does not carry it for the connection's life.
pub fn connect<'a>(
    url: &'a str,
    options: &'a ClientOptions,
) -> impl Future<Output = Result<(WebSocket, Accepted), Error>> + Send + 'a {
    Box::pin(connect_boxed(url, options))
}

async fn connect_boxed(url: &str, options: &ClientOptions) -> Result<(WebSocket, Accepted), Error> {
    let parsed = WsUrl::parse(url).map_err(|e| Error::Url(e.to_string()))?;
    // reaching the server, TLS included, is one deadline
    // (`Config::connect_timeout`); the upgrade another
    let timeout = options.config.connect_timeout;
    let reached = deadline_after(timeout);
    // one connection at a time in the CONNECTING state per host (RFC 6455
    // section 4.1): the pass is held until the handshake has ended
    let gated = options.config.one_connecting_per_host;
    let (tcp, leftover, _pass) = reach_tcp(&parsed, options, reached, gated).await?;
    // TLS and the HTTP/1.1 upgrade: the server speaks only when spoken to
    expect_silence(&leftover)?;
    if parsed.is_secure() {
        #[cfg(feature = "tls")]
        {
            let tls = tokio::time::timeout_at(
                reached,
                tls::connect(tcp, parsed.host(), options.tls_client_config()?),
            )
            .await
            .map_err(|_| tls::timed_out(timeout))??;
            return client_boxed(tls, url, options).await;
        }
        #[cfg(not(feature = "tls"))]
        return Err(Error::Tls(
            "wss:// needs TLS, and tether-tokio was built without its `tls` feature".into(),
        ));
    }
    client_boxed(tcp, url, options).await
}

/// For a protocol whose server speaks only when spoken to (TLS, the
/// HTTP/1.1 upgrade): no server bytes may have come with a proxy's answer
/// (`ProxyConnect::expect_silence`, for the bytes [`reach_tcp`] handed on).
pub(crate) fn expect_silence(leftover: &[u8]) -> Result<(), Error> {
    if leftover.is_empty() {
        Ok(())
    } else {
        Err(Error::Proxy(
            tether::handshake::proxy::ProxyError::TrailingBytes(leftover.len()),
        ))
    }
}

/// TCP to `parsed`'s host, or through the proxy the options choose for it
/// (the exchange is the core's), before `reached` (the connect timeout's
/// deadline, which TLS shares after it); `TCP_NODELAY` as the options say.
/// With it, the server's bytes that came with a proxy's answer (none when
/// direct). For every client over TCP: HTTP/1.1 and HTTP/2. When `gated`,
/// it connects to each address (through a proxy, to the host name) only
/// while no other connection to it is connecting
/// ([`tether::connecting`]), and hands on the pass that says so.
pub(crate) async fn reach_tcp(
    parsed: &WsUrl,
    options: &ClientOptions,
    reached: tokio::time::Instant,
    gated: bool,
) -> Result<(TcpStream, Vec<u8>, Option<Pass>), Error> {
    let proxy = options
        .proxy
        .resolve(parsed.is_secure(), parsed.host(), parsed.port(), |name| {
            std::env::var(name).ok()
        })
        .map_err(Error::Proxy)?;
    let timeout = options.config.connect_timeout;
    let failed = |source| Error::Connect {
        host: parsed.host().to_owned(),
        port: parsed.port(),
        source,
    };
    let (tcp, leftover, pass) = tokio::time::timeout_at(reached, async {
        match &proxy {
            None if gated => {
                let mut last = None;
                for addr in tokio::net::lookup_host((parsed.host(), parsed.port()))
                    .await
                    .map_err(failed)?
                {
                    let pass = match enter(&Remote::Address(addr), (reached, timeout)).await {
                        Ok(pass) => pass,
                        // (an earlier address's own failure says more)
                        Err(e) => return Err(failed(last.unwrap_or(e))),
                    };
                    match TcpStream::connect(addr).await {
                        Ok(tcp) => return Ok((tcp, Vec::new(), Some(pass))),
                        Err(e) => last = Some(e),
                    }
                }
                Err(failed(last.unwrap_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the name resolved to no address",
                    )
                })))
            }
            None => {
                let tcp = TcpStream::connect((parsed.host(), parsed.port()))
                    .await
                    .map_err(failed)?;
                Ok((tcp, Vec::new(), None))
            }
            Some(proxy) => proxy::tunnel(proxy, parsed, (reached, timeout), gated).await,
        }
    })
    .await
    .map_err(|_| match &proxy {
        None => Error::ConnectTimeout(timeout),
        Some(_) => Error::Proxy(tether::handshake::proxy::ProxyError::TimedOut(timeout)),
    })??;
    if options.nodelay {
        tcp.set_nodelay(true)?;
    }
    Ok((tcp, leftover, pass))
}

/// A pass for `remote` from the process's gate ([`Gate::global`]): waits
/// in line while another connection to it is connecting, until `reached`
/// (the connect timeout's, `timeout`), when it names that connection.
/// Cancelled (or timed out), it leaves the line.
pub(crate) async fn enter(
    remote: &Remote,
    (reached, timeout): (tokio::time::Instant, std::time::Duration),
) -> std::io::Result<Pass> {
    let mut place = Gate::global().line_up(remote.clone());
    tokio::time::timeout_at(
        reached,
        std::future::poll_fn(|cx| place.poll_pass(cx.waker())),
    )
    .await
    .map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "{} within {timeout:?}",
                tether::connecting::still_connecting(remote)
            ),
        )
    })
}

/// Runs the client handshake for `url` over an already connected stream.
///
/// # Errors
/// As [`connect`], for the handshake part.
pub fn client<'a, S>(
    stream: S,
    url: &'a str,
    options: &'a ClientOptions,
) -> impl Future<Output = Result<(WebSocket, Accepted), Error>> + Send + 'a
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(client_boxed(stream, url, options))
}

async fn client_boxed<S>(
    mut stream: S,
    url: &str,
    options: &ClientOptions,
) -> Result<(WebSocket, Accepted), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // offers permessage-deflate when options.config.deflate is set
    let mut upgrade = ClientUpgrade::with_config(url, options.handshake.clone(), &options.config)?;
    let (accepted, rest) = tokio::time::timeout(options.config.handshake_timeout, async {
        stream
            .write_all(upgrade.request())
            .await
            .map_err(transport_error)?;
        // a transport that buffers (TLS, a tunnel) sends it now
        stream.flush().await.map_err(transport_error)?;
        // read into the upgrade's own buffer: no second buffer per
        // handshake in flight, and none in this future (which would stay
        // in the caller's task for the connection's life)
        loop {
            let n = match stream.read_buf(&mut upgrade.receive_buffer()).await {
                Ok(n) => n,
                // a TLS server that closed TCP without close_notify
                Err(e) if tether::read_error_is_eof(&e) => 0,
                Err(e) => return Err(transport_error(e)),
            };
            if n == 0 {
                return Err(Error::Handshake(upgrade.eof()));
            }
            if let Some(done) = upgrade.received()? {
                return Ok(done);
            }
        }
    })
    .await
    .map_err(|_| Error::Handshake(HandshakeError::Timeout(options.config.handshake_timeout)))??;
    let now = tokio::time::Instant::now().into_std();
    let conn = upgrade.into_connection(options.config.clone(), now, &rest);
    let ws = start(stream, conn, None, options.driver);
    Ok((ws, accepted))
}

/// An I/O error of the client's handshake; a TLS failure in it (e.g. the
/// server refusing our client certificate, which TLS 1.3 reports after the
/// client's side of the handshake) in plain words.
fn transport_error(e: std::io::Error) -> Error {
    #[cfg(feature = "tls")]
    {
        tls::after_handshake(e)
    }
    #[cfg(not(feature = "tls"))]
    {
        Error::Io(e)
    }
}

/// Accepts a WebSocket on `stream` with default choices (no subprotocol;
/// permessage-deflate only if `options.config.deflate` is set).
/// Returns the socket and the request (path, headers...).
///
/// # Errors
/// [`Error::Handshake`] for a bad request (its refusal, e.g. 400 or 426, is
/// written first), a handshake timeout (a 408 is written first) or the
/// client's end, [`Error::Io`]. A refused handshake returns after the
/// core's linger (see [`accept_within`]): once the client has ended the
/// transport, or `Config::fin_wait` (2 s) at most.
pub fn accept<S>(
    stream: S,
    options: &ServerOptions,
) -> impl Future<Output = Result<(WebSocket, Request), Error>> + Send + '_
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_with(stream, options, |_| Ok(AcceptOptions::new()))
}

/// Accepts a WebSocket, letting `decide` pick a subprotocol (and headers)
/// or refuse with a [`Refusal`] (e.g. 403), which is written before
/// returning [`Error::Refused`].
///
/// # Errors
/// As [`accept`], plus [`Error::Refused`].
pub fn accept_with<'a, S, F>(
    stream: S,
    options: &'a ServerOptions,
    decide: F,
) -> impl Future<Output = Result<(WebSocket, Request), Error>> + Send + 'a
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request) -> Result<AcceptOptions, Refusal> + Send + 'a,
{
    let deadline = deadline_after(options.config.handshake_timeout);
    accept_within(stream, options, deadline, decide)
}

/// As [`accept_with`], with the handshake's deadline already running:
/// for a server that counts what came before the upgrade (a TLS
/// handshake, a protocol sniff) in the one `Config::handshake_timeout`,
/// as `tether serve` does. Past `deadline` the client gets a 408.
///
/// A failed or refused handshake ends as the core says
/// ([`tether::upgrade::Refusing`]): its answer (within
/// `Config::close_timeout`), then reads that drop what the client still
/// sends until its end, for at most `Config::fin_wait` after the answer
/// went out, so the answer is not lost to a reset. The future
/// completes after that; do not cut it short with a timeout of your own
/// at `deadline`, or the linger is lost.
///
/// # Errors
/// As [`accept_with`].
pub fn accept_within<'a, S, F>(
    stream: S,
    options: &'a ServerOptions,
    deadline: tokio::time::Instant,
    decide: F,
) -> impl Future<Output = Result<(WebSocket, Request), Error>> + Send + 'a
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request) -> Result<AcceptOptions, Refusal> + Send + 'a,
{
    // the handshake's state (buffers, parser, the stream's futures) lives
    // on the heap until it completes: the caller's task would otherwise
    // carry its size for the connection's whole life
    Box::pin(accept_boxed(stream, options, deadline, decide))
}

async fn accept_boxed<S, F>(
    mut stream: S,
    options: &ServerOptions,
    deadline: tokio::time::Instant,
    decide: F,
) -> Result<(WebSocket, Request), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request) -> Result<AcceptOptions, Refusal>,
{
    let timeout = options.config.handshake_timeout;
    // answers a permessage-deflate offer when options.config.deflate is set
    let mut upgrade = ServerUpgrade::with_config(options.limits, &options.config);
    // the whole exchange, the 101 written included, before the deadline
    let read = tokio::time::timeout_at(deadline, async {
        // read into the upgrade's own buffer: no second buffer per
        // handshake in flight (a server may have many), and none in this
        // future (which would stay in the caller's task for the
        // connection's life)
        loop {
            let n = match stream.read_buf(&mut upgrade.receive_buffer()).await {
                Ok(n) => n,
                // a TLS client that closed TCP without close_notify
                Err(e) if tether::read_error_is_eof(&e) => 0,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Err(Error::Handshake(upgrade.eof()));
            }
            if let Some(done) = upgrade.received().map_err(Error::Handshake)? {
                return Ok(done);
            }
        }
    })
    .await
    .unwrap_or(Err(Error::Handshake(HandshakeError::Timeout(timeout))));
    let (request, rest) = match read {
        Ok(done) => done,
        // a bad request, the client's end, or the timeout (408)
        Err(Error::Handshake(e)) => {
            let ending = upgrade.fail(&e, now());
            // the request's buffer is not held through the linger
            drop(upgrade);
            linger(&mut stream, &ending).await;
            return Err(Error::Handshake(e));
        }
        Err(e) => return Err(e),
    };
    let response = match decide(&request) {
        Ok(choice) => upgrade.accept(&request, choice),
        Err(refusal) => {
            let ending = upgrade.refuse(&refusal, now());
            drop((upgrade, request, rest));
            linger(&mut stream, &ending).await;
            return Err(Error::Refused {
                status: refusal.status(),
                reason: refusal.body().to_string(),
            });
        }
    };
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            let e = HandshakeError::Build(e);
            let ending = upgrade.fail(&e, now());
            drop((upgrade, request, rest));
            linger(&mut stream, &ending).await;
            return Err(Error::Handshake(e));
        }
    };
    // a transport that buffers (TLS, a tunnel) sends it at the flush: the
    // client waits for it before it sends anything; a 101 cut short by the
    // deadline is not followed by a 408, the transport is just dropped
    tokio::time::timeout_at(deadline, async {
        stream.write_all(&response).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| Error::Handshake(HandshakeError::Timeout(timeout)))??;
    let conn = upgrade.into_connection(options.config.clone(), now(), &rest);
    let ws = start(stream, conn, options.budget.clone(), options.driver);
    Ok((ws, request))
}

/// Now, as the core counts it (the tokio clock, paused in tests).
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Ends a failed or refused server handshake as the core says
/// ([`tether::upgrade::Refusing`]): the answer and the end of our writing
/// before its send deadline, then reads that drop what the client still
/// sends until its end or the read deadline. Best effort: the handshake
/// failed anyway, and any error ends it. What is read lands in one small
/// buffer, only on this path, and is dropped.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    ending: &tether::upgrade::Refusing,
) {
    let sent = tokio::time::timeout_at(
        tokio::time::Instant::from_std(ending.send_deadline()),
        async {
            if let Some(response) = ending.response() {
                stream.write_all(response).await?;
            }
            stream.shutdown().await
        },
    )
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let Some(until) = ending.read_deadline(now()) else {
        return;
    };
    let _ = tokio::time::timeout_at(tokio::time::Instant::from_std(until), async {
        let mut buf = vec![0; LINGER_READ];
        while stream.read(&mut buf).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// The buffer a lingering handshake reads into and drops.
const LINGER_READ: usize = 2048;

/// Starts a connection on a stream whose opening handshake ran elsewhere
/// (e.g. a hyper or axum upgrade), with the extensions `upgraded`
/// negotiated (permessage-deflate when its `Config::deflate` is set, see
/// [`Upgraded`]). `leftover` holds any bytes
/// read after the handshake head.
///
/// ```no_run
/// # async fn run(stream: tokio::net::TcpStream) {
/// use tether::upgrade::Upgraded;
/// use tether::{Config, Role};
/// // ... the 101 was written by your HTTP stack, with
/// // `upgraded.answer_offers(..)`'s value as its Sec-WebSocket-Extensions
/// let upgraded = Upgraded::new(Role::Server, Config::default());
/// let ws = tether_tokio::from_upgraded(stream, upgraded, &[]);
/// # }
/// ```
///
/// # Panics
/// Outside a tokio runtime (the connection is driven on the current one).
pub fn from_upgraded<S>(stream: S, upgraded: Upgraded, leftover: &[u8]) -> WebSocket
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    from_upgraded_with(stream, upgraded, leftover, Driver::Shared, None)
}

/// [`from_upgraded`], driven as `driver` says, and for a server, charging
/// what the application has not read to `budget`, shared with its other
/// connections (as [`ServerOptions::budget`] does for [`accept`]).
///
/// ```no_run
/// # async fn run(stream: tokio::net::TcpStream, budget: std::sync::Arc<tether::Budget>) {
/// use tether::upgrade::Upgraded;
/// use tether::{Config, Role};
/// use tether_tokio::Driver;
/// let upgraded = Upgraded::new(Role::Server, Config::default());
/// let ws = tether_tokio::from_upgraded_with(stream, upgraded, &[], Driver::Owner, Some(budget));
/// # }
/// ```
///
/// # Panics
/// As [`from_upgraded`].
pub fn from_upgraded_with<S>(
    stream: S,
    upgraded: Upgraded,
    leftover: &[u8],
    driver: Driver,
    budget: Option<Arc<tether::Budget>>,
) -> WebSocket
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut upgraded = upgraded;
    upgraded.config_mut().auto_close_reply = false;
    let now = tokio::time::Instant::now().into_std();
    // a protocol error in the first bytes is reported as the final event
    let conn = upgraded.into_connection(now, leftover);
    start(stream, conn, budget, driver)
}

/// The instant `timeout` from now on tokio's clock, for deadlines taken
/// from `Config` waits (the core's [`tether::deadline`]: a `Duration::MAX`
/// wait is "never", 30 years away, not a panic).
pub fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    tokio::time::Instant::from_std(tether::deadline(now.into_std(), timeout))
}

/// The connection's config as this adapter runs it: the peer's Close (and
/// a violation after unread messages) is answered once the application has
/// read what came before it (see `driver::Reply`). Held once by
/// the options and shared by every connection made with them.
fn adapter_config(config: Config) -> Arc<Config> {
    Arc::new(Config {
        auto_close_reply: false,
        ..config
    })
}

fn start<S>(
    stream: S,
    conn: Connection,
    budget: Option<Arc<tether::Budget>>,
    driver: Driver,
) -> WebSocket
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let inner = driver::Inner::new(driver::Transport::new(stream), conn, budget);
    let runtime = tokio::runtime::Handle::current();
    match driver {
        Driver::Shared => WebSocket::new(driver::Shared::adopt(inner, runtime)),
        Driver::Owner => WebSocket::owned(owned::Owned::new(inner, runtime)),
    }
}
