//! The streaming frame decoder over [`bytes::BytesMut`].
//!
//! Owns the state between "header parsed" and "payload complete". The caller
//! appends whatever bytes arrived to one `BytesMut` and calls
//! [`FrameDecoder::decode`] until it returns `Ok(None)`. Payload bytes are
//! unmasked as they arrive, once each; a payload that is complete in the
//! buffer is split off without copying. [`FrameDecoder::partial_payload`]
//! shows the unmasked bytes of an incomplete frame, so the layer above can check a text
//! frame's UTF-8 before the frame is complete. Never does I/O, never panics.

use alloc::boxed::Box;

use bytes::buf::Limit;
use bytes::{Buf, BufMut, BytesMut};

use crate::{FrameError, FrameHeader, Limits, Payload, Role, Status, apply_mask, extend_masked};

/// One whole frame: its header and its unmasked payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The header as received (`mask` still holds the key that was used).
    pub header: FrameHeader,
    /// The payload, already unmasked.
    pub payload: BytesMut,
}

/// A frame from [`FrameDecoder::decode_small`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame of at most [`Payload::INLINE_CAPACITY`] payload bytes,
    /// copied out of the buffer (held inline) and unmasked.
    Small {
        /// The header as received.
        header: FrameHeader,
        /// The payload, unmasked.
        payload: Payload,
    },
    /// Any other frame, as [`FrameDecoder::decode`] returns it.
    Frame(Frame),
}

/// Decodes frames for one role, under one set of [`Limits`].
///
/// A frame whose header and payload are both in the buffer is split off
/// without copying. A frame whose payload is still arriving moves to a
/// buffer of its own (sized from its header, at most 1 MiB up front) and
/// collects the rest there, so its bytes are not moved again while it
/// grows; [`FrameDecoder::feed_payload`] lets a caller copy arriving bytes
/// straight into it.
///
/// After an error the decoder is finished: every later call returns the same
/// error, since RFC 6455 requires the connection to be failed.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    role: Role,
    limits: Limits,
    /// The frame whose payload is arriving, and the unmasked payload so far.
    pending: Option<(FrameHeader, BytesMut)>,
    /// Buffers pending frames collect in, kept between frames: a payload
    /// handed out is split off one, and once the application drops that
    /// payload the allocation is reused. Several, so that the next frame
    /// can start while the application still holds the last ones (an
    /// adapter reads a turn's worth of frames ahead). Without this a stream
    /// of large frames churns the allocator (measured: 1 MiB frames
    /// page-faulted at every frame, 3.5 GiB/s instead of 20), and a frame
    /// written into a fresh allocation misses the cache where a reused one
    /// is still in it (64 KiB frames through the tokio adapter, 16 read
    /// ahead per turn: 10.5 GiB/s with two spares, 11.8 with eight).
    /// Boxed, and only once a frame needed one: most connections never
    /// receive a frame larger than a read, and each carries its decoder for
    /// its whole life.
    spares: Option<Box<Spares>>,
    failed: Option<FrameError>,
    /// The size of the allocation the pending frame's buffer came with.
    pending_alloc: usize,
    /// How many bytes of the pending frame's buffer are unmasked (bytes a
    /// transport appended through [`FrameDecoder::payload_buffer`] are not,
    /// until [`FrameDecoder::payload_appended`]).
    unmasked: usize,
}

/// The decoder's spare frame buffers, oldest first: at most
/// [`SPARE_SLOTS`]; the two newest whatever their size, older ones only
/// while all of them together hold at most [`SPARE_POOL_BYTES`]. So they
/// hold at most the larger of two frame buffers and [`SPARE_POOL_BYTES`].
#[derive(Clone, Debug, Default)]
struct Spares {
    bufs: [BytesMut; SPARE_SLOTS],
    /// The size of each spare's allocation: after a frame is split off,
    /// the spare's own capacity is what is left past it, but it keeps the
    /// whole allocation alive.
    sizes: [usize; SPARE_SLOTS],
    /// How many there are (`bufs[..len]`).
    len: usize,
}

/// The most spare frame buffers a decoder keeps.
const SPARE_SLOTS: usize = 8;

