//! permessage-deflate (RFC 7692): negotiation and the extension itself.
//!
//! Owns three things, all sans-IO:
//! - the negotiation of section 7.1, as pure functions over the parsed
//!   `Sec-WebSocket-Extensions` entries of `tether-handshake`:
//!   [`client_offer`] and [`client_accept`] for a client,
//!   [`server_accept`] (with [`parse_offer`]) for a server;
//! - the agreement they produce, [`DeflateParams`];
//! - [`PerMessageDeflate`], the [`Extension`] that compresses and
//!   decompresses message payloads (section 7.2) per that agreement.
//!
//! Adapters do not call this module directly: [`Config::deflate`](crate::Config::deflate) switches
//! it on, and [`crate::upgrade`] offers, answers and installs it.
//!
//! # Choices
//! - **Window bits 8.** zlib (and zlib-rs) cannot write a raw deflate stream
//!   with a 256-byte window; it silently uses 512, which a peer that
//!   inflates with a 256-byte window may reject. So we never compress with a
//!   window under 9 bits: a server declines an offer whose
//!   `server_max_window_bits=8` (the next offer is tried), and a client told
//!   `client_max_window_bits=8` honours it by sending every message
//!   uncompressed (legal: RSV1 is per message; the client cannot decline an
//!   answer). Inflating with 8 is fine (we inflate with a 512-byte window,
//!   which accepts every 256-byte stream).
//! - **Threshold.** Messages shorter than [`DeflateConfig::threshold`]
//!   (default 32 bytes) go uncompressed: deflate cannot save anything
//!   worth the work there and often adds bytes.
//! - **Incompressible data under no-context-takeover.** When our direction
//!   resets its context after each message, a message whose compressed
//!   form is not smaller is sent uncompressed instead. (With context
//!   takeover this is not possible: the peer's window must see the data.)
//! - **Corrupt compressed data** ends the connection with 1007, as Node's
//!   `ws` does; inflating past `Config::max_message_size` with 1009.
//! - **A block with BFINAL set** (section 7.2.3.4) ends the inflater's
//!   stream but not the peer's LZ77 window: with context takeover the next
//!   message (and any blocks after it in the same message) may refer back
//!   into it. zlib drops its window when reset, and cannot hand it out, so
//!   with context takeover we keep the last window's worth of inflated
//!   bytes ourselves (a ring of 2^bits bytes, at most 32 KiB, allocated with
//!   the first compressed message) and give it to the fresh stream as its
//!   dictionary. Bytes after a final block are inflated as a new stream,
//!   whose dictionary also holds what the message inflated so far (with or
//!   without context takeover: that resets between messages only).
//! - **An empty compressed payload** holds no block: the trailer alone
//!   (`00 00 ff ff`) is a stored block's header cut short, and would leave
//!   the inflater inside a block, reading the next message's first bytes
//!   as its length. Such a message is empty and leaves the inflater as it
//!   was (a peer's compressor writes `00` for an empty message, section
//!   7.2.3.6).
//!
//! # Limits
//! Inflating grows its output buffer in bounded steps and never past the
//! message-size limit: a decompression bomb (a few KiB that inflate to
//! gigabytes) fails with 1009 once the output reaches the limit, having
//! allocated at most the limit. The compressed input is bounded by the
//! same limit, and 0.1% + 64 bytes more for data that does not compress,
//! through the frame headers. A compressed message keeps a buffer of at
//! most twice its length while it waits in the output.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tether_frame::{Role, Rsv};
use tether_handshake::Extension as Offer;

use crate::{CloseCode, DecodeJob, Extension, ExtensionError, MessageKind};

/// The extension's token in `Sec-WebSocket-Extensions`.
pub const NAME: &str = "permessage-deflate";

/// The four bytes a sync flush ends with, removed before sending and put
/// back before inflating (RFC 7692 sections 7.2.1 and 7.2.2).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// The smallest window zlib can compress with (see the module docs).
const MIN_COMPRESS_BITS: u8 = 9;

