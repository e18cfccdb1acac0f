//! tether against Python's `websockets`: its client against our echo
//! servers (tokio and std adapters), and our clients against its echo server
//! (`interop/peers/ws_client.py`, `interop/peers/ws_echo_server.py`).
//!
//! Each run: 1,000 messages, binary and text in turn, the length edge cases
//! first and then random sizes up to 1 MiB (seeded; see
//! `tether_interop::payload`), each echoed and compared byte for byte and by
//! type, both sides' counts and CRC-32 compared, then a clean close with
//! 1000.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tether::{CloseCode, CloseInfo, Event, Initiator, Message};
use tether_interop::payload::{Tally, messages};
use tether_interop::{Peer, SCENARIO, field, run_blocking, run_tokio, within};

const COUNT: usize = 1_000;
const SEED: u64 = 6455;

/// The limit on a whole 1,000-message run as seen from the peer's report.
const RUN: Duration = Duration::from_secs(25);

// ----- our clients, their server ---------------------------------------------

/// Checks the Python server's `close` report against what we sent.
fn check_server_report(line: &str, sent: &Tally) {
    assert_eq!(field(line, "code"), "1000", "{line}");
    assert_eq!(field(line, "reason"), "done", "{line}");
    assert_eq!(field(line, "clean"), "true", "{line}");
    assert_eq!(Tally::from_report(line), *sent, "{line}");
}

fn check_our_close(info: &CloseInfo, initiator: Initiator) {
    assert!(info.was_clean, "{info}");
    assert_eq!(info.code, CloseCode::NORMAL, "{info}");
    assert_eq!(info.reason, "done", "{info}");
    assert_eq!(info.initiator, initiator, "{info}");
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

#[test]
fn our_tokio_client_to_websockets_server_1000_messages() {
    run_tokio(SCENARIO, async {
        use futures_util::StreamExt;
        let mut python = Peer::python("ws_echo_server.py", &[]);
        let url = format!("ws://127.0.0.1:{}/", python.port().await);
        let (mut ws, _) = within(tether_tokio::connect(&url, &Default::default()))
            .await
            .unwrap();
        let mut sent = Tally::default();
        for (i, message) in messages(SEED, COUNT).enumerate() {
            sent.add(&message);
            within(ws.send(message.clone())).await.unwrap();
            let back = within(ws.next()).await.expect("ended").unwrap();
            check_echo(i, &message, &back);
        }
        let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
        check_our_close(&info, Initiator::Application);
        check_server_report(&python.line("close ").await, &sent);
    });
}

#[test]
fn our_std_client_to_websockets_server_1000_messages() {
    run_blocking(SCENARIO, || {
        let mut python = Peer::python("ws_echo_server.py", &[]);
        let url = format!("ws://127.0.0.1:{}/", python.port_blocking());
        let (mut ws, _) = tether_std::connect(&url, &tether_std::ClientOptions::new()).unwrap();
        let mut sent = Tally::default();
        for (i, message) in messages(SEED, COUNT).enumerate() {
            sent.add(&message);
            ws.send(message.clone()).unwrap();
            let back = ws.read().unwrap();
            check_echo(i, &message, &back);
        }
        let info = ws.close(CloseCode::NORMAL, "done").unwrap();
        check_our_close(&info, Initiator::Application);
        check_server_report(&python.line_blocking("close "), &sent);
    });
}

// ----- their client, our servers -----------------------------------------------

/// Starts the Python client against `port` and returns it.
fn python_client(port: u16) -> Peer {
    let url = format!("ws://127.0.0.1:{port}/");
    Peer::python(
        "ws_client.py",
        &[&url, &SEED.to_string(), &COUNT.to_string()],
    )
}

/// Checks the Python client's `done` report against what our server got.
fn check_client_report(line: &str, received: &Tally) {
    assert!(line.starts_with("done "), "{line}");
    assert_eq!(field(line, "clean"), "true", "{line}");
    // Our answering Close echoes the code, not the reason (RFC 6455
    // section 5.5.1: "typically echoes the status code it received").
    assert_eq!(field(line, "code"), "1000", "{line}");
    assert_eq!(field(line, "reason"), "", "{line}");
    assert_eq!(received.messages, COUNT, "{line}");
    assert_eq!(Tally::from_report(line), *received, "{line}");
}

#[test]
fn websockets_client_to_our_tokio_server_1000_messages() {
    run_tokio(SCENARIO, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (mut ws, _) = tether_tokio::accept(tcp, &Default::default())
                .await
                .unwrap();
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
        let mut python = python_client(port);
        let done = python.until_within("done ", RUN).await.pop().unwrap();
        let (received, info) = within(server).await.unwrap();
        check_client_report(&done, &received);
        check_our_close(&info, Initiator::Remote);
    });
}

#[test]
fn websockets_client_to_our_std_server_1000_messages() {
    run_blocking(SCENARIO, || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let (mut ws, _) = tether_std::accept(tcp, &tether_std::ServerOptions::new()).unwrap();
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
        let mut python = python_client(port);
        let done = python.until_blocking_within("done ", RUN).pop().unwrap();
        let (received, info) = server.join().unwrap();
        check_client_report(&done, &received);
        check_our_close(&info, Initiator::Remote);
    });
}
