//! # tether-handshake
//!
//! The opening handshake of RFC 6455 (section 4): the HTTP/1.1 upgrade that
//! turns a TCP (or TLS) connection into a WebSocket, as a sans-IO crate.
//!
//! - A client builds its request with [`ClientHandshake`] (from a `ws://` or
//!   `wss://` [`WsUrl`], a fresh random key, and the subprotocols, extensions,
//!   Origin and headers of a [`ClientConfig`]), then checks the server's
//!   answer with [`ClientHandshake::check_response`].
//! - A server parses and checks the request with [`parse_request`], looks at
//!   what the [`Request`] offers, and answers with [`Request::accept`] (a 101)
//!   or a [`Refusal`]; every [`RequestError`] names the refusal to send.
//!
//! Both parsers take the whole buffer received so far and answer
//! [`Status::Partial`] until the head has ended, then
//! [`Status::Complete`]`(value, used)`: the bytes after `used` are the peer's
//! first frames and belong to the connection, not to the handshake. Both stop
//! at once on bytes that cannot become a valid head (including TLS where
//! plain HTTP was expected), and on a head over the [`Limits`], while it is
//! still incomplete.
//!
//! Over HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220) a WebSocket opens with an
//! extended CONNECT on one stream instead: [`ConnectHandshake`] (client),
//! [`parse_connect_request`] and [`Request::accept_connect`] (server), as
//! `http` crate requests and responses, checked by the same rules and
//! errors as the upgrade.
//!
//! [`proxy`] holds the exchanges that reach a server through a proxy (HTTP
//! CONNECT, SOCKS5) and the environment variables' rules, for both
//! adapters.
//!
//! This crate never does I/O, never reads a clock, never panics on input,
//! and never reads more of a buffer than the limits allow. Its errors say
//! what was expected and what came, in plain words, citing the RFC.
//!
//! ```
//! use tether_handshake::{AcceptOptions, ClientConfig, ClientHandshake, Limits, Status, parse_request};
//!
//! // The client writes its request (a random key in real use: ClientHandshake::new).
//! let config = ClientConfig::new().subprotocol("chat");
//! let client = ClientHandshake::with_key("ws://example.com/chat", config, *b"the sample nonce")?;
//! let request = client.request_bytes();
//!
//! // The server parses it, picks a subprotocol and answers 101.
//! let Status::Complete(req, used) = parse_request(request, &Limits::default())? else {
//!     panic!("the request is complete");
//! };
//! assert_eq!((req.path(), used), ("/chat", request.len()));
//! let mut options = AcceptOptions::new();
//! if let Some(p) = req.pick_subprotocol(&["chat"]) {
//!     options = options.subprotocol(p);
//! }
//! let mut answer = req.accept(&options)?;
//! answer.extend_from_slice(&[0x81, 0x02, b'h', b'i']); // a frame in the same read
//!
//! // The client checks the answer; the frame after the head is handed on.
//! let Status::Complete(accepted, used) = client.check_response(&answer)? else {
//!     panic!("the answer is complete");
//! };
//! assert_eq!(accepted.subprotocol(), Some("chat"));
//! assert_eq!(&answer[used..], &[0x81, 0x02, b'h', b'i']);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod accept;
mod client;
mod error;
mod extended_connect;
mod extension;
mod head;
mod headers;
mod limits;
pub mod proxy;
mod server;
mod status;
mod url;

#[cfg(feature = "rand")]
pub use accept::generate_key;
pub use accept::{WEBSOCKET_GUID, WEBSOCKET_VERSION, accept_key, encode_key};
pub use client::{Accepted, ClientConfig, ClientHandshake};
pub use error::{BuildError, RequestError, ResponseError};
pub use extended_connect::{ConnectHandshake, PROTOCOL, connect_refusal, parse_connect_request};
pub use extension::{Extension, ExtensionParam, parse_answers, parse_offers};
pub use headers::{Header, Headers};
/// The `http` crate whose request and response types the extended CONNECT
/// handshake takes and gives.
pub use http;
pub use limits::Limits;
pub use server::{AcceptOptions, Refusal, Request, parse_request};
pub use status::Status;
pub use url::{UrlError, WsUrl};
