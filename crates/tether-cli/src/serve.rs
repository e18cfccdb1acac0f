//! `tether serve`: the accept loop, one task per connection, the echo mode,
//! and the orderly shutdown on Ctrl-C.
//!
//! Owns the listener and the lifetime of every connection task. The
//! broadcast mode's fan-out lives in [`crate::broadcast`]; this module only
//! hands it the socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use tether::handshake::Request;
use tether::{CloseCode, CloseInfo, Event};
use tether_tokio::{ServerOptions, WebSocket, WsSink, WsStream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broadcast::Hub;
use crate::cli::{Mode, ServeArgs};
use crate::stderr::say;
use crate::{Interrupts, unclean};

/// What the server says in its Close when it shuts down.
pub(crate) const SHUTDOWN_REASON: &str = "server shutting down";

/// Runs the server until Ctrl-C (or SIGTERM); returns the exit code.
pub(crate) async fn run(args: ServeArgs) -> ExitCode {
    if let Some(why) = args
        .connection
        .unused_keepalive_flags(crate::cli::KeepAliveMode::Ping)
    {
        say!("tether: {why}");
        return ExitCode::from(crate::exit::USAGE);
    }
    let listener = match TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            say!("tether: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or(args.addr);
    let client_roots = match crate::tls::client_roots(&args.client_ca) {
        Ok(roots) => roots,
        Err(e) => {
            say!("tether: {e}");
            return ExitCode::from(crate::exit::USAGE);
        }
    };
    let tls = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
        (Some(cert), Some(key), _) => match crate::tls::from_files(cert, key, &client_roots) {
            Ok(config) => Some(config),
            Err(e) => {
                say!("tether: {e}");
                return ExitCode::from(crate::exit::USAGE);
            }
        },
        (_, _, true) => match crate::tls::self_signed(&client_roots) {
            Ok((config, pem, fingerprint)) => {
                say!("tether: self-signed certificate for localhost, 127.0.0.1 and ::1");
                say!("tether:   SHA-256 fingerprint {fingerprint}");
                say!(
                    "tether:   trust it with: tether connect --ca {} wss://localhost:{}/",
                    pem.display(),
                    local.port()
                );
                Some(config)
            }
            Err(e) => {
                say!("tether: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ if !client_roots.is_empty() => {
            say!(
                "tether: --client-ca needs TLS: --tls-cert FILE --tls-key FILE or --tls-self-signed"
            );
            return ExitCode::from(crate::exit::USAGE);
        }
        _ => None,
    };
    if !client_roots.is_empty() {
        say!("tether: clients must present a certificate signed by --client-ca");
    }
    // --http3: QUIC on the UDP port of the same number (RFC 9220)
    let http3 = match crate::http3::bind(&args, local, tls.as_ref()) {
        Ok(endpoint) => endpoint,
        Err(code) => return code,
    };
    // with --http2 a TLS client may pick h2 by ALPN (RFC 9113 section 3.2)
    let tls = tls
        .map(|config| match args.http2 {
            true => crate::http2::with_alpn_h2(&config),
            false => config,
        })
        .map(tokio_rustls::TlsAcceptor::from);
    let budget = Arc::new(tether::Budget::new(
        usize::try_from(args.budget_bytes).unwrap_or(usize::MAX),
    ));
    let options = Arc::new(
        ServerOptions::new()
            .config(tether::Config {
                budget_timeout: args.budget_timeout,
                ..args.connection.server_config()
            })
            .budget(budget),
    );
    // the core ends every closing connection within this bound
    let grace = options.connection().shutdown_bound();
    let hub = match args.mode {
        Mode::Echo => None,
        Mode::Broadcast => Some(Arc::new(Hub::new(
            usize::try_from(args.queue_bytes).unwrap_or(usize::MAX),
        ))),
    };
    let mut interrupts = Interrupts::new();
    raise_descriptor_limit();
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let over = match (args.http2, args.http3) {
        (true, true) => ", HTTP/1.1, HTTP/2, and HTTP/3 on UDP",
        (true, false) => ", HTTP/1.1 and HTTP/2",
        (false, true) => ", HTTP/1.1, and HTTP/3 on UDP",
        (false, false) => "",
    };
    say!(
        "tether: listening on {scheme}://{local} ({}{over})",
        args.mode.name()
    );
    let max_connections = args.max_connections as usize;
    // the core decides who gets a slot (a slow handshake gives way to a
    // new client when all are taken)
    let admission = Arc::new(tether::Admission::new(max_connections));
    // every connection's task by its slot, TCP and QUIC alike: a new client
    // over either may take the slot of the oldest unfinished handshake
    let by_slot: Tasks = Arc::default();
    let mut by_task: HashMap<tokio::task::Id, u64> = HashMap::new();
    let mut limit = Episode::default();
    let mut shed = Episode::default();
    let mut displaced = Episode::default();
    let mut accept_errors = Episode::default();

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    if let Some(endpoint) = http3 {
        let serving = crate::http3::serve(
            endpoint,
            options.clone(),
            hub.clone(),
            shutdown_rx.clone(),
            (admission.clone(), by_slot.clone()),
        );
        tasks.spawn(serving);
    }
    loop {
        tokio::select! {
            () = interrupts.next() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Some(failed) = accept_errors.end() {
                        say!("tether: accepting again ({failed} accept(s) failed)");
                    }
                    let slot = match admission.admit() {
                        tether::Admit::Full(refusing) => {
                            if limit.begin() {
                                say!("tether: at --max-connections {max_connections}: new clients get 503");
                            }
                            let refusal = refuse_busy(stream, tls.clone(), args.http2, options.clone());
                            tokio::spawn(async move {
                                refusal.await;
                                drop(refusing);
                            });
                            continue;
                        }
                        tether::Admit::Shed => {
                            // as many refusals as the core allows are under
                            // way: this client's socket closes unanswered
                            if shed.begin() {
                                say!("tether: {} refusals under way: new clients are closed unanswered", tether::Admission::MAX_REFUSING);
                            }
                            drop(stream);
                            continue;
                        }
                        tether::Admit::InPlaceOf(slot, oldest) => {
                            if displaced.begin() {
                                say!("tether: at --max-connections {max_connections}: the oldest unfinished handshakes give way to new clients");
                            }
                            if let Some(task) = lock(&by_slot).remove(&oldest) {
                                task.abort();
                            }
                            slot
                        }
                        tether::Admit::Slot(slot) => {
                            // each episode ends on its own (clients may be
                            // shed while refusals of an earlier one run on)
                            let ended: Vec<String> = [
                                limit.end().map(|n| format!("{n} client(s) got 503")),
                                shed.end().map(|n| format!("{n} closed unanswered")),
                            ]
                            .into_iter()
                            .flatten()
                            .collect();
                            if !ended.is_empty() {
                                say!("tether: below --max-connections again ({})", ended.join(", "));
                            }
                            if let Some(gone) = displaced.end() {
                                say!("tether: {gone} unfinished handshake(s) gave way to new clients");
                            }
                            slot
                        }
                    };
                    let id = slot.id();
                    let task = connection(stream, peer, slot, tls.clone(), args.http2, options.clone(), hub.clone(), shutdown_rx.clone());
                    // spawned as it is: an `async move { task.await }`
                    // wrapper kept two copies of the future's size in the
                    // task (5.4 KiB more per idle connection)
                    let handle = tasks.spawn(task);
                    by_task.insert(handle.id(), id);
                    lock(&by_slot).insert(id, handle);
                }
                Err(e) => {
                    // e.g. out of file descriptors: back off instead of
                    // spinning, and say so once per episode
                    if accept_errors.begin() {
                        say!("tether: accept failed: {e} (backing off; said once until accepting works again)");
                    }
                    tokio::time::sleep(tether::Admission::ACCEPT_BACKOFF).await;
                }
            },
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                task_ended(&done, &mut by_task, &by_slot);
            }
        }
    }

    drop(listener);
    if !tasks.is_empty() {
        tracing::info!(
            "shutting down: closing {} connection(s) with {}",
            tasks.len(),
            CloseCode::GOING_AWAY
        );
    }
    let _ = shutdown.send(true);
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} });
    tokio::select! {
        finished = drained => {
            if finished.is_err() {
                tracing::warn!(
                    "{} connection(s) did not close within {grace:?}; dropping them",
                    tasks.len()
                );
            }
        }
        () = interrupts.next() => {
            tracing::warn!("interrupted again: exiting without waiting for the closes");
            return ExitCode::from(130);
        }
    }
    ExitCode::SUCCESS
}

