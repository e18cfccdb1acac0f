#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `--http2` through the binary: `serve --http2` beside HTTP/1.1 on one
//! port (cleartext prior knowledge and TLS ALPN), `connect --http2`, and
//! the fallback to HTTP/1.1 when a server cannot carry WebSockets over
//! HTTP/2 (RFC 8441).

use tokio::io::AsyncWriteExt;

mod common;

use common::{LIMIT, connect, serve};

#[tokio::test]
async fn rfc8441_serve_http2_echoes_over_http2_and_http1_on_one_port() {
    let (_server, url, _) = serve(&["--http2"]).await;
    assert!(url.starts_with("ws://"), "{url}");
    let (code, stdout, stderr) = connect(&["-v", "--http2", &url], "one\ntwo\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "one\ntwo\n");
    assert!(stderr.contains("over HTTP/2"), "{stderr}");
    // the same port still speaks the HTTP/1.1 upgrade
    let (code, stdout, stderr) = connect(&["-v", &url], "three\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "three\n");
    assert!(!stderr.contains("over HTTP/2"), "{stderr}");
}

#[tokio::test]
async fn rfc8441_serve_http2_over_tls_by_alpn() {
    let (_server, url, said) = serve(&["--http2", "--tls-self-signed"]).await;
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let hint = said
        .iter()
        .find_map(|l| l.split("--ca ").nth(1))
        .expect("the trust hint");
    let ca = hint.split(' ').next().unwrap();
    let target = format!("wss://localhost:{port}/tls");
    let (code, stdout, stderr) = connect(&["-v", "--http2", "--ca", ca, &target], "secret\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "secret\n");
    assert!(stderr.contains("over HTTP/2"), "{stderr}");
    let (code, stdout, stderr) = connect(&["--ca", ca, &target], "plain\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "plain\n");
}

#[tokio::test]
async fn rfc8441_broadcast_over_http2() {
    let (_server, url, _) = serve(&["--http2", "--mode", "broadcast"]).await;
    let (code, stdout, stderr) = connect(&["--http2", &url], "echo hi\n").await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("hi"), "{stdout}");
}

#[tokio::test]
async fn rfc8441_connect_http2_to_a_server_without_it_is_named_or_falls_back() {
    for extra in [&[][..], &["--tls-self-signed"][..]] {
        let (_server, url, said) = serve(extra).await;
        let mut args: Vec<String> = vec!["--http2".into()];
        let target = match said.iter().find_map(|l| l.split("--ca ").nth(1)) {
            Some(hint) => {
                args.push("--ca".into());
                args.push(hint.split(' ').next().unwrap().into());
                let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
                format!("wss://localhost:{port}/")
            }
            None => url.clone(),
        };
        let mut refused = args.clone();
        refused.push(target.clone());
        let refused: Vec<&str> = refused.iter().map(String::as_str).collect();
        let (code, _, stderr) = connect(&refused, "x\n").await;
        assert_eq!(code, Some(3), "{stderr}");
        assert!(
            stderr.contains("connect over HTTP/1.1"),
            "the cause is named: {stderr}"
        );
        let mut fallback = args.clone();
        fallback.extend(["-v".into(), "--http1-fallback".into(), target.clone()]);
        let fallback: Vec<&str> = fallback.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = connect(&fallback, "y\n").await;
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(stdout, "y\n");
        assert!(stderr.contains("falling back to HTTP/1.1"), "{stderr}");
    }
}

/// RFC 9113 section 3.4: a client with prior knowledge may send the
/// preface in pieces, as slowly as the handshake timeout allows; the
/// server waits for each byte to tell HTTP/2 from HTTP/1.1 (it once gave
/// up after 500 ms and answered the rest as a bad HTTP/1.1 request) and
/// answers with its own SETTINGS.
#[tokio::test]
async fn rfc9113_3_4_a_preface_sent_slowly_is_still_http2() {
    use tokio::io::AsyncReadExt;

    let (_server, url, _) = serve(&["--http2"]).await;
    let addr = url.trim_start_matches("ws://").trim_end_matches('/');
    let addr = addr.split('/').next().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    tcp.write_all(b"\r\nSM\r\n\r\n").await.unwrap();
    // an empty SETTINGS frame: length 0, type 4, no flags, stream 0
    tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut head = [0u8; 9];
    tokio::time::timeout(LIMIT, tcp.read_exact(&mut head))
        .await
        .expect("the server answers")
        .unwrap();
    assert_eq!(
        head[3],
        4,
        "the server's first frame is SETTINGS, not an HTTP/1.1 answer: {:?}",
        String::from_utf8_lossy(&head)
    );
}
