//! tether clients (tokio and std adapters) against a Node `ws` server
//! (`interop/peers/ws_server.mjs`): the users' story (greeting, echo, a Pong
//! per Ping), keep-alive, unsolicited Pongs, close codes both ways, and a
//! killed peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tether::{CloseCode, CloseInfo, Config, Event, Initiator, KeepAlive, Message};
use tether_interop::{Peer, SCENARIO, field, run_blocking, run_tokio, within};

type StdSocket = tether_std::WebSocket<tether_std::MaybeTlsStream>;

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/")
}

fn config(keep_alive: KeepAlive) -> Config {
    Config {
        keep_alive,
        ..Config::default()
    }
}

async fn tokio_client(port: u16, config: Config) -> tether_tokio::WebSocket {
    let options = tether_tokio::ClientOptions::new().config(config);
    within(tether_tokio::connect(&url(port), &options))
        .await
        .unwrap()
        .0
}

fn std_client(port: u16, config: Config) -> StdSocket {
    tether_std::connect(&url(port), &tether_std::ClientOptions::new().config(config))
        .unwrap()
        .0
}

/// The next event of a tokio socket, bounded.
async fn next_event(ws: &mut tether_tokio::WebSocket) -> Event {
    within(ws.next_event()).await.expect("the socket ended")
}

/// The next message of a tokio socket, bounded.
async fn next_message(ws: &mut tether_tokio::WebSocket) -> Message {
    use futures_util::StreamExt;
    within(ws.next()).await.expect("the socket ended").unwrap()
}

/// Reads a tokio socket until its final close.
async fn until_closed(ws: &mut tether_tokio::WebSocket) -> (Vec<Event>, CloseInfo) {
    let mut events = Vec::new();
    loop {
        match next_event(ws).await {
            Event::Closed(info) => return (events, info),
            event => events.push(event),
        }
    }
}

