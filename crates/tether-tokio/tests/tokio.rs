//! The tokio adapter over real TCP on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use tether::frame::OpCode;
use tether::handshake::{AcceptOptions, Refusal};
use tether::{CloseCode, Config, Event, KeepAlive, Message, MessageKind, State};
use tether_tokio::{ClientOptions, Error, ServerOptions};

fn big_config() -> Config {
    Config {
        max_frame_size: 32 << 20,
        max_message_size: 64 << 20,
        ..Config::default()
    }
}

/// An echo server for one connection.
async fn echo_server(listener: tokio::net::TcpListener) {
    let (tcp, _) = listener.accept().await.unwrap();
    let options = ServerOptions::new().config(big_config());
    let (mut ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
    while let Some(Ok(m)) = ws.next().await {
        if ws.send(m).await.is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn text_and_binary_up_to_16_mib_whole_and_fragmented() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(echo_server(listener));
    let options = ClientOptions::new().config(big_config());
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    for len in [0usize, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20] {
        let text = "é".repeat(len / 2);
        within(ws.send(Message::text(text.clone()))).await.unwrap();
        assert_eq!(
            within(ws.next()).await.unwrap().unwrap(),
            Message::text(text)
        );
        let bin: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        within(ws.send(Message::binary(bin.clone()))).await.unwrap();
        assert_eq!(
            within(ws.next()).await.unwrap().unwrap().as_bytes(),
            &bin[..]
        );
        // fragmented: three pieces
        let data = Bytes::from(bin);
        let (a, b) = (len / 3, 2 * len / 3);
        ws.send_fragment(MessageKind::Binary, data.slice(..a), false)
            .await
            .unwrap();
        ws.send_fragment(MessageKind::Binary, data.slice(a..b), false)
            .await
            .unwrap();
        ws.send_fragment(MessageKind::Binary, data.slice(b..), true)
            .await
            .unwrap();
        assert_eq!(
            within(ws.next()).await.unwrap().unwrap().as_bytes(),
            &data[..]
        );
    }
    let info = within(ws.close(CloseCode::NORMAL, "done")).await.unwrap();
    assert!(info.was_clean);
    assert_eq!(info.code, CloseCode::NORMAL);
    within(server).await.unwrap();
}

#[tokio::test]
async fn split_halves_send_and_receive_at_once_on_different_tasks() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(echo_server(listener));
    let (ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    const N: usize = 2000;
    let writer = tokio::spawn(async move {
        for i in 0..N {
            sink.send(Message::text(format!("message {i}")))
                .await
                .unwrap();
        }
        sink
    });
    let reader = tokio::spawn(async move {
        for i in 0..N {
            let m = stream.next().await.unwrap().unwrap();
            assert_eq!(m.as_text().unwrap(), format!("message {i}"));
        }
        stream
    });
    let mut sink = within(writer).await.unwrap();
    let mut stream = within(reader).await.unwrap();
    within(sink.close(CloseCode::NORMAL, "")).await.unwrap();
    assert!(within(stream.next()).await.is_none());
    within(server).await.unwrap();
}

#[tokio::test]
async fn rfc6455_7_1_5_server_drops_tcp_without_close_gives_1006() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let peer = RawPeer::accept(&listener).await;
        drop(peer);
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    within(server).await.unwrap();
    match within(ws.next()).await {
        Some(Err(Error::Closed(Some(info)))) => {
            assert_eq!(info.code, CloseCode::ABNORMAL);
            assert!(!info.was_clean);
        }
        other => panic!("{other:?}"),
    }
    assert!(within(ws.next()).await.is_none());
    assert_eq!(ws.state(), State::Aborted);
    // close after the transport died returns at once instead of looping
    let started = Instant::now();
    let res = within(ws.close(CloseCode::NORMAL, "")).await;
    assert!(started.elapsed() < Duration::from_secs(2), "{res:?}");
}

#[tokio::test]
async fn keepalive_ping_with_silent_peer_aborts_within_interval_plus_timeout() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let peer = RawPeer::accept(&listener).await;
        // reads nothing, answers nothing
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(peer);
    });
    let options = ClientOptions::new().config(Config {
        keep_alive: KeepAlive::Ping {
            interval: Duration::from_millis(300),
            timeout: Duration::from_millis(300),
        },
        ..Config::default()
    });
    let started = Instant::now();
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let end = within(ws.next()).await;
    let elapsed = started.elapsed();
    match end {
        Some(Err(Error::Closed(Some(info)))) => {
            assert_eq!(info.code, CloseCode::ABNORMAL);
            assert!(
                info.reason.contains("keep-alive timeout"),
                "{}",
                info.reason
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    server.abort();
}

#[tokio::test]
async fn pongs_go_out_while_the_application_only_sends() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        let mut pongs = 0;
        for i in 0..20u8 {
            peer.send(OpCode::Ping, &[i]).await;
            // the client application never reads; its driver must answer
            loop {
                let f = peer.frame().await.unwrap();
                match f.header.opcode {
                    OpCode::Pong => {
                        assert_eq!(&f.payload[..], &[i]);
                        pongs += 1;
                        break;
                    }
                    OpCode::Text => {}
                    other => panic!("{other:?}"),
                }
            }
        }
        pongs
    });
    let (ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let (mut sink, _stream) = ws.split();
    let sender = tokio::spawn(async move {
        loop {
            if sink.send(Message::text("busy")).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(within(server).await.unwrap(), 20);
    sender.abort();
}

#[tokio::test]
async fn keepalive_pong_heartbeat_goes_out_while_the_application_only_reads() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        let started = Instant::now();
        for _ in 0..3 {
            let f = peer.frame().await.unwrap();
            assert_eq!(f.header.opcode, OpCode::Pong);
            assert!(f.payload.is_empty());
        }
        started.elapsed()
    });
    let options = ClientOptions::new().config(Config {
        keep_alive: KeepAlive::Pong {
            interval: Duration::from_millis(200),
        },
        ..Config::default()
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let reader = tokio::spawn(async move { ws.next().await.map(|r| r.is_ok()) });
    let elapsed = within(server).await.unwrap();
    assert!(elapsed >= Duration::from_millis(550), "{elapsed:?}");
    reader.abort();
}

#[tokio::test]
async fn close_completes_without_the_peer_application_polling() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (ws, _) = tether_tokio::accept(tcp, &ServerOptions::default())
            .await
            .unwrap();
        // the server application never reads; hold the socket
        tokio::time::sleep(Duration::from_secs(3)).await;
        ws.close_info()
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let started = Instant::now();
    let info = within(ws.close(CloseCode::new(4000), "bye")).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(info.was_clean);
    assert_eq!(info.code.as_u16(), 4000);
    let server_view = within(server).await.unwrap().unwrap();
    assert_eq!(
        (
            server_view.code.as_u16(),
            server_view.reason.as_str(),
            server_view.was_clean
        ),
        (4000, "bye", true)
    );
}

#[tokio::test]
async fn next_is_cancel_safe_in_select() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (mut ws, _) = tether_tokio::accept(tcp, &ServerOptions::default())
            .await
            .unwrap();
        for i in 0..500 {
            ws.send(Message::text(format!("{i}"))).await.unwrap();
            if i % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut cancelled = 0;
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(m) => got.push(m.unwrap().as_text().unwrap().parse::<usize>().unwrap()),
                None => break,
            },
            // cancels the pending next() very often
            _ = tokio::task::yield_now() => cancelled += 1,
        }
    }
    assert!(cancelled > 0);
    assert_eq!(
        got,
        (0..500).collect::<Vec<_>>(),
        "nothing lost or reordered"
    );
    within(server).await.unwrap();
}

