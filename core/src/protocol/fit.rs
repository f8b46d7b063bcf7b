//! Messages over the frame limit: split into several that fit (metrics,
//! checks, output) or truncated, with a [`Message::Truncated`] note the host
//! shows. The init must never die on a message it cannot frame.

use super::{Message, MAX_PAYLOAD};

/// Longest string kept when a message has to be cut down.
const KEPT_TEXT: usize = 64 << 10;
/// Most lines or notes kept when a message has to be cut down.
const KEPT_LINES: usize = 200;

pub(super) fn serialise(msg: &Message) -> Vec<u8> {
    postcard::to_allocvec(msg).expect("messages always serialise")
}

/// `msg` as messages whose serialised payloads each fit a frame, in order.
pub fn fit(msg: &Message) -> Vec<(Message, Vec<u8>)> {
    let bytes = serialise(msg);
    if bytes.len() <= MAX_PAYLOAD {
        return vec![(msg.clone(), bytes)];
    }
    // Aim at 3/4 of the limit so uneven parts still fit at the first try.
    let parts = bytes.len().div_ceil(MAX_PAYLOAD / 4 * 3);
    match split(msg, parts) {
        Some(pieces) => pieces.iter().flat_map(fit).collect(),
        None => {
            let (cut, what) = shrink(msg);
            let note = Message::Truncated {
                what: what.into(),
                note: format!(
                    "a message of {} bytes exceeds the {} MiB frame limit: {}",
                    bytes.len(),
                    MAX_PAYLOAD >> 20,
                    if cut.is_some() { "truncated" } else { "dropped" }
                ),
            };
            let mut out = vec![(note.clone(), serialise(&note))];
            if let Some(cut) = cut {
                let b = serialise(&cut);
                if b.len() <= MAX_PAYLOAD {
                    out.push((cut, b));
                }
            }
            out
        }
    }
}

/// `v` in `parts` consecutive runs of (nearly) equal length, none empty.
fn chunks<T: Clone>(v: &[T], parts: usize) -> Vec<Vec<T>> {
    let size = v.len().div_ceil(parts.max(1)).max(1);
    v.chunks(size).map(<[T]>::to_vec).collect()
}

/// Splits a list-carrying message; `None` when it cannot be split further.
fn split(msg: &Message, parts: usize) -> Option<Vec<Message>> {
    let out = match msg {
        // The host appends metrics, notes and checks from every part.
        Message::Metrics { metrics, notes, extractor, error } if metrics.len() > 1 => {
            chunks(metrics, parts)
                .into_iter()
                .enumerate()
                .map(|(i, part)| Message::Metrics {
                    metrics: part,
                    notes: if i == 0 { notes.clone() } else { Vec::new() },
                    extractor: extractor.clone(),
                    error: if i == 0 { error.clone() } else { None },
                })
                .collect()
        }
        Message::Checks { results } if results.len() > 1 => {
            chunks(results, parts).into_iter().map(|results| Message::Checks { results }).collect()
        }
        Message::Output { source, data } if data.len() > 1 => chunks(data, parts)
            .into_iter()
            .map(|data| Message::Output { source: *source, data })
            .collect(),
        Message::ScenarioOutput { name, stdout, data } if data.len() > 1 => chunks(data, parts)
            .into_iter()
            .map(|data| Message::ScenarioOutput { name: name.clone(), stdout: *stdout, data })
            .collect(),
        Message::OutFile { path, data } if data.len() > 1 => chunks(data, parts)
            .into_iter()
            .map(|data| Message::OutFile { path: path.clone(), data })
            .collect(),
        _ => return None,
    };
    Some(out)
}

/// A cut-down copy of `msg` (or `None` if it cannot be cut), and its kind.
fn shrink(msg: &Message) -> (Option<Message>, &'static str) {
    let cut = match msg {
        Message::Log { text } => Some(Message::Log { text: cut_text(text) }),
        Message::Metrics { metrics, notes, extractor, error } => Some(Message::Metrics {
            metrics: metrics.iter().filter(|m| m.name.len() <= KEPT_TEXT).cloned().collect(),
            notes: cut_lines(notes),
            extractor: cut_text(extractor),
            error: error.as_deref().map(cut_text),
        }),
        Message::Checks { results } => Some(Message::Checks {
            results: results
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c.check = cut_text(&c.check);
                    c.detail = cut_text(&c.detail);
                    c
                })
                .collect(),
        }),
        Message::SchedulerFailed(f) => {
            let mut f = f.clone();
            f.reason = cut_text(&f.reason);
            f.output_tail = cut_text(&f.output_tail);
            f.kernel_log = cut_lines(&f.kernel_log);
            Some(Message::SchedulerFailed(f))
        }
        Message::Finish(f) => Some(Message::Finish(super::Finish {
            init_error: f.init_error.as_deref().map(cut_text),
        })),
        _ => None,
    };
    (cut, kind(msg))
}

