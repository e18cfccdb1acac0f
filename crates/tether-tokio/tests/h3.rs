//! WebSockets over HTTP/3 (RFC 9220) through the tokio adapter's `http3`
//! feature, on real QUIC over 127.0.0.1 with a certificate made in the
//! test: 64 on one QUIC connection, a reset that ends only its own stream,
//! stream end as the transport's end, permessage-deflate, a server without
//! extended CONNECT refused by name, and flow control reaching the sender.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/quic.rs"]
mod quic;
use quic::{certificate, local_server, quic_h3_client, quic_h3_client_with};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use rustls::pki_types::CertificateDer;
use std::time::Duration;
use tether::handshake::ClientConfig;
use tether::upgrade::ClientConnect;

use tether::{CloseCode, Config, Message};
use tether_tokio::http3::{Http3Client, Http3Server, server_endpoint};
use tether_tokio::{ClientOptions, Error, ServerOptions, WebSocket};

use common::{within, within_secs};

type Ends = tokio::sync::mpsc::UnboundedReceiver<(String, tether::CloseInfo)>;

/// An HTTP/3 echo server on a UDP port of 127.0.0.1: every WebSocket on
/// every QUIC connection echoes what it reads. Counts QUIC connections;
/// reports each socket's end on `ends`.
async fn echo_server(options: ServerOptions) -> Server {
    let (cert, tls) = certificate();
    let endpoint =
        server_endpoint("127.0.0.1:0".parse().unwrap(), &tls, &Config::default()).unwrap();
    let url = format!("wss://localhost:{}", endpoint.local_addr().unwrap().port());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let (ends_tx, ends) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let options = options.clone();
            let ends_tx = ends_tx.clone();
            tokio::spawn(async move {
                let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
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
    let options = ClientOptions::new().add_root_certificate(cert.clone());
    Server {
        url,
        cert,
        options,
        connections,
        ends,
    }
}

struct Server {
    /// `wss://localhost:PORT`
    url: String,
    cert: CertificateDer<'static>,
    /// Client options that trust the server's certificate.
    options: ClientOptions,
    connections: Arc<AtomicUsize>,
    ends: Ends,
}

async fn echo_round(ws: &mut WebSocket, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    let back = within(ws.next()).await.unwrap().unwrap();
    assert_eq!(back.as_text(), Some(text));
}

#[tokio::test]
async fn rfc9220_3_64_websockets_on_one_quic_connection_echo_independently() {
    let Server {
        url,
        options,
        connections,
        ..
    } = echo_server(ServerOptions::new()).await;
    let client = within(Http3Client::connect(&url, &options)).await.unwrap();
    assert!(client.extended_connect_enabled());
    let mut sockets = Vec::new();
    for i in 0..64 {
        let (ws, _) = within(client.open(&format!("{url}/ws/{i}"), &options))
            .await
            .unwrap();
        sockets.push(ws);
    }
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            tokio::spawn(async move {
                for n in 0..20 {
                    echo_round(&mut ws, &format!("socket {i} message {n}")).await;
                }
                let big = vec![i as u8; 100_000];
                ws.send(Message::binary(big.clone())).await.unwrap();
                let back = within(ws.next()).await.unwrap().unwrap();
                assert_eq!(back.as_bytes(), &big[..]);
                let info = ws.close(CloseCode::NORMAL, "done").await.unwrap();
                assert!(info.was_clean, "{info:?}");
            })
        })
        .collect();
    for t in tasks {
        within(t).await.unwrap();
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1, "one QUIC connection");
}

#[tokio::test]
async fn rfc9220_3_a_reset_stream_ends_only_its_own_websocket_with_1006() {
    let Server {
        url,
        cert,
        options,
        mut ends,
        ..
    } = echo_server(ServerOptions::new()).await;
    let client = within(Http3Client::connect(&url, &options)).await.unwrap();
    let mut sockets = Vec::new();
    for path in ["/a", "/b"] {
        let (ws, _) = within(client.open(&format!("{url}{path}"), &options))
            .await
            .unwrap();
        sockets.push(ws);
    }
    // the victim: a raw h3 request stream on its own QUIC connection, so
    // the test holds it to reset
    let mut send = raw_h3(&url, cert).await;
    let (mut connect, request) = websocket_request(&format!("{url}/victim"));
    let mut victim = within(send.send_request(request)).await.unwrap();
    let response = within(victim.recv_response()).await.unwrap();
    connect.check_response(&response).unwrap();
    for ws in &mut sockets {
        echo_round(ws, "before").await;
    }
    victim.stop_stream(h3::error::Code::H3_REQUEST_CANCELLED);
    let (path, info) = within(ends.recv()).await.unwrap();
    assert_eq!(path, "/victim");
    assert_eq!(info.code, CloseCode::ABNORMAL, "{info:?}");
    assert!(!info.was_clean);
    assert!(
        info.reason.contains("reset the HTTP/3 stream"),
        "{}",
        info.reason
    );
    // the others go on
    for ws in &mut sockets {
        echo_round(ws, "after").await;
    }
    for ws in &mut sockets {
        assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().was_clean);
    }
}

