#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Properties: any split of a head parses to the same result as the whole
//! head; header-name case and token-list spacing do not matter; arbitrary
//! bytes never panic and never give a prefix a different answer.

mod common;

use common::*;
use proptest::prelude::*;
use tether_handshake::{ClientConfig, ClientHandshake, Extension, Limits, Status, parse_request};

/// Feeds `bytes` in the pieces that `cuts` (sorted offsets) make, appending to
/// a buffer and calling `parse` after each piece, as a server reading a
/// socket would; returns the first answer that is not `Partial`, or the last.
fn feed<T: std::fmt::Debug, E>(
    bytes: &[u8],
    cuts: &[usize],
    parse: impl Fn(&[u8]) -> Result<Status<T>, E>,
) -> Result<Status<T>, E> {
    let mut buf = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let cut = cut.clamp(start, bytes.len());
        buf.extend_from_slice(&bytes[start..cut]);
        start = cut;
        match parse(&buf) {
            Ok(Status::Partial) => {}
            other => return other,
        }
    }
    Ok(Status::Partial)
}

fn cuts(max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=max, 0..12).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

fn client_for_responses() -> ClientHandshake {
    let config = ClientConfig::new()
        .subprotocol("chat")
        .subprotocol("superchat")
        .extension(Extension::new("permessage-deflate").with_flag("client_max_window_bits"));
    ClientHandshake::with_key("ws://server.example.com/chat", config, SAMPLE_NONCE).unwrap()
}

/// Valid heads for both sides, with frames after some of them.
fn requests() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = CLIENT_FIXTURES.iter().map(|f| fixture(f)).collect();
    out.push(head("GET /chat HTTP/1.1", SAMPLE_REQUEST));
    let mut with_frame = head("GET /chat HTTP/1.1", SAMPLE_REQUEST);
    with_frame.extend_from_slice(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    out.push(with_frame);
    // Invalid ones too: every split must give the same refusal.
    out.push(sample_request_with("Sec-WebSocket-Version", Some("8")));
    out.push(fixture("tls-client-hello-curl.bin"));
    out
}

fn responses() -> Vec<Vec<u8>> {
    vec![
        fixture("response-node-ws.bin"),
        fixture("response-python-websockets.bin"),
        head("HTTP/1.1 101 Switching Protocols", SAMPLE_RESPONSE),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
        vec![0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46],
    ]
}

/// Rewrites the case of every header name of a head by `mask` (bit i set:
/// upper-case the i-th letter, counting from the start of each name).
fn recase_names(head: &[u8], mask: u64) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for (i, line) in text.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        match line.split_once(':') {
            Some((name, value)) if i > 0 => {
                for (j, c) in name.chars().enumerate() {
                    if mask >> (j % 64) & 1 == 1 {
                        out.push(c.to_ascii_uppercase());
                    } else {
                        out.push(c.to_ascii_lowercase());
                    }
                }
                out.push(':');
                out.push_str(value);
            }
            _ => out.push_str(line),
        }
    }
    out.into_bytes()
}

/// Joins tokens with commas and the given runs of optional whitespace, with
/// empty list elements where `empties` says (RFC 9110 section 5.6.1).
fn spaced_list(tokens: &[&str], spaces: &[(u8, u8, bool)]) -> String {
    let ws = |n: u8| [" ", "\t", "  ", " \t", ""][usize::from(n) % 5];
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        let (before, after, empty) = spaces.get(i).copied().unwrap_or((0, 0, false));
        if i > 0 {
            out.push(',');
        }
        if empty {
            out.push_str(ws(before));
            out.push(',');
        }
        out.push_str(ws(before));
        out.push_str(t);
        out.push_str(ws(after));
    }
    out
}

