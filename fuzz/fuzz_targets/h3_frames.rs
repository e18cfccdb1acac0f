//! Arbitrary bytes as an HTTP/3 stream's frames (RFC 9114 section 7),
//! through the vendored h3's `FrameStream` (the decoder every control and
//! request stream goes through, changed by tether: vendor/README.md), fed
//! whole and in pieces of an arbitrary size. Decoding must never panic,
//! never wait for bytes that will not come (the stream's end is known), and
//! give the same frames, the same bytes of every whole DATA frame and the
//! same end however the bytes are split: a frame judged by bytes that happened to have arrived
//! (a held frame taken as incomplete for ever, an unknown frame's skip)
//! would differ.
#![no_main]

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use h3::frame::{FrameStream, FrameStreamError};
use h3::proto::stream::StreamId;
use h3::quic::{RecvStream, StreamErrorIncoming};
use h3::stream::BufRecvStream;
use libfuzzer_sys::fuzz_target;

/// A receive stream that has all its bytes: each poll gives the next
/// piece, then the end.
struct Pieces(VecDeque<Bytes>);

impl RecvStream for Pieces {
    type Buf = Bytes;

    fn poll_data(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        Poll::Ready(Ok(self.0.pop_front()))
    }

    fn stop_sending(&mut self, _: u64) {}

    fn recv_id(&self) -> StreamId {
        StreamId::try_from(0u64).expect("stream 0 is a valid id")
    }
}

/// Everything the stream gave: each frame (DATA as its bytes, the rest as
/// written by `Debug`), then how it ended.
fn decode(data: &[u8], piece: usize) -> Vec<String> {
    let pieces = data
        .chunks(piece.max(1))
        .map(Bytes::copy_from_slice)
        .collect();
    let mut frames = FrameStream::<_, Bytes>::new(BufRecvStream::new(Pieces(pieces)));
    let mut cx = Context::from_waker(Waker::noop());
    let mut seen = Vec::new();
    // more polls than bytes cannot be needed: every poll takes a piece
    for _ in 0..=data.len() + 2 {
        match frames.poll_next(&mut cx) {
            Poll::Ready(Ok(Some(frame))) => {
                use h3::proto::frame::Frame;
                let (is_data, unbounded) = match frame {
                    Frame::Data(_) => (true, false),
                    // a WebTransport stream's rest, to its end
                    Frame::WebTransportStream(_) => (true, true),
                    _ => (false, false),
                };
                if !is_data {
                    seen.push(format!("{frame:?}"));
                    continue;
                }
                let mut bytes = Vec::new();
                let ended = loop {
                    match frames.poll_data(&mut cx) {
                        Poll::Ready(Ok(Some(mut chunk))) => {
                            while chunk.has_remaining() {
                                let c = chunk.chunk();
                                bytes.extend_from_slice(c);
                                let n = c.len();
                                chunk.advance(n);
                            }
                        }
                        Poll::Ready(Ok(None)) => break None,
                        Poll::Ready(Err(e)) => break Some(end(&e)),
                        Poll::Pending => panic!("DATA waits for bytes after the stream's end"),
                    }
                };
                if let Some(ended) = ended {
                    // how much of a frame cut short was handed out before
                    // the error depends on the pieces: only the error counts
                    seen.push(format!("{frame:?}"));
                    seen.push(ended);
                    return seen;
                }
                seen.push(format!("{frame:?} {bytes:?}"));
                if unbounded {
                    seen.push("end".into());
                    return seen;
                }
            }
            Poll::Ready(Ok(None)) => {
                seen.push("end".into());
                return seen;
            }
            Poll::Ready(Err(e)) => {
                seen.push(end(&e));
                return seen;
            }
            Poll::Pending => panic!("a frame waits for bytes after the stream's end"),
        }
    }
    panic!("the stream never ended: {seen:?}");
}

fn end(e: &FrameStreamError) -> String {
    format!("error {e:?}")
}

fuzz_target!(|input: &[u8]| {
    let Some((&piece, data)) = input.split_first() else {
        return;
    };
    let whole = decode(data, data.len());
    let split = decode(data, usize::from(piece % 32) + 1);
    assert_eq!(
        whole, split,
        "the frames depend on how the bytes were split"
    );
});
