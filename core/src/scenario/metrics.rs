//! A scenario's results as metrics, so `--check` works on them like on a
//! payload's: `<step>/<cgroup>/<name>`, e.g. `run/a/work_units`.

use super::{ScenarioResult, StepResult};
use crate::metrics::{Metric, Stream};

/// Per step and cgroup: work done and rate, wake-up latency, migrations,
/// on- and off-CPU time; per step and payload: exit code.
pub fn metrics(result: &ScenarioResult) -> Vec<Metric> {
    let mut out = Vec::new();
    for step in &result.steps {
        step_metrics(step, &mut out);
    }
    out
}

fn step_metrics(step: &StepResult, out: &mut Vec<Metric>) {
    let mut push = |name: String, value: f64, unit: &str| {
        out.push(Metric { name, value, unit: unit.into(), stream: Stream::Stdout })
    };
    for cg in &step.cgroups {
        let at = format!("{}/{}", step.name, cg.cgroup);
        let reports: Vec<_> = cg.workers.iter().map(|w| &w.report).collect();
        if reports.is_empty() {
            continue;
        }
        push(format!("{at}/workers"), reports.len() as f64, "");
        push(
            format!("{at}/work_units"),
            reports.iter().map(|r| r.work_units as f64).sum(),
            "units",
        );
        push(format!("{at}/work_units_per_s"), reports.iter().map(|r| r.rate()).sum(), "units/s");
        push(
            format!("{at}/min_worker_work_units"),
            reports.iter().map(|r| r.work_units as f64).fold(f64::INFINITY, f64::min),
            "units",
        );
        let on_cpu: Option<u64> = reports.iter().map(|r| r.on_cpu_ns).sum();
        if let Some(ns) = on_cpu {
            push(format!("{at}/on_cpu_ms"), ns as f64 / 1e6, "ms");
        }
        push(format!("{at}/migrations"), reports.iter().map(|r| r.migrations as f64).sum(), "");
        push(
            format!("{at}/off_cpu_ms"),
            reports.iter().map(|r| r.off_cpu_ns as f64 / 1e6).sum(),
            "ms",
        );
        let wakes: Vec<_> = reports.iter().filter_map(|r| r.wake.as_ref()).collect();
        if !wakes.is_empty() {
            push(format!("{at}/wake_samples"), wakes.iter().map(|w| w.samples as f64).sum(), "");
            // Worst worker: a scheduler that starves one is not excused by the others.
            push(
                format!("{at}/wake_latency_p99_us"),
                wakes.iter().map(|w| w.p99_us).fold(0.0, f64::max),
                "us",
            );
            push(
                format!("{at}/wake_latency_max_us"),
                wakes.iter().map(|w| w.max_us).fold(0.0, f64::max),
                "us",
            );
        }
    }
    for p in &step.payloads {
        if let Some(code) = p.exit_code {
            push(format!("{}/{}/exit", step.name, p.name), f64::from(code), "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{CgroupResult, PayloadOutcome, WorkerResult};
    use crate::work::{WakeStats, WorkerReport};

    fn worker(units: u64, p99: Option<f64>) -> WorkerResult {
        let wake = p99.map(|p99_us| WakeStats {
            samples: 10,
            p50_us: 1.0,
            p90_us: 2.0,
            p99_us,
            max_us: p99_us * 2.0,
        });
        WorkerResult {
            report: WorkerReport {
                work_units: units,
                elapsed_ns: 1_000_000_000,
                wake,
                on_cpu_ns: Some(units * 1_000_000),
                ..Default::default()
            },
            allowed_cpus: None,
        }
    }

    #[test]
    fn per_cgroup_sums_and_worst_latency() {
        let step = StepResult {
            name: "run".into(),
            cgroups: vec![CgroupResult {
                cgroup: "a".into(),
                workers: vec![worker(10, Some(5.0)), worker(30, Some(9.0))],
                ..Default::default()
            }],
            payloads: vec![PayloadOutcome {
                name: "fg".into(),
                exit_code: Some(0),
                ..Default::default()
            }],
            ..Default::default()
        };
        let m = metrics(&ScenarioResult { name: "s".into(), steps: vec![step], error: None });
        let get = |n: &str| {
            m.iter().find(|x| x.name == n).unwrap_or_else(|| panic!("{n} in {m:?}")).value
        };
        assert_eq!(get("run/a/workers"), 2.0);
        assert_eq!(get("run/a/work_units"), 40.0);
        assert_eq!(get("run/a/min_worker_work_units"), 10.0);
        assert_eq!(get("run/a/wake_latency_p99_us"), 9.0);
        assert_eq!(get("run/a/wake_samples"), 20.0);
        assert_eq!(get("run/a/on_cpu_ms"), 40.0);
        assert_eq!(get("run/fg/exit"), 0.0);
    }
}
