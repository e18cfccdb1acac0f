//! The server side of the opening handshake (RFC 6455 section 4.2): parse and
//! check the client's request, then answer with a 101 or a refusal.
//!
//! Owns the request checks of section 4.2.1, the [`Request`] they yield, and
//! the bytes of the server's answers (section 4.2.2). It never reads a socket,
//! never keeps a buffer between calls (the caller accumulates bytes and calls
//! [`parse_request`] again) and never reads more than the limits allow. It
//! never decides whether a subprotocol, an extension or an Origin is welcome:
//! it exposes them, and the application chooses.

use crate::accept::{WEBSOCKET_VERSION, accept_key, check_key};
use crate::extension::{self, Extension};
use crate::head::{self, Sniff};
use crate::headers::{
    Headers, check_extra_header, is_token, is_visible_ascii, snippet, write_header,
};
use crate::{BuildError, Limits, RequestError, Status};

/// Parses and checks a client's upgrade request (RFC 6455 sections 4.1 and
/// 4.2.1) from the bytes received so far.
///
/// - `Ok(Status::Partial)`: the head has not ended and nothing is wrong yet;
///   append more bytes and call again with the whole buffer.
/// - `Ok(Status::Complete(request, used))`: a valid upgrade request whose head
///   is `buf[..used]`; any bytes after it are the client's first frames and
///   belong to the connection.
/// - `Err(e)`: refuse: write [`e.response()`](RequestError::response) and
///   close. This happens as soon as the bytes show it: a TLS ClientHello at
///   the first two bytes, an over-limit head while still partial.
///
/// ```
/// use tether_handshake::{Limits, Status, parse_request};
/// let head = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
///              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///              Sec-WebSocket-Version: 13\r\n\r\n";
/// assert_eq!(parse_request(&head[..40], &Limits::default()), Ok(Status::Partial));
/// let (request, used) = parse_request(head, &Limits::default()).unwrap().complete().unwrap();
/// assert_eq!(used, head.len());
/// assert_eq!(request.path(), "/chat");
/// ```
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Status<Request>, RequestError> {
    match head::sniff_tls(buf) {
        Sniff::Tls => return Err(RequestError::TlsClientHello),
        Sniff::NeedMore => return Ok(Status::Partial),
        Sniff::Other => {}
    }
    let window = head::window(buf, limits);
    // Header slots on the stack, left uninitialised for httparse to fill
    // (safe API), unless the limit allows more than a browser ever sends.
    let most = head::header_slot_count(limits);
    let mut stack = [const { core::mem::MaybeUninit::uninit() }; head::STACK_HEADER_SLOTS];
    let mut heap = Vec::new();
    let slots = match stack.get_mut(..most) {
        Some(slots) => slots,
        None => {
            heap.resize_with(most, core::mem::MaybeUninit::uninit);
            &mut heap[..]
        }
    };
    let mut req = httparse::Request::new(&mut []);
    let used = match req.parse_with_uninit_headers(window, slots) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head_len => {
            return Err(RequestError::HeadTooLarge {
                limit: limits.max_head_len,
            });
        }
        Ok(httparse::Status::Partial) => return Ok(Status::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        Err(httparse::Error::Version) => {
            return Err(RequestError::HttpVersion {
                found: head::version_in_start_line(window, false),
            });
        }
        Err(httparse::Error::HeaderName) if head::has_obs_fold(window) => {
            return Err(RequestError::Malformed {
                detail: "a header line is folded onto the next (obs-fold: a line starting with a space or tab), which RFC 9112 section 5.2 does not accept in a request",
            });
        }
        Err(e) => {
            return Err(RequestError::Malformed {
                detail: head::describe(e),
            });
        }
    };
    let method = req.method.unwrap_or_default();
    if method != "GET" {
        return Err(RequestError::Method {
            found: snippet(method.as_bytes()),
        });
    }
    if req.version != Some(1) {
        return Err(RequestError::HttpVersion {
            found: head::version_in_start_line(window, false),
        });
    }
    let target = req.path.unwrap_or_default();
    let (resource, authority) = target_parts(target).ok_or_else(|| RequestError::Target {
        found: snippet(target.as_bytes()),
    })?;
    let headers = Headers::from_httparse(req.headers);
    let request = Request::check(resource, authority, headers)?;
    Ok(Status::Complete(request, used))
}

