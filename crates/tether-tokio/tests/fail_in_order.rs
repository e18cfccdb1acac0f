//! Failing in order through the tokio adapter (RFC 6455 section 7.1.7;
//! Autobahn 3.2, 4.1.3, 5.15): a valid message followed, in the same read,
//! by a violation is delivered and answered first; then our Close with
//! 1002 goes out, and nothing after the violation is answered. The same
//! when they arrive a byte at a time (Autobahn 4.1.5), with either driver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::BytesMut;
use common::*;
use futures_util::StreamExt;
use tether::frame::{OpCode, Rsv};
use tether_tokio::{Driver, ServerOptions, WebSocket};

/// Encodes one frame (RSV bits, opcode, payload) into a buffer.
type Encode<'a> = dyn FnMut(Rsv, OpCode, &[u8], &mut BytesMut) + 'a;

/// text "hello", the same with RSV2 (no extension claims it), a Ping.
fn violation(encode: &mut Encode<'_>) -> BytesMut {
    let mut wire = BytesMut::new();
    encode(Rsv::NONE, OpCode::Text, b"hello", &mut wire);
    encode(Rsv::RSV2, OpCode::Text, b"hello", &mut wire);
    encode(Rsv::NONE, OpCode::Ping, b"after", &mut wire);
    wire
}

/// The application: echo every message until the end.
async fn echo(mut ws: WebSocket) -> tether::CloseInfo {
    while let Some(Ok(message)) = ws.next().await {
        let _ = ws.send(message).await;
    }
    ws.close_info().expect("ended")
}

/// A tether-tokio echo server for one connection; its task returns how
/// the connection ended.
async fn echo_server() -> (String, tokio::task::JoinHandle<tether::CloseInfo>) {
    echo_server_driven(Driver::Shared).await
}

/// [`echo_server`] with the given driver.
async fn echo_server_driven(
    driver: Driver,
) -> (String, tokio::task::JoinHandle<tether::CloseInfo>) {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (ws, _) = tether_tokio::accept(tcp, &ServerOptions::new().driver(driver))
            .await
            .unwrap();
        echo(ws).await
    });
    (url, server)
}

