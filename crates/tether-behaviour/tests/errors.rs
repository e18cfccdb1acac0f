//! Both adapters word the same error the same way: a transport failure, a
//! connection that has ended, an upgrade the application refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;

use tether::handshake::Refusal;
use tether::{CloseCode, CloseInfo, Initiator};

#[test]
fn both_adapters_say_the_same_for_the_same_error() {
    let failed = || io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer");
    assert_eq!(
        tether_std::Error::Io(failed()).to_string(),
        tether_tokio::Error::Io(failed()).to_string()
    );
    let info = CloseInfo {
        code: CloseCode::NORMAL,
        reason: "bye".into(),
        was_clean: true,
        initiator: Initiator::Remote,
    };
    assert_eq!(
        tether_std::Error::Closed(info.clone()).to_string(),
        tether_tokio::Error::Closed(Some(info)).to_string()
    );
    let refusal = Refusal::forbidden("not on this path");
    assert_eq!(
        tether_std::Error::Refused(refusal.clone()).to_string(),
        tether_tokio::Error::Refused {
            status: refusal.status(),
            reason: refusal.body().to_owned(),
        }
        .to_string()
    );
}