/// The resource name (path and query) of a request target in origin form
/// (`/chat?x`) or absolute form (`ws://host/chat?x`, RFC 9112 section 3.2.2;
/// an empty path there means `/`), and in absolute form its authority (the
/// host, and port when given; without any `userinfo@`), which a server
/// takes instead of the `Host` header (RFC 9112 section 3.2.2).
fn target_parts(target: &str) -> Option<(String, Option<&str>)> {
    // no fragment: a WebSocket URI has none (RFC 6455 section 3), and
    // neither form of a request target does (RFC 9112 section 3.2)
    if target.contains('#') {
        return None;
    }
    let resource = resource_name(target)?;
    if target.starts_with('/') {
        return Some((resource, None));
    }
    let rest = target.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    (!host.is_empty() && is_visible_ascii(host.as_bytes())).then_some((resource, Some(host)))
}

/// The resource name of a request target (see [`target_parts`]).
fn resource_name(target: &str) -> Option<String> {
    if target.starts_with('/') {
        return Some(target.to_owned());
    }
    let (scheme, rest) = target.split_once("://")?;
    if !["ws", "wss", "http", "https"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return None;
    }
    let start = rest.find(['/', '?']).unwrap_or(rest.len());
    if start == 0 {
        // No authority.
        return None;
    }
    let resource = rest.get(start..)?;
    if resource.starts_with('/') {
        Some(resource.to_owned())
    } else {
        Some(format!("/{resource}"))
    }
}

/// A client's upgrade request that passed every check of RFC 6455 section
/// 4.2.1, with what the application needs to accept or refuse it: the
/// resource, the Origin, the offered subprotocols and extensions, and all
/// headers (cookies, authorization).
///
/// Accept with [`Request::accept`]; refuse with a [`Refusal`] (e.g. 403 for
/// an Origin that is not welcome, section 4.2.2 item 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    resource: String,
    host: String,
    key: String,
    subprotocols: Vec<String>,
    extensions: Vec<Extension>,
    headers: Headers,
}

impl Request {
    /// Runs the header checks of section 4.2.1 items 4-10. `authority` is
    /// an absolute-form target's: the host then (RFC 9112 section 3.2.2:
    /// the `Host` header, still required, is ignored).
    fn check(
        resource: String,
        authority: Option<&str>,
        headers: Headers,
    ) -> Result<Self, RequestError> {
        let header = single(&headers, "host", "Host")?.ok_or(RequestError::MissingHost)?;
        if header.is_empty() {
            return Err(RequestError::MissingHost);
        }
        if !is_visible_ascii(header) {
            return Err(RequestError::InvalidHeaderValue {
                name: "Host",
                found: snippet(header),
            });
        }
        let host = authority.map_or(header, str::as_bytes);
        if !headers.contains("upgrade") {
            return Err(RequestError::MissingUpgrade);
        }
        if !headers.list_contains("upgrade", "websocket") {
            return Err(RequestError::WrongUpgrade {
                found: headers.joined("upgrade"),
            });
        }
        if !headers.contains("connection") {
            return Err(RequestError::MissingConnection);
        }
        if !headers.list_contains("connection", "upgrade") {
            return Err(RequestError::WrongConnection {
                found: headers.joined("connection"),
            });
        }
        if let Some(te) = headers.get_all("transfer-encoding").next() {
            return Err(RequestError::Body {
                found: format!("Transfer-Encoding: {}", snippet(te)),
            });
        }
        if let Some(len) = headers
            .get_all("content-length")
            .find(|v| v.trim_ascii() != b"0")
        {
            return Err(RequestError::Body {
                found: format!("Content-Length: {}", snippet(len)),
            });
        }
        // the version first: a client of another version (hixie-76 sends
        // no Sec-WebSocket-Key) is told the one we speak (426, section 4.4)
        let (subprotocols, extensions) = check_websocket_fields(&headers)?;
        let key = single(&headers, "sec-websocket-key", "Sec-WebSocket-Key")?
            .ok_or(RequestError::MissingKey)?;
        check_key(key).map_err(|decoded_len| RequestError::BadKey {
            found: snippet(key),
            decoded_len,
        })?;
        // Both were checked to be ASCII above.
        let host = String::from_utf8_lossy(host).into_owned();
        let key = String::from_utf8_lossy(key).into_owned();
        Ok(Self {
            resource,
            host,
            key,
            subprotocols,
            extensions,
            headers,
        })
    }

