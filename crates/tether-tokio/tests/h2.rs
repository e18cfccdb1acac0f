//! WebSockets over HTTP/2 (RFC 8441) through the tokio adapter's `http2`
//! feature: several on one connection, a reset that ends only its own
//! stream, a server without extended CONNECT, permessage-deflate, and flow
//! control reaching the sender.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tether-std/tests/common/proxies.rs"]
mod proxies;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tether::handshake::ClientConfig;
use tether::upgrade::{ClientConnect, Upgraded};
use tether::{CloseCode, Config, Message, Role};
use tether_tokio::http2::{H2Stream, Http2Client, Http2Server};
use tether_tokio::{ClientOptions, Error, ServerOptions, WebSocket};
use tokio::net::TcpListener;

use common::within;

/// An HTTP/2 echo server (prior knowledge): every WebSocket on every
/// connection echoes what it reads. Counts TCP connections; reports each
/// socket's end on `ends`.
async fn echo_server(
    options: ServerOptions,
) -> (
    String,
    Arc<AtomicUsize>,
    tokio::sync::mpsc::UnboundedReceiver<(String, tether::CloseInfo)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let (ends_tx, ends) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            let options = options.clone();
            let ends_tx = ends_tx.clone();
            tokio::spawn(async move {
                let mut server = Http2Server::handshake(tcp, &options).await.unwrap();
                while let Some(next) = server.accept().await {
                    let Ok((mut ws, request)) = next else {
                        continue;
                    };
                    let ends_tx = ends_tx.clone();
                    tokio::spawn(async move {
                        while let Some(Ok(m)) = ws.next().await {
                            if ws.send(m).await.is_err() {
                                break;
                            }
                        }
                        let info = ws.close_info().unwrap();
                        let _ = ends_tx.send((request.path().to_owned(), info));
                    });
                }
            });
        }
    });
    (url, connections, ends)
}

/// A raw h2 client (prior knowledge) to the server at `url`
/// (`ws://host:port`), its connection driven on a task.
async fn raw_h2_client(
    url: &str,
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = tokio::net::TcpStream::connect(url.trim_start_matches("ws://"))
        .await
        .unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    (send, tokio::spawn(connection))
}

async fn echo_round(ws: &mut WebSocket, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    let back = within(ws.next()).await.unwrap().unwrap();
    assert_eq!(back.as_text(), Some(text));
}

#[tokio::test]
async fn rfc8441_5_several_websockets_on_one_connection_echo_independently() {
    let (url, connections, _ends) = echo_server(ServerOptions::new()).await;
    let options = ClientOptions::new();
    let client = within(Http2Client::connect(&url, &options)).await.unwrap();
    assert!(client.extended_connect_enabled());
    let mut sockets = Vec::new();
    for i in 0..64 {
        let (ws, _) = within(client.open(&format!("{url}/ws/{i}"), &options))
            .await
            .unwrap();
        sockets.push(ws);
    }
    // all at once, each its own conversation
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            tokio::spawn(async move {
                for n in 0..20 {
                    let text = format!("socket {i} message {n}");
                    echo_round(&mut ws, &text).await;
                }
                let info = ws.close(CloseCode::NORMAL, "done").await.unwrap();
                assert!(info.was_clean, "{info:?}");
            })
        })
        .collect();
    for t in tasks {
        within(t).await.unwrap();
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1, "one TCP connection");
}