/// Reads a std socket until its final close.
fn until_closed_std(ws: &mut StdSocket) -> (Vec<Event>, CloseInfo) {
    let mut events = Vec::new();
    loop {
        match ws.read_event() {
            Ok(Event::Closed(info)) | Err(tether_std::Error::Closed(info)) => {
                return (events, info);
            }
            Ok(event) => events.push(event),
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Reads a std socket on its own thread (so it answers Pings and runs its
/// keep-alive) until the text `stop`; gives back the socket and what it read.
fn read_until_stop(mut ws: StdSocket) -> std::thread::JoinHandle<(StdSocket, Vec<Event>)> {
    std::thread::spawn(move || {
        let mut events = Vec::new();
        loop {
            match ws.read_event().unwrap() {
                Event::Message(m) if m.as_text() == Some("stop") => return (ws, events),
                event => events.push(event),
            }
        }
    })
}

fn text(s: &str) -> Message {
    Message::text(s)
}

fn pings(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Ping(p) => Some(String::from_utf8_lossy(p).into_owned()),
            _ => None,
        })
        .collect()
}

/// Checks the `counts` report: at least three Pings, a Pong for each.
fn check_counts(line: &str) {
    let pings: u32 = field(line, "pings").parse().unwrap();
    let pongs: u32 = field(line, "pongs").parse().unwrap();
    assert!(pings >= 3, "{line}");
    assert_eq!(pings, pongs, "one Pong per Ping: {line}");
}

// ----- 1. the users' story ------------------------------------------------

const STORY: &[&str] = &["--greet", "--echo", "--ping-ms=200"];

#[test]
fn story_greeting_echo_and_a_pong_per_ping_tokio() {
    run_tokio(SCENARIO, async {
        let mut node = Peer::node("ws_server.mjs", STORY);
        let mut ws = tokio_client(node.port().await, Config::default()).await;
        assert_eq!(next_message(&mut ws).await, text("connection established"));
        within(ws.send(text("Hello"))).await.unwrap();
        assert_eq!(next_message(&mut ws).await, text("echo Hello"));
        // The driver answers Pings while the application does not read.
        node.line("pong 1 ping-3").await;
        node.send("report");
        check_counts(&node.line("counts 1").await);
        let info = within(ws.close(CloseCode::NORMAL, "bye")).await.unwrap();
        assert!(info.was_clean, "{info}");
        assert_eq!(info.code, CloseCode::NORMAL);
        node.line("close 1 1000 bye").await;
        // Each Ping was an event too (some may be dropped while the
        // application lags, never reordered).
        let (events, _) = until_closed(&mut ws).await;
        let pings = pings(&events);
        assert_eq!(
            pings.first().map(String::as_str),
            Some("ping-1"),
            "{pings:?}"
        );
    });
}

#[test]
fn story_greeting_echo_and_a_pong_per_ping_std() {
    run_blocking(SCENARIO, || {
        let mut node = Peer::node("ws_server.mjs", STORY);
        let mut ws = std_client(node.port_blocking(), Config::default());
        assert_eq!(ws.read().unwrap(), text("connection established"));
        ws.send(text("Hello")).unwrap();
        assert_eq!(ws.read().unwrap(), text("echo Hello"));
        let reader = read_until_stop(ws);
        node.line_blocking("pong 1 ping-3");
        node.send("report");
        check_counts(&node.line_blocking("counts 1"));
        node.send("text stop");
        let (mut ws, events) = reader.join().unwrap();
        let pings = pings(&events);
        assert_eq!(&pings[..3], ["ping-1", "ping-2", "ping-3"], "{pings:?}");
        let info = ws.close(CloseCode::NORMAL, "bye").unwrap();
        assert!(info.was_clean, "{info}");
        assert_eq!(info.code, CloseCode::NORMAL);
        node.line_blocking("close 1 1000 bye");
    });
}

// ----- 2. keep-alive --------------------------------------------------------

const HEARTBEAT: Duration = Duration::from_millis(200);

/// Checks that heartbeat Pongs reached the Node server about once per
/// `HEARTBEAT`, `times` being when the test read each, counted from
/// `started`, taken before the connection (so before its first interval).
/// Measured where the test reads Node's output, so a late read moves
/// one time, not the mean from `started`: the first read late and the
/// rest at once (already printed) would halve a mean from the first.
fn check_heartbeats(started: Instant, times: &[Instant]) {
    let Some(last) = times.last() else {
        panic!("no heartbeats");
    };
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = (*last - started) / times.len() as u32;
    assert!(
        mean >= HEARTBEAT * 3 / 4 && mean <= HEARTBEAT * 2,
        "heartbeats every {mean:?} on average for an interval of {HEARTBEAT:?}: {gaps:?}"
    );
    assert!(
        gaps.iter().all(|gap| *gap <= HEARTBEAT * 5),
        "a heartbeat came late: {gaps:?}"
    );
}

#[test]
fn keep_alive_pong_fires_ws_pong_handler_once_per_interval_tokio() {
    run_tokio(SCENARIO, async {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let port = node.port().await;
        let started = Instant::now();
        let ws = tokio_client(
            port,
            config(KeepAlive::Pong {
                interval: HEARTBEAT,
            }),
        )
        .await;
        let mut times = Vec::new();
        for _ in 0..5 {
            let line = node.line("pong 1").await;
            assert_eq!(line, "pong 1 ", "heartbeat Pongs are empty");
            times.push(Instant::now());
        }
        check_heartbeats(started, &times);
        drop(ws);
    });
}

#[test]
fn keep_alive_pong_fires_ws_pong_handler_once_per_interval_std() {
    run_blocking(SCENARIO, || {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let port = node.port_blocking();
        let started = Instant::now();
        let ws = std_client(
            port,
            config(KeepAlive::Pong {
                interval: HEARTBEAT,
            }),
        );
        // The std adapter runs its timers while blocked in `read`.
        let reader = read_until_stop(ws);
        let mut times = Vec::new();
        for _ in 0..5 {
            let line = node.line_blocking("pong 1");
            assert_eq!(line, "pong 1 ", "heartbeat Pongs are empty");
            times.push(Instant::now());
        }
        check_heartbeats(started, &times);
        node.send("text stop");
        drop(reader.join().unwrap());
    });
}

/// How long an idle `KeepAlive::Off` client is watched for stray frames.
const IDLE: Duration = Duration::from_millis(800);

fn assert_no_control_frames(lines: &[String]) {
    let stray: Vec<_> = lines
        .iter()
        .filter(|l| l.starts_with("pong ") || l.starts_with("ping "))
        .collect();
    assert!(stray.is_empty(), "frames nobody asked for: {stray:?}");
}

#[test]
fn keep_alive_off_sends_nothing_tokio() {
    run_tokio(SCENARIO, async {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let mut ws = tokio_client(node.port().await, config(KeepAlive::Off)).await;
        // Idle, then a message from the server, then one back: anything
        // we sent on our own would reach Node before that message.
        tokio::time::sleep(IDLE).await;
        node.send("text wake");
        assert_eq!(next_message(&mut ws).await, text("wake"));
        within(ws.send(text("after"))).await.unwrap();
        assert_no_control_frames(&node.until("text 1 5 after").await);
        assert_eq!(next_message(&mut ws).await, text("echo after"));
    });
}

#[test]
fn keep_alive_off_sends_nothing_std() {
    run_blocking(SCENARIO, || {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let ws = std_client(node.port_blocking(), config(KeepAlive::Off));
        // Idle inside `read` (where the std adapter runs its timers).
        let reader = std::thread::spawn(move || {
            let mut ws = ws;
            let message = ws.read().unwrap();
            (ws, message)
        });
        std::thread::sleep(IDLE);
        node.send("text wake");
        let (mut ws, message) = reader.join().unwrap();
        assert_eq!(message, text("wake"));
        ws.send(text("after")).unwrap();
        assert_no_control_frames(&node.until_blocking("text 1 5 after"));
        assert_eq!(ws.read().unwrap(), text("echo after"));
    });
}

const PING_TIMEOUT: Duration = Duration::from_millis(300);

fn check_ping_timeout(info: &CloseInfo, elapsed: Duration) {
    assert_eq!(info.code, CloseCode::ABNORMAL, "{info}");
    assert!(!info.was_clean, "{info}");
    assert_eq!(info.initiator, Initiator::Local, "{info}");
    let expected = HEARTBEAT + PING_TIMEOUT;
    assert!(
        elapsed >= expected - Duration::from_millis(50) && elapsed <= expected * 3,
        "aborted after {elapsed:?}, expected about {expected:?}"
    );
}

#[test]
fn keep_alive_ping_without_pong_aborts_with_1006_tokio() {
    run_tokio(SCENARIO, async {
        let mut node = Peer::node("ws_server.mjs", &["--no-auto-pong"]);
        let port = node.port().await;
        let started = Instant::now();
        let mut ws = tokio_client(
            port,
            config(KeepAlive::Ping {
                interval: HEARTBEAT,
                timeout: PING_TIMEOUT,
            }),
        )
        .await;
        let (_, info) = until_closed(&mut ws).await;
        check_ping_timeout(&info, started.elapsed());
        node.line("ping 1").await;
        node.line("close 1 1006").await;
    });
}

#[test]
fn keep_alive_ping_without_pong_aborts_with_1006_std() {
    run_blocking(SCENARIO, || {
        let mut node = Peer::node("ws_server.mjs", &["--no-auto-pong"]);
        let port = node.port_blocking();
        let started = Instant::now();
        let mut ws = std_client(
            port,
            config(KeepAlive::Ping {
                interval: HEARTBEAT,
                timeout: PING_TIMEOUT,
            }),
        );
        let (_, info) = until_closed_std(&mut ws);
        check_ping_timeout(&info, started.elapsed());
        node.line_blocking("ping 1");
        node.line_blocking("close 1 1006");
    });
}

// ----- 3. an unsolicited Pong -----------------------------------------------

const UNSOLICITED: &str = "unsolicited from node";

#[test]
fn unsolicited_pong_is_an_event_and_not_answered_tokio() {
    run_tokio(SCENARIO, async {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let mut ws = tokio_client(node.port().await, Config::default()).await;
        node.send(&format!("pong {UNSOLICITED}"));
        match next_event(&mut ws).await {
            Event::Pong(p) => assert_eq!(p, UNSOLICITED.as_bytes()),
            other => panic!("expected the Pong, got {other:?}"),
        }
        // Frames arrive in order: an answer to the Pong would reach Node
        // before this text.
        within(ws.send(text("after"))).await.unwrap();
        let lines = node.until("text 1 5 after").await;
        assert!(
            lines.iter().any(|l| l.starts_with("sent-pong 1")),
            "{lines:?}"
        );
        assert_no_control_frames(&lines);
        assert_eq!(next_message(&mut ws).await, text("echo after"));
    });
}

#[test]
fn unsolicited_pong_is_an_event_and_not_answered_std() {
    run_blocking(SCENARIO, || {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let mut ws = std_client(node.port_blocking(), Config::default());
        node.send(&format!("pong {UNSOLICITED}"));
        match ws.read_event().unwrap() {
            Event::Pong(p) => assert_eq!(p, UNSOLICITED.as_bytes()),
            other => panic!("expected the Pong, got {other:?}"),
        }
        ws.send(text("after")).unwrap();
        let lines = node.until_blocking("text 1 5 after");
        assert!(
            lines.iter().any(|l| l.starts_with("sent-pong 1")),
            "{lines:?}"
        );
        assert_no_control_frames(&lines);
        assert_eq!(ws.read().unwrap(), text("echo after"));
    });
}

// ----- 4. close codes, both directions, and a killed peer ---------------------

const CLOSES: [(u16, &str); 2] = [(1000, "normal bye"), (4000, "app says bye, é")];

fn check_clean(info: &CloseInfo, code: u16, reason: &str, initiator: Initiator) {
    assert!(info.was_clean, "{info}");
    assert_eq!(info.code, CloseCode::new(code), "{info}");
    assert_eq!(info.reason, reason, "{info}");
    assert_eq!(info.initiator, initiator, "{info}");
}

#[test]
fn we_close_with_1000_and_4000_tokio() {
    run_tokio(SCENARIO, async {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let port = node.port().await;
        for (id, (code, reason)) in (1..).zip(CLOSES) {
            let mut ws = tokio_client(port, Config::default()).await;
            let info = within(ws.close(CloseCode::new(code), reason))
                .await
                .unwrap();
            // ws answers with the code and reason it received.
            check_clean(&info, code, reason, Initiator::Application);
            node.line(&format!("close {id} {code} {reason}")).await;
        }
    });
}

#[test]
fn we_close_with_1000_and_4000_std() {
    run_blocking(SCENARIO, || {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let port = node.port_blocking();
        for (id, (code, reason)) in (1..).zip(CLOSES) {
            let mut ws = std_client(port, Config::default());
            let info = ws.close(CloseCode::new(code), reason).unwrap();
            check_clean(&info, code, reason, Initiator::Application);
            node.line_blocking(&format!("close {id} {code} {reason}"));
        }
    });
}

#[test]
fn node_closes_with_1000_and_4000_tokio() {
    run_tokio(SCENARIO, async {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let port = node.port().await;
        for (id, (code, reason)) in (1..).zip(CLOSES) {
            let mut ws = tokio_client(port, Config::default()).await;
            node.line(&format!("open {id}")).await;
            node.send(&format!("close {code} {reason}"));
            let (events, info) = until_closed(&mut ws).await;
            assert!(events.is_empty(), "{events:?}");
            check_clean(&info, code, reason, Initiator::Remote);
            // We answer with the code we received.
            node.line(&format!("close {id} {code} ")).await;
            assert_eq!(ws.close_info(), Some(info));
        }
    });
}

#[test]
fn node_closes_with_1000_and_4000_std() {
    run_blocking(SCENARIO, || {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let port = node.port_blocking();
        for (id, (code, reason)) in (1..).zip(CLOSES) {
            let mut ws = std_client(port, Config::default());
            node.line_blocking(&format!("open {id}"));
            node.send(&format!("close {code} {reason}"));
            let (events, info) = until_closed_std(&mut ws);
            assert!(events.is_empty(), "{events:?}");
            check_clean(&info, code, reason, Initiator::Remote);
            node.line_blocking(&format!("close {id} {code} "));
            assert_eq!(ws.close_info(), Some(&info));
        }
    });
}

fn check_killed(info: &CloseInfo) {
    assert_eq!(info.code, CloseCode::ABNORMAL, "{info}");
    assert!(!info.was_clean, "{info}");
    assert_eq!(info.initiator, Initiator::Remote, "{info}");
}

#[test]
fn killed_peer_gives_1006_not_clean_tokio() {
    run_tokio(SCENARIO, async {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let mut ws = tokio_client(node.port().await, Config::default()).await;
        within(ws.send(text("Hello"))).await.unwrap();
        assert_eq!(next_message(&mut ws).await, text("echo Hello"));
        node.kill();
        let (_, info) = until_closed(&mut ws).await;
        check_killed(&info);
    });
}

#[test]
fn killed_peer_gives_1006_not_clean_std() {
    run_blocking(SCENARIO, || {
        let mut node = Peer::node("ws_server.mjs", &["--echo"]);
        let mut ws = std_client(node.port_blocking(), Config::default());
        ws.send(text("Hello")).unwrap();
        assert_eq!(ws.read().unwrap(), text("echo Hello"));
        node.kill();
        let (_, info) = until_closed_std(&mut ws);
        check_killed(&info);
    });
}
