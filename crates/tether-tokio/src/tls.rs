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

/// Reads the certificates of a PEM file (e.g. a private CA's), for
/// [`ClientOptions::add_root_certificate`](crate::ClientOptions::add_root_certificate).
///
/// # Errors
/// [`Error::Tls`] naming the file when it cannot be read or holds no
/// certificate.
pub fn load_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    use rustls::pki_types::pem::PemObject;
    let bad = |e: &dyn std::fmt::Display| {
        Error::Tls(format!(
            "cannot read certificates from {}: {e}",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no PEM certificate in it"));
    }
    Ok(certs)
}

/// A client config that accepts any server certificate: the connection is
/// encrypted but the server is not authenticated, so anyone on the path can
/// read and change it. Only for testing against a server whose certificate
/// you cannot check otherwise; the handshake's signatures are still
/// verified.
///
/// # Errors
/// [`Error::Tls`] when the TLS configuration cannot be built.
pub fn insecure_client_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts every certificate; checks the handshake signatures with the
/// provider's algorithms.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A rejected server certificate, in plain words, with what to do.
fn describe_certificate(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let words = match e {
        C::UnknownIssuer => {
            "it is not signed by an authority this client trusts (a private CA or a self-signed \
             certificate? trust it with --ca FILE, or ClientOptions::add_root_certificate)"
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired",
        C::NotValidYet | C::NotValidYetContext { .. } => {
            "it is not valid yet (is this machine's clock right?)"
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it is not for this host name (connect with the name the certificate names)"
        }
        C::Revoked => "it has been revoked",
        C::BadSignature => "its signature does not verify",
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "it may not be used by a server (wrong key usage)"
        }
        C::BadEncoding => "it is not a well-formed certificate",
        other => {
            let text = format!("{other:?}");
            if text.contains("CaUsedAsEndEntity") {
                "the server presents a CA certificate as its own (it must present a \
                 certificate issued by that CA)"
            } else {
                return format!("the server's certificate was rejected: {other}");
            }
        }
    };
    format!("the server's certificate was rejected: {words}")
}

/// Names the likely cause of a TLS handshake failure.
pub(crate) fn name_cause(e: std::io::Error) -> Error {
    let text = e.to_string();
    if let Some(rustls::Error::InvalidCertificate(cert)) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return Error::Tls(describe_certificate(cert));
    }
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
