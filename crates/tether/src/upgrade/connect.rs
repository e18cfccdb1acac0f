//! Handshake objects for a WebSocket over HTTP/2 (RFC 8441) or HTTP/3 (RFC
//! 9220): an extended CONNECT on one stream, then that stream is the
//! transport.
//!
//! Owns what [`ClientUpgrade`](super::ClientUpgrade) and
//! [`ServerUpgrade`](super::ServerUpgrade) own for HTTP/1.1, with the same
//! extension negotiation (one `client_extension`, one `server_extension`):
//! the request and the answers as `http` crate values (from
//! `tether_handshake`'s extended CONNECT), the check of each, and the
//! [`Connection`] they turn into. The HTTP stack (h2, h3) sends and
//! receives the heads and carries `:protocol`; it never builds a
//! `Connection` itself. The stream has no leftover bytes: its first DATA
//! is the connection's first input. Stream end is the transport's end
//! (`Connection::receive_eof`), a reset an abnormal one (RFC 8441 section
//! 5, RFC 9220 section 3).

use alloc::boxed::Box;

#[cfg(feature = "rand")]
use tether_handshake::ClientConfig;
use tether_handshake::http;
use tether_handshake::{AcceptOptions, Accepted, BuildError, ConnectHandshake, Limits, Request};

#[cfg(feature = "rand")]
use super::extension_offer;
use super::{Deflate, HandshakeError, answer_extensions, client_extension, deflate_of};
use crate::{Config, Extension};
#[cfg(feature = "rand")]
use crate::{Connection, Role};

/// The client side of an extended CONNECT: the request to send on a new
/// stream, then the check of the answer.
pub struct ClientConnect {
    handshake: ConnectHandshake,
    deflate: Option<Deflate>,
    extension: Option<Box<dyn Extension>>,
}

impl core::fmt::Debug for ClientConnect {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientConnect")
            .field("handshake", &self.handshake)
            .field("extension", &self.extension.as_ref().map(|e| e.name()))
            .finish_non_exhaustive()
    }
}

impl ClientConnect {
    /// The extended CONNECT for `url` from `request` (subprotocols,
    /// headers, ...) plus the extension offers `config` switches on
    /// (permessage-deflate with `Config::deflate`), whose answers
    /// [`ClientConnect::check_response`] then checks.
    ///
    /// # Errors
    /// [`HandshakeError::Build`] for a bad URL or header.
    #[cfg(feature = "rand")]
    pub fn new(url: &str, request: ClientConfig, config: &Config) -> Result<Self, HandshakeError> {
        let deflate = deflate_of(config);
        let request = match extension_offer(deflate.as_ref()) {
            Some(offer) => request.extension(offer),
            None => request,
        };
        let handshake = ConnectHandshake::new(url, request).map_err(HandshakeError::Build)?;
        Ok(Self {
            handshake,
            deflate,
            extension: None,
        })
    }

    /// The handshake (URL, pseudo-headers, headers).
    pub fn handshake(&self) -> &ConnectHandshake {
        &self.handshake
    }

    /// The request to send, with `:protocol` set to
    /// [`tether_handshake::PROTOCOL`] by the HTTP stack.
    ///
    /// # Errors
    /// [`HandshakeError::Build`] if a value cannot be an HTTP/2 field.
    pub fn request(&self) -> Result<http::Request<()>, HandshakeError> {
        self.handshake.request().map_err(HandshakeError::Build)
    }

    /// Checks the server's answer: a 2xx with a subprotocol among our
    /// offers, and extensions that fit our offer (the same checks as the
    /// HTTP/1.1 upgrade); keeps the extension to run.
    ///
    /// # Errors
    /// [`HandshakeError::Response`] naming the cause (a non-2xx names its
    /// status), [`HandshakeError::UnsupportedExtension`], or a
    /// permessage-deflate answer that does not fit the offer.
    pub fn check_response<B>(
        &mut self,
        response: &http::Response<B>,
    ) -> Result<Accepted, HandshakeError> {
        let accepted = self
            .handshake
            .check_response(response)
            .map_err(HandshakeError::Response)?;
        self.extension = client_extension(self.deflate.as_ref(), accepted.extensions())?;
        Ok(accepted)
    }

