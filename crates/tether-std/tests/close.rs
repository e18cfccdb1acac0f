//! The closing handshake (RFC 6455 sections 5.5.1, 7.1 and 7.4) and the
//! ends without one: `close` completes by itself, every end reports a
//! `CloseInfo`, and nothing loops after a transport error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{RawPeer, bounded, listen, serve};
use tether_std::{
    ClientOptions, CloseCode, Config, Error, Event, Initiator, Message, ServerOptions, State,
    connect,
};

#[test]
fn rfc6455_7_1_2_client_closes_with_1000_and_a_reason() {
    bounded(Duration::from_secs(10), || {
        let (url, server) = serve(ServerOptions::new(), |mut ws| {
            let result = ws.read();
            (result, ws.state())
        });
        let (mut ws, _) = connect(&url, &ClientOptions::new()).unwrap();
        let start = Instant::now();
        let info = ws.close(CloseCode::NORMAL, "client done").unwrap();
        // The server closed TCP first, so the client did not wait out its
        // FIN wait (2 s).
        assert!(start.elapsed() < Duration::from_millis(1800));
        assert_eq!(info.code, CloseCode::NORMAL);
        assert!(info.was_clean);
        assert_eq!(info.initiator, Initiator::Application);
        assert_eq!(ws.state(), State::Closed);
        assert_eq!(ws.close_info(), Some(&info));

        let (result, state) = server.join().unwrap();
        let Err(Error::Closed(seen)) = result else {
            panic!("the server should see the close, got {result:?}");
        };
        assert_eq!(seen.code, CloseCode::NORMAL);
        assert_eq!(seen.reason, "client done");
        assert!(seen.was_clean);
        assert_eq!(seen.initiator, Initiator::Remote);
        assert_eq!(state, State::Closed);

        // After the end, every call answers at once with the same end.
        assert!(matches!(ws.read(), Err(Error::Closed(i)) if i == info));
        assert!(matches!(
            ws.send(Message::text("late")),
            Err(Error::Closed(_))
        ));
        // closing after the end returns the end again (as the tokio adapter)
        assert_eq!(ws.close(CloseCode::NORMAL, "").unwrap(), info);
    });
}

#[test]
fn rfc6455_7_1_2_server_closes_with_4000_and_a_reason() {
    bounded(Duration::from_secs(10), || {
        let (url, server) = serve(ServerOptions::new(), |mut ws| {
            let start = Instant::now();
            let info = ws.close(CloseCode::new(4000), "server done");
            (info, start.elapsed())
        });
        let (mut ws, _) = connect(&url, &ClientOptions::new()).unwrap();
        let Err(Error::Closed(seen)) = ws.read() else {
            panic!("the client should see the close");
        };
        assert_eq!(seen.code, CloseCode::new(4000));
        assert_eq!(seen.reason, "server done");
        assert!(seen.was_clean);
        assert_eq!(seen.initiator, Initiator::Remote);

        let (info, took) = server.join().unwrap();
        let info = info.unwrap();
        assert_eq!(info.code, CloseCode::new(4000));
        assert!(info.was_clean);
        assert_eq!(info.initiator, Initiator::Application);
        assert!(took < Duration::from_secs(1), "server close took {took:?}");
    });
}

#[test]
fn rfc6455_7_1_2_close_reads_through_data_until_the_peers_close() {
    bounded(Duration::from_secs(10), || {
        // A raw server that, after the client's Close, still sends data for
        // a while, then answers and closes TCP.
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let mut peer = RawPeer::accept(&listener, Config::default());
            let Some(Event::Closed(info)) = peer.next_event(Duration::from_secs(2)) else {
                panic!("expected the client's Close");
            };
            assert_eq!(info.code, CloseCode::new(4000));
            assert_eq!(info.reason, "application done");
            // The core queued its echo; send data before it by hand.
            let echo = peer.conn.take_output();
            for _ in 0..5 {
                peer.stream
                    .write_all(&[0x81, 0x04, b'l', b'a', b't', b'e'])
                    .unwrap();
                std::thread::sleep(Duration::from_millis(40));
            }
            peer.stream.write_all(&echo).unwrap();
        });
        let (mut ws, _) = connect(&url, &ClientOptions::new()).unwrap();
        let start = Instant::now();
        let info = ws.close(CloseCode::new(4000), "application done").unwrap();
        assert!(info.was_clean, "{info}");
        assert_eq!(info.code, CloseCode::new(4000));
        assert!(start.elapsed() >= Duration::from_millis(150));
        // The late data stays readable, then the end.
        for _ in 0..5 {
            assert_eq!(ws.read().unwrap(), Message::text("late"));
        }
        assert!(matches!(ws.read(), Err(Error::Closed(i)) if i == info));
        server.join().unwrap();
    });
}