/// A run of the same trouble (refusing at the connection limit, failing
/// accepts): reported when it begins and when it ends, with its count, and
/// not once per occurrence.
#[derive(Default)]
struct Episode {
    count: u64,
}

impl Episode {
    /// One more occurrence; true for the first of the episode.
    fn begin(&mut self) -> bool {
        self.count += 1;
        self.count == 1
    }

    /// The trouble is over: how many occurrences it had, if it had any.
    fn end(&mut self) -> Option<u64> {
        (self.count > 0).then(|| std::mem::take(&mut self.count))
    }
}

/// Answers a client past `--max-connections` with 503, before any upgrade,
/// in the protocol it speaks: over TLS when the server speaks it (a wss://
/// client read the plain 503 as a corrupt TLS record), and in HTTP/2 when
/// it chose that (by ALPN, or by its preface with `--http2`: it read an
/// HTTP/1.1 answer as a broken frame). Reads its request (up to its head's
/// end or 4 KiB), answers, then reads on for the client's end (so closing
/// does not reset the answer away) and closes, all within
/// `Admission::REFUSAL_TIME`.
async fn refuse_busy(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    http2: bool,
    options: Arc<ServerOptions>,
) {
    let exchange = async {
        match tls {
            None if http2 => {
                let mut stream = stream;
                let limit = tether::Admission::REFUSAL_TIME;
                let Ok((h2, first)) = crate::http2::read_preface(&mut stream, limit).await else {
                    return;
                };
                let stream = tether_tokio::Prefixed::new(first, stream);
                if h2 {
                    crate::http2::refuse(stream, &options).await;
                } else {
                    refuse_over(stream).await;
                }
            }
            None => refuse_over(stream).await,
            Some(acceptor) => {
                if let Ok(secured) = acceptor.accept(stream).await {
                    if secured.get_ref().1.alpn_protocol() == Some(crate::http2::ALPN_H2) {
                        crate::http2::refuse(secured, &options).await;
                    } else {
                        refuse_over(secured).await;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(tether::Admission::REFUSAL_TIME, exchange).await;
}

async fn refuse_over(mut stream: impl AsyncRead + AsyncWrite + Unpin) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = [0u8; 4096];
    let mut read = 0;
    while read < head.len() && !head[..read].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut head[read..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    let _ = stream
        .write_all(&tether::Admission::refusal().to_bytes())
        .await;
    // then, as every refused handshake (`tether::upgrade::Refusing`), read
    // on and drop what comes until the client's end, within the refusal's
    // time: closing with its bytes unread would reset the answer away
    if stream.shutdown().await.is_ok() {
        while let Ok(1..) = stream.read(&mut head).await {}
    }
}

/// Raises the soft limit on open descriptors to the hard limit, so a busy
/// server is bounded by `--max-connections` rather than by a low default.
fn raise_descriptor_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("open file limit: {n}"),
        Err(e) => tracing::debug!("cannot raise the open file limit: {e}"),
    }
}

/// A server's transport after TLS (or without it), boxed so one code path
/// serves both.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// What came before the upgrade: the transport for an HTTP/1.1 upgrade,
/// or an HTTP/2 connection whose first WebSocket is already accepted.
enum Before {
    Http1(Box<dyn Io>),
    Http2(Accepted),
}

/// What a connection's handshake gave: one WebSocket over HTTP/1.1, or an
/// HTTP/2 connection carrying any number.
enum Accepted {
    Http1(WebSocket, Request),
    /// An HTTP/2 connection and its first WebSocket.
    Http2(
        Box<tether_tokio::http2::Http2Server<Box<dyn Io>>>,
        WebSocket,
        Request,
    ),
}

/// The tasks of the connections holding a slot, by slot id.
pub(crate) type Tasks = Arc<std::sync::Mutex<HashMap<u64, tokio::task::AbortHandle>>>;

/// A connection's task ended: it no longer holds a slot (an abort means
/// its slot went to a newer client); a panic is logged.
pub(crate) fn task_ended(
    done: &Result<(tokio::task::Id, ()), tokio::task::JoinError>,
    by_task: &mut HashMap<tokio::task::Id, u64>,
    by_slot: &Tasks,
) {
    let task = match done {
        Ok((task, ())) => *task,
        Err(e) => e.id(),
    };
    if let Some(id) = by_task.remove(&task) {
        lock(by_slot).remove(&id);
    }
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!("a connection task panicked: {e}");
    }
}

/// The map of [`Tasks`], whatever a panic left it as.
pub(crate) fn lock(
    tasks: &Tasks,
) -> std::sync::MutexGuard<'_, HashMap<u64, tokio::task::AbortHandle>> {
    tasks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection's first WebSocket is answered only if its slot is still
/// its own (then it counts as established, before the answer leaves); if
/// the slot went to a newer client, 503.
pub(crate) fn established_or_refused(
    slot: &mut tether::Slot,
) -> Result<tether::handshake::AcceptOptions, tether::handshake::Refusal> {
    if slot.established() {
        Ok(tether::handshake::AcceptOptions::new())
    } else {
        // the slot already went to a newer client
        Err(tether::Admission::refusal())
    }
}

/// For one more WebSocket on a multiplexed connection (HTTP/2, HTTP/3)
/// whose first holds `slot`: a slot of its own, kept in `extra` for the
/// WebSocket's life, or 503 when none is free (each WebSocket counts
/// against `--max-connections`).
pub(crate) fn another_or_refused(
    slot: &tether::Slot,
    extra: &mut Option<tether::Slot>,
) -> Result<tether::handshake::AcceptOptions, tether::handshake::Refusal> {
    *extra = slot.another();
    if extra.is_some() {
        Ok(tether::handshake::AcceptOptions::new())
    } else {
        Err(tether::Admission::refusal())
    }
}

/// One connection: handshake, then echo or broadcast until it ends (over
/// HTTP/2, for every WebSocket on it).
#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    mut slot: tether::Slot,
    tls: Option<tokio_rustls::TlsAcceptor>,
    http2: bool,
    options: Arc<ServerOptions>,
    hub: Option<Arc<Hub>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    // on the heap and freed once done: the handshake's state (TLS, the
    // HTTP/2 preface check, the upgrade) would otherwise stay part of this
    // task for the connection's life
    // the whole handshake (TLS, the HTTP/2 preface, the upgrade) is one
    // deadline, `Config::handshake_timeout`, as the blocking adapter counts
    // a TLS stream's handshake in it
    let limit = options.connection().handshake_timeout;
    let deadline = tether_tokio::deadline_after(limit);
    let handshake = Box::pin(async {
        // what comes before the upgrade, within the deadline; the upgrade
        // counts the same deadline itself and, refused or too late,
        // answers and lingers for the client's end past it (the core's
        // `Refusing`), which a timeout around it would cut short
        let before = async {
            let (io, h2): (Box<dyn Io>, bool) = match tls {
                None if http2 => {
                    // prior knowledge, or an HTTP/1.1 request: the first bytes
                    // tell, and the handshake chosen reads them again
                    let mut stream = stream;
                    let (h2, first) = crate::http2::read_preface(&mut stream, limit).await?;
                    (Box::new(tether_tokio::Prefixed::new(first, stream)), h2)
                }
                None => (Box::new(stream), false),
                Some(acceptor) => {
                    let secured = tokio::time::timeout_at(deadline, acceptor.accept(stream))
                        .await
                        .map_err(|_| tether_tokio::tls::timed_out(limit))?
                        .map_err(tether_tokio::tls::accept_error)?;
                    let h2 = secured.get_ref().1.alpn_protocol() == Some(crate::http2::ALPN_H2);
                    (Box::new(secured), h2)
                }
            };
            let slot = &mut slot;
            if h2 {
                // its handshake ends with its first WebSocket, within the same
                // deadline: a connection that opens none holds its slot only
                // as an unfinished handshake (it took an established slot for
                // good before, so prefaces alone filled --max-connections);
                // the slot counts as established before the 200 leaves, as
                // below for the 101
                let mut server = tether_tokio::http2::Http2Server::handshake(io, &options).await?;
                loop {
                    match server.accept_with(|_| established_or_refused(slot)).await {
                        Some(Ok((ws, request))) => {
                            return Ok(Before::Http2(Accepted::Http2(
                                Box::new(server),
                                ws,
                                request,
                            )));
                        }
                        Some(Err(e)) => tracing::info!(%peer, "HTTP/2: {e}"),
                        None => {
                            return Err(tether_tokio::Error::Io(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "the HTTP/2 connection ended before its first WebSocket",
                            )));
                        }
                    }
                }
            }
            Ok::<_, tether_tokio::Error>(Before::Http1(io))
        };
        let before = tokio::time::timeout_at(deadline, before)
            .await
            .unwrap_or_else(|_| {
                Err(tether_tokio::Error::Handshake(
                    tether::upgrade::HandshakeError::Timeout(limit),
                ))
            })?;
        match before {
            Before::Http2(accepted) => Ok(accepted),
            Before::Http1(io) => {
                // the slot counts as established before the 101 leaves: a
                // client that has its 101 must never be displaced as an
                // unfinished handshake by the next one (with the marking
                // after the 101, a quick second client sometimes took the
                // first one's slot)
                let (ws, request) = tether_tokio::accept_within(io, &options, deadline, |_| {
                    established_or_refused(&mut slot)
                })
                .await?;
                Ok::<_, tether_tokio::Error>(Accepted::Http1(ws, request))
            }
        }
    });
    let accepted = tokio::select! {
        accepted = handshake => accepted,
        () = shutting_down(&mut shutdown) => return,
    };
    let accepted = match accepted {
        Ok(accepted) => accepted,
        Err(e) => {
            tracing::info!(%peer, "handshake failed: {e}");
            return;
        }
    };
    if !slot.established() {
        // its slot went to a newer client while the handshake finished
        return;
    }
    match accepted {
        Accepted::Http1(ws, request) => serve_socket(ws, &request, peer, hub, shutdown).await,
        // on the heap: the HTTP/2 connection's state would otherwise size
        // every connection's task
        Accepted::Http2(server, ws, request) => {
            Box::pin(crate::http2::serve(
                *server,
                (ws, request),
                (peer, &slot),
                hub,
                shutdown,
            ))
            .await
        }
    }
}

