//! `tether connect --jsonl`: every event as one JSON object on its own line
//! of stdout, for shell pipelines and monitors.
//!
//! Owns the shape of each object; never prints. Every object has `"event"`:
//! `connected`, `message`, `ping`, `pong`, `closed`, and with `--reconnect`
//! `disconnected`, `connect_failed`, `reconnecting`, `stopped`.

use std::time::Duration;

use serde_json::{Value, json};
use tether::handshake::Accepted;
use tether::reconnect::StopReason;
use tether::{CloseInfo, Initiator, Message};

use crate::show;

/// `{"event":"connected", "url", "subprotocol", "extensions", "attempt"}`.
pub(crate) fn connected(url: &str, accepted: &Accepted, attempt: Option<u32>) -> String {
    let extensions: Vec<String> = accepted
        .extensions()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut v = json!({
        "event": "connected",
        "url": url,
        "subprotocol": accepted.subprotocol(),
        "extensions": extensions,
    });
    if let (Some(attempt), Some(map)) = (attempt, v.as_object_mut()) {
        map.insert("attempt".into(), json!(attempt));
    }
    v.to_string()
}

/// `{"event":"message", "kind":"text", "text"}` or `{"event":"message",
/// "kind":"binary", "size"}` (plus `"hex"` with `--hex`).
pub(crate) fn message(message: &Message, hex: bool) -> String {
    match message {
        Message::Text(text) => json!({
            "event": "message",
            "kind": "text",
            "size": text.len(),
            "text": text.as_str(),
        }),
        Message::Binary(bytes) => {
            let mut v = json!({
                "event": "message",
                "kind": "binary",
                "size": bytes.len(),
            });
            if let (true, Some(map)) = (hex, v.as_object_mut()) {
                map.insert("hex".into(), json!(show::hex(bytes)));
            }
            v
        }
    }
    .to_string()
}

/// `{"event":"ping"|"pong", "size", "payload"}` (payload as text when it
/// is UTF-8, else `"hex"`).
pub(crate) fn control(event: &str, payload: &[u8]) -> String {
    let mut v = json!({ "event": event, "size": payload.len() });
    if let Some(map) = v.as_object_mut() {
        match std::str::from_utf8(payload) {
            Ok(text) => map.insert("payload".into(), json!(text)),
            Err(_) => map.insert("hex".into(), json!(show::hex(payload))),
        };
    }
    v.to_string()
}

fn close_fields(event: &str, info: &CloseInfo) -> Value {
    json!({
        "event": event,
        "code": info.code.as_u16(),
        "meaning": info.code.description(),
        "reason": info.reason,
        "was_clean": info.was_clean,
        "initiator": match info.initiator {
            Initiator::Application => "application",
            Initiator::Local => "local",
            Initiator::Remote => "remote",
        },
    })
}

/// `{"event":"closed", "code", "meaning", "reason", "was_clean",
/// "initiator"}`: the end.
pub(crate) fn closed(info: &CloseInfo) -> String {
    close_fields("closed", info).to_string()
}

/// As [`closed`], for one connection of a reconnecting client.
pub(crate) fn disconnected(info: &CloseInfo) -> String {
    close_fields("disconnected", info).to_string()
}

/// `{"event":"connect_failed", "error"}`.
pub(crate) fn connect_failed(error: &str) -> String {
    json!({ "event": "connect_failed", "error": error }).to_string()
}

/// `{"event":"reconnecting", "attempt", "delay_ms"}`.
pub(crate) fn reconnecting(attempt: u32, delay: Duration) -> String {
    json!({
        "event": "reconnecting",
        "attempt": attempt,
        "delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
    })
    .to_string()
}

/// `{"event":"stopped", "why", ...}`.
pub(crate) fn stopped(reason: &StopReason) -> String {
    match reason {
        StopReason::ApplicationClosed => json!({ "event": "stopped", "why": "closed" }),
        StopReason::Intentional(code) => {
            json!({ "event": "stopped", "why": "intentional", "code": code.as_u16() })
        }
        StopReason::GaveUp { attempts } => {
            json!({ "event": "stopped", "why": "gave_up", "attempts": attempts })
        }
        StopReason::Refused { status } => {
            json!({ "event": "stopped", "why": "refused", "status": status })
        }
        StopReason::Unusable(detail) => {
            json!({ "event": "stopped", "why": "unusable", "detail": detail })
        }
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tether::CloseCode;

    fn parse(line: &str) -> Value {
        assert!(!line.contains('\n'), "one line: {line}");
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn every_event_is_one_line_of_json_with_its_fields() {
        let m = parse(&message(&Message::text("a \"quoted\"\nline"), false));
        assert_eq!(m["event"], "message");
        assert_eq!(m["kind"], "text");
        assert_eq!(m["text"], "a \"quoted\"\nline");
        let b = parse(&message(&Message::binary(vec![0xde, 0xad]), true));
        assert_eq!(
            (b["kind"].as_str(), b["size"].as_u64()),
            (Some("binary"), Some(2))
        );
        assert_eq!(b["hex"], "dead");
        let p = parse(&control("ping", &[0xff, 0x00]));
        assert_eq!(p["hex"], "ff00");
        let c = parse(&closed(&CloseInfo {
            code: CloseCode::new(4000),
            reason: "bye".into(),
            was_clean: true,
            initiator: Initiator::Remote,
        }));
        assert_eq!(c["code"], 4000);
        assert_eq!(c["was_clean"], true);
        assert_eq!(c["initiator"], "remote");
        assert!(c["meaning"].is_string());
        let s = parse(&stopped(&StopReason::Refused { status: 404 }));
        assert_eq!(
            (s["why"].as_str(), s["status"].as_u64()),
            (Some("refused"), Some(404))
        );
        let r = parse(&reconnecting(2, Duration::from_millis(1500)));
        assert_eq!(r["delay_ms"], 1500);
        let client = tether::handshake::ClientHandshake::new(
            "ws://x/",
            tether::handshake::ClientConfig::new().subprotocol("chat"),
        )
        .unwrap();
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
            client.expected_accept()
        );
        let accepted = match client.check_response(answer.as_bytes()).unwrap() {
            tether::handshake::Status::Complete(accepted, _) => accepted,
            tether::handshake::Status::Partial => panic!("partial"),
        };
        let k = parse(&connected("ws://x/", &accepted, Some(1)));
        assert_eq!(k["subprotocol"], "chat");
        assert_eq!(k["attempt"], 1);
    }
}
