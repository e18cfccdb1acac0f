//! WebSockets over HTTP/2 (RFC 8441), over the `h2` crate (feature
//! `http2`): several WebSockets as streams of one HTTP/2 connection.
//!
//! Owns the HTTP/2 connection (client and server), the extended CONNECT
//! sent or answered through it, and [`H2Stream`], which makes one h2
//! stream an `AsyncRead + AsyncWrite` transport. Nothing else: the
//! handshake is the core's ([`tether::upgrade::ClientConnect`],
//! [`tether::upgrade::ServerConnect`]), and each WebSocket runs the same
//! driver as over TCP, on its stream. The stream's end (END_STREAM) is the
//! transport's end, as a TCP FIN; a reset (RST_STREAM) is a read error, so
//! the connection aborts with 1006 (RFC 8441 section 5). Flow control is
//! h2's per stream: received bytes are released as the driver reads them
//! (it stops reading when the application stops, so the peer's window
//! closes), and a write waits for capacity, so backpressure reaches the
//! sender both ways.
//!
//! A client waits for the server's SETTINGS (its connection preface,
//! RFC 9113 section 3.4) before its first extended CONNECT, by a PING
//! round trip, and refuses to send one unless the server enabled
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 section 3):
//! [`Error::ExtendedConnectUnavailable`] names it. `wss://` runs TLS with
//! ALPN `h2`; `ws://` speaks HTTP/2 with prior knowledge (RFC 9113
//! section 3.3), for local use.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use tether::Message;
//! use tether_tokio::ClientOptions;
//! use tether_tokio::http2::Http2Client;
//!
//! # async fn run() -> Result<(), tether_tokio::Error> {
//! let options = ClientOptions::new();
//! let client = Http2Client::connect("ws://127.0.0.1:9001/", &options).await?;
//! let (mut chat, _) = client.open("ws://127.0.0.1:9001/chat", &options).await?;
//! let (mut feed, _) = client.open("ws://127.0.0.1:9001/feed", &options).await?;
//! chat.send(Message::text("hello")).await?;
//! let _ = (chat.next().await, feed.next().await);
//! # Ok(()) }
//! ```

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use tether::handshake::{AcceptOptions, Accepted, Limits, Refusal, Request, WsUrl, http};
use tether::upgrade::{ClientConnect, HandshakeError, ServerConnect};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::tenants::{Tenant, Tenants};
use crate::{ClientOptions, Error, ServerOptions, WebSocket, start};
use tether::upgrade::{Vacancy, VacancyStep};

/// The ALPN protocol ID of HTTP/2 over TLS (RFC 9113 section 3.2).
pub const ALPN_H2: &[u8] = b"h2";

/// One HTTP/2 stream as a WebSocket's transport: reads are the stream's
/// DATA (its end is EOF, a reset an error), writes become DATA within the
/// stream's flow-control window, shutdown sends END_STREAM.
#[derive(Debug)]
pub struct H2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// Received DATA not yet read, with its flow-control capacity held.
    pending: Bytes,
    /// END_STREAM was sent.
    finished: bool,
    /// On a server, the WebSocket's place in its connection's count.
    _tenant: Option<Tenant>,
}

impl H2Stream {
    /// The transport made of one stream's two halves.
    pub fn new(send: SendStream<Bytes>, recv: RecvStream) -> Self {
        Self {
            send,
            recv,
            pending: Bytes::new(),
            finished: false,
            _tenant: None,
        }
    }
}

