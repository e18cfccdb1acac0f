#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `tether connect` through real proxies to `tether serve --tls-cert ...`
//! (and `ws://`), byte for byte: tinyproxy (HTTP CONNECT, RFC 9110 9.3.6)
//! from `--proxy` and from `HTTPS_PROXY`, microsocks (SOCKS5, RFC 1928,
//! username/password RFC 1929) from `ALL_PROXY`; `--no-proxy` and
//! `NO_PROXY`; a wrong proxy password ends with exit status 3 (never
//! connected) and the proxy's refusal named.

mod common;
#[path = "../../tether-std/tests/common/pki.rs"]
mod pki;
#[path = "../../tether-std/tests/common/proxies.rs"]
mod proxies;

use std::path::PathBuf;

use common::{serve, tether};

/// What is typed: ASCII, UTF-8 and a long line.
fn input() -> String {
    format!("hello through a proxy\nünïcødé ✓\n{}\n", "x".repeat(70_000))
}

/// Runs `tether connect` with `args` and the proxy variables of `env` (all
/// others removed), [`input`] on stdin; returns the exit code, stdout,
/// stderr.
async fn connect(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = tether(&["connect"]);
    for name in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        command.env_remove(name);
    }
    command.args(args).envs(env.iter().copied());
    common::run_with_input(command, &input()).await
}

/// A CA and `tether serve` over TLS with its certificate: the server, the
/// `wss://localhost:port/` URL, the CA's PEM file and the folder to remove.
async fn tls_server() -> (tokio::process::Child, String, String, PathBuf) {
    tls_server_with(&[]).await
}