/// The message's kind, for the host's note.
fn kind(msg: &Message) -> &'static str {
    match msg {
        Message::Log { .. } => "log",
        Message::Metrics { .. } => "metrics",
        Message::Checks { .. } => "checks",
        Message::SchedulerFailed(_) => "scheduler failure",
        Message::Finish(_) => "finish",
        Message::ScenarioStep(_) => "scenario step",
        _ => "message",
    }
}

fn cut_text(s: &str) -> String {
    if s.len() <= KEPT_TEXT {
        return s.to_string();
    }
    let mut end = KEPT_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &s[..end], s.len() - end)
}

/// The last lines (the newest evidence), each cut to size.
fn cut_lines(lines: &[String]) -> Vec<String> {
    let skip = lines.len().saturating_sub(KEPT_LINES);
    let mut out: Vec<String> = lines[skip..].iter().map(|l| cut_text(l)).collect();
    if skip > 0 {
        out.insert(0, format!("({skip} earlier lines cut)"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckResult;
    use crate::metrics::{Metric, Stream};
    use crate::protocol::{encode, DecodeEvent, Decoder};

    fn decode_all(bytes: &[u8]) -> Vec<Message> {
        let mut d = Decoder::new();
        let mut events = d.push(bytes);
        events.extend(d.finish());
        events
            .into_iter()
            .map(|e| match e {
                DecodeEvent::Message(m) => m,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    fn metric(i: usize) -> Metric {
        let name = format!("family/metric_{i:07}");
        Metric { name, value: i as f64, unit: "us".into(), stream: Stream::Stdout }
    }

    #[test]
    fn a_million_metrics_arrive_whole_in_several_frames() {
        let metrics: Vec<Metric> = (0..1_000_000).map(metric).collect();
        let msg = Message::Metrics {
            metrics: metrics.clone(),
            notes: vec!["n".into()],
            extractor: "json".into(),
            error: None,
        };
        let got = decode_all(&encode(&msg));
        assert!(got.len() > 1, "split into {} messages", got.len());
        let mut all = Vec::new();
        for (i, m) in got.into_iter().enumerate() {
            let Message::Metrics { metrics, notes, extractor, .. } = m else { panic!() };
            assert_eq!(extractor, "json");
            assert_eq!(notes.len(), usize::from(i == 0));
            all.extend(metrics);
        }
        assert_eq!(all, metrics);
    }

    #[test]
    fn huge_output_and_checks_are_split_in_order() {
        let data: Vec<u8> = (0..MAX_PAYLOAD * 2 + 7).map(|i| i as u8).collect();
        let src = crate::protocol::OutputSource::PayloadStdout;
        let got = decode_all(&encode(&Message::Output { source: src, data: data.clone() }));
        let joined: Vec<u8> = got
            .into_iter()
            .flat_map(|m| match m {
                Message::Output { data, .. } => data,
                _ => panic!(),
            })
            .collect();
        assert_eq!(joined, data);
        let check = |i: usize| CheckResult {
            check: format!("m{i}>=1"),
            passed: true,
            value: None,
            detail: "d".repeat(100),
        };
        let results: Vec<CheckResult> = (0..60_000).map(check).collect();
        let got = decode_all(&encode(&Message::Checks { results: results.clone() }));
        let joined: Vec<CheckResult> = got
            .into_iter()
            .flat_map(|m| match m {
                Message::Checks { results } => results,
                _ => panic!(),
            })
            .collect();
        assert_eq!(joined, results);
    }

    #[test]
    fn an_unsplittable_message_is_truncated_with_a_note() {
        let got = decode_all(&encode(&Message::Log { text: "x".repeat(MAX_PAYLOAD + 1) }));
        let [Message::Truncated { what, note }, Message::Log { text }] = &got[..] else {
            panic!("{got:?}")
        };
        assert_eq!(what, "log");
        assert!(note.contains("frame limit: truncated"), "{note}");
        assert!(text.len() < KEPT_TEXT + 64 && text.ends_with("bytes cut)"));
    }

    #[test]
    fn a_message_that_cannot_be_cut_is_dropped_with_a_note() {
        let name = "s".repeat(MAX_PAYLOAD + 1);
        let got = decode_all(&encode(&Message::ScenarioDone { name, error: None }));
        let [Message::Truncated { note, .. }] = &got[..] else { panic!("{got:?}") };
        assert!(note.ends_with("dropped"), "{note}");
    }
}
