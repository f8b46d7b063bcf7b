//! The JSON report the workers print: flat top-level keys so metric names
//! read well (`work_units`, `wake_latency_p99_us`), per-kind detail nested.

use ktstr_work::{Latencies, LatencySummary};

use crate::args::{WorkKind, WorkerArgs};
use crate::run::KindResult;

fn latency_fields(out: &mut Vec<String>, s: &LatencySummary) {
    let us = |ns: u64| ns as f64 / 1000.0;
    let pcts = [("p50", s.p50_ns), ("p90", s.p90_ns), ("p99", s.p99_ns), ("p99.9", s.p999_ns)];
    for (name, ns) in pcts {
        out.push(format!("\"wake_latency_{name}_us\": {:.3}", us(ns)));
    }
    out.push(format!("\"wake_latency_max_us\": {:.3}", us(s.max_ns)));
    out.push(format!("\"wake_samples\": {}", s.samples));
}

pub fn to_json(args: &WorkerArgs, results: &[(WorkKind, KindResult)]) -> String {
    let secs = args.duration.as_secs_f64();
    let total: u64 = results.iter().map(|(_, r)| r.work_units).sum();
    let mut all = Latencies::new();
    for (_, r) in results {
        all.merge(r.wake.clone());
    }
    let mut fields = vec![
        format!("\"duration_s\": {secs:.3}"),
        format!("\"threads\": {}", args.threads * args.kinds.len()),
        format!("\"work_units\": {total}"),
        format!("\"work_units_per_s\": {:.3}", total as f64 / secs),
    ];
    // Always present (zeros without wake-ups): the default check needs the key.
    latency_fields(&mut fields, &all.summary().unwrap_or_default());
    for (kind, r) in results {
        let mut inner = vec![
            format!("\"work_units\": {}", r.work_units),
            format!("\"work_units_per_s\": {:.3}", r.work_units as f64 / secs),
        ];
        if let Some(s) = r.wake.clone().summary() {
            latency_fields(&mut inner, &s);
        }
        fields.push(format!("\"{}\": {{{}}}", kind.name(), inner.join(", ")));
    }
    format!("{{{}}}", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args(kinds: Vec<WorkKind>) -> WorkerArgs {
        WorkerArgs {
            kinds,
            threads: 1,
            duration: Duration::from_secs(2),
            sleep_period: Duration::from_millis(1),
        }
    }

    #[test]
    fn report_is_valid_json_shape() {
        let mut wake = Latencies::new();
        [1000, 2000, 3000].into_iter().for_each(|ns| wake.record(ns));
        let r = KindResult { work_units: 10, wake };
        let s = to_json(&args(vec![WorkKind::Sleep]), &[(WorkKind::Sleep, r)]);
        assert!(s.starts_with("{\"duration_s\": 2.000"), "{s}");
        assert!(
            s.contains("\"work_units\": 10") && s.contains("\"wake_latency_p99_us\": 3.000"),
            "{s}"
        );
        assert!(
            s.contains(
                "\"wake_latency_p99.9_us\": 3.000, \"wake_latency_max_us\": 3.000, \
            \"wake_samples\": 3"
            ),
            "{s}"
        );
        assert!(s.contains("\"sleep\": {\"work_units\": 10"), "{s}");
    }

    #[test]
    fn latency_keys_are_there_without_wake_ups_only_at_the_top() {
        let r = KindResult { work_units: 4, ..KindResult::default() };
        let s = to_json(&args(vec![WorkKind::Spin]), &[(WorkKind::Spin, r)]);
        assert!(s.contains("\"wake_latency_p99_us\": 0.000") && s.contains("\"wake_samples\": 0"));
        assert!(s.ends_with("\"spin\": {\"work_units\": 4, \"work_units_per_s\": 2.000}}"), "{s}");
    }
}