#[tokio::test]
async fn rfc8441_5_a_reset_stream_ends_only_its_own_websocket_with_1006() {
    let (url, _connections, mut ends) = echo_server(ServerOptions::new()).await;
    let addr = url.trim_start_matches("ws://").to_owned();
    // a raw h2 client, so the test holds one stream's send half to reset it
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let config = Config::default();
    let mut streams = Vec::new();
    for path in ["/a", "/b", "/victim"] {
        let mut connect =
            ClientConnect::new(&format!("{url}{path}"), ClientConfig::new(), &config).unwrap();
        let mut request = connect.request().unwrap();
        request
            .extensions_mut()
            .insert(h2::ext::Protocol::from_static("websocket"));
        let mut sender = within(send.clone().ready()).await.unwrap();
        let (response, stream) = sender.send_request(request, false).unwrap();
        let response = within(response).await.unwrap();
        connect.check_response(&response).unwrap();
        streams.push((stream, response.into_body()));
    }
    let (mut victim, _victim_recv) = streams.pop().unwrap();
    let mut sockets: Vec<WebSocket> = streams
        .into_iter()
        .map(|(s, r)| {
            tether_tokio::from_upgraded(
                H2Stream::new(s, r),
                Upgraded::new(Role::Client, config.clone()),
                &[],
            )
        })
        .collect();
    for ws in &mut sockets {
        echo_round(ws, "before").await;
    }
    victim.send_reset(h2::Reason::CANCEL);
    let (path, info) = within(ends.recv()).await.unwrap();
    assert_eq!(path, "/victim");
    assert_eq!(info.code, CloseCode::ABNORMAL, "{info:?}");
    assert!(!info.was_clean);
    assert!(info.reason.contains("RST_STREAM"), "{}", info.reason);
    // the others go on
    for ws in &mut sockets {
        echo_round(ws, "after").await;
    }
    for ws in &mut sockets {
        assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().was_clean);
    }
}

#[tokio::test]
async fn rfc8441_3_a_server_without_extended_connect_is_refused_by_name() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // plain h2: no SETTINGS_ENABLE_CONNECT_PROTOCOL
        let mut connection = h2::server::handshake(tcp).await.unwrap();
        while let Some(Ok(_)) = connection.accept().await {}
    });
    let err = within(Http2Client::connect(&url, &ClientOptions::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ExtendedConnectUnavailable(_)), "{err}");
    assert!(
        err.to_string()
            .contains("did not enable extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL"),
        "{err}"
    );
}

/// A WebSocket client refuses server push (SETTINGS_ENABLE_PUSH = 0): a
/// PUSH_PROMISE would wait, unread, on the WebSocket's stream for as long
/// as it lives, so a server could grow the client's memory without bound.
/// h2 had push on by default.
#[tokio::test]
async fn rfc9113_8_4_an_http2_client_refuses_server_push() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::Builder::new()
            .enable_connect_protocol()
            .handshake::<_, bytes::Bytes>(tcp)
            .await
            .unwrap();
        let (_request, mut respond) = connection.accept().await.unwrap().unwrap();
        tokio::spawn(async move { while let Some(Ok(_)) = connection.accept().await {} });
        let _stream = respond
            .send_response(hyper::http::Response::new(()), false)
            .unwrap();
        let promise = hyper::http::Request::get("http://localhost/pushed")
            .body(())
            .unwrap();
        let pushed = respond.push_request(promise);
        // hold the stream until the test has its answer
        tokio::time::sleep(Duration::from_millis(200)).await;
        pushed.map(|_| ()).map_err(|e| e.to_string())
    });
    let options = ClientOptions::new();
    let client = within(Http2Client::connect(&url, &options)).await.unwrap();
    let (_ws, _) = within(client.open(&url, &options)).await.unwrap();
    let pushed = within(server).await.unwrap();
    assert!(pushed.is_err(), "the server could push: {pushed:?}");
}

