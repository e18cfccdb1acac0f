//! Sans-IO drivers for the opening handshake, shared by every adapter.
//!
//! Owns the buffering between "bytes arrived" and "the HTTP head is
//! complete", and the hand-over of the bytes after the head (the peer's first
//! frames) to the [`Connection`]. Adapters only move bytes:
//! write [`ClientUpgrade::request`], feed what they read to `receive` until it
//! returns the result (a server writes [`ServerUpgrade::accept`]'s answer,
//! or on failure ends as [`ServerUpgrade::fail`] says: its refusal, then a
//! bounded linger for the client's end, [`Refusing`]), then turn the
//! upgrade into the connection with `into_connection`, which installs the
//! negotiated extension and receives the bytes that followed the head.
//! While the handshake runs, `state()` is [`State::Connecting`].
//!
//! Over HTTP/2 and HTTP/3 the same negotiation runs in
//! [`ClientConnect`] and [`ServerConnect`] (extended CONNECT, RFC 8441 and
//! RFC 9220), whose request and answers are `http` crate values.
//!
//! Extensions: built with a [`Config`] ([`ClientUpgrade::with_config`],
//! [`ServerUpgrade::with_config`]), the drivers negotiate what the config
//! switches on (permessage-deflate, RFC 7692, with `Config::deflate`): a
//! client offers it and checks the answer against its offer, a server
//! answers the first offer it can honour. An extension the application
//! offered or accepted by itself is not run: a client refuses a server
//! that accepts one ([`HandshakeError::UnsupportedExtension`]).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use bytes::BufMut;
use bytes::buf::Limit;

#[cfg(feature = "rand")]
use tether_handshake::ClientConfig;
use tether_handshake::{
    AcceptOptions, Accepted, BuildError, ClientHandshake, Limits, Request, RequestError,
    ResponseError, Status,
};

use tether_handshake::Extension as ExtensionHeader;

#[cfg(feature = "rand")]
use crate::Connection;
use crate::{Config, Extension, Role, State};

mod connect;
pub use connect::{ClientConnect, ServerConnect, Vacancy, VacancyStep};

/// Why an opening handshake did not complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The client's request could not be built (bad URL, header, ...).
    Build(BuildError),
    /// The server's answer was not an acceptable 101 (status, accept key,
    /// subprotocol...); the message names the likely cause.
    Response(ResponseError),
    /// The client's request was not an acceptable upgrade; the refusal to
    /// send is [`RequestError::response`].
    Request(RequestError),
    /// The transport ended before the head was complete.
    Eof {
        /// Which side we are.
        client: bool,
        /// Bytes received before the end.
        received: usize,
        /// A client's connection was already TLS (`wss://`): a plain server
        /// is not the likely cause then.
        secure: bool,
    },
    /// The handshake took longer than allowed.
    Timeout(core::time::Duration),
    /// The server accepted an extension this connection does not run (one
    /// we did not offer through `Config`): its frames would carry RSV bits
    /// we must reject.
    UnsupportedExtension(String),
    /// The server's permessage-deflate answer does not fit our offer (RFC
    /// 7692 section 7.1: the client fails the connection); names the cause.
    #[cfg(feature = "deflate")]
    Deflate(crate::deflate::NegotiationError),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Build(e) => write!(f, "cannot build the handshake request: {e}"),
            // the server said no; anything else is an answer we cannot use
            Self::Response(
                e @ (ResponseError::UnexpectedStatus { .. } | ResponseError::ConnectStatus { .. }),
            ) => write!(f, "WebSocket handshake refused: {e}"),
            Self::Response(e) => write!(f, "WebSocket handshake failed: {e}"),
            Self::Request(e) => write!(f, "bad WebSocket upgrade request: {e}"),
            Self::Eof {
                client: true,
                received: 0,
                secure: false,
            } => f.write_str(
                "the server closed the connection without answering the WebSocket handshake \
                 (is this a WebSocket endpoint? a TLS server expects wss://)",
            ),
            Self::Eof {
                client: true,
                received: 0,
                secure: true,
            } => f.write_str(
                "the server closed the connection without answering the WebSocket handshake \
                 (is this a WebSocket endpoint?)",
            ),
            Self::Eof {
                client: true,
                received,
                ..
            } => write!(
                f,
                "the server closed the connection after {received} bytes, before the end of its handshake answer"
            ),
            Self::Eof {
                client: false,
                received,
                ..
            } => write!(
                f,
                "the client closed the connection after {received} bytes, before the end of its upgrade request"
            ),
            Self::Timeout(d) => write!(f, "the WebSocket handshake did not complete within {d:?}"),
            Self::UnsupportedExtension(name) => write!(
                f,
                "the server accepted the extension {name:?}, which this connection does not run: \
                 offer extensions through tether::Config (e.g. Config::deflate), not by hand"
            ),
            #[cfg(feature = "deflate")]
            Self::Deflate(e) => write!(f, "WebSocket handshake failed: {e}"),
        }
    }
}

impl HandshakeError {
    /// The HTTP status the server answered instead of 101, when that is
    /// why the handshake failed (for [`crate::reconnect::Reconnector::refused`]).
    pub fn refused_status(&self) -> Option<u16> {
        match self {
            Self::Response(
                ResponseError::UnexpectedStatus { status, .. }
                | ResponseError::ConnectStatus { status, .. },
            ) => Some(*status),
            _ => None,
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Build(e) => Some(e),
            Self::Response(e) => Some(e),
            Self::Request(e) => Some(e),
            #[cfg(feature = "deflate")]
            Self::Deflate(e) => Some(e),
            _ => None,
        }
    }
}

