//! The reconnecting client against real servers on 127.0.0.1: killed and
//! restarted, closing with 4000 (intentional) or 1001, or silent past a
//! keep-alive Ping timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tether/tests/common/ports.rs"]
mod ports;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tether::reconnect::{ReconnectPolicy, StopReason};
use tether::{CloseCode, Config, KeepAlive, Message};
use tether_tokio::{
    ClientOptions, Lifecycle, ReconnectEvent, ReconnectOptions, ReconnectingClient, ServerOptions,
};

/// An echo server on its own runtime and thread, so that dropping it kills
/// every socket at once without a Close (as a killed process would).
struct KillableServer {
    runtime: Option<tokio::runtime::Runtime>,
}

impl KillableServer {
    fn start(addr: std::net::SocketAddr, received: Arc<Mutex<Vec<String>>>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .unwrap();
        let log = received.clone();
        runtime.spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let log = log.clone();
                tokio::spawn(async move {
                    let Ok((mut ws, _)) =
                        tether_tokio::accept(tcp, &ServerOptions::default()).await
                    else {
                        return;
                    };
                    while let Some(Ok(m)) = ws.next().await {
                        log.lock()
                            .unwrap()
                            .push(m.as_text().unwrap_or("").to_string());
                        let _ = ws.send(m).await;
                    }
                });
            }
        });
        Self {
            runtime: Some(runtime),
        }
    }

    fn kill(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn lifecycle(client: &mut ReconnectingClient) -> Lifecycle {
    loop {
        match within(client.next()).await {
            Some(ReconnectEvent::Lifecycle(l)) => return l,
            Some(ReconnectEvent::Message(_)) => {}
            None => panic!("client stopped"),
        }
    }
}

/// The next lifecycle event, which must be `Connected`: its attempt.
async fn connected(client: &mut ReconnectingClient) -> u32 {
    match lifecycle(client).await {
        Lifecycle::Connected { attempt, .. } => attempt,
        other => panic!("expected Connected, got {other:?}"),
    }
}

async fn message(client: &mut ReconnectingClient) -> Message {
    match within(client.next()).await {
        Some(ReconnectEvent::Message(m)) => m,
        Some(ReconnectEvent::Lifecycle(l)) => panic!("unexpected {l:?}"),
        None => panic!("client stopped"),
    }
}

/// A server that accepts every upgrade, then says nothing and reads
/// nothing: its URL.
async fn silent_server() -> String {
    let (listener, url) = listener().await;
    tokio::spawn(async move {
        let mut peers = Vec::new();
        loop {
            peers.push(RawPeer::accept(&listener).await);
        }
    });
    url
}

fn policy() -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
        intentional_codes: vec![CloseCode::new(4000)],
        ..ReconnectPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_server_reconnects_and_delivers_queued_messages_once_in_order() {
    // a port the server can take again once killed
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ports::free_port()));
    let received = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::task::spawn_blocking({
        let r = received.clone();
        move || KillableServer::start(addr, r)
    })
    .await
    .unwrap();
    let options = ReconnectOptions::new(ClientOptions::new())
        .policy(policy())
        .max_queued_messages(100);
    let mut client = ReconnectingClient::new(&format!("ws://{addr}/"), options).unwrap();
    // (whether it is connected before the first event is a race: the
    // supervisor may connect on the other worker before this line)
    assert_eq!(connected(&mut client).await, 0);
    assert!(client.is_connected());
    client.send(Message::text("before")).unwrap();
    assert_eq!(message(&mut client).await, Message::text("before"));

    tokio::task::spawn_blocking(move || server.kill())
        .await
        .unwrap();
    match lifecycle(&mut client).await {
        Lifecycle::Disconnected(info) => {
            assert_eq!(info.code, CloseCode::ABNORMAL);
            assert!(!info.was_clean);
        }
        other => panic!("{other:?}"),
    }
    for i in 0..5 {
        client.send(Message::text(format!("queued {i}"))).unwrap();
    }
    // the server stays down for a while: several attempts, delays within their caps
    let restart_at = tokio::time::Instant::now() + Duration::from_millis(600);
    let mut restarted = None;
    let mut attempts = Vec::new();
    let reconnected_attempt = loop {
        if restarted.is_none() && tokio::time::Instant::now() >= restart_at {
            let r = received.clone();
            restarted = Some(
                tokio::task::spawn_blocking(move || KillableServer::start(addr, r))
                    .await
                    .unwrap(),
            );
        }
        match tokio::time::timeout(Duration::from_millis(50), client.next()).await {
            Ok(Some(ReconnectEvent::Lifecycle(Lifecycle::Reconnecting { attempt, delay }))) => {
                let cap = Duration::from_millis(50 * (1 << (attempt - 1).min(10)))
                    .min(Duration::from_millis(400));
                assert!(delay <= cap, "attempt {attempt}: {delay:?} over {cap:?}");
                attempts.push(attempt);
            }
            Ok(Some(ReconnectEvent::Lifecycle(Lifecycle::Connected { attempt, .. }))) => {
                break attempt;
            }
            Ok(Some(ReconnectEvent::Lifecycle(Lifecycle::ConnectFailed(_)))) => {}
            Ok(other) => panic!("{other:?}"),
            Err(_) => {}
        }
    };
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert_eq!(attempts, (1..=attempts.len() as u32).collect::<Vec<_>>());
    assert_eq!(reconnected_attempt, *attempts.last().unwrap());
    for i in 0..5 {
        assert_eq!(
            message(&mut client).await,
            Message::text(format!("queued {i}"))
        );
    }
    let log = received.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "before", "queued 0", "queued 1", "queued 2", "queued 3", "queued 4"
        ],
        "each once, in order"
    );
    client.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(
        lifecycle(&mut client).await,
        Lifecycle::Disconnected(_)
    ));
    assert!(!client.is_connected());
    assert_eq!(
        lifecycle(&mut client).await,
        Lifecycle::Stopped(StopReason::ApplicationClosed)
    );
    assert!(client.is_stopped());
    assert!(within(client.next()).await.is_none());
    tokio::task::spawn_blocking(move || restarted.unwrap().kill())
        .await
        .unwrap();
}

