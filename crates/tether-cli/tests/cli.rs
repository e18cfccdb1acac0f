#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `tether` binary against tether-tokio peers on 127.0.0.1.
//!
//! Servers listen on port 0 and the test reads the chosen address from the
//! startup line, so no port is ever guessed. Every step is bounded by
//! [`LIMIT`] and every child is killed when its handle drops, so a failing
//! test fails instead of hanging.

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::{tether, within};
use futures_util::StreamExt;
use tether_tokio::tether::{CloseCode, Event, Message};
use tether_tokio::{WebSocket, WsStream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Child;
use tokio::sync::mpsc;

/// A running `tether serve`, its URL, and its stderr line by line.
struct Server {
    child: Child,
    url: String,
    startup: String,
    log: mpsc::UnboundedReceiver<String>,
}

impl Server {
    async fn start(args: &[&str]) -> Self {
        let mut all = vec!["serve", "--addr", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = tether(&all).spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let startup = within("the startup line", stderr.next_line())
            .await
            .unwrap()
            .expect("serve exited before listening");
        let url = startup
            .strip_prefix("tether: listening on ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("unexpected startup line {startup:?}"))
            .to_owned();
        // keep draining stderr so logging never blocks the server
        let (tx, log) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            url,
            startup,
            log,
        }
    }

    /// The server's `host:port`.
    fn addr(&self) -> String {
        self.url
            .trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_string()
    }

    /// Waits for a log line containing `needle`; returns it.
    async fn log_line(&mut self, needle: &str) -> String {
        within(&format!("a log line with {needle:?}"), async {
            loop {
                let line = self.log.recv().await.expect("server stderr ended");
                if line.contains(needle) {
                    return line;
                }
            }
        })
        .await
    }
}

/// Sends SIGINT (Ctrl-C) to the process `pid`.
#[cfg(unix)]
fn interrupt(pid: &str) {
    let killed = std::process::Command::new("kill")
        .args(["-INT", pid])
        .status()
        .unwrap();
    assert!(killed.success());
}

async fn connect(url: &str) -> WebSocket {
    within("connect", tether_tokio::connect(url, &Default::default()))
        .await
        .unwrap()
        .0
}

async fn next(ws: &mut WebSocket) -> Message {
    within("a message", ws.next()).await.unwrap().unwrap()
}

/// A listener on a free port and its ws:// URL.
/// How the client ended the connection: its final event, reading past
/// whatever came before it.
async fn client_closed(ws: &mut WebSocket) -> tether_tokio::tether::CloseInfo {
    within("the client's close", async {
        loop {
            match ws.next_event().await {
                Some(Event::Closed(info)) => return info,
                Some(_) => {}
                None => panic!("no final event"),
            }
        }
    })
    .await
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    (listener, url)
}

async fn accept(listener: &TcpListener) -> WebSocket {
    let (stream, _) = within("accept", listener.accept()).await.unwrap();
    within(
        "handshake",
        tether_tokio::accept(stream, &Default::default()),
    )
    .await
    .unwrap()
    .0
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// 1. `tether serve` echoes what `tether connect` pipes in.
#[tokio::test]
async fn serve_echo_and_connect_with_piped_stdin() {
    let server = Server::start(&[]).await;
    assert_eq!(
        server.startup,
        format!("tether: listening on {} (echo)", server.url)
    );
    assert!(server.url.starts_with("ws://127.0.0.1:"), "{}", server.url);

    let mut client = tether(&["connect", &server.url])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"hello\nworld\n").await.unwrap();
    drop(stdin);
    let output = within("connect to exit", client.wait_with_output())
        .await
        .unwrap();
    assert_eq!(
        text(&output.stdout),
        "hello\nworld\n",
        "{}",
        describe(&output)
    );
    assert!(output.status.success(), "{}", describe(&output));
    drop(server);
}

/// 2. Broadcast greets each client and relays to all of them.
#[tokio::test]
async fn serve_broadcast_greets_and_relays_to_every_client() {
    let server = Server::start(&["--mode", "broadcast"]).await;
    assert!(
        server.startup.ends_with("(broadcast)"),
        "{}",
        server.startup
    );

    let mut a = connect(&server.url).await;
    assert_eq!(next(&mut a).await, Message::text("connection established"));
    let mut b = connect(&server.url).await;
    assert_eq!(next(&mut b).await, Message::text("connection established"));

    a.send(Message::text("hi")).await.unwrap();
    assert_eq!(next(&mut a).await, Message::text("echo hi"));
    assert_eq!(next(&mut b).await, Message::text("echo hi"));

    b.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(next(&mut a).await, Message::binary(vec![1u8, 2, 3]));
    assert_eq!(next(&mut b).await, Message::binary(vec![1u8, 2, 3]));

    for mut ws in [a, b] {
        let info = within("close", ws.close(CloseCode::NORMAL, ""))
            .await
            .unwrap();
        assert!(info.was_clean, "{info}");
    }
}

/// 3. `tether connect --echo` sends back what a server sends.
#[tokio::test]
async fn connect_echo_returns_text_and_binary() {
    let (listener, url) = listener().await;
    let client = tether(&["connect", "--echo", &url]).spawn().unwrap();
    let mut ws = accept(&listener).await;

    ws.send(Message::text("one")).await.unwrap();
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, Message::text("one"));
    assert_eq!(next(&mut ws).await, Message::binary(vec![0u8, 1, 2, 255]));
    let info = within("close", ws.close(CloseCode::NORMAL, "done"))
        .await
        .unwrap();
    assert!(info.was_clean, "{info}");

    let output = within("connect to exit", client.wait_with_output())
        .await
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        text(&output.stdout),
        "one\n<binary 4 bytes>\n",
        "{}",
        describe(&output)
    );
}