/// While `close` reads on to the peer's Close, Pings and Pongs (already
/// answered) are kept only within `Config::max_unread_bytes`, as the tokio
/// adapter keeps them: a peer that sends Pings instead of its answer held
/// every one of them (a 40-byte event for 2 bytes on the wire, without
/// end). The close still completes, clean.
#[test]
fn rfc6455_7_1_2_pings_while_closing_are_kept_within_the_read_ahead_bound() {
    bounded(Duration::from_secs(20), || {
        const PINGS: usize = 50_000;
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let mut peer = RawPeer::accept(&listener, Config::default());
            let Some(Event::Closed(_)) = peer.next_event(Duration::from_secs(2)) else {
                panic!("expected the client's Close");
            };
            let echo = peer.conn.take_output();
            // empty Pings (2 bytes each, unmasked from a server), then the
            // answer to the Close
            peer.stream.write_all(&[0x89, 0x00].repeat(PINGS)).unwrap();
            peer.stream.write_all(&echo).unwrap();
            // the server closes TCP first (RFC 6455 7.1.1), and reads the
            // client's Pongs to their end: closed with them unread, the
            // socket would reset the connection under the client's last
            // writes (its close then failed with BrokenPipe, a race)
            let _ = peer.stream.shutdown(std::net::Shutdown::Write);
            let _ = std::io::copy(&mut peer.stream, &mut std::io::sink());
        });
        let bound = 16 << 10;
        let config = Config {
            max_unread_bytes: bound,
            ..Config::default()
        };
        let (mut ws, _) = connect(&url, &ClientOptions::new().config(config)).unwrap();
        let info = ws.close(CloseCode::NORMAL, "").unwrap();
        assert!(info.was_clean, "{info}");
        let mut kept = 0usize;
        loop {
            match ws.read_event() {
                Ok(Event::Ping(_)) => kept += 1,
                Ok(Event::Closed(_)) | Err(_) => break,
                Ok(other) => panic!("{other:?}"),
            }
        }
        assert!(kept > 0, "none kept");
        assert!(
            kept * std::mem::size_of::<Event>() <= bound,
            "{kept} Pings kept"
        );
        server.join().unwrap();
    });
}

#[test]
fn rfc6455_7_1_1_client_waits_for_the_servers_fin_then_closes() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let mut peer = RawPeer::accept(&listener, Config::default());
            assert!(matches!(
                peer.next_event(Duration::from_secs(2)),
                Some(Event::Closed(_))
            ));
            peer.flush(); // the echo; TCP stays open
            let start = Instant::now();
            assert!(peer.sees_eof(Duration::from_secs(3)));
            start.elapsed()
        });
        let fin_wait = Duration::from_millis(300);
        let (mut ws, _) = connect(&url, &ClientOptions::new().fin_wait(fin_wait)).unwrap();
        let start = Instant::now();
        assert!(ws.close(CloseCode::NORMAL, "").unwrap().was_clean);
        let took = start.elapsed();
        assert!(took >= fin_wait - Duration::from_millis(20), "{took:?}");
        assert!(took < fin_wait + Duration::from_millis(1500), "{took:?}");
        // The client closed TCP itself once the wait was over.
        assert!(server.join().unwrap() < Duration::from_secs(1));
    });
}

#[test]
fn rfc6455_7_1_1_server_closes_tcp_at_once() {
    bounded(Duration::from_secs(10), || {
        let (url, server) = serve(ServerOptions::new(), |mut ws| {
            ws.close(CloseCode::GOING_AWAY, "restarting")
        });
        let mut peer = RawPeer::connect(&url, Config::default());
        let Some(Event::Closed(info)) = peer.next_event(Duration::from_secs(2)) else {
            panic!("expected the server's Close");
        };
        assert_eq!(info.code, CloseCode::GOING_AWAY);
        assert_eq!(info.reason, "restarting");
        peer.flush(); // our echo
        assert!(peer.sees_eof(Duration::from_secs(3)));
        let info = server.join().unwrap().unwrap();
        assert!(info.was_clean);
        assert_eq!(info.code, CloseCode::GOING_AWAY);
    });
}

