//! One connection at a time in the CONNECTING state per remote host (RFC
//! 6455 section 4.1, the client's second requirement).
//!
//! "There MUST be no more than one connection in a CONNECTING state": a
//! client that opens a WebSocket to an IP address and port while another
//! of its connections to the same one is still connecting waits until that
//! one is established or has failed, so a script cannot flood a host with
//! handshakes. When the client cannot know the address (a proxy resolves
//! the name), each host name counts as a host of its own.
//!
//! [`Gate`] is that rule's state; the adapters hold a [`Pass`] from before
//! they open the transport to a remote until its opening handshake has
//! ended either way (dropping the pass lets the next one in). It has no
//! clock and does no I/O: a caller that must wait polls
//! [`Gate::poll_enter`] with a waker, which a dropped pass wakes, and
//! bounds the wait with its own deadline (the connect timeout). Every
//! client of the process shares [`Gate::global`]
//! (`Config::one_connecting_per_host` turns the rule off for a
//! connection, as a load generator may need).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::task::{Poll, Waker};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The remote host a connection is being opened to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Remote {
    /// Its IP address and port, as resolved by the client.
    Address(SocketAddr),
    /// Its host name and port, when a proxy resolves the name (the client
    /// cannot tell two names of one address apart).
    Name {
        /// The host, as the URL names it.
        host: String,
        /// The port.
        port: u16,
    },
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(addr) => write!(f, "{addr}"),
            Self::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Which remotes have a connection in the CONNECTING state, and who waits
/// for each.
#[derive(Debug, Default)]
pub struct Gate {
    /// The wakers of those waiting for each remote in it (the connecting
    /// one holds a [`Pass`]). A waiter that gave up leaves its waker until
    /// the pass is dropped: at most one per attempt made meanwhile, each
    /// bounded by its connect timeout.
    connecting: Mutex<BTreeMap<Remote, Vec<Waker>>>,
}

/// The right to connect to one remote: the only connection in the
/// CONNECTING state to it until dropped, which lets the next one in.
#[derive(Debug)]
#[must_use = "the remote is free again as soon as the pass is dropped"]
pub struct Pass {
    gate: &'static Gate,
    remote: Remote,
}

static GLOBAL: Gate = Gate::new();

impl Gate {
    /// A gate with nobody connecting.
    pub const fn new() -> Self {
        Self {
            connecting: Mutex::new(BTreeMap::new()),
        }
    }

    /// The process's gate, shared by every client in it (both adapters).
    pub fn global() -> &'static Gate {
        &GLOBAL
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Remote, Vec<Waker>>> {
        self.connecting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A pass for `remote` if nobody is connecting to it; otherwise
    /// `Pending`, and `waker` is woken when the one connecting is done
    /// (then poll again: another waiter may have entered first).
    pub fn poll_enter(&'static self, remote: &Remote, waker: &Waker) -> Poll<Pass> {
        let mut connecting = self.lock();
        match connecting.get_mut(remote) {
            None => {
                connecting.insert(remote.clone(), Vec::new());
                Poll::Ready(Pass {
                    gate: self,
                    remote: remote.clone(),
                })
            }
            Some(waiting) => {
                if !waiting.iter().any(|w| w.will_wake(waker)) {
                    waiting.push(waker.clone());
                }
                Poll::Pending
            }
        }
    }

    /// Whether a connection to `remote` is in the CONNECTING state.
    pub fn is_connecting(&self, remote: &Remote) -> bool {
        self.lock().contains_key(remote)
    }
}

impl Pass {
    /// The remote this pass is for.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let waiting = self.gate.lock().remove(&self.remote);
        for waker in waiting.into_iter().flatten() {
            waker.wake();
        }
    }
}

/// The words for a connect that waited its whole connect timeout at the
/// gate: another connection to the same remote was still connecting.
pub fn still_connecting(remote: &Remote) -> String {
    alloc::format!(
        "another connection to {remote} was still connecting (RFC 6455 section 4.1: one at a time per host)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn gate() -> &'static Gate {
        Box::leak(Box::new(Gate::new()))
    }

    fn addr(port: u16) -> Remote {
        Remote::Address(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn rfc6455_4_1_one_connecting_per_remote_and_the_next_woken() {
        let gate = gate();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let Poll::Ready(first) = gate.poll_enter(&addr(1), &waker) else {
            panic!("nobody was connecting");
        };
        assert!(gate.is_connecting(&addr(1)));
        // the same remote waits, polled twice with one waker: woken once
        assert!(gate.poll_enter(&addr(1), &waker).is_pending());
        assert!(gate.poll_enter(&addr(1), &waker).is_pending());
        // another remote does not
        let Poll::Ready(other) = gate.poll_enter(&addr(2), &waker) else {
            panic!("another port is another remote");
        };
        drop(other);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        drop(first);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(!gate.is_connecting(&addr(1)));
        let Poll::Ready(second) = gate.poll_enter(&addr(1), &waker) else {
            panic!("the first is done");
        };
        assert_eq!(second.remote(), &addr(1));
    }

    #[test]
    fn rfc6455_4_1_names_a_proxy_resolves_are_remotes_of_their_own() {
        let gate = gate();
        let waker = Waker::noop();
        let name = |host: &str| Remote::Name {
            host: host.into(),
            port: 443,
        };
        let Poll::Ready(_a) = gate.poll_enter(&name("a.example"), waker) else {
            panic!()
        };
        assert!(gate.poll_enter(&name("b.example"), waker).is_ready());
        assert!(gate.poll_enter(&name("a.example"), waker).is_pending());
        assert_eq!(
            still_connecting(&name("a.example")),
            "another connection to a.example:443 was still connecting (RFC 6455 section 4.1: one at a time per host)"
        );
    }
}
