//! `Sec-WebSocket-Extensions` values (RFC 6455 section 9.1).
//!
//! Owns the parsed form of one extension entry (a name and its parameters),
//! the parser for the header's grammar and the writer for it. It never decides
//! whether an extension is acceptable: that is negotiation, which belongs to
//! the extension itself (e.g. permessage-deflate, RFC 7692) and the
//! application. The grammar, from section 9.1:
//!
//! ```text
//! extension-list  = 1#extension
//! extension       = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//!     ; a quoted-string value must be a token once unquoted
//! ```

use core::fmt;

use crate::headers::{is_tchar, is_token};
use crate::{BuildError, RequestError, ResponseError};

/// One entry of a `Sec-WebSocket-Extensions` header (RFC 6455 section 9.1):
/// an extension a client offers, or one a server accepts, with its parameters
/// in order.
///
/// ```
/// use tether_handshake::Extension;
/// let offer = Extension::new("permessage-deflate").with_flag("client_max_window_bits");
/// assert_eq!(offer.to_string(), "permessage-deflate; client_max_window_bits");
/// let answer = Extension::new("permessage-deflate").with_param("server_max_window_bits", "10");
/// assert_eq!(answer.param("server_max_window_bits").unwrap().value(), Some("10"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    name: String,
    params: Vec<ExtensionParam>,
}

/// One parameter of an [`Extension`]: a name and an optional value
/// (RFC 6455 section 9.1 `extension-param`). A quoted value is stored unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionParam {
    name: String,
    value: Option<String>,
}

impl Extension {
    /// An extension entry with no parameters. The name must be a token
    /// (RFC 9110 section 5.6.2); that is checked when a head is built with it.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            params: Vec::new(),
        }
    }

    /// This entry with a parameter that has no value, e.g. `client_max_window_bits`.
    #[must_use]
    pub fn with_flag(mut self, name: impl Into<String>) -> Self {
        self.params.push(ExtensionParam {
            name: name.into(),
            value: None,
        });
        self
    }

    /// This entry with a parameter `name=value`; the value must be a token.
    #[must_use]
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push(ExtensionParam {
            name: name.into(),
            value: Some(value.into()),
        });
        self
    }

    /// The extension's name, e.g. `permessage-deflate`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parameters, in the order they came.
    pub fn params(&self) -> &[ExtensionParam] {
        &self.params
    }

    /// The first parameter called `name` (names compare exactly).
    pub fn param(&self, name: &str) -> Option<&ExtensionParam> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Checks every name and value is a token, so the entry can be written.
    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        let bad = |detail: &'static str| BuildError::InvalidExtension {
            extension: self.to_string(),
            detail,
        };
        if !is_token(self.name.as_bytes()) {
            return Err(bad("the extension name is not a token"));
        }
        for p in &self.params {
            if !is_token(p.name.as_bytes()) {
                return Err(bad("a parameter name is not a token"));
            }
            if let Some(v) = &p.value
                && !is_token(v.as_bytes())
            {
                return Err(bad("a parameter value is not a token"));
            }
        }
        Ok(())
    }
}

impl ExtensionParam {
    /// The parameter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parameter's value, unquoted, or `None` for a bare flag.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

/// Writes the entry as it appears in the header: `name; flag; key=value`.
impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for p in &self.params {
            write!(f, "; {}", p.name)?;
            if let Some(v) = &p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// Writes a list of entries joined with ", ".
pub(crate) fn join(extensions: &[Extension]) -> String {
    let mut out = String::new();
    for (i, e) in extensions.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&e.to_string());
    }
    out
}

/// Parses the values of every `Sec-WebSocket-Extensions` field, in order
/// (RFC 6455 section 9.1). The error says, in plain words, what was expected.
pub(crate) fn parse<'a>(
    values: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<Extension>, &'static str> {
    let mut out = Vec::new();
    for value in values {
        Cursor { s: value, i: 0 }.list(&mut out)?;
    }
    Ok(out)
}

/// Parses the `Sec-WebSocket-Extensions` values of a request whose head
/// was parsed elsewhere (hyper, axum, an HTTP/2 stack): the client's
/// offers, in order (RFC 6455 section 9.1).
///
/// # Errors
/// [`RequestError::MalformedExtensions`] naming what was expected.
pub fn parse_offers<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Extension>, RequestError> {
    let values: Vec<&[u8]> = values.into_iter().collect();
    parse(values.iter().copied()).map_err(|detail| RequestError::MalformedExtensions {
        found: crate::headers::join_values(values.iter().copied()),
        detail,
    })
}

