//! Reaching the server through a proxy, sans-IO: HTTP CONNECT (RFC 9110
//! section 9.3.6, Basic credentials of RFC 7617) and SOCKS5 (RFC 1928,
//! username/password of RFC 1929), and the conventional environment
//! variables that choose a proxy.
//!
//! Owns the bytes of the exchange and the rules, never the socket: the
//! adapter connects TCP to [`ProxyUrl::host`]/[`ProxyUrl::port`], then runs
//! a [`ProxyConnect`] (write [`ProxyConnect::take_output`], read into
//! [`ProxyConnect::receive`] until [`ProxyConnect::is_done`]), and then TLS
//! for `wss://` and the WebSocket handshake over the same stream. Every
//! answer is bounded ([`MAX_PROXY_HEAD`]) and every refusal is named in
//! words: the HTTP status and reason, the SOCKS reply code's meaning.
//!
//! [`proxy_from_env`] applies the environment rules as a pure function of
//! a variable lookup, so they are tested without touching the process's
//! environment.

use core::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The most bytes a proxy's HTTP answer head may take (status line and
/// headers); past it the exchange fails without reading further.
pub const MAX_PROXY_HEAD: usize = 8 * 1024;

/// Headers in a proxy's HTTP answer that are parsed at most.
const MAX_PROXY_HEADERS: usize = 64;

/// The proxy protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyKind {
    /// An HTTP proxy, asked with `CONNECT host:port` (`http://`).
    Http,
    /// A SOCKS5 proxy given an IP address this side resolved (`socks5://`).
    Socks5,
    /// A SOCKS5 proxy given the host name to resolve itself (`socks5h://`,
    /// ATYP 3 of RFC 1928 section 5).
    Socks5h,
}

impl ProxyKind {
    /// The URL scheme.
    pub const fn scheme(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Socks5 => "socks5",
            Self::Socks5h => "socks5h",
        }
    }
}

/// A proxy: `http://[user:password@]host[:port]`,
/// `socks5://[user:password@]host[:port]` or `socks5h://...`. A URL
/// without a scheme is `http://`, as curl reads it. The default port is
/// 1080 (curl's); the user and password may be percent-encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    kind: ProxyKind,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl ProxyUrl {
    /// Parses a proxy URL.
    ///
    /// # Errors
    /// [`ProxyError::Url`] naming what is wrong: an unsupported scheme (e.g.
    /// `https://`, a TLS connection to the proxy itself), no host, a bad
    /// port, a path.
    pub fn parse(url: &str) -> Result<Self, ProxyError> {
        // never the password: errors end up in logs
        let shown = crate::url::without_userinfo(url.trim());
        let bad = |why: &str| ProxyError::Url(format!("{shown:?}: {why}"));
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), url),
        };
        let kind = match scheme.as_str() {
            "http" => ProxyKind::Http,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            "https" => {
                return Err(bad(
                    "https:// proxies (TLS to the proxy) are not supported; use http://",
                ));
            }
            other => {
                return Err(bad(&format!(
                    "unsupported proxy scheme {other:?} (http://, socks5:// or socks5h://)"
                )));
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path"));
        }
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user = percent_decode(user).ok_or_else(|| bad("bad percent-encoding"))?;
                if user.contains(':') {
                    // Basic credentials are user:password (RFC 7617 section 2)
                    return Err(bad("a user name may not hold a colon"));
                }
                let password =
                    percent_decode(password).ok_or_else(|| bad("bad percent-encoding"))?;
                (Some((user, password)), hostport)
            }
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Self {
            kind,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(1080),
            credentials,
        })
    }

    /// The protocol.
    pub const fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The user name and password, if the URL has them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// Whether the target's name must be resolved on this side
    /// (`socks5://`): the adapter then gives [`Target::Ip`].
    pub const fn resolves_locally(&self) -> bool {
        matches!(self.kind, ProxyKind::Socks5)
    }
}

/// Shown without the password.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.kind.scheme())?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}:***@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Without the password.
impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

impl core::str::FromStr for ProxyUrl {
    type Err = ProxyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A port: digits only (`parse` takes "+80"), and not 0.
fn port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&port| port != 0)
}

