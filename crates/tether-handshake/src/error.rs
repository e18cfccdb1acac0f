//! The three ways a handshake fails, kept apart as rustls keeps them apart:
//! what the client's request did wrong ([`RequestError`], found by a server),
//! what the server's response did wrong ([`ResponseError`], found by a
//! client), and what the caller asked for that cannot be written
//! ([`BuildError`]).
//!
//! Owns the error types and their messages only. Every message says, in plain
//! words, what was expected and what came, and names the RFC rule; bytes from
//! the wire appear quoted, escaped and shortened, never raw. A request error
//! maps to the refusal a server should send ([`RequestError::refusal`]).

use core::fmt;

use crate::headers::{Headers, snippet};
use crate::server::Refusal;
use crate::url::UrlError;

/// A client's upgrade request that a server must refuse (RFC 6455 section
/// 4.2.1), or one over the [`Limits`](crate::Limits).
///
/// [`RequestError::status`] and [`RequestError::response`] give the refusal to
/// send (section 4.2.2 says to answer with an HTTP error such as 400): 400 for
/// most, 405 for a method other than GET, 426 with `Sec-WebSocket-Version: 13`
/// for another WebSocket version (section 4.4), 426 with `Upgrade: websocket`
/// for a plain HTTP request, 431 for an over-limit head (RFC 6585 section 5).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The first bytes are a TLS record (a ClientHello, 0x16 0x03, or
    /// another record type 0x14-0x17 with 0x03): a client speaking TLS to a
    /// plain `ws://` server. Its TLS stack cannot parse the HTTP refusal
    /// as a record, but it can tell the user that the server answered in
    /// plain HTTP, so tether's servers send it anyway.
    TlsClientHello,
    /// The bytes are not a well-formed HTTP/1.x request head (RFC 9112).
    Malformed {
        /// What was wrong, in plain words.
        detail: &'static str,
    },
    /// The head is over [`Limits::max_head_len`](crate::Limits::max_head_len)
    /// and still has not ended.
    HeadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The head has more fields than [`Limits::max_headers`](crate::Limits::max_headers).
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// An extended CONNECT's header fields weigh more than
    /// [`Limits::max_head_len`](crate::Limits::max_head_len), counted as
    /// HTTP/2 and HTTP/3 count a field section (name + value + 32 bytes
    /// each; RFC 9113 section 6.5.2, RFC 9114 section 4.2.2).
    FieldsTooLarge {
        /// What they weigh, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A method other than GET (section 4.1 item 2).
    Method {
        /// The method sent, quoted.
        found: String,
    },
    /// An HTTP version before 1.1, or one this parser does not speak (section 4.1 item 2).
    HttpVersion {
        /// The version sent, quoted.
        found: String,
    },
    /// A request target that is neither a path nor an absolute URI (section 4.1 item 3).
    Target {
        /// The target sent, quoted.
        found: String,
    },
    /// No `Host` header, or an empty one (section 4.1 item 4).
    MissingHost,
    /// A header that must be visible ASCII (`Host`, `Origin`) is not.
    InvalidHeaderValue {
        /// The header's name.
        name: &'static str,
        /// The value sent, quoted.
        found: String,
    },
    /// A header that must appear once appears more often.
    Duplicate {
        /// The header's name.
        name: &'static str,
        /// How many times it appears.
        count: usize,
    },
    /// No `Upgrade` header: a plain HTTP request (section 4.2.1 item 3).
    MissingUpgrade,
    /// An `Upgrade` header without the `websocket` token (section 4.2.1 item 3).
    WrongUpgrade {
        /// The header's values, quoted.
        found: String,
    },
    /// No `Connection` header (section 4.2.1 item 4).
    MissingConnection,
    /// A `Connection` header without the `upgrade` token (section 4.2.1 item 4).
    WrongConnection {
        /// The header's values, quoted.
        found: String,
    },
    /// A request with a body (`Content-Length` other than 0, or any
    /// `Transfer-Encoding`): the protocol switches once the request is
    /// complete (RFC 9110 section 7.8), so its body's bytes would be read
    /// as WebSocket frames. An upgrade request has none.
    Body {
        /// The header that announced it, with its value, quoted.
        found: String,
    },
    /// No `Sec-WebSocket-Key` header (section 4.2.1 item 5).
    MissingKey,
    /// A `Sec-WebSocket-Key` that is not the base64 of 16 bytes (section 4.2.1 item 5).
    BadKey {
        /// The key sent, quoted.
        found: String,
        /// What it decodes to, in bytes; `None` if it is not padded base64.
        decoded_len: Option<usize>,
    },
    /// No `Sec-WebSocket-Version` header (section 4.2.1 item 6).
    MissingVersion,
    /// A `Sec-WebSocket-Version` other than 13 (sections 4.2.1 item 6 and 4.4).
    UnsupportedVersion {
        /// The version sent, quoted.
        found: String,
    },
    /// A `Sec-WebSocket-Protocol` list element that is not a token (section 4.1 item 10).
    MalformedSubprotocols {
        /// The header's values, quoted.
        found: String,
    },
    /// A `Sec-WebSocket-Extensions` value that breaks the grammar of section 9.1.
    MalformedExtensions {
        /// The header's values, quoted.
        found: String,
        /// What was wrong, in plain words.
        detail: &'static str,
    },
    /// Over HTTP/2 or HTTP/3: a method other than CONNECT (RFC 8441
    /// section 5, RFC 9220 section 3).
    ConnectMethod {
        /// The method sent, quoted.
        found: String,
    },
    /// Over HTTP/2 or HTTP/3: a CONNECT without the `:protocol`
    /// pseudo-header, a tunnel request rather than a WebSocket (RFC 8441
    /// section 4).
    MissingProtocol,
    /// Over HTTP/2 or HTTP/3: a `:protocol` other than `websocket` (RFC
    /// 8441 section 5).
    WrongProtocol {
        /// The protocol sent, quoted.
        found: String,
    },
    /// Over HTTP/2 or HTTP/3: an extended CONNECT without `:scheme`,
    /// `:path` or `:authority` (RFC 8441 section 4).
    MissingPseudoHeader {
        /// The pseudo-header's name, e.g. `:path`.
        name: &'static str,
    },
    /// Over HTTP/2 or HTTP/3: a connection-specific header such as
    /// `Upgrade` or `Connection`, which these versions forbid (RFC 9113
    /// section 8.2.2, RFC 9114 section 4.2).
    ConnectionSpecificHeader {
        /// The header's name.
        name: String,
    },
}

