//! Arbitrary bytes into the server's request parser (`parse_request`), whole
//! and fed in arbitrary pieces, under arbitrary limits. The parser must never
//! panic; feeding in pieces must give the answer the whole buffer gives (for
//! an error, the same kind: bytes quoted in it may be fewer); a complete head
//! must fit the buffer and the limit; a refusal must be an HTTP 4xx response;
//! an accepted request must produce a 101.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_handshake::{AcceptOptions, Limits, Status, parse_request};

fuzz_target!(|input: (u16, u8, u8, &[u8])| {
    let (max_head, max_headers, chunk, data) = input;
    let limits = Limits::default()
        .with_max_head_len(usize::from(max_head % 4096))
        .with_max_headers(usize::from(max_headers % 80));
    let whole = parse_request(data, &limits);

    match &whole {
        Ok(Status::Complete(request, used)) => {
            assert!(*used <= data.len() && *used <= limits.max_head_len);
            let answer = request
                .accept(&AcceptOptions::new())
                .expect("accepting with no options cannot fail");
            assert!(answer.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
            if let Some(p) = request.subprotocols().first() {
                let answer = request.accept(&AcceptOptions::new().subprotocol(p.clone()));
                assert!(answer.is_ok());
            }
        }
        // Two bytes may be read to tell TLS from HTTP, even under a smaller limit.
        Ok(Status::Partial) => assert!(data.len() <= limits.max_head_len.max(1)),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            // a 4xx, or 505 for another major version of HTTP
            let status = e.status();
            assert!((400..500).contains(&status) || status == 505);
            let expected = format!("HTTP/1.1 {status} ");
            assert!(e.response().starts_with(expected.as_bytes()));
        }
    }

    // Feed the same bytes in pieces of `chunk` bytes, parsing the whole
    // buffer after each, as a server reading a socket does.
    let chunk = usize::from(chunk).max(1);
    let mut buf = Vec::with_capacity(data.len());
    let mut fed = Ok(Status::Partial);
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        fed = parse_request(&buf, &limits);
        if !matches!(fed, Ok(Status::Partial)) {
            break;
        }
    }
    match (&fed, &whole) {
        (Err(a), Err(b)) => assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b)),
        _ => assert_eq!(fed, whole),
    }
});
