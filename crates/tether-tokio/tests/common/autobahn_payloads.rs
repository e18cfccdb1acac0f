//! The Autobahn TestSuite's data cases (1, 2, 5, 6, 9 and a clean close
//! as in 7), as a tether-to-tether echo: what a transport other than TCP
//! (an HTTP/2 or HTTP/3 stream, RFC 8441 / RFC 9220) must carry unchanged.
//! The framing cases that need a misbehaving peer (3, 4 and the invalid
//! halves of 6 and 7) are the core's, whatever the transport: its tests
//! and the real suite over TCP cover them.
#![allow(dead_code)]

use bytes::Bytes;
use futures_util::StreamExt;
use tether::{CloseCode, Event, Message, MessageKind};
use tether_tokio::WebSocket;

use super::within;

/// Sends `message` and requires the same message back.
async fn echo(ws: &mut WebSocket, message: Message, case: &str) {
    within(ws.send(message.clone())).await.unwrap();
    let back = within(ws.next()).await.unwrap().unwrap();
    assert!(
        back == message,
        "case {case}: the echo changed ({} bytes)",
        message.len()
    );
}

/// Sends `payload` of `kind` in fragments of `piece` bytes, with a Ping
/// between the first two when `ping`, and requires the whole message back
/// (and the Pong first).
async fn echo_fragmented(
    ws: &mut WebSocket,
    kind: MessageKind,
    payload: &[u8],
    piece: usize,
    ping: bool,
    case: &str,
) {
    let pieces: Vec<&[u8]> = payload.chunks(piece.max(1)).collect();
    let last = pieces.len().saturating_sub(1);
    for (i, p) in pieces.iter().enumerate() {
        within(ws.send_fragment(kind, Bytes::copy_from_slice(p), i == last))
            .await
            .unwrap();
        if ping && i == 0 {
            within(ws.ping(Bytes::from_static(b"between fragments")))
                .await
                .unwrap();
        }
    }
    if pieces.is_empty() {
        within(ws.send_fragment(kind, Bytes::new(), true))
            .await
            .unwrap();
    }
    loop {
        match within(ws.next_event()).await.unwrap() {
            Event::Pong(p) => assert!(ping && &p[..] == b"between fragments", "case {case}"),
            Event::Message(m) => {
                assert!(m.as_bytes() == payload, "case {case}: the echo changed");
                assert_eq!(m.kind(), kind, "case {case}");
                return;
            }
            other => panic!("case {case}: {other:?}"),
        }
    }
}

/// Valid UTF-8 of every length class (case 6): ASCII, 2-, 3- and 4-byte
/// characters, the edges of each range, and "κόσμε".
fn utf8_texts() -> Vec<String> {
    vec![
        String::new(),
        "Hello-µ@ßöäüàá-UTF-8!!".into(),
        "κόσμε".into(),
        "\u{0}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}".into(),
        "\u{d7ff}\u{e000}\u{fffd}".into(),
        "𝄞🎉 mixed ascii".repeat(100),
    ]
}

/// Runs the cases on `ws`, then closes it cleanly (1000, as case 7.1.1).
pub(crate) async fn run(ws: &mut WebSocket) {
    // 1.1 / 1.2: text and binary at every length edge
    for len in [0usize, 125, 126, 127, 128, 65535, 65536] {
        echo(ws, Message::text("*".repeat(len)), &format!("1.1 {len}")).await;
        echo(ws, Message::binary(vec![0xfe; len]), &format!("1.2 {len}")).await;
    }
    // 2: Pings of 0 and 125 bytes, binary payload, answered with the same
    for payload in [&b""[..], &[0xab; 125][..], &[0x00, 0xff, 0xfe, 0xfd][..]] {
        within(ws.ping(Bytes::copy_from_slice(payload)))
            .await
            .unwrap();
        match within(ws.next_event()).await.unwrap() {
            Event::Pong(p) => assert_eq!(&p[..], payload, "case 2"),
            other => panic!("case 2: {other:?}"),
        }
    }
    // 5: fragmented messages, with a Ping between fragments
    echo_fragmented(
        ws,
        MessageKind::Text,
        b"fragment1fragment2",
        9,
        false,
        "5.3",
    )
    .await;
    echo_fragmented(ws, MessageKind::Text, b"fragment1fragment2", 9, true, "5.6").await;
    echo_fragmented(ws, MessageKind::Binary, &[7u8; 1000], 1, false, "5.19-like").await;
    // 6: valid UTF-8, whole and split at every byte (6.2, 6.4)
    for (i, text) in utf8_texts().into_iter().enumerate() {
        echo(ws, Message::text(text.clone()), &format!("6 text {i}")).await;
        if text.len() <= 64 {
            echo_fragmented(ws, MessageKind::Text, text.as_bytes(), 1, false, "6.2").await;
        }
    }
    // 9.1 / 9.2: large text and binary messages
    for len in [64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20] {
        let text: String = "abcdefghijklmnopqrstuvwxyz0123456789"
            .chars()
            .cycle()
            .take(len)
            .collect();
        echo(ws, Message::text(text), &format!("9.1 {len}")).await;
        let binary: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        echo(ws, Message::binary(binary), &format!("9.2 {len}")).await;
    }
    // 9.3 / 9.4: 4 MiB in fragments of 64 B to 4 MiB
    let big: Vec<u8> = (0..4usize << 20).map(|i| b'a' + (i % 26) as u8).collect();
    for piece in [
        64,
        256,
        1 << 10,
        4 << 10,
        16 << 10,
        64 << 10,
        256 << 10,
        1 << 20,
        4 << 20,
    ] {
        echo_fragmented(
            ws,
            MessageKind::Text,
            &big,
            piece,
            false,
            &format!("9.3 {piece}"),
        )
        .await;
        echo_fragmented(
            ws,
            MessageKind::Binary,
            &big,
            piece,
            false,
            &format!("9.4 {piece}"),
        )
        .await;
    }
    // 7.1.1: a clean close
    let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
    assert!(info.was_clean, "case 7.1.1: {info}");
    assert_eq!(info.code, CloseCode::NORMAL);
}
