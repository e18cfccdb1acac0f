//! `wss://` with rustls (the `tls` feature): a round trip with a private CA
//! made here with rcgen, and the two scheme mix-ups named for what they are.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_aborted, bounded, listen, pattern};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tether::upgrade::HandshakeError;
use tether_std::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tether_std::rustls::{
    self, ClientConfig, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};
use tether_std::{
    ClientOptions, CloseCode, Error, Message, ServerOptions, TlsErrorKind, accept, connect,
};

/// A CA, and a server configuration whose certificate for `localhost` it
/// signed.
fn pki() -> (CertificateDer<'static>, Arc<ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tether test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
            )
            .unwrap();
    (ca.der().clone(), Arc::new(config))
}

/// A TLS echo server for `connections` connections; returns its port and
/// each connection's result.
fn tls_echo_server(
    config: Arc<ServerConfig>,
    connections: usize,
) -> (u16, std::thread::JoinHandle<Vec<Result<(), Error>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        (0..connections)
            .map(|_| {
                let (tcp, _) = listener.accept().unwrap();
                let tls =
                    StreamOwned::new(ServerConnection::new(Arc::clone(&config)).unwrap(), tcp);
                let (mut ws, _) = accept(tls, &ServerOptions::new())?;
                loop {
                    match ws.read() {
                        Ok(message) => ws.send(message)?,
                        Err(Error::Closed(info)) if info.was_clean => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
            })
            .collect()
    });
    (port, handle)
}

#[test]
fn rfc6455_3_wss_round_trip_with_a_custom_root() {
    bounded(Duration::from_secs(30), || {
        let (ca, server_config) = pki();
        let (port, server) = tls_echo_server(server_config, 2);
        let url = format!("wss://localhost:{port}/secure");

        // An extra root beside webpki-roots.
        let options = ClientOptions::new().add_root_certificate(ca.clone());
        let (mut ws, _) = connect(&url, &options).unwrap();
        assert!(ws.get_ref().is_tls());
        for message in [Message::text("over TLS"), Message::binary(pattern(1 << 20))] {
            ws.send(message.clone()).unwrap();
            assert_eq!(ws.read().unwrap(), message);
        }
        ws.ping(&b"tls ping"[..]).unwrap();
        let info = ws.close(CloseCode::new(4000), "tls done").unwrap();
        assert!(info.was_clean, "{info}");

        // The application's own rustls configuration.
        let mut roots = RootCertStore::empty();
        roots.add(ca).unwrap();
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let options = ClientOptions::new().tls_config(Arc::new(config));
        let (mut ws, _) = connect(&url, &options).unwrap();
        ws.send(Message::text("again")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("again"));
        assert!(ws.close(CloseCode::NORMAL, "").unwrap().was_clean);

        for result in server.join().unwrap() {
            result.unwrap();
        }
    });
}

#[test]
fn wss_to_an_untrusted_certificate_is_a_tls_handshake_error() {
    bounded(Duration::from_secs(30), || {
        let (_, server_config) = pki();
        let (port, server) = tls_echo_server(server_config, 1);
        let err = connect(&format!("wss://localhost:{port}/"), &ClientOptions::new()).unwrap_err();
        let Error::Tls(tls) = &err else {
            panic!("expected a TLS error, got {err:?}");
        };
        assert_eq!(tls.kind(), TlsErrorKind::Handshake);
        let text = err.to_string();
        // in plain words, the tokio adapter's (one wording, tether::tls)
        assert!(
            text.contains("the server's certificate was rejected: it is not signed by an authority this client trusts"),
            "{text}"
        );
        assert!(text.contains("add_root_certificate"), "{text}");
        assert!(!text.contains("UnknownIssuer"), "{text}");
        assert!(server.join().unwrap()[0].is_err());
    });
}

/// A TLS echo server that requires client certificates signed by `ca`.
fn mutual_tls_server(
    ca: &pki::Ca,
    connections: usize,
) -> (u16, std::thread::JoinHandle<Vec<Result<(), Error>>>) {
    let server = ca.server();
    let config =
        tether::tls::server_config(vec![server.cert.clone()], server.key(), Some(&[ca.der()]))
            .unwrap();
    tls_echo_server(config, connections)
}

