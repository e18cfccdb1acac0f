//! `ws://` and `wss://` URLs (RFC 6455 section 3).
//!
//! Owns splitting a WebSocket URL into what the handshake needs: secure or
//! not, host, port, and the resource name (path and query) for the request
//! line. It understands only these two schemes, never resolves names and
//! never follows anything: `url`'s generality is not needed for them.
//!
//! Rules kept, each with its error: the scheme is `ws` or `wss` (any case);
//! the host is a name, an IPv4 address or a bracketed IPv6 address, and must
//! be ASCII (give an IDN in its `xn--` form); the port, if given, is 1-65535;
//! no user info (`user@host`), which WebSocket does not send; no fragment
//! (section 3: `#` must be escaped as `%23`); no control characters. Spaces,
//! non-ASCII and the characters RFC 3986 never allows in a path are
//! percent-encoded, as browsers do.

use core::fmt;
use core::str::FromStr;
use std::net::Ipv6Addr;

use crate::headers::snippet;

/// A parsed `ws://` or `wss://` URL (RFC 6455 section 3).
///
/// ```
/// use tether_handshake::WsUrl;
/// let url = WsUrl::parse("wss://[::1]:9443/chat?room=1").unwrap();
/// assert!(url.is_secure());
/// assert_eq!(url.host(), "::1");
/// assert_eq!(url.port(), 9443);
/// assert_eq!(url.resource_name(), "/chat?room=1");
/// assert_eq!(url.host_header(), "[::1]:9443");
/// assert_eq!(WsUrl::parse("ws://Example.com").unwrap().to_string(), "ws://example.com/");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WsUrl {
    secure: bool,
    /// Lowercased; an IPv6 address without its brackets.
    host: String,
    ipv6: bool,
    port: u16,
    /// The path and query, starting with `/`, percent-encoded where needed.
    resource: String,
}

/// Why a string is not a usable `ws://` or `wss://` URL (RFC 6455 section 3).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://` at the start.
    MissingScheme {
        /// The URL as given, shortened.
        found: String,
    },
    /// A scheme other than `ws` or `wss`.
    UnsupportedScheme {
        /// The scheme as given.
        scheme: String,
    },
    /// Nothing between `//` and the path.
    MissingHost,
    /// A host that is not a name, an IPv4 address or a bracketed IPv6 address.
    InvalidHost {
        /// The host as given, shortened.
        host: String,
    },
    /// A port that is not a number from 1 to 65535.
    InvalidPort {
        /// The port as given, shortened.
        port: String,
    },
    /// `user:password@` before the host.
    UserInfo,
    /// A `#fragment`, which section 3 forbids.
    Fragment,
    /// A control character (including CR, LF or tab) inside the URL.
    ControlCharacter,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingScheme { found } => write!(
                f,
                "expected a URL starting with ws:// or wss://, found {found}"
            ),
            Self::UnsupportedScheme { scheme } => {
                write!(
                    f,
                    "expected the scheme ws or wss (RFC 6455 section 3), found {scheme:?}"
                )?;
                if scheme.eq_ignore_ascii_case("http") {
                    f.write_str(": use ws:// for a WebSocket over plain HTTP")?;
                } else if scheme.eq_ignore_ascii_case("https") {
                    f.write_str(": use wss:// for a WebSocket over TLS")?;
                }
                Ok(())
            }
            Self::MissingHost => f.write_str("expected a host after ws:// or wss://, found none"),
            Self::InvalidHost { host } => write!(
                f,
                "expected a host name, an IPv4 address or a bracketed IPv6 address such as [::1], found {host} (give an international name in its xn-- form)"
            ),
            Self::InvalidPort { port } => {
                write!(f, "expected a port from 1 to 65535, found {port}")
            }
            Self::UserInfo => f.write_str(
                "the URL holds user info (user@host), which WebSocket clients do not send: put credentials in an Authorization header instead",
            ),
            Self::Fragment => f.write_str(
                "the URL holds a fragment (#...), which RFC 6455 section 3 forbids in WebSocket URLs: escape '#' as %23",
            ),
            Self::ControlCharacter => {
                f.write_str("the URL holds a control character (such as CR, LF or tab)")
            }
        }
    }
}

