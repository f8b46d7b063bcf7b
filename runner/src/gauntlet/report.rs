//! What people see: a live progress line while cells run, and the final
//! table; and what machines read: the gauntlet's JSON.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cell::{CellResult, NOT_RUN};
use super::plan::Shard;

/// Cells done, running and failed, and a time estimate for the rest; on a
/// terminal one line redrawn in place, otherwise a line per change.
pub struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    started: Instant,
    tty: bool,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress { total, done: 0, failed: 0, started: Instant::now(), tty }
    }

    pub fn started(&self, id: &str, running: usize) {
        if self.tty {
            self.draw(running);
        } else {
            eprintln!("[gauntlet] start {id} ({running} running)");
        }
    }

    pub fn finished(&mut self, r: &CellResult, running: usize) {
        self.done += 1;
        if !r.passed() {
            self.failed += 1;
        }
        let why =
            if r.passed() { String::new() } else { format!(": {}", super::junit::message(r)) };
        let line = format!("[gauntlet] {} {} in {}{why}", r.verdict, r.cell.id, secs(r.wall_ms));
        if self.tty {
            eprint!("\r\x1b[K");
        }
        eprintln!("{line}");
        self.draw(running);
    }

    fn draw(&self, running: usize) {
        let line = self.line(running, self.started.elapsed());
        if self.tty {
            eprint!("\r\x1b[K{line}");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
    }

    /// `[gauntlet] 3/12 done, 2 running, 1 failed, ETA 1m20s`.
    pub fn line(&self, running: usize, elapsed: Duration) -> String {
        let eta = if self.done == 0 {
            "ETA after the first cell".to_string()
        } else {
            let left = elapsed.as_secs_f64() / self.done as f64 * (self.total - self.done) as f64;
            format!("ETA {}", clock(left.round() as u64))
        };
        format!(
            "[gauntlet] {}/{} done, {running} running, {} failed, {eta}",
            self.done, self.total, self.failed
        )
    }

    pub fn end(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// The final table, one row per cell, then a line of totals.
pub fn table(results: &[CellResult], wall: Duration) -> String {
    let rows: Vec<[String; 5]> = results
        .iter()
        .map(|r| {
            let metrics: Vec<String> = r
                .headline
                .iter()
                .map(|(name, v, better)| format!("{name}={} ({better})", num(*v)))
                .collect();
            let wall = if r.verdict == NOT_RUN { "-".to_string() } else { secs(r.wall_ms) };
            [
                r.cell.id.clone(),
                r.verdict.clone(),
                r.class.clone().unwrap_or("-".into()),
                wall,
                metrics.join(" "),
            ]
        })
        .collect();
    let head = ["CELL", "VERDICT", "CLASS", "WALL", "HEADLINE METRICS"].map(String::from);
    let mut widths = head.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let passed = results.iter().filter(|r| r.passed()).count();
    let not_run = results.iter().filter(|r| r.verdict == NOT_RUN).count();
    out.push_str(&format!(
        "{} cells: {passed} passed, {} did not pass, {not_run} not run; wall {}\n",
        results.len(),
        results.len() - passed - not_run,
        clock(wall.as_secs())
    ));
    out
}

/// The gauntlet's JSON (`--json`, and gauntlet.json in its directory).
pub fn to_json(
    results: &[CellResult],
    wall: Duration,
    jobs: usize,
    shard: Option<Shard>,
    kernel: &str,
) -> Value {
    let passed = results.iter().filter(|r| r.passed()).count();
    json!({
        "passed": passed == results.len(),
        "cells_total": results.len(),
        "cells_passed": passed,
        "wall_ms": wall.as_millis() as u64,
        "jobs": jobs,
        "shard": shard.map(|s| format!("{}/{}", s.index, s.count)),
        "kernel": kernel,
        "cells": results,
    })
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// 95 → `1m35s`.
fn clock(s: u64) -> String {
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Integers as integers, the rest with three significant decimals at most.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gauntlet::plan::test_cell;

    fn result(id: &str, verdict: &str, headline: Vec<(String, f64, String)>) -> CellResult {
        let cell = test_cell(id);
        let mut r = CellResult::not_run(&cell, "/x".into(), "");
        r.verdict = verdict.into();
        r.wall_ms = 2500;
        r.headline = headline;
        r
    }

    #[test]
    fn the_table_has_a_row_per_cell_and_totals() {
        let rows = [
            result("a", "PASS", vec![("work_units".into(), 1234.0, "higher".into())]),
            result("bb", "CHECK_FAILED", vec![("p99".into(), 1.23456, "lower".into())]),
            result("c", NOT_RUN, vec![]),
        ];
        let t = table(&rows, Duration::from_secs(95));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("CELL  VERDICT"), "{t}");
        assert!(lines[1].contains("work_units=1234 (higher)") && lines[1].contains("2.5s"), "{t}");
        assert!(lines[2].contains("p99=1.235 (lower)"), "{t}");
        assert!(lines[3].contains(" -  "), "{t}");
        assert_eq!(lines[4], "3 cells: 1 passed, 1 did not pass, 1 not run; wall 1m35s");
        let doc =
            to_json(&rows, Duration::from_secs(1), 2, Some(Shard { index: 1, count: 2 }), "k");
        assert_eq!((doc["passed"].as_bool(), doc["shard"].as_str()), (Some(false), Some("1/2")));
        assert_eq!(doc["cells"][1]["cell"]["id"], "bb");
    }

    #[test]
    fn progress_estimates_the_rest_from_the_cells_done() {
        let mut p = Progress::new(4);
        assert!(p.line(1, Duration::ZERO).contains("0/4 done, 1 running, 0 failed, ETA after"));
        p.done = 1;
        p.failed = 1;
        assert_eq!(
            p.line(2, Duration::from_secs(30)),
            "[gauntlet] 1/4 done, 2 running, 1 failed, ETA 1m30s"
        );
    }
}
