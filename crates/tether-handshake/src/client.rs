//! The client side of the opening handshake (RFC 6455 section 4.1): write
//! the upgrade request, then check the server's answer.
//!
//! Owns the request's bytes, the nonce and the accept value it implies, and
//! the response checks of section 4.1 ("the client MUST _Fail the WebSocket
//! Connection_" unless each holds). It never opens a connection, never does
//! TLS, never follows a redirect (a 3xx comes back as an error carrying the
//! headers, so the caller may) and never keeps a buffer between calls.

use crate::accept::{WEBSOCKET_VERSION, accept_key, encode_key};
use crate::extension::{self, Extension};
use crate::head::{self, Sniff};
use crate::headers::{
    Headers, check_extra_header, check_header_value, is_token, snippet, write_header,
};
use crate::url::WsUrl;
use crate::{BuildError, Limits, ResponseError, Status};

/// What a client asks for in its request beyond the required fields (RFC 6455
/// section 4.1 items 8-12), and the limits on the answer.
///
/// ```
/// use tether_handshake::{ClientConfig, Extension};
/// let config = ClientConfig::new()
///     .subprotocol("chat")
///     .subprotocol("superchat")
///     .extension(Extension::new("permessage-deflate").with_flag("client_max_window_bits"))
///     .origin("https://example.com")
///     .header("Authorization", "Bearer abc");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientConfig {
    pub(crate) subprotocols: Vec<String>,
    pub(crate) extensions: Vec<Extension>,
    pub(crate) origin: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) limits: Limits,
}

impl ClientConfig {
    /// No subprotocols, extensions, Origin or extra headers; default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Offer a subprotocol (section 4.1 item 10); call again for more, in order
    /// of preference. It must be a token; offering one twice is ignored (the
    /// offers must be unique).
    #[must_use]
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.subprotocols.contains(&name) {
            self.subprotocols.push(name);
        }
        self
    }

    /// Offer an extension (section 4.1 item 11, section 9.1); call again for
    /// more, in order of preference. The same name may be offered more than
    /// once with different parameters, as alternatives.
    #[must_use]
    pub fn extension(mut self, extension: Extension) -> Self {
        self.extensions.push(extension);
        self
    }

    /// Send this `Origin` (section 4.1 item 8): browsers always do; other
    /// clients may, to pass a server's origin check.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Add a header, e.g. `Authorization` or `Cookie` (section 4.1 item 12).
    /// It must not be one the handshake writes itself (`Host`, `Upgrade`,
    /// `Connection`, `Origin`, `Sec-WebSocket-*`), nor `Content-Length` or
    /// `Transfer-Encoding`.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Checks everything the caller gave: subprotocols and extensions that
    /// are tokens, an Origin and extra headers that can be written, none of
    /// them `reserved`.
    pub(crate) fn validate(&self, reserved: &[&str]) -> Result<(), BuildError> {
        for p in &self.subprotocols {
            if !is_token(p.as_bytes()) {
                return Err(BuildError::InvalidSubprotocol { name: p.clone() });
            }
        }
        for e in &self.extensions {
            e.validate()?;
        }
        if let Some(origin) = &self.origin {
            check_header_value("Origin", origin)?;
        }
        for (name, value) in &self.headers {
            check_extra_header(name, value, reserved)?;
        }
        Ok(())
    }

    /// The names of the offered extensions, each once, in order.
    pub(crate) fn extension_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for e in &self.extensions {
            if !names.iter().any(|n| n == e.name()) {
                names.push(e.name().to_owned());
            }
        }
        names
    }

    /// Limits on the server's response head.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits on the server's answer head (see [`limits`](Self::limits)).
    pub fn head_limits(&self) -> &Limits {
        &self.limits
    }
}

/// Headers the request writes itself, or that an upgrade GET must not carry.
const RESERVED_IN_REQUEST: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "origin",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "sec-websocket-accept",
    "content-length",
    "transfer-encoding",
];

/// One client handshake: the request to send and, once the answer comes, the
/// check of it (RFC 6455 section 4.1).
///
/// Build it, write [`request_bytes`](Self::request_bytes), then feed the bytes
/// received to [`check_response`](Self::check_response) until it is complete.
/// See the crate documentation for a round trip with a server.
#[derive(Clone, Debug)]
pub struct ClientHandshake {
    url: WsUrl,
    key: String,
    expected_accept: String,
    subprotocols: Vec<String>,
    extension_names: Vec<String>,
    limits: Limits,
    request: Vec<u8>,
}

impl ClientHandshake {
    /// A handshake for `url` (`ws://` or `wss://`) with a fresh random key
    /// from `rand`'s thread-local CSPRNG (section 4.1 item 7, section 10.3).
    #[cfg(feature = "rand")]
    pub fn new(url: &str, config: ClientConfig) -> Result<Self, BuildError> {
        Self::with_key(url, config, rand::random::<[u8; 16]>())
    }