#[tokio::test]
async fn rfc8441_5_stream_end_is_the_transport_end() {
    // the client closes: its Close, the server's answer, then both
    // END_STREAMs; the server side ends clean with the client's code
    let (url, _connections, mut ends) = echo_server(ServerOptions::new()).await;
    let options = ClientOptions::new();
    let client = within(Http2Client::connect(&url, &options)).await.unwrap();
    let (mut ws, _) = within(client.open(&format!("{url}/end"), &options))
        .await
        .unwrap();
    echo_round(&mut ws, "hi").await;
    let info = within(ws.close(CloseCode::from(4001), "bye"))
        .await
        .unwrap();
    assert!(info.was_clean, "{info:?}");
    let (_, server_end) = within(ends.recv()).await.unwrap();
    assert_eq!(server_end.code, CloseCode::from(4001));
    assert!(server_end.was_clean, "{server_end:?}");
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn rfc7692_permessage_deflate_over_http2() {
    let deflate = tether::DeflateConfig::default();
    let (url, _connections, _ends) = echo_server(ServerOptions::new().deflate(deflate)).await;
    let options = ClientOptions::new().deflate(deflate);
    let client = within(Http2Client::connect(&url, &options)).await.unwrap();
    let (mut ws, accepted) = within(client.open(&format!("{url}/z"), &options))
        .await
        .unwrap();
    assert_eq!(accepted.extensions()[0].name(), "permessage-deflate");
    let big = "compressible ".repeat(10_000);
    echo_round(&mut ws, &big).await;
    ws.send(Message::binary(Bytes::from_static(&[0, 1, 2, 3])))
        .await
        .unwrap();
    let back = within(ws.next()).await.unwrap().unwrap();
    assert_eq!(back.as_bytes(), &[0, 1, 2, 3]);
}

/// How many bytes a client's sends put in flight towards a server
/// application that does not read, until a send waits: its WebSocket stops
/// reading at 64 KiB unread, h2 releases no more window, and the client's
/// sends stop completing. Then the server reads, and everything arrives in
/// order.
async fn in_flight_to_a_reader_that_stopped(server_config: Config) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let options = ServerOptions::new()
            .config(server_config)
            .max_unread_bytes(64 * 1024);
        let mut server = Http2Server::handshake(tcp, &options).await.unwrap();
        let (ws, _) = server.accept().await.unwrap().unwrap();
        let _ = held_tx.send(ws);
        // keep driving the connection
        while server.accept().await.is_some() {}
    });
    // our own queue bounded at 1 MiB, so what is in flight is the windows'
    let options = ClientOptions::new().config(Config {
        max_queued_output: 1 << 20,
        ..Config::default()
    });
    let client = within(Http2Client::connect(&url, &options)).await.unwrap();
    let (mut ws, _) = within(client.open(&format!("{url}/slow"), &options))
        .await
        .unwrap();
    let mut server_ws = within(held_rx).await.unwrap();
    let chunk = Bytes::from(vec![7u8; 16 * 1024]);
    let mut sent = 0usize;
    // until a send waits: the window is closed
    while let Ok(sent_one) = tokio::time::timeout(
        Duration::from_millis(500),
        ws.send(Message::binary(chunk.clone())),
    )
    .await
    {
        sent_one.unwrap();
        sent += 1;
        assert!(
            sent < 2_000,
            "32 MiB went out without a reader: no backpressure"
        );
    }
    let mut got = 0usize;
    while got < sent {
        let m = within(server_ws.next()).await.unwrap().unwrap();
        assert_eq!(m.as_bytes().len(), chunk.len());
        got += 1;
    }
    sent * chunk.len()
}

#[tokio::test]
async fn rfc9113_5_2_flow_control_reaches_the_sender() {
    // in flight: our 1 MiB queue, the stream's 256 KiB window, the
    // server's 64 KiB of unread messages and a read buffer; not 32 MiB
    let in_flight = in_flight_to_a_reader_that_stopped(Config::default()).await;
    assert!(in_flight < 3 << 20, "{in_flight} bytes in flight");
}

/// The stream's receive window is the server's
/// `Config::transport_stream_window`: at 8 MiB, that much more goes out
/// before a send waits.
#[tokio::test]
async fn rfc9113_6_9_2_the_stream_window_comes_from_the_config() {
    let config = Config {
        transport_stream_window: 8 << 20,
        ..Config::default()
    };
    let in_flight = in_flight_to_a_reader_that_stopped(config).await;
    assert!(in_flight > 8 << 20, "{in_flight} bytes in flight");
}

