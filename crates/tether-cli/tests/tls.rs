#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `tether connect` to a wss:// server whose certificate a test made: the
//! refusal in plain words with what to do, `--ca FILE`, and `--insecure`.

use std::sync::Arc;

use futures_util::StreamExt;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
mod common;
#[path = "../../tether-std/tests/common/pki.rs"]
mod pki;

use common::{serve, tether};

/// A TLS echo server for `localhost` with a self-signed certificate;
/// returns its port and the certificate as PEM.
async fn tls_echo_server() -> (u16, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let pem = certified.cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok((mut ws, _)) =
                    tether_tokio::accept(tls, &tether_tokio::ServerOptions::new()).await
                else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    let _ = ws.send(m).await;
                }
            });
        }
    });
    (port, pem)
}

/// Runs `tether connect` with `args`, one line on stdin; returns the exit
/// code, stdout and stderr.
async fn connect(args: &[&str]) -> (Option<i32>, String, String) {
    common::connect(args, "over TLS\n").await
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_in_plain_words() {
    let (port, _) = tls_echo_server().await;
    let url = format!("wss://localhost:{port}/");
    let (code, _, stderr) = connect(&[&url]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("not signed by an authority this client trusts"),
        "{stderr}"
    );
    assert!(stderr.contains("--ca FILE"), "{stderr}");
    assert!(
        !stderr.contains("UnknownIssuer"),
        "no Rust debug text: {stderr}"
    );
}

#[tokio::test]
async fn ca_trusts_a_private_certificate() {
    let (port, pem) = tls_echo_server().await;
    let dir = std::env::temp_dir().join(format!("tether-cli-ca-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let url = format!("wss://localhost:{port}/");
    let (code, stdout, stderr) = connect(&["--ca", ca.to_str().unwrap(), &url]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "over TLS", "{stderr}");
    // a file without a certificate is a usage error that names the file
    std::fs::write(&ca, "not a certificate").unwrap();
    let (code, _, stderr) = connect(&["--ca", ca.to_str().unwrap(), &url]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ca.pem"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn insecure_connects_with_a_loud_warning() {
    let (port, _) = tls_echo_server().await;
    let url = format!("wss://localhost:{port}/");
    let (code, stdout, stderr) = connect(&["--insecure", &url]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "over TLS");
    assert!(stderr.contains("WARNING: --insecure"), "{stderr}");
}

#[tokio::test]
async fn serve_tls_self_signed_is_trusted_with_the_printed_ca_file() {
    let (_server, url, said) = serve(&["--tls-self-signed"]).await;
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    assert!(
        said.iter().any(|l| l.contains("SHA-256 fingerprint")),
        "{said:?}"
    );
    let hint = said
        .iter()
        .find_map(|l| l.split("--ca ").nth(1))
        .expect("the trust hint");
    let ca = hint.split(' ').next().unwrap();
    let (code, stdout, stderr) = connect(&["--ca", ca, &format!("wss://localhost:{port}/")]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "over TLS");
    // without it, the certificate is refused in words
    let (code, _, stderr) = connect(&[&format!("wss://localhost:{port}/")]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("not signed by an authority"), "{stderr}");
}

/// A self-signed certificate for `localhost`, written as `cert.pem` and
/// `key.pem` into a directory of the test's own (`name`): the certificate,
/// the directory, and the two paths.
fn certificate_files(
    name: &str,
) -> (
    rcgen::CertifiedKey,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("tether-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (certified, dir, cert, key)
}

#[tokio::test]
async fn serve_tls_from_pem_files() {
    let (_, dir, cert, key) = certificate_files("serve-tls");
    let (_server, url, _) = serve(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await;
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let (code, stdout, stderr) = connect(&[
        "--ca",
        cert.to_str().unwrap(),
        &format!("wss://localhost:{port}/"),
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "over TLS");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn rfc8446_4_4_2_serve_client_ca_requires_connect_cert_and_key() {
    let ca = pki::Ca::new("tether client CA");
    let server = ca.server();
    let good = ca.client("alice");
    let stranger = pki::Ca::new("another CA").client("mallory");
    let dir = std::env::temp_dir().join(format!("tether-cli-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ca_pem = path("ca.pem", &ca.pem());
    let (cert, key) = (
        path("server.pem", &server.cert_pem),
        path("server.key", &server.key_pem),
    );
    let (good_cert, good_key) = (
        path("alice.pem", &good.cert_pem),
        path("alice.key", &good.key_pem),
    );
    let (bad_cert, bad_key) = (
        path("mallory.pem", &stranger.cert_pem),
        path("mallory.key", &stranger.key_pem),
    );
    let (_server, url, said) = serve(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--client-ca",
        &ca_pem,
    ])
    .await;
    assert!(
        said.iter()
            .any(|l| l.contains("clients must present a certificate")),
        "{said:?}"
    );
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let url = format!("wss://localhost:{port}/");

    let (code, stdout, stderr) = connect(&[
        "--ca", &ca_pem, "--cert", &good_cert, "--key", &good_key, &url,
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "over TLS", "{stderr}");

    // no certificate: never connected (3), in plain words
    let (code, _, stderr) = connect(&["--ca", &ca_pem, &url]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("the server requires a client certificate, and none was sent"),
        "{stderr}"
    );
    assert!(stderr.contains("--cert FILE --key FILE"), "{stderr}");
    assert!(
        !stderr.contains("AlertReceived"),
        "no Rust debug text: {stderr}"
    );

    // another CA's certificate
    let (code, _, stderr) = connect(&[
        "--ca", &ca_pem, "--cert", &bad_cert, "--key", &bad_key, &url,
    ])
    .await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("does not trust the authority that signed our certificate"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("AlertReceived"),
        "no Rust debug text: {stderr}"
    );

    // --client-ca without TLS is a usage error
    let out = tether(&["serve", "--addr", "127.0.0.1:0", "--client-ca", &ca_pem])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--client-ca needs TLS"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve --tls-*`: the TLS handshake and the upgrade share one deadline,
/// `--handshake-timeout`, from the connection accepted (as the blocking
/// adapter counts a TLS stream's handshake in it). A client that finishes
/// TLS within it but sends its upgrade request only after it is dropped
/// without an answer (with a deadline of its own for each, it got a 101).
#[tokio::test]
async fn serve_tls_counts_the_tls_handshake_in_the_handshake_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // (margins of seconds each side: TLS with a debug build on a loaded
    // machine can take a while)
    let (_server, url, _) = serve(&["--tls-self-signed", "--handshake-timeout", "5"]).await;
    let addr = url
        .trim_start_matches("wss://")
        .trim_end_matches('/')
        .to_owned();
    let started = tokio::time::Instant::now();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // TLS after 1 s (within the 5 s), the upgrade request at 6.5 s
    tokio::time::sleep_until(started + std::time::Duration::from_secs(1)).await;
    let config = tether_tokio::tls::insecure_client_config(None).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("the TLS handshake, within the handshake timeout");
    tokio::time::sleep_until(started + std::time::Duration::from_millis(6500)).await;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    // the server may already have closed: a failed write is the answer too
    let _ = tls.write_all(request.as_bytes()).await;
    // the answer's head, or the end of the stream
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut buf = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server neither answered nor closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.starts_with("HTTP/1.1 101"),
        "upgraded 6.5 s after accept with a 5 s handshake timeout: {answer}"
    );
}

/// Past `--max-connections`, a wss:// client gets its 503 over TLS, so it
/// reads "server busy" (it got a plain-text 503 its TLS took for a
/// corrupt record).
#[tokio::test]
async fn serve_tls_refuses_past_max_connections_with_a_503_over_tls() {
    let (certified, dir, cert, key) = certificate_files("busy-tls");
    let (_server, url, _) = serve(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--max-connections",
        "1",
    ])
    .await;
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let url = format!("wss://localhost:{port}/");
    let options =
        tether_tokio::ClientOptions::new().add_root_certificate(certified.cert.der().clone());
    let (first, _) = tether_tokio::connect(&url, &options).await.unwrap();
    let refused = tether_tokio::connect(&url, &options)
        .await
        .expect_err("past --max-connections");
    match &refused {
        tether_tokio::Error::Handshake(e) => assert_eq!(e.refused_status(), Some(503), "{e}"),
        other => panic!("expected a 503 over TLS, got {other}"),
    }
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}
