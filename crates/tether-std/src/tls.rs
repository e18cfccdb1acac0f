//! TLS for `wss://` clients (rustls), behind the `tls` feature.
//!
//! Owns the client's rustls configuration (Mozilla's roots from
//! webpki-roots plus any extra root, or the application's own
//! `ClientConfig`) and the TLS handshake of [`connect`](crate::connect),
//! driven here so its failures can be named: a server that answers
//! something other than TLS, or closes on our ClientHello, is most likely a
//! plain `ws://` server. It never reads or writes WebSocket bytes.

use std::io;

use crate::{Error, TlsError, TlsErrorKind};

#[cfg(feature = "tls")]
pub(crate) use enabled::*;

#[cfg(not(feature = "tls"))]
/// A transport error, as is (no TLS in this build).
pub(crate) fn map_io(e: io::Error, _role: tether::Role) -> Error {
    Error::Io(e)
}

#[cfg(not(feature = "tls"))]
/// `wss://` without the feature.
pub(crate) fn not_enabled() -> Error {
    Error::Tls(TlsError::new(TlsErrorKind::NotEnabled, "", None))
}

#[cfg(feature = "tls")]
mod enabled {
    use std::io::Write;
    use std::net::TcpStream;
    use std::sync::{Arc, OnceLock};

    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::{ClientConfig, ClientConnection};
    use tether::handshake::WsUrl;
    use tether::upgrade::HandshakeError;

    use super::*;
    use crate::MaybeTlsStream;
    use crate::handshake_io::{self, Deadline, Read};

    /// The TLS part of [`ClientOptions`](crate::ClientOptions).
    #[derive(Clone, Debug, Default)]
    pub(crate) struct TlsOptions {
        pub(crate) config: Option<Arc<ClientConfig>>,
        pub(crate) roots: Vec<CertificateDer<'static>>,
        pub(crate) identity: Option<tether::tls::ClientIdentity>,
    }

    /// A transport error, or the TLS error it carries, in plain words (with
    /// TLS 1.3 a server's refusal of our client certificate arrives here,
    /// after the client's side of the handshake finished, RFC 8446 section
    /// 4.4.2.4).
    pub(crate) fn map_io(e: io::Error, role: tether::Role) -> Error {
        if let Some(rustls_error) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            let detail = tether::tls::describe(rustls_error, side(role));
            return Error::Tls(TlsError::new(
                TlsErrorKind::Handshake,
                detail,
                Some(Box::new(e)),
            ));
        }
        Error::Io(e)
    }

    /// Our side of TLS.
    fn side(role: tether::Role) -> rustls::Side {
        match role {
            tether::Role::Client => rustls::Side::Client,
            tether::Role::Server => rustls::Side::Server,
        }
    }

    /// The configuration to use: the application's, or webpki-roots plus the
    /// extra roots (built once when there are none).
    fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
        static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        if let Some(config) = &options.config {
            return Ok(Arc::clone(config));
        }
        if options.roots.is_empty() && options.identity.is_none() {
            if let Some(config) = DEFAULT.get() {
                return Ok(Arc::clone(config));
            }
            let built = build_config(options)?;
            return Ok(Arc::clone(DEFAULT.get_or_init(|| built)));
        }
        build_config(options)
    }

    fn build_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
        tether::tls::client_config(&options.roots, options.identity.as_ref())
            .map_err(|detail| TlsError::new(TlsErrorKind::Config, detail, None).into())
    }

    /// Runs the TLS handshake over `tcp` for `url`'s host, before `deadline`.
    pub(crate) fn connect(
        mut tcp: TcpStream,
        url: &WsUrl,
        options: &TlsOptions,
        deadline: Deadline,
    ) -> Result<MaybeTlsStream, Error> {
        let config = client_config(options)?;
        let name = ServerName::try_from(url.host().to_owned()).map_err(|e| {
            TlsError::new(
                TlsErrorKind::ServerName,
                format!("{:?}: {e}", url.host()),
                Some(Box::new(e)),
            )
        })?;
        let mut conn = ClientConnection::new(config, name)
            .map_err(|e| TlsError::new(TlsErrorKind::Config, e.to_string(), Some(Box::new(e))))?;
        match handshake(&mut tcp, &mut conn, deadline) {
            Ok(()) => Ok(MaybeTlsStream::Tls(Box::new(rustls::StreamOwned::new(
                conn, tcp,
            )))),
            Err(Error::Handshake(HandshakeError::Timeout(d))) => Err(Error::Tls(TlsError::new(
                TlsErrorKind::Timeout,
                format!("{d:?}"),
                None,
            ))),
            Err(e) => Err(e),
        }
    }

    fn handshake(
        tcp: &mut TcpStream,
        conn: &mut ClientConnection,
        deadline: Deadline,
    ) -> Result<(), Error> {
        let mut buf = vec![0; 18 * 1024];
        let mut first = true;
        loop {
            let mut out = Vec::new();
            while conn.wants_write() {
                conn.write_tls(&mut out)?;
            }
            handshake_io::write_all(tcp, &out, deadline)?;
            if !conn.is_handshaking() {
                return Ok(());
            }
            let read = match handshake_io::read(tcp, &mut buf, deadline) {
                // Some plain servers reset the connection on a ClientHello.
                Err(Error::Io(e)) if first && e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(TlsError::new(
                        TlsErrorKind::NotTls,
                        "it reset the connection on our TLS ClientHello",
                        Some(Box::new(e)),
                    )
                    .into());
                }
                other => other?,
            };
            let n = match read {
                Read::Data(n) => n,
                Read::Eof if first => {
                    return Err(TlsError::new(
                        TlsErrorKind::NotTls,
                        "it closed the connection on our TLS ClientHello",
                        None,
                    )
                    .into());
                }
                Read::Eof => {
                    return Err(TlsError::new(
                        TlsErrorKind::Handshake,
                        "the server closed the connection during the TLS handshake",
                        None,
                    )
                    .into());
                }
            };
            let mut data = buf.get(..n).unwrap_or_default();
            if std::mem::take(&mut first)
                && let Some(answer) = tether::tls::not_tls_answer(data)
            {
                return Err(TlsError::new(TlsErrorKind::NotTls, answer, None).into());
            }
            while !data.is_empty() {
                conn.read_tls(&mut data)?;
                if let Err(e) = conn.process_new_packets() {
                    // Tell the server why, best effort: rustls queued an alert.
                    let mut alert = Vec::new();
                    let _ = conn.write_tls(&mut alert);
                    let _ = tcp.write_all(&alert);
                    return Err(TlsError::new(
                        TlsErrorKind::Handshake,
                        tether::tls::describe(&e, rustls::Side::Client),
                        Some(Box::new(e)),
                    )
                    .into());
                }
            }
        }
    }
}