#[path = "common/autobahn_payloads.rs"]
mod autobahn_payloads;

/// The Autobahn data cases (1, 2, 5, 6, 9, a clean 7.1.1 close) echoed
/// tether to tether over one HTTP/2 stream, beside a second WebSocket on
/// the same connection: the stream carries every size and split unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8441_5_the_autobahn_data_cases_echo_over_an_http2_stream() {
    let (url, _connections, mut ends) = echo_server(ServerOptions::new()).await;
    let options = ClientOptions::new();
    let client = within(Http2Client::connect(&url, &options)).await.unwrap();
    let (mut beside, _) = within(client.open(&format!("{url}/beside"), &options))
        .await
        .unwrap();
    let (mut ws, _) = within(client.open(&format!("{url}/autobahn"), &options))
        .await
        .unwrap();
    autobahn_payloads::run(&mut ws).await;
    let (path, info) = within(ends.recv()).await.unwrap();
    assert_eq!(path, "/autobahn");
    assert!(info.was_clean && info.code == CloseCode::NORMAL, "{info}");
    echo_round(&mut beside, "still here").await;
}

/// A server that accepts TCP and says nothing (no SETTINGS): the HTTP/2
/// client's wait for them is the handshake's, bounded by
/// `Config::handshake_timeout` as over HTTP/3 and HTTP/1.1 (it waited
/// forever).
#[tokio::test]
async fn rfc9113_3_4_a_server_that_sends_no_settings_times_out_as_a_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(tcp);
    });
    let options = ClientOptions::new().handshake_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = within(Http2Client::connect(&url, &options))
        .await
        .expect_err("connected to a server that sent nothing");
    assert!(
        matches!(
            err,
            Error::Handshake(tether::upgrade::HandshakeError::Timeout(d)) if d == Duration::from_millis(300)
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    silent.abort();
}

/// HTTP/2 goes through the proxy the options choose, as HTTP/1.1 does
/// (RFC 9110 section 9.3.6: one CONNECT tunnel carries the one HTTP/2
/// connection); it connected directly, past the proxy, before.
#[tokio::test]
async fn rfc9110_9_3_6_http2_goes_through_the_chosen_proxy() {
    let Some(proxy) = proxies::tinyproxy(Some(("alice", "s3cret"))) else {
        return;
    };
    let (url, connections, _ends) = echo_server(ServerOptions::new()).await;
    let options = ClientOptions::new().proxy(
        tether::handshake::proxy::ProxyUrl::parse(&proxy.url("http", Some(("alice", "s3cret"))))
            .unwrap(),
    );
    let client = within(Http2Client::connect(&url, &options)).await.unwrap();
    let (mut ws, _) = within(client.open(&format!("{url}/via-proxy"), &options))
        .await
        .unwrap();
    echo_round(&mut ws, "through the tunnel").await;
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    // without the proxy's credentials, its refusal is the answer
    let refused = ClientOptions::new()
        .proxy(tether::handshake::proxy::ProxyUrl::parse(&proxy.url("http", None)).unwrap());
    let err = within(Http2Client::connect(&url, &refused))
        .await
        .expect_err("connected past the proxy");
    assert!(
        matches!(
            err,
            Error::Proxy(tether::handshake::proxy::ProxyError::HttpRefused { status: 407, .. })
        ),
        "{err}"
    );
}

/// A proxy that sends its `200` and the server's first bytes (HTTP/2's
/// SETTINGS, which a server may send before it hears from the client, RFC
/// 9113 section 3.4) in one write: those bytes are the server's, read
/// before the stream's (`ProxyConnect::take_leftover`), not an error
/// (tinyproxy sometimes did this, and the client failed with
/// `TrailingBytes`).
#[tokio::test]
async fn rfc9113_3_4_server_bytes_that_come_with_the_proxy_s_answer_are_the_server_s() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (url, _connections, _ends) = echo_server(ServerOptions::new()).await;
    let target = url.trim_start_matches("ws://").to_owned();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut client, _) = proxy.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            client.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(format!("CONNECT {target} ").as_bytes()));
        let mut server = tokio::net::TcpStream::connect(&target).await.unwrap();
        // the server speaks first: its SETTINGS go out with our answer
        let mut first = vec![0u8; 1024];
        let n = server.read(&mut first).await.unwrap();
        assert!(n > 0, "the HTTP/2 server sent nothing first");
        let mut answer = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
        answer.extend_from_slice(&first[..n]);
        client.write_all(&answer).await.unwrap();
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    });
    let options =
        ClientOptions::new().proxy(tether::handshake::proxy::ProxyUrl::parse(&proxy_url).unwrap());
    let client = within(Http2Client::connect(&url, &options)).await.unwrap();
    let (mut ws, _) = within(client.open(&format!("{url}/first"), &options))
        .await
        .unwrap();
    echo_round(&mut ws, "after the server spoke first").await;
}