#[tokio::test]
async fn sink_waits_while_the_output_queue_is_full() {
    let (listener, url) = listener().await;
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        release_rx.await.unwrap();
        let mut n = 0;
        while let Some(f) = peer.frame().await {
            if f.header.opcode == OpCode::Binary {
                n += 1;
            }
            if n == 200 {
                break;
            }
        }
        n
    });
    let options = ClientOptions::new()
        .config(Config {
            max_queued_output: 256 * 1024,
            ..Config::default()
        })
        .max_unread_bytes(4 * tether::Event::OVERHEAD);
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let payload = Bytes::from(vec![7u8; 256 * 1024]);
    // the peer reads nothing: sends must stall well before 200 x 256 KiB are queued
    let mut sent = 0;
    let stalled = tokio::time::timeout(Duration::from_secs(1), async {
        for _ in 0..200 {
            ws.send(Message::binary(payload.clone())).await.unwrap();
            sent += 1;
        }
    })
    .await
    .is_err();
    assert!(stalled, "send never waited");
    assert!(sent < 200);
    release_tx.send(()).unwrap();
    for _ in sent..200 {
        within(ws.send(Message::binary(payload.clone())))
            .await
            .unwrap();
    }
    assert_eq!(within(server).await.unwrap(), 200);
}

#[tokio::test]
async fn a_send_with_nothing_unread_is_written_before_it_returns() {
    use std::io::Read;
    let (listener, url) = listener().await;
    let accept = tokio::spawn(async move { RawPeer::accept(&listener).await });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    let peer = within(accept).await.unwrap();
    // read on a blocking socket from this task: nothing else runs on this
    // runtime meanwhile (the background task neither), so what arrives was
    // written by the send itself
    let mut raw = peer.stream.into_std().unwrap();
    raw.set_nonblocking(false).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..3u8 {
        within(ws.send(Message::binary(vec![i; 10]))).await.unwrap();
        // a client frame: 2 header bytes, the 4-byte mask, the payload
        let mut frame = [0u8; 16];
        raw.read_exact(&mut frame)
            .expect("the frame is on the wire");
        assert_eq!(frame[0], 0x80 | OpCode::Binary as u8);
        assert_eq!(frame[1], 0x80 | 10);
        let payload: Vec<u8> = (0..10).map(|j| frame[6 + j] ^ frame[2 + j % 4]).collect();
        assert_eq!(payload, vec![i; 10]);
    }
}

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