/// A peer that floods Pings and never answers our Close: the close
/// timeout still ends the connection, the flood taken in a turn at a time
/// (`Config::turn_bytes`) between the deadline's checks.
#[test]
fn rfc6455_7_1_2_close_timeout_holds_against_a_ping_flood() {
    bounded(Duration::from_secs(30), || {
        let (listener, url) = listen();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flooding = stop.clone();
        let server = std::thread::spawn(move || {
            let mut peer = RawPeer::accept(&listener, Config::default());
            let Some(Event::Closed(_)) = peer.next_event(Duration::from_secs(2)) else {
                panic!("expected the client's Close");
            };
            let pings = [0x89, 0x00].repeat(32 << 10);
            while !flooding.load(std::sync::atomic::Ordering::Relaxed) {
                if peer.stream.write_all(&pings).is_err() {
                    break;
                }
            }
        });
        let config = Config {
            close_timeout: Duration::from_millis(300),
            ..Config::default()
        };
        let (mut ws, _) = connect(&url, &ClientOptions::new().config(config)).unwrap();
        let start = Instant::now();
        let info = ws.close(CloseCode::NORMAL, "").unwrap();
        let took = start.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(ws);
        assert_eq!(info.code, CloseCode::ABNORMAL, "{info}");
        assert!(info.reason.contains("close timeout"), "{}", info.reason);
        assert!(took < Duration::from_secs(5), "{took:?}");
        server.join().unwrap();
    });
}

#[test]
fn close_timeout_when_the_peer_never_answers() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let (done, done_rx) = std::sync::mpsc::channel::<()>();
        let silent = std::thread::spawn(move || {
            let peer = RawPeer::accept(&listener, Config::default());
            let _ = done_rx.recv_timeout(Duration::from_secs(9)); // until the test is done
            drop(peer);
        });
        let config = Config {
            close_timeout: Duration::from_millis(300),
            ..Config::default()
        };
        let (mut ws, _) = connect(&url, &ClientOptions::new().config(config)).unwrap();
        let start = Instant::now();
        let info = ws.close(CloseCode::NORMAL, "").unwrap();
        let took = start.elapsed();
        assert_eq!(info.code, CloseCode::ABNORMAL);
        assert!(!info.was_clean);
        assert!(info.reason.contains("close timeout"), "{}", info.reason);
        assert_eq!(info.initiator, Initiator::Application);
        assert_eq!(ws.state(), State::Aborted);
        assert!(
            took >= Duration::from_millis(280) && took < Duration::from_secs(2),
            "{took:?}"
        );
        drop(done);
        silent.join().unwrap();
    });
}

#[test]
fn rfc6455_7_1_5_server_dropping_tcp_gives_the_client_1006() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let peer = RawPeer::accept(&listener, Config::default());
            drop(peer); // no Close frame
        });
        let (mut ws, _) = connect(&url, &ClientOptions::new()).unwrap();
        let Err(Error::Closed(info)) = ws.read() else {
            panic!("expected the end of the connection");
        };
        assert_eq!(info.code, CloseCode::ABNORMAL);
        assert!(!info.was_clean);
        assert_eq!(info.initiator, Initiator::Remote);
        assert_eq!(ws.state(), State::Aborted);
        server.join().unwrap();
    });
}

#[test]
fn close_after_an_io_error_returns() {
    bounded(Duration::from_secs(10), || {
        for read_first in [true, false] {
            // A raw server that resets the connection: it closes its socket
            // with unread data in it, which makes the kernel send RST.
            let (listener, url) = listen();
            let server = std::thread::spawn(move || {
                let peer = RawPeer::accept(&listener, Config::default());
                let mut byte = [0; 1];
                peer.stream.peek(&mut byte).unwrap(); // data waits, unread
                drop(peer);
            });
            let (mut ws, _) = connect(&url, &ClientOptions::new()).unwrap();
            ws.send(Message::text("never read")).unwrap();
            server.join().unwrap();
            std::thread::sleep(Duration::from_millis(50)); // let the RST arrive
            if read_first {
                match ws.read() {
                    Err(Error::Io(_)) => {}
                    Err(Error::Closed(info)) => assert_eq!(info.code, CloseCode::ABNORMAL),
                    other => panic!("expected the reset, got {other:?}"),
                }
            }
            let start = Instant::now();
            match ws.close(CloseCode::NORMAL, "") {
                Ok(info) => assert_eq!(info.code, CloseCode::ABNORMAL),
                Err(Error::Io(_)) => {}
                other => panic!("expected the reset or its end, got {other:?}"),
            }
            // Again, and every other call: all return at once, with the end.
            let again = ws.close(CloseCode::NORMAL, "").unwrap();
            assert_eq!(again.code, CloseCode::ABNORMAL);
            assert!(matches!(ws.read(), Err(Error::Closed(i)) if i.code == CloseCode::ABNORMAL));
            assert!(ws.send(Message::text("x")).is_err());
            // (the close timeout is 10 s)
            assert!(start.elapsed() < Duration::from_secs(2));
            assert_eq!(ws.state(), State::Aborted);
        }
    });
}

