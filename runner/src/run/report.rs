//! Rendering the verdict: the human summary, the JSON document, and the
//! artifacts directory. Both renderings read the same [`Outcome`].

use std::path::{Path, PathBuf};

use ktstr_core::check::CheckResult;
use ktstr_core::metrics::format_value;
use serde_json::json;

use super::record::Record;
use super::verdict::Verdict;

/// Which VM engine ran the guest, and what it cost.
pub struct EngineInfo {
    /// `qemu` or `kvm` (ktstr's own VMM).
    pub name: &'static str,
    /// Version, accelerator and why it was chosen.
    pub description: String,
    pub peak_rss_kib: Option<u64>,
    /// How the VM ended, when the engine says more than an exit status.
    pub end_detail: Option<String>,
    /// How long stopping the VM took, when ktstr had to stop it (watchdog,
    /// Ctrl-C, a guest that did not power off).
    pub stop_ms: Option<u128>,
}

/// Everything a rendering needs.
pub struct Outcome<'a> {
    pub verdict: Verdict,
    pub record: &'a Record,
    pub kernel: String,
    pub engine: EngineInfo,
    pub topology: String,
    pub topology_mismatches: Vec<String>,
    pub scheduler: String,
    pub payload: String,
    pub artifacts: PathBuf,
    pub wall_ms: u128,
    /// The last console lines, shown when the guest did not finish.
    pub console_tail: Vec<String>,
}

