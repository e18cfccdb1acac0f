//! Close codes and close frames (RFC 6455 sections 5.5.1, 7.4 and 11.7).
//!
//! Owns [`CloseCode`] with a one-line meaning per registered code, the rules
//! for which codes may appear on the wire, parsing and building of Close
//! payloads, and [`CloseInfo`], the final event every connection ends with.

use alloc::string::String;
use core::fmt;

use crate::ProtocolError;

/// A close status code (RFC 6455 section 7.4).
///
/// 1000-1015 are registered with IANA (1004 reserved; 1005, 1006 and 1015
/// are for local reporting only and never sent), 3000-3999 are for
/// libraries and frameworks, 4000-4999 for applications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutting down, page navigated away).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the endpoint received a frame that breaks the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: the endpoint received a kind of data it cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1004: reserved, no meaning defined.
    pub const RESERVED: Self = Self(1004);
    /// 1005: the Close frame carried no status code (never sent).
    pub const NO_STATUS_RECEIVED: Self = Self(1005);
    /// 1006: the connection ended without a Close frame (never sent).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: a message's data did not match its type (e.g. invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message broke the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (temporary overload).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway or proxy got an invalid response upstream.
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: the TLS handshake failed (never sent).
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Wraps any 16-bit value; see [`CloseCode::is_valid_on_wire`].
    pub const fn new(code: u16) -> Self {
        Self(code)
    }

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether this code may appear in a Close frame, sent or received
    /// (RFC 6455 section 7.4.1-7.4.2): 1000-1003, 1007-1014, 3000-4999.
    /// Below 1000, 1004-1006, 1015, 1016-2999 and 5000 and up are not.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// 4000-4999: private use by applications.
    pub const fn is_application(self) -> bool {
        matches!(self.0, 4000..=4999)
    }

    /// 3000-3999: registered for libraries, frameworks and applications.
    pub const fn is_library(self) -> bool {
        matches!(self.0, 3000..=3999)
    }

    /// A one-line meaning of the code.
    pub const fn description(self) -> &'static str {
        match self.0 {
            1000 => "normal closure",
            1001 => "going away",
            1002 => "protocol error",
            1003 => "unsupported data",
            1004 => "reserved",
            1005 => "no status code received",
            1006 => "abnormal closure: no Close frame was received",
            1007 => "invalid payload data",
            1008 => "policy violation",
            1009 => "message too big",
            1010 => "mandatory extension missing",
            1011 => "internal server error",
            1012 => "service restart",
            1013 => "try again later",
            1014 => "bad gateway",
            1015 => "TLS handshake failure",
            3000..=3999 => "registered library code",
            4000..=4999 => "application code",
            _ => "not a valid close code",
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.description())
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

/// The longest reason a Close frame can carry: 125 bytes minus the code.
pub const MAX_CLOSE_REASON: usize = 123;

/// The code and reason carried by a Close frame (RFC 6455 section 5.5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The UTF-8 reason, at most [`MAX_CLOSE_REASON`] bytes.
    pub reason: String,
}

impl CloseFrame {
    /// Whether `code` and `reason` may be sent in a Close (RFC 6455
    /// sections 5.5.1 and 7.4): the rule [`Connection::close`](crate::Connection::close)
    /// applies, for a caller that must refuse before the request reaches a
    /// connection (e.g. a reconnecting client's handle).
    ///
    /// # Errors
    /// [`InvalidInput::CloseCode`](crate::InvalidInput::CloseCode) for 1005,
    /// 1006, 1015 and codes outside 1000-1003, 1007-1014, 3000-4999;
    /// [`InvalidInput::CloseReasonTooLong`](crate::InvalidInput::CloseReasonTooLong)
    /// for a reason over [`MAX_CLOSE_REASON`] bytes.
    pub fn check(code: CloseCode, reason: &str) -> Result<(), crate::InvalidInput> {
        if !code.is_valid_on_wire() {
            return Err(crate::InvalidInput::CloseCode(code));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(crate::InvalidInput::CloseReasonTooLong(reason.len()));
        }
        Ok(())
    }
}

/// Parses a received Close payload (RFC 6455 section 5.5.1). `Ok(None)` for
/// an empty payload (reported as 1005).
pub(crate) fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::ClosePayloadTooShort),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason =
                core::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.into(),
            }))
        }
    }
}

/// Who started the end of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// The application: it called `close` (the end came with the peer's
    /// answer, or with the close timeout).
    Application,
    /// This endpoint, on its own: a keep-alive or idle timeout, an abort (e.g. after
    /// an I/O error), or the peer's bytes broke the protocol and we failed
    /// the connection.
    Local,
    /// The peer: it sent a Close first, or the transport ended.
    Remote,
}

impl Initiator {
    /// Who, in an error's words.
    pub(crate) const fn by(self) -> &'static str {
        match self {
            Self::Application => "the application",
            Self::Local => "us",
            Self::Remote => "the peer",
        }
    }
}

/// How a connection ended: the last event it ever yields.
///
/// Decide on this, not on errors: `was_clean` is true when both Close
/// frames were exchanged, and when the peer sent its Close and then ended
/// the transport before our answer went out (it closed on purpose, with
/// its code: many servers close TCP right after their Close). A transport
/// that ended without the peer's Close reports 1006 with `was_clean: false`
/// (RFC 6455 section 7.1.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code: the peer's (or 1005 if its Close had none), ours when
    /// we failed the connection, or 1006 when no Close frame was exchanged.
    pub code: CloseCode,
    /// The reason from the Close frame, or our words for why it ended.
    pub reason: String,
    /// Whether the end was agreed: the closing handshake completed, or the
    /// peer's Close arrived before it ended the transport (see above).
    pub was_clean: bool,
    /// Which side started the end.
    pub initiator: Initiator,
}

impl CloseInfo {
    /// An end without a closing handshake, as we report it: 1006
    /// (abnormal closure, never on the wire), `was_clean: false`, started
    /// by us, with `reason` in our words.
    pub fn abnormal(reason: impl Into<String>) -> Self {
        Self {
            code: CloseCode::ABNORMAL,
            reason: reason.into(),
            was_clean: false,
            initiator: Initiator::Local,
        }
    }
}

impl fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "closed by {} with {}", self.initiator.by(), self.code)?;
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        f.write_str(if self.was_clean {
            " (clean)"
        } else {
            " (not clean)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_7_4_1_valid_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(CloseCode::new(code).is_valid_on_wire(), "{code}");
        }
    }

    #[test]
    fn rfc6455_7_4_1_invalid_codes() {
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode::new(code).is_valid_on_wire(), "{code}");
        }
    }

    #[test]
    fn rfc6455_5_5_1_close_payload_parsing() {
        assert_eq!(parse_close_payload(&[]), Ok(None));
        assert_eq!(
            parse_close_payload(&[0x03]),
            Err(ProtocolError::ClosePayloadTooShort)
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xE8, b'o', b'k']),
            Ok(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: "ok".into()
            }))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xED]),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xE8, 0xFF]),
            Err(ProtocolError::InvalidCloseReason)
        );
    }

    #[test]
    fn close_code_display_names_the_meaning() {
        assert_eq!(CloseCode::NORMAL.to_string(), "1000 (normal closure)");
        assert_eq!(CloseCode::new(4000).to_string(), "4000 (application code)");
        assert_eq!(
            CloseCode::ABNORMAL.description(),
            "abnormal closure: no Close frame was received"
        );
    }
}