    /// A request that came as an extended CONNECT (RFC 8441, RFC 9220),
    /// whose pseudo-headers the caller checked: `host` is its `:authority`,
    /// and there is no key.
    pub(crate) fn from_connect(
        resource: String,
        host: String,
        headers: Headers,
    ) -> Result<Self, RequestError> {
        let (subprotocols, extensions) = check_websocket_fields(&headers)?;
        Ok(Self {
            resource,
            host,
            key: String::new(),
            subprotocols,
            extensions,
            headers,
        })
    }

    /// The request target's path and query, as sent (the resource name of
    /// section 3), e.g. `/chat?room=1`. An absolute-form target is reduced to it.
    pub fn resource_name(&self) -> &str {
        &self.resource
    }

    /// The path, without the query, e.g. `/chat`.
    pub fn path(&self) -> &str {
        self.resource
            .split_once('?')
            .map_or(self.resource.as_str(), |(p, _)| p)
    }

    /// The query, without the `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        self.resource.split_once('?').map(|(_, q)| q)
    }

    /// The host the request is for (section 4.1 item 4), e.g.
    /// `example.com:9001`: the `Host` header, or, for an absolute-form
    /// target (`GET ws://example.com:9001/chat`), the target's authority,
    /// which RFC 9112 section 3.2.2 puts before the header.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The `Origin` header, sent by browsers (section 4.1 item 8; RFC 6454).
    /// A server that serves browsers should check it (section 10.2) and answer
    /// an unwelcome one with [`Refusal::forbidden`].
    pub fn origin(&self) -> Option<&str> {
        self.headers.get_str("origin")
    }

    /// The `Sec-WebSocket-Key` as sent: the base64 of 16 bytes.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `Sec-WebSocket-Accept` value the 101 must carry (section 4.2.2).
    pub fn accept_key(&self) -> String {
        accept_key(&self.key)
    }

    /// The subprotocols the client offered, in its order of preference
    /// (section 4.1 item 10). Empty if none.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The extensions the client offered, in order, with their parameters
    /// (section 9.1). The same name may appear more than once, as
    /// alternatives (e.g. two permessage-deflate offers).
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// Every header of the request, in order.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first subprotocol in the client's order of preference that is in
    /// `supported`, or `None` if there is no overlap (then accept without a
    /// subprotocol, or refuse: section 4.2.2 leaves it to the server).
    pub fn pick_subprotocol(&self, supported: &[&str]) -> Option<&str> {
        self.subprotocols
            .iter()
            .map(String::as_str)
            .find(|p| supported.contains(p))
    }

    /// Checks the application's choice against the offers: a subprotocol
    /// and extensions the client offered, extra headers that can be
    /// written and are not `reserved`.
    pub(crate) fn check_choice(
        &self,
        options: &AcceptOptions,
        reserved: &[&str],
    ) -> Result<(), BuildError> {
        if let Some(chosen) = &options.subprotocol
            && !self.subprotocols.contains(chosen)
        {
            return Err(BuildError::SubprotocolNotOffered {
                chosen: chosen.clone(),
                offered: self.subprotocols.clone(),
            });
        }
        for ext in &options.extensions {
            ext.validate()?;
            if !self.extensions.iter().any(|o| o.name() == ext.name()) {
                return Err(BuildError::ExtensionNotOffered {
                    name: ext.name().to_owned(),
                    offered: self
                        .extensions
                        .iter()
                        .map(|e| e.name().to_owned())
                        .collect(),
                });
            }
        }
        for (name, value) in &options.headers {
            check_extra_header(name, value, reserved)?;
        }
        Ok(())
    }

    /// The 101 Switching Protocols response accepting this request (RFC 6455
    /// section 4.2.2 item 5): `Upgrade`, `Connection`, `Sec-WebSocket-Accept`,
    /// then the chosen subprotocol, the accepted extensions and the extra
    /// headers of `options`.
    ///
    /// Fails, without writing anything, if the subprotocol or an extension was
    /// not offered by the client, or a value cannot be written.
    pub fn accept(&self, options: &AcceptOptions) -> Result<Vec<u8>, BuildError> {
        self.check_choice(options, RESERVED_IN_101)?;
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        write_header(&mut out, "Upgrade", "websocket");
        write_header(&mut out, "Connection", "Upgrade");
        write_header(&mut out, "Sec-WebSocket-Accept", &self.accept_key());
        if let Some(p) = &options.subprotocol {
            write_header(&mut out, "Sec-WebSocket-Protocol", p);
        }
        if !options.extensions.is_empty() {
            write_header(
                &mut out,
                "Sec-WebSocket-Extensions",
                &extension::join(&options.extensions),
            );
        }
        for (name, value) in &options.headers {
            write_header(&mut out, name, value);
        }
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }
}