/// A server whose connections close with `code` right after the greeting.
async fn closing_server(code: u16) -> String {
    let (listener, url) = listener().await;
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut ws, _) = tether_tokio::accept(tcp, &ServerOptions::default())
                    .await
                    .unwrap();
                ws.send(Message::text("hello")).await.unwrap();
                let _ = ws.close(CloseCode::new(code), "server says so").await;
            });
        }
    });
    url
}

#[tokio::test]
async fn close_4000_is_intentional_no_reconnect() {
    let url = closing_server(4000).await;
    let mut client =
        ReconnectingClient::new(&url, ReconnectOptions::default().policy(policy())).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    assert_eq!(message(&mut client).await, Message::text("hello"));
    match lifecycle(&mut client).await {
        Lifecycle::Disconnected(info) => {
            assert_eq!((info.code.as_u16(), info.was_clean), (4000, true))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        lifecycle(&mut client).await,
        Lifecycle::Stopped(StopReason::Intentional(CloseCode::new(4000)))
    );
    assert!(within(client.next()).await.is_none());
}

#[tokio::test]
async fn close_1001_reconnects() {
    let url = closing_server(1001).await;
    let mut client =
        ReconnectingClient::new(&url, ReconnectOptions::default().policy(policy())).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    match lifecycle(&mut client).await {
        Lifecycle::Disconnected(info) => assert_eq!(info.code, CloseCode::GOING_AWAY),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        lifecycle(&mut client).await,
        Lifecycle::Reconnecting { attempt: 1, .. }
    ));
    assert_eq!(connected(&mut client).await, 1);
    client.close(CloseCode::NORMAL, "").unwrap();
}

