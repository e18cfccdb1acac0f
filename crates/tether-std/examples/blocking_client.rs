//! A client: sends each argument as a text message, prints the answers,
//! then closes.
//!
//! ```text
//! cargo run -p tether-std --example blocking_echo_server
//! cargo run -p tether-std --example blocking_client -- ws://127.0.0.1:9001/ hello world
//! cargo run -p tether-std --example blocking_client -- wss://echo.example.org/ hi
//! ```

use tether_std::{ClientOptions, CloseCode, Error, Message, connect};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001/".into());
    let words: Vec<String> = args.collect();

    let options = ClientOptions::new().subprotocol("echo");
    let (mut ws, accepted) = connect(&url, &options)?;
    println!(
        "connected to {url} (subprotocol: {})",
        accepted.subprotocol().unwrap_or("none")
    );
    for word in words {
        ws.send(Message::text(word))?;
        match ws.read()? {
            Message::Text(text) => println!("< {text}"),
            Message::Binary(data) => println!("< {} bytes", data.len()),
        }
    }
    // Sends our Close, waits for the server's, and closes the transport.
    let end = ws.close(CloseCode::NORMAL, "done")?;
    println!("{end}");
    Ok(())
}
