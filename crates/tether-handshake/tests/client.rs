#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The client side: writing the request (RFC 6455 section 4.1) and checking
//! the server's answer.

mod common;

use common::*;
use tether_handshake::{
    Accepted, BuildError, ClientConfig, ClientHandshake, Extension, Limits, ResponseError, Status,
    UrlError, accept_key, parse_request,
};

/// The client of the sample handshake of RFC 6455 section 1.2.
fn sample_client() -> ClientHandshake {
    let config = ClientConfig::new()
        .subprotocol("chat")
        .subprotocol("superchat")
        .origin("http://example.com");
    ClientHandshake::with_key("ws://server.example.com/chat", config, SAMPLE_NONCE).unwrap()
}

/// A client that offers what the captured servers were asked for.
fn deflate_client() -> ClientHandshake {
    let config = ClientConfig::new()
        .subprotocol("chat")
        .subprotocol("superchat")
        .extension(Extension::new("permessage-deflate").with_flag("client_max_window_bits"));
    ClientHandshake::with_key("ws://127.0.0.1/chat", config, SAMPLE_NONCE).unwrap()
}

fn refused(client: &ClientHandshake, bytes: &[u8]) -> ResponseError {
    match client.check_response(bytes) {
        Err(e) => e,
        other => panic!(
            "expected the answer {:?} to be refused, got {other:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn accepted(client: &ClientHandshake, bytes: &[u8]) -> (Accepted, usize) {
    match client.check_response(bytes) {
        Ok(Status::Complete(a, used)) => (a, used),
        other => panic!(
            "expected the answer {:?} to be accepted, got {other:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

#[test]
fn rfc6455_1_3_accept_example() {
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let client = sample_client();
    assert_eq!(client.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(client.expected_accept(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn rfc6455_4_1_sample_request_is_written() {
    let client = sample_client();
    let expected = head(
        "GET /chat HTTP/1.1",
        &[
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Origin", "http://example.com"),
            ("Sec-WebSocket-Protocol", "chat, superchat"),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(client.request_bytes()),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn rfc6455_4_1_request_carries_port_query_extensions_and_extra_headers() {
    let config = ClientConfig::new()
        .extension(Extension::new("permessage-deflate").with_flag("client_max_window_bits"))
        .extension(Extension::new("x-test").with_param("a", "1"))
        .header("Authorization", "Bearer abc");
    let client =
        ClientHandshake::with_key("wss://[::1]:9443/a b?x=1", config, SAMPLE_NONCE).unwrap();
    let text = String::from_utf8(client.request_bytes().to_vec()).unwrap();
    assert!(
        text.starts_with("GET /a%20b?x=1 HTTP/1.1\r\nHost: [::1]:9443\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-test; a=1\r\n"), "{text}");
    assert!(
        text.ends_with("\r\nAuthorization: Bearer abc\r\n\r\n"),
        "{text}"
    );
    assert!(client.url().is_secure());
    assert_eq!((client.url().host(), client.url().port()), ("::1", 9443));
}

#[test]
fn rfc6455_4_1_our_request_passes_our_server() {
    let client = sample_client();
    let (req, used) = parse_request(client.request_bytes(), &Limits::default())
        .unwrap()
        .complete()
        .unwrap();
    assert_eq!(used, client.request_bytes().len());
    assert_eq!(req.accept_key(), client.expected_accept());
}

#[cfg(feature = "rand")]
#[test]
fn rfc6455_4_1_keys_are_fresh_16_byte_nonces() {
    let a = ClientHandshake::new("ws://h/", ClientConfig::new()).unwrap();
    let b = ClientHandshake::new("ws://h/", ClientConfig::new()).unwrap();
    assert_ne!(a.key(), b.key());
    assert_eq!(a.key().len(), 24);
    assert!(
        parse_request(a.request_bytes(), &Limits::default())
            .unwrap()
            .is_complete()
    );
    assert_ne!(
        tether_handshake::generate_key(),
        tether_handshake::generate_key()
    );
}

/// A user agent takes a folded header line (obs-fold) in a response and
/// reads it as spaces (RFC 9112 section 5.2): `Upgrade:` with its
/// value on the next line, and a folded token list, are accepted. The 101
/// was refused as malformed.
#[test]
fn rfc9112_5_2_a_client_unfolds_obs_fold_in_the_101() {
    let client = sample_client();
    let bytes = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade:\r\n websocket\r\n\
        Connection: keep-alive,\r\n\tUpgrade\r\n\
        Sec-WebSocket-Accept:\r\n  s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\r\n";
    let (acc, used) = accepted(&client, bytes);
    assert_eq!(used, bytes.len());
    assert_eq!(acc.subprotocol(), Some("chat"));
}

#[test]
fn rfc6455_4_1_sample_response_is_accepted() {
    let client = sample_client();
    let bytes = head("HTTP/1.1 101 Switching Protocols", SAMPLE_RESPONSE);
    let (acc, used) = accepted(&client, &bytes);
    assert_eq!(used, bytes.len());
    assert_eq!(acc.subprotocol(), Some("chat"));
    assert!(acc.extensions().is_empty());
    assert_eq!(acc.headers().len(), 4);
    for cut in 0..bytes.len() {
        assert_eq!(
            client.check_response(&bytes[..cut]),
            Ok(Status::Partial),
            "cut at {cut}"
        );
    }
}

#[test]
fn rfc6455_4_1_responses_captured_from_real_servers_are_accepted_and_frames_handed_on() {
    for (name, params) in [
        ("response-node-ws.bin", vec![]),
        (
            "response-python-websockets.bin",
            vec![
                ("server_max_window_bits", "12"),
                ("client_max_window_bits", "12"),
            ],
        ),
    ] {
        let bytes = fixture(name);
        let (acc, used) = accepted(&deflate_client(), &bytes);
        assert_eq!(acc.subprotocol(), Some("chat"), "{name}");
        let ext = &acc.extensions()[0];
        assert_eq!(ext.name(), "permessage-deflate");
        let got: Vec<(&str, &str)> = ext
            .params()
            .iter()
            .map(|p| (p.name(), p.value().unwrap()))
            .collect();
        assert_eq!(got, params, "{name}");
        // The servers sent "hello", compressed (RSV1 set), straight after the head.
        assert_eq!(
            &bytes[used..],
            &[0xc1, 0x07, 0xca, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            "{name}"
        );
    }
}

/// Interim answers (1xx but 101) before the 101 are passed over (RFC
/// 9110 section 15.2: a client must parse an unexpected 1xx; RFC 6455
/// section 4.1 handles statuses "per HTTP procedures"); they were taken as
/// the final answer and the handshake failed with "unexpected status 103".
/// They count toward the head limit, so a flood of them is bounded.
#[test]
fn rfc9110_15_2_interim_answers_before_the_101_are_passed_over() {
    let client = sample_client();
    let mut bytes = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
HTTP/1.1 100 Continue\r\n\r\n"
        .to_vec();
    bytes.extend(head("HTTP/1.1 101 Switching Protocols", SAMPLE_RESPONSE));
    bytes.extend([0x81, 0x00]);
    let (acc, used) = accepted(&client, &bytes);
    assert_eq!(used, bytes.len() - 2);
    assert_eq!(acc.subprotocol(), Some("chat"));
    for cut in 0..used {
        assert_eq!(
            client.check_response(&bytes[..cut]),
            Ok(Status::Partial),
            "cut at {cut}"
        );
    }
    // what follows an interim answer is still checked
    let e = refused(
        &client,
        b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    );
    assert!(
        matches!(e, ResponseError::UnexpectedStatus { status: 200, .. }),
        "{e}"
    );
    let e = refused(&client, b"HTTP/1.1 103 Early Hints\r\n\r\n\x16\x03\x01");
    assert!(matches!(e, ResponseError::NotHttp { .. }), "{e}");
    // endless interim answers end at the head limit
    let flood = b"HTTP/1.1 103 Early Hints\r\n\r\n".repeat(1000);
    let e = refused(&client, &flood);
    assert!(matches!(e, ResponseError::HeadTooLarge { .. }), "{e}");
}

#[test]
fn rfc6455_4_1_status_200_is_refused_with_status_and_reason() {
    let bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello";
    let err = refused(&sample_client(), bytes);
    let ResponseError::UnexpectedStatus {
        status,
        reason,
        headers,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*status, reason.as_str()), (200, "OK"));
    assert_eq!(headers.get_str("content-length"), Some("5"));
    assert_eq!(
        err.to_string(),
        "server answered 200 OK where 101 Switching Protocols was expected: is this a WebSocket endpoint?"
    );
}

#[test]
fn rfc6455_4_1_other_statuses_name_the_likely_cause() {
    let client = sample_client();
    let cases: &[(&[u8], &str)] = &[
        (
            b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 8, 7\r\n\r\n",
            "server answered 426 Upgrade Required where 101 Switching Protocols was expected: the server speaks WebSocket version \"8, 7\", we speak 13",
        ),
        // our Upgrade never reached it (an intermediary dropped it): the
        // server asks for the very upgrade we sent; it said "the server
        // wants another protocol"
        (
            b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "server answered 426 Upgrade Required where 101 Switching Protocols was expected: the server wants a WebSocket upgrade and did not see ours (a proxy or load balancer in between may have dropped the Upgrade and Connection headers)",
        ),
        // a server that lists 13 among its versions did not see ours either
        (
            b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13, 8\r\n\r\n",
            "server answered 426 Upgrade Required where 101 Switching Protocols was expected: the server wants a WebSocket upgrade and did not see ours (a proxy or load balancer in between may have dropped the Upgrade and Connection headers)",
        ),
        (
            b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n",
            "server answered 426 Upgrade Required where 101 Switching Protocols was expected: the server wants a WebSocket upgrade and did not see ours (a proxy or load balancer in between may have dropped the Upgrade and Connection headers)",
        ),
        (
            b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: h2c\r\n\r\n",
            "server answered 426 Upgrade Required where 101 Switching Protocols was expected: the server wants another protocol (\"h2c\")",
        ),
        (
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: wss://example.com/chat\r\n\r\n",
            "server answered 301 Moved Permanently where 101 Switching Protocols was expected: the endpoint has moved to \"wss://example.com/chat\"",
        ),
        (
            b"HTTP/1.1 403 Forbidden\r\n\r\n",
            "server answered 403 Forbidden where 101 Switching Protocols was expected: the server refused us (check credentials and the Origin)",
        ),
        (
            b"HTTP/1.0 404 \r\n\r\n",
            "server answered 404 where 101 Switching Protocols was expected: no WebSocket endpoint at this path",
        ),
        (
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\n\r\n",
            "server answered 503 Service Unavailable where 101 Switching Protocols was expected: the server cannot take us now, at a limit or going down (try again later, in 30 seconds)",
        ),
        (
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n\r\n",
            "server answered 429 Too Many Requests where 101 Switching Protocols was expected: the server is limiting how often clients come (try again later, after \"Fri, 31 Dec 1999 23:59:59 GMT\")",
        ),
        (
            b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
            "server answered 502 Bad Gateway where 101 Switching Protocols was expected: the server failed",
        ),
    ];
    for (bytes, message) in cases {
        assert_eq!(refused(&client, bytes).to_string(), *message);
    }
}

#[test]
fn rfc6455_4_1_wrong_accept_is_refused() {
    let err = refused(
        &sample_client(),
        &sample_response_with("Sec-WebSocket-Accept", Some("dGhlIHNhbXBsZSBub25jZQ==")),
    );
    assert_eq!(
        err,
        ResponseError::WrongAccept {
            expected: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
            found: "\"dGhlIHNhbXBsZSBub25jZQ==\"".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "expected Sec-WebSocket-Accept \"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\" for our key (RFC 6455 section 4.1), found \"dGhlIHNhbXBsZSBub25jZQ==\""
    );
    assert_eq!(
        refused(
            &sample_client(),
            &sample_response_with("Sec-WebSocket-Accept", None)
        ),
        ResponseError::MissingAccept
    );
    let mut fields = with(SAMPLE_RESPONSE, "x", None);
    fields.push((
        "Sec-WebSocket-Accept".into(),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
    ));
    let bytes = head_owned("HTTP/1.1 101 Switching Protocols", &fields);
    assert_eq!(
        refused(&sample_client(), &bytes),
        ResponseError::Duplicate {
            name: "Sec-WebSocket-Accept",
            count: 2
        }
    );
}

#[test]
fn rfc6455_4_1_missing_or_wrong_upgrade_is_refused() {
    let client = sample_client();
    assert_eq!(
        refused(&client, &sample_response_with("Upgrade", None)),
        ResponseError::MissingUpgrade
    );
    for bad in ["h2c", "websocket, h2c", ""] {
        let err = refused(&client, &sample_response_with("Upgrade", Some(bad)));
        assert!(
            matches!(err, ResponseError::WrongUpgrade { .. }),
            "{bad}: {err:?}"
        );
    }
    accepted(&client, &sample_response_with("Upgrade", Some("WebSocket")));
}

#[test]
fn rfc6455_4_1_missing_or_wrong_connection_is_refused() {
    let client = sample_client();
    assert_eq!(
        refused(&client, &sample_response_with("Connection", None)),
        ResponseError::MissingConnection
    );
    let err = refused(
        &client,
        &sample_response_with("Connection", Some("keep-alive")),
    );
    assert_eq!(
        err,
        ResponseError::WrongConnection {
            found: "\"keep-alive\"".into()
        }
    );
    accepted(
        &client,
        &sample_response_with("Connection", Some("keep-alive, UPGRADE")),
    );
}

#[test]
fn rfc6455_4_1_unrequested_subprotocol_is_refused() {
    let err = refused(
        &sample_client(),
        &sample_response_with("Sec-WebSocket-Protocol", Some("mqtt")),
    );
    assert_eq!(
        err.to_string(),
        "server chose subprotocol \"mqtt\", expected one we offered: chat, superchat (RFC 6455 section 4.1)"
    );
    let plain = ClientHandshake::with_key(
        "ws://server.example.com/chat",
        ClientConfig::new(),
        SAMPLE_NONCE,
    )
    .unwrap();
    let err = refused(
        &plain,
        &head("HTTP/1.1 101 Switching Protocols", SAMPLE_RESPONSE),
    );
    assert_eq!(
        err,
        ResponseError::UnrequestedSubprotocol {
            found: "\"chat\"".into(),
            offered: vec![]
        }
    );
    assert!(
        err.to_string()
            .ends_with("but we offered none (RFC 6455 section 4.1)")
    );
    // Subprotocol names are case-sensitive.
    let err = refused(
        &sample_client(),
        &sample_response_with("Sec-WebSocket-Protocol", Some("CHAT")),
    );
    assert!(matches!(err, ResponseError::UnrequestedSubprotocol { .. }));
    let err = refused(
        &sample_client(),
        &sample_response_with("Sec-WebSocket-Protocol", Some("chat, superchat")),
    );
    assert!(
        matches!(err, ResponseError::MalformedSubprotocol { .. }),
        "{err:?}"
    );
    // No subprotocol at all is the server's right.
    let (acc, _) = accepted(
        &sample_client(),
        &sample_response_with("Sec-WebSocket-Protocol", None),
    );
    assert_eq!(acc.subprotocol(), None);
}

#[test]
fn rfc6455_4_1_unrequested_extension_is_refused() {
    let bytes = sample_response_with("Sec-WebSocket-Extensions", Some("permessage-deflate"));
    let err = refused(&sample_client(), &bytes);
    assert_eq!(
        err,
        ResponseError::UnrequestedExtension {
            name: "permessage-deflate".into(),
            offered: vec![]
        }
    );
    assert_eq!(
        err.to_string(),
        "server accepted extension \"permessage-deflate\", but we offered none (RFC 6455 section 4.1)"
    );
    let bytes = [&head("HTTP/1.1 101 Switching Protocols", SAMPLE_RESPONSE)[..]].concat();
    accepted(&sample_client(), &bytes);
    let err = refused(
        &deflate_client(),
        &sample_response_with("Sec-WebSocket-Extensions", Some("x-other")),
    );
    assert!(
        err.to_string()
            .contains("expected only ones we offered: permessage-deflate"),
        "{err}"
    );
    let err = refused(
        &deflate_client(),
        &sample_response_with("Sec-WebSocket-Extensions", Some("permessage-deflate; x=\"")),
    );
    assert!(
        matches!(err, ResponseError::MalformedExtensions { .. }),
        "{err:?}"
    );
}

#[test]
fn rfc8446_6_tls_answer_to_a_plain_client_says_use_wss() {
    let client = sample_client();
    // A TLS alert record: protocol_version (70), what a TLS server may send
    // on receiving plain HTTP; and a ServerHello record.
    let alert = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46];
    assert_eq!(client.check_response(&alert[..1]), Ok(Status::Partial));
    assert_eq!(
        client.check_response(&alert[..2]),
        Err(ResponseError::TlsAnswer)
    );
    assert_eq!(client.check_response(&alert), Err(ResponseError::TlsAnswer));
    assert_eq!(
        client.check_response(&[0x16, 0x03, 0x03, 0x00, 0x7a, 0x02]),
        Err(ResponseError::TlsAnswer)
    );
    let message = ResponseError::TlsAnswer.to_string();
    assert!(
        message.starts_with("the server answered with TLS"),
        "{message}"
    );
    assert!(message.ends_with("use wss://"), "{message}");
}

#[test]
fn answers_that_are_not_http_are_refused_at_once() {
    let client = sample_client();
    let err = refused(&client, b"SSH-2.0-OpenSSH_9.2\r\n");
    assert_eq!(
        err.to_string(),
        "expected an HTTP response such as \"HTTP/1.1 101 Switching Protocols\", found \"SSH-2.0-OpenSSH_9.2\\r\\n\": is this a WebSocket server?"
    );
    assert!(matches!(
        refused(&client, b"S"),
        ResponseError::NotHttp { .. }
    ));
    assert_eq!(client.check_response(b"HTT"), Ok(Status::Partial));
    // A WebSocket frame where the 101 should be.
    assert!(matches!(
        refused(&client, &[0x81, 0x05]),
        ResponseError::NotHttp { .. }
    ));
}

/// The words of a "not HTTP" refusal come from within the head limit
/// only, as its verdict does: bytes past it are never quoted (an interim
/// answer ending near the limit let the quote run 31 bytes past it, so the
/// same answer read in pieces could be refused in other words).
#[test]
fn rfc6455_4_1_not_http_after_an_interim_answer_quotes_nothing_past_the_head_limit() {
    let interim = b"HTTP/1.1 103 Early Hints\r\n\r\n";
    let limit = interim.len() + 4;
    let config = ClientConfig::new().limits(Limits::default().with_max_head_len(limit));
    let client = ClientHandshake::with_key("ws://h/", config, SAMPLE_NONCE).unwrap();
    let mut bytes = interim.to_vec();
    bytes.extend_from_slice(b"SSH-2.0-OpenSSH_9.2\r\n");
    let ResponseError::NotHttp { found } = refused(&client, &bytes) else {
        panic!("not HTTP")
    };
    assert_eq!(found, "\"SSH-\"", "quoted past the limit");
    // read in pieces, the same words once the limit is reached
    assert_eq!(
        client.check_response(&bytes[..limit]),
        Err(ResponseError::NotHttp { found })
    );
}

#[test]
fn rfc6455_4_1_http_1_0_101_is_refused() {
    let bytes = head("HTTP/1.0 101 Switching Protocols", SAMPLE_RESPONSE);
    let err = refused(&sample_client(), &bytes);
    assert_eq!(
        err,
        ResponseError::HttpVersion {
            found: "\"HTTP/1.0\"".into()
        }
    );
    let err = refused(&sample_client(), b"HTTP/2 101\r\n\r\n");
    assert!(matches!(err, ResponseError::HttpVersion { .. }), "{err:?}");
}

#[test]
fn malformed_response_heads_are_refused_in_plain_words() {
    for bytes in [
        &b"HTTP/1.1 1o1 Switching\r\n\r\n"[..],
        b"HTTP/1.1 101 OK\r\nUpgrade websocket\r\n\r\n",
    ] {
        let err = refused(&sample_client(), bytes);
        assert!(matches!(err, ResponseError::Malformed { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("malformed HTTP response head: ")
        );
    }
}

#[test]
fn response_head_over_the_limit_is_refused_while_partial() {
    let config =
        ClientConfig::new().limits(Limits::default().with_max_head_len(128).with_max_headers(4));
    let client = ClientHandshake::with_key("ws://h/", config, SAMPLE_NONCE).unwrap();
    let mut bytes = b"HTTP/1.1 101 Switching Protocols\r\nX-Filler: ".to_vec();
    bytes.resize(128, b'a');
    assert_eq!(client.check_response(&bytes), Ok(Status::Partial));
    bytes.push(b'a');
    assert_eq!(
        client.check_response(&bytes),
        Err(ResponseError::HeadTooLarge { limit: 128 })
    );
    // the fifth field is known whole once the next line starts (it could
    // fold onto it, RFC 9112 section 5.2)
    let many = b"HTTP/1.1 101 Switching Protocols\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\ne: 5\r\nf";
    assert_eq!(
        client.check_response(many),
        Err(ResponseError::TooManyHeaders { limit: 4 })
    );
}

#[test]
fn rfc6455_3_bad_urls_and_options_are_build_errors() {
    let build = |url: &str, config: ClientConfig| {
        ClientHandshake::with_key(url, config, SAMPLE_NONCE).unwrap_err()
    };
    assert_eq!(
        build("http://h/", ClientConfig::new()),
        BuildError::Url(UrlError::UnsupportedScheme {
            scheme: "http".into()
        })
    );
    let err = build("ws://h/#x", ClientConfig::new());
    assert_eq!(err, BuildError::Url(UrlError::Fragment));
    assert!(std::error::Error::source(&err).is_some());
    assert!(matches!(
        build("ws://h/", ClientConfig::new().subprotocol("a b")),
        BuildError::InvalidSubprotocol { .. }
    ));
    assert!(matches!(
        build(
            "ws://h/",
            ClientConfig::new().extension(Extension::new("x").with_param("a", "1 2"))
        ),
        BuildError::InvalidExtension { .. }
    ));
    assert!(matches!(
        build(
            "ws://h/",
            ClientConfig::new().header("Sec-WebSocket-Key", "x")
        ),
        BuildError::ReservedHeader { .. }
    ));
    assert!(matches!(
        build("ws://h/", ClientConfig::new().header("Host", "x")),
        BuildError::ReservedHeader { .. }
    ));
    assert!(matches!(
        build("ws://h/", ClientConfig::new().header("X", "a\r\nb: c")),
        BuildError::InvalidHeaderValue { .. }
    ));
    assert!(matches!(
        build("ws://h/", ClientConfig::new().origin("a\nb")),
        BuildError::InvalidHeaderValue { .. }
    ));
    assert!(matches!(
        build("ws://h/", ClientConfig::new().header("X:Y", "1")),
        BuildError::InvalidHeaderName { .. }
    ));
    // Offering a subprotocol twice is one offer.
    let client = ClientHandshake::with_key(
        "ws://h/",
        ClientConfig::new().subprotocol("a").subprotocol("a"),
        SAMPLE_NONCE,
    )
    .unwrap();
    assert!(
        String::from_utf8_lossy(client.request_bytes()).contains("Sec-WebSocket-Protocol: a\r\n")
    );
}

/// Fuzz-found: under a head limit smaller than "HTTP/", the verdict must not
/// depend on how the bytes were split (the whole buffer used to say "not
/// HTTP" where byte-by-byte feeding said "head too large").
#[test]
fn rfc6455_4_1_tiny_head_limit_gives_the_same_verdict_for_any_split() {
    use tether_handshake::{ClientConfig, ClientHandshake, Limits, ResponseError};
    let config = ClientConfig::new().limits(Limits::default().with_max_head_len(1));
    let client = ClientHandshake::with_key("ws://h/", config, *b"the sample nonce").unwrap();
    let data = b"HTDR; garbage";
    let whole = client.check_response(data);
    assert!(
        matches!(whole, Err(ResponseError::HeadTooLarge { limit: 1 })),
        "{whole:?}"
    );
    let mut fed = Ok(tether_handshake::Status::Partial);
    for n in 1..=data.len() {
        fed = client.check_response(&data[..n]);
        if fed.is_err() {
            break;
        }
    }
    assert_eq!(fed, whole);
}
