//! `tether serve` over TLS: the rustls server config from PEM files or from
//! a certificate made at startup.
//!
//! Owns loading and making certificates; the TLS handshake itself runs in
//! tokio-rustls, under the connection's handshake timeout (`serve`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server config for the chain in `cert` and the key in `key` (PEM).
pub(crate) fn from_files(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = tether_tokio::tls::load_certificates(cert).map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
    config(chain, key)
}

/// A certificate made now for `localhost` and 127.0.0.1: the server config,
/// the PEM file written for clients to trust, and its SHA-256 fingerprint.
pub(crate) fn self_signed() -> Result<(Arc<rustls::ServerConfig>, PathBuf, String), String> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot make a certificate: {e}"))?;
    let der = certified.cert.der().clone();
    let path = std::env::temp_dir().join(format!("tether-self-signed-{}.pem", std::process::id()));
    std::fs::write(&path, certified.cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let fingerprint = fingerprint(&der);
    Ok((config(vec![der], key)?, path, fingerprint))
}

/// SHA-256 of a certificate, as colon-separated hex.
fn fingerprint(der: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    // the upgrade is HTTP/1.1
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
