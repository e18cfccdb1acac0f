//! permessage-deflate (RFC 7692) against real peers with compression on:
//! Python's `websockets` (`interop/peers/deflate_peer.py`, its default
//! settings: 12-bit windows) and Node's `ws` (`interop/peers/ws_deflate.mjs`,
//! threshold 0 so it compresses every message), both directions, with both
//! of our adapters, with context takeover and with no_context_takeover.
//!
//! Each run: 1,000 messages of four kinds in turn (random bytes, random
//! text, compressible bytes, compressible text; edge sizes first, then up
//! to 256 KiB), each echoed and compared byte for byte and by type, both
//! sides' counts and CRC-32 compared, then a clean close. Compression is
//! shown twice: the peer reports the negotiated extension, and a counting
//! relay between the two ends shows that both directions carried far fewer
//! bytes than the payloads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tether::{CloseCode, CloseInfo, Config, DeflateConfig, Event, Message};
use tether_interop::payload::{Tally, mixed_messages};
use tether_interop::{Peer, Relay, field, run_blocking, run_tokio, within};

const COUNT: usize = 1_000;
const SEED: u64 = 7692;

/// The limit on a whole scenario (compression on both sides of ~40 MB).
const SCENARIO: Duration = Duration::from_secs(120);
/// The limit on the peer's run as seen from its report.
const RUN: Duration = Duration::from_secs(100);

#[derive(Clone, Copy, Debug)]
enum Them {
    Python,
    Node,
}

impl Them {
    fn server(self) -> Peer {
        match self {
            Self::Python => Peer::python("deflate_peer.py", &["server"]),
            Self::Node => Peer::node("ws_deflate.mjs", &["server"]),
        }
    }

    fn client(self, port: u16) -> Peer {
        let url = format!("ws://127.0.0.1:{port}/");
        let (seed, count) = (SEED.to_string(), COUNT.to_string());
        match self {
            Self::Python => Peer::python("deflate_peer.py", &["client", &url, &seed, &count]),
            Self::Node => Peer::node("ws_deflate.mjs", &["client", &url, &seed, &count]),
        }
    }
}

fn takeover() -> DeflateConfig {
    DeflateConfig::default()
}

fn no_takeover() -> DeflateConfig {
    DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    }
}

fn config(deflate: DeflateConfig) -> Config {
    Config {
        deflate: Some(deflate),
        ..Config::default()
    }
}

/// The peer's `extensions` line names permessage-deflate (and, when we
/// asked for no context takeover, both flags).
fn check_extensions(line: &str, deflate: &DeflateConfig) {
    assert!(line.starts_with("extensions permessage-deflate"), "{line}");
    if deflate.server_no_context_takeover {
        assert!(line.contains("server_no_context_takeover"), "{line}");
        assert!(line.contains("client_no_context_takeover"), "{line}");
    }
}

/// Both directions carried far fewer bytes than the payloads: half the
/// messages are a few words repeated.
fn check_compressed(relay: Relay, plain: &Tally) {
    let (up, down) = relay.finish();
    let limit = plain.bytes as u64 * 4 / 5;
    assert!(
        up < limit && down < limit,
        "wire {up} up / {down} down for {} payload bytes: not compressed",
        plain.bytes
    );
}

fn check_echo(i: usize, sent: &Message, back: &Message) {
    assert!(
        back == sent,
        "message {i}: sent {:?} of {} bytes, got {:?} of {} bytes back",
        sent.kind(),
        sent.as_bytes().len(),
        back.kind(),
        back.as_bytes().len(),
    );
}

fn check_clean(info: &CloseInfo) {
    assert!(info.was_clean, "{info}");
    assert_eq!(info.code, CloseCode::NORMAL, "{info}");
}

// ----- our clients, their servers ----------------------------------------------

/// The server's `close` report against what we sent.
fn check_server_report(line: &str, sent: &Tally) {
    assert_eq!(field(line, "code"), "1000", "{line}");
    assert_eq!(field(line, "reason"), "done", "{line}");
    assert_eq!(Tally::from_report(line), *sent, "{line}");
}

fn our_tokio_client(them: Them, deflate: DeflateConfig) {
    run_tokio(SCENARIO, async move {
        use futures_util::StreamExt;
        let mut peer = them.server();
        let relay = Relay::start(peer.port().await);
        let url = format!("ws://127.0.0.1:{}/", relay.port());
        let options = tether_tokio::ClientOptions::new().config(config(deflate));
        let (mut ws, accepted) = within(tether_tokio::connect(&url, &options)).await.unwrap();
        assert_eq!(accepted.extensions()[0].name(), "permessage-deflate");
        check_extensions(&peer.line("extensions ").await, &deflate);
        let mut sent = Tally::default();
        for (i, message) in mixed_messages(SEED, COUNT).enumerate() {
            sent.add(&message);
            within(ws.send(message.clone())).await.unwrap();
            let back = within(ws.next()).await.expect("ended").unwrap();
            check_echo(i, &message, &back);
        }
        let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
        check_clean(&info);
        check_server_report(
            &peer.until_within("close ", RUN).await.pop().unwrap(),
            &sent,
        );
        check_compressed(relay, &sent);
    });
}

