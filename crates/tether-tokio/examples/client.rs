//! A client that sends a few messages and prints the answers:
//! `cargo run -p tether-tokio --example client [URL]`.

use futures_util::StreamExt;
use tether::{CloseCode, Message};
use tether_tokio::ClientOptions;

#[tokio::main]
async fn main() -> Result<(), tether_tokio::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/".into());
    let (mut ws, accepted) = tether_tokio::connect(&url, &ClientOptions::default()).await?;
    println!("connected (subprotocol: {:?})", accepted.subprotocol());
    for text in ["hello", "from", "tether"] {
        ws.send(Message::text(text)).await?;
        if let Some(answer) = ws.next().await {
            println!("< {:?}", answer?);
        }
    }
    let info = ws.close(CloseCode::NORMAL, "done").await?;
    println!("{info}");
    Ok(())
}
