//! A real browser against our servers: headless Chromium loads a page
//! served by the test, the page opens a WebSocket to our server (tokio or
//! std adapter) and echoes what the server sends (text and binary, up to
//! 1 MiB), the server checks each echo byte for byte and closes with 4000,
//! and the page reports the `CloseEvent` (`code`, `wasClean`, `reason`) and
//! the extensions it agreed over a second WebSocket to the same server.
//! Each adapter runs it twice: with permessage-deflate off (Chromium's
//! offer declined) and on (RFC 7692, Chromium compressing every message).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tether::{CloseCode, CloseInfo, Event, Message};
use tether_interop::{Browser, SCENARIO, field, run_tokio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The limit on the browser's whole part: load, echo, close, report.
const BROWSER: Duration = Duration::from_secs(20);

const CLOSE_REASON: &str = "bye from tether";

/// What the page gets: text and binary across the length encodings.
fn messages() -> Vec<Message> {
    let binary =
        |len: usize| Message::binary((0..len).map(|i| (i * 31 + 7) as u8).collect::<Vec<_>>());
    vec![
        Message::text("Hello"),
        Message::text("héllo wörld € 中 😀"),
        Message::text(""),
        Message::text("x".repeat(70_000)),
        binary(0),
        binary(3),
        binary(125),
        binary(126),
        binary(65_536),
        binary(1 << 20),
        Message::text("é".repeat(300_000)),
    ]
}

/// The page: echoes every message, then reports how the socket closed.
fn page(ws_port: u16) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>tether interop</title></head>
<body><pre id="log">loading</pre>
<script>
const base = "ws://127.0.0.1:{ws_port}";
const log = (line) => {{ document.getElementById("log").textContent += "\n" + line; }};
function report(line) {{
  log(line);
  const r = new WebSocket(base + "/report");
  r.onopen = () => r.send(line);
}}
let echoed = 0;
const ws = new WebSocket(base + "/echo");
ws.binaryType = "arraybuffer";
ws.onopen = () => log("open");
ws.onmessage = (e) => {{ ws.send(e.data); echoed++; }};
ws.onerror = () => log("error");
ws.onclose = (e) =>
  report(`closed code=${{e.code}} clean=${{e.wasClean}} echoed=${{echoed}} ext=${{ws.extensions.replace(/ /g, "") || "none"}} reason=${{e.reason}}`);
</script></body></html>
"#
    )
}

/// A tiny HTTP/1.1 responder: `GET /page.html` gets `body`, anything else 404.
async fn serve_page(listener: TcpListener, body: String) {
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else {
            return;
        };
        let body = body.clone();
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut chunk = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                }
            }
            let found = head.starts_with(b"GET /page.html ");
            let (status, body) = if found {
                ("200 OK", body)
            } else {
                ("404 Not Found", String::new())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tcp.write_all(response.as_bytes()).await;
            let _ = tcp.shutdown().await;
        });
    }
}

/// What the server side saw.
#[derive(Debug)]
enum Seen {
    /// The echo connection ended: how, or what went wrong.
    Echo(Result<CloseInfo, String>),
    /// The page's report.
    Report(String),
}

/// Checks an echo, as a failure message.
fn check_echo(i: usize, sent: &Message, back: Option<Event>) -> Result<(), String> {
    match back {
        Some(Event::Message(back)) if back == *sent => Ok(()),
        Some(Event::Message(back)) => Err(format!(
            "message {i}: sent {:?} of {} bytes, got {:?} of {} bytes",
            sent.kind(),
            sent.as_bytes().len(),
            back.kind(),
            back.as_bytes().len()
        )),
        other => Err(format!("message {i}: expected the echo, got {other:?}")),
    }
}

/// The tokio server: `/echo` sends [`messages`], checks the echoes, closes
/// with 4000; `/report` forwards the page's one message.
async fn tokio_server(
    listener: TcpListener,
    seen: mpsc::UnboundedSender<Seen>,
    options: tether_tokio::ServerOptions,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
        let options = options.clone();
        tokio::spawn(async move {
            let (mut ws, request) = match tether_tokio::accept(tcp, &options).await {
                Ok(ok) => ok,
                Err(e) => return drop(seen.send(Seen::Echo(Err(format!("accept: {e}"))))),
            };
            if request.path() == "/report" {
                if let Some(Event::Message(m)) = ws.next_event().await {
                    let text = m.as_text().unwrap_or("<binary>").to_owned();
                    let _ = seen.send(Seen::Report(text));
                }
                let _ = ws.close(CloseCode::NORMAL, "").await;
                return;
            }
            let result = async {
                for (i, message) in messages().into_iter().enumerate() {
                    ws.send(message.clone()).await.map_err(|e| e.to_string())?;
                    check_echo(i, &message, ws.next_event().await)?;
                }
                ws.close(CloseCode::new(4000), CLOSE_REASON)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            let _ = seen.send(Seen::Echo(result));
        });
    }
}