/// A prefix's answer agrees with the whole buffer's: still partial, the same
/// success, or the same kind of error (the quoted bytes in an error found
/// early may be fewer).
fn agrees<T: PartialEq, E>(prefix: &Result<Status<T>, E>, whole: &Result<Status<T>, E>) -> bool {
    match (prefix, whole) {
        (Ok(Status::Partial), _) => true,
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => std::mem::discriminant(a) == std::mem::discriminant(b),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rfc6455_4_2_1_any_split_of_a_request_parses_the_same(which in 0usize..8, cuts in cuts(600)) {
        let all = requests();
        let bytes = &all[which % all.len()];
        let limits = Limits::default();
        let whole = parse_request(bytes, &limits);
        let fed = feed(bytes, &cuts, |b| parse_request(b, &limits));
        prop_assert_eq!(fed, whole);
    }

    #[test]
    fn rfc6455_4_1_any_split_of_a_response_checks_the_same(which in 0usize..5, cuts in cuts(400)) {
        let all = responses();
        let bytes = &all[which % all.len()];
        let client = client_for_responses();
        let whole = client.check_response(bytes);
        let fed = feed(bytes, &cuts, |b| client.check_response(b));
        prop_assert_eq!(fed, whole);
    }

    #[test]
    fn rfc9110_5_1_header_name_case_does_not_matter(which in 0usize..4, mask: u64) {
        let bytes = fixture(CLIENT_FIXTURES[which]);
        let limits = Limits::default();
        let (a, used_a) = parse_request(&bytes, &limits).unwrap().complete().unwrap();
        let recased = recase_names(&bytes, mask);
        let (b, used_b) = parse_request(&recased, &limits).unwrap().complete().unwrap();
        prop_assert_eq!(used_a, used_b);
        prop_assert_eq!(a.resource_name(), b.resource_name());
        prop_assert_eq!(a.host(), b.host());
        prop_assert_eq!(a.origin(), b.origin());
        prop_assert_eq!(a.key(), b.key());
        prop_assert_eq!(a.subprotocols(), b.subprotocols());
        prop_assert_eq!(a.extensions(), b.extensions());

        let response = fixture("response-python-websockets.bin");
        let client = client_for_responses();
        let (x, _) = client.check_response(&response).unwrap().complete().unwrap();
        let (y, _) = client.check_response(&recase_names(&response, mask)).unwrap().complete().unwrap();
        prop_assert_eq!(x.subprotocol(), y.subprotocol());
        prop_assert_eq!(x.extensions(), y.extensions());
    }

    #[test]
    fn rfc9110_5_6_1_token_list_spacing_does_not_matter(
        spaces in prop::collection::vec((0u8..5, 0u8..5, any::<bool>()), 3),
        upgrade_case: bool,
    ) {
        let connection = spaced_list(&["keep-alive", if upgrade_case { "UPGRADE" } else { "Upgrade" }], &spaces);
        let protocols = spaced_list(&["chat", "superchat", "v2.chat"], &spaces);
        let extensions = spaced_list(&["permessage-deflate; client_max_window_bits", "x-foo;a=1"], &spaces);
        let mut fields = with(SAMPLE_REQUEST, "Connection", Some(&connection));
        fields = with(&fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect::<Vec<_>>(), "Sec-WebSocket-Protocol", Some(&protocols));
        fields.push(("Sec-WebSocket-Extensions".into(), extensions.clone()));
        let bytes = head_owned("GET /chat HTTP/1.1", &fields);
        let (req, _) = parse_request(&bytes, &Limits::default()).unwrap().complete().unwrap();
        prop_assert_eq!(req.subprotocols(), ["chat", "superchat", "v2.chat"]);
        prop_assert_eq!(
            req.extensions(),
            [
                Extension::new("permessage-deflate").with_flag("client_max_window_bits"),
                Extension::new("x-foo").with_param("a", "1"),
            ]
        );

        let response = with(SAMPLE_RESPONSE, "Connection", Some(&connection));
        let bytes = head_owned("HTTP/1.1 101 Switching Protocols", &response);
        prop_assert!(client_for_responses().check_response(&bytes).unwrap().is_complete());
    }

    /// What the fuzz targets check, on random bytes after a valid prefix.
    #[test]
    fn arbitrary_bytes_never_panic_and_prefixes_agree(
        which in 0usize..4,
        keep in 0usize..600,
        tail in prop::collection::vec(any::<u8>(), 0..200),
        cut in 0usize..800,
    ) {
        let base = fixture(CLIENT_FIXTURES[which]);
        let mut bytes = base[..keep.min(base.len())].to_vec();
        bytes.extend_from_slice(&tail);
        let limits = Limits::default().with_max_head_len(512).with_max_headers(16);
        let whole = parse_request(&bytes, &limits);
        let prefix = parse_request(&bytes[..cut.min(bytes.len())], &limits);
        prop_assert!(agrees(&prefix, &whole), "{:?} vs {:?}", prefix, whole);
        if let Ok(Status::Complete(_, used)) = &whole {
            prop_assert!(*used <= bytes.len() && *used <= 512);
        }
        if let Err(e) = &whole {
            prop_assert!(!e.to_string().is_empty());
            // a 4xx, or 505 for another major version of HTTP
            let response = e.response();
            prop_assert!(
                response.starts_with(b"HTTP/1.1 4") || response.starts_with(b"HTTP/1.1 505")
            );
        }

        let client = client_for_responses();
        let response = fixture("response-python-websockets.bin");
        let mut bytes = response[..keep.min(response.len())].to_vec();
        bytes.extend_from_slice(&tail);
        let whole = client.check_response(&bytes);
        let prefix = client.check_response(&bytes[..cut.min(bytes.len())]);
        prop_assert!(agrees(&prefix, &whole), "{:?} vs {:?}", prefix, whole);
    }
}
