//! The application's handles: [`WebSocket`], and its halves [`WsSink`] and
//! [`WsStream`] from [`WebSocket::split`].
//!
//! Handles only talk to the connection's driver task through bounded
//! channels; they hold no protocol state. Receiving is cancel-safe: a
//! `next()` dropped in `tokio::select!` loses nothing, the message stays
//! queued for the next call.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tether::{CloseCode, CloseInfo, Event, Message, MessageKind, State};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::PollSender;

use crate::Error;
use crate::driver::{Command, Control, Item, Shared};

/// The sending half: a [`Sink`] of [`Message`]s, plus control operations.
///
/// `poll_ready` waits while the connection's output queue is over
/// `Config::max_queued_output` (backpressure); `poll_flush` waits until
/// everything sent so far is written to the transport; `poll_close`
/// closes with 1000 and waits for the closing handshake to finish.
#[derive(Debug)]
pub struct WsSink {
    tx: PollSender<Command>,
    control: mpsc::UnboundedSender<Control>,
    shared: Arc<Shared>,
    flush: Option<oneshot::Receiver<()>>,
    closing: Option<oneshot::Receiver<CloseInfo>>,
    /// `poll_close` completed.
    closed: bool,
}

/// The receiving half: a [`Stream`] of [`Message`]s.
///
/// The stream ends (`None`) when the connection ends; an end without a
/// clean closing handshake first yields `Err(Error::Closed(info))`. Use
/// [`WsStream::next_event`] to see Pings, Pongs and the final close too.
#[derive(Debug)]
pub struct WsStream {
    rx: mpsc::Receiver<Item>,
    control: mpsc::UnboundedSender<Control>,
    shared: Arc<Shared>,
    ended: bool,
}

/// A WebSocket connection driven by its own task. A [`Stream`] of received
/// messages and a [`Sink`] of messages to send; [`WebSocket::split`] gives
/// halves that can live on different tasks.
#[derive(Debug)]
pub struct WebSocket {
    sink: WsSink,
    stream: WsStream,
}

impl WebSocket {
    pub(crate) fn new(
        tx: mpsc::Sender<Command>,
        control: mpsc::UnboundedSender<Control>,
        rx: mpsc::Receiver<Item>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            sink: WsSink {
                tx: PollSender::new(tx),
                control: control.clone(),
                shared: shared.clone(),
                flush: None,
                closing: None,
                closed: false,
            },
            stream: WsStream {
                rx,
                control,
                shared,
                ended: false,
            },
        }
    }

    /// Ends the connection at once, without a closing handshake (final close
    /// 1006, `was_clean: false`): for a peer that stopped reading, whose
    /// queued output would hold a `close` back. Does not wait.
    pub fn abort(&self) {
        self.sink.abort();
    }

    /// Splits into a sending and a receiving half.
    pub fn split(self) -> (WsSink, WsStream) {
        (self.sink, self.stream)
    }

    /// The connection's state as last published by its driver.
    pub fn state(&self) -> State {
        self.sink.state()
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.sink.close_info()
    }

    /// The next event (message, Ping, Pong or the final close). Cancel-safe.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.stream.next_event().await
    }

    /// Sends a message, waiting while the output queue is full.
    ///
    /// # Errors
    /// [`Error::Closed`] once the connection has ended, or the core's
    /// refusal of the previous operation.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.sink.send(message).await
    }

    /// Sends one fragment of a message (see `tether::Connection::send_fragment`).
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> Result<(), Error> {
        self.sink.send_fragment(kind, data, fin).await
    }

    /// Sends a Ping.
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    pub async fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
        self.sink.ping(payload).await
    }

    /// Sends a Pong (an unsolicited heartbeat, or an answer with auto-pong off).
    ///
    /// # Errors
    /// As [`WebSocket::send`].
    pub async fn pong(&mut self, payload: Bytes) -> Result<(), Error> {
        self.sink.pong(payload).await
    }

    /// Closes with `code` and `reason` and waits until the connection has
    /// ended (the peer answered, the close timeout passed, or the transport
    /// failed). Messages that arrive meanwhile stay readable.
    ///
    /// # Errors
    /// The core's refusal (e.g. a code that may not be sent).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, Error> {
        self.sink.close(code, reason).await
    }
}

impl WsSink {
    /// Ends the connection at once; see [`WebSocket::abort`].
    pub fn abort(&self) {
        let _ = self
            .control
            .send(Control::Abort("aborted by the application".into()));
    }

    /// The connection's state as last published by its driver.
    pub fn state(&self) -> State {
        self.shared.state()
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.shared.close_info()
    }

    fn check(&self) -> Result<(), Error> {
        if let Some(e) = self.shared.take_refused() {
            return Err(Error::Protocol(e));
        }
        let state = self.shared.state();
        if matches!(state, State::Open | State::CloseReceived) {
            Ok(())
        } else {
            Err(Error::Protocol(tether::Error::InvalidState {
                operation: "send",
                state,
                valid: &[State::Open, State::CloseReceived],
                cause: self.shared.close_info(),
            }))
        }
    }

    async fn command(&mut self, command: Command) -> Result<(), Error> {
        self.check()?;
        std::future::poll_fn(|cx| self.tx.poll_reserve(cx))
            .await
            .map_err(|_| Error::Closed(self.shared.close_info()))?;
        self.tx
            .send_item(command)
            .map_err(|_| Error::Closed(self.shared.close_info()))
    }

