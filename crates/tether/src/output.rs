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
#[derive(Debug, Default)]
pub struct Output {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
}

impl Output {
    pub(crate) fn push_slice(&mut self, data: &[u8]) {
        self.tail.extend_from_slice(data);
        self.len += data.len();
    }

    /// Appends `payload`, by reference when it is large enough to be worth it.
    pub(crate) fn push_bytes(&mut self, payload: Bytes) {
        if payload.len() < ZERO_COPY_MIN {
            return self.push_slice(&payload);
        }
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.len += payload.len();
        self.chunks.push_back(payload);
    }

    /// Room to encode into, at the end of the queue.
    pub(crate) fn tail_mut(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Records `n` bytes written directly into [`Output::tail_mut`].
    pub(crate) fn grew(&mut self, n: usize) {
        self.len += n;
    }

    /// Frees the allocations an empty queue still holds.
    pub(crate) fn release(&mut self) {
        if self.len == 0 {
            self.chunks = VecDeque::new();
            self.tail = BytesMut::new();
        }
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
        if self.chunks.is_empty() {
            self.len = 0;
            return self.tail.split().freeze();
        }
        if self.chunks.len() == 1 && self.tail.is_empty() {
            self.len = 0;
            return self.chunks.pop_front().unwrap_or_default();
        }
        let mut all = BytesMut::with_capacity(self.len);
        for c in self.chunks.drain(..) {
            all.extend_from_slice(&c);
        }
        all.extend_from_slice(&self.tail);
        self.tail.clear();
        self.len = 0;
        all.freeze()
    }
}

impl Buf for Output {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        match self.chunks.front() {
            Some(c) => c,
            None => &self.tail,
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        cnt = cnt.min(self.len);
        self.len -= cnt;
        while cnt > 0 {
            match self.chunks.front_mut() {
                Some(front) if front.len() > cnt => {
                    front.advance(cnt);
                    return;
                }
                Some(front) => {
                    cnt -= front.len();
                    self.chunks.pop_front();
                }
                None => {
                    self.tail.advance(cnt);
                    return;
                }
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, c) in dst.iter_mut().zip(
            self.chunks
                .iter()
                .map(|c| &c[..])
                .chain(Some(&self.tail[..])),
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
}