#[test]
fn rfc8446_4_4_2_client_certificate_of_the_required_ca_connects() {
    bounded(Duration::from_secs(30), || {
        let ca = pki::Ca::new("tether client CA");
        let (port, server) = mutual_tls_server(&ca, 1);
        let client = ca.client("alice");
        let options = ClientOptions::new()
            .add_root_certificate(ca.der())
            .client_certificate(vec![client.cert.clone()], client.key());
        let (mut ws, _) = connect(&format!("wss://localhost:{port}/"), &options).unwrap();
        ws.send(Message::text("mutual")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("mutual"));
        assert!(ws.close(CloseCode::NORMAL, "").unwrap().was_clean);
        server.join().unwrap().remove(0).unwrap();
    });
}

#[test]
fn rfc8446_4_4_2_no_client_certificate_is_refused_in_plain_words() {
    bounded(Duration::from_secs(30), || {
        let ca = pki::Ca::new("tether client CA");
        let (port, server) = mutual_tls_server(&ca, 1);
        let options = ClientOptions::new().add_root_certificate(ca.der());
        let err = connect(&format!("wss://localhost:{port}/"), &options).unwrap_err();
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("the server requires a client certificate, and none was sent"),
            "{text}"
        );
        pki::assert_plain(&text);
        let refused = server.join().unwrap().remove(0).unwrap_err().to_string();
        assert!(
            refused.contains("the client presented no certificate"),
            "{refused}"
        );
        pki::assert_plain(&refused);
    });
}

#[test]
fn rfc8446_4_4_2_client_certificate_of_another_ca_is_refused_in_plain_words() {
    bounded(Duration::from_secs(30), || {
        let ca = pki::Ca::new("tether client CA");
        let (port, server) = mutual_tls_server(&ca, 1);
        let stranger = pki::Ca::new("another CA").client("mallory");
        let options = ClientOptions::new()
            .add_root_certificate(ca.der())
            .client_certificate(vec![stranger.cert.clone()], stranger.key());
        let err = connect(&format!("wss://localhost:{port}/"), &options).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("the peer does not trust the authority that signed our certificate"),
            "{text}"
        );
        pki::assert_plain(&text);
        let refused = server.join().unwrap().remove(0).unwrap_err().to_string();
        assert!(
            refused.contains(
                "the client's certificate was rejected: it is not signed by an authority this server trusts"
            ),
            "{refused}"
        );
        pki::assert_plain(&refused);
    });
}

#[test]
fn wss_to_a_plain_websocket_server_names_the_likely_cause() {
    bounded(Duration::from_secs(10), || {
        // tether's own plain server: it closes on a ClientHello.
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            accept(stream, &ServerOptions::new()).map(|_| ())
        });
        let wss = url.replacen("ws://", "wss://", 1);
        let err = connect(&wss, &ClientOptions::new()).unwrap_err();
        let Error::Tls(tls) = &err else {
            panic!("expected a TLS error, got {err:?}");
        };
        assert_eq!(tls.kind(), TlsErrorKind::NotTls);
        assert!(
            err.to_string()
                .contains("the server did not answer TLS: is it a plain ws:// server?"),
            "{err}"
        );
        assert!(server.join().unwrap().is_err());
    });
}

#[test]
fn wss_to_a_plain_http_server_names_the_likely_cause() {
    bounded(Duration::from_secs(10), || {
        // A server that answers anything with an HTTP error.
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0; 1024];
            let _ = stream.read(&mut buf).unwrap();
            stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        });
        let wss = url.replacen("ws://", "wss://", 1);
        let err = connect(&wss, &ClientOptions::new()).unwrap_err();
        let Error::Tls(tls) = &err else {
            panic!("expected a TLS error, got {err:?}");
        };
        assert_eq!(tls.kind(), TlsErrorKind::NotTls);
        let text = err.to_string();
        assert!(text.contains("plain ws:// server"), "{text}");
        assert!(text.contains("HTTP/1.1 400"), "{text}");
        server.join().unwrap();
    });
}

