//! Incremental UTF-8 validation (RFC 6455 section 8.1).
//!
//! Owns [`Utf8Stream`]: text arrives in pieces (partial frames, fragments),
//! and each piece is checked as it arrives, so an invalid prefix fails the
//! connection before the rest of the frame comes (Autobahn 6.4.x "fail
//! fast"). A sequence split across pieces is carried (at most 3 bytes).

/// A streaming UTF-8 validator: feed pieces in order, then `finish`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Utf8Stream {
    carry: [u8; 4],
    carry_len: u8,
}

/// The input is not UTF-8 (or cannot be completed into UTF-8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

/// The length of the sequence a lead byte starts, for the leads that can
/// begin a valid sequence (0xC2-0xF4).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Where a sequence that `data` cuts off starts (a lead byte in its last
/// 3 bytes with fewer bytes after it than the sequence needs), or
/// `data.len()`. Only lead bytes count, so whatever precedes the cut is
/// checked on its own and the cut-off part (at most 3 bytes) apart.
fn unfinished_tail(data: &[u8]) -> usize {
    for back in 1..=data.len().min(3) {
        let at = data.len() - back;
        let byte = data[at];
        if byte & 0xC0 != 0x80 {
            // a lead (or ASCII) byte: cut before it if its sequence is longer
            // than what follows it
            let starts_sequence = byte >= 0xC0;
            return if starts_sequence && sequence_len(byte) > back {
                at
            } else {
                data.len()
            };
        }
    }
    data.len()
}

impl Utf8Stream {
    /// Checks the next piece. Errors as soon as the bytes so far cannot be
    /// the prefix of valid UTF-8.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.carry_len > 0 {
            let have = usize::from(self.carry_len);
            let need = sequence_len(self.carry[0]);
            let take = (need - have).min(data.len());
            self.carry[have..have + take].copy_from_slice(&data[..take]);
            data = &data[take..];
            let now = have + take;
            match simdutf8::compat::from_utf8(&self.carry[..now]) {
                Ok(_) => self.carry_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {
                    // still a valid, incomplete prefix; data is exhausted
                    self.carry_len = now as u8;
                    return Ok(());
                }
            }
        }
        // The bulk up to a sequence the piece cuts off, with the faster
        // yes/no check (`basic`, a third of the time of a large text frame
        // read into its buffer went to `compat`); only the cut-off tail,
        // at most 3 bytes, needs `compat`'s "invalid or just incomplete".
        let cut = unfinished_tail(data);
        let (bulk, tail) = data.split_at(cut);
        if simdutf8::basic::from_utf8(bulk).is_err() {
            return Err(InvalidUtf8);
        }
        match simdutf8::compat::from_utf8(tail) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let rest = &tail[e.valid_up_to()..];
                self.carry[..rest.len()].copy_from_slice(rest);
                self.carry_len = rest.len() as u8;
                Ok(())
            }
        }
    }

    /// Whether the text fed so far is complete UTF-8 (no sequence cut off).
    pub(crate) fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.carry_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn check_split(data: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut s = Utf8Stream::default();
        let mut last = 0;
        for &c in cuts {
            s.feed(&data[last..c])?;
            last = c;
        }
        s.feed(&data[last..])?;
        s.finish()
    }

    #[test]
    fn rfc6455_8_1_split_sequence_across_pieces() {
        let euro = "€".as_bytes(); // E2 82 AC
        assert_eq!(check_split(euro, &[1, 2]), Ok(()));
        let mut s = Utf8Stream::default();
        s.feed(&euro[..2]).unwrap();
        assert_eq!(s.finish(), Err(InvalidUtf8));
    }

    #[test]
    fn rfc6455_8_1_fails_on_invalid_prefix_immediately() {
        let mut s = Utf8Stream::default();
        // CE BA E1 BD B9 CF 83 CE BC CE B5 ED A0 80: Autobahn 6.4.1, a surrogate
        s.feed(&[
            0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5,
        ])
        .unwrap();
        assert_eq!(s.feed(&[0xED]), Ok(()));
        assert_eq!(s.feed(&[0xA0]), Err(InvalidUtf8));
        // F4 90: above U+10FFFF, invalid after 2 bytes
        let mut s = Utf8Stream::default();
        assert_eq!(s.feed(&[0xF4]), Ok(()));
        assert_eq!(s.feed(&[0x90]), Err(InvalidUtf8));
    }

    #[test]
    fn rfc6455_8_1_a_piece_cut_inside_a_sequence_carries_it() {
        // long enough for the vector path; ends two bytes into "€"
        let mut text = "ab€".repeat(40).into_bytes();
        text.extend_from_slice(&[0xE2, 0x82]);
        let mut s = Utf8Stream::default();
        assert_eq!(s.feed(&text), Ok(()));
        assert_eq!(s.finish(), Err(InvalidUtf8));
        assert_eq!(s.feed(&[0xAC]), Ok(()));
        assert_eq!(s.finish(), Ok(()));
        // a cut-off tail that can never be completed fails at once
        let mut bad = "ab€".repeat(40).into_bytes();
        bad.extend_from_slice(&[0xF4, 0x90]);
        assert_eq!(Utf8Stream::default().feed(&bad), Err(InvalidUtf8));
        // an invalid byte before the cut fails too
        let mut early = "ab€".repeat(40).into_bytes();
        early[7] = 0xFF;
        early.extend_from_slice(&[0xE2]);
        assert_eq!(Utf8Stream::default().feed(&early), Err(InvalidUtf8));
    }

    proptest! {
        /// Any split of any byte string gives the same verdict as one pass.
        #[test]
        fn rfc6455_8_1_split_verdict_matches_whole(
            data in prop_oneof![
                any::<String>().prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(prop_oneof![Just(0xE2u8), Just(0x82), Just(0xAC), Just(0xF0), Just(0x9F), Just(0x61)], 0..20),
                // long enough for the vector paths, valid or with one byte changed
                (proptest::collection::vec(any::<char>(), 0..400), any::<prop::sample::Index>(), any::<u8>())
                    .prop_map(|(chars, at, byte)| {
                        let mut b = chars.into_iter().collect::<String>().into_bytes();
                        if byte & 1 == 1 && !b.is_empty() {
                            let i = at.index(b.len());
                            b[i] = byte;
                        }
                        b
                    }),
            ],
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            cuts.sort_unstable();
            let whole = core::str::from_utf8(&data).is_ok();
            prop_assert_eq!(check_split(&data, &cuts).is_ok(), whole);
        }
    }
}