#[tokio::test]
async fn pings_and_pongs_are_events_and_unsolicited_pong_is_not_answered() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        peer.send(OpCode::Pong, b"unsolicited").await;
        peer.send(OpCode::Ping, b"ping!").await;
        let f = peer.frame().await.unwrap();
        // the first frame back is the Pong for the Ping, not an answer to the Pong
        assert_eq!(
            (f.header.opcode, &f.payload[..]),
            (OpCode::Pong, &b"ping!"[..])
        );
        peer.send(OpCode::Close, &1000u16.to_be_bytes()).await;
        let f = peer.frame().await.unwrap();
        assert_eq!(f.header.opcode, OpCode::Close);
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    assert_eq!(
        within(ws.next_event()).await,
        Some(Event::Pong(Bytes::from_static(b"unsolicited")))
    );
    assert_eq!(
        within(ws.next_event()).await,
        Some(Event::Ping(Bytes::from_static(b"ping!")))
    );
    match within(ws.next_event()).await {
        Some(Event::Closed(info)) => assert!(info.was_clean),
        other => panic!("{other:?}"),
    }
    within(server).await.unwrap();
}

#[tokio::test]
async fn rfc6455_5_5_1_messages_before_a_close_are_answered_before_the_close_reply() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(echo_server(listener));
    let mut client = RawClient::connect(&url).await;
    // 100 messages and the Close in one write: the server application must
    // get to answer all of them before its Close reply goes out (as Node's ws does)
    let mut wire = bytes::BytesMut::new();
    for i in 0..100 {
        client.encode(OpCode::Text, format!("m{i}").as_bytes(), &mut wire);
    }
    client.encode(OpCode::Close, &1000u16.to_be_bytes(), &mut wire);
    tokio::io::AsyncWriteExt::write_all(&mut client.stream, &wire)
        .await
        .unwrap();
    for i in 0..100 {
        let f = within(client.frame()).await.unwrap();
        assert_eq!(f.header.opcode, OpCode::Text, "frame {i}");
        assert_eq!(&f.payload[..], format!("m{i}").as_bytes());
    }
    let f = within(client.frame()).await.unwrap();
    assert_eq!(f.header.opcode, OpCode::Close);
    assert_eq!(&f.payload[..2], &1000u16.to_be_bytes());
    within(server).await.unwrap();
}