/// A connection that fails (here a PING on a stream, a connection error
/// by RFC 9113 section 6.7) is reported by `accept` once, then `accept`
/// is `None`: h2 keeps returning the same error, and a server looping on
/// `accept` until `None` spun on it forever.
#[tokio::test]
async fn rfc9113_6_7_a_failed_connection_ends_the_accept_loop() {
    use tokio::io::AsyncWriteExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut server = Http2Server::handshake(tcp, &ServerOptions::new())
            .await
            .unwrap();
        let mut results = Vec::new();
        while let Some(next) = server.accept().await {
            results.push(next.map(|_| ()));
            assert!(results.len() < 10, "accept spins: {results:?}");
        }
        results
    });
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    // an empty SETTINGS, then a PING on stream 1
    tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut ping = vec![0, 0, 8, 6, 0, 0, 0, 0, 1];
    ping.extend_from_slice(&[0; 8]);
    tcp.write_all(&ping).await.unwrap();
    let results = within(server).await.unwrap();
    assert!(
        matches!(results.as_slice(), [Err(Error::Io(_))]),
        "{results:?}"
    );
}

/// An extended CONNECT is held to the server's head limits as an HTTP/1.1
/// upgrade is: too many fields are refused with 431 (RFC 6585 section 5),
/// and a header list over the limit never reaches the server whole (h2
/// enforces our `SETTINGS_MAX_HEADER_LIST_SIZE`, the head limit; h2's own
/// default was 16 MiB, and nothing bounded the count).
#[tokio::test]
async fn rfc6585_5_extended_connect_is_held_to_the_head_limits() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let limits = tether::handshake::Limits::new().with_max_headers(16);
        let options = ServerOptions::new().limits(limits);
        let mut server = Http2Server::handshake(tcp, &options).await.unwrap();
        let mut results = Vec::new();
        while let Some(next) = server.accept().await {
            results.push(next.map(|_| ()));
        }
        results
    });
    let (send, driver) = raw_h2_client(&url).await;
    let config = Config::default();
    let mut statuses = Vec::new();
    for (count, size) in [(20, 1), (1, 20 << 10)] {
        let mut handshake = ClientConfig::new();
        for i in 0..count {
            handshake = handshake.header(format!("x-{i}"), "v".repeat(size));
        }
        let connect = ClientConnect::new(&format!("{url}/"), handshake, &config).unwrap();
        let mut request = connect.request().unwrap();
        request
            .extensions_mut()
            .insert(h2::ext::Protocol::from_static("websocket"));
        let mut sender = within(send.clone().ready()).await.unwrap();
        let (response, _stream) = sender.send_request(request, false).unwrap();
        statuses.push(within(response).await.map(|r| r.status().as_u16()).ok());
    }
    // too many fields: our 431; too large: refused before it is whole
    assert_eq!(statuses[0], Some(431), "{statuses:?}");
    assert_ne!(statuses[1], Some(200), "{statuses:?}");
    drop(send);
    driver.abort();
    let results = within(server).await.unwrap();
    assert!(
        matches!(
            results.first(),
            Some(Err(Error::Handshake(
                tether::upgrade::HandshakeError::Request(
                    tether::handshake::RequestError::TooManyHeaders { limit: 16 }
                )
            )))
        ),
        "{results:?}"
    );
}