/// A raw h3 client on a QUIC connection of its own to `url` (trusting
/// `cert`), its driver on a task, once the server's SETTINGS are in.
async fn raw_h3(
    url: &str,
    cert: CertificateDer<'static>,
) -> h3::client::SendRequest<h3_quinn::OpenStreams, Bytes> {
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let (endpoint, connection) = quic_h3_client(cert, port).await;
    h3_on(connection, Some(endpoint)).await
}

/// A raw h3 client on `connection` (its `endpoint` kept while it runs),
/// its driver on a task, once the server's SETTINGS are in.
async fn h3_on(
    connection: quinn::Connection,
    endpoint: Option<quinn::Endpoint>,
) -> h3::client::SendRequest<h3_quinn::OpenStreams, Bytes> {
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(connection))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        drop(endpoint);
    });
    // h3 (unlike Http3Client) does not wait for the server's SETTINGS
    let mut waited = 0;
    while !h3::ConnectionState::settings(&send).enable_extended_connect() {
        waited += 1;
        assert!(waited < 500, "no SETTINGS from the server");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    send
}

/// An extended CONNECT for a WebSocket at `url` (`:protocol websocket`),
/// with the handshake that checks its answer.
fn websocket_request(url: &str) -> (ClientConnect, tether::handshake::http::Request<()>) {
    let connect = ClientConnect::new(url, ClientConfig::new(), &Config::default()).unwrap();
    let mut request = connect.request().unwrap();
    request
        .extensions_mut()
        .insert(h3::ext::Protocol::WEBSOCKET);
    (connect, request)
}

#[tokio::test]
async fn rfc9220_3_stream_end_is_the_transport_end() {
    // the client closes: its Close, the server's answer, then both FINs;
    // the server side ends clean with the client's code
    let Server {
        url,
        options,
        mut ends,
        ..
    } = echo_server(ServerOptions::new()).await;
    let client = within(Http3Client::connect(&url, &options)).await.unwrap();
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

#[tokio::test]
async fn rfc9220_3_a_websocket_outlives_the_client_handle_it_came_from() {
    // h3 closes a client's connection with its last request sender: the
    // WebSocket holds one, so dropping the client changes nothing
    let Server { url, options, .. } = echo_server(ServerOptions::new()).await;
    let client = within(Http3Client::connect(&url, &options)).await.unwrap();
    let (mut ws, _) = within(client.open(&format!("{url}/alone"), &options))
        .await
        .unwrap();
    drop(client);
    for n in 0..10 {
        echo_round(&mut ws, &format!("still here {n}")).await;
    }
    assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().was_clean);
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn rfc7692_permessage_deflate_over_http3() {
    let deflate = tether::DeflateConfig::default();
    let Server { url, options, .. } = echo_server(ServerOptions::new().deflate(deflate)).await;
    let options = options.deflate(deflate);
    let client = within(Http3Client::connect(&url, &options)).await.unwrap();
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
    assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().was_clean);
}

#[tokio::test]
async fn rfc9220_3_a_server_without_extended_connect_is_refused_by_name() {
    let (cert, tls) = certificate();
    let endpoint =
        server_endpoint("127.0.0.1:0".parse().unwrap(), &tls, &Config::default()).unwrap();
    let url = format!("wss://localhost:{}/", endpoint.local_addr().unwrap().port());
    tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let connection = incoming.await.unwrap();
        // plain h3: no SETTINGS_ENABLE_CONNECT_PROTOCOL
        let mut h3 = h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(connection))
            .await
            .unwrap();
        while let Ok(Some(_)) = h3.accept().await {}
    });
    let options = ClientOptions::new().add_root_certificate(cert);
    let err = within(Http3Client::connect(&url, &options))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ExtendedConnectUnavailable(_)), "{err}");
    assert!(
        err.to_string()
            .contains("did not enable extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL"),
        "{err}"
    );
}

#[tokio::test]
async fn rfc9001_ws_url_is_refused_by_name() {
    let err = Http3Client::connect("ws://127.0.0.1:1/", &ClientOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Url(_)), "{err}");
    assert!(err.to_string().contains("use wss://"), "{err}");
}