    /// The connection, once [`ClientConnect::check_response`] accepted
    /// the answer: `Open` under `config` at `now`, the negotiated
    /// extension installed.
    #[cfg(feature = "rand")]
    pub fn into_connection(
        self,
        config: impl Into<alloc::sync::Arc<Config>>,
        now: std::time::Instant,
    ) -> Connection {
        super::connection(Role::Client, config, self.extension, now, &[])
    }
}

/// The server side of an extended CONNECT: the check of the request, then
/// the answer.
pub struct ServerConnect {
    deflate: Option<Deflate>,
    extension: Option<Box<dyn Extension>>,
}

impl core::fmt::Debug for ServerConnect {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConnect")
            .field("extension", &self.extension.as_ref().map(|e| e.name()))
            .finish_non_exhaustive()
    }
}

impl ServerConnect {
    /// A server that answers the extension offers `config` switches on
    /// (permessage-deflate with `Config::deflate`).
    pub fn new(config: &Config) -> Self {
        Self {
            deflate: deflate_of(config),
            extension: None,
        }
    }

    /// Checks a request as the HTTP stack gave it, with the value of its
    /// `:protocol` pseudo-header (RFC 8441 sections 4-5), its fields held
    /// to `limits` as an HTTP/1.1 head is (see
    /// [`parse_connect_request`](tether_handshake::parse_connect_request)).
    ///
    /// # Errors
    /// [`HandshakeError::Request`]: answer with
    /// [`ServerConnect::failure_response`].
    pub fn check_request<B>(
        &self,
        request: &http::Request<B>,
        protocol: Option<&str>,
        limits: &Limits,
    ) -> Result<Request, HandshakeError> {
        tether_handshake::parse_connect_request(request, protocol, limits)
            .map_err(HandshakeError::Request)
    }

    /// The 200 for `request` with the application's `choice` (subprotocol,
    /// headers) plus the answer to the extension offers, negotiated as
    /// [`ServerUpgrade::accept`](super::ServerUpgrade::accept) does.
    ///
    /// # Errors
    /// As [`Request::accept_connect`].
    pub fn accept(
        &mut self,
        request: &Request,
        choice: AcceptOptions,
    ) -> Result<http::Response<()>, BuildError> {
        let (choice, extension) = answer_extensions(self.deflate.as_ref(), request, choice)?;
        let answer = request.accept_connect(&choice)?;
        self.extension = extension;
        Ok(answer)
    }

    /// The answer a server sends when the handshake failed with `err`, one
    /// rule for every adapter: a bad request its refusal
    /// ([`tether_handshake::connect_refusal`]), an answer that could not be
    /// built 500, anything else (a reset, a timeout) nothing.
    pub fn failure_response(err: &HandshakeError) -> Option<http::Response<String>> {
        match err {
            HandshakeError::Request(e) => Some(tether_handshake::connect_refusal(e)),
            HandshakeError::Build(_) => {
                tether_handshake::Refusal::new(500, "the server could not write its answer")
                    .ok()
                    .map(|r| r.to_http())
            }
            _ => None,
        }
    }

    /// The connection, once [`ServerConnect::accept`]'s answer is sent:
    /// `Open` under `config` at `now`, the negotiated extension installed.
    #[cfg(feature = "rand")]
    pub fn into_connection(
        self,
        config: impl Into<alloc::sync::Arc<Config>>,
        now: std::time::Instant,
    ) -> Connection {
        super::connection(Role::Server, config, self.extension, now, &[])
    }
}

