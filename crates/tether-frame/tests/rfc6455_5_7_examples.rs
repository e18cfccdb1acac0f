//! The examples of RFC 6455 section 5.7, decoded and encoded byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use tether_frame::{Frame, FrameDecoder, FrameEncoder, FrameHeader, Limits, OpCode, Role, Rsv};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn decode_all(role: Role, wire: &[u8]) -> Vec<Frame> {
    let mut dec = FrameDecoder::new(role, Limits::default());
    let mut buf = BytesMut::from(wire);
    let mut frames = Vec::new();
    while let Some(f) = dec.decode(&mut buf).unwrap() {
        frames.push(f);
    }
    assert!(buf.is_empty(), "all input consumed");
    frames
}

fn encode(role: Role, fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut enc = FrameEncoder::new(role, || KEY);
    let mut out = BytesMut::new();
    enc.encode(fin, Rsv::NONE, op, payload, &mut out);
    out.to_vec()
}

#[test]
fn rfc6455_5_7_single_frame_unmasked_text() {
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let f = decode_all(Role::Client, &wire);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].header, FrameHeader::new(OpCode::Text, 5));
    assert_eq!(&f[0].payload[..], b"Hello");
    assert_eq!(encode(Role::Server, true, OpCode::Text, b"Hello"), wire);
}

#[test]
fn rfc6455_5_7_single_frame_masked_text() {
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let f = decode_all(Role::Server, &wire);
    assert_eq!(f[0].header.mask, Some(KEY));
    assert_eq!(&f[0].payload[..], b"Hello");
    assert_eq!(encode(Role::Client, true, OpCode::Text, b"Hello"), wire);
}

#[test]
fn rfc6455_5_7_fragmented_unmasked_text() {
    let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let f = decode_all(Role::Client, &wire);
    assert_eq!(f.len(), 2);
    assert!(!f[0].header.fin);
    assert_eq!(f[0].header.opcode, OpCode::Text);
    assert_eq!(&f[0].payload[..], b"Hel");
    assert!(f[1].header.fin);
    assert_eq!(f[1].header.opcode, OpCode::Continuation);
    assert_eq!(&f[1].payload[..], b"lo");
    let mut out = encode(Role::Server, false, OpCode::Text, b"Hel");
    out.extend(encode(Role::Server, true, OpCode::Continuation, b"lo"));
    assert_eq!(out, wire);
}

#[test]
fn rfc6455_5_7_unmasked_ping() {
    let wire = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let f = decode_all(Role::Client, &wire);
    assert_eq!(f[0].header.opcode, OpCode::Ping);
    assert_eq!(&f[0].payload[..], b"Hello");
    assert_eq!(encode(Role::Server, true, OpCode::Ping, b"Hello"), wire);
}

#[test]
fn rfc6455_5_7_masked_pong() {
    let wire = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let f = decode_all(Role::Server, &wire);
    assert_eq!(f[0].header.opcode, OpCode::Pong);
    assert_eq!(&f[0].payload[..], b"Hello");
    assert_eq!(encode(Role::Client, true, OpCode::Pong, b"Hello"), wire);
}

#[test]
fn rfc6455_5_7_256_bytes_binary_16_bit_length() {
    let payload = vec![0xAB; 256];
    let wire = encode(Role::Server, true, OpCode::Binary, &payload);
    assert_eq!(&wire[..4], &[0x82, 0x7E, 0x01, 0x00]);
    assert_eq!(wire.len(), 4 + 256);
    let f = decode_all(Role::Client, &wire);
    assert_eq!(f[0].payload.len(), 256);
}

#[test]
fn rfc6455_5_7_64k_binary_64_bit_length() {
    let payload = vec![0xCD; 65536];
    let wire = encode(Role::Server, true, OpCode::Binary, &payload);
    assert_eq!(
        &wire[..10],
        &[0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
    );
    let f = decode_all(Role::Client, &wire);
    assert_eq!(&f[0].payload[..], &payload[..]);
}
