//! # tether-std
//!
//! The blocking adapter of [`tether`]: WebSocket clients and servers on
//! `std::net` sockets (and `UnixStream`, and rustls streams), one thread per
//! connection, no async runtime.
//!
//! ```no_run
//! use tether_std::{ClientOptions, CloseCode, Message, connect};
//!
//! let (mut ws, _accepted) = connect("ws://127.0.0.1:9001/echo", &ClientOptions::new())?;
//! ws.send(Message::text("hello"))?;
//! let reply = ws.read()?;
//! println!("{}", reply.as_text().unwrap_or("<binary>"));
//! let end = ws.close(CloseCode::NORMAL, "done")?;
//! assert!(end.was_clean);
//! # Ok::<(), tether_std::Error>(())
//! ```
//!
//! A server accepts each TCP stream with [`accept`] (or [`accept_with`] to
//! pick a subprotocol or refuse), then reads and sends on its own thread:
//!
//! ```no_run
//! use std::net::TcpListener;
//! use tether_std::{Error, ServerOptions, accept};
//!
//! let listener = TcpListener::bind("127.0.0.1:9001")?;
//! for stream in listener.incoming() {
//!     std::thread::spawn(move || -> Result<(), Error> {
//!         let (mut ws, _request) = accept(stream?, &ServerOptions::new())?;
//!         loop {
//!             match ws.read() {
//!                 Ok(message) => ws.send(message)?,
//!                 Err(Error::Closed(_)) => return Ok(()), // closing handshake done
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!     });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## What this crate does, and what it leaves to the core
//!
//! The protocol (framing, UTF-8, Ping/Pong, keep-alive, the closing
//! handshake and its codes, every limit) is the sans-IO
//! [`tether::Connection`]'s, configured by one [`Config`]. This crate only
//! moves bytes and time: it reads into a buffer, hands the bytes to the
//! connection, writes what the connection queued, and arms the socket's
//! read timeout from the connection's next deadline, so keep-alive and the
//! close timeout run while the application blocks in [`WebSocket::read`].
//! That is the core's driving loop (see the [`tether`] crate docs), with
//! the application's calls in place of its last step; every wait and close
//! decision is the core's, and the tokio adapter behaves the same (one
//! behaviour suite runs against both).
//!
//! - Pongs, keep-alives and the Close echo are written inside `read`; and
//!   [`WebSocket::send`] takes in what has arrived without blocking, so a
//!   Ping is answered even while the application only sends.
//! - [`WebSocket::close`] completes the closing handshake by itself.
//! - Every connection ends with a [`CloseInfo`], from then on carried by
//!   [`Error::Closed`]: a transport lost without a Close is 1006 with
//!   `was_clean: false`.
//!
//! ## Features
//! - `tls` (default): `wss://` for [`connect`] with rustls (ring provider)
//!   and Mozilla's roots from webpki-roots, or your own
//!   `rustls::ClientConfig` ([`ClientOptions::tls_config`]) or an extra root
//!   ([`ClientOptions::add_root_certificate`]), a client certificate for
//!   mutual TLS ([`ClientOptions::client_certificate`]); [`Transport`] for
//!   `rustls::StreamOwned`, so a server can [`accept`] over TLS, with a
//!   config from `tether::tls::server_config` (which can require client
//!   certificates signed by given roots). `rustls` is re-exported. TLS
//!   failures are worded by the core's `tether::tls::describe`, as in the
//!   tokio adapter.
//! - `deflate` (default): permessage-deflate (RFC 7692), offered by a
//!   client and accepted by a server when `Config::deflate` is set
//!   ([`ClientOptions::deflate`], [`ServerOptions::deflate`]); off per
//!   connection by default.
#![forbid(unsafe_code)]

mod client;
mod error;
mod handshake_io;
pub mod reconnect;
mod server;
mod tls;
mod transport;
mod websocket;

pub use client::{ClientOptions, client, connect};
pub use error::{Error, TlsError, TlsErrorKind};
pub use reconnect::{
    Lifecycle, QueueFull, QueueLimit, ReconnectEvent, ReconnectOptions, ReconnectPolicy,
    ReconnectingClient, StopReason,
};
pub use server::{ServerOptions, accept, accept_with};
pub use transport::{MaybeTlsStream, Transport};
pub use websocket::WebSocket;

#[cfg(feature = "tls")]
pub use rustls;
/// The sans-IO core, re-exported.
pub use tether;
#[cfg(feature = "deflate")]
pub use tether::DeflateConfig;
pub use tether::handshake::{AcceptOptions, Accepted, ClientConfig, Limits, Refusal, Request};
pub use tether::{
    CloseCode, CloseInfo, Config, Event, Heartbeat, Initiator, KeepAlive, Message, MessageKind,
    Role, State, Utf8Bytes,
};
