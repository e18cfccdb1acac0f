//! An echo server: `cargo run -p tether-tokio --example echo_server [ADDR]`.
//! Every message comes back as it came; each connection ends with its close
//! code and meaning printed.

use futures_util::StreamExt;
use tether_tokio::ServerOptions;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("echo server on ws://{addr}");
    loop {
        let (tcp, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let (mut ws, request) = match tether_tokio::accept(tcp, &ServerOptions::default()).await
            {
                Ok(ok) => ok,
                Err(e) => return eprintln!("{peer}: {e}"),
            };
            eprintln!("{peer}: connected to {}", request.path());
            while let Some(Ok(message)) = ws.next().await {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
            if let Some(info) = ws.close_info() {
                eprintln!("{peer}: {info}");
            }
        });
    }
}
