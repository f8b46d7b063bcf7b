//! `ktstr nested -- bench …`, driven from the host so that it survives the
//! emulated L1 dying: the bench inside L1 reports each sample as a console
//! line; when L1 dies, the run it was in is charged to that engine's L1
//! deaths and the bench goes on in a fresh L1 from that run. Only L1 deaths
//! are retried, and each is counted and reported: a failed run inside a
//! living L1 is a sample like any other.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use super::l1::{L1Host, L1Outcome, L1_CRASHED};
use crate::bench::{parse_samples, report, Plan, Sample};
use crate::cli::BenchArgs;
use crate::run::progress;

/// L1 deaths in a row, with no sample in between, before the bench gives up.
const MAX_DEATHS_IN_A_ROW: u32 = 3;

/// The bench's exit code, and how many L1s died on the way (their consoles
/// are evidence to keep even when every run passed).
pub fn execute(
    host: &L1Host,
    args: &[String],
    plan: &Plan,
    bench: &BenchArgs,
    dir: &Path,
) -> Result<(i32, u32)> {
    let (samples, deaths) =
        drive(plan, args, dir, host.watchdog, |inner, dir| host.run(inner, dir))?;
    let code = report::print(plan, &samples, Some(&deaths), bench)?;
    Ok((code, deaths.iter().sum()))
}

/// Runs the bench in as many L1s as it takes (`run_l1` boots one); returns
/// the samples and the L1 deaths per engine.
fn drive(
    plan: &Plan,
    args: &[String],
    dir: &Path,
    watchdog: Duration,
    mut run_l1: impl FnMut(&[String], &Path) -> Result<L1Outcome>,
) -> Result<(Vec<Sample>, Vec<u32>)> {
    let sequence = plan.sequence();
    let mut samples: Vec<Sample> = Vec::new();
    let mut deaths = vec![0u32; plan.engines.len()];
    let mut in_a_row = 0;
    for attempt in 1.. {
        let start = samples.len();
        let mut inner = args.to_vec();
        // Bench flags go before a job's `--`, which ends the bench's own.
        let at = inner.iter().position(|a| a == "--").unwrap_or(inner.len());
        let flags = ["--emit-samples".into(), "--skip".into(), start.to_string()];
        inner.splice(at..at, flags);
        let out = run_l1(&inner, &dir.join(format!("l1-{attempt}")))?;
        let console = std::fs::read_to_string(&out.console_log).unwrap_or_default();
        let new = parse_samples(&console);
        let got = new.len();
        samples.extend(new.into_iter().take(sequence.len() - start));
        if out.code.is_some() || samples.len() >= sequence.len() {
            break;
        }
        let why = out.failure(watchdog);
        if !why.starts_with(L1_CRASHED) {
            bail!("{why}");
        }
        let (round, vmm) = sequence[samples.len()];
        let engine = plan.engines.iter().position(|e| e == vmm).unwrap_or(0);
        deaths[engine] += 1;
        in_a_row = if got > 0 { 1 } else { in_a_row + 1 };
        progress(&format!(
            "!!! {why}\n    during {vmm} run {}/{}: counted as an L1 death of {vmm}; \
             going on in a fresh L1 from that run",
            round + 1,
            plan.runs
        ));
        if in_a_row >= MAX_DEATHS_IN_A_ROW {
            bail!("the emulated L1 host died {in_a_row} times in a row; giving up the bench");
        }
    }
    Ok((samples, deaths))
}

#[cfg(test)]
mod tests {
    use super::super::l1::End;
    use super::*;
    use crate::bench::SAMPLE_PREFIX;

    fn sample(vmm: &str, round: usize) -> Sample {
        Sample {
            vmm: vmm.into(),
            round,
            wall_ms: 1,
            peak_rss_kib: None,
            verdict: "PASS".into(),
            description: String::new(),
            init_ms: None,
            timeline: serde_json::Value::Null,
        }
    }

    /// A fake L1: writes the console of the samples it "ran" (from --skip on);
    /// dies (no exit code) after `dies_after` samples when that is Some.
    fn fake_l1(
        plan: &Plan,
        script: &mut Vec<Option<usize>>,
        inner: &[String],
        dir: &Path,
    ) -> Result<L1Outcome> {
        std::fs::create_dir_all(dir)?;
        let skip: usize = inner[inner.iter().position(|a| a == "--skip").unwrap() + 1].parse()?;
        let dies_after = script.remove(0);
        let seq = plan.sequence();
        let todo = &seq[skip..];
        let n = dies_after.unwrap_or(todo.len()).min(todo.len());
        let mut console = String::from("[L1] up\n");
        for &(round, vmm) in &todo[..n] {
            let line = serde_json::to_string(&sample(vmm, round))?;
            console.push_str(&format!("{SAMPLE_PREFIX}{line}\r\n"));
        }
        if dies_after.is_some() {
            console.push_str("[  99.1] Kernel panic - not syncing: Fatal exception\n");
        }
        let console_log = dir.join("l1-console.log");
        std::fs::write(&console_log, console)?;
        let code = if dies_after.is_some() { None } else { Some(0) };
        Ok(L1Outcome { code, end: End::Exited { detail: None }, stdout: vec![], console_log })
    }

    #[test]
    fn the_bench_flags_go_before_a_jobs_separator() {
        let plan = Plan { engines: vec!["kvm".into()], runs: 1 };
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<String> = ["bench", "--", "--plugin", "fio"].map(String::from).to_vec();
        let mut seen = Vec::new();
        let mut script = vec![None];
        drive(&plan, &args, dir.path(), Duration::from_secs(1), |inner, d| {
            seen = inner.to_vec();
            fake_l1(&plan, &mut script, inner, d)
        })
        .unwrap();
        assert_eq!(seen, ["bench", "--emit-samples", "--skip", "0", "--", "--plugin", "fio"]);
    }

    #[test]
    fn a_bench_goes_on_in_a_fresh_l1_from_the_run_l1_died_in() {
        let plan = Plan { engines: vec!["kvm".into(), "qemu".into()], runs: 3 };
        let dir = tempfile::tempdir().unwrap();
        // L1 #1 dies after 3 samples (during qemu run 2), #2 at once (kvm
        // run 3), #3 finishes.
        let mut script = vec![Some(3), Some(1), None];
        let args = vec!["bench".to_string()];
        let (samples, deaths) = drive(&plan, &args, dir.path(), Duration::from_secs(1), |i, d| {
            fake_l1(&plan, &mut script, i, d)
        })
        .unwrap();
        let order: Vec<(usize, &str)> = samples.iter().map(|s| (s.round, s.vmm.as_str())).collect();
        assert_eq!(order, plan.sequence(), "every run once, in order");
        assert_eq!(deaths, [1, 1], "qemu run 2 and kvm run 3 each lost an L1");
    }

    #[test]
    fn an_l1_that_keeps_dying_gives_up() {
        let plan = Plan { engines: vec!["kvm".into()], runs: 2 };
        let dir = tempfile::tempdir().unwrap();
        let mut script = vec![Some(0); 5];
        let args = vec!["bench".to_string()];
        let err = drive(&plan, &args, dir.path(), Duration::from_secs(1), |i, d| {
            fake_l1(&plan, &mut script, i, d)
        })
        .unwrap_err();
        assert!(err.to_string().contains("3 times in a row"), "{err}");
    }
}
