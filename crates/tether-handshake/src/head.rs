//! What both sides do before reading a head's fields: bounding the buffer by
//! the limits, recognising TLS where HTTP was expected, and turning
//! `httparse`'s errors into plain words.
//!
//! Owns no state and never reads past `Limits::max_head_len` of a buffer
//! (apart from the first five bytes, which tell TLS and non-HTTP apart).

use crate::Limits;
use crate::headers::snippet;

/// What the first bytes of a head say about it.
pub(crate) enum Sniff {
    /// A TLS record header: content type 0x14-0x17 then major version 3.
    Tls,
    /// Too few bytes to tell.
    NeedMore,
    /// Not TLS: parse as HTTP.
    Other,
}

/// Recognises a TLS record (RFC 8446 section 5.1): a ClientHello starts
/// 0x16 0x03, an alert 0x15 0x03. No HTTP head starts with these bytes.
pub(crate) fn sniff_tls(buf: &[u8]) -> Sniff {
    let is_record_type = |b: u8| (0x14..=0x17).contains(&b);
    match buf {
        [] => Sniff::NeedMore,
        [t] if is_record_type(*t) => Sniff::NeedMore,
        [t, 0x03, ..] if is_record_type(*t) => Sniff::Tls,
        _ => Sniff::Other,
    }
}

/// The part of `buf` a parser may look at: at most `max_head_len` bytes.
pub(crate) fn window<'a>(buf: &'a [u8], limits: &Limits) -> &'a [u8] {
    buf.get(..limits.max_head_len).unwrap_or(buf)
}

/// The header slots httparse fills: `max_headers`, but never more than a
/// head of `max_head_len` bytes could hold (a field line takes at least three
/// bytes, `a:` and a newline), so a huge `max_headers` allocates nothing extra.
pub(crate) fn header_slots(limits: &Limits) -> Vec<httparse::Header<'static>> {
    vec![httparse::EMPTY_HEADER; header_slot_count(limits)]
}

/// How many header slots a parse needs under `limits`.
pub(crate) fn header_slot_count(limits: &Limits) -> usize {
    limits.max_headers.min(limits.max_head_len / 3 + 1)
}

/// Header slots a request parse keeps on the stack (the default limit).
pub(crate) const STACK_HEADER_SLOTS: usize = 64;

/// Whether a line of `head`, before its blank line, starts with a space or
/// a tab: a folded header line (obs-fold, RFC 9112 section 5.2).
pub(crate) fn has_obs_fold(head: &[u8]) -> bool {
    let end = head
        .windows(2)
        .position(|w| w == b"\n\n")
        .into_iter()
        .chain(head.windows(4).position(|w| w == b"\r\n\r\n"))
        .min()
        .unwrap_or(head.len());
    head.get(..end)
        .unwrap_or(head)
        .windows(2)
        .any(|w| w[0] == b'\n' && (w[1] == b' ' || w[1] == b'\t'))
}

/// `httparse`'s error in plain words.
pub(crate) const fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => {
            "a header name holds a character not allowed in a token, or a header line has no colon"
        }
        httparse::Error::HeaderValue => "a header value holds a control character",
        httparse::Error::NewLine => "a line does not end in CRLF",
        httparse::Error::Status => "the status code is not three digits followed by a space",
        httparse::Error::Token => {
            "the start line holds a character not allowed there, or is not \"METHOD TARGET HTTP/1.1\""
        }
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "the HTTP version is not HTTP/1.0 or HTTP/1.1",
    }
}

/// The HTTP version written in the start line, quoted, for an error message:
/// the first word of a status line; the third and last of a request line,
/// or, when it does not have three words (no version, or a space in the
/// target), the whole line, saying so.
pub(crate) fn version_in_start_line(buf: &[u8], response: bool) -> String {
    // empty lines before the start line are passed over (RFC 9112
    // section 2.2), as httparse does
    let skip = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let buf = buf.get(skip..).unwrap_or_default();
    let line_end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    let line = buf.get(..line_end).unwrap_or(buf);
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    if response {
        return snippet(words.next().unwrap_or(line));
    }
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some(_), Some(_), Some(version), None) => snippet(version),
        _ => format!(
            "the request line {}, which is not METHOD TARGET VERSION",
            snippet(line)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::version_in_start_line;

    #[test]
    fn rfc9112_3_the_version_named_is_the_request_line_s_third_word() {
        let v = |line: &[u8]| version_in_start_line(line, false);
        assert_eq!(v(b"GET /chat HTTP/2.0\r\nHost: h"), "\"HTTP/2.0\"");
        // no version, or a space in the target: the line, not a wrong word
        assert!(v(b"GET /chat\r\n").contains("\"GET /chat\", which is not"));
        assert!(v(b"GET /a b HTTP/1.1\r\n").contains("\"GET /a b HTTP/1.1\""));
        assert_eq!(
            version_in_start_line(b"HTTP/1.0 101 x\r\n", true),
            "\"HTTP/1.0\""
        );
    }
}