/// One WebSocket: echo or broadcast until it ends.
pub(crate) async fn serve_socket(
    ws: WebSocket,
    request: &Request,
    peer: SocketAddr,
    hub: Option<Arc<Hub>>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(%peer, resource = request.resource_name(), "connected");
    let (sink, stream) = ws.split();
    let info = match hub {
        None => echo(sink, stream, &mut shutdown).await,
        Some(hub) => {
            Box::pin(crate::broadcast::serve(
                sink,
                stream,
                peer,
                &hub,
                &mut shutdown,
            ))
            .await
        }
    };
    tracing::info!(%peer, "disconnected: {info}");
}

/// Sends every message back as it came, until the connection ends or the
/// server shuts down. Waits for each echo to be accepted before reading the
/// next message, so a client that does not read is slowed, not buffered.
/// At shutdown, what has already arrived is still echoed, as far as the
/// connection takes it without waiting (up to the read-ahead bound), then
/// the Close 1001 follows it.
async fn echo(
    mut sink: WsSink,
    mut stream: WsStream,
    shutdown: &mut watch::Receiver<bool>,
) -> CloseInfo {
    loop {
        let event = tokio::select! {
            biased;
            () = shutting_down(shutdown) => break,
            event = stream.next_event() => event,
        };
        match event {
            Some(Event::Message(message)) => {
                // the echo first: it waits only when the client reads
                // nothing (then the shutdown ends the wait)
                tokio::select! {
                    biased;
                    sent = sink.send(message) => {
                        if let Err(e) = sent {
                            // the connection is ending: its Closed event follows
                            tracing::debug!("echo not sent: {e}");
                        }
                    }
                    () = shutting_down(shutdown) => {
                        tracing::debug!("an echo not sent: shutting down");
                        break;
                    }
                }
            }
            Some(Event::Ping(payload)) => tracing::debug!("ping, {} bytes", payload.len()),
            Some(Event::Pong(payload)) => tracing::debug!("pong, {} bytes", payload.len()),
            Some(Event::Closed(info)) => return info,
            None => {
                return stream
                    .close_info()
                    .unwrap_or_else(|| unclean("the connection ended without a final event"));
            }
        }
    }
    if let Some(info) = echo_what_arrived(&mut sink, &mut stream).await {
        return info;
    }
    close_and_drain(
        &mut sink,
        &mut stream,
        CloseCode::GOING_AWAY,
        SHUTDOWN_REASON,
    )
    .await
}