/// Headers the 101 writes itself, or that a 101 must not carry
/// (RFC 9110 section 8.6: no Content-Length in a 1xx).
const RESERVED_IN_101: &[&str] = &[
    "upgrade",
    "connection",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

/// The checks of RFC 6455 section 4.2.1 items 6-10 that every way of
/// opening a WebSocket shares (HTTP/1.1 upgrade, extended CONNECT over
/// HTTP/2 and HTTP/3, RFC 8441 section 5): the Origin, version 13, the
/// subprotocol and extension offers. Returns the offers.
pub(crate) fn check_websocket_fields(
    headers: &Headers,
) -> Result<(Vec<String>, Vec<Extension>), RequestError> {
    if let Some(origin) = single(headers, "origin", "Origin")?
        && !is_visible_ascii(origin)
    {
        return Err(RequestError::InvalidHeaderValue {
            name: "Origin",
            found: snippet(origin),
        });
    }
    let version = single(headers, "sec-websocket-version", "Sec-WebSocket-Version")?
        .ok_or(RequestError::MissingVersion)?;
    if version != WEBSOCKET_VERSION.as_bytes() {
        return Err(RequestError::UnsupportedVersion {
            found: snippet(version),
        });
    }
    let mut subprotocols = Vec::new();
    for p in headers.list("sec-websocket-protocol") {
        if !is_token(p) {
            return Err(RequestError::MalformedSubprotocols {
                found: headers.joined("sec-websocket-protocol"),
            });
        }
        subprotocols.push(String::from_utf8_lossy(p).into_owned());
    }
    let extensions =
        extension::parse(headers.get_all("sec-websocket-extensions")).map_err(|detail| {
            RequestError::MalformedExtensions {
                found: headers.joined("sec-websocket-extensions"),
                detail,
            }
        })?;
    Ok((subprotocols, extensions))
}

/// The value of a header that must appear at most once (`None` if absent).
fn single<'a>(
    headers: &'a Headers,
    lookup: &str,
    name: &'static str,
) -> Result<Option<&'a [u8]>, RequestError> {
    match headers.count(lookup) {
        0 | 1 => Ok(headers.get(lookup)),
        count => Err(RequestError::Duplicate { name, count }),
    }
}

