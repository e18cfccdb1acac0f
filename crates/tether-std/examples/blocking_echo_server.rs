//! An echo server: every message comes back as it was sent.
//!
//! ```text
//! cargo run -p tether-std --example blocking_echo_server -- 127.0.0.1:9001
//! cargo run -p tether-std --example blocking_client -- ws://127.0.0.1:9001/ hello
//! ```
//!
//! One thread per connection. The subprotocol `echo` is accepted when a
//! client offers it; a request for any path other than `/` is refused.

use std::net::TcpListener;
use std::time::Duration;

use tether_std::{AcceptOptions, Error, Refusal, ServerOptions, accept_with};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr)?;
    println!("echo server on ws://{}/", listener.local_addr()?);
    let options = ServerOptions::new().handshake_timeout(Duration::from_secs(5));
    for stream in listener.incoming() {
        let stream = stream?;
        let peer = stream.peer_addr()?;
        let options = options.clone();
        std::thread::spawn(move || {
            let accepted = accept_with(stream, &options, |request| {
                if request.path() != "/" {
                    return Err(Refusal::new(404, "only / is served here")
                        .unwrap_or_else(|_| Refusal::bad_request("only / is served here")));
                }
                let mut answer = AcceptOptions::new();
                if let Some(p) = request.pick_subprotocol(&["echo"]) {
                    answer = answer.subprotocol(p);
                }
                Ok(answer)
            });
            let mut ws = match accepted {
                Ok((ws, _request)) => ws,
                Err(e) => return eprintln!("{peer}: {e}"),
            };
            loop {
                match ws.read() {
                    Ok(message) => {
                        if let Err(e) = ws.send(message) {
                            return eprintln!("{peer}: {e}");
                        }
                    }
                    // The closing handshake is already complete here.
                    Err(Error::Closed(info)) => return println!("{peer}: {info}"),
                    Err(e) => return eprintln!("{peer}: {e}"),
                }
            }
        });
    }
    Ok(())
}