/// When a server lets a multiplexed connection (HTTP/2, HTTP/3) go: the
/// same rules for both transports, so that each adapter only carries
/// them out.
///
/// - **Vacant:** a connection carrying no WebSocket gets
///   `Config::handshake_timeout` to open its first, as an HTTP/1.1
///   connection gets it for its request, and as long again each time its
///   last WebSocket ends; then the server asks it to go away (GOAWAY:
///   [`VacancyStep::GoAway`]). Otherwise a client keeping a connection with
///   no WebSocket on it (refused requests do not count), or one that
///   vanished with none open, when nothing is written that would find
///   out, holds the connection, and the server's slot, for good.
/// - **Going away** (after that GOAWAY, or one the server sent to shut
///   down: [`Vacancy::go_away`]): the WebSockets open, and the requests
///   already on their way, are served to their end; once none is left,
///   the client has `Config::close_timeout` to end the connection itself
///   (time for our last bytes, a Close answered just before, to reach it:
///   closing a QUIC connection drops what it has not sent), then the
///   server lets it go ([`VacancyStep::LetGo`]).
///
/// Sending the GOAWAY itself may take until [`Vacancy::send_deadline`]
/// (a client that gives no credit for it must not hold the server).
///
/// The adapter says how many WebSockets are open (and, while going away,
/// how many requests are on their way) with [`Vacancy::tenants`] whenever
/// the count may have changed, waits until [`Vacancy::deadline`], and
/// does what [`Vacancy::step`] says. No I/O, no clock.
#[derive(Clone, Debug)]
pub struct Vacancy {
    /// `Config::handshake_timeout`: vacant this long, the client is asked
    /// to go away.
    wait: core::time::Duration,
    /// `Config::close_timeout`: going away, with nothing left, the client
    /// has this long to end the connection.
    drain: core::time::Duration,
    /// Since when nothing has been open; `None` while something is.
    since: Option<std::time::Instant>,
    going_away: bool,
}

/// What a multiplexed connection's server does next ([`Vacancy::step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VacancyStep {
    /// Serve on: the deadline has not come ([`Vacancy::deadline`]).
    Wait,
    /// Ask the client to go away (GOAWAY), then tell [`Vacancy::go_away`].
    GoAway,
    /// Let the connection go (close it): it went away, or the client had
    /// its time to end it and did not.
    LetGo,
}

impl Vacancy {
    /// A connection that started at `now`, with no WebSocket yet.
    pub fn new(config: &Config, now: std::time::Instant) -> Self {
        Self {
            wait: config.handshake_timeout,
            drain: config.close_timeout,
            since: Some(now),
            going_away: false,
        }
    }

    /// `open` WebSockets are open on the connection at `now` (while going
    /// away, with the requests still on their way).
    pub fn tenants(&mut self, open: usize, now: std::time::Instant) {
        if open > 0 {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(now);
        }
    }

    /// The server asked the client to go away (GOAWAY) at `now`, for
    /// vacancy or to shut down: from now on the deadline is the client's
    /// to end the connection once nothing is left open.
    pub fn go_away(&mut self, now: std::time::Instant) {
        if !self.going_away {
            self.going_away = true;
            // with nothing open, the client's time starts now
            if self.since.is_some() {
                self.since = Some(now);
            }
        }
    }

    /// Whether the server has asked the client to go away.
    pub fn going_away(&self) -> bool {
        self.going_away
    }

    /// When [`Vacancy::step`] stops saying `Wait`; `None` while a
    /// WebSocket (or, going away, a request) is open.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        let wait = if self.going_away {
            self.drain
        } else {
            self.wait
        };
        self.since.map(|since| crate::deadline(since, wait))
    }

    /// Whether the deadline has come at `now`.
    pub fn expired(&self, now: std::time::Instant) -> bool {
        self.deadline().is_some_and(|deadline| now >= deadline)
    }

    /// What the server does at `now`.
    pub fn step(&self, now: std::time::Instant) -> VacancyStep {
        match (self.expired(now), self.going_away) {
            (false, _) => VacancyStep::Wait,
            (true, false) => VacancyStep::GoAway,
            (true, true) => VacancyStep::LetGo,
        }
    }

    /// The latest a GOAWAY begun at `now` may take to be sent: the time
    /// any connection's last bytes get (`Config::close_timeout`).
    pub fn send_deadline(&self, now: std::time::Instant) -> std::time::Instant {
        crate::deadline(now, self.drain)
    }
}

