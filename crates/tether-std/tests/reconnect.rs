#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The blocking reconnecting client against real servers on 127.0.0.1:
//! killed and restarted on the same port, closing with 4000 (intentional)
//! or 1001, or silent past a keep-alive Ping timeout. Every test runs under
//! a time bound.

mod common;
#[path = "../../tether/tests/common/ports.rs"]
mod ports;

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{RawPeer, bounded, listen};
use tether::reconnect::Reconnector;
use tether_std::{
    ClientOptions, CloseCode, Config, Error, Initiator, KeepAlive, Lifecycle, Message,
    ReconnectEvent, ReconnectOptions, ReconnectPolicy, ReconnectingClient, ServerOptions,
    StopReason,
};

const LIMIT: Duration = Duration::from_secs(20);

fn policy() -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
        intentional_codes: vec![CloseCode::new(4000)],
        ..ReconnectPolicy::default()
    }
}

/// The options these tests use: the test policy and a queue of `queue`.
fn options(queue: usize) -> ReconnectOptions {
    ReconnectOptions::new(ClientOptions::new())
        .policy(policy())
        .max_queued_messages(queue)
}

/// A server that accepts every upgrade (tether's own parser), then reads
/// nothing and answers nothing: its URL.
fn silent_server() -> String {
    let (listener, url) = listen();
    thread::spawn(move || {
        let mut peers = Vec::new();
        loop {
            peers.push(RawPeer::accept(&listener, Config::default()));
        }
    });
    url
}

/// The options of a client whose keep-alive Pings every `interval` and
/// waits `timeout` for the Pong, with the test policy and a queue of 10.
fn keep_alive_options(interval: Duration, timeout: Duration) -> ReconnectOptions {
    ReconnectOptions::new(ClientOptions::new().config(Config {
        keep_alive: KeepAlive::Ping { interval, timeout },
        ..Config::default()
    }))
    .policy(policy())
    .max_queued_messages(10)
}

fn lifecycle(client: &mut ReconnectingClient) -> Lifecycle {
    loop {
        match client.next() {
            Some(ReconnectEvent::Lifecycle(l)) => return l,
            Some(ReconnectEvent::Message(_)) => {}
            None => panic!("client stopped"),
        }
    }
}

/// The next lifecycle event, which must be `Connected`: its attempt.
fn connected(client: &mut ReconnectingClient) -> u32 {
    match lifecycle(client) {
        Lifecycle::Connected { attempt, .. } => attempt,
        other => panic!("expected Connected, got {other:?}"),
    }
}

fn message(client: &mut ReconnectingClient) -> Message {
    match client.next() {
        Some(ReconnectEvent::Message(m)) => m,
        Some(ReconnectEvent::Lifecycle(l)) => panic!("unexpected {l:?}"),
        None => panic!("client stopped"),
    }
}

/// An echo server (tether-std) whose listener and connections can be cut
/// at once without a Close, as a killed process's would be.
struct KillableServer {
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl KillableServer {
    fn start(addr: SocketAddr, received: Arc<Mutex<Vec<String>>>) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
        let acceptor = thread::spawn({
            let (stop, streams) = (stop.clone(), streams.clone());
            move || {
                while !stop.load(Ordering::SeqCst) {
                    let tcp = match listener.accept() {
                        Ok((tcp, _)) => tcp,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        Err(e) => panic!("accept: {e}"),
                    };
                    tcp.set_nonblocking(false).unwrap();
                    streams.lock().unwrap().push(tcp.try_clone().unwrap());
                    let log = received.clone();
                    thread::spawn(move || {
                        let Ok((mut ws, _)) = tether_std::accept(tcp, &ServerOptions::new()) else {
                            return;
                        };
                        while let Ok(m) = ws.read() {
                            log.lock()
                                .unwrap()
                                .push(m.as_text().unwrap_or("").to_owned());
                            if ws.send(m).is_err() {
                                return;
                            }
                        }
                    });
                }
                // the listener drops here: the port refuses connections
            }
        });
        Self {
            stop,
            streams,
            acceptor: Some(acceptor),
        }
    }