impl std::error::Error for UrlError {}

impl WsUrl {
    /// Parses a `ws://` or `wss://` URL (RFC 6455 section 3). Leading and
    /// trailing whitespace is ignored.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim_matches(|c: char| c.is_ascii_whitespace());
        if url.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(UrlError::ControlCharacter);
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(UrlError::MissingScheme {
                found: snippet(without_userinfo(url).as_bytes()),
            });
        };
        let secure = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else if scheme.is_empty() {
            return Err(UrlError::MissingScheme {
                found: snippet(without_userinfo(url).as_bytes()),
            });
        } else {
            return Err(UrlError::UnsupportedScheme {
                scheme: scheme.chars().take(32).collect(),
            });
        };
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, ipv6, port) = split_authority(authority)?;
        let default_port = if secure { 443 } else { 80 };
        let port = match port {
            None | Some("") => default_port,
            Some(p) => parse_port(p)?,
        };
        let mut res = String::with_capacity(resource.len() + 1);
        if !resource.starts_with('/') {
            res.push('/');
        }
        for b in resource.bytes() {
            if b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
                )
            {
                res.push(char::from(b));
            } else {
                res.push('%');
                res.push(hex_digit(b >> 4));
                res.push(hex_digit(b & 0xf));
            }
        }
        Ok(Self {
            secure,
            host: host.to_ascii_lowercase(),
            ipv6,
            port,
            resource: res,
        })
    }

    /// Whether the scheme is `wss` (TLS).
    pub const fn is_secure(&self) -> bool {
        self.secure
    }

    /// `"ws"` or `"wss"`.
    pub const fn scheme(&self) -> &'static str {
        if self.secure { "wss" } else { "ws" }
    }

    /// The host to connect to and, for `wss`, to name in TLS: lowercased, an
    /// IPv6 address without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the host is an IPv6 address.
    pub const fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// The port: the one given, or 80 for `ws` and 443 for `wss` (section 3).
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The resource name of section 3: the path (at least `/`) and, if any,
    /// `?` and the query, as sent in the request line.
    pub fn resource_name(&self) -> &str {
        &self.resource
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.resource
            .split_once('?')
            .map_or(self.resource.as_str(), |(p, _)| p)
    }

    /// The query, without the `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        self.resource.split_once('?').map(|(_, q)| q)
    }

    /// The value of the `Host` header (RFC 6455 section 4.1 item 4): the host,
    /// bracketed if IPv6, and `:port` unless the port is the scheme's default.
    pub fn host_header(&self) -> String {
        let mut out = String::with_capacity(self.host.len() + 8);
        if self.ipv6 {
            out.push('[');
            out.push_str(&self.host);
            out.push(']');
        } else {
            out.push_str(&self.host);
        }
        let default_port = if self.secure { 443 } else { 80 };
        if self.port != default_port {
            out.push(':');
            out.push_str(&self.port.to_string());
        }
        out
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme(),
            self.host_header(),
            self.resource
        )
    }
}

impl FromStr for WsUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, UrlError> {
        Self::parse(s)
    }
}

/// `url` with any user information (`user:password@`) shown as `***@`
/// (all before its last `@`), for an error message: a password must not
/// reach a log.
pub(crate) fn without_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = url.get(start..).unwrap_or_default();
    // up to the last `@` anywhere: a password may hold `/`, `?` or `#`
    // unencoded, and hiding a path's `@` too costs an error message little
    match rest.rfind('@') {
        Some(at) => format!(
            "{}***{}",
            url.get(..start).unwrap_or_default(),
            rest.get(at..).unwrap_or_default()
        )
        .into(),
        None => url.into(),
    }
}

/// Splits `host[:port]` or `[v6][:port]`; the port is `None` when absent.
fn split_authority(authority: &str) -> Result<(&str, bool, Option<&str>), UrlError> {
    if authority.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let invalid = || UrlError::InvalidHost {
        host: snippet(authority.as_bytes()),
    };
    if let Some(inner) = authority.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or_else(invalid)?;
        addr.parse::<Ipv6Addr>().map_err(|_| invalid())?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(invalid)?),
        };
        return Ok((addr, true, port));
    }
    if authority.matches(':').count() > 1 {
        // An IPv6 address without its brackets.
        return Err(invalid());
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !ok {
        return Err(invalid());
    }
    Ok((host, false, port))
}

