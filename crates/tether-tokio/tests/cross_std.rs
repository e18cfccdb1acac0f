//! The two adapters against each other over real TCP on 127.0.0.1: a
//! tether-std client with a tether-tokio server, and a tether-tokio client
//! with a tether-std server; text and binary up to 16 MiB, whole and
//! fragmented, then a clean close with a code and reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use tether::{CloseCode, Config, Message, MessageKind};

fn big() -> Config {
    Config {
        max_frame_size: 32 << 20,
        max_message_size: 64 << 20,
        ..Config::default()
    }
}

fn payloads() -> Vec<Message> {
    let mut out = Vec::new();
    for len in [0usize, 125, 126, 65536, 1 << 20, 16 << 20] {
        out.push(Message::text("ü".repeat(len / 2)));
        out.push(Message::binary(
            (0..len).map(|i| (i % 253) as u8).collect::<Vec<u8>>(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn std_client_with_tokio_server() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let options = tether_tokio::ServerOptions::new().config(big());
        let (mut ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
        while let Some(Ok(m)) = ws.next().await {
            ws.send(m).await.unwrap();
        }
        ws.close_info().unwrap()
    });
    let client = tokio::task::spawn_blocking(move || {
        let options = tether_std::ClientOptions::new().config(big());
        let (mut ws, _) = tether_std::connect(&url, &options).unwrap();
        for m in payloads() {
            ws.send(m.clone()).unwrap();
            assert!(ws.read().unwrap() == m);
            // the same payload in three fragments
            let data = Bytes::copy_from_slice(m.as_bytes());
            let cut = |n: usize| match &m {
                Message::Text(t) => (0..=n).rev().find(|&i| t.is_char_boundary(i)).unwrap(),
                Message::Binary(_) => n,
            };
            let (a, b) = (cut(data.len() / 3), cut(2 * data.len() / 3));
            ws.send_fragment(m.kind(), data.slice(..a), false).unwrap();
            ws.send_fragment(m.kind(), data.slice(a..b), false).unwrap();
            ws.send_fragment(m.kind(), data.slice(b..), true).unwrap();
            assert!(ws.read().unwrap() == m);
        }
        ws.close(CloseCode::new(4000), "std says bye").unwrap()
    });
    let client_end = within(client).await.unwrap();
    assert!(client_end.was_clean);
    assert_eq!(client_end.code.as_u16(), 4000);
    let server_end = within(server).await.unwrap();
    assert_eq!(
        (
            server_end.code.as_u16(),
            server_end.reason.as_str(),
            server_end.was_clean
        ),
        (4000, "std says bye", true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_with_std_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/cross", listener.local_addr().unwrap());
    let server = tokio::task::spawn_blocking(move || {
        let (tcp, _) = listener.accept().unwrap();
        let options = tether_std::ServerOptions::new().config(big());
        let (mut ws, _) = tether_std::accept(tcp, &options).unwrap();
        loop {
            match ws.read() {
                Ok(m) => ws.send(m).unwrap(),
                Err(tether_std::Error::Closed(info)) => return info,
                Err(e) => panic!("{e}"),
            }
        }
    });
    let options = tether_tokio::ClientOptions::new().config(big());
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    for m in payloads() {
        ws.send(m.clone()).await.unwrap();
        assert!(within(ws.next()).await.unwrap().unwrap() == m);
        let data = Bytes::copy_from_slice(m.as_bytes());
        if m.kind() == MessageKind::Binary {
            let (a, b) = (data.len() / 3, 2 * data.len() / 3);
            ws.send_fragment(MessageKind::Binary, data.slice(..a), false)
                .await
                .unwrap();
            ws.send_fragment(MessageKind::Binary, data.slice(a..b), false)
                .await
                .unwrap();
            ws.send_fragment(MessageKind::Binary, data.slice(b..), true)
                .await
                .unwrap();
            assert!(within(ws.next()).await.unwrap().unwrap() == m);
        }
    }
    let end = within(ws.close(CloseCode::NORMAL, "tokio says bye"))
        .await
        .unwrap();
    assert!(end.was_clean);
    let server_end = within(server).await.unwrap();
    assert_eq!(
        (
            server_end.code.as_u16(),
            server_end.reason.as_str(),
            server_end.was_clean
        ),
        (1000, "tokio says bye", true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_5_5_1_std_server_answers_messages_before_the_close_reply() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/cross", listener.local_addr().unwrap());
    let server = tokio::task::spawn_blocking(move || {
        let (tcp, _) = listener.accept().unwrap();
        let (mut ws, _) = tether_std::accept(tcp, &tether_std::ServerOptions::new()).unwrap();
        loop {
            match ws.read() {
                Ok(m) => ws.send(m).unwrap(),
                Err(tether_std::Error::Closed(info)) => return info,
                Err(e) => panic!("{e}"),
            }
        }
    });
    let mut client = RawClient::connect(&url).await;
    let mut wire = bytes::BytesMut::new();
    for i in 0..100 {
        client.encode(
            tether::frame::OpCode::Text,
            format!("m{i}").as_bytes(),
            &mut wire,
        );
    }
    client.encode(
        tether::frame::OpCode::Close,
        &1000u16.to_be_bytes(),
        &mut wire,
    );
    tokio::io::AsyncWriteExt::write_all(&mut client.stream, &wire)
        .await
        .unwrap();
    for i in 0..100 {
        let f = within(client.frame()).await.unwrap();
        assert_eq!(&f.payload[..], format!("m{i}").as_bytes(), "frame {i}");
    }
    let f = within(client.frame()).await.unwrap();
    assert_eq!(f.header.opcode, tether::frame::OpCode::Close);
    let info = within(server).await.unwrap();
    assert!(info.was_clean);
}