    /// Closes the listener, then cuts every connection (FIN both ways, no
    /// Close frame).
    fn kill(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().unwrap();
        }
        for tcp in self.streams.lock().unwrap().drain(..) {
            let _ = tcp.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn killed_and_restarted_server_reconnects_within_backoff_and_delivers_queued_once_in_order() {
    bounded(LIMIT, || {
        // a port the server can take again once killed
        let addr = SocketAddr::from(([127, 0, 0, 1], ports::free_port()));
        let url = format!("ws://{addr}/");
        let received = Arc::new(Mutex::new(Vec::new()));
        let server = KillableServer::start(addr, received.clone());
        let mut client = ReconnectingClient::new(&url, options(5)).unwrap();
        assert!(!client.is_connected());
        assert_eq!(connected(&mut client), 0);
        assert!(client.is_connected());
        client.send(Message::text("before")).unwrap();
        assert_eq!(message(&mut client), Message::text("before"));

        server.kill();
        match lifecycle(&mut client) {
            Lifecycle::Disconnected(info) => {
                assert_eq!(info.code, CloseCode::ABNORMAL, "{info}");
                assert!(!info.was_clean, "{info}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!client.is_connected());
        for i in 0..5 {
            client.send(Message::text(format!("queued {i}"))).unwrap();
        }
        // over the bound: refused with an error, and nothing queued is lost
        let refused = client.send(Message::text("one too many")).unwrap_err();
        assert!(
            matches!(
                refused,
                Error::QueueFull(tether_std::QueueFull {
                    queued: 5,
                    limit: tether_std::QueueLimit { messages: 5, .. },
                    connected: false,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(
            refused.to_string().contains("5 message(s) already wait"),
            "{refused}"
        );
        assert_eq!(client.queued(), 5);

        // the port stays closed for 600 ms: several attempts fail first
        let down_until = Instant::now() + Duration::from_millis(600);
        let restarter = thread::spawn({
            let received = received.clone();
            move || {
                thread::sleep(down_until.saturating_duration_since(Instant::now()));
                KillableServer::start(addr, received)
            }
        });
        let caps = Reconnector::new(policy());
        let mut attempts = Vec::new();
        let mut failures = 0;
        let mut waited: Option<(Instant, Duration)> = None;
        let reconnected = loop {
            let event = lifecycle(&mut client);
            if let Some((since, delay)) = waited.take() {
                // the client really waited its delay before the attempt
                let elapsed = since.elapsed();
                assert!(
                    elapsed + Duration::from_millis(2) >= delay,
                    "waited {elapsed:?} of {delay:?}"
                );
            }
            match event {
                Lifecycle::Reconnecting { attempt, delay } => {
                    let cap = caps.delay_cap(attempt);
                    assert!(delay <= cap, "attempt {attempt}: {delay:?} over {cap:?}");
                    assert!(cap <= Duration::from_millis(400));
                    attempts.push(attempt);
                    waited = Some((Instant::now(), delay));
                }
                Lifecycle::ConnectFailed(why) => {
                    assert!(why.contains("cannot connect"), "{why}");
                    // names the URL, as the tokio client's does
                    assert!(why.starts_with(&url), "{why}");
                    failures += 1;
                }
                Lifecycle::Connected { attempt, .. } => break attempt,
                other => panic!("{other:?}"),
            }
        };
        let restarted = restarter.join().unwrap();
        assert!(attempts.len() >= 2, "{attempts:?}");
        assert_eq!(failures, attempts.len() - 1, "{attempts:?}");
        assert_eq!(attempts, (1..=attempts.len() as u32).collect::<Vec<_>>());
        assert_eq!(reconnected, *attempts.last().unwrap());
        assert_eq!(client.queued(), 0, "flushed right after reconnecting");
        for i in 0..5 {
            assert_eq!(message(&mut client), Message::text(format!("queued {i}")));
        }
        assert_eq!(
            *received.lock().unwrap(),
            [
                "before", "queued 0", "queued 1", "queued 2", "queued 3", "queued 4"
            ],
            "each once, in order"
        );

        client.close(CloseCode::NORMAL, "done").unwrap();
        match lifecycle(&mut client) {
            Lifecycle::Disconnected(info) => {
                assert_eq!(info.code, CloseCode::NORMAL, "{info}");
                assert!(info.was_clean, "{info}");
                assert_eq!(info.initiator, Initiator::Application);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            lifecycle(&mut client),
            Lifecycle::Stopped(StopReason::ApplicationClosed)
        );
        assert!(client.next().is_none());
        assert!(client.next().is_none(), "fused");
        assert!(client.is_stopped());
        assert!(client.send(Message::text("late")).is_err());
        restarted.kill();
    });
}

/// A server whose connections say "hello" and close with `code`; counts
/// the connections it accepted.
fn closing_server(code: u16) -> (String, Arc<AtomicUsize>) {
    let (listener, url) = listen();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            count.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || {
                let (mut ws, _) = tether_std::accept(tcp, &ServerOptions::new()).unwrap();
                ws.send(Message::text("hello")).unwrap();
                let _ = ws.close(CloseCode::new(code), "server says so");
            });
        }
    });
    (url, accepted)
}

#[test]
fn close_4000_marked_intentional_stops_without_reconnecting() {
    bounded(LIMIT, || {
        let (url, accepted) = closing_server(4000);
        let mut client = ReconnectingClient::new(&url, options(10)).unwrap();
        assert_eq!(connected(&mut client), 0);
        assert_eq!(message(&mut client), Message::text("hello"));
        match lifecycle(&mut client) {
            Lifecycle::Disconnected(info) => {
                assert_eq!((info.code.as_u16(), info.was_clean), (4000, true), "{info}");
                assert_eq!(info.reason, "server says so");
                assert_eq!(info.initiator, Initiator::Remote);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            lifecycle(&mut client),
            Lifecycle::Stopped(StopReason::Intentional(CloseCode::new(4000)))
        );
        assert!(client.next().is_none());
        assert!(client.send(Message::text("after the end")).is_err());
        assert_eq!(client.queued(), 0);
        thread::sleep(Duration::from_millis(200));
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "no reconnect");
    });
}

#[test]
fn close_1001_reconnects() {
    bounded(LIMIT, || {
        let (url, accepted) = closing_server(1001);
        // queueing off: a send while disconnected is refused, not dropped
        let mut client = ReconnectingClient::new(&url, options(0)).unwrap();
        assert_eq!(connected(&mut client), 0);
        assert_eq!(message(&mut client), Message::text("hello"));
        match lifecycle(&mut client) {
            Lifecycle::Disconnected(info) => {
                assert_eq!(info.code, CloseCode::GOING_AWAY, "{info}");
                assert!(info.was_clean, "{info}");
            }
            other => panic!("{other:?}"),
        }
        assert!(client.send(Message::text("refused")).is_err());
        assert_eq!(client.queued(), 0);
        assert!(matches!(
            lifecycle(&mut client),
            Lifecycle::Reconnecting { attempt: 1, .. }
        ));
        assert_eq!(connected(&mut client), 1);
        assert_eq!(message(&mut client), Message::text("hello"));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // the server closes again: attempt 2 (no stable connection in between)
        assert!(matches!(lifecycle(&mut client), Lifecycle::Disconnected(_)));
        assert!(matches!(
            lifecycle(&mut client),
            Lifecycle::Reconnecting { attempt: 2, .. }
        ));
        // closing while waiting to reconnect stops at once
        client.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(
            lifecycle(&mut client),
            Lifecycle::Stopped(StopReason::ApplicationClosed)
        );
        assert!(client.next().is_none());
    });
}

#[test]
fn silent_server_past_the_keepalive_timeout_reconnects() {
    bounded(LIMIT, || {
        let url = silent_server();
        let options = keep_alive_options(Duration::from_millis(200), Duration::from_millis(200));
        // before the connection, so before its keep-alive starts
        let started = Instant::now();
        let mut client = ReconnectingClient::new(&url, options).unwrap();
        assert_eq!(connected(&mut client), 0);
        client.send(Message::text("into the void")).unwrap();
        assert_eq!(client.queued(), 0, "sent while connected");
        match lifecycle(&mut client) {
            Lifecycle::Disconnected(info) => {
                assert_eq!(info.code, CloseCode::ABNORMAL, "{info}");
                assert!(!info.was_clean, "{info}");
                assert_eq!(info.initiator, Initiator::Local, "{info}");
                assert!(
                    info.reason.contains("keep-alive timeout"),
                    "{}",
                    info.reason
                );
            }
            other => panic!("{other:?}"),
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
        assert!(matches!(
            lifecycle(&mut client),
            Lifecycle::Reconnecting { attempt: 1, .. }
        ));
        assert_eq!(connected(&mut client), 1);
        // the silent server would not answer a Close: just drop the client
    });
}

#[test]
fn a_url_that_is_not_websocket_is_refused_up_front() {
    let err =
        ReconnectingClient::new("http://127.0.0.1/", ReconnectOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Url(_)), "{err:?}");
}

#[test]
fn gives_up_after_max_attempts_and_gives_back_the_queue() {
    bounded(LIMIT, || {
        // a port with nobody listening
        let url = format!("ws://127.0.0.1:{}/", ports::free_port());
        let policy = ReconnectPolicy {
            max_attempts: Some(2),
            ..policy()
        };
        let options = ReconnectOptions::default()
            .policy(policy)
            .max_queued_messages(3);
        let mut client = ReconnectingClient::new(&url, options).unwrap();
        client.send(Message::text("a")).unwrap();
        client.send(Message::text("b")).unwrap();
        let mut events = Vec::new();
        for event in client.by_ref() {
            match event {
                ReconnectEvent::Lifecycle(Lifecycle::ConnectFailed(_)) => {
                    events.push("failed".to_owned())
                }
                ReconnectEvent::Lifecycle(Lifecycle::Reconnecting { attempt, .. }) => {
                    events.push(format!("reconnecting {attempt}"))
                }
                ReconnectEvent::Lifecycle(Lifecycle::Stopped(reason)) => {
                    events.push(format!("{reason:?}"))
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            events,
            [
                "failed",
                "reconnecting 1",
                "failed",
                "reconnecting 2",
                "failed",
                "GaveUp { attempts: 2 }"
            ]
        );
        assert_eq!(
            client.take_queued(),
            [Message::text("a"), Message::text("b")]
        );
    });
}

/// What waits for a connection is bounded in bytes as well as in messages
/// (`max_queued_bytes`): a send that would take the queue past it is
/// refused and says so; one message larger than the bound may wait alone.
#[test]
fn queued_messages_are_bounded_in_bytes_while_disconnected() {
    let url = format!("ws://127.0.0.1:{}/", ports::free_port());
    let options = options(100).max_queued_bytes(1000);
    // nothing connects before the first `next`
    let mut client = ReconnectingClient::new(&url, options).unwrap();
    client.send(Message::binary(vec![0u8; 600])).unwrap();
    client.send(Message::binary(vec![0u8; 400])).unwrap();
    let err = client.send(Message::binary(vec![0u8; 1])).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::QueueFull(tether_std::QueueFull {
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

/// A message the application sends while the connection is ending by
/// itself (our idle-timeout Close is out, its answer not yet in) waits
/// for the next connection, as one sent while disconnected does. It was
/// refused as the application's misuse, and neither sent nor kept.
#[test]
fn a_send_while_our_idle_close_waits_for_its_answer_is_queued() {
    bounded(LIMIT, || {
        let (listener, url) = listen();
        let server = thread::spawn(move || {
            // first: holds our Close unanswered, sends a message after it
            let config = Config {
                auto_close_reply: false,
                ..Config::default()
            };
            let mut first = RawPeer::accept(&listener, config);
            let waited = Instant::now();
            while first.conn.state() != tether::State::CloseReceived {
                assert!(waited.elapsed() < Duration::from_secs(5), "no idle Close");
                let _ = first.next_event(Duration::from_millis(50));
            }
            first.send(Message::text("crossed your Close"));
            thread::sleep(Duration::from_millis(300));
            first.conn.reply_close(Instant::now()).unwrap();
            first.flush();
            // second: what the client sent meanwhile
            let mut second = RawPeer::accept(&listener, Config::default());
            let got = match second.next_event(Duration::from_secs(5)) {
                Some(tether::Event::Message(m)) => m,
                other => panic!("expected the queued message, got {other:?}"),
            };
            drop(first);
            got
        });
        let options = ReconnectOptions::new(ClientOptions::new().config(Config {
            idle_timeout: Some(Duration::from_millis(200)),
            ..Config::default()
        }))
        .policy(policy())
        .max_queued_messages(10);
        let mut client = ReconnectingClient::new(&url, options).unwrap();
        assert_eq!(connected(&mut client), 0);
        // our idle Close goes out; the server's message crosses it
        assert_eq!(message(&mut client), Message::text("crossed your Close"));
        client
            .send(Message::text("an answer"))
            .expect("queued for the next connection");
        assert_eq!(client.queued(), 1);
        // the answer to our Close, the end, and the next connection
        loop {
            if let Lifecycle::Connected { attempt, .. } = lifecycle(&mut client) {
                assert_eq!(attempt, 1);
                break;
            }
        }
        assert_eq!(client.queued(), 0);
        assert_eq!(
            server.join().unwrap(),
            Message::text("an answer"),
            "sent on the next connection"
        );
    });
}

/// A message the connection took is handed over once, as the tokio client
/// hands one over: when the connection then fails while writing it (here
/// the keep-alive ends it: the server reads nothing and answers nothing),
/// the message is not queued to go again on the next connection, where it
/// could arrive twice (its bytes may have reached the server). `next`
/// reports the end.
#[test]
fn a_message_the_connection_took_is_not_sent_again_after_its_write_fails() {
    bounded(LIMIT, || {
        let url = silent_server();
        let options = keep_alive_options(Duration::from_millis(100), Duration::from_millis(200));
        let mut client = ReconnectingClient::new(&url, options).unwrap();
        assert_eq!(connected(&mut client), 0);
        // larger than the sockets hold: the write waits until the
        // keep-alive ends the connection
        client
            .send(Message::binary(vec![7u8; 32 << 20]))
            .expect("handed over");
        assert_eq!(client.queued(), 0, "not queued again");
        match lifecycle(&mut client) {
            Lifecycle::Disconnected(info) => {
                assert!(info.reason.contains("keep-alive"), "{info}");
            }
            other => panic!("{other:?}"),
        }
        // refused while the connection is gone: queued, as before
        client.send(Message::text("later")).unwrap();
        assert_eq!(client.queued(), 1);
    });
}

/// A connection whose keep-alive ran out while the application was away
/// (nothing runs between its calls) has ended, though nobody has noticed:
/// a message sent then is queued for the next connection, not taken by
/// the dead one and thrown away unwritten.
#[test]
fn a_send_after_the_keepalive_ran_out_unseen_is_queued_not_lost() {
    bounded(LIMIT, || {
        let url = silent_server();
        let options = keep_alive_options(Duration::from_millis(50), Duration::from_millis(50));
        let mut client = ReconnectingClient::new(&url, options).unwrap();
        assert_eq!(connected(&mut client), 0);
        // past the interval: the Ping goes out with the next call
        thread::sleep(Duration::from_millis(100));
        client.send(Message::text("first")).unwrap();
        // its Pong never comes, and nobody calls while its wait runs out
        thread::sleep(Duration::from_millis(300));
        client.send(Message::text("second")).unwrap();
        assert_eq!(client.queued(), 1, "kept for the next connection");
        match lifecycle(&mut client) {
            Lifecycle::Disconnected(info) => {
                assert!(info.reason.contains("keep-alive"), "{info}");
            }
            other => panic!("{other:?}"),
        }
    });
}
