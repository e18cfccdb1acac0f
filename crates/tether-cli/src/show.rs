//! How `tether connect` shows what it receives: messages on stdout, control
//! frames and the close on stderr. Pure formatting, no I/O.

use std::borrow::Cow;
use std::fmt::Write as _;

use tether::{CloseInfo, Message};

/// Lower-case hex, two digits per byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A message as printed to stdout (without the newline): text as is, binary
/// as `<binary N bytes>` or, with `hex`, as hex.
pub(crate) fn message(message: &Message, hex_binary: bool) -> Cow<'_, str> {
    match message {
        Message::Text(text) => Cow::Borrowed(text.as_str()),
        Message::Binary(data) if hex_binary => Cow::Owned(hex(data)),
        Message::Binary(data) => Cow::Owned(format!("<binary {} bytes>", data.len())),
    }
}

/// A Ping or Pong line for stderr: `< ping`, `< ping "text"` when the
/// payload is printable UTF-8, else `< ping 0x0102`.
pub(crate) fn control(kind: &str, payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        _ if payload.is_empty() => format!("< {kind}"),
        Ok(text) if !text.chars().any(char::is_control) => format!("< {kind} {text:?}"),
        _ => format!("< {kind} 0x{}", hex(payload)),
    }
}

/// The last line: `closed: 1000 (normal closure), clean`, with the reason
/// when there is one: `closed: 4000 (application code) "bye", clean`.
pub(crate) fn closed(info: &CloseInfo) -> String {
    let mut line = format!("closed: {}", info.code);
    if !info.reason.is_empty() {
        let _ = write!(line, " {:?}", info.reason);
    }
    line.push_str(if info.was_clean {
        ", clean"
    } else {
        ", not clean"
    });
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether::{CloseCode, Initiator};

    #[test]
    fn binary_is_a_size_or_hex() {
        let m = Message::binary(vec![0u8, 1, 0xab]);
        assert_eq!(message(&m, false), "<binary 3 bytes>");
        assert_eq!(message(&m, true), "0001ab");
        assert_eq!(message(&Message::text("héllo"), false), "héllo");
    }

    #[test]
    fn control_payloads_are_quoted_text_or_hex() {
        assert_eq!(control("ping", b""), "< ping");
        assert_eq!(control("ping", b"hi"), "< ping \"hi\"");
        assert_eq!(control("pong", &[0, 0, 0, 7]), "< pong 0x00000007");
        assert_eq!(control("pong", &[0xff]), "< pong 0xff");
    }

    #[test]
    fn the_close_line_names_code_meaning_and_cleanliness() {
        let mut info = CloseInfo {
            code: CloseCode::NORMAL,
            reason: String::new(),
            was_clean: true,
            initiator: Initiator::Remote,
        };
        assert_eq!(closed(&info), "closed: 1000 (normal closure), clean");
        info.code = CloseCode::new(4000);
        info.reason = "bye".into();
        assert_eq!(
            closed(&info),
            "closed: 4000 (application code) \"bye\", clean"
        );
        info.was_clean = false;
        assert!(closed(&info).ends_with(", not clean"));
    }
}
