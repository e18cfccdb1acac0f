//! tether over HTTP/2 (RFC 8441) against a third-party server: hypercorn
//! (an ASGI server, `interop/peers/h2_asgi_echo.py`), cleartext with prior
//! knowledge.
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
use tether_tokio::ClientOptions;
use tether_tokio::http2::Http2Client;

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

#[test]
fn rfc8441_our_client_to_node_http2_server_1000_messages() {
    run_tokio(SCENARIO, async move {
        let options = ClientOptions::new();
        let mut server = Peer::node("h2_node_echo_server.mjs", &[]);
        let url = format!("ws://127.0.0.1:{}/echo", server.port().await);
        let client = within(Http2Client::connect(&url, &options)).await.unwrap();
        let (mut ws, _) = within(client.open(&url, &options)).await.unwrap();
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
