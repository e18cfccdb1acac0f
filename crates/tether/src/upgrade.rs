//! Sans-IO drivers for the opening handshake, shared by every adapter.
//!
//! Owns the buffering between "bytes arrived" and "the HTTP head is
//! complete", and the hand-over of the bytes after the head (the peer's first
//! frames) to the [`Connection`]. Adapters only move bytes:
//! write [`ClientUpgrade::request`], feed what they read to `receive` until it
//! returns the result (a server writes [`ServerUpgrade::accept`]'s answer,
//! or on failure [`ServerUpgrade::failure_response`]), then turn the
//! upgrade into the connection with `into_connection`, which installs the
//! negotiated extension and receives the bytes that followed the head.
//! While the handshake runs, `state()` is [`State::Connecting`].
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
use alloc::vec::Vec;
use core::fmt;

#[cfg(feature = "rand")]
use tether_handshake::ClientConfig;
use tether_handshake::{
    AcceptOptions, Accepted, BuildError, ClientHandshake, Limits, Request, RequestError,
    ResponseError, Status,
};

use crate::{Config, Extension, State};
#[cfg(feature = "rand")]
use crate::{Connection, Role};

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
            Self::Response(e) => write!(f, "WebSocket handshake refused: {e}"),
            Self::Request(e) => write!(f, "bad WebSocket upgrade request: {e}"),
            Self::Eof {
                client: true,
                received: 0,
            } => f.write_str(
                "the server closed the connection without answering the WebSocket handshake \
                 (is this a WebSocket endpoint? a TLS server expects wss://)",
            ),
            Self::Eof {
                client: true,
                received,
            } => write!(
                f,
                "the server closed the connection after {received} bytes, before the end of its handshake answer"
            ),
            Self::Eof {
                client: false,
                received,
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
            Self::Deflate(e) => write!(f, "WebSocket handshake refused: {e}"),
        }
    }
}