/// 4. `--verbose` shows a Ping and the server's close code, its meaning and
/// that the close was clean.
#[tokio::test]
async fn connect_verbose_reports_ping_and_close_code() {
    let (listener, url) = listener().await;
    let mut client = tether(&["connect", "--verbose", "--hex", &url])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    // stdin stays open: the server, not EOF, ends this session
    let stdin = client.stdin.take().unwrap();
    let mut ws = accept(&listener).await;

    ws.ping("hi".into()).await.unwrap();
    ws.send(Message::binary(vec![0xcau8, 0xfe])).await.unwrap();
    let info = within("close", ws.close(CloseCode::new(4000), "bye"))
        .await
        .unwrap();
    assert!(info.was_clean, "{info}");

    let output = within("connect to exit", client.wait_with_output())
        .await
        .unwrap();
    drop(stdin);
    let stderr = text(&output.stderr);
    // the server closed with 4000, a code that says why: status 4
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    assert_eq!(text(&output.stdout), "cafe\n", "{}", describe(&output));
    assert!(stderr.contains("< ping \"hi\""), "{stderr}");
    assert!(
        stderr.contains("closed: 4000 (application code) \"bye\", clean"),
        "{stderr}"
    );
}

/// 5. An HTTP server that answers 200: exit code 1 and the cause in words.
#[tokio::test]
async fn connect_to_a_plain_http_server_names_the_status() {
    let (listener, url) = listener().await;
    let http = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "client left before its request ended");
            head.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .await
            .unwrap();
        let _ = stream.shutdown().await;
    });
    let output = within("connect to exit", tether(&["connect", &url]).output())
        .await
        .unwrap();
    within("the HTTP server", http).await.unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(3),
        "never connected: {}",
        describe(&output)
    );
    assert!(stderr.contains("200"), "{stderr}");
    assert!(stderr.contains("101"), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
}

/// Ctrl-C closes every connection with 1001 and exits 0.
#[cfg(unix)]
#[tokio::test]
async fn serve_interrupt_closes_with_going_away_and_exits_zero() {
    let mut server = Server::start(&["-v"]).await;
    let mut ws = connect(&server.url).await;
    ws.send(Message::text("ping")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("ping"));
    server.log_line("connected").await;

    let pid = server.child.id().unwrap().to_string();
    interrupt(&pid);

    assert!(within("the end", ws.next()).await.is_none());
    let info = ws.close_info().unwrap();
    assert_eq!(info.code, CloseCode::GOING_AWAY, "{info}");
    assert!(info.was_clean, "{info}");
    let line = server.log_line("disconnected").await;
    assert!(line.contains("1001 (going away)"), "{line}");
    let status = within("serve to exit", server.child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
}

/// A client that stops reading is closed with 1008 once its queue holds
/// `--queue-bytes`;
/// the others keep receiving everything.
#[tokio::test]
async fn serve_broadcast_drops_a_client_that_does_not_read() {
    let mut server = Server::start(&["--mode", "broadcast", "--queue-bytes", "131072", "-v"]).await;
    let mut slow = connect(&server.url).await;
    assert_eq!(
        next(&mut slow).await,
        Message::text("connection established")
    );
    let fast = connect(&server.url).await;
    let (mut tx, mut rx) = fast.split();
    assert_eq!(
        within("greeting", rx.next()).await.unwrap().unwrap(),
        Message::text("connection established")
    );

    // The fast client sends 16 KiB messages, never more than 4 ahead of its
    // own echoes, until the server gives up on the slow one (it must first
    // fill the slow client's buffers, the kernel's and the server's 16 MiB
    // output queue).
    let payload = vec![7u8; 16 << 10];
    let mut kicked = false;
    let (mut sent, mut received) = (0usize, 0usize);
    async fn recv_one(rx: &mut WsStream, len: usize) {
        let m = within("an echo", rx.next()).await.unwrap().unwrap();
        assert_eq!(m.len(), len);
    }
    while !kicked {
        assert!(sent < 20_000, "the slow client was never dropped");
        tx.send(Message::binary(payload.clone())).await.unwrap();
        sent += 1;
        while sent - received > 4 {
            recv_one(&mut rx, payload.len()).await;
            received += 1;
        }
        if let Ok(line) = server.log.try_recv() {
            kicked = line.contains("client too slow");
        }
    }
    while received < sent {
        recv_one(&mut rx, payload.len()).await;
        received += 1;
    }

    // once the slow client reads again it gets the queued messages, then 1008
    let mut slow_got = 0usize;
    loop {
        match within("the slow client's backlog", slow.next_event()).await {
            Some(Event::Message(_)) => slow_got += 1,
            Some(Event::Closed(info)) => {
                assert_eq!(info.code, CloseCode::POLICY_VIOLATION, "{info}");
                break;
            }
            Some(_) => {}
            None => panic!("ended without Closed"),
        }
    }
    eprintln!("slow client: {slow_got} of {sent} messages before 1008");
    assert!(slow_got < sent, "{slow_got} of {sent}");
    let line = server.log_line("disconnected").await;
    assert!(line.contains("1008 (policy violation)"), "{line}");

    // the fast client is still served
    tx.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        within("an echo", rx.next()).await.unwrap().unwrap(),
        Message::text("echo still here")
    );
}

