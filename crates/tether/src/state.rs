//! Connection states, as in .NET's `WebSocketState`.

use core::fmt;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// The opening handshake is under way (as in .NET's `WebSocketState`):
    /// what the handshake objects report
    /// ([`ClientUpgrade::state`](crate::upgrade::ClientUpgrade::state),
    /// [`ServerUpgrade::state`](crate::upgrade::ServerUpgrade::state)). A
    /// [`Connection`](crate::Connection) is made after the handshake and
    /// starts `Open`, and the adapters' `connect`/`accept` return only once
    /// the handshake is done. (.NET's `None`, a socket not yet connecting,
    /// has no counterpart: nothing exists before the handshake starts.)
    Connecting,
    /// Messages flow both ways.
    Open,
    /// We sent a Close and wait for the peer's; we may still receive data.
    CloseSent,
    /// The peer sent a Close that we have not answered yet.
    CloseReceived,
    /// The closing handshake completed, or the peer sent its Close and
    /// ended the transport before our answer went out, or we failed the
    /// connection after a protocol error and sent our Close. Close the
    /// transport once the output is written.
    Closed,
    /// Ended without a closing handshake: transport lost, timeout, or
    /// [`Connection::abort`](crate::Connection::abort).
    Aborted,
}

impl State {
    /// The name, as used in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting",
            Self::Open => "Open",
            Self::CloseSent => "CloseSent",
            Self::CloseReceived => "CloseReceived",
            Self::Closed => "Closed",
            Self::Aborted => "Aborted",
        }
    }

    /// Whether the connection has ended (`Closed` or `Aborted`).
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Closed | Self::Aborted)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
