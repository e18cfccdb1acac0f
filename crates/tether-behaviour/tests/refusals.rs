//! How a server ends an opening handshake it refuses (RFC 6455 section
//! 4.2.1 and 4.2.2), the same in both adapters: the answer (408 for a
//! request that does not arrive within `Config::handshake_timeout`, the
//! refusal of a bad request or of the application), the end of writing,
//! then reads that drop what the client still sends until its end, for at
//! most `Config::fin_wait` (`tether::upgrade::Refusing`). A raw client over
//! loopback TCP writes down what it saw; the transcripts of the two
//! adapters must be equal, and the expected one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tether::Config;
use tether::handshake::{AcceptOptions, Refusal};

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

#[derive(Clone, Copy, Debug)]
enum Adapter {
    Std,
    Tokio,
}

/// What the server's `accept` returned, in words, and how long it took.
type Outcome = (String, Duration);

/// Accepts one connection with `adapter` under `config`, refusing every
/// request when `refuse` is set.
fn serve(adapter: Adapter, config: Config, refuse: bool) -> (String, JoinHandle<Outcome>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let decide = move |_: &tether::handshake::Request| {
        if refuse {
            Err(Refusal::forbidden("not here"))
        } else {
            Ok(AcceptOptions::new())
        }
    };
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let start = Instant::now();
        let result = match adapter {
            Adapter::Std => {
                let options = tether_std::ServerOptions::new().config(config);
                match tether_std::accept_with(tcp, &options, decide) {
                    Ok(_) => "accepted".to_owned(),
                    Err(e) => e.to_string(),
                }
            }
            Adapter::Tokio => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                tcp.set_nonblocking(true).unwrap();
                let options = tether_tokio::ServerOptions::new().config(config);
                rt.block_on(async {
                    let tcp = tokio::net::TcpStream::from_std(tcp).unwrap();
                    match tether_tokio::accept_with(tcp, &options, decide).await {
                        Ok(_) => "accepted".to_owned(),
                        Err(e) => e.to_string(),
                    }
                })
            }
        };
        (result, start.elapsed())
    });
    (addr, server)
}

/// The answer's status line, then how the server's end looked.
fn read_answer(client: &mut TcpStream, log: &mut Vec<String>) {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let end = match client.read_to_end(&mut answer) {
        Ok(_) => "eof".to_owned(),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => "reset".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let answer = String::from_utf8_lossy(&answer);
    log.push(format!(
        "answer: {}",
        answer.lines().next().unwrap_or("(none)")
    ));
    log.push(format!("end: {end}"));
}

fn config(handshake_timeout: Duration, fin_wait: Duration) -> Config {
    Config {
        handshake_timeout,
        fin_wait,
        ..Config::default()
    }
}

fn both(scenario: impl Fn(Adapter) -> Vec<String>) -> Vec<String> {
    let std = scenario(Adapter::Std);
    let tokio = scenario(Adapter::Tokio);
    assert_eq!(std, tokio, "the two adapters end the handshake differently");
    std
}

/// RFC 6455 section 4.2.1 with RFC 9110 section 15.5.9: a request still
/// trickling in at the handshake timeout gets a 408, and the bytes it
/// sends after it are read and dropped: the client reads the answer and
/// the server's end, not a reset. The server returns once the client ends.
#[test]
fn rfc6455_4_2_1_a_late_request_gets_a_408_and_the_servers_end() {
    let timeout = Duration::from_millis(300);
    let transcript = both(|adapter| {
        let (addr, server) = serve(adapter, config(timeout, Duration::from_secs(2)), false);
        let mut client = TcpStream::connect(addr).unwrap();
        let mut log = Vec::new();
        client.write_all(&UPGRADE[..20]).unwrap();
        std::thread::sleep(timeout + Duration::from_millis(200));
        // still trickling after the server gave up
        log.push(format!(
            "late write: {:?}",
            client.write_all(&UPGRADE[20..40]).is_ok()
        ));
        std::thread::sleep(Duration::from_millis(100));
        read_answer(&mut client, &mut log);
        drop(client);
        let (result, took) = server.join().unwrap();
        log.push(format!("server: {result}"));
        log.push(format!(
            "server returned before the linger's end: {}",
            took < timeout + Duration::from_millis(1500)
        ));
        log
    });
    assert_eq!(
        transcript,
        [
            "late write: true",
            "answer: HTTP/1.1 408 Request Timeout",
            "end: eof",
            "server: the WebSocket handshake did not complete within 300ms",
            "server returned before the linger's end: true",
        ]
    );
}

/// RFC 6455 section 4.2.2: a refusal reaches a client that is still
/// writing behind its request (16 MiB, more than the sockets buffer):
/// its writes all go through, then it reads the 403 and the server's end.
#[test]
fn rfc6455_4_2_2_a_refusal_reaches_a_client_still_writing() {
    let transcript = both(|adapter| {
        let (addr, server) = serve(adapter, Config::default(), true);
        let mut client = TcpStream::connect(addr).unwrap();
        let mut log = Vec::new();
        let mut request = UPGRADE.to_vec();
        request.extend(std::iter::repeat_n(0x82, 16 << 20));
        log.push(format!(
            "written: {:?}",
            client.write_all(&request).map_err(|e| e.kind())
        ));
        read_answer(&mut client, &mut log);
        drop(client);
        log.push(format!("server: {}", server.join().unwrap().0));
        log
    });
    assert_eq!(
        transcript,
        [
            "written: Ok(())",
            "answer: HTTP/1.1 403 Forbidden",
            "end: eof",
            "server: the upgrade request was refused with 403 Forbidden: not here",
        ]
    );
}

/// The linger is bounded: a client that neither finishes nor ends holds
/// the server `fin_wait` after the answer went out, and no longer; a bad
/// request gets its refusal even with no linger at all.
#[test]
fn rfc6455_4_2_1_the_linger_is_bounded_by_fin_wait() {
    let timeout = Duration::from_millis(200);
    let fin_wait = Duration::from_millis(400);
    let transcript = both(|adapter| {
        let mut log = Vec::new();
        let (addr, server) = serve(adapter, config(timeout, fin_wait), false);
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(&UPGRADE[..20]).unwrap();
        let (result, took) = server.join().unwrap();
        log.push(format!("server: {result}"));
        let bounded =
            took >= timeout + fin_wait && took < timeout + fin_wait + Duration::from_secs(1);
        log.push(format!("held for the timeout and fin_wait: {bounded}"));
        drop(client);

        let (addr, server) = serve(adapter, config(timeout, Duration::ZERO), false);
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_answer(&mut client, &mut log);
        drop(client);
        log.push(format!("server: {}", server.join().unwrap().0));
        log
    });
    assert_eq!(transcript.len(), 5, "{transcript:?}");
    assert_eq!(
        transcript[..4],
        [
            "server: the WebSocket handshake did not complete within 200ms",
            "held for the timeout and fin_wait: true",
            "answer: HTTP/1.1 426 Upgrade Required",
            "end: eof",
        ]
    );
    assert!(
        transcript[4].starts_with("server: bad WebSocket upgrade request"),
        "{transcript:?}"
    );
}