#[tokio::test]
async fn help_explains_both_commands_and_bad_flags_are_refused() {
    let help = tether(&["--help"]).output().await.unwrap();
    assert!(help.status.success());
    let help = text(&help.stdout);
    assert!(help.contains("serve") && help.contains("connect"), "{help}");

    for sub in ["serve", "connect"] {
        let help = tether(&[sub, "--help"]).output().await.unwrap();
        let help = text(&help.stdout);
        assert!(
            help.contains("--keepalive") && help.contains("--interval"),
            "{help}"
        );
    }

    // a URL that cannot be used is bad usage (2), named, not "never
    // connected" (3): no scheme, another scheme, HTTP/3 over ws://
    for (args, says) in [
        (&["connect", "127.0.0.1:1"][..], "invalid WebSocket URL"),
        (&["connect", "http://127.0.0.1:1/"], "invalid WebSocket URL"),
        (
            &["connect", "--reconnect", "ftp://127.0.0.1:1/"],
            "invalid WebSocket URL",
        ),
        (&["connect", "--http3", "ws://127.0.0.1:1/"], "use wss://"),
        // keep-alive flags that would do nothing are refused, not ignored
        (
            &["connect", "--interval", "5", "ws://127.0.0.1:1/"],
            "it is off: add --keepalive",
        ),
        (
            &[
                "connect",
                "--keepalive",
                "pong",
                "--timeout",
                "2",
                "ws://127.0.0.1:1/",
            ],
            "needs --keepalive ping",
        ),
        (
            &["serve", "--keepalive", "off", "--interval", "5"],
            "it is off: add --keepalive",
        ),
    ] {
        let bad = tether(args).output().await.unwrap();
        let stderr = text(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }

    let bad = tether(&["connect", "--close-code", "1005", "ws://127.0.0.1:1/"])
        .output()
        .await
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("may not be sent"),
        "{}",
        text(&bad.stderr)
    );
}

/// At stdin's end the client closes with `--close-code` and `--close-reason`.
#[tokio::test]
async fn connect_closes_with_the_given_code_at_the_end_of_stdin() {
    let (listener, url) = listener().await;
    let mut client = tether(&[
        "connect",
        "--close-code",
        "4001",
        "--close-reason",
        "done here",
        &url,
    ])
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"last words\r\n").await.unwrap();
    drop(stdin);
    let mut ws = accept(&listener).await;
    let message = next(&mut ws).await;
    assert_eq!(message, Message::text("last words"));
    // answered within the --wait window: the client prints it
    ws.send(message).await.unwrap();
    assert!(within("the close", ws.next()).await.is_none());
    let info = ws.close_info().unwrap();
    assert_eq!(
        (info.code.as_u16(), info.reason.as_str()),
        (4001, "done here")
    );
    assert!(info.was_clean, "{info}");

    let output = within("connect to exit", client.wait_with_output())
        .await
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        text(&output.stdout),
        "last words\n",
        "{}",
        describe(&output)
    );
}

/// Ctrl-C in the client closes with 1001 and exits 0 once the server
/// answered.
#[cfg(unix)]
#[tokio::test]
async fn connect_interrupt_closes_with_going_away() {
    let (listener, url) = listener().await;
    let mut client = tether(&["connect", &url])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = client.stdin.take().unwrap();
    let mut ws = accept(&listener).await;
    // a round trip shows the client is in its loop (signals are watched
    // from before it connects)
    ws.send(Message::text("are you there")).await.unwrap();
    let pid = client.id().unwrap().to_string();
    let mut stdout = BufReader::new(client.stdout.take().unwrap()).lines();
    let line = within("the first line", stdout.next_line()).await.unwrap();
    assert_eq!(line.as_deref(), Some("are you there"));

    interrupt(&pid);
    assert!(within("the close", ws.next()).await.is_none());
    let info = ws.close_info().unwrap();
    assert_eq!(info.code, CloseCode::GOING_AWAY, "{info}");
    assert!(info.was_clean, "{info}");
    let status = within("connect to exit", client.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
    drop(stdin);
}

/// --subprotocol, --header and --origin reach the server; the chosen
/// subprotocol is shown with --verbose.
#[tokio::test]
async fn connect_sends_subprotocols_headers_and_origin() {
    use tether_tokio::tether::handshake::AcceptOptions;

    let (listener, url) = listener().await;
    let client = tether(&[
        "connect",
        "-v",
        "--subprotocol",
        "v2.chat",
        "--subprotocol",
        "chat",
        "--header",
        "Authorization: Bearer abc",
        "--origin",
        "https://example.com",
        &url,
    ])
    .spawn()
    .unwrap();
    let (stream, _) = within("accept", listener.accept()).await.unwrap();
    let (mut ws, request) = within(
        "handshake",
        tether_tokio::accept_with(stream, &Default::default(), |_| {
            Ok(AcceptOptions::new().subprotocol("chat"))
        }),
    )
    .await
    .unwrap();
    assert_eq!(request.subprotocols(), ["v2.chat", "chat"]);
    assert_eq!(
        request.headers().get_str("authorization"),
        Some("Bearer abc")
    );
    assert_eq!(request.origin(), Some("https://example.com"));
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();

    let output = within("connect to exit", client.wait_with_output())
        .await
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("(subprotocol chat)"), "{stderr}");
    assert!(
        stderr.contains("closed: 1000 (normal closure), clean"),
        "{stderr}"
    );
}