#[cfg(test)]
#[cfg(feature = "rand")]
mod tests {
    use super::*;
    use crate::{Event, Message};

    fn pair(config: &Config) -> (Connection, Connection) {
        let mut client = ClientConnect::new("ws://h/x", ClientConfig::new(), config).unwrap();
        let request = client.request().unwrap();
        let mut server = ServerConnect::new(config);
        let offer = server
            .check_request(&request, Some("websocket"), &Limits::new())
            .unwrap();
        let answer = server.accept(&offer, AcceptOptions::new()).unwrap();
        client.check_response(&answer).unwrap();
        let now = std::time::Instant::now();
        (
            client.into_connection(config.clone(), now),
            server.into_connection(config.clone(), now),
        )
    }

    fn echo_through(client: &mut Connection, server: &mut Connection, text: &str) -> Vec<u8> {
        let now = std::time::Instant::now();
        client.send(Message::text(text)).unwrap();
        let wire = client.take_output().to_vec();
        server.receive(now, &wire).unwrap();
        match server.poll_event() {
            Some(Event::Message(m)) => assert_eq!(m.as_text(), Some(text)),
            other => panic!("expected the message, got {other:?}"),
        }
        wire
    }

    #[test]
    fn rfc8441_5_connection_runs_over_the_stream_after_a_2xx() {
        let (mut client, mut server) = pair(&Config::default());
        let wire = echo_through(&mut client, &mut server, "hello over h2");
        assert_eq!(wire[0] & 0x40, 0, "no RSV1 without deflate");
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn rfc8441_5_permessage_deflate_negotiates_unchanged() {
        let config = Config {
            deflate: Some(crate::DeflateConfig::default()),
            ..Config::default()
        };
        let client = ClientConnect::new("ws://h/", ClientConfig::new(), &config).unwrap();
        let request = client.request().unwrap();
        assert_eq!(
            request.headers()["sec-websocket-extensions"],
            "permessage-deflate; client_max_window_bits"
        );
        let (mut client, mut server) = pair(&config);
        let text = "compress me ".repeat(20);
        let wire = echo_through(&mut client, &mut server, &text);
        assert_eq!(wire[0] & 0x40, 0x40, "RSV1: the message went compressed");
        assert!(wire.len() < text.len());
    }

    #[test]
    fn rfc8441_5_refusal_names_the_status() {
        let config = Config::default();
        let mut client = ClientConnect::new("ws://h/", ClientConfig::new(), &config).unwrap();
        let err = HandshakeError::Request(tether_handshake::RequestError::MissingProtocol);
        let refusal = ServerConnect::failure_response(&err).unwrap();
        assert_eq!(refusal.status(), 400);
        let e = client.check_response(&refusal).unwrap_err();
        assert_eq!(e.refused_status(), Some(400));
        assert!(
            e.to_string()
                .contains("server answered 400 Bad Request to the extended CONNECT"),
            "{e}"
        );
    }

    #[test]
    fn rfc8441_5_an_extension_not_offered_is_refused() {
        let mut client =
            ClientConnect::new("ws://h/", ClientConfig::new(), &Config::default()).unwrap();
        let mut answer = http::Response::new(());
        answer.headers_mut().insert(
            "sec-websocket-extensions",
            http::HeaderValue::from_static("permessage-deflate"),
        );
        let e = client.check_response(&answer).unwrap_err();
        assert!(e.to_string().contains("permessage-deflate"), "{e}");
    }
}

#[cfg(test)]
mod vacancy_tests {
    use core::time::Duration;
    use std::time::Instant;

    use super::Vacancy;
    use crate::Config;

    fn config(wait: Duration) -> Config {
        Config {
            handshake_timeout: wait,
            ..Config::default()
        }
    }