/// The spare capacity an upgrade's buffer starts with for its first read
/// ([`ServerUpgrade::receive_buffer`], [`ClientUpgrade::receive_buffer`]),
/// and the least it grows by when nearly full: a browser's request (about
/// 550 bytes) or a server's 101 in one read, and no more memory per
/// handshake in flight than its head needs. A longer head grows the buffer
/// as a `Vec` grows (doubling), so its capacity stays within
/// 2 x (`Limits::max_head_len` + 65) bytes (it grows only with under 64
/// bytes spare, and reads stop one byte past the limit).
pub const HEAD_READ: usize = 1024;

/// Spare capacity under which the buffer grows before the next read.
const HEAD_READ_MIN: usize = 64;

/// Spare room in `buf` for the next read of a head at most `max_head_len`
/// long: the spare capacity it has, grown by at least [`HEAD_READ`] when
/// under [`HEAD_READ_MIN`], and never past one byte beyond the limit
/// (where the parser reports the head too large); at least one byte, so a
/// read into it never looks like the end of the input.
fn head_room(buf: &mut Vec<u8>, max_head_len: usize) -> Limit<&mut Vec<u8>> {
    let room = max_head_len
        .saturating_add(1)
        .saturating_sub(buf.len())
        .max(1);
    // grow only when nearly full: capacity doubles as a long head arrives,
    // rather than a read's worth past every read
    if buf.capacity() - buf.len() < HEAD_READ_MIN {
        buf.reserve(room.min(HEAD_READ));
    }
    buf.limit(room)
}

/// The client side: the request to write, then the answer to check.
pub struct ClientUpgrade {
    handshake: ClientHandshake,
    buf: Vec<u8>,
    deflate: Option<Deflate>,
    extension: Option<Box<dyn Extension>>,
}

impl fmt::Debug for ClientUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientUpgrade")
            .field("handshake", &self.handshake)
            .field("buffered", &self.buf.len())
            .field("extension", &self.extension.as_ref().map(|e| e.name()))
            .finish_non_exhaustive()
    }
}

impl ClientUpgrade {
    /// Starts from a built request. Offers nothing of its own: an
    /// extension the server accepts is refused. See
    /// [`ClientUpgrade::with_config`].
    pub fn new(handshake: ClientHandshake) -> Self {
        Self {
            handshake,
            buf: Vec::new(),
            deflate: None,
            extension: None,
        }
    }

    /// Builds the request for `url` from `request` (subprotocols, headers,
    /// ...) plus the extension offers `config` switches on
    /// (permessage-deflate with `Config::deflate`), whose answers
    /// [`ClientUpgrade::receive`] then checks.
    ///
    /// # Errors
    /// [`HandshakeError::Build`] for a bad URL or header.
    #[cfg(feature = "rand")]
    pub fn with_config(
        url: &str,
        request: ClientConfig,
        config: &Config,
    ) -> Result<Self, HandshakeError> {
        let deflate = deflate_of(config);
        let request = match extension_offer(deflate.as_ref()) {
            Some(offer) => request.extension(offer),
            None => request,
        };
        let handshake = ClientHandshake::new(url, request).map_err(HandshakeError::Build)?;
        Ok(Self {
            deflate,
            ..Self::new(handshake)
        })
    }

    /// The extension the server accepted, once [`ClientUpgrade::receive`]
    /// returned the answer: install it with
    /// [`Connection::set_extension`]
    /// before the connection receives any frame. `None` when none was
    /// negotiated (or it was already taken).
    pub fn take_extension(&mut self) -> Option<Box<dyn Extension>> {
        self.extension.take()
    }

    /// The request bytes to write.
    pub fn request(&self) -> &[u8] {
        self.handshake.request_bytes()
    }

    /// The handshake (URL, key).
    pub fn handshake(&self) -> &ClientHandshake {
        &self.handshake
    }

    /// Feeds bytes read from the transport. Returns the accepted answer and
    /// the bytes that followed the head (frames for the connection) once the
    /// head is complete; `Ok(None)` while more is needed.
    ///
    /// # Errors
    /// [`HandshakeError::Response`] as soon as the answer cannot be a valid 101.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<(Accepted, Vec<u8>)>, HandshakeError> {
        self.buf.extend_from_slice(data);
        self.received()
    }

    /// Room to read the answer's next bytes into, straight into this
    /// upgrade's own buffer (no read buffer of the caller's, no copy): its
    /// spare capacity ([`HEAD_READ`] for the first read; the buffer grows
    /// when nearly full), limited to one byte past the longest head
    /// allowed, so a read never takes more than the check needs to fail.
    /// After reading into it, call [`ClientUpgrade::received`].
    pub fn receive_buffer(&mut self) -> Limit<&mut Vec<u8>> {
        head_room(&mut self.buf, self.handshake.head_limits().max_head_len)
    }

    /// Checks what was read through [`ClientUpgrade::receive_buffer`], as
    /// [`ClientUpgrade::receive`] does.
    ///
    /// # Errors
    /// As [`ClientUpgrade::receive`].
    pub fn received(&mut self) -> Result<Option<(Accepted, Vec<u8>)>, HandshakeError> {
        match self
            .handshake
            .check_response(&self.buf)
            .map_err(HandshakeError::Response)?
        {
            Status::Complete(accepted, used) => {
                self.extension = client_extension(self.deflate.as_ref(), accepted.extensions())?;
                Ok(Some((accepted, self.buf.split_off(used))))
            }
            Status::Partial => Ok(None),
        }
    }

    /// The transport ended before the answer was complete.
    pub fn eof(&self) -> HandshakeError {
        HandshakeError::Eof {
            client: true,
            received: self.buf.len(),
            secure: self.handshake.url().is_secure(),
        }
    }

    /// `Connecting`: the handshake runs.
    pub fn state(&self) -> State {
        State::Connecting
    }

    /// The connection, once [`ClientUpgrade::receive`] returned the
    /// accepted answer: `Open` under `config` at `now`, with the negotiated
    /// extension installed and `leftover` (the bytes after the answer's
    /// head) received. A protocol error in `leftover` is the connection's
    /// first failure, reported by its events.
    #[cfg(feature = "rand")]
    pub fn into_connection(
        mut self,
        config: impl Into<Arc<Config>>,
        now: std::time::Instant,
        leftover: &[u8],
    ) -> Connection {
        let extension = self.take_extension();
        connection(Role::Client, config, extension, now, leftover)
    }
}

