//! `tether serve` over TLS: the rustls server config from PEM files or from
//! a certificate made at startup.
//!
//! Owns loading and making certificates; the TLS handshake itself runs in
//! tokio-rustls, under the connection's handshake timeout (`serve`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server config for the chain in `cert` and the key in `key` (PEM),
/// requiring client certificates signed by `client_roots` when there are
/// any.
pub(crate) fn from_files(
    cert: &Path,
    key: &Path,
    client_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = tether_tokio::tls::load_certificates(cert).map_err(|e| e.to_string())?;
    let key = tether_tokio::tls::load_private_key(key).map_err(|e| e.to_string())?;
    config(chain, key, client_roots)
}

/// The certificates of every `--client-ca` file.
pub(crate) fn client_roots(paths: &[PathBuf]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut roots = Vec::new();
    for path in paths {
        roots.extend(tether_tokio::tls::load_certificates(path).map_err(|e| e.to_string())?);
    }
    Ok(roots)
}

/// The client certificate of `connect --cert FILE --key FILE`.
pub(crate) fn client_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = tether_tokio::tls::load_certificates(cert).map_err(|e| e.to_string())?;
    let key = tether_tokio::tls::load_private_key(key).map_err(|e| e.to_string())?;
    Ok((chain, key))
}

/// A certificate made now for `localhost` and 127.0.0.1: the server config,
/// the PEM file written for clients to trust, and its SHA-256 fingerprint.
pub(crate) fn self_signed(
    client_roots: &[CertificateDer<'static>],
) -> Result<(Arc<rustls::ServerConfig>, PathBuf, String), String> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot make a certificate: {e}"))?;
    let der = certified.cert.der().clone();
    let fingerprint = fingerprint(&der);
    // a name no other user can guess before it exists (the new key's
    // fingerprint), made only if nothing is there: a file or link placed
    // at a predictable name beforehand was written through
    let unique: String = fingerprint.chars().filter(|c| *c != ':').take(16).collect();
    let path = std::env::temp_dir().join(format!(
        "tether-self-signed-{}-{unique}.pem",
        std::process::id()
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, certified.cert.pem().as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    Ok((config(vec![der], key, client_roots)?, path, fingerprint))
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
    client_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ServerConfig>, String> {
    // ALPN http/1.1 (the upgrade is HTTP/1.1); the core builds it as both
    // adapters' tests do
    let client_roots = (!client_roots.is_empty()).then_some(client_roots);
    tether_tokio::tls::server_config(chain, key, client_roots)
}

#[cfg(test)]
mod tests {
    /// The PEM file's name is not guessable before it exists (a file or
    /// link placed at a predictable name beforehand was written through),
    /// and each certificate gets a file of its own.
    #[test]
    fn self_signed_pem_files_have_unguessable_names_of_their_own() {
        let (_, first, print) = super::self_signed(&[]).unwrap();
        let (_, second, _) = super::self_signed(&[]).unwrap();
        assert_ne!(first, second);
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        let unique: String = print.chars().filter(|c| *c != ':').take(16).collect();
        assert!(name.ends_with(&format!("-{unique}.pem")), "{name}");
        let pem = std::fs::read_to_string(&first).unwrap();
        assert!(pem.contains("BEGIN CERTIFICATE"));
        for path in [first, second] {
            std::fs::remove_file(path).unwrap();
        }
    }
}
