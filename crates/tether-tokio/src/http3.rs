//! WebSockets over HTTP/3 (RFC 9220), over `h3` + `h3-quinn` + `quinn`
//! (feature `http3`): several WebSockets as request streams of one QUIC
//! connection.
//!
//! Owns the QUIC connection and its HTTP/3 layer (client and server), the
//! extended CONNECT sent or answered through it, and [`H3Stream`], which
//! makes one request stream an `AsyncRead + AsyncWrite` transport. Nothing
//! else: the handshake is the core's ([`tether::upgrade::ClientConnect`],
//! [`tether::upgrade::ServerConnect`], RFC 9220 section 3 is RFC 8441's
//! request on an HTTP/3 stream), and each WebSocket runs the same driver as
//! over TCP, on its stream. The stream's end (FIN) is the transport's end,
//! as a TCP FIN; a reset (RESET_STREAM) is a read error, so the connection
//! aborts with 1006 (RFC 9220 section 3). Flow control is QUIC's per
//! stream (256 KiB a stream, 64 streams' worth a connection, as over
//! HTTP/2): quinn grants the peer more as the driver reads (it stops
//! reading when the application stops), and a write waits until quinn took
//! the bytes, which it does only within the peer's window, so backpressure
//! reaches the sender both ways.
//!
//! QUIC is always TLS 1.3 (RFC 9001), with ALPN `h3` (RFC 9114 section
//! 3.1): URLs are `wss://`, the options' TLS settings apply. A client waits
//! for the server's SETTINGS on its control stream before its first
//! extended CONNECT and refuses to send one unless they enable
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 9220 section 3):
//! [`Error::ExtendedConnectUnavailable`] names it.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use tether::Message;
//! use tether_tokio::ClientOptions;
//! use tether_tokio::http3::Http3Client;
//!
//! # async fn run() -> Result<(), tether_tokio::Error> {
//! let options = ClientOptions::new();
//! let client = Http3Client::connect("wss://example.com/", &options).await?;
//! let (mut chat, _) = client.open("wss://example.com/chat", &options).await?;
//! let (mut feed, _) = client.open("wss://example.com/feed", &options).await?;
//! chat.send(Message::text("hello")).await?;
//! let _ = (chat.next().await, feed.next().await);
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h3::ConnectionState;
use h3::error::StreamError;
use tether::handshake::{AcceptOptions, Accepted, Limits, Refusal, Request, WsUrl, http};
use tether::upgrade::{ClientConnect, HandshakeError, ServerConnect, Vacancy, VacancyStep};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinSet;

use crate::tenants::{Tenant, Tenants};
use crate::{ClientOptions, Error, ServerOptions, WebSocket, start};

pub use quinn;

/// The ALPN protocol ID of HTTP/3 (RFC 9114 section 3.1).
pub const ALPN_H3: &[u8] = b"h3";

type ClientSend = h3::client::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
type ClientRecv = h3::client::RequestStream<h3_quinn::RecvStream, Bytes>;
type ServerSend = h3::server::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
type ServerRecv = h3::server::RequestStream<h3_quinn::RecvStream, Bytes>;

/// The sending half of a request stream, a client's or a server's.
enum SendHalf {
    Client(ClientSend),
    Server(ServerSend),
}

impl SendHalf {
    /// Resets the sending part (RESET_STREAM): an abrupt end, which may
    /// cut a frame short (RFC 9114 section 7.1), where a FIN after a
    /// frame cut short is a connection error that ends every stream.
    fn reset(&mut self) {
        let code = h3::error::Code::H3_REQUEST_CANCELLED;
        match self {
            Self::Client(s) => s.stop_stream(code),
            Self::Server(s) => s.stop_stream(code),
        }
    }

    async fn send(&mut self, data: Bytes) -> Result<(), StreamError> {
        match self {
            Self::Client(s) => s.send_data(data).await,
            Self::Server(s) => s.send_data(data).await,
        }
    }

    async fn finish(&mut self) -> Result<(), StreamError> {
        match self {
            Self::Client(s) => s.finish().await,
            Self::Server(s) => s.finish().await,
        }
    }
}

/// The receiving half of a request stream, a client's or a server's.
enum RecvHalf {
    Client(ClientRecv),
    Server(ServerRecv),
}

impl RecvHalf {
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, StreamError>> {
        let polled = match self {
            Self::Client(s) => ready!(s.poll_recv_data(cx)).map(|d| d.map(into_bytes)),
            Self::Server(s) => ready!(s.poll_recv_data(cx)).map(|d| d.map(into_bytes)),
        };
        Poll::Ready(polled)
    }
}

fn into_bytes(mut data: impl Buf) -> Bytes {
    data.copy_to_bytes(data.remaining())
}

type Sending =
    Pin<Box<dyn Future<Output = (Option<Box<SendHalf>>, Result<(), StreamError>)> + Send>>;

/// A sending half inside a write or a FIN in flight: reset if that is
/// dropped before it completes (the WebSocket's transport dropped
/// mid-write). Dropped, quinn would end the stream with a FIN after the
/// part of the DATA frame it took, which the peer must treat as an error
/// of the whole connection (RFC 9114 section 7.1), ending every other
/// WebSocket on it.
struct InFlight(Option<Box<SendHalf>>);

