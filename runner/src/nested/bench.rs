//! `ktstr nested -- bench …`, driven from the host so that it survives the
//! emulated L1 dying: the bench inside L1 reports each sample as a console
//! line; when L1 dies, the run it was in is charged to that engine's L1
//! deaths and the bench goes on in a fresh L1 from that run. Only L1 deaths
//! are retried, and each is counted and reported: a failed run inside a
//! living L1 is a sample like any other.

use std::path::Path;

use anyhow::{bail, Result};

use super::l1::{L1Host, L1_CRASHED};
use crate::bench::{parse_samples, report, Plan, Sample};
use crate::cli::BenchArgs;
use crate::run::progress;

/// L1 deaths in a row, with no sample in between, before the bench gives up.
const MAX_DEATHS_IN_A_ROW: u32 = 3;

pub fn execute(host: &L1Host, args: &[String], bench: &BenchArgs, dir: &Path) -> Result<i32> {
    let plan = Plan::new(bench)?;
    let sequence = plan.sequence();
    let mut samples: Vec<Sample> = Vec::new();
    let mut deaths = vec![0u32; plan.engines.len()];
    let mut in_a_row = 0;
    for attempt in 1.. {
        let start = samples.len();
        let mut inner = args.to_vec();
        inner.extend(["--emit-samples".into(), "--skip".into(), start.to_string()]);
        let out = host.run(&inner, &dir.join(format!("l1-{attempt}")))?;
        let console = std::fs::read_to_string(&out.console_log).unwrap_or_default();
        let new = parse_samples(&console);
        let got = new.len();
        samples.extend(new.into_iter().take(sequence.len() - start));
        if out.code.is_some() || samples.len() >= sequence.len() {
            break;
        }
        let why = out.failure(host.watchdog);
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
    report::print(&plan, &samples, Some(&deaths), bench)
}
