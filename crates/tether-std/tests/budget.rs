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

/// Server options whose connections share `budget`, each alone allowed to
/// read ahead all it is sent (`max_unread_bytes` 16 MiB).
fn options(budget: &Arc<Budget>, budget_timeout: Duration) -> ServerOptions {
    ServerOptions::new()
        .config(Config {
            max_unread_bytes: 16 << 20,
            budget_timeout,
            ..Config::default()
        })
        .budget(budget.clone())
}

/// A client that sends MESSAGES x SIZE bytes, the first byte of each its
/// number and the rest `id`, then reads to the end: how it ended.
fn client(url: String, id: u8) -> thread::JoinHandle<Option<tether::CloseInfo>> {
    thread::spawn(move || {
        let (mut ws, _) = tether_std::connect(&url, &Default::default()).unwrap();
        for i in 0..MESSAGES {
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
        let options = options(&budget, Duration::from_secs(60));
        let (listener, url) = listen();
        let clients: Vec<_> = (0..2).map(|id| client(url.clone(), id)).collect();
        let mut servers: Vec<_> = (0..2)
            .map(|_| {
                let (tcp, _) = listener.accept().unwrap();
                tether_std::accept(tcp, &options).unwrap().0
            })
            .collect();
        // the clients' 2 MiB arrive while the applications only send
        for ws in &mut servers {
            only_send(ws, Duration::from_millis(300));
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
        let options = options(&budget, Duration::from_millis(300));
        let (listener, url) = listen();
        let hog = client(url, 1);
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