impl InFlight {
    /// Sends `data`, then gives the half back.
    async fn send(mut self, data: Bytes) -> (Option<Box<SendHalf>>, Result<(), StreamError>) {
        let result = match &mut self.0 {
            Some(half) => half.send(data).await,
            None => Ok(()),
        };
        (self.0.take(), result)
    }

    /// Sends the FIN, then gives the half back.
    async fn finish(mut self) -> (Option<Box<SendHalf>>, Result<(), StreamError>) {
        let result = match &mut self.0 {
            Some(half) => half.finish().await,
            None => Ok(()),
        };
        (self.0.take(), result)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(half) = &mut self.0 {
            half.reset();
        }
    }
}

/// Where the sending half is: ready, inside a write (or the FIN) in
/// flight, or done.
enum SendState {
    /// Boxed, so it moves in and out of each write without a copy.
    Ready(Box<SendHalf>),
    Busy(Sending),
    Finished,
    Failed,
}

/// One HTTP/3 request stream as a WebSocket's transport: reads are the
/// stream's DATA (its FIN is EOF, a reset an error), writes become DATA
/// frames (one in flight at a time, done when quinn took them), shutdown
/// sends FIN.
pub struct H3Stream {
    send: SendState,
    recv: RecvHalf,
    /// Received DATA not yet read.
    pending: Bytes,
    /// The FIN is queued (or sent).
    finishing: bool,
    /// The largest DATA frame one write becomes, so a write holds at most
    /// this much beyond what quinn buffers: one stream window
    /// (`Config::transport_windows`), as HTTP/2's send buffer is bounded.
    max_write: usize,
    /// A client's handle on its connection: h3 closes a client's
    /// connection when its last handle goes, so each stream keeps one.
    _connection: Option<h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>>,
    /// On a server, the WebSocket's place in its connection's count.
    _tenant: Option<Tenant>,
}

/// Dropped before its FIN, the stream is reset, as an abnormal end is (RFC
/// 9220 section 3; a write in flight resets it itself, `InFlight`), not
/// ended with a FIN that reads as a clean end.
impl Drop for H3Stream {
    fn drop(&mut self) {
        if let SendState::Ready(half) = &mut self.send
            && !self.finishing
        {
            half.reset();
        }
    }
}

impl std::fmt::Debug for H3Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H3Stream")
            .field("pending", &self.pending.len())
            .field("finishing", &self.finishing)
            .finish_non_exhaustive()
    }
}

impl H3Stream {
    fn new(
        send: SendHalf,
        recv: RecvHalf,
        connection: Option<h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>>,
    ) -> Self {
        Self {
            send: SendState::Ready(Box::new(send)),
            recv,
            pending: Bytes::new(),
            finishing: false,
            max_write: window(&tether::Config::default()),
            _connection: connection,
            _tenant: None,
        }
    }

    /// A client's request stream (after the 2xx) as a transport, holding
    /// `connection` (a handle of the request sender it came from) so the
    /// connection lives while the stream does.
    pub fn client(
        stream: h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
        connection: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    ) -> Self {
        let (send, recv) = stream.split();
        Self::new(
            SendHalf::Client(send),
            RecvHalf::Client(recv),
            Some(connection),
        )
    }

    /// A server's request stream (after its 2xx) as a transport.
    pub fn server(stream: h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>) -> Self {
        let (send, recv) = stream.split();
        Self::new(SendHalf::Server(send), RecvHalf::Server(recv), None)
    }

    /// Writes at most one stream window of `config` at a time (the
    /// public constructors take the default `Config`'s).
    fn bounded_by(mut self, config: &tether::Config) -> Self {
        self.max_write = window(config);
        self
    }

    /// Drives the write or FIN in flight to its end.
    fn poll_sent(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.send {
            SendState::Busy(sending) => {
                let (half, result) = ready!(sending.as_mut().poll(cx));
                match (half, result) {
                    (Some(half), Ok(())) => {
                        self.send = SendState::Ready(half);
                        Poll::Ready(Ok(()))
                    }
                    (_, Err(e)) => {
                        self.send = SendState::Failed;
                        Poll::Ready(Err(io_error(&e)))
                    }
                    (None, Ok(())) => {
                        self.send = SendState::Failed;
                        Poll::Ready(Err(closed()))
                    }
                }
            }
            SendState::Ready(_) | SendState::Finished => Poll::Ready(Ok(())),
            SendState::Failed => Poll::Ready(Err(closed())),
        }
    }