/// Whether `found` (a quoted version word) says `HTTP/` with a major
/// version other than 1.
const fn names_another_major(found: &[u8]) -> bool {
    let mut i = 0;
    while i + 5 < found.len() {
        if found[i] == b'H'
            && found[i + 1] == b'T'
            && found[i + 2] == b'T'
            && found[i + 3] == b'P'
            && found[i + 4] == b'/'
        {
            return found[i + 5].is_ascii_digit() && found[i + 5] != b'1';
        }
        i += 1;
    }
    false
}

impl RequestError {
    /// The HTTP status of the refusal to send for this error (RFC 6455
    /// section 4.2.2): 431, 426, 405, 505 or 400.
    pub const fn status(&self) -> u16 {
        match self {
            Self::HeadTooLarge { .. }
            | Self::TooManyHeaders { .. }
            | Self::FieldsTooLarge { .. } => 431,
            Self::MissingUpgrade
            | Self::WrongUpgrade { .. }
            | Self::MissingVersion
            | Self::UnsupportedVersion { .. } => 426,
            Self::Method { .. } | Self::ConnectMethod { .. } => 405,
            // another major version: 505 (RFC 9110 section 15.6.6); an
            // HTTP/1.0 request is a bad one (RFC 6455 section 4.1 item 2)
            Self::HttpVersion { found } if names_another_major(found.as_bytes()) => 505,
            _ => 400,
        }
    }

