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
/// (e.g. a private CA or a self-signed test certificate), ALPN `http/1.1`.
/// The same as the blocking adapter's ([`tether::tls::client_config`]).
///
/// # Errors
/// [`Error::Tls`] when a root certificate cannot be parsed.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, Error> {
    tether::tls::client_config(extra_roots, None).map_err(Error::Tls)
}

pub use tether::tls::{ClientIdentity, server_config};

/// Runs the TLS handshake as a client of `host`.
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    config: Option<Arc<rustls::ClientConfig>>,
) -> Result<TlsStream<FirstAnswer<TcpStream>>, Error> {
    let config = match config {
        Some(c) => c,
        None => client_config(&[])?,
    };
    let name = ServerName::try_from(host.to_string()).map_err(|e| {
        Error::Tls(format!(
            "the host cannot be used as a TLS server name: {host:?} ({e})"
        ))
    })?;
    TlsConnector::from(config)
        .connect(name, FirstAnswer::new(tcp))
        .into_fallible()
        .await
        .map_err(|(e, stream)| name_cause(e, &stream.first))
}

/// A client's transport during (and after) its TLS handshake, keeping the
/// first bytes the server sent (at most [`FirstAnswer::KEPT`]): a failed
/// handshake then says what a plain server answered
/// ([`tether::tls::not_tls_answer`]), as the blocking adapter does, rather
/// than guessing from rustls' error text. After the first read it only
/// passes bytes through.
#[derive(Debug)]
pub(crate) struct FirstAnswer<S> {
    inner: S,
    first: Vec<u8>,
    recording: bool,
}

impl<S> FirstAnswer<S> {
    /// How many of the server's first bytes are kept.
    const KEPT: usize = 64;

    fn new(inner: S) -> Self {
        Self {
            inner,
            first: Vec::new(),
            recording: true,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for FirstAnswer<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.recording && buf.filled().len() > before {
            let got = &buf.filled()[before..];
            this.first
                .extend_from_slice(&got[..got.len().min(Self::KEPT)]);
            this.recording = false;
        }
        read
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for FirstAnswer<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A TLS failure met after the handshake (a read or write of the upgrade),
/// in plain words, or the I/O error as is. With TLS 1.3 a server's refusal
/// of our client certificate arrives here, after the client's side of the
/// handshake finished (RFC 8446 section 4.4.2.4).
pub(crate) fn after_handshake(e: std::io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls_error) => Error::Tls(format!(
            "the TLS handshake failed: {}",
            tether::tls::describe(rustls_error, rustls::Side::Client)
        )),
        None => Error::Io(e),
    }
}

/// A TLS handshake that did not finish within `limit` (a client's
/// `Config::connect_timeout`, which counts reaching the server, TLS
/// included; a server's `Config::handshake_timeout`), in the words the
/// blocking adapter uses.
pub fn timed_out(limit: std::time::Duration) -> Error {
    Error::Tls(format!(
        "the TLS handshake did not complete within {limit:?}"
    ))
}

/// A server's failed TLS accept (e.g. tokio-rustls' `TlsAcceptor::accept`)
/// in plain words: a client without the required certificate, or with one
/// signed by another authority, is named as such.
pub fn accept_error(e: std::io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls_error) => Error::Tls(format!(
            "the TLS handshake failed: {}",
            tether::tls::describe(rustls_error, rustls::Side::Server)
        )),
        None => Error::Tls(format!("the TLS handshake failed: {e}")),
    }
}

/// Reads the private key of a PEM file (PKCS#8, PKCS#1 or SEC1), e.g. for
/// [`ClientOptions::client_certificate`](crate::ClientOptions::client_certificate).
///
/// # Errors
/// [`Error::Tls`] naming the file when it cannot be read or holds no key.
pub fn load_private_key(
    path: &std::path::Path,
) -> Result<rustls::pki_types::PrivateKeyDer<'static>, Error> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(path).map_err(|e| {
        Error::Tls(format!(
            "cannot read a private key from {}: {e}",
            path.display()
        ))
    })
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
///
/// `identity` is presented when the server asks for a client certificate
/// (mutual TLS), as [`ClientOptions::client_certificate`](crate::ClientOptions::client_certificate)
/// does with the default config.
pub fn insecure_client_config(
    identity: Option<&ClientIdentity>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => builder
            .with_client_auth_cert(identity.chain().to_vec(), identity.key().clone_key())
            .map_err(|e| Error::Tls(format!("the client certificate cannot be used: {e}")))?,
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
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

/// Names the likely cause of a TLS handshake failure, `first` being the
/// server's first bytes (a plain server's answer is quoted, as the
/// blocking adapter quotes it).
pub(crate) fn name_cause(e: std::io::Error, first: &[u8]) -> Error {
    let text = e.to_string();
    if let Some(answer) = tether::tls::not_tls_answer(first) {
        return Error::Tls(format!(
            "the server did not answer TLS: is it a plain ws:// server? ({answer}; connect to it with ws://)"
        ));
    }
    if let Some(rustls_error) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return Error::Tls(format!(
            "the TLS handshake failed: {}",
            tether::tls::describe(rustls_error, rustls::Side::Client)
        ));
    }
    if first.is_empty() {
        // nothing came back: some plain servers reset or close the
        // connection on a ClientHello (the blocking adapter's words)
        if e.kind() == std::io::ErrorKind::ConnectionReset {
            return Error::Tls(format!(
                "the server did not answer TLS: is it a plain ws:// server? (it reset the connection on our TLS ClientHello: {text}; connect to it with ws://)"
            ));
        }
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return Error::Tls(
                "the server did not answer TLS: is it a plain ws:// server? (it closed the connection on our TLS ClientHello; connect to it with ws://)"
                    .to_string(),
            );
        }
    } else if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return Error::Tls(
            "the TLS handshake failed: the server closed the connection during the TLS handshake"
                .to_string(),
        );
    }
    Error::Tls(format!("the TLS handshake failed: {text}"))
}