#[tokio::test]
async fn silent_server_past_keepalive_timeout_reconnects() {
    let url = silent_server().await;
    let options = ReconnectOptions::new(ClientOptions::new().config(Config {
        keep_alive: KeepAlive::Ping {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(200),
        },
        ..Config::default()
    }))
    .policy(policy());
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    assert!(client.send(Message::text("while connected")).is_ok());
    match lifecycle(&mut client).await {
        Lifecycle::Disconnected(info) => {
            assert_eq!(info.code, CloseCode::ABNORMAL);
            assert!(
                info.reason.contains("keep-alive timeout"),
                "{}",
                info.reason
            );
        }
        other => panic!("{other:?}"),
    }
    // queueing off: a send while disconnected is refused, not dropped
    let err = client.send(Message::text("refused")).unwrap_err();
    assert!(
        matches!(
            err,
            tether_tokio::Error::QueueFull(tether_tokio::QueueFull {
                queued: 0,
                limit: tether_tokio::QueueLimit { messages: 0, .. },
                connected: false,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("not connected"), "{err}");
    assert!(matches!(
        lifecycle(&mut client).await,
        Lifecycle::Reconnecting { attempt: 1, .. }
    ));
    assert_eq!(connected(&mut client).await, 1);
}

/// A message the connection took is handed over once, as in the blocking
/// client: when the connection fails while writing it (the keep-alive
/// ends it: the server reads nothing and answers nothing), it is not
/// queued to go again on the next connection, where it could arrive twice
/// (its bytes may have reached the server).
#[tokio::test]
async fn a_message_the_connection_took_is_not_sent_again_after_its_write_fails() {
    let url = silent_server().await;
    let options = ReconnectOptions::new(ClientOptions::new().config(Config {
        keep_alive: KeepAlive::Ping {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(200),
        },
        ..Config::default()
    }))
    .policy(ReconnectPolicy {
        // time to look at the queue before the next connection
        initial_delay: Duration::from_secs(2),
        ..policy()
    })
    .max_queued_messages(10);
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    // larger than the sockets hold: its write waits until the keep-alive
    // ends the connection
    client
        .send(Message::binary(vec![7u8; 32 << 20]))
        .expect("handed over");
    match lifecycle(&mut client).await {
        Lifecycle::Disconnected(info) => {
            assert!(info.reason.contains("keep-alive"), "{info}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.queued(), 0, "not queued again");
}

#[tokio::test]
async fn sends_after_the_client_stopped_are_refused_not_lost() {
    let url = closing_server(4000).await;
    let options = ReconnectOptions::default()
        .policy(policy())
        .max_queued_messages(10);
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    loop {
        if let Some(ReconnectEvent::Lifecycle(Lifecycle::Stopped(_))) = within(client.next()).await
        {
            break;
        }
    }
    assert!(client.is_stopped());
    assert!(within(client.next()).await.is_none());
    let err = client.send(Message::text("too late")).unwrap_err();
    assert!(matches!(err, tether_tokio::Error::Closed(Some(_))), "{err}");
    assert!(client.take_queued().is_empty());
    // closing a stopped client does nothing
    client.close(CloseCode::NORMAL, "").unwrap();
}

#[tokio::test]
async fn a_url_that_is_not_websocket_is_refused_up_front() {
    let err =
        ReconnectingClient::new("http://127.0.0.1/", ReconnectOptions::default()).unwrap_err();
    assert!(matches!(err, tether_tokio::Error::Url(_)), "{err:?}");
}

#[tokio::test]
async fn a_close_the_connection_would_refuse_is_refused_up_front() {
    let url = closing_server(4000).await;
    let mut client =
        ReconnectingClient::new(&url, ReconnectOptions::default().policy(policy())).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    for (code, reason) in [(1006, ""), (1000, &*"x".repeat(124))] {
        let err = client.close(CloseCode::new(code), reason).unwrap_err();
        assert!(matches!(err, tether_tokio::Error::Misuse(_)), "{err:?}");
    }
}

/// `drained_to` waits for queued messages to be handed to a connection:
/// not while nothing changes (the server has not answered the upgrade),
/// and as soon as the connection takes them.
#[tokio::test]
async fn drained_to_completes_when_the_queue_is_handed_over_after_connecting() {
    let (listener, url) = listener().await;
    let options = ReconnectOptions::default()
        .policy(policy())
        .max_queued_messages(10);
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    // the TCP connect succeeds, the handshake waits for the server: queued
    client.send(Message::text("one")).unwrap();
    client.send(Message::text("two")).unwrap();
    assert_eq!(client.queued(), 2);
    assert!(!client.is_connected());

    // a bound already met completes at once; an unmet one does not while
    // nothing changes
    within(client.drained_to(2)).await;
    let drained = client.drained_to(0);
    tokio::pin!(drained);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut drained)
            .await
            .is_err(),
        "completed with {} queued",
        client.queued()
    );
    assert_eq!(client.queued(), 2);

    // the server answers: the waiting future completes once both left
    let server = tokio::spawn(async move {
        let mut ws = accept_one(&listener, &ServerOptions::default()).await;
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(ws.next().await.unwrap().unwrap());
        }
        got
    });
    within(drained).await;
    assert_eq!(client.queued(), 0);
    assert!(client.is_connected());
    assert_eq!(connected(&mut client).await, 0);
    assert_eq!(
        within(server).await.unwrap(),
        [Message::text("one"), Message::text("two")]
    );
    client.close(CloseCode::NORMAL, "").unwrap();
}

/// When the client stops with messages still queued, `drained_to`
/// completes too (they stay for `take_queued`), so nobody waits forever.
#[tokio::test]
async fn drained_to_completes_when_the_client_stops_with_messages_queued() {
    // nobody listens: every attempt fails
    let url = format!("ws://127.0.0.1:{}/", ports::free_port());
    let options = ReconnectOptions::default()
        .policy(ReconnectPolicy {
            max_attempts: Some(1),
            ..policy()
        })
        .max_queued_messages(10);
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    client.send(Message::text("never sent")).unwrap();
    within(client.drained_to(0)).await;
    assert!(client.is_stopped());
    assert_eq!(client.queued(), 1);
    loop {
        match within(client.next()).await {
            Some(ReconnectEvent::Lifecycle(Lifecycle::Stopped(reason))) => {
                assert_eq!(reason, StopReason::GaveUp { attempts: 1 });
                break;
            }
            Some(_) => {}
            None => panic!("no Stopped"),
        }
    }
    let waiter = client.drained_to(0);
    assert_eq!(client.take_queued(), [Message::text("never sent")]);
    within(waiter).await;
}

/// Dropping the client closes its connection as dropping a connection
/// does, with 1001 (going away), as the blocking adapter's does; also when
/// the application had stopped reading and the supervisor was waiting for
/// room to hand over the next message (it waited forever, the connection
/// open, before the client's drop closed the budget).
#[tokio::test]
async fn rfc6455_7_4_1_dropping_the_client_says_going_away_even_with_messages_unread() {
    let (listener, url) = listener().await;
    let (code_tx, code_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ws = accept_one(&listener, &ServerOptions::default()).await;
        // 10 KiB of messages against the client's 1 KiB read-ahead
        for _ in 0..10 {
            ws.send(Message::binary(vec![7u8; 1024])).await.unwrap();
        }
        let info = loop {
            match ws.next_event().await {
                Some(tether::Event::Closed(info)) => break info,
                Some(_) => {}
                None => break ws.close_info().unwrap(),
            }
        };
        let _ = code_tx.send(info);
    });
    let options =
        ReconnectOptions::new(ClientOptions::new().max_unread_bytes(1024)).policy(policy());
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    assert_eq!(message(&mut client).await.as_bytes(), &[7u8; 1024][..]);
    // the supervisor now waits for room for the next one
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(client);
    let info = tokio::time::timeout(Duration::from_secs(2), code_rx)
        .await
        .expect("the connection stayed open after the client was dropped")
        .unwrap();
    assert_eq!(info.code, CloseCode::GOING_AWAY, "{info:?}");
}

/// `close()` is heard while queued messages are being handed to a
/// connection whose peer reads nothing (the hand-over waits for room in
/// the output queue): the client closes and stops instead of waiting for
/// room that never comes.
#[tokio::test]
async fn close_is_heard_while_the_handover_waits_for_room() {
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let _peer = RawPeer::accept(&listener).await;
        // reads nothing
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let client_options = ClientOptions::new().config(Config {
        max_queued_output: 64 << 10,
        close_timeout: Duration::from_millis(500),
        ..Config::default()
    });
    let options = ReconnectOptions::new(client_options)
        .policy(policy())
        .max_queued_messages(1000)
        .max_queued_bytes(100 << 20);
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    for _ in 0..100 {
        client.send(Message::binary(vec![1u8; 1 << 20])).unwrap();
    }
    assert_eq!(connected(&mut client).await, 0);
    // the socket buffers fill; the hand-over then waits for room
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.close(CloseCode::NORMAL, "").unwrap();
    let stopped = within_secs(5, async {
        loop {
            match client.next().await {
                Some(ReconnectEvent::Lifecycle(Lifecycle::Stopped(reason))) => break reason,
                Some(_) => {}
                None => panic!("ended without Stopped"),
            }
        }
    })
    .await
    .expect("close() was not heard");
    assert_eq!(stopped, StopReason::ApplicationClosed);
    server.abort();
}

/// What waits for a connection is bounded in bytes as well as in messages
/// (`max_queued_bytes`): a send that would take the queue past it is
/// refused and says so; one message larger than the bound may wait alone.
#[tokio::test]
async fn queued_messages_are_bounded_in_bytes_while_disconnected() {
    // a port with nobody listening: the client stays disconnected
    let url = format!("ws://127.0.0.1:{}/", ports::free_port());
    let options = ReconnectOptions::new(ClientOptions::new())
        .policy(policy())
        .max_queued_messages(100)
        .max_queued_bytes(1000);
    let client = ReconnectingClient::new(&url, options).unwrap();
    client.send(Message::binary(vec![0u8; 600])).unwrap();
    client.send(Message::binary(vec![0u8; 400])).unwrap();
    let err = client.send(Message::binary(vec![0u8; 1])).unwrap_err();
    assert!(
        matches!(
            &err,
            tether_tokio::Error::QueueFull(tether_tokio::QueueFull {
                queued: 2,
                queued_bytes: 1000,
                refused_bytes: 1,
                connected: false,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_queued_bytes"), "{err}");
    assert_eq!((client.queued(), client.queued_bytes()), (2, 1000));
    assert_eq!(client.take_queued().len(), 2);
    assert_eq!(client.queued_bytes(), 0);
    // alone, a message larger than the bound waits
    client.send(Message::binary(vec![0u8; 5000])).unwrap();
    // and nothing joins it: what waits is more than the bound already
    assert!(client.send(Message::text("")).is_err());
    assert_eq!(client.queued(), 1);
}

/// While connected, messages wait only until the connection takes them,
/// and that wait is bounded in bytes too (`QueueLimit::HANDOVER`, 16 MiB,
/// beside the connection's own `max_queued_output`): against a peer that
/// reads nothing, sends are refused once about that much waits. Before,
/// only 1024 messages bounded it, whatever their size (1 GiB of 1 MiB
/// messages).
#[tokio::test]
async fn while_connected_the_handover_is_bounded_in_bytes() {
    const MIB: usize = 1 << 20;
    let (listener, url) = listener().await;
    let server = tokio::spawn(async move {
        let _peer = RawPeer::accept(&listener).await;
        // reads nothing
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let config = Config {
        max_queued_output: 64 << 10,
        ..Config::default()
    };
    let options = ReconnectOptions::new(ClientOptions::new().config(config)).policy(policy());
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    let payload = bytes::Bytes::from(vec![7u8; MIB]);
    let mut accepted = 0usize;
    let err = loop {
        match client.send(Message::binary(payload.clone())) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(
            accepted < 200,
            "200 MiB accepted for a peer that reads nothing"
        );
        // let the supervisor hand over what it can
        tokio::task::yield_now().await;
    };
    assert!(
        matches!(
            &err,
            tether_tokio::Error::QueueFull(tether_tokio::QueueFull {
                connected: true,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("while connected"), "{err}");
    // what waits is within the hand-over's bound
    let waiting = client.queued();
    assert!(waiting * MIB <= 16 * MIB, "{waiting} MiB wait");
    client.close(CloseCode::NORMAL, "").unwrap();
    server.abort();
}

/// `take_queued` while the supervisor waits for room to hand the first
/// queued message to a connection whose peer reads nothing: that message
/// may already be on its way, so it is not taken; the rest are taken and
/// never sent; a message sent after it goes out after the first. The
/// supervisor popped the front once its send completed, whatever was there
/// by then: the later message was lost and the first both sent and taken.
#[tokio::test]
async fn take_queued_during_a_handover_takes_only_what_will_not_be_sent() {
    const PIECE: usize = 256 << 10;
    const COUNT: usize = 64;
    let (listener, url) = listener().await;
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        // reads no further ahead than one message while nobody reads
        let config = Config {
            max_unread_bytes: 1024,
            ..Config::default()
        };
        let mut ws = accept_one(&listener, &ServerOptions::new().config(config)).await;
        go_rx.await.unwrap();
        let mut got = Vec::new();
        loop {
            let m = ws.next().await.unwrap().unwrap();
            let last = m.as_text() == Some("after");
            got.push(m);
            if last {
                return got;
            }
        }
    });
    let config = Config {
        max_queued_output: 64 << 10,
        ..Config::default()
    };
    let options = ReconnectOptions::new(ClientOptions::new().config(config))
        .policy(policy())
        .max_queued_messages(COUNT);
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    for i in 0..COUNT {
        let mut piece = vec![0u8; PIECE];
        piece[0] = u8::try_from(i).unwrap();
        client.send(Message::binary(piece)).unwrap();
    }
    // wait until the handover is stuck: the queue no longer shrinks
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = client.queued();
        if now == last {
            break;
        }
        last = now;
    }
    assert!(last > 1, "the peer took everything: {last} left");
    let taken = client.take_queued();
    assert_eq!(taken.len(), last - 1);
    assert_eq!(client.queued(), 1);
    client.send(Message::text("after")).unwrap();
    go_tx.send(()).unwrap();
    let got = within(server).await.unwrap();
    let firsts = |ms: &[Message]| -> Vec<u8> {
        ms.iter()
            .filter(|m| m.kind() == tether::MessageKind::Binary)
            .map(|m| m.as_bytes()[0])
            .collect()
    };
    let sent = firsts(&got);
    let expected: Vec<u8> = (0..sent.len()).map(|i| u8::try_from(i).unwrap()).collect();
    assert_eq!(sent, expected, "sent in order, each once");
    assert_eq!(got.last().unwrap().as_text(), Some("after"));
    let left = firsts(&taken);
    let expected_left: Vec<u8> = (sent.len()..COUNT)
        .map(|i| u8::try_from(i).unwrap())
        .collect();
    assert_eq!(left, expected_left, "the taken ones are exactly the unsent");
    client.close(CloseCode::NORMAL, "").unwrap();
}

/// Each `Connected` carries what the server's answer agreed for that
/// connection, so an application sees the subprotocol it now speaks (a
/// server behind the same URL may choose another after a reconnect); the
/// CLI's `--jsonl --reconnect` printed `null` for it.
#[tokio::test]
async fn rfc6455_4_1_connected_names_the_subprotocol_of_each_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        // the first connection is cut at once; the second speaks "v2"
        for chosen in ["v1", "v2"] {
            let (tcp, _) = listener.accept().await.unwrap();
            let (mut ws, _) =
                tether_tokio::accept_with(tcp, &ServerOptions::default(), move |_| {
                    Ok(tether::handshake::AcceptOptions::new().subprotocol(chosen))
                })
                .await
                .unwrap();
            if chosen == "v1" {
                ws.abort();
            } else {
                while ws.next().await.is_some() {}
            }
        }
    });
    let options = ReconnectOptions::new(ClientOptions::new().subprotocol("v1").subprotocol("v2"))
        .policy(policy());
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    let mut chosen = Vec::new();
    while chosen.len() < 2 {
        if let Lifecycle::Connected { accepted, .. } = lifecycle(&mut client).await {
            chosen.push(accepted.subprotocol().map(str::to_owned));
        }
    }
    assert_eq!(chosen, [Some("v1".into()), Some("v2".into())]);
}

/// A server that sends `count` 1 KiB messages right after the upgrade,
/// then logs every frame the client sends, until the client's Close.
async fn flooding_server(
    listener: tokio::net::TcpListener,
    count: usize,
) -> tokio::task::JoinHandle<Vec<tether::frame::Frame>> {
    tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        for _ in 0..count {
            peer.send(tether::frame::OpCode::Binary, &[7u8; 1024]).await;
        }
        let mut got = Vec::new();
        while let Some(frame) = peer.frame().await {
            let close = frame.header.opcode == tether::frame::OpCode::Close;
            got.push(frame);
            if close {
                break;
            }
        }
        got
    })
}

/// A client connected to a [`flooding_server`] of 20 messages, with a
/// read-ahead of 2 KiB the messages soon fill (its `Connected` read).
async fn flooded_client() -> (
    tokio::task::JoinHandle<Vec<tether::frame::Frame>>,
    ReconnectingClient,
) {
    let (listener, url) = listener().await;
    let server = flooding_server(listener, 20).await;
    let options =
        ReconnectOptions::new(ClientOptions::new().max_unread_bytes(2048)).policy(policy());
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    (server, client)
}

/// While received messages wait for the application (the read-ahead
/// budget is spent: it reads nothing), the supervisor still hands what
/// the application sends to the connection: a sender pacing itself with
/// `drained_to` is not held by what it has not read yet. The supervisor
/// waited for that room before anything else, so `drained_to(0)` waited
/// for ever.
#[tokio::test]
async fn the_handover_goes_on_while_received_messages_wait_unread() {
    let (server, client) = flooded_client().await;
    // the supervisor has relayed what the budget allows, and waits
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..3u8 {
        client.send(Message::binary(vec![i; 10])).unwrap();
    }
    within_secs(5, client.drained_to(0))
        .await
        .expect("the hand-over waited for the application to read");
    client.close(CloseCode::NORMAL, "").unwrap();
    let got = within(server).await.unwrap();
    let sent: Vec<&[u8]> = got
        .iter()
        .filter(|f| f.header.opcode == tether::frame::OpCode::Binary)
        .map(|f| &f.payload[..])
        .collect();
    assert_eq!(sent, [&[0u8; 10][..], &[1u8; 10], &[2u8; 10]]);
    assert_eq!(
        got.last().map(|f| f.header.opcode),
        Some(tether::frame::OpCode::Close)
    );
}

/// `close()` is heard while received messages wait for an application
/// that reads nothing: our Close goes out at once (the supervisor waited
/// for room for the next message first, and sent it only once the
/// application read).
#[tokio::test]
async fn close_is_heard_while_received_messages_wait_unread() {
    let (server, client) = flooded_client().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.close(CloseCode::NORMAL, "bye").unwrap();
    let got = within_secs(5, server)
        .await
        .expect("our Close did not go out while messages waited unread")
        .unwrap();
    let close = got.last().unwrap();
    assert_eq!(close.header.opcode, tether::frame::OpCode::Close);
    assert_eq!(&close.payload[..2], &1000u16.to_be_bytes());
    drop(client);
}

/// `drained_to` completes when the connection it waits on goes down: what
/// waits is then kept for the next connection, under the queue's own
/// limits, which a producer paced while connected must heed again. A
/// waiter that does not read the client's events (its lifecycle events
/// among them) would otherwise wait for as long as the client stays
/// down.
#[tokio::test]
async fn drained_to_completes_when_the_connection_goes_down() {
    let (listener, url) = listener().await;
    let (cut_tx, cut_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let peer = RawPeer::accept(&listener).await;
        drop(listener); // no second connection
        // reads nothing until told, then goes
        let _ = cut_rx.await;
        drop(peer);
    });
    let config = Config {
        max_queued_output: 64 << 10,
        ..Config::default()
    };
    let options = ReconnectOptions::new(ClientOptions::new().config(config))
        .policy(policy())
        .max_queued_messages(100)
        .max_queued_bytes(100 << 20);
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    for _ in 0..32 {
        client.send(Message::binary(vec![1u8; 256 << 10])).unwrap();
    }
    // the socket buffers fill; the hand-over then waits for room
    let drained = client.drained_to(0);
    tokio::pin!(drained);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut drained)
            .await
            .is_err(),
        "completed with {} queued while connected",
        client.queued()
    );
    cut_tx.send(()).unwrap();
    within_secs(5, drained)
        .await
        .expect("drained_to went on waiting after the connection went down");
    assert!(!client.is_connected());
    assert!(client.queued() > 0, "what waits is kept");
    client.close(CloseCode::NORMAL, "").unwrap();
}

