//! Two cores back to back (no sockets): bulk exchange, ping flood.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tether::{CloseCode, Config, Connection, Event, Message, MessageKind, Role, State};

/// Moves the output of `from` into `to` in random-sized pieces; returns
/// the events `to` produced.
fn pump(
    rng: &mut StdRng,
    now: Instant,
    from: &mut Connection,
    to: &mut Connection,
    events: &mut Vec<Event>,
) {
    let wire = from.take_output();
    let mut rest = &wire[..];
    while !rest.is_empty() {
        let n = rng.random_range(1..=rest.len().min(70_000));
        to.receive(now, &rest[..n]).unwrap();
        rest = &rest[n..];
        events.extend(std::iter::from_fn(|| to.poll_event()));
    }
}

fn random_message(rng: &mut StdRng) -> Message {
    let len = match rng.random_range(0..10) {
        0 => rng.random_range(0..100_000),
        1..=3 => rng.random_range(126..70_000),
        _ => rng.random_range(0..126),
    };
    if rng.random_bool(0.5) {
        let s: String = (0..len / 3)
            .map(|_| ['a', 'é', '€', '𝄞', ' '][rng.random_range(0..5)])
            .collect();
        Message::text(s)
    } else {
        let v: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        Message::binary(v)
    }
}

/// Sends `m` whole or in random fragments (split on char boundaries or not:
/// the receiver must reassemble either way).
fn send_random(rng: &mut StdRng, conn: &mut Connection, m: &Message) {
    if m.len() < 2 || rng.random_bool(0.5) {
        conn.send(m.clone()).unwrap();
        return;
    }
    let bytes = Bytes::copy_from_slice(m.as_bytes());
    let kind = m.kind();
    let mut cuts: Vec<usize> = (0..rng.random_range(1..6))
        .map(|_| rng.random_range(0..=bytes.len()))
        .collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    if kind == MessageKind::Text {
        let s = m.as_text().unwrap();
        cuts.retain(|&c| s.is_char_boundary(c));
    }
    let n = cuts.len() - 1;
    for (i, w) in cuts.windows(2).enumerate() {
        conn.send_fragment(kind, bytes.slice(w[0]..w[1]), i + 1 == n)
            .unwrap();
        if rng.random_bool(0.2) {
            conn.ping(Bytes::from_static(b"between fragments")).unwrap();
        }
    }
}

#[test]
fn ten_thousand_messages_both_ways_then_clean_close() {
    let mut rng = StdRng::seed_from_u64(6455);
    let now = Instant::now();
    let mut client = Connection::new(Role::Client, Config::default(), now);
    let mut server = Connection::new(Role::Server, Config::default(), now);
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    let (mut got_server, mut got_client) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        let a = random_message(&mut rng);
        let b = random_message(&mut rng);
        send_random(&mut rng, &mut client, &a);
        send_random(&mut rng, &mut server, &b);
        to_server.push(a);
        to_client.push(b);
        if rng.random_bool(0.3) {
            pump(&mut rng, now, &mut client, &mut server, &mut got_server);
            pump(&mut rng, now, &mut server, &mut client, &mut got_client);
        }
    }
    pump(&mut rng, now, &mut client, &mut server, &mut got_server);
    pump(&mut rng, now, &mut server, &mut client, &mut got_client);
    let msgs = |evs: &[Event]| -> Vec<Message> {
        evs.iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    };
    assert!(
        msgs(&got_server) == to_server,
        "server got every client message, in order"
    );
    assert!(
        msgs(&got_client) == to_client,
        "client got every server message, in order"
    );

    client.close(now, CloseCode::NORMAL, "done").unwrap();
    pump(&mut rng, now, &mut client, &mut server, &mut got_server);
    pump(&mut rng, now, &mut server, &mut client, &mut got_client);
    assert_eq!(client.state(), State::Closed);
    assert_eq!(server.state(), State::Closed);
    for evs in [&got_client, &got_server] {
        match evs.last() {
            Some(Event::Closed(info)) => assert!(info.was_clean && info.code == CloseCode::NORMAL),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn rfc6455_5_5_3_ping_flood_keeps_output_bounded() {
    for role in [Role::Client, Role::Server] {
        let now = Instant::now();
        let config = Config::default();
        let limit = config.max_queued_output;
        let mut conn = Connection::new(role, config, now);
        let mut peer = Connection::new(role.peer(), Config::default(), now);
        // a batch of 1,000 pings as the peer sends them
        for i in 0..1000u32 {
            peer.ping(Bytes::copy_from_slice(
                &[&i.to_be_bytes()[..], &[0xAB; 121]].concat(),
            ))
            .unwrap();
        }
        let batch = peer.take_output();
        let mut events = 0usize;
        for _ in 0..1000 {
            conn.receive(now, &batch).unwrap();
            while conn.poll_event().is_some() {
                events += 1;
            }
            assert!(conn.queued_output() <= limit);
        }
        assert_eq!(events, 1_000_000);
        // one Pong, for the latest Ping, is owed; nothing else was queued
        assert_eq!(conn.queued_output(), 0);
        let out = conn.take_output();
        assert!(out.len() <= 2 + 4 + 125, "one Pong: {} bytes", out.len());
        peer.receive(now, &out).unwrap();
        match peer.poll_event() {
            Some(Event::Pong(p)) => assert_eq!(&p[..4], &999u32.to_be_bytes()),
            other => panic!("{other:?}"),
        }
    }
}
