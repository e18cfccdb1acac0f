//! Messages between a tether-std client and a tether-std server over real
//! TCP (RFC 6455 sections 5.4 and 5.6), and the transports around them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{RawPeer, bounded, pattern, serve};
use tether_std::{
    ClientOptions, CloseCode, Config, Error, Event, Message, MessageKind, ServerOptions, Transport,
    WebSocket, connect,
};

/// An echo server: sends every message back until the connection ends.
fn echo<S: Transport>(mut ws: WebSocket<S>) -> Error {
    loop {
        match ws.read() {
            Ok(message) => ws.send(message).unwrap(),
            Err(e) => return e,
        }
    }
}

#[test]
fn rfc6455_5_6_text_and_binary_round_trip_up_to_16_mib() {
    bounded(Duration::from_secs(60), || {
        let (url, server) = serve(ServerOptions::new(), echo);
        let (mut ws, accepted) = connect(&url, &ClientOptions::new()).unwrap();
        assert_eq!(accepted.subprotocol(), None);

        let messages = [
            Message::text(""),
            Message::text("hello, wörld ✓"),
            Message::binary(vec![0u8, 1, 2, 255]),
            Message::text("x".repeat(125)),
            Message::text("y".repeat(126)),
            Message::binary(pattern(65_535)),
            Message::binary(pattern(65_536)),
            Message::text("z".repeat(1 << 20)),
            Message::binary(pattern(16 << 20)),
        ];
        for message in messages {
            ws.send(message.clone()).unwrap();
            assert_eq!(ws.read().unwrap(), message);
        }
        ws.close(CloseCode::NORMAL, "").unwrap();
        assert!(matches!(server.join().unwrap(), Error::Closed(i) if i.was_clean));
    });
}

#[test]
fn rfc6455_5_4_fragmented_messages_round_trip() {
    bounded(Duration::from_secs(60), || {
        let (url, server) = serve(ServerOptions::new(), echo);
        let (mut ws, _) = connect(&url, &ClientOptions::new()).unwrap();

        // A text message whose "é" (0xC3 0xA9) is split between fragments.
        let text = "caf\u{e9} au lait";
        let bytes = text.as_bytes();
        ws.send_fragment(MessageKind::Text, bytes[..4].to_vec(), false)
            .unwrap();
        ws.ping(&b"between fragments"[..]).unwrap(); // control frames may interleave
        ws.send_fragment(MessageKind::Text, bytes[4..].to_vec(), false)
            .unwrap();
        ws.send_fragment(MessageKind::Text, Vec::new(), true)
            .unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(text));

        // 16 MiB of binary in 1 MiB fragments.
        let data = pattern(16 << 20);
        let chunks: Vec<_> = data.chunks(1 << 20).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            ws.send_fragment(MessageKind::Binary, chunk.to_vec(), i + 1 == chunks.len())
                .unwrap();
        }
        assert_eq!(ws.read().unwrap(), Message::binary(data));

        // A fragment of the other kind, or invalid UTF-8, is refused before
        // anything is written.
        ws.send_fragment(MessageKind::Text, &b"ab"[..], false)
            .unwrap();
        assert!(matches!(
            ws.send_fragment(MessageKind::Binary, &b"cd"[..], true),
            Err(Error::Misuse(_))
        ));
        assert!(matches!(
            ws.send_fragment(MessageKind::Text, &[0xff][..], true),
            Err(Error::Misuse(_))
        ));
        ws.send_fragment(MessageKind::Text, &b"cd"[..], true)
            .unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("abcd"));

        ws.close(CloseCode::NORMAL, "").unwrap();
        server.join().unwrap();
    });
}

#[test]
fn messages_sent_with_the_101_reach_the_client() {
    // The frames that arrive in the same read as the 101 answer belong to
    // the connection (RFC 6455 section 4.1): the server speaks first.
    bounded(Duration::from_secs(10), || {
        let (url, server) = serve(ServerOptions::new(), |mut ws| {
            for i in 0..3 {
                ws.send(Message::text(format!("greeting {i}"))).unwrap();
            }
            echo(ws)
        });
        let (mut ws, _) = connect(&url, &ClientOptions::new()).unwrap();
        for i in 0..3 {
            assert_eq!(ws.read().unwrap(), Message::text(format!("greeting {i}")));
        }
        ws.close(CloseCode::NORMAL, "").unwrap();
        server.join().unwrap();
    });
}

#[cfg(unix)]
#[test]
fn unix_stream_with_client_and_accept() {
    use std::os::unix::net::UnixStream;
    bounded(Duration::from_secs(10), || {
        let (a, b) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            echo(tether_std::accept(b, &ServerOptions::new()).unwrap().0)
        });
        let (mut ws, _) =
            tether_std::client(a, "ws://localhost/socket", &ClientOptions::new()).unwrap();
        ws.send(Message::text("over a unix socket")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("over a unix socket"));
        let info = ws.close(CloseCode::NORMAL, "").unwrap();
        assert!(info.was_clean);
        assert!(matches!(server.join().unwrap(), Error::Closed(i) if i.was_clean));
    });
}

/// A stream whose every write and flush first fails with `WouldBlock`,
/// then with `Interrupted`, before it succeeds: writes must be retried and
/// no queued byte dropped.
#[derive(Debug)]
struct Stubborn {
    inner: TcpStream,
    failures: u64,
}

