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
//! ## The driving loop
//!
//! Whatever moves the bytes (the adapters, or your own runtime) runs this
//! loop and decides nothing else: when to answer a Close, when to close the
//! transport and every wait are the connection's outputs.
//!
//! ```no_run
//! use std::io::{ErrorKind, Read, Write};
//! use std::net::{Shutdown, TcpStream};
//! use std::time::{Duration, Instant};
//! use tether::{Connection, Event};
//!
//! fn run(mut conn: Connection, mut tcp: TcpStream) -> std::io::Result<()> {
//!     let mut buf = [0u8; 16 * 1024];
//!     loop {
//!         // 1. write what the connection queued: data, Pongs, keep-alives, Close
//!         tcp.write_all(&conn.take_output())?;
//!         // 2. the transport ends when the connection says (RFC 6455 7.1.1)
//!         if conn.should_close_transport() {
//!             return tcp.shutdown(Shutdown::Both);
//!         }
//!         // 3. wait for input, at most until the connection's next deadline
//!         let wait = conn
//!             .poll_timeout()
//!             .map(|at| at.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
//!         tcp.set_read_timeout(wait)?;
//!         match tcp.read(&mut buf) {
//!             Ok(0) => conn.receive_eof(),
//!             // a protocol error is reported by the events (the final Closed)
//!             Ok(n) => {
//!                 let _ = conn.receive(Instant::now(), &buf[..n]);
//!                 // a message that inflates to much more than it took on
//!                 // the wire is decoded a turn at a time (one thread per
//!                 // connection here: no one to yield to between turns)
//!                 while conn.decoding_pending() {
//!                     conn.new_turn();
//!                     let _ = conn.continue_decoding(Instant::now());
//!                 }
//!             }
//!             Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
//!             Err(e) if tether::read_error_is_eof(&e) => conn.receive_eof(),
//!             Err(e) => {
//!                 conn.abort(&e.to_string());
//!                 conn.receive_eof();
//!             }
//!         }
//!         // 4. time: keep-alive, close and drain timers
//!         conn.handle_timeout(Instant::now());
//!         // 5. events, for the application
//!         while let Some(event) = conn.poll_event() {
//!             match event {
//!                 Event::Message(m) => println!("{m:?}"),
//!                 Event::Ping(_) | Event::Pong(_) => {}
//!                 Event::Closed(info) => println!("closed: {info:?}"),
//!             }
//!         }
//!     }
//! }
//! ```
//!
//! `send` takes no time: after writing what it queued, a driver tells it
//! (`conn.tell_time(now)` when `conn.wants_time()`), or an idle timeout
//! counts from the call before the send.
//!
//! `tether-std` runs exactly this with the application's calls in place of
//! step 5; `tether-tokio` runs it as named steps of one `drive()`, polled
//! by whichever task is waiting, with a background task when none is.
//! Where many connections share a thread, each drive is one turn
//! ([`Config::turn_bytes`]): when [`Connection::turn_spent`] says so, the
//! driver lets the others run and comes back (tokio yields to the runtime),
//! and a message still being decoded ([`Connection::decoding_pending`]) is
//! continued on the next turn instead of reading more.
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

mod admission;
mod budget;
mod close;
mod config;
pub mod connecting;
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
#[cfg(feature = "tls")]
pub mod tls;
pub use timers::{TIMER_RESOLUTION, deadline, finite_wait};

/// Whether a failed read of the transport is the end of its input rather
/// than a failure: `UnexpectedEof`, which is how rustls reports a peer that
/// closed TCP without TLS's `close_notify` (common: many servers drop TCP
/// after the closing handshake, which already says the data is complete).
/// An adapter treats such a read as it treats a read of 0 bytes
/// ([`Connection::receive_eof`]; during the opening handshake, the
/// upgrade's `eof`), so a peer's Close followed by a bare TCP close ends
/// the same way, with the peer's code, in every adapter; any other error
/// is a transport failure (1006).
pub fn read_error_is_eof(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::UnexpectedEof
}
pub mod upgrade;
mod utf8;

pub use admission::{Admission, Admit, Refusing, Slot};
pub use budget::{Budget, Holder};
pub use close::{CloseCode, CloseFrame, CloseInfo, Initiator, MAX_CLOSE_REASON};
pub use config::{Config, Heartbeat, KeepAlive};
pub use connection::{
    BudgetCheck, Connection, EVENT_BATCH, Event, IDLE_SPARE_MAX, Queued, Sent, TURN_FRAME_COST,
    TransportFailure,
};
#[cfg(feature = "deflate")]
pub use deflate::{DeflateConfig, PerMessageDeflate};
pub use error::{Error, InvalidInput, ProtocolError};
pub use extension::{DecodeJob, Extension, ExtensionError};
pub use message::{Message, MessageKind, Utf8Bytes};
pub use output::Output;
pub use state::State;
/// The frame layer, re-exported.
pub use tether_frame as frame;
pub use tether_frame::{OpCode, Payload, Role, Rsv};
/// The opening handshake layer, re-exported.
pub use tether_handshake as handshake;
