//! The human summary of a run: the verdict and why on the first line, then
//! the machine, the scheduler, the payload, its metrics, checks and evidence.

use ktstr_core::check::{glob_matches, CheckResult};
use ktstr_core::metrics::format_value;
use ktstr_core::plugin::Polarity;

use super::{Outcome, Record, Verdict};

/// Most metrics the summary lists; all of them stay in the JSON.
pub const MAX_METRICS: usize = 40;
/// Lines of the payload's own output a timed-out run shows.
const OUTPUT_TAIL_LINES: usize = 10;
/// Lines of the sched_ext dump shown (its head: the reason and backtrace).
const DUMP_HEAD_LINES: usize = 40;

/// Console reports the summary shows (all kept ones are in the JSON).
const SHOWN_REPORTS: usize = 3;

impl Outcome<'_> {
    /// The kernel's stall and sched_ext reports, when they explain the verdict.
    fn console_section(&self) -> String {
        let reports = self.console.reports();
        if self.class.is_none() || reports.is_empty() {
            return String::new();
        }
        let mut s = format!("  console reports ({} seen):\n", self.console.seen);
        for r in reports.iter().take(SHOWN_REPORTS) {
            s.push_str(&format!("{}\n", indent(&r.lines.join("\n"))));
        }
        if reports.len() > SHOWN_REPORTS {
            let more = reports.len() - SHOWN_REPORTS;
            s.push_str(&format!("      … {more} more kept in result.json and console.log\n"));
        }
        s
    }

    /// The kernel's WARN()s: worth a look whatever the verdict.
    fn warnings_section(&self) -> String {
        let (kept, seen) = &self.kernel_warnings;
        if *seen == 0 {
            return String::new();
        }
        let mut s = format!("  kernel warnings ({seen}, whole in kmsg.log):\n");
        for w in kept.iter().take(SHOWN_REPORTS) {
            s.push_str(&format!("      {}\n", w.describe()));
        }
        s
    }

    pub fn summary(&self) -> String {
        let r = self.record;
        let class = self.class.map(|c| format!(" [{}]", c.as_str())).unwrap_or_default();
        let mut s = format!(
            "\nktstr: {}{class}  (exit {}) — {}\n",
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
        for (i, line) in self.engine.vcpus_at_stop.iter().enumerate() {
            row(if i == 0 { "stopped" } else { "" }, line.clone());
        }
        row("timeline", self.timeline.line());
        let topo = if r.topology_json.is_none() {
            "(not reported by the guest)".to_string()
        } else if self.topology_mismatches.is_empty() {
            "guest sees exactly this".to_string()
        } else {
            format!("MISMATCH: {}", self.topology_mismatches.join("; "))
        };
        let from = self.topology_from.map(|s| format!(" from {}", s.source)).unwrap_or_default();
        row("topology", format!("{}{from} — {topo}", self.topology));
        for note in self.topology_from.iter().flat_map(|s| &s.notes) {
            row("", format!("approximated: {note}"));
        }
        for (name, origin, kept) in &self.disk_lines {
            let seen = r.disks.iter().find(|d| &d.name == name);
            let guest = seen.map_or("(not reported by the guest)".into(), |d| d.describe());
            let kept =
                kept.as_ref().map(|p| format!("; kept as {}", p.display())).unwrap_or_default();
            row("disk", format!("{name}: {guest} — {origin}{kept}"));
        }
        row("scheduler", self.scheduler_line());
        if r.scenario_done.is_none() {
            row("payload", format!("{}{}", self.payload, self.payload_end()));
        }
        if let Some(m) = &r.monitor {
            row("monitor", monitor_line(m));
        }
        if r.scenario_done.is_some() {
            s.push_str(&scenario_summary(r));
        }
        s.push_str(&self.metrics_section());
        if let Some(e) = &r.extract_error {
            s.push_str(&format!("  extractor error: {e}\n"));
        }
        s.push_str(&checks_section(&r.checks));
        if !r.notes.is_empty() {
            s.push_str(&format!("  extractor notes:\n{}\n", indent(&r.notes.join("\n"))));
        }
        if self.verdict == Verdict::PayloadTimeout {
            for (name, data) in [("stdout", &r.payload_stdout), ("stderr", &r.payload_stderr)] {
                let text = String::from_utf8_lossy(data);
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(OUTPUT_TAIL_LINES)..].join("\n");
                let shown = if tail.trim().is_empty() { "(nothing)".into() } else { indent(&tail) };
                s.push_str(&format!("  payload {name} (tail):\n{shown}\n"));
            }
        }
        if let Some(f) = &r.scheduler_failure {
            if let Some(why) = self.load_error() {
                s.push_str(&format!("  why it did not load:\n{}\n", indent(&why)));
            }
            s.push_str(&format!("  scheduler output (tail):\n{}\n", indent(&f.output_tail)));
            if !f.kernel_log.is_empty() {
                s.push_str(&format!(
                    "  kernel log about sched_ext:\n{}\n",
                    indent(&f.kernel_log.join("\n"))
                ));
            }
        }
        for (what, note) in &r.truncated {
            s.push_str(&format!("  LOST IN TRANSIT: the guest cut a {what} message: {note}\n"));
        }
        s.push_str(&self.console_section());
        s.push_str(&self.warnings_section());
        s.push_str(&self.streamed_evidence());
        if matches!(self.verdict, Verdict::Timeout | Verdict::GuestCrash | Verdict::InitError)
            && !self.console_tail.is_empty()
        {
            s.push_str(&format!(
                "  last console lines:\n{}\n",
                indent(&self.console_tail.join("\n"))
            ));
        }
        if !r.out_files.is_empty() {
            s.push_str(&format!(
                "  out        {} file(s) the payload left in its out_dir, in {}\n",
                r.out_files.len(),
                self.artifacts.join("out").display()
            ));
        }
        s.push_str(&format!("  artifacts  {}\n", self.artifacts.display()));
        s
    }

    /// The sched_ext dump's head; when the guest never reported a failure,
    /// the tails of what the scheduler and the kernel wrote before it ended.
    fn streamed_evidence(&self) -> String {
        let r = self.record;
        let mut s = String::new();
        if !r.sched_ext_dump.is_empty() {
            let text = String::from_utf8_lossy(&r.sched_ext_dump);
            let lines: Vec<&str> = text.lines().collect();
            let head = lines[..lines.len().min(DUMP_HEAD_LINES)].join("\n");
            let more = match lines.len().saturating_sub(DUMP_HEAD_LINES) {
                0 => String::new(),
                n => format!("\n      … {n} more lines"),
            };
            s.push_str(&format!(
                "  sched_ext dump (whole in {}):\n{}{more}\n",
                self.artifacts.join("sched_ext_dump.txt").display(),
                indent(&head)
            ));
        }
        let unreported = matches!(
            self.verdict,
            Verdict::Timeout | Verdict::GuestCrash | Verdict::InitError | Verdict::Interrupted
        );
        if unreported && r.scheduler_failure.is_none() {
            for (what, data) in
                [("scheduler output", &r.scheduler_log), ("kernel log", &r.kernel_log)]
            {
                let text = String::from_utf8_lossy(data);
                let lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let tail = lines[lines.len().saturating_sub(OUTPUT_TAIL_LINES)..].join("\n");
                    s.push_str(&format!("  {what} (tail):\n{}\n", indent(&tail)));
                }
            }
        }
        s
    }

    fn scheduler_line(&self) -> String {
        let r = self.record;
        match (&r.scheduler_ready, &r.sched_ext_during_payload) {
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
        }
    }

    fn payload_end(&self) -> String {
        let Some(e) = &self.record.payload_end else { return String::new() };
        let timed_out = if e.timed_out { " (timed out)" } else { "" };
        let end = match (e.exit_code, e.signal) {
            (Some(c), _) => format!(" — exit {c} after {} ms{timed_out}", e.duration_ms),
            (None, sig) => format!(
                " — killed by signal {} after {} ms{timed_out}",
                sig.unwrap_or(0),
                e.duration_ms
            ),
        };
        let cut: Vec<&str> = [(e.stdout_truncated, "stdout"), (e.stderr_truncated, "stderr")]
            .into_iter()
            .filter_map(|(cut, name)| cut.then_some(name))
            .collect();
        if cut.is_empty() {
            return end;
        }
        let mib = ktstr_core::guest::CAPTURE_CAP >> 20;
        format!(
            "{end}; its {} kept to the first {mib} MiB (the rest read and dropped)",
            cut.join(" and ")
        )
    }

    /// The metrics, checked ones first, at most [`MAX_METRICS`] of them;
    /// ↑/↓ mark the metrics whose hint says which way is better.
    fn metrics_section(&self) -> String {
        let r = self.record;
        if r.metrics.is_empty() {
            return String::new();
        }
        // Each check parsed once, then each metric judged once: a result
        // may hold a million metrics.
        let read: Vec<(String, bool)> =
            r.checks.iter().filter_map(|c| Some((check_metric(&c.check)?, c.passed))).collect();
        let verdicts: Vec<Option<bool>> = r
            .metrics
            .iter()
            .map(|m| {
                let mut on_it = read.iter().filter(|(g, _)| glob_matches(g, &m.name)).peekable();
                on_it.peek().is_some().then(|| on_it.all(|(_, passed)| *passed))
            })
            .collect();
        let mut order: Vec<usize> = (0..r.metrics.len()).collect();
        order.sort_by_key(|&i| verdicts[i].is_none());
        let shown = &order[..order.len().min(MAX_METRICS)];
        let width = shown.iter().map(|&i| r.metrics[i].name.len()).max().unwrap_or(0);
        let mut s = String::from("  metrics\n");
        for &i in shown {
            let m = &r.metrics[i];
            let mark = match verdicts[i] {
                None => "  ",
                Some(true) => "✓ ",
                Some(false) => "✗ ",
            };
            let hint = self.hint(&m.name);
            let better = match hint.map(|h| h.polarity) {
                Some(Polarity::HigherIsBetter) => " ↑",
                Some(Polarity::LowerIsBetter) => " ↓",
                _ => "",
            };
            let unit = match hint {
                Some(h) if m.unit.is_empty() => h.unit.clone(),
                _ => m.unit.clone(),
            };
            s.push_str(&format!(
                "    {mark}{:<width$}  {:>14} {unit}{better}\n",
                m.name,
                format_value(m.value)
            ));
        }
        if r.metrics.len() > shown.len() {
            s.push_str(&format!(
                "    … and {} more metrics (all of them are in --json and result.json)\n",
                r.metrics.len() - shown.len()
            ));
        }
        s
    }
}

