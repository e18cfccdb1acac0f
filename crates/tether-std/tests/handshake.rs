//! The opening handshake (RFC 6455 section 4) as the adapter runs it:
//! subprotocols, refusals, bad requests, slow clients, and servers that are
//! not WebSocket servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bounded, listen};
use tether::handshake::{RequestError, ResponseError};
use tether::upgrade::HandshakeError;
use tether_std::{
    AcceptOptions, ClientOptions, CloseCode, Error, Message, Refusal, ServerOptions, accept,
    accept_with, connect,
};

#[test]
fn rfc6455_4_2_2_callback_picks_a_subprotocol() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let seen = Arc::new(Mutex::new(None));
        let seen_by_server = Arc::clone(&seen);
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let (mut ws, _) = accept_with(stream, &ServerOptions::new(), |request| {
                *seen_by_server.lock().unwrap() =
                    Some((request.path().to_owned(), request.subprotocols().to_vec()));
                let mut options = AcceptOptions::new();
                if let Some(p) = request.pick_subprotocol(&["chat", "superchat"]) {
                    options = options.subprotocol(p);
                }
                Ok(options)
            })
            .unwrap();
            ws.read()
        });
        let options = ClientOptions::new()
            .subprotocol("v2.chat")
            .subprotocol("superchat")
            .subprotocol("chat");
        let (mut ws, accepted) = connect(&format!("{url}room?id=7"), &options).unwrap();
        // The client's first choice that the server supports.
        assert_eq!(accepted.subprotocol(), Some("superchat"));
        ws.send(Message::text("hi")).unwrap();
        assert_eq!(server.join().unwrap().unwrap(), Message::text("hi"));
        let (path, offered) = seen.lock().unwrap().take().unwrap();
        assert_eq!(path, "/room");
        assert_eq!(offered, ["v2.chat", "superchat", "chat"]);
    });
}

#[test]
fn rfc6455_4_2_2_callback_refuses_with_403() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            accept_with(stream, &ServerOptions::new(), |request| {
                assert_eq!(request.origin(), Some("https://evil.example"));
                Err(Refusal::forbidden("origin not allowed"))
            })
        });
        let options = ClientOptions::new().origin("https://evil.example");
        let err = connect(&url, &options).unwrap_err();
        let Error::Handshake(HandshakeError::Response(ResponseError::UnexpectedStatus {
            status,
            ..
        })) = &err
        else {
            panic!("expected the 403, got {err:?}");
        };
        assert_eq!(*status, 403);
        assert!(err.to_string().contains("403"), "{err}");
        let Err(Error::Refused(refusal)) = server.join().unwrap() else {
            panic!("the server should report its refusal");
        };
        assert_eq!(refusal.status(), 403);
    });
}

#[test]
fn rfc6455_4_2_1_bad_request_gets_its_refusal_written() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            accept(stream, &ServerOptions::new()).map(|_| ())
        });
        let addr = url.trim_start_matches("ws://").trim_end_matches('/');
        let mut raw = TcpStream::connect(addr).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Plain HTTP, no upgrade.
        raw.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        raw.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
        assert!(answer.contains("Upgrade: websocket"), "{answer}");
        let err = server.join().unwrap().unwrap_err();
        assert!(
            matches!(err, Error::Handshake(HandshakeError::Request(_))),
            "{err:?}"
        );
    });
}

#[test]
fn rfc6455_4_2_1_tls_client_hello_to_a_plain_server_gets_a_400_it_can_recognise() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            accept(stream, &ServerOptions::new()).map(|_| ())
        });
        let addr = url.trim_start_matches("ws://").trim_end_matches('/');
        let mut raw = TcpStream::connect(addr).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        raw.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0])
            .unwrap();
        let mut answer = Vec::new();
        let _ = raw.read_to_end(&mut answer);
        // one rule in every adapter: a TLS client that reads HTTP where a
        // TLS record belongs can say "wss:// aimed at a plain ws:// server"
        assert!(answer.starts_with(b"HTTP/1.1 400 "), "{answer:?}");
        let err = server.join().unwrap().unwrap_err();
        assert!(matches!(
            err,
            Error::Handshake(HandshakeError::Request(RequestError::TlsClientHello))
        ));
    });
}