    /// Starts `step` on the ready sending half and polls it once.
    fn start_send<F, Fut>(&mut self, cx: &mut Context<'_>, step: F) -> io::Result<()>
    where
        F: FnOnce(Box<SendHalf>) -> Fut,
        Fut: Future<Output = (Option<Box<SendHalf>>, Result<(), StreamError>)> + Send + 'static,
    {
        let SendState::Ready(half) = std::mem::replace(&mut self.send, SendState::Failed) else {
            return Err(closed());
        };
        self.send = SendState::Busy(Box::pin(step(half)));
        match self.poll_sent(cx) {
            Poll::Ready(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the HTTP/3 stream is closed")
}

/// An h3 stream error as the I/O error the driver sees: a reset says so
/// (the WebSocket then ends with 1006), naming the HTTP/3 error code.
fn io_error(e: &StreamError) -> io::Error {
    match e {
        StreamError::RemoteTerminate { code } => io::Error::new(
            io::ErrorKind::ConnectionReset,
            format!("the peer reset the HTTP/3 stream (RESET_STREAM or STOP_SENDING {code})"),
        ),
        StreamError::ConnectionError(e) => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("the HTTP/3 connection failed: {e}"),
        ),
        e => io::Error::other(format!("the HTTP/3 stream failed: {e}")),
    }
}

impl AsyncRead for H3Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.pending.is_empty() {
            match ready!(this.recv.poll_data(cx)) {
                Ok(Some(data)) => this.pending = data,
                Ok(None) => return Poll::Ready(Ok(())), // FIN: EOF
                Err(e) => return Poll::Ready(Err(io_error(&e))),
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H3Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = &mut *self;
        ready!(this.poll_sent(cx))?;
        if this.finishing {
            return Poll::Ready(Err(closed()));
        }
        let n = buf.len().min(this.max_write);
        let data = Bytes::copy_from_slice(&buf[..n]);
        this.start_send(cx, |half| InFlight(Some(half)).send(data))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_sent(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_sent(cx))?;
        if !this.finishing {
            this.finishing = true;
            this.start_send(cx, |half| InFlight(Some(half)).finish())?;
            ready!(this.poll_sent(cx))?;
        }
        if let SendState::Ready(_) = this.send {
            this.send = SendState::Finished;
        }
        Poll::Ready(Ok(()))
    }
}

/// The client side of one QUIC connection speaking HTTP/3: opens
/// WebSockets on it, each a request stream. Cheap to clone (a handle); the
/// connection runs on a task of its own until every handle and every
/// WebSocket opened on it is gone.
#[derive(Clone)]
pub struct Http3Client {
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    connection: quinn::Connection,
}

impl std::fmt::Debug for Http3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http3Client")
            .field("remote", &self.connection.remote_address())
            .finish_non_exhaustive()
    }
}

impl Http3Client {
    /// Connects to the host of `url` (`wss://`) over QUIC with ALPN `h3`
    /// (the options' TLS settings) and starts HTTP/3. Returns once the
    /// server's SETTINGS have arrived.
    ///
    /// # Errors
    /// [`Error::Url`] for a `ws://` URL (QUIC is always TLS);
    /// [`Error::Proxy`] (`ProxyError::NotForQuic`) when the options choose
    /// a proxy for the URL (its tunnels carry TCP, QUIC is UDP);
    /// [`Error::ConnectTimeout`] when the name does not resolve in time;
    /// [`Error::Io`] (`TimedOut`) when nothing answers over QUIC within
    /// the connect timeout; [`Error::Tls`] when the QUIC handshake
    /// fails (certificate, ALPN); [`Error::ExtendedConnectUnavailable`] when
    /// the server does not enable extended CONNECT.
    pub async fn connect(url: &str, options: &ClientOptions) -> Result<Self, Error> {
        let parsed = WsUrl::parse(url).map_err(|e| Error::Url(e.to_string()))?;
        if !parsed.is_secure() {
            return Err(Error::Url(format!(
                "{url}: HTTP/3 runs over QUIC, which is always TLS (RFC 9001): use wss://"
            )));
        }
        // a proxy the options choose cannot carry QUIC: named, not bypassed
        let proxy = options
            .proxy
            .resolve(true, parsed.host(), parsed.port(), |name| {
                std::env::var(name).ok()
            })
            .map_err(Error::Proxy)?;
        if let Some(proxy) = proxy {
            return Err(Error::Proxy(
                tether::handshake::proxy::ProxyError::NotForQuic {
                    proxy: proxy.to_string(),
                },
            ));
        }
        // reaching the server (the name, then QUIC's handshake, which is
        // TLS) is one deadline (`Config::connect_timeout`), as over TCP
        let timeout = options.config.connect_timeout;
        let reached = crate::deadline_after(timeout);
        let addr = tokio::time::timeout_at(reached, resolve(parsed.host(), parsed.port()))
            .await
            .map_err(|_| Error::ConnectTimeout(timeout))??;
        let bind: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = quinn::Endpoint::client(bind)?;
        // QUIC's own upkeep, from the connection's Config
        let mut transport = transport(&options.config);
        transport.keep_alive_interval(tether::finite_wait(options.config.transport_keep_alive));
        let mut config = quinn::ClientConfig::new(quic_client_config(options)?);
        config.transport_config(Arc::new(transport));
        let connecting = endpoint
            .connect_with(config, addr, parsed.host())
            .map_err(|e| Error::Tls(format!("cannot start QUIC to {addr}: {e}")))?;
        let connection = tokio::time::timeout_at(reached, connecting)
            .await
            .map_err(|_| no_answer(parsed.host(), timeout))?
            .map_err(|e| quic_failure(parsed.host(), &e, options.config.transport_idle_timeout))?;
        let limits = options.handshake.head_limits();
        Self::start(connection, options.config.handshake_timeout, limits).await
    }

    /// Starts HTTP/3 on a QUIC connection already established (ALPN `h3`)
    /// and waits (at most `timeout`) for the server's SETTINGS. The
    /// answers' field sections are held to the default head limits
    /// (`Limits::default`).
    ///
    /// # Errors
    /// [`Error::Io`] when HTTP/3 fails; [`Error::Handshake`] on timeout;
    /// [`Error::ExtendedConnectUnavailable`] when the server's SETTINGS do
    /// not enable extended CONNECT.
    pub async fn handshake(
        connection: quinn::Connection,
        timeout: Duration,
    ) -> Result<Self, Error> {
        Self::start(connection, timeout, &Limits::DEFAULT).await
    }

