//! `connect` through real proxies (`ClientOptions::proxy`): tinyproxy (HTTP
//! CONNECT, RFC 9110 9.3.6, Basic credentials) and microsocks (SOCKS5, RFC
//! 1928, username/password RFC 1929), to a `ws://` and a `wss://` echo
//! server, byte for byte; and the refusals named.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/proxies.rs"]
mod proxies;

use std::net::TcpListener;
use std::time::Duration;

use common::{bounded, pattern};
use tether::handshake::proxy::{ProxyError, ProxyUrl};
use tether_std::rustls::{ServerConnection, StreamOwned};
use tether_std::{ClientOptions, CloseCode, Error, Message, ServerOptions, accept, connect};

/// An echo server on 127.0.0.1 for `connections` connections, over TLS
/// with `ca`'s certificate for localhost when given; returns its URL
/// (`ws://127.0.0.1:port/` or `wss://localhost:port/`).
fn echo_server(ca: Option<&pki::Ca>, connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = ca.map(|ca| {
        let leaf = ca.server();
        tether::tls::server_config(vec![leaf.cert.clone()], leaf.key(), None).unwrap()
    });
    let url = match tls {
        Some(_) => format!("wss://localhost:{port}/"),
        None => format!("ws://127.0.0.1:{port}/"),
    };
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let tls = tls.clone();
            std::thread::spawn(move || match tls {
                Some(config) => {
                    let stream = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
                    if let Ok((ws, _)) = accept(stream, &ServerOptions::new()) {
                        echo(ws);
                    }
                }
                None => {
                    if let Ok((ws, _)) = accept(tcp, &ServerOptions::new()) {
                        echo(ws);
                    }
                }
            });
        }
    });
    url
}

fn echo<S: tether_std::Transport>(mut ws: tether_std::WebSocket<S>) {
    while let Ok(message) = ws.read() {
        if ws.send(message).is_err() {
            return;
        }
    }
}

/// Sends text and a 1 MiB binary message through `options` to `url` and
/// checks the echoes byte for byte.
fn round_trip(url: &str, options: &ClientOptions) {
    let (mut ws, _) = connect(url, options).unwrap();
    for message in [
        Message::text("through the proxy"),
        Message::binary(pattern(1 << 20)),
    ] {
        ws.send(message.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), message);
    }
    assert!(ws.close(CloseCode::NORMAL, "").unwrap().was_clean);
}

fn through(proxy: &str) -> ClientOptions {
    ClientOptions::new()
        .proxy(ProxyUrl::parse(proxy).unwrap())
        .connect_timeout(Duration::from_secs(10))
}

#[test]
fn rfc9110_9_3_6_ws_and_wss_through_tinyproxy() {
    bounded(Duration::from_secs(60), || {
        let Some(proxy) = proxies::tinyproxy(None) else {
            return;
        };
        let ca = pki::Ca::new("tether proxy test CA");
        let options = through(&proxy.url("http", None));
        round_trip(&echo_server(None, 1), &options);
        let options = options.add_root_certificate(ca.der());
        round_trip(&echo_server(Some(&ca), 1), &options);
    });
}

#[test]
fn rfc7617_basic_credentials_through_tinyproxy_and_407_when_wrong() {
    bounded(Duration::from_secs(60), || {
        let Some(proxy) = proxies::tinyproxy(Some(("alice", "s3cret"))) else {
            return;
        };
        let url = echo_server(None, 1);
        round_trip(
            &url,
            &through(&proxy.url("http", Some(("alice", "s3cret")))),
        );
        // no credentials: 407, with the hint
        let err = connect(&url, &through(&proxy.url("http", None))).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Proxy(ProxyError::HttpRefused { status: 407, .. })
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with("the proxy refused CONNECT: 407 Proxy Authentication Required"),
            "{text}"
        );
        assert!(text.contains("http://user:password@host:port"), "{text}");
        // wrong credentials: tinyproxy 1.11 answers 401, named as such
        let credentials = Some(("alice", "wrong"));
        let err = connect(&url, &through(&proxy.url("http", credentials))).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Proxy(ProxyError::HttpRefused {
                    status: 401 | 407,
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("(it refused the user name and password)"),
            "{err}"
        );
    });
}

#[test]
fn rfc1928_ws_and_wss_through_microsocks_with_remote_and_local_dns() {
    bounded(Duration::from_secs(60), || {
        let Some(proxy) = proxies::microsocks(None) else {
            return;
        };
        let ca = pki::Ca::new("tether proxy test CA");
        let wss = echo_server(Some(&ca), 2);
        // socks5h://: the proxy resolves "localhost" (ATYP 3)
        let options = through(&proxy.url("socks5h", None)).add_root_certificate(ca.der());
        round_trip(&wss, &options);
        // socks5://: resolved here, an address sent (ATYP 1)
        let options = through(&proxy.url("socks5", None)).add_root_certificate(ca.der());
        round_trip(&wss, &options);
        round_trip(&echo_server(None, 1), &through(&proxy.url("socks5h", None)));
    });
}

#[test]
fn rfc1929_username_password_through_microsocks_and_refused_when_wrong() {
    bounded(Duration::from_secs(60), || {
        let Some(proxy) = proxies::microsocks(Some(("bob", "pw"))) else {
            return;
        };
        let url = echo_server(None, 1);
        round_trip(&url, &through(&proxy.url("socks5h", Some(("bob", "pw")))));
        let err =
            connect(&url, &through(&proxy.url("socks5h", Some(("bob", "nope"))))).unwrap_err();
        assert!(
            matches!(err, Error::Proxy(ProxyError::SocksAuthFailed(_))),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("SOCKS5 authentication failed"),
            "{err}"
        );
    });
}

#[test]
fn an_unreachable_proxy_is_named() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = through(&format!("http://127.0.0.1:{port}"));
    let err = connect("ws://example.invalid/", &options).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "cannot connect to the proxy http://127.0.0.1:{port}"
        )),
        "{err}"
    );
}