impl Stubborn {
    fn fail(&mut self) -> Option<io::Error> {
        self.failures += 1;
        match self.failures % 3 {
            1 => Some(io::ErrorKind::WouldBlock.into()),
            2 => Some(io::ErrorKind::Interrupted.into()),
            _ => None,
        }
    }
}

impl Read for Stubborn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Stubborn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.fail() {
            Some(e) => Err(e),
            None => self.inner.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.fail() {
            Some(e) => Err(e),
            None => self.inner.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.fail() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Transport for Stubborn {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking)
    }
}

#[test]
fn writes_that_would_block_or_are_interrupted_are_retried() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = common::listen();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let stream = Stubborn {
                inner: tcp,
                failures: 0,
            };
            echo(tether_std::accept(stream, &ServerOptions::new()).unwrap().0)
        });
        let mut peer = RawPeer::connect(&url, Config::default());
        for i in 0..20 {
            // A Pong written while the app only reads, then an echo.
            peer.ping(b"are you there");
            assert_eq!(
                peer.next_event(Duration::from_secs(2)),
                Some(Event::Pong((&b"are you there"[..]).into()))
            );
            let message = Message::binary(pattern(100 + i * 1000));
            peer.send(message.clone());
            assert_eq!(
                peer.next_event(Duration::from_secs(2)),
                Some(Event::Message(message))
            );
        }
        peer.conn
            .close(std::time::Instant::now(), CloseCode::NORMAL, "")
            .unwrap();
        peer.flush();
        assert!(matches!(
            peer.next_event(Duration::from_secs(2)),
            Some(Event::Closed(i)) if i.was_clean
        ));
        assert!(matches!(server.join().unwrap(), Error::Closed(i) if i.was_clean));
    });
}

#[test]
fn connections_move_between_threads_and_errors_are_send_and_sync() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<WebSocket<TcpStream>>();
    send::<WebSocket<tether_std::MaybeTlsStream>>();
    send_sync::<Error>();
    send_sync::<tether_std::ClientOptions>();
    send_sync::<ServerOptions>();
}

/// A peer flooding empty messages once kept one `send()` reading
/// ahead (empty messages counted nothing against the limit) for as long as
/// it kept sending, queueing millions of events.
#[test]
fn send_read_ahead_is_bounded_against_a_flood_of_empty_messages() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let chunk: Vec<u8> = std::iter::repeat_n([0x82u8, 0x00], 1 << 16)
            .flatten()
            .collect();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    let mut ws = tether_std::WebSocket::from_upgraded(
        tcp,
        tether::upgrade::Upgraded::new(tether::Role::Client, tether::Config::default()),
        &[],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    ws.send(tether::Message::text("hi")).unwrap();
    // (reading the whole flood would take its 3 s)
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "send() took {:?}",
        t.elapsed()
    );
}

/// RFC 6455 10.4 bounds what a peer can make us hold, not how long the
/// application takes between reads: the rest of a begun message that
/// arrived while the application was away is taken in before the core's
/// deadlines run, so `Config::message_timeout` does not fail a peer that
/// did send it (1008 "received nothing" was the answer).
#[test]
fn rfc6455_10_4_what_arrived_while_the_application_was_away_counts() {
    bounded(Duration::from_secs(10), || {
        let config = Config {
            message_timeout: Some(Duration::from_millis(300)),
            ..Config::default()
        };
        let (url, server) = serve(ServerOptions::new().config(config), |mut ws| {
            let first = ws.read().unwrap();
            // away for several message timeouts
            std::thread::sleep(Duration::from_millis(1200));
            (first, ws.read())
        });
        let mut peer = RawPeer::connect(&url, Config::default());
        // masked with a zero key: a 20 KiB binary message, then the first
        // fragment of a text message, in one write (one read takes both)
        let mut wire = vec![0x82, 0x80 | 126];
        wire.extend_from_slice(&(20u16 << 10).to_be_bytes());
        wire.extend_from_slice(&[0; 4]);
        wire.extend(std::iter::repeat_n(7u8, 20 << 10));
        wire.extend_from_slice(&[0x01, 0x85, 0, 0, 0, 0]);
        wire.extend_from_slice(b"begun");
        peer.stream.write_all(&wire).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        peer.stream.write_all(&[0x80, 0x83, 0, 0, 0, 0]).unwrap();
        peer.stream.write_all(b"end").unwrap();
        let (first, second) = server.join().unwrap();
        assert_eq!(first.as_bytes().len(), 20 << 10);
        assert_eq!(second.unwrap(), Message::text("begunend"));
    });
}

/// A transport whose writes take nothing (`Ok(0)`) is broken, as `std::io`
/// reads it and as the tokio adapter takes it: a send fails with
/// `WriteZero` at once, whatever deadlines run (a Pong keep-alive re-arms
/// for ever: retried under it, the send waited for ever).
#[test]
fn a_transport_that_takes_nothing_fails_a_send() {
    struct Full;
    impl Read for Full {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Ok(0)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Transport for Full {
        fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
    }
    bounded(Duration::from_secs(5), || {
        let upgraded = tether::upgrade::Upgraded::new(
            tether::Role::Server,
            Config {
                keep_alive: tether_std::KeepAlive::Pong {
                    interval: Duration::from_millis(100),
                },
                ..Config::default()
            },
        );
        let mut ws = WebSocket::from_upgraded(Full, upgraded, &[]).unwrap();
        let sent = ws.send(Message::text("nowhere"));
        assert!(
            matches!(&sent, Err(Error::Io(e)) if e.kind() == io::ErrorKind::WriteZero),
            "{sent:?}"
        );
    });
}
