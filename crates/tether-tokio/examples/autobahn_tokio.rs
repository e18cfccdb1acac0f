//! The Autobahn TestSuite's client peer for the tokio adapter (run by
//! `conformance/autobahn.sh`; the server role is `tether serve --deflate`):
//!
//! ```text
//! cargo run --release -p tether-tokio --example autobahn_tokio -- ws://127.0.0.1:9001 tether-tokio
//! ```
//!
//! Walks every case of a `wstest -m fuzzingserver` at the URL in one
//! process (`/getCaseCount`, then `/runCase?case=N&agent=AGENT` echoing
//! each, then `/updateReports`), offering permessage-deflate with the
//! default settings.

use tether::{Config, DeflateConfig, Event};
use tether_tokio::{ClientOptions, Error, WebSocket};

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

async fn client(url: &str, agent: &str) -> Result<(), Error> {
    let url = url.trim_end_matches('/');
    let options = ClientOptions::new().config(Config {
        deflate: Some(DeflateConfig::default()),
        ..Config::default()
    });
    let (mut ws, _) = tether_tokio::connect(&format!("{url}/getCaseCount"), &options).await?;
    let mut count = 0u32;
    while let Some(event) = ws.next_event().await {
        if let Event::Message(m) = event {
            count = m.as_text().unwrap_or("0").trim().parse().unwrap_or(0);
        }
    }
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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, agent] = args.as_slice() else {
        eprintln!("usage: autobahn_tokio URL AGENT");
        std::process::exit(2);
    };
    if let Err(e) = client(url, agent).await {
        eprintln!("autobahn_tokio: {e}");
        std::process::exit(1);
    }
}