/// A server lets an HTTP/2 connection go when it carries no WebSocket for
/// the handshake timeout (GOAWAY, RFC 9113 section 6.8), from its start
/// or since its last WebSocket ended, as an HTTP/1.1 connection gets that
/// long for its request: an open WebSocket keeps it however long, and a
/// connection that never opens one, or whose WebSockets all ended, no
/// longer holds the server (and its slot) for good.
#[tokio::test]
async fn rfc9113_6_8_a_connection_without_websockets_goes_away_after_the_handshake_timeout() {
    let wait = Duration::from_millis(500);
    let options = ServerOptions::new().config(Config {
        handshake_timeout: wait,
        // after a GOAWAY, the client's time to end the connection
        close_timeout: wait,
        ..Config::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut ended_at = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut server = Http2Server::handshake(tcp, &options).await.unwrap();
            while let Some(next) = server.accept().await {
                let (mut ws, _) = next.unwrap();
                tokio::spawn(async move {
                    while let Some(Ok(m)) = ws.next().await {
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    }
                });
            }
            ended_at.push(tokio::time::Instant::now());
        }
        ended_at
    });
    let client_options = ClientOptions::new();
    // one that never opens a WebSocket
    let started = tokio::time::Instant::now();
    let _idle = within(Http2Client::connect(&url, &client_options))
        .await
        .unwrap();
    // one whose WebSocket stays open past the wait, then ends
    tokio::time::sleep(wait * 2).await;
    let client = within(Http2Client::connect(&url, &client_options))
        .await
        .unwrap();
    let (mut ws, _) = within(client.open(&format!("{url}/ws"), &client_options))
        .await
        .unwrap();
    tokio::time::sleep(wait * 2).await;
    echo_round(&mut ws, "still served").await;
    let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
    assert!(info.was_clean, "{info:?}");
    let closed = tokio::time::Instant::now();
    drop(ws);
    let ended_at = within(server).await.unwrap();
    let first = ended_at[0] - started;
    assert!(first >= wait && first < wait * 2, "{first:?}");
    let second = ended_at[1] - closed;
    assert!(second < wait * 2, "{second:?} after the WebSocket ended");
    assert!(
        ended_at[1] - started >= wait * 4,
        "ended while a WebSocket was open"
    );
}

/// A client that vanished after its preface (it never answers the PING
/// that h2 sends with GOAWAY, so h2 would keep waiting for it until TCP
/// gives up) is let go one wait after the GOAWAY.
#[tokio::test]
async fn rfc9113_6_8_a_client_that_never_answers_the_goaway_is_let_go() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let wait = Duration::from_millis(300);
    let options = ServerOptions::new().config(Config {
        handshake_timeout: wait,
        // after a GOAWAY, the client's time to end the connection
        close_timeout: wait,
        ..Config::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let started = tokio::time::Instant::now();
        let mut server = Http2Server::handshake(tcp, &options).await.unwrap();
        while server.accept().await.is_some() {}
        started.elapsed()
    });
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    // an empty SETTINGS, then silence (reading, so the server's writes go)
    tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let took = within(server).await.unwrap();
    assert!(took < wait * 4, "let go after {took:?}");
    reader.abort();
}

