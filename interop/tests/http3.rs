//! tether over HTTP/3 (RFC 9220) against a third-party server: hypercorn
//! with aioquic (QUIC), the ASGI echo app of `interop/peers/h2_asgi_echo.py`
//! served by `interop/peers/h3_asgi_echo.py` with a certificate it makes.
//!
//! Each run: 1,000 messages, binary and text in turn, the length edge
//! cases first and then random sizes up to 1 MiB (seeded; see
//! `tether_interop::payload`), each echoed and compared byte for byte and
//! by type, then a clean close with 1000; with and without
//! permessage-deflate. A second WebSocket shares
//! the one QUIC connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::StreamExt;
use tether::{CloseCode, Initiator, Message};
use tether_interop::payload::{Tally, messages};
use tether_interop::{Peer, run_tokio, within};
use tether_tokio::ClientOptions;
use tether_tokio::http3::Http3Client;

const COUNT: usize = 1_000;
const SEED: u64 = 9220;
/// aioquic is QUIC in Python: ~80 MB each way takes tens of seconds.
const RUN: std::time::Duration = std::time::Duration::from_secs(150);

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
    run_tokio(RUN, async move {
        let mut server = Peer::python("h3_asgi_echo.py", &[]);
        let cert = server.line("cert ").await;
        let cert = cert.trim_start_matches("cert ");
        let roots = tether_tokio::tls::load_certificates(std::path::Path::new(cert)).unwrap();
        let options = roots
            .into_iter()
            .fold(options, ClientOptions::add_root_certificate);
        let url = format!("wss://localhost:{}/echo", server.port().await);
        let client = within(Http3Client::connect(&url, &options)).await.unwrap();
        assert!(client.extended_connect_enabled());
        // a second WebSocket on the same connection, open through the run
        let (mut other, _) = within(client.open(&url, &options)).await.unwrap();
        let (mut ws, accepted) = within(client.open(&url, &options)).await.unwrap();
        assert_eq!(server.line("http ").await, "http 3");
        assert_eq!(server.line("http ").await, "http 3");
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
        // hypercorn's HTTP/3 never tells its ASGI app that a WebSocket
        // ended (hypercorn/protocol/h3.py passes no StreamClosed to the
        // stream, quic.py none on ConnectionTerminated), so there is no
        // server report to compare: every echo was, byte for byte
        assert_eq!(sent.messages, COUNT);
        let info = within(other.close(CloseCode::NORMAL, "done"))
            .await
            .unwrap();
        assert!(info.was_clean, "{info}");
    });
}

#[test]
fn rfc9220_our_client_to_hypercorn_over_http3_1000_messages() {
    to_hypercorn(ClientOptions::new(), false);
}

#[test]
fn rfc9220_our_client_to_hypercorn_over_http3_1000_messages_deflated() {
    to_hypercorn(
        ClientOptions::new().deflate(tether::DeflateConfig::default()),
        true,
    );
}
