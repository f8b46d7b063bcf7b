//! The bench's result: per engine the runs that passed, the medians of the
//! passing runs, the ratio of the first engine's median to the second's, and
//! (inside `ktstr nested`) how many times the emulated L1 host died during
//! each engine's runs — a column of its own, never folded into the runs.

use anyhow::Result;
use serde::Serialize;

use super::stages::{self, StageMedian};
use super::{Plan, Sample};
use crate::cli::BenchArgs;

#[derive(Debug, Serialize)]
struct EngineResult<'a> {
    vmm: &'a str,
    description: &'a str,
    samples: Vec<&'a Sample>,
    passed: usize,
    median_wall_ms: Option<u128>,
    median_peak_rss_kib: Option<u64>,
    /// The guest's uptime when it started /init (median of passing runs).
    median_init_ms: Option<u64>,
    /// Where the passing runs' time went, stage by stage.
    median_stage_ms: Vec<StageMedian>,
    /// None outside `ktstr nested`.
    l1_deaths: Option<u32>,
}

fn results<'a>(
    plan: &'a Plan,
    samples: &'a [Sample],
    l1_deaths: Option<&[u32]>,
) -> Vec<EngineResult<'a>> {
    plan.engines
        .iter()
        .enumerate()
        .map(|(i, vmm)| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| &s.vmm == vmm).collect();
            let passed: Vec<&&Sample> = mine.iter().filter(|s| s.verdict == "PASS").collect();
            EngineResult {
                vmm,
                description: mine.last().map_or("", |s| s.description.as_str()),
                passed: passed.len(),
                median_wall_ms: median(passed.iter().map(|s| s.wall_ms).collect()),
                median_peak_rss_kib: median(passed.iter().filter_map(|s| s.peak_rss_kib).collect()),
                median_init_ms: median(passed.iter().filter_map(|s| s.init_ms).collect()),
                median_stage_ms: stages::medians(passed.iter().map(|s| (&s.timeline, s.wall_ms))),
                l1_deaths: l1_deaths.map(|d| d.get(i).copied().unwrap_or(0)),
                samples: mine,
            }
        })
        .collect()
}

/// Prints the table (or JSON) and returns the exit code: 0 only when every
/// planned run happened and passed.
pub fn print(
    plan: &Plan,
    samples: &[Sample],
    l1_deaths: Option<&[u32]>,
    args: &BenchArgs,
) -> Result<i32> {
    let results = results(plan, samples, l1_deaths);
    let ratio = match (
        results.first().and_then(|r| r.median_wall_ms),
        results.get(1).and_then(|r| r.median_wall_ms),
    ) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    };
    let interval = match &results[..] {
        [a, b, ..] => ratio_interval(&a.samples, &b.samples),
        _ => None,
    };
    if args.json {
        let doc = serde_json::json!({
            "runs": args.runs, "topology": args.topology, "job": super::job(args),
            "engines": results, "wall_ratio_first_to_second": ratio,
            "wall_ratio_interval": interval.map(|(lo, hi)| [lo, hi]),
            "wall_ratio_interval_method": INTERVAL_METHOD,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("job: ktstr run {}", super::job(args).join(" "));
        print!("{}", table(&results, ratio, interval));
    }
    let complete = results.iter().all(|r| r.samples.len() == plan.runs && r.passed == plan.runs);
    Ok(if complete { crate::exit::PASS } else { crate::exit::INFRA_ERROR })
}

const INTERVAL_METHOD: &str =
    "95% bootstrap of median(first) / median(second) over the passing runs, 2000 resamples";

/// Below this many passing runs a side, resampling says little: no interval.
const MIN_RUNS_FOR_INTERVAL: usize = 5;

/// How sure the ratio of the medians is: a 95% bootstrap interval over the
/// passing runs' times (the noise of single runs is large under emulation).
fn ratio_interval(first: &[&Sample], second: &[&Sample]) -> Option<(f64, f64)> {
    let walls = |s: &[&Sample]| -> Vec<f64> {
        s.iter().filter(|s| s.verdict == "PASS").map(|s| s.wall_ms as f64).collect()
    };
    let (a, b) = (walls(first), walls(second));
    if a.len() < MIN_RUNS_FOR_INTERVAL || b.len() < MIN_RUNS_FOR_INTERVAL {
        return None;
    }
    // (median(a) - median(b)) / median(b) is the ratio less one.
    let (lo, hi) = crate::stats::relative_difference_interval(&b, &a, 2000);
    (lo.is_finite() && hi.is_finite()).then_some((1.0 + lo, 1.0 + hi))
}

pub(super) fn median<T: Ord + Copy>(mut v: Vec<T>) -> Option<T> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// The engine column: as wide as its longest name, and its header.
pub(super) fn engine_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(0).max("engine".len())
}

pub fn fmt_kib(k: Option<u64>) -> String {
    k.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "?".into())
}

