//! Errors: what the peer did wrong ([`ProtocolError`], each with its close
//! code) apart from what the caller did wrong ([`Error::InvalidState`],
//! [`Error::InvalidInput`]) and backpressure ([`Error::OutputFull`]).

use alloc::string::String;
use core::fmt;

use tether_frame::{FrameError, OpCode};

use crate::{CloseCode, CloseInfo, State};

/// The peer broke RFC 6455 or one of our limits. The connection sent a
/// Close with [`ProtocolError::close_code`] and is `Closed`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame-level error (header, masking, control-frame rules, size).
    Frame(FrameError),
    /// A continuation frame arrived with no message to continue (section 5.4).
    UnexpectedContinuation,
    /// A new Text or Binary frame arrived while a fragmented message was
    /// still open (section 5.4).
    ExpectedContinuation(OpCode),
    /// RSV bits on a frame where no extension may set them (a control frame
    /// or a continuation; RFC 7692 section 6).
    ReservedBitsOnFrame(OpCode),
    /// Text that is not UTF-8 (section 8.1): close 1007.
    InvalidUtf8,
    /// A message over `Config::max_message_size`: close 1009.
    MessageTooLarge {
        /// The size the message would reach.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A message over `Config::max_fragments`: close 1009.
    TooManyFragments {
        /// The limit.
        max: usize,
    },
    /// A Close payload of one byte (section 5.5.1).
    ClosePayloadTooShort,
    /// A Close code that must not appear on the wire (section 7.4).
    InvalidCloseCode(u16),
    /// A Close reason that is not UTF-8 (section 5.5.1): close 1007.
    InvalidCloseReason,
    /// A message the peer began received none of its bytes for
    /// `Config::message_timeout` (a stalled or trickling sender holding a
    /// partial message): close 1008.
    MessageStalled {
        /// The timeout that passed.
        after: core::time::Duration,
    },
    /// A negotiated extension rejected a message.
    Extension {
        /// The close code the extension asked for.
        code: CloseCode,
        /// What went wrong.
        reason: String,
    },
}

impl ProtocolError {
    /// The close code sent for this error (RFC 6455 section 7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::Frame(e) => CloseCode::new(e.close_code()),
            Self::InvalidUtf8 | Self::InvalidCloseReason => CloseCode::INVALID_PAYLOAD,
            Self::MessageTooLarge { .. } | Self::TooManyFragments { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            Self::Extension { code, .. } => *code,
            Self::MessageStalled { .. } => CloseCode::POLICY_VIOLATION,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(e) => fmt::Display::fmt(e, f),
            Self::UnexpectedContinuation => {
                f.write_str("continuation frame with no message to continue (RFC 6455 5.4)")
            }
            Self::ExpectedContinuation(op) => write!(
                f,
                "{op} frame while a fragmented message is open; expected a continuation (RFC 6455 5.4)"
            ),
            Self::ReservedBitsOnFrame(op) => write!(f, "reserved bits set on a {op} frame"),
            Self::InvalidUtf8 => f.write_str("text message is not valid UTF-8 (RFC 6455 8.1)"),
            Self::MessageTooLarge { size, max } => {
                write!(
                    f,
                    "message of at least {size} bytes is over the limit of {max} bytes"
                )
            }
            Self::TooManyFragments { max } => write!(f, "message spans more than {max} frames"),
            Self::ClosePayloadTooShort => {
                f.write_str("Close frame with a 1-byte payload (RFC 6455 5.5.1)")
            }
            Self::InvalidCloseCode(code) => {
                write!(
                    f,
                    "Close frame with code {code}, which may not be sent (RFC 6455 7.4)"
                )
            }
            Self::InvalidCloseReason => {
                f.write_str("Close reason is not valid UTF-8 (RFC 6455 5.5.1)")
            }
            Self::Extension { reason, .. } => write!(f, "extension: {reason}"),
            Self::MessageStalled { after } => write!(
                f,
                "a begun message received nothing for {after:?} (message timeout)"
            ),
        }
    }
}

impl From<FrameError> for ProtocolError {
    fn from(e: FrameError) -> Self {
        Self::Frame(e)
    }
}

