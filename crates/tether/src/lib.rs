//! # tether
//!
//! A sans-IO RFC 6455 WebSocket connection: bytes and time go in, events and
//! bytes come out. No I/O, no clock, no spawning: the adapters
//! (`tether-std`, `tether-tokio`) or your own runtime move bytes and time.
//!
//! ```
//! use std::time::Instant;
//! use tether::{Config, Connection, Event, Message, Role};
//!
//! let now = Instant::now();
//! let mut client = Connection::new(Role::Client, Config::default(), now);
//! let mut server = Connection::new(Role::Server, Config::default(), now);
//!
//! client.send(Message::text("hello")).unwrap();
//! let wire = client.take_output(); // bytes to write to the socket
//! server.receive(now, &wire).unwrap();
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::text("hello"))));
//! ```
//!
//! Rules implemented, by RFC 6455 section: masking by role (5.1), framing
//! and reserved bits (5.2), fragmentation with interleaved control frames
//! (5.4), control frames (5.5), Ping/Pong with coalescing (5.5.2-5.5.3),
//! UTF-8 checked incrementally (8.1), the closing handshake and its codes
//! (5.5.1, 7), and limits on every buffer (10.4).
//!
//! permessage-deflate (RFC 7692, module [`deflate`], cargo feature
//! `deflate`, on by default) is off per connection until
//! [`Config::deflate`] is set; the [`upgrade`] drivers then offer or
//! accept it and the adapters install it. Without the feature, flate2 is
//! not built.
#![deny(unsafe_code)]

extern crate alloc;

mod close;
mod config;
mod connection;
#[cfg(feature = "deflate")]
pub mod deflate;
mod error;
mod extension;
mod message;
mod output;
pub mod reconnect;
mod state;
mod timers;
pub mod upgrade;
mod utf8;

pub use close::{CloseCode, CloseFrame, CloseInfo, Initiator, MAX_CLOSE_REASON};
pub use config::{Config, Heartbeat, KeepAlive};
pub use connection::{Connection, Event};
#[cfg(feature = "deflate")]
pub use deflate::{DeflateConfig, PerMessageDeflate};
pub use error::{Error, InvalidInput, ProtocolError};
pub use extension::{Extension, ExtensionError};
pub use message::{Message, MessageKind, Utf8Bytes};
pub use output::Output;
pub use state::State;
/// The frame layer, re-exported.
pub use tether_frame as frame;
pub use tether_frame::{OpCode, Role, Rsv};
/// The opening handshake layer, re-exported.
pub use tether_handshake as handshake;