/// Polls `future` once: its output when it is ready without waiting.
pub(crate) fn now_or_never<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// At shutdown: echoes the messages that have already arrived, each as far
/// as the connection takes it without waiting (a client that reads nothing
/// holds nothing up), at most `Config::max_unread_bytes` of them (its
/// default: `tether serve` keeps it), so a client that keeps sending does
/// not hold the shutdown. The connection's end, if it came meanwhile.
async fn echo_what_arrived(sink: &mut WsSink, stream: &mut WsStream) -> Option<CloseInfo> {
    let mut left = tether::Config::default().max_unread_bytes;
    let mut sent = 0usize;
    loop {
        // what is ready now, without waiting for the peer
        let Some(event) = now_or_never(stream.next_event()) else {
            break;
        };
        match event {
            Some(Event::Message(message)) => {
                left = left.saturating_sub(message.len() + 64);
                if !matches!(now_or_never(sink.send(message)), Some(Ok(()))) {
                    // no room now (dropped unsent), or ending: the rest
                    // stays unsent too, so no echo is skipped before the
                    // Close
                    tracing::info!(
                        "shutting down: {sent} echo(es) sent, the rest not (the client was not reading)"
                    );
                    break;
                }
                sent += 1;
                if left == 0 {
                    break;
                }
            }
            Some(Event::Closed(info)) => return Some(info),
            Some(Event::Ping(_) | Event::Pong(_)) => {}
            None => return stream.close_info(),
        }
    }
    None
}

