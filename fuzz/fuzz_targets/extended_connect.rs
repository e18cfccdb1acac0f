//! Arbitrary extended CONNECT requests and answers (RFC 8441, RFC 9220)
//! through the core's `ServerConnect` and `ClientConnect`: a method, a
//! target, `:protocol` and header fields from the fuzzer. Neither side may
//! panic; a request the server accepts gets a 2xx it can write, and the
//! client's check of any answer either accepts what it offered or names
//! the cause.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tether::handshake::{AcceptOptions, ClientConfig, Limits, http};
use tether::upgrade::{ClientConnect, ServerConnect};
use tether::{Config, DeflateConfig};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    connect: bool,
    target: &'a [u8],
    protocol: Option<&'a str>,
    fields: Vec<(&'a [u8], &'a [u8])>,
    status: u16,
    answer_fields: Vec<(&'a [u8], &'a [u8])>,
    deflate: bool,
    max_head: u16,
}

fn headers(fields: &[(&[u8], &[u8])]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in fields.iter().take(64) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

fuzz_target!(|input: Input<'_>| {
    let config = Config {
        deflate: input.deflate.then(DeflateConfig::default),
        ..Config::default()
    };
    let limits = Limits::default().with_max_head_len(usize::from(input.max_head));

    // the server's side
    let Ok(uri) = http::Uri::try_from(input.target) else {
        return;
    };
    let mut request = http::Request::new(());
    *request.method_mut() = if input.connect {
        http::Method::CONNECT
    } else {
        http::Method::GET
    };
    *request.uri_mut() = uri;
    *request.headers_mut() = headers(&input.fields);
    let mut server = ServerConnect::new(&config);
    match server.check_request(&request, input.protocol, &limits) {
        Ok(offer) => {
            let answer = server
                .accept(&offer, AcceptOptions::new())
                .expect("an accepted request can be answered");
            assert!(answer.status().is_success(), "{:?}", answer.status());
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            // a refusal the server can send, or nothing
            let _ = ServerConnect::failure_response(&e);
        }
    }

    // the client's side, with any answer
    let Ok(mut client) = ClientConnect::new("wss://example.com/chat", ClientConfig::new(), &config)
    else {
        return;
    };
    let Ok(status) = http::StatusCode::from_u16(input.status) else {
        return;
    };
    let mut response = http::Response::new(());
    *response.status_mut() = status;
    *response.headers_mut() = headers(&input.answer_fields);
    match client.check_response(&response) {
        Ok(accepted) => {
            assert!(status.is_success());
            assert!(accepted.subprotocol().is_none(), "none was offered");
            for extension in accepted.extensions() {
                assert!(input.deflate && extension.name() == "permessage-deflate");
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