/// `--deflate` on both commands: `serve` accepts permessage-deflate from a
/// client that offers it, `connect` offers it and says so with `-v`.
#[tokio::test]
async fn deflate_on_serve_and_connect() {
    use tether_tokio::tether::{Config, DeflateConfig};
    let deflate = Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    };

    // serve --deflate, a tether-tokio client that offers it
    let server = Server::start(&["--deflate"]).await;
    let options = tether_tokio::ClientOptions::new().config(deflate.clone());
    let (mut ws, accepted) = within("connect", tether_tokio::connect(&server.url, &options))
        .await
        .unwrap();
    assert_eq!(accepted.extensions().len(), 1);
    assert_eq!(accepted.extensions()[0].name(), "permessage-deflate");
    let big = Message::text("compress me ".repeat(10_000));
    within("send", ws.send(big.clone())).await.unwrap();
    assert!(next(&mut ws).await == big);
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    // without the flag, nothing is negotiated
    let plain = Server::start(&[]).await;
    let (_ws, accepted) = within("connect", tether_tokio::connect(&plain.url, &options))
        .await
        .unwrap();
    assert!(accepted.extensions().is_empty());

    // connect --deflate against a tether-tokio server that accepts it
    let (listener, url) = listener().await;
    let mut client = tether(&["connect", "-v", "--deflate", &url])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let (stream, _) = within("accept", listener.accept()).await.unwrap();
    let server_options = tether_tokio::ServerOptions::new().config(deflate);
    let (mut ws, request) = within("handshake", tether_tokio::accept(stream, &server_options))
        .await
        .unwrap();
    assert_eq!(request.extensions()[0].name(), "permessage-deflate");
    let line = "hello hello hello hello hello hello hello hello\n";
    stdin.write_all(line.as_bytes()).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text(line.trim_end()));
    // the server application reads on, as a server loop does, so the
    // client's Close is answered once it has come back for more
    let server = tokio::spawn(async move { while ws.next().await.is_some() {} });
    drop(stdin);
    let output = within("connect to exit", client.wait_with_output())
        .await
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    within("the server's end", server).await.unwrap();
    let stderr = text(&output.stderr);
    assert!(stderr.contains("extension: permessage-deflate"), "{stderr}");
}

/// Exit statuses a script can tell apart: the server's clean close with a
/// code that says why is 4, an abnormal end (the server drops TCP) is 5.
#[tokio::test]
async fn connect_exit_status_tells_a_servers_error_from_a_lost_connection() {
    for (code, drop_tcp, expected) in [
        (1011u16, false, 4),
        (4000, false, 4),
        (1000, false, 0),
        (0, true, 5),
    ] {
        let (listener, url) = listener().await;
        let mut client = tether(&["connect", &url]);
        client.stdin(Stdio::piped());
        let mut client = client.spawn().unwrap();
        let stdin = client.stdin.take().unwrap();
        let mut ws = accept(&listener).await;
        if drop_tcp {
            ws.abort();
            drop(ws);
        } else {
            let info = within("close", ws.close(CloseCode::new(code), "why"))
                .await
                .unwrap();
            assert!(info.was_clean, "{info}");
        }
        let output = within("connect to exit", client.wait_with_output())
            .await
            .unwrap();
        drop(stdin);
        assert_eq!(
            output.status.code(),
            Some(expected),
            "code {code}: {}",
            describe(&output)
        );
    }
}

