//! Payload masking (RFC 6455 section 5.3).
//!
//! Owns [`apply_mask`], the fast path every masked byte goes through, and
//! [`apply_mask_scalar`], the byte-at-a-time reference it is held to by
//! proptest. Masking is its own inverse, so the same call masks and unmasks.
//!
//! The word loops below are plain safe Rust that LLVM auto-vectorises
//! (SSE2 on x86_64, NEON on aarch64). With the `std` feature on x86_64 the
//! same loops are also compiled with AVX2 enabled and chosen at run time
//! when the CPU has it (`is_x86_feature_detected!`, cached by std), twice
//! the width per instruction. The crate's only `unsafe` blocks are here:
//! the two calls into those copies, sound because the feature was
//! detected first (see [`wide`]), and in [`extend_masked`] the length of a
//! buffer moved over the bytes just written into its spare room (so a
//! large payload is written once, not zero-filled first). Miri runs the
//! tests of this module in CI with AVX2 on and off.

use bytes::BytesMut;
use core::mem::MaybeUninit;

/// Below this many bytes the plain loop is used: the detection's atomic
/// load and the call cost more than the wider loop saves.
const WIDE_MIN: usize = 256;

/// XORs `buf` with the 4-byte masking `key`, starting `offset` bytes into the
/// key stream (RFC 6455 section 5.3: octet *i* is XORed with `key[i % 4]`).
///
/// `offset` lets a payload that arrives in pieces be unmasked piece by piece:
/// pass the number of payload bytes already unmasked. Only `offset % 4` matters.
///
/// ```
/// use tether_frame::apply_mask;
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut data = *b"Hello";
/// apply_mask(&mut data, key, 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]); // RFC 6455 5.7
/// // unmask in two pieces: "Hel" at offset 0, then "lo" at offset 3
/// let (a, b) = data.split_at_mut(3);
/// apply_mask(a, key, 0);
/// apply_mask(b, key, 3);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    if buf.len() >= WIDE_MIN && wide::apply(buf, key) {
        return;
    }
    xor_words(buf, key);
}

