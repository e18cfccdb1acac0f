//! The command fails in order (RFC 6455 section 7.1.7; Autobahn 3.2): a
//! valid message followed, in the same read, by a violation is echoed
//! first, then the connection fails with 1002. Both roles: `tether serve`
//! and `tether connect --echo`, each against a raw peer that writes frames
//! by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;

use bytes::BytesMut;
use tether_tokio::tether::frame::{Frame, FrameDecoder, FrameEncoder, Limits, OpCode, Role, Rsv};
use tether_tokio::tether::handshake::{
    AcceptOptions, ClientConfig, ClientHandshake, Limits as HeadLimits, Status, parse_request,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

mod common;

use common::{LIMIT, tether};

fn key() -> [u8; 4] {
    [7, 7, 7, 7]
}

/// text "hello", the same with RSV2, a Ping; framed by `role`.
fn violation(role: Role) -> BytesMut {
    let mut enc = FrameEncoder::new(role, key as fn() -> [u8; 4]);
    let mut wire = BytesMut::new();
    enc.encode(true, Rsv::NONE, OpCode::Text, b"hello", &mut wire);
    enc.encode(true, Rsv::RSV2, OpCode::Text, b"hello", &mut wire);
    enc.encode(true, Rsv::NONE, OpCode::Ping, b"after", &mut wire);
    wire
}

/// Every frame `stream` carries until EOF, decoded as `role` receives.
async fn frames_until_eof(stream: &mut TcpStream, role: Role, mut buf: BytesMut) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new(role, Limits::default());
    let mut frames = Vec::new();
    loop {
        while let Some(f) = decoder.decode(&mut buf).unwrap() {
            frames.push(f);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return frames,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn assert_echo_then_close(frames: &[Frame]) {
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].header.opcode, OpCode::Text);
    assert_eq!(&frames[0].payload[..], b"hello", "the echo goes out first");
    assert_eq!(frames[1].header.opcode, OpCode::Close);
    assert_eq!(&frames[1].payload[..2], &1002u16.to_be_bytes());
}

#[tokio::test]
async fn rfc6455_7_1_7_serve_echoes_the_message_before_failing() {
    let mut child = tether(&["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(LIMIT, async move {
        let startup = stderr.next_line().await.unwrap().unwrap();
        let url = startup
            .strip_prefix("tether: listening on ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap()
            .to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
        let hs = ClientHandshake::with_key(&url, ClientConfig::new(), [5; 16]).unwrap();
        let addr = url
            .trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_owned();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(hs.request_bytes()).await.unwrap();
        let mut head = Vec::new();
        let used = loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&chunk[..n]);
            if let Status::Complete(_, used) = hs.check_response(&head).unwrap() {
                break used;
            }
        };
        stream.write_all(&violation(Role::Client)).await.unwrap();
        let frames =
            frames_until_eof(&mut stream, Role::Client, BytesMut::from(&head[used..])).await;
        assert_echo_then_close(&frames);
    })
    .await
    .expect("timed out");
}

#[tokio::test]
async fn rfc6455_7_1_7_connect_echo_echoes_the_message_before_failing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let child = tether(&["connect", "--echo", &url]).spawn().unwrap();
    tokio::time::timeout(LIMIT, async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let (request, used) = loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&chunk[..n]);
            if let Status::Complete(r, used) = parse_request(&head, &HeadLimits::default()).unwrap()
            {
                break (r, used);
            }
        };
        assert_eq!(used, head.len());
        stream
            .write_all(&request.accept(&AcceptOptions::new()).unwrap())
            .await
            .unwrap();
        stream.write_all(&violation(Role::Server)).await.unwrap();
        // read the client's answers up to its Close, then close TCP as a
        // server does (RFC 6455 7.1.1)
        let mut decoder = FrameDecoder::new(Role::Server, Limits::default());
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        while frames.len() < 2 {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the client closed before its answers: {frames:?}");
            buf.extend_from_slice(&chunk[..n]);
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_echo_then_close(&frames);
        drop(stream);
        let output = child.wait_with_output().await.unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), "hello\n");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(stderr.contains("1002"), "the failure is reported: {stderr}");
        assert!(
            !output.status.success(),
            "a failed connection is not a success"
        );
    })
    .await
    .expect("timed out");
}