// How a server's handshake ends at its timeout or a refusal (the 408, the
// linger and its bound) is in the behaviour suite both adapters run
// (`tether-behaviour`, `tests/refusals.rs`).

#[test]
fn client_handshake_timeout_with_a_server_that_never_answers() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let (done, done_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let _ = done_rx.recv_timeout(Duration::from_secs(1)); // until the test is done
            drop(stream);
        });
        let timeout = Duration::from_millis(200);
        let err = connect(&url, &ClientOptions::new().handshake_timeout(timeout)).unwrap_err();
        assert!(
            matches!(err, Error::Handshake(HandshakeError::Timeout(d)) if d == timeout),
            "{err:?}"
        );
        drop(done);
        server.join().unwrap();
    });
}

#[test]
fn rfc6455_4_1_http_200_answer_is_unexpected_status() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0; 4096];
            let _ = stream.read(&mut buf).unwrap();
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi",
                )
                .unwrap();
        });
        let err = connect(&url, &ClientOptions::new()).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Handshake(HandshakeError::Response(ResponseError::UnexpectedStatus {
                    status: 200,
                    ..
                }))
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("200"), "{err}");
        server.join().unwrap();
    });
}

#[test]
fn server_closing_without_an_answer_names_the_likely_cause() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // Read the whole request (so closing sends FIN, not RST), answer nothing.
            let mut request = Vec::new();
            let mut buf = [0; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
            }
            drop(stream);
        });
        let err = connect(&url, &ClientOptions::new()).unwrap_err();
        assert!(err.to_string().contains("without answering"), "{err}");
        assert!(
            matches!(
                err,
                Error::Handshake(HandshakeError::Eof {
                    client: true,
                    received: 0,
                    secure: false,
                })
            ),
            "{err:?}"
        );
        server.join().unwrap();
    });
}

#[test]
fn connect_errors_name_what_failed() {
    bounded(Duration::from_secs(10), || {
        let err = connect("http://example.com/", &ClientOptions::new()).unwrap_err();
        assert!(matches!(err, Error::Url(_)), "{err:?}");
        assert!(err.to_string().contains("ws://"), "{err}");

        // A port nobody listens on.
        let (listener, url) = listen();
        drop(listener);
        let err = connect(&url, &ClientOptions::new()).unwrap_err();
        let Error::Connect { host, port, .. } = &err else {
            panic!("expected a connect error, got {err:?}");
        };
        assert_eq!(host, "127.0.0.1");
        assert!(*port > 0);
        assert!(
            err.to_string()
                .starts_with("cannot connect to 127.0.0.1 port"),
            "{err}"
        );
    });
}

#[test]
fn the_same_options_serve_many_connections() {
    bounded(Duration::from_secs(10), || {
        let (listener, url) = listen();
        let server = std::thread::spawn(move || {
            let options = ServerOptions::new();
            for _ in 0..3 {
                let (stream, _) = listener.accept().unwrap();
                let (mut ws, _) = accept(stream, &options).unwrap();
                let message = ws.read().unwrap();
                ws.send(message).unwrap();
                assert!(matches!(ws.read(), Err(Error::Closed(_))));
            }
        });
        let options = ClientOptions::new();
        for i in 0..3 {
            let (mut ws, _) = connect(&url, &options).unwrap();
            ws.send(Message::text(format!("n{i}"))).unwrap();
            assert_eq!(ws.read().unwrap(), Message::text(format!("n{i}")));
            assert!(ws.close(CloseCode::NORMAL, "").unwrap().was_clean);
        }
        server.join().unwrap();
    });
}

/// `Duration::MAX` as a timeout means "no limit", not a panic: a client and
/// a server with every wait at `Duration::MAX` connect and exchange a
/// message (the deadlines came from `Instant + Duration`, which overflows).
#[test]
fn timeouts_of_duration_max_mean_no_limit() {
    bounded(Duration::from_secs(10), || {
        let never = Duration::MAX;
        let config = tether::Config {
            connect_timeout: never,
            handshake_timeout: never,
            close_timeout: never,
            ..tether::Config::default()
        };
        let (url, server) = common::serve(ServerOptions::new().config(config.clone()), |mut ws| {
            let m = ws.read().unwrap();
            ws.send(m).unwrap();
            let _ = ws.read();
        });
        let (mut ws, _) = connect(&url, &ClientOptions::new().config(config)).unwrap();
        ws.send(Message::text("hi")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("hi"));
        ws.close(CloseCode::NORMAL, "").unwrap();
        server.join().unwrap();
    });
}

