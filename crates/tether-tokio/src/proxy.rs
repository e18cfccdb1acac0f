//! Reaching the server through a proxy: the I/O of the exchange.
//!
//! Owns only the moving of bytes: TCP to the proxy, then the
//! [`ProxyConnect`] exchange (HTTP CONNECT or SOCKS5, its bytes and rules
//! in `tether::handshake::proxy`, shared with the blocking adapter) until
//! the tunnel is open. TLS and the WebSocket handshake then run over the
//! returned stream, as over a direct one.

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
pub(crate) async fn tunnel(proxy: &ProxyUrl, url: &WsUrl) -> Result<(TcpStream, Vec<u8>), Error> {
    let unreachable = |e: std::io::Error| {
        Error::Proxy(ProxyError::Unreachable {
            proxy: proxy.to_string(),
            reason: e.to_string(),
        })
    };
    let mut tcp = TcpStream::connect((proxy.host(), proxy.port()))
        .await
        .map_err(unreachable)?;
    let target = if proxy.resolves_locally() {
        // socks5:// resolves here (socks5h:// lets the proxy do it)
        let addr = tokio::net::lookup_host((url.host(), url.port()))
            .await?
            .next()
            .ok_or_else(|| {
                Error::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} resolved to no address", url.host()),
                ))
            })?;
        Target::Ip(addr.ip(), url.port())
    } else {
        Target::Name(url.host().to_owned(), url.port())
    };
    let mut exchange = ProxyConnect::new(proxy, target).map_err(Error::Proxy)?;
    let mut buf = vec![0u8; PROXY_READ];
    loop {
        let out = exchange.take_output();
        if !out.is_empty() {
            tcp.write_all(&out).await?;
        }
        if exchange.is_done() {
            return Ok((tcp, exchange.take_leftover()));
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