/// `host[:port]`, `[v6][:port]`.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(port(p)?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host, port));
    }
    match s.rsplit_once(':') {
        // a bare IPv6 address has more than one colon
        Some((host, p)) if !host.contains(':') => Some((host, Some(port(p)?))),
        _ => Some((s, None)),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            // two hex digits: from_str_radix alone takes "+1"
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where the proxy is asked to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A host name (the proxy resolves it: HTTP CONNECT, `socks5h://`).
    Name(String, u16),
    /// An address resolved on this side (`socks5://`).
    Ip(IpAddr, u16),
}

impl Target {
    /// `host:port` as in an HTTP CONNECT request target (RFC 9110 section
    /// 9.3.6: the authority form, IPv6 bracketed).
    fn authority(&self) -> String {
        match self {
            Self::Name(host, port) if host.contains(':') => format!("[{host}]:{port}"),
            Self::Name(host, port) => format!("{host}:{port}"),
            Self::Ip(IpAddr::V6(ip), port) => format!("[{ip}]:{port}"),
            Self::Ip(ip, port) => format!("{ip}:{port}"),
        }
    }
}

/// Why a proxy exchange failed, in words naming the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL cannot be used.
    Url(String),
    /// The HTTP proxy answered CONNECT with a status other than 2xx (RFC
    /// 9110 section 9.3.6).
    HttpRefused {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// Whether we sent credentials (for a 407's hint).
        sent_credentials: bool,
    },
    /// The HTTP proxy's answer is not valid HTTP/1.x.
    HttpMalformed(String),
    /// The HTTP proxy's answer head is longer than [`MAX_PROXY_HEAD`].
    HeadTooLarge,
    /// The SOCKS5 proxy accepts none of the offered authentication methods
    /// (RFC 1928 section 3, `X'FF'`).
    SocksNoAcceptableMethod {
        /// Whether we offered username/password.
        offered_password: bool,
    },
    /// The SOCKS5 proxy refused the user name and password (RFC 1929
    /// section 2, a non-zero status).
    SocksAuthFailed(u8),
    /// The SOCKS5 proxy's reply to CONNECT is not "succeeded" (RFC 1928
    /// section 6); the code.
    SocksRefused(u8),
    /// The SOCKS5 proxy's answer breaks RFC 1928 or 1929.
    SocksMalformed(String),
    /// Something cannot be said in SOCKS5 (a user name, password or host
    /// name over 255 bytes, RFC 1928 section 5 and RFC 1929 section 2).
    TooLong(&'static str),
    /// The proxy closed the connection before finishing its answer.
    Closed,
    /// The proxy could not be reached (the adapter's words for the
    /// system's error).
    Unreachable {
        /// The proxy, without its password.
        proxy: String,
        /// What the system said.
        reason: String,
    },
    /// The proxy was reached but did not open the tunnel within the
    /// connect timeout.
    TimedOut(core::time::Duration),
    /// The proxy sent bytes after its answer, before the tunnel's server
    /// could have spoken (neither TLS nor the WebSocket upgrade lets the
    /// server speak first; HTTP/2 does, see
    /// [`ProxyConnect::take_leftover`]).
    TrailingBytes(usize),
    /// A proxy was chosen for a connection over QUIC (HTTP/3, RFC 9220),
    /// which runs over UDP: an HTTP CONNECT or SOCKS5 CONNECT tunnel
    /// carries TCP only, and going around the proxy is not ours to decide.
    NotForQuic {
        /// The proxy, without its password.
        proxy: String,
    },
}

