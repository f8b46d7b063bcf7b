//! The built-in checks every scenario gets, evaluated per step on what the
//! executor collected: starvation, fairness between equal cgroups, cpuset
//! isolation, and payload outcomes.

use std::collections::BTreeMap;

use super::results::{CgroupResult, PayloadOutcome, StopReason};
use super::ChecksConfig;
use crate::check::CheckResult;
use crate::metrics::format_value;
use crate::topology::format_cpulist;

/// Default most (max - min) / mean of the CPU time of equal cgroups.
///
/// Why 0.35: under a fair scheduler equal cgroups differ by a few percent
/// over seconds, but ktstr's VMs share a host whose own scheduler preempts
/// vCPUs, holds can be short, and a cgroup of one or two workers has no
/// averaging. 0.35 still fails a real bias: between two cgroups it lets the
/// slower one fall to about 70% of the faster (0.3 / 0.85 = 0.35), while a
/// 2:1 split, as when a scheduler weighs tasks instead of cgroups and one
/// cgroup has twice the threads, has a spread of 0.67.
pub const DEFAULT_FAIRNESS_MAX_SPREAD: f64 = 0.35;

fn result(check: String, passed: bool, value: f64, detail: String) -> CheckResult {
    CheckResult {
        check,
        passed,
        value: Some(value),
        detail: if passed { String::new() } else { detail },
    }
}

/// Groups of cgroup indexes that must be compared for fairness: comparable
/// sibling cgroups (same parent, so the same weight in the hierarchy) with
/// identical spawns (count and work) and the same CPUs. Only groups of two
/// or more are returned, in first-member order.
pub fn fairness_groups(cgroups: &[CgroupResult]) -> Vec<Vec<usize>> {
    type Key<'a> = (&'a str, Vec<(u32, String)>, Option<Vec<u32>>);
    let mut groups: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (i, c) in cgroups.iter().enumerate() {
        if !c.comparable || c.spawns.is_empty() {
            continue;
        }
        let mut spawns: Vec<(u32, String)> =
            c.spawns.iter().map(|s| (s.count, s.work.clone())).collect();
        spawns.sort();
        let parent = c.cgroup.rsplit_once('/').map_or("", |(p, _)| p);
        groups.entry((parent, spawns, c.cpus.clone())).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() >= 2).collect();
    out.sort();
    out
}

/// Starvation, fairness and isolation checks for one step's cgroups.
pub fn evaluate_cgroup_checks(
    step: &str,
    cgroups: &[CgroupResult],
    cfg: &ChecksConfig,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    if cfg.starvation {
        out.extend(
            cgroups
                .iter()
                .filter(|c| !c.workers.is_empty())
                .map(|c| starvation(step, c, cfg.min_work_units)),
        );
    }
    if cfg.fairness {
        for group in fairness_groups(cgroups) {
            let members: Vec<&CgroupResult> = group.iter().map(|&i| &cgroups[i]).collect();
            out.push(fairness(step, &members, cfg.fairness_max_spread));
        }
    }
    if cfg.isolation {
        out.extend(cgroups.iter().filter_map(|c| isolation(step, c)));
    }
    out
}

fn starvation(step: &str, c: &CgroupResult, min: u64) -> CheckResult {
    let least = c.workers.iter().map(|w| w.report.work_units).min().unwrap_or(0);
    let starved: Vec<String> = c
        .workers
        .iter()
        .filter(|w| w.report.work_units < min)
        .map(|w| {
            let why = w.report.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
            format!(
                "worker {} ({}) did {} work units{why}",
                w.report.pid, w.report.comm, w.report.work_units
            )
        })
        .collect();
    let detail = format!("{}; at least {min} expected", starved.join(", "));
    result(format!("starvation[{step}/{}]", c.cgroup), starved.is_empty(), least as f64, detail)
}