    async fn start(
        connection: quinn::Connection,
        timeout: Duration,
        limits: &Limits,
    ) -> Result<Self, Error> {
        let (mut driver, send) = h3::client::builder()
            .max_field_section_size(field_section_size(limits))
            .build(h3_quinn::Connection::new(connection.clone()))
            .await
            .map_err(|e| io::Error::other(format!("HTTP/3 did not start: {e}")))?;
        // The SETTINGS come on the server's control stream (RFC 9114
        // section 6.2.1), which the driver reads; until they arrive h3
        // answers with the defaults (extended CONNECT off), so wait.
        let settings = std::future::poll_fn(|cx| {
            if let Poll::Ready(e) = driver.poll_close(cx) {
                return Poll::Ready(Err(io::Error::other(format!(
                    "the HTTP/3 connection ended before the server's SETTINGS: {e}"
                ))));
            }
            match send.settings() {
                Cow::Borrowed(_) => Poll::Ready(Ok(())),
                Cow::Owned(_) => Poll::Pending,
            }
        });
        tokio::time::timeout(timeout, settings)
            .await
            .map_err(|_| Error::Handshake(HandshakeError::Timeout(timeout)))??;
        tokio::spawn(async move {
            let e = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
            tracing::debug!("HTTP/3 connection ended: {e}");
        });
        let client = Self { send, connection };
        client.check_extended_connect()?;
        Ok(client)
    }

