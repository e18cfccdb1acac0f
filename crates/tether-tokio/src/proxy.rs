//! Reaching the server through a proxy: the I/O of the exchange.
//!
//! Owns only the moving of bytes: TCP to the proxy, then the
//! [`ProxyConnect`] exchange (HTTP CONNECT or SOCKS5, its bytes and rules
//! in `tether::handshake::proxy`, shared with the blocking adapter) until
//! the tunnel is open. TLS and the WebSocket handshake then run over the
//! returned stream, as over a direct one.

use tether::connecting::{Pass, Remote};
use tether::handshake::WsUrl;
use tether::handshake::proxy::{ProxyConnect, ProxyError, ProxyUrl, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;

/// Bytes read per read from the proxy (its answer is bounded by the
/// exchange, `MAX_PROXY_HEAD`).
const PROXY_READ: usize = 1024;

/// A TCP stream to `url`'s host and port through `proxy`, tunnel open,
/// and the server's bytes that came with the proxy's answer
/// (`ProxyConnect::take_leftover`: an HTTP/2 server may speak first).
/// The caller bounds the whole by `reached` (the connect timeout,
/// `timeout`); a proxy that does not answer TCP by then is unreachable,
/// as the blocking adapter names it (one that answered but did not open
/// the tunnel is the caller's `ProxyError::TimedOut`). When `gated`, the
/// exchange starts only while no other connection to the remote is
/// connecting: its address when resolved here (`socks5://`), else its
/// name (the proxy resolves it); with the pass that says so.
pub(crate) async fn tunnel(
    proxy: &ProxyUrl,
    url: &WsUrl,
    (reached, timeout): (tokio::time::Instant, std::time::Duration),
    gated: bool,
) -> Result<(TcpStream, Vec<u8>, Option<Pass>), Error> {
    let unreachable = |e: std::io::Error| {
        Error::Proxy(ProxyError::Unreachable {
            proxy: proxy.to_string(),
            reason: e.to_string(),
        })
    };
    let connect = TcpStream::connect((proxy.host(), proxy.port()));
    let mut tcp = match tokio::time::timeout_at(reached, connect).await {
        Ok(connected) => connected.map_err(unreachable)?,
        Err(_) => {
            return Err(unreachable(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {timeout:?}"),
            )));
        }
    };
    let failed = |source| Error::Connect {
        host: url.host().to_owned(),
        port: url.port(),
        source,
    };
    let target = if proxy.resolves_locally() {
        // socks5:// resolves here (socks5h:// lets the proxy do it); a name
        // that does not resolve is named as a direct connection names it
        let addr = tokio::net::lookup_host((url.host(), url.port()))
            .await
            .map_err(failed)?
            .next()
            .ok_or_else(|| {
                failed(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the name resolved to no address",
                ))
            })?;
        Target::Ip(addr.ip(), url.port())
    } else {
        Target::Name(url.host().to_owned(), url.port())
    };
    let pass = if gated {
        let remote = Remote::from(&target);
        Some(
            crate::enter(&remote, (reached, timeout))
                .await
                .map_err(failed)?,
        )
    } else {
        None
    };
    let mut exchange = ProxyConnect::new(proxy, target).map_err(Error::Proxy)?;
    let mut buf = vec![0u8; PROXY_READ];
    loop {
        let out = exchange.take_output();
        if !out.is_empty() {
            tcp.write_all(&out).await?;
        }
        if exchange.is_done() {
            return Ok((tcp, exchange.take_leftover(), pass));
        }
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(Error::Proxy(exchange.eof()));
        }
        exchange
            .receive(buf.get(..n).unwrap_or_default())
            .map_err(Error::Proxy)?;
    }
}
