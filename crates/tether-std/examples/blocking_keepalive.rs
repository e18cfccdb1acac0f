//! Keep-alive with dead-peer detection: a Ping after each idle interval;
//! no Pong within the timeout ends the connection with 1006.
//!
//! ```text
//! cargo run -p tether-std --example blocking_echo_server
//! cargo run -p tether-std --example blocking_keepalive -- ws://127.0.0.1:9001/
//! ```
//!
//! The client only reads; the Pings go out and the Pongs come back while it
//! blocks in `read_event`. Stop the server (or pause it with Ctrl-Z) to see
//! the keep-alive timeout end the connection.

use std::time::Duration;

use tether_std::{ClientOptions, Config, Error, Event, KeepAlive, connect};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/".into());
    let config = Config {
        keep_alive: KeepAlive::Ping {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(3),
        },
        ..Config::default()
    };
    let (mut ws, _) = connect(&url, &ClientOptions::new().config(config))?;
    println!("connected to {url}; pinging after each 2 s of silence");
    loop {
        match ws.read_event()? {
            Event::Pong(payload) => println!("pong {payload:?}"),
            Event::Ping(payload) => println!("ping {payload:?} (answered)"),
            Event::Message(message) => println!("message of {} bytes", message.len()),
            Event::Closed(info) => {
                println!("{info}");
                return Ok(());
            }
        }
    }
}
