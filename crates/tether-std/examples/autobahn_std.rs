//! The Autobahn TestSuite's peer for the blocking adapter, both roles
//! (run by `conformance/autobahn.sh`; see `conformance/README.md`):
//!
//! ```text
//! cargo run --release -p tether-std --example autobahn_std -- server 127.0.0.1:9102
//! cargo run --release -p tether-std --example autobahn_std -- client ws://127.0.0.1:9001 tether-std
//! ```
//!
//! `server ADDR` echoes every message on every connection, one thread per
//! connection. `client URL AGENT` walks every case of a `wstest -m
//! fuzzingserver` at URL in one process (`/getCaseCount`, then
//! `/runCase?case=N&agent=AGENT` echoing each, then `/updateReports`).
//! permessage-deflate is offered and accepted with the default settings.

use std::net::TcpListener;

use tether_std::{ClientOptions, Error, ServerOptions, WebSocket, accept, connect};

/// Echoes every message until the connection ends (a failed send is
/// followed by the end, which `read` reports).
fn echo<S: tether_std::Transport>(ws: &mut WebSocket<S>) {
    while let Ok(message) = ws.read() {
        let _ = ws.send(message);
    }
}

fn server(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    eprintln!(
        "autobahn echo server (tether-std) on ws://{}",
        listener.local_addr()?
    );
    let options = ServerOptions::new().deflate(tether_std::DeflateConfig::default());
    for stream in listener.incoming() {
        let stream = stream?;
        let options = options.clone();
        std::thread::spawn(move || {
            if let Ok((mut ws, _)) = accept(stream, &options) {
                echo(&mut ws);
            }
        });
    }
    Ok(())
}

fn client(url: &str, agent: &str) -> Result<(), Error> {
    let url = url.trim_end_matches('/');
    let options = ClientOptions::new().deflate(tether_std::DeflateConfig::default());
    let (mut ws, _) = connect(&format!("{url}/getCaseCount"), &options)?;
    let said = ws.read()?;
    // one that is not a number must not pass as zero cases run
    let count: u32 = said
        .as_text()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            Error::Io(std::io::Error::other(format!(
                "the fuzzingserver's case count is not a number: {said:?}"
            )))
        })?;
    drop(ws);
    eprintln!("{agent}: {count} cases");
    for case in 1..=count {
        match connect(
            &format!("{url}/runCase?case={case}&agent={agent}"),
            &options,
        ) {
            Ok((mut ws, _)) => {
                echo(&mut ws);
            }
            Err(e) => eprintln!("{agent}: case {case}: {e}"),
        }
    }
    let (mut ws, _) = connect(&format!("{url}/updateReports?agent={agent}"), &options)?;
    while ws.read().is_ok() {}
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["server", addr] => server(addr).map_err(Error::from),
        ["client", url, agent] => client(url, agent),
        _ => {
            eprintln!("usage: autobahn_std server ADDR | autobahn_std client URL AGENT");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("autobahn_std: {e}");
        std::process::exit(1);
    }
}
