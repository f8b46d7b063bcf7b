//! schbench's stderr tables:
//!
//! ```text
//! Wakeup Latencies percentiles (usec) runtime 3 (s) (1413 total samples)
//!       50.0th: 9          (61 samples)
//!     * 99.0th: 28         (123 samples)
//!       min=1, max=436
//! ```
//!
//! likewise `Request Latencies` and `RPS`, then `average rps: 471.00` and
//! `sched delay: message 0 (usec) worker 0 (usec)`. With `-i` schbench
//! prints such blocks every interval and the final summary last, so the last
//! complete block of each kind wins; a block cut off before its `min=` line
//! (a killed run) is ignored.

use ktstr_plugin_api::Metric;
use ktstr_plugin_support::parse_finite;

use crate::{percentile_name, unit_of};

/// Header text → metric prefix. Releases before 2023 printed a single
/// `Latency percentiles` table of wake-up latencies.
const KINDS: [(&str, &str); 4] = [
    ("Wakeup Latencies percentiles", "wakeup_latency"),
    ("Request Latencies percentiles", "request_latency"),
    ("RPS percentiles", "rps"),
    ("Latency percentiles", "wakeup_latency"),
];

/// One table, complete once its `min=, max=` line is seen.
struct Block {
    prefix: &'static str,
    runtime: Option<f64>,
    samples: Option<f64>,
    percentiles: Vec<(String, f64)>,
}

/// Metrics from schbench's text output (see the module docs).
pub fn extract_text(text: &str) -> Result<Vec<Metric>, String> {
    let mut pending: Option<Block> = None;
    let mut done: Vec<(Block, f64, f64)> = Vec::new();
    let mut saw_header = false;
    let mut tail = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(block) = header(line) {
            saw_header = true;
            pending = Some(block);
        } else if let Some((min, max)) = min_max(line) {
            if let Some(block) = pending.take() {
                // A later block of the same kind replaces the earlier one.
                done.retain(|(b, _, _)| b.prefix != block.prefix);
                done.push((block, min, max));
            }
        } else if let Some(p) = percentile(line) {
            if let Some(block) = pending.as_mut() {
                block.percentiles.push(p);
            }
        } else if let Some(rps) = line.strip_prefix("average rps:").and_then(parse_finite) {
            tail.retain(|m: &Metric| m.name.as_str() != "average_rps");
            tail.push(Metric::new("average_rps", rps, "requests/s"));
        } else if let Some(delays) = sched_delay(line) {
            tail.retain(|m: &Metric| !m.name.as_str().starts_with("sched_delay_"));
            tail.extend(delays);
        }
        // Anything else (warnings, `current rps:`) is neither data nor the
        // end of a block.
    }
    if saw_header && done.is_empty() {
        return Err("schbench output has a percentile table header but no complete table \
                    (no `min=…, max=…` line): the output looks truncated"
            .into());
    }
    Ok(to_metrics(done, tail))
}

fn to_metrics(done: Vec<(Block, f64, f64)>, tail: Vec<Metric>) -> Vec<Metric> {
    let mut out = Vec::new();
    // The wake-up table's runtime is the run's, as in the JSON form.
    let runtime = ["wakeup_latency", "request_latency", "rps"]
        .iter()
        .find_map(|k| done.iter().find(|(b, _, _)| b.prefix == *k).and_then(|(b, _, _)| b.runtime));
    for (block, min, max) in done {
        let (prefix, unit) = (block.prefix, unit_of(block.prefix));
        for (pct, v) in &block.percentiles {
            out.push(Metric::new(percentile_name(prefix, pct), *v, unit));
        }
        out.push(Metric::new(format!("{prefix}_min"), min, unit));
        out.push(Metric::new(format!("{prefix}_max"), max, unit));
        if let Some(n) = block.samples {
            out.push(Metric::new(format!("{prefix}_samples"), n, "count"));
        }
    }
    out.extend(runtime.map(|r| Metric::new("runtime", r, "s")));
    out.extend(tail);
    out
}

/// `<label> percentiles (usec) runtime 3 (s) (1413 total samples)`.
fn header(line: &str) -> Option<Block> {
    let (_, prefix) = KINDS.iter().find(|(label, _)| line.starts_with(label))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |word: &str| words.iter().position(|w| *w == word).and_then(|i| words.get(i + 1));
    let runtime = after("runtime").and_then(|w| parse_finite(w));
    let samples = words
        .windows(2)
        .find(|w| w[1] == "total")
        .and_then(|w| parse_finite(w[0].trim_start_matches('(')));
    Some(Block { prefix, runtime, samples, percentiles: Vec::new() })
}

