#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `--http2` through the binary: `serve --http2` beside HTTP/1.1 on one
//! port (cleartext prior knowledge and TLS ALPN), `connect --http2`, and
//! the fallback to HTTP/1.1 when a server cannot carry WebSockets over
//! HTTP/2 (RFC 8441).

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

mod common;

use common::{LIMIT, serve, tether};

/// Runs `tether connect` with `args` and these lines on stdin; returns the
/// exit code, stdout and stderr.
async fn connect(args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let mut child = tether(&["connect"])
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("tether connect exits")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