/// What the raw peer reads: the echo, then our Close with 1002.
fn assert_echo_then_close(frames: &[tether::frame::Frame]) {
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].header.opcode, OpCode::Text);
    assert_eq!(&frames[0].payload[..], b"hello", "the echo goes out first");
    assert_eq!(frames[1].header.opcode, OpCode::Close);
    assert_eq!(&frames[1].payload[..2], &1002u16.to_be_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_7_1_7_server_answers_the_message_before_failing() {
    let (url, server) = echo_server().await;
    within(async {
        let mut client = RawClient::connect(&url).await;
        let wire = violation(&mut |rsv, op, p, out| client.encode_rsv(rsv, op, p, out));
        tokio::io::AsyncWriteExt::write_all(&mut client.stream, &wire)
            .await
            .unwrap();
        let mut frames = Vec::new();
        while let Some(f) = client.frame().await {
            frames.push(f);
        }
        assert_echo_then_close(&frames);
        let info = server.await.unwrap();
        assert_eq!(info.code.as_u16(), 1002);
        assert!(!info.was_clean);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_7_1_7_client_answers_the_message_before_failing() {
    let (listener, url) = listener().await;
    let client = tokio::spawn(async move {
        let (ws, _) = tether_tokio::connect(&url, &Default::default())
            .await
            .unwrap();
        echo(ws).await
    });
    within(async {
        let mut server = RawPeer::accept(&listener).await;
        let wire = violation(&mut |rsv, op, p, out| server.encode_rsv(rsv, op, p, out));
        tokio::io::AsyncWriteExt::write_all(&mut server.stream, &wire)
            .await
            .unwrap();
        let mut frames = Vec::new();
        while frames.len() < 2 {
            frames.push(server.frame().await.expect("the client wrote its answers"));
        }
        assert_echo_then_close(&frames);
        // the server closes TCP; the client reports the violation
        drop(server);
        let info = client.await.unwrap();
        assert_eq!(info.code.as_u16(), 1002);
        assert_eq!(info.initiator, tether::Initiator::Local);
    })
    .await;
}

#[tokio::test]
async fn rfc6455_7_1_7_violation_alone_fails_at_once() {
    let (url, server) = echo_server().await;
    within(async {
        let mut client = RawClient::connect(&url).await;
        let mut wire = BytesMut::new();
        client.encode_rsv(Rsv::RSV3, OpCode::Binary, b"x", &mut wire);
        tokio::io::AsyncWriteExt::write_all(&mut client.stream, &wire)
            .await
            .unwrap();
        let close = client.frame().await.unwrap();
        assert_eq!(close.header.opcode, OpCode::Close);
        assert_eq!(&close.payload[..2], &1002u16.to_be_bytes());
        assert_eq!(server.await.unwrap().code.as_u16(), 1002);
    })
    .await;
}

/// As Autobahn 4.1.5 sends them: a message, a frame that breaks a rule,
/// then a Ping, one byte at a time, each written on its own (with and
/// without a pause), to either driver: however the reads split them, the
/// echo goes out first, then our Close with 1002, then our end. The bytes
/// after the violation arrive after we failed: the server lingers, reading
/// them for the client's end, rather than closing with them unread (a
/// reset, with which the client may lose what we sent, unread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_7_1_7_a_violation_arriving_byte_by_byte_fails_after_the_echo() {
    for driver in [Driver::Shared, Driver::Owner] {
        for pause in [None, Some(std::time::Duration::from_micros(50))] {
            for _ in 0..3 {
                let (url, server) = echo_server_driven(driver).await;
                within(async {
                    let mut client = RawClient::connect(&url).await;
                    let mut wire = BytesMut::new();
                    client.encode_rsv(Rsv::NONE, OpCode::Text, b"hello", &mut wire);
                    client.encode_rsv(Rsv::RSV2, OpCode::Text, b"hello", &mut wire);
                    client.encode_rsv(Rsv::NONE, OpCode::Ping, b"", &mut wire);
                    for byte in wire.iter() {
                        tokio::io::AsyncWriteExt::write_all(&mut client.stream, &[*byte])
                            .await
                            .unwrap();
                        if let Some(pause) = pause {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    let mut frames = Vec::new();
                    while let Some(f) = client.frame().await {
                        frames.push(f);
                    }
                    assert_echo_then_close(&frames);
                    assert_eq!(server.await.unwrap().code.as_u16(), 1002, "{driver:?}");
                })
                .await;
            }
        }
    }
}

/// A client that keeps sending after the violation does not hold a failed
/// server past `Config::fin_wait`: the server lingers for the client's
/// end, reading and dropping what comes, up to that long, then closes
/// (and the client's writes fail from then on), with either driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_7_1_7_a_client_that_keeps_sending_lingers_no_longer_than_fin_wait() {
    let fin_wait = std::time::Duration::from_millis(300);
    for driver in [Driver::Shared, Driver::Owner] {
        let (listener, url) = listener().await;
        let config = tether::Config {
            fin_wait,
            ..tether::Config::default()
        };
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let options = ServerOptions::new().driver(driver).config(config);
            let (ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
            echo(ws).await
        });
        within(async {
            let mut client = RawClient::connect(&url).await;
            let mut wire = BytesMut::new();
            client.encode_rsv(Rsv::RSV2, OpCode::Text, b"bad", &mut wire);
            let mut more = BytesMut::new();
            client.encode_rsv(Rsv::NONE, OpCode::Binary, &[7; 16 * 1024], &mut more);
            let (_read, mut write) = client.stream.into_split();
            let started = tokio::time::Instant::now();
            // sends on and on, never reading, until the server has closed
            let flood = tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = write.write_all(&wire).await;
                while write.write_all(&more).await.is_ok() {}
                tokio::time::Instant::now()
            });
            assert_eq!(server.await.unwrap().code.as_u16(), 1002, "{driver:?}");
            let took = flood.await.unwrap() - started;
            assert!(
                took >= fin_wait && took < fin_wait * 4,
                "{driver:?}: the server closed after {took:?}"
            );
        })
        .await;
    }
}