    /// A handshake for `url` whose `Sec-WebSocket-Key` is the base64 of
    /// `nonce`. The nonce must be fresh and random for every connection
    /// (section 4.1 item 7); a fixed one is for tests.
    pub fn with_key(url: &str, config: ClientConfig, nonce: [u8; 16]) -> Result<Self, BuildError> {
        Self::for_url(WsUrl::parse(url)?, config, nonce)
    }

    /// [`with_key`](Self::with_key) for a URL already parsed.
    pub fn for_url(url: WsUrl, config: ClientConfig, nonce: [u8; 16]) -> Result<Self, BuildError> {
        config.validate(RESERVED_IN_REQUEST)?;
        let key = encode_key(nonce);
        let mut request = Vec::with_capacity(256);
        request.extend_from_slice(b"GET ");
        request.extend_from_slice(url.resource_name().as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\n");
        write_header(&mut request, "Host", &url.host_header());
        write_header(&mut request, "Upgrade", "websocket");
        write_header(&mut request, "Connection", "Upgrade");
        write_header(&mut request, "Sec-WebSocket-Key", &key);
        write_header(&mut request, "Sec-WebSocket-Version", WEBSOCKET_VERSION);
        if let Some(origin) = &config.origin {
            write_header(&mut request, "Origin", origin);
        }
        if !config.subprotocols.is_empty() {
            write_header(
                &mut request,
                "Sec-WebSocket-Protocol",
                &config.subprotocols.join(", "),
            );
        }
        if !config.extensions.is_empty() {
            write_header(
                &mut request,
                "Sec-WebSocket-Extensions",
                &extension::join(&config.extensions),
            );
        }
        for (name, value) in &config.headers {
            write_header(&mut request, name, value);
        }
        request.extend_from_slice(b"\r\n");
        let extension_names = config.extension_names();
        Ok(Self {
            expected_accept: accept_key(&key),
            url,
            key,
            subprotocols: config.subprotocols,
            extension_names,
            limits: config.limits,
            request,
        })
    }

    /// The URL this handshake is for: connect to its host and port, with TLS
    /// if [`is_secure`](WsUrl::is_secure).
    pub fn url(&self) -> &WsUrl {
        &self.url
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `Sec-WebSocket-Accept` the server must answer with (section 4.1).
    pub fn expected_accept(&self) -> &str {
        &self.expected_accept
    }

    /// The limits on the server's answer (its head's size, its header
    /// fields).
    pub fn head_limits(&self) -> &Limits {
        &self.limits
    }

    /// The whole request head to write to the server, ending with the empty
    /// line (section 4.1).
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    /// Checks the server's answer, from the bytes received so far (RFC 6455
    /// section 4.1, the checks after "once the client's opening handshake has
    /// been sent").
    ///
    /// - `Ok(Status::Partial)`: the head has not ended and nothing is wrong
    ///   yet; append more bytes and call again with the whole buffer.
    /// - `Ok(Status::Complete(accepted, used))`: the server switched; its head
    ///   (after any interim 1xx answers, such as 103 Early Hints, which are
    ///   passed over as RFC 9110 section 15.2 asks) is `buf[..used]`, and any
    ///   bytes after it are its first frames: hand them to the connection.
    /// - `Err(e)`: fail the connection. This happens as soon as the bytes show
    ///   it: a TLS record or non-HTTP bytes at the start, an over-limit head
    ///   while still partial.
    pub fn check_response(&self, buf: &[u8]) -> Result<Status<Accepted>, ResponseError> {
        match head::sniff_tls(buf) {
            Sniff::Tls => return Err(ResponseError::TlsAnswer),
            Sniff::NeedMore => return Ok(Status::Partial),
            Sniff::Other => {}
        }
        // Only the bytes within the head limit are looked at, so that any
        // split of the input gives the same verdict (fuzz-found). Interim
        // answers (1xx but 101, e.g. 103 Early Hints) come before the final
        // one and count toward the limit.
        let window = head::window(buf, &self.limits);
        let mut start = 0;
        loop {
            let rest = window.get(start..).unwrap_or_default();
            let prefix = b"HTTP/";
            let n = rest.len().min(prefix.len());
            if rest.get(..n) != prefix.get(..n) {
                // quoted from within the limit too, so any split gives the
                // same words
                return Err(ResponseError::NotHttp {
                    found: snippet(rest.get(..32).unwrap_or(rest)),
                });
            }
            let mut slots = head::header_slots(&self.limits);
            let mut res = httparse::Response::new(&mut slots);
            // a user agent takes a folded line (obs-fold) in a response
            // and reads it as spaces (RFC 9112 section 5.2)
            let parsed = httparse::ParserConfig::default()
                .allow_obsolete_multiline_headers_in_responses(true)
                .parse_response(&mut res, rest);
            let used = match parsed {
                Ok(httparse::Status::Complete(used)) => used,
                Ok(httparse::Status::Partial) if buf.len() > self.limits.max_head_len => {
                    return Err(ResponseError::HeadTooLarge {
                        limit: self.limits.max_head_len,
                    });
                }
                Ok(httparse::Status::Partial) => return Ok(Status::Partial),
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(ResponseError::TooManyHeaders {
                        limit: self.limits.max_headers,
                    });
                }
                Err(httparse::Error::Version) => {
                    return Err(ResponseError::HttpVersion {
                        found: head::version_in_start_line(rest, true),
                    });
                }
                Err(e) => {
                    return Err(ResponseError::Malformed {
                        detail: head::describe(e),
                    });
                }
            };
            let status = res.code.unwrap_or_default();
            if (100..200).contains(&status) && status != 101 {
                // an interim answer: a client must take it and wait for
                // the final one (RFC 9110 section 15.2)
                start += used;
                continue;
            }
            let headers = Headers::from_httparse(res.headers);
            if status != 101 {
                return Err(ResponseError::UnexpectedStatus {
                    status,
                    reason: res.reason.unwrap_or_default().chars().take(64).collect(),
                    headers,
                });
            }
            if res.version != Some(1) {
                return Err(ResponseError::HttpVersion {
                    found: head::version_in_start_line(rest, true),
                });
            }
            let accepted = self.check_headers(headers)?;
            return Ok(Status::Complete(accepted, start + used));
        }
    }

    /// Steps 2-6 of the response checks of section 4.1.
    fn check_headers(&self, headers: Headers) -> Result<Accepted, ResponseError> {
        if !headers.contains("upgrade") {
            return Err(ResponseError::MissingUpgrade);
        }
        let only_websocket = {
            let mut upgrade = headers.list("upgrade").peekable();
            upgrade.peek().is_some() && upgrade.all(|t| t.eq_ignore_ascii_case(b"websocket"))
        };
        if !only_websocket {
            return Err(ResponseError::WrongUpgrade {
                found: headers.joined("upgrade"),
            });
        }
        if !headers.contains("connection") {
            return Err(ResponseError::MissingConnection);
        }
        if !headers.list_contains("connection", "upgrade") {
            return Err(ResponseError::WrongConnection {
                found: headers.joined("connection"),
            });
        }
        let accept = match headers.count("sec-websocket-accept") {
            0 => return Err(ResponseError::MissingAccept),
            1 => headers.get("sec-websocket-accept").unwrap_or_default(),
            count => {
                return Err(ResponseError::Duplicate {
                    name: "Sec-WebSocket-Accept",
                    count,
                });
            }
        };
        if accept != self.expected_accept.as_bytes() {
            return Err(ResponseError::WrongAccept {
                expected: self.expected_accept.clone(),
                found: snippet(accept),
            });
        }
        check_choice(&self.subprotocols, &self.extension_names, headers)
    }
}

/// The response checks of RFC 6455 section 4.1 steps 5 and 6, shared by
/// every way of opening a WebSocket (the 101, and the 2xx of an extended
/// CONNECT, RFC 8441 section 5): a subprotocol and extensions among our
/// offers.
pub(crate) fn check_choice(
    subprotocols: &[String],
    extension_names: &[String],
    headers: Headers,
) -> Result<Accepted, ResponseError> {
    let subprotocol = match headers.count("sec-websocket-protocol") {
        0 => None,
        1 => {
            let mut list = headers.list("sec-websocket-protocol");
            let (Some(p), None) = (list.next(), list.next()) else {
                return Err(ResponseError::MalformedSubprotocol {
                    found: headers.joined("sec-websocket-protocol"),
                });
            };
            if !subprotocols.iter().any(|o| o.as_bytes() == p) {
                return Err(ResponseError::UnrequestedSubprotocol {
                    found: snippet(p),
                    offered: subprotocols.to_vec(),
                });
            }
            Some(String::from_utf8_lossy(p).into_owned())
        }
        count => {
            return Err(ResponseError::Duplicate {
                name: "Sec-WebSocket-Protocol",
                count,
            });
        }
    };
    let extensions =
        extension::parse(headers.get_all("sec-websocket-extensions")).map_err(|detail| {
            ResponseError::MalformedExtensions {
                found: headers.joined("sec-websocket-extensions"),
                detail,
            }
        })?;
    for e in &extensions {
        if !extension_names.iter().any(|n| n == e.name()) {
            return Err(ResponseError::UnrequestedExtension {
                name: e.name().to_owned(),
                offered: extension_names.to_vec(),
            });
        }
    }
    Ok(Accepted {
        subprotocol,
        extensions,
        headers,
    })
}

/// A server's 101 that passed every check of RFC 6455 section 4.1: the
/// connection is open, with this subprotocol and these extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    subprotocol: Option<String>,
    extensions: Vec<Extension>,
    headers: Headers,
}

impl Accepted {
    /// The subprotocol the server chose from our offers, if any (section 4.1).
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The extensions the server accepted, in the order they apply, with the
    /// parameters of its answer (section 9.1), all among our offers.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// Every header of the response (e.g. `Set-Cookie`), in order.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
}