#[tokio::test]
async fn rfc9000_4_flow_control_reaches_the_sender() {
    // A server application that does not read: its WebSocket stops reading
    // at max_unread_bytes, quinn grants no more stream credit, and the
    // client's sends stop completing, with far less than what it tried in
    // flight.
    let (cert, tls) = certificate();
    let endpoint =
        server_endpoint("127.0.0.1:0".parse().unwrap(), &tls, &Config::default()).unwrap();
    let url = format!("wss://localhost:{}", endpoint.local_addr().unwrap().port());
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let options = ServerOptions::new().max_unread_bytes(64 * 1024);
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        let (ws, _) = server.accept().await.unwrap().unwrap();
        let _ = held_tx.send(ws);
        // keep driving the connection
        while server.accept().await.is_some() {}
        drop(endpoint);
    });
    // our own queue bounded at 1 MiB, so what is in flight is the windows'
    let options = ClientOptions::new()
        .add_root_certificate(cert)
        .config(Config {
            max_queued_output: 1 << 20,
            ..Config::default()
        });
    let client = within(Http3Client::connect(&url, &options)).await.unwrap();
    let (mut ws, _) = within(client.open(&format!("{url}/slow"), &options))
        .await
        .unwrap();
    let mut server_ws = within(held_rx).await.unwrap();
    let chunk = Bytes::from(vec![7u8; 16 * 1024]);
    let mut sent = 0usize;
    // until a send waits: the window is closed
    while let Ok(sent_one) = tokio::time::timeout(
        std::time::Duration::from_millis(500),
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
    // in flight: our 1 MiB queue, the stream's 256 KiB window, the
    // server's 64 KiB of unread messages, one write and read buffers; not
    // 32 MiB
    assert!(sent * chunk.len() < 3 * 1024 * 1024, "sent {sent} chunks");
    // once the server reads, everything arrives, in order
    let mut got = 0usize;
    while got < sent {
        let m = within(server_ws.next()).await.unwrap().unwrap();
        assert_eq!(m.as_bytes().len(), chunk.len());
        got += 1;
    }
}

/// A WebSocket whose transport is dropped in the middle of a write (its
/// peer stopped reading, its Close never got out, the close timeout ended
/// it) resets its own stream and nothing else: the other WebSocket on the
/// same QUIC connection still echoes once the peer reads on. The stream
/// was ended with a FIN after a DATA frame cut short, which the peer must
/// treat as an error of the whole connection when it reads that far (RFC
/// 9114 section 7.1: H3_FRAME_ERROR), ending every WebSocket on it.
#[tokio::test]
async fn rfc9114_7_1_a_websocket_ended_mid_write_resets_only_its_stream() {
    let (cert, tls) = certificate();
    let endpoint =
        server_endpoint("127.0.0.1:0".parse().unwrap(), &tls, &Config::default()).unwrap();
    let url = format!("wss://localhost:{}", endpoint.local_addr().unwrap().port());
    let (read_tx, read_rx) = tokio::sync::oneshot::channel::<()>();
    let mut read_rx = Some(read_rx);
    tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let options = ServerOptions::new().max_unread_bytes(64 * 1024);
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        while let Some(next) = server.accept().await {
            let Ok((mut ws, request)) = next else {
                continue;
            };
            if request.path() == "/stall" {
                // reads nothing until told, then reads what came to its end
                let go = read_rx.take().unwrap();
                tokio::spawn(async move {
                    let _ = go.await;
                    while let Some(Ok(_)) = ws.next().await {}
                });
                continue;
            }
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
        drop(endpoint);
    });
    let options = ClientOptions::new()
        .add_root_certificate(cert)
        .config(Config {
            max_queued_output: 64 * 1024,
            close_timeout: Duration::from_millis(300),
            ..Config::default()
        });
    let client = within(Http3Client::connect(&url, &options)).await.unwrap();
    let (mut stalled, _) = within(client.open(&format!("{url}/stall"), &options))
        .await
        .unwrap();
    let (mut echo, _) = within(client.open(&format!("{url}/echo"), &options))
        .await
        .unwrap();
    echo_round(&mut echo, "before").await;
    // fill the stalled stream until a send waits: a write is in flight
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    while tokio::time::timeout(
        Duration::from_millis(300),
        stalled.send(Message::binary(chunk.clone())),
    )
    .await
    .is_ok()
    {}
    // our Close cannot get out: the close timeout ends it, abnormally
    let info = within(stalled.close(CloseCode::NORMAL, "")).await.unwrap();
    assert_eq!(info.code, CloseCode::ABNORMAL, "{info:?}");
    assert!(!info.was_clean, "{info:?}");
    drop(stalled);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // the server reads the stalled stream to its end
    read_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    echo_round(&mut echo, "after").await;
}

#[path = "common/autobahn_payloads.rs"]
mod autobahn_payloads;

/// The Autobahn data cases (1, 2, 5, 6, 9, a clean 7.1.1 close) echoed
/// tether to tether over one HTTP/3 request stream, beside a second
/// WebSocket on the same QUIC connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9220_3_the_autobahn_data_cases_echo_over_an_http3_stream() {
    let Server {
        url,
        options,
        mut ends,
        ..
    } = echo_server(ServerOptions::new()).await;
    let client = within(Http3Client::connect(&url, &options)).await.unwrap();
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

/// QUIC's idle timeout is the connection's `Config::transport_idle_timeout`
/// (RFC 9000 section 10.1): a handshake that gets no answer fails after it,
/// and the error names the wait.
#[tokio::test]
async fn rfc9000_10_1_the_idle_timeout_comes_from_the_config() {
    // a UDP port that never answers
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("wss://localhost:{}/", silent.local_addr().unwrap().port());
    let config = Config {
        transport_idle_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(15),
        ..Config::default()
    };
    let options = ClientOptions::new().config(config);
    let started = std::time::Instant::now();
    let Err(err) = within(Http3Client::connect(&url, &options)).await else {
        panic!("nobody answers, yet it connected");
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended by the 300 ms idle timeout, not the 15 s connect timeout"
    );
    let text = err.to_string();
    assert!(
        text.contains("did not answer over QUIC") && text.contains("300ms"),
        "{text}"
    );
    drop(silent);
}