/// An HTTP/2 server tells its clients how many WebSockets one connection
/// may carry at once (`Config::transport_max_streams`, as
/// `SETTINGS_MAX_CONCURRENT_STREAMS`): a client opens no more until one
/// ends, so one connection, counted once by a server's connection limit,
/// cannot hold it many times over. There was no limit.
#[tokio::test]
async fn rfc9113_6_5_2_a_connection_carries_at_most_the_configured_websockets() {
    let (url, _connections, _ends) = echo_server(ServerOptions::new().config(Config {
        transport_max_streams: 2,
        ..Config::default()
    }))
    .await;
    let options = ClientOptions::new().handshake_timeout(Duration::from_millis(300));
    let client = within(Http2Client::connect(&url, &options)).await.unwrap();
    let (mut first, _) = within(client.open(&format!("{url}/1"), &options))
        .await
        .unwrap();
    let (_second, _) = within(client.open(&format!("{url}/2"), &options))
        .await
        .unwrap();
    let third = within(client.open(&format!("{url}/3"), &options)).await;
    assert!(
        matches!(third, Err(Error::Handshake(_))),
        "a third WebSocket opened: {:?}",
        third.map(|_| ())
    );
    // once one ends, there is room again
    within(first.close(CloseCode::NORMAL, "")).await.unwrap();
    drop(first);
    let mut opened = None;
    for _ in 0..20 {
        if let Ok(next) = within(client.open(&format!("{url}/3"), &options)).await {
            opened = Some(next);
            break;
        }
    }
    assert!(opened.is_some(), "no room after one ended");
}

/// A WebSocket request whose stream the client resets before the server
/// answers it (RFC 9113 section 8.1: either end may reset a stream) is
/// one stream's failure: `accept` says so (`ConnectionReset`, "the
/// connection goes on") and the next WebSocket on the same connection is
/// served. It said "the HTTP/2 connection failed", which `accept`'s docs
/// tell a server to take as the end of every WebSocket on the connection.
#[tokio::test]
async fn rfc9113_8_1_a_request_reset_before_its_answer_fails_only_its_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut server = Http2Server::handshake(tcp, &ServerOptions::new())
            .await
            .unwrap();
        // the client's request and its reset both arrive before we look
        go_rx.await.unwrap();
        let first = server.accept().await.unwrap().map(|_| ());
        // the connection is driven while `accept` is polled
        while let Some(next) = server.accept().await {
            let (mut ws, _) = next.unwrap();
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    let _ = ws.send(m).await;
                }
            });
        }
        first
    });
    let (send, driver) = raw_h2_client(&url).await;
    let config = Config::default();
    let request = |connect: &mut ClientConnect| {
        let mut request = connect.request().unwrap();
        request
            .extensions_mut()
            .insert(h2::ext::Protocol::from_static("websocket"));
        request
    };
    let mut first =
        ClientConnect::new(&format!("{url}/first"), ClientConfig::new(), &config).unwrap();
    let mut sender = within(send.clone().ready()).await.unwrap();
    let (_response, mut stream) = sender.send_request(request(&mut first), false).unwrap();
    stream.send_reset(h2::Reason::CANCEL);
    tokio::time::sleep(Duration::from_millis(100)).await;
    go_tx.send(()).unwrap();
    // a second WebSocket on the same connection
    let mut second =
        ClientConnect::new(&format!("{url}/second"), ClientConfig::new(), &config).unwrap();
    let mut sender = within(send.clone().ready()).await.unwrap();
    let (response, stream) = sender.send_request(request(&mut second), false).unwrap();
    let response = within(response).await.unwrap();
    second.check_response(&response).unwrap();
    let mut ws = tether_tokio::from_upgraded(
        H2Stream::new(stream, response.into_body()),
        Upgraded::new(Role::Client, config.clone()),
        &[],
    );
    echo_round(&mut ws, "still served").await;
    assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().was_clean);
    // the client goes: the server's accept loop ends
    drop(send);
    driver.abort();
    match within(server).await.unwrap() {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
            assert!(e.to_string().contains("the connection goes on"), "{e}");
        }
        other => panic!("expected the stream's failure, got {other:?}"),
    }
}

