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
//! ended either way (dropping the pass lets the next one in). Callers wait
//! in line, first come first served: [`Gate::line_up`] gives a [`Place`],
//! polled with a waker for the pass ([`Place::poll_pass`]); only the first
//! in line is woken when the pass is dropped, and a place dropped while
//! waiting (a timeout, a cancelled future) leaves the line, handing its
//! turn on. So the gate holds no more than the callers waiting now. It has
//! no clock and does no I/O: each caller bounds its wait with its own
//! deadline (the connect timeout). Every client of the process shares
//! [`Gate::global`] (`Config::one_connecting_per_host` turns the rule off
//! for a connection, as a load generator may need).
//!
//! A connection that stays in the CONNECTING state holds the others to its
//! remote back for that long: its connect and handshake timeouts bound it
//! (a client whose timeouts are `Duration::MAX` holds them for as long as
//! its server does not answer).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
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

/// The remote of a connection through a proxy: the address when this side
/// resolved the name (`socks5://`), else the host name (the proxy resolves
/// it, and two names of one address cannot be told apart here).
impl From<&crate::handshake::proxy::Target> for Remote {
    fn from(target: &crate::handshake::proxy::Target) -> Self {
        use crate::handshake::proxy::Target;
        match target {
            Target::Ip(ip, port) => Self::Address(SocketAddr::new(*ip, *port)),
            Target::Name(host, port) => Self::Name {
                host: host.clone(),
                port: *port,
            },
        }
    }
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
/// for each, in order.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Only remotes someone connects to or waits for: a line goes when its
    /// pass is dropped with nobody waiting, or its last waiter leaves.
    lines: BTreeMap<Remote, Line>,
    /// The next [`Place`]'s number.
    next: u64,
}

#[derive(Debug, Default)]
struct Line {
    /// A [`Pass`] for it exists: a connection is in the CONNECTING state.
    held: bool,
    /// The places waiting, first come first: each its number and its
    /// latest waker. Only the first is woken when the pass is dropped (and
    /// the next one when a woken first leaves without connecting). A place
    /// leaves the line when it is dropped, so the line holds no more than
    /// the callers waiting now.
    waiting: VecDeque<(u64, Waker)>,
}

/// A caller's place in the line for one remote ([`Gate::line_up`]): poll
/// it for the [`Pass`]. Dropping it (a timeout, a cancelled future) leaves
/// the line.
#[derive(Debug)]
#[must_use = "a place is only a pass once polled"]
pub struct Place {
    gate: &'static Gate,
    remote: Remote,
    number: u64,
    /// In the gate's line for `remote` (polled and told to wait).
    queued: bool,
}

/// The right to connect to one remote: the only connection in the
/// CONNECTING state to it until dropped, which lets the next in line in.
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
            state: Mutex::new(State {
                lines: BTreeMap::new(),
                next: 0,
            }),
        }
    }

    /// The process's gate, shared by every client in it (both adapters).
    pub fn global() -> &'static Gate {
        &GLOBAL
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place in the line for `remote`, behind everyone already in it.
    pub fn line_up(&'static self, remote: Remote) -> Place {
        let mut state = self.lock();
        let number = state.next;
        state.next = state.next.wrapping_add(1);
        Place {
            gate: self,
            remote,
            number,
            queued: false,
        }
    }

    /// Whether a connection to `remote` is in the CONNECTING state.
    pub fn is_connecting(&self, remote: &Remote) -> bool {
        self.lock().lines.get(remote).is_some_and(|line| line.held)
    }

    /// How many wait to connect to `remote`.
    pub fn waiting(&self, remote: &Remote) -> usize {
        self.lock()
            .lines
            .get(remote)
            .map_or(0, |line| line.waiting.len())
    }
}

impl Place {
    /// The pass, once nobody connects to the remote and nobody who lined up
    /// earlier still waits; otherwise `Pending`, and `waker` is woken when
    /// it is this place's turn. Poll it until `Ready` once: a place polled
    /// again after giving its pass lines up anew.
    pub fn poll_pass(&mut self, waker: &Waker) -> Poll<Pass> {
        let mut state = self.gate.lock();
        let line = state.lines.entry(self.remote.clone()).or_default();
        let first = line.waiting.front().map(|(number, _)| *number);
        let turn = !line.held
            && if self.queued {
                first == Some(self.number)
            } else {
                first.is_none()
            };
        if turn {
            line.held = true;
            if self.queued {
                line.waiting.pop_front();
                self.queued = false;
            }
            return Poll::Ready(Pass {
                gate: self.gate,
                remote: self.remote.clone(),
            });
        }
        if self.queued {
            if let Some((_, w)) = line.waiting.iter_mut().find(|(n, _)| *n == self.number)
                && !w.will_wake(waker)
            {
                w.clone_from(waker);
            }
        } else {
            line.waiting.push_back((self.number, waker.clone()));
            self.queued = true;
        }
        Poll::Pending
    }
}

/// The first in `remote`'s line, to wake once the lock is released: its
/// turn has come (the remote is free). A line nobody holds or waits in
/// goes.
fn next_in(state: &mut State, remote: &Remote) -> Option<Waker> {
    let line = state.lines.get_mut(remote)?;
    if line.held {
        return None;
    }
    let next = line.waiting.front().map(|(_, w)| w.clone());
    if next.is_none() {
        state.lines.remove(remote);
    }
    next
}

