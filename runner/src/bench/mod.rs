//! `ktstr bench`: time-to-verdict and peak RSS of one trivial run per VM
//! engine, the engines interleaved in the same session, reported as medians
//! and as a ratio against the first engine's peer.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cli::BenchArgs;
use crate::usage::UsageError;

/// The trivial job: boot, EEVDF, one second of spinning, verdict.
const TRIVIAL_RUN: [&str; 6] =
    ["--plugin", "workers", "--arg=--work", "--arg=spin", "--arg=--duration", "--arg=1"];

#[derive(Debug, Serialize)]
struct Sample {
    wall_ms: u128,
    peak_rss_kib: Option<u64>,
    verdict: String,
}

#[derive(Debug, Serialize)]
struct EngineResult {
    vmm: String,
    /// What the run reported about its engine (version, accelerator).
    description: String,
    samples: Vec<Sample>,
    median_wall_ms: Option<u128>,
    median_peak_rss_kib: Option<u64>,
}

pub fn execute(args: &BenchArgs) -> Result<i32> {
    if args.runs == 0 {
        return Err(UsageError("--runs must be at least 1".into()).into());
    }
    let engines: Vec<&str> = args.vmm.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if let Some(bad) = engines.iter().find(|e| !matches!(**e, "kvm" | "qemu")) {
        return Err(UsageError(format!("--vmm {bad}: engines are `kvm` and `qemu`")).into());
    }
    crate::interrupt::install();
    let exe = std::env::current_exe().context("find the ktstr executable")?;
    let work = tempfile::Builder::new().prefix("ktstr-bench-").tempdir()?;
    let mut results: Vec<EngineResult> = engines
        .iter()
        .map(|e| EngineResult {
            vmm: e.to_string(),
            description: String::new(),
            samples: vec![],
            median_wall_ms: None,
            median_peak_rss_kib: None,
        })
        .collect();
    // Interleaved so that drift in the machine's load hits every engine alike.
    for round in 0..args.runs {
        for r in results.iter_mut() {
            if crate::interrupt::requested() {
                bail!("interrupted");
            }
            let json = work.path().join(format!("{}-{round}.json", r.vmm));
            let (sample, description) = one_run(&exe, &r.vmm, args, &json)?;
            eprintln!(
                "[bench] {} run {}/{}: {} in {} ms, peak RSS {}",
                r.vmm,
                round + 1,
                args.runs,
                sample.verdict,
                sample.wall_ms,
                fmt_kib(sample.peak_rss_kib)
            );
            r.description = description;
            r.samples.push(sample);
        }
    }
    for r in results.iter_mut() {
        let passed: Vec<&Sample> = r.samples.iter().filter(|s| s.verdict == "PASS").collect();
        r.median_wall_ms = median(passed.iter().map(|s| s.wall_ms).collect());
        r.median_peak_rss_kib = median(passed.iter().filter_map(|s| s.peak_rss_kib).collect());
    }
    let ratio = match (
        results.first().and_then(|r| r.median_wall_ms),
        results.get(1).and_then(|r| r.median_wall_ms),
    ) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "runs": args.runs, "topology": args.topology, "engines": results, "wall_ratio_first_to_second": ratio })
            )?
        );
    } else {
        print!("{}", table(&results, ratio));
    }
    let all_passed = results.iter().all(|r| r.samples.iter().all(|s| s.verdict == "PASS"));
    Ok(if all_passed { crate::exit::PASS } else { crate::exit::INFRA_ERROR })
}

/// Runs `ktstr run` once as a child, so its wall time covers everything a user waits for.
fn one_run(exe: &Path, vmm: &str, args: &BenchArgs, json: &Path) -> Result<(Sample, String)> {
    let started = Instant::now();
    let status = Command::new(exe)
        .arg("run")
        .args(["--vmm", vmm, "--topology", &args.topology, "--memory", &args.memory])
        .args(TRIVIAL_RUN)
        .arg("--json")
        .arg(json)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("run ktstr")?;
    let wall_ms = started.elapsed().as_millis();
    let doc: serde_json::Value = match std::fs::read_to_string(json) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("read {}", json.display()))?
        }
        Err(_) => bail!(
            "`ktstr run --vmm {vmm}` wrote no result (exit {:?}); run it by hand to see why",
            status.code()
        ),
    };
    let sample = Sample {
        wall_ms,
        peak_rss_kib: doc["engine"]["peak_rss_kib"].as_u64(),
        verdict: doc["verdict"].as_str().unwrap_or("?").to_string(),
    };
    Ok((sample, doc["engine"]["description"].as_str().unwrap_or_default().to_string()))
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> Option<T> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

fn fmt_kib(k: Option<u64>) -> String {
    k.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "?".into())
}

fn table(results: &[EngineResult], ratio: Option<f64>) -> String {
    let mut s =
        String::from("engine  runs  median time-to-verdict  median peak RSS  description\n");
    for r in results {
        let passed = r.samples.iter().filter(|x| x.verdict == "PASS").count();
        let wall = r.median_wall_ms.map(|m| format!("{m} ms")).unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:<6}  {passed}/{:<3} {wall:>22}  {:>15}  {}\n",
            r.vmm,
            r.samples.len(),
            fmt_kib(r.median_peak_rss_kib),
            r.description
        ));
    }
    if let (Some(ratio), [a, b, ..]) = (ratio, results) {
        s.push_str(&format!("time-to-verdict ratio {}/{}: {ratio:.2}\n", a.vmm, b.vmm));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3u128, 1, 2]), Some(2));
        assert_eq!(median(vec![4u64, 1, 3, 2]), Some(3));
        assert_eq!(median(Vec::<u64>::new()), None);
    }

    #[test]
    fn the_table_names_the_ratio() {
        let r = |vmm: &str, ms| EngineResult {
            vmm: vmm.into(),
            description: "d".into(),
            samples: vec![Sample { wall_ms: ms, peak_rss_kib: Some(2048), verdict: "PASS".into() }],
            median_wall_ms: Some(ms),
            median_peak_rss_kib: Some(2048),
        };
        let t = table(&[r("kvm", 500), r("qemu", 1000)], Some(0.5));
        assert!(t.contains("time-to-verdict ratio kvm/qemu: 0.50"), "{t}");
        assert!(t.contains("2.0 MiB"), "{t}");
    }
}
