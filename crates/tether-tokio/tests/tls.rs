//! wss:// with a certificate made in the test, and the two mix-ups
//! (wss:// to a plain server, ws:// to a TLS server) named plainly.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tether-std/tests/common/pki.rs"]
mod pki;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether::{CloseCode, Message};
use tether_tokio::{ClientOptions, ServerOptions};
use tokio::net::TcpListener;

fn certificate() -> (CertificateDer<'static>, Arc<rustls::ServerConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    (cert, Arc::new(config))
}

async fn tls_echo_server(listener: TcpListener, config: Arc<rustls::ServerConfig>) {
    let (tcp, _) = listener.accept().await.unwrap();
    let tls = tokio_rustls::TlsAcceptor::from(config)
        .accept(tcp)
        .await
        .unwrap();
    let (mut ws, _) = tether_tokio::accept(tls, &ServerOptions::default())
        .await
        .unwrap();
    while let Some(Ok(m)) = ws.next().await {
        let _ = ws.send(m).await;
    }
}

#[tokio::test]
async fn wss_round_trip_with_a_test_certificate() {
    let (cert, server_config) = certificate();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(tls_echo_server(listener, server_config));
    let options =
        ClientOptions::new().tls_config(tether_tokio::tls::client_config(&[cert]).unwrap());
    let url = format!("wss://localhost:{port}/secure");
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    ws.send(Message::text("over TLS")).await.unwrap();
    assert_eq!(
        within(ws.next()).await.unwrap().unwrap(),
        Message::text("over TLS")
    );
    let big = vec![42u8; 3 << 20];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(
        within(ws.next()).await.unwrap().unwrap().as_bytes(),
        &big[..]
    );
    assert!(
        within(ws.close(CloseCode::NORMAL, ""))
            .await
            .unwrap()
            .was_clean
    );
    within(server).await.unwrap();
}

#[tokio::test]
async fn wss_url_aimed_at_a_plain_server_names_the_cause() {
    let (listener, url) = listener().await;
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // a plain WebSocket server: reads the ClientHello as HTTP and refuses it
        let _ = tether_tokio::accept(tcp, &ServerOptions::default()).await;
    });
    let err = within(tether_tokio::connect(
        &url.replace("ws://", "wss://"),
        &ClientOptions::default(),
    ))
    .await
    .unwrap_err();
    let text = err.to_string();
    // the blocking adapter's words, quoting what the server answered
    assert!(
        text.starts_with("the server did not answer TLS: is it a plain ws:// server?"),
        "{text}"
    );
    assert!(text.contains("it answered \"HTTP/1.1 400"), "{text}");
}

/// Some plain servers reset the connection on a ClientHello: named as the
/// blocking adapter names it, not as a bare "connection reset".
#[tokio::test]
async fn wss_url_aimed_at_a_plain_server_that_resets_names_the_cause() {
    let (listener, url) = listener().await;
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut hello = [0u8; 1];
        let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut hello).await;
        // close with a reset (RST) rather than a FIN
        tcp.set_zero_linger().unwrap();
        drop(tcp);
    });
    let err = within(tether_tokio::connect(
        &url.replace("ws://", "wss://"),
        &ClientOptions::default(),
    ))
    .await
    .unwrap_err();
    let text = err.to_string();
    // the blocking adapter's words
    assert!(
        text.starts_with("the server did not answer TLS: is it a plain ws:// server?"),
        "{text}"
    );
}

#[tokio::test]
async fn ws_url_aimed_at_a_tls_server_names_the_cause() {
    let (_, server_config) = certificate();
    let (listener, url) = listener().await;
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = tokio_rustls::TlsAcceptor::from(server_config)
            .accept(tcp)
            .await;
    });
    let err = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("TLS") && text.contains("wss://"), "{text}");
}

/// A TLS echo server for one connection that requires client certificates
/// signed by `ca`; its task returns the TLS accept's error, if any.
async fn mutual_tls_server(
    ca: &pki::Ca,
) -> (
    u16,
    tokio::task::JoinHandle<Result<(), tether_tokio::Error>>,
) {
    let server = ca.server();
    let config = tether_tokio::tls::server_config(
        vec![server.cert.clone()],
        server.key(),
        Some(&[ca.der()]),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .map_err(tether_tokio::tls::accept_error)?;
        let (mut ws, _) = tether_tokio::accept(tls, &ServerOptions::default()).await?;
        while let Some(Ok(m)) = ws.next().await {
            let _ = ws.send(m).await;
        }
        Ok(())
    });
    (port, task)
}