impl Drop for Place {
    fn drop(&mut self) {
        if !self.queued {
            return;
        }
        let next = {
            let mut state = self.gate.lock();
            if let Some(line) = state.lines.get_mut(&self.remote) {
                line.waiting.retain(|(n, _)| *n != self.number);
            }
            // it may have been woken for its turn: the next one's now
            next_in(&mut state, &self.remote)
        };
        if let Some(waker) = next {
            waker.wake();
        }
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
        let next = {
            let mut state = self.gate.lock();
            if let Some(line) = state.lines.get_mut(&self.remote) {
                line.held = false;
            }
            next_in(&mut state, &self.remote)
        };
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

/// The words for a connect that waited its whole connect timeout in line:
/// another connection to the same remote was still connecting.
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

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        (count, waker)
    }

    fn woken(count: &Count) -> usize {
        count.0.load(Ordering::SeqCst)
    }

    fn pass(place: &mut Place, waker: &Waker) -> Pass {
        match place.poll_pass(waker) {
            Poll::Ready(pass) => pass,
            Poll::Pending => panic!("not its turn"),
        }
    }

    #[test]
    fn rfc6455_4_1_one_connecting_per_remote_and_the_next_woken() {
        let gate = gate();
        let (count, waker) = waker();
        let first = pass(&mut gate.line_up(addr(1)), &waker);
        assert!(gate.is_connecting(&addr(1)));
        // the same remote waits; polled twice, it is still one waiter
        let mut second = gate.line_up(addr(1));
        assert!(second.poll_pass(&waker).is_pending());
        assert!(second.poll_pass(&waker).is_pending());
        assert_eq!(gate.waiting(&addr(1)), 1);
        // another port is another remote
        drop(pass(&mut gate.line_up(addr(2)), &waker));
        assert_eq!(woken(&count), 0);
        drop(first);
        assert_eq!(woken(&count), 1);
        assert!(!gate.is_connecting(&addr(1)));
        let second = pass(&mut second, &waker);
        assert_eq!(second.remote(), &addr(1));
        assert_eq!(gate.waiting(&addr(1)), 0);
        drop(second);
        assert!(
            gate.lock().lines.is_empty(),
            "nothing kept once all are done"
        );
    }

    #[test]
    fn rfc6455_4_1_first_come_first_served_and_only_the_first_woken() {
        let gate = gate();
        let (_, a_waker) = waker();
        let (b_count, b_waker) = waker();
        let (c_count, c_waker) = waker();
        let a = pass(&mut gate.line_up(addr(1)), &a_waker);
        let mut b = gate.line_up(addr(1));
        let mut c = gate.line_up(addr(1));
        assert!(b.poll_pass(&b_waker).is_pending());
        assert!(c.poll_pass(&c_waker).is_pending());
        drop(a);
        assert_eq!((woken(&b_count), woken(&c_count)), (1, 0));
        // a newcomer, and the second in line, before the first polls: both wait
        let mut d = gate.line_up(addr(1));
        assert!(d.poll_pass(&a_waker).is_pending());
        assert!(c.poll_pass(&c_waker).is_pending());
        let b = pass(&mut b, &b_waker);
        drop(b);
        assert_eq!(woken(&c_count), 1);
        let c = pass(&mut c, &c_waker);
        drop(c);
        drop(pass(&mut d, &a_waker));
    }

    #[test]
    fn rfc6455_4_1_a_waiter_that_leaves_hands_its_turn_on_and_keeps_nothing() {
        let gate = gate();
        let (b_count, b_waker) = waker();
        let (c_count, c_waker) = waker();
        let a = pass(&mut gate.line_up(addr(1)), &b_waker);
        // many give up while it connects (their timeouts): none stays
        for _ in 0..1000 {
            let mut place = gate.line_up(addr(1));
            assert!(place.poll_pass(&c_waker).is_pending());
        }
        assert_eq!(gate.waiting(&addr(1)), 0);
        let mut b = gate.line_up(addr(1));
        let mut c = gate.line_up(addr(1));
        assert!(b.poll_pass(&b_waker).is_pending());
        assert!(c.poll_pass(&c_waker).is_pending());
        drop(a);
        assert_eq!(woken(&b_count), 1);
        // woken, it leaves without connecting: the next one's turn
        let before = woken(&c_count);
        drop(b);
        assert_eq!(woken(&c_count), before + 1);
        drop(pass(&mut c, &c_waker));
        assert!(gate.lock().lines.is_empty());
    }

    #[test]
    fn rfc6455_4_1_names_a_proxy_resolves_are_remotes_of_their_own() {
        let gate = gate();
        let waker = Waker::noop();
        let name = |host: &str| Remote::Name {
            host: host.into(),
            port: 443,
        };
        // a proxy's target: the address when resolved here, else the name
        use crate::handshake::proxy::Target;
        assert_eq!(
            Remote::from(&Target::Name("a.example".into(), 443)),
            name("a.example")
        );
        assert_eq!(Remote::from(&Target::Ip([127, 0, 0, 1].into(), 1)), addr(1));
        let _a = pass(&mut gate.line_up(name("a.example")), waker);
        let _b = pass(&mut gate.line_up(name("b.example")), waker);
        assert!(
            gate.line_up(name("a.example"))
                .poll_pass(waker)
                .is_pending()
        );
        assert_eq!(
            still_connecting(&name("a.example")),
            "another connection to a.example:443 was still connecting (RFC 6455 section 4.1: one at a time per host)"
        );
    }
}
