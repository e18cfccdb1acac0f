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

// ----- one connection in the CONNECTING state per host (RFC 6455 4.1) -----

/// Two connects to one host at once: the second does not even open TCP
/// until the first is established (RFC 6455 section 4.1, client
/// requirement 2: "no more than one connection in a CONNECTING state"),
/// then goes through while the first stays open; with
/// `one_connecting_per_host` off, it does not wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc6455_4_1_a_second_connect_to_a_host_waits_for_the_first_to_be_established() {
    use std::time::Duration;
    use tether::connecting::{Gate, Remote};
    for gated in [true, false] {
        let (listener, url) = listener().await;
        let remote = Remote::Address(listener.local_addr().unwrap());
        let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            let (first, _) = listener.accept().await.unwrap();
            accepted_tx.send(()).unwrap();
            go_rx.await.unwrap();
            // the first one's upgrade waits unanswered meanwhile: with the
            // rule, the second waits in line (the test saw it there) and
            // opens nothing; without, it comes
            let window = if gated { 300 } else { 10_000 };
            let early = within_secs_ms(window, listener.accept()).await.is_some();
            let (_first, _) = tether_tokio::accept(first, &ServerOptions::default())
                .await
                .unwrap();
            if !early {
                let (second, _) = listener.accept().await.unwrap();
                let _second = tether_tokio::accept(second, &ServerOptions::default())
                    .await
                    .unwrap();
            }
            early
        });
        let options = ClientOptions::new().config(tether::Config {
            one_connecting_per_host: gated,
            ..tether::Config::default()
        });
        let first = tokio::spawn({
            let (url, options) = (url.clone(), options.clone());
            async move { tether_tokio::connect(&url, &options).await }
        });
        accepted_rx.await.unwrap();
        let second =
            tokio::spawn(async move { tether_tokio::connect(&url, &options).await.map(|_| ()) });
        if gated {
            within(async {
                while Gate::global().waiting(&remote) == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        }
        go_tx.send(()).unwrap();
        let early = within(server).await.unwrap();
        assert_eq!(
            early, !gated,
            "a second connection while the first was connecting (gated: {gated})"
        );
        // the first stays open: its pass was for connecting only
        let _first = within(first).await.unwrap().unwrap();
        if gated {
            within(second).await.unwrap().unwrap();
        }
    }
}

/// A connect that waits for another to the same host still connecting
/// gives up at its connect timeout and says why.
#[tokio::test]
async fn rfc6455_4_1_the_wait_for_another_connection_is_bounded_by_the_connect_timeout() {
    use std::time::Duration;
    let (listener, url) = listener().await;
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        // never answers the first upgrade
        let (first, _) = listener.accept().await.unwrap();
        accepted_tx.send(()).unwrap();
        tokio::time::sleep(Duration::from_secs(15)).await;
        drop(first);
    });
    let first = tokio::spawn({
        let url = url.clone();
        async move {
            tether_tokio::connect(&url, &ClientOptions::new())
                .await
                .map(|_| ())
        }
    });
    accepted_rx.await.unwrap();
    let started = std::time::Instant::now();
    let options = ClientOptions::new().connect_timeout(Duration::from_millis(300));
    let err = within(tether_tokio::connect(&url, &options))
        .await
        .map(|_| ())
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, tether_tokio::Error::Connect { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("was still connecting (RFC 6455 section 4.1"),
        "{text}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    server.abort();
    first.abort();
}

async fn within_secs_ms<T>(ms: u64, f: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(std::time::Duration::from_millis(ms), f)
        .await
        .ok()
}

/// RFC 6455 section 4.2.1 with RFC 9110 section 15.5.9, in virtual time: a
/// request that does not arrive within the handshake timeout gets a 408,
/// then the server reads on and drops what the client still sends until
/// its end (a slowloris's next bytes would otherwise meet a closed
/// transport, and a reset), for at most `Config::fin_wait`. (The same with
/// real sockets, against the blocking adapter too, is in the behaviour
/// suite, `tether-behaviour`'s `tests/refusals.rs`.)
#[tokio::test(start_paused = true)]
async fn rfc6455_4_2_1_a_slow_client_gets_a_408_then_the_server_lingers_for_its_end() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::{Duration, Instant};
    let timeout = Duration::from_secs(3);
    let fin_wait = Duration::from_secs(2);
    let options = ServerOptions::default()
        .config(tether::Config {
            fin_wait,
            ..tether::Config::default()
        })
        .handshake_timeout(timeout);
    for client_ends in [true, false] {
        let (mut client, server_side) = tokio::io::duplex(4096);
        let start = Instant::now();
        let options = options.clone();
        let server = tokio::spawn(async move {
            let result = tether_tokio::accept(server_side, &options).await;
            (result.map(|_| ()).unwrap_err(), start.elapsed())
        });
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        tokio::time::sleep(timeout + Duration::from_millis(500)).await;
        // still trickling after the server gave up: read and dropped
        client.write_all(b"X-Slow: 1\r\n").await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{answer}"
        );
        assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
        let took = if client_ends {
            drop(client);
            let (err, took) = server.await.unwrap();
            assert!(
                matches!(
                    err,
                    tether_tokio::Error::Handshake(tether::upgrade::HandshakeError::Timeout(d))
                        if d == timeout
                ),
                "{err:?}"
            );
            took
        } else {
            let (_, took) = server.await.unwrap();
            drop(client);
            took
        };
        let want = if client_ends {
            timeout + Duration::from_millis(500)
        } else {
            timeout + fin_wait
        };
        assert!(
            took >= want && took < want + Duration::from_millis(10),
            "client ends: {client_ends}, took {took:?}"
        );
    }
}
