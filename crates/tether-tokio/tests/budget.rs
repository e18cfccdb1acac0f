//! A byte budget shared by a server's connections: unread messages count
//! against it, a spent budget stops the reading of every connection that
//! holds some of it (backpressure across the server), a connection whose
//! application takes everything keeps going, and nothing is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tether::{Budget, Config, Message};
use tokio::net::TcpListener;

const MESSAGES: usize = 64;
const SIZE: usize = 16 * 1024;

/// A listener for a server whose connections share a budget of `bytes`,
/// each alone allowed to read all it is sent (`max_unread_bytes` 16 MiB),
/// evicted after `budget_timeout` when given: the budget, the server
/// options, the listener and its URL.
async fn budget_server(
    bytes: usize,
    budget_timeout: Option<Duration>,
) -> (
    Arc<Budget>,
    tether_tokio::ServerOptions,
    TcpListener,
    String,
) {
    let budget = Arc::new(Budget::new(bytes));
    let defaults = Config::default();
    let options = tether_tokio::ServerOptions::new()
        .config(Config {
            max_unread_bytes: 16 << 20,
            budget_timeout: budget_timeout.unwrap_or(defaults.budget_timeout),
            ..defaults
        })
        .budget(budget.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    (budget, options, listener, url)
}

/// A client that sends MESSAGES x SIZE bytes (until the server stops it),
/// then reads to the end: how its connection ended.
/// Waits until `budget` is spent (at most 10 s): how soon the clients'
/// bytes are read depends on the machine's load.
async fn spent(budget: &Budget) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while budget.has_room() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the budget is spent within 10 s");
}

