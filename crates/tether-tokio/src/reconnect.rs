//! A client that reconnects on *close*, driven by the core's sans-IO
//! [`ReconnectPolicy`].
//!
//! Owns the supervisor task: connect, forward messages both ways, and when
//! the connection ends, ask the policy whether and when to come back.
//! Messages sent while disconnected wait in a bounded queue and go out, in
//! order, once connected; over the bound they are refused with an error,
//! never dropped silently.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tether::reconnect::{Decision, ReconnectPolicy, Reconnector, StopReason};
pub use tether::reconnect::{Lifecycle, ReconnectEvent};
use tether::{CloseCode, CloseInfo, Event, Message};
use tokio::sync::{Notify, mpsc};

use crate::{ClientOptions, Error};

/// How a reconnecting client behaves.
#[derive(Clone, Debug, Default)]
pub struct ReconnectOptions {
    /// How each connection is made.
    pub client: ClientOptions,
    /// When to reconnect and how long to wait.
    pub policy: ReconnectPolicy,
    /// Messages kept while disconnected; `0` refuses sends while
    /// disconnected. Default 0 (refuse).
    pub max_queued_messages: usize,
}

/// While connected, sends wait here only until the supervisor hands them to
/// the connection (whose own output limit applies); this bounds that wait.
const HANDOVER_LIMIT: usize = 1024;

#[derive(Debug)]
struct Outbox {
    /// Messages waiting, and whether a connection is up.
    queue: Mutex<(VecDeque<Message>, bool)>,
    /// The supervisor has stopped: sends are refused.
    stopped: std::sync::atomic::AtomicBool,
    notify: Notify,
    limit: usize,
}

/// A client that reconnects after every close its policy allows.
/// [`ReconnectingClient::next`] is cancel-safe.
#[derive(Debug)]
pub struct ReconnectingClient {
    events: mpsc::Receiver<ReconnectEvent>,
    outbox: Arc<Outbox>,
    close: mpsc::Sender<(CloseCode, String)>,
}

impl ReconnectingClient {
    /// Starts connecting to `url` in the background.
    pub fn connect(url: &str, options: ReconnectOptions) -> Self {
        let (ev_tx, events) = mpsc::channel(options.client.channel_capacity.max(1));
        let (close, close_rx) = mpsc::channel(1);
        let outbox = Arc::new(Outbox {
            queue: Mutex::new((VecDeque::new(), false)),
            stopped: std::sync::atomic::AtomicBool::new(false),
            notify: Notify::new(),
            limit: options.max_queued_messages,
        });
        tokio::spawn(supervise(
            url.to_string(),
            options,
            ev_tx,
            outbox.clone(),
            close_rx,
        ));
        Self {
            events,
            outbox,
            close,
        }
    }

    /// Sends a message: at once when connected, queued while disconnected
    /// (up to `max_queued_messages`).
    ///
    /// # Errors
    /// [`Error::QueueFull`] when disconnected and the queue is full (or
    /// queueing is off); [`Error::Closed`] after the client stopped (see
    /// `take_queued`).
    pub fn send(&self, message: Message) -> Result<(), Error> {
        if self
            .outbox
            .stopped
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(Error::Closed(None));
        }
        let mut guard = self.outbox.queue.lock().map_err(|_| Error::Closed(None))?;
        let (queue, connected) = &mut *guard;
        // while connected, the queue only holds what is being handed over
        let limit = if *connected {
            self.outbox.limit.max(HANDOVER_LIMIT)
        } else {
            self.outbox.limit
        };
        if queue.len() >= limit {
            return Err(Error::QueueFull {
                queued: queue.len(),
                limit,
                connected: *connected,
            });
        }
        queue.push_back(message);
        drop(guard);
        self.outbox.notify.notify_one();
        Ok(())
    }

    /// Messages waiting to be sent.
    pub fn queued(&self) -> usize {
        self.outbox.queue.lock().map_or(0, |q| q.0.len())
    }

    /// Takes back the messages that were queued but never sent (e.g. after
    /// the client stopped).
    pub fn take_queued(&self) -> Vec<Message> {
        self.outbox
            .queue
            .lock()
            .map(|mut q| q.0.drain(..).collect())
            .unwrap_or_default()
    }

    /// The next message or lifecycle event; `None` after `Stopped`.
    pub async fn next(&mut self) -> Option<ReconnectEvent> {
        self.events.recv().await
    }

    /// Closes the current connection (if any) and stops reconnecting.
    pub async fn close(&self, code: CloseCode, reason: &str) {
        let _ = self.close.send((code, reason.to_string())).await;
    }
}