/// How to use permessage-deflate, in either role; set
/// [`Config::deflate`](crate::Config::deflate) to switch it on.
///
/// Each field names a constraint on one side's compressor; a client offers
/// it, a server asks for it in its answer. The defaults (no constraint,
/// level 6, threshold 32) compress well with a 32 KiB window each way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Messages shorter than this many bytes are sent uncompressed.
    /// Default 32.
    pub threshold: usize,
    /// zlib compression level, 0 (store) to 9 (smallest); 1 is fastest.
    /// Default 6 (zlib's default). Values over 9 count as 9.
    pub level: u32,
    /// The server resets its compression context after each message
    /// (RFC 7692 section 7.1.1.1): a client asks for it, a server declares
    /// it. Saves the peer's memory, costs ratio. Default off.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after each message
    /// (section 7.1.1.2): a client declares it, a server requires it.
    /// Default off.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window, as a power of two (8..=15), the server may
    /// compress with (section 7.1.2.1): a client asks for it (when under
    /// 15), a server uses at most this (at least 9, see the module docs).
    /// Out-of-range values are clamped. Default 15.
    pub server_max_window_bits: u8,
    /// The largest window the client may compress with (section 7.1.2.2): a
    /// client offers it as a hint (when under 15; at least 9), a server asks
    /// for it when the client's offer allows. Out-of-range values are
    /// clamped. Default 15.
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            threshold: 32,
            level: 6,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// What a negotiation agreed (RFC 7692 section 7.1), the same for both
/// roles: which side resets its context, and each side's largest window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server compresses with at most this window (8..=15).
    pub server_max_window_bits: u8,
    /// The client compresses with at most this window (8..=15).
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    /// No parameters: context takeover and 15-bit windows both ways.
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// Why an offer was declined or an answer refused, naming the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NegotiationError {
    /// A parameter RFC 7692 does not define.
    UnknownParameter(String),
    /// A parameter given twice (section 7.1: "MUST NOT" / decline).
    DuplicateParameter(String),
    /// A parameter whose value is missing, present where none is allowed,
    /// or not a window size 8..=15 without leading zeros.
    InvalidValue {
        /// The parameter.
        name: String,
        /// The value received (`None`: no value).
        value: Option<String>,
    },
    /// The server's answer does not fit the client's offer.
    AnswerMismatch(String),
    /// More than one permessage-deflate entry in the server's answer.
    SeveralAnswers,
    /// A server cannot honour the offer (e.g. `server_max_window_bits=8`).
    CannotHonour(String),
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownParameter(p) => write!(
                f,
                "permessage-deflate has no parameter {p:?} (RFC 7692 section 7.1)"
            ),
            Self::DuplicateParameter(p) => write!(
                f,
                "permessage-deflate parameter {p} appears twice (RFC 7692 section 7.1)"
            ),
            Self::InvalidValue { name, value: None } => write!(
                f,
                "permessage-deflate parameter {name} needs a value 8 to 15 (RFC 7692 section 7.1.2)"
            ),
            Self::InvalidValue {
                name,
                value: Some(v),
            } if name.ends_with("no_context_takeover") => write!(
                f,
                "permessage-deflate parameter {name} takes no value, got {v:?} (RFC 7692 section 7.1.1)"
            ),
            Self::InvalidValue {
                name,
                value: Some(v),
            } => write!(
                f,
                "permessage-deflate parameter {name}={v} is not a window size 8 to 15 (RFC 7692 section 7.1.2)"
            ),
            Self::AnswerMismatch(why) => write!(
                f,
                "the server's permessage-deflate answer does not fit our offer: {why} (RFC 7692 section 7.1)"
            ),
            Self::SeveralAnswers => f.write_str(
                "the server accepted permessage-deflate more than once (RFC 7692 section 5)",
            ),
            Self::CannotHonour(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for NegotiationError {}

/// The parameters of one offer (or answer), checked for the grammar of
/// RFC 7692 section 7.1: known names, each at most once, values right.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfferParams {
    /// `server_no_context_takeover` is present.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover` is present.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N`.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` without (`Some(None)`) or with a value.
    pub client_max_window_bits: Option<Option<u8>>,
}

/// Parses a window size: "8" to "15", digits only, no leading zero.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 2 {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