/// Connects once a slot is free again (a closed connection's task may
/// still be ending).
async fn connect_below_the_limit(url: &str) -> WebSocket {
    within("a connect below the limit", async {
        loop {
            if let Ok((ws, _)) = tether_tokio::connect(url, &Default::default()).await {
                return ws;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test]
async fn serve_refuses_past_max_connections_with_503_and_says_so_once() {
    let mut server = Server::start(&["--max-connections", "1"]).await;
    let mut first = connect(&server.url).await;
    for _ in 0..3 {
        let refused = within(
            "a refused connect",
            tether_tokio::connect(&server.url, &Default::default()),
        )
        .await
        .expect_err("past the limit");
        match &refused {
            tether_tokio::Error::Handshake(e) => assert_eq!(e.refused_status(), Some(503), "{e}"),
            other => panic!("expected a 503 refusal, got {other}"),
        }
    }
    server.log_line("at --max-connections 1").await;
    first.close(CloseCode::NORMAL, "").await.unwrap();
    // room again once the first connection's task is done
    let mut again = connect_below_the_limit(&server.url).await;
    let line = server.log_line("below --max-connections again").await;
    assert!(line.contains("client(s) got 503"), "{line}");
    again.close(CloseCode::NORMAL, "").await.unwrap();
}

/// RFC 6455 section 4.2.1 with RFC 9110 section 15.5.9, through `tether
/// serve`: a request still trickling in at `--handshake-timeout` gets a
/// 408, and the server reads on for the client's end (the trickle's next
/// bytes do not meet a closed socket and reset the answer away); a client
/// past `--max-connections` still writing behind its request reads its
/// 503 and the server's end, not a reset.
#[tokio::test]
async fn serve_answers_a_late_request_408_and_refusals_linger_for_the_clients_end() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut server = Server::start(&["--max-connections", "1", "--handshake-timeout", "0.3"]).await;
    let addr = server.addr();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    slow.write_all(b"X-Slow: 1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut answer = Vec::new();
    within("the 408", slow.read_to_end(&mut answer))
        .await
        .expect("the 408 and the server's end, not a reset");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    drop(slow);

    let mut first = connect_below_the_limit(&server.url).await;
    let mut busy = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    request.extend(std::iter::repeat_n(0x82, 16 << 20));
    within("the request and what follows", busy.write_all(&request))
        .await
        .expect("the server reads what follows a refused request, no reset");
    let mut answer = Vec::new();
    within("the 503", busy.read_to_end(&mut answer))
        .await
        .expect("the 503 and the server's end, not a reset");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    server.log_line("at --max-connections 1").await;
    first.close(CloseCode::NORMAL, "").await.unwrap();
}

/// A flood of clients at a full server holds a bounded number of sockets:
/// past `Admission::MAX_REFUSING` refusals under way (each waits up to
/// `REFUSAL_TIME` for a request to answer), a new client is closed at once,
/// unanswered, and said so once; the refusals under way still answer 503.
#[tokio::test]
async fn serve_sheds_clients_past_the_refusals_under_way() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut server = Server::start(&["--max-connections", "1"]).await;
    let mut first = connect(&server.url).await;
    let addr = server.addr();
    // each silent client holds one refusal (for up to a second)
    let mut silent = Vec::new();
    for _ in 0..tether::Admission::MAX_REFUSING {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // one more, asking at once: closed without the 503 the others get
    // (its request may meet a reset)
    let mut shed = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = shed.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = within("the shed client closed", shed.read_to_end(&mut answer)).await;
    assert!(
        answer.is_empty(),
        "shed unanswered: {}",
        String::from_utf8_lossy(&answer)
    );
    server.log_line("closed unanswered").await;
    // the newest refusal under way still answers its request with a 503
    let last = silent.last_mut().unwrap();
    last.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    within("the 503", last.read_to_end(&mut answer))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    first.close(CloseCode::NORMAL, "").await.unwrap();
    // the episode's count is said when a client gets a slot again
    let mut again = connect_below_the_limit(&server.url).await;
    let line = server.log_line("below --max-connections again").await;
    assert!(line.contains("closed unanswered"), "{line}");
    again.close(CloseCode::NORMAL, "").await.unwrap();
}

/// The most memory the server has had resident so far, in bytes (`VmHWM`
/// in `/proc/PID/status`: a peak, so a growth that came and went counts).
fn peak_resident(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// What refusals under way hold is bounded in bytes: a flood of 1,000
/// silent clients at a full server raises its peak resident memory by at
/// most what `Admission::MAX_REFUSING` refusals hold (each a task with its
/// 4 KiB request buffer and a socket's registration: under 16 KiB), not by
/// what 1,000 would (about 5 MB).
#[tokio::test]
async fn serve_refusals_under_way_hold_bounded_memory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const FLOOD: usize = 1000;
    const PER_REFUSAL: usize = 16 << 10;
    const SLACK: usize = 1 << 20;
    let server = Server::start(&["--max-connections", "1"]).await;
    let pid = server.child.id().unwrap();
    let mut first = connect(&server.url).await;
    let addr = server.addr();
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // one round of refusals first, answered and gone, so that what the
    // allocator keeps for them is in the baseline
    let mut warm = Vec::new();
    for _ in 0..tether::Admission::MAX_REFUSING {
        warm.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    for tcp in &mut warm {
        tcp.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let _ = within("a 503", tcp.read_to_end(&mut answer)).await;
    }
    drop(warm);
    let before = peak_resident(pid);
    let mut silent = Vec::new();
    for _ in 0..FLOOD {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // the server has taken the last connect in (and shed it, or refused
    // it) before the peak is read
    let mut rest = Vec::new();
    let _ = within(
        "the last client's end",
        silent.last_mut().unwrap().read_to_end(&mut rest),
    )
    .await;
    let grew = peak_resident(pid).saturating_sub(before);
    let bound = tether::Admission::MAX_REFUSING * PER_REFUSAL + SLACK;
    assert!(
        grew <= bound,
        "{FLOOD} silent clients grew the server by {grew} bytes (bound {bound})"
    );
    drop(silent);
    first.close(CloseCode::NORMAL, "").await.unwrap();
}

/// Clients that open connections and never finish the handshake (a
/// slowloris) hold the slots only until real clients come: at
/// --max-connections, a new client takes the slot of the oldest unfinished
/// handshake, long before the handshake timeout.
#[tokio::test]
async fn serve_unfinished_handshakes_give_way_to_new_clients_at_max_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut server = Server::start(&["--max-connections", "3", "--handshake-timeout", "60"]).await;
    let addr = server.addr();
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tcp);
    }
    // every slot is in an unfinished handshake: real clients still get in
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(connect(&server.url).await);
    }
    server.log_line("give way to new clients").await;
    // the two oldest slow ones were closed; the newest still waits
    for tcp in &mut slow[..2] {
        let mut buf = [0u8; 64];
        let n = within("the displaced handshake closed", tcp.read(&mut buf))
            .await
            .unwrap_or(0);
        assert_eq!(n, 0, "no answer, only the end");
    }
    // all slots established or the newest slow one: established ones are
    // never displaced; the slow one gives way to one more client
    clients.push(connect(&server.url).await);
    let refused = within(
        "a refused connect",
        tether_tokio::connect(&server.url, &Default::default()),
    )
    .await
    .expect_err("every slot holds an established connection");
    match &refused {
        tether_tokio::Error::Handshake(e) => assert_eq!(e.refused_status(), Some(503), "{e}"),
        other => panic!("expected a 503 refusal, got {other}"),
    }
    for mut ws in clients {
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    }
}

#[tokio::test]
async fn serve_fails_a_stalled_message_with_1008() {
    let server = Server::start(&["--message-timeout", "0.3"]).await;
    let mut ws = connect(&server.url).await;
    ws.send_fragment(
        tether_tokio::tether::MessageKind::Text,
        bytes::Bytes::from_static(b"begun, never ended"),
        false,
    )
    .await
    .unwrap();
    let info = within("the server's verdict", async {
        loop {
            if let Some(Event::Closed(info)) = ws.next_event().await {
                return info;
            }
        }
    })
    .await;
    assert_eq!(info.code, CloseCode::POLICY_VIOLATION, "{info:?}");
    assert!(info.reason.contains("received nothing"), "{info:?}");
}

#[tokio::test]
async fn serve_pings_its_clients_by_default() {
    let server = Server::start(&["--interval", "0.2", "--timeout", "1"]).await;
    let mut ws = connect(&server.url).await;
    let pinged = within("the server's keep-alive Ping", async {
        loop {
            match ws.next_event().await {
                Some(Event::Ping(p)) => return p,
                Some(_) => {}
                None => panic!("ended before a Ping"),
            }
        }
    })
    .await;
    assert_eq!(pinged.len(), 8, "the keep-alive counter");
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

#[tokio::test]
async fn serve_deflate_memory_flags_are_negotiated() {
    use tether_tokio::tether::{Config, DeflateConfig};
    let server = Server::start(&[
        "--deflate",
        "--deflate-window-bits",
        "10",
        "--deflate-no-context-takeover",
    ])
    .await;
    let options = tether_tokio::ClientOptions::new().config(Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    });
    let (mut ws, accepted) = within("connect", tether_tokio::connect(&server.url, &options))
        .await
        .unwrap();
    let answer = accepted.extensions()[0].to_string();
    for param in [
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits=10",
    ] {
        assert!(answer.contains(param), "{answer}");
    }
    let big = Message::text("compress me ".repeat(10_000));
    within("send", ws.send(big.clone())).await.unwrap();
    assert!(next(&mut ws).await == big);
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
}

#[tokio::test]
async fn connect_heartbeat_sends_its_message_when_idle() {
    let (listener, url) = listener().await;
    let mut client = tether(&[
        "connect",
        "--heartbeat",
        "0.2",
        "--heartbeat-message",
        "{\"op\":\"ping\"}",
        &url,
    ])
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    let mut ws = accept(&listener).await;
    // stdin stays open and silent: only the heartbeat arrives
    assert_eq!(next(&mut ws).await, Message::text("{\"op\":\"ping\"}"));
    assert_eq!(next(&mut ws).await, Message::text("{\"op\":\"ping\"}"));
    drop(client.stdin.take());
    // read on, so the client's Close is answered
    while within("the end", ws.next_event()).await.is_some() {}
    let status = within("connect to exit", client.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn connect_jsonl_prints_one_json_object_per_event() {
    let (listener, url) = listener().await;
    let client = tether(&["connect", "--jsonl", "--hex", &url])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ws = accept(&listener).await;
    ws.send(Message::text("a \"quoted\" line")).await.unwrap();
    ws.send(Message::binary(vec![0xde, 0xad])).await.unwrap();
    ws.ping(bytes::Bytes::from_static(b"hi")).await.unwrap();
    ws.close(CloseCode::new(4000), "bye").await.unwrap();
    let out = within("connect to exit", client.wait_with_output())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["connected", "message", "message", "ping", "closed"],
        "{}",
        describe(&out)
    );
    assert_eq!(events[1]["text"], "a \"quoted\" line");
    assert_eq!(events[2]["hex"], "dead");
    assert_eq!(events[3]["payload"], "hi");
    assert_eq!(events[4]["code"], 4000);
    assert_eq!(events[4]["reason"], "bye");
    assert_eq!(events[4]["was_clean"], true);
}

#[tokio::test]
async fn completions_and_manual_come_from_the_same_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let out = within("completions", tether(&["completions", shell]).output())
            .await
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        let script = text(&out.stdout);
        for flag in ["max-connections", "jsonl", "tls-self-signed"] {
            assert!(script.contains(flag), "{shell}: no {flag}");
        }
    }
    let out = within("man", tether(&["man"]).output()).await.unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH tether"),
        "{page:.200}"
    );
    assert!(page.contains("serve") && page.contains("connect"));
}

