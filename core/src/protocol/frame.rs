//! Framing: `MAGIC | len u32 | header crc u32 | payload crc u32 | payload`,
//! little-endian. The header CRC (over magic and length) means a corrupted
//! length is caught at once instead of swallowing the frames after it.

use super::Message;

pub const MAGIC: [u8; 4] = *b"KTSF";
pub const HEADER_LEN: usize = 16;
/// No message is near this; a larger length is corruption.
pub const MAX_PAYLOAD: usize = 4 << 20;

/// Encodes a message as frames: one, or several when it is over the frame
/// limit (split or truncated with a note, see [`super::fit`]); never panics.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, payload) in super::fit::fit(msg) {
        out.extend_from_slice(&MAGIC);
        let start = out.len() - MAGIC.len();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&out[start..start + 8]).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
    }
    out
}

/// What the decoder found in the byte stream.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeEvent {
    Message(Message),
    /// Bytes that were not part of any valid frame, skipped to resynchronise.
    Skipped {
        bytes: usize,
        reason: &'static str,
    },
}

/// An incremental decoder: feed it bytes as they arrive.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes skipped since the last reported event, and why.
    skipped: usize,
    skip_reason: &'static str,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<DecodeEvent> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut pos = 0;
        loop {
            match self.try_frame(pos) {
                Step::Frame { end, msg } => {
                    self.flush_skipped(&mut events);
                    events.push(DecodeEvent::Message(msg));
                    pos = end;
                }
                Step::Skip { n, reason } => {
                    self.skip(n, reason);
                    pos += n;
                }
                Step::NeedMore => break,
            }
        }
        self.buf.drain(..pos);
        events
    }

    /// Ends the stream: whatever is buffered is a truncated frame or garbage.
    pub fn finish(&mut self) -> Vec<DecodeEvent> {
        let mut events = Vec::new();
        if !self.buf.is_empty() {
            let reason = if self.buf.starts_with(&MAGIC) {
                "truncated frame at end of stream"
            } else {
                "garbage at end of stream"
            };
            self.skip(self.buf.len(), reason);
            self.buf.clear();
        }
        self.flush_skipped(&mut events);
        events
    }

    fn skip(&mut self, n: usize, reason: &'static str) {
        if self.skipped == 0 {
            self.skip_reason = reason;
        }
        self.skipped += n;
    }

    fn flush_skipped(&mut self, events: &mut Vec<DecodeEvent>) {
        if self.skipped > 0 {
            events.push(DecodeEvent::Skipped { bytes: self.skipped, reason: self.skip_reason });
            self.skipped = 0;
        }
    }

    fn try_frame(&self, pos: usize) -> Step {
        let rest = &self.buf[pos..];
        // Resynchronise on the next possible magic.
        match find_magic_start(rest) {
            None => {
                // Keep a tail that may be the start of a magic.
                let keep = (1..MAGIC.len())
                    .rev()
                    .find(|&k| rest.len() >= k && MAGIC.starts_with(&rest[rest.len() - k..]))
                    .unwrap_or(0);
                let n = rest.len() - keep;
                return if n > 0 {
                    Step::Skip { n, reason: "bytes outside any frame" }
                } else {
                    Step::NeedMore
                };
            }
            Some(0) => {}
            Some(n) => return Step::Skip { n, reason: "bytes outside any frame" },
        }
        if rest.len() < HEADER_LEN {
            return Step::NeedMore;
        }
        let word = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
        let (len, header_crc, payload_crc) = (word(4) as usize, word(8), word(12));
        if crc32fast::hash(&rest[..8]) != header_crc || len > MAX_PAYLOAD {
            return Step::Skip { n: 1, reason: "corrupt frame header" };
        }
        if rest.len() < HEADER_LEN + len {
            return Step::NeedMore;
        }
        let payload = &rest[HEADER_LEN..HEADER_LEN + len];
        if crc32fast::hash(payload) != payload_crc {
            return Step::Skip { n: 1, reason: "frame payload CRC mismatch" };
        }
        match postcard::from_bytes::<Message>(payload) {
            Ok(msg) => Step::Frame { end: pos + HEADER_LEN + len, msg },
            // A valid frame of a message this host does not know (newer guest).
            Err(_) => Step::Skip {
                n: HEADER_LEN + len,
                reason: "undecodable message (protocol mismatch?)",
            },
        }
    }
}

