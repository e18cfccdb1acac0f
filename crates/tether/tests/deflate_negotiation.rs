//! permessage-deflate negotiation (RFC 7692 section 7.1), both roles: each
//! parameter, several offers, what is declined or refused, and the whole
//! handshake through `tether::upgrade`.
#![cfg(feature = "deflate")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use tether::deflate::{
    DeflateParams, NegotiationError, answer_offer, client_accept, client_offer, parse_offer,
    server_accept,
};
use tether::handshake::{AcceptOptions, ClientConfig, Extension, Limits};
use tether::upgrade::{ClientUpgrade, HandshakeError, ServerUpgrade};
use tether::{Config, Connection, DeflateConfig, Event, Message, Role};

/// Parses a `Sec-WebSocket-Extensions` value the way a server does.
fn offers(header: &str) -> Vec<Extension> {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {header}\r\n\r\n"
    );
    match tether::handshake::parse_request(request.as_bytes(), &Limits::default()).unwrap() {
        tether::handshake::Status::Complete(r, _) => r.extensions().to_vec(),
        tether::handshake::Status::Partial => panic!("partial"),
    }
}

fn one(header: &str) -> Extension {
    let mut all = offers(header);
    assert_eq!(all.len(), 1, "{header}");
    all.remove(0)
}

fn server(config: DeflateConfig, header: &str) -> Option<(DeflateParams, String)> {
    server_accept(&config, &offers(header)).map(|(p, a)| (p, a.to_string()))
}

fn params(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: sbits,
        client_max_window_bits: cbits,
    }
}

// ----- the client's offer ---------------------------------------------------

#[test]
fn rfc7692_7_1_client_offer_from_config() {
    assert_eq!(
        client_offer(&DeflateConfig::default()).to_string(),
        "permessage-deflate; client_max_window_bits"
    );
    let config = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 10,
        client_max_window_bits: 12,
        ..DeflateConfig::default()
    };
    assert_eq!(
        client_offer(&config).to_string(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits=12"
    );
    // out-of-range config values are clamped; we never offer to compress with 8
    let config = DeflateConfig {
        server_max_window_bits: 3,
        client_max_window_bits: 8,
        ..DeflateConfig::default()
    };
    assert_eq!(
        client_offer(&config).to_string(),
        "permessage-deflate; server_max_window_bits=8; client_max_window_bits=9"
    );
}

// ----- the server's side ----------------------------------------------------

#[test]
fn rfc7692_7_1_server_accepts_a_plain_offer() {
    let (p, answer) = server(DeflateConfig::default(), "permessage-deflate").unwrap();
    assert_eq!(answer, "permessage-deflate");
    assert_eq!(p, DeflateParams::default());
}

