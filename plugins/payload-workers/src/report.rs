//! The JSON report the workers print: flat top-level keys so metric names
//! read well (`work_units`, `wake_latency_p99_us`), per-kind detail nested.

use crate::args::{WorkKind, WorkerArgs};
use crate::work::KindResult;

/// The `q`-quantile (0..=1) of sorted values, nearest-rank.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency_fields(out: &mut Vec<String>, prefix: &str, lat_ns: &mut [u64]) {
    lat_ns.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)] {
        out.push(format!("\"{prefix}wake_latency_{name}_us\": {:.3}", us(percentile(lat_ns, q))));
    }
    out.push(format!(
        "\"{prefix}wake_latency_max_us\": {:.3}",
        us(lat_ns.last().copied().unwrap_or(0))
    ));
    out.push(format!("\"{prefix}wake_samples\": {}", lat_ns.len()));
}

pub fn to_json(args: &WorkerArgs, results: &[(WorkKind, KindResult)]) -> String {
    let secs = args.duration.as_secs_f64();
    let total: u64 = results.iter().map(|(_, r)| r.work_units).sum();
    let mut all: Vec<u64> =
        results.iter().flat_map(|(_, r)| r.wake_latencies_ns.iter().copied()).collect();
    let mut fields = vec![
        format!("\"duration_s\": {secs:.3}"),
        format!("\"threads\": {}", args.threads * args.kinds.len()),
        format!("\"work_units\": {total}"),
        format!("\"work_units_per_s\": {:.3}", total as f64 / secs),
    ];
    latency_fields(&mut fields, "", &mut all);
    for (kind, r) in results {
        let mut inner = vec![
            format!("\"work_units\": {}", r.work_units),
            format!("\"work_units_per_s\": {:.3}", r.work_units as f64 / secs),
        ];
        if !r.wake_latencies_ns.is_empty() {
            latency_fields(&mut inner, "", &mut r.wake_latencies_ns.clone());
        }
        fields.push(format!("\"{}\": {{{}}}", kind.name(), inner.join(", ")));
    }
    format!("{{{}}}", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn report_is_valid_json_shape() {
        let args = WorkerArgs {
            kinds: vec![WorkKind::Sleep],
            threads: 1,
            duration: Duration::from_secs(2),
            sleep_period: Duration::from_millis(1),
        };
        let r = KindResult { work_units: 10, wake_latencies_ns: vec![1000, 2000, 3000] };
        let s = to_json(&args, &[(WorkKind::Sleep, r)]);
        assert!(s.starts_with("{\"duration_s\": 2.000"), "{s}");
        assert!(
            s.contains("\"work_units\": 10") && s.contains("\"wake_latency_p99_us\": 3.000"),
            "{s}"
        );
        assert!(s.contains("\"sleep\": {\"work_units\": 10"), "{s}");
    }
}
