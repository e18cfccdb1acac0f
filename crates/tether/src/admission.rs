//! A server's connection slots: how many clients it serves at once, and
//! what happens to a new one when they are all taken.
//!
//! Owns the count of connections, in two kinds: those still in their
//! opening handshake and those established. When every slot is taken, a new
//! client takes the slot of the oldest connection still in its handshake
//! (so clients that open connections and never finish the handshake, a
//! slowloris, hold slots only until real clients come); when every slot
//! holds an established connection, the new client is refused (an adapter
//! answers it 503), and when [`Admission::MAX_REFUSING`] refusals are
//! already under way it is shed (its socket closed at once, unanswered), so
//! a flood of clients at a full server holds at most that many sockets
//! besides the connections. No I/O, no clock.

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use core::time::Duration;
use std::sync::Mutex;

/// A server's connection slots, shared by its accept loop and its
/// connections.
#[derive(Debug)]
pub struct Admission {
    max: usize,
    max_refusing: usize,
    inner: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    next_id: u64,
    /// Connections in their handshake, by id (ids grow: the first is the
    /// oldest).
    pending: BTreeSet<u64>,
    established: usize,
    /// Refusals under way ([`Refusing`] tokens alive).
    refusing: usize,
}

/// What [`Admission::admit`] decided for a new client.
#[derive(Debug)]
pub enum Admit {
    /// Serve it, in this slot.
    Slot(Slot),
    /// Serve it, in this slot, taken from the connection with this id, the
    /// oldest still in its handshake: end that one now (it no longer
    /// counts).
    InPlaceOf(Slot, u64),
    /// Every slot holds an established connection: refuse it (HTTP 503),
    /// holding this token until the refusal is over.
    Full(Refusing),
    /// Every slot holds an established connection and
    /// [`Admission::MAX_REFUSING`] refusals are under way: close its socket
    /// at once, without an answer (a flood of clients holds no more).
    Shed,
}

impl Admission {
    /// How long a refused client ([`Admit::Full`]) may take to send its
    /// request head and read the 503 before its socket is closed: the
    /// refusal is answered after the request (closing with it unread
    /// could reset the answer away), and a refused slowloris holds a
    /// socket no longer than this.
    pub const REFUSAL_TIME: Duration = Duration::from_secs(1);

    /// How many refusals ([`Admit::Full`]) may be under way at once, by
    /// default ([`Admission::max_refusing`]); past it a client is shed
    /// ([`Admit::Shed`]). Each refusal holds its socket and a request
    /// buffer of at most 4 KiB (and, over TLS, the TLS session's buffers;
    /// over HTTP/2, a header list of at most 4 KiB and at most 64 KiB of
    /// DATA: the tokio adapter's `Http2Server::handshake_to_refuse` opens
    /// no stream window) for at most [`Admission::REFUSAL_TIME`], so a
    /// full server under a flood of new clients holds at most this many of
    /// them: with the refusal's future and a plain socket's kernel-side
    /// state aside, `MAX_REFUSING x (4 KiB + transport)` (HTTP/2:
    /// `MAX_REFUSING x (68 KiB + transport)`). (Measured on `tether serve`:
    /// 1,000 silent clients at a full server raise its peak resident
    /// memory by about 1 MiB, the test's bound being `MAX_REFUSING x
    /// 16 KiB + 1 MiB`; with the refusals unbounded, by 6.8 MB.)
    pub const MAX_REFUSING: usize = 64;

    /// After accepting failed (e.g. out of file descriptors), how long to
    /// wait before accepting again, instead of spinning on the error.
    pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

    /// The answer for a refused client ([`Admit::Full`], or one whose slot
    /// went to a newer client before its handshake ended): 503, saying the
    /// server is at its connection limit.
    pub fn refusal() -> tether_handshake::Refusal {
        tether_handshake::Refusal::service_unavailable(
            "the server is at its connection limit; try again later",
        )
    }

