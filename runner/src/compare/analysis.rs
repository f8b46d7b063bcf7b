//! From two sides' runs to a verdict per metric: each side's median and
//! quartiles over its good runs, the difference with a bootstrap interval,
//! the Mann-Whitney p-value, and better / worse / no significant difference
//! by the metric's polarity (neutral metrics are shown, never judged).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::{mann_whitney, relative, relative_difference_interval, spread, Spread};

/// Below this p-value, and with an interval that excludes zero, a
/// difference is significant.
pub const ALPHA: f64 = 0.05;
const RESAMPLES: usize = 2000;

/// One run's result as `compare` needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSample {
    pub id: String,
    pub verdict: String,
    /// name → (value, `higher` | `lower` | `neutral`).
    pub metrics: BTreeMap<String, (f64, String)>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricVerdict {
    pub name: String,
    pub better: String,
    pub n_a: usize,
    pub n_b: usize,
    pub a: SpreadJson,
    pub b: SpreadJson,
    pub diff_abs: f64,
    /// `(median B - median A) / |median A|`.
    pub diff_rel: f64,
    /// 95% bootstrap interval of `diff_rel`.
    pub ci_rel: (f64, f64),
    pub p: f64,
    pub significant: bool,
    /// `better`, `worse`, `no significant difference`, or `not judged` (neutral).
    pub verdict: String,
    /// Each side's values, for the picture.
    pub values_a: Vec<f64>,
    pub values_b: Vec<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SpreadJson {
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
}

impl From<Spread> for SpreadJson {
    fn from(s: Spread) -> Self {
        SpreadJson { median: s.median, q1: s.q1, q3: s.q3 }
    }
}

/// The good runs of a side: those that passed.
pub fn good(runs: &[RunSample]) -> Vec<&RunSample> {
    runs.iter().filter(|r| r.verdict == "PASS").collect()
}

/// Every metric both sides have in at least two good runs, judged.
pub fn compare(a: &[RunSample], b: &[RunSample]) -> Vec<MetricVerdict> {
    let (ga, gb) = (good(a), good(b));
    let names: std::collections::BTreeSet<&String> =
        ga.iter().flat_map(|r| r.metrics.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        let values = |runs: &[&RunSample]| -> Vec<f64> {
            runs.iter()
                .filter_map(|r| r.metrics.get(name).map(|m| m.0))
                .filter(|v| v.is_finite())
                .collect()
        };
        let (va, vb) = (values(&ga), values(&gb));
        if va.len() < 2 || vb.len() < 2 {
            continue;
        }
        let better =
            ga.iter().find_map(|r| r.metrics.get(name)).map(|m| m.1.clone()).unwrap_or_default();
        out.push(judge(name, &better, va, vb));
    }
    // Judged metrics first, then by name.
    out.sort_by_key(|m| (m.better == "neutral" || m.better.is_empty(), m.name.clone()));
    out
}

fn judge(name: &str, better: &str, va: Vec<f64>, vb: Vec<f64>) -> MetricVerdict {
    let (sa, sb) = (spread(&va), spread(&vb));
    let (_, p) = mann_whitney(&va, &vb);
    let ci = relative_difference_interval(&va, &vb, RESAMPLES);
    let diff_rel = relative(sa.median, sb.median);
    let significant = p < ALPHA && (ci.0 > 0.0 || ci.1 < 0.0);
    let verdict = match (better, significant) {
        ("higher" | "lower", false) => "no significant difference",
        ("higher", true) if sb.median > sa.median => "better",
        ("lower", true) if sb.median < sa.median => "better",
        ("higher" | "lower", true) => "worse",
        _ => "not judged",
    };
    MetricVerdict {
        name: name.to_string(),
        better: if better.is_empty() { "neutral".into() } else { better.to_string() },
        n_a: va.len(),
        n_b: vb.len(),
        a: sa.into(),
        b: sb.into(),
        diff_abs: sb.median - sa.median,
        diff_rel,
        ci_rel: ci,
        p,
        significant,
        verdict: verdict.to_string(),
        values_a: va,
        values_b: vb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(prefix: &str, values: &[f64], better: &str) -> Vec<RunSample> {
        values
            .iter()
            .enumerate()
            .map(|(k, &v)| RunSample {
                id: format!("{prefix}-{k}"),
                verdict: "PASS".into(),
                metrics: [("ops".to_string(), (v, better.to_string()))].into_iter().collect(),
            })
            .collect()
    }

    #[test]
    fn polarity_decides_better_or_worse() {
        let (lo, hi) = ([100.0, 102.0, 98.0, 101.0, 99.0], [200.0, 205.0, 198.0, 201.0, 199.0]);
        let m = &compare(&side("a", &lo, "higher"), &side("b", &hi, "higher"))[0];
        assert_eq!((m.verdict.as_str(), m.significant), ("better", true), "{m:?}");
        assert!(m.ci_rel.0 > 0.5 && (m.diff_rel - 1.0).abs() < 0.05, "{m:?}");
        let m = &compare(&side("a", &lo, "lower"), &side("b", &hi, "lower"))[0];
        assert_eq!(m.verdict, "worse");
        let m = &compare(&side("a", &lo, "neutral"), &side("b", &hi, "neutral"))[0];
        assert_eq!(m.verdict, "not judged");
        let m = &compare(&side("a", &lo, "higher"), &side("b", &lo, "higher"))[0];
        assert_eq!(m.verdict, "no significant difference");
    }

    #[test]
    fn failed_runs_are_excluded_and_thin_metrics_dropped() {
        let mut a = side("a", &[1.0, 2.0, 3.0], "higher");
        a[0].verdict = "CHECK_FAILED".into();
        a[0].metrics.insert("ops".into(), (1e9, "higher".into()));
        let b = side("b", &[1.0, 2.0, 3.0], "higher");
        let m = &compare(&a, &b)[0];
        assert_eq!((m.n_a, m.n_b), (2, 3));
        assert!(!m.values_a.contains(&1e9), "a failed run is never averaged in");
        assert!(compare(&a[..2], &b).is_empty(), "one good run is too few");
    }
}
