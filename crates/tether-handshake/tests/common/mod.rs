//! Helpers shared by the integration tests: the sample heads of RFC 6455
//! section 1.2 and the captured fixtures.
#![allow(dead_code)]

/// The header fields of the sample request of RFC 6455 section 1.2, in order.
pub(crate) const SAMPLE_REQUEST: &[(&str, &str)] = &[
    ("Host", "server.example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Origin", "http://example.com"),
    ("Sec-WebSocket-Protocol", "chat, superchat"),
    ("Sec-WebSocket-Version", "13"),
];

/// The header fields of the sample response of RFC 6455 section 1.2.
pub(crate) const SAMPLE_RESPONSE: &[(&str, &str)] = &[
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ("Sec-WebSocket-Protocol", "chat"),
];

/// The 16 bytes whose base64 is the sample key `dGhlIHNhbXBsZSBub25jZQ==`.
pub(crate) const SAMPLE_NONCE: [u8; 16] = *b"the sample nonce";

/// A head: the start line, the fields, the empty line.
pub(crate) fn head(start: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("{start}\r\n");
    for (name, value) in fields {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// `fields` with the field `name` given `value`, or removed for `None`
/// (added at the end if absent).
pub(crate) fn with(
    fields: &[(&str, &str)],
    name: &str,
    value: Option<&str>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen = false;
    for (n, v) in fields {
        if n.eq_ignore_ascii_case(name) {
            seen = true;
            if let Some(value) = value {
                out.push(((*n).to_owned(), value.to_owned()));
            }
        } else {
            out.push(((*n).to_owned(), (*v).to_owned()));
        }
    }
    if !seen && let Some(value) = value {
        out.push((name.to_owned(), value.to_owned()));
    }
    out
}

/// [`head`] for owned fields.
pub(crate) fn head_owned(start: &str, fields: &[(String, String)]) -> Vec<u8> {
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    head(start, &borrowed)
}

/// The sample request with one field changed or removed.
pub(crate) fn sample_request_with(name: &str, value: Option<&str>) -> Vec<u8> {
    head_owned("GET /chat HTTP/1.1", &with(SAMPLE_REQUEST, name, value))
}

/// The sample response with one field changed or removed.
pub(crate) fn sample_response_with(name: &str, value: Option<&str>) -> Vec<u8> {
    head_owned(
        "HTTP/1.1 101 Switching Protocols",
        &with(SAMPLE_RESPONSE, name, value),
    )
}

/// A captured fixture, see `tests/fixtures/README.md`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The request heads captured from real clients.
pub(crate) const CLIENT_FIXTURES: &[&str] = &[
    "request-chromium.txt",
    "request-node-ws.txt",
    "request-python-websockets.txt",
    "request-curl.txt",
];