#[test]
fn ws_to_a_tls_server_names_the_likely_cause() {
    bounded(Duration::from_secs(10), || {
        let (_, server_config) = pki();
        let (port, server) = tls_echo_server(server_config, 1);
        let err = connect(&format!("ws://127.0.0.1:{port}/"), &ClientOptions::new()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Handshake(HandshakeError::Response(_) | HandshakeError::Eof { .. })
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("wss://"), "{err}");
        // The server's side: the client did not speak TLS.
        let server_err = server.join().unwrap().remove(0).unwrap_err();
        assert!(
            matches!(server_err, Error::Tls(_) | Error::Io(_)),
            "{server_err:?}"
        );
    });
}

#[test]
fn tls_client_closing_tcp_is_1006_for_the_server() {
    bounded(Duration::from_secs(10), || {
        let (ca, server_config) = pki();
        let (port, server) = tls_echo_server(server_config, 1);
        let options = ClientOptions::new().add_root_certificate(ca);
        let (ws, _) = connect(&format!("wss://localhost:{port}/"), &options).unwrap();
        // Drop the TCP connection without a Close or close_notify.
        let tcp: TcpStream = ws.get_ref().tcp().try_clone().unwrap();
        tcp.shutdown(std::net::Shutdown::Both).unwrap();
        let err = server.join().unwrap().remove(0).unwrap_err();
        assert!(
            matches!(&err, Error::Closed(i) if i.code == CloseCode::ABNORMAL && !i.was_clean),
            "{err:?}"
        );
        drop(ws);
    });
}

/// A `wss://` server that accepts TCP and never answers the ClientHello:
/// reaching the server, TLS included, is the connect timeout's (as curl
/// counts it, and as the tokio adapter does), so the client gives up after
/// it, though its handshake timeout is far longer, with an error that
/// names the TLS handshake.
#[test]
fn a_tls_handshake_that_never_finishes_is_bounded_by_the_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let silent = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        // holds the connection, answering nothing, until the client gave up
        let _ = wait.recv_timeout(Duration::from_secs(10));
        drop(tcp);
    });
    let options = ClientOptions::new()
        .connect_timeout(Duration::from_millis(300))
        .handshake_timeout(Duration::from_secs(30));
    let started = std::time::Instant::now();
    let err = connect(&format!("wss://localhost:{port}/"), &options).unwrap_err();
    let took = started.elapsed();
    let Error::Tls(tls) = &err else {
        panic!("not a TLS error: {err}");
    };
    assert_eq!(tls.kind(), TlsErrorKind::Timeout, "{err}");
    assert!(
        err.to_string()
            .contains("the TLS handshake did not complete within 300ms"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "gave up after {took:?}"
    );
    done.send(()).unwrap();
    silent.join().unwrap();
}

/// RFC 6455 section 7.1.1 over TLS: a `wss://` server that sends a message
/// and its Close, then closes TCP without TLS's `close_notify` (as many
/// servers do), ends the connection with its code, cleanly, as over plain
/// TCP and as in the tokio adapter (`tether::read_error_is_eof`).
#[test]
fn rfc6455_7_1_1_close_then_tcp_closed_without_close_notify_keeps_the_peers_code() {
    use tether::frame::{FrameEncoder, OpCode, Role, Rsv};
    use tether::handshake::{AcceptOptions, Limits, Status, parse_request};
    bounded(Duration::from_secs(10), || {
        let (ca, config) = pki();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
            let mut head = Vec::new();
            let mut chunk = [0u8; 1024];
            let request = loop {
                let n = tls.read(&mut chunk).unwrap();
                assert!(n > 0, "the client left during the upgrade");
                head.extend_from_slice(&chunk[..n]);
                if let Status::Complete(request, _) =
                    parse_request(&head, &Limits::default()).unwrap()
                {
                    break request;
                }
            };
            tls.write_all(&request.accept(&AcceptOptions::new()).unwrap())
                .unwrap();
            let mut frames = bytes::BytesMut::new();
            let mut encoder = FrameEncoder::new(Role::Server, || [0; 4]);
            encoder.encode(true, Rsv::NONE, OpCode::Text, b"before", &mut frames);
            let close = [&4000u16.to_be_bytes()[..], b"bye"].concat();
            encoder.encode(true, Rsv::NONE, OpCode::Close, &close, &mut frames);
            tls.write_all(&frames).unwrap();
            tls.flush().unwrap();
            // TCP closed under TLS, no close_notify
            drop(tls);
        });
        let options = ClientOptions::new().add_root_certificate(ca);
        let (mut ws, _) = connect(&format!("wss://localhost:{port}/"), &options).unwrap();
        server.join().unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("before"));
        match ws.read() {
            Err(Error::Closed(info)) => {
                assert_eq!(info.code, CloseCode::new(4000), "{info:?}");
                assert_eq!(info.reason, "bye");
                assert!(info.was_clean, "{info:?}");
            }
            other => panic!("not the peer's clean close: {other:?}"),
        }
    });
}