#[test]
fn rfc7692_7_1_1_1_server_no_context_takeover() {
    let (p, answer) = server(
        DeflateConfig::default(),
        "permessage-deflate; server_no_context_takeover",
    )
    .unwrap();
    assert_eq!(answer, "permessage-deflate; server_no_context_takeover");
    assert_eq!(p, params(true, false, 15, 15));
    // a server may declare it unasked
    let config = DeflateConfig {
        server_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    let (p, answer) = server(config, "permessage-deflate").unwrap();
    assert_eq!(answer, "permessage-deflate; server_no_context_takeover");
    assert!(p.server_no_context_takeover);
}

#[test]
fn rfc7692_7_1_1_2_client_no_context_takeover() {
    let (p, answer) = server(
        DeflateConfig::default(),
        "permessage-deflate; client_no_context_takeover",
    )
    .unwrap();
    assert_eq!(answer, "permessage-deflate; client_no_context_takeover");
    assert_eq!(p, params(false, true, 15, 15));
    // a server may require it of any client
    let config = DeflateConfig {
        client_no_context_takeover: true,
        ..DeflateConfig::default()
    };
    let (p, answer) = server(config, "permessage-deflate").unwrap();
    assert_eq!(answer, "permessage-deflate; client_no_context_takeover");
    assert!(p.client_no_context_takeover);
}

#[test]
fn rfc7692_7_1_2_1_server_max_window_bits() {
    // asked: answered with the same or smaller
    let (p, answer) = server(
        DeflateConfig::default(),
        "permessage-deflate; server_max_window_bits=10",
    )
    .unwrap();
    assert_eq!(answer, "permessage-deflate; server_max_window_bits=10");
    assert_eq!(p.server_max_window_bits, 10);
    let config = DeflateConfig {
        server_max_window_bits: 9,
        ..DeflateConfig::default()
    };
    let (p, answer) = server(config, "permessage-deflate; server_max_window_bits=12").unwrap();
    assert_eq!(answer, "permessage-deflate; server_max_window_bits=9");
    assert_eq!(p.server_max_window_bits, 9);
    // unasked: a server with a smaller window declares it
    let config = DeflateConfig {
        server_max_window_bits: 11,
        ..DeflateConfig::default()
    };
    let (p, answer) = server(config, "permessage-deflate").unwrap();
    assert_eq!(answer, "permessage-deflate; server_max_window_bits=11");
    assert_eq!(p.server_max_window_bits, 11);
}

#[test]
fn rfc7692_7_1_2_1_server_max_window_bits_8_is_declined_and_the_next_offer_taken() {
    let declined = answer_offer(
        &DeflateConfig::default(),
        &one("permessage-deflate; server_max_window_bits=8"),
    )
    .unwrap_err();
    assert!(matches!(declined, NegotiationError::CannotHonour(_)));
    assert!(declined.to_string().contains("server_max_window_bits=8"));
    assert_eq!(
        server(
            DeflateConfig::default(),
            "permessage-deflate; server_max_window_bits=8"
        ),
        None
    );
    let (p, answer) = server(
        DeflateConfig::default(),
        "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9",
    )
    .unwrap();
    assert_eq!(answer, "permessage-deflate; server_max_window_bits=9");
    assert_eq!(p.server_max_window_bits, 9);
}

#[test]
fn rfc7692_7_1_2_2_client_max_window_bits() {
    // a flag: the server may limit the client (here it does not want to)
    let (p, answer) = server(
        DeflateConfig::default(),
        "permessage-deflate; client_max_window_bits",
    )
    .unwrap();
    assert_eq!(answer, "permessage-deflate");
    assert_eq!(p.client_max_window_bits, 15);
    // a server that wants a smaller client window asks for it
    let config = DeflateConfig {
        client_max_window_bits: 10,
        ..DeflateConfig::default()
    };
    let (p, answer) = server(config, "permessage-deflate; client_max_window_bits").unwrap();
    assert_eq!(answer, "permessage-deflate; client_max_window_bits=10");
    assert_eq!(p.client_max_window_bits, 10);
    // a client's value is a promise: inflate with it, answer only a smaller one
    let (p, answer) = server(
        DeflateConfig::default(),
        "permessage-deflate; client_max_window_bits=12",
    )
    .unwrap();
    assert_eq!(answer, "permessage-deflate");
    assert_eq!(p.client_max_window_bits, 12);
    let (p, answer) = server(config, "permessage-deflate; client_max_window_bits=12").unwrap();
    assert_eq!(answer, "permessage-deflate; client_max_window_bits=10");
    assert_eq!(p.client_max_window_bits, 10);
    let (p, _) = server(config, "permessage-deflate; client_max_window_bits=8").unwrap();
    assert_eq!(p.client_max_window_bits, 8);
    // without the parameter a client cannot be limited: accepted with 15
    let (p, answer) = server(config, "permessage-deflate").unwrap();
    assert_eq!(answer, "permessage-deflate");
    assert_eq!(p.client_max_window_bits, 15);
}

#[test]
fn rfc7692_7_1_every_parameter_at_once() {
    let (p, answer) = server(
        DeflateConfig::default(),
        "permessage-deflate; client_max_window_bits=11; server_max_window_bits=10; \
         client_no_context_takeover; server_no_context_takeover",
    )
    .unwrap();
    assert_eq!(
        answer,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10"
    );
    assert_eq!(p, params(true, true, 10, 11));
}

#[test]
fn rfc7692_7_1_bad_offers_are_declined_each_for_its_cause() {
    let cases: &[(&str, &str)] = &[
        ("permessage-deflate; foo", "no parameter \"foo\""),
        ("permessage-deflate; foo=1", "no parameter \"foo\""),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "server_no_context_takeover appears twice",
        ),
        (
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "client_max_window_bits appears twice",
        ),
        (
            "permessage-deflate; server_no_context_takeover=1",
            "takes no value",
        ),
        (
            "permessage-deflate; client_no_context_takeover=\"x\"",
            "takes no value",
        ),
        (
            "permessage-deflate; server_max_window_bits",
            "needs a value",
        ),
        (
            "permessage-deflate; server_max_window_bits=16",
            "server_max_window_bits=16 is not",
        ),
        (
            "permessage-deflate; server_max_window_bits=7",
            "server_max_window_bits=7 is not",
        ),
        (
            "permessage-deflate; server_max_window_bits=010",
            "server_max_window_bits=010 is not",
        ),
        (
            "permessage-deflate; client_max_window_bits=08",
            "client_max_window_bits=08 is not",
        ),
        (
            "permessage-deflate; client_max_window_bits=abc",
            "client_max_window_bits=abc is not",
        ),
    ];
    for (header, cause) in cases {
        let err = parse_offer(&one(header)).unwrap_err();
        assert!(err.to_string().contains(cause), "{header}: {err}");
        assert_eq!(server(DeflateConfig::default(), header), None, "{header}");
        // with a good offer after it, that one is taken
        let both = format!("{header}, permessage-deflate; client_max_window_bits");
        assert_eq!(
            server(DeflateConfig::default(), &both).map(|(_, a)| a),
            Some("permessage-deflate".to_string()),
            "{both}"
        );
    }
    // a quoted value is unquoted first (RFC 6455 9.1): this one is fine
    let (p, _) = server(
        DeflateConfig::default(),
        "permessage-deflate; server_max_window_bits=\"10\"",
    )
    .unwrap();
    assert_eq!(p.server_max_window_bits, 10);
}