    /// At most `max` connections at once (at least one), and at most
    /// [`Admission::MAX_REFUSING`] refusals under way.
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            max_refusing: Self::MAX_REFUSING,
            inner: Mutex::new(Slots::default()),
        }
    }

    /// At most `n` refusals under way at once (0: every client past the
    /// limit is shed, none answered).
    #[must_use]
    pub fn max_refusing(mut self, n: usize) -> Self {
        self.max_refusing = n;
        self
    }

    /// The most connections at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections now: (in their handshake, established).
    pub fn counts(&self) -> (usize, usize) {
        let slots = self.lock();
        (slots.pending.len(), slots.established)
    }

    /// Refusals under way now.
    pub fn refusing(&self) -> usize {
        self.lock().refusing
    }

    /// A new client arrived: a slot for it (in its handshake), possibly
    /// the oldest handshake's, or none (refused or shed).
    pub fn admit(self: &Arc<Self>) -> Admit {
        let mut slots = self.lock();
        let taken_from = if slots.pending.len() + slots.established < self.max {
            None
        } else {
            match slots.pending.pop_first() {
                Some(oldest) => Some(oldest),
                None if slots.refusing < self.max_refusing => {
                    slots.refusing += 1;
                    return Admit::Full(Refusing {
                        admission: self.clone(),
                    });
                }
                None => return Admit::Shed,
            }
        };
        let id = slots.next_id;
        slots.next_id += 1;
        slots.pending.insert(id);
        drop(slots);
        let slot = Slot {
            admission: self.clone(),
            id,
            established: false,
        };
        match taken_from {
            None => Admit::Slot(slot),
            Some(oldest) => Admit::InPlaceOf(slot, oldest),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    id: u64,
    established: bool,
}

impl Slot {
    /// This connection's id (the one [`Admit::InPlaceOf`] names).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The handshake completed: the connection keeps its slot from now
    /// on. Returns false when the slot was already given to a newer client
    /// (the connection must end; its accept loop is ending it).
    pub fn established(&mut self) -> bool {
        if self.established {
            return true;
        }
        let mut slots = self.admission.lock();
        if !slots.pending.remove(&self.id) {
            return false;
        }
        slots.established += 1;
        self.established = true;
        true
    }

    /// A slot for one more WebSocket on this slot's connection (a stream
    /// of an HTTP/2 or HTTP/3 connection, whose first WebSocket holds
    /// this slot), established at once: each WebSocket counts, so one
    /// multiplexed connection cannot hold a server's resources many times
    /// over while it counts once. `None` when no slot is free (it takes
    /// none from a handshake under way): refuse that stream (503,
    /// [`Admission::refusal`]).
    pub fn another(&self) -> Option<Slot> {
        let mut slots = self.admission.lock();
        if slots.pending.len() + slots.established >= self.admission.max {
            return None;
        }
        let id = slots.next_id;
        slots.next_id += 1;
        slots.established += 1;
        Some(Slot {
            admission: self.admission.clone(),
            id,
            established: true,
        })
    }
}

/// One refusal under way ([`Admit::Full`]); dropping it ends it.
#[derive(Debug)]
pub struct Refusing {
    admission: Arc<Admission>,
}

impl Drop for Refusing {
    fn drop(&mut self) {
        self.admission.lock().refusing -= 1;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut slots = self.admission.lock();
        if self.established {
            slots.established -= 1;
        } else {
            slots.pending.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(admit: Admit) -> Slot {
        match admit {
            Admit::Slot(s) => s,
            other => panic!("{other:?}"),
        }
    }

    /// RFC 6455 section 4.2.2 lets a server refuse before the upgrade with
    /// any HTTP status; ours is a whole 503 response naming the limit.
    #[test]
    fn rfc6455_4_2_2_a_full_server_refuses_with_a_whole_503() {
        let refusal = String::from_utf8(Admission::refusal().to_bytes()).unwrap();
        assert!(refusal.starts_with("HTTP/1.1 503 "), "{refusal}");
        assert!(refusal.contains("connection limit"), "{refusal}");
        assert!(refusal.contains("\r\n\r\n"), "{refusal}");
    }

    /// Each WebSocket of a multiplexed connection counts: the first holds
    /// the connection's slot, each other one a slot of its own while one
    /// is free, and none is taken from a handshake under way.
    #[test]
    fn rfc8441_each_websocket_on_one_connection_takes_a_slot() {
        let admission = Arc::new(Admission::new(3));
        let mut connection = slot(admission.admit());
        assert!(connection.established());
        let second = connection.another().expect("a free slot");
        let pending = slot(admission.admit());
        assert_eq!(admission.counts(), (1, 2));
        assert!(connection.another().is_none(), "taken from a handshake");
        drop(pending);
        let third = connection.another().expect("freed by the handshake");
        assert_eq!(admission.counts(), (0, 3));
        assert!(connection.another().is_none());
        drop((second, third));
        assert_eq!(admission.counts(), (0, 1));
    }

    #[test]
    fn a_new_client_takes_the_oldest_handshakes_slot_when_all_are_taken() {
        let admission = Arc::new(Admission::new(3));
        let a = slot(admission.admit());
        let b = slot(admission.admit());
        let mut c = slot(admission.admit());
        assert!(c.established());
        assert_eq!(admission.counts(), (2, 1));
        // full: the oldest in its handshake (a) gives way
        let Admit::InPlaceOf(mut d, gone) = admission.admit() else {
            panic!("a slot in place of the oldest handshake")
        };
        assert_eq!(gone, a.id());
        assert_eq!(admission.counts(), (2, 1));
        // a's handshake completing now is too late
        let mut a = a;
        assert!(!a.established());
        drop(a);
        assert_eq!(
            admission.counts(),
            (2, 1),
            "a's slot was already counted out"
        );
        assert!(d.established());
        let Admit::InPlaceOf(e, gone) = admission.admit() else {
            panic!("b gives way")
        };
        assert_eq!(gone, b.id());
        drop(b);
        let mut e = e;
        assert!(e.established());
        // every slot established: refused
        assert!(matches!(admission.admit(), Admit::Full(_)));
        drop(c);
        assert_eq!(admission.counts(), (0, 2));
        let f = slot(admission.admit());
        assert_eq!(admission.counts(), (1, 2));
        drop((d, e, f));
        assert_eq!(admission.counts(), (0, 0));
    }

    /// A full server's refusals are bounded: past `max_refusing` under
    /// way, a new client is shed (closed unanswered) until one ends, so a
    /// flood of clients holds no more than that many sockets besides the
    /// connections.
    #[test]
    fn refusals_under_way_are_bounded_and_past_them_clients_are_shed() {
        let admission = Arc::new(Admission::new(1).max_refusing(2));
        let mut only = slot(admission.admit());
        assert!(only.established());
        let Admit::Full(a) = admission.admit() else {
            panic!("the first refusal")
        };
        let Admit::Full(b) = admission.admit() else {
            panic!("the second refusal")
        };
        assert_eq!(admission.refusing(), 2);
        for _ in 0..3 {
            assert!(matches!(admission.admit(), Admit::Shed));
        }
        assert_eq!(admission.refusing(), 2, "a shed client holds nothing");
        drop(a);
        assert_eq!(admission.refusing(), 1);
        let Admit::Full(c) = admission.admit() else {
            panic!("room for a refusal again")
        };
        drop((b, c));
        assert_eq!(admission.refusing(), 0);
        // a slot free again: served, not refused
        drop(only);
        assert!(matches!(admission.admit(), Admit::Slot(_)));
        // refusing none: every client past the limit is shed
        let none = Arc::new(Admission::new(1).max_refusing(0));
        let mut held = slot(none.admit());
        assert!(held.established());
        assert!(matches!(none.admit(), Admit::Shed));
    }
}