fn our_std_client(them: Them, deflate: DeflateConfig) {
    run_blocking(SCENARIO, move || {
        let mut peer = them.server();
        let relay = Relay::start(peer.port_blocking());
        let url = format!("ws://127.0.0.1:{}/", relay.port());
        let options = tether_std::ClientOptions::new().deflate(deflate);
        let (mut ws, accepted) = tether_std::connect(&url, &options).unwrap();
        assert_eq!(accepted.extensions()[0].name(), "permessage-deflate");
        check_extensions(&peer.line_blocking("extensions "), &deflate);
        let mut sent = Tally::default();
        for (i, message) in mixed_messages(SEED, COUNT).enumerate() {
            sent.add(&message);
            ws.send(message.clone()).unwrap();
            let back = ws.read().unwrap();
            check_echo(i, &message, &back);
        }
        let info = ws.close(CloseCode::NORMAL, "done").unwrap();
        check_clean(&info);
        check_server_report(
            &peer.until_blocking_within("close ", RUN).pop().unwrap(),
            &sent,
        );
        check_compressed(relay, &sent);
    });
}

#[test]
fn deflate_our_tokio_client_to_websockets_server() {
    our_tokio_client(Them::Python, takeover());
}

#[test]
fn deflate_our_std_client_to_websockets_server_no_context_takeover() {
    our_std_client(Them::Python, no_takeover());
}

#[test]
fn deflate_our_tokio_client_to_ws_server_no_context_takeover() {
    our_tokio_client(Them::Node, no_takeover());
}

#[test]
fn deflate_our_std_client_to_ws_server() {
    our_std_client(Them::Node, takeover());
}

// ----- their clients, our servers -----------------------------------------------

/// The client's `done` report against what our server received.
fn check_client_report(line: &str, received: &Tally) {
    assert!(line.starts_with("done "), "{line}");
    assert_eq!(field(line, "code"), "1000", "{line}");
    assert_eq!(received.messages, COUNT, "{line}");
    assert_eq!(Tally::from_report(line), *received, "{line}");
}

fn their_client_to_our_tokio_server(them: Them, deflate: DeflateConfig) {
    run_tokio(SCENARIO, async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let options = tether_tokio::ServerOptions::new().config(config(deflate));
            let (mut ws, request) = tether_tokio::accept(tcp, &options).await.unwrap();
            assert!(
                request
                    .extensions()
                    .iter()
                    .any(|e| e.name() == "permessage-deflate"),
                "{:?}",
                request.extensions()
            );
            let mut received = Tally::default();
            loop {
                match ws.next_event().await.expect("ended without a Closed event") {
                    Event::Message(m) => {
                        received.add(&m);
                        ws.send(m).await.unwrap();
                    }
                    Event::Closed(info) => return (received, info),
                    Event::Ping(_) | Event::Pong(_) => {}
                }
            }
        });
        let relay = Relay::start(port);
        let mut peer = them.client(relay.port());
        check_extensions(&peer.line("extensions ").await, &deflate);
        let done = peer.until_within("done ", RUN).await.pop().unwrap();
        let (received, info) = within(server).await.unwrap();
        check_client_report(&done, &received);
        check_clean(&info);
        check_compressed(relay, &received);
    });
}

fn their_client_to_our_std_server(them: Them, deflate: DeflateConfig) {
    run_blocking(SCENARIO, move || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let options = tether_std::ServerOptions::new().deflate(deflate);
            let (mut ws, _) = tether_std::accept(tcp, &options).unwrap();
            let mut received = Tally::default();
            loop {
                match ws.read_event() {
                    Ok(Event::Message(m)) => {
                        received.add(&m);
                        ws.send(m).unwrap();
                    }
                    Ok(Event::Closed(info)) | Err(tether_std::Error::Closed(info)) => {
                        return (received, info);
                    }
                    Ok(Event::Ping(_) | Event::Pong(_)) => {}
                    Err(e) => panic!("read failed: {e}"),
                }
            }
        });
        let relay = Relay::start(port);
        let mut peer = them.client(relay.port());
        check_extensions(&peer.line_blocking("extensions "), &deflate);
        let done = peer.until_blocking_within("done ", RUN).pop().unwrap();
        let (received, info) = server.join().unwrap();
        check_client_report(&done, &received);
        check_clean(&info);
        check_compressed(relay, &received);
    });
}

#[test]
fn deflate_websockets_client_to_our_tokio_server() {
    their_client_to_our_tokio_server(Them::Python, takeover());
}

#[test]
fn deflate_websockets_client_to_our_std_server_no_context_takeover() {
    their_client_to_our_std_server(Them::Python, no_takeover());
}

#[test]
fn deflate_ws_client_to_our_tokio_server_no_context_takeover() {
    their_client_to_our_tokio_server(Them::Node, no_takeover());
}

#[test]
fn deflate_ws_client_to_our_std_server() {
    their_client_to_our_std_server(Them::Node, takeover());
}
