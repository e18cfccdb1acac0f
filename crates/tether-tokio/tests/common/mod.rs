//! Test helpers: real TCP on 127.0.0.1, and a raw peer that speaks frames
//! by hand (to observe exactly what tether writes).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tether::frame::{Frame, FrameDecoder, FrameEncoder, Limits, OpCode, Role, Rsv};
use tether::handshake::{AcceptOptions, Limits as HeadLimits, Status, parse_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every test step is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(20);

pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test step timed out")
}

pub async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/test", l.local_addr().unwrap());
    (l, url)
}

/// A peer that has done the server side of the handshake by hand and now
/// reads and writes raw frames.
pub struct RawPeer {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
    encoder: FrameEncoder<fn() -> [u8; 4]>,
}

fn key() -> [u8; 4] {
    [9, 8, 7, 6]
}

impl RawPeer {
    /// Accepts one connection on `listener` and answers its upgrade with 101.
    pub async fn accept(listener: &TcpListener) -> Self {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        let (request, used) = loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed during handshake");
            head.extend_from_slice(&chunk[..n]);
            if let Status::Complete(r, used) = parse_request(&head, &HeadLimits::default()).unwrap()
            {
                break (r, used);
            }
        };
        stream
            .write_all(&request.accept(&AcceptOptions::new()).unwrap())
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&head[used..]);
        Self {
            stream,
            buf,
            decoder: FrameDecoder::new(
                Role::Server,
                Limits {
                    max_frame_size: 1 << 30,
                    ..Limits::default()
                },
            ),
            encoder: FrameEncoder::new(Role::Server, key as fn() -> [u8; 4]),
        }
    }

    /// The next frame from the client, or `None` at EOF.
    pub async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(f);
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Encodes one frame with any RSV bits (e.g. a violation) into `out`.
    pub fn encode_rsv(&mut self, rsv: Rsv, opcode: OpCode, payload: &[u8], out: &mut BytesMut) {
        self.encoder.encode(true, rsv, opcode, payload, out);
    }

    pub async fn send(&mut self, opcode: OpCode, payload: &[u8]) {
        let mut out = BytesMut::new();
        self.encoder
            .encode(true, Rsv::NONE, opcode, payload, &mut out);
        self.stream.write_all(&out).await.unwrap();
    }

    pub fn addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }
}

/// A client that has done the handshake by hand and now writes and reads
/// raw frames.
pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
    encoder: FrameEncoder<fn() -> [u8; 4]>,
}

impl RawClient {
    pub async fn connect(url: &str) -> Self {
        use tether::handshake::{ClientConfig, ClientHandshake};
        let hs = ClientHandshake::with_key(url, ClientConfig::new(), [3; 16]).unwrap();
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(hs.request_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        let used = loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&chunk[..n]);
            if let Status::Complete(_, used) = hs.check_response(&head).unwrap() {
                break used;
            }
        };
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&head[used..]);
        Self {
            stream,
            buf,
            decoder: FrameDecoder::new(
                Role::Client,
                Limits {
                    max_frame_size: 1 << 30,
                    ..Limits::default()
                },
            ),
            encoder: FrameEncoder::new(Role::Client, key as fn() -> [u8; 4]),
        }
    }

    /// Encodes one frame with any RSV bits (e.g. a violation) into `out`.
    pub fn encode_rsv(&mut self, rsv: Rsv, opcode: OpCode, payload: &[u8], out: &mut BytesMut) {
        self.encoder.encode(true, rsv, opcode, payload, out);
    }

    /// Encodes frames into one buffer, to be written in a single write.
    pub fn encode(&mut self, opcode: OpCode, payload: &[u8], out: &mut BytesMut) {
        self.encoder.encode(true, Rsv::NONE, opcode, payload, out);
    }

    /// Writes one whole frame.
    pub async fn send(&mut self, opcode: OpCode, payload: &[u8]) {
        let mut out = BytesMut::new();
        self.encode(opcode, payload, &mut out);
        self.stream.write_all(&out).await.unwrap();
    }

    pub async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(f);
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A step that must finish within `secs` seconds.
pub async fn within_secs<T>(secs: u64, f: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .ok()
}

pub fn big_config() -> tether::Config {
    tether::Config {
        max_frame_size: 32 << 20,
        max_message_size: 64 << 20,
        ..tether::Config::default()
    }
}

/// An echo server for one connection.
pub async fn echo_server(listener: tokio::net::TcpListener) {
    let mut ws = accept_one(
        &listener,
        &tether_tokio::ServerOptions::new().config(big_config()),
    )
    .await;
    while let Some(Ok(m)) = futures_util::StreamExt::next(&mut ws).await {
        if ws.send(m).await.is_err() {
            break;
        }
    }
}

/// The next connection on `listener`, upgraded by the tokio adapter with
/// `options`.
pub async fn accept_one(
    listener: &TcpListener,
    options: &tether_tokio::ServerOptions,
) -> tether_tokio::WebSocket {
    let (tcp, _) = listener.accept().await.unwrap();
    let (ws, _) = tether_tokio::accept(tcp, options).await.unwrap();
    ws
}
