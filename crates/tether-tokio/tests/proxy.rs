//! `connect` through real proxies (`ClientOptions::proxy`): tinyproxy (HTTP
//! CONNECT, RFC 9110 9.3.6) and microsocks (SOCKS5, RFC 1928 and 1929), to
//! `ws://` and `wss://` echo servers, byte for byte; the refusals named.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tether-std/tests/common/pki.rs"]
mod pki;
#[path = "../../tether-std/tests/common/proxies.rs"]
mod proxies;

use common::within;
use futures_util::StreamExt;
use tether::handshake::proxy::{ProxyError, ProxyUrl};
use tether::{CloseCode, Message};
use tether_tokio::{ClientOptions, Error, ServerOptions};
use tokio::net::TcpListener;

/// An echo server on 127.0.0.1, over TLS with `ca`'s certificate for
/// localhost when given; returns its URL.
async fn echo_server(ca: Option<&pki::Ca>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = ca.map(|ca| {
        let leaf = ca.server();
        tokio_rustls::TlsAcceptor::from(
            tether_tokio::tls::server_config(vec![leaf.cert.clone()], leaf.key(), None).unwrap(),
        )
    });
    let url = match tls {
        Some(_) => format!("wss://localhost:{port}/"),
        None => format!("ws://127.0.0.1:{port}/"),
    };
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let accepted = match tls {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => tether_tokio::accept(stream, &ServerOptions::new()).await,
                        Err(_) => return,
                    },
                    None => tether_tokio::accept(tcp, &ServerOptions::new()).await,
                };
                let Ok((mut ws, _)) = accepted else { return };
                while let Some(Ok(m)) = ws.next().await {
                    let _ = ws.send(m).await;
                }
            });
        }
    });
    url
}

async fn round_trip(url: &str, options: &ClientOptions) {
    let (mut ws, _) = within(tether_tokio::connect(url, options)).await.unwrap();
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    for message in [Message::text("through the proxy"), Message::binary(big)] {
        ws.send(message.clone()).await.unwrap();
        assert_eq!(within(ws.next()).await.unwrap().unwrap(), message);
    }
    assert!(
        within(ws.close(CloseCode::NORMAL, ""))
            .await
            .unwrap()
            .was_clean
    );
}

fn through(proxy: &str) -> ClientOptions {
    ClientOptions::new().proxy(ProxyUrl::parse(proxy).unwrap())
}

#[tokio::test]
async fn rfc9110_9_3_6_ws_and_wss_through_tinyproxy_with_credentials() {
    let Some(proxy) = proxies::tinyproxy(Some(("alice", "s3cret"))) else {
        return;
    };
    let ca = pki::Ca::new("tether proxy test CA");
    let options = through(&proxy.url("http", Some(("alice", "s3cret"))));
    round_trip(&echo_server(None).await, &options).await;
    let options = options.add_root_certificate(ca.der());
    round_trip(&echo_server(Some(&ca)).await, &options).await;
    // without credentials: 407, named
    let url = echo_server(None).await;
    let err = within(tether_tokio::connect(
        &url,
        &through(&proxy.url("http", None)),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Proxy(ProxyError::HttpRefused { status: 407, .. })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("the proxy refused CONNECT: 407 Proxy Authentication Required"),
        "{err}"
    );
}

#[tokio::test]
async fn rfc1928_rfc1929_wss_through_microsocks_and_a_wrong_password() {
    let Some(proxy) = proxies::microsocks(Some(("bob", "pw"))) else {
        return;
    };
    let ca = pki::Ca::new("tether proxy test CA");
    let wss = echo_server(Some(&ca)).await;
    for scheme in ["socks5h", "socks5"] {
        let options =
            through(&proxy.url(scheme, Some(("bob", "pw")))).add_root_certificate(ca.der());
        round_trip(&wss, &options).await;
    }
    let options = through(&proxy.url("socks5h", Some(("bob", "nope"))));
    let err = within(tether_tokio::connect(&wss, &options))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Proxy(ProxyError::SocksAuthFailed(_))),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("SOCKS5 authentication failed"),
        "{err}"
    );
}

/// A proxy that accepts TCP and never answers; its port.
async fn silent_proxy() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _conn = listener.accept().await;
        std::future::pending::<()>().await;
    });
    port
}

/// How connecting to `ws://example.invalid/` through `proxy` fails, with
/// a connect timeout of 300 ms.
async fn fails_through(proxy: &str) -> Error {
    let options = through(proxy).connect_timeout(std::time::Duration::from_millis(300));
    within(tether_tokio::connect("ws://example.invalid/", &options))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_silent_proxy_times_out_within_the_connect_timeout() {
    let port = silent_proxy().await;
    let err = fails_through(&format!("http://127.0.0.1:{port}")).await;
    assert!(
        matches!(err, Error::Proxy(ProxyError::TimedOut(_))),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("did not open the tunnel within"),
        "{err}"
    );
}

/// A proxy that never answers TCP (its listen queue full: the kernel drops
/// the SYNs) is unreachable once the connect timeout passes, as the
/// blocking adapter names it, not a proxy that was reached but "did not
/// open the tunnel".
#[tokio::test]
async fn a_proxy_that_never_answers_tcp_is_unreachable() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let port = listener.local_addr().unwrap().port();
    // fill the queue (never accepted): later SYNs go unanswered
    let mut queued = Vec::new();
    for _ in 0..4 {
        let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
        if let Ok(Ok(tcp)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), connect).await
        {
            queued.push(tcp);
        }
    }
    let err = fails_through(&format!("http://127.0.0.1:{port}")).await;
    assert!(
        matches!(&err, Error::Proxy(ProxyError::Unreachable { reason, .. }) if reason.contains("no answer within 300ms")),
        "{err:?}"
    );
    drop((listener, queued));
}

/// Through a `socks5://` proxy the target's name is resolved here; one
/// that does not resolve is named as a direct connection names it (and as
/// the blocking adapter does): `Error::Connect` with the host.
#[tokio::test]
async fn socks5_a_target_name_that_does_not_resolve_is_named() {
    let port = silent_proxy().await;
    let err = fails_through(&format!("socks5://127.0.0.1:{port}")).await;
    assert!(
        matches!(&err, Error::Connect { host, .. } if host == "example.invalid"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot connect to example.invalid port 80"),
        "{err}"
    );
}