/// Writes `src` XOR the key stream (starting `offset` bytes into it) to
/// `dst`: unmasking while copying, in one pass. `dst` and `src` must have
/// the same length; extra bytes of the longer one are left alone.
#[inline]
pub fn copy_masked(dst: &mut [u8], src: &[u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    if n >= WIDE_MIN && wide::copy(dst, src, key) {
        return;
    }
    copy_xor_words(dst, src, key);
}

/// Appends `src` XOR the key stream (starting `offset` bytes into it) to
/// `dst`, writing each byte once: straight into `dst`'s spare room, which
/// is not zero-filled first (reserving room if `dst` has too little).
/// Unmasking a large payload into its frame's buffer this way replaces a
/// fill and a copy over the same bytes with the copy alone.
///
/// ```
/// use bytes::BytesMut;
/// use tether_frame::{apply_mask, extend_masked};
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut masked = *b"Hello";
/// apply_mask(&mut masked, key, 0);
/// let mut out = BytesMut::from(&b">"[..]);
/// extend_masked(&mut out, &masked[..3], key, 0);
/// extend_masked(&mut out, &masked[3..], key, 3);
/// assert_eq!(&out[..], b">Hello");
/// ```
#[inline]
pub fn extend_masked(dst: &mut BytesMut, src: &[u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    let n = src.len();
    dst.reserve(n);
    let Some(spare) = dst.spare_capacity_mut().get_mut(..n) else {
        // (never: `reserve` made the room) the plain way
        let at = dst.len();
        dst.extend_from_slice(src);
        if let Some(fresh) = dst.get_mut(at..) {
            xor_words(fresh, key);
        }
        return;
    };
    if !(n >= WIDE_MIN && wide::copy(spare, src, key)) {
        copy_xor_words(spare, src, key);
    }
    let len = dst.len() + n;
    // SAFETY: `spare` is the first `n` elements of `dst`'s spare room
    // (`old_len..capacity`), and the call above wrote every one of them
    // (`copy_xor_words`, plain or in `wide::copy_avx2`'s head and rest
    // split at the same point, writes each element of a destination as
    // long as its source, and `spare` and `src` are both `n` long), so the
    // `n` bytes past the old length are initialised and within capacity.
    // That rests on those two safe functions: audit them with this block.
    #[allow(unsafe_code)]
    unsafe {
        dst.set_len(len);
    }
}

/// The key twice, as one word: both halves are equal, so the pattern is
/// right in either byte order. Every word starts at key offset 0.
#[inline(always)]
fn key_word(key: [u8; 4]) -> u64 {
    let half = u64::from(u32::from_ne_bytes(key));
    half | (half << 32)
}

/// `buf` XOR the key stream from offset 0: a plain loop of word XORs with
/// a constant, which LLVM vectorises at the width the caller's target
/// features allow.
#[inline(always)]
fn xor_words(buf: &mut [u8], key: [u8; 4]) {
    let word = key_word(key);
    let (words, tail) = buf.as_chunks_mut::<8>();
    for w in words {
        *w = (u64::from_ne_bytes(*w) ^ word).to_ne_bytes();
    }
    xor_bytes(tail, key);
}

/// A byte the copying loop writes: one already initialised (`u8`), or
/// one not yet (`MaybeUninit<u8>`, a buffer's spare room).
trait Slot: Sized {
    fn set_word(word: &mut [Self; 8], bytes: [u8; 8]);
    fn set(&mut self, byte: u8);
}

impl Slot for u8 {
    #[inline(always)]
    fn set_word(word: &mut [Self; 8], bytes: [u8; 8]) {
        *word = bytes;
    }

    #[inline(always)]
    fn set(&mut self, byte: u8) {
        *self = byte;
    }
}

impl Slot for MaybeUninit<u8> {
    #[inline(always)]
    fn set_word(word: &mut [Self; 8], bytes: [u8; 8]) {
        *word = bytes.map(MaybeUninit::new);
    }

    #[inline(always)]
    fn set(&mut self, byte: u8) {
        self.write(byte);
    }
}

/// `dst = src XOR` the key stream from offset 0 (equal lengths). Writes
/// every element of `dst` when the lengths are equal, which is what
/// [`extend_masked`]'s length change relies on.
#[inline(always)]
fn copy_xor_words<S: Slot>(dst: &mut [S], src: &[u8], key: [u8; 4]) {
    debug_assert_eq!(dst.len(), src.len(), "copy_xor_words: unequal lengths");
    let word = key_word(key);
    let (dw, dt) = dst.as_chunks_mut::<8>();
    let (sw, st) = src.as_chunks::<8>();
    for (d, s) in dw.iter_mut().zip(sw) {
        S::set_word(d, (u64::from_ne_bytes(*s) ^ word).to_ne_bytes());
    }
    for (i, (d, s)) in dt.iter_mut().zip(st).enumerate() {
        d.set(s ^ key[i & 3]);
    }
}

/// The same loops compiled with AVX2, chosen at run time.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod wide {
    /// Masks `buf` with the AVX2 copy of the loop if this CPU has AVX2;
    /// false (nothing done) if not.
    #[inline]
    pub(super) fn apply(buf: &mut [u8], key: [u8; 4]) -> bool {
        if !std::is_x86_feature_detected!("avx2") {
            return false;
        }
        // SAFETY: `apply_avx2` only requires the CPU to support AVX2
        // (its body is safe code), which was detected just above.
        #[allow(unsafe_code)]
        unsafe {
            apply_avx2(buf, key);
        }
        true
    }

    /// As [`apply`], copying from `src` into `dst` (equal lengths; `dst`
    /// initialised or not: every element is written).
    #[inline]
    pub(super) fn copy<S: super::Slot>(dst: &mut [S], src: &[u8], key: [u8; 4]) -> bool {
        if !std::is_x86_feature_detected!("avx2") {
            return false;
        }
        // SAFETY: as in `apply`: AVX2 was detected just above.
        #[allow(unsafe_code)]
        unsafe {
            copy_avx2(dst, src, key);
        }
        true
    }

    /// Below this many bytes the wide loops start where the buffer does.
    const ALIGN_MIN: usize = 4096;

    /// How many bytes of a buffer of `len` bytes at `ptr` to mask before the
    /// wide loop (written to at `ptr`) reaches a 64-byte boundary: from there
    /// on, no 32-byte access straddles two cache lines. A large payload read
    /// straight into its frame's buffer starts wherever the header before it
    /// left off; unaligned, decoding 64 KiB and 1 MiB frames read that way
    /// was about 10% slower (`benches/RESULTS.md`). None below
    /// [`ALIGN_MIN`], where the few lines saved do not pay for the extra
    /// loop.
    #[inline(always)]
    fn unaligned_head(ptr: *const u8, len: usize) -> usize {
        if len < ALIGN_MIN {
            return 0;
        }
        ptr.align_offset(64).min(len)
    }

    #[target_feature(enable = "avx2")]
    fn apply_avx2(buf: &mut [u8], key: [u8; 4]) {
        let (head, rest) = buf.split_at_mut(unaligned_head(buf.as_ptr(), buf.len()));
        super::xor_words(head, key);
        super::xor_words(rest, super::rotate_key(key, head.len()));
    }

    #[target_feature(enable = "avx2")]
    fn copy_avx2<S: super::Slot>(dst: &mut [S], src: &[u8], key: [u8; 4]) {
        let at = unaligned_head(dst.as_ptr().cast(), dst.len());
        let (dst_head, dst_rest) = dst.split_at_mut(at);
        let (src_head, src_rest) = src.split_at(at);
        super::copy_xor_words(dst_head, src_head, key);
        super::copy_xor_words(dst_rest, src_rest, super::rotate_key(key, at));
    }
}

/// Without std (no run-time detection) or off x86_64: the plain loops.
#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
mod wide {
    #[inline(always)]
    pub(super) fn apply(_: &mut [u8], _: [u8; 4]) -> bool {
        false
    }

    #[inline(always)]
    pub(super) fn copy<S: super::Slot>(_: &mut [S], _: &[u8], _: [u8; 4]) -> bool {
        false
    }
}

/// The plain reference: one byte at a time, exactly as RFC 6455 section 5.3
/// writes it. [`apply_mask`] must give the same bytes for every input.
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

#[inline]
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    // as one word: `<[u8; 4]>::rotate_left` by a run-time amount compiles
    // to a call to memmove, once per unmasked piece
    let shift = u32::try_from(offset & 3).unwrap_or(0) * 8;
    u32::from_le_bytes(key).rotate_right(shift).to_le_bytes()
}

