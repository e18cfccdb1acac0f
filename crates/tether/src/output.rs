//! The output queue: encoded frames waiting to be written.
//!
//! Owns [`Output`], a [`bytes::Buf`] over a list of chunks. Small frames are
//! packed into one growing tail so many small messages become one write; a
//! large server payload is queued as its own `Bytes` after its header, so it
//! is written (vectored) without being copied.

use alloc::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Payloads at least this long are queued by reference rather than copied.
pub(crate) const ZERO_COPY_MIN: usize = 4096;

/// Bytes the caller must write to the transport, in order.
///
/// It is a [`Buf`]: write `chunk()` (or `chunks_vectored` for a vectored
/// write) and then `advance` by what the transport accepted.
///
/// Its buffers are boxed apart from it, built on the first frame and freed
/// when an idle connection releases them, so an idle connection carries
/// two words for its output.
#[derive(Debug, Default)]
pub struct Output {
    len: usize,
    queue: Option<Box<Queue>>,
}

#[derive(Debug, Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    /// Bytes written (advanced past or taken) since the queue was built:
    /// with `len`, a position in the stream of output bytes.
    written: u64,
    /// The position where the frames the connection last sent of its own
    /// accord end ([`Output::mark_own`]).
    own_until: u64,
    /// The position where the last keep-alive Ping ends, and how much was
    /// written when its Pong deadline was last looked at
    /// ([`Output::mark_ping`], [`Output::ping_held_up`]).
    ping_until: u64,
    ping_seen: u64,
    /// The Ping's deadline was put off because it waited behind our bytes.
    ping_put_off: bool,
    /// How much was written when [`Output::moved`] last looked.
    stall_seen: u64,
    /// The adapter's transport holds bytes of ours it has not flushed
    /// ([`Output::set_unflushed`]).
    unflushed: bool,
}

impl Output {
    /// How many `IoSlice`s to offer [`Buf::chunks_vectored`] for one
    /// vectored write. A large payload queues as two chunks (its header,
    /// then the payload by reference), so this is 32 such messages, 2 MiB
    /// of 64 KiB messages, per system call (a loaded 64 KiB echo made one
    /// `writev` per 4 messages with 16), well under Linux's `IOV_MAX`
    /// (1024); on the stack, 1 KiB.
    pub const VECTORED_SLICES: usize = 64;

    fn queue(&mut self) -> &mut Queue {
        self.queue.get_or_insert_with(Box::default)
    }

    pub(crate) fn push_slice(&mut self, data: &[u8]) {
        self.queue().tail.extend_from_slice(data);
        self.len += data.len();
    }

    /// Appends `payload`, by reference when it is large enough to be worth it.
    pub(crate) fn push_bytes(&mut self, payload: Bytes) {
        if payload.len() < ZERO_COPY_MIN {
            return self.push_slice(&payload);
        }
        self.len += payload.len();
        let queue = self.queue();
        if !queue.tail.is_empty() {
            let tail = queue.tail.split().freeze();
            queue.chunks.push_back(tail);
        }
        queue.chunks.push_back(payload);
    }

    /// Room to encode into, at the end of the queue.
    pub(crate) fn tail_mut(&mut self) -> &mut BytesMut {
        &mut self.queue().tail
    }

    /// Records `n` bytes written directly into [`Output::tail_mut`].
    pub(crate) fn grew(&mut self, n: usize) {
        self.len += n;
    }

    /// Frees the buffers of an empty queue, unless a keep-alive deadline
    /// was put off for the Ping it held ([`Output::ping_held_up`] says so
    /// at the next look, which gives the Pong its whole wait).
    pub(crate) fn release(&mut self) {
        if self.len == 0
            && self
                .queue
                .as_deref()
                .is_none_or(|q| !q.ping_put_off && !q.unflushed)
        {
            self.queue = None;
        }
    }

    /// Marks everything queued so far as sent by the connection of its own
    /// accord (Pongs, keep-alives, heartbeats): [`Output::own_written`] is
    /// false until it is all written, so such frames do not pile up for a
    /// peer that reads nothing.
    pub(crate) fn mark_own(&mut self) {
        let len = self.len as u64;
        if let Some(queue) = self.queue.as_deref_mut() {
            queue.own_until = queue.written + len;
        }
    }

    /// Marks the end of a keep-alive Ping just queued.
    pub(crate) fn mark_ping(&mut self) {
        let len = self.len as u64;
        if let Some(queue) = self.queue.as_deref_mut() {
            queue.ping_until = queue.written + len;
            queue.ping_seen = queue.written;
            queue.ping_put_off = false;
        }
    }

    /// The Ping last marked with [`Output::mark_ping`] was answered: no
    /// deadline of its is put off any more (an empty queue may go).
    pub(crate) fn ping_answered(&mut self) {
        if let Some(queue) = self.queue.as_deref_mut() {
            queue.ping_put_off = false;
        }
    }