impl HandshakeError {
    /// The HTTP status the server answered instead of 101, when that is
    /// why the handshake failed (for [`crate::reconnect::Reconnector::refused`]).
    pub fn refused_status(&self) -> Option<u16> {
        match self {
            Self::Response(ResponseError::UnexpectedStatus { status, .. }) => Some(*status),
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

/// The client side: the request to write, then the answer to check.
pub struct ClientUpgrade {
    handshake: ClientHandshake,
    buf: Vec<u8>,
    #[cfg(feature = "deflate")]
    deflate: Option<crate::DeflateConfig>,
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
            #[cfg(feature = "deflate")]
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
        #[cfg(feature = "deflate")]
        let request = match &config.deflate {
            Some(d) => request.extension(crate::deflate::client_offer(d)),
            None => request,
        };
        #[cfg(not(feature = "deflate"))]
        let _ = config;
        let handshake = ClientHandshake::new(url, request).map_err(HandshakeError::Build)?;
        Ok(Self {
            #[cfg(feature = "deflate")]
            deflate: config.deflate,
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
        match self
            .handshake
            .check_response(&self.buf)
            .map_err(HandshakeError::Response)?
        {
            Status::Complete(accepted, used) => {
                self.extension = self.negotiate(&accepted)?;
                Ok(Some((accepted, self.buf.split_off(used))))
            }
            Status::Partial => Ok(None),
        }
    }

    /// Checks the accepted extensions against our offers and builds the
    /// one to run.
    #[cfg(feature = "deflate")]
    fn negotiate(&self, accepted: &Accepted) -> Result<Option<Box<dyn Extension>>, HandshakeError> {
        let mut chosen: Option<Box<dyn Extension>> = None;
        for ext in accepted.extensions() {
            let (Some(config), crate::deflate::NAME) = (&self.deflate, ext.name()) else {
                return Err(HandshakeError::UnsupportedExtension(ext.name().into()));
            };
            if chosen.is_some() {
                return Err(HandshakeError::Deflate(
                    crate::deflate::NegotiationError::SeveralAnswers,
                ));
            }
            let params =
                crate::deflate::client_accept(config, ext).map_err(HandshakeError::Deflate)?;
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
    fn negotiate(&self, accepted: &Accepted) -> Result<Option<Box<dyn Extension>>, HandshakeError> {
        match accepted.extensions().first() {
            Some(ext) => Err(HandshakeError::UnsupportedExtension(ext.name().into())),
            None => Ok(None),
        }
    }

    /// The transport ended before the answer was complete.
    pub fn eof(&self) -> HandshakeError {
        HandshakeError::Eof {
            client: true,
            received: self.buf.len(),
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
        config: Config,
        now: std::time::Instant,
        leftover: &[u8],
    ) -> Connection {
        let extension = self.take_extension();
        connection(Role::Client, config, extension, now, leftover)
    }
}

/// A connection after its handshake: the extension installed before any
/// frame, then the leftover received.
#[cfg(feature = "rand")]
fn connection(
    role: Role,
    config: Config,
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
    conn
}

/// The server side: parse the request, then answer.
pub struct ServerUpgrade {
    limits: Limits,
    buf: Vec<u8>,
    #[cfg(feature = "deflate")]
    deflate: Option<crate::DeflateConfig>,
    extension: Option<Box<dyn Extension>>,
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
            #[cfg(feature = "deflate")]
            deflate: None,
            extension: None,
        }
    }

    /// Starts with the head limits, and answers the extension offers that
    /// `config` switches on (permessage-deflate with `Config::deflate`) in
    /// [`ServerUpgrade::accept`].
    pub fn with_config(limits: Limits, config: &Config) -> Self {
        #[cfg(not(feature = "deflate"))]
        let _ = config;
        Self {
            #[cfg(feature = "deflate")]
            deflate: config.deflate,
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
    /// As [`Request::accept`].
    pub fn accept(
        &mut self,
        request: &Request,
        choice: AcceptOptions,
    ) -> Result<Vec<u8>, BuildError> {
        let mut choice = choice;
        self.extension = None;
        #[cfg(feature = "deflate")]
        if let Some(config) = &self.deflate
            && let Some((params, answer)) =
                crate::deflate::server_accept(config, request.extensions())
        {
            choice = choice.extension(answer);
            self.extension = Some(Box::new(crate::PerMessageDeflate::new(
                crate::Role::Server,
                &params,
                config,
            )));
        }
        #[cfg(not(feature = "deflate"))]
        let _ = &mut choice;
        let head = request.accept(&choice);
        if head.is_err() {
            self.extension = None;
        }
        head
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
    /// the transport's end or a timeout nothing.
    pub fn failure_response(err: &HandshakeError) -> Option<Vec<u8>> {
        match err {
            HandshakeError::Request(e) => Some(e.response()),
            HandshakeError::Build(_) => {
                tether_handshake::Refusal::new(500, "the server could not write its answer")
                    .ok()
                    .map(|r| r.to_bytes())
            }
            _ => None,
        }
    }

    /// The connection, once [`ServerUpgrade::accept`]'s answer is written:
    /// `Open` under `config` at `now`, with the negotiated extension
    /// installed and `leftover` (the bytes after the request's head)
    /// received.
    #[cfg(feature = "rand")]
    pub fn into_connection(
        mut self,
        config: Config,
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

    #[test]
    fn rfc6455_4_frames_after_the_head_are_handed_on() {
        let hs = ClientHandshake::with_key("ws://h/x", ClientConfig::new(), [7; 16]).unwrap();
        let mut client = ClientUpgrade::new(hs);
        let mut server = ServerUpgrade::new(Limits::default());
        let mut req = client.request().to_vec();
        req.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
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

    #[test]
    fn eof_before_answer_names_the_likely_cause() {
        let hs = ClientHandshake::with_key("ws://h/x", ClientConfig::new(), [7; 16]).unwrap();
        let client = ClientUpgrade::new(hs);
        assert!(client.eof().to_string().contains("wss://"));
    }
}