/// The std server, the same on a thread per connection.
fn std_server(
    listener: std::net::TcpListener,
    seen: mpsc::UnboundedSender<Seen>,
    options: tether_std::ServerOptions,
) {
    for tcp in listener.incoming() {
        let Ok(tcp) = tcp else { return };
        let seen = seen.clone();
        let options = options.clone();
        std::thread::spawn(move || {
            let mut path = String::new();
            let accepted = tether_std::accept_with(tcp, &options, |r| {
                path = r.path().to_owned();
                Ok(tether::handshake::AcceptOptions::new())
            });
            let mut ws = match accepted {
                Ok((ws, _request)) => ws,
                Err(e) => return drop(seen.send(Seen::Echo(Err(format!("accept: {e}"))))),
            };
            if path == "/report" {
                if let Ok(m) = ws.read() {
                    let text = m.as_text().unwrap_or("<binary>").to_owned();
                    let _ = seen.send(Seen::Report(text));
                }
                let _ = ws.close(CloseCode::NORMAL, "");
                return;
            }
            let result = (|| {
                for (i, message) in messages().into_iter().enumerate() {
                    ws.send(message.clone()).map_err(|e| e.to_string())?;
                    check_echo(i, &message, ws.read_event().ok())?;
                }
                ws.close(CloseCode::new(4000), CLOSE_REASON)
                    .map_err(|e| e.to_string())
            })();
            let _ = seen.send(Seen::Echo(result));
        });
    }
}

/// Opens the page in Chromium and checks both sides' view of the end, and
/// that the page agreed permessage-deflate exactly when `deflate`.
async fn browse(ws_port: u16, mut seen: mpsc::UnboundedReceiver<Seen>, deflate: bool) {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_port = http.local_addr().unwrap().port();
    tokio::spawn(serve_page(http, page(ws_port)));
    let browser = Browser::open(&format!("http://127.0.0.1:{http_port}/page.html"));
    let (mut echo, mut report) = (None, None);
    let waited = tokio::time::timeout(BROWSER, async {
        while echo.is_none() || report.is_none() {
            match seen.recv().await {
                Some(Seen::Echo(result)) => echo = Some(result),
                Some(Seen::Report(line)) => report = Some(line),
                None => break,
            }
        }
    })
    .await;
    if waited.is_err() {
        panic!(
            "no result from the browser within {BROWSER:?} (echo: {echo:?}, report: {report:?})\n\
             --- chromium ---\n{}",
            browser.transcript()
        );
    }
    drop(browser);
    let info = echo.unwrap().unwrap();
    assert!(info.was_clean, "{info}");
    assert_eq!(info.code, CloseCode::new(4000), "{info}");
    let report = report.unwrap();
    assert!(report.starts_with("closed "), "{report}");
    assert_eq!(field(&report, "code"), "4000", "{report}");
    assert_eq!(field(&report, "clean"), "true", "{report}");
    assert_eq!(field(&report, "reason"), CLOSE_REASON, "{report}");
    assert_eq!(
        field(&report, "echoed"),
        messages().len().to_string(),
        "{report}"
    );
    let ext = field(&report, "ext");
    if deflate {
        assert!(ext.starts_with("permessage-deflate"), "{report}");
    } else {
        assert_eq!(ext, "none", "{report}");
    }
}

/// The servers' options: permessage-deflate with its defaults, or off.
fn deflate_config(deflate: bool) -> tether::Config {
    tether::Config {
        deflate: deflate.then(tether::DeflateConfig::default),
        ..tether::Config::default()
    }
}

fn tokio_scenario(deflate: bool) {
    run_tokio(SCENARIO, async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let options = tether_tokio::ServerOptions::new().config(deflate_config(deflate));
        tokio::spawn(tokio_server(listener, tx, options));
        browse(port, rx, deflate).await;
    });
}

fn std_scenario(deflate: bool) {
    run_tokio(SCENARIO, async move {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let options = tether_std::ServerOptions::new().config(deflate_config(deflate));
        // The accept loop thread ends with the test process.
        std::thread::spawn(move || std_server(listener, tx, options));
        browse(port, rx, deflate).await;
    });
}

#[test]
fn chromium_echoes_and_sees_4000_clean_tokio() {
    tokio_scenario(false);
}

#[test]
fn chromium_echoes_and_sees_4000_clean_std() {
    std_scenario(false);
}

/// RFC 7692 with a browser: Chromium offers permessage-deflate (with
/// `client_max_window_bits`), our server accepts, and every message goes
/// both ways compressed, the 1 MiB binary and 600 KB text among them.
#[test]
fn rfc7692_chromium_echoes_compressed_and_sees_4000_clean_tokio() {
    tokio_scenario(true);
}

#[test]
fn rfc7692_chromium_echoes_compressed_and_sees_4000_clean_std() {
    std_scenario(true);
}
