//! permessage-deflate through the tokio adapter over real TCP: tether with
//! tether (context takeover, and no_context_takeover both ways), tokio with
//! the blocking adapter both ways, and deflate off on one side. A counting
//! relay between client and server shows the bytes on the wire were
//! compressed.
#![cfg(feature = "deflate")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tether::{CloseCode, Config, DeflateConfig, Message};
use tokio::net::{TcpListener, TcpStream};

fn with_deflate(d: DeflateConfig) -> Config {
    Config {
        deflate: Some(d),
        ..Config::default()
    }
}

/// Mostly compressible messages (text and binary), some random bytes.
fn messages(seed: u64, count: usize) -> Vec<Message> {
    let mut rng = StdRng::seed_from_u64(seed);
    let words = ["alpha ", "beta ", "gamma ", "délta ", "{\"k\":1} "];
    (0..count)
        .map(|i| {
            let len = rng.random_range(0..20_000);
            match i % 4 {
                3 => Message::binary((0..len / 8).map(|_| rng.random()).collect::<Vec<u8>>()),
                k => {
                    let mut s = String::new();
                    while s.len() < len {
                        s.push_str(words[rng.random_range(0..words.len())]);
                    }
                    if k == 0 {
                        Message::binary(s.into_bytes())
                    } else {
                        Message::text(s)
                    }
                }
            }
        })
        .collect()
}

/// A TCP relay to `target` that counts the bytes each way; the counts come
/// back once both directions ended.
async fn relay(target: String) -> (String, tokio::task::JoinHandle<(u64, u64)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut server = TcpStream::connect(target).await.unwrap();
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        let up = async {
            let n = tokio::io::copy(&mut cr, &mut sw).await.unwrap_or(0);
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut sw).await;
            n
        };
        let down = async {
            let n = tokio::io::copy(&mut sr, &mut cw).await.unwrap_or(0);
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut cw).await;
            n
        };
        tokio::join!(up, down)
    });
    (url, task)
}

/// A tokio echo server with `config`; returns its address and the
/// permessage-deflate offer it saw.
async fn tokio_echo(config: Config) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let options = tether_tokio::ServerOptions::new().config(config);
        let (mut ws, request) = tether_tokio::accept(tcp, &options).await.unwrap();
        while let Some(Ok(m)) = ws.next().await {
            ws.send(m).await.unwrap();
        }
        assert!(ws.close_info().unwrap().was_clean);
        request
            .extensions()
            .iter()
            .map(ToString::to_string)
            .collect()
    });
    (addr, task)
}

/// Echoes `msgs` through a tokio client with `config` at `url`; returns
/// the extensions the server accepted and the plain bytes sent.
async fn tokio_client(url: &str, config: Config, msgs: &[Message]) -> (Vec<String>, u64) {
    let options = tether_tokio::ClientOptions::new().config(config);
    let (mut ws, accepted) = within(tether_tokio::connect(url, &options)).await.unwrap();
    let mut plain = 0;
    for (i, m) in msgs.iter().enumerate() {
        plain += m.as_bytes().len() as u64;
        within(ws.send(m.clone())).await.unwrap();
        let back = within(ws.next()).await.unwrap().unwrap();
        assert!(back == *m, "message {i} changed on the way");
    }
    let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
    assert!(info.was_clean, "{info}");
    let names = accepted
        .extensions()
        .iter()
        .map(ToString::to_string)
        .collect();
    (names, plain)
}

