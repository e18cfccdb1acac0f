//! Arbitrary bytes into the client's response check
//! (`ClientHandshake::check_response`), whole and fed in arbitrary pieces,
//! under arbitrary limits. The check must never panic; feeding in pieces must
//! give the answer the whole buffer gives (for an error, the same kind); a
//! complete head must fit the buffer and the limit, and what it accepted must
//! be among what was offered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_handshake::{ClientConfig, ClientHandshake, Extension, Limits, Status};

fuzz_target!(|input: (u16, u8, u8, bool, &[u8])| {
    let (max_head, max_headers, chunk, offer, data) = input;
    let limits = Limits::default()
        .with_max_head_len(usize::from(max_head % 4096))
        .with_max_headers(usize::from(max_headers % 80));
    let mut config = ClientConfig::new().limits(limits);
    if offer {
        config = config
            .subprotocol("chat")
            .subprotocol("superchat")
            .extension(Extension::new("permessage-deflate").with_flag("client_max_window_bits"));
    }
    // The key of RFC 6455 section 1.3, so inputs can hold a valid accept value.
    let client = ClientHandshake::with_key("ws://server.example.com/chat", config, *b"the sample nonce")
        .expect("a valid URL and config");
    let whole = client.check_response(data);

    match &whole {
        Ok(Status::Complete(accepted, used)) => {
            assert!(*used <= data.len() && *used <= limits.max_head_len);
            assert!(offer || accepted.subprotocol().is_none());
            assert!(offer || accepted.extensions().is_empty());
            if let Some(p) = accepted.subprotocol() {
                assert!(p == "chat" || p == "superchat");
            }
            for e in accepted.extensions() {
                assert_eq!(e.name(), "permessage-deflate");
            }
        }
        // Two bytes may be read to tell TLS from HTTP, even under a smaller limit.
        Ok(Status::Partial) => assert!(data.len() <= limits.max_head_len.max(1)),
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    let chunk = usize::from(chunk).max(1);
    let mut buf = Vec::with_capacity(data.len());
    let mut fed = Ok(Status::Partial);
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        fed = client.check_response(&buf);
        if !matches!(fed, Ok(Status::Partial)) {
            break;
        }
    }
    match (&fed, &whole) {
        (Err(a), Err(b)) => assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b)),
        _ => assert_eq!(fed, whole),
    }
});
