//! `tether serve --mode broadcast`: greet each client, relay each text
//! message to every client as `echo <text>` (binary as is).
//!
//! Owns the [`Hub`], a registry of per-client queues bounded in bytes.
//! Publishing never waits: a client whose queue would pass its bound is too
//! slow to keep up, so it is removed from the hub and closed with 1008
//! (policy violation) instead of holding up the others or growing memory
//! without bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tether::{CloseCode, CloseInfo, Event, Message};
use tether_tokio::{WsSink, WsStream};
use tokio::sync::{Notify, mpsc, watch};

use crate::serve::{SHUTDOWN_REASON, close_and_drain, shutting_down};
use crate::unclean;

/// The first message every client gets.
pub(crate) const GREETING: &str = "connection established";

/// Every connected client's queue.
#[derive(Debug)]
pub(crate) struct Hub {
    clients: Mutex<HashMap<u64, Client>>,
    next_id: AtomicU64,
    /// Bytes of messages that may wait for one client (one always fits).
    queue_bytes: usize,
}

#[derive(Debug)]
struct Client {
    peer: SocketAddr,
    tx: mpsc::UnboundedSender<Message>,
    /// Bytes of messages in `tx` not yet taken by the client's writer.
    queued: Arc<AtomicUsize>,
    /// Woken when the client is dropped for being too slow.
    kick: Arc<Notify>,
}

/// A client's place in the hub; leaving is dropping it.
struct Membership<'a> {
    hub: &'a Hub,
    id: u64,
}

impl Drop for Membership<'_> {
    fn drop(&mut self) {
        self.hub.lock().remove(&self.id);
    }
}

impl Hub {
    /// A hub where each client may have `queue_bytes` of messages waiting.
    pub(crate) fn new(queue_bytes: usize) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            queue_bytes: queue_bytes.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Client>> {
        // the map stays consistent even if a holder panicked
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a client whose queue starts with the greeting.
    fn join(&self, peer: SocketAddr) -> (Membership<'_>, Queue, Arc<Notify>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let greeting = Message::text(GREETING);
        let queued = Arc::new(AtomicUsize::new(cost(&greeting)));
        let _ = tx.send(greeting);
        let kick = Arc::new(Notify::new());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            Client {
                peer,
                tx,
                queued: queued.clone(),
                kick: kick.clone(),
            },
        );
        (Membership { hub: self, id }, Queue { rx, queued }, kick)
    }

    /// Queues `message` for every client, without waiting. A client whose
    /// queue would pass its bound is removed and told to close.
    fn publish(&self, message: &Message) {
        let len = cost(message);
        self.lock().retain(|_, client| {
            let waiting = client.queued.load(Ordering::Acquire);
            if waiting > 0 && waiting.saturating_add(len) > self.queue_bytes {
                tracing::warn!(
                    peer = %client.peer,
                    "client too slow ({waiting} bytes waiting, --queue-bytes {}): closing it with {}",
                    self.queue_bytes,
                    CloseCode::POLICY_VIOLATION
                );
                client.kick.notify_one();
                return false;
            }
            client.queued.fetch_add(len, Ordering::AcqRel);
            client.tx.send(message.clone()).is_ok()
        });
    }
}

/// What a queued message weighs against `--queue-bytes`: its payload and
/// its place in the queue ([`tether::Event::OVERHEAD`], as the core counts
/// unread events), so empty messages cannot pile up for free.
fn cost(message: &Message) -> usize {
    message.len() + tether::Event::OVERHEAD
}

/// One client's queue, as its writer takes from it.
struct Queue {
    rx: mpsc::UnboundedReceiver<Message>,
    queued: Arc<AtomicUsize>,
}

impl Queue {
    async fn recv(&mut self) -> Option<Message> {
        let message = self.rx.recv().await?;
        self.queued.fetch_sub(cost(&message), Ordering::AcqRel);
        Some(message)
    }

    fn try_recv(&mut self) -> Option<Message> {
        let message = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(cost(&message), Ordering::AcqRel);
        Some(message)
    }
}

/// Why this client's writer stopped.
enum Stop {
    /// The server shuts down: close with 1001.
    Shutdown,
    /// The client fell behind: close with 1008.
    TooSlow,
    /// The connection is ending by itself.
    Ended,
}

