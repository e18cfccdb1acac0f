//! permessage-deflate through the blocking adapter over real TCP: a
//! tether-std client and server with context takeover and with
//! no_context_takeover both ways, and with deflate off on one side. A
//! counting relay between them shows what the wire carried.
#![cfg(feature = "deflate")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use common::*;
use tether_std::{ClientOptions, CloseCode, Config, DeflateConfig, Error, Message, ServerOptions};

/// Copies `from` into `to` until EOF, then half-closes `to`; the count.
fn pump(mut from: TcpStream, mut to: TcpStream) -> u64 {
    let mut n = 0;
    let mut buf = [0u8; 16 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                if to.write_all(&buf[..k]).is_err() {
                    break;
                }
                n += k as u64;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    n
}

/// A TCP relay to the server at `target`; joins to (client->server,
/// server->client) byte counts.
fn relay(target: String) -> (String, thread::JoinHandle<(u64, u64)>) {
    let (listener, url) = listen();
    let handle = thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let server =
            TcpStream::connect(target.trim_start_matches("ws://").trim_end_matches('/')).unwrap();
        let up = {
            let (c, s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || pump(c, s))
        };
        let down = pump(server, client);
        (up.join().unwrap(), down)
    });
    (url, handle)
}

fn echo_server(options: ServerOptions) -> (String, thread::JoinHandle<tether_std::CloseInfo>) {
    serve(options, |mut ws| {
        loop {
            match ws.read() {
                Ok(m) => ws.send(m).unwrap(),
                Err(Error::Closed(info)) => return info,
                Err(e) => panic!("{e}"),
            }
        }
    })
}

/// Compressible text and binary, with a random-looking message now and then.
fn messages() -> Vec<Message> {
    (0..150u32)
        .map(|i| {
            let text = format!("message {i}: ").repeat(1 + (i as usize * 37) % 900);
            match i % 3 {
                0 => Message::text(text),
                1 => Message::binary(text.into_bytes()),
                _ => Message::binary(
                    (0..(i * 13) % 3000)
                        .map(|k| (k.wrapping_mul(2_654_435_761) >> 13) as u8)
                        .collect::<Vec<u8>>(),
                ),
            }
        })
        .collect()
}

/// Runs the echo through a relay; the accepted extensions and the plain
/// and wire byte counts.
fn run(client: ClientOptions, server: ServerOptions) -> (Vec<String>, u64, (u64, u64)) {
    bounded(Duration::from_secs(30), move || {
        let (server_url, server) = echo_server(server);
        let (url, counts) = relay(server_url);
        let (mut ws, accepted) = tether_std::connect(&url, &client).unwrap();
        let mut plain = 0;
        for (i, m) in messages().into_iter().enumerate() {
            plain += m.as_bytes().len() as u64;
            ws.send(m.clone()).unwrap();
            assert!(ws.read().unwrap() == m, "message {i} changed");
        }
        assert!(ws.close(CloseCode::NORMAL, "done").unwrap().was_clean);
        assert!(server.join().unwrap().was_clean);
        let names = accepted
            .extensions()
            .iter()
            .map(ToString::to_string)
            .collect();
        (names, plain, counts.join().unwrap())
    })
}

#[test]
fn std_deflate_with_context_takeover() {
    let d = DeflateConfig::default();
    let (accepted, plain, (up, down)) = run(
        ClientOptions::new().deflate(d),
        ServerOptions::new().deflate(d),
    );
    assert_eq!(accepted, ["permessage-deflate"]);
    assert!(
        up < plain / 4 && down < plain / 4,
        "{up}/{down} for {plain}"
    );
}

#[test]
fn std_deflate_with_no_context_takeover_both_ways() {
    let client = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        client_max_window_bits: 10,
        ..DeflateConfig::default()
    };
    let (accepted, plain, (up, down)) = run(
        ClientOptions::new().deflate(client),
        ServerOptions::new().deflate(DeflateConfig::default()),
    );
    assert_eq!(
        accepted,
        ["permessage-deflate; server_no_context_takeover; client_no_context_takeover"]
    );
    assert!(
        up < plain / 4 && down < plain / 4,
        "{up}/{down} for {plain}"
    );
}

#[test]
fn std_deflate_off_on_either_side_sends_plain() {
    let d = DeflateConfig::default();
    for (client, server) in [
        (ClientOptions::new().deflate(d), ServerOptions::new()),
        (
            ClientOptions::new(),
            ServerOptions::new().config(Config {
                deflate: Some(d),
                ..Config::default()
            }),
        ),
    ] {
        let (accepted, plain, (up, down)) = run(client, server);
        assert!(accepted.is_empty());
        assert!(up > plain && down > plain, "{up}/{down} for {plain}");
    }
}