/// Compares the CPU time equal cgroups got: what a scheduler hands out,
/// whatever each CPU's speed (a vCPU preempted by the host still charges its
/// task). Work rates, which also follow CPU speed, only when the kernel
/// gave no CPU times.
fn fairness(step: &str, members: &[&CgroupResult], max_spread: f64) -> CheckResult {
    let shares: Option<Vec<f64>> = members
        .iter()
        .map(|c| c.workers.iter().map(|w| w.report.cpu_share()).sum::<Option<f64>>())
        .collect();
    let (what, values, shown): (&str, Vec<f64>, fn(f64) -> String) = match shares {
        Some(shares) => ("CPU time", shares, |v| format!("{} CPUs", format_value(round3(v)))),
        None => (
            "work rates",
            members.iter().map(|c| c.workers.iter().map(|w| w.report.rate()).sum()).collect(),
            |v| format!("{}/s", format_value(v.round())),
        ),
    };
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let (lo, hi) =
        values.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    // All zero is starvation's business, not unfairness.
    let spread = if mean > 0.0 { (hi - lo) / mean } else { 0.0 };
    let names: Vec<&str> = members.iter().map(|c| c.cgroup.as_str()).collect();
    let each: Vec<String> =
        members.iter().zip(&values).map(|(c, &v)| format!("{}={}", c.cgroup, shown(v))).collect();
    let detail = format!(
        "{what} {}: spread (max-min)/mean = {} > {}",
        each.join(" "),
        format_value(round3(spread)),
        format_value(max_spread)
    );
    result(format!("fairness[{step}: {}]", names.join(",")), spread <= max_spread, spread, detail)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Checks the CPUs each restricted worker ran on since its restriction last
/// changed; `None` when no worker of the cgroup is restricted.
fn isolation(step: &str, c: &CgroupResult) -> Option<CheckResult> {
    let restricted: Vec<_> =
        c.workers.iter().filter_map(|w| w.allowed_cpus.as_ref().map(|a| (w, a))).collect();
    if restricted.is_empty() {
        return None;
    }
    let strays: Vec<String> = restricted
        .iter()
        .filter_map(|(w, allowed)| {
            let outside: Vec<u32> = w
                .report
                .cpus_since_change
                .iter()
                .copied()
                .filter(|c| !allowed.contains(c))
                .collect();
            (!outside.is_empty()).then(|| {
                format!(
                    "worker {} ({}) ran on CPUs \"{}\" outside \"{}\"",
                    w.report.pid,
                    w.report.comm,
                    format_cpulist(&outside),
                    format_cpulist(allowed)
                )
            })
        })
        .collect();
    let detail = strays.join(", ");
    Some(result(
        format!("isolation[{step}/{}]", c.cgroup),
        strays.is_empty(),
        strays.len() as f64,
        detail,
    ))
}

/// A payload passes when it exited 0 or the scenario stopped it on purpose
/// (kill_payload, end of its step); it fails when it could not start,
/// exited non-zero, or outlived the payload limit.
pub fn payload_check(step: &str, p: &PayloadOutcome) -> CheckResult {
    let name = format!("payload[{step}/{}]", p.name);
    let value = p.exit_code.map(f64::from);
    let fail = |why: String| CheckResult { check: name.clone(), passed: false, value, detail: why };
    if let Some(e) = &p.error {
        return fail(format!("could not start: {e}"));
    }
    match (p.stopped, p.exit_code) {
        (Some(StopReason::TimedOut), _) => {
            fail(format!("still running after {} ms; killed", p.duration_ms))
        }
        (Some(StopReason::Killed | StopReason::StepEnded | StopReason::Aborted), _)
        | (None, Some(0)) => {
            CheckResult { check: name, passed: true, value, detail: String::new() }
        }
        (None, Some(code)) => {
            fail(format!("exited with code {code}; stderr tail:\n{}", p.stderr_tail))
        }
        (None, None) => fail(format!(
            "killed by signal {}; stderr tail:\n{}",
            p.signal.unwrap_or(0),
            p.stderr_tail
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::results::{SpawnRecord, WorkerResult};
    use crate::work::WorkerReport;

    fn worker(pid: u32, units: u64, cpus: &[u32], allowed: Option<&[u32]>) -> WorkerResult {
        let (cpus, cpus_since_change) = (cpus.to_vec(), cpus.to_vec());
        let report = WorkerReport {
            pid,
            comm: "w".into(),
            work_units: units,
            elapsed_ns: 1_000_000_000,
            cpus,
            cpus_since_change,
            ..Default::default()
        };
        WorkerResult { report, allowed_cpus: allowed.map(<[u32]>::to_vec) }
    }

    fn cg(
        name: &str,
        count: u32,
        cpus: Option<&[u32]>,
        workers: Vec<WorkerResult>,
    ) -> CgroupResult {
        CgroupResult {
            cgroup: name.into(),
            spawns: vec![SpawnRecord { count, work: "spin".into() }],
            cpus: cpus.map(<[u32]>::to_vec),
            comparable: true,
            workers,
        }
    }

    #[test]
    fn equal_cgroups_are_grouped_and_others_are_not() {
        let cgs = vec![
            cg("a", 2, None, vec![]),
            cg("b", 2, None, vec![]),
            cg("c", 3, None, vec![]),
            cg("d", 2, Some(&[0, 1]), vec![]),
            cg("e", 2, Some(&[0, 1]), vec![]),
            CgroupResult { comparable: false, ..cg("f", 2, None, vec![]) },
            cg("p/x", 2, None, vec![]),
            cg("p/y", 2, None, vec![]),
        ];
        assert_eq!(fairness_groups(&cgs), vec![vec![0, 1], vec![3, 4], vec![6, 7]]);
    }

    #[test]
    fn fairness_spread_against_the_threshold() {
        let cfg = ChecksConfig::default();
        let fair = vec![
            cg("a", 1, None, vec![worker(1, 100, &[0], None)]),
            cg("b", 1, None, vec![worker(2, 90, &[1], None)]),
        ];
        let rs = evaluate_cgroup_checks("s", &fair, &cfg);
        let f = rs.iter().find(|r| r.check == "fairness[s: a,b]").unwrap();
        assert!(f.passed && (f.value.unwrap() - 10.0 / 95.0).abs() < 1e-9, "{f:?}");

        let unfair = vec![
            cg("a", 1, None, vec![worker(1, 100, &[0], None)]),
            cg("b", 1, None, vec![worker(2, 50, &[1], None)]),
        ];
        let f = evaluate_cgroup_checks("s", &unfair, &cfg)
            .into_iter()
            .find(|r| r.check.starts_with("fairness"))
            .unwrap();
        assert!(!f.passed);
        assert_eq!(f.detail, "work rates a=100/s b=50/s: spread (max-min)/mean = 0.667 > 0.35");
        let lax = ChecksConfig { fairness_max_spread: 0.7, ..cfg.clone() };
        assert!(evaluate_cgroup_checks("s", &unfair, &lax).iter().all(|r| r.passed));
        let off = ChecksConfig { fairness: false, ..cfg };
        assert!(!evaluate_cgroup_checks("s", &unfair, &off)
            .iter()
            .any(|r| r.check.starts_with("fairness")));
    }

    #[test]
    fn fairness_compares_cpu_time_when_the_kernel_gives_it() {
        let on_cpu = |mut w: WorkerResult, ms: u64| {
            w.report.on_cpu_ns = Some(ms * 1_000_000);
            w
        };
        // Equal CPU time on CPUs of unequal speed: fair, whatever the work rates.
        let fair = vec![
            cg("a", 1, None, vec![on_cpu(worker(1, 100, &[0], None), 900)]),
            cg("b", 1, None, vec![on_cpu(worker(2, 50, &[1], None), 880)]),
        ];
        let cfg = ChecksConfig::default();
        assert!(evaluate_cgroup_checks("s", &fair, &cfg).iter().all(|r| r.passed));

        let unfair = vec![
            cg("a", 1, None, vec![on_cpu(worker(1, 100, &[0], None), 1000)]),
            cg("b", 1, None, vec![on_cpu(worker(2, 100, &[1], None), 500)]),
        ];
        let f = evaluate_cgroup_checks("s", &unfair, &cfg).remove(2);
        assert!(!f.passed);
        assert_eq!(f.detail, "CPU time a=1 CPUs b=0.5 CPUs: spread (max-min)/mean = 0.667 > 0.35");

        // One worker without a CPU time: the whole comparison falls back to work rates.
        let mixed = vec![
            cg("a", 1, None, vec![on_cpu(worker(1, 100, &[0], None), 1000)]),
            cg("b", 1, None, vec![worker(2, 50, &[1], None)]),
        ];
        let f = evaluate_cgroup_checks("s", &mixed, &cfg).remove(2);
        assert!(f.detail.starts_with("work rates a=100/s b=50/s"), "{}", f.detail);
    }

    #[test]
    fn starvation_names_the_idle_worker() {
        let cgs = vec![cg("a", 2, None, vec![worker(1, 10, &[0], None), worker(2, 0, &[], None)])];
        let rs = evaluate_cgroup_checks("split", &cgs, &ChecksConfig::default());
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].check, "starvation[split/a]");
        assert!(!rs[0].passed);
        assert_eq!(rs[0].detail, "worker 2 (w) did 0 work units; at least 1 expected");
    }

    #[test]
    fn isolation_only_for_restricted_workers() {
        let ok = cg("a", 1, Some(&[0, 1]), vec![worker(1, 5, &[0, 1], Some(&[0, 1]))]);
        let bad = cg("b", 1, Some(&[2, 3]), vec![worker(2, 5, &[1, 2, 3, 5], Some(&[2, 3]))]);
        let free = cg("c", 1, None, vec![worker(3, 5, &[0, 1, 2], None)]);
        let rs = evaluate_cgroup_checks("s", &[ok, bad, free], &ChecksConfig::default());
        let iso: Vec<&CheckResult> =
            rs.iter().filter(|r| r.check.starts_with("isolation")).collect();
        assert_eq!(iso.len(), 2);
        assert!(iso[0].passed && iso[0].check == "isolation[s/a]");
        assert!(!iso[1].passed);
        assert_eq!(iso[1].detail, "worker 2 (w) ran on CPUs \"1,5\" outside \"2-3\"");
    }

    #[test]
    fn payload_outcomes() {
        let p = |stopped, exit_code, error: Option<&str>| PayloadOutcome {
            name: "p".into(),
            stopped,
            exit_code,
            error: error.map(str::to_string),
            stderr_tail: "boom".into(),
            ..Default::default()
        };
        assert!(payload_check("s", &p(None, Some(0), None)).passed);
        assert!(payload_check("s", &p(Some(StopReason::Killed), None, None)).passed);
        assert!(payload_check("s", &p(Some(StopReason::StepEnded), None, None)).passed);
        let r = payload_check("s", &p(None, Some(2), None));
        assert!(
            !r.passed
                && r.check == "payload[s/p]"
                && r.detail.starts_with("exited with code 2")
                && r.detail.ends_with("boom")
        );
        assert!(!payload_check("s", &p(Some(StopReason::TimedOut), None, None)).passed);
        assert!(payload_check("s", &p(None, None, Some("no plugin"))).detail.contains("no plugin"));
    }
}