/// Serves one client of the hub until its connection ends; returns how.
pub(crate) async fn serve(
    mut sink: WsSink,
    mut stream: WsStream,
    peer: SocketAddr,
    hub: &Hub,
    shutdown: &mut watch::Receiver<bool>,
) -> CloseInfo {
    let (membership, mut queue, kick) = hub.join(peer);

    // relay what this client sends, until its connection ends
    let mut read = Box::pin(async {
        while let Some(event) = stream.next_event().await {
            match event {
                Event::Message(Message::Text(text)) => {
                    hub.publish(&Message::text(format!("echo {text}")));
                }
                Event::Message(binary @ Message::Binary(_)) => hub.publish(&binary),
                Event::Ping(_) | Event::Pong(_) => {}
                Event::Closed(info) => return info,
            }
        }
        unclean("the connection ended without a final event")
    });

    // deliver this client's queue, until something says stop
    let write = async {
        loop {
            let next = tokio::select! {
                biased;
                () = shutting_down(shutdown) => return Stop::Shutdown,
                () = kick.notified() => return Stop::TooSlow,
                next = queue.recv() => next,
            };
            // the hub dropped our sender: we were removed for being slow
            let Some(message) = next else {
                return Stop::TooSlow;
            };
            // the message first: it waits only while the client reads
            // nothing (then the shutdown or the kick ends the wait)
            tokio::select! {
                biased;
                sent = sink.send(message) => {
                    if let Err(e) = sent {
                        tracing::debug!(%peer, "not sent: {e}");
                        return Stop::Ended;
                    }
                }
                () = shutting_down(shutdown) => return Stop::Shutdown,
                () = kick.notified() => return Stop::TooSlow,
            }
        }
    };

    let stop = tokio::select! {
        info = &mut read => return info,
        stop = write => stop,
    };
    let (code, reason) = match stop {
        Stop::Shutdown => {
            // what waits for this client goes out first, as far as the
            // connection takes it without waiting: leaving the hub first,
            // so what other clients publish meanwhile does not join it (the
            // queue is bounded by --queue-bytes); at the first message the
            // connection has no room for, the rest stays unsent too (no
            // gap before the Close)
            drop(membership);
            let mut unsent = 0usize;
            while let Some(message) = queue.try_recv() {
                if unsent > 0
                    || !matches!(crate::serve::now_or_never(sink.send(message)), Some(Ok(())))
                {
                    unsent += 1;
                }
            }
            if unsent > 0 {
                tracing::info!(%peer, "shutting down: {unsent} message(s) not delivered (the client was not reading)");
            }
            (CloseCode::GOING_AWAY, SHUTDOWN_REASON)
        }
        Stop::TooSlow => (
            CloseCode::POLICY_VIOLATION,
            "too slow: messages were piling up",
        ),
        Stop::Ended => {
            // the core's timers bound the wait (Config::close_bound)
            return read.await;
        }
    };
    drop(read);
    close_and_drain(&mut sink, &mut stream, code, reason).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    /// At shutdown, what waits in a client's queue still goes out, in
    /// order, before the Close 1001 (it was dropped).
    #[tokio::test]
    async fn shutdown_delivers_what_waits_then_closes_1001() {
        use tether::Event;
        let (mut client, ws) = crate::serve::tests::pair().await;
        let hub = Arc::new(Hub::new(1 << 20));
        let (shutdown_tx, mut shutdown) = watch::channel(false);
        let serving = {
            let hub = hub.clone();
            tokio::spawn(async move {
                let (sink, stream) = ws.split();
                serve(sink, stream, peer(), &hub, &mut shutdown).await
            })
        };
        // joined once the greeting arrives
        match client.next_event().await {
            Some(Event::Message(m)) => assert_eq!(m, Message::text(GREETING)),
            other => panic!("{other:?}"),
        }
        // queued, and the shutdown seen, before the writer runs again
        for i in 0..20 {
            hub.publish(&Message::text(format!("m{i}")));
        }
        shutdown_tx.send(true).unwrap();
        crate::serve::tests::texts_then_going_away(&mut client, 20).await;
        assert!(serving.await.unwrap().was_clean);
    }

    #[test]
    fn join_greets_and_publish_reaches_everyone() {
        let hub = Hub::new(1024);
        let (_a, mut qa, _) = hub.join(peer());
        let (_b, mut qb, _) = hub.join(peer());
        hub.publish(&Message::text("x"));
        for q in [&mut qa, &mut qb] {
            assert_eq!(q.try_recv().unwrap(), Message::text(GREETING));
            assert_eq!(q.try_recv().unwrap(), Message::text("x"));
        }
    }

    #[test]
    fn a_full_queue_is_kicked_and_the_others_keep_receiving() {
        // the greeting and two 9-byte messages fit, with their slots
        let hub = Hub::new(cost(&Message::text(GREETING)) + 2 * cost(&Message::text("message 0")));
        let (_slow, _slow_queue, slow_kick) = hub.join(peer());
        let (_fast, mut fast_queue, _) = hub.join(peer());
        assert!(fast_queue.try_recv().is_some());
        for i in 0..10 {
            hub.publish(&Message::text(format!("message {i}")));
            assert!(fast_queue.try_recv().is_some());
            assert_eq!(hub.lock().len(), if i < 2 { 2 } else { 1 }, "{i}");
        }
        assert_eq!(hub.lock().len(), 1);
        // the kick is kept as a permit, so a later `notified()` sees it
        let kicked = std::pin::pin!(slow_kick.notified());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(std::future::Future::poll(kicked, &mut cx).is_ready());
    }

    #[test]
    fn empty_messages_weigh_their_place_in_the_queue() {
        // a flood of empty binaries to a client that takes nothing: it is
        // kicked once their places pass the bound (they weighed nothing, so
        // its queue grew without one)
        let hub = Hub::new(64 << 10);
        let (_slow, _slow_queue, _) = hub.join(peer());
        let empty = Message::binary(Vec::new());
        let mut sent = 0;
        while hub.lock().len() == 1 && sent < 100_000 {
            hub.publish(&empty);
            sent += 1;
        }
        assert_eq!(hub.lock().len(), 0, "kept after {sent} empty messages");
        assert!(sent <= (64 << 10) / tether::Event::OVERHEAD + 1, "{sent}");
    }

    #[test]
    fn leaving_removes_the_client() {
        let hub = Hub::new(2);
        let (membership, _q, _) = hub.join(peer());
        assert_eq!(hub.lock().len(), 1);
        drop(membership);
        assert_eq!(hub.lock().len(), 0);
    }
}