fn parse_port(p: &str) -> Result<u16, UrlError> {
    let invalid = || UrlError::InvalidPort {
        port: snippet(p.as_bytes()),
    };
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid()),
        Ok(n) => Ok(n),
    }
}

const fn hex_digit(n: u8) -> char {
    match n {
        0..=9 => (b'0' + n) as char,
        _ => (b'A' + n - 10) as char,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> WsUrl {
        WsUrl::parse(s).unwrap()
    }

    #[test]
    fn rfc6455_3_defaults_and_parts() {
        let u = ok("ws://example.com");
        assert_eq!(
            (u.host(), u.port(), u.resource_name()),
            ("example.com", 80, "/")
        );
        assert_eq!(u.host_header(), "example.com");
        let u = ok("WSS://Example.COM:443/a/b?x=1&y=2");
        assert!(u.is_secure());
        assert_eq!((u.host(), u.port()), ("example.com", 443));
        assert_eq!((u.path(), u.query()), ("/a/b", Some("x=1&y=2")));
        assert_eq!(u.host_header(), "example.com");
        let u = ok("ws://127.0.0.1:9001?q");
        assert_eq!(u.resource_name(), "/?q");
        assert_eq!(u.host_header(), "127.0.0.1:9001");
        assert_eq!(ok("ws://h:/").port(), 80);
        assert_eq!(ok("wss://h:80/").host_header(), "h:80");
    }

    #[test]
    fn rfc6455_3_ipv6_hosts() {
        let u = ok("ws://[::1]/");
        assert_eq!((u.host(), u.port(), u.is_ipv6()), ("::1", 80, true));
        assert_eq!(u.host_header(), "[::1]");
        let u = ok("ws://[2001:DB8::1]:8080/x");
        assert_eq!(u.host(), "2001:db8::1");
        assert_eq!(u.to_string(), "ws://[2001:db8::1]:8080/x");
        for bad in ["ws://[::1/", "ws://[nothex]/", "ws://[::1]x/", "ws://::1/"] {
            assert!(
                matches!(WsUrl::parse(bad), Err(UrlError::InvalidHost { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn rfc6455_3_refusals() {
        use UrlError::*;
        type Check = fn(&UrlError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("example.com/chat", |e| matches!(e, MissingScheme { .. })),
            ("://x", |e| matches!(e, MissingScheme { .. })),
            ("http://example.com", |e| {
                matches!(e, UnsupportedScheme { .. })
            }),
            ("ws://", |e| matches!(e, MissingHost)),
            ("ws:///chat", |e| matches!(e, MissingHost)),
            ("ws://:80/", |e| matches!(e, MissingHost)),
            ("ws://user:pw@host/", |e| matches!(e, UserInfo)),
            ("ws://host/chat#frag", |e| matches!(e, Fragment)),
            ("ws://host:0/", |e| matches!(e, InvalidPort { .. })),
            ("ws://host:65536/", |e| matches!(e, InvalidPort { .. })),
            ("ws://host:+80/", |e| matches!(e, InvalidPort { .. })),
            ("ws://hö.st/", |e| matches!(e, InvalidHost { .. })),
            ("ws://host/a\r\nEvil: 1", |e| matches!(e, ControlCharacter)),
        ];
        for (url, check) in cases {
            let err = WsUrl::parse(url).unwrap_err();
            assert!(check(&err), "{url:?} gave {err:?}");
            assert!(!err.to_string().is_empty());
        }
        assert!(
            WsUrl::parse("https://x")
                .unwrap_err()
                .to_string()
                .contains("use wss://")
        );
    }

    #[test]
    fn paths_are_percent_encoded_like_browsers_do() {
        assert_eq!(
            ok("ws://h/a b/ü?q=\"x\"").resource_name(),
            "/a%20b/%C3%BC?q=%22x%22"
        );
        assert_eq!(ok("ws://h/%23?a=/b").resource_name(), "/%23?a=/b");
        assert_eq!(ok("  ws://h/  ").resource_name(), "/");
    }
}