/// The extension settings a negotiation runs: permessage-deflate's, or
/// nothing without the `deflate` feature.
#[cfg(feature = "deflate")]
type Deflate = crate::DeflateConfig;
/// The extension settings a negotiation runs: nothing without the
/// `deflate` feature.
#[cfg(not(feature = "deflate"))]
#[derive(Clone, Copy, Debug)]
enum Deflate {}

/// What `config` switches on for the negotiation.
fn deflate_of(config: &Config) -> Option<Deflate> {
    #[cfg(feature = "deflate")]
    return config.deflate;
    #[cfg(not(feature = "deflate"))]
    {
        let _ = config;
        None
    }
}

/// The client's offer for `deflate`.
fn extension_offer(deflate: Option<&Deflate>) -> Option<ExtensionHeader> {
    #[cfg(feature = "deflate")]
    return deflate.map(crate::deflate::client_offer);
    #[cfg(not(feature = "deflate"))]
    deflate.map(|never| match *never {})
}

/// A client's check of the extensions the server accepted against what it
/// offered (`deflate`), and the extension to run. Without an offer, any
/// accepted extension is refused.
#[cfg(feature = "deflate")]
fn client_extension(
    deflate: Option<&Deflate>,
    accepted: &[ExtensionHeader],
) -> Result<Option<Box<dyn Extension>>, HandshakeError> {
    let mut chosen: Option<Box<dyn Extension>> = None;
    for ext in accepted {
        let (Some(config), crate::deflate::NAME) = (deflate, ext.name()) else {
            return Err(HandshakeError::UnsupportedExtension(ext.name().into()));
        };
        if chosen.is_some() {
            return Err(HandshakeError::Deflate(
                crate::deflate::NegotiationError::SeveralAnswers,
            ));
        }
        let params = crate::deflate::client_accept(config, ext).map_err(HandshakeError::Deflate)?;
        chosen = Some(Box::new(crate::PerMessageDeflate::new(
            crate::Role::Client,
            &params,
            config,
        )));
    }
    Ok(chosen)
}

/// Without the `deflate` feature no extension runs: any the server
/// accepted is refused.
#[cfg(not(feature = "deflate"))]
fn client_extension(
    _deflate: Option<&Deflate>,
    accepted: &[ExtensionHeader],
) -> Result<Option<Box<dyn Extension>>, HandshakeError> {
    match accepted.first() {
        Some(ext) => Err(HandshakeError::UnsupportedExtension(ext.name().into())),
        None => Ok(None),
    }
}

/// A server's answer to a client's offers: the extension to run and the
/// entry for the answer's `Sec-WebSocket-Extensions` (the first offer of
/// what `deflate` switches on that can be honoured), or `None`.
fn server_extension(
    deflate: Option<&Deflate>,
    offers: &[ExtensionHeader],
) -> Option<(Box<dyn Extension>, ExtensionHeader)> {
    #[cfg(feature = "deflate")]
    {
        let config = deflate?;
        let (params, answer) = crate::deflate::server_accept(config, offers)?;
        let extension = crate::PerMessageDeflate::new(crate::Role::Server, &params, config);
        Some((Box::new(extension), answer))
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = (deflate, offers);
        None
    }
}

/// A server's `choice` with the answer to the request's extension offers
/// added (the first offer of what `deflate` switches on that can be
/// honoured), and the extension that answer runs.
fn answer_extensions(
    deflate: Option<&Deflate>,
    request: &Request,
    choice: AcceptOptions,
) -> Result<(AcceptOptions, Option<Box<dyn Extension>>), BuildError> {
    // the connection runs only what it negotiates itself: an extension the
    // application accepted would go out in the 101 and be refused on the
    // wire (its RSV bits), or answered twice
    if let Some(chosen) = choice.extensions().first() {
        return Err(BuildError::ExtensionNotRun {
            name: chosen.name().to_owned(),
        });
    }
    Ok(match server_extension(deflate, request.extensions()) {
        Some((extension, answer)) => (choice.extension(answer), Some(extension)),
        None => (choice, None),
    })
}

