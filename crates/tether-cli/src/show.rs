//! How `tether connect` shows what it receives: messages on stdout, control
//! frames, the close and (with `--reconnect`) the client's lifecycle on
//! stderr. Pure formatting, no I/O. A close code is always shown with its
//! meaning (`CloseCode`'s Display: `1001 (going away)`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use tether::reconnect::StopReason;
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
    format!("closed: {}", close(info))
}

/// With `--reconnect`, a connection that ended:
/// `disconnected: 1006 (abnormal closure: no Close frame was received), not clean`.
pub(crate) fn disconnected(info: &CloseInfo) -> String {
    format!("disconnected: {}", close(info))
}

/// `1001 (going away) "bye", clean`: the code with its meaning, the reason
/// when there is one, and whether the closing handshake completed. A reason
/// from a Close frame is quoted, as sent; 1006 never travels in a frame, so
/// its reason is our own words and follows a colon, unquoted.
fn close(info: &CloseInfo) -> String {
    let mut line = info.code.to_string();
    if info.code == tether::CloseCode::ABNORMAL && !info.reason.is_empty() {
        let _ = write!(line, ": {}", info.reason);
    } else if !info.reason.is_empty() {
        let _ = write!(line, " {:?}", info.reason);
    }
    line.push_str(if info.was_clean {
        ", clean"
    } else {
        ", not clean"
    });
    line
}

/// `connected to URL`, or `connected to URL (attempt 3)` after a retry.
pub(crate) fn connected(url: &str, attempt: u32) -> String {
    if attempt == 0 {
        format!("connected to {url}")
    } else {
        format!("connected to {url} (attempt {attempt})")
    }
}

/// `reconnecting in 1.2s (attempt 3)`.
pub(crate) fn reconnecting(attempt: u32, delay: Duration) -> String {
    format!("reconnecting in {} (attempt {attempt})", self::delay(delay))
}

/// A wait as people read it: `35ms` under a second, else `1.2s`.
pub(crate) fn delay(delay: Duration) -> String {
    if delay < Duration::from_secs(1) {
        format!("{}ms", delay.as_millis())
    } else {
        format!("{:.1}s", delay.as_secs_f64())
    }
}

/// Why the reconnecting client stopped. `last` is how the last connection
/// ended (for an intentional code, its reason) or the last connect error
/// (for giving up).
pub(crate) fn stopped(reason: &StopReason, last: Option<&str>) -> String {
    match reason {
        StopReason::ApplicationClosed => "stopped: closed by us".to_owned(),
        StopReason::Intentional(code) => {
            let mut line = format!("stopped: the server closed with {code}");
            if let Some(reason) = last.filter(|r| !r.is_empty()) {
                let _ = write!(line, " {reason:?}");
            }
            line.push_str(", marked intentional (--intentional-code): not reconnecting");
            line
        }
        StopReason::GaveUp { attempts } => {
            let mut line = format!(
                "gave up after {attempts} attempt{}",
                if *attempts == 1 { "" } else { "s" }
            );
            if let Some(last) = last {
                let _ = write!(line, "; last: {last}");
            }
            line
        }
        StopReason::Refused { status } => {
            let mut line = format!(
                "stopped: the server answered {status}, which asking again will not change: not reconnecting"
            );
            if let Some(last) = last {
                let _ = write!(line, " ({last})");
            }
            line
        }
        StopReason::Unusable(why) => {
            format!("stopped: the request cannot be made as given ({why}): not reconnecting")
        }
    }
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
        // a 1006 reason is ours, not the peer's: not quoted as if sent
        let info = CloseInfo::abnormal("the peer closed the transport without a Close");
        assert_eq!(
            closed(&info),
            "closed: 1006 (abnormal closure: no Close frame was received): \
             the peer closed the transport without a Close, not clean"
        );
    }

    #[test]
    fn lifecycle_lines_name_codes_with_their_meaning() {
        let info = CloseInfo {
            code: CloseCode::ABNORMAL,
            reason: String::new(),
            was_clean: false,
            initiator: Initiator::Remote,
        };
        assert_eq!(
            disconnected(&info),
            "disconnected: 1006 (abnormal closure: no Close frame was received), not clean"
        );
        assert_eq!(connected("ws://h/", 0), "connected to ws://h/");
        assert_eq!(connected("ws://h/", 2), "connected to ws://h/ (attempt 2)");
        assert_eq!(
            reconnecting(3, Duration::from_millis(1234)),
            "reconnecting in 1.2s (attempt 3)"
        );
        assert_eq!(
            reconnecting(1, Duration::from_millis(35)),
            "reconnecting in 35ms (attempt 1)"
        );
        assert_eq!(
            stopped(&StopReason::Intentional(CloseCode::new(4000)), Some("bye")),
            "stopped: the server closed with 4000 (application code) \"bye\", \
             marked intentional (--intentional-code): not reconnecting"
        );
        assert_eq!(
            stopped(&StopReason::GaveUp { attempts: 1 }, Some("refused")),
            "gave up after 1 attempt; last: refused"
        );
        assert_eq!(
            stopped(&StopReason::GaveUp { attempts: 3 }, None),
            "gave up after 3 attempts"
        );
        assert_eq!(
            stopped(&StopReason::ApplicationClosed, None),
            "stopped: closed by us"
        );
    }
}
