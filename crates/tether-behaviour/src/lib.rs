//! One behaviour suite for both adapters.
//!
//! The same scenario runs against `tether-std` and `tether-tokio`, in the
//! client and the server role, facing a [`Peer`] that speaks raw frames over
//! real TCP on 127.0.0.1 (so it can misbehave: stay silent, vanish, break
//! the protocol). Each side writes what it observed into a log; a scenario's
//! [`Transcript`] is both logs, and the suite asserts that the two adapters
//! produce the same transcript, and that it is the expected one.
//!
//! [`Endpoint`] is the small common face of the two adapters' sockets; the
//! tokio one runs on its own multi-threaded runtime so its background task
//! keeps driving while the scenario's thread blocks, as an application's
//! would.

// A test harness: a failed setup or a bad frame is the test's failure.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tether::frame::{FrameDecoder, Limits};
use tether::{CloseCode, CloseInfo, Config, Event, Initiator, Message, OpCode, Role, State};

/// How long any single wait of the suite may take before it is a failure.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Which adapter runs the endpoint under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// `tether-std`, blocking.
    Std,
    /// `tether-tokio`, with its default driver (`Driver::Shared`).
    Tokio,
    /// `tether-tokio` with `Driver::Owner`: driven only while the
    /// application's calls poll it, as the blocking adapter is.
    TokioOwner,
}

impl Adapter {
    /// The tokio adapter's driver for this adapter.
    fn driver(self) -> tether_tokio::Driver {
        match self {
            Adapter::TokioOwner => tether_tokio::Driver::Owner,
            Adapter::Std | Adapter::Tokio => tether_tokio::Driver::Shared,
        }
    }
}

/// What both sides saw, in order, each side on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    /// What the application saw through the adapter.
    pub app: Vec<String>,
    /// What the scripted peer saw on the wire.
    pub peer: Vec<String>,
    /// The reasons of the ends the application saw (in `app`, as
    /// [`describe_close`] gave them), in order, numbers masked: compared
    /// between the adapters, not written out in each scenario (they carry
    /// the system's error text).
    pub reasons: Vec<String>,
}

