//! The server side of the opening handshake on a real browser request
//! (Chromium's, captured: `crates/tether-handshake/tests/fixtures/
//! request-chromium.txt`, 547 bytes, 13 headers, two subprotocols and
//! permessage-deflate offered): tether beside the peers that have a public
//! way to do the same from memory.
//!
//! Groups (each reports requests/s):
//! - `handshake/parse`: bytes to a request value. tether's
//!   `parse_request` (which also validates every WebSocket header) beside
//!   tungstenite's `handshake::server::Request::try_parse` (httparse into an
//!   `http::Request`; it validates later, in `create_response`).
//! - `handshake/response`: a parsed request to the bytes of the 101.
//!   tether's `Request::accept` beside tungstenite's `create_response` +
//!   `write_response`.
//! - `handshake/accept`: both, bytes in to bytes out: the like-for-like
//!   group. tether and tungstenite as above, tokio-websockets through
//!   `ServerBuilder::accept` on a [`MemStream`] (its request parser is
//!   private, so the public path is the whole accept; it also builds its
//!   `WebSocketStream`, an 8 KiB read buffer included).
//!
//! fastwebsockets is absent: its server handshake is hyper's HTTP/1 server
//! (the parser is internal to a hyper connection) followed by
//! `upgrade::upgrade`, which returns an `http::Response` that hyper writes;
//! there is no public bytes-in, bytes-out path to time apart from a whole
//! hyper connection.
//!
//! Checked before timing: every entry's 101 carries the accept key RFC 6455
//! section 4.2.2 derives from the request's key.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tether::handshake::{AcceptOptions, Limits, Status, parse_request};
use tether_benches::MemStream;
use tokio::runtime::Runtime;
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::{Request as TungRequest, create_response, write_response};

/// Chromium 156's upgrade request, exactly as captured.
const REQUEST: &[u8] =
    include_bytes!("../../crates/tether-handshake/tests/fixtures/request-chromium.txt");

fn tether_parse(limits: &Limits) -> tether::handshake::Request {
    match parse_request(black_box(REQUEST), limits) {
        Ok(Status::Complete(request, used)) if used == REQUEST.len() => request,
        other => panic!("tether: {other:?}"),
    }
}

fn tether_response(request: &tether::handshake::Request) -> Vec<u8> {
    request
        .accept(&AcceptOptions::new())
        .expect("tether: a 101")
}

fn tungstenite_parse() -> TungRequest {
    match TungRequest::try_parse(black_box(REQUEST)) {
        Ok(Some((used, request))) if used == REQUEST.len() => request,
        Ok(_) => panic!("tungstenite: incomplete"),
        Err(e) => panic!("tungstenite: {e}"),
    }
}

fn tungstenite_response(request: &TungRequest, out: &mut Vec<u8>) {
    out.clear();
    let response = create_response(request).expect("tungstenite: a 101");
    write_response(&mut *out, &response).expect("tungstenite: write to a Vec");
}

async fn tokio_websockets_accept() -> MemStream {
    let stream = MemStream::with_sink(Bytes::from_static(REQUEST), 1024);
    let (_request, ws) = tokio_websockets::ServerBuilder::new()
        .accept(stream)
        .await
        .expect("tokio-websockets: accept");
    ws.into_inner()
}

/// The response is a 101 with the right accept key.
fn check(name: &str, response: &[u8], expected_key: &str) {
    let text = String::from_utf8_lossy(response).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 101"), "{name}: {text}");
    assert!(
        text.contains(&format!(
            "sec-websocket-accept: {}",
            expected_key.to_ascii_lowercase()
        )),
        "{name}: {text}"
    );
}

fn handshake(c: &mut Criterion) {
    let rt: Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let limits = Limits::default();
    let tether_request = tether_parse(&limits);
    let expected_key = tether_request.accept_key();
    assert_eq!(
        expected_key,
        tether::handshake::accept_key("6LFUJpnn8nfK8kkmRR5fcw==")
    );
    let tung_request = tungstenite_parse();
    let mut out = Vec::new();

    check("tether", &tether_response(&tether_request), &expected_key);
    tungstenite_response(&tung_request, &mut out);
    check("tungstenite", &out, &expected_key);
    let stream = rt.block_on(tokio_websockets_accept());
    check("tokio-websockets", stream.sink(), &expected_key);

    let mut group = c.benchmark_group("handshake/parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tether", |b| b.iter(|| tether_parse(&limits)));
    group.bench_function("tungstenite", |b| b.iter(tungstenite_parse));
    group.finish();

    let mut group = c.benchmark_group("handshake/response");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tether", |b| {
        b.iter(|| tether_response(black_box(&tether_request)));
    });
    group.bench_function("tungstenite", |b| {
        b.iter(|| tungstenite_response(black_box(&tung_request), &mut out));
    });
    group.finish();

    let mut group = c.benchmark_group("handshake/accept");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tether", |b| {
        b.iter(|| tether_response(&tether_parse(&limits)));
    });
    group.bench_function("tungstenite", |b| {
        b.iter(|| tungstenite_response(&tungstenite_parse(), &mut out));
    });
    group.bench_function("tokio-websockets", |b| {
        b.iter(|| rt.block_on(tokio_websockets_accept()));
    });
    group.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