#[inline]
fn xor_bytes(buf: &mut [u8], key: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[test]
    fn rfc6455_5_3_mask_is_its_own_inverse() {
        let key = [1, 2, 3, 4];
        let orig: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut data = orig.clone();
        apply_mask(&mut data, key, 0);
        assert_ne!(data, orig);
        apply_mask(&mut data, key, 0);
        assert_eq!(data, orig);
    }

    /// Buffers large enough for the wide loops to start at a 64-byte
    /// boundary: every start within a cache line, every key offset, and a
    /// length that leaves a tail, each equal to the reference, masking in
    /// place and while copying (to a destination that starts elsewhere in
    /// its line than the source).
    #[test]
    fn rfc6455_5_3_aligned_wide_loops_match_scalar() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        // from where the wide loops align (`wide::ALIGN_MIN`)
        const ALIGN_MIN: usize = 4096;
        let data: Vec<u8> = (0..ALIGN_MIN + 200).map(|i| (i * 7 + 3) as u8).collect();
        // under Miri, a few starts: each byte costs it a thousandfold
        let step = if cfg!(miri) { 13 } else { 1 };
        for start in (0..64).step_by(step) {
            for len in [ALIGN_MIN, ALIGN_MIN + 61] {
                let offset = start % 5;
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast[start..start + len], key, offset);
                apply_mask_scalar(&mut slow[start..start + len], key, offset);
                assert_eq!(fast, slow, "in place, start {start}, len {len}");
                let mut dst = alloc::vec![0u8; len + 64];
                let at = (start * 13) % 64;
                copy_masked(
                    &mut dst[at..at + len],
                    &data[start..start + len],
                    key,
                    offset,
                );
                assert_eq!(
                    dst[at..at + len],
                    slow[start..start + len],
                    "copy, start {start}"
                );
                let mut grown = BytesMut::with_capacity(len + 64);
                grown.extend_from_slice(&dst[..at]);
                extend_masked(&mut grown, &data[start..start + len], key, offset);
                assert_eq!(
                    grown[at..],
                    slow[start..start + len],
                    "append, start {start}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The fast path equals the scalar reference over random lengths,
        /// key offsets and start alignments (the slice starts `align` bytes
        /// into its allocation).
        #[test]
        fn rfc6455_5_3_apply_mask_matches_scalar(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            key in any::<[u8; 4]>(),
            offset in 0usize..64,
            align in 0usize..16,
        ) {
            let align = align.min(data.len());
            let mut fast = data.clone();
            let mut slow = data.clone();
            apply_mask(&mut fast[align..], key, offset);
            apply_mask_scalar(&mut slow[align..], key, offset);
            prop_assert_eq!(fast, slow);
        }

        /// Copying while unmasking equals copying, then unmasking.
        #[test]
        fn rfc6455_5_3_copy_masked_matches_scalar(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            key in any::<[u8; 4]>(),
            offset in 0usize..64,
            align in 0usize..16,
        ) {
            let align = align.min(data.len());
            let mut slow = data[align..].to_vec();
            apply_mask_scalar(&mut slow, key, offset);
            let mut dst = alloc::vec![0u8; data.len() - align];
            copy_masked(&mut dst, &data[align..], key, offset);
            prop_assert_eq!(dst, slow);
        }

        /// Appending while unmasking, after whatever `dst` held and with
        /// whatever room it had spare, equals appending, then unmasking
        /// the appended part.
        #[test]
        fn rfc6455_5_3_extend_masked_matches_scalar(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            key in any::<[u8; 4]>(),
            offset in 0usize..64,
            held in 0usize..40,
            spare in 0usize..700,
        ) {
            let mut dst = BytesMut::with_capacity(held + spare);
            dst.extend_from_slice(&data[..held.min(data.len())]);
            let before = dst.to_vec();
            extend_masked(&mut dst, &data, key, offset);
            let mut slow = data.clone();
            apply_mask_scalar(&mut slow, key, offset);
            prop_assert_eq!(&dst[..before.len()], &before[..]);
            prop_assert_eq!(&dst[before.len()..], &slow[..]);
        }

        /// Unmasking in arbitrary pieces with running offsets equals one pass.
        #[test]
        fn rfc6455_5_3_apply_mask_in_pieces(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            key in any::<[u8; 4]>(),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);
            let mut pieces = data.clone();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
            points.push(0);
            points.push(data.len());
            points.sort_unstable();
            for w in points.windows(2) {
                apply_mask(&mut pieces[w[0]..w[1]], key, w[0]);
            }
            prop_assert_eq!(whole, pieces);
        }
    }
}