/// What spare frame buffers beyond the two newest may hold in all: a
/// turn's worth of 64 KiB frames read ahead (`Config::turn_bytes`).
const SPARE_POOL_BYTES: usize = 1 << 20;

impl Spares {
    /// Takes out the newest spare that holds `want` bytes once reclaimed
    /// (the newest is likeliest still in the cache) and whose allocation is
    /// at most twice `frame` (the message keeps all of it alive), with its
    /// allocation's size. `None` while the application holds every
    /// spare's frame.
    fn take(&mut self, want: usize, frame: usize) -> Option<(BytesMut, usize)> {
        let most = frame.saturating_mul(2);
        let at = (0..self.len)
            .rev()
            .find(|&i| self.sizes[i] <= most && self.bufs[i].try_reclaim(want))?;
        Some(self.remove(at))
    }

    /// Keeps `body` (an allocation of `size` bytes) as the newest spare,
    /// dropping the oldest when all slots are full, then the oldest beyond
    /// the two newest while all together hold more than
    /// [`SPARE_POOL_BYTES`].
    fn keep(&mut self, body: BytesMut, size: usize) {
        if self.len == SPARE_SLOTS {
            self.remove(0);
        }
        self.bufs[self.len] = body;
        self.sizes[self.len] = size;
        self.len += 1;
        while self.len > 2 && self.total() > SPARE_POOL_BYTES {
            self.remove(0);
        }
    }

    /// Drops the spares larger than `bytes`, and all but the two newest of
    /// the others. Returns whether none is left.
    fn release_over(&mut self, bytes: usize) -> bool {
        let mut at = 0;
        while at < self.len {
            if self.sizes[at] > bytes {
                self.remove(at);
            } else {
                at += 1;
            }
        }
        while self.len > 2 {
            self.remove(0);
        }
        self.len == 0
    }

    /// Removes the spare at `at`, the newer ones moving down a slot.
    fn remove(&mut self, at: usize) -> (BytesMut, usize) {
        let buf = core::mem::take(&mut self.bufs[at]);
        let size = self.sizes[at];
        self.bufs[at..self.len].rotate_left(1);
        self.sizes[at..self.len].rotate_left(1);
        self.len -= 1;
        self.sizes[self.len] = 0;
        (buf, size)
    }

    fn total(&self) -> usize {
        self.sizes[..self.len].iter().sum()
    }
}

/// The most a pending frame's buffer reserves before its bytes arrive.
const MAX_UPFRONT: usize = 1 << 20;

/// Makes room for `add` more bytes in the buffer of a frame of `total`
/// bytes: by doubling (a peer that declares a large frame and sends little
/// of it holds little), but never past the frame's own length, so a frame
/// buffer, and the spare it becomes, is at most the frame (the doubling of
/// a plain reserve took a 10 MiB frame's buffer to 16 MiB).
fn make_room(body: &mut BytesMut, add: usize, total: usize) {
    let want = body.len().saturating_add(add);
    if body.capacity() >= want {
        return;
    }
    let doubled = body.capacity().saturating_mul(2).max(want);
    if doubled <= total {
        body.reserve(doubled - body.len());
    } else {
        // the last growth: exactly what the frame still needs
        let mut exact = BytesMut::with_capacity(total.max(want));
        exact.extend_from_slice(body);
        *body = exact;
    }
}

