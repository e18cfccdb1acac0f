//! The Autobahn TestSuite's peers for the tokio adapter (run by
//! `conformance/autobahn.sh`; the server role of the default driver is
//! `tether serve --deflate`):
//!
//! ```text
//! cargo run --release -p tether-tokio --example autobahn_tokio -- ws://127.0.0.1:9001 tether-tokio [owner]
//! cargo run --release -p tether-tokio --example autobahn_tokio -- serve 127.0.0.1:9001 [owner]
//! ```
//!
//! As a client, walks every case of a `wstest -m fuzzingserver` at the URL
//! in one process (`/getCaseCount`, then `/runCase?case=N&agent=AGENT`
//! echoing each, then `/updateReports`), offering permessage-deflate with
//! the default settings. `serve` echoes every connection (for `wstest -m
//! fuzzingclient`), accepting permessage-deflate. `owner` runs every
//! connection with `Driver::Owner` (the task that holds it drives it) instead
//! of the default shared driver.

use tether::{Config, DeflateConfig, Event};
use tether_tokio::{ClientOptions, Driver, Error, ServerOptions, WebSocket};

async fn echo(ws: &mut WebSocket) {
    while let Some(event) = ws.next_event().await {
        match event {
            // a failed send means the connection ended: its Closed follows
            Event::Message(message) => drop(ws.send(message).await),
            Event::Closed(_) => return,
            _ => {}
        }
    }
}

fn config() -> Config {
    Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    }
}

async fn client(url: &str, agent: &str, driver: Driver) -> Result<(), Error> {
    let url = url.trim_end_matches('/');
    let options = ClientOptions::new().config(config()).driver(driver);
    let (mut ws, _) = tether_tokio::connect(&format!("{url}/getCaseCount"), &options).await?;
    let mut said = None;
    while let Some(event) = ws.next_event().await {
        if let Event::Message(m) = event {
            said = Some(m.as_text().unwrap_or_default().trim().to_owned());
        }
    }
    // no count, or one that is not a number, must not pass as zero cases run
    let count: u32 = said
        .as_deref()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Error::Io(std::io::Error::other(format!(
                "the fuzzingserver's case count is not a number: {said:?}"
            )))
        })?;
    eprintln!("{agent}: {count} cases");
    for case in 1..=count {
        let case_url = format!("{url}/runCase?case={case}&agent={agent}");
        match tether_tokio::connect(&case_url, &options).await {
            Ok((mut ws, _)) => echo(&mut ws).await,
            Err(e) => eprintln!("{agent}: case {case}: {e}"),
        }
    }
    let report_url = format!("{url}/updateReports?agent={agent}");
    let (mut ws, _) = tether_tokio::connect(&report_url, &options).await?;
    while ws.next_event().await.is_some() {}
    Ok(())
}

async fn serve(addr: &str, driver: Driver) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let options = std::sync::Arc::new(ServerOptions::new().config(config()).driver(driver));
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let options = options.clone();
        tokio::spawn(async move {
            if let Ok((mut ws, _)) = tether_tokio::accept(tcp, &options).await {
                echo(&mut ws).await;
            }
        });
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let driver = if args.last().is_some_and(|a| a == "owner") {
        args.pop();
        Driver::Owner
    } else {
        Driver::Shared
    };
    let done = match args.as_slice() {
        [serve_word, addr] if serve_word == "serve" => serve(addr, driver).await,
        [url, agent] => client(url, agent, driver).await,
        _ => {
            eprintln!(
                "usage: autobahn_tokio URL AGENT [owner] | autobahn_tokio serve ADDR [owner]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = done {
        eprintln!("autobahn_tokio: {e}");
        std::process::exit(1);
    }
}