/// A proxy the options choose cannot carry QUIC (its tunnels are TCP): the
/// HTTP/3 client says so instead of going around it, as it did.
#[tokio::test]
async fn rfc9220_a_chosen_proxy_is_named_not_bypassed() {
    let Server { url, options, .. } = echo_server(ServerOptions::new()).await;
    let options = options.proxy(
        tether::handshake::proxy::ProxyUrl::parse("http://user:secret@127.0.0.1:9").unwrap(),
    );
    let err = within(Http3Client::connect(&url, &options))
        .await
        .expect_err("connected past the proxy");
    assert!(
        matches!(
            &err,
            tether_tokio::Error::Proxy(tether::handshake::proxy::ProxyError::NotForQuic { .. })
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("HTTP/3 runs over QUIC"), "{text}");
    assert!(!text.contains("secret"), "the password shown: {text}");
}

/// The first request stream's result on a server whose handshake timeout
/// is `timeout`, and how long its `accept` took (the server's certificate
/// and port, and its task).
type FirstAccept = (Option<Result<(), Error>>, Duration, quinn::Endpoint);

fn first_accept_within(
    timeout: Duration,
) -> (
    CertificateDer<'static>,
    u16,
    tokio::task::JoinHandle<FirstAccept>,
) {
    let (cert, endpoint, port) = local_server();
    let options = ServerOptions::new().handshake_timeout(timeout);
    let server = tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        let started = std::time::Instant::now();
        let first = server.accept().await.map(|r| r.map(|_| ()));
        (first, started.elapsed(), endpoint)
    });
    (cert, port, server)
}

/// Checks the first request ended with the handshake timeout (`timeout`);
/// how long its `accept` took.
async fn ends_with_the_handshake_timeout(
    server: tokio::task::JoinHandle<FirstAccept>,
    timeout: Duration,
) -> Duration {
    let (first, elapsed, _endpoint) = within(server).await.unwrap();
    assert!(
        matches!(
            first,
            Some(Err(Error::Handshake(tether::upgrade::HandshakeError::Timeout(t)))) if t == timeout
        ),
        "{first:?}"
    );
    elapsed
}

/// A request stream whose HEADERS never come does not hold the server's
/// accept: it ends with a handshake timeout (`Config::handshake_timeout`),
/// so the connection's next WebSockets are accepted; it waited forever.
#[tokio::test]
async fn rfc9220_a_request_whose_headers_never_come_is_bounded() {
    let timeout = Duration::from_millis(300);
    let (cert, port, server) = first_accept_within(timeout);
    // a QUIC client speaking h3 that opens a request stream and sends the
    // first byte of a HEADERS frame, then nothing
    let (_client, connection) = quic_h3_client(cert, port).await;
    let (mut send, _recv) = within(connection.open_bi()).await.unwrap();
    send.write_all(&[0x01]).await.unwrap();
    let elapsed = ends_with_the_handshake_timeout(server, timeout).await;
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    drop(connection);
}

/// A connection that fails (here the client closes it with
/// H3_GENERAL_PROTOCOL_ERROR) is reported by `accept` once, then `accept`
/// is `None`: h3 keeps returning the same error, and a server looping on
/// `accept` until `None` spun on it forever.
#[tokio::test]
async fn rfc9114_8_a_failed_connection_ends_the_accept_loop() {
    let (cert, endpoint, port) = local_server();
    let server = tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &ServerOptions::new())
            .await
            .unwrap();
        let mut results = Vec::new();
        while let Some(next) = server.accept().await {
            results.push(next.map(|_| ()));
            assert!(results.len() < 10, "accept spins: {results:?}");
        }
        (results, endpoint)
    });
    let (_client, connection) = quic_h3_client(cert, port).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    connection.close(0x101u32.into(), b"gone");
    let (results, _endpoint) = within(server).await.unwrap();
    assert!(
        matches!(results.as_slice(), [Err(Error::Io(_))]),
        "{results:?}"
    );
}

/// A request stream whose HEADERS never come holds no other stream of its
/// connection: the WebSocket opened after it on the same QUIC connection is
/// accepted at once, not after the stalled stream's handshake timeout (the
/// server waited for each request's HEADERS in turn, inside `accept`).
#[tokio::test]
async fn rfc9220_3_a_stalled_request_does_not_hold_the_next_one() {
    let (cert, endpoint, port) = local_server();
    let url = format!("wss://localhost:{port}");
    let options = ServerOptions::new().handshake_timeout(Duration::from_secs(20));
    let server = tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        let first = server.accept().await.map(|r| r.map(|(_, request)| request));
        (first, server, endpoint)
    });
    let (_client, connection) = quic_h3_client(cert, port).await;
    // a request stream with the first byte of a HEADERS frame, then nothing
    let (mut stalled, _recv) = within(connection.open_bi()).await.unwrap();
    stalled.write_all(&[0x01]).await.unwrap();
    // then a WebSocket on the same connection
    let mut send = h3_on(connection.clone(), None).await;
    let (mut connect, request) = websocket_request(&format!("{url}/next"));
    let started = std::time::Instant::now();
    let mut stream = within(send.send_request(request)).await.unwrap();
    let response = within(stream.recv_response()).await.unwrap();
    connect.check_response(&response).unwrap();
    let (first, _server, _endpoint) = within(server).await.unwrap();
    assert_eq!(first.unwrap().unwrap().path(), "/next");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
}