/// A connection whose opening handshake ran outside tether (hyper, axum,
/// another HTTP stack), with the extensions its `Config` switches on
/// negotiated here, by the rules [`ClientUpgrade`] and [`ServerUpgrade`]
/// follow.
///
/// A server reads the request's `Sec-WebSocket-Extensions` values, calls
/// [`Upgraded::answer_offers`] and puts the value it returns in its 101; a
/// client puts [`Upgraded::offer`] in its request and gives the 101's
/// values to [`Upgraded::check_answer`]. Then
/// [`Upgraded::into_connection`] starts the connection with the extension
/// installed (adapters: `from_upgraded`).
///
/// ```
/// # #[cfg(all(feature = "deflate", feature = "rand"))] {
/// use tether::upgrade::Upgraded;
/// use tether::{Config, DeflateConfig, Role};
///
/// let config = Config { deflate: Some(DeflateConfig::default()), ..Config::default() };
/// let mut upgraded = Upgraded::new(Role::Server, config);
/// // the request's Sec-WebSocket-Extensions values, from hyper's HeaderMap
/// let offers = [b"permessage-deflate; client_max_window_bits".as_slice()];
/// let answer = upgraded.answer_offers(offers).unwrap();
/// assert_eq!(answer.as_deref(), Some("permessage-deflate"));
/// // ... write the 101 with `Sec-WebSocket-Extensions: permessage-deflate`
/// let conn = upgraded.into_connection(std::time::Instant::now(), &[]);
/// assert!(conn.can_send());
/// # }
/// ```
pub struct Upgraded {
    role: Role,
    config: Arc<Config>,
    extension: Option<Box<dyn Extension>>,
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("role", &self.role)
            .field("extension", &self.extension.as_ref().map(|e| e.name()))
            .finish_non_exhaustive()
    }
}

impl Upgraded {
    /// A connection in `role` under `config` (a [`Config`], or an
    /// `Arc<Config>` shared with other connections), with no extension yet.
    pub fn new(role: Role, config: impl Into<Arc<Config>>) -> Self {
        Self {
            role,
            config: config.into(),
            extension: None,
        }
    }

    /// Client: the value of the request's `Sec-WebSocket-Extensions` that
    /// offers what the config switches on; `None`: send no such header.
    pub fn offer(&self) -> Option<String> {
        extension_offer(deflate_of(&self.config).as_ref()).map(|o| o.to_string())
    }

    /// Server: answers the client's offers (the request's
    /// `Sec-WebSocket-Extensions` values, in order) with what the config
    /// switches on, the first offer that can be honoured. Returns the value
    /// of the 101's `Sec-WebSocket-Extensions`; `None`: send no such header
    /// (nothing accepted).
    ///
    /// # Errors
    /// [`HandshakeError::Request`] for a malformed header (refuse with its
    /// [`RequestError::response`], a 400).
    pub fn answer_offers<'a>(
        &mut self,
        offers: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Option<String>, HandshakeError> {
        let offers = tether_handshake::parse_offers(offers).map_err(HandshakeError::Request)?;
        self.extension = None;
        Ok(
            server_extension(deflate_of(&self.config).as_ref(), &offers).map(
                |(extension, answer)| {
                    self.extension = Some(extension);
                    answer.to_string()
                },
            ),
        )
    }

    /// Client: checks the 101's `Sec-WebSocket-Extensions` values against
    /// what [`Upgraded::offer`] offered, and keeps the extension to run.
    ///
    /// # Errors
    /// [`HandshakeError::Response`] for a malformed header,
    /// [`HandshakeError::UnsupportedExtension`] for one we did not offer, or
    /// a permessage-deflate answer that does not fit the offer: fail the
    /// connection (RFC 6455 section 9.1, RFC 7692 section 7.1).
    pub fn check_answer<'a>(
        &mut self,
        answer: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), HandshakeError> {
        let accepted = tether_handshake::parse_answers(answer).map_err(HandshakeError::Response)?;
        self.extension = client_extension(deflate_of(&self.config).as_ref(), &accepted)?;
        Ok(())
    }

    /// The connection's config, e.g. for an adapter to run it its way.
    /// (A shared config is copied first: the others keep theirs.)
    pub fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The name of the negotiated extension, if any.
    pub fn extension_name(&self) -> Option<&str> {
        self.extension.as_ref().map(|e| e.name())
    }

    /// The connection: `Open` at `now`, with the negotiated extension
    /// installed and `leftover` (bytes read after the handshake's head)
    /// received.
    #[cfg(feature = "rand")]
    pub fn into_connection(self, now: std::time::Instant, leftover: &[u8]) -> Connection {
        connection(self.role, self.config, self.extension, now, leftover)
    }
}

/// A connection after its handshake: the extension installed before any
/// frame, then the leftover received.
#[cfg(feature = "rand")]
fn connection(
    role: Role,
    config: impl Into<Arc<Config>>,
    extension: Option<Box<dyn Extension>>,
    now: std::time::Instant,
    leftover: &[u8],
) -> Connection {
    let mut conn = Connection::new(role, config, now);
    if let Some(extension) = extension {
        conn.set_extension(extension);
    }
    // a violation in the first bytes is the connection's first failure: its
    // Close is queued and its events say why
    let _ = conn.receive(now, leftover);
    // a compressed message among them is decoded whole here (a few KiB of
    // handshake leftovers), so no adapter has to look for one it did not read
    while conn.decoding_pending() {
        conn.new_turn();
        let _ = conn.continue_decoding(now);
    }
    conn
}

