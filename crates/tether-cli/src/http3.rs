//! `--http3` on both commands: WebSockets over HTTP/3 (RFC 9220).
//!
//! Owns a client's choice of HTTP/3 (with its fallback to HTTP/1.1) and a
//! server's QUIC endpoint (UDP, on the port number of the TCP listener),
//! its loop over QUIC connections and over the WebSockets of each. Each
//! WebSocket is then served as over HTTP/1.1 ([`crate::serve::serve_socket`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use tether::handshake::Accepted;
use tether_tokio::http3::{Http3Client, Http3Server, quinn, server_endpoint};
use tether_tokio::{ClientOptions, Error, ServerOptions, WebSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broadcast::Hub;
use crate::cli::{ConnectArgs, ServeArgs};
use crate::serve::{
    Tasks, another_or_refused, established_or_refused, lock, serve_socket, shutting_down,
    task_ended,
};
use crate::stderr::say;

/// The client's connection: over HTTP/3 with `--http3` (falling back to
/// HTTP/1.1 when asked and the server cannot carry it), else as
/// [`crate::http2::connect`] decides.
pub(crate) async fn connect(
    args: &ConnectArgs,
    options: &ClientOptions,
    verbose: bool,
) -> Result<(WebSocket, Accepted), Error> {
    if !args.http3 {
        return crate::http2::connect(args, options, verbose).await;
    }
    let opened = async {
        let client = Http3Client::connect(&args.url, options).await?;
        client.open(&args.url, options).await
    };
    match opened.await {
        Ok(opened) => {
            if verbose {
                say!("tether: over HTTP/3 (QUIC, RFC 9220 extended CONNECT)");
            }
            Ok(opened)
        }
        Err(e) if args.http1_fallback && falls_back(&e) => {
            if verbose {
                say!("tether: {e}; falling back to HTTP/1.1");
            }
            tether_tokio::connect(&args.url, options).await
        }
        Err(e) => Err(e),
    }
}

/// Whether HTTP/1.1 may work where HTTP/3 did not: the server lacks
/// extended CONNECT, nothing answered over QUIC (no HTTP/3 there), or a
/// proxy was chosen (it carries TCP, not QUIC).
fn falls_back(e: &Error) -> bool {
    match e {
        Error::ExtendedConnectUnavailable(_)
        | Error::Proxy(tether::handshake::proxy::ProxyError::NotForQuic { .. }) => true,
        Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::ConnectionRefused
        ),
        _ => false,
    }
}