/// What an HTTP/3 server whose handshake timeout (the vacancy wait) is
/// `wait` needs: its options, the certificate to trust, its endpoint and
/// its URL.
fn waiting_server(
    wait: Duration,
) -> (
    ServerOptions,
    CertificateDer<'static>,
    quinn::Endpoint,
    String,
) {
    let options = ServerOptions::new().config(Config {
        handshake_timeout: wait,
        // after a GOAWAY, the client's time to end the connection
        close_timeout: wait,
        ..Config::default()
    });
    let (cert, tls) = certificate();
    let endpoint =
        server_endpoint("127.0.0.1:0".parse().unwrap(), &tls, &Config::default()).unwrap();
    let url = format!("wss://localhost:{}", endpoint.local_addr().unwrap().port());
    (options, cert, endpoint, url)
}

/// A server lets a QUIC connection go when it carries no WebSocket for the
/// handshake timeout (GOAWAY, RFC 9114 section 5.2), from its start or
/// since its last WebSocket ended, and the client then had the close
/// timeout to close it itself, as over HTTP/2: an open WebSocket keeps it
/// however long; a client keeping QUIC alive with none open no longer
/// holds the server for good.
#[tokio::test]
async fn rfc9114_5_2_a_connection_without_websockets_goes_away_after_the_handshake_timeout() {
    let wait = Duration::from_millis(500);
    let (options, cert, endpoint, url) = waiting_server(wait);
    let server = tokio::spawn(async move {
        let mut ended_at = Vec::new();
        for _ in 0..2 {
            let incoming = endpoint.accept().await.unwrap();
            let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
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
        (ended_at, endpoint)
    });
    let client_options = ClientOptions::new().add_root_certificate(cert);
    // one that never opens a WebSocket
    let started = tokio::time::Instant::now();
    let _idle = within(Http3Client::connect(&url, &client_options))
        .await
        .unwrap();
    // one whose WebSocket stays open past the wait, then ends
    tokio::time::sleep(wait * 2).await;
    let client = within(Http3Client::connect(&url, &client_options))
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
    let (ended_at, _endpoint) = within(server).await.unwrap();
    // the wait, then the client's time to close (`close_timeout`, the
    // same here)
    let first = ended_at[0] - started;
    assert!(first >= wait * 2 && first < wait * 3, "{first:?}");
    let second = ended_at[1] - closed;
    assert!(second < wait * 3, "{second:?} after the WebSocket ended");
    assert!(
        ended_at[1] - started >= wait * 4,
        "ended while a WebSocket was open"
    );
}

/// The wait counts from the end of the last WebSocket, not from the
/// connection's start: a server that serves one WebSocket at a time (its
/// loop awaits each before accepting again; quinn moves the QUIC
/// connection meanwhile) keeps a connection whose WebSocket lasted longer
/// than the wait, and serves the next one opened soon after.
#[tokio::test]
async fn rfc9114_5_2_a_websocket_served_before_the_next_accept_restarts_the_wait() {
    let wait = Duration::from_millis(500);
    let (options, cert, endpoint, url) = waiting_server(wait);
    let server = tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        let mut served = 0;
        // one at a time
        while let Some(next) = server.accept().await {
            let (mut ws, _) = next.unwrap();
            while let Some(Ok(m)) = ws.next().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
            drop(ws);
            served += 1;
        }
        (served, endpoint)
    });
    let client_options = ClientOptions::new().add_root_certificate(cert);
    let client = within(Http3Client::connect(&url, &client_options))
        .await
        .unwrap();
    for _ in 0..2 {
        let (mut ws, _) = within(client.open(&format!("{url}/ws"), &client_options))
            .await
            .unwrap();
        tokio::time::sleep(wait * 2).await;
        echo_round(&mut ws, "served").await;
        within(ws.close(CloseCode::NORMAL, "")).await.unwrap();
        drop(ws);
        tokio::time::sleep(wait / 6).await;
    }
    let (served, _endpoint) = within(server).await.unwrap();
    assert_eq!(served, 2);
}