/// Checks one permessage-deflate entry (an offer or an answer) against the
/// grammar of RFC 7692 section 7.1. `client_max_window_bits` may come
/// without a value here; an answer must give one ([`client_accept`] checks).
///
/// # Errors
/// The first unknown or repeated parameter, or bad value.
pub fn parse_offer(offer: &Offer) -> Result<OfferParams, NegotiationError> {
    let mut out = OfferParams::default();
    let mut seen: [bool; 4] = [false; 4];
    for p in offer.params() {
        let name = p.name();
        let slot = match name {
            SERVER_NO_CONTEXT_TAKEOVER => 0,
            CLIENT_NO_CONTEXT_TAKEOVER => 1,
            SERVER_MAX_WINDOW_BITS => 2,
            CLIENT_MAX_WINDOW_BITS => 3,
            _ => return Err(NegotiationError::UnknownParameter(name.to_string())),
        };
        if core::mem::replace(&mut seen[slot], true) {
            return Err(NegotiationError::DuplicateParameter(name.to_string()));
        }
        let invalid = || NegotiationError::InvalidValue {
            name: name.to_string(),
            value: p.value().map(ToString::to_string),
        };
        match (slot, p.value()) {
            (0, None) => out.server_no_context_takeover = true,
            (1, None) => out.client_no_context_takeover = true,
            (2, Some(v)) => out.server_max_window_bits = Some(window_bits(v).ok_or_else(invalid)?),
            (3, None) => out.client_max_window_bits = Some(None),
            (3, Some(v)) => {
                out.client_max_window_bits = Some(Some(window_bits(v).ok_or_else(invalid)?));
            }
            _ => return Err(invalid()),
        }
    }
    Ok(out)
}

fn clamp_peer_bits(bits: u8) -> u8 {
    bits.clamp(8, 15)
}

fn clamp_own_bits(bits: u8) -> u8 {
    bits.clamp(MIN_COMPRESS_BITS, 15)
}

/// The offer a client sends for `config` (RFC 7692 section 7.1): always
/// `client_max_window_bits` (with our window when under 15, so a server may
/// limit our window), plus the constraints `config` asks for.
pub fn client_offer(config: &DeflateConfig) -> Offer {
    let mut offer = Offer::new(NAME);
    if config.server_no_context_takeover {
        offer = offer.with_flag(SERVER_NO_CONTEXT_TAKEOVER);
    }
    if config.client_no_context_takeover {
        offer = offer.with_flag(CLIENT_NO_CONTEXT_TAKEOVER);
    }
    let server_bits = clamp_peer_bits(config.server_max_window_bits);
    if server_bits < 15 {
        offer = offer.with_param(SERVER_MAX_WINDOW_BITS, server_bits.to_string());
    }
    let client_bits = clamp_own_bits(config.client_max_window_bits);
    if client_bits < 15 {
        offer = offer.with_param(CLIENT_MAX_WINDOW_BITS, client_bits.to_string());
    } else {
        offer = offer.with_flag(CLIENT_MAX_WINDOW_BITS);
    }
    offer
}

/// A client's check of the server's answer `answer` to
/// [`client_offer`]`(config)` (RFC 7692 section 7.1): the agreement, or why
/// the connection must fail.
///
/// # Errors
/// A malformed answer, or one that breaks the offer: a window larger than
/// offered, `client_max_window_bits` without a value, or a constraint we
/// asked for that the answer leaves out.
pub fn client_accept(
    config: &DeflateConfig,
    answer: &Offer,
) -> Result<DeflateParams, NegotiationError> {
    let got = parse_offer(answer)?;
    let offered = parse_offer(&client_offer(config))?;
    let mismatch = |why: &str| Err(NegotiationError::AnswerMismatch(why.to_string()));
    if offered.server_no_context_takeover && !got.server_no_context_takeover {
        return mismatch("we asked for server_no_context_takeover and the answer leaves it out");
    }
    let server_bits = match (offered.server_max_window_bits, got.server_max_window_bits) {
        (Some(_), None) => {
            return mismatch("we asked for server_max_window_bits and the answer leaves it out");
        }
        (Some(asked), Some(given)) if given > asked => {
            return Err(NegotiationError::AnswerMismatch(format!(
                "server_max_window_bits={given} is larger than the {asked} we asked for"
            )));
        }
        (_, Some(given)) => given,
        (None, None) => 15,
    };
    let client_bits = match (offered.client_max_window_bits, got.client_max_window_bits) {
        (_, Some(None)) => {
            return mismatch("client_max_window_bits in an answer needs a value");
        }
        (None, Some(_)) => {
            return mismatch("client_max_window_bits, which we did not offer");
        }
        (Some(Some(hint)), Some(Some(given))) if given > hint => {
            return Err(NegotiationError::AnswerMismatch(format!(
                "client_max_window_bits={given} is larger than the {hint} we offered"
            )));
        }
        (_, Some(Some(given))) => given,
        (Some(Some(hint)), None) => hint,
        (_, None) => 15,
    };
    Ok(DeflateParams {
        server_no_context_takeover: got.server_no_context_takeover,
        client_no_context_takeover: got.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    })
}