std::thread_local! {
    /// The reasons [`describe_close`] saw on this thread, for
    /// [`take_reasons`].
    static REASONS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A reason's words, its numbers masked: how many bytes were queued, or
/// an OS error's number, depends on each adapter's buffers and calls, the
/// wording must not.
fn words_of(reason: &str) -> String {
    let mut words = String::with_capacity(reason.len());
    for c in reason.chars() {
        if !c.is_ascii_digit() {
            words.push(c);
        } else if !words.ends_with('#') {
            words.push('#');
        }
    }
    words
}

/// The reasons of the ends [`describe_close`] described on this thread
/// since the last call, numbers masked.
pub fn take_reasons() -> Vec<String> {
    REASONS.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

/// The common face of both adapters' sockets, blocking.
pub trait Endpoint: Send {
    /// Sends a text message; `Err` names the error's variant.
    fn send_text(&mut self, text: &str) -> Result<(), String>;
    /// The next event, `None` once the end was delivered.
    fn next_event(&mut self) -> Option<Event>;
    /// Closes and waits for the end; `Err` names the error's variant.
    fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, String>;
    /// Drops the socket (the application goes away without closing).
    fn drop_socket(&mut self);
    /// The connection's state.
    fn state(&self) -> State;
    /// Waits for the peer's next [`Peer::cue`] (each cue is taken once).
    ///
    /// # Panics
    /// When none comes within [`PATIENCE`].
    fn await_cue(&mut self);
    /// Takes a cue if the peer has given one not yet taken; never waits.
    fn cued(&mut self) -> bool;
}

/// Cues from the peer's script to the application's: a scenario whose next
/// step must wait until the peer has done something waits for a cue, never
/// a fixed time.
#[derive(Debug, Default)]
struct Cues {
    /// Given so far, and taken so far.
    counts: Mutex<(u32, u32)>,
    changed: Condvar,
}

impl Cues {
    fn give(&self) {
        let mut counts = self.counts.lock().expect("cues");
        counts.0 += 1;
        self.changed.notify_all();
    }

    fn take(&self) {
        let counts = self.counts.lock().expect("cues");
        let (mut counts, timeout) = self
            .changed
            .wait_timeout_while(counts, PATIENCE, |(given, taken)| given <= taken)
            .expect("cues");
        assert!(
            !timeout.timed_out(),
            "no cue from the peer within {PATIENCE:?}"
        );
        counts.1 += 1;
    }

    fn try_take(&self) -> bool {
        let mut counts = self.counts.lock().expect("cues");
        let given = counts.0 > counts.1;
        if given {
            counts.1 += 1;
        }
        given
    }
}

/// The application's view of an event, for a log.
pub fn describe_event(event: Option<&Event>) -> String {
    match event {
        None => "end".into(),
        Some(Event::Message(Message::Text(t))) => format!("text {}", t.as_str()),
        Some(Event::Message(Message::Binary(b))) => format!("binary {} bytes", b.len()),
        Some(Event::Ping(p)) => format!("ping {:?}", String::from_utf8_lossy(p)),
        Some(Event::Pong(p)) => format!("pong {:?}", String::from_utf8_lossy(p)),
        Some(Event::Closed(info)) => format!("closed {}", describe_close(info)),
    }
}

/// How a connection ended, for a log.
pub fn describe_close(info: &CloseInfo) -> String {
    let initiator = match info.initiator {
        Initiator::Application => "by the application",
        Initiator::Local => "by us",
        Initiator::Remote => "by the peer",
    };
    let clean = if info.was_clean { "clean" } else { "unclean" };
    REASONS.with(|r| r.borrow_mut().push(words_of(&info.reason)));
    format!("{} {clean} {initiator}", info.code.as_u16())
}

// ----- the adapters ---------------------------------------------------------

struct StdEndpoint {
    ws: Option<tether_std::WebSocket<TcpStream>>,
    cues: Arc<Cues>,
}

fn std_kind(e: &tether_std::Error) -> String {
    match e {
        tether_std::Error::Closed(_) => "Closed".into(),
        tether_std::Error::Misuse(_) => "Misuse".into(),
        tether_std::Error::Io(_) => "Io".into(),
        tether_std::Error::QueueFull(_) => "QueueFull".into(),
        other => format!("other: {other}"),
    }
}

impl Endpoint for StdEndpoint {
    fn send_text(&mut self, text: &str) -> Result<(), String> {
        let ws = self.ws.as_mut().ok_or("dropped")?;
        ws.send(Message::text(text.to_owned()))
            .map_err(|e| std_kind(&e))
    }

    fn next_event(&mut self) -> Option<Event> {
        let ws = self.ws.as_mut()?;
        loop {
            match ws.read_event() {
                Ok(event) => return Some(event),
                Err(tether_std::Error::Closed(_)) => return None,
                // the Closed event follows an I/O error
                Err(_) => {}
            }
        }
    }

    fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, String> {
        let ws = self.ws.as_mut().ok_or("dropped")?;
        ws.close(code, reason).map_err(|e| std_kind(&e))
    }

    fn drop_socket(&mut self) {
        self.ws = None;
    }

    fn state(&self) -> State {
        self.ws.as_ref().map_or(State::Closed, |ws| ws.state())
    }

    fn await_cue(&mut self) {
        self.cues.take();
    }

    fn cued(&mut self) -> bool {
        self.cues.try_take()
    }
}

struct TokioEndpoint {
    ws: Option<tether_tokio::WebSocket>,
    rt: tokio::runtime::Runtime,
    cues: Arc<Cues>,
}

fn tokio_kind(e: &tether_tokio::Error) -> String {
    match e {
        tether_tokio::Error::Closed(_) => "Closed".into(),
        tether_tokio::Error::Misuse(_) => "Misuse".into(),
        tether_tokio::Error::Io(_) => "Io".into(),
        tether_tokio::Error::QueueFull(_) => "QueueFull".into(),
        other => format!("other: {other}"),
    }
}

impl TokioEndpoint {
    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(async {
            match tokio::time::timeout(PATIENCE, f).await {
                Ok(out) => out,
                Err(_) => panic!("the tokio adapter did not answer within {PATIENCE:?}"),
            }
        })
    }
}

impl Endpoint for TokioEndpoint {
    fn send_text(&mut self, text: &str) -> Result<(), String> {
        let mut ws = self.ws.take().ok_or("dropped")?;
        let sent = self.block_on(ws.send(Message::text(text.to_owned())));
        self.ws = Some(ws);
        sent.map_err(|e| tokio_kind(&e))
    }

    fn next_event(&mut self) -> Option<Event> {
        let mut ws = self.ws.take()?;
        let event = self.block_on(ws.next_event());
        self.ws = Some(ws);
        event
    }

    fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, String> {
        let mut ws = self.ws.take().ok_or("dropped")?;
        let closed = self.block_on(ws.close(code, reason));
        self.ws = Some(ws);
        closed.map_err(|e| tokio_kind(&e))
    }

    fn drop_socket(&mut self) {
        let _guard = self.rt.enter();
        self.ws = None;
    }

    fn state(&self) -> State {
        self.ws.as_ref().map_or(State::Closed, |ws| ws.state())
    }

    fn await_cue(&mut self) {
        self.cues.take();
    }

    fn cued(&mut self) -> bool {
        self.cues.try_take()
    }
}

// ----- setting up -------------------------------------------------------------

/// An endpoint of `adapter` in `role` under `config`, connected to a fresh
/// [`Peer`] in the other role over loopback TCP, handshake done.
///
/// # Panics
/// When the handshake fails: the suite is about what comes after it.
pub fn pair(adapter: Adapter, role: Role, config: &Config) -> (Box<dyn Endpoint>, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    let url = format!("ws://{addr}/suite");
    let cues = Arc::new(Cues::default());
    let peer_cues = Arc::clone(&cues);
    let (endpoint, mut peer) = match role {
        Role::Client => {
            let peer = std::thread::spawn(move || Peer::accept(&listener));
            let endpoint: Box<dyn Endpoint> = match adapter {
                Adapter::Std => {
                    let tcp = TcpStream::connect(addr).expect("connect");
                    let options = tether_std::ClientOptions::new().config(config.clone());
                    let (ws, _) = tether_std::client(tcp, &url, &options).expect("std handshake");
                    Box::new(StdEndpoint { ws: Some(ws), cues })
                }
                Adapter::Tokio | Adapter::TokioOwner => {
                    let rt = runtime();
                    let options = tether_tokio::ClientOptions::new()
                        .config(config.clone())
                        .driver(adapter.driver());
                    let (ws, _) = rt
                        .block_on(tether_tokio::connect(&url, &options))
                        .expect("tokio handshake");
                    Box::new(TokioEndpoint {
                        ws: Some(ws),
                        rt,
                        cues,
                    })
                }
            };
            (endpoint, peer.join().expect("peer thread"))
        }
        Role::Server => {
            let peer = std::thread::spawn(move || Peer::connect(addr));
            let (tcp, _) = listener.accept().expect("accept");
            let endpoint: Box<dyn Endpoint> = match adapter {
                Adapter::Std => {
                    let options = tether_std::ServerOptions::new().config(config.clone());
                    let (ws, _) = tether_std::accept(tcp, &options).expect("std handshake");
                    Box::new(StdEndpoint { ws: Some(ws), cues })
                }
                Adapter::Tokio | Adapter::TokioOwner => {
                    let rt = runtime();
                    let options = tether_tokio::ServerOptions::new()
                        .config(config.clone())
                        .driver(adapter.driver());
                    tcp.set_nonblocking(true).expect("nonblocking");
                    let (ws, _) = rt
                        .block_on(async {
                            let tcp = tokio::net::TcpStream::from_std(tcp)?;
                            tether_tokio::accept(tcp, &options).await
                        })
                        .expect("tokio handshake");
                    Box::new(TokioEndpoint {
                        ws: Some(ws),
                        rt,
                        cues,
                    })
                }
            };
            (endpoint, peer.join().expect("peer thread"))
        }
    };
    peer.cues = peer_cues;
    (endpoint, peer)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

// ----- the scripted peer -------------------------------------------------------

/// What the peer read from the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A whole frame: opcode and payload.
    Frame(OpCode, Vec<u8>),
    /// The transport's orderly end (FIN).
    Eof,
    /// The transport was reset.
    Reset,
    /// Nothing arrived in time.
    Silence,
}

impl Received {
    /// For a log: the opcode and payload, a Close's code and reason.
    pub fn describe(&self) -> String {
        match self {
            Self::Frame(OpCode::Close, p) if p.len() >= 2 => format!(
                "close {} {:?}",
                u16::from_be_bytes([p[0], p[1]]),
                String::from_utf8_lossy(&p[2..])
            ),
            Self::Frame(OpCode::Close, _) => "close (no code)".into(),
            Self::Frame(OpCode::Text, p) => format!("text {}", String::from_utf8_lossy(p)),
            Self::Frame(op, p) => format!("{op:?} {} bytes", p.len()).to_lowercase(),
            Self::Eof => "eof".into(),
            Self::Reset => "reset".into(),
            Self::Silence => "silence".into(),
        }
    }
}

/// The other end: raw frames over TCP, in `role`, doing what a scenario
/// says and nothing else (no automatic Pong, Close answer or masking
/// rule it is not told).
#[derive(Debug)]
pub struct Peer {
    /// `None` once [`Peer::reset`].
    tcp: Option<TcpStream>,
    role: Role,
    decoder: FrameDecoder,
    buf: BytesMut,
    /// Shared with the endpoint: [`Peer::cue`].
    cues: Arc<Cues>,
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

impl Peer {
    fn new(tcp: TcpStream, role: Role) -> Self {
        tcp.set_nodelay(true).expect("nodelay");
        tcp.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let limits = Limits {
            max_frame_size: 64 << 20,
            ..Limits::default()
        };
        Self {
            tcp: Some(tcp),
            role,
            decoder: FrameDecoder::new(role, limits),
            buf: BytesMut::new(),
            cues: Arc::default(),
        }
    }

    /// The server peer: accepts one connection and answers its upgrade.
    fn accept(listener: &TcpListener) -> Self {
        let (tcp, _) = listener.accept().expect("accept");
        let mut peer = Self::new(tcp, Role::Server);
        let head = peer.read_head();
        let key = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .expect("a key");
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            tether::handshake::accept_key(&key)
        );
        peer.sock().write_all(answer.as_bytes()).expect("answer");
        peer
    }

    /// The client peer: connects and upgrades.
    fn connect(addr: std::net::SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).expect("connect");
        let mut peer = Self::new(tcp, Role::Client);
        let request = format!(
            "GET /suite HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        peer.sock().write_all(request.as_bytes()).expect("request");
        let head = peer.read_head();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        peer
    }

    /// Reads an HTTP head; what follows it stays in `buf`.
    fn read_head(&mut self) -> String {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = self.buf.split_to(end + 4);
                return String::from_utf8_lossy(&head).into_owned();
            }
            let n = self.sock().read(&mut chunk).expect("head");
            assert!(n > 0, "the connection ended during the handshake");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn sock(&mut self) -> &mut TcpStream {
        self.tcp
            .as_mut()
            .expect("the peer reset the connection: no more I/O")
    }

    /// Resets the connection (TCP RST, not FIN): closes the socket with
    /// bytes from the endpoint unread, once some have arrived (the system
    /// then resets instead of ending). What this peer sent before stays in
    /// the endpoint's socket, readable. Nothing more is read or written.
    ///
    /// # Panics
    /// When nothing from the endpoint arrives within [`PATIENCE`].
    pub fn reset(&mut self) {
        self.await_unread();
        drop(self.tcp.take());
    }

    /// Lets the application's script go on from its
    /// [`Endpoint::await_cue`].
    pub fn cue(&self) {
        self.cues.give();
    }

    /// Waits until bytes from the endpoint have arrived, without reading
    /// them.
    ///
    /// # Panics
    /// When nothing arrives within [`PATIENCE`].
    pub fn await_unread(&mut self) {
        let tcp = self.sock();
        tcp.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let mut probe = [0u8; 1];
        assert_eq!(
            tcp.peek(&mut probe).expect("something from the endpoint"),
            1,
            "the endpoint's bytes must arrive"
        );
    }

    /// A frame as this peer's role writes it (masked from a client).
    pub fn frame(&self, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::from(fin) << 7 | opcode];
        let mask_bit = if self.role == Role::Client { 0x80 } else { 0 };
        match payload.len() {
            n @ 0..=125 => out.push(mask_bit | n as u8),
            n @ 126..=0xFFFF => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if self.role == Role::Client {
            let key = [0x11, 0x22, 0x33, 0x44];
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        out
    }

    /// Writes raw bytes (errors are ignored: the other end may be gone).
    pub fn write(&mut self, bytes: &[u8]) {
        let _ = self.sock().write_all(bytes);
    }

    /// Sends a text message in one frame, saying how the write went: `ok`,
    /// or the error's kind (a connection the endpoint reset).
    pub fn try_text(&mut self, text: &str) -> String {
        let f = self.frame(true, 0x1, text.as_bytes());
        match self.sock().write_all(&f) {
            Ok(()) => "write ok".into(),
            Err(e) => format!("write failed: {:?}", e.kind()),
        }
    }

    /// Sends a text message in one frame.
    pub fn text(&mut self, text: &str) {
        let f = self.frame(true, 0x1, text.as_bytes());
        self.write(&f);
    }

    /// Sends a Ping.
    pub fn ping(&mut self, payload: &[u8]) {
        let f = self.frame(true, 0x9, payload);
        self.write(&f);
    }

    /// Sends a Close with a code and reason.
    pub fn close(&mut self, code: u16, reason: &str) {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        let f = self.frame(true, 0x8, &payload);
        self.write(&f);
    }

    /// Closes the TCP connection (FIN), as a server does after the closing
    /// handshake.
    pub fn shutdown(&mut self) {
        let _ = self.sock().shutdown(Shutdown::Write);
    }

    /// Vanishes: ends the transport in both directions without a Close.
    pub fn vanish(&mut self) {
        let _ = self.sock().shutdown(Shutdown::Both);
    }

    /// The next frame, or the transport's end, waiting up to `wait`.
    pub fn recv_within(&mut self, wait: Duration) -> Received {
        let _ = self.sock().set_read_timeout(Some(wait));
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    return Received::Frame(frame.header.opcode, frame.payload.to_vec());
                }
                Ok(None) => {}
                Err(e) => panic!("the endpoint sent a bad frame: {e}"),
            }
            match self.sock().read(&mut chunk) {
                Ok(0) => return Received::Eof,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Received::Silence;
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Received::Reset,
                Err(e) => panic!("peer read: {e}"),
            }
        }
    }

    /// The next frame, or the transport's end.
    pub fn recv(&mut self) -> Received {
        self.recv_within(PATIENCE)
    }

    /// Writes `message` over and over, without blocking, until the
    /// endpoint stops taking them (its buffers and the socket's are full:
    /// a write is refused or taken only in part) or `max` were written.
    /// Returns how many went out whole (a frame begun is finished). Gives
    /// one [`Peer::cue`] once pushed back, before finishing a frame begun
    /// (which needs the application to read), or once all `max` are out.
    pub fn flood(&mut self, message: &[u8], max: usize) -> usize {
        let frame = self.frame(true, 0x2, message);
        self.sock().set_nonblocking(true).expect("nonblocking");
        let mut sent = 0;
        let mut stalled = 0;
        let mut pushed_back_mid_frame = false;
        while sent < max {
            match self.sock().write(&frame) {
                Ok(n) if n == frame.len() => {
                    sent += 1;
                    stalled = 0;
                }
                Ok(n) => {
                    // pushed back: finish this frame blocking (once the
                    // application reads: the cue says it may), and stop
                    self.cue();
                    pushed_back_mid_frame = true;
                    self.sock().set_nonblocking(false).expect("blocking");
                    self.sock().write_all(&frame[n..]).expect("rest of a frame");
                    sent += 1;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    stalled += 1;
                    if stalled > 20 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("flood: {e}"),
            }
        }
        self.sock().set_nonblocking(false).expect("blocking");
        if !pushed_back_mid_frame {
            self.cue();
        }
        sent
    }
}
