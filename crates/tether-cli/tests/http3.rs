#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `--http3` through the binary: `serve --http3` (QUIC on the UDP port of
//! the TCP listener's number, beside HTTP/1.1), `connect --http3`, the
//! refusal of `--http3` without TLS, and a server without HTTP/3 named or
//! fallen back from (RFC 9220).

mod common;

use common::{LIMIT, connect, serve, tether};

/// `serve` with a self-signed certificate and `extra`: the server, its
/// `wss://localhost:PORT` and the CA file to trust.
async fn serve_tls(extra: &[&str]) -> (tokio::process::Child, String, String) {
    let mut args = vec!["--tls-self-signed"];
    args.extend(extra);
    let (server, url, said) = serve(&args).await;
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let hint = said
        .iter()
        .find_map(|l| l.split("--ca ").nth(1))
        .expect("the trust hint");
    let ca = hint.split(' ').next().unwrap().to_owned();
    (server, format!("wss://localhost:{port}"), ca)
}

#[tokio::test]
async fn rfc9220_serve_http3_echoes_over_quic_and_http1_on_the_same_port_number() {
    let (_server, base, ca) = serve_tls(&["--http3"]).await;
    let url = format!("{base}/h3");
    let (code, stdout, stderr) = connect(&["-v", "--http3", "--ca", &ca, &url], "one\ntwo\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "one\ntwo\n");
    assert!(stderr.contains("over HTTP/3"), "{stderr}");
    // the TCP port of the same number still speaks the HTTP/1.1 upgrade
    let (code, stdout, stderr) = connect(&["-v", "--ca", &ca, &url], "three\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "three\n");
    assert!(!stderr.contains("over HTTP/3"), "{stderr}");
}

#[tokio::test]
async fn rfc9220_serve_http2_and_http3_at_once_with_insecure() {
    let (_server, base, _ca) = serve_tls(&["--http2", "--http3"]).await;
    let url = format!("{base}/both");
    let (code, stdout, stderr) = connect(&["--http3", "--insecure", &url], "q\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "q\n");
    let (code, stdout, stderr) = connect(&["--http2", "--insecure", &url], "t\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "t\n");
}

#[tokio::test]
async fn rfc9220_broadcast_over_http3() {
    let (_server, base, ca) = serve_tls(&["--http3", "--mode", "broadcast"]).await;
    let url = format!("{base}/");
    let (code, stdout, stderr) = connect(&["--http3", "--ca", &ca, &url], "echo hi\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("hi"), "{stdout}");
}

#[tokio::test]
async fn rfc9001_serve_http3_without_tls_is_a_usage_error_naming_it() {
    let out = tokio::time::timeout(
        LIMIT,
        tether(&["serve", "--addr", "127.0.0.1:0", "--http3"]).output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--http3 needs TLS"), "{stderr}");
}

#[tokio::test]
async fn rfc9220_connect_http3_to_a_server_without_it_is_named_or_falls_back() {
    // TLS over TCP only: nothing answers on UDP
    let (_server, base, ca) = serve_tls(&[]).await;
    let url = format!("{base}/");
    let quick = ["--connect-timeout", "1", "--ca", &ca];
    let mut refused = vec!["--http3"];
    refused.extend(quick);
    refused.push(&url);
    let (code, _, stderr) = connect(&refused, "x\n").await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("did not answer over QUIC (UDP)"),
        "the cause is named: {stderr}"
    );
    let mut fallback = vec!["-v", "--http3", "--http1-fallback"];
    fallback.extend(quick);
    fallback.push(&url);
    let (code, stdout, stderr) = connect(&fallback, "y\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "y\n");
    assert!(stderr.contains("falling back to HTTP/1.1"), "{stderr}");
}

#[tokio::test]
async fn rfc9001_connect_http3_to_a_ws_url_is_named() {
    // a URL that cannot be used is bad usage (2), not a refusal
    let (code, _, stderr) = connect(&["--http3", "ws://127.0.0.1:9/"], "x\n").await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("use wss://"), "{stderr}");
}

/// A QUIC connection counts against `--max-connections` as a TCP one does,
/// and the two share the slots: with one slot held by a WebSocket over
/// TCP, an HTTP/3 client is refused (CONNECTION_REFUSED) and says it never
/// connected, and once the TCP client leaves, HTTP/3 is served. QUIC
/// connections were not counted, so any number could be open at once.
#[tokio::test]
async fn rfc9220_quic_connections_count_against_max_connections() {
    use std::process::Stdio;
    use tokio::io::AsyncBufReadExt;
    let (_server, base, ca) = serve_tls(&["--http3", "--max-connections", "1"]).await;
    let url = format!("{base}/slot");
    // over TCP, holding the only slot while its stdin stays open
    let mut holder = tether(&["connect", "-v", "--ca", &ca, &url])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = tokio::io::BufReader::new(holder.stderr.take().unwrap()).lines();
    tokio::time::timeout(LIMIT, async {
        while let Some(line) = said.next_line().await.unwrap() {
            if line.contains("connected") {
                return;
            }
        }
        panic!("the TCP client never connected");
    })
    .await
    .unwrap();
    let (code, _, stderr) = connect(&["--http3", "--ca", &ca, &url], "refused?\n").await;
    assert_eq!(code, Some(3), "served past --max-connections 1: {stderr}");
    // the slot comes back once the TCP client is gone
    drop(holder.stdin.take());
    tokio::time::timeout(LIMIT, holder.wait())
        .await
        .unwrap()
        .unwrap();
    let (code, stdout, stderr) = connect(&["--http3", "--ca", &ca, &url], "served\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "served\n");
}

/// Each WebSocket on a QUIC connection counts against
/// `--max-connections`, as over HTTP/2: the connection's first holds its
/// slot, each other one a slot of its own, and one past the limit gets 503
/// on its request stream while the others go on. They counted once per
/// connection.
#[tokio::test]
async fn rfc9220_serve_http3_counts_each_websocket_against_max_connections() {
    use futures_util::StreamExt;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use tether_tokio::http3::Http3Client;
    use tether_tokio::tether::Message;
    let (_server, base, ca) = serve_tls(&["--http3", "--max-connections", "2"]).await;
    let url = format!("{base}/count");
    let options = tether_tokio::ClientOptions::new()
        .add_root_certificate(CertificateDer::from_pem_file(&ca).unwrap());
    let client = tokio::time::timeout(LIMIT, Http3Client::connect(&url, &options))
        .await
        .unwrap()
        .unwrap();
    let mut open = Vec::new();
    for _ in 0..2 {
        let (ws, _) = tokio::time::timeout(LIMIT, client.open(&url, &options))
            .await
            .unwrap()
            .unwrap();
        open.push(ws);
    }
    let third = tokio::time::timeout(LIMIT, client.open(&url, &options))
        .await
        .unwrap();
    let refused = third.map(|_| ()).unwrap_err().to_string();
    assert!(refused.contains("503"), "{refused}");
    for ws in &mut open {
        ws.send(Message::text("still")).await.unwrap();
        let back = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
        assert_eq!(back.unwrap().unwrap(), Message::text("still"));
    }
}