/// The broker story: a server that drops clients for unsolicited Pongs.
/// With -v the user sees their own keep-alive go out before the drop.
#[tokio::test]
async fn connect_verbose_shows_our_own_keepalive_frames() {
    let (listener, url) = listener().await;
    let client = tether(&[
        "connect",
        "-v",
        "--keepalive",
        "pong",
        "--interval",
        "0.2",
        &url,
    ])
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    let mut ws = accept(&listener).await;
    // the server sees the unsolicited Pong, and drops the client for it
    loop {
        match within("the keep-alive Pong", ws.next_event()).await {
            Some(Event::Pong(_)) => break,
            Some(_) => {}
            None => panic!("ended first"),
        }
    }
    ws.close(CloseCode::POLICY_VIOLATION, "unsolicited pong")
        .await
        .unwrap();
    let out = within("connect to exit", client.wait_with_output())
        .await
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(stderr.contains("sent of our own accord"), "{stderr}");
    assert!(stderr.contains("KeepAlivePong"), "{stderr}");
    assert!(stderr.contains("1008"), "{stderr}");
}

/// A stdin line longer than `--max-message` is reported and not sent, and
/// never held whole (a line without end, `< /dev/zero`, grew the client's
/// memory until it was killed); the lines around it go out, and the exit
/// status says a line was not sent.
#[tokio::test]
async fn connect_skips_a_line_over_the_message_limit() {
    let (listener, url) = listener().await;
    let mut client = tether(&["connect", "--max-message", "16", &url])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let mut input = b"short\n".to_vec();
    input.extend(vec![b'x'; 100_000]);
    input.extend(b"\nafter\n");
    // more than a pipe holds: written while the client connects
    let writer = tokio::spawn(async move {
        stdin.write_all(&input).await.unwrap();
    });
    let mut ws = accept(&listener).await;
    assert_eq!(next(&mut ws).await, Message::text("short"));
    assert_eq!(next(&mut ws).await, Message::text("after"));
    assert!(within("the close", ws.next()).await.is_none());
    let output = within("connect to exit", client.wait_with_output())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr)
            .contains("line 2 of stdin is 100000 bytes, over the 16-byte message limit"),
        "{}",
        describe(&output)
    );
    writer.await.unwrap();
}