/// How a server ends an opening handshake that failed or that its
/// application refused, one rule for every adapter, as a failed
/// connection ends: write [`Refusing::response`] (if any) and shut down
/// writing before [`Refusing::send_deadline`] (`Config::close_timeout`
/// after the failure, the time a connection's last bytes get); then read
/// on and drop what the client still sends until its end or
/// [`Refusing::read_deadline`] (`Config::fin_wait` after our end),
/// whichever comes first; only then close the transport. Reading drops
/// what it reads: no buffer grows.
///
/// Closing with the client's bytes unread (a request still trickling in,
/// or frames sent right behind it) makes TCP answer with a reset, and a
/// client still writing meets it before it reads the answer that names
/// the cause (a 400, 403, 408 or 503). A client that reads the answer
/// and closes ends the linger at once; one that does not (a slowloris)
/// holds the transport `fin_wait` more and no longer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusing {
    response: Option<Vec<u8>>,
    send_deadline: std::time::Instant,
    /// `None`: the client already ended the transport.
    fin_wait: Option<core::time::Duration>,
}

impl Refusing {
    /// The answer to write first: the refusal, or nothing when the
    /// transport already ended (nobody would read it).
    pub fn response(&self) -> Option<&[u8]> {
        self.response.as_deref()
    }

    /// Until when writing the answer and ending our writing (TLS
    /// `close_notify`, TCP FIN) may take; past it, close the transport.
    pub fn send_deadline(&self) -> std::time::Instant {
        self.send_deadline
    }

    /// Until when to read on and drop what comes, for the client's end,
    /// once our writing ended at `now`; `None`: close the transport now
    /// (the client already ended it).
    pub fn read_deadline(&self, now: std::time::Instant) -> Option<std::time::Instant> {
        self.fin_wait.map(|wait| crate::deadline(now, wait))
    }
}

/// The server side: parse the request, then answer.
pub struct ServerUpgrade {
    limits: Limits,
    buf: Vec<u8>,
    deflate: Option<Deflate>,
    extension: Option<Box<dyn Extension>>,
    /// How long a refused handshake's answer may take
    /// (`Config::close_timeout`), and how long it lingers after it
    /// (`Config::fin_wait`).
    close_timeout: core::time::Duration,
    fin_wait: core::time::Duration,
}

impl fmt::Debug for ServerUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerUpgrade")
            .field("limits", &self.limits)
            .field("buffered", &self.buf.len())
            .field("extension", &self.extension.as_ref().map(|e| e.name()))
            .finish_non_exhaustive()
    }
}

