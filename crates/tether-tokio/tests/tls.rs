//! wss:// with a certificate made in the test, and the two mix-ups
//! (wss:// to a plain server, ws:// to a TLS server) named plainly.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

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
    assert!(text.contains("plain ws:// server"), "{text}");
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