#[test]
fn rfc7692_5_other_extensions_are_ignored_and_the_first_fitting_offer_wins() {
    let (p, answer) = server(
        DeflateConfig::default(),
        "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=12, \
         permessage-deflate",
    )
    .unwrap();
    assert_eq!(answer, "permessage-deflate; server_max_window_bits=12");
    assert_eq!(p.server_max_window_bits, 12);
    // offers across several headers are one list
    assert_eq!(server(DeflateConfig::default(), "x-foo, y-bar"), None);
}

// ----- the client's check of the answer --------------------------------------

fn answer(header: &str) -> Extension {
    one(header)
}

#[test]
fn rfc7692_7_1_client_accepts_answers_that_fit() {
    let d = DeflateConfig::default();
    assert_eq!(
        client_accept(&d, &answer("permessage-deflate")).unwrap(),
        DeflateParams::default()
    );
    assert_eq!(
        client_accept(
            &d,
            &answer(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9; client_max_window_bits=8"
            )
        )
        .unwrap(),
        params(true, true, 9, 8)
    );
    // our own hints hold when the answer is silent
    let d = DeflateConfig {
        client_no_context_takeover: true,
        client_max_window_bits: 11,
        ..DeflateConfig::default()
    };
    assert_eq!(
        client_accept(&d, &answer("permessage-deflate")).unwrap(),
        params(false, true, 15, 11)
    );
    // what we asked for, answered
    let d = DeflateConfig {
        server_no_context_takeover: true,
        server_max_window_bits: 10,
        ..DeflateConfig::default()
    };
    assert_eq!(
        client_accept(
            &d,
            &answer("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
        )
        .unwrap(),
        params(true, false, 9, 15)
    );
}

#[test]
fn rfc7692_7_1_client_refuses_answers_that_do_not_fit_naming_the_cause() {
    let plain = DeflateConfig::default();
    let asking = DeflateConfig {
        server_no_context_takeover: true,
        server_max_window_bits: 10,
        client_max_window_bits: 12,
        ..DeflateConfig::default()
    };
    let cases: &[(&DeflateConfig, &str, &str)] = &[
        (&plain, "permessage-deflate; foo", "no parameter \"foo\""),
        (
            &plain,
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "appears twice",
        ),
        (
            &plain,
            "permessage-deflate; client_max_window_bits",
            "client_max_window_bits in an answer needs a value",
        ),
        (
            &plain,
            "permessage-deflate; server_max_window_bits=16",
            "server_max_window_bits=16 is not",
        ),
        (
            &plain,
            "permessage-deflate; server_no_context_takeover=yes",
            "takes no value",
        ),
        (
            &asking,
            "permessage-deflate; server_max_window_bits=10",
            "we asked for server_no_context_takeover",
        ),
        (
            &asking,
            "permessage-deflate; server_no_context_takeover",
            "we asked for server_max_window_bits",
        ),
        (
            &asking,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
            "server_max_window_bits=11 is larger than the 10",
        ),
        (
            &asking,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; \
             client_max_window_bits=13",
            "client_max_window_bits=13 is larger than the 12",
        ),
    ];
    for (config, header, cause) in cases {
        let err = client_accept(config, &answer(header)).unwrap_err();
        assert!(err.to_string().contains(cause), "{header}: {err}");
    }
}

// ----- the whole handshake through tether::upgrade ---------------------------

fn deflate_config(d: DeflateConfig) -> Config {
    Config {
        deflate: Some(d),
        ..Config::default()
    }
}

/// Runs both upgrade drivers against each other and returns the two
/// connections with what they negotiated installed, and the answer header.
fn handshake(client: &Config, server: &Config) -> (Connection, Connection, Vec<String>) {
    let mut c = ClientUpgrade::with_config("ws://h/x", ClientConfig::new(), client).unwrap();
    let mut s = ServerUpgrade::with_config(Limits::default(), server);
    let (request, _) = s.receive(c.request()).unwrap().unwrap();
    let head = s.accept(&request, AcceptOptions::new()).unwrap();
    let (accepted, _) = c.receive(&head).unwrap().unwrap();
    let names = accepted
        .extensions()
        .iter()
        .map(ToString::to_string)
        .collect();
    let now = Instant::now();
    let mut cc = Connection::new(Role::Client, client.clone(), now);
    let mut sc = Connection::new(Role::Server, server.clone(), now);
    if let Some(e) = c.take_extension() {
        cc.set_extension(e);
    }
    if let Some(e) = s.take_extension() {
        sc.set_extension(e);
    }
    (cc, sc, names)
}

/// Sends `text` from `a` to `b`; returns whether its frame carried RSV1.
fn send(a: &mut Connection, b: &mut Connection, text: &str) -> bool {
    a.send(Message::text(text)).unwrap();
    let wire = a.take_output();
    b.receive(Instant::now(), &wire).unwrap();
    assert_eq!(b.poll_event(), Some(Event::Message(Message::text(text))));
    wire[0] & 0x40 != 0
}

#[test]
fn upgrade_negotiates_and_installs_deflate_on_both_sides() {
    let text = "compress me, compress me, compress me, compress me";
    let on = deflate_config(DeflateConfig::default());
    let (mut c, mut s, answer) = handshake(&on, &on);
    assert_eq!(answer, ["permessage-deflate"]);
    assert!(send(&mut c, &mut s, text));
    assert!(send(&mut s, &mut c, text));

    // no_context_takeover both ways, asked by the client
    let client = deflate_config(DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 10,
        ..DeflateConfig::default()
    });
    let (mut c, mut s, answer) = handshake(&client, &on);
    assert_eq!(
        answer,
        [
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
          server_max_window_bits=10"
        ]
    );
    for _ in 0..3 {
        assert!(send(&mut c, &mut s, text));
        assert!(send(&mut s, &mut c, text));
    }

    // off on either side: nothing negotiated, nothing compressed
    for (client, server) in [(&on, &Config::default()), (&Config::default(), &on)] {
        let (mut c, mut s, answer) = handshake(client, server);
        assert!(answer.is_empty());
        assert!(!send(&mut c, &mut s, text));
        assert!(!send(&mut s, &mut c, text));
    }
}

#[test]
fn upgrade_client_fails_on_an_answer_that_does_not_fit_its_offer() {
    let asking = deflate_config(DeflateConfig {
        server_max_window_bits: 10,
        ..DeflateConfig::default()
    });
    let cases = [
        (
            "permessage-deflate; server_max_window_bits=12",
            "server_max_window_bits=12 is larger than the 10",
        ),
        (
            "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=10",
            "more than once",
        ),
    ];
    for (header, cause) in cases {
        let mut c = ClientUpgrade::with_config("ws://h/x", ClientConfig::new(), &asking).unwrap();
        let mut s = ServerUpgrade::new(Limits::default());
        let (request, _) = s.receive(c.request()).unwrap().unwrap();
        let mut options = AcceptOptions::new();
        for e in offers(header) {
            options = options.extension(e);
        }
        let head = request.accept(&options).unwrap();
        let err = c.receive(&head).unwrap_err();
        assert!(matches!(err, HandshakeError::Deflate(_)), "{err}");
        assert!(err.to_string().contains(cause), "{err}");
        assert!(c.take_extension().is_none());
    }
}