    /// Sends a message, waiting while the output queue is full.
    ///
    /// # Errors
    /// See [`WebSocket::send`].
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.command(Command::Send(message)).await
    }

    /// Sends one fragment of a message.
    ///
    /// # Errors
    /// See [`WebSocket::send`].
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> Result<(), Error> {
        self.command(Command::Fragment(kind, data, fin)).await
    }

    /// Sends a Ping.
    ///
    /// # Errors
    /// See [`WebSocket::send`].
    pub async fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
        self.command(Command::Ping(payload)).await
    }

    /// Sends a Pong.
    ///
    /// # Errors
    /// See [`WebSocket::send`].
    pub async fn pong(&mut self, payload: Bytes) -> Result<(), Error> {
        self.command(Command::Pong(payload)).await
    }

    /// Waits until everything sent so far is written to the transport.
    ///
    /// # Errors
    /// [`Error::Closed`] when the connection ended first.
    pub async fn flush(&mut self) -> Result<(), Error> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    /// Closes and waits for the end; see [`WebSocket::close`].
    ///
    /// # Errors
    /// The core's refusal (e.g. a code that may not be sent).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, Error> {
        if !code.is_valid_on_wire() {
            return Err(Error::Protocol(
                tether::InvalidInput::CloseCode(code).into(),
            ));
        }
        if reason.len() > tether::MAX_CLOSE_REASON {
            return Err(Error::Protocol(
                tether::InvalidInput::CloseReasonTooLong(reason.len()).into(),
            ));
        }
        let (done, wait) = oneshot::channel();
        let sent = async {
            std::future::poll_fn(|cx| self.tx.poll_reserve(cx))
                .await
                .ok()?;
            self.tx
                .send_item(Command::Close(code, reason.into(), Some(done)))
                .ok()
        }
        .await;
        if sent.is_none() {
            return self.shared.close_info().ok_or(Error::Closed(None));
        }
        match wait.await {
            Ok(info) => Ok(info),
            Err(_) => self.shared.close_info().ok_or(Error::Closed(None)),
        }
    }
}

impl Sink<Message> for WsSink {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.check()?;
        let shared = self.shared.clone();
        ready!(self.tx.poll_reserve(cx)).map_err(|_| Error::Closed(shared.close_info()))?;
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        let shared = self.shared.clone();
        self.tx
            .send_item(Command::Send(item))
            .map_err(|_| Error::Closed(shared.close_info()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.flush.is_none() {
            let shared = self.shared.clone();
            if ready!(self.tx.poll_reserve(cx)).is_err() {
                return Poll::Ready(Err(Error::Closed(shared.close_info())));
            }
            let (done, wait) = oneshot::channel();
            if self.tx.send_item(Command::Flush(done)).is_err() {
                return Poll::Ready(Err(Error::Closed(shared.close_info())));
            }
            self.flush = Some(wait);
        }
        let Some(wait) = self.flush.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let result = ready!(Pin::new(wait).poll(cx));
        self.flush = None;
        match result {
            Ok(()) => match self.shared.take_refused() {
                Some(e) => Poll::Ready(Err(Error::Protocol(e))),
                None => Poll::Ready(Ok(())),
            },
            Err(_) => Poll::Ready(Err(Error::Closed(self.shared.close_info()))),
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.closed {
            return Poll::Ready(Ok(()));
        }
        if self.closing.is_none() {
            if ready!(self.tx.poll_reserve(cx)).is_err() {
                return Poll::Ready(Ok(())); // already ended
            }
            let (done, wait) = oneshot::channel();
            let _ = self
                .tx
                .send_item(Command::Close(CloseCode::NORMAL, String::new(), Some(done)));
            self.closing = Some(wait);
        }
        let Some(wait) = self.closing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let _ = ready!(Pin::new(wait).poll(cx));
        // done: later calls return at once (a finished oneshot must not be
        // polled again) and send no second Close
        self.closing = None;
        self.closed = true;
        Poll::Ready(Ok(()))
    }
}

use std::future::Future;

impl WsStream {
    /// The connection's state as last published by its driver.
    pub fn state(&self) -> State {
        self.shared.state()
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.shared.close_info()
    }

    /// The next event: a message, a Ping or Pong (already answered when
    /// auto-pong is on; may be dropped when the application lags, since
    /// they need no action), or the final [`Event::Closed`]. `None` after
    /// the end. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            match ready!(self.rx.poll_recv(cx)) {
                Some(Item::Event(e)) => return Poll::Ready(Some(e)),
                // everything before the peer's Close has been read: answer it
                Some(Item::PeerClosed) => {
                    let _ = self.control.send(Control::ReplyClose);
                }
                None => return Poll::Ready(None),
            }
        }
    }

    /// The next message. Cancel-safe. See the [`Stream`] impl.
    pub async fn next_message(&mut self) -> Option<Result<Message, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for WsStream {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        loop {
            match ready!(self.poll_event(cx)) {
                Some(Event::Message(m)) => return Poll::Ready(Some(Ok(m))),
                Some(Event::Ping(_) | Event::Pong(_)) => {}
                Some(Event::Closed(info)) => {
                    self.ended = true;
                    if info.was_clean {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(Error::Closed(Some(info)))));
                }
                None => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl Stream for WebSocket {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.stream).poll_next(cx)
    }
}

impl Sink<Message> for WebSocket {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        Pin::new(&mut self.sink).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.sink).poll_close(cx)
    }
}