/// A server's answer to one offer (RFC 7692 section 7.1), or why it is
/// declined.
///
/// # Errors
/// A malformed offer, or `server_max_window_bits=8` (see the module docs).
pub fn answer_offer(
    config: &DeflateConfig,
    offer: &Offer,
) -> Result<(DeflateParams, Offer), NegotiationError> {
    let got = parse_offer(offer)?;
    if got.server_max_window_bits == Some(8) {
        return Err(NegotiationError::CannotHonour(
            "server_max_window_bits=8: zlib cannot compress with a 256-byte window".into(),
        ));
    }
    let mut answer = Offer::new(NAME);
    let server_nct = got.server_no_context_takeover || config.server_no_context_takeover;
    if server_nct {
        answer = answer.with_flag(SERVER_NO_CONTEXT_TAKEOVER);
    }
    let client_nct = got.client_no_context_takeover || config.client_no_context_takeover;
    if client_nct {
        answer = answer.with_flag(CLIENT_NO_CONTEXT_TAKEOVER);
    }
    let ours = clamp_own_bits(config.server_max_window_bits);
    let server_bits = got
        .server_max_window_bits
        .map_or(ours, |asked| asked.min(ours));
    if got.server_max_window_bits.is_some() || server_bits < 15 {
        answer = answer.with_param(SERVER_MAX_WINDOW_BITS, server_bits.to_string());
    }
    let wanted = clamp_peer_bits(config.client_max_window_bits);
    let client_bits = match got.client_max_window_bits {
        // the client cannot be limited; it may use any window
        None => 15,
        Some(hint) => {
            let hint = hint.unwrap_or(15);
            if wanted < hint {
                answer = answer.with_param(CLIENT_MAX_WINDOW_BITS, wanted.to_string());
                wanted
            } else {
                hint
            }
        }
    };
    let params = DeflateParams {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    };
    Ok((params, answer))
}

/// A server's choice among the client's `offers` (every extension entry of
/// the request, in order): the first permessage-deflate offer it can
/// honour, with the agreement and the entry to answer with. Offers it
/// cannot honour are declined (RFC 7692 section 5); `None` when none fits.
pub fn server_accept(config: &DeflateConfig, offers: &[Offer]) -> Option<(DeflateParams, Offer)> {
    offers
        .iter()
        .filter(|o| o.name() == NAME)
        .find_map(|o| answer_offer(config, o).ok())
}

// ----- the extension ------------------------------------------------------

/// The permessage-deflate [`Extension`] for one connection: RSV1 marks a
/// compressed message (first frame only), payloads are raw DEFLATE with
/// the sync-flush trailer removed (RFC 7692 section 7.2).
pub struct PerMessageDeflate {
    /// The compressor, built on first use and again after
    /// [`Extension::release_idle`] freed it (only when it is reset after
    /// every message anyway).
    compress: Option<Compress>,
    /// Our window, when we compress at all (`None` for 8 bits: zlib cannot).
    compress_bits: Option<u8>,
    level: Compression,
    /// The decompressor, built on first use, like `compress`.
    decompress: Option<Decompress>,
    decompress_bits: u8,
    /// With context takeover for the peer: the last bytes inflated, for a
    /// block with BFINAL set (see the module's Choices).
    history: History,
    reset_compress: bool,
    reset_decompress: bool,
    threshold: usize,
    largest_buffer: usize,
}

