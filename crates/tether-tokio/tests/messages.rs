//! Messages through the tokio adapter over real TCP on 127.0.0.1: text and
//! binary up to 16 MiB, whole and fragmented, split halves on different
//! tasks, a `next()` cancelled in `select!`, and Pings and Pongs as events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use tether::frame::OpCode;
use tether::{CloseCode, Event, Message, MessageKind};
use tether_tokio::{ClientOptions, ServerOptions};

#[tokio::test]
async fn text_and_binary_up_to_16_mib_whole_and_fragmented() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(echo_server(listener));
    let options = ClientOptions::new().config(big_config());
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    for len in [0usize, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20] {
        let text = "é".repeat(len / 2);
        within(ws.send(Message::text(text.clone()))).await.unwrap();
        assert_eq!(
            within(ws.next()).await.unwrap().unwrap(),
            Message::text(text)
        );
        let bin: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        within(ws.send(Message::binary(bin.clone()))).await.unwrap();
        assert_eq!(
            within(ws.next()).await.unwrap().unwrap().as_bytes(),
            &bin[..]
        );
        // fragmented: three pieces
        let data = Bytes::from(bin);
        let (a, b) = (len / 3, 2 * len / 3);
        ws.send_fragment(MessageKind::Binary, data.slice(..a), false)
            .await
            .unwrap();
        ws.send_fragment(MessageKind::Binary, data.slice(a..b), false)
            .await
            .unwrap();
        ws.send_fragment(MessageKind::Binary, data.slice(b..), true)
            .await
            .unwrap();
        assert_eq!(
            within(ws.next()).await.unwrap().unwrap().as_bytes(),
            &data[..]
        );
    }
    let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
    assert!(info.was_clean);
    assert_eq!(info.code, CloseCode::NORMAL);
    within(server).await.unwrap();
}

#[tokio::test]
async fn split_halves_send_and_receive_at_once_on_different_tasks() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(echo_server(listener));
    let (ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    const N: usize = 2000;
    let writer = tokio::spawn(async move {
        for i in 0..N {
            sink.send(Message::text(format!("message {i}")))
                .await
                .unwrap();
        }
        sink
    });
    let reader = tokio::spawn(async move {
        for i in 0..N {
            let m = stream.next().await.unwrap().unwrap();
            assert_eq!(m.as_text().unwrap(), format!("message {i}"));
        }
        stream
    });
    let mut sink = within(writer).await.unwrap();
    let mut stream = within(reader).await.unwrap();
    within(sink.close(CloseCode::NORMAL, "")).await.unwrap();
    assert!(within(stream.next()).await.is_none());
    within(server).await.unwrap();
}

#[tokio::test]
async fn next_is_cancel_safe_in_select() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut ws = accept_one(&listener, &ServerOptions::default()).await;
        for i in 0..500 {
            ws.send(Message::text(format!("{i}"))).await.unwrap();
            if i % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut cancelled = 0;
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(m) => got.push(m.unwrap().as_text().unwrap().parse::<usize>().unwrap()),
                None => break,
            },
            // cancels the pending next() very often
            _ = tokio::task::yield_now() => cancelled += 1,
        }
    }
    assert!(cancelled > 0);
    assert_eq!(
        got,
        (0..500).collect::<Vec<_>>(),
        "nothing lost or reordered"
    );
    within(server).await.unwrap();
}

#[tokio::test]
async fn pings_and_pongs_are_events_and_unsolicited_pong_is_not_answered() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        peer.send(OpCode::Pong, b"unsolicited").await;
        peer.send(OpCode::Ping, b"ping!").await;
        let f = peer.frame().await.unwrap();
        // the first frame back is the Pong for the Ping, not an answer to the Pong
        assert_eq!(
            (f.header.opcode, &f.payload[..]),
            (OpCode::Pong, &b"ping!"[..])
        );
        peer.send(OpCode::Close, &1000u16.to_be_bytes()).await;
        let f = peer.frame().await.unwrap();
        assert_eq!(f.header.opcode, OpCode::Close);
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    assert_eq!(
        within(ws.next_event()).await,
        Some(Event::Pong(Bytes::from_static(b"unsolicited")))
    );
    assert_eq!(
        within(ws.next_event()).await,
        Some(Event::Ping(Bytes::from_static(b"ping!")))
    );
    match within(ws.next_event()).await {
        Some(Event::Closed(info)) => assert!(info.was_clean),
        other => panic!("{other:?}"),
    }
    within(server).await.unwrap();
}