impl FrameDecoder {
    /// A decoder for frames received by `role`.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            limits,
            pending: None,
            spares: None,
            failed: None,
            pending_alloc: 0,
            unmasked: 0,
        }
    }

    /// The role this decoder receives for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits, e.g. once an extension has claimed RSV1. Applies
    /// from the next header on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    fn fail(&mut self, err: FrameError) -> FrameError {
        self.failed = Some(err);
        err
    }

    /// Decodes the next frame from the front of `buf`.
    ///
    /// Returns `Ok(Some(frame))` and removes its bytes from `buf` when a whole
    /// frame is there; `Ok(None)` when more bytes are needed. A header is
    /// consumed (and validated) as soon as it is complete, so a frame over
    /// [`Limits::max_frame_size`] fails before any of its payload is
    /// buffered. Payload bytes of a frame that is not complete are moved out
    /// of `buf` into the frame's own buffer, unmasked.
    ///
    /// # Errors
    /// The first rule the input breaks, as a [`FrameError`].
    #[inline]
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        Ok(match self.decode_as::<false>(buf)? {
            None => None,
            Some(Decoded::Frame(frame)) => Some(frame),
            // not made when small frames are not asked for
            Some(Decoded::Small { header, payload }) => Some(Frame {
                header,
                payload: BytesMut::from(&payload[..]),
            }),
        })
    }

    /// As [`FrameDecoder::decode`], except that a whole frame of at most
    /// [`Payload::INLINE_CAPACITY`] payload bytes is copied out of `buf`
    /// into a [`Payload`] held inline, unmasked, and `buf` advanced past
    /// it, instead of split off: splitting a shared buffer touches its
    /// reference count, and the payload's drop touches it again, which
    /// costs more than copying a small payload. Larger frames, and frames
    /// that arrived in pieces, come as [`Decoded::Frame`].
    ///
    /// # Errors
    /// As [`FrameDecoder::decode`].
    #[inline]
    pub fn decode_small(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, FrameError> {
        self.decode_as::<true>(buf)
    }

    /// A whole frame of at most [`Payload::INLINE_CAPACITY`] payload bytes
    /// at the front of `data`, decoded straight from it (nothing is
    /// buffered): its header, its payload held inline and unmasked, and
    /// how many bytes of `data` it took. `Ok(None)`, with nothing taken,
    /// when the next frame is larger or incomplete, or a frame is in
    /// progress: decode those from a buffer ([`FrameDecoder::decode_small`]).
    /// A reader handed a run of tiny frames decodes them without copying
    /// the run into a buffer first.
    ///
    /// # Errors
    /// As [`FrameDecoder::decode`]: a header that breaks a rule fails the
    /// decoder.
    #[inline]
    pub fn decode_small_from(
        &mut self,
        data: &[u8],
    ) -> Result<Option<(FrameHeader, Payload, usize)>, FrameError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if self.pending.is_some() {
            return Ok(None);
        }
        let Some((header, used)) = self.next_header(data)? else {
            return Ok(None);
        };
        let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        if len > Payload::INLINE_CAPACITY || data.len() - used < len {
            return Ok(None);
        }
        let payload = Payload::unmasked(data.get(used..).unwrap_or_default(), len, header.mask);
        Ok(Some((header, payload, used + len)))
    }

    /// The header at the front of `data`, parsed and validated, and its
    /// length; `None` while it is incomplete. A rule broken fails the
    /// decoder.
    #[inline(always)]
    fn next_header(&mut self, data: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        let (header, used) = match FrameHeader::parse(data) {
            Ok(Status::Complete(header, used)) => (header, used),
            Ok(Status::Incomplete { .. }) => return Ok(None),
            Err(err) => return Err(self.fail(err)),
        };
        if let Err(err) = header.validate(self.role, &self.limits) {
            return Err(self.fail(err));
        }
        Ok(Some((header, used)))
    }

    // Inlined (with `FrameHeader::parse` and `validate`) into the caller's
    // loop: returned through memory, the header and `Frame` were stored
    // field by field and reloaded as wider words, which stalls on
    // store-to-load forwarding; that cost more than decoding a 16-byte frame.
    #[inline]
    fn decode_as<const SMALL: bool>(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Decoded>, FrameError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if self.pending.is_some() {
            let take = self.payload_remaining().unwrap_or(0).min(buf.len());
            let chunk = buf.split_to(take);
            return Ok(self.feed_payload(&chunk).map(Decoded::Frame));
        }
        let Some((header, used)) = self.next_header(buf)? else {
            return Ok(None);
        };
        // validate() guarantees the length fits in usize.
        let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        if buf.len() - used >= len {
            if SMALL && len <= Payload::INLINE_CAPACITY {
                let payload =
                    Payload::unmasked(buf.get(used..).unwrap_or_default(), len, header.mask);
                buf.advance(used + len);
                return Ok(Some(Decoded::Small { header, payload }));
            }
            // one split for header and payload, then drop the header from it
            let mut payload = buf.split_to(used + len);
            payload.advance(used);
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key, 0);
            }
            return Ok(Some(Decoded::Frame(Frame { header, payload })));
        }
        buf.advance(used);
        let want = len.min(MAX_UPFRONT);
        let (body, alloc) = self
            .spares
            .as_mut()
            .and_then(|spares| spares.take(want, len))
            .unwrap_or_else(|| (BytesMut::with_capacity(want), want));
        self.pending_alloc = alloc;
        self.pending = Some((header, body));
        self.unmasked = 0;
        let chunk = buf.split();
        Ok(self.feed_payload(&chunk).map(Decoded::Frame))
    }

    /// How many payload bytes the frame in progress still needs, if one is
    /// in progress (its header has been consumed).
    pub fn payload_remaining(&self) -> Option<usize> {
        let (header, body) = self.pending.as_ref()?;
        let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        Some(len.saturating_sub(body.len()))
    }

    /// Copies payload bytes of the frame in progress straight from `data`
    /// (at most [`FrameDecoder::payload_remaining`] of them; the rest is
    /// ignored) and unmasks them. Returns the frame once it is complete.
    /// Does nothing when no frame is in progress.
    pub fn feed_payload(&mut self, data: &[u8]) -> Option<Frame> {
        let need = self.payload_remaining()?;
        // bytes appended through `payload_buffer` and not yet taken come
        // first: unmasked now, or they would stay masked (they may even
        // have completed the frame: `need` was 0 then, and nothing of
        // `data` is taken)
        if self.payload_appended_len() > 0
            && let Some(frame) = self.payload_appended()
        {
            return Some(frame);
        }
        let (header, body) = self.pending.as_mut()?;
        let take = need.min(data.len());
        let total = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
        make_room(body, take, total);
        let start = body.len();
        match header.mask {
            // unmask while copying, one pass straight into the spare room
            // (a zero fill first, then the copy, was a third of the time)
            Some(key) => extend_masked(body, &data[..take], key, start),
            None => body.extend_from_slice(&data[..take]),
        }
        self.unmasked = body.len();
        if take < need {
            return None;
        }
        self.finish_pending()
    }

    /// The buffer the rest of the frame in progress can be read into
    /// directly, saving a copy: a transport that reads into a [`BufMut`]
    /// (e.g. tokio-util's `poll_read_buf`) appends to it, at most
    /// [`FrameDecoder::payload_remaining`] bytes (the [`Limit`] enforces
    /// it), then calls [`FrameDecoder::payload_appended`]. `None` when no
    /// frame is in progress.
    ///
    /// [`BufMut`]: bytes::BufMut
    pub fn payload_buffer(&mut self) -> Option<Limit<&mut BytesMut>> {
        let need = self.payload_remaining()?;
        let (header, body) = self.pending.as_mut()?;
        if body.capacity() == body.len() {
            let total = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
            make_room(body, need.min(MAX_UPFRONT), total);
        }
        Some(body.limit(need))
    }

    /// Bytes appended through [`FrameDecoder::payload_buffer`] that
    /// [`FrameDecoder::payload_appended`] has not taken yet.
    pub fn payload_appended_len(&self) -> usize {
        self.pending
            .as_ref()
            .map_or(0, |(_, body)| body.len().saturating_sub(self.unmasked))
    }

    /// Unmasks what was appended through [`FrameDecoder::payload_buffer`]
    /// and returns the frame once it is complete.
    pub fn payload_appended(&mut self) -> Option<Frame> {
        let need = self.payload_remaining()?;
        let (header, body) = self.pending.as_mut()?;
        if let (Some(key), Some(fresh)) = (header.mask, body.get_mut(self.unmasked..)) {
            apply_mask(fresh, key, self.unmasked);
        }
        self.unmasked = body.len();
        if need > 0 {
            return None;
        }
        self.finish_pending()
    }

    /// Hands out the completed pending frame, keeping its buffer's
    /// allocation for the next one.
    fn finish_pending(&mut self) -> Option<Frame> {
        let (header, mut body) = self.pending.take()?;
        // the whole allocation, taken before the frame is split off it (a
        // reused spare may have been handed out through the room left past
        // its last frame: the allocation is what it was kept as)
        let size = body.capacity().max(self.pending_alloc);
        let payload = body.split_to(body.len());
        self.spares.get_or_insert_default().keep(body, size);
        Some(Frame { header, payload })
    }

    /// Frees the spare frame buffers kept for reuse (an idle connection
    /// need not hold them); the next large frame allocates again.
    pub fn release_spares(&mut self) {
        self.spares = None;
    }

    /// Frees the spare frame buffers larger than `bytes`, and all but the
    /// two newest of the smaller ones, which are kept for reuse: after a
    /// large frame an idle connection gives its buffer back, while one that
    /// echoes moderate frames keeps reusing its buffers (allocating them
    /// afresh each time costs page faults). Afterwards at most two spares
    /// of at most `bytes` each are left.
    pub fn release_spares_over(&mut self, bytes: usize) {
        if self.spares.as_mut().is_some_and(|s| s.release_over(bytes)) {
            self.spares = None;
        }
    }

    /// Bytes held by the spare frame buffers kept for reuse.
    pub fn spare_capacity(&self) -> usize {
        self.spares.as_ref().map_or(0, |s| s.total())
    }

    /// Drops the frame whose payload is still arriving, freeing its buffer
    /// (its connection ended: nothing more is decoded).
    pub fn discard_pending(&mut self) {
        self.pending = None;
        self.pending_alloc = 0;
        self.unmasked = 0;
    }

    /// The header of the frame whose payload is still arriving, if any.
    pub fn pending_header(&self) -> Option<&FrameHeader> {
        self.pending.as_ref().map(|(h, _)| h)
    }

    /// The header and the unmasked payload bytes received so far of the frame
    /// still arriving. `None` when no frame is pending.
    pub fn partial_payload(&self) -> Option<(&FrameHeader, &[u8])> {
        let unmasked = self.unmasked;
        self.pending
            .as_ref()
            .map(|(h, body)| (h, body.get(..unmasked).unwrap_or(&body[..])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpCode;

    /// A transport reading straight into the pending frame's buffer, in
    /// pieces mixed with copied pieces, gets the frame `decode` would give.
    #[test]
    fn rfc6455_5_3_payload_read_into_the_frame_buffer_is_unmasked_once() {
        use crate::{FrameEncoder, Rsv};
        let payload: alloc::vec::Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut enc = FrameEncoder::new(Role::Client, || [9u8, 8, 7, 6]);
        let mut wire = BytesMut::new();
        enc.encode(true, Rsv::NONE, OpCode::Binary, &payload, &mut wire);
        let mut dec = FrameDecoder::new(Role::Server, Limits::default());
        // the header and 10 payload bytes arrive first
        let mut buf = BytesMut::from(&wire[..24]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        let mut at = 24;
        let mut direct = true;
        let mut frame = None;
        for size in [1usize, 3, 4096, 5, 70_000, 100_000].iter().cycle() {
            let piece = &wire[at..(at + size).min(wire.len())];
            at += piece.len();
            let done = if direct {
                let mut into = dec.payload_buffer().unwrap();
                assert!(into.remaining_mut() >= piece.len());
                into.put_slice(piece);
                dec.payload_appended()
            } else {
                dec.feed_payload(piece)
            };
            direct = !direct;
            if let Some(f) = done {
                frame = Some(f);
                break;
            }
            let (_, part) = dec.partial_payload().unwrap();
            assert_eq!(part, &payload[..part.len()]);
        }
        assert_eq!(at, wire.len());
        assert_eq!(&frame.unwrap().payload[..], &payload[..]);
        assert!(dec.payload_buffer().is_none());
    }

    /// Bytes appended through `payload_buffer` and then followed by bytes
    /// fed with `feed_payload` (a caller mixing the two ways) are unmasked
    /// too: they stayed masked, and the frame came out corrupt.
    #[test]
    fn rfc6455_5_3_bytes_appended_then_fed_are_unmasked() {
        // RFC 6455 section 5.7: a masked "Hello"
        let wire = [
            0x81u8, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut dec = FrameDecoder::new(Role::Server, Limits::default());
        let mut buf = BytesMut::from(&wire[..6]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        dec.payload_buffer().unwrap().put_slice(&wire[6..8]);
        let frame = dec.feed_payload(&wire[8..]).unwrap();
        assert_eq!(&frame.payload[..], b"Hello");
    }

    /// A frame buffer, and the spare it becomes, is at most the frame: it
    /// grows by doubling as the payload arrives, but not past the frame's
    /// length. A 10 MiB frame's buffer doubled to 16 MiB, so two spares
    /// could hold 32 MiB where `Config` promises at most 2 x
    /// `max_frame_size`.
    #[test]
    fn rfc6455_5_2_a_frame_buffer_is_at_most_its_frame() {
        const LEN: usize = 10 << 20;
        let mut dec = FrameDecoder::new(Role::Server, Limits::default());
        drop(split_frame(&mut dec, LEN));
        assert!(
            dec.spare_capacity() <= LEN,
            "{} bytes of spare for one {LEN}-byte frame",
            dec.spare_capacity()
        );
        dec.release_spares();
        let first = split_frame(&mut dec, LEN);
        let second = split_frame(&mut dec, LEN);
        drop((first, second));
        assert!(
            dec.spare_capacity() <= 2 * LEN,
            "{} bytes of spares for two {LEN}-byte frames",
            dec.spare_capacity()
        );
    }

    /// A small frame arriving in pieces does not take a large spare: the
    /// message would keep all of it alive while it waits unread (a 100-byte
    /// message kept a 16 MiB buffer), where a message's own buffer is
    /// promised at most twice its size.
    #[test]
    fn rfc6455_5_2_a_small_pending_frame_does_not_take_a_large_spare() {
        let mut dec = FrameDecoder::new(Role::Server, Limits::default());
        let large = split_frame(&mut dec, 4 << 20);
        let at = large.payload.as_ptr() as usize;
        drop(large);
        let small = split_frame(&mut dec, 100);
        let small_at = small.payload.as_ptr() as usize;
        assert!(
            !(at..at + (4 << 20)).contains(&small_at),
            "a 100-byte frame took the 4 MiB spare"
        );
    }

    /// Decodes one server-bound binary frame of `len` bytes that arrives
    /// in two reads, so it goes through a frame buffer of its own.
    fn split_frame(dec: &mut FrameDecoder, len: usize) -> Frame {
        use crate::{FrameEncoder, Rsv};
        let mut enc = FrameEncoder::new(Role::Client, || [1u8, 2, 3, 4]);
        let mut wire = BytesMut::new();
        enc.encode(
            true,
            Rsv::NONE,
            OpCode::Binary,
            &alloc::vec![7u8; len],
            &mut wire,
        );
        let mut buf = wire.split_to(wire.len() / 2);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        let frame = dec.feed_payload(&wire).unwrap();
        assert_eq!(frame.payload.len(), len);
        frame
    }

    /// Frames the application still holds while the next ones arrive (an
    /// adapter reads ahead) are each given back as a spare once dropped,
    /// up to `SPARE_SLOTS` of them while they total at most
    /// `SPARE_POOL_BYTES`, and reused rather than allocated again.
    #[test]
    fn spares_recycle_the_buffers_of_frames_read_ahead() {
        let mut dec = FrameDecoder::new(Role::Server, Limits::default());
        let held: alloc::vec::Vec<Frame> =
            (0..12).map(|_| split_frame(&mut dec, 64 << 10)).collect();
        let starts = held.iter().map(|f| f.payload.as_ptr() as usize);
        let buffers: alloc::collections::BTreeSet<usize> = starts.collect();
        assert_eq!(buffers.len(), 12, "each held frame has its own buffer");
        drop(held);
        let kept = dec.spare_capacity();
        assert_eq!(kept, SPARE_SLOTS * (64 << 10), "eight 64 KiB spares");
        // the next eight frames reuse them: the pool neither grows nor
        // shrinks
        let again: alloc::vec::Vec<Frame> = (0..SPARE_SLOTS)
            .map(|_| split_frame(&mut dec, 64 << 10))
            .collect();
        assert_eq!(dec.spare_capacity(), kept);
        drop(again);
    }

    /// Taking spares out and keeping them back, any number per turn, loses
    /// none: each is taken from where it is and kept as the newest.
    #[test]
    fn spares_taken_and_kept_back_are_never_lost() {
        let mut spares = Spares::default();
        let bufs: alloc::vec::Vec<BytesMut> = (0..SPARE_SLOTS)
            .map(|_| BytesMut::with_capacity(1000))
            .collect();
        let starts: alloc::collections::BTreeSet<usize> =
            bufs.iter().map(|b| b.as_ptr() as usize).collect();
        for buf in bufs {
            spares.keep(buf, 1000);
        }
        for per_turn in [3, 5, 1, 7, 2] {
            let taken: alloc::vec::Vec<_> = (0..per_turn)
                .map(|_| spares.take(1000, 1000).unwrap())
                .collect();
            for (buf, size) in taken {
                assert_eq!(size, 1000);
                spares.keep(buf, size);
            }
        }
        let again: alloc::collections::BTreeSet<usize> = (0..SPARE_SLOTS)
            .map(|_| spares.take(1000, 1000).unwrap().0.as_ptr() as usize)
            .collect();
        assert_eq!(again, starts);
        assert!(spares.take(1000, 1000).is_none());
    }

    /// Large spares beyond the two newest go once the pool passes
    /// `SPARE_POOL_BYTES`; the two newest stay whatever their size.
    #[test]
    fn spares_beyond_the_two_newest_stay_within_the_pool_bytes() {
        let mut dec = FrameDecoder::new(Role::Server, Limits::default());
        let held: alloc::vec::Vec<Frame> = (0..4).map(|_| split_frame(&mut dec, 1 << 20)).collect();
        drop(held);
        let kept = dec.spare_capacity();
        assert!(
            (2 << 20..3 << 20).contains(&kept),
            "the two newest 1 MiB buffers only: {kept} bytes"
        );
    }

    /// Releasing spares over a size leaves at most two, none over it: an
    /// idle connection's bound.
    #[test]
    fn released_spares_leave_at_most_two_small_ones() {
        let mut dec = FrameDecoder::new(Role::Server, Limits::default());
        let mut held: alloc::vec::Vec<Frame> =
            (0..6).map(|_| split_frame(&mut dec, 16 << 10)).collect();
        held.push(split_frame(&mut dec, 1 << 20));
        drop(held);
        assert!(dec.spare_capacity() > 1 << 20);
        dec.release_spares_over(64 << 10);
        let left = dec.spare_capacity();
        assert!(left > 0 && left <= 2 * (64 << 10), "{left} bytes left");
        dec.release_spares_over(1 << 10);
        assert_eq!(dec.spare_capacity(), 0);
        assert!(dec.spares.is_none());
    }

    /// The buffer handed out never takes more than the frame still needs.
    #[test]
    fn rfc6455_5_2_payload_buffer_is_limited_to_the_frame() {
        let mut dec = FrameDecoder::new(Role::Client, Limits::default());
        let mut buf = BytesMut::from(&[0x82u8, 0x7e, 0x01, 0x00][..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        let into = dec.payload_buffer().unwrap();
        assert_eq!(into.remaining_mut(), 256);
    }

    #[test]
    fn rfc6455_5_2_payload_arriving_in_pieces_is_unmasked_once() {
        let mut dec = FrameDecoder::new(Role::Server, Limits::default());
        // RFC 6455 5.7: masked "Hello"
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&wire[..8]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        let (h, part) = dec.partial_payload().unwrap();
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(part, b"He");
        buf.extend_from_slice(&wire[8..10]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(dec.partial_payload().unwrap().1, b"Hell");
        buf.extend_from_slice(&wire[10..]);
        let frame = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&frame.payload[..], b"Hello");
        assert!(buf.is_empty());
        assert!(dec.partial_payload().is_none());
    }

    #[test]
    fn rfc6455_7_4_1_oversized_frame_fails_before_payload() {
        let limits = Limits {
            max_frame_size: 10,
            ..Limits::default()
        };
        let mut dec = FrameDecoder::new(Role::Client, limits);
        let mut buf = BytesMut::from(&[0x82u8, 11][..]);
        let err = dec.decode(&mut buf).unwrap_err();
        assert_eq!(err.close_code(), 1009);
        // the decoder stays failed
        assert_eq!(dec.decode(&mut buf), Err(err));
    }

    #[test]
    fn zero_copy_for_whole_frames() {
        let mut dec = FrameDecoder::new(Role::Client, Limits::default());
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0x82, 3, 1, 2, 3, 0x82, 1, 9]);
        let base = buf.as_ptr() as usize;
        let f1 = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            f1.payload.as_ptr() as usize,
            base + 2,
            "payload is a view, not a copy"
        );
        let f2 = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&f2.payload[..], &[9]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }
}
