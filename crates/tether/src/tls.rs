//! TLS for both adapters: the rustls configurations `wss://` runs with and
//! the wording of TLS failures (cargo feature `tls`).
//!
//! Owns what the blocking and the tokio adapter must say and build the
//! same way: the client's configuration (Mozilla's roots from webpki-roots,
//! extra roots, a client certificate for mutual TLS), a server's (its
//! certificate, and optionally the roots client certificates must chain
//! to), and one plain-worded description of every rustls failure a user
//! meets (an untrusted certificate, a server asking for a client
//! certificate, ...), with what to do about it. Like the rest of the core it
//! does no I/O: reading PEM files and running the handshake are the
//! adapters'.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use alloc::{format, vec};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, CertificateError, RootCertStore, Side};

/// What a server answered our ClientHello with, when its first bytes are
/// not a TLS record (RFC 8446 section 5.1: a content type of 20 to 24,
/// then major version 3): "it answered" and those bytes, quoted (a plain
/// `ws://` server's "HTTP/1.1 400 Bad Request"...). `None` for what looks
/// like TLS, or nothing. Both adapters name a plain server this way.
pub fn not_tls_answer(first: &[u8]) -> Option<String> {
    if first.is_empty() || matches!(first, [20..=24] | [20..=24, 3, ..]) {
        return None;
    }
    let head = first.get(..first.len().min(40)).unwrap_or_default();
    let text: String = String::from_utf8_lossy(head).escape_debug().collect();
    let more = if first.len() > head.len() { "..." } else { "" };
    Some(format!("it answered \"{text}{more}\""))
}

/// A client's certificate chain and private key, presented to a server that
/// asks for one (mutual TLS, RFC 8446 section 4.4.2).
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// The chain (the client's certificate first, then any intermediates)
    /// and its private key.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self { chain, key }
    }

    /// The certificate chain.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The private key.
    pub fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl core::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // never the key
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// The ring provider, which both adapters use.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A `wss://` client configuration: Mozilla's roots (webpki-roots) plus
/// `extra_roots`, ALPN `http/1.1` (the upgrade is HTTP/1.1, RFC 6455
/// section 4.1), and `identity` presented when the server asks for a client
/// certificate.
///
/// # Errors
/// A sentence naming what could not be used: a root certificate that does
/// not parse, or a client certificate whose key does not fit it.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
    identity: Option<&ClientIdentity>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra_roots {
        roots
            .add(cert.clone())
            .map_err(|e| format!("a root certificate cannot be used: {e}"))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => builder
            .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(|e| format!("the client certificate cannot be used: {e}"))?,
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A server configuration for `chain` (the server's certificate first) and
/// its `key`, ALPN `http/1.1`. With `client_roots`, every client must
/// present a certificate that chains to one of them (mutual TLS, rustls'
/// `WebPkiClientVerifier`); a client without one, or with one signed by
/// another authority, fails the TLS handshake.
///
/// # Errors
/// A sentence naming what could not be used: a client root that does not
/// parse, or a key that does not fit the certificate.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_roots {
        None => builder.with_no_client_auth(),
        Some(certs) => {
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("a client CA certificate cannot be used: {e}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| format!("the client CA certificates cannot be used: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A rustls failure in plain words, naming the cause and, where one is
/// known, what to do, for the side that met it (`Side::Client`: we are the
/// client): a rejected certificate is the peer's, an alert received is the
/// peer's complaint about us.
pub fn describe(e: &rustls::Error, side: Side) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(cert) => describe_certificate(cert, side),
        E::AlertReceived(alert) => describe_alert(*alert),
        E::NoCertificatesPresented => {
            "the client presented no certificate, and this server requires one".to_string()
        }
        E::InvalidMessage(_) => format!("the peer does not speak TLS ({e})"),
        E::PeerIncompatible(_) => format!("no TLS version or algorithm in common ({e})"),
        E::General(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A rejected certificate of the peer, in plain words, with what to do
/// (`side` is ours: a client rejects the server's certificate).
pub fn describe_certificate(e: &CertificateError, side: Side) -> String {
    use CertificateError as C;
    let (whose, trusted) = match side {
        Side::Client => (
            "the server's",
            "it is not signed by an authority this client trusts (a private CA or a self-signed \
             certificate? trust it with --ca FILE, or ClientOptions::add_root_certificate)",
        ),
        Side::Server => (
            "the client's",
            "it is not signed by an authority this server trusts for client certificates \
             (--client-ca FILE, the client_roots of tls::server_config)",
        ),
    };
    let words = match e {
        C::UnknownIssuer => trusted,
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
            "it may not be used for this purpose (wrong key usage: a server certificate used by \
             a client, or the other way round?)"
        }
        C::BadEncoding => "it is not a well-formed certificate",
        other => {
            let text = format!("{other:?}");
            if text.contains("CaUsedAsEndEntity") {
                "the peer presents a CA certificate as its own (it must present a certificate \
                 issued by that CA)"
            } else {
                return format!("{whose} certificate was rejected: {other}");
            }
        }
    };
    format!("{whose} certificate was rejected: {words}")
}

/// What the peer's alert says about us.
fn describe_alert(alert: AlertDescription) -> String {
    use AlertDescription as A;
    let words = match alert {
        A::CertificateRequired => {
            "the server requires a client certificate, and none was sent (give one with \
             --cert FILE --key FILE, or ClientOptions::client_certificate)"
        }
        A::UnknownCA => {
            "the peer does not trust the authority that signed our certificate (for a client \
             certificate: the server requires one signed by another CA)"
        }
        A::BadCertificate => "the peer rejected our certificate as bad",
        A::CertificateExpired => "the peer says our certificate has expired",
        A::CertificateRevoked => "the peer says our certificate has been revoked",
        A::CertificateUnknown => "the peer rejected our certificate",
        A::UnsupportedCertificate => "the peer does not support our certificate's type",
        A::HandshakeFailure => {
            "the peer ended the handshake (no common algorithm, or it wanted a certificate \
             we did not send)"
        }
        A::ProtocolVersion => "the peer supports none of our TLS versions",
        A::AccessDenied => "the peer denied access",
        A::UnrecognisedName => "the peer does not serve this host name",
        A::NoApplicationProtocol => "the peer does not speak HTTP/1.1 over TLS (ALPN)",
        other => return format!("the peer ended TLS with the alert {other:?}"),
    };
    format!("{words} (TLS alert {alert:?})")
}

#[cfg(test)]
mod tests {
    use super::not_tls_answer;

    /// RFC 8446 section 5.1: a record starts with its content type (20 to
    /// 24) and major version 3; anything else is quoted as the answer of a
    /// server that does not speak TLS.
    #[test]
    fn rfc8446_5_1_a_plain_answer_is_quoted_and_a_record_is_not() {
        assert_eq!(
            not_tls_answer(b"HTTP/1.1 400 Bad Request\r\n").as_deref(),
            Some("it answered \"HTTP/1.1 400 Bad Request\\r\\n\"")
        );
        let long = [b'x'; 50];
        assert_eq!(
            not_tls_answer(&long).as_deref(),
            Some(format!("it answered \"{}...\"", "x".repeat(40)).as_str())
        );
        // a handshake record, an alert, one byte of either, nothing
        for first in [&[0x16, 3, 1, 0, 5][..], &[0x15, 3, 3], &[0x16], &[]] {
            assert_eq!(not_tls_answer(first), None, "{first:?}");
        }
    }
}