/// The meaning of a SOCKS5 reply code (RFC 1928 section 6).
pub fn socks5_reply_meaning(code: u8) -> &'static str {
    match code {
        0 => "succeeded",
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(why) => write!(f, "invalid proxy URL {why}"),
            Self::HttpRefused {
                status,
                reason,
                sent_credentials,
            } => {
                write!(f, "the proxy refused CONNECT: {status} {reason}")?;
                match (status, sent_credentials) {
                    (407, false) => f.write_str(
                        " (it wants a user name and password: http://user:password@host:port)",
                    ),
                    // tinyproxy answers wrong credentials with 401
                    (407 | 401, true) => f.write_str(" (it refused the user name and password)"),
                    _ => Ok(()),
                }
            }
            Self::HttpMalformed(why) => {
                write!(f, "the proxy's answer to CONNECT is not HTTP: {why}")
            }
            Self::HeadTooLarge => write!(
                f,
                "the proxy's answer to CONNECT is longer than {MAX_PROXY_HEAD} bytes"
            ),
            Self::SocksNoAcceptableMethod {
                offered_password: false,
            } => f.write_str(
                "the SOCKS5 proxy accepts no connection without authentication (give a user \
                 name and password: socks5://user:password@host:port)",
            ),
            Self::SocksNoAcceptableMethod {
                offered_password: true,
            } => f.write_str(
                "the SOCKS5 proxy accepts neither no authentication nor username/password",
            ),
            Self::SocksAuthFailed(status) => write!(
                f,
                "SOCKS5 authentication failed: the proxy refused the user name and password \
                 (status {status})"
            ),
            Self::SocksRefused(code) => write!(
                f,
                "the SOCKS5 proxy could not connect: {} (reply {code})",
                socks5_reply_meaning(*code)
            ),
            Self::SocksMalformed(why) => write!(f, "the SOCKS5 proxy's answer is invalid: {why}"),
            Self::TooLong(what) => write!(f, "the {what} is over 255 bytes, too long for SOCKS5"),
            Self::Closed => f.write_str("the proxy closed the connection before answering"),
            Self::Unreachable { proxy, reason } => {
                write!(f, "cannot connect to the proxy {proxy}: {reason}")
            }
            Self::TimedOut(d) => write!(f, "the proxy did not open the tunnel within {d:?}"),
            Self::TrailingBytes(n) => write!(
                f,
                "the server spoke before our request ({n} bytes came after the proxy's \
                 answer): neither TLS nor the WebSocket upgrade lets it"
            ),
            Self::NotForQuic { proxy } => write!(
                f,
                "HTTP/3 runs over QUIC (UDP), which the proxy {proxy} cannot carry (its tunnels are TCP): connect over HTTP/1.1 or HTTP/2, or without the proxy"
            ),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Where a [`ProxyConnect`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// HTTP: CONNECT sent, its answer head awaited.
    HttpAnswer,
    /// SOCKS5: the greeting sent, the method selection awaited (2 bytes).
    SocksMethod,
    /// SOCKS5: username/password sent, the status awaited (2 bytes).
    SocksAuth,
    /// SOCKS5: CONNECT sent, the reply awaited.
    SocksReply,
    /// The tunnel is open.
    Done,
}

/// One proxy exchange, sans-IO: the bytes to send and the parsing of the
/// proxy's answers, up to an open tunnel to the target.
///
/// ```
/// use tether_handshake::proxy::{ProxyConnect, ProxyUrl, Target};
///
/// let proxy = ProxyUrl::parse("http://proxy.example:3128").unwrap();
/// let mut exchange = ProxyConnect::new(&proxy, Target::Name("example.com".into(), 443)).unwrap();
/// let request = exchange.take_output(); // write this to the proxy
/// assert!(request.starts_with(b"CONNECT example.com:443 HTTP/1.1\r\n"));
/// exchange.receive(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
/// assert!(exchange.is_done()); // TLS and the upgrade go over the same stream now
/// ```
#[derive(Debug)]
pub struct ProxyConnect {
    step: Step,
    out: Vec<u8>,
    input: Vec<u8>,
    target: Target,
    credentials: Option<(String, String)>,
}

impl ProxyConnect {
    /// Starts an exchange with `proxy` for `target`, queueing the first
    /// bytes (the CONNECT request, or the SOCKS5 greeting).
    ///
    /// # Errors
    /// [`ProxyError::TooLong`] for a SOCKS5 user, password or host name over
    /// 255 bytes; [`ProxyError::Url`] for a `socks5://` proxy given a host
    /// name (resolve it first, [`ProxyUrl::resolves_locally`]).
    pub fn new(proxy: &ProxyUrl, target: Target) -> Result<Self, ProxyError> {
        let credentials = proxy.credentials.clone();
        let mut this = Self {
            step: Step::Done,
            out: Vec::new(),
            input: Vec::new(),
            target,
            credentials,
        };
        match proxy.kind {
            ProxyKind::Http => {
                this.out = connect_request(&this.target, this.credentials());
                this.step = Step::HttpAnswer;
            }
            ProxyKind::Socks5 | ProxyKind::Socks5h => {
                if proxy.kind == ProxyKind::Socks5 && matches!(this.target, Target::Name(..)) {
                    return Err(ProxyError::Url(
                        "socks5:// resolves the target on this side: give its address (or use \
                         socks5h:// to let the proxy resolve it)"
                            .to_owned(),
                    ));
                }
                // check now what a later step would have to refuse
                socks5_request(&this.target)?;
                if let Some((user, password)) = this.credentials() {
                    socks5_password(user, password)?;
                }
                this.out = socks5_greeting(this.credentials.is_some());
                this.step = Step::SocksMethod;
            }
        }
        Ok(this)
    }

    fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// The bytes to write to the proxy now (empty when there are none).
    pub fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.out)
    }

    /// Whether the tunnel is open: what is read from now on is the
    /// target's.
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// Bytes read from the proxy, in any split. May queue output (the next
    /// SOCKS5 message). Bytes after the answer that opens the tunnel are
    /// the server's, kept for [`ProxyConnect::take_leftover`].
    ///
    /// # Errors
    /// The proxy's refusal or a malformed answer, named; once failed, the
    /// exchange is over.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), ProxyError> {
        self.input.extend_from_slice(bytes);
        if self.step == Step::Done {
            return Ok(());
        }
        loop {
            let used = match self.step {
                Step::HttpAnswer => {
                    match parse_connect_answer(&self.input).map_err(|e| match e {
                        ProxyError::HttpRefused { status, reason, .. } => ProxyError::HttpRefused {
                            status,
                            reason,
                            sent_credentials: self.credentials.is_some(),
                        },
                        other => other,
                    })? {
                        Some(used) => {
                            self.step = Step::Done;
                            used
                        }
                        None => return Ok(()),
                    }
                }
                Step::SocksMethod => {
                    let Some(method) = parse_socks5_method(&self.input)? else {
                        return Ok(());
                    };
                    match (method, self.credentials()) {
                        (SOCKS5_NO_AUTH, _) => {
                            self.out.extend(socks5_request(&self.target)?);
                            self.step = Step::SocksReply;
                        }
                        (SOCKS5_PASSWORD, Some((user, password))) => {
                            self.out.extend(socks5_password(user, password)?);
                            self.step = Step::SocksAuth;
                        }
                        (SOCKS5_NO_ACCEPTABLE, _) => {
                            return Err(ProxyError::SocksNoAcceptableMethod {
                                offered_password: self.credentials.is_some(),
                            });
                        }
                        (other, _) => {
                            return Err(ProxyError::SocksMalformed(format!(
                                "it chose method {other}, which we did not offer"
                            )));
                        }
                    }
                    2
                }
                Step::SocksAuth => {
                    let Some(status) = parse_socks5_auth(&self.input)? else {
                        return Ok(());
                    };
                    if status != 0 {
                        return Err(ProxyError::SocksAuthFailed(status));
                    }
                    self.out.extend(socks5_request(&self.target)?);
                    self.step = Step::SocksReply;
                    2
                }
                Step::SocksReply => match parse_socks5_reply(&self.input)? {
                    Some(used) => {
                        self.step = Step::Done;
                        used
                    }
                    None => return Ok(()),
                },
                Step::Done => return Ok(()),
            };
            self.input.drain(..used.min(self.input.len()));
            if self.step == Step::Done {
                // what follows is the server's (see `take_leftover`)
                return Ok(());
            }
            if self.input.is_empty() {
                return Ok(());
            }
        }
    }

    /// What the proxy closing the connection now means.
    pub fn eof(&self) -> ProxyError {
        ProxyError::Closed
    }

    /// Once the tunnel is open, the bytes that came after the proxy's
    /// answer: the server's first, read with it. A protocol whose server
    /// may speak first (HTTP/2: its SETTINGS, RFC 9113 section 3.4) reads
    /// them before the stream's; for one whose server speaks only when
    /// spoken to, see [`ProxyConnect::expect_silence`].
    pub fn take_leftover(&mut self) -> Vec<u8> {
        if self.step == Step::Done {
            core::mem::take(&mut self.input)
        } else {
            Vec::new()
        }
    }

    /// Once the tunnel is open, for a protocol whose server speaks only
    /// when spoken to (TLS, the HTTP/1.1 upgrade): nothing may have come
    /// after the proxy's answer.
    ///
    /// # Errors
    /// [`ProxyError::TrailingBytes`] when something did.
    pub fn expect_silence(&self) -> Result<(), ProxyError> {
        match (self.step, self.input.len()) {
            (Step::Done, n) if n > 0 => Err(ProxyError::TrailingBytes(n)),
            _ => Ok(()),
        }
    }
}