/// Only WebSockets hold a vacant connection: requests whose HEADERS never
/// complete do not, even when a new one comes before the last times out
/// (each stream sends one byte of a HEADERS frame every two thirds of the
/// wait). They counted as WebSockets, so such a client held the
/// connection, and the server's slot, for as long as it went on.
#[tokio::test]
async fn rfc9114_5_2_requests_that_never_complete_do_not_hold_a_vacant_connection() {
    let wait = Duration::from_millis(500);
    let (options, cert, endpoint, _url) = waiting_server(wait);
    let port = endpoint.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        let started = tokio::time::Instant::now();
        while let Some(next) = server.accept().await {
            assert!(next.is_err(), "no request completes");
        }
        (started.elapsed(), endpoint)
    });
    let (_client, connection) = quic_h3_client(cert, port).await;
    let trickle = tokio::spawn(async move {
        let mut streams = Vec::new();
        for _ in 0..15 {
            let Ok((mut send, recv)) = connection.open_bi().await else {
                break;
            };
            if send.write_all(&[0x01]).await.is_err() {
                break;
            }
            streams.push((send, recv));
            tokio::time::sleep(wait * 2 / 3).await;
        }
    });
    let (elapsed, _endpoint) = within(server).await.unwrap();
    assert!(elapsed < wait * 4, "let go after {elapsed:?}");
    trickle.abort();
}

/// After `shutdown` (GOAWAY), `accept` returns `None` once the WebSockets
/// open have ended and the client has had the close timeout to close the
/// connection, though it keeps it: a server draining with
/// `while accept().await.is_some()` ends. It waited for the client's own
/// GOAWAY, which tether's client never sends, for ever.
#[tokio::test]
async fn rfc9114_5_2_after_shutdown_an_idle_client_is_let_go() {
    let (options, cert, endpoint, url) = waiting_server(Duration::from_secs(30));
    let options = options.config(Config {
        handshake_timeout: Duration::from_secs(30),
        close_timeout: Duration::from_millis(500),
        ..Config::default()
    });
    let server = tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        let (mut ws, _) = server.accept().await.unwrap().unwrap();
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        });
        server.shutdown().await.unwrap();
        while server.accept().await.is_some() {}
        (tokio::time::Instant::now(), endpoint)
    });
    let client_options = ClientOptions::new().add_root_certificate(cert);
    let client = within(Http3Client::connect(&url, &client_options))
        .await
        .unwrap();
    let (mut ws, _) = within(client.open(&format!("{url}/ws"), &client_options))
        .await
        .unwrap();
    // still served after the GOAWAY
    tokio::time::sleep(Duration::from_millis(100)).await;
    echo_round(&mut ws, "after the GOAWAY").await;
    // before the close starts: the server's wait starts after it
    let closing = tokio::time::Instant::now();
    within(ws.close(CloseCode::NORMAL, "")).await.unwrap();
    drop(ws);
    let (ended, _endpoint) = within(server).await.unwrap();
    // the client's time to close it (500 ms), then let go
    let after = ended.duration_since(closing);
    assert!(
        after >= Duration::from_millis(500) && after < Duration::from_secs(3),
        "{after:?}"
    );
    drop(client);
}

/// A refusal waits on the client's stream credit, which a client may never
/// give: it is sent on a task of its own, bounded by the handshake
/// timeout, and `accept` goes on at once. It was awaited inside `accept`,
/// which then served no other request, for ever.
#[tokio::test]
async fn rfc9220_3_a_client_granting_no_stream_credit_does_not_stall_accept() {
    let (options, cert, endpoint, url) = waiting_server(Duration::from_secs(30));
    let port = endpoint.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        let first = server.accept().await.map(|r| r.map(|_| ()));
        (first, server, endpoint)
    });
    // a client whose streams take 64 bytes at most: the SETTINGS get
    // through, a refusal's body does not
    let mut transport = quinn::TransportConfig::default();
    transport.stream_receive_window(64u32.into());
    let (client, connection) = quic_h3_client_with(cert, port, transport).await;
    let mut send = h3_on(connection, None).await;
    // a request the server refuses (no Sec-WebSocket-Version): 400 and a
    // body of a sentence or two
    let (_connect, mut request) = websocket_request(&format!("{url}/refused"));
    request.headers_mut().remove("sec-websocket-version");
    let _stream = within(send.send_request(request)).await.unwrap();
    let (first, _server, _endpoint) = within_secs(5, server)
        .await
        .expect("accept waited on the refusal")
        .unwrap();
    assert!(matches!(first, Some(Err(Error::Handshake(_)))), "{first:?}");
    drop(client);
}

/// Waits (up to 5 s) for the server to close `connection`, and checks it
/// closed it with HTTP/3 error `code`; `what` names the case.
async fn closed_with(connection: &quinn::Connection, code: u32, what: &str) {
    let closed = within_secs(5, connection.closed())
        .await
        .unwrap_or_else(|| panic!("{what}: the connection went on"));
    match &closed {
        quinn::ConnectionError::ApplicationClosed(close) => assert_eq!(
            close.error_code,
            quinn::VarInt::from_u32(code),
            "{what}: {close:?}"
        ),
        other => panic!("{what}: expected error {code:#x}, got {other:?}"),
    }
}

