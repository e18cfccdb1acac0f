//! tether over HTTP/2 (RFC 8441) against third-party peers, cleartext with
//! prior knowledge: tether's client against hypercorn (an ASGI server,
//! `interop/peers/h2_asgi_echo.py`) and Node's built-in http2 server
//! (`interop/peers/h2_node_echo_server.mjs`); Node's http2 as the client
//! (`interop/peers/h2_node_client.mjs`, ws framing on the stream) against
//! tether's server (there the messages are `interop/peers/payload.mjs`'s,
//! up to 256 KiB, checked by the Node client, and the tallies of both ends
//! compared).
//!
//! Each run: 1,000 messages, binary and text in turn, the length edge
//! cases first and then random sizes up to 1 MiB (seeded; see
//! `tether_interop::payload`), each echoed and compared byte for byte and
//! by type, the server's count and CRC-32 compared, then a clean close with
//! 1000; with and without permessage-deflate. Several WebSockets share the
//! one HTTP/2 connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::StreamExt;
use tether::{CloseCode, Initiator, Message};
use tether_interop::payload::{Tally, messages};
use tether_interop::{Peer, SCENARIO, field, run_tokio, within};
use tether_tokio::http2::{Http2Client, Http2Server};
use tether_tokio::{ClientOptions, ServerOptions};

const COUNT: usize = 1_000;
const SEED: u64 = 8441;

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

fn to_hypercorn(options: ClientOptions, expect_deflate: bool) {
    run_tokio(SCENARIO, async move {
        let mut server = Peer::python("h2_asgi_echo.py", &[]);
        let url = format!("ws://127.0.0.1:{}/echo", server.port().await);
        let client = within(Http2Client::connect(&url, &options)).await.unwrap();
        assert!(client.extended_connect_enabled());
        // a second WebSocket on the same connection, open through the run
        let (mut other, _) = within(client.open(&url, &options)).await.unwrap();
        let (mut ws, accepted) = within(client.open(&url, &options)).await.unwrap();
        assert_eq!(server.line("http ").await, "http 2");
        assert_eq!(server.line("http ").await, "http 2");
        let deflated = accepted
            .extensions()
            .iter()
            .any(|e| e.name() == "permessage-deflate");
        assert_eq!(deflated, expect_deflate, "{:?}", accepted.extensions());
        let mut sent = Tally::default();
        for (i, message) in messages(SEED, COUNT).enumerate() {
            sent.add(&message);
            within(ws.send(message.clone())).await.unwrap();
            let back = within(ws.next()).await.expect("ended").unwrap();
            check_echo(i, &message, &back);
            if i % 100 == 0 {
                let ping = Message::text(format!("other {i}"));
                within(other.send(ping.clone())).await.unwrap();
                let back = within(other.next()).await.expect("ended").unwrap();
                check_echo(i, &ping, &back);
            }
        }
        let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
        assert!(info.was_clean, "{info}");
        assert_eq!(info.code, CloseCode::NORMAL, "{info}");
        assert_eq!(info.initiator, Initiator::Application, "{info}");
        let report = server.line("close ").await;
        // hypercorn tells its ASGI app 1000 only when the app closed first;
        // for a close the client started it says 1006 whatever came on the
        // wire (hypercorn/protocol/ws_stream.py, StreamClosed). The wire
        // was clean: our Close came back, then END_STREAM (checked above).
        assert_eq!(field(&report, "code"), "1006", "{report}");
        assert_eq!(Tally::from_report(&report), sent, "{report}");
        let info = within(other.close(CloseCode::NORMAL, "done"))
            .await
            .unwrap();
        assert!(info.was_clean, "{info}");
    });
}

#[test]
fn rfc8441_our_client_to_hypercorn_over_http2_1000_messages() {
    to_hypercorn(ClientOptions::new(), false);
}

#[test]
fn rfc8441_our_client_to_hypercorn_over_http2_1000_messages_deflated() {
    to_hypercorn(
        ClientOptions::new().deflate(tether::DeflateConfig::default()),
        true,
    );
}