impl Outcome<'_> {
    /// One sentence on why the verdict is what it is.
    pub fn reason(&self) -> String {
        let r = self.record;
        match self.verdict {
            Verdict::Pass => "every check passed".into(),
            Verdict::CheckFailed => {
                let failed: Vec<&str> =
                    r.checks.iter().filter(|c| !c.passed).map(|c| c.check.as_str()).collect();
                format!("failed: {}", failed.join(", "))
            }
            Verdict::SchedulerFailed => {
                r.scheduler_failure.as_ref().map(|f| f.reason.clone()).unwrap_or_default()
            }
            Verdict::Timeout => "the guest did not finish before the watchdog fired".into(),
            Verdict::GuestCrash => match &self.engine.end_detail {
                Some(d) => format!("the guest stopped without reporting a result: {d}"),
                None => {
                    "the guest stopped without reporting a result (kernel panic or crash?)".into()
                }
            },
            Verdict::InitError => match &r.finished {
                Some(Some(e)) => format!("guest init error: {e}"),
                _ => "the guest init reported no check results".into(),
            },
            Verdict::Interrupted => "interrupted by the user".into(),
        }
    }

    fn job_kind(&self) -> &'static str {
        if self.record.scenario_done.is_some() {
            "scenario"
        } else {
            "payload"
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let r = self.record;
        json!({
            "verdict": self.verdict,
            "exit_code": self.verdict.exit_code(),
            "reason": self.reason(),
            "engine": { "name": self.engine.name, "description": self.engine.description, "peak_rss_kib": self.engine.peak_rss_kib, "end": self.engine.end_detail, "stop_ms": self.engine.stop_ms },
            "kernel": self.kernel,
            "topology": { "requested": self.topology, "mismatches": self.topology_mismatches,
                          "seen": r.topology_json.as_deref().and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok()) },
            "scheduler": {
                "requested": self.scheduler,
                "ready": r.scheduler_ready.as_ref().map(|s| json!({"pid": s.pid, "sched_ext_state": s.state, "ops": s.ops, "ready_ms": s.ready_ms})),
                "during_payload": r.sched_ext_during_payload.as_ref().map(|(s, o)| json!({"sched_ext_state": s, "ops": o})),
                "failure": r.scheduler_failure,
            },
            "payload": {
                "command": self.payload,
                "pid": r.payload_pid,
                "end": r.payload_end.as_ref().map(|e| json!({"exit_code": e.exit_code, "signal": e.signal, "timed_out": e.timed_out,
                    "duration_ms": e.duration_ms, "stdout_truncated": e.stdout_truncated, "stderr_truncated": e.stderr_truncated})),
            },
            "extractor": r.extractor,
            "extract_error": r.extract_error,
            "scenario": r.scenario_done.as_ref().map(|(name, error)| json!({ "name": name, "error": error, "steps": r.scenario_steps })),
            "metrics": r.metrics,
            "checks": r.checks,
            "guest_log": r.logs,
            "console_tail": self.console_tail,
            "artifacts": self.artifacts,
            "wall_ms": self.wall_ms,
        })
    }

    pub fn summary(&self) -> String {
        let r = self.record;
        let mut s = format!(
            "\nktstr: {}  (exit {}) — {}\n",
            self.verdict.as_str(),
            self.verdict.exit_code(),
            self.reason()
        );
        let mut row = |k: &str, v: String| s.push_str(&format!("  {k:<10} {v}\n"));
        row("kernel", self.kernel.clone());
        let rss = self
            .engine
            .peak_rss_kib
            .map(|k| format!("; peak RSS {} MiB", k / 1024))
            .unwrap_or_default();
        row("engine", format!("{}{rss}", self.engine.description));
        let topo = if r.topology_json.is_none() {
            "(not reported by the guest)".to_string()
        } else if self.topology_mismatches.is_empty() {
            "guest sees exactly this".to_string()
        } else {
            format!("MISMATCH: {}", self.topology_mismatches.join("; "))
        };
        row("topology", format!("{} — {topo}", self.topology));
        let sched = match (&r.scheduler_ready, &r.sched_ext_during_payload) {
            (_, Some((state, ops))) => format!(
                "{} — at the end of the {} sched_ext was `{state}`, ops `{ops}`",
                self.scheduler,
                self.job_kind()
            ),
            (Some(ready), None) => format!(
                "{} — ready (sched_ext `{}`, ops `{}`)",
                self.scheduler, ready.state, ready.ops
            ),
            _ => self.scheduler.clone(),
        };
        row("scheduler", sched);
        let end = r.payload_end.as_ref().map(|e| match (e.exit_code, e.signal) {
            (Some(c), _) => format!(
                " — exit {c} after {} ms{}",
                e.duration_ms,
                if e.timed_out { " (timed out)" } else { "" }
            ),
            (None, sig) => {
                format!(" — killed by signal {} after {} ms", sig.unwrap_or(0), e.duration_ms)
            }
        });
        if r.scenario_done.is_none() {
            row("payload", format!("{}{}", self.payload, end.unwrap_or_default()));
        } else {
            s.push_str(&scenario_summary(r));
        }
        if !r.metrics.is_empty() {
            s.push_str("  metrics\n");
            let width = r.metrics.iter().map(|m| m.name.len()).max().unwrap_or(0);
            for m in &r.metrics {
                let marks: Vec<&CheckResult> =
                    r.checks.iter().filter(|c| check_names_metric(&c.check, &m.name)).collect();
                let mark = match marks.iter().all(|c| c.passed) {
                    _ if marks.is_empty() => "  ",
                    true => "✓ ",
                    false => "✗ ",
                };
                s.push_str(&format!(
                    "    {mark}{:<width$}  {:>14} {}\n",
                    m.name,
                    format_value(m.value),
                    m.unit
                ));
            }
        }
        if let Some(e) = &r.extract_error {
            s.push_str(&format!("  extractor error: {e}\n"));
        }
        if !r.checks.is_empty() {
            s.push_str("  checks\n");
            for c in &r.checks {
                let detail = if c.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.detail.replace('\n', "\n        "))
                };
                s.push_str(&format!(
                    "    {} {}{detail}\n",
                    if c.passed { "PASS" } else { "FAIL" },
                    c.check
                ));
            }
        }
        if let Some(f) = &r.scheduler_failure {
            s.push_str(&format!("  scheduler output (tail):\n{}\n", indent(&f.output_tail)));
            if !f.kernel_log.is_empty() {
                s.push_str(&format!(
                    "  kernel log about sched_ext:\n{}\n",
                    indent(&f.kernel_log.join("\n"))
                ));
            }
        }
        if matches!(self.verdict, Verdict::Timeout | Verdict::GuestCrash | Verdict::InitError)
            && !self.console_tail.is_empty()
        {
            s.push_str(&format!(
                "  last console lines:\n{}\n",
                indent(&self.console_tail.join("\n"))
            ));
        }
        s.push_str(&format!("  artifacts  {}\n", self.artifacts.display()));
        s
    }
}