    /// Whether the server enabled extended CONNECT
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`, RFC 9220 section 3).
    pub fn extended_connect_enabled(&self) -> bool {
        self.send.settings().enable_extended_connect()
    }

    fn check_extended_connect(&self) -> Result<(), Error> {
        if self.extended_connect_enabled() {
            return Ok(());
        }
        Err(Error::ExtendedConnectUnavailable(
            "the HTTP/3 server did not enable extended CONNECT \
             (SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, RFC 9220 section 3), so it cannot carry \
             a WebSocket: connect over HTTP/1.1"
                .into(),
        ))
    }

    /// Opens a WebSocket for `url` (its path and authority) as a new
    /// request stream: the extended CONNECT with the options'
    /// subprotocols, headers and extension offers, then the check of the
    /// server's answer.
    ///
    /// # Errors
    /// [`Error::ExtendedConnectUnavailable`], [`Error::Handshake`] (a
    /// non-2xx answer names its status), [`Error::Io`] (the connection
    /// failed, or the server reset the stream).
    pub async fn open(
        &self,
        url: &str,
        options: &ClientOptions,
    ) -> Result<(WebSocket, Accepted), Error> {
        self.check_extended_connect()?;
        let mut connect = ClientConnect::new(url, options.handshake.clone(), &options.config)?;
        let mut request = connect.request()?;
        request
            .extensions_mut()
            .insert(h3::ext::Protocol::WEBSOCKET);
        let timeout = options.config.handshake_timeout;
        let mut send = self.send.clone();
        let (response, stream) = tokio::time::timeout(timeout, async {
            let mut stream = send.send_request(request).await.map_err(|e| io_error(&e))?;
            let response = stream.recv_response().await.map_err(|e| io_error(&e))?;
            Ok::<_, io::Error>((response, stream))
        })
        .await
        .map_err(|_| Error::Handshake(HandshakeError::Timeout(timeout)))??;
        let accepted = connect.check_response(&response)?;
        let now = tokio::time::Instant::now().into_std();
        let conn = connect.into_connection(options.config.clone(), now);
        let stream = H3Stream::client(stream, self.send.clone()).bounded_by(&options.config);
        Ok((start(stream, conn, None, options.driver), accepted))
    }

    /// Closes the QUIC connection at once (its WebSockets end with 1006):
    /// for the end of a program, after their closing handshakes.
    pub fn close(&self) {
        // a close, not a failure
        self.connection.close(H3_NO_ERROR.into(), b"");
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, Error> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| {
            Error::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address"),
            ))
        })
}

/// The client's TLS config for QUIC: the options' (roots, client
/// certificate), TLS 1.3 only, ALPN `h3`.
fn quic_client_config(
    options: &ClientOptions,
) -> Result<Arc<quinn::crypto::rustls::QuicClientConfig>, Error> {
    let base = match options.tls_client_config()? {
        Some(config) => config,
        None => crate::tls::client_config(&[])?,
    };
    let mut config = (*base).clone();
    config.alpn_protocols = vec![ALPN_H3.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(config).map_err(|e| {
        Error::Tls(format!(
            "the TLS settings cannot run QUIC (it needs TLS 1.3 with AES-128-GCM): {e}"
        ))
    })?;
    Ok(Arc::new(quic))
}

/// No QUIC handshake within `timeout`: UDP gives no refusal to tell a
/// closed port from a slow server, so the message asks.
fn no_answer(host: &str, timeout: Duration) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "{host} did not answer over QUIC (UDP) within {timeout:?}: \
             is an HTTP/3 server listening on that port?"
        ),
    ))
}

/// A QUIC connection that failed to start, in plain words: a TLS failure
/// (a CRYPTO_ERROR, RFC 9001 section 4.8) is [`Error::Tls`].
fn quic_failure(host: &str, e: &quinn::ConnectionError, idle_timeout: Duration) -> Error {
    let code = match e {
        quinn::ConnectionError::TransportError(t) => Some(u64::from(t.code)),
        quinn::ConnectionError::ConnectionClosed(c) => Some(u64::from(c.error_code)),
        _ => None,
    };
    match e {
        quinn::ConnectionError::TimedOut => no_answer(host, idle_timeout),
        _ if code.is_some_and(|c| (0x100..0x200).contains(&c)) => {
            Error::Tls(format!("the QUIC handshake with {host} failed: {e}"))
        }
        e => Error::Io(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("QUIC to {host} failed: {e}"),
        )),
    }
}

/// A QUIC endpoint listening on `addr` (UDP) for HTTP/3: `tls` (a server
/// config, e.g. [`crate::tls::server_config`]) with ALPN `h3`. Each
/// incoming connection goes to [`Http3Server::handshake`].
///
/// # Errors
/// [`Error::Tls`] when the TLS config cannot run QUIC; [`Error::Io`] when
/// the UDP socket cannot be bound.
///
/// QUIC's idle timeout is `config.transport_idle_timeout`.
pub fn server_endpoint(
    addr: SocketAddr,
    tls: &Arc<rustls::ServerConfig>,
    config: &tether::Config,
) -> Result<quinn::Endpoint, Error> {
    let mut crypto = (**tls).clone();
    crypto.alpn_protocols = vec![ALPN_H3.to_vec()];
    crypto.max_early_data_size = 0;
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(crypto).map_err(|e| {
        Error::Tls(format!(
            "the TLS settings cannot run QUIC (it needs TLS 1.3 with AES-128-GCM): {e}"
        ))
    })?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
    server.transport_config(Arc::new(transport(config)));
    Ok(quinn::Endpoint::server(server, addr)?)
}

/// The QUIC settings both sides share: the receive windows
/// (`Config::transport_windows`), as much in flight unacknowledged as the
/// connection's window (quinn's default is 10 MB whatever the config), no
/// DATAGRAM frames (a WebSocket never uses them; quinn's default takes up
/// to 1.25 MB of them per connection, advertised and never read), the
/// streams the peer may open at once (`Config::transport_max_streams`),
/// and the idle timeout from `config` (none for a wait past what time
/// holds: `Duration::MAX` means never, as for every `Config` wait).
fn transport(config: &tether::Config) -> quinn::TransportConfig {
    let idle = tether::finite_wait(config.transport_idle_timeout)
        .and_then(|d| quinn::IdleTimeout::try_from(d).ok());
    let (stream_window, connection_window) = config.transport_windows();
    let mut transport = quinn::TransportConfig::default();
    transport
        .stream_receive_window(stream_window.into())
        .receive_window(connection_window.into())
        .send_window(connection_window.into())
        .datagram_receive_buffer_size(None)
        .max_concurrent_bidi_streams(config.transport_max_streams.max(1).into())
        .max_idle_timeout(idle);
    transport
}

/// One stream's window under `config`, in bytes.
fn window(config: &tether::Config) -> usize {
    usize::try_from(config.transport_windows().0).unwrap_or(usize::MAX)
}

/// H3_NO_ERROR (RFC 9114 section 8.1): a connection closed on purpose.
const H3_NO_ERROR: u32 = 0x100;

/// The server side of one QUIC connection speaking HTTP/3, advertising
/// extended CONNECT: each extended CONNECT stream becomes a
/// [`WebSocket`].
///
/// Keep calling [`accept`](Self::accept) (a loop of its own, e.g. on a
/// task): it drives the connection, and answers other requests with a
/// refusal. A connection with no WebSocket open for
/// `Config::handshake_timeout` (from its start, or since its last
/// WebSocket ended) is asked to go away (GOAWAY); once nothing is left
/// open, the client has `Config::close_timeout` to close it, then it is
/// closed with no error, and `accept` returns `None` ([`Vacancy`], the
/// same rules as over HTTP/2).
pub struct Http3Server {
    connection: h3::server::Connection<h3_quinn::Connection, Bytes>,
    /// The QUIC connection under it, closed when the core says to let it
    /// go (h3's `accept` ends only after a GOAWAY, or the connection's
    /// end).
    quic: quinn::Connection,
    remote: SocketAddr,
    options: ServerOptions,
    /// h3 hands over no more streams: the connection went away (either
    /// side's GOAWAY), ended, or failed (its error returned once; h3
    /// returns the same error at once when asked again, so a loop calling
    /// `accept` until `None` would spin). Streams still resolving come
    /// out; the connection is let go as the core says (`closed`).
    accept_ended: bool,
    /// The QUIC connection is closed (by us, the client, or a failure):
    /// once nothing is on its way, `accept` is `None`.
    closed: bool,
    /// Streams waiting for their request HEADERS, each on a task.
    resolving: JoinSet<Resolved>,
    /// Accepted requests whose answer is being sent, each on a task.
    answering: JoinSet<Result<Answered, Error>>,
    /// Refusals being sent, each on a task: the connection does not close
    /// under them.
    refusing: JoinSet<()>,
    /// The WebSockets open on the connection, and when it goes (for
    /// carrying none, or after a GOAWAY: [`Vacancy`]).
    tenants: Arc<Tenants>,
    vacancy: Vacancy,
}

/// A server's request stream, as h3 hands it over.
type ServerStream = h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

impl std::fmt::Debug for Http3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http3Server")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl Http3Server {
    /// Completes the QUIC handshake of `incoming` (from
    /// [`server_endpoint`]) and starts HTTP/3, with our SETTINGS enabling
    /// extended CONNECT (`SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`).
    ///
    /// # Errors
    /// [`Error::Tls`] or [`Error::Io`] when the QUIC handshake fails,
    /// [`Error::Handshake`] after the options' handshake timeout.
    pub async fn handshake(
        incoming: quinn::Incoming,
        options: &ServerOptions,
    ) -> Result<Self, Error> {
        let timeout = options.config.handshake_timeout;
        let remote = incoming.remote_address();
        let start = async {
            let connection = incoming.await.map_err(|e| {
                let idle = options.config.transport_idle_timeout;
                quic_failure(&remote.to_string(), &e, idle)
            })?;
            let h3 = h3::server::builder()
                .enable_extended_connect(true)
                .max_field_section_size(field_section_size(&options.limits))
                .build(h3_quinn::Connection::new(connection.clone()))
                .await
                .map_err(|e| io::Error::other(format!("HTTP/3 did not start: {e}")))?;
            Ok::<_, Error>((h3, connection))
        };
        let (connection, quic) = tokio::time::timeout(timeout, start)
            .await
            .map_err(|_| Error::Handshake(HandshakeError::Timeout(timeout)))??;
        let now = tokio::time::Instant::now().into_std();
        Ok(Self {
            connection,
            quic,
            remote,
            vacancy: Vacancy::new(&options.config, now),
            options: options.clone(),
            accept_ended: false,
            closed: false,
            resolving: JoinSet::new(),
            answering: JoinSet::new(),
            refusing: JoinSet::new(),
            tenants: Arc::default(),
        })
    }

    /// The client's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.remote
    }

    /// The next WebSocket, with default choices (no subprotocol;
    /// permessage-deflate if `Config::deflate` is set). `None` once the
    /// connection has ended.
    ///
    /// # Errors
    /// [`Error::Handshake`] for a stream whose request was refused (its
    /// refusal is sent on a task of its own, within the handshake timeout;
    /// a request h3 could not parse had its stream reset; the connection
    /// goes on), or whose request did not arrive, or whose answer could
    /// not be sent, within `Config::handshake_timeout`; [`Error::Io`] of
    /// kind `ConnectionReset` for a stream the client reset before it
    /// was answered (the connection goes on), and [`Error::Io`] of kind
    /// `ConnectionAborted` when the connection failed (once; later calls
    /// return what its streams waiting for their HEADERS come to, then
    /// `None`).
    pub async fn accept(&mut self) -> Option<Result<(WebSocket, Request), Error>> {
        self.accept_with(|_| Ok(AcceptOptions::new())).await
    }

    /// [`accept`](Self::accept), letting `decide` pick a subprotocol (and
    /// headers) or refuse with a [`Refusal`] (e.g. 403), which is sent on a
    /// task of its own (within the handshake timeout; the connection does
    /// not close under it) as [`Error::Refused`] is returned.
    ///
    /// # Errors
    /// As [`accept`](Self::accept), plus [`Error::Refused`].
    pub async fn accept_with<F>(&mut self, decide: F) -> Option<Result<(WebSocket, Request), Error>>
    where
        F: FnOnce(&Request) -> Result<AcceptOptions, Refusal>,
    {
        // Streams are handed over before their HEADERS arrive: each waits
        // for them on a task of its own (bounded by the handshake timeout,
        // as over HTTP/1.1), so a client that never sends them holds no
        // other stream, and the connection is driven meanwhile. So is each
        // answer: its HEADERS wait for the client's stream credit, which
        // a client may never give.
        let mut decide = Some(decide);
        loop {
            let pending = self.resolving.len() + self.answering.len() + self.refusing.len();
            let on_its_way = if self.vacancy.going_away() {
                pending
            } else {
                0
            };
            tokio::select! {
                Some(_) = self.refusing.join_next(), if !self.refusing.is_empty() => {}
                Some(joined) = self.answering.join_next(), if !self.answering.is_empty() => {
                    return Some(match joined {
                        Ok(Ok(answered)) => Ok(self.open(answered)),
                        Ok(Err(e)) => Err(e),
                        Err(e) => Err(lost(&e)),
                    });
                }
                Some(joined) = self.resolving.join_next(), if !self.resolving.is_empty() && decide.is_some() => {
                    let (request, stream, deadline) = match joined {
                        Ok(Ok(resolved)) => resolved,
                        Ok(Err(Some(e))) => return Some(Err(e)),
                        // the connection failed: its `accept`, polled next,
                        // says how, once h3 has closed it with that code
                        // (returning here first let a dropped server close
                        // it with H3_NO_ERROR instead)
                        Ok(Err(None)) => continue,
                        Err(e) => return Some(Err(lost(&e))),
                    };
                    if let Some(decide) = decide.take()
                        && let Err(e) = self.answer(request, stream, deadline, decide)
                    {
                        return Some(Err(e));
                    }
                }
                next = self.connection.accept(), if !self.accept_ended => {
                    match next {
                        Ok(Some(resolver)) => {
                            let timeout = self.options.config.handshake_timeout;
                            // one deadline for the whole handshake: the
                            // request's HEADERS, then our answer
                            let deadline = crate::deadline_after(timeout);
                            self.resolving.spawn(async move {
                                match tokio::time::timeout_at(
                                    deadline,
                                    resolver.resolve_request(),
                                )
                                .await
                                {
                                    Ok(Ok((request, stream))) => Ok((request, stream, deadline)),
                                    Ok(Err(StreamError::ConnectionError(_))) => Err(None),
                                    Ok(Err(e)) => Err(Some(malformed_or_failed(&e))),
                                    Err(_) => Err(Some(Error::Handshake(HandshakeError::Timeout(timeout)))),
                                }
                            });
                        }
                        // a GOAWAY (ours, or the client's): the WebSockets
                        // open are served on, and the connection is let go
                        // as the core says (the client's time to close it
                        // first, so our last bytes reach it)
                        Ok(None) => self.streams_ended(),
                        Err(e) if e.is_h3_no_error() => self.streams_ended(),
                        Err(e) => {
                            self.accept_ended = true;
                            self.closed = true;
                            return Some(Err(Error::Io(io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                format!("the HTTP/3 connection failed: {e}"),
                            ))));
                        }
                    }
                }
                // Before a GOAWAY only WebSockets hold a connection: a
                // request on its way does not (a client sending one slowly
                // every so often would hold it for good); it is served
                // after the GOAWAY, within its own handshake timeout, and
                // from then on counts. After it, once nothing is open or on
                // its way and the client has had its time to close the
                // connection itself (it ends `accept` then), it is closed
                // with no error, and `accept` says `None`.
                step = self.tenants.vacant(&mut self.vacancy, on_its_way), if !self.closed => match step {
                    VacancyStep::LetGo => {
                        self.quic.close(H3_NO_ERROR.into(), b"no WebSocket open");
                        self.accept_ended = true;
                        self.closed = true;
                    }
                    _ => self.go_away().await,
                },
                // the client closed it in its time
                _ = self.quic.closed(), if self.accept_ended && !self.closed => {
                    self.closed = true;
                }
                else => return None,
            }
        }
    }

    /// Checks a request, lets `decide` choose, and starts sending the
    /// answer on a task of its own (into `answering`, bounded by the
    /// handshake timeout). A refusal is sent the same way, and returned.
    fn answer<F>(
        &mut self,
        request: http::Request<()>,
        mut stream: ServerStream,
        deadline: tokio::time::Instant,
        decide: F,
    ) -> Result<(), Error>
    where
        F: FnOnce(&Request) -> Result<AcceptOptions, Refusal>,
    {
        let timeout = self.options.config.handshake_timeout;
        let protocol = request
            .extensions()
            .get::<h3::ext::Protocol>()
            .map(h3::ext::Protocol::as_str);
        let mut connect = ServerConnect::new(&self.options.config);
        let offer = match connect.check_request(&request, protocol, &self.options.limits) {
            Ok(offer) => offer,
            Err(e) => {
                self.refusing.spawn(refuse(
                    stream,
                    ServerConnect::failure_response(&e),
                    deadline,
                ));
                return Err(Error::Handshake(e));
            }
        };
        let choice = match decide(&offer) {
            Ok(choice) => choice,
            Err(refusal) => {
                self.refusing
                    .spawn(refuse(stream, Some(refusal.to_http()), deadline));
                return Err(Error::Refused {
                    status: refusal.status(),
                    reason: refusal.body().to_string(),
                });
            }
        };
        let answer = match connect.accept(&offer, choice) {
            Ok(answer) => answer,
            Err(e) => {
                let e = HandshakeError::Build(e);
                self.refusing.spawn(refuse(
                    stream,
                    ServerConnect::failure_response(&e),
                    deadline,
                ));
                return Err(Error::Handshake(e));
            }
        };
        self.answering.spawn(async move {
            match tokio::time::timeout_at(deadline, stream.send_response(answer)).await {
                Ok(Ok(())) => Ok(Answered {
                    stream,
                    connect,
                    offer,
                }),
                Ok(Err(e)) => Err(Error::Io(io_error(&e))),
                Err(_) => {
                    // a HEADERS frame cut short must not end with a FIN
                    stream.stop_stream(h3::error::Code::H3_REQUEST_CANCELLED);
                    Err(Error::Handshake(HandshakeError::Timeout(timeout)))
                }
            }
        });
        Ok(())
    }

    /// The WebSocket of an answered request.
    fn open(&mut self, answered: Answered) -> (WebSocket, Request) {
        let Answered {
            stream,
            connect,
            offer,
        } = answered;
        let now = tokio::time::Instant::now().into_std();
        let conn = connect.into_connection(self.options.config.clone(), now);
        let mut transport = H3Stream::server(stream).bounded_by(&self.options.config);
        transport._tenant = Some(self.tenants.admit(&mut self.vacancy, now));
        let ws = start(
            transport,
            conn,
            self.options.budget.clone(),
            self.options.driver,
        );
        (ws, offer)
    }

    /// h3 hands over no more streams (a GOAWAY, ours or the client's): the
    /// connection is going away.
    fn streams_ended(&mut self) {
        self.accept_ended = true;
        let now = tokio::time::Instant::now().into_std();
        self.vacancy.go_away(now);
    }

    /// Sends GOAWAY (RFC 9114 section 5.2), naming the first request not
    /// served: the one after the last accepted, which is served.
    async fn go_away(&mut self) {
        let now = tokio::time::Instant::now().into_std();
        let deadline = self.vacancy.send_deadline(now);
        let sent = tokio::time::timeout_at(deadline.into(), self.connection.shutdown(1)).await;
        // told once it is out (or failed). A call cancelled while it is
        // being sent is not sent again (h3 marks it sent before writing
        // it, and the next call finds it so): the next call tells the
        // vacancy at once
        let now = tokio::time::Instant::now().into_std();
        self.vacancy.go_away(now);
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!("HTTP/3 GOAWAY failed: {e}"),
            Err(_) => tracing::debug!("HTTP/3 GOAWAY could not be sent in time"),
        }
    }

    /// Asks the client to open no more WebSockets (GOAWAY, RFC 9114
    /// section 5.2): the requests already on their way are still served,
    /// and once none is open or on its way the client has
    /// `Config::close_timeout` to close the connection, after which it is
    /// closed with no error; [`accept`](Self::accept) then returns `None`
    /// (the core's rules, [`Vacancy`], as over HTTP/2). Keep calling
    /// `accept` meanwhile, which drives it.
    ///
    /// # Errors
    /// None today; kept for a failure to send the GOAWAY.
    pub async fn shutdown(&mut self) -> Result<(), Error> {
        if !self.vacancy.going_away() {
            self.go_away().await;
        }
        Ok(())
    }
}

/// An answered request: its stream, the handshake's state, and the request.
struct Answered {
    stream: ServerStream,
    connect: ServerConnect,
    offer: Request,
}

/// A task of the accept loop that ended without its result (it panicked
/// or was aborted).
/// A request stream's HEADERS, read: the request, its stream and its
/// handshake's deadline (the answer has until then too). `Err(None)`:
/// the stream failed the whole connection, which the connection's own
/// `accept` then reports (after h3 closed it with that failure's code).
type Resolved = Result<(http::Request<()>, ServerStream, tokio::time::Instant), Option<Error>>;

fn lost(e: &tokio::task::JoinError) -> Error {
    Error::Io(io::Error::other(format!(
        "an HTTP/3 request's handshake was lost: {e}"
    )))
}

/// A request stream's failure before its HEADERS were read: a malformed
/// request (h3 answered it with H3_MESSAGE_ERROR; the connection goes on)
/// is a refused handshake, as over HTTP/2; anything else failed the
/// stream or the connection.
fn malformed_or_failed(e: &StreamError) -> Error {
    use tether::handshake::RequestError;
    let refused = match e {
        StreamError::HeaderTooBig {
            actual_size,
            max_size,
        } => RequestError::FieldsTooLarge {
            size: usize::try_from(*actual_size).unwrap_or(usize::MAX),
            limit: usize::try_from(*max_size).unwrap_or(usize::MAX),
        },
        StreamError::StreamError { code, .. } if *code == h3::error::Code::H3_MESSAGE_ERROR => {
            RequestError::Malformed {
                detail: "the HTTP/3 request is malformed (a field the parser refused, such as a :protocol it does not know, or a pseudo-header missing); h3 reset its stream with H3_MESSAGE_ERROR",
            }
        }
        e => return Error::Io(io_error(e)),
    };
    Error::Handshake(HandshakeError::Request(refused))
}

/// The largest field section we take (`SETTINGS_MAX_FIELD_SECTION_SIZE`,
/// RFC 9114 section 4.2.2, which h3 enforces while decoding): the head
/// limit, as over HTTP/1.1 (h3's own default is no limit), and at most
/// [`MAX_FIELD_SECTION`].
fn field_section_size(limits: &Limits) -> u64 {
    u64::try_from(limits.max_head_len)
        .unwrap_or(u64::MAX)
        .min(MAX_FIELD_SECTION)
}

/// The most a field section may hold over HTTP/3, whatever
/// `Limits::max_head_len` says: the vendored h3 holds a HEADERS frame
/// whole before decoding it, and ends the connection for one declaring
/// more than 64 KiB (its `MAX_HELD_FRAME`, `vendor/README.md`). Told to
/// the peer as our `SETTINGS_MAX_FIELD_SECTION_SIZE`, so a client that
/// keeps to it never meets that.
const MAX_FIELD_SECTION: u64 = 64 * 1024;

/// Sends a refusal on a stream (best effort: the request failed anyway),
/// by the handshake's `deadline`: a client that gives no stream credit has
/// the stream reset instead.
async fn refuse(
    mut stream: ServerStream,
    answer: Option<http::Response<String>>,
    deadline: tokio::time::Instant,
) {
    let Some(answer) = answer else {
        stream.stop_stream(h3::error::Code::H3_REQUEST_REJECTED);
        return;
    };
    let (head, body) = answer.into_parts();
    let sent = tokio::time::timeout_at(deadline, async {
        stream
            .send_response(http::Response::from_parts(head, ()))
            .await?;
        stream.send_data(Bytes::from(body)).await?;
        stream.finish().await
    })
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        // a frame cut short must not end with a FIN
        stream.stop_stream(h3::error::Code::H3_REQUEST_REJECTED);
    }
}
