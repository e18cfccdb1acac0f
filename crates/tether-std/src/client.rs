//! The client side: [`connect`] to a `ws://` or `wss://` URL, or run the
//! client handshake over a stream you connected yourself with [`client`].
//!
//! Owns the client's transport set-up (name resolution, TCP connect with a
//! timeout, TLS for `wss://`) and the moving of the handshake's bytes. The
//! request and the checks of the answer belong to
//! [`tether::upgrade::ClientUpgrade`]; this module never parses HTTP.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether::Config;
use tether::connecting::{Gate, Pass, Remote};
use tether::handshake::proxy::{ProxyConnect, ProxyError, ProxyPolicy, ProxyUrl, Target};
use tether::handshake::{Accepted, ClientConfig, Limits, WsUrl};
use tether::upgrade::ClientUpgrade;

use crate::handshake_io::{self, Deadline, Read};
use crate::websocket::{Settings, adapter_config};
use crate::{Error, MaybeTlsStream, Transport, WebSocket};

/// How a client connects: the handshake's extras, the connection's
/// [`Config`], timeouts, and TLS.
///
/// ```
/// use std::time::Duration;
/// use tether_std::{ClientOptions, Config, KeepAlive};
///
/// let config = Config {
///     keep_alive: KeepAlive::Ping {
///         interval: Duration::from_secs(20),
///         timeout: Duration::from_secs(10),
///     },
///     ..Config::default()
/// };
/// let options = ClientOptions::new()
///     .config(config)
///     .subprotocol("chat")
///     .header("Authorization", "Bearer abc")
///     .connect_timeout(Duration::from_secs(5));
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    handshake: ClientConfig,
    config: Arc<Config>,
    nodelay: bool,
    proxy: ProxyPolicy,
    settings: Settings,
    #[cfg(feature = "tls")]
    tls: crate::tls::TlsOptions,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            handshake: ClientConfig::new(),
            config: adapter_config(Config::default()),
            nodelay: true,
            proxy: ProxyPolicy::Direct,
            settings: Settings::default(),
            #[cfg(feature = "tls")]
            tls: crate::tls::TlsOptions::default(),
        }
    }
}

impl ClientOptions {
    /// The defaults: no subprotocol or extra header, `Config::default()`:
    /// 10 s to reach the server (name resolution, TCP and TLS; the system's
    /// resolver runs on a thread of its own, so a hanging one is bounded
    /// too), 10 s for
    /// the upgrade, `TCP_NODELAY` on, a 64 KiB read buffer, a 2 s FIN
    /// wait, webpki-roots for `wss://`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The connection's limits and policies (keep-alive, close timeout, ...).
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = adapter_config(config);
        self
    }

    /// The connection's config as set, with `auto_close_reply` off (this
    /// adapter answers the peer's Close itself), as the tokio adapter's
    /// `ClientOptions::connection` gives it.
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
    /// switches on are run (permessage-deflate with `Config::deflate`), and
    /// a server that accepts another fails the handshake.
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

    /// Bytes of received events that may wait for the application before
    /// reading ahead stops: sets `Config::max_unread_bytes` (default 1 MiB;
    /// `config()` after this replaces it).
    #[must_use]
    pub fn max_unread_bytes(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).max_unread_bytes = bytes;
        self
    }

    /// Connects through this proxy (`http://` CONNECT, `socks5://` or
    /// `socks5h://`, credentials from the URL): TCP to the proxy, its
    /// exchange, then TLS for `wss://` and the upgrade through the tunnel.
    /// The connect timeout covers the proxy's exchange. The same method as
    /// `tether_tokio::ClientOptions::proxy`.
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

    /// Whether to set `TCP_NODELAY` (small frames go out at once). Default on.
    #[must_use]
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// The size of the read buffer, the most read per system call. Default
    /// 64 KiB.
    #[must_use]
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.settings.read_buffer_size = bytes;
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

    /// Uses this rustls configuration for `wss://` instead of the default
    /// (webpki-roots, ALPN `http/1.1`, the ring provider). Do not offer
    /// `h2` in its ALPN list: the upgrade is HTTP/1.1.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls.config = Some(config);
        self
    }

    /// Trusts this root certificate for `wss://` too, beside webpki-roots
    /// (e.g. a private CA). Ignored when [`tls_config`](Self::tls_config)
    /// is set.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn add_root_certificate(
        mut self,
        cert: rustls::pki_types::CertificateDer<'static>,
    ) -> Self {
        self.tls.roots.push(cert);
        self
    }

    /// Presents this certificate chain (the client's certificate first)
    /// and key when a `wss://` server asks for a client certificate (mutual
    /// TLS). Ignored when [`tls_config`](Self::tls_config) is set (give that
    /// config the certificate itself). The same method as
    /// `tether_tokio::ClientOptions::client_certificate`.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn client_certificate(
        mut self,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Self {
        self.tls.identity = Some(tether::tls::ClientIdentity::new(chain, key));
        self
    }
}

