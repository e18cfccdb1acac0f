//! Shared inputs for tether's criterion benchmarks (`cargo bench -p tether-benches`):
//! client-encoded (masked) input built once with tether's own encoder, an
//! in-memory stream that every library reads from, and a minimal opening
//! handshake for the peers whose own handshake would pull in more
//! dependencies (fastwebsockets' needs hyper).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tether::handshake::{AcceptOptions, ClientConfig, ClientHandshake, Limits};
use tether::upgrade::{ClientUpgrade, HandshakeError, ServerUpgrade};
use tether_frame::{FrameEncoder, OpCode, Role, Rsv};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The payload sizes every frame benchmark runs over.
pub const SIZES: [usize; 5] = [16, 125, 1024, 64 * 1024, 1024 * 1024];

/// The largest message and frame every library is configured to accept in
/// the comparisons: far above the largest benchmarked payload (1 MiB), so
/// no library hits a limit and all are configured alike.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Chunk size tether's `Connection::receive` is fed with in the in-memory
/// benchmarks (what a socket read of that size would hand it).
pub const RECEIVE_CHUNK: usize = 64 * 1024;

/// How many messages of `size` bytes one benchmark iteration decodes:
/// enough that per-iteration setup (building the connection object) is
/// amortised, about 4 MiB of payload for 1 KiB and up, 4096 messages below.
pub fn message_count(size: usize) -> usize {
    let count = (4 << 20) / size.max(1024) * if size < 1024 { 16 } else { 1 };
    count.clamp(4, 4096)
}

/// A readable size label for benchmark ids: `16B`, `1KiB`, `64KiB`, `1MiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{}MiB", size >> 20)
    } else if size >= 1024 && size.is_multiple_of(1024) {
        format!("{}KiB", size >> 10)
    } else {
        format!("{size}B")
    }
}

/// A binary payload of `size` bytes (a fixed, non-constant pattern).
pub fn binary_payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

/// Valid UTF-8 text of exactly `size` bytes: mostly ASCII prose with a
/// multi-byte character now and then (2-, 3- and 4-byte sequences, about
/// 10% of the bytes), so a validator cannot take an all-ASCII fast path for
/// the whole message.
pub fn text_payload(size: usize) -> String {
    const PIECES: [&str; 6] = [
        "The quick brown fox jumps over the lazy dog. ",
        "Grüße aus Köln, ",
        "naïve café résumé; ",
        "price: 42€, ",
        "東京で会いましょう。",
        "ship it 🚀 ",
    ];
    let mut text = String::with_capacity(size + 8);
    let mut i = 0;
    while text.len() < size {
        // several ASCII sentences for each non-ASCII piece
        let piece = if i % 4 == 3 {
            PIECES[1 + (i / 4) % (PIECES.len() - 1)]
        } else {
            PIECES[0]
        };
        for c in piece.chars() {
            if text.len() + c.len_utf8() > size {
                break;
            }
            text.push(c);
        }
        if text.len() < size && text.len() + 4 > size {
            // pad the last bytes that no multi-byte character fits in
            while text.len() < size {
                text.push('.');
            }
        }
        i += 1;
    }
    text
}

/// `count` masked frames of `opcode` carrying `payload`, as a client sends
/// them (one whole message per frame, a fresh mask key per frame).
pub fn masked_messages(opcode: OpCode, payload: &[u8], count: usize) -> BytesMut {
    let mut n = 0u32;
    let mut enc = FrameEncoder::new(Role::Client, move || {
        n = n.wrapping_add(0x9E37_79B9);
        n.to_le_bytes()
    });
    let mut out = BytesMut::with_capacity(count * (payload.len() + 14));
    for _ in 0..count {
        enc.encode(true, Rsv::NONE, opcode, payload, &mut out);
    }
    out
}

/// `count` masked binary frames of `size` bytes each, as a client sends them.
pub fn masked_frames(size: usize, count: usize) -> BytesMut {
    masked_messages(OpCode::Binary, &binary_payload(size), count)
}

/// `count` masked text frames of `size` bytes each ([`text_payload`]).
pub fn masked_text_frames(size: usize, count: usize) -> BytesMut {
    masked_messages(OpCode::Text, text_payload(size).as_bytes(), count)
}

/// An in-memory transport: reads hand out `data` in order (as much as the
/// reader's buffer holds, then end of stream); writes are accepted and
/// dropped, or with [`MemStream::with_sink`] copied into a sink buffer (as a
/// socket write copies into the kernel). Implements both `std::io` and
/// tokio's `AsyncRead`/`AsyncWrite`, so every library reads the same bytes
/// the same way, and building one is free (`Bytes` is reference counted), so
/// no setup copy hides in a timing.
#[derive(Clone, Debug)]
pub struct MemStream {
    data: Bytes,
    pos: usize,
    written: usize,
    sink: Option<Vec<u8>>,
}

