//! Header fields as the handshake sees them (RFC 9110 section 5, RFC 6455
//! section 4).
//!
//! Owns the owned copy of a head's fields with case-insensitive lookup, the
//! splitting of comma-separated token lists (`Connection: keep-alive, Upgrade`),
//! and the checks that keep caller-supplied names and values from breaking a
//! head we write (no CR or LF can be smuggled in). It never parses a head
//! itself: `httparse` does that.

use crate::BuildError;

/// One header field: its name as it came, and its value as raw bytes (a value
/// may hold obsolete non-ASCII text, RFC 9110 section 5.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The name, then the value: one allocation per field, not two.
    bytes: Vec<u8>,
    name_len: usize,
}

impl Header {
    /// The field name, in the case it was sent.
    pub fn name(&self) -> &str {
        // httparse accepts only token characters (ASCII) in names
        core::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    fn name_bytes(&self) -> &[u8] {
        self.bytes.get(..self.name_len).unwrap_or_default()
    }

    /// The field value, without surrounding whitespace.
    pub fn value(&self) -> &[u8] {
        self.bytes.get(self.name_len..).unwrap_or_default()
    }

    /// The field value as text, if it is valid UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        core::str::from_utf8(self.value()).ok()
    }
}

/// The header fields of a head, in the order they came. Names compare ASCII
/// case-insensitively (RFC 9110 section 5.1); a name may appear more than once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<Header>,
}

impl Headers {
    pub(crate) fn from_httparse(fields: &[httparse::Header<'_>]) -> Self {
        Self {
            fields: fields
                .iter()
                .map(|h| {
                    // a folded line (obs-fold, taken in responses only) is
                    // read as spaces (RFC 9112 section 5.2: one or more
                    // SP), before the trim
                    let unfolded: Vec<u8>;
                    let value = if h.value.iter().any(|&b| b == b'\r' || b == b'\n') {
                        unfolded = h
                            .value
                            .iter()
                            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                            .collect();
                        trim_ows(&unfolded)
                    } else {
                        trim_ows(h.value)
                    };
                    let mut bytes = Vec::with_capacity(h.name.len() + value.len());
                    bytes.extend_from_slice(h.name.as_bytes());
                    bytes.extend_from_slice(value);
                    Header {
                        bytes,
                        name_len: h.name.len(),
                    }
                })
                .collect(),
        }
    }

    /// The fields of an `http` crate header map (HTTP/2 and HTTP/3 heads,
    /// whose names are lower-case), in its order.
    pub(crate) fn from_http(map: &http::HeaderMap) -> Self {
        Self {
            fields: map
                .iter()
                .map(|(name, value)| {
                    let value = trim_ows(value.as_bytes());
                    let mut bytes = Vec::with_capacity(name.as_str().len() + value.len());
                    bytes.extend_from_slice(name.as_str().as_bytes());
                    bytes.extend_from_slice(value);
                    Header {
                        bytes,
                        name_len: name.as_str().len(),
                    }
                })
                .collect(),
        }
    }

    /// The value of the first field called `name` (any case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|h| h.name_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .map(Header::value)
    }

    /// The value of the first field called `name` (any case), if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The values of every field called `name` (any case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |h| h.name_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .map(Header::value)
    }

    /// Whether a field called `name` (any case) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every field, in order.
    pub fn iter(&self) -> core::slice::Iter<'_, Header> {
        self.fields.iter()
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// How many fields are called `name`.
    pub(crate) fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    /// The elements of the comma-separated lists in every field called `name`,
    /// trimmed, without the empty ones (RFC 9110 section 5.6.1).
    pub(crate) fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).flat_map(split_list)
    }

    /// Whether the lists in every field called `name` hold `token` (any case).
    pub(crate) fn list_contains(&self, name: &str, token: &str) -> bool {
        self.list(name)
            .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Every value of `name` joined with ", ", shortened for an error message.
    pub(crate) fn joined(&self, name: &str) -> String {
        join_values(self.get_all(name))
    }
}

/// Field values joined with ", ", shortened for an error message.
pub(crate) fn join_values<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut out = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(v);
    }
    snippet(&out)
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = core::slice::Iter<'a, Header>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Splits one field value at commas, trimming optional whitespace and
/// dropping empty elements (RFC 9110 section 5.6.1).
pub(crate) fn split_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// `value` without leading and trailing spaces and tabs (RFC 9110 section 5.6.3).
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    value.get(start..end).unwrap_or_default()
}

/// Whether `b` is a `tchar` (RFC 9110 section 5.6.2).
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `s` is a non-empty `token` (RFC 9110 section 5.6.2).
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Whether every byte of `s` is visible ASCII (no space, control or non-ASCII).
pub(crate) fn is_visible_ascii(s: &[u8]) -> bool {
    s.iter().all(|b| b.is_ascii_graphic())
}

/// Checks a header field the caller wants us to write: the name a token, the
/// value free of control characters other than tab (so no CR or LF can end
/// the line early), and the name not one the handshake writes itself.
pub(crate) fn check_extra_header(
    name: &str,
    value: &str,
    reserved: &[&str],
) -> Result<(), BuildError> {
    if !is_token(name.as_bytes()) {
        return Err(BuildError::InvalidHeaderName {
            name: snippet(name.as_bytes()),
        });
    }
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(BuildError::ReservedHeader {
            name: name.to_owned(),
        });
    }
    check_header_value(name, value)
}

/// Checks a header value we are about to write (RFC 9110 section 5.5).
pub(crate) fn check_header_value(name: &str, value: &str) -> Result<(), BuildError> {
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(BuildError::InvalidHeaderValue {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Writes `name: value\r\n`.
pub(crate) fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Bytes from the wire made safe and short for an error message: quoted,
/// non-printable bytes escaped, cut after 64 bytes.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let shown = bytes.get(..MAX).unwrap_or(bytes);
    let mut out = String::with_capacity(shown.len() + 8);
    out.push('"');
    out.extend(shown.escape_ascii().map(char::from));
    out.push('"');
    if bytes.len() > MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9110_5_6_1_list_elements_are_trimmed_and_empty_ones_dropped() {
        let got: Vec<&[u8]> = split_list(b" keep-alive ,, \tUpgrade,").collect();
        assert_eq!(got, [&b"keep-alive"[..], b"Upgrade"]);
    }

    #[test]
    fn trim_handles_all_whitespace() {
        assert_eq!(trim_ows(b"  \t "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b" a b "), b"a b");
    }

    #[test]
    fn snippet_escapes_and_cuts() {
        assert_eq!(snippet(b"a\r\n\x16"), r#""a\r\n\x16""#);
        assert!(snippet(&[b'x'; 100]).ends_with("\"..."));
    }

    #[test]
    fn header_injection_is_refused() {
        assert!(check_extra_header("X-A", "ok\r\nEvil: 1", &[]).is_err());
        assert!(check_extra_header("X A", "ok", &[]).is_err());
        assert!(check_extra_header("upgrade", "x", &["Upgrade"]).is_err());
        assert!(check_extra_header("X-A", "ok\tfine", &[]).is_ok());
    }
}
