//! QUIC test helpers for the HTTP/3 tests: a self-signed certificate
//! and a raw QUIC client speaking h3's ALPN. Include it with
//! `#[path = "common/quic.rs"] mod quic;` (it needs the `http3` feature).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::common::within;

/// A certificate for `localhost`, and a TLS 1.3 server config with it.
pub fn certificate() -> (CertificateDer<'static>, Arc<rustls::ServerConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    (cert, Arc::new(config))
}

/// An HTTP/3 server endpoint on a free UDP port of 127.0.0.1 with a new
/// certificate for `localhost`, the library's default QUIC settings: the
/// certificate (for clients to trust), the endpoint and its port.
pub fn local_server() -> (CertificateDer<'static>, quinn::Endpoint, u16) {
    let (cert, tls) = certificate();
    let endpoint = tether_tokio::http3::server_endpoint(
        "127.0.0.1:0".parse().unwrap(),
        &tls,
        &tether::Config::default(),
    )
    .unwrap();
    let port = endpoint.local_addr().unwrap().port();
    (cert, endpoint, port)
}

/// A QUIC connection speaking h3 (ALPN) to 127.0.0.1:`port`, trusting
/// `cert` for `localhost`, and its endpoint.
pub async fn quic_h3_client(
    cert: CertificateDer<'static>,
    port: u16,
) -> (quinn::Endpoint, quinn::Connection) {
    quic_h3_client_with(cert, port, quinn::TransportConfig::default()).await
}

/// As [`quic_h3_client`], with QUIC's `transport` settings.
pub async fn quic_h3_client_with(
    cert: CertificateDer<'static>,
    port: u16,
    transport: quinn::TransportConfig,
) -> (quinn::Endpoint, quinn::Connection) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport));
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let connection = within(endpoint.connect(addr, "localhost").unwrap())
        .await
        .unwrap();
    (endpoint, connection)
}