/// Per step: how long it held, each cgroup's workers and work, its checks.
fn scenario_summary(r: &Record) -> String {
    let mut s = String::new();
    if let Some((name, error)) = &r.scenario_done {
        s.push_str(&format!(
            "  {:<10} {name}{}\n",
            "scenario",
            error.as_ref().map(|e| format!(" — stopped early: {e}")).unwrap_or_default()
        ));
    }
    for step in &r.scenario_steps {
        s.push_str(&format!("    step {} ({} ms)\n", step.name, step.duration_ms));
        for cg in &step.cgroups {
            let units: u64 = cg.workers.iter().map(|w| w.report.work_units).sum();
            let cpus = cg
                .cpus
                .as_ref()
                .map(|c| format!(" on CPUs {}", ktstr_core::topology::format_cpulist(c)))
                .unwrap_or_default();
            s.push_str(&format!(
                "      {:<20} {} workers{cpus}, {units} work units\n",
                cg.cgroup,
                cg.workers.len()
            ));
        }
        for c in &step.captures {
            s.push_str(&format!("      capture {} of {}: pids {:?}\n", c.tag, c.cgroup, c.pids));
        }
        for p in &step.payloads {
            let how = match (p.exit_code, p.signal, &p.error) {
                (_, _, Some(e)) => format!("error: {e}"),
                (Some(c), _, _) => format!("exit {c}"),
                (None, Some(sig), _) => format!("signal {sig}"),
                _ => "no status".into(),
            };
            s.push_str(&format!(
                "      payload {} ({}) in {}: {how} after {} ms\n",
                p.name, p.plugin, p.cgroup, p.duration_ms
            ));
        }
        for e in &step.errors {
            s.push_str(&format!("      error: {e}\n"));
        }
    }
    s
}

/// Whether a check's text form reads this metric (`name>=…`, `exists(name)`…).
fn check_names_metric(check: &str, metric: &str) -> bool {
    ktstr_core::check::Check::parse(check).ok().is_some_and(|c| c.metric() == Some(metric))
}

fn indent(text: &str) -> String {
    text.trim_end().lines().map(|l| format!("      {l}")).collect::<Vec<_>>().join("\n")
}

/// The last `n` lines of a text file (lossy), for evidence.
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let lines: Vec<String> = text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// Writes what the guest sent into the artifacts directory.
pub fn write_artifacts(dir: &Path, record: &Record) -> std::io::Result<()> {
    use ktstr_core::protocol::OutputSource;
    std::fs::write(dir.join(OutputSource::PayloadStdout.file_name()), &record.payload_stdout)?;
    std::fs::write(dir.join(OutputSource::PayloadStderr.file_name()), &record.payload_stderr)?;
    std::fs::write(dir.join(OutputSource::Scheduler.file_name()), &record.scheduler_log)?;
    for (name, (out, err)) in &record.scenario_outputs {
        // Instance names are validated to be plain (no `/`); be safe anyway.
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        std::fs::write(dir.join(format!("payload-{safe}.stdout")), out)?;
        std::fs::write(dir.join(format!("payload-{safe}.stderr")), err)?;
    }
    Ok(())
}