/// Resolves once the server shuts down (or its shutdown sender is gone).
pub(crate) async fn shutting_down(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

/// Closes with `code`, reading (and dropping) whatever still arrives so the
/// peer's Close is not stuck behind unread messages, and returns how the
/// connection ended, within the core's `Config::close_bound`.
pub(crate) async fn close_and_drain(
    sink: &mut WsSink,
    stream: &mut WsStream,
    code: CloseCode,
    reason: &str,
) -> CloseInfo {
    let drain = async {
        while let Some(event) = stream.next_event().await {
            if let Event::Closed(info) = event {
                return Some(info);
            }
        }
        None
    };
    let both = async {
        let (closed, drained) = tokio::join!(sink.close(code, reason), drain);
        if let Err(e) = &closed {
            tracing::debug!("close refused: {e}");
        }
        drained.or(closed.ok())
    };
    // the core's timers bound the wait (Config::close_bound)
    both.await
        .unwrap_or_else(|| unclean("the connection ended without a final event"))
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tether::Message;

    /// A client and a server connected over an in-memory pipe.
    pub(crate) async fn pair() -> (WebSocket, WebSocket) {
        let (near, far) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(async move {
            let (ws, _) = tether_tokio::accept(far, &ServerOptions::new())
                .await
                .unwrap();
            ws
        });
        let (client, _) =
            tether_tokio::client(near, "ws://localhost/", &tether_tokio::ClientOptions::new())
                .await
                .unwrap();
        (client, server.await.unwrap())
    }

    /// What `client` reads next: the texts `m0` to `m{count - 1}` in
    /// order, then a clean close with 1001 (going away), as a server
    /// shutting down ends.
    pub(crate) async fn texts_then_going_away(client: &mut WebSocket, count: usize) {
        for i in 0..count {
            match client.next_event().await {
                Some(Event::Message(m)) => assert_eq!(m, Message::text(format!("m{i}"))),
                other => panic!("message {i}: {other:?}"),
            }
        }
        match client.next_event().await {
            Some(Event::Closed(info)) => {
                assert_eq!(info.code, CloseCode::GOING_AWAY);
                assert!(info.was_clean, "{info}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// At shutdown the messages that have already arrived are still
    /// echoed, in order, before the Close 1001 (they were dropped: the
    /// shutdown was looked at before them).
    #[tokio::test]
    async fn echo_at_shutdown_answers_what_already_arrived_then_closes_1001() {
        let (mut client, ws) = pair().await;
        for i in 0..20 {
            client.send(Message::text(format!("m{i}"))).await.unwrap();
        }
        // written: in the pipe before the shutdown is seen
        futures_util::SinkExt::flush(&mut client).await.unwrap();
        let (_tx, mut shutdown) = watch::channel(true);
        let (sink, stream) = ws.split();
        let server = tokio::spawn(async move { echo(sink, stream, &mut shutdown).await });
        texts_then_going_away(&mut client, 20).await;
        let info = server.await.unwrap();
        assert!(info.was_clean, "{info}");
    }
}