    /// Whether the Pong deadline of the Ping last marked with
    /// [`Output::mark_ping`] is to be put off: the Ping still waits behind
    /// bytes the peer is taking (unwritten, and more was written since the
    /// last look, which this one becomes), or it went out since a look that
    /// put the deadline off (its Pong gets a whole wait from here). A Ping
    /// the peer has not received cannot have been answered; a peer that
    /// takes nothing for a whole look is not taking them.
    pub(crate) fn ping_held_up(&mut self) -> bool {
        let Some(queue) = self.queue.as_deref_mut() else {
            return false;
        };
        let moving = queue.written > queue.ping_seen;
        queue.ping_seen = queue.written;
        if queue.written < queue.ping_until {
            queue.ping_put_off |= moving;
            return moving;
        }
        core::mem::take(&mut queue.ping_put_off)
    }

    /// Records whether the adapter's transport holds bytes of ours it has
    /// not flushed (`Connection::set_unflushed`); whether that changed.
    /// Kept in the boxed queue, so an idle connection carries nothing for
    /// it (the queue is not released while they wait).
    pub(crate) fn set_unflushed(&mut self, unflushed: bool) -> bool {
        if self.unflushed() == unflushed {
            return false;
        }
        self.queue().unflushed = unflushed;
        true
    }

    /// Whether the adapter's transport holds bytes of ours unflushed.
    pub(crate) fn unflushed(&self) -> bool {
        self.queue.as_deref().is_some_and(|q| q.unflushed)
    }

    /// Whether any byte was written since the last look (which this one
    /// becomes): `Config::send_timeout` waits again. A queue built since
    /// (the last one was released empty) has not moved until written.
    pub(crate) fn moved(&mut self) -> bool {
        self.queue.as_deref_mut().is_some_and(|queue| {
            let moved = queue.written != queue.stall_seen;
            queue.stall_seen = queue.written;
            moved
        })
    }

    /// Whether the frames last marked with [`Output::mark_own`] are written
    /// (also when the queue was released since: it is released empty).
    pub(crate) fn own_written(&self) -> bool {
        self.queue
            .as_deref()
            .is_none_or(|queue| queue.written >= queue.own_until)
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes everything queued as one `Bytes` (copies when more than one
    /// chunk is queued). Simple for callers that write whole buffers.
    pub fn take_all(&mut self) -> Bytes {
        let len = core::mem::take(&mut self.len);
        let Some(queue) = self.queue.as_deref_mut() else {
            return Bytes::new();
        };
        queue.written += len as u64;
        if queue.chunks.is_empty() {
            return queue.tail.split().freeze();
        }
        if queue.chunks.len() == 1 && queue.tail.is_empty() {
            return queue.chunks.pop_front().unwrap_or_default();
        }
        let mut all = BytesMut::with_capacity(len);
        for c in queue.chunks.drain(..) {
            all.extend_from_slice(&c);
        }
        all.extend_from_slice(&queue.tail);
        queue.tail.clear();
        all.freeze()
    }
}

impl Buf for Output {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        match self.queue.as_deref() {
            None => &[],
            Some(queue) => match queue.chunks.front() {
                Some(c) => c,
                None => &queue.tail,
            },
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        cnt = cnt.min(self.len);
        self.len -= cnt;
        let Some(queue) = self.queue.as_deref_mut() else {
            return;
        };
        queue.written += cnt as u64;
        while cnt > 0 {
            match queue.chunks.front_mut() {
                Some(front) if front.len() > cnt => {
                    front.advance(cnt);
                    return;
                }
                Some(front) => {
                    cnt -= front.len();
                    queue.chunks.pop_front();
                }
                None => {
                    queue.tail.advance(cnt);
                    return;
                }
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let Some(queue) = self.queue.as_deref() else {
            return 0;
        };
        let mut n = 0;
        for (slot, c) in dst.iter_mut().zip(
            queue
                .chunks
                .iter()
                .map(|c| &c[..])
                .chain(Some(&queue.tail[..])),
        ) {
            if c.is_empty() {
                break;
            }
            *slot = IoSlice::new(c);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_kept_across_copied_and_referenced_chunks() {
        let mut out = Output::default();
        out.push_slice(b"ab");
        out.push_bytes(Bytes::from(vec![b'x'; ZERO_COPY_MIN]));
        out.push_slice(b"cd");
        assert_eq!(out.len(), 4 + ZERO_COPY_MIN);
        let mut io = [IoSlice::new(&[]); 4];
        assert_eq!(out.chunks_vectored(&mut io), 3);
        let mut got = Vec::new();
        while out.has_remaining() {
            let c = out.chunk();
            let take = c.len().min(1000);
            got.extend_from_slice(&c[..take]);
            out.advance(take);
        }
        let mut want = b"ab".to_vec();
        want.extend(vec![b'x'; ZERO_COPY_MIN]);
        want.extend(b"cd");
        assert_eq!(got, want);
        assert!(out.is_empty());
    }

    #[test]
    fn an_empty_queue_holds_no_buffers_and_reads_as_empty() {
        let mut out = Output::default();
        assert!(out.queue.is_none());
        assert_eq!(out.chunk(), b"");
        assert_eq!(out.chunks_vectored(&mut [IoSlice::new(&[]); 2]), 0);
        out.advance(0);
        assert!(out.take_all().is_empty());
        out.push_slice(b"ab");
        out.release(); // not empty: kept
        assert_eq!(out.take_all(), Bytes::from_static(b"ab"));
        out.release();
        assert!(out.queue.is_none());
        out.push_slice(b"cd");
        assert_eq!(out.chunk(), b"cd");
    }
}