    /// The refusal to send for this error: its [`status`](Self::status), the
    /// headers that status calls for, and this error's message as the body.
    ///
    /// - 426 for a version other than 13 carries `Sec-WebSocket-Version: 13`
    ///   (section 4.4), and every 426 carries `Upgrade: websocket`
    ///   (RFC 9110 section 15.5.22);
    /// - 405 carries `Allow: GET` (RFC 9110 section 15.5.6).
    pub fn refusal(&self) -> Refusal {
        let mut headers = Vec::new();
        match self.status() {
            426 => {
                headers.push(("Upgrade", "websocket"));
                if matches!(self, Self::MissingVersion | Self::UnsupportedVersion { .. }) {
                    headers.push(("Sec-WebSocket-Version", crate::WEBSOCKET_VERSION));
                }
            }
            405 => headers.push(("Allow", "GET")),
            _ => {}
        }
        Refusal::internal(self.status(), self.to_string(), &headers)
    }

    /// The bytes of [`refusal`](Self::refusal): a complete HTTP/1.1 response
    /// that ends with `Connection: close`. Write it, then close the connection.
    /// (For [`RequestError::TlsClientHello`] the peer's TLS stack cannot
    /// parse it, but may report that a plain HTTP server answered.)
    pub fn response(&self) -> Vec<u8> {
        self.refusal().to_bytes()
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TlsClientHello => f.write_str(
                "client spoke TLS to a plain ws:// server: expected an HTTP GET request, found a TLS record (its first bytes 0x14-0x17 then 0x03, as a ClientHello's 0x16 0x03); serve TLS on this port or connect with ws://",
            ),
            Self::Malformed { detail } => {
                write!(f, "malformed HTTP request head: {detail} (RFC 9112)")
            }
            Self::HeadTooLarge { limit } => write!(
                f,
                "request head is larger than the {limit}-byte limit and has not ended (RFC 6585 section 5)"
            ),
            Self::TooManyHeaders { limit } => write!(
                f,
                "request head has more than {limit} header fields, the configured limit (RFC 6585 section 5)"
            ),
            Self::FieldsTooLarge { size, limit } => write!(
                f,
                "request header fields weigh {size} bytes (name + value + 32 each, RFC 9113 section 6.5.2), over the {limit}-byte limit (RFC 6585 section 5)"
            ),
            Self::Method { found } => write!(
                f,
                "expected method GET for a WebSocket upgrade (RFC 6455 section 4.1), found {found}"
            ),
            Self::HttpVersion { found } => write!(
                f,
                "expected HTTP/1.1 for a WebSocket upgrade (RFC 6455 section 4.1), found {found}"
            ),
            Self::Target { found } => write!(
                f,
                "expected a request target that is a path such as /chat, or an absolute URI (RFC 6455 section 4.1), found {found}"
            ),
            Self::MissingHost => f.write_str(
                "expected a Host header (RFC 6455 section 4.1 item 4), found none or an empty one",
            ),
            Self::InvalidHeaderValue { name, found } => write!(
                f,
                "expected the {name} header to be visible ASCII, found {found}"
            ),
            Self::Duplicate { name, count } => {
                write!(f, "expected one {name} header, found {count}")
            }
            Self::MissingUpgrade => f.write_str(
                "expected an \"Upgrade: websocket\" header (RFC 6455 section 4.2.1), found none: this is a plain HTTP request to a WebSocket endpoint",
            ),
            Self::WrongUpgrade { found } => write!(
                f,
                "expected the Upgrade header to name websocket (RFC 6455 section 4.2.1), found {found}"
            ),
            Self::MissingConnection => f.write_str(
                "expected a Connection header holding the token upgrade (RFC 6455 section 4.2.1), found none",
            ),
            Self::WrongConnection { found } => write!(
                f,
                "expected the Connection header to hold the token upgrade (RFC 6455 section 4.2.1), found {found}"
            ),
            Self::Body { found } => write!(
                f,
                "expected an upgrade request without a body (RFC 9110 section 7.8: its bytes would be read as WebSocket frames), found {found}"
            ),
            Self::MissingKey => f.write_str(
                "expected a Sec-WebSocket-Key header (RFC 6455 section 4.2.1), found none",
            ),
            Self::BadKey { found, decoded_len } => {
                write!(
                    f,
                    "expected Sec-WebSocket-Key to be the base64 of 16 random bytes (RFC 6455 section 4.2.1), found {found}, which "
                )?;
                match decoded_len {
                    Some(n) => write!(f, "decodes to {n} bytes"),
                    None => f.write_str("is not padded base64"),
                }
            }
            Self::MissingVersion => f.write_str(
                "expected \"Sec-WebSocket-Version: 13\" (RFC 6455 section 4.2.1), found no such header",
            ),
            Self::UnsupportedVersion { found } => write!(
                f,
                "expected Sec-WebSocket-Version 13, the version RFC 6455 defines (section 4.4), found {found}"
            ),
            Self::MalformedSubprotocols { found } => write!(
                f,
                "expected Sec-WebSocket-Protocol to be a comma-separated list of tokens (RFC 6455 section 4.1), found {found}"
            ),
            Self::MalformedExtensions { found, detail } => write!(
                f,
                "malformed Sec-WebSocket-Extensions {found}: {detail} (RFC 6455 section 9.1)"
            ),
            Self::ConnectMethod { found } => write!(
                f,
                "expected method CONNECT with :protocol websocket for a WebSocket over HTTP/2 or HTTP/3 (RFC 8441 section 5), found {found}"
            ),
            Self::MissingProtocol => f.write_str(
                "expected a :protocol pseudo-header naming websocket (RFC 8441 section 4), found a CONNECT without one: a tunnel request, not a WebSocket",
            ),
            Self::WrongProtocol { found } => write!(
                f,
                "expected :protocol websocket (RFC 8441 section 5), found {found}"
            ),
            Self::MissingPseudoHeader { name } => write!(
                f,
                "expected the {name} pseudo-header in an extended CONNECT (RFC 8441 section 4), found none"
            ),
            Self::ConnectionSpecificHeader { name } => write!(
                f,
                "the connection-specific header {name:?} is not allowed over HTTP/2 or HTTP/3 (RFC 9113 section 8.2.2): a WebSocket there is opened by extended CONNECT, not Upgrade"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

/// A server's answer that a client must not accept (RFC 6455 section 4.1,
/// "the client MUST _Fail the WebSocket Connection_"), or one over the
/// [`Limits`](crate::Limits).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The answer is a TLS record (0x15 0x03 or 0x16 0x03): a TLS server
    /// answered our plain request. Use `wss://`.
    TlsAnswer,
    /// The answer does not start like an HTTP response at all.
    NotHttp {
        /// The first bytes, quoted.
        found: String,
    },
    /// The answer starts like HTTP but its head is not well formed (RFC 9112).
    Malformed {
        /// What was wrong, in plain words.
        detail: &'static str,
    },
    /// The head is over [`Limits::max_head_len`](crate::Limits::max_head_len)
    /// and still has not ended.
    HeadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The head has more fields than [`Limits::max_headers`](crate::Limits::max_headers).
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// An HTTP version other than 1.1.
    HttpVersion {
        /// The version sent, quoted.
        found: String,
    },
    /// A status other than 101 (section 4.1): the server did not switch.
    UnexpectedStatus {
        /// The status code.
        status: u16,
        /// The reason phrase, shortened.
        reason: String,
        /// The response's headers (e.g. `Location` for a redirect,
        /// `Sec-WebSocket-Version` for a 426).
        headers: Headers,
    },
    /// No `Upgrade` header (section 4.1, step 2 of the response checks).
    MissingUpgrade,
    /// An `Upgrade` header other than `websocket`.
    WrongUpgrade {
        /// The header's values, quoted.
        found: String,
    },
    /// No `Connection` header (section 4.1, step 3).
    MissingConnection,
    /// A `Connection` header without the `upgrade` token.
    WrongConnection {
        /// The header's values, quoted.
        found: String,
    },
    /// No `Sec-WebSocket-Accept` header (section 4.1, step 4).
    MissingAccept,
    /// A `Sec-WebSocket-Accept` other than the one our key calls for.
    WrongAccept {
        /// The value our key calls for.
        expected: String,
        /// The value sent, quoted.
        found: String,
    },
    /// A header that must appear once appears more often.
    Duplicate {
        /// The header's name.
        name: &'static str,
        /// How many times it appears.
        count: usize,
    },
    /// A subprotocol we did not offer (section 4.1, step 6).
    UnrequestedSubprotocol {
        /// The subprotocol the server chose, quoted.
        found: String,
        /// The subprotocols we offered.
        offered: Vec<String>,
    },
    /// A `Sec-WebSocket-Protocol` that is not one token.
    MalformedSubprotocol {
        /// The header's values, quoted.
        found: String,
    },
    /// An extension we did not offer (section 4.1, step 5).
    UnrequestedExtension {
        /// The extension's name.
        name: String,
        /// The names of the extensions we offered.
        offered: Vec<String>,
    },
    /// A `Sec-WebSocket-Extensions` value that breaks the grammar of section 9.1.
    MalformedExtensions {
        /// The header's values, quoted.
        found: String,
        /// What was wrong, in plain words.
        detail: &'static str,
    },
    /// Over HTTP/2 or HTTP/3: a status outside 200-299 answering the
    /// extended CONNECT (RFC 8441 section 5, RFC 9220 section 3).
    ConnectStatus {
        /// The status code.
        status: u16,
        /// The response's headers.
        headers: Headers,
    },
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TlsAnswer => f.write_str(
                "the server answered with TLS (a TLS record, bytes 0x15 0x03 or 0x16 0x03) where an HTTP response was expected: use wss://",
            ),
            Self::NotHttp { found } => write!(
                f,
                "expected an HTTP response such as \"HTTP/1.1 101 Switching Protocols\", found {found}: is this a WebSocket server?"
            ),
            Self::Malformed { detail } => {
                write!(f, "malformed HTTP response head: {detail} (RFC 9112)")
            }
            Self::HeadTooLarge { limit } => write!(
                f,
                "response head is larger than the {limit}-byte limit and has not ended"
            ),
            Self::TooManyHeaders { limit } => write!(
                f,
                "response head has more than {limit} header fields, the configured limit"
            ),
            Self::HttpVersion { found } => write!(
                f,
                "expected an HTTP/1.1 response (RFC 6455 section 4.1), found {found}"
            ),
            Self::UnexpectedStatus {
                status,
                reason,
                headers,
            } => {
                write!(f, "server answered {status}")?;
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
                f.write_str(" where 101 Switching Protocols was expected")?;
                status_hint(f, *status, headers)
            }
            Self::MissingUpgrade => f.write_str(
                "expected \"Upgrade: websocket\" in the 101 response (RFC 6455 section 4.1), found no Upgrade header",
            ),
            Self::WrongUpgrade { found } => write!(
                f,
                "expected \"Upgrade: websocket\" in the 101 response (RFC 6455 section 4.1), found {found}"
            ),
            Self::MissingConnection => f.write_str(
                "expected \"Connection: Upgrade\" in the 101 response (RFC 6455 section 4.1), found no Connection header",
            ),
            Self::WrongConnection { found } => write!(
                f,
                "expected the Connection header of the 101 response to hold the token upgrade (RFC 6455 section 4.1), found {found}"
            ),
            Self::MissingAccept => f.write_str(
                "expected a Sec-WebSocket-Accept header in the 101 response (RFC 6455 section 4.1), found none",
            ),
            Self::WrongAccept { expected, found } => write!(
                f,
                "expected Sec-WebSocket-Accept {expected:?} for our key (RFC 6455 section 4.1), found {found}"
            ),
            Self::Duplicate { name, count } => {
                write!(f, "expected one {name} header, found {count}")
            }
            Self::UnrequestedSubprotocol { found, offered } => {
                write!(f, "server chose subprotocol {found}, ")?;
                if offered.is_empty() {
                    f.write_str("but we offered none (RFC 6455 section 4.1)")
                } else {
                    write!(
                        f,
                        "expected one we offered: {} (RFC 6455 section 4.1)",
                        offered.join(", ")
                    )
                }
            }
            Self::MalformedSubprotocol { found } => write!(
                f,
                "expected Sec-WebSocket-Protocol to hold one subprotocol (RFC 6455 section 4.1), found {found}"
            ),
            Self::UnrequestedExtension { name, offered } => {
                write!(f, "server accepted extension {name:?}, ")?;
                if offered.is_empty() {
                    f.write_str("but we offered none (RFC 6455 section 4.1)")
                } else {
                    write!(
                        f,
                        "expected only ones we offered: {} (RFC 6455 section 4.1)",
                        offered.join(", ")
                    )
                }
            }
            Self::MalformedExtensions { found, detail } => write!(
                f,
                "malformed Sec-WebSocket-Extensions {found}: {detail} (RFC 6455 section 9.1)"
            ),
            Self::ConnectStatus { status, headers } => {
                write!(f, "server answered {status}")?;
                let reason = crate::server::reason_phrase(*status);
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
                f.write_str(
                    " to the extended CONNECT where a 2xx was expected (RFC 8441 section 5)",
                )?;
                status_hint(f, *status, headers)
            }
        }
    }
}