#[test]
fn rfc6455_7_4_close_refuses_codes_and_reasons_that_may_not_be_sent() {
    bounded(Duration::from_secs(10), || {
        let (url, server) = serve(ServerOptions::new(), |mut ws| ws.read());
        let (mut ws, _) = connect(&url, &ClientOptions::new()).unwrap();
        for code in [1005, 1006, 1015, 999, 5000] {
            assert!(matches!(
                ws.close(CloseCode::new(code), ""),
                Err(Error::Misuse(tether::Error::InvalidInput(_)))
            ));
        }
        assert!(matches!(
            ws.close(CloseCode::NORMAL, &"r".repeat(124)),
            Err(Error::Misuse(tether::Error::InvalidInput(_)))
        ));
        // Nothing was sent: the connection still works.
        assert_eq!(ws.state(), State::Open);
        ws.send(Message::text("still open")).unwrap();
        assert_eq!(server.join().unwrap().unwrap(), Message::text("still open"));
    });
}

#[test]
fn rfc6455_8_1_invalid_utf8_from_the_peer_fails_the_connection_with_1007() {
    bounded(Duration::from_secs(10), || {
        let (url, server) = serve(ServerOptions::new(), |mut ws| ws.read());
        let mut peer = RawPeer::connect(&url, Config::default());
        // A masked text frame (mask key 0) whose payload is the byte 0xFF.
        peer.stream
            .write_all(&[0x81, 0x81, 0, 0, 0, 0, 0xff])
            .unwrap();
        let Some(Event::Closed(info)) = peer.next_event(Duration::from_secs(2)) else {
            panic!("expected the server's Close");
        };
        assert_eq!(info.code, CloseCode::INVALID_PAYLOAD);
        let Err(Error::Closed(info)) = server.join().unwrap() else {
            panic!("expected the server's read to end");
        };
        assert_eq!(info.code, CloseCode::INVALID_PAYLOAD);
        assert!(!info.was_clean);
        assert_eq!(info.initiator, Initiator::Local);
    });
}

/// Dropping an open connection says goodbye with 1001 (going away), as the
/// tokio adapter does, without waiting for the answer; `into_inner` gives
/// the transport up without a Close.
#[test]
fn dropping_an_open_connection_sends_1001_and_into_inner_sends_nothing() {
    bounded(Duration::from_secs(10), || {
        for give_up_transport in [false, true] {
            let (listener, url) = listen();
            let client = std::thread::spawn(move || {
                let (ws, _) = connect(&url, &ClientOptions::new()).unwrap();
                if give_up_transport {
                    let tcp = ws.into_inner();
                    drop(tcp);
                } else {
                    drop(ws);
                }
            });
            let mut peer = RawPeer::accept(&listener, Config::default());
            client.join().unwrap();
            match peer.next_event(Duration::from_secs(5)) {
                Some(tether::Event::Closed(info)) if give_up_transport => {
                    assert_eq!(info.code, CloseCode::ABNORMAL, "no Close: {info}");
                }
                Some(tether::Event::Closed(info)) => {
                    assert_eq!(info.code, CloseCode::GOING_AWAY, "{info}");
                    assert_eq!(info.initiator, Initiator::Remote);
                }
                other => panic!("expected the end, got {other:?}"),
            }
        }
    });
}

/// A TCP stream with read and write timeouts and no non-blocking mode
/// (the `Transport` default for it): a transport of the application's own.
struct TimeoutsOnly(std::net::TcpStream);

