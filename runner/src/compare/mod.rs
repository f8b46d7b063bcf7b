//! `ktstr compare`: is B better than A? Repeated, interleaved runs of two
//! configurations (or saved results), a verdict per metric with its
//! statistics, a table, JSON, a picture, and gates for CI.

mod analysis;
pub mod args;
mod report;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Value};

use crate::gauntlet::{self, Cell, Job, Pool};
use crate::usage::UsageError;
use analysis::RunSample;
use args::{side_args, CompareArgs, Gate};

/// Each side's label (its arguments or directory) and its runs, and with
/// --noise-check a second A's runs.
struct Sides {
    labels: (String, String),
    a: Vec<RunSample>,
    b: Vec<RunSample>,
    noise: Vec<RunSample>,
}

pub fn execute(args: &CompareArgs) -> Result<i32> {
    let gates: Vec<Gate> = args.gates.iter().map(|g| g.parse()).collect::<Result<_, _>>()?;
    let out = gauntlet::out_dir(args.out.as_deref(), "compare")?;
    let Sides { labels, a, b, noise } = if args.from.is_empty() {
        let Some(sides) = run_both(args, &out)? else {
            eprintln!("[compare] interrupted: the runs so far are under {}", out.display());
            return Ok(crate::exit::INTERRUPTED);
        };
        sides
    } else {
        let [da, db] = args.from.as_slice() else {
            return Err(UsageError("--from takes two directories: A, then B".into()).into());
        };
        let labels = (da.display().to_string(), db.display().to_string());
        Sides { labels, a: saved_runs(da)?, b: saved_runs(db)?, noise: vec![] }
    };
    let metrics = analysis::compare(&a, &b);
    let noise_floor = (!noise.is_empty()).then(|| analysis::compare(&a, &noise));
    let counts = (analysis::good(&a).len(), a.len(), analysis::good(&b).len(), b.len());
    let failed = report::failed_gates(&gates, &metrics);
    let doc = json!({
        "a": { "args": labels.0, "runs": runs_json(&a) },
        "b": { "args": labels.1, "runs": runs_json(&b) },
        "alpha": analysis::ALPHA,
        "test": "Mann-Whitney U, two-sided, normal approximation with tie and continuity \
            corrections",
        "interval": "95% bootstrap of (median B - median A) / |median A|, 2000 resamples",
        "metrics": metrics,
        "noise": noise_floor.as_ref().map(|n| json!({ "runs": runs_json(&noise), "metrics": n })),
        "gates_failed": failed,
        "out": out,
    });
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(out.join("compare.json"), &text)?;
    std::fs::write(out.join("compare.svg"), report::svg(&metrics, &labels.0, &labels.1))?;
    let mut table = report::table(&metrics, counts);
    if let Some(n) = &noise_floor {
        table.push_str(&report::noise(n));
    }
    for f in &failed {
        table.push_str(&format!("GATE FAILED {f}\n"));
    }
    table.push_str(&format!("picture: {}\n", out.join("compare.svg").display()));
    crate::output::emit(args.json.as_deref(), &text, &table)?;
    Ok(if failed.is_empty() { crate::exit::PASS } else { crate::exit::CHECK_FAILED })
}