    #[test]
    fn rfc8441_a_connection_gets_the_handshake_timeout_for_its_first_websocket() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut v = Vacancy::new(&config(10 * s), t0);
        assert_eq!(v.deadline(), Some(t0 + 10 * s));
        assert!(!v.expired(t0 + 9 * s));
        // a look that finds none open changes nothing
        v.tenants(0, t0 + 5 * s);
        assert_eq!(v.deadline(), Some(t0 + 10 * s));
        assert!(v.expired(t0 + 10 * s));
    }

    #[test]
    fn rfc8441_the_wait_restarts_when_the_last_websocket_ends() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut v = Vacancy::new(&config(10 * s), t0);
        v.tenants(2, t0 + 3 * s);
        assert_eq!(v.deadline(), None);
        assert!(!v.expired(t0 + 100 * s));
        v.tenants(1, t0 + 50 * s);
        assert_eq!(v.deadline(), None);
        v.tenants(0, t0 + 60 * s);
        assert_eq!(v.deadline(), Some(t0 + 70 * s));
        assert!(!v.expired(t0 + 69 * s));
        assert!(v.expired(t0 + 70 * s));
    }

    #[test]
    fn a_wait_of_never_never_expires() {
        let t0 = Instant::now();
        let v = Vacancy::new(&config(Duration::MAX), t0);
        assert!(!v.expired(t0 + Duration::from_secs(1 << 20)));
    }
}

#[cfg(test)]
mod going_away_tests {
    use super::*;
    use core::time::Duration;

    fn config() -> Config {
        Config {
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(3),
            ..Config::default()
        }
    }

    /// RFC 9113 section 6.8, RFC 9114 section 5.2: vacant for the
    /// handshake timeout, the step is to ask the client to go away.
    #[test]
    fn rfc9113_6_8_vacant_for_the_handshake_timeout_the_step_is_goaway() {
        let t0 = std::time::Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut v = Vacancy::new(&config(), t0);
        assert_eq!(v.step(s(9)), VacancyStep::Wait);
        v.tenants(1, s(9));
        assert_eq!(v.step(s(100)), VacancyStep::Wait);
        v.tenants(0, s(100));
        assert_eq!(v.step(s(109)), VacancyStep::Wait);
        assert_eq!(v.step(s(110)), VacancyStep::GoAway);
        assert!(!v.going_away());
    }

    /// Going away, the WebSockets and requests still open are served to
    /// their end; then the client has the close timeout to end the
    /// connection, and is let go after it.
    #[test]
    fn rfc9114_5_2_going_away_lets_go_a_close_timeout_after_the_last_ends() {
        let t0 = std::time::Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        // shut down with two open
        let mut v = Vacancy::new(&config(), t0);
        v.tenants(2, s(1));
        v.go_away(s(5));
        assert!(v.going_away());
        assert_eq!(v.deadline(), None);
        assert_eq!(v.step(s(1000)), VacancyStep::Wait);
        v.tenants(0, s(1000));
        assert_eq!(v.deadline(), Some(s(1003)));
        assert_eq!(v.step(s(1002)), VacancyStep::Wait);
        assert_eq!(v.step(s(1003)), VacancyStep::LetGo);
        // gone away for vacancy: the client's time starts at the GOAWAY,
        // not at the vacancy's start
        let mut v = Vacancy::new(&config(), t0);
        assert_eq!(v.step(s(10)), VacancyStep::GoAway);
        v.go_away(s(11));
        assert_eq!(v.deadline(), Some(s(14)));
        // a second GOAWAY does not move it
        v.go_away(s(13));
        assert_eq!(v.deadline(), Some(s(14)));
        assert_eq!(v.step(s(14)), VacancyStep::LetGo);
    }

    /// Sending the GOAWAY may take the close timeout, as any connection's
    /// last bytes may.
    #[test]
    fn the_goaway_is_sent_within_the_close_timeout() {
        let t0 = std::time::Instant::now();
        let v = Vacancy::new(&config(), t0);
        assert_eq!(v.send_deadline(t0), t0 + Duration::from_secs(3));
    }
}
