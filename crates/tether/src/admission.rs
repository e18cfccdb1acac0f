//! A server's connection slots: how many clients it serves at once, and
//! what happens to a new one when they are all taken.
//!
//! Owns the count of connections, in two kinds: those still in their
//! opening handshake and those established. When every slot is taken, a new
//! client takes the slot of the oldest connection still in its handshake
//! (so clients that open connections and never finish the handshake, a
//! slowloris, hold slots only until real clients come); when every slot
//! holds an established connection, the new client is refused (an adapter
//! answers it 503). No I/O, no clock.

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use core::time::Duration;
use std::sync::Mutex;

/// A server's connection slots, shared by its accept loop and its
/// connections.
#[derive(Debug)]
pub struct Admission {
    max: usize,
    inner: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    next_id: u64,
    /// Connections in their handshake, by id (ids grow: the first is the
    /// oldest).
    pending: BTreeSet<u64>,
    established: usize,
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
    /// Every slot holds an established connection: refuse it (HTTP 503).
    Full,
}

impl Admission {
    /// How long a refused client ([`Admit::Full`]) may take to send its
    /// request head and read the 503 before its socket is closed: the
    /// refusal is answered after the request (closing with it unread
    /// could reset the answer away), and a refused slowloris holds a
    /// socket no longer than this.
    pub const REFUSAL_TIME: Duration = Duration::from_secs(1);

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

    /// At most `max` connections at once (at least one).
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            inner: Mutex::new(Slots::default()),
        }
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

    /// A new client arrived: a slot for it (in its handshake), possibly
    /// the oldest handshake's, or none.
    pub fn admit(self: &Arc<Self>) -> Admit {
        let mut slots = self.lock();
        let taken_from = if slots.pending.len() + slots.established < self.max {
            None
        } else {
            match slots.pending.pop_first() {
                Some(oldest) => Some(oldest),
                None => return Admit::Full,
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
        assert!(matches!(admission.admit(), Admit::Full));
        drop(c);
        assert_eq!(admission.counts(), (0, 2));
        let f = slot(admission.admit());
        assert_eq!(admission.counts(), (1, 2));
        drop((d, e, f));
        assert_eq!(admission.counts(), (0, 0));
    }
}
