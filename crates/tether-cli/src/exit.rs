//! The command's exit statuses, decided in one place (README, `tether help
//! connect`), so a script can tell a normal end from a server's error, a
//! refusal and a lost connection:
//!
//! | status | meaning |
//! |---|---|
//! | 0 | a normal end: our own close, or the server's clean 1000, 1001 or 1005 (or an intentional code with `--reconnect`) |
//! | 1 | the command itself failed: stdin or stdout, a line not sent, lines still waiting |
//! | 2 | bad usage (flags, URL syntax, an unreadable `--ca` file) |
//! | 3 | never connected: the connection or the handshake was refused (or, with `--reconnect`, it gave up before any connection came up) |
//! | 4 | the server closed cleanly with another code (e.g. 1008, 1011, 4000): it said why |
//! | 5 | the connection ended abnormally: 1006 (lost, timed out), or failed on a protocol error; or, with `--reconnect`, it gave up after having been connected |
//! | 130 | interrupted twice (Ctrl-C) |

use std::process::ExitCode;

use crate::stderr::say;
use tether::{CloseCode, CloseInfo, Initiator};

/// The command itself failed.
pub(crate) const FAILED: u8 = 1;
/// Bad usage (a flag's value cannot be used, e.g. an unreadable --ca file).
pub(crate) const USAGE: u8 = 2;
/// Never connected.
pub(crate) const NEVER_CONNECTED: u8 = 3;
/// The server closed cleanly with a code that says why.
pub(crate) const CLOSED_WITH_CODE: u8 = 4;
/// The connection ended abnormally.
pub(crate) const ABNORMAL: u8 = 5;
/// Interrupted twice.
pub(crate) const INTERRUPTED: u8 = 130;

/// Says why no connection came up: a URL that cannot be used is bad usage
/// (2: the URL's syntax or scheme, as `tether connect localhost:9001` or
/// `http://`), anything else never connected (3).
pub(crate) fn not_connected(url: &str, e: &tether_tokio::Error) -> ExitCode {
    if let tether_tokio::Error::Url(_) = e {
        // the error quotes what it found
        say!("tether: {e}");
        return code(USAGE);
    }
    say!("tether: cannot connect to {url}: {e}");
    code(NEVER_CONNECTED)
}

/// The status for a connection that ended with `info`.
pub(crate) fn for_end(info: &CloseInfo) -> u8 {
    if !info.was_clean {
        return ABNORMAL;
    }
    let normal = [
        CloseCode::NORMAL,
        CloseCode::GOING_AWAY,
        CloseCode::NO_STATUS_RECEIVED,
    ];
    if info.initiator == Initiator::Remote && !normal.contains(&info.code) {
        CLOSED_WITH_CODE
    } else {
        0
    }
}

/// `status` as the process's exit code.
pub(crate) fn code(status: u8) -> ExitCode {
    ExitCode::from(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(code: u16, clean: bool, initiator: Initiator) -> CloseInfo {
        CloseInfo {
            code: CloseCode::new(code),
            reason: String::new(),
            was_clean: clean,
            initiator,
        }
    }

    #[test]
    fn a_script_can_tell_the_ends_apart() {
        assert_eq!(for_end(&info(1000, true, Initiator::Remote)), 0);
        assert_eq!(for_end(&info(1001, true, Initiator::Remote)), 0);
        assert_eq!(for_end(&info(1005, true, Initiator::Remote)), 0);
        assert_eq!(
            for_end(&info(4000, true, Initiator::Application)),
            0,
            "our own code"
        );
        assert_eq!(
            for_end(&info(1011, true, Initiator::Remote)),
            CLOSED_WITH_CODE
        );
        assert_eq!(
            for_end(&info(4000, true, Initiator::Remote)),
            CLOSED_WITH_CODE
        );
        assert_eq!(for_end(&info(1006, false, Initiator::Remote)), ABNORMAL);
        assert_eq!(for_end(&info(1002, false, Initiator::Local)), ABNORMAL);
    }
}