/// `* 99.0th: 28         (123 samples)` → ("99.0", 28); old releases
/// print `*99.0000th: 28`.
fn percentile(line: &str) -> Option<(String, f64)> {
    let (pct, rest) = line.trim_start_matches('*').trim_start().split_once("th:")?;
    parse_finite(pct)?;
    let value = parse_finite(rest.split_whitespace().next()?)?;
    Some((pct.to_string(), value))
}

/// `min=1, max=436`.
fn min_max(line: &str) -> Option<(f64, f64)> {
    let (min, max) = line.strip_prefix("min=")?.split_once(", max=")?;
    Some((parse_finite(min)?, parse_finite(max)?))
}

/// `sched delay: message 0 (usec) worker 0 (usec)`.
fn sched_delay(line: &str) -> Option<Vec<Metric>> {
    let words: Vec<&str> = line.strip_prefix("sched delay:")?.split_whitespace().collect();
    let mut out = Vec::new();
    for pair in words.windows(2) {
        if let ("message" | "worker", Some(v)) = (pair[0], parse_finite(pair[1])) {
            out.push(Metric::new(format!("sched_delay_{}", pair[0]), v, "us"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value;

    const FIXTURE: &str =
        include_str!("../../../tests/fixtures/outputs/schbench/m1-t2-r3.stderr.txt");

    #[test]
    fn fixture_m1_t2_r3() {
        let m = extract_text(FIXTURE).unwrap();
        assert_eq!(value(&m, "wakeup_latency_p50"), Some(9.0));
        assert_eq!(value(&m, "wakeup_latency_p99"), Some(28.0));
        assert_eq!(value(&m, "wakeup_latency_p99.9"), Some(126.0));
        assert_eq!(value(&m, "wakeup_latency_min"), Some(1.0));
        assert_eq!(value(&m, "wakeup_latency_max"), Some(436.0));
        assert_eq!(value(&m, "wakeup_latency_samples"), Some(1413.0));
        assert_eq!(value(&m, "request_latency_p99"), Some(5528.0));
        assert_eq!(value(&m, "rps_p20"), Some(0.0));
        assert_eq!(value(&m, "rps_p50"), Some(463.0));
        assert_eq!(value(&m, "rps_max"), Some(475.0));
        assert_eq!(value(&m, "rps_samples"), Some(4.0));
        assert_eq!(value(&m, "average_rps"), Some(471.0));
        assert_eq!(value(&m, "runtime"), Some(3.0));
        assert_eq!(value(&m, "sched_delay_worker"), Some(0.0));
        let unit = |n: &str| m.iter().find(|x| x.name.as_str() == n).unwrap().unit.to_string();
        assert_eq!(unit("request_latency_p99"), "us");
        assert_eq!(unit("wakeup_latency_samples"), "count");
        assert_eq!(unit("rps_p50"), "requests/s");
        assert_eq!(unit("average_rps"), "requests/s");
    }

    /// `-i`: interval blocks first, the final summary last; a block cut off
    /// at the end (no `min=` line) does not replace the last complete one.
    #[test]
    fn last_complete_block_wins() {
        let interval = FIXTURE
            .replace("* 99.0th: 28 ", "* 99.0th: 11 ")
            .replace("average rps: 471.00", "current rps: 400.00");
        let truncated =
            "Wakeup Latencies percentiles (usec) runtime 4 (s) (9 total samples)\n\t* 99.0th: \
                999 (1 samples)\n";
        let m = extract_text(&format!("{interval}{FIXTURE}{truncated}")).unwrap();
        assert_eq!(value(&m, "wakeup_latency_p99"), Some(28.0));
        assert_eq!(value(&m, "wakeup_latency_samples"), Some(1413.0));
        assert_eq!(value(&m, "average_rps"), Some(471.0));
        let names: Vec<&str> = m.iter().map(|x| x.name.as_str()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "duplicate names: {names:?}");

        let first = extract_text(&format!("{interval}{truncated}")).unwrap();
        assert_eq!(value(&first, "wakeup_latency_p99"), Some(11.0));
    }

    #[test]
    fn old_release_format() {
        let old = "Latency percentiles (usec)\n\t50.0000th: 13\n\t*99.0000th: 44\n\t99.9000th: \
                234\n\tmin=0, max=14357\n";
        let m = extract_text(old).unwrap();
        assert_eq!(value(&m, "wakeup_latency_p99"), Some(44.0));
        assert_eq!(value(&m, "wakeup_latency_p99.9"), Some(234.0));
        assert_eq!(value(&m, "wakeup_latency_max"), Some(14357.0));
    }

    #[test]
    fn header_without_table_is_an_error() {
        let err = extract_text(
            "Wakeup Latencies percentiles (usec) runtime 3 (s) (1 total samples)\n\t  50.0th: 9",
        )
        .unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }
}