/// The likely cause of a status other than 101, for the message.
fn status_hint(f: &mut fmt::Formatter<'_>, status: u16, headers: &Headers) -> fmt::Result {
    let header = |name: &str| headers.get(name).map(snippet);
    match status {
        200..=299 => f.write_str(": is this a WebSocket endpoint?"),
        300..=399 => match header("location") {
            Some(to) => write!(f, ": the endpoint has moved to {to}"),
            None => f.write_str(": the endpoint has moved"),
        },
        401 | 403 => f.write_str(": the server refused us (check credentials and the Origin)"),
        404 => f.write_str(": no WebSocket endpoint at this path"),
        426 => {
            let versions = headers.get("sec-websocket-version");
            let speaks_13 = headers.list_contains("sec-websocket-version", "13");
            match versions {
                Some(v) if !speaks_13 => {
                    write!(f, ": the server speaks WebSocket version {}, we speak 13", snippet(v))
                }
                _ if speaks_13 || headers.list_contains("upgrade", "websocket") => f.write_str(
                    ": the server wants a WebSocket upgrade and did not see ours (a proxy or load balancer in between may have dropped the Upgrade and Connection headers)",
                ),
                _ => match header("upgrade") {
                    Some(wanted) => write!(f, ": the server wants another protocol ({wanted})"),
                    None => f.write_str(": the server wants another protocol"),
                },
            }
        }
        429 | 503 => {
            f.write_str(if status == 429 {
                ": the server is limiting how often clients come (try again later"
            } else {
                ": the server cannot take us now, at a limit or going down (try again later"
            })?;
            // delay-seconds or an HTTP date (RFC 9110 section 10.2.3)
            if let Some(after) = headers.get("retry-after") {
                if !after.is_empty() && after.iter().all(u8::is_ascii_digit) {
                    write!(f, ", in {} seconds", String::from_utf8_lossy(after))?;
                } else {
                    write!(f, ", after {}", snippet(after))?;
                }
            }
            f.write_str(")")
        }
        400..=499 => f.write_str(": the server refused the handshake"),
        500..=599 => f.write_str(": the server failed"),
        _ => Ok(()),
    }
}