fn hog_client(url: String) -> tokio::task::JoinHandle<Option<tether::CloseInfo>> {
    tokio::spawn(async move {
        let (mut ws, _) = tether_tokio::connect(&url, &Default::default())
            .await
            .unwrap();
        for _ in 0..MESSAGES {
            if ws.send(Message::binary(vec![9; SIZE])).await.is_err() {
                break;
            }
        }
        // told to go away: the Close it receives says why
        while let Some(Ok(_)) = ws.next().await {}
        ws.close_info()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_holds_every_connection_back_and_loses_nothing() {
    let (budget, options, listener, url) = budget_server(256 * 1024, None).await;

    // two clients send 1 MiB each, unread by the server for now
    let mut clients = Vec::new();
    for id in 0..2u8 {
        let url = url.clone();
        clients.push(tokio::spawn(async move {
            let (mut ws, _) = tether_tokio::connect(&url, &Default::default())
                .await
                .unwrap();
            for i in 0..MESSAGES {
                let mut payload = vec![id; SIZE];
                payload[0] = i as u8;
                ws.send(Message::binary(payload)).await.unwrap();
            }
            ws
        }));
    }
    let mut servers = Vec::new();
    for _ in 0..2 {
        let (tcp, _) = listener.accept().await.unwrap();
        let (ws, _) = tether_tokio::accept(tcp, &options).await.unwrap();
        servers.push(ws);
    }
    spent(&budget).await;
    // spent, and held near the limit: one read's worth past it at most
    let used = budget.used();
    assert!(!budget.has_room(), "used {used}");
    assert!(used <= 256 * 1024 + 2 * 80 * 1024, "used {used}");

    // the applications take their messages: all arrive, in order
    for mut ws in servers {
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut client = None;
            for i in 0..MESSAGES {
                let m = ws.next().await.unwrap().unwrap();
                assert_eq!(m.len(), SIZE);
                assert_eq!(m.as_bytes()[0], i as u8, "in order");
                // every message of a connection comes from its one client
                let id = *client.get_or_insert(m.as_bytes()[1]);
                assert_eq!(m.as_bytes()[1], id);
            }
        })
        .await
        .expect("every message arrives once the budget has room");
    }
    assert_eq!(budget.used(), 0, "everything taken is released");
    for client in clients {
        drop(client.await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_application_that_stops_reading_does_not_stall_the_others() {
    let (budget, options, listener, url) = budget_server(64 * 1024, None).await;
    // the stuck one: its client sends 1 MiB its application never takes
    let stuck_client = {
        let url = url.clone();
        tokio::spawn(async move {
            let (mut ws, _) = tether_tokio::connect(&url, &Default::default())
                .await
                .unwrap();
            for _ in 0..MESSAGES {
                if ws.send(Message::binary(vec![1u8; SIZE])).await.is_err() {
                    break;
                }
            }
            ws
        })
    };
    let (tcp, _) = listener.accept().await.unwrap();
    let (_stuck, _) = tether_tokio::accept(tcp, &options).await.unwrap();
    spent(&budget).await;
    // an echo on another connection still goes both ways
    let echo_client = tokio::spawn({
        let url = url.clone();
        async move {
            let (mut ws, _) = tether_tokio::connect(&url, &Default::default())
                .await
                .unwrap();
            for i in 0..20u8 {
                ws.send(Message::binary(vec![i; SIZE])).await.unwrap();
                let m = ws.next().await.unwrap().unwrap();
                assert_eq!(m.as_bytes()[0], i);
            }
        }
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let (mut live, _) = tether_tokio::accept(tcp, &options).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        for _ in 0..20 {
            let m = live.next().await.unwrap().unwrap();
            live.send(m).await.unwrap();
        }
    })
    .await
    .expect("the live connection is served while the budget is spent");
    echo_client.await.unwrap();
    stuck_client.abort();
}

/// The budget stays spent because one application reads nothing: after
/// `Config::budget_timeout` the connection holding the most is evicted with
/// 1013 (try again later) and its unread messages dropped, so the budget
/// comes back; a smaller holder is kept, and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_holder_of_a_budget_that_stays_spent_is_evicted_with_1013() {
    let (budget, options, listener, url) =
        budget_server(256 * 1024, Some(Duration::from_millis(300))).await;

    // a small holder first: 4 messages its application takes later
    let client_options = tether_tokio::ClientOptions::new();
    let (client, server) = tokio::join!(tether_tokio::connect(&url, &client_options), async {
        let (tcp, _) = listener.accept().await.unwrap();
        tether_tokio::accept(tcp, &options).await
    });
    let (mut small_client, _) = client.unwrap();
    let (mut small, _) = server.unwrap();
    for i in 0..4u8 {
        small_client
            .send(Message::binary(vec![i; SIZE]))
            .await
            .unwrap();
    }
    // then a hog: 1 MiB its application never reads
    let hog_client = hog_client(url.clone());
    let (tcp, _) = listener.accept().await.unwrap();
    let (hog, _) = tether_tokio::accept(tcp, &options).await.unwrap();

    let info = tokio::time::timeout(Duration::from_secs(10), hog_client)
        .await
        .expect("the hog is evicted")
        .unwrap()
        .expect("its end");
    assert_eq!(info.code.as_u16(), 1013, "{info}");
    assert_eq!(hog.close_info().map(|i| i.code.as_u16()), Some(1013));
    // the evicted connection's unread messages went back to the budget
    assert!(budget.has_room(), "used {}", budget.used());
    // the small holder was kept, and has everything
    for i in 0..4u8 {
        let m = tokio::time::timeout(Duration::from_secs(5), small.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(m.as_bytes(), &vec![i; SIZE][..]);
    }
    assert_eq!(budget.used(), 0);
    drop(hog);
}

/// The stream takes received messages in batches: a connection whose
/// application took one batch and stalled on its first message holds the
/// rest of it. Evicted with 1013, it gives that back too, at once (the
/// budget must come back for the others), and its application gets the
/// end next, not the stale messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_connection_gives_back_the_batch_its_application_took() {
    let (budget, options, listener, url) =
        budget_server(256 * 1024, Some(Duration::from_millis(300))).await;
    let client = hog_client(url);
    let (tcp, _) = listener.accept().await.unwrap();
    let (mut hog, _) = tether_tokio::accept(tcp, &options).await.unwrap();
    // let the budget fill, then take one message (and with it the batch)
    while budget.has_room() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = hog.next().await.unwrap().unwrap();
    assert_eq!(first.len(), SIZE);
    let info = tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .expect("the hog is evicted")
        .unwrap()
        .expect("its end");
    assert_eq!(info.code.as_u16(), 1013, "{info}");
    // everything it held went back, the batch included
    assert_eq!(budget.used(), 0);
    // and its application gets the end, not the rest of the batch
    let end = tokio::time::timeout(Duration::from_secs(5), hog.next())
        .await
        .unwrap();
    match end {
        Some(Err(tether_tokio::Error::Closed(Some(info)))) => {
            assert_eq!(info.code.as_u16(), 1013, "{info}");
        }
        other => panic!("expected the 1013 end, got {other:?}"),
    }
}

/// An application that read every message before the peer's Close, and
/// has not come back yet (so the Close is not answered yet), holds none
/// of the budget: what it read is no longer unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_read_before_the_peer_s_close_are_no_longer_charged() {
    let (budget, options, listener, url) = budget_server(16 << 20, None).await;
    let client = tokio::spawn(async move {
        let (mut ws, _) = tether_tokio::connect(&url, &Default::default())
            .await
            .unwrap();
        for i in 0..4u8 {
            ws.send(Message::binary(vec![i; SIZE])).await.unwrap();
        }
        ws.close(tether::CloseCode::NORMAL, "done").await
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let (mut server, _) = tether_tokio::accept(tcp, &options).await.unwrap();
    // everything, the Close included, arrives before the application reads
    while budget.used() < 4 * SIZE {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..4u8 {
        let m = server.next().await.unwrap().unwrap();
        assert_eq!(m.as_bytes(), &vec![i; SIZE][..]);
    }
    assert_eq!(budget.used(), 0, "charged after every message was read");
    // coming back answers the Close
    assert!(server.next().await.is_none());
    let info = client.await.unwrap().unwrap();
    assert_eq!(info.code.as_u16(), 1000, "{info}");
}

/// A connection whose handshake ran elsewhere (`from_upgraded_with`)
/// takes a server's budget and driver as `accept` does: what its
/// application has not read is charged, reading stops near the budget
/// (what is charged stays within it, a read and a message), and once
/// read, everything arrives in order and the charge is given back. `from_upgraded` had no way to take either.
#[tokio::test]
async fn an_upgraded_connection_shares_the_server_budget() {
    use tether::Role;
    use tether::upgrade::Upgraded;
    for driver in [tether_tokio::Driver::Shared, tether_tokio::Driver::Owner] {
        let budget = Arc::new(Budget::new(64 << 10));
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let config = Config {
            max_unread_bytes: 16 << 20,
            ..Config::default()
        };
        let mut server = tether_tokio::from_upgraded_with(
            ours,
            Upgraded::new(Role::Server, config),
            &[],
            driver,
            Some(budget.clone()),
        );
        let client = tether_tokio::from_upgraded(
            theirs,
            Upgraded::new(Role::Client, Config::default()),
            &[],
        );
        let sender = tokio::spawn(async move {
            let mut client = client;
            for i in 0..MESSAGES {
                let mut payload = vec![9; SIZE];
                payload[0] = u8::try_from(i).unwrap();
                client.send(Message::binary(payload)).await.unwrap();
            }
            client
        });
        // the application reads nothing: one message moves the driver
        let first = tokio::time::timeout(Duration::from_secs(5), server.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(first.as_bytes()[0], 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let used = budget.used();
        assert!(used > 0, "{driver:?}: nothing charged");
        assert!(
            used <= (64 << 10) + 2 * SIZE + (64 << 10),
            "{driver:?}: {used} bytes charged to a 64 KiB budget"
        );
        for i in 1..MESSAGES {
            let m = tokio::time::timeout(Duration::from_secs(5), server.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(usize::from(m.as_bytes()[0]), i, "{driver:?}");
        }
        let _client = sender.await.unwrap();
        assert_eq!(budget.used(), 0, "{driver:?}: charge kept after reading");
    }
}

/// After our Close, a connection holding some of a spent budget reads on
/// to the peer's answer but keeps nothing more: a peer that sends on
/// after our Close (as any can, after an idle timeout's) cannot grow what
/// the server holds past its budget. It kept up to `max_unread_bytes`
/// more (1 MiB here, against a 64 KiB budget).
#[tokio::test]
async fn rfc6455_7_1_2_a_closing_connection_keeps_nothing_more_while_the_budget_is_spent() {
    use tether::Role;
    use tether::upgrade::Upgraded;
    let budget = Arc::new(Budget::new(64 << 10));
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let config = Config {
        max_unread_bytes: 1 << 20,
        ..Config::default()
    };
    let mut server = tether_tokio::from_upgraded_with(
        ours,
        Upgraded::new(Role::Server, config),
        &[],
        tether_tokio::Driver::Shared,
        Some(budget.clone()),
    );
    let mut client =
        tether_tokio::from_upgraded(theirs, Upgraded::new(Role::Client, Config::default()), &[]);
    // 128 KiB the server's application does not read: the budget is spent
    for _ in 0..128 {
        client.send(Message::binary(vec![1; 1024])).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = budget.used();
    assert!(before >= 64 << 10, "the budget is not spent: {before}");
    let closing = tokio::spawn(async move {
        let info = server.close(tether::CloseCode::NORMAL, "").await.unwrap();
        (server, info)
    });
    // the peer sends on (1 MiB more), then reads, answering our Close
    for _ in 0..1024 {
        if client.send(Message::binary(vec![2; 1024])).await.is_err() {
            break;
        }
    }
    while client.next().await.is_some() {}
    let (_server, info) = tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .unwrap()
        .unwrap();
    assert!(info.was_clean, "{info:?}");
    // within what the budget allows any connection beyond it: one read
    // and one message
    let after = budget.used();
    assert!(
        after <= before + (64 << 10) + 2048,
        "kept {} bytes more after our Close with the budget spent",
        after - before
    );
}

/// The connection holding the most of a budget that stays spent is
/// evicted even when nothing drives it: its application stopped reading,
/// it reads no more itself (its own unread bound), and its background
/// task has retired. Another connection, held back past the budget
/// timeout, calls the eviction and wakes it. It was never evicted: only a
/// connection that checks the budget on its own could be, so the others
/// waited for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_holder_is_evicted_even_when_nothing_drives_it() {
    let budget = Arc::new(Budget::new(3 << 20));
    let options = tether_tokio::ServerOptions::new()
        .config(Config {
            max_unread_bytes: 1 << 20,
            budget_timeout: Duration::from_millis(200),
            release_idle_after: Duration::from_millis(20),
            ..Config::default()
        })
        .budget(budget.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            // the applications never read
            held.push(tether_tokio::accept(tcp, &options).await.unwrap().0);
        }
        held
    });
    let send = |size: usize| {
        let url = url.clone();
        async move {
            let (mut ws, _) = tether_tokio::connect(&url, &Default::default())
                .await
                .unwrap();
            ws.send(Message::binary(vec![1u8; size])).await.unwrap();
            ws
        }
    };
    // A: 2 MiB, over its own unread bound (one message always gets
    // through), while the budget has room; then A rests
    let mut a = send(2 << 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // B: 1.5 MiB more spends the budget; B is held back
    let _b = send(3 << 19).await;
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = a.next().await {}
        a.close_info()
    })
    .await
    .expect("A was never evicted")
    .expect("A's end");
    assert_eq!(end.code, tether::CloseCode::TRY_AGAIN_LATER, "{end:?}");
    assert!(
        budget.used() < 3 << 20,
        "{} bytes still charged",
        budget.used()
    );
    drop(server);
}