impl futures_core::Stream for ReconnectingClient {
    type Item = ReconnectEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

fn set_connected(outbox: &Outbox, connected: bool) {
    if let Ok(mut q) = outbox.queue.lock() {
        q.1 = connected;
    }
}

async fn supervise(
    url: String,
    options: ReconnectOptions,
    events: mpsc::Sender<ReconnectEvent>,
    outbox: Arc<Outbox>,
    close_rx: mpsc::Receiver<(CloseCode, String)>,
) {
    run(url, options, events.clone(), outbox.clone(), close_rx).await;
    outbox
        .stopped
        .store(true, std::sync::atomic::Ordering::Release);
}

async fn run(
    url: String,
    options: ReconnectOptions,
    events: mpsc::Sender<ReconnectEvent>,
    outbox: Arc<Outbox>,
    mut close_rx: mpsc::Receiver<(CloseCode, String)>,
) {
    let mut reconnector = Reconnector::new(options.policy.clone());
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
    let mut attempt = 0u32;
    let emit = |e: Lifecycle| {
        let events = events.clone();
        async move {
            tracing::debug!(event = ?e, "reconnecting client");
            let _ = events.send(ReconnectEvent::Lifecycle(e)).await;
        }
    };
    loop {
        let decision = match crate::connect(&url, &options.client).await {
            Ok((ws, _)) => {
                reconnector.connected(tokio::time::Instant::now().into_std());
                set_connected(&outbox, true);
                emit(Lifecycle::Connected { attempt }).await;
                let (mut sink, mut stream) = ws.split();
                let mut closing = false;
                let info = loop {
                    // hand over what is queued, in order; keep it if the connection refuses
                    loop {
                        let next = outbox.queue.lock().ok().and_then(|q| q.0.front().cloned());
                        let Some(message) = next else { break };
                        if sink.send(message).await.is_err() {
                            break;
                        }
                        if let Ok(mut q) = outbox.queue.lock() {
                            q.0.pop_front();
                        }
                    }
                    tokio::select! {
                        event = stream.next_event() => match event {
                            Some(Event::Message(m)) => {
                                let _ = events.send(ReconnectEvent::Message(m)).await;
                            }
                            Some(Event::Closed(info)) => break info,
                            Some(_) => {}
                            None => break stream
                                .close_info()
                                .unwrap_or_else(|| CloseInfo::abnormal("the connection ended")),
                        },
                        () = outbox.notify.notified() => {}
                        cmd = close_rx.recv(), if !closing => {
                            closing = true;
                            let (code, reason) = cmd.unwrap_or((CloseCode::NORMAL, String::new()));
                            let _ = sink.close(code, &reason).await;
                        }
                    }
                };
                set_connected(&outbox, false);
                emit(Lifecycle::Disconnected(info.clone())).await;
                let now = tokio::time::Instant::now().into_std();
                if closing {
                    // we asked to close: even if the peer's Close crossed ours
                    reconnector.application_closed(now, &mut rng)
                } else {
                    reconnector.closed(&info, now, &mut rng)
                }
            }
            Err(e) => {
                emit(Lifecycle::ConnectFailed(format!("{url}: {e}"))).await;
                // a refusal asking again cannot change stops (the core decides)
                match &e {
                    Error::Handshake(h) if let Some(status) = h.refused_status() => {
                        reconnector.refused(status, &mut rng)
                    }
                    _ => reconnector.failed(&mut rng),
                }
            }
        };
        match decision {
            Decision::Reconnect {
                attempt: next,
                delay,
            } => {
                attempt = next;
                emit(Lifecycle::Reconnecting { attempt, delay }).await;
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = close_rx.recv() => {
                        emit(Lifecycle::Stopped(StopReason::ApplicationClosed)).await;
                        return;
                    }
                }
            }
            Decision::Stop(reason) => {
                emit(Lifecycle::Stopped(reason)).await;
                return;
            }
        }
    }
}