impl fmt::Debug for PerMessageDeflate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerMessageDeflate")
            .field("compresses", &self.compress_bits.is_some())
            .field("reset_compress", &self.reset_compress)
            .field("reset_decompress", &self.reset_decompress)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl PerMessageDeflate {
    /// The extension for our `role` under the agreement `params`, with the
    /// level and threshold of `config`.
    pub fn new(role: Role, params: &DeflateParams, config: &DeflateConfig) -> Self {
        let (own_bits, own_reset, peer_bits, peer_reset) = match role {
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
                params.client_max_window_bits,
                params.client_no_context_takeover,
            ),
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
                params.server_max_window_bits,
                params.server_no_context_takeover,
            ),
        };
        let level = Compression::new(config.level.min(9));
        let compress_bits = (own_bits >= MIN_COMPRESS_BITS).then_some(own_bits.min(15));
        Self {
            compress: None,
            compress_bits,
            level,
            decompress: None,
            // A wider window inflates every narrower stream (8 becomes 9).
            decompress_bits: clamp_own_bits(peer_bits),
            history: History::new(clamp_own_bits(peer_bits)),
            reset_compress: own_reset,
            reset_decompress: peer_reset,
            threshold: config.threshold,
            largest_buffer: 0,
        }
    }

    /// The largest output buffer inflating has allocated so far, in bytes
    /// (never more than the message-size limit in force).
    pub fn largest_buffer(&self) -> usize {
        self.largest_buffer
    }

    /// Compresses one message: the DEFLATE blocks of a sync flush without
    /// their trailing `00 00 ff ff` (RFC 7692 section 7.2.1). `None` when
    /// the compressor failed (it is then reset; send the message plain).
    pub fn compress(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        let (bits, level) = (self.compress_bits?, self.level);
        let c = self
            .compress
            .get_or_insert_with(|| Compress::new_with_window_bits(level, false, bits));
        let out = deflate_sync(c, input);
        if out.is_none() || self.reset_compress {
            // after a failure the context is unknown: start a fresh one (the
            // peer's window may hold more, which a new stream never uses)
            c.reset();
        }
        out
    }

    /// Decompresses one message (RFC 7692 section 7.2.2): appends the
    /// trailer and inflates, never holding more than `max` bytes of output.
    ///
    /// # Errors
    /// 1009 when the output would exceed `max`; 1007 for corrupt data.
    pub fn decompress(&mut self, input: &[u8], max: usize) -> Result<Vec<u8>, ExtensionError> {
        let bits = self.decompress_bits;
        let d = self
            .decompress
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        if input.is_empty() {
            return Ok(Vec::new());
        }
        let takeover = !self.reset_decompress;
        let out = inflate_bounded(
            d,
            input,
            max,
            (&mut self.history, takeover),
            &mut self.largest_buffer,
        )?;
        if self.reset_decompress {
            d.reset(false);
        }
        Ok(out)
    }
}

/// The last bytes inflated, up to the inflater's window (`2^bits`): a ring,
/// allocated with the first message it keeps, that costs a copy of each
/// message's last window's worth of bytes.
struct History {
    bits: u8,
    ring: Vec<u8>,
    /// Where the next byte goes, once the ring is full.
    end: usize,
}

impl History {
    fn new(bits: u8) -> Self {
        Self {
            bits,
            ring: Vec::new(),
            end: 0,
        }
    }

    fn size(&self) -> usize {
        1 << self.bits
    }

    /// Appends what a message inflated to, keeping the last `2^bits` bytes.
    fn push(&mut self, bytes: &[u8]) {
        let size = self.size();
        if self.ring.capacity() < size {
            self.ring.reserve_exact(size - self.ring.len());
        }
        let mut bytes = bytes
            .get(bytes.len().saturating_sub(size)..)
            .unwrap_or(bytes);
        // filling up: append
        let (now, later) = bytes.split_at(bytes.len().min(size - self.ring.len()));
        self.ring.extend_from_slice(now);
        bytes = later;
        // full: overwrite the oldest, from `end` on, wrapping once at most
        while let Some(slot) = self.ring.get_mut(self.end..)
            && !bytes.is_empty()
        {
            let n = bytes.len().min(slot.len());
            let (now, later) = bytes.split_at(n);
            slot[..n].copy_from_slice(now);
            self.end = (self.end + n) % size;
            bytes = later;
        }
    }