impl std::io::Read for TimeoutsOnly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut self.0, buf)
    }
}

impl Write for TimeoutsOnly {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl tether_std::Transport for TimeoutsOnly {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.0.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.0.set_write_timeout(timeout)
    }
}

/// The goodbye on drop does not need non-blocking mode: a transport with
/// only a write timeout gets its 1001 too (it sent nothing).
#[test]
fn dropping_over_a_transport_without_non_blocking_mode_sends_1001() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let client = std::thread::spawn(move || {
            let port = url
                .trim_end_matches('/')
                .rsplit(':')
                .next()
                .unwrap()
                .to_owned();
            let tcp =
                std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
            let (ws, _) =
                tether_std::client(TimeoutsOnly(tcp), &url, &ClientOptions::new()).unwrap();
            drop(ws);
        });
        let mut peer = RawPeer::accept(&listener, Config::default());
        client.join().unwrap();
        match peer.next_event(Duration::from_secs(5)) {
            Some(tether::Event::Closed(info)) => {
                assert_eq!(info.code, CloseCode::GOING_AWAY, "{info}");
            }
            other => panic!("expected the end, got {other:?}"),
        }
    });
}

/// A transport that takes every write into a buffer it never empties and
/// whose flush times out, as a TLS stream does while its socket stays full
/// (the peer stopped reading).
struct Withholding {
    inner: std::net::TcpStream,
    write_timeout: std::cell::Cell<Option<Duration>>,
    /// Something was written: a flush now never finishes.
    holding: bool,
}

impl std::io::Read for Withholding {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Withholding {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.holding |= !buf.is_empty();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.holding {
            return Ok(());
        }
        std::thread::sleep(self.write_timeout.get().unwrap_or(Duration::from_millis(1)));
        Err(std::io::ErrorKind::TimedOut.into())
    }
}

impl tether_std::Transport for Withholding {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.write_timeout.set(timeout);
        Ok(())
    }
}

/// RFC 6455 section 7.1.7 / 10.4: `close` over a transport that never
/// flushes what it holds (a TLS stream whose socket stays full) returns by
/// the core's deadlines, the close timeout and then the drain deadline,
/// with 1006, instead of retrying the flush forever.
#[test]
fn close_returns_by_the_core_s_deadlines_when_the_transport_never_flushes() {
    use std::io::Read as _;
    let (peer, info, took) = bounded(Duration::from_secs(10), || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // the peer holds its end and reads nothing
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (tcp, _) = listener.accept().unwrap();
        let config = Config {
            close_timeout: Duration::from_millis(200),
            ..Config::default()
        };
        let stream = Withholding {
            inner: tcp,
            write_timeout: std::cell::Cell::new(None),
            holding: false,
        };
        let upgraded = tether::upgrade::Upgraded::new(tether::Role::Server, config);
        let mut ws = tether_std::WebSocket::from_upgraded(stream, upgraded, &[]).unwrap();
        let started = Instant::now();
        let info = ws.close(CloseCode::NORMAL, "").unwrap();
        (peer, info, started.elapsed())
    });
    assert!(!info.was_clean, "{info:?}");
    assert_eq!(info.code, CloseCode::ABNORMAL, "{info:?}");
    // the close timeout, then the drain deadline: twice 200 ms
    assert!(took < Duration::from_secs(2), "close took {took:?}");
    let mut peer = peer;
    peer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let _ = peer.read(&mut [0u8; 16]);
}

/// A transport whose one read brings a Ping and a text message together,
/// and whose every write fails (the peer reset the connection).
struct ReadThenBroken {
    input: std::io::Cursor<Vec<u8>>,
}