/// A connection that ends while a received message waits for the
/// application's room is reported down at once, though the application
/// reads nothing: `drained_to` completes and what was sent but not handed
/// over stays queued for the next connection. The messages received
/// before the end still come, then `Disconnected`. The supervisor learned
/// of the end only by reading on, which it does not while a message
/// waits, so a sender pacing itself with `drained_to` waited for ever.
#[tokio::test]
async fn a_connection_that_ends_while_a_message_waits_unread_is_reported_down() {
    const MIB: usize = 1 << 20;
    let (listener, url) = listener().await;
    tokio::spawn(async move {
        let mut peer = RawPeer::accept(&listener).await;
        drop(listener); // no second connection
        for _ in 0..3 {
            peer.send(tether::frame::OpCode::Binary, &[7u8; 1024]).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // gone at once: a reset, not a close
        peer.stream.set_zero_linger().unwrap();
        drop(peer);
    });
    let config = Config {
        max_queued_output: 64 << 10,
        close_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let options = ReconnectOptions::new(ClientOptions::new().config(config).max_unread_bytes(1024))
        .policy(policy())
        .max_queued_messages(10)
        .max_queued_bytes(10 * MIB);
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    assert_eq!(connected(&mut client).await, 0);
    // the first message waits in the channel, the second in the
    // supervisor's hands; the server resets the connection
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..4 {
        client.send(Message::binary(vec![1u8; MIB])).unwrap();
    }
    within_secs(5, client.drained_to(0))
        .await
        .expect("the connection's end was not noticed while a message waited");
    assert!(!client.is_connected());
    assert!(client.queued() > 0, "what was not handed over is kept");
    for _ in 0..3 {
        assert_eq!(message(&mut client).await.as_bytes(), &[7u8; 1024][..]);
    }
    match lifecycle(&mut client).await {
        Lifecycle::Disconnected(info) => assert!(!info.was_clean, "{info:?}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    client.close(CloseCode::NORMAL, "").unwrap();
}