/// A frame that is held whole before it is decoded (HEADERS here) may
/// declare at most `h3::frame::MAX_HELD_FRAME` (64 KiB) bytes: one that
/// declares more ends the QUIC connection at once with
/// H3_EXCESSIVE_LOAD, before any of it is held (RFC 9114 section 10.5).
/// The vendored h3 buffered such a frame whole, whatever its declared
/// length, reading on while it came: one frame header took memory
/// without bound.
#[tokio::test]
async fn rfc9114_10_5_a_frame_declaring_more_than_is_held_whole_ends_the_connection() {
    let (cert, endpoint, port) = local_server();
    let options = ServerOptions::new().handshake_timeout(Duration::from_secs(60));
    let server = tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        let first = server.accept().await.map(|r| r.map(|_| ()));
        (first, endpoint)
    });
    let (_client, connection) = quic_h3_client(cert, port).await;
    let (mut send, _recv) = within(connection.open_bi()).await.unwrap();
    // HEADERS (type 0x01) declaring 1 MiB (a 4-byte varint), and 1 KiB of it
    send.write_all(&[0x01, 0x80, 0x10, 0x00, 0x00])
        .await
        .unwrap();
    send.write_all(&[0u8; 1024]).await.unwrap();
    closed_with(&connection, 0x107, "HEADERS declaring 1 MiB").await;
    let (first, _endpoint) = within(server).await.unwrap();
    // the server names the cause
    let first = format!("{first:?}");
    assert!(first.contains("H3_EXCESSIVE_LOAD"), "{first}");
}

/// After the server's GOAWAY (RFC 9114 section 5.2), a WebSocket the
/// client closes still ends clean: the server's Close reaches the client
/// before the server lets the QUIC connection go (quinn drops what it has
/// not sent when a connection closes; the server's WebSocket ends only
/// once the client has ended its side, after reading that Close). Ten
/// rounds, each on a new connection.
#[tokio::test]
async fn rfc9114_5_2_the_last_websocket_after_a_goaway_ends_clean() {
    for round in 0..10 {
        let (cert, tls) = certificate();
        let endpoint =
            server_endpoint("127.0.0.1:0".parse().unwrap(), &tls, &Config::default()).unwrap();
        let url = format!("wss://localhost:{}", endpoint.local_addr().unwrap().port());
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let incoming = endpoint.accept().await.unwrap();
            let mut server = Http3Server::handshake(incoming, &ServerOptions::new())
                .await
                .unwrap();
            let (mut ws, _) = server.accept().await.unwrap().unwrap();
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    let _ = ws.send(m).await;
                }
            });
            server.shutdown().await.unwrap();
            let _ = opened_tx.send(());
            while server.accept().await.is_some() {}
            endpoint
        });
        let options = ClientOptions::new().add_root_certificate(cert);
        let client = within(Http3Client::connect(&url, &options)).await.unwrap();
        let (mut ws, _) = within(client.open(&format!("{url}/ws"), &options))
            .await
            .unwrap();
        echo_round(&mut ws, "before the goaway").await;
        within(opened_rx).await.unwrap();
        let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
        assert!(
            info.was_clean && info.code == CloseCode::NORMAL,
            "round {round}: {info:?}"
        );
        drop((ws, client));
        let _endpoint = within(server).await.unwrap();
    }
}

/// RFC 9114 section 7.1: a frame whose payload is too short for its fields
/// (a GOAWAY of no bytes, on the client's control stream) is a connection
/// error, H3_FRAME_ERROR, and so is one with bytes left over. The vendored
/// h3 took the first as incomplete and waited for bytes that can never
/// complete it, reading on (and holding) all that came after, and read
/// the second's leftover bytes as the next frame.
#[tokio::test]
async fn rfc9114_7_1_a_frame_too_short_or_too_long_for_its_fields_is_a_frame_error() {
    for goaway in [&[0x07, 0x00][..], &[0x07, 0x02, 0x00, 0x00][..]] {
        let (cert, endpoint, port) = local_server();
        let server = tokio::spawn(async move {
            let incoming = endpoint.accept().await.unwrap();
            let mut server = Http3Server::handshake(incoming, &ServerOptions::new())
                .await
                .unwrap();
            while server.accept().await.is_some() {}
            endpoint
        });
        let (_client, connection) = quic_h3_client(cert, port).await;
        let mut control = within(connection.open_uni()).await.unwrap();
        // the control stream's type, an empty SETTINGS, then the GOAWAY
        control.write_all(&[0x00, 0x04, 0x00]).await.unwrap();
        control.write_all(goaway).await.unwrap();
        closed_with(&connection, 0x106, &format!("GOAWAY {goaway:02x?}")).await;
        let _endpoint = within(server).await.unwrap();
    }
}