impl std::io::Read for ReadThenBroken {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl std::io::Write for ReadThenBroken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl tether_std::Transport for ReadThenBroken {
    fn set_read_timeout(&self, _: Option<Duration>) -> std::io::Result<()> {
        Ok(())
    }
    fn set_nonblocking(&self, _: bool) -> std::io::Result<()> {
        Ok(())
    }
}

/// A message that arrived in the same read as a Ping whose Pong could not
/// be written is handed out before the failure (`Error::Io`, then
/// `Closed` with 1006), as the tokio adapter delivers what it received
/// before the end: the error came first, and a reconnecting client, which
/// drops the connection on an error, lost the message.
#[test]
fn rfc6455_7_1_5_messages_received_before_a_transport_failure_come_first() {
    use tether::upgrade::Upgraded;
    let mut input = Vec::new();
    for (opcode, payload) in [(0x89u8, &b""[..]), (0x81, &b"hi"[..])] {
        input.extend_from_slice(&[opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0]);
        input.extend_from_slice(payload);
    }
    let stream = ReadThenBroken {
        input: std::io::Cursor::new(input),
    };
    let upgraded = Upgraded::new(tether::Role::Server, Config::default());
    let mut ws = tether_std::WebSocket::from_upgraded(stream, upgraded, &[]).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hi"));
    assert!(matches!(ws.read(), Err(Error::Io(_))));
    match ws.read() {
        Err(Error::Closed(info)) => assert_eq!(info.code, CloseCode::ABNORMAL),
        other => panic!("{other:?}"),
    }
}

/// `close()` after the connection closed on its own (the idle timeout sent
/// our 1001) waits for the end, as the tokio adapter's does: it was
/// refused as a misuse, the state being `CloseSent`.
#[test]
fn rfc6455_7_1_2_close_after_the_idle_timeout_waits_for_the_end() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = common::listen();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let options = ServerOptions::new().config(Config {
                idle_timeout: Some(Duration::from_millis(50)),
                ..Config::default()
            });
            let (mut ws, _) = tether_std::accept(tcp, &options).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            // its timer pass sends the idle timeout's Close
            let _ = ws.ping(&b""[..]);
            ws.close(CloseCode::NORMAL, "")
        });
        let (mut client, _) = tether_std::connect(&url, &tether_std::ClientOptions::new()).unwrap();
        // the client reads, so it answers the Close
        while client.read().is_ok() {}
        let info = server.join().unwrap().expect("close waited for the end");
        assert_eq!(info.code, CloseCode::GOING_AWAY);
    });
}

/// The server sends its Close and resets the connection (it closes with
/// our message unread) before our answer goes: our write fails, but the
/// Close already sits in our socket (TCP is in order; Linux keeps what was
/// received readable after a reset). The end is the server's clean close
/// with its code, not a transport error: the adapter reads what is left
/// and the core decides (`Connection::transport_failed`). `close` said
/// `Err(Io(BrokenPipe))`.
#[cfg(target_os = "linux")]
#[test]
fn rfc6455_7_1_5_a_close_read_after_our_write_failed_is_the_peers_clean_close() {
    bounded(Duration::from_secs(20), || {
        let (listener, url) = listen();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let (sent, sent_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let mut peer = RawPeer::accept(&listener, Config::default());
            // the client's send has returned (its read-ahead would take
            // the Close in), and its message stays unread
            sent_rx.recv().unwrap();
            let mut probe = [0u8; 64];
            while peer.stream.peek(&mut probe).unwrap() < probe.len() {
                std::thread::sleep(Duration::from_millis(5));
            }
            // our Close, 4001 "bye" (a server's frame: unmasked)
            peer.stream
                .write_all(&[0x88, 0x05, 0x0f, 0xa1, b'b', b'y', b'e'])
                .unwrap();
            go_rx.recv().unwrap();
            // closed with unread bytes: Linux resets the connection
            drop(peer);
        });
        let (mut ws, _) = connect(&url, &ClientOptions::new()).unwrap();
        ws.send(Message::binary(vec![7u8; 1024])).unwrap();
        sent.send(()).unwrap();
        let socket = ws.get_ref().tcp().try_clone().unwrap();
        // (the adapter may have left a read timeout on the socket)
        let readable = |seen: &mut [u8]| match socket.peek(seen) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                0
            }
            Err(e) => panic!("{e}"),
        };
        let mut seen = [0u8; 7];
        while readable(&mut seen) < seen.len() {
            std::thread::sleep(Duration::from_millis(5));
        }
        go.send(()).unwrap();
        server.join().unwrap();
        // the reset has arrived
        let deadline = Instant::now() + Duration::from_secs(5);
        while socket.take_error().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no reset came");
            std::thread::sleep(Duration::from_millis(5));
        }
        // what the test stands on: the Close is still readable
        assert_eq!(readable(&mut seen), seen.len());
        let info = ws.close(CloseCode::NORMAL, "").unwrap();
        assert!(info.was_clean, "{info}");
        assert_eq!(info.code, CloseCode::new(4001), "{info}");
        assert_eq!(info.reason, "bye");
        assert!(ws.state().is_terminal());
    });
}