/// An h2 error as the I/O error the driver sees: a reset says so (the
/// WebSocket then ends with 1006), naming the HTTP/2 error code.
fn io_error(e: h2::Error) -> io::Error {
    if let Some(reason) = e.reason() {
        let what = if e.is_go_away() {
            "the HTTP/2 connection went away (GOAWAY"
        } else if e.is_remote() {
            "the peer reset the HTTP/2 stream (RST_STREAM"
        } else {
            "the HTTP/2 stream was reset (RST_STREAM"
        };
        return io::Error::new(io::ErrorKind::ConnectionReset, format!("{what} {reason})"));
    }
    let said = e.to_string();
    match e.into_io() {
        Some(e) => e,
        // h2's own refusal of an operation (e.g. on a stream the peer has
        // already reset): its words, not a connection failure's
        None => io::Error::other(format!("HTTP/2: {said}")),
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.pending.is_empty() {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => this.pending = data,
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                None => return Poll::Ready(Ok(())), // END_STREAM: EOF
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending.split_to(n));
        // the peer may send as much again: the window follows the reader
        this.recv
            .flow_control()
            .release_capacity(n)
            .map_err(io_error)?;
        Poll::Ready(Ok(()))
    }
}

/// The most one write asks h2 to reserve: HTTP/2's largest window
/// (2^31 - 1, RFC 9113 section 6.9.1).
const MAX_RESERVE: usize = (1 << 31) - 1;

