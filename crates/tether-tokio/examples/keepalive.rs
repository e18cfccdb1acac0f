//! The three keep-alive modes:
//! `cargo run -p tether-tokio --example keepalive -- [off|pong|ping] [URL]`.
//!
//! - `off`: nothing is sent unless the application sends (the default).
//! - `pong`: an empty unsolicited Pong after every idle interval, a one-way
//!   heartbeat that keeps NATs and load balancers from cutting the line.
//! - `ping`: a Ping after every idle interval; no matching Pong within the
//!   timeout ends the connection with 1006 (dead-peer detection).

use std::time::Duration;

use tether::{Config, Event, KeepAlive};
use tether_tokio::ClientOptions;

#[tokio::main]
async fn main() -> Result<(), tether_tokio::Error> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "ping".into());
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001/".into());
    let keep_alive = match mode.as_str() {
        "off" => KeepAlive::Off,
        "pong" => KeepAlive::Pong {
            interval: Duration::from_secs(5),
        },
        _ => KeepAlive::Ping {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
        },
    };
    let options = ClientOptions::new().config(Config {
        keep_alive,
        ..Config::default()
    });
    let (mut ws, _) = tether_tokio::connect(&url, &options).await?;
    println!(
        "connected with keep-alive {keep_alive:?}; idle until the server closes or stops answering"
    );
    while let Some(event) = ws.next_event().await {
        match event {
            Event::Pong(p) => println!("< pong {p:?}"),
            Event::Ping(p) => println!("< ping {p:?}"),
            Event::Message(m) => println!("< {m:?}"),
            Event::Closed(info) => println!("{info}"),
        }
    }
    Ok(())
}