impl std::error::Error for ResponseError {}

/// Something the caller asked to put in a handshake that cannot be written:
/// a bad URL, a header that is not valid HTTP or that the handshake writes
/// itself, a subprotocol or extension that is not a token, or a choice the
/// client did not offer. Never caused by the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The URL is not a usable `ws://` or `wss://` URL.
    Url(UrlError),
    /// A header name that is not a token (RFC 9110 section 5.1).
    InvalidHeaderName {
        /// The name given, quoted.
        name: String,
    },
    /// A header value holding a control character such as CR or LF
    /// (RFC 9110 section 5.5).
    InvalidHeaderValue {
        /// The header's name.
        name: String,
    },
    /// A header the handshake writes itself, which an extra header must not
    /// repeat or override: use the dedicated option instead.
    ReservedHeader {
        /// The header's name.
        name: String,
    },
    /// A subprotocol that is not a token (RFC 6455 section 4.1 item 10).
    InvalidSubprotocol {
        /// The subprotocol given.
        name: String,
    },
    /// A server chose a subprotocol the client did not offer (section 4.2.2).
    SubprotocolNotOffered {
        /// The subprotocol chosen.
        chosen: String,
        /// The ones the client offered.
        offered: Vec<String>,
    },
    /// An extension whose name or parameters are not tokens (section 9.1).
    InvalidExtension {
        /// The extension, as it would be written.
        extension: String,
        /// What was wrong.
        detail: &'static str,
    },
    /// A server accepted an extension the client did not offer (section 9.1).
    ExtensionNotOffered {
        /// The extension's name.
        name: String,
        /// The names the client offered.
        offered: Vec<String>,
    },
    /// An application accepted an extension through the core's server
    /// handshake, which installs only the extensions its `Config` switches
    /// on (permessage-deflate with `Config::deflate`): the connection
    /// could not run it, and would refuse the peer's frames that use it.
    ExtensionNotRun {
        /// The extension's name.
        name: String,
    },
    /// A refusal status outside 400-599.
    InvalidStatus {
        /// The status given.
        status: u16,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(e) => write!(f, "invalid WebSocket URL: {e}"),
            Self::InvalidHeaderName { name } => write!(
                f,
                "expected a header name made of token characters (RFC 9110 section 5.1), found {name}"
            ),
            Self::InvalidHeaderValue { name } => write!(
                f,
                "the value given for header {name} holds a control character such as CR or LF (RFC 9110 section 5.5)"
            ),
            Self::ReservedHeader { name } => write!(
                f,
                "header {name} is written by the handshake itself: set it with its dedicated option, not as an extra header"
            ),
            Self::InvalidSubprotocol { name } => write!(
                f,
                "expected a subprotocol name made of token characters (RFC 6455 section 4.1), found {name:?}"
            ),
            Self::SubprotocolNotOffered { chosen, offered } => write!(
                f,
                "cannot accept with subprotocol {chosen:?}: the client offered only [{}] (RFC 6455 section 4.2.2)",
                offered.join(", ")
            ),
            Self::InvalidExtension { extension, detail } => {
                write!(
                    f,
                    "cannot write extension {extension:?}: {detail} (RFC 6455 section 9.1)"
                )
            }
            Self::ExtensionNotOffered { name, offered } => write!(
                f,
                "cannot accept extension {name:?}: the client offered only [{}] (RFC 6455 section 9.1)",
                offered.join(", ")
            ),
            Self::ExtensionNotRun { name } => write!(
                f,
                "cannot accept extension {name:?}: the connection runs only the extensions its Config switches on (permessage-deflate: Config::deflate), and would refuse the frames that use it"
            ),
            Self::InvalidStatus { status } => write!(
                f,
                "expected a refusal status from 400 to 599, found {status}"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Url(e) => Some(e),
            _ => None,
        }
    }
}

impl From<UrlError> for BuildError {
    fn from(e: UrlError) -> Self {
        Self::Url(e)
    }
}
