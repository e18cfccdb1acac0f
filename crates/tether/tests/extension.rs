//! The extension hook (room for permessage-deflate, RFC 7692): an extension
//! claims RSV1 and transforms whole message payloads, and the connection
//! keeps the framing rules around it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use tether::frame::Rsv;
use tether::{CloseCode, Event, Extension, ExtensionError, Message, MessageKind};

/// A toy "compression": the payload reversed, flagged with RSV1. Messages
/// without RSV1 pass through untouched, as with permessage-deflate.
struct Reverse;

impl Extension for Reverse {
    fn name(&self) -> &str {
        "x-reverse"
    }
    fn rsv(&self) -> Rsv {
        Rsv::RSV1
    }
    fn decode(
        &mut self,
        _kind: MessageKind,
        _rsv: Rsv,
        payload: BytesMut,
        max: usize,
    ) -> Result<Bytes, ExtensionError> {
        if payload.len() > max {
            return Err(ExtensionError {
                code: CloseCode::MESSAGE_TOO_BIG,
                reason: "too big once decoded".into(),
            });
        }
        if payload.first() == Some(&b'!') {
            return Err(ExtensionError {
                code: CloseCode::INVALID_PAYLOAD,
                reason: "corrupt stream".into(),
            });
        }
        let mut out = payload.to_vec();
        out.reverse();
        Ok(Bytes::from(out))
    }
    fn encode(&mut self, _kind: MessageKind, payload: Bytes) -> (Rsv, Bytes) {
        let mut out = payload.to_vec();
        out.reverse();
        (Rsv::RSV1, out.into())
    }
}

fn reversed(s: &[u8]) -> Vec<u8> {
    s.iter().rev().copied().collect()
}

#[test]
fn rfc7692_rsv1_is_a_protocol_error_without_the_extension() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.feed(&raw_frame(role, true, 4, TEXT, b"olleh"));
        h.assert_failed_with(1002);
    }
}

#[test]
fn rfc7692_extension_decodes_whole_messages_including_fragmented_ones() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.set_extension(Box::new(Reverse));
        // one frame, RSV1 set
        h.feed(&raw_frame(
            role,
            true,
            4,
            TEXT,
            &reversed("héllo".as_bytes()),
        ));
        // fragmented: RSV1 on the first frame only; the transform sees the whole message
        let whole = reversed(b"fragmented message");
        h.feed(&raw_frame(role, false, 4, BINARY, &whole[..5]));
        h.feed(&raw_frame(role, true, 0, CONT, &whole[5..]));
        // no RSV1: passed through untouched
        h.feed(&frame(role, TEXT, b"plain"));
        assert_eq!(
            h.messages(),
            vec![
                Message::text("héllo"),
                Message::binary(&b"fragmented message"[..]),
                Message::text("plain")
            ]
        );
        // sending goes through the extension and sets RSV1
        h.conn.send(Message::text("abc")).unwrap();
        h.peer_allows_rsv1();
        let out = h.output();
        assert_eq!((out[0].rsv1, &out[0].payload[..]), (true, &b"cba"[..]));
    }
}

#[test]
fn rfc7692_6_rsv1_on_a_continuation_or_control_frame_is_a_protocol_error() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.set_extension(Box::new(Reverse));
        h.feed(&raw_frame(role, false, 0, TEXT, b"a"));
        h.feed(&raw_frame(role, true, 4, CONT, b"b"));
        h.assert_failed_with(1002);
        let mut h = Harness::new(role);
        h.conn.set_extension(Box::new(Reverse));
        h.feed(&raw_frame(role, true, 4, PING, b""));
        h.assert_failed_with(1002);
        // RSV2 is still not claimed
        let mut h = Harness::new(role);
        h.conn.set_extension(Box::new(Reverse));
        h.feed(&raw_frame(role, true, 2, TEXT, b"x"));
        h.assert_failed_with(1002);
    }
}

#[test]
fn rfc6455_8_1_transformed_text_is_utf8_checked_after_decoding() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.set_extension(Box::new(Reverse));
        // "é" reversed on the wire is C3 A9 -> A9 C3, which is not UTF-8 until decoded
        h.feed(&raw_frame(role, true, 4, TEXT, &[0xA9, 0xC3]));
        assert_eq!(h.events(), vec![Event::Message(Message::text("é"))]);
        // decoded bytes that are not UTF-8 fail with 1007
        h.feed(&raw_frame(role, true, 4, TEXT, &[0xC3, 0xA9]));
        h.assert_failed_with(1007);
    }
}

#[test]
fn extension_errors_close_with_their_code() {
    for role in ROLES {
        let mut h = Harness::new(role);
        h.conn.set_extension(Box::new(Reverse));
        h.feed(&raw_frame(role, true, 4, BINARY, b"!x"));
        h.assert_failed_with(1007);
    }
}
