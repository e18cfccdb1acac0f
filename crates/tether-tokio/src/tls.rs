//! `wss://` with rustls (ring provider): client configs and error naming.
//!
//! Owns the TLS client setup and the translation of TLS failures into
//! errors that name the likely cause (a plain server behind a `wss://` URL).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::Error;

/// A client config trusting the Mozilla root store plus `extra_roots`
/// (e.g. a private CA or a self-signed test certificate).
///
/// # Errors
/// [`Error::Tls`] when a root certificate cannot be parsed.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        roots
            .add(cert.clone())
            .map_err(|e| Error::Tls(format!("bad root certificate: {e}")))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs the TLS handshake as a client of `host`.
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    config: Option<Arc<rustls::ClientConfig>>,
) -> Result<TlsStream<TcpStream>, Error> {
    let config = match config {
        Some(c) => c,
        None => client_config(&[])?,
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| Error::Tls(format!("bad server name {host:?}: {e}")))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(name_cause)
}

/// Names the likely cause of a TLS handshake failure.
pub(crate) fn name_cause(e: std::io::Error) -> Error {
    let text = e.to_string();
    let plain = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::InvalidMessage(_)))
        || text.contains("InvalidContentType")
        || text.contains("corrupt message");
    if plain {
        return Error::Tls(format!(
            "the server did not answer with TLS ({text}): is it a plain ws:// server? try ws:// instead of wss://"
        ));
    }
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return Error::Tls(format!(
            "the server closed the connection during the TLS handshake ({text}): does it serve TLS on this port?"
        ));
    }
    Error::Tls(text)
}