impl MemStream {
    /// A stream that will read `data`; writes are dropped.
    pub fn new(data: Bytes) -> Self {
        Self {
            data,
            pos: 0,
            written: 0,
            sink: None,
        }
    }

    /// A stream that will read `data` and copies every write into a sink of
    /// `capacity` bytes, emptied (not reallocated) whenever a write would
    /// overflow it: the copy a socket write costs, without growing memory.
    pub fn with_sink(data: Bytes, capacity: usize) -> Self {
        Self {
            sink: Some(Vec::with_capacity(capacity)),
            ..Self::new(data)
        }
    }

    /// What the sink holds: the writes since it was last emptied (empty
    /// without a sink).
    pub fn sink(&self) -> &[u8] {
        self.sink.as_deref().unwrap_or_default()
    }

    /// Empties the sink.
    pub fn clear_sink(&mut self) {
        if let Some(sink) = &mut self.sink {
            sink.clear();
        }
    }

    fn write_from(&mut self, buf: &[u8]) {
        self.written += buf.len();
        if let Some(sink) = &mut self.sink {
            if sink.len() + buf.len() > sink.capacity() {
                sink.clear();
            }
            sink.extend_from_slice(buf);
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Bytes written (and dropped) so far.
    pub fn written(&self) -> usize {
        self.written
    }

    fn read_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.remaining());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        n
    }
}

impl io::Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_into(buf))
    }
}

impl io::Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_from(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// For the blocking adapter: reads never block, so timeouts are moot.
impl tether_std::Transport for MemStream {
    fn set_read_timeout(&self, _timeout: Option<std::time::Duration>) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for MemStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = buf.remaining().min(this.remaining());
        buf.put_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_from(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut n = 0;
        for buf in bufs {
            this.write_from(buf);
            n += buf.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Pins the calling thread, and so every thread it starts afterwards (Linux
/// threads inherit their creator's CPU set), to one core: how the loopback
/// benchmark gives the server and the load generator a core each.
///
/// # Errors
/// When the core does not exist or the kernel refuses.
pub fn pin_to_core(core: usize) -> io::Result<()> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "could not pin this thread to core {core}"
        )))
    }
}

/// CPU time a process has used, every thread, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTime {
    /// In user space: the program's own work.
    pub user: f64,
    /// In the kernel on its behalf (system calls, the network stack).
    pub system: f64,
}

impl CpuTime {
    /// User and system time together.
    pub fn total(self) -> f64 {
        self.user + self.system
    }
}

/// [`CpuTime`] of a process, from `/proc/PID/stat` (`utime`, `stime`, in
/// ticks of USER_HZ, which is 100 on Linux).
///
/// # Errors
/// When the process is gone or the file is not as expected.
pub fn cpu_time(pid: u32) -> io::Result<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: {what}"),
        )
    };
    // the name may hold spaces and brackets: fields are counted after it
    let after_name = stat.rsplit_once(')').ok_or_else(|| bad("no name"))?.1;
    let mut fields = after_name.split_whitespace().skip(11);
    let mut seconds = || -> io::Result<f64> {
        let ticks: u64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad("no utime or stime"))?;
        Ok(ticks as f64 / 100.0)
    };
    Ok(CpuTime {
        user: seconds()?,
        system: seconds()?,
    })
}

/// A field of `/proc/PID/status` in kB (`VmRSS:`, `VmHWM:`), in bytes.
///
/// # Errors
/// When the process is gone or the field is missing.
pub fn status_bytes(pid: u32, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no {field} in /proc/{pid}/status"),
            )
        })
}

fn handshake_error(e: HandshakeError) -> io::Error {
    io::Error::other(e)
}

fn leftover_error(n: usize) -> io::Error {
    io::Error::other(format!(
        "{n} bytes after the handshake head: the peer spoke before the handshake finished"
    ))
}

/// The client half of the opening handshake (tether's sans-IO
/// `ClientUpgrade`) over an async stream, for libraries measured after
/// their handshake (fastwebsockets without its hyper-based `upgrade`).
///
/// # Errors
/// I/O errors, a refused handshake, or bytes after the 101 (the server may
/// not send frames before our first message in these benchmarks).
pub async fn client_handshake<S>(stream: &mut S, url: &str) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hs = ClientHandshake::new(url, ClientConfig::default())
        .map_err(|e| handshake_error(HandshakeError::Build(e)))?;
    let mut upgrade = ClientUpgrade::new(hs);
    stream.write_all(upgrade.request()).await?;
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(handshake_error(upgrade.eof()));
        }
        if let Some((_, rest)) = upgrade.receive(&buf[..n]).map_err(handshake_error)? {
            return if rest.is_empty() {
                Ok(())
            } else {
                Err(leftover_error(rest.len()))
            };
        }
    }
}