    /// The last `2^bits` bytes of what was inflated before followed by
    /// `more`: the dictionary of a stream that goes on after a final block.
    fn window_with(&self, more: &[u8]) -> Vec<u8> {
        let size = self.size();
        let more = more.get(more.len().saturating_sub(size)..).unwrap_or(more);
        let (newer, older) = self.ring.split_at(self.end.min(self.ring.len()));
        let old_len = self.ring.len();
        let skip = (old_len + more.len()).saturating_sub(size);
        let mut window = Vec::with_capacity(size.min(old_len + more.len()));
        window.extend(older.iter().chain(newer).skip(skip));
        window.extend_from_slice(more);
        window
    }
}

/// Runs a sync flush of `input` through `c` into a fresh buffer and strips
/// the trailer.
fn deflate_sync(c: &mut Compress, input: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(input.len() / 2 + 64);
    let start = c.total_in();
    loop {
        let consumed = usize::try_from(c.total_in() - start).ok()?;
        let rest = input.get(consumed..)?;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
        c.compress_vec(rest, &mut out, FlushCompress::Sync).ok()?;
        let consumed = usize::try_from(c.total_in() - start).ok()?;
        // done once all input is in and the flush left room in the buffer
        if consumed == input.len() && out.len() < out.capacity() {
            break;
        }
    }
    if !out.ends_with(&TRAILER) {
        return None;
    }
    out.truncate(out.len() - TRAILER.len());
    // the message may be queued by reference and keeps its buffer for as
    // long as it waits, while the output limit counts its length: no more
    // than twice that (the first reservation is half the input's size,
    // whatever it compresses to)
    if out.capacity() > 2 * out.len() {
        out.shrink_to_fit();
    }
    Some(out)
}

fn too_big(max: usize) -> ExtensionError {
    ExtensionError {
        code: CloseCode::MESSAGE_TOO_BIG,
        reason: format!("message over {max} bytes once decompressed"),
    }
}

fn corrupt(detail: &str) -> ExtensionError {
    ExtensionError {
        code: CloseCode::INVALID_PAYLOAD,
        reason: format!("corrupt permessage-deflate data: {detail}"),
    }
}

/// Inflates `input` followed by the sync-flush trailer into a buffer that
/// grows in steps (doubling, at most to `max`), so that a bomb fails as
/// soon as its output passes `max`. With context takeover (`history.1`),
/// the output joins the history (which is empty without it).
fn inflate_bounded(
    d: &mut Decompress,
    input: &[u8],
    max: usize,
    history: (&mut History, bool),
    largest: &mut usize,
) -> Result<Vec<u8>, ExtensionError> {
    let (history, takeover) = history;
    let (mut stage, mut pos, mut out, mut overhead) = (0, 0, Vec::new(), 0);
    loop {
        let at = Progress {
            stage: &mut stage,
            pos: &mut pos,
            out: &mut out,
            overhead: &mut overhead,
        };
        if inflate_some(d, input, at, max, usize::MAX, history, largest)? {
            if takeover {
                history.push(&out);
            }
            return Ok(out);
        }
    }
}

/// How far the inflating of one message got: the stage (0 its payload, 1
/// the trailer), the position in that stage's bytes, the output so far,
/// and the work done beyond the output ([`STREAM_RESTART_COST`] for each
/// stream that went on past a final block).
struct Progress<'a> {
    stage: &'a mut u8,
    pos: &'a mut usize,
    out: &'a mut Vec<u8>,
    overhead: &'a mut usize,
}

/// What going on past a final block costs, in bytes of output it counts
/// as: a reset inflater and a window's worth of dictionary copied in
/// (twice: into the dictionary, then into zlib's window). It counts with
/// the output against the message-size limit and the turn, so that a
/// message of empty final blocks (2 bytes each on the wire) can neither
/// hold a thread past its turn nor make the work per byte received
/// unbounded: at most `max_message_size` (at least 1 MiB, so a small
/// limit still allows a few restarts) and one restart of output and
/// restarts together. The restart at the end of a message counts toward
/// the turn only.
const STREAM_RESTART_COST: usize = 64 << 10;