/// The CONNECT request (RFC 9110 section 9.3.6): the authority form, a
/// `Host` header, and Basic credentials (RFC 7617) in
/// `Proxy-Authorization` (RFC 9110 section 11.7.2) when there are any.
pub fn connect_request(target: &Target, credentials: Option<(&str, &str)>) -> Vec<u8> {
    let authority = target.authority();
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some((user, password)) = credentials {
        let token = STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// Parses the proxy's answer to CONNECT: `Ok(None)` until the head is
/// complete, then the bytes it used. Any 2xx opens the tunnel (RFC 9110
/// section 9.3.6); anything else is refused with its status and reason.
///
/// # Errors
/// [`ProxyError::HttpRefused`], [`ProxyError::HttpMalformed`], or
/// [`ProxyError::HeadTooLarge`] once [`MAX_PROXY_HEAD`] bytes came without
/// the head's end.
pub fn parse_connect_answer(input: &[u8]) -> Result<Option<usize>, ProxyError> {
    let bounded = input.get(..MAX_PROXY_HEAD).unwrap_or(input);
    match crate::head::sniff_tls(bounded) {
        crate::head::Sniff::Tls => {
            return Err(ProxyError::HttpMalformed(
                "the proxy answered with TLS: this port expects a TLS connection to the proxy \
                 itself (https://), which is not supported; use its plain HTTP port"
                    .to_owned(),
            ));
        }
        crate::head::Sniff::NeedMore => return Ok(None),
        crate::head::Sniff::Other => {}
    }
    // interim answers (1xx, e.g. 100 Continue) come before the final one
    // and are passed over (RFC 9110 section 15.2)
    let mut start = 0;
    loop {
        let rest = bounded.get(start..).unwrap_or_default();
        let mut headers = [httparse::EMPTY_HEADER; MAX_PROXY_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(rest) {
            Ok(httparse::Status::Complete(used)) => {
                let status = response.code.unwrap_or(0);
                if (100..200).contains(&status) {
                    start += used;
                    continue;
                }
                return if (200..300).contains(&status) {
                    Ok(Some(start + used))
                } else {
                    Err(ProxyError::HttpRefused {
                        status,
                        reason: response.reason.unwrap_or("").to_owned(),
                        sent_credentials: false,
                    })
                };
            }
            Ok(httparse::Status::Partial) if input.len() >= MAX_PROXY_HEAD => {
                return Err(ProxyError::HeadTooLarge);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => {
                return Err(ProxyError::HttpMalformed(format!(
                    "{e} (it began {:?})",
                    String::from_utf8_lossy(rest.get(..rest.len().min(40)).unwrap_or_default())
                )));
            }
        }
    }
}

/// SOCKS version 5.
const SOCKS5: u8 = 5;
/// RFC 1928 section 3: no authentication required.
const SOCKS5_NO_AUTH: u8 = 0;
/// RFC 1928 section 3: username/password (RFC 1929).
const SOCKS5_PASSWORD: u8 = 2;
/// RFC 1928 section 3: no acceptable methods.
const SOCKS5_NO_ACCEPTABLE: u8 = 0xFF;

/// The greeting (RFC 1928 section 3): version 5 and the methods offered, no
/// authentication, and username/password when we have credentials.
pub fn socks5_greeting(with_password: bool) -> Vec<u8> {
    if with_password {
        vec![SOCKS5, 2, SOCKS5_NO_AUTH, SOCKS5_PASSWORD]
    } else {
        vec![SOCKS5, 1, SOCKS5_NO_AUTH]
    }
}

/// The username/password request (RFC 1929 section 2): version 1, then
/// each as a length byte and its bytes.
///
/// # Errors
/// [`ProxyError::TooLong`] for a user name or password over 255 bytes.
pub fn socks5_password(user: &str, password: &str) -> Result<Vec<u8>, ProxyError> {
    let ulen = u8::try_from(user.len()).map_err(|_| ProxyError::TooLong("SOCKS5 user name"))?;
    let plen = u8::try_from(password.len()).map_err(|_| ProxyError::TooLong("SOCKS5 password"))?;
    let mut out = vec![1, ulen];
    out.extend_from_slice(user.as_bytes());
    out.push(plen);
    out.extend_from_slice(password.as_bytes());
    Ok(out)
}

/// The CONNECT request (RFC 1928 section 4): CMD 1, and the address as
/// ATYP 1 (IPv4), 3 (a host name, resolved by the proxy) or 4 (IPv6),
/// then the port in network order.
///
/// # Errors
/// [`ProxyError::TooLong`] for a host name over 255 bytes.
pub fn socks5_request(target: &Target) -> Result<Vec<u8>, ProxyError> {
    let mut out = vec![SOCKS5, 1, 0];
    let port = match target {
        Target::Ip(IpAddr::V4(ip), port) => {
            out.push(1);
            out.extend_from_slice(&ip.octets());
            port
        }
        Target::Ip(IpAddr::V6(ip), port) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
            port
        }
        Target::Name(host, port) => {
            let len = u8::try_from(host.len()).map_err(|_| ProxyError::TooLong("host name"))?;
            out.push(3);
            out.push(len);
            out.extend_from_slice(host.as_bytes());
            port
        }
    };
    out.extend_from_slice(&port.to_be_bytes());
    Ok(out)
}

/// The method selection (RFC 1928 section 3): `Ok(None)` until its two
/// bytes came, then the method.
///
/// # Errors
/// [`ProxyError::SocksMalformed`] when the version is not 5.
pub fn parse_socks5_method(input: &[u8]) -> Result<Option<u8>, ProxyError> {
    match input {
        [] => Ok(None),
        [version, ..] if *version != SOCKS5 => Err(not_socks5(*version)),
        [_] => Ok(None),
        [_, method, ..] => Ok(Some(*method)),
    }
}

/// The username/password status (RFC 1929 section 2): `Ok(None)` until its
/// two bytes came, then the status (0 is success).
///
/// # Errors
/// [`ProxyError::SocksMalformed`] when the version is not 1.
pub fn parse_socks5_auth(input: &[u8]) -> Result<Option<u8>, ProxyError> {
    match input {
        [] => Ok(None),
        [version, ..] if *version != 1 => Err(ProxyError::SocksMalformed(format!(
            "the username/password answer has version {version}, not 1 (RFC 1929)"
        ))),
        [_] => Ok(None),
        [_, status, ..] => Ok(Some(*status)),
    }
}

/// The reply to CONNECT (RFC 1928 section 6): `Ok(None)` until it is
/// whole, then its length. The reply code is checked as soon as it came.
///
/// # Errors
/// [`ProxyError::SocksRefused`] for a code other than 0,
/// [`ProxyError::SocksMalformed`] for a bad version or address type.
pub fn parse_socks5_reply(input: &[u8]) -> Result<Option<usize>, ProxyError> {
    if let Some(&version) = input.first()
        && version != SOCKS5
    {
        return Err(not_socks5(version));
    }
    if let Some(&code) = input.get(1)
        && code != 0
    {
        return Err(ProxyError::SocksRefused(code));
    }
    let len = match input.get(3) {
        None => return Ok(None),
        Some(1) => 4 + 4 + 2,
        Some(4) => 4 + 16 + 2,
        Some(3) => match input.get(4) {
            None => return Ok(None),
            Some(&n) => 4 + 1 + usize::from(n) + 2,
        },
        Some(other) => {
            return Err(ProxyError::SocksMalformed(format!(
                "address type {other} in its reply (RFC 1928 section 5 has 1, 3 and 4)"
            )));
        }
    };
    Ok((input.len() >= len).then_some(len))
}

fn not_socks5(version: u8) -> ProxyError {
    ProxyError::SocksMalformed(format!(
        "it answered version {version}, not 5: is it a SOCKS5 proxy?"
    ))
}

/// Whether and how a client uses a proxy: the adapters' `ClientOptions`
/// hold one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyPolicy {
    /// Connect directly (the default).
    #[default]
    Direct,
    /// Always through this proxy.
    Url(ProxyUrl),
    /// As the environment variables say ([`proxy_from_env`]), read when
    /// connecting.
    FromEnv,
}

impl ProxyPolicy {
    /// The proxy to use for a `ws://` or `wss://` (`secure`) URL to
    /// `host`:`port`, with `env` looking variables up for
    /// [`ProxyPolicy::FromEnv`].
    ///
    /// # Errors
    /// [`ProxyError::Url`] when a variable holds an unusable proxy URL.
    pub fn resolve(
        &self,
        secure: bool,
        host: &str,
        port: u16,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ProxyUrl>, ProxyError> {
        match self {
            Self::Direct => Ok(None),
            Self::Url(proxy) => Ok(Some(proxy.clone())),
            Self::FromEnv => match proxy_from_env(secure, host, port, env)? {
                EnvProxy::Use { proxy, .. } => Ok(Some(proxy)),
                EnvProxy::Unset | EnvProxy::Bypassed { .. } => Ok(None),
            },
        }
    }
}

/// What the environment says about reaching a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvProxy {
    /// No proxy variable is set for this scheme.
    Unset,
    /// A proxy is set, but `NO_PROXY` (the variable named) exempts the host.
    Bypassed {
        /// The variable that exempts it (`no_proxy` or `NO_PROXY`).
        variable: &'static str,
    },
    /// Use this proxy, from this variable.
    Use {
        /// The proxy.
        proxy: ProxyUrl,
        /// The variable it came from.
        variable: &'static str,
    },
}

/// The proxy the conventional environment variables choose for a `ws://`
/// (`secure` false) or `wss://` URL to `host`:`port`, as curl reads them:
/// `https_proxy`/`HTTPS_PROXY` for `wss://`, `http_proxy`/`HTTP_PROXY` for
/// `ws://` (curl reads only the lower-case one; we accept both, lower case
/// first, but neither when `REQUEST_METHOD` is set, as Go refuses them:
/// under CGI a request's `Proxy:` header becomes `HTTP_PROXY`, and on
/// Windows, whose variable names ignore case, `http_proxy` too, the
/// "httpoxy" hole), then `all_proxy`/`ALL_PROXY`; an empty value is unset.
/// `no_proxy`/`NO_PROXY` is a list separated by commas or spaces: `*`
/// exempts every host; an entry exempts the host itself and its
/// subdomains (a leading dot is ignored: `example.com` and `.example.com`
/// both exempt `www.example.com`); an IP address matches exactly; an entry
/// with `:port` matches that port only. `env` looks a variable up.
///
/// # Errors
/// [`ProxyError::Url`] when the chosen variable holds an unusable URL
/// (naming the variable).
pub fn proxy_from_env(
    secure: bool,
    host: &str,
    port: u16,
    env: impl Fn(&str) -> Option<String>,
) -> Result<EnvProxy, ProxyError> {
    let lookup = |names: &[&'static str]| {
        names.iter().find_map(|&name| {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name, v))
        })
    };
    let scheme_vars: &[&'static str] = if secure {
        &["https_proxy", "HTTPS_PROXY"]
    } else if env("REQUEST_METHOD").is_some() {
        // a CGI program: a request's `Proxy:` header arrives as HTTP_PROXY
        // ("httpoxy", CVE-2016-5385), and where variable names ignore case
        // (Windows) as http_proxy too: neither is a setting there
        &[]
    } else {
        &["http_proxy", "HTTP_PROXY"]
    };
    let Some((variable, value)) =
        lookup(scheme_vars).or_else(|| lookup(&["all_proxy", "ALL_PROXY"]))
    else {
        return Ok(EnvProxy::Unset);
    };
    if let Some((no_proxy_var, list)) = lookup(&["no_proxy", "NO_PROXY"])
        && no_proxy_matches(&list, host, port)
    {
        return Ok(EnvProxy::Bypassed {
            variable: no_proxy_var,
        });
    }
    let proxy = ProxyUrl::parse(&value).map_err(|e| match e {
        ProxyError::Url(why) => ProxyError::Url(format!("in {variable}: {why}")),
        other => other,
    })?;
    Ok(EnvProxy::Use { proxy, variable })
}

/// Whether a `NO_PROXY` list exempts `host`:`port` (see
/// [`proxy_from_env`]).
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, entry_port) = match split_host_port(entry) {
                Some((name, entry_port)) => (name, entry_port),
                None => (entry, None),
            };
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            let name = name.trim_start_matches('.');
            let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
            if name.is_empty() {
                return false;
            }
            if name.parse::<IpAddr>().is_ok() || host.parse::<IpAddr>().is_ok() {
                return name.parse::<IpAddr>().ok() == host.parse::<IpAddr>().ok();
            }
            host == name
                || host
                    .strip_suffix(name.as_str())
                    .is_some_and(|head| head.ends_with('.'))
        })
}