/// The server half of the opening handshake (tether's sans-IO
/// `ServerUpgrade`) over an async stream; see [`client_handshake`].
///
/// # Errors
/// I/O errors, a bad request, or bytes after the request head.
pub async fn server_handshake<S>(stream: &mut S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut upgrade = ServerUpgrade::new(Limits::default());
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(handshake_error(upgrade.eof()));
        }
        if let Some((request, rest)) = upgrade.receive(&buf[..n]).map_err(handshake_error)? {
            if !rest.is_empty() {
                return Err(leftover_error(rest.len()));
            }
            let response = request
                .accept(&AcceptOptions::new())
                .map_err(|e| handshake_error(HandshakeError::Build(e)))?;
            return stream.write_all(&response).await;
        }
    }
}

/// [`client_handshake`] over a blocking `std::io` stream (tungstenite on
/// std threads).
///
/// # Errors
/// As [`client_handshake`].
pub fn client_handshake_blocking<S: io::Read + io::Write>(
    stream: &mut S,
    url: &str,
) -> io::Result<()> {
    let hs = ClientHandshake::new(url, ClientConfig::default())
        .map_err(|e| handshake_error(HandshakeError::Build(e)))?;
    let mut upgrade = ClientUpgrade::new(hs);
    stream.write_all(upgrade.request())?;
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(handshake_error(upgrade.eof()));
        }
        if let Some((_, rest)) = upgrade.receive(&buf[..n]).map_err(handshake_error)? {
            return if rest.is_empty() {
                Ok(())
            } else {
                Err(leftover_error(rest.len()))
            };
        }
    }
}

/// [`server_handshake`] over a blocking `std::io` stream.
///
/// # Errors
/// As [`server_handshake`].
pub fn server_handshake_blocking<S: io::Read + io::Write>(stream: &mut S) -> io::Result<()> {
    let mut upgrade = ServerUpgrade::new(Limits::default());
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(handshake_error(upgrade.eof()));
        }
        if let Some((request, rest)) = upgrade.receive(&buf[..n]).map_err(handshake_error)? {
            if !rest.is_empty() {
                return Err(leftover_error(rest.len()));
            }
            let response = request
                .accept(&AcceptOptions::new())
                .map_err(|e| handshake_error(HandshakeError::Build(e)))?;
            return stream.write_all(&response);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_payload_is_exact_utf8_with_multibyte() {
        for size in [1, 3, 16, 125, 1024, 1025, 64 * 1024] {
            let t = text_payload(size);
            assert_eq!(t.len(), size);
            if size >= 1024 {
                let multi = t.chars().filter(|c| c.len_utf8() > 1).count();
                assert!(multi > size / 100, "{multi} multi-byte chars in {size}");
            }
        }
    }

    #[test]
    fn labels() {
        assert_eq!(size_label(16), "16B");
        assert_eq!(size_label(1024), "1KiB");
        assert_eq!(size_label(64 * 1024), "64KiB");
        assert_eq!(size_label(1 << 20), "1MiB");
    }

    /// `cpu_time` reads this process's user time from the right field:
    /// user-space work shows as at least 0.1 s of it within 10 s of wall
    /// time however loaded the machine (the fields beside it, children's
    /// time and the like, stay still), and the two parts add up to the
    /// total.
    #[test]
    fn cpu_time_counts_this_process_user_time() {
        let pid = std::process::id();
        let before = cpu_time(pid).unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut now = before;
        while now.user - before.user < 0.1 && start.elapsed() < std::time::Duration::from_secs(10) {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            now = cpu_time(pid).unwrap();
        }
        assert!(
            now.user - before.user >= 0.1,
            "expected at least 0.1 s more user time after {:?} of work, got {before:?} then {now:?}",
            start.elapsed()
        );
        assert_eq!(now.total(), now.user + now.system);
    }

    /// `status_bytes` reads a kB field as bytes, and names a missing one.
    #[test]
    fn status_bytes_reads_rss_in_bytes() {
        let pid = std::process::id();
        let rss = status_bytes(pid, "VmRSS:").unwrap();
        assert!(
            rss >= 1 << 20 && rss.is_multiple_of(1024),
            "VmRSS of {rss} bytes"
        );
        let err = status_bytes(pid, "NoSuchField:").unwrap_err();
        assert!(
            err.to_string().contains("no NoSuchField: in /proc/"),
            "{err}"
        );
    }
}