/// Inflates more of `input` followed by the trailer into `job.output`:
/// about `step` more bytes of output at most (the output space handed to
/// the inflater per call is bounded by it). Returns `true` when all of the
/// input is inflated, `false` when the step was used up first; call again
/// to go on. A final block ends the inflater's stream: a new one goes on
/// with the rest, its dictionary the window of `history` (empty without
/// context takeover) and of the output so far, since a final block ends
/// neither the peer's window nor, without context takeover, the message
/// it resets at.
fn inflate_some(
    d: &mut Decompress,
    input: &[u8],
    at: Progress<'_>,
    max: usize,
    step: usize,
    history: &History,
    largest: &mut usize,
) -> Result<bool, ExtensionError> {
    let step = step.max(1);
    let Progress {
        stage,
        pos,
        out,
        overhead,
    } = at;
    if out.capacity() == 0 {
        let first = input.len().saturating_mul(4).clamp(256, 64 << 10).min(max);
        out.reserve_exact(first);
    }
    // the work so far: the output and the restarts
    let stop_at = out.len().saturating_add(*overhead).saturating_add(step);
    loop {
        let part: &[u8] = if *stage == 0 { input } else { &TRAILER[..] };
        let rest = part.get(*pos..).unwrap_or_default();
        let before_in = d.total_in();
        let before_len = out.len();
        let at_limit = out.len() == out.capacity() && out.len() >= max;
        let status = if at_limit {
            // full at the limit: one more byte of output means too big
            let mut probe = [0u8; 1];
            let before_out = d.total_out();
            let status = d
                .decompress(rest, &mut probe, FlushDecompress::Sync)
                .map_err(|e| corrupt(&e.to_string()))?;
            if d.total_out() != before_out {
                return Err(too_big(max));
            }
            status
        } else {
            if out.len() == out.capacity() {
                let grow = out.capacity().max(256).min(max - out.len());
                out.reserve_exact(grow);
            }
            *largest = (*largest).max(out.capacity());
            // at most `step` of output per call: the rest of the capacity
            // is out of the inflater's reach until the next call
            let room = (out.capacity() - out.len())
                .min(stop_at.saturating_sub(out.len() + *overhead).max(1));
            let status = if room == out.capacity() - out.len() {
                d.decompress_vec(rest, out, FlushDecompress::Sync)
            } else {
                let start = out.len();
                out.resize(start + room, 0);
                let before_out = d.total_out();
                let status = d.decompress(rest, &mut out[start..], FlushDecompress::Sync);
                let made = usize::try_from(d.total_out() - before_out).unwrap_or(room);
                out.truncate(start + made.min(room));
                status
            }
            .map_err(|e| corrupt(&e.to_string()))?;
            if out.len() > max {
                return Err(too_big(max));
            }
            status
        };
        let used = usize::try_from(d.total_in() - before_in).unwrap_or(usize::MAX);
        *pos = pos.saturating_add(used);
        if status == Status::StreamEnd {
            // a final block (section 7.2.3.4): the stream ends, the
            // peer's window does not
            d.reset(false);
            let window = history.window_with(out);
            if !window.is_empty() {
                d.set_dictionary(&window)
                    .map_err(|e| corrupt(&e.to_string()))?;
            }
            *overhead = overhead.saturating_add(STREAM_RESTART_COST);
            if *stage == 1 || *pos >= input.len() {
                // it ended the payload (or inside our trailer): the
                // trailer, there for a sync flush, is not part of any
                // stream (its first bits, a stored block's header, came
                // with the payload)
                *largest = (*largest).max(out.capacity());
                return Ok(true);
            }
            // more blocks follow: a new stream, ended by a sync flush
            // (one restart beyond the limit, so a message of any allowed
            // size may end one stream and go on in another)
            let most = max.max(16 * STREAM_RESTART_COST);
            if out.len().saturating_add(*overhead) > most.saturating_add(STREAM_RESTART_COST) {
                return Err(ExtensionError {
                    code: CloseCode::MESSAGE_TOO_BIG,
                    reason: format!(
                        "message over {most} bytes of inflating work (its output and {} KiB for each final block it goes on past)",
                        STREAM_RESTART_COST >> 10
                    ),
                });
            }
            if out.len() + *overhead >= stop_at {
                return Ok(false);
            }
            continue;
        }
        // the inflater stopped with room to spare: nothing is pending
        let full = out.len() == out.capacity() || out.len() + *overhead >= stop_at;
        let drained = at_limit || !full;
        if *pos >= part.len() && drained {
            if *stage == 0 {
                *stage = 1;
                *pos = 0;
                continue;
            }
            *largest = (*largest).max(out.capacity());
            return Ok(true);
        }
        if drained && used == 0 && out.len() == before_len {
            return Err(corrupt("the inflater made no progress"));
        }
        if out.len() + *overhead >= stop_at {
            return Ok(false);
        }
    }
}