/// What the server puts in its 101 beyond the required fields (RFC 6455
/// section 4.2.2 item 5): the chosen subprotocol, the accepted extensions
/// and extra headers (e.g. `Set-Cookie`).
///
/// ```
/// use tether_handshake::{AcceptOptions, Extension};
/// let options = AcceptOptions::new()
///     .subprotocol("chat")
///     .extension(Extension::new("permessage-deflate"))
///     .header("Set-Cookie", "session=1");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptOptions {
    pub(crate) subprotocol: Option<String>,
    pub(crate) extensions: Vec<Extension>,
    pub(crate) headers: Vec<(String, String)>,
}

impl AcceptOptions {
    /// No subprotocol, no extensions, no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accept with this subprotocol; it must be one the client offered
    /// (section 4.2.2 item 5.4).
    #[must_use]
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.subprotocol = Some(name.into());
        self
    }

    /// Accept this extension, with the parameters of the answer; its name must
    /// be one the client offered (section 9.1). Order matters: it is the order
    /// extensions apply to frames. For a 101 written here only: tether's
    /// server handshakes (`tether::upgrade`, and the adapters' `accept_with`)
    /// negotiate the extensions their `Config` switches on and refuse one
    /// chosen here (`BuildError::ExtensionNotRun`), since the connection
    /// could not run it.
    #[must_use]
    pub fn extension(mut self, extension: Extension) -> Self {
        self.extensions.push(extension);
        self
    }

    /// The extensions accepted so far, in order.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// Add a header. It must not be one the 101 writes itself (`Upgrade`,
    /// `Connection`, `Sec-WebSocket-*`) nor `Content-Length` or
    /// `Transfer-Encoding`.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// An HTTP error response refusing the upgrade (RFC 6455 section 4.2.2: "an
/// appropriate error code (such as 400 Bad Request)"), with a short
/// plain-text body, `Content-Length`, and `Connection: close`.
///
/// [`RequestError::refusal`] gives the one for a bad request; build others for
/// the application's own reasons:
///
/// ```
/// use tether_handshake::Refusal;
/// let bytes = Refusal::forbidden("origin not allowed").to_bytes();
/// assert!(bytes.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
/// let bytes = Refusal::new(503, "try again later").unwrap()
///     .with_header("Retry-After", "5").unwrap()
///     .to_bytes();
/// assert!(bytes.starts_with(b"HTTP/1.1 503 Service Unavailable\r\n"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

/// Headers a refusal writes itself.
const RESERVED_IN_REFUSAL: &[&str] = &["content-length", "transfer-encoding", "connection"];

impl Refusal {
    /// A refusal with `status` (400-599) and `body` as its plain-text reason.
    pub fn new(status: u16, body: impl Into<String>) -> Result<Self, BuildError> {
        if !(400..=599).contains(&status) {
            return Err(BuildError::InvalidStatus { status });
        }
        Ok(Self {
            status,
            body: body.into(),
            headers: Vec::new(),
        })
    }

    /// 400 Bad Request with `body` as the reason.
    pub fn bad_request(body: impl Into<String>) -> Self {
        Self::internal(400, body.into(), &[])
    }

    /// 403 Forbidden with `body` as the reason: e.g. for an Origin the server
    /// does not serve (section 4.2.2 item 4, section 10.2).
    pub fn forbidden(body: impl Into<String>) -> Self {
        Self::internal(403, body.into(), &[])
    }

    /// 503 Service Unavailable with `body` as the reason: e.g. a server at
    /// its connection limit.
    pub fn service_unavailable(body: impl Into<String>) -> Self {
        Self::internal(503, body.into(), &[])
    }

