//! A byte budget shared by a blocking server's connections
//! (`ServerOptions::budget`): what waits for the applications counts
//! against it, a spent budget stops the reading ahead of every connection
//! that holds some of it (backpressure across the server), nothing is
//! lost, and a budget that stays spent evicts the connection holding the
//! most with 1013 (RFC 6455 section 10.4: limits on what a peer can make
//! an endpoint hold).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{bounded, listen};
use tether::{Budget, Config, Message};
use tether_std::{ServerOptions, WebSocket};

const MESSAGES: usize = 64;
const SIZE: usize = 16 * 1024;

/// Server options whose connections share `budget`, each allowed to read
/// ahead `max_unread_bytes`.
fn options(
    budget: &Arc<Budget>,
    budget_timeout: Duration,
    max_unread_bytes: usize,
) -> ServerOptions {
    ServerOptions::new()
        .config(Config {
            max_unread_bytes,
            budget_timeout,
            ..Config::default()
        })
        .budget(budget.clone())
}

/// A client that sends `count` x SIZE bytes, the first byte of each its
/// number and the rest `id`, then reads to the end: how it ended.
fn client(url: String, id: u8, count: usize) -> thread::JoinHandle<Option<tether::CloseInfo>> {
    thread::spawn(move || {
        let (mut ws, _) = tether_std::connect(&url, &Default::default()).unwrap();
        for i in 0..count {
            let mut payload = vec![id; SIZE];
            payload[0] = i as u8;
            if ws.send(Message::binary(payload)).is_err() {
                break;
            }
        }
        loop {
            match ws.read() {
                Ok(_) => {}
                Err(e) => return e.close_info().cloned(),
            }
        }
    })
}

/// The server's application only sends, for `for_how_long`: each send
/// reads ahead what arrived, as far as the budget lets it.
fn only_send(ws: &mut WebSocket<std::net::TcpStream>, for_how_long: Duration) {
    let until = Instant::now() + for_how_long;
    while Instant::now() < until {
        ws.send(Message::text("tick")).unwrap();
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn rfc6455_10_4_a_spent_budget_holds_back_every_read_ahead_and_loses_nothing() {
    bounded(Duration::from_secs(30), || {
        let budget = Arc::new(Budget::new(256 * 1024));
        // each alone may read ahead all it is sent
        let options = options(&budget, Duration::from_secs(60), 16 << 20);
        let (listener, url) = listen();
        let clients: Vec<_> = (0..2).map(|id| client(url.clone(), id, MESSAGES)).collect();
        let mut servers: Vec<_> = (0..2)
            .map(|_| {
                let (tcp, _) = listener.accept().unwrap();
                tether_std::accept(tcp, &options).unwrap().0
            })
            .collect();
        // the clients' 2 MiB arrive while the applications only send,
        // until the budget is spent (bounded by the test's 30 s)
        while budget.has_room() {
            for ws in &mut servers {
                only_send(ws, Duration::from_millis(50));
            }
        }
        // spent, and held near the limit: past it by at most one read (64
        // KiB) and the message it completes, per connection
        let used = budget.used();
        assert!(!budget.has_room(), "used {used}");
        assert!(used <= 256 * 1024 + 2 * (64 + 16 + 1) * 1024, "used {used}");
        // the applications take their messages: all arrive, in order
        for ws in &mut servers {
            let mut id = None;
            for i in 0..MESSAGES {
                let m = ws.read().unwrap();
                assert_eq!(m.len(), SIZE);
                assert_eq!(m.as_bytes()[0], i as u8, "in order");
                let id = *id.get_or_insert(m.as_bytes()[1]);
                assert_eq!(m.as_bytes()[1], id, "from its one client");
            }
        }
        assert_eq!(budget.used(), 0, "everything taken is released");
        for mut ws in servers {
            ws.close(tether::CloseCode::NORMAL, "").unwrap();
        }
        for c in clients {
            assert_eq!(c.join().unwrap().unwrap().code.as_u16(), 1000);
        }
    });
}

#[test]
fn rfc6455_10_4_a_budget_that_stays_spent_evicts_the_largest_holder_with_1013() {
    bounded(Duration::from_secs(30), || {
        let budget = Arc::new(Budget::new(64 * 1024));
        let options = options(&budget, Duration::from_millis(300), 16 << 20);
        let (listener, url) = listen();
        // 128 KiB: twice the budget, well within the sockets' buffers
        let hog = client(url, 1, 8);
        let (tcp, _) = listener.accept().unwrap();
        let (mut ws, _) = tether_std::accept(tcp, &options).unwrap();
        // the application only sends: the budget stays spent until the
        // core evicts the connection, and the send after says so
        let started = Instant::now();
        let ended = loop {
            assert!(started.elapsed() < Duration::from_secs(10), "not evicted");
            match ws.send(Message::text("tick")) {
                Ok(()) => thread::sleep(Duration::from_millis(10)),
                Err(e) => break e.close_info().cloned().expect("the end"),
            }
        };
        assert_eq!(ended.code.as_u16(), 1013, "{ended:?}");
        assert!(ended.reason.contains("evicted"), "{}", ended.reason);
        assert!(started.elapsed() >= Duration::from_millis(300));
        // its unread messages were dropped, their charge with them: the
        // final event is all it held
        let last = ws.read().unwrap_err();
        assert_eq!(last.close_info().map(|i| i.code.as_u16()), Some(1013));
        assert_eq!(budget.used(), 0);
        let seen = hog.join().unwrap().expect("a Close");
        assert_eq!(seen.code.as_u16(), 1013, "{seen:?}");
    });
}

/// Connections each at their own read-ahead bound (`max_unread_bytes`)
/// can still be the largest holders of a spent budget: the one holding the
/// most is evicted all the same. The bound stopped the budget's check
/// before it ran, and nobody was evicted.
#[test]
fn rfc6455_10_4_a_holder_at_its_own_unread_bound_is_still_evicted() {
    bounded(Duration::from_secs(30), || {
        let budget = Arc::new(Budget::new(64 * 1024));
        let options = options(&budget, Duration::from_millis(300), 48 * 1024);
        let (listener, url) = listen();
        let hogs: Vec<_> = (0..2).map(|id| client(url.clone(), id, 8)).collect();
        let servers: Vec<_> = (0..2)
            .map(|_| {
                let (tcp, _) = listener.accept().unwrap();
                tether_std::accept(tcp, &options).unwrap().0
            })
            .collect();
        let started = Instant::now();
        let mut ends = Vec::new();
        let mut servers: Vec<_> = servers.into_iter().map(Some).collect();
        while ends.is_empty() {
            assert!(started.elapsed() < Duration::from_secs(10), "not evicted");
            for slot in &mut servers {
                let Some(ws) = slot else { continue };
                if let Err(e) = ws.send(Message::text("tick")) {
                    ends.push(e.close_info().cloned().expect("the end"));
                    *slot = None;
                }
            }
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(ends[0].code.as_u16(), 1013, "{:?}", ends[0]);
        // the other one goes on, its messages all there
        let mut rest: Vec<_> = servers.into_iter().flatten().collect();
        assert_eq!(rest.len(), 1, "one eviction at a time");
        let ws = &mut rest[0];
        for i in 0..8 {
            assert_eq!(ws.read().unwrap().as_bytes()[0], i as u8);
        }
        ws.close(tether::CloseCode::NORMAL, "").unwrap();
        let mut codes: Vec<_> = hogs
            .into_iter()
            .map(|h| h.join().unwrap().unwrap().code.as_u16())
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, [1000, 1013]);
    });
}