/// After the server's GOAWAY, a client that opens one more stream (h3
/// refuses it, and hands over no more) still gets its time to close the
/// connection before the server closes it: `accept` says `None` only
/// `Config::close_timeout` after nothing is open. It said `None` at once,
/// and a server dropped then closed the connection under the last bytes
/// of its WebSockets.
#[tokio::test]
async fn rfc9114_5_2_a_stream_opened_after_the_goaway_does_not_skip_the_clients_time() {
    let close_timeout = Duration::from_millis(500);
    let options = ServerOptions::new().config(Config {
        close_timeout,
        ..Config::default()
    });
    let (cert, endpoint, port) = local_server();
    let (went_tx, went_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &options).await.unwrap();
        // nothing open: the client's time counts from here
        let went = tokio::time::Instant::now();
        server.shutdown().await.unwrap();
        let _ = went_tx.send(());
        while server.accept().await.is_some() {}
        (went, tokio::time::Instant::now(), endpoint)
    });
    let (_client, connection) = quic_h3_client(cert, port).await;
    within(went_rx).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // one more request stream, past the GOAWAY (h3 refuses it)
    let (mut send, _recv) = within(connection.open_bi()).await.unwrap();
    let _ = send.write_all(&[0x01]).await;
    let (went, ended, _endpoint) = within(server).await.unwrap();
    let after = ended.duration_since(went);
    assert!(
        after >= close_timeout * 9 / 10,
        "let go {after:?} after the GOAWAY, before the client's time"
    );
}

/// An HTTP/3 prefixed integer (RFC 9204 section 4.1.1, as HPACK's):
/// `first` holds the bits above the `bits`-bit prefix.
fn qpack_int(out: &mut Vec<u8>, first: u8, bits: u32, mut value: usize) {
    let max = (1usize << bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A HEADERS frame for an extended CONNECT of a WebSocket at
/// `https://localhost/` (RFC 9220), its field section encoded by hand with
/// QPACK's static table and literals only (RFC 9204 section 4.5), so it
/// can be written on a raw QUIC stream and followed by any bytes.
fn raw_websocket_connect() -> Vec<u8> {
    let mut fields = vec![0x00, 0x00]; // no dynamic table
    let literal = |fields: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        qpack_int(fields, 0x20, 3, name.len());
        fields.extend_from_slice(name);
        qpack_int(fields, 0x00, 7, value.len());
        fields.extend_from_slice(value);
    };
    fields.push(0xC0 | 15); // :method CONNECT
    literal(&mut fields, b":protocol", b"websocket");
    fields.push(0xC0 | 23); // :scheme https
    fields.push(0xC0 | 1); // :path /
    qpack_int(&mut fields, 0x50, 4, 0); // :authority, ...
    qpack_int(&mut fields, 0x00, 7, 9);
    fields.extend_from_slice(b"localhost");
    literal(&mut fields, b"sec-websocket-version", b"13");
    assert!(fields.len() < 64, "a one-byte frame length");
    let mut frame = vec![0x01, fields.len() as u8];
    frame.extend_from_slice(&fields);
    frame
}

/// RFC 9114 section 7.1: a request stream that ends (FIN) inside a DATA
/// frame is a connection error, H3_FRAME_ERROR. The vendored h3 took the
/// stream's end as a clean end once the frame's bytes so far had been
/// read: the WebSocket on it ended as if its transport had closed, and the
/// connection went on.
#[tokio::test]
async fn rfc9114_7_1_a_stream_ending_inside_a_data_frame_is_a_frame_error() {
    let (cert, endpoint, port) = local_server();
    let server = tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let mut server = Http3Server::handshake(incoming, &ServerOptions::new())
            .await
            .unwrap();
        let (mut ws, _) = server.accept().await.unwrap().unwrap();
        tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
        while server.accept().await.is_some() {}
        endpoint
    });
    let (_client, connection) = quic_h3_client(cert, port).await;
    let (mut send, mut recv) = within(connection.open_bi()).await.unwrap();
    send.write_all(&raw_websocket_connect()).await.unwrap();
    // the server's answer (its HEADERS): the WebSocket is open
    let mut answer = [0u8; 64];
    let n = within(recv.read(&mut answer)).await.unwrap().unwrap();
    assert!(n > 0 && answer[0] == 0x01, "{:02x?}", &answer[..n]);
    // a DATA frame declaring 10 bytes, of which only the first (the first
    // byte of a WebSocket frame's header) comes, read before the end does
    send.write_all(&[0x00, 0x0A, 0x81]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    send.finish().unwrap();
    closed_with(&connection, 0x106, "a DATA frame cut short by FIN").await;
    let _endpoint = within(server).await.unwrap();
}

/// A request stream whose HEADERS come a byte at a time, each well within
/// the handshake timeout, is bounded by it as one deadline for the whole
/// handshake (`Config::handshake_timeout`): the bytes that keep coming do
/// not put it off, so a trickling client holds the server's accept no
/// longer than a silent one.
#[tokio::test]
async fn rfc9220_a_request_trickled_a_byte_at_a_time_is_bounded_as_a_whole() {
    let timeout = Duration::from_millis(500);
    let (cert, port, server) = first_accept_within(timeout);
    let (_client, connection) = quic_h3_client(cert, port).await;
    let (mut send, _recv) = within(connection.open_bi()).await.unwrap();
    let request = raw_websocket_connect();
    let trickle = tokio::spawn(async move {
        // all of it would take request.len() x 100 ms, several timeouts
        for byte in request {
            if send.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let elapsed = ends_with_the_handshake_timeout(server, timeout).await;
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    trickle.abort();
    drop(connection);
}