/// Connects to a `ws://` or `wss://` URL: resolves the host, connects TCP
/// (through a proxy when the options say so, [`ClientOptions::proxy`]) and
/// runs TLS for `wss://` (the `tls` feature), all within the connect
/// timeout, then the opening handshake (within the handshake timeout). Returns the
/// open connection and what the server accepted (its subprotocol and
/// headers).
///
/// # Errors
/// [`Error::Url`] for a URL that is not `ws://` or `wss://`;
/// [`Error::Connect`] when no address could be connected, or another
/// connection to the host was still connecting when the connect timeout
/// ran out (`Config::one_connecting_per_host`); [`Error::Proxy`]
/// when the proxy cannot be reached or refuses (its answer named); [`Error::Tls`]
/// when TLS fails (a `wss://` URL aimed at a plain server says so) or does
/// not finish within the connect timeout;
/// [`Error::Handshake`] when the server's answer is not a valid 101 (an
/// HTTP 200 gives `ResponseError::UnexpectedStatus`; a TLS answer to a plain
/// `ws://` request says to use `wss://`) or the handshake times out.
pub fn connect(
    url: &str,
    options: &ClientOptions,
) -> Result<(WebSocket<MaybeTlsStream>, Accepted), Error> {
    let parsed = WsUrl::parse(url)?;
    let proxy = options
        .proxy
        .resolve(parsed.is_secure(), parsed.host(), parsed.port(), |name| {
            std::env::var(name).ok()
        })
        .map_err(Error::Proxy)?;
    // reaching the server, TLS included, is one deadline (as the tokio
    // adapter counts it: `Config::connect_timeout`); the upgrade another
    let timeout = options.config.connect_timeout;
    let reached = Deadline::after(timeout, tether::Role::Client);
    // one connection at a time in the CONNECTING state per host (RFC 6455
    // section 4.1): the pass is held until the handshake has ended
    let gated = options.config.one_connecting_per_host;
    let (tcp, _pass) = match &proxy {
        None => connect_tcp(
            parsed.host(),
            parsed.port(),
            reached.instant(),
            timeout,
            gated,
        )?,
        Some(proxy) => tunnel(proxy, &parsed, reached, timeout, gated)?,
    };
    if options.nodelay {
        tcp.set_nodelay(true)?;
    }
    let stream = if parsed.is_secure() {
        #[cfg(feature = "tls")]
        {
            crate::tls::connect(tcp, &parsed, &options.tls, reached)?
        }
        #[cfg(not(feature = "tls"))]
        {
            drop((tcp, reached));
            return Err(crate::tls::not_enabled());
        }
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    let deadline = Deadline::after(options.config.handshake_timeout, tether::Role::Client);
    handshake(stream, url, options, deadline)
}

/// Runs the client's opening handshake for `url` over a stream that is
/// already connected (and already TLS, for `wss://`), within the handshake
/// timeout. `url` gives the `Host` header and the resource; nothing is
/// connected.
///
/// # Errors
/// [`Error::Handshake`] as for [`connect`]; [`Error::Io`] when the stream
/// fails.
pub fn client<S: Transport>(
    stream: S,
    url: &str,
    options: &ClientOptions,
) -> Result<(WebSocket<S>, Accepted), Error> {
    handshake(
        stream,
        url,
        options,
        Deadline::after(options.config.handshake_timeout, tether::Role::Client),
    )
}

fn handshake<S: Transport>(
    mut stream: S,
    url: &str,
    options: &ClientOptions,
    deadline: Deadline,
) -> Result<(WebSocket<S>, Accepted), Error> {
    // offers permessage-deflate when the config's `deflate` is set
    let mut upgrade = ClientUpgrade::with_config(url, options.handshake.clone(), &options.config)?;
    handshake_io::write_all(&mut stream, upgrade.request(), deadline)?;
    // on this thread's stack: no heap buffer per handshake
    let mut buf = [0u8; tether::upgrade::HEAD_READ];
    let (accepted, leftover) = loop {
        match handshake_io::read(&mut stream, &mut buf, deadline)? {
            Read::Eof => return Err(upgrade.eof().into()),
            Read::Data(n) => {
                if let Some(done) = upgrade.receive(buf.get(..n).unwrap_or_default())? {
                    break done;
                }
            }
        }
    };
    handshake_io::clear_timeouts(&stream)?;
    let conn = upgrade.into_connection(options.config.clone(), Instant::now(), &leftover);
    let ws = WebSocket::with_settings(stream, conn, &options.settings)?;
    Ok((ws, accepted))
}

/// Waits in line until no other connection to `remote` is connecting
/// ([`Gate::global`]), until `deadline`: the pass that lets this one
/// connect. The gate wakes this thread when its turn comes; giving up
/// leaves the line.
fn enter(remote: &Remote, deadline: Instant, timeout: Duration) -> std::io::Result<Pass> {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut place = Gate::global().line_up(remote.clone());
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    loop {
        if let std::task::Poll::Ready(pass) = place.poll_pass(&waker) {
            return Ok(pass);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "{} within {timeout:?}",
                    tether::connecting::still_connecting(remote)
                ),
            ));
        }
        std::thread::park_timeout(left);
    }
}