/// What the caller asked for that cannot be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A close code that may not be sent (1005, 1006, 1015, or outside
    /// 1000-1003, 1007-1014, 3000-4999).
    CloseCode(CloseCode),
    /// A close reason over 123 bytes.
    CloseReasonTooLong(usize),
    /// A Ping or Pong payload over 125 bytes.
    ControlPayloadTooLong(usize),
    /// A text fragment that makes the message invalid UTF-8.
    InvalidUtf8,
    /// A message while a fragmented send is still open, or a fragment of
    /// the other kind.
    FragmentedSendOpen,
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CloseCode(code) => write!(f, "close code {} may not be sent", code.as_u16()),
            Self::CloseReasonTooLong(n) => write!(f, "close reason of {n} bytes; at most 123 fit"),
            Self::ControlPayloadTooLong(n) => {
                write!(f, "control payload of {n} bytes; at most 125 fit")
            }
            Self::InvalidUtf8 => f.write_str("text fragment is not valid UTF-8"),
            Self::FragmentedSendOpen => f.write_str(
                "a fragmented message is being sent; finish it with a final fragment of the same kind first",
            ),
        }
    }
}

/// An error from a [`Connection`](crate::Connection) operation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol, and the connection fails with the
    /// error's close code: at once (our Close queued, the state `Closed`),
    /// or, while events received before the error wait for the application,
    /// once they are taken (RFC 6455 7.1.7, in order: the state stays `Open`
    /// until then, and
    /// [`Connection::deferred_failure`](crate::Connection::deferred_failure)
    /// names it). Events received before the error are kept.
    Protocol(ProtocolError),
    /// The operation is not allowed in the current state.
    InvalidState {
        /// What was attempted, e.g. "send".
        operation: &'static str,
        /// The current state.
        state: State,
        /// The states that allow the operation.
        valid: &'static [State],
        /// Why the connection left `Open`, when it has: how it ended, or,
        /// while our Close waits for the answer, that Close when this
        /// endpoint sent it on its own (the idle timeout; `was_clean:
        /// false`). `None` while a Close the application sent is
        /// unanswered.
        cause: Option<CloseInfo>,
    },
    /// The arguments are not acceptable.
    InvalidInput(InvalidInput),
    /// More than `Config::max_queued_output` bytes wait to be written:
    /// write the output, then try again.
    OutputFull {
        /// Bytes queued now.
        queued: usize,
        /// The limit.
        limit: usize,
    },
    /// The transport failed ([`Connection::transport_failed`](crate::Connection::transport_failed)):
    /// nothing more can be sent, and the connection is ending (it reads
    /// on to the peer's last bytes, which decide how).
    TransportFailed {
        /// What was attempted, e.g. "send".
        operation: &'static str,
        /// The failure, e.g. "write failed: Broken pipe (os error 32)".
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol(e) => write!(f, "protocol error, failing with {}: {e}", e.close_code()),
            Self::InvalidState {
                operation,
                state,
                valid,
                cause,
            } => {
                write!(f, "cannot {operation}: the connection is {state}")?;
                match cause {
                    Some(cause) if state.is_terminal() => write!(f, " ({cause})")?,
                    // not ended yet: the Close that began the closing
                    Some(cause) => {
                        write!(
                            f,
                            " (closing: a Close sent by {} with {}",
                            cause.initiator.by(),
                            cause.code
                        )?;
                        if !cause.reason.is_empty() {
                            write!(f, ": {}", cause.reason)?;
                        }
                        f.write_str(")")?;
                    }
                    None => {}
                }
                f.write_str("; allowed only when ")?;
                for (i, s) in valid.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(s.name())?;
                }
                Ok(())
            }
            Self::InvalidInput(e) => fmt::Display::fmt(e, f),
            Self::OutputFull { queued, limit } => write!(
                f,
                "output queue holds {queued} bytes, over the limit of {limit}: write the output first"
            ),
            Self::TransportFailed { operation, reason } => write!(
                f,
                "cannot {operation}: the transport failed ({reason}); the connection is ending"
            ),
        }
    }
}

impl std::error::Error for Error {}
impl std::error::Error for ProtocolError {}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

impl From<InvalidInput> for Error {
    fn from(e: InvalidInput) -> Self {
        Self::InvalidInput(e)
    }
}