/// Runs both sides, interleaved, as gauntlet cells sharing one kernel;
/// `None` when Ctrl-C or SIGTERM stopped them.
fn run_both(args: &CompareArgs, out: &Path) -> Result<Option<Sides>> {
    if args.runs < 2 {
        return Err(UsageError(
            "--runs must be at least 2 (a side's spread needs two runs)".into(),
        )
        .into());
    }
    let (a, b) = (args.a.as_deref().unwrap_or_default(), args.b.as_deref().unwrap_or_default());
    let (side_a, side_b) = (side_args("--a", a)?, side_args("--b", b)?);
    let entry = crate::kernel::resolve(None)?;
    let kernel = entry.key.clone().unwrap_or_else(|| entry.bzimage.display().to_string());
    let mut sides = vec![("a", &side_a), ("b", &side_b)];
    if args.noise_check {
        // A second A, interleaved like the others: A against A is the noise floor.
        sides.insert(1, ("n", &side_a));
    }
    let mut cells = Vec::new();
    for k in 1..=args.runs {
        for &(side, extra) in &sides {
            let mut run_args = vec!["run".to_string(), "--kernel".into(), kernel.clone()];
            run_args.extend(args.disks.iter().map(|d| format!("--disk={d}")));
            run_args.extend(args.common.iter().cloned());
            run_args.extend(extra.iter().cloned());
            let (cpus, memory_mib) = reservation(&run_args);
            cells.push(Cell {
                id: format!("{side}-{k}"),
                topology: String::new(),
                topology_source: None,
                scheduler: side.to_string(),
                job: Job::Plugin(side.to_string()),
                cpus,
                memory_mib,
                run_args,
            });
        }
    }
    eprintln!(
        "[compare] {} runs ({} interleaved); kernel {kernel}; out {}",
        cells.len(),
        if args.noise_check { "A A' B" } else { "A B" },
        out.display()
    );
    let (results, interrupted) = gauntlet::run_all(cells, out, Pool::of_host(args.jobs), false)?;
    if interrupted {
        return Ok(None);
    }
    let sample =
        |r: &gauntlet::CellResult| run_sample(&r.cell.id, &r.dir.join("result.json"), &r.verdict);
    let side = |prefix: &str| -> Vec<RunSample> {
        results.iter().filter(|r| r.cell.id.starts_with(prefix)).map(sample).collect()
    };
    Ok(Some(Sides {
        labels: (a.to_string(), b.to_string()),
        a: side("a-"),
        b: side("b-"),
        noise: side("n-"),
    }))
}

/// The vCPUs and memory a run reserves, from its arguments (defaults as `ktstr run`'s).
fn reservation(run_args: &[String]) -> (u32, u64) {
    let value =
        |flag: &str| run_args.iter().rposition(|a| a == flag).and_then(|i| run_args.get(i + 1));
    let cpus = value("--topology")
        .and_then(|t| t.parse::<ktstr_core::topology::Topology>().ok())
        .map_or(2, |t| t.cpus());
    let memory = value("--memory").and_then(|m| crate::run::parse_memory(m).ok()).unwrap_or(1024);
    (cpus, memory)
}

/// One run from its result.json (a run that wrote none is a failed run).
fn run_sample(id: &str, path: &Path, verdict: &str) -> RunSample {
    let doc: Value = crate::json_file::load(path).unwrap_or(Value::Null);
    let metrics = doc["metrics"].as_array().map(Vec::as_slice).unwrap_or_default();
    RunSample {
        id: id.to_string(),
        verdict: doc["verdict"].as_str().unwrap_or(verdict).to_string(),
        metrics: metrics
            .iter()
            .filter_map(|m| {
                let better = m["better"].as_str().unwrap_or("neutral").to_string();
                Some((m["name"].as_str()?.to_string(), (m["value"].as_f64()?, better)))
            })
            .collect(),
    }
}

/// Every run saved under `dir`: each result.json, once per run (a gauntlet
/// cell's copy in artifacts/ is the same run).
fn saved_runs(dir: &Path) -> Result<Vec<RunSample>> {
    let mut found = Vec::new();
    walk(dir, 4, &mut found).map_err(|e| UsageError(format!("--from {}: {e}", dir.display())))?;
    let mut seen = std::collections::BTreeSet::new();
    let mut runs = Vec::new();
    for path in found {
        let Ok(doc) = std::fs::read_to_string(&path).map(|t| serde_json::from_str::<Value>(&t))
        else {
            continue;
        };
        let Ok(doc) = doc else { continue };
        let run = doc["artifacts"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| path.display().to_string());
        if doc["verdict"].is_string() && seen.insert(run.clone()) {
            runs.push(run_sample(&run, &path, "?"));
        }
    }
    if runs.is_empty() {
        return Err(UsageError(format!(
            "--from {}: no run results (result.json) in it",
            dir.display()
        ))
        .into());
    }
    Ok(runs)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() && depth > 0 {
            walk(&p, depth - 1, out)?;
        } else if p.file_name().is_some_and(|n| n == "result.json") {
            out.push(p);
        }
    }
    Ok(())
}

fn runs_json(runs: &[RunSample]) -> Vec<Value> {
    runs.iter().map(|r| json!({"id": r.id, "verdict": r.verdict})).collect()
}