fn table(results: &[EngineResult], ratio: Option<f64>, interval: Option<(f64, f64)>) -> String {
    let nested = results.iter().any(|r| r.l1_deaths.is_some());
    let w = engine_width(results.iter().map(|r| r.vmm));
    let mut s = format!(
        "{:<w$}  passed  median time-to-verdict  guest at /init  median peak RSS",
        "engine"
    );
    s.push_str(if nested { "  L1 deaths  description\n" } else { "  description\n" });
    for r in results {
        let wall = r.median_wall_ms.map(|m| format!("{m} ms")).unwrap_or_else(|| "-".into());
        let runs = format!("{}/{}", r.passed, r.samples.len());
        let init = r.median_init_ms.map(|m| format!("{m} ms")).unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:<w$}  {runs:<6}  {wall:>22}  {init:>14}  {:>15}",
            r.vmm,
            fmt_kib(r.median_peak_rss_kib)
        ));
        if let Some(d) = r.l1_deaths {
            s.push_str(&format!("  {d:>9}"));
        }
        s.push_str(&format!("  {}\n", r.description));
    }
    if let (Some(ratio), [a, b, ..]) = (ratio, results) {
        s.push_str(&format!("time-to-verdict ratio {}/{}: {ratio:.2}", a.vmm, b.vmm));
        if let Some((lo, hi)) = interval {
            s.push_str(&format!(" (95% bootstrap interval {lo:.2}-{hi:.2})"));
        }
        s.push('\n');
    }
    let deaths: Vec<String> = results
        .iter()
        .filter(|r| r.l1_deaths.unwrap_or(0) > 0)
        .map(|r| r.vmm.to_string())
        .collect();
    if nested && deaths.len() == 1 && results.len() > 1 {
        s.push_str(&format!("the emulated L1 host died only during {} runs\n", deaths[0]));
    }
    let rows: Vec<(&str, &[StageMedian])> =
        results.iter().map(|r| (r.vmm, r.median_stage_ms.as_slice())).collect();
    s.push_str("\nmedian ms per stage of the passing runs (ktstr run's timeline):\n");
    s.push_str(&stages::table(&rows));
    s.push('\n');
    s.push_str(&stages::bars(&rows, BAR_WIDTH));
    s
}

/// The widest bar of the stage picture: fits a terminal of 100 columns.
const BAR_WIDTH: usize = 80;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(vmm: &str, round: usize, ms: u128, verdict: &str) -> Sample {
        Sample {
            vmm: vmm.into(),
            round,
            wall_ms: ms,
            peak_rss_kib: Some(2048),
            verdict: verdict.into(),
            description: "d".into(),
            init_ms: Some(777),
            timeline: serde_json::Value::Null,
        }
    }

    fn plan() -> Plan {
        Plan { engines: vec!["kvm".into(), "qemu".into()], runs: 2 }
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3u128, 1, 2]), Some(2));
        assert_eq!(median(vec![4u64, 1, 3, 2]), Some(3));
        assert_eq!(median(Vec::<u64>::new()), None);
    }

    #[test]
    fn the_table_names_the_ratio_and_only_passing_runs_count() {
        let s = [
            sample("kvm", 0, 500, "PASS"),
            sample("qemu", 0, 1000, "PASS"),
            sample("kvm", 1, 9000, "GUEST_CRASH"),
        ];
        let p = plan();
        let r = results(&p, &s, None);
        let t = table(&r, Some(0.5), None);
        assert!(t.contains("time-to-verdict ratio kvm/qemu: 0.50"), "{t}");
        assert!(t.contains("kvm     1/2") && t.contains("500 ms") && t.contains("2.0 MiB"), "{t}");
        assert!(t.contains("guest at /init") && t.contains("777 ms"), "the /init column: {t}");
        assert!(!t.contains("L1 deaths"), "{t}");
    }

    #[test]
    fn the_ratio_has_an_interval_once_each_side_has_enough_runs() {
        let p = Plan { engines: vec!["kvm".into(), "qemu".into()], runs: 6 };
        let mut s: Vec<Sample> = (0..6)
            .flat_map(|i| {
                let i = i as u128;
                [sample("kvm", 0, 500 + 10 * i, "PASS"), sample("qemu", 0, 1000 + 20 * i, "PASS")]
            })
            .collect();
        let r = results(&p, &s, None);
        let (lo, hi) = ratio_interval(&r[0].samples, &r[1].samples).unwrap();
        assert!(lo <= 0.5 && 0.5 <= hi && hi - lo < 0.1, "{lo} {hi}");
        let t = table(&r, Some(0.5), Some((lo, hi)));
        assert!(t.contains("ratio kvm/qemu: 0.50 (95% bootstrap interval 0."), "{t}");
        // A failed run is no time-to-verdict; too few passing runs, no interval.
        for x in s.iter_mut().filter(|x| x.vmm == "kvm").skip(1) {
            x.verdict = "GUEST_CRASH".into();
        }
        let r = results(&p, &s, None);
        assert_eq!(ratio_interval(&r[0].samples, &r[1].samples), None);
    }

    #[test]
    fn a_longer_engine_name_widens_its_column() {
        let p = Plan { engines: vec!["kvm".into(), "kvm-vmlinux".into()], runs: 1 };
        let s = [sample("kvm", 0, 500, "PASS"), sample("kvm-vmlinux", 0, 400, "PASS")];
        let t = table(&results(&p, &s, None), None, None);
        let at = |l: &str| l.find("1/1").unwrap();
        let rows: Vec<&str> = t.lines().skip(1).take(2).collect();
        assert_eq!(at(rows[0]), at(rows[1]), "{t}");
        assert_eq!(at(rows[0]), t.find("passed").unwrap(), "{t}");
    }

    #[test]
    fn l1_deaths_are_a_column_and_a_finding_when_one_engine_has_them() {
        let s = [sample("kvm", 0, 500, "PASS"), sample("qemu", 0, 1000, "PASS")];
        let p = plan();
        let t = table(&results(&p, &s, Some(&[0, 2])), None, None);
        assert!(t.contains("L1 deaths"), "{t}");
        assert!(t.contains("died only during qemu runs"), "{t}");
    }
}
