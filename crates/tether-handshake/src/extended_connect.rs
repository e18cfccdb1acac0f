//! The opening handshake of a WebSocket over HTTP/2 (RFC 8441) and HTTP/3
//! (RFC 9220): an extended CONNECT on one stream, answered with a 2xx.
//!
//! Owns the request's pseudo-headers and headers (lower-case, as HTTP/2 and
//! HTTP/3 require), the server's check of such a request, its answer and
//! refusals, and the client's check of the answer. The request and the
//! answers are `http` crate values ([`http::Request`], [`http::Response`]),
//! which h2, h3 and hyper all take, so one handshake serves every stack;
//! the one field those types cannot hold is `:protocol`, which each stack
//! carries in an extension type of its own (`h2::ext::Protocol`,
//! `h3::ext::Protocol`): the client sets it to [`PROTOCOL`], the server
//! passes what it received to [`parse_connect_request`].
//!
//! What differs from the HTTP/1.1 upgrade (RFC 8441 section 5): the method
//! is CONNECT, `:protocol` replaces `Upgrade` and `Connection`, there is no
//! `Sec-WebSocket-Key` and no `Sec-WebSocket-Accept`, and any 2xx accepts.
//! Everything else (Origin, `Sec-WebSocket-Version: 13`, subprotocols,
//! extensions) is checked by the same code as the upgrade, with the same
//! named errors. It never does I/O: sending the request, waiting for the
//! peer's `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 section 3) and the
//! stream itself are the HTTP stack's.
//!
//! ```
//! use tether_handshake::{AcceptOptions, ClientConfig, ConnectHandshake, Limits, parse_connect_request};
//!
//! let client = ConnectHandshake::new("wss://example.com/chat", ClientConfig::new().subprotocol("chat"))?;
//! let request = client.request()?; // send with :protocol websocket
//! let offer = parse_connect_request(&request, Some("websocket"), &Limits::new())?;
//! assert_eq!(offer.path(), "/chat");
//! let answer = offer.accept_connect(&AcceptOptions::new().subprotocol("chat"))?;
//! assert_eq!(answer.status(), 200);
//! let accepted = client.check_response(&answer)?;
//! assert_eq!(accepted.subprotocol(), Some("chat"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};

use crate::Limits;
use crate::accept::WEBSOCKET_VERSION;
use crate::client::{Accepted, ClientConfig, check_choice};
use crate::extension;
use crate::headers::{Headers, snippet};
use crate::server::{AcceptOptions, Refusal, Request};
use crate::url::WsUrl;
use crate::{BuildError, RequestError, ResponseError};

/// The value of the `:protocol` pseudo-header that opens a WebSocket (RFC
/// 8441 section 5, RFC 9220 section 3).
pub const PROTOCOL: &str = "websocket";

/// Headers that are connection-specific, which HTTP/2 and HTTP/3 forbid
/// (RFC 9113 section 8.2.2, RFC 9114 section 4.2): `Upgrade` and
/// `Connection` above all, which an extended CONNECT replaces.
const CONNECTION_SPECIFIC: &[&str] = &[
    "connection",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];

/// Headers an extended CONNECT writes itself or must not carry.
const RESERVED_IN_CONNECT: &[&str] = &[
    "host",
    "origin",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "sec-websocket-accept",
    "content-length",
    "connection",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
];

/// Headers the 2xx answer writes itself or must not carry.
const RESERVED_IN_ANSWER: &[&str] = &[
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "connection",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];

/// One client's extended CONNECT: the request to send on a new stream and,
/// once the answer comes, the check of it (RFC 8441 sections 4-5, RFC 9220
/// section 3).
#[derive(Clone, Debug)]
pub struct ConnectHandshake {
    url: WsUrl,
    subprotocols: Vec<String>,
    extension_names: Vec<String>,
    headers: Vec<(String, String)>,
}

impl ConnectHandshake {
    /// The extended CONNECT for `url` (`ws://` becomes `:scheme http`,
    /// `wss://` `:scheme https`) with the subprotocols, extension offers,
    /// Origin and headers of `config`.
    ///
    /// # Errors
    /// [`BuildError`] for a bad URL, a subprotocol or extension that is
    /// not a token, a header that cannot be written, or one the handshake
    /// writes itself or HTTP/2 forbids (`Upgrade`, `Connection`, ...).
    pub fn new(url: &str, config: ClientConfig) -> Result<Self, BuildError> {
        Self::for_url(WsUrl::parse(url)?, config)
    }