    pub(crate) fn internal(status: u16, body: String, headers: &[(&str, &str)]) -> Self {
        Self {
            status,
            body,
            headers: headers
                .iter()
                .map(|&(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// This refusal with one more header. `Content-Length`,
    /// `Transfer-Encoding` and `Connection` are written by the refusal itself.
    pub fn with_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, BuildError> {
        let (name, value) = (name.into(), value.into());
        check_extra_header(&name, &value, RESERVED_IN_REFUSAL)?;
        self.headers.push((name, value));
        Ok(self)
    }

    /// The status code.
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase for the status (RFC 9110 section 15), or `""`.
    pub const fn reason_phrase(&self) -> &'static str {
        reason_phrase(self.status)
    }

    /// The plain-text body.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The extra headers, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The whole response: status line, headers, `Content-Type: text/plain`,
    /// `Content-Length`, `Connection: close` (with `Upgrade` too when an
    /// `Upgrade` header is present, RFC 9110 section 7.8), and the body
    /// followed by a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.body.len());
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.reason_phrase().as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut has_upgrade = false;
        for (name, value) in &self.headers {
            has_upgrade |= name.eq_ignore_ascii_case("upgrade");
            write_header(&mut out, name, value);
        }
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            write_header(&mut out, "Content-Type", "text/plain; charset=utf-8");
        }
        write_header(
            &mut out,
            "Content-Length",
            &(self.body.len() + 1).to_string(),
        );
        let connection = if has_upgrade {
            "Upgrade, close"
        } else {
            "close"
        };
        write_header(&mut out, "Connection", connection);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body.as_bytes());
        out.push(b'\n');
        out
    }
}

/// The reason phrases of RFC 9110 section 15 (and RFC 6585) for the statuses
/// a refusal is likely to use; `""` for the rest, which HTTP allows.
pub(crate) const fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9112_3_2_target_forms() {
        let r = |t| resource_name(t);
        assert_eq!(r("/chat?x=1").as_deref(), Some("/chat?x=1"));
        assert_eq!(r("ws://h:1/chat?x").as_deref(), Some("/chat?x"));
        assert_eq!(r("HTTPS://h/").as_deref(), Some("/"));
        assert_eq!(r("ws://h").as_deref(), Some("/"));
        assert_eq!(r("ws://h?q").as_deref(), Some("/?q"));
        assert_eq!(r("*"), None);
        assert_eq!(r("h:80"), None);
        assert_eq!(r("ftp://h/x"), None);
        assert_eq!(r("ws:///x"), None);
    }

    #[test]
    fn rfc9112_3_2_2_an_absolute_form_target_names_the_host() {
        let parts = |t| target_parts(t).map(|(r, a)| (r, a.map(str::to_owned)));
        assert_eq!(parts("/chat"), Some(("/chat".into(), None)));
        assert_eq!(
            parts("ws://example.com:8080/chat?x"),
            Some(("/chat?x".into(), Some("example.com:8080".into())))
        );
        assert_eq!(
            parts("ws://user@example.com/"),
            Some(("/".into(), Some("example.com".into())))
        );
        assert_eq!(parts("ws://user@/x"), None);
    }

    /// RFC 9112 section 3.2.2: with an absolute-form target, the server
    /// takes its authority as the host and ignores the `Host` header,
    /// which is still required.
    #[test]
    fn rfc9112_3_2_2_the_host_of_an_absolute_form_request_is_its_target_s() {
        let request = |target: &str, host: Option<&str>| {
            let mut head = format!(
                "GET {target} HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            );
            if let Some(host) = host {
                head.push_str(&format!("Host: {host}\r\n"));
            }
            head.push_str("\r\n");
            parse_request(head.as_bytes(), &Limits::new())
        };
        match request("ws://right.example:9001/chat", Some("wrong.example")) {
            Ok(Status::Complete(r, _)) => {
                assert_eq!(r.host(), "right.example:9001");
                assert_eq!(r.resource_name(), "/chat");
            }
            other => panic!("{other:?}"),
        }
        match request("/chat", Some("origin.example")) {
            Ok(Status::Complete(r, _)) => assert_eq!(r.host(), "origin.example"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            request("ws://right.example/chat", None),
            Err(RequestError::MissingHost)
        ));
    }
}
