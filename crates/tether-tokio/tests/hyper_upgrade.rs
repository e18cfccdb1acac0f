//! `from_upgraded` behind a real HTTP stack: hyper's HTTP/1 server answers
//! the upgrade (RFC 6455 section 4.2.2), tether negotiates the extensions
//! with `tether::upgrade::Upgraded` and runs the upgraded stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tether::upgrade::Upgraded;
use tether::{CloseCode, Config, DeflateConfig, Message, Role};
use tokio::net::TcpListener;

fn deflate() -> Config {
    Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    }
}

/// hyper's service: the 101 with the extensions tether negotiated, then an
/// echo over the upgraded stream.
async fn upgrade(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, hyper::Error> {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|k| k.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut upgraded = Upgraded::new(Role::Server, deflate());
    let offers = req.headers().get_all(SEC_WEBSOCKET_EXTENSIONS);
    let answer = upgraded
        .answer_offers(offers.iter().map(|v| v.as_bytes()))
        .expect("well-formed offers");
    tokio::spawn(async move {
        let io = hyper::upgrade::on(&mut req).await.expect("upgraded");
        let mut ws = tether_tokio::from_upgraded(TokioIo::new(io), upgraded, &[]);
        while let Some(Ok(m)) = ws.next().await {
            if ws.send(m).await.is_err() {
                break;
            }
        }
    });
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header(SEC_WEBSOCKET_ACCEPT, tether::handshake::accept_key(&key));
    if let Some(answer) = answer {
        response = response.header(SEC_WEBSOCKET_EXTENSIONS, answer);
    }
    Ok(response.body(Empty::new()).expect("valid response"))
}

async fn hyper_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(upgrade);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn rfc7692_permessage_deflate_runs_behind_a_hyper_upgrade() {
    let addr = hyper_server().await;
    let options = tether_tokio::ClientOptions::new().config(deflate());
    let (mut ws, accepted) = tokio::time::timeout(
        Duration::from_secs(5),
        tether_tokio::connect(&format!("ws://{addr}/"), &options),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(accepted.extensions()[0].name(), "permessage-deflate");
    // compressed frames (RSV1) would be a protocol error to a server that
    // did not install the extension: the echoes prove it runs
    let text = "compress me ".repeat(1000);
    for _ in 0..3 {
        ws.send(Message::text(text.clone())).await.unwrap();
        let echo = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echo.as_text(), Some(text.as_str()));
    }
    let info = ws.close(CloseCode::NORMAL, "bye").await.unwrap();
    assert!(info.was_clean, "{info:?}");
}

#[tokio::test]
async fn rfc6455_9_1_without_an_offer_hyper_answers_no_extension() {
    let addr = hyper_server().await;
    let (mut ws, accepted) = tether_tokio::connect(
        &format!("ws://{addr}/"),
        &tether_tokio::ClientOptions::new(),
    )
    .await
    .unwrap();
    assert!(accepted.extensions().is_empty());
    ws.send(Message::text("plain")).await.unwrap();
    let echo = ws.next().await.unwrap().unwrap();
    assert_eq!(echo.as_text(), Some("plain"));
}