#[tokio::test]
async fn abort_ends_a_connection_whose_peer_stopped_reading() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let peer = RawPeer::accept(&listener).await;
        tokio::time::sleep(Duration::from_secs(10)).await; // never reads
        drop(peer);
    });
    let options = ClientOptions::new()
        .config(Config {
            max_queued_output: 64 * 1024,
            ..Config::default()
        })
        .max_unread_bytes(2 * tether::Event::OVERHEAD);
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let payload = Bytes::from(vec![1u8; 1 << 20]);
    // fill the socket buffers and the queue until sends stall
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            ws.send(Message::binary(payload.clone())).await.unwrap();
        }
    })
    .await;
    let started = Instant::now();
    ws.abort();
    match within(ws.next()).await {
        Some(Err(Error::Closed(Some(info)))) => {
            assert_eq!(info.code, CloseCode::ABNORMAL);
            assert!(info.reason.contains("aborted"), "{}", info.reason);
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    server.abort();
}

#[tokio::test]
async fn an_ended_connection_does_not_wait_forever_for_a_peer_that_reads_nothing() {
    let (listener, url) = listener().await;
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        go_rx.await.unwrap();
        // a reserved opcode: the client fails the connection (1002), but its
        // Close sits behind megabytes this peer never reads
        peer.send(OpCode::Ping, b"").await;
        tokio::io::AsyncWriteExt::write_all(&mut peer.stream, &[0x83, 0x00])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(peer);
    });
    let options = ClientOptions::new().config(Config {
        close_timeout: Duration::from_millis(500),
        max_queued_output: 8 << 20,
        ..Config::default()
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &options)).await.unwrap();
    let payload = Bytes::from(vec![5u8; 1 << 20]);
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            ws.send(Message::binary(payload.clone())).await.unwrap();
        }
    })
    .await;
    go_tx.send(()).unwrap();
    let started = Instant::now();
    match within(ws.next()).await {
        Some(Err(Error::Closed(Some(info)))) => assert_eq!(info.code.as_u16(), 1002),
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.abort();
}

/// An operation after the end reports the end and how it came (`Closed`
/// with the peer's 1000, as the blocking adapter does).
#[tokio::test]
async fn operations_after_the_end_report_the_end() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        peer.send(OpCode::Close, &[0x03, 0xe8]).await;
        while peer.frame().await.is_some() {}
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    while within(ws.next()).await.is_some() {}
    within(server).await.unwrap();
    for err in [
        ws.ping(Bytes::from_static(b"x")).await.unwrap_err(),
        ws.pong(Bytes::new()).await.unwrap_err(),
        ws.send(Message::text("x")).await.unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::Closed(Some(info)) if info.code == CloseCode::NORMAL),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("1000"),
            "the cause is named: {err}"
        );
    }
}

/// An operation refused while closing names itself and the state
/// (`Misuse`, with the core's words).
#[tokio::test]
async fn an_operation_refused_while_closing_names_itself_and_the_state() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        // reads our Close and never answers: we stay in CloseSent
        let mut peer = RawPeer::accept(&listener).await;
        let _ = peer.frame().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let (mut ws, _) = within(tether_tokio::connect(&url, &ClientOptions::default()))
        .await
        .unwrap();
    // our Close goes out; stop waiting for the answer (the state stays)
    tokio::select! {
        _ = ws.close(CloseCode::NORMAL, "") => panic!("the peer never answers"),
        () = tokio::time::sleep(Duration::from_millis(200)) => {}
    }
    assert_eq!(ws.state(), State::CloseSent);
    let err = ws.ping(Bytes::from_static(b"x")).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Misuse(tether::Error::InvalidState {
                operation: "ping",
                state: State::CloseSent,
                ..
            })
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("cannot ping") && text.contains("CloseSent"),
        "{text}"
    );
    ws.abort();
    server.abort();
}

/// Dropping an open connection says goodbye with 1001 (going away), as the
/// blocking adapter does, without the application waiting for the answer.
#[tokio::test]
async fn dropping_an_open_connection_sends_1001() {
    let (listener, url) = listener().await;
    let client = tokio::spawn(async move {
        let (ws, _) = tether_tokio::connect(&url, &ClientOptions::default())
            .await
            .unwrap();
        drop(ws);
    });
    let mut peer = within(RawPeer::accept(&listener)).await;
    within(client).await.unwrap();
    let close = within(peer.frame()).await.expect("a Close");
    assert_eq!(close.header.opcode, OpCode::Close);
    assert_eq!(&close.payload[..2], &1001u16.to_be_bytes());
}

