//! A WebSocket whose transport is another WebSocket's messages, both
//! driven on one thread: the inner connection's read polls the outer one,
//! whose own read happens inside it. The driver's per-thread read scratch
//! is then already taken by the inner read, and the outer read must fall
//! back to a buffer of its own (not panic, not lose bytes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use common::{listener, within};
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::StreamExt;
use tether::Message;
use tether_tokio::{ClientOptions, Driver, ServerOptions, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A byte stream carried in a WebSocket's binary messages.
struct Tunnel {
    ws: WebSocket,
    /// What the last message brought and the reader has not taken yet.
    pending: Bytes,
}

fn broken(e: tether_tokio::Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl AsyncRead for Tunnel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(message)) => self.pending = Bytes::copy_from_slice(message.as_bytes()),
                Some(Err(e)) => return Poll::Ready(Err(broken(e))),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(broken)?;
        Pin::new(&mut self.ws)
            .start_send(Message::binary(data.to_vec()))
            .map_err(broken)?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(broken)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(broken)
    }
}

/// Echoes every inner message back through the tunnel.
async fn run(driver: Driver) {
    let (tcp_listener, url) = listener().await;
    let server_options = ServerOptions::new().driver(driver);
    let client_options = ClientOptions::new().driver(driver);
    // the outer pair, over TCP
    let (outer_client, outer_server) = tokio::join!(
        async {
            tether_tokio::connect(&url, &client_options)
                .await
                .unwrap()
                .0
        },
        async {
            let (tcp, _) = tcp_listener.accept().await.unwrap();
            tether_tokio::accept(tcp, &server_options).await.unwrap().0
        }
    );
    let client_tunnel = Tunnel {
        ws: outer_client,
        pending: Bytes::new(),
    };
    let server_tunnel = Tunnel {
        ws: outer_server,
        pending: Bytes::new(),
    };
    // the inner pair, through the tunnel, on this same thread
    let (inner_client, inner_server) = tokio::join!(
        async {
            tether_tokio::client(client_tunnel, "ws://tunnel/", &client_options)
                .await
                .unwrap()
                .0
        },
        async {
            tether_tokio::accept(server_tunnel, &server_options)
                .await
                .unwrap()
                .0
        }
    );
    let echo = async move {
        let mut ws = inner_server;
        while let Some(Ok(message)) = ws.next().await {
            ws.send(message).await.unwrap();
        }
    };
    let talk = async move {
        let mut ws = inner_client;
        for i in 0..200u32 {
            let payload = i.to_be_bytes().repeat(1 + (i as usize % 7) * 100);
            ws.send(Message::binary(payload.clone())).await.unwrap();
            let back = ws.next().await.unwrap().unwrap();
            assert_eq!(back.as_bytes(), &payload[..], "message {i}");
        }
        ws.close(tether::CloseCode::NORMAL, "").await.unwrap()
    };
    let (info, ()) = within(async { tokio::join!(talk, echo) }).await;
    assert!(info.was_clean, "{info:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_tunnelled_through_another_on_one_thread_works() {
    run(Driver::Shared).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_tunnelled_through_another_owned_one_on_one_thread_works() {
    run(Driver::Owner).await;
}