    /// [`new`](Self::new) for a URL already parsed.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn for_url(url: WsUrl, config: ClientConfig) -> Result<Self, BuildError> {
        config.validate(RESERVED_IN_CONNECT)?;
        let mut headers = vec![(
            "sec-websocket-version".to_owned(),
            WEBSOCKET_VERSION.to_owned(),
        )];
        if let Some(origin) = &config.origin {
            headers.push(("origin".to_owned(), origin.clone()));
        }
        if !config.subprotocols.is_empty() {
            headers.push((
                "sec-websocket-protocol".to_owned(),
                config.subprotocols.join(", "),
            ));
        }
        if !config.extensions.is_empty() {
            headers.push((
                "sec-websocket-extensions".to_owned(),
                extension::join(&config.extensions),
            ));
        }
        for (name, value) in &config.headers {
            headers.push((name.to_ascii_lowercase(), value.clone()));
        }
        Ok(Self {
            extension_names: config.extension_names(),
            url,
            subprotocols: config.subprotocols,
            headers,
        })
    }

    /// The URL this handshake is for.
    pub fn url(&self) -> &WsUrl {
        &self.url
    }

    /// The `:scheme`: `https` for `wss://`, `http` for `ws://` (RFC 8441
    /// section 5: the scheme of the target URI).
    pub fn scheme(&self) -> &'static str {
        if self.url.is_secure() {
            "https"
        } else {
            "http"
        }
    }

    /// The five pseudo-headers, in the order HTTP/2 sends them: `:method
    /// CONNECT`, `:protocol websocket`, `:scheme`, `:path`, `:authority`
    /// (RFC 8441 sections 4 and 5).
    pub fn pseudo_headers(&self) -> [(&'static str, String); 5] {
        [
            (":method", "CONNECT".to_owned()),
            (":protocol", PROTOCOL.to_owned()),
            (":scheme", self.scheme().to_owned()),
            (":path", self.url.resource_name().to_owned()),
            (":authority", self.url.host_header()),
        ]
    }

    /// The regular headers, names lower-case (RFC 9113 section 8.2.1):
    /// `sec-websocket-version: 13`, then the Origin, subprotocol and
    /// extension offers and the caller's headers. Never a
    /// `sec-websocket-key` (RFC 8441 section 5).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The request as an [`http::Request`]: method CONNECT, the URI's
    /// scheme, authority and path, and [`headers`](Self::headers). Send it
    /// with `:protocol` set to [`PROTOCOL`] (`h2::ext::Protocol`,
    /// `h3::ext::Protocol` in its extensions).
    ///
    /// # Errors
    /// [`BuildError::InvalidHeaderValue`] if a value cannot be an HTTP/2
    /// field (checked when built, so in practice never).
    pub fn request(&self) -> Result<http::Request<()>, BuildError> {
        let uri = Uri::builder()
            .scheme(self.scheme())
            .authority(self.url.host_header())
            .path_and_query(self.url.resource_name())
            .build()
            .map_err(|_| BuildError::InvalidHeaderValue {
                name: ":path".to_owned(),
            })?;
        let mut request = http::Request::new(());
        *request.method_mut() = Method::CONNECT;
        *request.uri_mut() = uri;
        let map = request.headers_mut();
        for (name, value) in &self.headers {
            let bad = || BuildError::InvalidHeaderValue { name: name.clone() };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let value = HeaderValue::from_str(value).map_err(|_| bad())?;
            map.append(name, value);
        }
        Ok(request)
    }

    /// Checks the server's answer (RFC 8441 section 5): a 2xx, with a
    /// subprotocol and extensions among our offers. No
    /// `Sec-WebSocket-Accept` is looked for.
    ///
    /// # Errors
    /// [`ResponseError::ConnectStatus`] for a status outside 200-299
    /// (named, with the likely cause); the subprotocol and extension
    /// errors of the HTTP/1.1 handshake.
    pub fn check_response<B>(
        &self,
        response: &http::Response<B>,
    ) -> Result<Accepted, ResponseError> {
        let headers = Headers::from_http(response.headers());
        if !response.status().is_success() {
            return Err(ResponseError::ConnectStatus {
                status: response.status().as_u16(),
                headers,
            });
        }
        check_choice(&self.subprotocols, &self.extension_names, headers)
    }
}