/// One write of exactly 4 GiB (possible with `max_message_size` of 4 GiB
/// or more) goes out as far as the stream's window allows: h2 takes a
/// reservation as a `u32`, so asking for 4 GiB reserved nothing and the
/// write waited until the drain deadline ended the connection.
#[tokio::test]
async fn rfc9113_6_9_a_write_of_4_gib_is_sent_as_far_as_the_window_allows() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::handshake(tcp).await.unwrap();
        // answers the one request and holds its stream open, reading nothing
        let (_request, mut respond) = connection.accept().await.unwrap().unwrap();
        let _send = respond
            .send_response(tether::handshake::http::Response::new(()), false)
            .unwrap();
        std::future::poll_fn(|cx| connection.poll_closed(cx))
            .await
            .ok();
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut sender = within(send.ready()).await.unwrap();
    let request = tether::handshake::http::Request::post(format!("http://{addr}/"))
        .body(())
        .unwrap();
    let (response, stream) = sender.send_request(request, false).unwrap();
    let response = within(response).await.unwrap();
    let mut h2_stream = H2Stream::new(stream, response.into_body());
    // 4 GiB of zeros, never touched past what is sent
    let big = vec![0u8; 4 << 30];
    let wrote = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncWriteExt::write(&mut h2_stream, &big),
    )
    .await
    .expect("a 4 GiB write waited");
    assert!(wrote.unwrap() > 0);
}

/// A server at its connection limit starts HTTP/2 only to refuse
/// (`Http2Server::handshake_to_refuse`): every request gets its 503, and
/// its SETTINGS give the client no room for a request body (a stream's
/// window is 0), one stream at a time and header lists of 4 KiB, so a
/// refused connection holds at most the connection's initial 65,535 bytes
/// of DATA whatever the client sends. Started as a serving connection
/// (the refusal did so), each stream could bring the configured 256 KiB
/// and the connection 16 MiB.
#[tokio::test]
async fn rfc9113_6_5_2_a_connection_started_to_refuse_takes_no_request_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let options = ServerOptions::default();
                let mut server = Http2Server::handshake_to_refuse(tcp, &options)
                    .await
                    .unwrap();
                while server
                    .accept_with(|_| Err(tether::Admission::refusal()))
                    .await
                    .is_some()
                {}
            });
        }
    });
    // what the server's SETTINGS say, read off the wire
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut head = [0u8; 9];
    within(tcp.read_exact(&mut head)).await.unwrap();
    assert_eq!(head[3], 0x4, "the server's first frame is its SETTINGS");
    let mut payload = vec![0; usize::from(head[1]) << 8 | usize::from(head[2])];
    within(tcp.read_exact(&mut payload)).await.unwrap();
    let settings: std::collections::HashMap<u16, u32> = payload
        .chunks_exact(6)
        .map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
        .collect();
    // MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_HEADER_LIST_SIZE
    assert_eq!(settings.get(&0x3), Some(&1), "{settings:?}");
    assert_eq!(settings.get(&0x4), Some(&0), "{settings:?}");
    assert_eq!(settings.get(&0x6), Some(&(4 << 10)), "{settings:?}");
    // and each request is answered with the refusal
    let (mut send, _connection) = raw_h2_client(&format!("ws://{addr}")).await;
    for _ in 0..2 {
        let request = tether::handshake::http::Request::builder()
            .method(tether::handshake::http::Method::CONNECT)
            .uri(format!("http://{addr}/"))
            .extension(h2::ext::Protocol::from_static("websocket"))
            .header("sec-websocket-version", "13")
            .body(())
            .unwrap();
        send = within(send.ready()).await.unwrap();
        let (response, _body) = send.send_request(request, false).unwrap();
        assert_eq!(within(response).await.unwrap().status(), 503);
    }
}