impl AsyncWrite for H2Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = &mut *self;
        // at most HTTP/2's largest window: h2 takes the request as a u32,
        // so a write of 4 GiB or more asked for nothing and waited
        this.send.reserve_capacity(buf.len().min(MAX_RESERVE));
        loop {
            let granted = match this.send.capacity() {
                0 => match ready!(this.send.poll_capacity(cx)) {
                    Some(Ok(n)) => n,
                    Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                    None => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "the HTTP/2 stream is closed",
                        )));
                    }
                },
                n => n,
            };
            if granted == 0 {
                continue;
            }
            let n = granted.min(buf.len());
            this.send
                .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                .map_err(io_error)?;
            return Poll::Ready(Ok(n));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // the connection's task writes what send_data queued
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.finished {
            self.finished = true;
            self.send.send_data(Bytes::new(), true).map_err(io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

/// The client side of one HTTP/2 connection: opens WebSockets on it, each
/// a stream. Cheap to clone (a handle); the connection itself runs on a
/// task of its own until every handle and every stream is gone.
#[derive(Clone, Debug)]
pub struct Http2Client {
    send: h2::client::SendRequest<Bytes>,
}

impl Http2Client {
    /// Connects to the host of `url` and starts HTTP/2: `wss://` over TLS
    /// with ALPN `h2` (the options' TLS settings), `ws://` with prior
    /// knowledge. Returns once the server's SETTINGS have arrived.
    ///
    /// # Errors
    /// As [`crate::connect`] for TCP (through a proxy when the options say
    /// so) and TLS;
    /// [`Error::ExtendedConnectUnavailable`] when a TLS server does not
    /// agree to `h2` or the server does not enable extended CONNECT.
    pub async fn connect(url: &str, options: &ClientOptions) -> Result<Self, Error> {
        let parsed = WsUrl::parse(url).map_err(|e| Error::Url(e.to_string()))?;
        // reaching the server, TLS included, is one deadline
        // (`Config::connect_timeout`), as over HTTP/1.1
        let timeout = options.config.connect_timeout;
        let reached = crate::deadline_after(timeout);
        // directly, or through the proxy the options choose, as over HTTP/1.1
        // (one TCP connection for many WebSockets, each opened by a
        // request on it: none is in the CONNECTING state of RFC 6455 4.1)
        let (tcp, leftover, _) = crate::reach_tcp(&parsed, options, reached, false).await?;
        if parsed.is_secure() {
            // TLS: the server speaks only when spoken to
            crate::expect_silence(&leftover)?;
            #[cfg(feature = "tls")]
            {
                let tls = tokio::time::timeout_at(
                    reached,
                    crate::tls::connect(tcp, parsed.host(), Some(h2_tls_config(options)?)),
                )
                .await
                .map_err(|_| crate::tls::timed_out(timeout))??;
                if tls.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
                    return Err(Error::ExtendedConnectUnavailable(format!(
                        "{} did not agree to HTTP/2 (TLS ALPN \"h2\", RFC 9113 section 3.2): \
                         connect over HTTP/1.1",
                        parsed.host()
                    )));
                }
                return Self::handshake_with(tls, options).await;
            }
            #[cfg(not(feature = "tls"))]
            return Err(Error::Tls(
                "wss:// needs TLS, and tether-tokio was built without its `tls` feature".into(),
            ));
        }
        // prior knowledge: the server may have spoken first (its SETTINGS,
        // RFC 9113 section 3.4), its bytes come with a proxy's answer
        if leftover.is_empty() {
            Self::handshake_with(tcp, options).await
        } else {
            let stream = crate::Prefixed::new(leftover, tcp);
            Self::handshake_with(stream, options).await
        }
    }

    async fn handshake_with<S>(io: S, options: &ClientOptions) -> Result<Self, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let timeout = options.config.handshake_timeout;
        let limits = options.handshake.head_limits();
        tokio::time::timeout(timeout, Self::start(io, limits, &options.config))
            .await
            .map_err(|_| Error::Handshake(HandshakeError::Timeout(timeout)))?
    }

    /// Starts HTTP/2 over a stream already connected (TLS done, `h2`
    /// agreed, or prior knowledge) and waits (at most `timeout`, as
    /// [`Http3Client::handshake`](crate::http3::Http3Client::handshake)
    /// does) for the server's SETTINGS. The answers' header lists are held
    /// to the default head limits (`Limits::default`), and its receive
    /// windows are `Config::default()`'s.
    ///
    /// # Errors
    /// [`Error::Io`] when HTTP/2 fails; [`Error::Handshake`] on timeout;
    /// [`Error::ExtendedConnectUnavailable`] when the server does not
    /// answer in HTTP/2 or its SETTINGS do not enable extended CONNECT.
    pub async fn handshake<S>(io: S, timeout: Duration) -> Result<Self, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = tether::Config::default();
        tokio::time::timeout(timeout, Self::start(io, &Limits::DEFAULT, &config))
            .await
            .map_err(|_| Error::Handshake(HandshakeError::Timeout(timeout)))?
    }

    async fn start<S>(io: S, limits: &Limits, config: &tether::Config) -> Result<Self, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (stream_window, connection_window) = config.transport_windows();
        // No server push (RFC 9113 section 8.4): a WebSocket client has no
        // use for it, and each PUSH_PROMISE would wait, unread, on the
        // stream it came on for as long as that WebSocket lives.
        let (send, mut connection) = h2::client::Builder::new()
            .enable_push(false)
            .max_concurrent_streams(config.transport_max_streams.max(1))
            .max_header_list_size(header_list_size(limits))
            .initial_window_size(stream_window)
            .max_send_buffer_size(usize::try_from(stream_window).unwrap_or(usize::MAX))
            .initial_connection_window_size(connection_window)
            .handshake(io)
            .await
            .map_err(io_error)?;
        let mut ping = connection.ping_pong();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("HTTP/2 connection ended: {e}");
            }
        });
        // The server's SETTINGS are the first frame it sends (RFC 9113
        // section 3.4): once our PING comes back, they have been applied.
        // A server that does not speak HTTP/2 (an HTTP/1.1 server given
        // our preface) fails here: named, so a caller may fall back.
        if let Some(ping) = ping.as_mut() {
            let pong = match ping.send_ping(h2::Ping::opaque()) {
                Ok(()) => std::future::poll_fn(|cx| ping.poll_pong(cx)).await,
                Err(e) => Err(e),
            };
            pong.map_err(|e| {
                Error::ExtendedConnectUnavailable(format!(
                    "the server did not answer in HTTP/2 ({}): connect over HTTP/1.1",
                    io_error(e)
                ))
            })?;
        }
        let client = Self { send };
        client.check_extended_connect()?;
        Ok(client)
    }

    /// Whether the server enabled extended CONNECT
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`, RFC 8441 section 3).
    pub fn extended_connect_enabled(&self) -> bool {
        self.send.is_extended_connect_protocol_enabled()
    }

    fn check_extended_connect(&self) -> Result<(), Error> {
        if self.extended_connect_enabled() {
            return Ok(());
        }
        Err(Error::ExtendedConnectUnavailable(
            "the HTTP/2 server did not enable extended CONNECT \
             (SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, RFC 8441 section 3), so it cannot carry \
             a WebSocket: connect over HTTP/1.1"
                .into(),
        ))
    }

    /// Opens a WebSocket for `url` (its path and authority; the scheme
    /// should be the connection's) as a new stream: the extended CONNECT
    /// with the options' subprotocols, headers and extension offers, then
    /// the check of the server's answer.
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
            .insert(h2::ext::Protocol::from_static(tether::handshake::PROTOCOL));
        let timeout = options.config.handshake_timeout;
        let (response, send) = tokio::time::timeout(timeout, async {
            let mut sender = self.send.clone().ready().await.map_err(io_error)?;
            let (response, send) = sender.send_request(request, false).map_err(io_error)?;
            let response = response.await.map_err(io_error)?;
            Ok::<_, io::Error>((response, send))
        })
        .await
        .map_err(|_| Error::Handshake(HandshakeError::Timeout(timeout)))??;
        let accepted = connect.check_response(&response)?;
        let now = tokio::time::Instant::now().into_std();
        let conn = connect.into_connection(options.config.clone(), now);
        let stream = H2Stream::new(send, response.into_body());
        Ok((start(stream, conn, None, options.driver), accepted))
    }
}

/// The client's TLS config for HTTP/2: the options' (roots, client
/// certificate), offering ALPN `h2`, then `http/1.1`.
#[cfg(feature = "tls")]
fn h2_tls_config(options: &ClientOptions) -> Result<std::sync::Arc<rustls::ClientConfig>, Error> {
    let base = match options.tls_client_config()? {
        Some(config) => config,
        None => crate::tls::client_config(&[])?,
    };
    let mut config = (*base).clone();
    // http/1.1 too, so a server without HTTP/2 completes TLS and is named
    // (rather than failing with a TLS alert)
    config.alpn_protocols = vec![ALPN_H2.to_vec(), b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// The server side of one HTTP/2 connection, advertising extended
/// CONNECT: each extended CONNECT stream becomes a [`WebSocket`].
///
/// Keep calling [`accept`](Self::accept) (a loop of its own, e.g. on a
/// task): it drives the connection, every stream of it included, and
/// answers other requests with a refusal. A connection with no WebSocket
/// open for `Config::handshake_timeout` (from its start, or since its
/// last WebSocket ended) is asked to go away (GOAWAY); once nothing is
/// left open, the client has `Config::close_timeout` to end it, and
/// `accept` then returns `None`: the core's rules
/// ([`tether::upgrade::Vacancy`]), the same as over HTTP/3.
pub struct Http2Server<S> {
    connection: h2::server::Connection<S, Bytes>,
    options: ServerOptions,
    /// The connection failed and its error was returned, or it was let
    /// go: every later `accept` is `None` (h2 returns the same error again
    /// at once, so a loop calling `accept` until `None` would spin).
    ended: bool,
    /// The WebSockets open on the connection, and when it goes (for
    /// carrying none, or after a GOAWAY).
    tenants: Arc<Tenants>,
    vacancy: Vacancy,
}

impl<S> std::fmt::Debug for Http2Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Server").finish_non_exhaustive()
    }
}

impl<S> Http2Server<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Starts HTTP/2 on `io` (the client's preface, our SETTINGS with
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`).
    ///
    /// # Errors
    /// [`Error::Io`] when the client does not speak HTTP/2, or within the
    /// options' handshake timeout.
    pub async fn handshake(io: S, options: &ServerOptions) -> Result<Self, Error> {
        let (stream_window, connection_window) = options.config.transport_windows();
        let mut builder = h2::server::Builder::new();
        builder
            .max_concurrent_streams(options.config.transport_max_streams.max(1))
            .max_header_list_size(header_list_size(&options.limits))
            .initial_window_size(stream_window)
            .max_send_buffer_size(usize::try_from(stream_window).unwrap_or(usize::MAX))
            .initial_connection_window_size(connection_window);
        Self::start(io, options, &builder).await
    }

    /// Starts HTTP/2 on `io` only to refuse what it asks (a server at its
    /// connection limit answers with [`accept_with`](Self::accept_with)
    /// and a refusal), holding little whatever the client sends: one
    /// stream at a time, header lists of at most
    /// [`REFUSAL_HEADER_LIST`] bytes, no window for request bodies (a
    /// stream's window is 0; at most the connection's initial 65,535
    /// bytes can arrive) and answers buffered to 4 KiB.
    ///
    /// # Errors
    /// As [`handshake`](Self::handshake).
    pub async fn handshake_to_refuse(io: S, options: &ServerOptions) -> Result<Self, Error> {
        let mut builder = h2::server::Builder::new();
        builder
            .max_concurrent_streams(1)
            .max_header_list_size(REFUSAL_HEADER_LIST)
            .initial_window_size(0)
            .max_send_buffer_size(4 << 10);
        Self::start(io, options, &builder).await
    }

    async fn start(
        io: S,
        options: &ServerOptions,
        builder: &h2::server::Builder,
    ) -> Result<Self, Error> {
        let timeout = options.config.handshake_timeout;
        let mut builder = builder.clone();
        let connection =
            tokio::time::timeout(timeout, builder.enable_connect_protocol().handshake(io))
                .await
                .map_err(|_| Error::Handshake(HandshakeError::Timeout(timeout)))?
                .map_err(io_error)?;
        let now = tokio::time::Instant::now().into_std();
        Ok(Self {
            connection,
            vacancy: Vacancy::new(&options.config, now),
            options: options.clone(),
            ended: false,
            tenants: Arc::default(),
        })
    }

    /// The next WebSocket, with default choices (no subprotocol;
    /// permessage-deflate if `Config::deflate` is set). `None` once the
    /// connection has ended.
    ///
    /// # Errors
    /// [`Error::Handshake`] for a stream whose request was refused (its
    /// refusal was sent; the connection goes on); [`Error::Io`] of kind
    /// `ConnectionReset` for a stream whose answer could not be sent (the
    /// client reset it first; the connection goes on), and [`Error::Io`]
    /// when the connection failed (once: every later call is `None`).
    pub async fn accept(&mut self) -> Option<Result<(WebSocket, Request), Error>> {
        self.accept_with(|_| Ok(AcceptOptions::new())).await
    }

    /// [`accept`](Self::accept), letting `decide` pick a subprotocol (and
    /// headers) or refuse with a [`Refusal`] (e.g. 403), which is sent
    /// before returning [`Error::Refused`].
    ///
    /// # Errors
    /// As [`accept`](Self::accept), plus [`Error::Refused`].
    pub async fn accept_with<F>(&mut self, decide: F) -> Option<Result<(WebSocket, Request), Error>>
    where
        F: FnOnce(&Request) -> Result<AcceptOptions, Refusal>,
    {
        if self.ended {
            return None;
        }
        let next = loop {
            tokio::select! {
                next = self.connection.accept() => break next?,
                step = self.tenants.vacant(&mut self.vacancy, 0) => match step {
                    // the client did not end the connection in its time
                    // after the GOAWAY (h2 waits for its answer to our
                    // PING: a client that vanished never gives it)
                    VacancyStep::LetGo => {
                        self.ended = true;
                        return None;
                    }
                    // nothing to serve: the client opens no more, and h2
                    // ends the connection once it has answered (`accept`
                    // then says `None`), within the core's time for it
                    _ => self.graceful_shutdown(),
                },
            }
        };
        let (request, mut respond) = match next {
            Ok(next) => next,
            Err(e) => {
                self.ended = true;
                return Some(Err(Error::Io(io_error(e))));
            }
        };
        let protocol = request
            .extensions()
            .get::<h2::ext::Protocol>()
            .map(h2::ext::Protocol::as_str);
        let mut connect = ServerConnect::new(&self.options.config);
        let offer = match connect.check_request(&request, protocol, &self.options.limits) {
            Ok(offer) => offer,
            Err(e) => {
                refuse(&mut respond, ServerConnect::failure_response(&e));
                return Some(Err(Error::Handshake(e)));
            }
        };
        let choice = match decide(&offer) {
            Ok(choice) => choice,
            Err(refusal) => {
                refuse(&mut respond, Some(refusal.to_http()));
                return Some(Err(Error::Refused {
                    status: refusal.status(),
                    reason: refusal.body().to_string(),
                }));
            }
        };
        let answer = match connect.accept(&offer, choice) {
            Ok(answer) => answer,
            Err(e) => {
                let e = HandshakeError::Build(e);
                refuse(&mut respond, ServerConnect::failure_response(&e));
                return Some(Err(Error::Handshake(e)));
            }
        };
        let send = match respond.send_response(answer, false) {
            Ok(send) => send,
            // this stream only: the client reset it before our answer
            Err(e) => {
                return Some(Err(Error::Io(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    format!(
                        "a WebSocket request's HTTP/2 stream could not be answered (the client \
                         reset it first; the connection goes on): {}",
                        io_error(e)
                    ),
                ))));
            }
        };
        let now = tokio::time::Instant::now().into_std();
        let conn = connect.into_connection(self.options.config.clone(), now);
        let mut stream = H2Stream::new(send, request.into_body());
        stream._tenant = Some(self.tenants.admit(&mut self.vacancy, now));
        Some(Ok((
            start(
                stream,
                conn,
                self.options.budget.clone(),
                self.options.driver,
            ),
            offer,
        )))
    }

    /// Asks the client to open no more streams (GOAWAY); the open ones go
    /// on while [`accept`](Self::accept) is called. Once none is open, the
    /// client has `Config::close_timeout` to end the connection before
    /// `accept` lets it go (`None`).
    pub fn graceful_shutdown(&mut self) {
        if !self.vacancy.going_away() {
            self.connection.graceful_shutdown();
        }
        let now = tokio::time::Instant::now().into_std();
        self.vacancy.go_away(now);
    }
}

/// The largest header list we take (`SETTINGS_MAX_HEADER_LIST_SIZE`, RFC
/// 9113 section 6.5.2, which h2 enforces): the head limit, as over
/// HTTP/1.1, so h2 never holds more than it (its own default is 16 MiB).
/// The largest header list an HTTP/2 connection started only to refuse
/// ([`Http2Server::handshake_to_refuse`]) takes: 4 KiB, what an HTTP/1.1
/// refusal reads of a request.
pub const REFUSAL_HEADER_LIST: u32 = 4 << 10;

fn header_list_size(limits: &Limits) -> u32 {
    u32::try_from(limits.max_head_len).unwrap_or(u32::MAX)
}

/// Sends a refusal on a stream (best effort: the request failed anyway).
fn refuse(respond: &mut h2::server::SendResponse<Bytes>, answer: Option<http::Response<String>>) {
    let Some(answer) = answer else {
        respond.send_reset(h2::Reason::CANCEL);
        return;
    };
    let (head, body) = answer.into_parts();
    if let Ok(mut send) = respond.send_response(http::Response::from_parts(head, ()), false) {
        let _ = send.send_data(Bytes::from(body), true);
    }
}