/// The background task exists only while the connection is active: once
/// the connection has been quiet for `Config::release_idle_after` (the
/// first time `Config::first_release_after`, 5 ms here) it ends
/// (an idle connection holds no task of its own), and whatever wakes the
/// connection later starts a new one: a Ping is answered, and a dropped
/// connection still says goodbye, with the application polling nothing.
#[tokio::test]
async fn an_idle_connection_keeps_no_task_and_still_answers_and_says_goodbye() {
    let (listener, url) = listener().await;
    let config = Config {
        release_idle_after: Duration::from_millis(20),
        ..Config::default()
    };
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tether_tokio::accept(tcp, &ServerOptions::new().config(config))
            .await
            .unwrap()
    });
    let mut peer = within(RawClient::connect(&url)).await;
    let (ws, _) = within(accept).await.unwrap();
    let tasks = tokio::runtime::Handle::current().metrics();
    let at_rest = || async {
        let start = Instant::now();
        while tasks.num_alive_tasks() > 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "a task stayed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    at_rest().await;
    for round in 0..3 {
        peer.send(OpCode::Ping, format!("ping {round}").as_bytes())
            .await;
        let pong = within(peer.frame()).await.expect("a Pong");
        assert_eq!(pong.header.opcode, OpCode::Pong);
        assert_eq!(&pong.payload[..], format!("ping {round}").as_bytes());
        at_rest().await;
    }
    drop(ws);
    let close = within(peer.frame()).await.expect("a Close");
    assert_eq!(close.header.opcode, OpCode::Close);
    assert_eq!(&close.payload[..2], &1001u16.to_be_bytes());
}

/// The stream takes received messages in batches (one lock per batch):
/// what it took and has not handed to the application still counts as
/// unread, so an application that read one message and stopped holds at
/// most `max_unread_bytes` (plus one message) read ahead, not twice that;
/// everything still arrives, in order, once it reads again.
#[tokio::test(start_paused = true)]
async fn a_batch_taken_by_the_stream_still_counts_against_max_unread_bytes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;

    const MESSAGES: usize = 400;
    const UNREAD: usize = 10;
    let (ours, mut peer) = tokio::io::duplex(64);
    let written = Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    tokio::spawn(async move {
        for i in 0..MESSAGES {
            // an unmasked server frame: Binary, 16 bytes, the index first
            let mut frame = vec![0x82u8, 16];
            frame.extend_from_slice(&(i as u64).to_be_bytes());
            frame.extend_from_slice(&[0u8; 8]);
            if peer.write_all(&frame).await.is_err() {
                return;
            }
            count.fetch_add(1, Ordering::SeqCst);
        }
        // keep the pipe open until the client is done
        std::future::pending::<()>().await;
    });
    let config = Config {
        max_unread_bytes: UNREAD * (tether::Event::OVERHEAD + 16),
        ..Config::default()
    };
    let upgraded = tether::upgrade::Upgraded::new(tether::Role::Client, config);
    let mut ws = tether_tokio::from_upgraded(ours, upgraded, &[]);
    let first = ws.next().await.unwrap().unwrap();
    assert_eq!(&first.as_bytes()[..8], &0u64.to_be_bytes());
    // the application stops reading; the connection reads ahead what fits
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ahead = written.load(Ordering::SeqCst);
    // the one read, the unread bound, one message over it, and what the
    // 64-byte pipe and a frame being written hold
    assert!(
        ahead <= 1 + UNREAD + 1 + 64 / 18 + 1,
        "{ahead} messages read ahead by an application that read one"
    );
    assert!(ahead > UNREAD / 2, "read ahead only {ahead}");
    for i in 1..MESSAGES {
        let m = within(ws.next()).await.unwrap().unwrap();
        assert_eq!(&m.as_bytes()[..8], &(i as u64).to_be_bytes(), "in order");
    }
}