// ----- one connection in the CONNECTING state per host (RFC 6455 4.1) -----

/// Whether a second connection reaches `listener` within `wait`, the first
/// one being accepted and its handshake not yet answered.
fn another_arrives(listener: &std::net::TcpListener, wait: Duration) -> bool {
    listener.set_nonblocking(true).unwrap();
    let until = Instant::now() + wait;
    let arrived = loop {
        match listener.accept() {
            Ok(_) => break true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        if Instant::now() >= until {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    listener.set_nonblocking(false).unwrap();
    arrived
}

/// Two connects to one host at once: the second does not even open TCP
/// until the first is established (RFC 6455 section 4.1, client
/// requirement 2: "no more than one connection in a CONNECTING state"),
/// then goes through while the first stays open; with
/// `one_connecting_per_host` off, it does not wait.
#[test]
fn rfc6455_4_1_a_second_connect_to_a_host_waits_for_the_first_to_be_established() {
    use tether::connecting::{Gate, Remote};
    bounded(Duration::from_secs(60), || {
        for gated in [true, false] {
            let (listener, url) = listen();
            let remote = Remote::Address(listener.local_addr().unwrap());
            let (accepted_tx, accepted_rx) = std::sync::mpsc::channel();
            let (go_tx, go_rx) = std::sync::mpsc::channel();
            let server = std::thread::spawn(move || {
                let (first, _) = listener.accept().unwrap();
                accepted_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                // the first one's upgrade waits unanswered meanwhile: with
                // the rule, the second waits in line (the test saw it
                // there) and opens nothing; without, it comes
                let window = if gated {
                    Duration::from_millis(300)
                } else {
                    Duration::from_secs(10)
                };
                let early = another_arrives(&listener, window);
                let (_first, _) = accept(first, &ServerOptions::new()).unwrap();
                if !early {
                    let (second, _) = listener.accept().unwrap();
                    let _second = accept(second, &ServerOptions::new()).unwrap();
                }
                early
            });
            let options = ClientOptions::new().config(tether::Config {
                one_connecting_per_host: gated,
                ..tether::Config::default()
            });
            let first = std::thread::spawn({
                let (url, options) = (url.clone(), options.clone());
                move || connect(&url, &options)
            });
            accepted_rx.recv().unwrap();
            let second = std::thread::spawn(move || connect(&url, &options).map(|_| ()));
            if gated {
                let until = Instant::now() + Duration::from_secs(10);
                while Gate::global().waiting(&remote) == 0 {
                    assert!(Instant::now() < until, "the second never lined up");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            go_tx.send(()).unwrap();
            let early = server.join().unwrap();
            assert_eq!(
                early, !gated,
                "a second connection while the first was connecting (gated: {gated})"
            );
            // the first stays open: its pass was for connecting only
            let _first = first.join().unwrap().unwrap();
            if gated {
                second.join().unwrap().unwrap();
            }
        }
    });
}

/// A connect that waits for another to the same host still connecting
/// gives up at its connect timeout and says why.
#[test]
fn rfc6455_4_1_the_wait_for_another_connection_is_bounded_by_the_connect_timeout() {
    bounded(Duration::from_secs(20), || {
        let (listener, url) = listen();
        let (accepted_tx, accepted_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            // never answers the first upgrade
            let (_first, _) = listener.accept().unwrap();
            accepted_tx.send(()).unwrap();
            let _ = done_rx.recv_timeout(Duration::from_secs(15));
        });
        let first = std::thread::spawn({
            let url = url.clone();
            move || connect(&url, &ClientOptions::new()).map(|_| ())
        });
        accepted_rx.recv().unwrap();
        let started = Instant::now();
        let options = ClientOptions::new().connect_timeout(Duration::from_millis(300));
        let err = connect(&url, &options).map(|_| ()).unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("was still connecting (RFC 6455 section 4.1"),
            "{text}"
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
        drop(done_tx);
        server.join().unwrap();
        assert!(first.join().unwrap().is_err());
    });
}