/// Checks an extended CONNECT a server received (RFC 8441 sections 4-5,
/// RFC 9220 section 3): `request` as the HTTP stack gives it, `protocol`
/// the value of its `:protocol` pseudo-header (`None` if absent).
///
/// Yields the same [`Request`] as the HTTP/1.1 upgrade: its
/// [`host`](Request::host) is the `:authority`, its
/// [`key`](Request::key) empty (there is none).
///
/// The header fields are held to `limits` as an HTTP/1.1 head is: at most
/// `max_headers` of them, weighing at most `max_head_len` bytes as HTTP/2
/// and HTTP/3 weigh a field section (name + value + 32 bytes each), so
/// what is copied out of the request is bounded whatever the HTTP stack
/// let through.
///
/// # Errors
/// A [`RequestError`] naming the cause: answer with
/// [`connect_refusal`].
pub fn parse_connect_request<B>(
    request: &http::Request<B>,
    protocol: Option<&str>,
    limits: &Limits,
) -> Result<Request, RequestError> {
    if request.method() != Method::CONNECT {
        return Err(RequestError::ConnectMethod {
            found: snippet(request.method().as_str().as_bytes()),
        });
    }
    let protocol = protocol.ok_or(RequestError::MissingProtocol)?;
    if !protocol.eq_ignore_ascii_case(PROTOCOL) {
        return Err(RequestError::WrongProtocol {
            found: snippet(protocol.as_bytes()),
        });
    }
    let fields = request.headers();
    // counted as HTTP/1.1 lines: HTTP/2 and HTTP/3 may send each cookie as
    // a field of its own (RFC 9113 section 8.2.3), one `Cookie` line there
    let cookies = fields.get_all(http::header::COOKIE).iter().count();
    if fields.len() - cookies.saturating_sub(1) > limits.max_headers {
        return Err(RequestError::TooManyHeaders {
            limit: limits.max_headers,
        });
    }
    let size = fields.iter().fold(0usize, |size, (name, value)| {
        size.saturating_add(name.as_str().len() + value.len() + 32)
    });
    if size > limits.max_head_len {
        return Err(RequestError::FieldsTooLarge {
            size,
            limit: limits.max_head_len,
        });
    }
    let uri = request.uri();
    if uri.scheme().is_none() {
        return Err(RequestError::MissingPseudoHeader { name: ":scheme" });
    }
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .ok_or(RequestError::MissingPseudoHeader { name: ":path" })?;
    // the origin form (RFC 9113 section 8.3.1), as a path over HTTP/1.1
    if !path.starts_with('/') {
        return Err(RequestError::Target {
            found: snippet(path.as_bytes()),
        });
    }
    let authority = uri
        .authority()
        .map(|a| a.as_str())
        .filter(|a| !a.is_empty())
        .ok_or(RequestError::MissingPseudoHeader { name: ":authority" })?;
    if let Some(name) = request
        .headers()
        .keys()
        .find(|name| CONNECTION_SPECIFIC.contains(&name.as_str()))
    {
        return Err(RequestError::ConnectionSpecificHeader {
            name: name.as_str().to_owned(),
        });
    }
    Request::from_connect(
        path.to_owned(),
        authority.to_owned(),
        Headers::from_http(request.headers()),
    )
}

impl Request {
    /// The 200 accepting an extended CONNECT (RFC 8441 section 5): the
    /// chosen subprotocol, the accepted extensions and the extra headers of
    /// `options`, names lower-case; no `Sec-WebSocket-Accept`.
    ///
    /// # Errors
    /// As [`Request::accept`]: a subprotocol or extension the client did
    /// not offer, a header that cannot be written or is connection-specific.
    pub fn accept_connect(
        &self,
        options: &AcceptOptions,
    ) -> Result<http::Response<()>, BuildError> {
        self.check_choice(options, RESERVED_IN_ANSWER)?;
        let mut fields = Vec::new();
        if let Some(p) = &options.subprotocol {
            fields.push(("sec-websocket-protocol", p.clone()));
        }
        if !options.extensions.is_empty() {
            fields.push((
                "sec-websocket-extensions",
                extension::join(&options.extensions),
            ));
        }
        let mut response = http::Response::new(());
        let map = response.headers_mut();
        let fields = fields
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .chain(options.headers.iter().cloned());
        for (name, value) in fields {
            let bad = || BuildError::InvalidHeaderValue { name: name.clone() };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let value = HeaderValue::from_str(&value).map_err(|_| bad())?;
            map.append(header, value);
        }
        Ok(response)
    }
}