fn checks_section(checks: &[CheckResult]) -> String {
    if checks.is_empty() {
        return String::new();
    }
    let mut s = String::from("  checks\n");
    for c in checks {
        let detail = if c.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", c.detail.replace('\n', "\n        "))
        };
        let status = if c.passed { "PASS" } else { "FAIL" };
        s.push_str(&format!("    {status} {}{detail}\n", c.check));
    }
    s
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

/// The metric name or glob a check's text form reads (`name>=…`,
/// `exists(name)`, `all(glob)>=…`); `None` for `exit==N`.
fn check_metric(check: &str) -> Option<String> {
    ktstr_core::check::Check::parse(check).ok()?.metric().map(String::from)
}

fn indent(text: &str) -> String {
    text.trim_end().lines().map(|l| format!("      {l}")).collect::<Vec<_>>().join("\n")
}
/// `52 samples every 100 ms (cost 31 ms); most runnable per CPU 1 2; …`
fn monitor_line(m: &ktstr_core::protocol::MonitorSummary) -> String {
    let per_cpu: Vec<String> = m.max_runnable_per_cpu.iter().map(u32::to_string).collect();
    let wait = match &m.max_wait_thread {
        Some(who) => format!("longest runnable wait {} ms ({who})", m.max_wait_ms),
        None => "no thread waited runnable".into(),
    };
    format!(
        "{} samples, one every {} ms (asked {}; cost {} ms); most runnable per CPU {}; {wait}",
        m.samples,
        m.mean_interval_ms,
        m.interval_ms,
        m.cost_us / 1000,
        per_cpu.join(" ")
    )
}