impl ServerUpgrade {
    /// Starts with the head limits (size, header count); accepts no
    /// extension of its own. See [`ServerUpgrade::with_config`].
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buf: Vec::new(),
            deflate: None,
            extension: None,
            close_timeout: Config::default().close_timeout,
            fin_wait: Config::default().fin_wait,
        }
    }

    /// Starts with the head limits, and answers the extension offers that
    /// `config` switches on (permessage-deflate with `Config::deflate`) in
    /// [`ServerUpgrade::accept`].
    pub fn with_config(limits: Limits, config: &Config) -> Self {
        Self {
            deflate: deflate_of(config),
            close_timeout: config.close_timeout,
            fin_wait: config.fin_wait,
            ..Self::new(limits)
        }
    }

    /// Writes the 101 for `request` with the application's `choice`
    /// (subprotocol, headers) plus the answers to the extension offers this
    /// upgrade negotiates (the first permessage-deflate offer it can honour;
    /// the others are declined). Then [`ServerUpgrade::take_extension`]
    /// gives the extension to install.
    ///
    /// # Errors
    /// As [`Request::accept`], and [`BuildError::ExtensionNotRun`] when
    /// `choice` accepts an extension itself: the connection runs only
    /// those its `Config` switches on, negotiated here.
    pub fn accept(
        &mut self,
        request: &Request,
        choice: AcceptOptions,
    ) -> Result<Vec<u8>, BuildError> {
        let (choice, extension) = answer_extensions(self.deflate.as_ref(), request, choice)?;
        let head = request.accept(&choice)?;
        self.extension = extension;
        Ok(head)
    }

    /// The extension negotiated by [`ServerUpgrade::accept`]: install it
    /// with [`Connection::set_extension`]
    /// before the connection receives any frame.
    pub fn take_extension(&mut self) -> Option<Box<dyn Extension>> {
        self.extension.take()
    }

    /// Feeds bytes read from the transport. Returns the request and the
    /// bytes after its head once the head is complete.
    ///
    /// # Errors
    /// [`HandshakeError::Request`] as soon as the request cannot be a valid
    /// upgrade; write its `response()` before closing.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<(Request, Vec<u8>)>, HandshakeError> {
        self.buf.extend_from_slice(data);
        self.received()
    }

    /// Room to read the request's next bytes into, straight into this
    /// upgrade's own buffer (no read buffer of the caller's, no copy): its
    /// spare capacity ([`HEAD_READ`] for the first read; the buffer grows
    /// when nearly full), limited to one byte past `Limits::max_head_len`,
    /// so a read never takes more than the check needs to refuse the head
    /// (431), nor the frames a client sent right after its request beyond
    /// that (they stay in the transport for the connection). After reading
    /// into it, call [`ServerUpgrade::received`].
    pub fn receive_buffer(&mut self) -> Limit<&mut Vec<u8>> {
        head_room(&mut self.buf, self.limits.max_head_len)
    }

    /// Checks what was read through [`ServerUpgrade::receive_buffer`], as
    /// [`ServerUpgrade::receive`] does.
    ///
    /// # Errors
    /// As [`ServerUpgrade::receive`].
    pub fn received(&mut self) -> Result<Option<(Request, Vec<u8>)>, HandshakeError> {
        match tether_handshake::parse_request(&self.buf, &self.limits)
            .map_err(HandshakeError::Request)?
        {
            Status::Complete(request, used) => Ok(Some((request, self.buf.split_off(used)))),
            Status::Partial => Ok(None),
        }
    }

    /// The transport ended before the request was complete.
    pub fn eof(&self) -> HandshakeError {
        HandshakeError::Eof {
            client: false,
            received: self.buf.len(),
            secure: false,
        }
    }

    /// `Connecting`: the handshake runs.
    pub fn state(&self) -> State {
        State::Connecting
    }

    /// What a server writes before closing the transport when its
    /// handshake failed with `err`, one rule for every adapter: a bad
    /// request gets its refusal (400, 405, 426 naming version 13, 431),
    /// a TLS ClientHello included (a TLS client that reads an HTTP answer
    /// where a TLS record belongs can name the cause: `wss://` aimed at a
    /// plain `ws://` server); an answer that could not be built gets 500;
    /// a timeout 408 (RFC 9110 section 15.5.9, with `Connection: close`);
    /// the transport's end nothing. [`ServerUpgrade::fail`] says the rest
    /// of the ending.
    pub fn failure_response(err: &HandshakeError) -> Option<Vec<u8>> {
        let refusal = match err {
            HandshakeError::Request(e) => return Some(e.response()),
            HandshakeError::Build(_) => {
                tether_handshake::Refusal::new(500, "the server could not write its answer")
            }
            HandshakeError::Timeout(d) => tether_handshake::Refusal::new(
                408,
                alloc::format!("the upgrade request did not arrive within {d:?}"),
            ),
            _ => return None,
        };
        refusal.ok().map(|r| r.to_bytes())
    }

    /// How to end this handshake, failed with `err` at `now`: its
    /// [`ServerUpgrade::failure_response`] within `Config::close_timeout`,
    /// then a linger of at most `Config::fin_wait` (see [`Refusing`]). The
    /// client's end ([`HandshakeError::Eof`]) gets no answer and no
    /// linger. A transport that failed (an I/O error, not a
    /// `HandshakeError`) is just closed.
    pub fn fail(&self, err: &HandshakeError, now: std::time::Instant) -> Refusing {
        let ended = matches!(err, HandshakeError::Eof { .. });
        Refusing {
            response: if ended {
                None
            } else {
                Self::failure_response(err)
            },
            send_deadline: crate::deadline(now, self.close_timeout),
            fin_wait: (!ended).then_some(self.fin_wait),
        }
    }

    /// How to end this handshake when the application refused it with
    /// `refusal` at `now`: the refusal, then the linger (see [`Refusing`]).
    pub fn refuse(&self, refusal: &tether_handshake::Refusal, now: std::time::Instant) -> Refusing {
        Refusing {
            response: Some(refusal.to_bytes()),
            send_deadline: crate::deadline(now, self.close_timeout),
            fin_wait: Some(self.fin_wait),
        }
    }

    /// The connection, once [`ServerUpgrade::accept`]'s answer is written:
    /// `Open` under `config` at `now`, with the negotiated extension
    /// installed and `leftover` (the bytes after the request's head)
    /// received.
    #[cfg(feature = "rand")]
    pub fn into_connection(
        mut self,
        config: impl Into<Arc<Config>>,
        now: std::time::Instant,
        leftover: &[u8],
    ) -> Connection {
        let extension = self.take_extension();
        connection(Role::Server, config, extension, now, leftover)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_handshake::{AcceptOptions, ClientConfig};

    /// A client's upgrade (fixed key), a server's with default limits, and
    /// what the client writes: its request, then a masked empty Text frame
    /// sent right behind it.
    fn pair_and_wire() -> (ClientUpgrade, ServerUpgrade, Vec<u8>) {
        let hs = ClientHandshake::with_key("ws://h/x", ClientConfig::new(), [7; 16]).unwrap();
        let client = ClientUpgrade::new(hs);
        let mut wire = client.request().to_vec();
        wire.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        (client, ServerUpgrade::new(Limits::default()), wire)
    }

    #[test]
    fn rfc6455_4_frames_after_the_head_are_handed_on() {
        let (mut client, mut server, req) = pair_and_wire();
        assert!(server.receive(&req[..10]).unwrap().is_none());
        let (request, rest) = server.receive(&req[10..]).unwrap().unwrap();
        assert_eq!(rest, [0x81, 0x80, 1, 2, 3, 4]);
        let head = request.accept(&AcceptOptions::new()).unwrap();
        for b in &head[..head.len() - 1] {
            assert!(client.receive(&[*b]).unwrap().is_none());
        }
        let (_, rest) = client.receive(&[b'\n', 0x81, 0x00]).unwrap().unwrap();
        assert_eq!(rest, [0x81, 0x00]);
    }

    /// Reads `bytes` into `room` `chunk` bytes at a time, as a transport's
    /// read into spare capacity would; how many it took.
    fn read_into(room: &mut Limit<&mut Vec<u8>>, bytes: &[u8], chunk: usize) -> usize {
        let n = bytes.len().min(chunk).min(room.remaining_mut());
        room.put_slice(&bytes[..n]);
        n
    }

    #[test]
    fn rfc6455_4_2_1_a_request_read_into_the_upgrade_s_own_buffer() {
        let (mut client, mut server, wire) = pair_and_wire();
        // a few bytes at a time, as a slow transport gives them
        let mut at = 0;
        let (request, rest) = loop {
            let mut room = server.receive_buffer();
            assert!(room.remaining_mut() >= 1);
            at += read_into(&mut room, &wire[at..], 7);
            if let Some(done) = server.received().unwrap() {
                break done;
            }
        };
        assert_eq!(at, wire.len(), "the frames came in the last read");
        assert_eq!(rest, [0x81, 0x80, 1, 2, 3, 4]);
        // no more memory for a head in flight than one read's room
        assert!(
            server.buf.capacity() <= HEAD_READ,
            "{}",
            server.buf.capacity()
        );
        let head = request.accept(&AcceptOptions::new()).unwrap();
        let mut answer = head.clone();
        answer.extend_from_slice(&[0x81, 0x00]);
        let mut room = client.receive_buffer();
        assert_eq!(read_into(&mut room, &answer, usize::MAX), answer.len());
        let (_, rest) = client.received().unwrap().unwrap();
        assert_eq!(rest, [0x81, 0x00]);
    }

    #[test]
    fn rfc6455_4_2_1_a_read_never_takes_past_the_head_limit() {
        // a head that never ends: reads stop one byte past the limit, where
        // the parser refuses it (431), however much the peer sends
        let limits = Limits::default().with_max_head_len(3000);
        let mut server = ServerUpgrade::new(limits);
        let endless = b"GET / HTTP/1.1\r\nX: "
            .iter()
            .copied()
            .chain(std::iter::repeat(b'a'));
        let endless: Vec<u8> = endless.take(10_000).collect();
        let mut at = 0;
        let err = loop {
            let mut room = server.receive_buffer();
            assert!(room.remaining_mut() >= 1, "a read never looks like the end");
            at += read_into(&mut room, &endless[at..], usize::MAX);
            match server.received() {
                Ok(None) => assert!(at <= 3001),
                Ok(Some(_)) => panic!("an endless head accepted"),
                Err(e) => break e,
            }
        };
        assert_eq!(at, 3001, "read exactly one byte past the limit");
        // the bound HEAD_READ states: 2 x (limit + 1 + HEAD_READ_MIN) bytes
        let bound = 2 * (3000 + 1 + HEAD_READ_MIN);
        assert!(
            server.buf.capacity() <= bound,
            "{} > {bound}",
            server.buf.capacity()
        );
        let response = ServerUpgrade::failure_response(&err).unwrap();
        assert!(response.starts_with(b"HTTP/1.1 431"), "{err}");
    }

    /// RFC 6455 section 4.2.1 with RFC 9110 section 15.5.9: a server that
    /// gives up waiting for the request answers 408 and says it closes;
    /// every refused handshake's answer gets `Config::close_timeout`, as a
    /// connection's last bytes do, then it lingers for the client's end
    /// for at most `Config::fin_wait` after ours; a client that already
    /// ended gets nothing. A zero `fin_wait` still sends the answer.
    #[test]
    fn rfc6455_4_2_1_a_refused_handshake_answers_then_lingers_for_fin_wait() {
        use core::time::Duration;
        let now = std::time::Instant::now();
        let later = now + Duration::from_millis(40);
        let config = Config {
            close_timeout: Duration::from_secs(4),
            fin_wait: Duration::from_millis(1500),
            ..Config::default()
        };
        let server = ServerUpgrade::with_config(Limits::default(), &config);
        let send_until = now + Duration::from_secs(4);
        let read_until = Some(later + Duration::from_millis(1500));

        let timeout = HandshakeError::Timeout(Duration::from_secs(3));
        let ending = server.fail(&timeout, now);
        let text = String::from_utf8(ending.response().unwrap().to_vec()).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(text.ends_with("did not arrive within 3s\n"), "{text}");
        assert_eq!(ending.send_deadline(), send_until);
        assert_eq!(ending.read_deadline(later), read_until);

        let mut bad = ServerUpgrade::new(Limits::default());
        let err = bad
            .receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap_err();
        let ending = server.fail(&err, now);
        assert!(
            ending.response().unwrap().starts_with(b"HTTP/1.1 4"),
            "{err}"
        );
        assert_eq!(ending.send_deadline(), send_until);
        assert_eq!(ending.read_deadline(later), read_until);

        let refusal = tether_handshake::Refusal::service_unavailable("full");
        let ending = server.refuse(&refusal, now);
        assert_eq!(ending.response(), Some(&refusal.to_bytes()[..]));
        assert_eq!(ending.send_deadline(), send_until);
        assert_eq!(ending.read_deadline(later), read_until);

        let ending = server.fail(&server.eof(), now);
        assert_eq!(ending.response(), None);
        assert_eq!(ending.read_deadline(later), None);

        // without a linger, the answer still goes out
        let no_wait = Config {
            fin_wait: Duration::ZERO,
            ..config
        };
        let ending = ServerUpgrade::with_config(Limits::default(), &no_wait).fail(&timeout, now);
        assert!(ending.response().is_some());
        assert_eq!(ending.send_deadline(), send_until);

        // without a config, the default's
        let plain = ServerUpgrade::new(Limits::default()).fail(&timeout, now);
        let default = Config::default();
        assert_eq!(plain.send_deadline(), now + default.close_timeout);
        assert_eq!(plain.read_deadline(later), Some(later + default.fin_wait));
    }

    #[test]
    fn rfc6455_9_1_an_accepted_extension_we_cannot_run_is_refused() {
        use tether_handshake::Extension;
        let config = ClientConfig::new().extension(Extension::new("permessage-deflate"));
        let hs = ClientHandshake::with_key("ws://h/x", config, [7; 16]).unwrap();
        let mut client = ClientUpgrade::new(hs);
        let mut server = ServerUpgrade::new(Limits::default());
        let (request, _) = server.receive(client.request()).unwrap().unwrap();
        let answer = request
            .accept(&AcceptOptions::new().extension(Extension::new("permessage-deflate")))
            .unwrap();
        let err = client.receive(&answer).unwrap_err();
        assert!(
            matches!(err, HandshakeError::UnsupportedExtension(ref n) if n == "permessage-deflate")
        );
        assert!(err.to_string().contains("permessage-deflate"));
    }

    /// The server's mirror of the above: an extension the application
    /// accepts through `ServerUpgrade` would go out in the 101 while the
    /// connection, which runs only what its `Config` negotiates, refuses
    /// the frames that use it (a browser's compressed frames closed with
    /// 1002). Refused before any answer is written.
    #[test]
    fn rfc6455_9_1_a_server_refuses_to_accept_an_extension_it_cannot_run() {
        use tether_handshake::Extension;
        let config = ClientConfig::new().extension(Extension::new("permessage-deflate"));
        let hs = ClientHandshake::with_key("ws://h/x", config, [7; 16]).unwrap();
        let client = ClientUpgrade::new(hs);
        let mut server = ServerUpgrade::new(Limits::default());
        let (request, _) = server.receive(client.request()).unwrap().unwrap();
        let choice = AcceptOptions::new().extension(Extension::new("permessage-deflate"));
        let err = server.accept(&request, choice).unwrap_err();
        assert!(
            matches!(err, BuildError::ExtensionNotRun { ref name } if name == "permessage-deflate"),
            "{err}"
        );
        assert!(server.take_extension().is_none());
    }

    #[cfg(all(feature = "deflate", feature = "rand"))]
    fn deflate() -> Config {
        Config {
            deflate: Some(crate::DeflateConfig::default()),
            ..Config::default()
        }
    }

    #[cfg(all(feature = "deflate", feature = "rand"))]
    #[test]
    fn rfc7692_upgraded_elsewhere_negotiates_and_runs_deflate() {
        use crate::{Event, Message};
        let now = std::time::Instant::now();
        let client = Upgraded::new(Role::Client, deflate());
        let offer = client.offer().expect("an offer");
        let mut server = Upgraded::new(Role::Server, deflate());
        let answer = server
            .answer_offers([offer.as_bytes()])
            .unwrap()
            .expect("accepted");
        assert_eq!(server.extension_name(), Some("permessage-deflate"));
        let mut client = client;
        client.check_answer([answer.as_bytes()]).unwrap();
        let mut client = client.into_connection(now, &[]);
        let mut server = server.into_connection(now, &[]);
        let text = "abc".repeat(500);
        client.send(Message::text(text.clone())).unwrap();
        let wire = client.take_output();
        assert!(wire.len() < 100, "compressed: {} bytes", wire.len());
        assert_ne!(wire[0] & 0x40, 0, "RSV1 set");
        server.receive(now, &wire).unwrap();
        match server.poll_event() {
            Some(Event::Message(m)) => assert_eq!(m.as_text(), Some(text.as_str())),
            other => panic!("{other:?}"),
        }
    }

    #[cfg(feature = "rand")]
    #[test]
    fn rfc6455_9_1_upgraded_elsewhere_checks_what_it_is_given() {
        // a malformed offer is the client's fault: 400
        let mut server = Upgraded::new(Role::Server, Config::default());
        let err = server.answer_offers([b"permessage-deflate; =".as_slice()]);
        assert!(matches!(err, Err(HandshakeError::Request(_))), "{err:?}");
        // without deflate in the config, nothing is offered or accepted
        assert_eq!(Upgraded::new(Role::Client, Config::default()).offer(), None);
        assert_eq!(
            server
                .answer_offers([b"permessage-deflate".as_slice()])
                .unwrap(),
            None
        );
        // an accepted extension we did not offer fails the client
        let mut client = Upgraded::new(Role::Client, Config::default());
        let err = client.check_answer([b"permessage-deflate".as_slice()]);
        assert!(
            matches!(err, Err(HandshakeError::UnsupportedExtension(ref n)) if n == "permessage-deflate"),
            "{err:?}"
        );
    }

    #[test]
    fn eof_before_answer_names_the_likely_cause() {
        let hs = ClientHandshake::with_key("ws://h/x", ClientConfig::new(), [7; 16]).unwrap();
        let client = ClientUpgrade::new(hs);
        assert!(client.eof().to_string().contains("wss://"));
        // already wss://: the hint would mislead
        let hs = ClientHandshake::with_key("wss://h/x", ClientConfig::new(), [7; 16]).unwrap();
        let client = ClientUpgrade::new(hs);
        let said = client.eof().to_string();
        assert!(!said.contains("wss://"), "{said}");
        assert!(said.contains("without answering"), "{said}");
    }
}
