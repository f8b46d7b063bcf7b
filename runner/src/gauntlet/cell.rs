//! One cell as a child `ktstr run`: started with its own artifacts
//! directory, its summary and progress kept in files, its `--json` read
//! back into a `CellResult` when it ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::Cell;

/// The verdict of a cell whose `ktstr run` wrote no result (a usage or host
/// error before the VM booted): its stderr says why.
pub const NO_RESULT: &str = "ERROR";
/// The verdict of a cell the gauntlet never started (--fail-fast, Ctrl-C).
pub const NOT_RUN: &str = "NOT_RUN";

/// Headline metrics a row of the table shows at most.
const HEADLINES: usize = 3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub cell: Cell,
    pub verdict: String,
    pub class: Option<String>,
    pub reason: String,
    /// `ktstr run`'s exit code (see `ktstr --help`).
    pub exit_code: Option<i32>,
    pub wall_ms: u64,
    /// Metrics the payload says which way is better, as (name, value, better).
    pub headline: Vec<(String, f64, String)>,
    /// The cell's directory: result.json, summary.txt, progress.log and
    /// the run's artifacts.
    pub dir: PathBuf,
}

impl CellResult {
    pub fn passed(&self) -> bool {
        self.verdict == "PASS"
    }

    pub fn not_run(cell: &Cell, dir: PathBuf, why: &str) -> CellResult {
        CellResult {
            cell: cell.clone(),
            verdict: NOT_RUN.into(),
            class: None,
            reason: why.into(),
            exit_code: None,
            wall_ms: 0,
            headline: vec![],
            dir,
        }
    }

    /// What `ktstr run` printed to stdout: its summary.
    pub fn summary(&self) -> String {
        std::fs::read_to_string(self.dir.join("summary.txt")).unwrap_or_default()
    }
}

/// A started cell.
pub struct Running {
    pub cell: Cell,
    pub dir: PathBuf,
    pub child: Child,
    pub started: Instant,
}

pub fn start(exe: &Path, cell: &Cell, dir: PathBuf) -> Result<Running> {
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let stdout = std::fs::File::create(dir.join("summary.txt"))?;
    let stderr = std::fs::File::create(dir.join("progress.log"))?;
    let child = Command::new(exe)
        .args(&cell.run_args)
        .arg("--json")
        .arg(dir.join("result.json"))
        .arg("--artifacts")
        .arg(dir.join("artifacts"))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .context("start `ktstr run`")?;
    Ok(Running { cell: cell.clone(), dir, child, started: Instant::now() })
}

/// The result of a cell whose process has ended with `code`.
pub fn finish(run: Running, code: Option<i32>) -> CellResult {
    let wall_ms = run.started.elapsed().as_millis() as u64;
    let doc: Option<Value> = crate::json_file::load(&run.dir.join("result.json"));
    let Some(doc) = doc else {
        let stderr = std::fs::read_to_string(run.dir.join("progress.log")).unwrap_or_default();
        let why = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
        return CellResult {
            verdict: NO_RESULT.into(),
            reason: format!("`ktstr run` wrote no result (exit {code:?}): {}", why.trim()),
            exit_code: code,
            wall_ms,
            ..CellResult::not_run(&run.cell, run.dir, "")
        };
    };
    CellResult {
        verdict: doc["verdict"].as_str().unwrap_or(NO_RESULT).to_string(),
        class: doc["class"].as_str().map(String::from),
        reason: doc["reason"].as_str().unwrap_or_default().to_string(),
        exit_code: code,
        wall_ms,
        headline: headline(&doc),
        cell: run.cell,
        dir: run.dir,
    }
}

/// The first metrics with a `better` of `higher` or `lower`.
fn headline(doc: &Value) -> Vec<(String, f64, String)> {
    let metrics = doc["metrics"].as_array().map(Vec::as_slice).unwrap_or_default();
    metrics
        .iter()
        .filter_map(|m| {
            let better = m["better"].as_str().filter(|b| *b != "neutral")?;
            Some((m["name"].as_str()?.to_string(), m["value"].as_f64()?, better.to_string()))
        })
        .take(HEADLINES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gauntlet::plan::test_cell;

    fn finished(dir: &Path, files: &[(&str, &str)], code: i32) -> CellResult {
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let child = Command::new("true").spawn().unwrap();
        let run = Running {
            cell: test_cell("c"),
            dir: dir.to_path_buf(),
            child,
            started: Instant::now(),
        };
        finish(run, Some(code))
    }

    #[test]
    fn a_result_gives_verdict_class_and_headline_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let doc = r#"{"verdict":"SCHEDULER_FAILED","class":"stall","reason":"it stalled","metrics":[
            {"name":"duration_s","value":1.0},{"name":"work_units","value":5.0,"better":"higher"},
            {"name":"threads","value":1.0,"better":"neutral"},{"name":"p99","value":9.5,"better":"lower"}]}"#;
        let r = finished(dir.path(), &[("result.json", doc), ("summary.txt", "SUMMARY")], 3);
        assert_eq!(
            (r.verdict.as_str(), r.class.as_deref(), r.exit_code),
            ("SCHEDULER_FAILED", Some("stall"), Some(3))
        );
        assert_eq!(
            r.headline,
            [("work_units".into(), 5.0, "higher".into()), ("p99".into(), 9.5, "lower".into())]
        );
        assert_eq!(r.summary(), "SUMMARY");
        assert!(!r.passed());
    }

    #[test]
    fn no_result_is_an_error_with_the_last_stderr_line() {
        let dir = tempfile::tempdir().unwrap();
        let r =
            finished(dir.path(), &[("progress.log", "[ktstr] x\nerror: no plugin `nope`\n\n")], 2);
        assert_eq!(r.verdict, NO_RESULT);
        assert!(r.reason.ends_with("error: no plugin `nope`"), "{}", r.reason);
    }
}