/// An HTTP/2 connection (prior knowledge) that opens no WebSocket holds
/// its `--max-connections` slot only as an unfinished handshake: a real
/// client gets in by displacing it. Its handshake ended with HTTP/2's own,
/// so prefaces alone took every slot for good and every later client got
/// a 503.
#[tokio::test]
async fn serve_http2_connections_without_a_websocket_give_way_at_max_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(&[
        "--http2",
        "--max-connections",
        "1",
        "--handshake-timeout",
        "60",
    ])
    .await;
    let addr = server.addr();
    // the preface and an empty SETTINGS, then nothing
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    idle.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ws = connect(&server.url).await;
    ws.send(Message::text("in")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("in"));
    // the idle one was closed to make room
    let mut buf = vec![0u8; 4096];
    let closed = within("the idle HTTP/2 connection closed", async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    let () = closed;
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

/// A second Ctrl-C ends `connect` with 130 even while it is blocked
/// writing to a stdout nobody drains (a pipe to a reader that stopped, a
/// paused terminal): the session could not look at the signals, and only
/// SIGKILL ended it.
#[cfg(unix)]
#[tokio::test]
async fn connect_exits_on_a_second_interrupt_while_stdout_is_stalled() {
    let (listener, url) = listener().await;
    let mut client = tether(&["connect", &url])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = client.stdin.take().unwrap();
    // its stdout is piped and never read
    let _stdout = client.stdout.take().unwrap();
    let mut ws = accept(&listener).await;
    // more than a pipe holds: the client blocks writing it out
    let line = "x".repeat(1023);
    for _ in 0..2048 {
        if ws.send(Message::text(line.clone())).await.is_err() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = client.id().unwrap().to_string();
    for _ in 0..2 {
        interrupt(&pid);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = within("connect to exit", client.wait()).await.unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    drop(stdin);
    drop(ws);
}

/// An HTTP/2 client past `--max-connections` gets its 503 in HTTP/2 (a
/// response on its extended CONNECT, then GOAWAY), so it can say the
/// server is busy: the HTTP/1.1 503 it got read as a broken frame.
#[tokio::test]
async fn serve_http2_refuses_past_max_connections_with_an_http2_503() {
    let server = Server::start(&["--http2", "--max-connections", "1"]).await;
    let mut first = connect(&server.url).await;
    first.send(Message::text("in")).await.unwrap();
    assert_eq!(next(&mut first).await, Message::text("in"));
    let output = within(
        "connect --http2 to exit",
        tether(&["connect", "--http2", &server.url])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .unwrap();
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("503") && stderr.contains("try again later"),
        "{}",
        describe(&output)
    );
    first.close(CloseCode::NORMAL, "").await.unwrap();
}

/// Each WebSocket on an HTTP/2 connection counts against
/// `--max-connections`, as a TCP connection does: the connection's first
/// holds its slot, each other one a slot of its own, and one past the
/// limit gets 503 on its stream while the others go on. They counted once
/// per connection, so one client could hold `transport_max_streams` (100)
/// times the per-connection bound in one slot.
#[tokio::test]
async fn serve_http2_counts_each_websocket_against_max_connections() {
    use tether_tokio::http2::Http2Client;
    let server = Server::start(&["--http2", "--max-connections", "2"]).await;
    let options = tether_tokio::ClientOptions::new();
    let client = within("HTTP/2", Http2Client::connect(&server.url, &options))
        .await
        .unwrap();
    let (mut first, _) = within("first", client.open(&server.url, &options))
        .await
        .unwrap();
    let (mut second, _) = within("second", client.open(&server.url, &options))
        .await
        .unwrap();
    let third = within("third", client.open(&server.url, &options)).await;
    let refused = third.map(|_| ()).unwrap_err().to_string();
    assert!(refused.contains("503"), "{refused}");
    for ws in [&mut first, &mut second] {
        ws.send(Message::text("still")).await.unwrap();
        assert_eq!(next(ws).await, Message::text("still"));
    }
    // once the second ends, its slot is free for another (the first's is
    // the connection's, held as long as the connection lasts)
    second.close(CloseCode::NORMAL, "").await.unwrap();
    drop(second);
    let mut opened = None;
    for _ in 0..50 {
        if let Ok((ws, _)) = within("again", client.open(&server.url, &options)).await {
            opened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut again = opened.expect("no slot after one WebSocket ended");
    for ws in [&mut first, &mut again] {
        ws.send(Message::text("back")).await.unwrap();
        assert_eq!(next(ws).await, Message::text("back"));
    }
}

/// A stderr nobody reads (a pipe that fills up) never holds a session: with
/// `-v`, a Ping flood logs far more than a pipe holds, and a message after
/// it still reaches stdout; the logs past what stderr takes are dropped
/// and counted, not waited for. (The session blocked writing its log,
/// holding the connection with it.)
#[tokio::test]
async fn connect_verbose_goes_on_while_stderr_is_stalled() {
    let (listener, url) = listener().await;
    let mut client = tether(&["-v", "connect", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = client.stdin.take().unwrap();
    // stderr is piped and never read while the session runs
    let stderr = client.stderr.take().unwrap();
    let mut stdout = BufReader::new(client.stdout.take().unwrap()).lines();
    let mut ws = accept(&listener).await;
    let server = tokio::spawn(async move {
        let payload = bytes::Bytes::from(vec![b'p'; 100]);
        // thousands of log lines of over 100 bytes: several pipes' worth
        for _ in 0..3000 {
            if ws.ping(payload.clone()).await.is_err() {
                break;
            }
        }
        ws.send(Message::text("after the flood")).await.unwrap();
        ws
    });
    let line = within("the message after the flood", stdout.next_line())
        .await
        .unwrap();
    assert_eq!(line.as_deref(), Some("after the flood"));
    let mut ws = server.await.unwrap();
    drop(stdin);
    let info = client_closed(&mut ws).await;
    assert_eq!(info.code, CloseCode::NORMAL, "{info}");
    // it exits (giving up on the queued lines stderr does not take)
    let status = within("connect to exit", client.wait()).await.unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    drop(stderr);
}

/// `--jsonl` output that cannot be written (a full disk) fails the command
/// and ends the session, every line of it, not only messages: the first,
/// `connected`, into /dev/full was ignored, and the session then went on
/// without output until the server closed, and exited 0.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn connect_jsonl_fails_when_stdout_cannot_be_written() {
    let (listener, url) = listener().await;
    let client = tether(&["connect", "--jsonl", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::from(std::fs::File::create("/dev/full").unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ws = accept(&listener).await;
    // the client leaves on its own, its stdout gone
    let closed = client_closed(&mut ws).await;
    assert!(closed.was_clean, "{closed}");
    let output = within("connect to exit", client.wait_with_output())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("cannot write to stdout"),
        "{}",
        describe(&output)
    );
}
