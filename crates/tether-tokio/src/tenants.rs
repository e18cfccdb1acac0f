//! The WebSockets open on one multiplexed connection (HTTP/2, HTTP/3),
//! counted for the server's accept loop, which asks the client to go away,
//! and lets the connection go, when the core says
//! ([`tether::upgrade::Vacancy`]).
//!
//! Owns the count and the wake-up when it falls to zero; the rule, and
//! every wait, are the core's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tether::upgrade::{Vacancy, VacancyStep};
use tokio::sync::Notify;

/// The WebSockets open on one connection.
#[derive(Debug, Default)]
pub(crate) struct Tenants {
    open: AtomicUsize,
    /// The last one ended.
    emptied: Notify,
}

/// One open WebSocket, held by its transport: its drop ends the tenancy.
#[derive(Debug)]
pub(crate) struct Tenant(Arc<Tenants>);

impl Tenants {
    /// A WebSocket opens on the connection at `now`: the connection is no
    /// longer vacant (told at once, not at the next wait: the WebSocket may
    /// end before then).
    pub(crate) fn admit(
        self: &Arc<Self>,
        vacancy: &mut Vacancy,
        now: std::time::Instant,
    ) -> Tenant {
        let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        vacancy.tenants(open, now);
        Tenant(Arc::clone(self))
    }

    /// Resolves with the core's step once its deadline has come (the
    /// client is to go away, or be let go), following the count
    /// meanwhile; `also` counts as open too while this waits (requests
    /// still in their handshake). Cancel-safe: the count is looked at
    /// again each time.
    pub(crate) async fn vacant(&self, vacancy: &mut Vacancy, also: usize) -> VacancyStep {
        loop {
            // armed before the count is read: an end in between is not missed
            let emptied = self.emptied.notified();
            let now = tokio::time::Instant::now().into_std();
            vacancy.tenants(self.open.load(Ordering::Acquire) + also, now);
            match vacancy.step(now) {
                VacancyStep::Wait => {}
                step => return step,
            }
            match vacancy.deadline() {
                Some(deadline) => {
                    tokio::select! {
                        () = emptied => {}
                        () = tokio::time::sleep_until(deadline.into()) => {}
                    }
                }
                None => emptied.await,
            }
        }
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.emptied.notify_waiters();
        }
    }
}
