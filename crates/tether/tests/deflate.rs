//! permessage-deflate (RFC 7692) in the connection: the byte-exact examples
//! of section 7.2.3, context takeover and its absence, windows, the
//! threshold, the decompression-bomb limit, and the framing rules of
//! section 6.
#![cfg(feature = "deflate")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tether::deflate::DeflateParams;
use tether::{Config, Connection, DeflateConfig, Event, Message, PerMessageDeflate, Role};

/// Every message compressed (the RFC examples are 5 bytes long).
fn eager() -> DeflateConfig {
    DeflateConfig {
        threshold: 0,
        ..DeflateConfig::default()
    }
}

fn pmd(role: Role, params: DeflateParams) -> Box<PerMessageDeflate> {
    Box::new(PerMessageDeflate::new(role, &params, &eager()))
}

fn harness(role: Role, params: DeflateParams) -> Harness {
    let mut h = Harness::new(role);
    h.conn.set_extension(pmd(role, params));
    h.peer_allows_rsv1();
    h
}

const HELLO_FRAME: [u8; 9] = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

// ----- RFC 7692 section 7.2.3, byte for byte --------------------------------

#[test]
fn rfc7692_7_2_1_hello_compresses_to_the_rfc_bytes() {
    let mut d = PerMessageDeflate::new(Role::Server, &DeflateParams::default(), &eager());
    assert_eq!(
        d.compress(b"Hello").unwrap(),
        [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
}

#[test]
fn rfc7692_7_2_3_1_hello() {
    // sending: a server's unmasked frame is exactly the RFC's
    let mut server = harness(Role::Server, DeflateParams::default());
    server.conn.send(Message::text("Hello")).unwrap();
    assert_eq!(&server.conn.take_output()[..], HELLO_FRAME);
    // receiving
    let mut client = harness(Role::Client, DeflateParams::default());
    client.feed(&HELLO_FRAME);
    assert_eq!(client.messages(), [Message::text("Hello")]);
    assert!(client.error.is_none());
}

#[test]
fn rfc7692_7_2_3_1_hello_in_two_fragments() {
    let mut client = harness(Role::Client, DeflateParams::default());
    client.feed(&[0x41, 0x03, 0xf2, 0x48, 0xcd]);
    assert_eq!(client.messages(), []);
    client.feed(&[0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00]);
    assert_eq!(client.messages(), [Message::text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_2_two_messages_share_the_window() {
    let mut server = harness(Role::Server, DeflateParams::default());
    server.conn.send(Message::text("Hello")).unwrap();
    assert_eq!(&server.conn.take_output()[..], HELLO_FRAME);
    server.conn.send(Message::text("Hello")).unwrap();
    let second = [0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00];
    assert_eq!(&server.conn.take_output()[..], second);

    let mut client = harness(Role::Client, DeflateParams::default());
    client.feed(&HELLO_FRAME).feed(&second);
    assert_eq!(
        client.messages(),
        [Message::text("Hello"), Message::text("Hello")]
    );
    assert!(client.error.is_none());
}

#[test]
fn rfc7692_7_2_3_2_no_context_takeover_sends_the_same_bytes_twice() {
    let params = DeflateParams {
        server_no_context_takeover: true,
        ..DeflateParams::default()
    };
    // the compressor starts afresh for each message
    let mut d = PerMessageDeflate::new(Role::Server, &params, &eager());
    for _ in 0..3 {
        assert_eq!(d.compress(b"Hello").unwrap(), HELLO_FRAME[2..]);
    }
    // the client resets its inflater too, and decodes each the same way
    let mut client = harness(Role::Client, params);
    client.feed(&HELLO_FRAME).feed(&HELLO_FRAME);
    assert_eq!(client.messages().len(), 2);
    // a message that refers back to the previous one is then corrupt
    client.feed(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
    client.assert_failed_with(1007);
    // whole frames: a message that compresses is sent the same way each time
    let text = "Hello, Hello, Hello, Hello, Hello, Hello";
    let mut server = harness(Role::Server, params);
    server.conn.send(Message::text(text)).unwrap();
    let first = server.conn.take_output();
    assert_eq!(first[0], 0xc1);
    assert!(first.len() < text.len());
    server.conn.send(Message::text(text)).unwrap();
    assert_eq!(server.conn.take_output(), first);
}

#[test]
fn rfc7692_7_2_3_3_a_block_with_no_compression() {
    let mut client = harness(Role::Client, DeflateParams::default());
    client.feed(&[
        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ]);
    assert_eq!(client.messages(), [Message::text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_4_a_block_with_bfinal_set() {
    let mut client = harness(Role::Client, DeflateParams::default());
    client.feed(&[0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]);
    assert_eq!(client.messages(), [Message::text("Hello")]);
    // the inflater's stream ended, the peer's window did not (section
    // 7.2.2: with context takeover the next message is inflated with the
    // window of the last): the back-reference of section 7.2.3.2 still
    // reaches "Hello" (it failed with 1007: the window was dropped)
    client.feed(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
    assert_eq!(client.messages(), [Message::text("Hello")]);
    client.feed(&HELLO_FRAME);
    assert_eq!(client.messages(), [Message::text("Hello")]);
    assert!(client.error.is_none());
    // without context takeover a new stream starts anyway
    let params = DeflateParams {
        server_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let mut client = harness(Role::Client, params);
    client.feed(&[0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]);
    client.feed(&HELLO_FRAME);
    assert_eq!(
        client.messages(),
        [Message::text("Hello"), Message::text("Hello")]
    );
}

/// Blocks after a final block in the same message are the message's too:
/// a new stream, inflated with the window so far. They were dropped and
/// the message delivered cut short ("Hello" for "Hellollo").
#[test]
fn rfc7692_7_2_3_4_blocks_after_a_final_block_are_inflated_not_dropped() {
    let mut client = harness(Role::Client, DeflateParams::default());
    // "Hello" in a final block, then "llo" in a block of a stream of its own
    client.feed(&[
        0xc1, 0x0c, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ]);
    assert_eq!(client.messages(), [Message::text("Hellollo")]);
    // and the next message's back-reference (distance 5, length 4, after
    // an "H") reaches into the bytes after the final block: "Hellollo" +
    // "H" + "ollo"
    client.feed(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
    assert_eq!(client.messages(), [Message::text("Hollo")]);
    assert!(client.error.is_none());
}

/// A message of empty final blocks (`03 00`: two bytes each, each a
/// stream to restart with a window's worth of dictionary) is work, not
/// output: it counts toward the turn, so decoding it yields like any large
/// message, and toward the message-size limit, so it ends in 1009 instead
/// of costing 64 KiB of copying per two bytes received without end.
#[test]
fn rfc7692_7_2_3_4_empty_final_blocks_count_as_work() {
    const MAX: usize = 4 << 20;
    let turn = 256 << 10;
    let mut payload = vec![0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    for _ in 0..20_000 {
        payload.extend([0x03, 0x00]);
    }
    for role in ROLES {
        let config = Config {
            max_message_size: MAX,
            turn_bytes: turn,
            ..Config::default()
        };
        let mut conn = Connection::new(role, config, Instant::now());
        conn.set_extension(pmd(role, DeflateParams::default()));
        let now = Instant::now();
        let _ = conn.receive(now, &raw_frame(role, true, 4, BINARY, &payload));
        let (turns, result) = decode_in_turns(&mut conn, now);
        let err = result.expect_err("20,000 restarts were taken as a message");
        assert!(err.to_string().contains("inflating work"), "{err}");
        // about MAX of work, a turn at a time
        assert!(turns >= MAX / turn - 2, "{turns} turns");
        assert!(turns <= MAX / turn + 4, "{turns} turns");
        let end = std::iter::from_fn(|| conn.poll_event())
            .find_map(|e| match e {
                Event::Closed(info) => Some(info),
                _ => None,
            })
            .expect("no end");
        assert_eq!(end.code.as_u16(), 1009);
    }
}

/// Under a small message limit a message may still go on past a few final
/// blocks: the work they count is held to at least 1 MiB (it failed with
/// 1009 "inflating work" for a 5-byte message of three streams under a
/// 4 KiB limit).
#[test]
fn rfc7692_7_2_3_4_a_few_final_blocks_pass_a_small_limit() {
    let config = Config {
        max_message_size: 4096,
        ..Config::default()
    };
    let mut h = Harness::with_config(Role::Client, config);
    h.conn
        .set_extension(pmd(Role::Client, DeflateParams::default()));
    h.peer_allows_rsv1();
    let mut c = Compress::new_with_window_bits(Compression::default(), false, 15);
    let mut payload = Vec::with_capacity(64);
    c.compress_vec(b"Hel", &mut payload, FlushCompress::Finish)
        .unwrap();
    c.reset();
    c.set_dictionary(b"Hel").unwrap();
    c.compress_vec(b"lo", &mut payload, FlushCompress::Finish)
        .unwrap();
    payload.push(0x00);
    h.feed(&raw_frame(Role::Client, true, 4, 0x1, &payload));
    assert_eq!(h.messages(), [Message::text("Hello")]);
    assert!(h.error.is_none(), "{:?}", h.error);
}

/// A peer that ends every message with a final block (section 7.2.3.4,
/// for a compressor without a sync flush) and compresses the next with the
/// window of everything before it as its dictionary, in messages shorter
/// and longer than the window: each message inflates to what was sent,
/// back-references reaching across several earlier messages included.
#[test]
fn rfc7692_7_2_2_final_blocks_keep_the_window_across_messages() {
    for bits in [9u8, 15] {
        let params = DeflateParams {
            server_max_window_bits: bits,
            ..DeflateParams::default()
        };
        let mut client = harness(Role::Client, params);
        let mut rng = StdRng::seed_from_u64(u64::from(bits));
        let mut sent: Vec<u8> = Vec::new();
        let mut c = Compress::new_with_window_bits(Compression::default(), false, bits);
        let window = 1usize << bits;
        for round in 0..200 {
            // words from a small vocabulary: back-references everywhere
            let len = if round % 10 == 9 {
                3 * window
            } else {
                rng.random_range(1..64)
            };
            let mut text = String::new();
            while text.len() < len {
                text.push_str(["tether ", "window ", "final ", "block "][rng.random_range(0..4)]);
            }
            c.reset();
            c.set_dictionary(&sent[sent.len().saturating_sub(window)..])
                .unwrap();
            let mut payload = Vec::with_capacity(text.len() + 64);
            let status = c
                .compress_vec(text.as_bytes(), &mut payload, FlushCompress::Finish)
                .unwrap();
            assert_eq!(status, flate2::Status::StreamEnd);
            sent.extend_from_slice(text.as_bytes());
            let mut frame = vec![0xc1];
            if payload.len() < 126 {
                frame.push(u8::try_from(payload.len()).unwrap());
            } else {
                frame.push(126);
                frame.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
            }
            frame.extend_from_slice(&payload);
            client.feed(&frame);
            assert_eq!(client.messages(), [Message::text(text)], "round {round}");
            assert!(client.error.is_none(), "{:?}", client.error);
        }
    }
}

#[test]
fn rfc7692_7_2_3_5_two_blocks_in_one_message() {
    let mut client = harness(Role::Client, DeflateParams::default());
    client.feed(&[
        0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ]);
    assert_eq!(client.messages(), [Message::text("Hello")]);
}

#[test]
fn rfc7692_7_2_3_6_an_empty_message() {
    let mut d = PerMessageDeflate::new(Role::Server, &DeflateParams::default(), &eager());
    assert_eq!(d.compress(b"").unwrap(), [0x00]);
    let mut client = harness(Role::Client, DeflateParams::default());
    client.feed(&[0xc1, 0x01, 0x00]);
    assert_eq!(client.messages(), [Message::text("")]);
}

/// An empty payload with RSV1 holds no DEFLATE block (the trailer alone,
/// `00 00 ff ff`, is a stored block's header cut short): it is an empty
/// message, and the inflater is left as it was. It was fed the trailer
/// and left inside a block, so the next message's first bytes were read
/// as that block's length: the RFC's own stored "Hello" came out as 14
/// bytes of garbage.
#[test]
fn rfc7692_7_2_2_an_empty_compressed_payload_leaves_the_inflater_whole() {
    let mut client = harness(Role::Client, DeflateParams::default());
    client.feed(&[0xc2, 0x00]);
    client.feed(&[
        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ]);
    assert_eq!(
        client.messages(),
        [Message::binary(Vec::new()), Message::text("Hello")]
    );
    assert!(client.error.is_none(), "{:?}", client.error);
    // the same through `decompress`
    let mut d = PerMessageDeflate::new(Role::Client, &DeflateParams::default(), &eager());
    assert!(d.decompress(&[], 1000).unwrap().is_empty());
    let stored = [
        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    assert_eq!(d.decompress(&stored, 1000).unwrap(), b"Hello");
}

/// Without context takeover the inflater starts each message afresh, but a
/// final block inside a message ends neither the message nor the peer's
/// window: blocks after it may reach back into what the message inflated
/// so far. They failed with 1007 ("invalid distance too far back").
#[test]
fn rfc7692_7_2_3_4_blocks_after_a_final_block_reach_back_without_context_takeover() {
    let params = DeflateParams {
        server_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let mut client = harness(Role::Client, params);
    let mut c = Compress::new_with_window_bits(Compression::default(), false, 15);
    let mut payload = Vec::with_capacity(256);
    let status = c
        .compress_vec(b"abcdefgh", &mut payload, FlushCompress::Finish)
        .unwrap();
    assert_eq!(status, flate2::Status::StreamEnd);
    c.reset();
    c.set_dictionary(b"abcdefgh").unwrap();
    c.compress_vec(b"abcdefgh", &mut payload, FlushCompress::Sync)
        .unwrap();
    assert!(payload.ends_with(&[0x00, 0x00, 0xff, 0xff]));
    payload.truncate(payload.len() - 4);
    let mut frame = vec![0xc1, u8::try_from(payload.len()).unwrap()];
    frame.extend_from_slice(&payload);
    client.feed(&frame);
    assert_eq!(client.messages(), [Message::text("abcdefghabcdefgh")]);
    assert!(client.error.is_none(), "{:?}", client.error);
}

/// `Config::limit_message_size` lowers the frame limit only as far as such
/// a message takes on the wire: with permessage-deflate on, a message of
/// random bytes inflating to exactly the limit, in one compressed frame,
/// is accepted (a frame limit set to the message's refused it with 1009,
/// as `tether serve --max-message --deflate` did).
#[test]
fn rfc7692_7_2_2_a_message_limit_leaves_room_for_its_compressed_frame() {
    const MAX: usize = 100_000;
    let mut rng = StdRng::seed_from_u64(11);
    let data: Vec<u8> = (0..MAX).map(|_| rng.random()).collect();
    let mut peer = PerMessageDeflate::new(Role::Server, &DeflateParams::default(), &eager());
    let payload = peer.compress(&data).unwrap();
    assert!(payload.len() > MAX, "{} bytes compressed", payload.len());
    let mut config = Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    };
    config.limit_message_size(MAX);
    assert_eq!(config.max_message_size, MAX);
    let mut client = Harness::with_config(Role::Client, config);
    client
        .conn
        .set_extension(pmd(Role::Client, DeflateParams::default()));
    client.peer_allows_rsv1();
    client.feed(&raw_frame(Role::Client, true, 0b100, 0x2, &payload));
    assert_eq!(client.messages(), [Message::binary(data)]);
    assert!(client.error.is_none(), "{:?}", client.error);
    // without the extension, no frame is larger than its message
    let mut plain = Config::default();
    plain.limit_message_size(MAX);
    assert_eq!((plain.max_message_size, plain.max_frame_size), (MAX, MAX));
}

/// What a message inflates to is held to `max_message_size`; its
/// compressed bytes may be a little more, since data that does not
/// compress comes out larger (5 bytes per stored block). A message of
/// random bytes inflating to exactly the limit was refused with 1009 for
/// its compressed size, unfragmented or in fragments.
#[test]
fn rfc7692_7_2_2_a_message_inflating_to_the_limit_is_accepted_when_stored() {
    const MAX: usize = 100_000;
    let mut rng = StdRng::seed_from_u64(7);
    let data: Vec<u8> = (0..MAX).map(|_| rng.random()).collect();
    let mut peer = PerMessageDeflate::new(Role::Server, &DeflateParams::default(), &eager());
    let payload = peer.compress(&data).unwrap();
    assert!(payload.len() > MAX, "{} bytes compressed", payload.len());
    let config = Config {
        max_message_size: MAX,
        ..Config::default()
    };
    for fragments in [1, 3] {
        let mut client = Harness::with_config(Role::Client, config.clone());
        client
            .conn
            .set_extension(pmd(Role::Client, DeflateParams::default()));
        client.peer_allows_rsv1();
        let piece = payload.len().div_ceil(fragments);
        let pieces: Vec<&[u8]> = payload.chunks(piece).collect();
        for (i, bytes) in pieces.iter().enumerate() {
            let fin = i + 1 == pieces.len();
            let (rsv, opcode) = if i == 0 { (0b100, 0x2) } else { (0, 0x0) };
            client.feed(&raw_frame(Role::Client, fin, rsv, opcode, bytes));
        }
        assert_eq!(
            client.messages(),
            [Message::binary(data.clone())],
            "{fragments} fragment(s)"
        );
        assert!(client.error.is_none(), "{:?}", client.error);
    }
    // and a compressed message far over the limit is still refused from
    // its header
    let mut client = Harness::with_config(Role::Client, config);
    client
        .conn
        .set_extension(pmd(Role::Client, DeflateParams::default()));
    client.peer_allows_rsv1();
    client.feed(&raw_frame(
        Role::Client,
        true,
        0b100,
        0x2,
        &vec![0; MAX + MAX / 100],
    ));
    let Some(tether::Error::Protocol(err)) = &client.error else {
        panic!("{:?}", client.error)
    };
    assert_eq!(err.close_code().as_u16(), 1009, "{err}");
}

/// A compressed message keeps the buffer it was compressed into for as
/// long as it waits in the output (a server queues a large one by
/// reference), and the output limit counts its length: the buffer is at
/// most twice that. It was half the input's size whatever it compressed
/// to: 2 MiB held for 4 KiB counted, so a client that sends compressible
/// messages and reads no echo held hundreds of times the output limit.
#[test]
fn rfc7692_7_2_1_a_compressed_message_keeps_at_most_twice_its_size() {
    let mut d = PerMessageDeflate::new(Role::Server, &DeflateParams::default(), &eager());
    let out = d.compress(&vec![0u8; 4 << 20]).unwrap();
    assert!(
        out.capacity() <= 2 * out.len(),
        "{} bytes held for {}",
        out.capacity(),
        out.len()
    );
}

// ----- framing rules (section 6) --------------------------------------------

#[test]
fn rfc7692_6_rsv1_on_the_first_frame_only_and_never_on_control_frames() {
    for role in ROLES {
        let mut h = harness(role, DeflateParams::default());
        h.conn.send(Message::binary(vec![7u8; 4000])).unwrap();
        h.conn.ping(Bytes::from_static(b"p")).unwrap();
        let out = h.output();
        assert!(out[0].rsv1 && out[0].payload.len() < 100, "{:?}", out[0]);
        assert!(!out[1].rsv1);

        let mut h = harness(role, DeflateParams::default());
        h.feed(&raw_frame(role, true, 4, PING, b""));
        h.assert_failed_with(1002);

        let mut h = harness(role, DeflateParams::default());
        h.feed(&raw_frame(role, false, 4, TEXT, &[0xf2, 0x48, 0xcd]));
        h.feed(&raw_frame(role, true, 4, CONT, &[0xc9, 0xc9, 0x07, 0x00]));
        h.assert_failed_with(1002);
    }
}

#[test]
fn rfc7692_6_compressed_text_is_utf8_checked_once_inflated() {
    for role in ROLES {
        let mut peer = PerMessageDeflate::new(role.peer(), &DeflateParams::default(), &eager());
        // not UTF-8 once inflated
        let bad = peer.compress(&[b'a', 0xff, b'b']).unwrap();
        let mut h = harness(role, DeflateParams::default());
        h.feed(&raw_frame(
            role,
            true,
            4,
            TEXT,
            &peer.compress("é".as_bytes()).unwrap(),
        ));
        h.feed(&raw_frame(role, true, 4, TEXT, &bad));
        assert_eq!(h.messages(), [Message::text("é")]);
        h.assert_failed_with(1007);
    }
}

#[test]
fn corrupt_compressed_data_fails_with_1007() {
    for role in ROLES {
        let mut h = harness(role, DeflateParams::default());
        // BTYPE 11 is reserved (RFC 1951 3.2.3)
        h.feed(&raw_frame(role, true, 4, BINARY, &[0xff, 0xff, 0xff]));
        h.assert_failed_with(1007);
    }
}

#[test]
fn uncompressed_messages_pass_through_beside_compressed_ones() {
    let mut h = harness(Role::Client, DeflateParams::default());
    h.feed(&frame(Role::Client, TEXT, b"plain"));
    h.feed(&HELLO_FRAME);
    h.feed(&frame(Role::Client, BINARY, b"\xffraw"));
    assert_eq!(
        h.messages(),
        [
            Message::text("plain"),
            Message::text("Hello"),
            Message::binary(&b"\xffraw"[..])
        ]
    );
}

// ----- the decompression bomb -----------------------------------------------

/// `n` zero bytes, deflated by an independent compressor (sync flush,
/// trailer removed): a few KiB on the wire.
fn bomb(n: usize) -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut out = Vec::with_capacity(n / 500 + 1024);
    let mut left = n;
    while left > 0 {
        let take = left.min(zeros.len());
        let before = c.total_in();
        let flush = if take == left {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        loop {
            out.reserve(64 << 10);
            let used = (c.total_in() - before) as usize;
            c.compress_vec(&zeros[used..take], &mut out, flush).unwrap();
            if (c.total_in() - before) as usize == take && out.len() < out.capacity() {
                break;
            }
        }
        left -= take;
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

#[test]
fn decompression_bomb_is_refused_with_1009_and_bounded_memory() {
    const MAX: usize = 1 << 20;
    let wire = bomb(64 << 20); // 64 MiB of zeros
    assert!(wire.len() < 128 << 10, "{} bytes", wire.len());

    // the extension alone: refused, and never held more than the limit
    let mut d = PerMessageDeflate::new(Role::Client, &DeflateParams::default(), &eager());
    let err = d.decompress(&wire, MAX).unwrap_err();
    assert_eq!(err.code.as_u16(), 1009, "{}", err.reason);
    assert!(d.largest_buffer() <= MAX, "{}", d.largest_buffer());
    assert!(d.largest_buffer() > MAX / 2, "{}", d.largest_buffer());

    // in a connection: close 1009, for both roles
    for role in ROLES {
        let config = Config {
            max_message_size: MAX,
            ..Config::default()
        };
        let mut h = Harness::with_config(role, config);
        h.conn.set_extension(pmd(role, DeflateParams::default()));
        h.peer_allows_rsv1();
        h.feed(&raw_frame(role, true, 4, BINARY, &wire));
        h.assert_failed_with(1009);
    }
}

/// One turn's work, as `continue_decoding` reports it: the turns it took
/// to finish the pending message, with the events that came out.
fn decode_in_turns(conn: &mut Connection, now: Instant) -> (usize, Result<(), tether::Error>) {
    let mut turns = 0;
    while conn.decoding_pending() {
        assert!(turns < 10_000, "no end to decoding");
        conn.new_turn();
        turns += 1;
        if let Err(e) = conn.continue_decoding(now) {
            return (turns, Err(e));
        }
    }
    (turns, Ok(()))
}

#[test]
fn a_bomb_is_inflated_a_turn_at_a_time_and_what_follows_waits_in_order() {
    // 16 MiB of zeros, ~16 KiB on the wire, then a Ping and a text
    const BIG: usize = 16 << 20;
    let turn = 256 << 10;
    let wire = bomb(BIG);
    for role in ROLES {
        let config = Config {
            max_message_size: BIG,
            turn_bytes: turn,
            ..Config::default()
        };
        let mut conn = Connection::new(role, config, Instant::now());
        conn.set_extension(pmd(role, DeflateParams::default()));
        let now = Instant::now();
        let mut input = raw_frame(role, true, 4, BINARY, &wire);
        input.extend(frame(role, 0x9, b"p"));
        input.extend(frame(role, 0x1, b"after"));
        conn.receive(now, &input).unwrap();
        // one turn of work, no more: the message is pending, nothing after
        // it was processed (the Ping is not answered yet)
        assert!(conn.decoding_pending());
        assert!(conn.turn_spent());
        assert_eq!(conn.poll_event(), None);
        assert!(conn.take_output().is_empty());
        // a read meanwhile waits behind it
        conn.receive(now, &frame(role, 0x1, b"later")).unwrap();
        let (turns, result) = decode_in_turns(&mut conn, now);
        result.unwrap();
        // each turn inflates at most a turn's worth: 16 MiB takes >= 64
        assert!(turns >= BIG / turn - 1, "{turns} turns");
        assert!(turns <= BIG / turn + 2, "{turns} turns");
        let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(matches!(&events[0], Event::Message(m) if m.len() == BIG));
        assert!(matches!(&events[1], Event::Ping(p) if &p[..] == b"p"));
        assert_eq!(events[2], Event::Message(Message::text("after")));
        assert_eq!(events[3], Event::Message(Message::text("later")));
        // the Ping was answered once reached
        assert!(!conn.take_output().is_empty());
    }
}

/// The transport ending while a message is still inflating over turns
/// ends the connection after it: the message, then the peer's Close that
/// came behind it, and a clean end (RFC 6455 section 7.1.5: the Close
/// arrived before the transport ended). It ended at once with 1006 and
/// both were lost.
#[test]
fn rfc6455_7_1_5_a_message_inflating_when_the_transport_ends_is_not_lost() {
    const BIG: usize = 4 << 20;
    let wire = bomb(BIG);
    for role in ROLES {
        let config = Config {
            max_message_size: BIG,
            turn_bytes: 256 << 10,
            ..Config::default()
        };
        let mut conn = Connection::new(role, config, Instant::now());
        conn.set_extension(pmd(role, DeflateParams::default()));
        let now = Instant::now();
        let mut input = raw_frame(role, true, 4, BINARY, &wire);
        input.extend(frame(role, 0x8, &close_payload(1000, b"")));
        conn.receive(now, &input).unwrap();
        assert!(conn.decoding_pending());
        conn.receive_eof();
        let (_, result) = decode_in_turns(&mut conn, now);
        result.unwrap();
        let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
        assert!(
            matches!(&events[0], Event::Message(m) if m.len() == BIG),
            "{role:?}"
        );
        let end = Harness::closed(&events).expect("no end");
        assert_eq!(end.code.as_u16(), 1000, "{role:?}: {end:?}");
        assert!(end.was_clean, "{end:?}");
    }
}

/// A message inflated over several turns keeps its inflater while it
/// waits for its next turn, however long that takes: freeing idle memory
/// (`Config::release_idle_after` of quiet, which a busy server's turns can
/// exceed) must not drop the inflater mid-message. It did: under load,
/// 64 KiB compressed echoes failed with 1007 "corrupt permessage-deflate
/// data" (RFC 7692 section 7.2.2: the peer's data was valid).
#[test]
fn rfc7692_7_2_2_a_message_inflating_across_turns_survives_an_idle_release() {
    const BIG: usize = 4 << 20;
    let turn = 256 << 10;
    let wire = bomb(BIG);
    for role in ROLES {
        let config = Config {
            max_message_size: BIG,
            turn_bytes: turn,
            release_idle_after: Duration::from_millis(50),
            ..Config::default()
        };
        let start = Instant::now();
        let mut conn = Connection::new(role, config, start);
        // no context takeover by the peer: its inflater is idle memory
        let params = DeflateParams {
            client_no_context_takeover: true,
            server_no_context_takeover: true,
            ..DeflateParams::default()
        };
        conn.set_extension(pmd(role, params));
        conn.receive(start, &raw_frame(role, true, 4, BINARY, &wire))
            .unwrap();
        assert!(conn.decoding_pending());
        // the connection waits for its next turn: the adapter finds it
        // idle, and the release deadline comes and goes
        conn.note_idle(start);
        let later = start + Duration::from_millis(200);
        conn.handle_timeout(later);
        let (_, result) = decode_in_turns(&mut conn, later);
        result.unwrap();
        match conn.poll_event() {
            Some(Event::Message(m)) => assert_eq!(m.len(), BIG),
            other => panic!("{role:?}: {other:?}"),
        }
    }
}

#[test]
fn a_bomb_over_the_limit_fails_with_1009_within_a_few_turns() {
    const MAX: usize = 1 << 20;
    let wire = bomb(64 << 20);
    for role in ROLES {
        let config = Config {
            max_message_size: MAX,
            turn_bytes: 128 << 10,
            ..Config::default()
        };
        let mut conn = Connection::new(role, config, Instant::now());
        conn.set_extension(pmd(role, DeflateParams::default()));
        let now = Instant::now();
        conn.receive(now, &raw_frame(role, true, 4, BINARY, &wire))
            .unwrap();
        let (turns, result) = decode_in_turns(&mut conn, now);
        let Err(tether::Error::Protocol(e)) = result else {
            panic!("{result:?}")
        };
        assert_eq!(e.close_code().as_u16(), 1009, "{e}");
        assert!(turns <= MAX / (128 << 10) + 1, "{turns} turns");
        assert!(!conn.decoding_pending());
    }
}

#[test]
fn a_message_inflating_to_exactly_the_limit_is_accepted() {
    const MAX: usize = 100_000;
    let mut peer = PerMessageDeflate::new(Role::Server, &DeflateParams::default(), &eager());
    let exact = peer.compress(&vec![b'x'; MAX]).unwrap();
    let over = peer.compress(&vec![b'x'; MAX + 1]).unwrap();
    let mut d = PerMessageDeflate::new(Role::Client, &DeflateParams::default(), &eager());
    assert_eq!(d.decompress(&exact, MAX).unwrap().len(), MAX);
    let err = d.decompress(&over, MAX).unwrap_err();
    assert_eq!(err.code.as_u16(), 1009);
    assert!(d.largest_buffer() <= MAX);
    // a limit of zero accepts only the empty message
    let mut d = PerMessageDeflate::new(Role::Client, &DeflateParams::default(), &eager());
    assert_eq!(d.decompress(&[0x00], 0).unwrap().len(), 0);
    let mut peer = PerMessageDeflate::new(Role::Server, &DeflateParams::default(), &eager());
    let one = peer.compress(b"a").unwrap();
    assert_eq!(d.decompress(&one, 0).unwrap_err().code.as_u16(), 1009);
}

// ----- sending: threshold, windows, takeover --------------------------------

#[test]
fn short_messages_stay_uncompressed_below_the_threshold() {
    let config = DeflateConfig::default();
    assert_eq!(config.threshold, 32);
    let mut h = Harness::new(Role::Server);
    h.conn.set_extension(Box::new(PerMessageDeflate::new(
        Role::Server,
        &DeflateParams::default(),
        &config,
    )));
    h.peer_allows_rsv1();
    h.conn.send(Message::text("a".repeat(31))).unwrap();
    h.conn.send(Message::text("a".repeat(32))).unwrap();
    let out = h.output();
    assert_eq!((out[0].rsv1, out[0].payload.len()), (false, 31));
    assert!(out[1].rsv1 && out[1].payload.len() < 32);
}

#[test]
fn incompressible_data_goes_plain_without_context_takeover() {
    let mut rng = StdRng::seed_from_u64(7692);
    let noise: Vec<u8> = (0..4096).map(|_| rng.random()).collect();
    for reset in [false, true] {
        let params = DeflateParams {
            server_no_context_takeover: reset,
            ..DeflateParams::default()
        };
        let mut h = harness(Role::Server, params);
        h.conn.send(Message::binary(noise.clone())).unwrap();
        let out = h.output();
        // with takeover the peer's window must see the data: compressed anyway
        assert_eq!(out[0].rsv1, !reset);
        if reset {
            assert_eq!(out[0].payload, noise);
        }
    }
}

#[test]
fn a_client_told_window_bits_8_sends_uncompressed() {
    let params = DeflateParams {
        client_max_window_bits: 8,
        ..DeflateParams::default()
    };
    let mut h = harness(Role::Client, params);
    h.conn.send(Message::text("x".repeat(1000))).unwrap();
    let out = h.output();
    assert!(!out[0].rsv1);
    assert_eq!(out[0].payload.len(), 1000);
    // it still inflates what the server compresses
    h.feed(&HELLO_FRAME);
    assert_eq!(h.messages(), [Message::text("Hello")]);
}

/// Data whose repeats lie `distance` bytes back.
fn repeats_at(distance: usize, len: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(distance as u64);
    let block: Vec<u8> = (0..distance).map(|_| rng.random()).collect();
    block.iter().cycle().take(len).copied().collect()
}

/// Inflates a sent payload with an independent inflater of `bits`.
fn inflate_with(bits: u8, payload: &[u8]) -> Result<Vec<u8>, flate2::DecompressError> {
    let mut d = Decompress::new_with_window_bits(false, bits);
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)?;
    Ok(out)
}

#[test]
fn rfc7692_7_1_2_the_negotiated_window_bounds_our_compressor() {
    // repeats 4 KiB back: 13- and 15-bit windows find them, a 9-bit one
    // cannot (zlib reaches 262 bytes short of the window)
    let data = repeats_at(4096, 64 << 10);
    for bits in [9u8, 13, 15] {
        let params = DeflateParams {
            server_max_window_bits: bits,
            ..DeflateParams::default()
        };
        let mut h = harness(Role::Server, params);
        h.conn.send(Message::binary(data.clone())).unwrap();
        let out = h.output();
        assert!(out[0].rsv1);
        // an inflater with exactly that window decodes it
        assert_eq!(inflate_with(bits, &out[0].payload).unwrap(), data, "{bits}");
        if bits == 9 {
            assert!(out[0].payload.len() > data.len() / 2);
        } else {
            assert!(out[0].payload.len() < data.len() / 4, "{bits}");
        }
    }
    // and the client side follows client_max_window_bits
    let params = DeflateParams {
        client_max_window_bits: 9,
        ..DeflateParams::default()
    };
    let mut h = harness(Role::Client, params);
    h.conn.send(Message::binary(data.clone())).unwrap();
    let out = h.output();
    assert_eq!(inflate_with(9, &out[0].payload).unwrap(), data);
}

// ----- round trips between two connections ----------------------------------

fn random_message(rng: &mut StdRng) -> Message {
    let len = match rng.random_range(0..10) {
        0 => rng.random_range(0..40),
        1..=6 => rng.random_range(0..4096),
        _ => rng.random_range(0..200_000),
    };
    let compressible = rng.random_bool(0.6);
    let bytes: Vec<u8> = if compressible {
        let words = [
            "lorem ", "ipsum ", "dolor ", "sit ", "amet ", "{\"id\":", "é€ ",
        ];
        let mut s = String::new();
        while s.len() < len {
            s.push_str(words[rng.random_range(0..words.len())]);
        }
        s.into_bytes()
    } else {
        (0..len).map(|_| rng.random()).collect()
    };
    if rng.random_bool(0.5) {
        Message::text(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        Message::binary(bytes)
    }
}

/// Sends `count` random messages each way between a client and a server
/// running `params`, fed in random splits, and checks each arrives as sent.
fn round_trip(params: DeflateParams, seed: u64, count: usize) -> (usize, usize) {
    let now = Instant::now();
    let config = Config::default();
    let mut client = Connection::new(Role::Client, config.clone(), now);
    let mut server = Connection::new(Role::Server, config, now);
    client.set_extension(pmd(Role::Client, params));
    server.set_extension(pmd(Role::Server, params));
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut wire_bytes, mut plain_bytes) = (0, 0);
    for i in 0..count * 2 {
        let (from, to) = if i % 2 == 0 {
            (&mut client, &mut server)
        } else {
            (&mut server, &mut client)
        };
        let m = random_message(&mut rng);
        plain_bytes += m.as_bytes().len();
        from.send(m.clone()).unwrap();
        let wire = from.take_output();
        wire_bytes += wire.len();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let n = rng.random_range(1..=rest.len().min(70_000));
            to.receive(now, &rest[..n]).unwrap();
            rest = &rest[n..];
        }
        // a message that inflates past a turn is finished over several
        // (what arrived meanwhile waited behind it)
        while to.decoding_pending() {
            to.new_turn();
            to.continue_decoding(now).unwrap();
        }
        assert_eq!(to.poll_event(), Some(Event::Message(m)));
        assert_eq!(to.poll_event(), None);
    }
    (wire_bytes, plain_bytes)
}

#[test]
fn round_trips_with_and_without_context_takeover_and_small_windows() {
    let takeover = DeflateParams::default();
    let (wire, plain) = round_trip(takeover, 1, 150);
    assert!(wire < plain * 3 / 4, "{wire} of {plain}");
    for (i, params) in [
        DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateParams::default()
        },
        DeflateParams {
            server_max_window_bits: 9,
            client_max_window_bits: 10,
            ..DeflateParams::default()
        },
        DeflateParams {
            server_no_context_takeover: true,
            client_max_window_bits: 8,
            server_max_window_bits: 11,
            ..DeflateParams::default()
        },
    ]
    .into_iter()
    .enumerate()
    {
        round_trip(params, 10 + i as u64, 60);
    }
}