/// The keep-alive ends a `send` the peer never takes over TLS too: rustls
/// completes its I/O in both directions, so a write that times out reads,
/// and that read is bounded by the core's deadline as the write is (it
/// blocked forever on a socket without a read timeout).
#[test]
fn rfc6455_5_5_2_keep_alive_timeout_ends_a_wss_send_the_peer_never_takes() {
    let config = tether::Config {
        keep_alive: tether::KeepAlive::Ping {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(300),
        },
        ..tether::Config::default()
    };
    bounded(Duration::from_secs(20), move || {
        a_wss_send_the_peer_never_takes_ends(config, 1 << 20, "keep-alive");
    });
}

/// `Config::send_timeout` ends a `send` the peer never takes over TLS too,
/// with no keep-alive, for large messages and small: the last bytes the
/// connection queued are taken by rustls (its buffer), not the socket, so
/// the core's queue is empty while the TLS stream's flush waits; the core
/// counts those bytes as its own until they are flushed (the flush blocked
/// for ever).
#[test]
fn rfc6455_10_4_the_send_timeout_ends_a_wss_send_the_peer_never_takes() {
    let config = tether::Config {
        send_timeout: Some(Duration::from_millis(300)),
        ..tether::Config::default()
    };
    for size in [1 << 20, 1000] {
        let config = config.clone();
        bounded(Duration::from_secs(20), move || {
            a_wss_send_the_peer_never_takes_ends(config, size, "send timeout");
        });
    }
}

/// A client with `config` sends messages of `size` bytes to a wss server
/// that reads nothing, until a send fails: it must fail within 3 s with
/// 1006, for a reason that says `why`.
fn a_wss_send_the_peer_never_takes_ends(config: tether::Config, size: usize, why: &str) {
    let (ca, server_config) = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let tls = StreamOwned::new(ServerConnection::new(server_config).unwrap(), tcp);
        let (ws, _) = accept(tls, &ServerOptions::new()).unwrap();
        // reads nothing, answers nothing
        std::thread::sleep(Duration::from_secs(4));
        drop(ws);
    });
    let options = ClientOptions::new().add_root_certificate(ca).config(config);
    let (mut ws, _) = connect(&format!("wss://localhost:{port}/"), &options).unwrap();
    let payload = pattern(size);
    let started = std::time::Instant::now();
    let err = loop {
        if let Err(e) = ws.send(Message::binary(payload.clone())) {
            break e;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{size}: still sending"
        );
    };
    assert_aborted(
        &err,
        why,
        (started, Duration::from_secs(3)),
        &format!("{size} bytes"),
    );
    server.join().unwrap();
}