impl Refusal {
    /// This refusal as an HTTP/2 or HTTP/3 answer: the status, the extra
    /// headers (names lower-case, connection-specific ones left out),
    /// `content-type: text/plain`, and the body followed by a newline.
    pub fn to_http(&self) -> http::Response<String> {
        let mut response = http::Response::new(format!("{}\n", self.body()));
        *response.status_mut() =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let map = response.headers_mut();
        for (name, value) in self.headers() {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                continue;
            };
            if !CONNECTION_SPECIFIC.contains(&name.as_str()) {
                map.append(name, value);
            }
        }
        map.entry(http::header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("text/plain; charset=utf-8"));
        response
    }
}

/// The answer refusing an extended CONNECT that failed `err`: as the
/// HTTP/1.1 refusal, except that HTTP/2 and HTTP/3 have no `426 Upgrade
/// Required` (no `Upgrade` header): a wrong or missing version is a 400
/// naming `sec-websocket-version: 13` (RFC 6455 section 4.4), a wrong
/// method a 405 allowing CONNECT.
pub fn connect_refusal(err: &RequestError) -> http::Response<String> {
    let mut response = err.refusal().to_http();
    if response.status() == StatusCode::UPGRADE_REQUIRED {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    if matches!(err, RequestError::ConnectMethod { .. }) {
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("CONNECT"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Extension;

    fn client(config: ClientConfig) -> ConnectHandshake {
        ConnectHandshake::new("wss://example.com:8443/chat?room=1", config).unwrap()
    }

    fn request(config: ClientConfig) -> http::Request<()> {
        client(config).request().unwrap()
    }

    fn answer(status: u16, headers: &[(&str, &str)]) -> http::Response<()> {
        let mut r = http::Response::new(());
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        for (n, v) in headers {
            r.headers_mut().append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        r
    }

    #[test]
    fn rfc8441_4_request_carries_scheme_path_and_authority() {
        let c = client(ClientConfig::new());
        let pseudo = c.pseudo_headers();
        assert_eq!(
            pseudo.map(|(n, v)| format!("{n} {v}")),
            [
                ":method CONNECT",
                ":protocol websocket",
                ":scheme https",
                ":path /chat?room=1",
                ":authority example.com:8443",
            ]
            .map(String::from)
        );
        let r = c.request().unwrap();
        assert_eq!(r.method(), Method::CONNECT);
        assert_eq!(r.uri().scheme_str(), Some("https"));
        assert_eq!(r.uri().path_and_query().unwrap().as_str(), "/chat?room=1");
        assert_eq!(r.uri().authority().unwrap().as_str(), "example.com:8443");
        let plain = ConnectHandshake::new("ws://h/", ClientConfig::new()).unwrap();
        assert_eq!(plain.scheme(), "http");
        assert_eq!(
            plain.request().unwrap().uri().authority().unwrap().as_str(),
            "h"
        );
    }

    #[test]
    fn rfc8441_4_request_must_not_carry_sec_websocket_key() {
        let r = request(ClientConfig::new().subprotocol("chat"));
        assert!(!r.headers().contains_key("sec-websocket-key"));
        assert!(!r.headers().contains_key("sec-websocket-accept"));
        // and the caller cannot add one
        let e = ConnectHandshake::new(
            "ws://h/",
            ClientConfig::new().header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        )
        .unwrap_err();
        assert!(matches!(e, BuildError::ReservedHeader { .. }), "{e}");
    }

    #[test]
    fn rfc8441_5_method_must_be_connect() {
        let mut r = request(ClientConfig::new());
        *r.method_mut() = Method::GET;
        let e = parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap_err();
        assert_eq!(
            e,
            RequestError::ConnectMethod {
                found: "\"GET\"".into()
            }
        );
        assert!(e.to_string().contains("expected method CONNECT"), "{e}");
        let refusal = connect_refusal(&e);
        assert_eq!(refusal.status(), 405);
        assert_eq!(refusal.headers()["allow"], "CONNECT");
    }

    #[test]
    fn rfc8441_4_connect_without_protocol_is_not_a_websocket() {
        let e =
            parse_connect_request(&request(ClientConfig::new()), None, &Limits::new()).unwrap_err();
        assert_eq!(e, RequestError::MissingProtocol);
        assert_eq!(connect_refusal(&e).status(), 400);
        assert!(e.to_string().contains(":protocol"), "{e}");
    }

    #[test]
    fn rfc8441_5_protocol_must_be_websocket() {
        let r = request(ClientConfig::new());
        let e = parse_connect_request(&r, Some("webtransport"), &Limits::new()).unwrap_err();
        assert_eq!(
            e,
            RequestError::WrongProtocol {
                found: "\"webtransport\"".into()
            }
        );
        assert!(
            e.to_string().contains("expected :protocol websocket"),
            "{e}"
        );
        // an upgrade token compares without case (RFC 9110 section 7.8)
        assert!(parse_connect_request(&r, Some("WebSocket"), &Limits::new()).is_ok());
    }

    /// The request's fields are held to the head limits as over HTTP/1.1
    /// (431, RFC 6585 section 5): too many, or too heavy as HTTP/2 weighs
    /// them; they were copied whatever their number and size.
    #[test]
    fn rfc6585_5_extended_connect_fields_are_held_to_the_head_limits() {
        let limits = Limits::new().with_max_headers(8).with_max_head_len(1024);
        let mut r = request(ClientConfig::new());
        assert!(parse_connect_request(&r, Some("websocket"), &limits).is_ok());
        for i in 0..8 {
            r.headers_mut().insert(
                HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
                HeaderValue::from_static("a"),
            );
        }
        let e = parse_connect_request(&r, Some("websocket"), &limits).unwrap_err();
        assert_eq!(e, RequestError::TooManyHeaders { limit: 8 });
        assert_eq!(connect_refusal(&e).status(), 431);
        let mut r = request(ClientConfig::new());
        r.headers_mut().insert(
            HeaderName::from_static("cookie"),
            HeaderValue::from_str(&"c".repeat(1000)).unwrap(),
        );
        let e = parse_connect_request(&r, Some("websocket"), &limits).unwrap_err();
        assert!(
            matches!(e, RequestError::FieldsTooLarge { size, limit: 1024 } if size > 1024),
            "{e:?}"
        );
        assert_eq!(connect_refusal(&e).status(), 431);
        assert!(e.to_string().contains("1024-byte limit"), "{e}");
    }

    /// Each cookie in a field of its own (RFC 9113 section 8.2.3, as
    /// browsers send them over HTTP/2) counts as the one `Cookie` line it
    /// is over HTTP/1.1: 70 of them passed the 64-field limit there and got
    /// 431 here.
    #[test]
    fn rfc9113_8_2_3_split_cookies_count_as_one_field() {
        let mut r = request(ClientConfig::new());
        for i in 0..70 {
            r.headers_mut().append(
                http::header::COOKIE,
                HeaderValue::from_str(&format!("c{i}=v")).unwrap(),
            );
        }
        assert!(parse_connect_request(&r, Some("websocket"), &Limits::new()).is_ok());
    }

    /// `:path` in origin form (RFC 9113 section 8.3.1), as a target over
    /// HTTP/1.1 must be: `*` was taken as the resource (`http` refuses
    /// other paths without a slash itself).
    #[test]
    fn rfc9113_8_3_1_a_path_not_in_origin_form_is_refused() {
        let mut r = request(ClientConfig::new());
        *r.uri_mut() = Uri::builder()
            .scheme("https")
            .authority("example.com")
            .path_and_query("*")
            .build()
            .unwrap();
        let e = parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap_err();
        assert!(matches!(e, RequestError::Target { .. }), "{e:?}");
        assert_eq!(connect_refusal(&e).status(), 400);
    }

    #[test]
    fn rfc8441_4_server_refuses_request_without_scheme_or_path() {
        let mut r = request(ClientConfig::new());
        *r.uri_mut() = Uri::from_static("example.com:8443");
        let e = parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap_err();
        assert_eq!(e, RequestError::MissingPseudoHeader { name: ":scheme" });
        assert!(e.to_string().contains(":scheme"), "{e}");
        assert_eq!(connect_refusal(&e).status(), 400);
        *r.uri_mut() = Uri::from_static("/chat");
        let e = parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap_err();
        assert_eq!(e, RequestError::MissingPseudoHeader { name: ":scheme" });
    }

    #[test]
    fn rfc8441_4_server_refuses_request_without_authority() {
        let mut r = request(ClientConfig::new());
        let mut parts = r.uri().clone().into_parts();
        parts.authority = None;
        parts.scheme = None;
        *r.uri_mut() = Uri::from_parts(parts).unwrap();
        // a URI with a scheme needs an authority; without both, :scheme goes first
        assert_eq!(
            parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap_err(),
            RequestError::MissingPseudoHeader { name: ":scheme" }
        );
    }

    #[test]
    fn rfc8441_5_server_accepts_without_key_and_answers_200_without_accept() {
        let r = request(ClientConfig::new().origin("https://example.com"));
        let offer = parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap();
        assert_eq!(offer.key(), "");
        assert_eq!(offer.host(), "example.com:8443");
        assert_eq!(offer.resource_name(), "/chat?room=1");
        assert_eq!(offer.query(), Some("room=1"));
        assert_eq!(offer.origin(), Some("https://example.com"));
        let answer = offer.accept_connect(&AcceptOptions::new()).unwrap();
        assert_eq!(answer.status(), 200);
        assert!(!answer.headers().contains_key("sec-websocket-accept"));
        assert!(client(ClientConfig::new()).check_response(&answer).is_ok());
    }

    #[test]
    fn rfc8441_5_version_13_required() {
        let mut r = request(ClientConfig::new());
        assert_eq!(r.headers()["sec-websocket-version"], "13");
        r.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("8"));
        let e = parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap_err();
        assert_eq!(
            e,
            RequestError::UnsupportedVersion {
                found: "\"8\"".into()
            }
        );
        let refusal = connect_refusal(&e);
        // no 426 over HTTP/2: it means Upgrade, which HTTP/2 forbids
        assert_eq!(refusal.status(), 400);
        assert_eq!(refusal.headers()["sec-websocket-version"], "13");
        assert!(!refusal.headers().contains_key("upgrade"));
        r.headers_mut().remove("sec-websocket-version");
        let e = parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap_err();
        assert_eq!(e, RequestError::MissingVersion);
    }

    #[test]
    fn rfc8441_5_subprotocols_negotiated_as_in_rfc6455() {
        let c = client(
            ClientConfig::new()
                .subprotocol("chat")
                .subprotocol("superchat"),
        );
        let r = c.request().unwrap();
        assert_eq!(r.headers()["sec-websocket-protocol"], "chat, superchat");
        let offer = parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap();
        assert_eq!(offer.pick_subprotocol(&["superchat"]), Some("superchat"));
        let ok = offer
            .accept_connect(&AcceptOptions::new().subprotocol("superchat"))
            .unwrap();
        assert_eq!(
            c.check_response(&ok).unwrap().subprotocol(),
            Some("superchat")
        );
        // the server cannot choose one not offered...
        let e = offer
            .accept_connect(&AcceptOptions::new().subprotocol("other"))
            .unwrap_err();
        assert!(matches!(e, BuildError::SubprotocolNotOffered { .. }), "{e}");
        // ...and a client refuses an answer naming one
        let e = c
            .check_response(&answer(200, &[("sec-websocket-protocol", "other")]))
            .unwrap_err();
        assert!(
            matches!(e, ResponseError::UnrequestedSubprotocol { .. }),
            "{e}"
        );
    }

    #[test]
    fn rfc8441_5_extensions_negotiated_as_in_rfc6455() {
        let offer = Extension::new("permessage-deflate").with_flag("client_max_window_bits");
        let c = client(ClientConfig::new().extension(offer));
        let r = c.request().unwrap();
        assert_eq!(
            r.headers()["sec-websocket-extensions"],
            "permessage-deflate; client_max_window_bits"
        );
        let req = parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap();
        assert_eq!(req.extensions()[0].name(), "permessage-deflate");
        let a = req
            .accept_connect(&AcceptOptions::new().extension(Extension::new("permessage-deflate")))
            .unwrap();
        assert_eq!(
            a.headers()["sec-websocket-extensions"],
            "permessage-deflate"
        );
        let accepted = c.check_response(&a).unwrap();
        assert_eq!(accepted.extensions()[0].name(), "permessage-deflate");
        let e = c
            .check_response(&answer(200, &[("sec-websocket-extensions", "x-other")]))
            .unwrap_err();
        assert!(
            matches!(e, ResponseError::UnrequestedExtension { .. }),
            "{e}"
        );
        let mut bad = r.clone();
        bad.headers_mut()
            .insert("sec-websocket-extensions", HeaderValue::from_static(";;"));
        let e = parse_connect_request(&bad, Some("websocket"), &Limits::new()).unwrap_err();
        assert!(matches!(e, RequestError::MalformedExtensions { .. }), "{e}");
    }

    #[test]
    fn rfc8441_5_non_2xx_is_an_error_naming_the_status() {
        let c = client(ClientConfig::new());
        let e = c.check_response(&answer(404, &[])).unwrap_err();
        assert!(matches!(
            e,
            ResponseError::ConnectStatus { status: 404, .. }
        ));
        assert_eq!(
            e.to_string(),
            "server answered 404 Not Found to the extended CONNECT where a 2xx was expected \
             (RFC 8441 section 5): no WebSocket endpoint at this path"
        );
        let e = c.check_response(&answer(101, &[])).unwrap_err();
        assert!(
            matches!(e, ResponseError::ConnectStatus { status: 101, .. }),
            "{e}"
        );
        let e = c
            .check_response(&answer(302, &[("location", "/x")]))
            .unwrap_err();
        assert!(e.to_string().contains("moved to \"/x\""), "{e}");
        // any 2xx accepts (RFC 9110 section 9.3.6)
        assert!(c.check_response(&answer(204, &[])).is_ok());
    }

    #[test]
    fn rfc9113_8_2_header_names_are_lower_case() {
        let c = client(
            ClientConfig::new()
                .origin("https://example.com")
                .header("Authorization", "Bearer x"),
        );
        for (name, _) in c.headers() {
            assert_eq!(name, &name.to_ascii_lowercase());
        }
        for (name, _) in c.pseudo_headers() {
            assert_eq!(name, name.to_ascii_lowercase());
        }
        let r = c.request().unwrap();
        assert_eq!(r.headers()["authorization"], "Bearer x");
        let a = parse_connect_request(&r, Some("websocket"), &Limits::new())
            .unwrap()
            .accept_connect(&AcceptOptions::new().header("Set-Cookie", "a=1"))
            .unwrap();
        assert!(a.headers().keys().any(|k| k.as_str() == "set-cookie"));
    }

    #[test]
    fn rfc9113_8_2_2_connection_specific_headers_refused() {
        let mut r = request(ClientConfig::new());
        r.headers_mut()
            .insert("upgrade", HeaderValue::from_static("websocket"));
        let e = parse_connect_request(&r, Some("websocket"), &Limits::new()).unwrap_err();
        assert_eq!(
            e,
            RequestError::ConnectionSpecificHeader {
                name: "upgrade".into()
            }
        );
        assert_eq!(connect_refusal(&e).status(), 400);
        for name in ["Connection", "Upgrade", "Keep-Alive", "Transfer-Encoding"] {
            let e = ConnectHandshake::new("ws://h/", ClientConfig::new().header(name, "x"))
                .unwrap_err();
            assert!(
                matches!(e, BuildError::ReservedHeader { .. }),
                "{name}: {e}"
            );
        }
        let req = parse_connect_request(
            &request(ClientConfig::new()),
            Some("websocket"),
            &Limits::new(),
        )
        .unwrap();
        let e = req
            .accept_connect(&AcceptOptions::new().header("Connection", "close"))
            .unwrap_err();
        assert!(matches!(e, BuildError::ReservedHeader { .. }), "{e}");
    }

    #[test]
    fn rfc9220_3_http3_uses_the_same_extended_connect() {
        // RFC 9220 section 3: the extended CONNECT of RFC 8441 applies to
        // HTTP/3 unchanged, :scheme https included (QUIC is always TLS).
        let c = ConnectHandshake::new("wss://h3.example/ws", ClientConfig::new()).unwrap();
        let r = c.request().unwrap();
        assert_eq!(r.uri().scheme_str(), Some("https"));
        let offer = parse_connect_request(&r, Some(PROTOCOL), &Limits::new()).unwrap();
        let a = offer.accept_connect(&AcceptOptions::new()).unwrap();
        assert!(c.check_response(&a).is_ok());
    }

    #[test]
    fn refusal_to_http_carries_status_body_and_headers() {
        let r = Refusal::forbidden("origin not allowed")
            .with_header("Retry-After", "5")
            .unwrap()
            .to_http();
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()["retry-after"], "5");
        assert_eq!(r.body(), "origin not allowed\n");
    }
}
