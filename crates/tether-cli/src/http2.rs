//! `--http2` on both commands: WebSockets over HTTP/2 (RFC 8441).
//!
//! Owns the choice of protocol (a client's `--http2` with its fallback to
//! HTTP/1.1, a server's ALPN and prior-knowledge detection) and a server's
//! loop over the WebSockets of one HTTP/2 connection. Each WebSocket is
//! then served as over HTTP/1.1 ([`crate::serve::serve_socket`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tether::handshake::Accepted;
use tether_tokio::http2::{Http2Client, Http2Server};
use tether_tokio::{ClientOptions, Error, ServerOptions, WebSocket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::broadcast::Hub;
use crate::cli::ConnectArgs;
use crate::serve::{Io, another_or_refused, serve_socket, shutting_down};
use crate::stderr::say;

pub(crate) use tether_tokio::http2::ALPN_H2;

/// The client's connection: over HTTP/2 with `--http2` (falling back to
/// HTTP/1.1 when asked and the server cannot carry it), else HTTP/1.1.
pub(crate) async fn connect(
    args: &ConnectArgs,
    options: &ClientOptions,
    verbose: bool,
) -> Result<(WebSocket, Accepted), Error> {
    if !args.http2 {
        return tether_tokio::connect(&args.url, options).await;
    }
    let opened = async {
        let client = Http2Client::connect(&args.url, options).await?;
        client.open(&args.url, options).await
    };
    match opened.await {
        Ok(opened) => {
            if verbose {
                say!("tether: over HTTP/2 (RFC 8441 extended CONNECT)");
            }
            Ok(opened)
        }
        Err(Error::ExtendedConnectUnavailable(why)) if args.http1_fallback => {
            if verbose {
                say!("tether: {why}; falling back to HTTP/1.1");
            }
            tether_tokio::connect(&args.url, options).await
        }
        Err(e) => Err(e),
    }
}

/// The HTTP/2 connection preface a client with prior knowledge sends
/// first (RFC 9113 section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a cleartext client starts with the HTTP/2 preface (prior
/// knowledge) rather than an HTTP/1.1 request, and the bytes read to tell:
/// only as far as needed (the first byte that differs decides; an HTTP/1.1
/// request differs at its first), waiting for each as it arrives, for at
/// most `limit` (the handshake timeout) in all. The handshake chosen reads
/// those bytes first ([`tether_tokio::Prefixed`]).
///
/// # Errors
/// The read failed, or the client sent less than that within `limit`.
pub(crate) async fn read_preface(
    stream: &mut TcpStream,
    limit: Duration,
) -> Result<(bool, Vec<u8>), Error> {
    let deadline = tether_tokio::deadline_after(limit);
    let mut got = Vec::with_capacity(PREFACE.len());
    let mut buf = [0u8; PREFACE.len()];
    loop {
        let want = PREFACE.len() - got.len();
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf[..want]))
            .await
            .map_err(|_| {
                Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the client sent {} bytes and no request within the handshake timeout ({limit:?})",
                        got.len()
                    ),
                ))
            })??;
        got.extend_from_slice(&buf[..n]);
        if n == 0 || got[..] != PREFACE[..got.len()] {
            // ended, or not the preface: HTTP/1.1 (its handshake reports
            // what is wrong with it)
            return Ok((false, got));
        }
        if got.len() == PREFACE.len() {
            return Ok((true, got));
        }
    }
}

/// Answers an HTTP/2 client past `--max-connections`: every request it
/// makes gets 503, saying the server is at its connection limit, and the
/// first is followed by GOAWAY; the connection is driven until it ends
/// (the caller bounds the time).
pub(crate) async fn refuse<S>(io: S, options: &ServerOptions)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(mut server) = Http2Server::handshake_to_refuse(io, options).await else {
        return;
    };
    let _ = server
        .accept_with(|_| Err(tether::Admission::refusal()))
        .await;
    server.graceful_shutdown();
    // streams it opened before it saw the GOAWAY get the same answer
    while server
        .accept_with(|_| Err(tether::Admission::refusal()))
        .await
        .is_some()
    {}
}

/// A TLS server config that also offers HTTP/2 by ALPN, preferred.
pub(crate) fn with_alpn_h2(config: &Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    let mut config = (**config).clone();
    config.alpn_protocols = vec![ALPN_H2.to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serves every WebSocket of one HTTP/2 connection, `first` (the one its
/// handshake ended with, in the connection's `slot`) and the rest, each in
/// a slot of its own (503 when none is free), until it ends. On
/// shutdown it asks the client to open no more (GOAWAY) and keeps driving
/// the connection while its WebSockets close.
pub(crate) async fn serve(
    mut server: Http2Server<Box<dyn Io>>,
    first: (WebSocket, tether::handshake::Request),
    (peer, slot): (SocketAddr, &tether::Slot),
    hub: Option<Arc<Hub>>,
    mut shutdown: watch::Receiver<bool>,
) {
    {
        let (ws, request) = first;
        let (hub, shutdown) = (hub.clone(), shutdown.clone());
        tokio::spawn(async move {
            serve_socket(ws, &request, peer, hub, shutdown).await;
        });
    }
    let mut going_away = false;
    loop {
        let mut extra = None;
        let next = tokio::select! {
            () = shutting_down(&mut shutdown), if !going_away => {
                going_away = true;
                server.graceful_shutdown();
                continue;
            }
            next = server.accept_with(|_| another_or_refused(slot, &mut extra)) => next,
        };
        match next {
            None => break,
            Some(Ok((ws, request))) => {
                let (hub, shutdown) = (hub.clone(), shutdown.clone());
                tokio::spawn(async move {
                    serve_socket(ws, &request, peer, hub, shutdown).await;
                    drop(extra);
                });
            }
            Some(Err(e)) => tracing::info!(%peer, "HTTP/2: {e}"),
        }
    }
    tracing::debug!(%peer, "HTTP/2 connection ended");
}