/// The answers to messages that arrived together (one batch) are held
/// while the application still has some of them to read, then written
/// together; the last may wait for the application's next read. An
/// application that answers and then waits on something else (a database,
/// a timer) must still see every answer go out: the background task writes
/// them, at once (no timer of the connection's may be what sends them: the
/// idle release, which drives too, is set far beyond the test's limit).
/// The application answers the first `answered` of `messages` (the rest
/// stay unread), working `pause` on each before answering it.
async fn answers_go_out_while_the_application_waits(
    messages: usize,
    answered: usize,
    pause: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (ours, mut peer) = tokio::io::duplex(1 << 16);
    // unmasked server frames, all in one write: Binary, 3 bytes each
    let mut burst = Vec::new();
    for i in 0..messages {
        burst.extend_from_slice(&[0x82, 3, b'm', b'0' + i as u8, b'!']);
    }
    peer.write_all(&burst).await.unwrap();
    let config = Config {
        release_idle_after: Duration::from_secs(60),
        first_release_after: Duration::from_secs(60),
        ..Config::default()
    };
    let upgraded = tether::upgrade::Upgraded::new(tether::Role::Client, config);
    let mut ws = tether_tokio::from_upgraded(ours, upgraded, &[]);
    let app = tokio::spawn(async move {
        for _ in 0..answered {
            let m = ws.next().await.unwrap().unwrap();
            tokio::time::sleep(pause).await;
            ws.send(m).await.unwrap();
        }
        // the application waits on something else, its connection open
        std::future::pending::<()>().await;
        drop(ws);
    });
    // each answer: a masked client frame of 2 + 4 + 3 bytes
    let mut answers = vec![0u8; answered * 9];
    let read = tokio::time::timeout(Duration::from_secs(5), peer.read_exact(&mut answers)).await;
    app.abort();
    assert!(
        read.is_ok(),
        "not every answer went out while the application waited"
    );
    for (i, frame) in answers.chunks(9).enumerate() {
        assert_eq!(&frame[..2], &[0x82, 0x83], "answer {i}: {frame:?}");
        let (key, payload) = frame[2..].split_at(4);
        let unmasked: Vec<u8> = payload.iter().zip(key).map(|(b, k)| b ^ k).collect();
        assert_eq!(
            unmasked,
            [b'm', b'0' + i as u8, b'!'],
            "answer {i}, in order"
        );
    }
}

/// (messages, answered): a batch of one; a whole batch answered; an
/// application that stops in the middle of one.
const BATCHES: [(usize, usize); 5] = [(1, 1), (2, 2), (7, 7), (7, 3), (7, 1)];

#[tokio::test(start_paused = true)]
async fn every_answer_to_a_batch_goes_out_while_the_application_waits() {
    for (messages, answered) in BATCHES {
        for pause in [Duration::ZERO, Duration::from_millis(10)] {
            answers_go_out_while_the_application_waits(messages, answered, pause).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_to_a_batch_goes_out_while_the_application_waits_mt() {
    for (messages, answered) in BATCHES {
        for pause in [Duration::ZERO, Duration::from_millis(1)] {
            answers_go_out_while_the_application_waits(messages, answered, pause).await;
        }
    }
}

/// `Config::idle_timeout` counts data messages either way: a server that
/// only sends (its peer says nothing) is not closed as idle while it does.
#[tokio::test]
async fn idle_timeout_counts_the_messages_we_send() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let options = ServerOptions::new().config(Config {
            idle_timeout: Some(Duration::from_millis(300)),
            ..Config::default()
        });
        let (ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        tokio::spawn(async move { while stream.next().await.is_some() {} });
        let start = Instant::now();
        let mut sent = 0u32;
        while start.elapsed() < Duration::from_millis(1000) {
            if sink.send(Message::text(format!("{sent}"))).await.is_err() {
                return Err(sent);
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(sent)
    });
    let mut peer = RawClient::connect(&url).await;
    // read everything, say nothing, until the server's Close
    while let Some(f) = peer.frame().await {
        if f.header.opcode == OpCode::Close {
            break;
        }
    }
    let result = within(server).await.unwrap();
    assert!(result.is_ok(), "closed as idle after {result:?} sends");
}