async fn tether_with_tether(client: DeflateConfig, server: DeflateConfig) -> Vec<String> {
    let msgs = messages(1, 200);
    let (addr, server) = tokio_echo(with_deflate(server)).await;
    let (url, counts) = relay(addr).await;
    let (accepted, plain) = tokio_client(&url, with_deflate(client), &msgs).await;
    let offered = within(server).await.unwrap();
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert!(offered[0].starts_with("permessage-deflate"), "{offered:?}");
    let (up, down) = within(counts).await.unwrap();
    // three quarters of the bytes are words from a five-word dictionary
    assert!(up < plain / 2, "{up} bytes on the wire for {plain}");
    assert!(down < plain / 2, "{down} bytes on the wire for {plain}");
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_deflate_with_context_takeover() {
    let accepted = tether_with_tether(DeflateConfig::default(), DeflateConfig::default()).await;
    assert_eq!(accepted, ["permessage-deflate"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_deflate_with_no_context_takeover_both_ways() {
    let client = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    let server = DeflateConfig {
        server_max_window_bits: 12,
        ..DeflateConfig::default()
    };
    let accepted = tether_with_tether(client, server).await;
    assert_eq!(
        accepted,
        [
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
          server_max_window_bits=12"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_deflate_off_on_one_side_negotiates_nothing() {
    let msgs = messages(2, 20);
    for (client, server) in [
        (with_deflate(DeflateConfig::default()), Config::default()),
        (Config::default(), with_deflate(DeflateConfig::default())),
    ] {
        let offered_by_client = client.deflate.is_some();
        let (addr, server) = tokio_echo(server).await;
        let (url, counts) = relay(addr).await;
        let (accepted, plain) = tokio_client(&url, client, &msgs).await;
        assert!(accepted.is_empty(), "{accepted:?}");
        assert_eq!(
            within(server).await.unwrap().len(),
            usize::from(offered_by_client)
        );
        let (up, _) = within(counts).await.unwrap();
        assert!(
            up > plain,
            "{up} bytes on the wire for {plain}: not compressed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_client_std_server_with_deflate() {
    let msgs = messages(3, 100);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::task::spawn_blocking(move || {
        let (tcp, _) = listener.accept().unwrap();
        let options = tether_std::ServerOptions::new().deflate(DeflateConfig::default());
        let (mut ws, _) = tether_std::accept(tcp, &options).unwrap();
        loop {
            match ws.read() {
                Ok(m) => ws.send(m).unwrap(),
                Err(tether_std::Error::Closed(info)) => return info,
                Err(e) => panic!("{e}"),
            }
        }
    });
    let (url, counts) = relay(addr).await;
    let (accepted, plain) = tokio_client(&url, with_deflate(DeflateConfig::default()), &msgs).await;
    assert_eq!(accepted, ["permessage-deflate"]);
    assert!(within(server).await.unwrap().was_clean);
    let (up, down) = within(counts).await.unwrap();
    assert!(
        up < plain / 2 && down < plain / 2,
        "{up}/{down} for {plain}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn std_client_tokio_server_with_deflate() {
    let msgs = messages(4, 100);
    let no_takeover = DeflateConfig {
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    let (addr, server) = tokio_echo(with_deflate(DeflateConfig::default())).await;
    let (url, counts) = relay(addr).await;
    let client = tokio::task::spawn_blocking(move || {
        let options = tether_std::ClientOptions::new().deflate(no_takeover);
        let (mut ws, accepted) = tether_std::connect(&url, &options).unwrap();
        let mut plain = 0;
        for m in &msgs {
            plain += m.as_bytes().len() as u64;
            ws.send(m.clone()).unwrap();
            assert!(ws.read().unwrap() == *m);
        }
        assert!(ws.close(CloseCode::NORMAL, "done").unwrap().was_clean);
        (accepted.extensions()[0].to_string(), plain)
    });
    let (accepted, plain) = within(client).await.unwrap();
    assert_eq!(accepted, "permessage-deflate; client_no_context_takeover");
    assert_eq!(
        within(server).await.unwrap(),
        ["permessage-deflate; client_no_context_takeover; client_max_window_bits"]
    );
    let (up, down) = within(counts).await.unwrap();
    assert!(
        up < plain / 2 && down < plain / 2,
        "{up}/{down} for {plain}"
    );
}

/// Awaits `f`, counting its polls.
async fn counting_polls<F: std::future::Future>(f: F) -> (F::Output, u32) {
    let mut f = std::pin::pin!(f);
    let mut polls = 0;
    let out = std::future::poll_fn(|cx| {
        polls += 1;
        f.as_mut().poll(cx)
    })
    .await;
    (out, polls)
}

/// A message that inflates to 16 MiB from ~16 KiB on the wire (a
/// decompression bomb under the limit) is inflated a turn
/// (`Config::turn_bytes`) at a time: the task that drives the connection
/// gives the runtime back after each turn (64 of them) instead of holding
/// its thread for all of it. Counted in polls, not time.
#[tokio::test(flavor = "current_thread")]
async fn a_bomb_is_inflated_in_turns_giving_the_runtime_back_between() {
    const BIG: usize = 16 << 20;
    let config = Config {
        max_message_size: BIG,
        turn_bytes: 256 << 10,
        ..with_deflate(DeflateConfig::default())
    };
    // the server answers each message with its length and how often its
    // `next()` was polled to get it
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_config = config.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let options = tether_tokio::ServerOptions::new().config(server_config);
        let (mut ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
        loop {
            let (next, polls) = counting_polls(ws.next()).await;
            let Some(Ok(m)) = next else { break };
            let answer = format!("{} {polls}", m.len());
            ws.send(Message::text(answer)).await.unwrap();
        }
    });
    let options = tether_tokio::ClientOptions::new().config(config);
    let (mut ws, _) = within(tether_tokio::connect(&format!("ws://{addr}/"), &options))
        .await
        .unwrap();
    let polls_for = |answer: Message| -> (usize, u32) {
        let text = answer.as_text().unwrap().to_string();
        let (len, polls) = text.split_once(' ').unwrap();
        (len.parse().unwrap(), polls.parse().unwrap())
    };
    within(ws.send(Message::binary(vec![0u8; 10])))
        .await
        .unwrap();
    let (len, small) = polls_for(within(ws.next()).await.unwrap().unwrap());
    assert_eq!(len, 10);
    within(ws.send(Message::binary(vec![0u8; BIG])))
        .await
        .unwrap();
    let (len, big) = polls_for(within(ws.next()).await.unwrap().unwrap());
    assert_eq!(len, BIG);
    // 16 MiB in turns of 256 KiB: 64 turns, each giving the thread back;
    // the connection's background task drives some of them, the reader
    // the others (all in one poll when turns are unbounded)
    assert!(small <= 4, "{small} polls for a small message");
    assert!(big >= 16, "only {big} polls while 16 MiB were inflated");
    within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
    within(server).await.unwrap();
}
