//! The interactive shell's port (`ktstr shell`): a virtio-console port named
//! [`SHELL_PORT`] between the host's terminal and a PTY in the guest.
//!
//! Guest to host: the PTY's output, raw bytes. Host to guest: small frames,
//! `kind u8 | len u16 le | payload`, so that a window size can travel with
//! the keystrokes: kind 0 is input bytes, kind 1 a window size (rows u16,
//! cols u16). A frame of an unknown kind is skipped by its length, so that a
//! newer host can add kinds an older guest ignores.

pub const SHELL_PORT: &str = "ktstr-shell";

const DATA: u8 = 0;
const RESIZE: u8 = 1;
const HEADER: usize = 3;

/// What the host sends the guest's terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermInput {
    /// Keystrokes, to the PTY as they are (Ctrl-C is byte 3: the guest's
    /// line discipline turns it into SIGINT for the foreground job).
    Data(Vec<u8>),
    /// The host terminal's size, at start and on every change.
    Resize { rows: u16, cols: u16 },
}

/// Encodes input as frames; data over a frame's limit takes several.
pub fn encode_input(input: &TermInput) -> Vec<u8> {
    let mut out = Vec::new();
    match input {
        TermInput::Data(bytes) => {
            for part in bytes.chunks(usize::from(u16::MAX)) {
                push_frame(&mut out, DATA, part);
            }
        }
        TermInput::Resize { rows, cols } => {
            let mut size = [0u8; 4];
            size[..2].copy_from_slice(&rows.to_le_bytes());
            size[2..].copy_from_slice(&cols.to_le_bytes());
            push_frame(&mut out, RESIZE, &size);
        }
    }
    out
}

fn push_frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.extend_from_slice(payload);
}

/// An incremental decoder of the host's frames.
#[derive(Debug, Default)]
pub struct InputDecoder {
    buf: Vec<u8>,
}

impl InputDecoder {
    /// Adds bytes and returns the input they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<TermInput> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut pos = 0;
        while self.buf.len() - pos >= HEADER {
            let kind = self.buf[pos];
            let len = usize::from(u16::from_le_bytes([self.buf[pos + 1], self.buf[pos + 2]]));
            let Some(payload) = self.buf.get(pos + HEADER..pos + HEADER + len) else { break };
            match (kind, payload) {
                (DATA, p) => out.push(TermInput::Data(p.to_vec())),
                (RESIZE, [r0, r1, c0, c1]) => out.push(TermInput::Resize {
                    rows: u16::from_le_bytes([*r0, *r1]),
                    cols: u16::from_le_bytes([*c0, *c1]),
                }),
                _ => {} // unknown kind or malformed size: skipped
            }
            pos += HEADER + len;
        }
        self.buf.drain(..pos);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_round_trips_byte_by_byte() {
        let sent = [
            TermInput::Resize { rows: 40, cols: 120 },
            TermInput::Data(b"cat /sys/kernel/sched_ext/root/ops\r".to_vec()),
            TermInput::Data(vec![3]),
        ];
        let wire: Vec<u8> = sent.iter().flat_map(encode_input).collect();
        let mut d = InputDecoder::default();
        let got: Vec<TermInput> = wire.iter().flat_map(|b| d.push(&[*b])).collect();
        assert_eq!(got, sent);
    }

    #[test]
    fn long_input_is_split_and_unknown_kinds_are_skipped() {
        let big = vec![b'x'; 70_000];
        let mut wire = encode_input(&TermInput::Data(big.clone()));
        wire.extend_from_slice(&[9, 2, 0, 0xaa, 0xbb]); // a kind from a newer host
        wire.extend(encode_input(&TermInput::Resize { rows: 1, cols: 2 }));
        let got = InputDecoder::default().push(&wire);
        let data: Vec<u8> = got
            .iter()
            .filter_map(|i| match i {
                TermInput::Data(d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, big);
        assert_eq!(got.last(), Some(&TermInput::Resize { rows: 1, cols: 2 }));
    }
}