/// With `serve --http3`: the QUIC endpoint on UDP `local` (the TCP
/// listener's address), or the exit code after saying why not. `None`
/// without `--http3`.
pub(crate) fn bind(
    args: &ServeArgs,
    local: SocketAddr,
    tls: Option<&Arc<rustls::ServerConfig>>,
) -> Result<Option<quinn::Endpoint>, ExitCode> {
    if !args.http3 {
        return Ok(None);
    }
    let Some(tls) = tls else {
        say!(
            "tether: --http3 needs TLS (QUIC is always TLS 1.3, RFC 9001): \
             --tls-cert FILE --tls-key FILE or --tls-self-signed"
        );
        return Err(ExitCode::from(crate::exit::USAGE));
    };
    match server_endpoint(local, tls, &args.connection.server_config()) {
        Ok(endpoint) => Ok(Some(endpoint)),
        Err(e) => {
            say!("tether: cannot listen for HTTP/3 on UDP {local}: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Serves every QUIC connection of `endpoint` until shutdown, then waits
/// for their WebSockets to close (each closes with 1001 on shutdown).
pub(crate) async fn serve(
    endpoint: quinn::Endpoint,
    options: Arc<ServerOptions>,
    hub: Option<Arc<Hub>>,
    mut shutdown: watch::Receiver<bool>,
    (admission, by_slot): (Arc<tether::Admission>, Tasks),
) {
    let mut connections = JoinSet::new();
    let mut by_task: HashMap<tokio::task::Id, u64> = HashMap::new();
    loop {
        let incoming = tokio::select! {
            () = shutting_down(&mut shutdown) => break,
            incoming = endpoint.accept() => incoming,
            Some(done) = connections.join_next_with_id(), if !connections.is_empty() => {
                task_ended(&done, &mut by_task, &by_slot);
                continue;
            }
        };
        let Some(incoming) = incoming else { break };
        let peer = incoming.remote_address();
        // a QUIC connection counts against --max-connections as a TCP one
        // does (and each WebSocket after its first takes a slot of its
        // own): one in its handshake may give way to a
        // new client, and when every slot is established it is refused
        let slot = match admission.admit() {
            tether::Admit::Full(_refusing) => {
                // refused at once: the token ends with this arm
                tracing::info!(%peer, "at --max-connections: QUIC connection refused");
                incoming.refuse();
                continue;
            }
            tether::Admit::Shed => {
                tracing::info!(%peer, "at --max-connections: QUIC connection shed");
                incoming.ignore();
                continue;
            }
            tether::Admit::InPlaceOf(slot, oldest) => {
                if let Some(task) = lock(&by_slot).remove(&oldest) {
                    task.abort();
                }
                slot
            }
            tether::Admit::Slot(slot) => slot,
        };
        let id = slot.id();
        let (options, hub, shutdown) = (options.clone(), hub.clone(), shutdown.clone());
        let handle = connections.spawn(async move {
            match Http3Server::handshake(incoming, &options).await {
                Ok(server) => serve_connection(server, hub, shutdown, slot).await,
                Err(e) => tracing::info!(%peer, "QUIC/HTTP/3 handshake failed: {e}"),
            }
        });
        by_task.insert(handle.id(), id);
        lock(&by_slot).insert(id, handle);
    }
    while connections.join_next().await.is_some() {}
    // H3_NO_ERROR (RFC 9114 section 8.1)
    endpoint.close(0x100u32.into(), b"server shutting down");
}

/// Serves every WebSocket of one HTTP/3 connection until it ends. On
/// shutdown it asks the client to open no more (GOAWAY) and keeps driving
/// the connection while its WebSockets close.
async fn serve_connection(
    mut server: Http3Server,
    hub: Option<Arc<Hub>>,
    mut shutdown: watch::Receiver<bool>,
    mut slot: tether::Slot,
) {
    let peer = server.remote_address();
    let mut sockets = JoinSet::new();
    let mut going_away = false;
    let mut first = true;
    loop {
        let mut extra = None;
        let next = tokio::select! {
            // the connection then ends when the core says (`accept` says
            // `None`): its WebSockets served to their end, and the client
            // given its time to close it, so our last bytes reach it
            () = shutting_down(&mut shutdown), if !going_away => {
                going_away = true;
                if let Err(e) = server.shutdown().await {
                    tracing::debug!(%peer, "{e}");
                }
                continue;
            }
            Some(_) = sockets.join_next(), if !sockets.is_empty() => continue,
            // its first WebSocket establishes its slot, before the answer
            // leaves (a slot that went to a newer client: 503); each other
            // one takes a slot of its own (none free: 503)
            next = server.accept_with(|_| if first {
                established_or_refused(&mut slot)
            } else {
                another_or_refused(&slot, &mut extra)
            }) => next,
        };
        match next {
            None => break,
            Some(Ok((ws, request))) => {
                first = false;
                let (hub, shutdown) = (hub.clone(), shutdown.clone());
                sockets.spawn(async move {
                    serve_socket(ws, &request, peer, hub, shutdown).await;
                    drop(extra);
                });
            }
            Some(Err(e)) => tracing::info!(%peer, "HTTP/3: {e}"),
        }
    }
    while sockets.join_next().await.is_some() {}
    tracing::debug!(%peer, "HTTP/3 connection ended");
}
