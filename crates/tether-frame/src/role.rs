//! Which end of the connection we are (RFC 6455 section 5.1).

/// The side of the connection this endpoint plays. It decides masking:
/// a client masks every frame it sends and a server never does, and each
/// side fails the connection if the peer breaks that rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that sent the opening handshake; masks outgoing frames.
    Client,
    /// The side that accepted the opening handshake; never masks.
    Server,
}

impl Role {
    /// Whether frames *sent* by this role carry a mask.
    pub const fn masks_outgoing(self) -> bool {
        matches!(self, Self::Client)
    }

    /// Whether frames *received* by this role must carry a mask.
    pub const fn expects_masked_incoming(self) -> bool {
        matches!(self, Self::Server)
    }

    /// The other side.
    pub const fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

impl core::fmt::Display for Role {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Server => "server",
        })
    }
}