/// Connects to the first address of `host` that answers, by `deadline`
/// (the connect timeout's, `timeout`); when `gated`, each address only
/// while no other connection to it is connecting, and with the pass that
/// says so (held by the caller until its handshake has ended).
fn connect_tcp(
    host: &str,
    port: u16,
    deadline: Instant,
    timeout: Duration,
    gated: bool,
) -> Result<(TcpStream, Option<Pass>), Error> {
    let failed = |source| Error::Connect {
        host: host.to_owned(),
        port,
        source,
    };
    let addrs = resolve(host, port, deadline, timeout).map_err(failed)?;
    let mut last = None;
    for addr in addrs {
        let pass = if gated {
            match enter(&Remote::Address(addr), deadline, timeout) {
                Ok(pass) => Some(pass),
                // (an earlier address's own failure says more)
                Err(e) => {
                    last = last.or(Some(e));
                    break;
                }
            }
        } else {
            None
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            last = Some(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {timeout:?}"),
            ));
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(tcp) => return Ok((tcp, pass)),
            // in the tokio adapter's words
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {timeout:?}"),
                ));
            }
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

/// `host`'s addresses, the system's resolver given until `deadline` (the
/// connect timeout, `timeout`, counts the name's resolution too, as the
/// tokio adapter counts it): it runs on a thread of its own, left to
/// finish by itself when it takes longer. An IP address needs no thread.
fn resolve(
    host: &str,
    port: u16,
    deadline: Instant,
    timeout: Duration,
) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("tether-resolve".into())
        .spawn(move || {
            let _ = tx.send(
                (name.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect),
            );
        })?;
    rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the name did not resolve within {timeout:?}"),
            ))
        })
}

/// A TCP stream to `url`'s host and port through `proxy`, tunnel open, by
/// `deadline` (the connect timeout's, `timeout`). The exchange's bytes and
/// rules are the core's ([`ProxyConnect`]); this only moves them. When
/// `gated`, the exchange starts only while no other connection to the
/// remote is connecting: its address when resolved here (`socks5://`),
/// else its name (the proxy resolves it); with the pass that says so.
fn tunnel(
    proxy: &ProxyUrl,
    url: &WsUrl,
    deadline: Deadline,
    timeout: Duration,
    gated: bool,
) -> Result<(TcpStream, Option<Pass>), Error> {
    // (the proxy is not the remote host: no gate)
    let (mut tcp, _) = connect_tcp(
        proxy.host(),
        proxy.port(),
        deadline.instant(),
        timeout,
        false,
    )
    .map_err(|e| match e {
        Error::Connect { source, .. } => Error::Proxy(ProxyError::Unreachable {
            proxy: proxy.to_string(),
            reason: source.to_string(),
        }),
        other => other,
    })?;
    let failed = |source| Error::Connect {
        host: url.host().to_owned(),
        port: url.port(),
        source,
    };
    let target = if proxy.resolves_locally() {
        // socks5:// resolves here (socks5h:// lets the proxy do it)
        let addr = resolve(url.host(), url.port(), deadline.instant(), timeout)
            .map_err(failed)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                failed(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the name resolved to no address",
                ))
            })?;
        Target::Ip(addr.ip(), url.port())
    } else {
        Target::Name(url.host().to_owned(), url.port())
    };
    let pass = if gated {
        let remote = Remote::from(&target);
        Some(enter(&remote, deadline.instant(), timeout).map_err(failed)?)
    } else {
        None
    };
    let mut exchange = ProxyConnect::new(proxy, target).map_err(Error::Proxy)?;
    let timed_out = |e| match e {
        Error::Handshake(tether::upgrade::HandshakeError::Timeout(_)) => {
            Error::Proxy(ProxyError::TimedOut(timeout))
        }
        other => other,
    };
    let mut buf = vec![0; PROXY_READ];
    loop {
        handshake_io::write_all(&mut tcp, &exchange.take_output(), deadline).map_err(timed_out)?;
        if exchange.is_done() {
            // TLS and the HTTP/1.1 upgrade: the server speaks only when
            // spoken to
            exchange.expect_silence().map_err(Error::Proxy)?;
            handshake_io::clear_timeouts(&tcp)?;
            return Ok((tcp, pass));
        }
        match handshake_io::read(&mut tcp, &mut buf, deadline).map_err(timed_out)? {
            Read::Eof => return Err(Error::Proxy(exchange.eof())),
            Read::Data(n) => exchange
                .receive(buf.get(..n).unwrap_or_default())
                .map_err(Error::Proxy)?,
        }
    }
}

/// Bytes read per read from a proxy (its answer is bounded by the
/// exchange, `MAX_PROXY_HEAD`).
const PROXY_READ: usize = 1024;