enum Step {
    Frame { end: usize, msg: Message },
    Skip { n: usize, reason: &'static str },
    NeedMore,
}

fn find_magic_start(b: &[u8]) -> Option<usize> {
    b.windows(MAGIC.len()).position(|w| w == MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckResult;
    use crate::metrics::{Metric, Stream};
    use crate::protocol::OutputSource;
    use proptest::prelude::*;

    fn log(text: &str) -> Message {
        Message::Log { text: text.into() }
    }

    fn messages(events: &[DecodeEvent]) -> Vec<Message> {
        events
            .iter()
            .filter_map(|e| if let DecodeEvent::Message(m) = e { Some(m.clone()) } else { None })
            .collect()
    }

    #[test]
    fn round_trips_byte_by_byte() {
        let msgs = [
            log("a"),
            Message::Output { source: OutputSource::PayloadStdout, data: vec![0, 1, 2, 0xff] },
            log(""),
        ];
        let bytes: Vec<u8> = msgs.iter().flat_map(encode).collect();
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in bytes {
            got.extend(d.push(&[b]));
        }
        got.extend(d.finish());
        assert_eq!(messages(&got), msgs);
        assert!(got.iter().all(|e| matches!(e, DecodeEvent::Message(_))));
    }

    #[test]
    fn resyncs_after_garbage_and_a_truncated_frame() {
        let mut bytes = b"console noise KTS\r\n".to_vec();
        let truncated = encode(&log("lost"));
        bytes.extend_from_slice(&truncated[..truncated.len() - 2]);
        bytes.extend(encode(&log("kept")));
        let mut d = Decoder::new();
        let mut events = d.push(&bytes);
        events.extend(d.finish());
        assert_eq!(messages(&events), [log("kept")]);
        assert!(events.iter().any(|e| matches!(e, DecodeEvent::Skipped { .. })));
    }

    #[test]
    fn corrupt_length_does_not_swallow_later_frames() {
        let mut first = encode(&log("x"));
        first[5] ^= 0x40; // length now huge-but-plausible; header CRC catches it
        let bytes = [first, encode(&log("after"))].concat();
        let mut d = Decoder::new();
        assert_eq!(messages(&d.push(&bytes)), [log("after")]);
    }

    #[test]
    fn truncated_stream_is_reported() {
        let f = encode(&log("abc"));
        let mut d = Decoder::new();
        assert!(d.push(&f[..10]).is_empty());
        assert_eq!(
            d.finish(),
            [DecodeEvent::Skipped { bytes: 10, reason: "truncated frame at end of stream" }]
        );
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            ".{0,40}".prop_map(|text| Message::Log { text }),
            proptest::collection::vec(any::<u8>(), 0..300)
                .prop_map(|data| Message::Output { source: OutputSource::PayloadStderr, data }),
            (".{0,12}", -1e12f64..1e12, "|us", proptest::option::of(".{0,20}")).prop_map(
                |(name, value, unit, error)| Message::Metrics {
                    metrics: vec![Metric {
                        name,
                        value,
                        unit: unit.to_string(),
                        stream: Stream::Stdout
                    }],
                    notes: error.iter().cloned().collect(),
                    extractor: "json".into(),
                    error,
                }
            ),
            (any::<bool>(), proptest::option::of(-1e12f64..1e12), "|.{0,20}").prop_map(
                |(passed, value, detail)| Message::Checks {
                    results: vec![CheckResult { check: "x>=1".into(), passed, value, detail }],
                }
            ),
        ]
    }

    proptest! {
        /// Valid frames survive any garbage between them and any chunking.
        #[test]
        fn frames_survive_garbage_and_chunking(
            msgs in proptest::collection::vec(arb_message(), 1..8),
            garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 8),
            chunk in 1usize..64,
        ) {
            let mut bytes = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                bytes.extend(&garbage[i]);
                bytes.extend(encode(m));
            }
            let mut d = Decoder::new();
            let mut events = Vec::new();
            for c in bytes.chunks(chunk) {
                events.extend(d.push(c));
            }
            events.extend(d.finish());
            prop_assert_eq!(messages(&events), msgs);
        }

        /// Arbitrary bytes never panic the decoder and never invent messages
        /// without a valid CRC (probability ~0 for random data).
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..2000),
            chunk in 1usize..100,
        ) {
            let mut d = Decoder::new();
            for c in bytes.chunks(chunk) {
                d.push(c);
            }
            d.finish();
        }

        /// Flipping any one byte loses at most the frame it hit.
        #[test]
        fn one_flipped_byte_loses_at_most_one_frame(
            msgs in proptest::collection::vec(arb_message(), 2..6),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut bytes: Vec<u8> = msgs.iter().flat_map(encode).collect();
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            let mut d = Decoder::new();
            let mut events = d.push(&bytes);
            events.extend(d.finish());
            let got = messages(&events);
            let (got_n, sent) = (got.len(), msgs.len());
            prop_assert!(got_n + 1 >= sent, "lost more than one frame: {} of {}", got_n, sent);
            for m in &got {
                prop_assert!(msgs.contains(m));
            }
        }
    }
}