/// Parses the `Sec-WebSocket-Extensions` values of a server's answer whose
/// head was parsed elsewhere: the extensions it accepted, in order.
///
/// # Errors
/// [`ResponseError::MalformedExtensions`] naming what was expected.
pub fn parse_answers<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Extension>, ResponseError> {
    let values: Vec<&[u8]> = values.into_iter().collect();
    parse(values.iter().copied()).map_err(|detail| ResponseError::MalformedExtensions {
        found: crate::headers::join_values(values.iter().copied()),
        detail,
    })
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        let t = self.s.get(start..self.i)?;
        // tchar is ASCII, so this is UTF-8.
        (!t.is_empty()).then(|| String::from_utf8_lossy(t).into_owned())
    }

    /// A quoted-string (RFC 9110 section 5.6.4), unquoted; the cursor is on `"`.
    fn quoted(&mut self) -> Result<String, &'static str> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("a quoted parameter value has no closing quote"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => out.push(b),
                        _ => return Err("a quoted parameter value ends in a lone backslash"),
                    }
                    self.i += 1;
                }
                Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => {
                    out.push(b);
                    self.i += 1;
                }
                Some(_) => return Err("a quoted parameter value holds a control character"),
            }
        }
    }

    fn list(&mut self, out: &mut Vec<Extension>) -> Result<(), &'static str> {
        loop {
            self.skip_ows();
            match self.peek() {
                None => return Ok(()),
                // An empty list element (RFC 9110 section 5.6.1).
                Some(b',') => {
                    self.i += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name = self
                .token()
                .ok_or("expected an extension name (a token) at the start of each entry")?;
            let mut ext = Extension::new(name);
            loop {
                self.skip_ows();
                match self.peek() {
                    None => break,
                    Some(b',') => {
                        self.i += 1;
                        break;
                    }
                    Some(b';') => {
                        self.i += 1;
                        self.skip_ows();
                        let pname = self
                            .token()
                            .ok_or("expected a parameter name (a token) after ';'")?;
                        self.skip_ows();
                        let value = if self.peek() == Some(b'=') {
                            self.i += 1;
                            self.skip_ows();
                            let v = if self.peek() == Some(b'"') {
                                let v = self.quoted()?;
                                if !is_token(v.as_bytes()) {
                                    return Err(
                                        "a quoted parameter value must be a token once unquoted",
                                    );
                                }
                                v
                            } else {
                                self.token()
                                    .ok_or("expected a parameter value (a token or a quoted string) after '='")?
                            };
                            Some(v)
                        } else {
                            None
                        };
                        ext.params.push(ExtensionParam { name: pname, value });
                    }
                    Some(_) => {
                        return Err("expected ';' or ',' after an extension name or parameter");
                    }
                }
            }
            out.push(ext);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Vec<Extension>, &'static str> {
        parse(core::iter::once(s.as_bytes()))
    }

    #[test]
    fn rfc6455_9_1_offers_with_params() {
        let got = p("permessage-deflate; client_max_window_bits, permessage-deflate;server_max_window_bits=10 ; client_no_context_takeover").unwrap();
        assert_eq!(
            got,
            [
                Extension::new("permessage-deflate").with_flag("client_max_window_bits"),
                Extension::new("permessage-deflate")
                    .with_param("server_max_window_bits", "10")
                    .with_flag("client_no_context_takeover"),
            ]
        );
    }

    #[test]
    fn rfc6455_9_1_quoted_value_is_unquoted_and_must_be_a_token() {
        let got = p(r#"x; a="12", y; b = "\1\2""#).unwrap();
        assert_eq!(got[0].param("a").unwrap().value(), Some("12"));
        assert_eq!(got[1].param("b").unwrap().value(), Some("12"));
        assert!(p(r#"x; a="1 2""#).is_err());
        assert!(p(r#"x; a="12"#).is_err());
    }

    #[test]
    fn rfc6455_9_1_malformed_lists_are_errors() {
        for bad in ["x;", "x; =1", "x y", ";x", "x; a=", "x; a=1 2", "x/1"] {
            assert!(p(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(p(" , ,").unwrap(), []);
    }

    #[test]
    fn display_round_trips() {
        let e = Extension::new("permessage-deflate")
            .with_param("server_max_window_bits", "10")
            .with_flag("client_no_context_takeover");
        assert_eq!(p(&e.to_string()).unwrap(), [e]);
    }
}