fn to_node_server(options: ClientOptions, deflate: bool) {
    run_tokio(SCENARIO, async move {
        let mode = if deflate { "deflate" } else { "plain" };
        let mut server = Peer::node("h2_node_echo_server.mjs", &[mode]);
        let url = format!("ws://127.0.0.1:{}/echo", server.port().await);
        let client = within(Http2Client::connect(&url, &options)).await.unwrap();
        let (mut ws, accepted) = within(client.open(&url, &options)).await.unwrap();
        let answer = server.line("extensions ").await;
        assert_eq!(
            answer.starts_with("extensions permessage-deflate"),
            deflate,
            "{answer}"
        );
        let deflated = accepted
            .extensions()
            .iter()
            .any(|e| e.name() == "permessage-deflate");
        assert_eq!(deflated, deflate, "{:?}", accepted.extensions());
        let mut sent = Tally::default();
        for (i, message) in messages(SEED, COUNT).enumerate() {
            sent.add(&message);
            within(ws.send(message.clone())).await.unwrap();
            let back = within(ws.next()).await.expect("ended").unwrap();
            check_echo(i, &message, &back);
        }
        let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
        assert!(info.was_clean, "{info}");
        let report = server.line("close ").await;
        assert_eq!(field(&report, "code"), "1000", "{report}");
        assert_eq!(field(&report, "messages"), COUNT.to_string(), "{report}");
    });
}

#[test]
fn rfc8441_our_client_to_node_http2_server_1000_messages() {
    to_node_server(ClientOptions::new(), false);
}

#[test]
fn rfc8441_our_client_to_node_http2_server_1000_messages_deflated() {
    to_node_server(
        ClientOptions::new().deflate(tether::DeflateConfig::default()),
        true,
    );
}

/// tether's HTTP/2 server (the library's `Http2Server`, as `tether serve
/// --http2` runs it) echoing every WebSocket of the first connection, and
/// Node's http2 as the client: 1,000 messages checked byte for byte by the
/// client, both sides' tallies compared, a clean close both ways.
fn node_client_to_our_server(options: ServerOptions, deflate: bool) {
    // Node generates and checks ~40 MB in JavaScript: seconds, not one STEP
    const RUN: std::time::Duration = std::time::Duration::from_secs(60);
    run_tokio(RUN + SCENARIO, async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/echo", listener.local_addr().unwrap());
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut server = Http2Server::handshake(tcp, &options).await.unwrap();
            while let Some(next) = server.accept().await {
                let (mut ws, request) = next.unwrap();
                let done_tx = done_tx.clone();
                tokio::spawn(async move {
                    let mut received = Tally::default();
                    while let Some(Ok(m)) = ws.next().await {
                        received.add(&m);
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    }
                    let _ = done_tx.send((request, received, ws.close_info()));
                });
            }
        });
        let mode = if deflate { "deflate" } else { "plain" };
        let (seed, count) = (SEED.to_string(), COUNT.to_string());
        let mut client = Peer::node("h2_node_client.mjs", &[&url, &seed, &count, mode]);
        let extensions = client.line("extensions ").await;
        assert_eq!(
            extensions.starts_with("extensions permessage-deflate"),
            deflate,
            "{extensions}"
        );
        let report = client.until_within("done ", RUN).await.pop().unwrap();
        assert_eq!(field(&report, "code"), "1000", "{report}");
        let (request, received, info) = within(done.recv()).await.unwrap();
        assert_eq!(request.path(), "/echo");
        assert_eq!(received.messages, COUNT, "{report}");
        assert_eq!(Tally::from_report(&report), received, "{report}");
        let info = info.expect("the WebSocket ended");
        assert!(info.was_clean, "{info}");
        assert_eq!(info.code, CloseCode::NORMAL, "{info}");
        assert_eq!(info.initiator, Initiator::Remote, "{info}");
        assert_eq!(info.reason, "done", "{info}");
    });
}

#[test]
fn rfc8441_4_node_http2_client_to_our_server_1000_messages() {
    node_client_to_our_server(ServerOptions::new(), false);
}

#[test]
fn rfc8441_4_node_http2_client_to_our_server_1000_messages_deflated() {
    node_client_to_our_server(
        ServerOptions::new().deflate(tether::DeflateConfig::default()),
        true,
    );
}