#[tokio::test]
async fn rfc8446_4_4_2_client_certificate_of_the_required_ca_connects() {
    let ca = pki::Ca::new("tether client CA");
    let (port, server) = mutual_tls_server(&ca).await;
    let client = ca.client("alice");
    let options = ClientOptions::new()
        .add_root_certificate(ca.der())
        .client_certificate(vec![client.cert.clone()], client.key());
    let url = format!("wss://localhost:{port}/");
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    ws.send(Message::text("mutual")).await.unwrap();
    assert_eq!(
        within(ws.next()).await.unwrap().unwrap(),
        Message::text("mutual")
    );
    assert!(
        within(ws.close(CloseCode::NORMAL, ""))
            .await
            .unwrap()
            .was_clean
    );
    within(server).await.unwrap().unwrap();
}

#[tokio::test]
async fn rfc8446_4_4_2_no_client_certificate_is_refused_in_plain_words() {
    let ca = pki::Ca::new("tether client CA");
    let (port, server) = mutual_tls_server(&ca).await;
    let options = ClientOptions::new().add_root_certificate(ca.der());
    let url = format!("wss://localhost:{port}/");
    let err = within(tether_tokio::connect(&url, &options))
        .await
        .unwrap_err();
    assert!(matches!(err, tether_tokio::Error::Tls(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("the server requires a client certificate, and none was sent"),
        "{text}"
    );
    pki::assert_plain(&text);
    let refused = within(server).await.unwrap().unwrap_err().to_string();
    assert!(
        refused.contains("the client presented no certificate"),
        "{refused}"
    );
    pki::assert_plain(&refused);
}

#[tokio::test]
async fn rfc8446_4_4_2_client_certificate_of_another_ca_is_refused_in_plain_words() {
    let ca = pki::Ca::new("tether client CA");
    let (port, server) = mutual_tls_server(&ca).await;
    let stranger = pki::Ca::new("another CA").client("mallory");
    let options = ClientOptions::new()
        .add_root_certificate(ca.der())
        .client_certificate(vec![stranger.cert.clone()], stranger.key());
    let url = format!("wss://localhost:{port}/");
    let err = within(tether_tokio::connect(&url, &options))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("the peer does not trust the authority that signed our certificate"),
        "{text}"
    );
    pki::assert_plain(&text);
    let refused = within(server).await.unwrap().unwrap_err().to_string();
    assert!(
        refused.contains(
            "the client's certificate was rejected: it is not signed by an authority this server trusts"
        ),
        "{refused}"
    );
    pki::assert_plain(&refused);
}

/// A `wss://` server that accepts TCP and never answers the ClientHello:
/// reaching the server, TLS included, is the connect timeout's (as curl
/// counts it, and as the blocking adapter does), so the client gives up
/// after it, though its handshake timeout is far longer, with an error that
/// names the TLS handshake.
#[tokio::test]
async fn a_tls_handshake_that_never_finishes_is_bounded_by_the_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(tcp);
    });
    let options = ClientOptions::new()
        .connect_timeout(Duration::from_millis(300))
        .handshake_timeout(Duration::from_secs(30));
    let started = std::time::Instant::now();
    let err = within(tether_tokio::connect(
        &format!("wss://localhost:{port}/"),
        &options,
    ))
    .await
    .expect_err("connected to a server that never answered TLS");
    let took = started.elapsed();
    assert!(
        matches!(&err, tether_tokio::Error::Tls(text)
            if text.contains("the TLS handshake did not complete within 300ms")),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "gave up after {took:?}"
    );
    silent.abort();
}