/// A client that trickles its ClientHello a byte at a time, each byte
/// within the socket's read timeout, is bounded by the server's handshake
/// timeout, TLS included (rustls' own `read` reads on while bytes come,
/// each read with a timeout of its own: the server was held for as long as
/// the trickle lasted). The same bound holds every later deadline of a
/// `wss` connection against a trickled record.
#[test]
fn rfc8446_a_trickled_client_hello_is_bounded_by_the_handshake_timeout() {
    use std::io::Write;
    let (ca, server_config) = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let tls = StreamOwned::new(ServerConnection::new(server_config).unwrap(), tcp);
        // the timeout, then the linger for the client's end (it trickles on)
        let config = tether::Config {
            fin_wait: Duration::from_millis(300),
            ..tether::Config::default()
        };
        let options = ServerOptions::new()
            .config(config)
            .handshake_timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let result = accept(tls, &options).map(|_| ());
        (result, started.elapsed())
    });
    // a real ClientHello, sent a byte every 50 ms
    let mut roots = RootCertStore::empty();
    roots.add(ca).unwrap();
    let client_config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let mut client =
        rustls::ClientConnection::new(Arc::new(client_config), "localhost".try_into().unwrap())
            .unwrap();
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    let trickle = std::thread::spawn(move || {
        for byte in hello {
            if tcp.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let (result, took) = server.join().unwrap();
    assert!(result.is_err(), "a trickled handshake was accepted");
    assert!(
        took < Duration::from_secs(2),
        "the server was held {took:?} by a 300 ms handshake timeout and a 300 ms linger"
    );
    let _ = trickle.join();
}

/// A TCP stream whose writes take nothing once `dead` is set (a transport
/// that can take no more), and that counts the writes made to it.
struct Deadening {
    tcp: TcpStream,
    dead: Arc<std::sync::atomic::AtomicBool>,
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

impl Read for Deadening {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for Deadening {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.dead.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(0);
        }
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.tcp.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

impl tether_std::Transport for Deadening {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.tcp.set_read_timeout(timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.tcp.set_write_timeout(timeout)
    }
    fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
        self.tcp.set_nonblocking(nonblocking)
    }
}

/// Under TLS, a socket that takes nothing fails a send with `WriteZero`,
/// as over plain TCP, even with a deadline that re-arms for ever (a Pong
/// keep-alive): rustls says it took nothing when its buffer is full, and
/// retried as a full buffer, the send spun for ever.
#[test]
fn a_tls_socket_that_takes_nothing_fails_a_send() {
    bounded(Duration::from_secs(10), || {
        let (ca, server_config) = pki();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let kill = dead.clone();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let stream = Deadening {
                tcp,
                dead,
                writes: Arc::default(),
            };
            let tls = StreamOwned::new(ServerConnection::new(server_config).unwrap(), stream);
            let options = ServerOptions::new().config(tether::Config {
                keep_alive: tether::KeepAlive::Pong {
                    interval: Duration::from_millis(100),
                },
                ..tether::Config::default()
            });
            let (mut ws, _) = accept(tls, &options).unwrap();
            kill.store(true, std::sync::atomic::Ordering::Relaxed);
            loop {
                if let Err(e) = ws.send(Message::binary(pattern(64 << 10))) {
                    return e;
                }
            }
        });
        let options = ClientOptions::new().add_root_certificate(ca);
        let (_client, _) = connect(&format!("wss://localhost:{port}/"), &options).unwrap();
        match server.join().unwrap() {
            Error::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::WriteZero, "{e}"),
            other => panic!("{other}"),
        }
    });
}

/// A message goes out over TLS as one record, in one write: its header
/// and payload together (RFC 8446 section 5.1 lets a record carry both).
/// rustls' `StreamOwned` writes only the first of the slices it is given,
/// so each header went as a record and a write of its own, the payload as
/// another.
#[test]
fn rfc8446_5_1_a_message_goes_out_over_tls_in_one_write() {
    bounded(Duration::from_secs(30), || {
        let (ca, server_config) = pki();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = writes.clone();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let socket = Deadening {
                tcp,
                dead: Arc::default(),
                writes: counted.clone(),
            };
            let tls = StreamOwned::new(ServerConnection::new(server_config).unwrap(), socket);
            let (mut ws, _) = accept(tls, &ServerOptions::new()).unwrap();
            // the client's go: the handshake is over
            assert_eq!(ws.read().unwrap(), Message::text("go"));
            let before = counted.load(std::sync::atomic::Ordering::Relaxed);
            for i in 0..10u8 {
                ws.send(Message::binary(vec![i; 4096])).unwrap();
            }
            let sent = counted.load(std::sync::atomic::Ordering::Relaxed) - before;
            assert!(ws.close(CloseCode::NORMAL, "").unwrap().was_clean);
            sent
        });
        let options = ClientOptions::new().add_root_certificate(ca);
        let (mut ws, _) = connect(&format!("wss://localhost:{port}/"), &options).unwrap();
        ws.send(Message::text("go")).unwrap();
        for i in 0..10u8 {
            assert_eq!(ws.read().unwrap(), Message::binary(vec![i; 4096]));
        }
        assert!(matches!(ws.read(), Err(Error::Closed(info)) if info.was_clean));
        let sent = server.join().unwrap();
        assert_eq!(sent, 10, "writes for 10 messages sent one by one");
        let _ = writes;
    });
}