impl Extension for PerMessageDeflate {
    fn name(&self) -> &str {
        NAME
    }

    fn rsv(&self) -> Rsv {
        Rsv::RSV1
    }

    fn decode(
        &mut self,
        _kind: MessageKind,
        rsv: Rsv,
        payload: BytesMut,
        max_size: usize,
    ) -> Result<Bytes, ExtensionError> {
        if !rsv.contains(Rsv::RSV1) {
            return Ok(payload.freeze());
        }
        self.decompress(&payload, max_size).map(Bytes::from)
    }

    fn decode_step(
        &mut self,
        job: &mut DecodeJob,
        max_size: usize,
        step: usize,
    ) -> Result<Option<Bytes>, ExtensionError> {
        if !job.rsv.contains(Rsv::RSV1) {
            return Ok(Some(core::mem::take(&mut job.input).freeze()));
        }
        if job.input.is_empty() {
            // nothing compressed: an empty message, the inflater untouched
            // (the trailer alone is not a whole block and would leave it
            // inside one, reading the next message's first bytes as a
            // stored block's length)
            return Ok(Some(Bytes::new()));
        }
        let bits = self.decompress_bits;
        let d = self
            .decompress
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let at = Progress {
            stage: &mut job.stage,
            pos: &mut job.consumed,
            out: &mut job.output,
            overhead: &mut job.overhead,
        };
        let largest = &mut self.largest_buffer;
        if !inflate_some(d, &job.input, at, max_size, step, &self.history, largest)? {
            return Ok(None);
        }
        if self.reset_decompress {
            d.reset(false);
        } else {
            self.history.push(&job.output);
        }
        let mut output = core::mem::take(&mut job.output);
        // the message keeps its buffer for as long as it lives: no more
        // than twice what it holds (the first reservation is up to 64 KiB,
        // whatever the message inflates to)
        if output.capacity() > 2 * output.len() {
            output.shrink_to_fit();
        }
        Ok(Some(Bytes::from(output)))
    }

    fn encode(&mut self, _kind: MessageKind, payload: Bytes) -> (Rsv, Bytes) {
        if payload.len() < self.threshold {
            return (Rsv::NONE, payload);
        }
        match self.compress(&payload) {
            // without context takeover nothing is lost by sending it plain
            Some(out) if self.reset_compress && out.len() >= payload.len() => (Rsv::NONE, payload),
            Some(out) => (Rsv::RSV1, Bytes::from(out)),
            None => (Rsv::NONE, payload),
        }
    }

    /// Frees each context that is reset after every message anyway (no
    /// context takeover that way): an idle connection then holds no zlib
    /// state; the next message builds a fresh one, as the reset would.
    fn release_idle(&mut self) {
        if self.reset_compress {
            self.compress = None;
        }
        if self.reset_decompress {
            self.decompress = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::History;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    proptest! {
        /// The ring against the plain model: the window after any pushes,
        /// with more bytes after it, is the last `2^bits` bytes of all of
        /// them in order.
        #[test]
        fn history_keeps_the_last_window_of_bytes(
            pushes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1200), 0..12),
            more in proptest::collection::vec(any::<u8>(), 0..1200),
        ) {
            let mut history = History::new(9);
            let mut all: Vec<u8> = Vec::new();
            for bytes in &pushes {
                history.push(bytes);
                all.extend_from_slice(bytes);
                prop_assert!(history.ring.len() <= 512 && history.ring.capacity() <= 512);
            }
            let window = history.window_with(&more);
            all.extend_from_slice(&more);
            prop_assert_eq!(&window[..], &all[all.len().saturating_sub(512)..]);
        }
    }
}