/// RFC 6455 section 7.1.1 over TLS: a `wss://` server that sends a message
/// and its Close, then closes TCP without TLS's `close_notify` (as many
/// servers do: the closing handshake already says the data is complete),
/// ends the connection with its code, cleanly, as over plain TCP and as in
/// the blocking adapter: rustls' `UnexpectedEof` is the end of input
/// (`tether::read_error_is_eof`), not a transport failure (1006).
#[tokio::test]
async fn rfc6455_7_1_1_close_then_tcp_closed_without_close_notify_keeps_the_peers_code() {
    use bytes::BytesMut;
    use tether::frame::{FrameEncoder, OpCode, Role, Rsv};
    use tether::handshake::{AcceptOptions, Limits, Status, parse_request};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (cert, server_config) = certificate();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(server_config)
            .accept(tcp)
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        let request = loop {
            let n = tls.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the client left during the upgrade");
            head.extend_from_slice(&chunk[..n]);
            if let Status::Complete(request, _) = parse_request(&head, &Limits::default()).unwrap()
            {
                break request;
            }
        };
        tls.write_all(&request.accept(&AcceptOptions::new()).unwrap())
            .await
            .unwrap();
        let mut frames = BytesMut::new();
        let mut encoder = FrameEncoder::new(Role::Server, || [0; 4]);
        encoder.encode(true, Rsv::NONE, OpCode::Text, b"before", &mut frames);
        let close = [&4000u16.to_be_bytes()[..], b"bye"].concat();
        encoder.encode(true, Rsv::NONE, OpCode::Close, &close, &mut frames);
        tls.write_all(&frames).await.unwrap();
        tls.flush().await.unwrap();
        // TCP closed under TLS, no close_notify
        drop(tls);
        let _ = sent_tx.send(());
    });
    let options =
        ClientOptions::new().tls_config(tether_tokio::tls::client_config(&[cert]).unwrap());
    let url = format!("wss://localhost:{port}/");
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    within(sent_rx).await.unwrap();
    within(server).await.unwrap();
    // the message first, then the end: the peer's code, clean
    assert_eq!(
        within(ws.next()).await.unwrap().unwrap(),
        Message::text("before")
    );
    assert!(
        within(ws.next()).await.is_none(),
        "ended in error: {:?}",
        ws.close_info()
    );
    let info = ws.close_info().unwrap();
    assert_eq!(u16::from(info.code), 4000, "{info:?}");
    assert_eq!(info.reason, "bye");
    assert!(info.was_clean, "{info:?}");
}

/// `Config::send_timeout` ends a send the peer never takes over TLS, for
/// large messages and small, with both drivers: tokio-rustls takes the
/// last bytes into its buffer and its flush waits, so the core's queue is
/// empty while they wait; the driver tells the core
/// (`Connection::set_unflushed`), which counts them (the send waited for
/// ever).
#[tokio::test]
async fn rfc6455_10_4_the_send_timeout_ends_a_wss_send_the_peer_never_takes() {
    for driver in [tether_tokio::Driver::Shared, tether_tokio::Driver::Owner] {
        for size in [1 << 20, 1000] {
            let (cert, server_config) = certificate();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                let tls = tokio_rustls::TlsAcceptor::from(server_config)
                    .accept(tcp)
                    .await
                    .unwrap();
                let (ws, _) = tether_tokio::accept(tls, &ServerOptions::default())
                    .await
                    .unwrap();
                // reads nothing
                tokio::time::sleep(Duration::from_secs(4)).await;
                drop(ws);
            });
            let options = ClientOptions::new()
                .tls_config(tether_tokio::tls::client_config(&[cert]).unwrap())
                .driver(driver)
                .config(tether::Config {
                    send_timeout: Some(Duration::from_millis(300)),
                    ..tether::Config::default()
                });
            let url = format!("wss://localhost:{port}/");
            let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
            let payload = bytes::Bytes::from(vec![7u8; size]);
            let started = std::time::Instant::now();
            let err = tokio::time::timeout(Duration::from_secs(3), async {
                loop {
                    if let Err(e) = ws.send(Message::binary(payload.clone())).await {
                        return e;
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{driver:?} {size}: still sending"));
            let info = match &err {
                tether_tokio::Error::Closed(Some(info)) => info.clone(),
                _ => ws.close_info().unwrap_or_else(|| panic!("{err}")),
            };
            assert_eq!(
                info.code,
                CloseCode::ABNORMAL,
                "{driver:?} {size}: {info:?}"
            );
            assert!(
                info.reason.contains("send timeout"),
                "{driver:?} {size}: {info:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(3));
            server.abort();
        }
    }
}
