//! The opening handshake through the tokio adapter (RFC 6455 section 4):
//! a subprotocol chosen or the upgrade refused, and an answer that is not
//! an upgrade named for what it is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tether/tests/common/ports.rs"]
mod ports;

use common::*;
use futures_util::StreamExt;
use tether::CloseCode;
use tether::handshake::{AcceptOptions, Refusal};
use tether_tokio::{ClientOptions, ServerOptions};

#[tokio::test]
async fn subprotocol_chosen_or_upgrade_refused_403() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let res = tether_tokio::accept_with(tcp, &ServerOptions::default(), |req| {
                if req.path() == "/forbidden" {
                    return Err(Refusal::forbidden("not for you"));
                }
                let mut o = AcceptOptions::new();
                if let Some(p) = req.pick_subprotocol(&["v2.chat", "v1.chat"]) {
                    o = o.subprotocol(p);
                }
                Ok(o)
            })
            .await;
            if let Ok((mut ws, _)) = res {
                let _ = ws.next().await;
            }
        }
    });
    let options = ClientOptions::new().handshake(
        tether::handshake::ClientConfig::new()
            .subprotocol("v1.chat")
            .subprotocol("v2.chat"),
    );
    let (mut ws, accepted) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    assert_eq!(
        accepted.subprotocol(),
        Some("v1.chat"),
        "the client's first preference the server supports"
    );
    within(ws.close(CloseCode::NORMAL, "")).await.unwrap();
    let forbidden = url.replace("/test", "/forbidden");
    let err = within(tether_tokio::connect(&forbidden, &options))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    within(server).await.unwrap();
}

#[tokio::test]
async fn http_200_answer_names_the_cause() {
    let (listener, url) = listener().await;
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = tcp.read(&mut buf).await;
        let body = "<html>hello</html>";
        let _ = tcp
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
    });
    let err = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("200"), "{text}");
    assert!(text.contains("101"), "{text}");
}

/// Nothing listens on the port: the error names the host and the port, in
/// the blocking adapter's words and variant (`Error::Connect`).
#[tokio::test]
async fn a_refused_connect_names_the_host_and_port() {
    // a port nobody listens on
    let port = ports::free_port();
    let err = tether_tokio::connect(&format!("ws://127.0.0.1:{port}/"), &ClientOptions::new())
        .await
        .expect_err("connected to a closed port");
    assert!(
        matches!(&err, tether_tokio::Error::Connect { host, port: p, .. } if host == "127.0.0.1" && *p == port),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to 127.0.0.1 port {port}: ")),
        "{err}"
    );
}

/// `Duration::MAX` as a timeout means "no limit", not a panic: a client and
/// a server with every wait at `Duration::MAX` connect and exchange a
/// message (the deadlines came from `Instant + Duration`, which overflows).
#[tokio::test]
async fn timeouts_of_duration_max_mean_no_limit() {
    let never = std::time::Duration::MAX;
    let (listener, url) = listener().await;
    let config = tether::Config {
        connect_timeout: never,
        handshake_timeout: never,
        close_timeout: never,
        ..big_config()
    };
    let server_config = config.clone();
    let server = tokio::spawn(async move {
        let mut ws = accept_one(&listener, &ServerOptions::new().config(server_config)).await;
        let m = ws.next().await.unwrap().unwrap();
        ws.send(m).await.unwrap();
        let _ = ws.next().await;
    });
    let (mut ws, _) = within(tether_tokio::connect(
        &url,
        &ClientOptions::new().config(config),
    ))
    .await
    .unwrap();
    ws.send(tether::Message::text("hi")).await.unwrap();
    assert_eq!(
        within(ws.next()).await.unwrap().unwrap(),
        tether::Message::text("hi")
    );
    within(ws.close(CloseCode::NORMAL, "")).await.unwrap();
    within(server).await.unwrap();
}
