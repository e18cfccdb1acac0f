#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The server side: parsing and checking requests (RFC 6455 section 4.2.1)
//! and answering them (section 4.2.2).

mod common;

use common::*;
use tether_handshake::{
    AcceptOptions, BuildError, Extension, Limits, Refusal, Request, RequestError, Status,
    accept_key, parse_request,
};

fn parse(bytes: &[u8]) -> Result<Status<Request>, RequestError> {
    parse_request(bytes, &Limits::default())
}

fn accepted(bytes: &[u8]) -> (Request, usize) {
    match parse(bytes) {
        Ok(Status::Complete(r, used)) => (r, used),
        other => panic!(
            "expected a complete request from {:?}, got {other:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn refused(bytes: &[u8]) -> RequestError {
    match parse(bytes) {
        Err(e) => e,
        other => panic!(
            "expected a refusal of {:?}, got {other:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// Parses a response's status line and headers, to check what a refusal says.
fn response_head(bytes: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut slots = [httparse::EMPTY_HEADER; 16];
    let mut res = httparse::Response::new(&mut slots);
    let used = res.parse(bytes).unwrap().unwrap();
    let headers = res
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8(h.value.to_vec()).unwrap(),
            )
        })
        .collect();
    (res.code.unwrap(), headers, bytes[used..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn rfc6455_1_3_accept_example() {
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn rfc6455_1_2_sample_request_is_accepted_with_its_offers_exposed() {
    let bytes = head("GET /chat?room=1 HTTP/1.1", SAMPLE_REQUEST);
    let (req, used) = accepted(&bytes);
    assert_eq!(used, bytes.len());
    assert_eq!(req.resource_name(), "/chat?room=1");
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.query(), Some("room=1"));
    assert_eq!(req.host(), "server.example.com");
    assert_eq!(req.origin(), Some("http://example.com"));
    assert_eq!(req.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(req.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(req.subprotocols(), ["chat", "superchat"]);
    assert!(req.extensions().is_empty());
    assert_eq!(req.headers().len(), SAMPLE_REQUEST.len());
    assert_eq!(req.headers().get_str("sec-websocket-version"), Some("13"));
    assert_eq!(req.pick_subprotocol(&["superchat", "chat"]), Some("chat"));
    assert_eq!(req.pick_subprotocol(&["other"]), None);
}

#[test]
fn rfc6455_4_2_2_sample_response_is_written() {
    let (req, _) = accepted(&head("GET /chat HTTP/1.1", SAMPLE_REQUEST));
    let bytes = req
        .accept(&AcceptOptions::new().subprotocol("chat"))
        .unwrap();
    assert_eq!(
        bytes,
        head("HTTP/1.1 101 Switching Protocols", SAMPLE_RESPONSE)
    );
}

#[test]
fn rfc6455_4_2_1_requests_captured_from_real_clients_are_accepted() {
    for name in CLIENT_FIXTURES {
        let bytes = fixture(name);
        let (req, used) = accepted(&bytes);
        assert_eq!(used, bytes.len(), "{name}");
        assert!(req.path() == "/chat", "{name}: {}", req.path());
        assert!(req.host().starts_with("127.0.0.1:"), "{name}");
        let answer = req.accept(&AcceptOptions::new()).unwrap();
        let (status, headers, _) = response_head(&answer);
        assert_eq!(status, 101, "{name}");
        assert_eq!(
            header(&headers, "sec-websocket-accept"),
            Some(accept_key(req.key()).as_str())
        );
        // Every byte before the end was "need more".
        for cut in 0..bytes.len() {
            assert_eq!(
                parse(&bytes[..cut]),
                Ok(Status::Partial),
                "{name} cut at {cut}"
            );
        }
    }
}

#[test]
fn rfc6455_9_1_chromium_offers_are_exposed() {
    let (req, _) = accepted(&fixture("request-chromium.txt"));
    assert_eq!(req.query(), Some("room=1"));
    assert_eq!(req.origin(), Some("http://127.0.0.1:9105"));
    assert_eq!(req.subprotocols(), ["chat", "superchat"]);
    assert_eq!(
        req.extensions(),
        [Extension::new("permessage-deflate").with_flag("client_max_window_bits")]
    );
    assert_eq!(req.key(), "6LFUJpnn8nfK8kkmRR5fcw==");
    let options = AcceptOptions::new()
        .subprotocol(req.pick_subprotocol(&["superchat"]).unwrap())
        .extension(Extension::new("permessage-deflate").with_param("client_max_window_bits", "10"));
    let (_, headers, _) = response_head(&req.accept(&options).unwrap());
    assert_eq!(
        header(&headers, "sec-websocket-protocol"),
        Some("superchat")
    );
    assert_eq!(
        header(&headers, "sec-websocket-extensions"),
        Some("permessage-deflate; client_max_window_bits=10")
    );
}

#[test]
fn node_and_python_offers_are_exposed() {
    let (req, _) = accepted(&fixture("request-node-ws.txt"));
    assert_eq!(req.subprotocols(), ["chat", "superchat"]);
    assert_eq!(req.origin(), Some("http://127.0.0.1"));
    assert_eq!(req.extensions()[0].name(), "permessage-deflate");
    let (req, _) = accepted(&fixture("request-python-websockets.txt"));
    assert_eq!(req.subprotocols(), ["chat"]);
    assert_eq!(req.origin(), None);
    assert_eq!(
        req.headers().get_str("user-agent"),
        Some("Python/3.11 websockets/17.4")
    );
    let (req, _) = accepted(&fixture("request-curl.txt"));
    assert!(req.subprotocols().is_empty() && req.extensions().is_empty());
}

/// The protocol switches once the request is complete (RFC 9110 section
/// 7.8), so a request with a body would have its body read as WebSocket
/// frames: refused with 400, naming the header. It was accepted, and the
/// body's bytes went to the connection. `Content-Length: 0` is no body.
#[test]
fn rfc9110_7_8_an_upgrade_request_with_a_body_is_refused() {
    for (name, value) in [("Content-Length", "5"), ("Transfer-Encoding", "chunked")] {
        let mut fields = SAMPLE_REQUEST.to_vec();
        fields.push((name, value));
        let mut bytes = head("GET /chat HTTP/1.1", &fields);
        bytes.extend_from_slice(b"hello");
        let e = refused(&bytes);
        assert!(matches!(e, RequestError::Body { .. }), "{e:?}");
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains(name), "{e}");
    }
    let mut fields = SAMPLE_REQUEST.to_vec();
    fields.push(("Content-Length", "0"));
    accepted(&head("GET /chat HTTP/1.1", &fields));
}

/// A request target with a fragment is refused (RFC 6455 section 3: a
/// WebSocket URI has none; RFC 9112 section 3.2: no form of a request
/// target has one). It was accepted with the fragment in the path, which
/// then matched no route.
#[test]
fn rfc6455_3_a_request_target_with_a_fragment_is_refused() {
    for target in ["/chat#x", "ws://server.example.com/chat#x"] {
        let e = refused(&head(&format!("GET {target} HTTP/1.1"), SAMPLE_REQUEST));
        assert!(matches!(e, RequestError::Target { .. }), "{target}: {e:?}");
        assert_eq!(e.status(), 400);
    }
}

/// A folded header line (obs-fold) in a request is refused with 400, and
/// the refusal says why (RFC 9112 section 5.2 prefers it explained), not
/// that a header name holds a bad character.
#[test]
fn rfc9112_5_2_a_folded_request_line_is_refused_and_named() {
    let mut bytes = head("GET /chat HTTP/1.1", SAMPLE_REQUEST);
    let at = bytes.windows(9).position(|w| w == b"Upgrade: ").unwrap() + 9;
    bytes.splice(at..at, b"\r\n ".iter().copied());
    let e = refused(&bytes);
    assert_eq!(e.status(), 400);
    assert!(e.to_string().contains("obs-fold"), "{e}");
}

/// A client of another version that sends no key (hixie-76 sends Key1 and
/// Key2, and no Sec-WebSocket-Version) is told the version we speak: 426
/// with `Sec-WebSocket-Version: 13` (section 4.4), not a 400 about the key.
#[test]
fn rfc6455_4_4_a_client_of_another_version_without_a_key_gets_426() {
    let fields: Vec<(&str, &str)> = SAMPLE_REQUEST
        .iter()
        .copied()
        .filter(|(n, _)| *n != "Sec-WebSocket-Key" && *n != "Sec-WebSocket-Version")
        .chain([
            ("Sec-WebSocket-Key1", "4 @1  46546xW%0l 1 5"),
            ("Sec-WebSocket-Key2", "12998 5 Y3 1  .P00"),
        ])
        .collect();
    let e = refused(&head("GET /chat HTTP/1.1", &fields));
    assert_eq!(e.status(), 426, "{e}");
    let (status, headers, _) = response_head(&e.refusal().to_bytes());
    assert_eq!(status, 426);
    assert_eq!(header(&headers, "Sec-WebSocket-Version"), Some("13"));
}

#[test]
fn rfc6455_4_2_1_bytes_after_the_head_are_left_for_the_connection() {
    let mut bytes = head("GET /chat HTTP/1.1", SAMPLE_REQUEST);
    let head_len = bytes.len();
    // A masked text frame the client sent in the same write.
    bytes.extend_from_slice(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    let (_, used) = accepted(&bytes);
    assert_eq!(used, head_len);
}

#[test]
fn rfc6455_4_2_1_token_lists_and_header_names_are_case_insensitive() {
    let bytes = head(
        "GET / HTTP/1.1",
        &[
            ("host", "h"),
            ("UPGRADE", "WebSocket"),
            ("connection", "keep-alive,  upgrade ,"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("SEC-WEBSOCKET-VERSION", "13"),
        ],
    );
    accepted(&bytes);
    // Firefox's form, and lists split across fields.
    let bytes = head(
        "GET / HTTP/1.1",
        &[
            ("Host", "h"),
            ("Upgrade", "h2c, websocket"),
            ("Connection", "keep-alive"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Protocol", "a"),
            ("Sec-WebSocket-Protocol", "b, c"),
        ],
    );
    let (req, _) = accepted(&bytes);
    assert_eq!(req.subprotocols(), ["a", "b", "c"]);
}

#[test]
fn rfc9112_3_2_2_absolute_form_target_is_accepted() {
    let bytes = head(
        "GET ws://server.example.com/chat?x HTTP/1.1",
        SAMPLE_REQUEST,
    );
    let (req, _) = accepted(&bytes);
    assert_eq!(req.resource_name(), "/chat?x");
}

#[test]
fn rfc6455_4_1_target_that_is_not_a_path_is_400() {
    for start in ["GET * HTTP/1.1", "GET server.example.com:80 HTTP/1.1"] {
        let err = refused(&head(start, SAMPLE_REQUEST));
        assert!(
            matches!(err, RequestError::Target { .. }),
            "{start}: {err:?}"
        );
        assert_eq!(err.status(), 400);
    }
}

#[test]
fn rfc6455_4_1_method_other_than_get_is_405() {
    let err = refused(&head("POST /chat HTTP/1.1", SAMPLE_REQUEST));
    assert_eq!(
        err,
        RequestError::Method {
            found: "\"POST\"".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "expected method GET for a WebSocket upgrade (RFC 6455 section 4.1), found \"POST\""
    );
    let (status, headers, body) = response_head(&err.response());
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("GET"));
    assert_eq!(body, format!("{err}\n").into_bytes());
    // Methods are case-sensitive (RFC 9110 section 9.1).
    assert!(matches!(
        refused(&head("get /chat HTTP/1.1", SAMPLE_REQUEST)),
        RequestError::Method { .. }
    ));
}

#[test]
fn rfc6455_4_1_http_1_0_is_400() {
    let err = refused(&head("GET /chat HTTP/1.0", SAMPLE_REQUEST));
    assert_eq!(
        err,
        RequestError::HttpVersion {
            found: "\"HTTP/1.0\"".into()
        }
    );
    assert_eq!(err.status(), 400);
    assert!(err.to_string().contains("expected HTTP/1.1"), "{err}");
}

/// Another major version of HTTP is 505 (RFC 9110 section 15.6.6), named:
/// HTTP/2's prior-knowledge preface, and a request line after an empty
/// line (passed over, RFC 9112 section 2.2; it was named as the empty
/// line). Both were 400.
#[test]
fn rfc9110_15_6_6_another_major_version_is_505_naming_it() {
    let err = refused(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(matches!(err, RequestError::HttpVersion { .. }), "{err:?}");
    assert!(err.to_string().contains("HTTP/2"), "{err}");
    assert_eq!(err.status(), 505);
    let mut bytes = b"\r\n".to_vec();
    bytes.extend_from_slice(&head("GET /chat HTTP/2.0", SAMPLE_REQUEST));
    let err = refused(&bytes);
    assert_eq!(
        err,
        RequestError::HttpVersion {
            found: "\"HTTP/2.0\"".into()
        }
    );
    assert_eq!(err.status(), 505);
    assert_eq!(response_head(&err.response()).0, 505);
}

#[test]
fn rfc6455_4_2_1_missing_host_is_400() {
    let err = refused(&sample_request_with("Host", None));
    assert_eq!(err, RequestError::MissingHost);
    assert_eq!(err.status(), 400);
    assert_eq!(response_head(&err.response()).0, 400);
    assert_eq!(
        refused(&sample_request_with("Host", Some(""))),
        RequestError::MissingHost
    );
}

#[test]
fn rfc9112_3_2_two_hosts_are_400() {
    let mut fields = with(SAMPLE_REQUEST, "Host", Some("a"));
    fields.push(("Host".into(), "b".into()));
    let err = refused(&head_owned("GET / HTTP/1.1", &fields));
    assert_eq!(
        err,
        RequestError::Duplicate {
            name: "Host",
            count: 2
        }
    );
    assert_eq!(err.to_string(), "expected one Host header, found 2");
}

#[test]
fn rfc6455_4_2_1_missing_upgrade_is_426_with_upgrade_websocket() {
    let err = refused(&sample_request_with("Upgrade", None));
    assert_eq!(err, RequestError::MissingUpgrade);
    let (status, headers, _) = response_head(&err.response());
    assert_eq!(status, 426);
    assert_eq!(header(&headers, "upgrade"), Some("websocket"));
    assert_eq!(header(&headers, "connection"), Some("Upgrade, close"));
    assert!(err.to_string().contains("plain HTTP request"), "{err}");
}

#[test]
fn rfc6455_4_2_1_wrong_upgrade_is_426() {
    let err = refused(&sample_request_with("Upgrade", Some("h2c")));
    assert_eq!(
        err,
        RequestError::WrongUpgrade {
            found: "\"h2c\"".into()
        }
    );
    assert_eq!(err.status(), 426);
    // "websocket" must be a whole token.
    let err = refused(&sample_request_with("Upgrade", Some("websocketx")));
    assert!(matches!(err, RequestError::WrongUpgrade { .. }));
}

#[test]
fn rfc6455_4_2_1_missing_connection_is_400() {
    let err = refused(&sample_request_with("Connection", None));
    assert_eq!(err, RequestError::MissingConnection);
    assert_eq!(err.status(), 400);
}

#[test]
fn rfc6455_4_2_1_connection_without_upgrade_is_400() {
    let err = refused(&sample_request_with("Connection", Some("keep-alive")));
    assert_eq!(
        err.to_string(),
        "expected the Connection header to hold the token upgrade (RFC 6455 section 4.2.1), found \"keep-alive\""
    );
    assert_eq!(err.status(), 400);
    let err = refused(&sample_request_with(
        "Connection",
        Some("keep-alive upgrade"),
    ));
    assert!(matches!(err, RequestError::WrongConnection { .. }));
}

#[test]
fn rfc6455_4_2_1_missing_key_is_400() {
    let err = refused(&sample_request_with("Sec-WebSocket-Key", None));
    assert_eq!(err, RequestError::MissingKey);
    assert_eq!(err.status(), 400);
}

#[test]
fn rfc6455_4_2_1_bad_key_is_400() {
    // 15 bytes.
    let err = refused(&sample_request_with(
        "Sec-WebSocket-Key",
        Some("dGhlIHNhbXBsZSBub25jZQ"),
    ));
    assert!(
        matches!(
            err,
            RequestError::BadKey {
                decoded_len: None,
                ..
            }
        ),
        "{err:?}"
    );
    let err = refused(&sample_request_with(
        "Sec-WebSocket-Key",
        Some("dGhlIHNhbXBsZSBub25j"),
    ));
    assert_eq!(
        err,
        RequestError::BadKey {
            found: "\"dGhlIHNhbXBsZSBub25j\"".into(),
            decoded_len: Some(15)
        }
    );
    assert!(
        err.to_string().ends_with("which decodes to 15 bytes"),
        "{err}"
    );
    for bad in [
        "not base64!!",
        "dGhlIHNhbXBsZSBub25jZQ==dGhl",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let err = refused(&sample_request_with("Sec-WebSocket-Key", Some(bad)));
        assert!(matches!(err, RequestError::BadKey { .. }), "{bad}: {err:?}");
        assert_eq!(err.status(), 400);
    }
    // a long key of valid base64 is named by what it decodes to (it read
    // "is not padded base64"), without being decoded
    let long = "A".repeat(88);
    let err = refused(&sample_request_with("Sec-WebSocket-Key", Some(&long)));
    assert!(
        matches!(
            err,
            RequestError::BadKey {
                decoded_len: Some(66),
                ..
            }
        ),
        "{err:?}"
    );
    let mut fields = with(SAMPLE_REQUEST, "x", None);
    fields.push((
        "Sec-WebSocket-Key".into(),
        "dGhlIHNhbXBsZSBub25jZQ==".into(),
    ));
    assert!(matches!(
        refused(&head_owned("GET / HTTP/1.1", &fields)),
        RequestError::Duplicate {
            name: "Sec-WebSocket-Key",
            count: 2
        }
    ));
}

#[test]
fn rfc6455_4_4_version_8_is_426_with_version_header() {
    let err = refused(&sample_request_with("Sec-WebSocket-Version", Some("8")));
    assert_eq!(
        err,
        RequestError::UnsupportedVersion {
            found: "\"8\"".into()
        }
    );
    let (status, headers, _) = response_head(&err.response());
    assert_eq!(status, 426);
    assert_eq!(header(&headers, "sec-websocket-version"), Some("13"));
    assert_eq!(header(&headers, "upgrade"), Some("websocket"));
    let err = refused(&sample_request_with("Sec-WebSocket-Version", None));
    assert_eq!(err, RequestError::MissingVersion);
    assert_eq!(
        header(&response_head(&err.response()).1, "sec-websocket-version"),
        Some("13")
    );
}

#[test]
fn rfc6585_5_head_over_the_limit_is_431_while_still_partial() {
    let limits = Limits::default().with_max_head_len(256);
    let mut bytes = b"GET /chat HTTP/1.1\r\nHost: h\r\nX-Filler: ".to_vec();
    bytes.resize(256, b'a');
    assert_eq!(parse_request(&bytes, &limits), Ok(Status::Partial));
    bytes.push(b'a');
    let err = parse_request(&bytes, &limits).unwrap_err();
    assert_eq!(err, RequestError::HeadTooLarge { limit: 256 });
    assert_eq!(err.status(), 431);
    let (status, _, _) = response_head(&err.response());
    assert_eq!(status, 431);
    assert!(
        err.response()
            .starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    );
    // A complete head over the limit is refused the same way.
    let long = sample_request_with("X-Filler", Some(&"a".repeat(300)));
    assert_eq!(
        parse_request(&long, &limits),
        Err(RequestError::HeadTooLarge { limit: 256 })
    );
    // A head that fits exactly is fine.
    let sample = head("GET /chat HTTP/1.1", SAMPLE_REQUEST);
    let exact = Limits::default().with_max_head_len(sample.len());
    assert!(parse_request(&sample, &exact).unwrap().is_complete());
}

#[test]
fn rfc6585_5_too_many_headers_is_431() {
    let limits = Limits::default().with_max_headers(8);
    assert!(
        parse_request(&head("GET / HTTP/1.1", SAMPLE_REQUEST), &limits)
            .unwrap()
            .is_complete()
    );
    let bytes = sample_request_with("X-One-Too-Many", Some("1"));
    let bytes = [&bytes[..bytes.len() - 2], b"X-Two: 2\r\n\r\n"].concat();
    let err = parse_request(&bytes, &limits).unwrap_err();
    assert_eq!(err, RequestError::TooManyHeaders { limit: 8 });
    assert_eq!(err.status(), 431);
    // Detected before the head ends.
    let partial = &bytes[..bytes.len() - 2];
    assert_eq!(
        parse_request(partial, &limits),
        Err(RequestError::TooManyHeaders { limit: 8 })
    );
}

#[test]
fn rfc8446_5_1_tls_client_hello_at_a_plain_server_is_named() {
    let hello = fixture("tls-client-hello-curl.bin");
    assert_eq!(parse(&hello[..1]), Ok(Status::Partial));
    for len in [2, 5, hello.len()] {
        assert_eq!(parse(&hello[..len]), Err(RequestError::TlsClientHello));
    }
    let err = RequestError::TlsClientHello;
    assert!(
        err.to_string()
            .starts_with("client spoke TLS to a plain ws:// server"),
        "{err}"
    );
    assert_eq!(err.status(), 400);
}

#[test]
fn rfc9112_malformed_heads_are_400_in_plain_words() {
    let cases: &[&[u8]] = &[
        b"GET /chat HTTP/1.1\r\nHost example\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nHo st: example\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
        b"GET /chat HTTP/1.1\rX",
        b"SSH-2.0-OpenSSH_9.2\r\n",
    ];
    for bytes in cases {
        let err = refused(bytes);
        assert!(
            matches!(err, RequestError::Malformed { .. }),
            "{:?}: {err:?}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(err.status(), 400);
        assert!(err.to_string().starts_with("malformed HTTP request head: "));
    }
}

#[test]
fn rfc9112_2_2_leading_empty_lines_are_skipped() {
    let bytes = [
        b"\r\n".as_slice(),
        &head("GET /chat HTTP/1.1", SAMPLE_REQUEST),
    ]
    .concat();
    assert_eq!(accepted(&bytes).1, bytes.len());
    assert_eq!(parse(b"\r\n\r\n"), Ok(Status::Partial));
}

#[test]
fn rfc6455_4_2_1_curl_with_a_13_byte_tutorial_key_is_400() {
    // "SGVsbG8sIHdvcmxkIQ==" is base64 of "Hello, world!", 13 bytes: a key
    // copied from many tutorials, and refused by every conforming server.
    let err = refused(&fixture("request-curl-13-byte-key.txt"));
    assert_eq!(
        err.to_string(),
        "expected Sec-WebSocket-Key to be the base64 of 16 random bytes (RFC 6455 section 4.2.1), found \"SGVsbG8sIHdvcmxkIQ==\", which decodes to 13 bytes"
    );
    assert_eq!(err.status(), 400);
}

#[test]
fn rfc6455_4_1_malformed_subprotocols_and_extensions_are_400() {
    let err = refused(&sample_request_with(
        "Sec-WebSocket-Protocol",
        Some("chat, super chat"),
    ));
    assert!(
        matches!(err, RequestError::MalformedSubprotocols { .. }),
        "{err:?}"
    );
    let err = refused(&sample_request_with(
        "Sec-WebSocket-Extensions",
        Some("permessage-deflate; =1"),
    ));
    assert_eq!(
        err.to_string(),
        "malformed Sec-WebSocket-Extensions \"permessage-deflate; =1\": expected a parameter name (a token) after ';' (RFC 6455 section 9.1)"
    );
    assert_eq!(err.status(), 400);
}

#[test]
fn non_ascii_host_or_origin_is_400() {
    let err = refused(&sample_request_with(
        "Origin",
        Some("http://ex\u{e4}mple.com"),
    ));
    assert!(
        matches!(err, RequestError::InvalidHeaderValue { name: "Origin", .. }),
        "{err:?}"
    );
    let err = refused(&sample_request_with("Host", Some("h\u{e4}")));
    assert!(
        matches!(err, RequestError::InvalidHeaderValue { name: "Host", .. }),
        "{err:?}"
    );
}

#[test]
fn rfc6455_4_2_2_accept_refuses_choices_the_client_did_not_offer() {
    let (req, _) = accepted(&head("GET /chat HTTP/1.1", SAMPLE_REQUEST));
    let err = req
        .accept(&AcceptOptions::new().subprotocol("mqtt"))
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::SubprotocolNotOffered {
            chosen: "mqtt".into(),
            offered: vec!["chat".into(), "superchat".into()]
        }
    );
    let err = req
        .accept(&AcceptOptions::new().extension(Extension::new("permessage-deflate")))
        .unwrap_err();
    assert!(
        matches!(err, BuildError::ExtensionNotOffered { .. }),
        "{err:?}"
    );
    let err = req
        .accept(&AcceptOptions::new().header("X-Evil", "a\r\nSet-Cookie: x"))
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::InvalidHeaderValue {
            name: "X-Evil".into()
        }
    );
    let err = req
        .accept(&AcceptOptions::new().header("sec-websocket-accept", "x"))
        .unwrap_err();
    assert!(matches!(err, BuildError::ReservedHeader { .. }));
    let ok = req
        .accept(&AcceptOptions::new().header("Set-Cookie", "id=1"))
        .unwrap();
    assert!(ok.ends_with(b"Set-Cookie: id=1\r\n\r\n"));
}

#[test]
fn rfc6455_4_2_2_refusals_are_complete_http_responses() {
    let bytes = Refusal::forbidden("origin not allowed").to_bytes();
    assert_eq!(
        bytes,
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 19\r\nConnection: close\r\n\r\norigin not allowed\n"
    );
    let (status, headers, body) = response_head(&bytes);
    assert_eq!(status, 403);
    assert_eq!(
        header(&headers, "content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(Refusal::bad_request("x").status(), 400);
    assert_eq!(
        Refusal::new(101, "x"),
        Err(BuildError::InvalidStatus { status: 101 })
    );
    let r = Refusal::new(429, "slow down")
        .unwrap()
        .with_header("Retry-After", "5")
        .unwrap();
    assert_eq!(r.reason_phrase(), "Too Many Requests");
    assert_eq!(
        header(&response_head(&r.to_bytes()).1, "retry-after"),
        Some("5")
    );
    assert!(
        Refusal::bad_request("x")
            .with_header("Content-Length", "9")
            .is_err()
    );
    assert!(Refusal::bad_request("x").with_header("X", "a\nb").is_err());
}

#[test]
fn huge_header_limit_allocates_no_more_than_the_head_can_hold() {
    let limits = Limits::default().with_max_headers(usize::MAX);
    let bytes = head("GET /chat HTTP/1.1", SAMPLE_REQUEST);
    assert!(parse_request(&bytes, &limits).unwrap().is_complete());
}