/// [`tls_server`] with more `serve` flags.
async fn tls_server_with(extra: &[&str]) -> (tokio::process::Child, String, String, PathBuf) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let ca = pki::Ca::new("tether proxy test CA");
    let leaf = ca.server();
    let dir = std::env::temp_dir().join(format!(
        "tether-cli-proxy-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ca_pem = write("ca.pem", &ca.pem());
    let cert = write("cert.pem", &leaf.cert_pem);
    let key = write("key.pem", &leaf.key_pem);
    let mut args = vec!["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
    args.extend_from_slice(extra);
    let (server, url, _) = serve(&args).await;
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    (server, format!("wss://localhost:{port}/"), ca_pem, dir)
}

#[tokio::test]
async fn rfc9110_9_3_6_connect_through_tinyproxy_to_serve_tls_byte_for_byte() {
    let Some(proxy) = proxies::tinyproxy(Some(("alice", "s3cret"))) else {
        return;
    };
    let (_server, url, ca, dir) = tls_server().await;
    let good = proxy.url("http", Some(("alice", "s3cret")));

    // --proxy URL
    let (code, stdout, stderr) = connect(&["-v", "--proxy", &good, "--ca", &ca, &url], &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, input(), "byte for byte");
    assert!(
        stderr.contains(&format!(
            "through the proxy http://alice:***@127.0.0.1:{} (--proxy)",
            proxy.port
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret"),
        "the password is never shown: {stderr}"
    );

    // HTTPS_PROXY for wss://, shown with -v
    let (code, stdout, stderr) =
        connect(&["-v", "--ca", &ca, &url], &[("HTTPS_PROXY", &good)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, input());
    assert!(stderr.contains("(from HTTPS_PROXY)"), "{stderr}");

    // no credentials: 407, never connected
    let (code, _, stderr) = connect(
        &["--proxy", &proxy.url("http", None), "--ca", &ca, &url],
        &[],
    )
    .await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("the proxy refused CONNECT: 407 Proxy Authentication Required"),
        "{stderr}"
    );
    // a wrong password: tinyproxy 1.11 answers 401
    let wrong = proxy.url("http", Some(("alice", "wrong")));
    let (code, _, stderr) = connect(&["--proxy", &wrong, "--ca", &ca, &url], &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("(it refused the user name and password)"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn rfc1928_connect_through_microsocks_from_all_proxy_and_a_wrong_password() {
    let Some(proxy) = proxies::microsocks(Some(("bob", "pw"))) else {
        return;
    };
    let (_server, url, ca, dir) = tls_server().await;
    let (code, stdout, stderr) = connect(
        &["-v", "--ca", &ca, &url],
        &[("ALL_PROXY", &proxy.url("socks5h", Some(("bob", "pw"))))],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, input(), "byte for byte");
    assert!(stderr.contains("socks5h://bob:***@127.0.0.1"), "{stderr}");
    assert!(stderr.contains("(from ALL_PROXY)"), "{stderr}");

    let wrong = proxy.url("socks5h", Some(("bob", "nope")));
    let (code, _, stderr) = connect(&["--proxy", &wrong, "--ca", &ca, &url], &[]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("SOCKS5 authentication failed"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn ws_through_http_proxy_and_the_exemptions() {
    let Some(proxy) = proxies::tinyproxy(None) else {
        return;
    };
    let (_server, url, _) = serve(&[]).await;
    let through = proxy.url("http", None);
    // http_proxy for ws://
    let (code, stdout, stderr) = connect(&["-v", &url], &[("http_proxy", &through)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, input());
    assert!(stderr.contains("(from http_proxy)"), "{stderr}");
    // a proxy that is not there: NO_PROXY and --no-proxy go direct
    let dead = "http://127.0.0.1:9";
    let (code, stdout, stderr) = connect(
        &["-v", &url],
        &[("http_proxy", dead), ("NO_PROXY", "localhost,127.0.0.1")],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, input());
    assert!(
        stderr.contains("no proxy for 127.0.0.1 (NO_PROXY)"),
        "{stderr}"
    );
    let (code, _, stderr) = connect(&["--no-proxy", &url], &[("http_proxy", dead)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // and without them, the dead proxy is named
    let (code, _, stderr) = connect(&[&url], &[("http_proxy", dead)]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the proxy http://127.0.0.1:9"),
        "{stderr}"
    );
}

/// `--http3` with a proxy from the environment: QUIC cannot go through
/// it, so the command says so (exit status 3, never connected) rather
/// than go around it; with `--http1-fallback` it connects over HTTP/1.1
/// through the proxy.
#[tokio::test]
async fn rfc9220_http3_refuses_a_proxy_by_name_and_falls_back_through_it() {
    let Some(proxy) = proxies::tinyproxy(Some(("alice", "s3cret"))) else {
        return;
    };
    let (_server, url, ca, dir) = tls_server().await;
    let good = proxy.url("http", Some(("alice", "s3cret")));
    let env = [("HTTPS_PROXY", good.as_str())];
    let (code, _, stderr) = connect(&["--http3", "--ca", &ca, &url], &env).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("HTTP/3 runs over QUIC"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    let (code, stdout, stderr) = connect(
        &["-v", "--http3", "--http1-fallback", "--ca", &ca, &url],
        &env,
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, input(), "byte for byte");
    assert!(stderr.contains("falling back to HTTP/1.1"), "{stderr}");
    assert!(stderr.contains("(from HTTPS_PROXY)"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `--http2` through a proxy: one CONNECT tunnel carries the HTTP/2
/// connection (RFC 9110 section 9.3.6), TLS with ALPN `h2` inside it.
#[tokio::test]
async fn rfc8441_http2_through_tinyproxy_byte_for_byte() {
    let Some(proxy) = proxies::tinyproxy(Some(("alice", "s3cret"))) else {
        return;
    };
    let (_server, url, ca, dir) = tls_server_with(&["--http2"]).await;
    let good = proxy.url("http", Some(("alice", "s3cret")));
    let (code, stdout, stderr) =
        connect(&["-v", "--http2", "--proxy", &good, "--ca", &ca, &url], &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, input(), "byte for byte");
    assert!(stderr.contains("(--proxy)"), "{stderr}");
    assert!(stderr.contains("over HTTP/2"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
