//! The guest kernel's console, read as it arrives: stall, lockup, hung-task
//! and sched_ext reports, which end a wedged run long before the watchdog.
//! Pure: fed bytes, returns what it found; the session does the timing.

use serde::Serialize;

/// Lines of a report kept after the line that names it (its backtrace).
const CONTEXT_LINES: usize = 14;
/// Reports kept as evidence; later ones are only counted.
const KEPT_REPORTS: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `rcu: INFO: rcu_preempt detected stalls…`, `… self-detected stall on CPU`.
    RcuStall,
    /// `watchdog: BUG: soft lockup - CPU#1 stuck for 22s!` (or a hard LOCKUP).
    SoftLockup,
    /// `INFO: task NAME:PID blocked for more than N seconds.`
    HungTask,
    /// `sched_ext: BPF scheduler "X" disabled (reason)`: the kernel ended it.
    SchedExtDisabled,
}

impl Kind {
    /// sched_ext's own reports matter only when the run's scheduler is sched_ext
    /// (an EEVDF run's payload may load and fail schedulers on purpose).
    fn is_sched_ext(self) -> bool {
        self == Kind::SchedExtDisabled
    }
}

/// One report: the line that named it and the lines after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub kind: Kind,
    pub lines: Vec<String>,
}

/// sched_ext as the console last showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedExt {
    Unknown,
    Enabled,
    /// `Sched_ext: X (disabling…)` in a task dump: the kernel began to disable it.
    Disabling,
    Disabled,
}

/// What a run's console reports add up to (the verdict's `class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Tasks stalled under the sched_ext scheduler.
    Stall,
    /// The kernel began disabling the scheduler and never finished.
    StuckDisabling,
    /// The kernel disabled the scheduler for an error other than a stall.
    SchedulerError,
    /// A stall or lockup with sched_ext not involved.
    KernelStall,
    /// The scheduler never loaded: the BPF verifier or the attach refused it.
    DidNotLoad,
    /// The scheduler process died on a signal.
    Crashed,
    /// The scheduler process exited on its own.
    Exited,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Stall => "stall",
            Class::StuckDisabling => "stuck_disabling",
            Class::SchedulerError => "scheduler_error",
            Class::KernelStall => "kernel_stall",
            Class::DidNotLoad => "did_not_load",
            Class::Crashed => "crashed",
            Class::Exited => "exited",
        }
    }

    /// Whether the scheduler under test is to blame.
    pub fn blames_scheduler(self) -> bool {
        self != Class::KernelStall
    }
}

#[derive(Debug)]
pub struct ConsoleWatch {
    sched_ext_run: bool,
    partial: Vec<u8>,
    reports: Vec<Report>,
    /// Reports seen, kept or not.
    pub seen: usize,
    /// Context lines still to add to the last kept report.
    context_left: usize,
    pub sched_ext: SchedExt,
    /// Whether a report's lines mention sched_ext (`Sched_ext:`, `scx_…`).
    names_scheduler: bool,
    /// Whether the kernel's disable reason was a stall.
    disabled_for_stall: bool,
}

impl ConsoleWatch {
    /// `sched_ext_run`: the run's scheduler is a sched_ext one.
    pub fn new(sched_ext_run: bool) -> ConsoleWatch {
        ConsoleWatch {
            sched_ext_run,
            partial: Vec::new(),
            reports: Vec::new(),
            seen: 0,
            context_left: 0,
            sched_ext: SchedExt::Unknown,
            names_scheduler: false,
            disabled_for_stall: false,
        }
    }

    /// Adds console bytes; returns the kinds of the reports they complete
    /// that should end a run whose guest does not finish.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Kind> {
        self.partial.extend_from_slice(bytes);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else { return vec![] };
        let text: Vec<u8> = self.partial.drain(..=end).collect();
        let text = String::from_utf8_lossy(&text).into_owned();
        text.lines().filter_map(|l| self.line(l.trim_end_matches('\r'))).collect()
    }

    pub fn reports(&self) -> &[Report] {
        &self.reports
    }

    fn line(&mut self, line: &str) -> Option<Kind> {
        // Only the kernel's own lines (`[ secs] …`): the init's do not count.
        let text = kernel_text(line)?;
        self.track_sched_ext(text);
        let Some(kind) = kind_of(text) else {
            if self.context_left > 0 {
                self.context_left -= 1;
                self.names_scheduler |= mentions_sched_ext(text);
                self.reports.last_mut().expect("a kept report").lines.push(line.to_string());
            }
            return None;
        };
        if kind.is_sched_ext() && !self.sched_ext_run {
            return None;
        }
        self.seen += 1;
        self.context_left = 0;
        if self.reports.len() < KEPT_REPORTS {
            self.reports.push(Report { kind, lines: vec![line.to_string()] });
            self.context_left = CONTEXT_LINES;
        }
        Some(kind)
    }

    fn track_sched_ext(&mut self, text: &str) {
        if let Some(rest) = text.strip_prefix("sched_ext: BPF scheduler \"") {
            if rest.contains("\" enabled") {
                self.sched_ext = SchedExt::Enabled;
            } else if rest.contains("\" disabled") {
                self.sched_ext = SchedExt::Disabled;
                self.disabled_for_stall = rest.contains("stall");
            }
        } else if let Some(pos) = text.find("Sched_ext: ") {
            // A task dump's `Sched_ext: qmap (disabling+all), task: …`.
            let state = text[pos..].split_once(" (").map(|(_, s)| s).unwrap_or("");
            if state.starts_with("disabling") && self.sched_ext != SchedExt::Disabled {
                self.sched_ext = SchedExt::Disabling;
            }
        }
    }

    /// The class of what the console showed, if it showed any report.
    pub fn class(&self) -> Option<Class> {
        if self.seen == 0 {
            return None;
        }
        let class = match self.sched_ext {
            _ if !self.sched_ext_run && !self.names_scheduler => Class::KernelStall,
            SchedExt::Disabling => Class::StuckDisabling,
            SchedExt::Disabled if self.disabled_for_stall => Class::Stall,
            SchedExt::Disabled if self.reports.iter().all(|r| r.kind.is_sched_ext()) => {
                Class::SchedulerError
            }
            SchedExt::Disabled if !self.names_scheduler => Class::KernelStall,
            // Enabled (or never seen otherwise) while the kernel stalls.
            _ => Class::Stall,
        };
        Some(class)
    }
}

/// The text of a kernel console line after its `[    8.901963] ` stamp.
pub(super) fn kernel_text(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (stamp, text) = rest.split_once("] ")?;
    stamp.trim().parse::<f64>().ok()?;
    Some(text)
}

fn kind_of(text: &str) -> Option<Kind> {
    let t = text.trim_start();
    if t.contains("rcu") && (t.contains("detected stall") || t.contains("self-detected stall")) {
        Some(Kind::RcuStall)
    } else if t.starts_with("watchdog: BUG: soft lockup") || t.contains("detected hard LOCKUP") {
        Some(Kind::SoftLockup)
    } else if t.starts_with("INFO: task ") && t.contains(" blocked for more than ") {
        Some(Kind::HungTask)
    } else if t.starts_with("sched_ext: BPF scheduler \"") && t.contains("\" disabled") {
        Some(Kind::SchedExtDisabled)
    } else {
        None
    }
}

fn mentions_sched_ext(text: &str) -> bool {
    text.contains("Sched_ext: ") || text.contains("sched_ext") || text.contains("scx_")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENABLED: &str = "[    3.753486] sched_ext: BPF scheduler \"qmap\" enabled\n";

    fn feed(w: &mut ConsoleWatch, text: &str) -> Vec<Kind> {
        w.push(text.as_bytes())
    }

    #[test]
    fn a_watchdog_stall_the_kernel_handled_is_a_stall() {
        let mut w = ConsoleWatch::new(true);
        assert!(feed(&mut w, ENABLED).is_empty());
        let got = feed(
            &mut w,
            "[    8.901963] sched_ext: BPF scheduler \"qmap\" disabled (runnable task stall)\n\
             [    8.902217] sched_ext: qmap: init[1] failed to run for 5.004s\n",
        );
        assert_eq!(got, [Kind::SchedExtDisabled]);
        assert_eq!(w.class(), Some(Class::Stall));
        assert_eq!(w.reports()[0].lines.len(), 2, "the report keeps its next line");
    }

    #[test]
    fn rcu_stalls_while_disabling_are_stuck_disabling() {
        let mut w = ConsoleWatch::new(true);
        feed(&mut w, ENABLED);
        let got = feed(
            &mut w,
            "[   84.100000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\r\n\
             [   84.100100] rcu: \t1-....: (20999 ticks this GP) idle=…\r\n\
             [   84.100200] Sched_ext: qmap (disabling+all), task: runnable_at=-2ms\r\n\
             [   84.100300] RIP: 0010:do_sched_yield+0x20/0x90\r\n",
        );
        assert_eq!(got, [Kind::RcuStall]);
        assert_eq!(w.sched_ext, SchedExt::Disabling);
        assert_eq!(w.class(), Some(Class::StuckDisabling));
        assert_eq!(w.reports()[0].lines.len(), 4);
    }

    #[test]
    fn every_kind_is_recognised_even_split_across_reads() {
        let mut w = ConsoleWatch::new(false);
        let text = "[   30.0] rcu: INFO: rcu_sched self-detected stall on CPU\n\
                    [   31.0] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [workers:40]\n\
                    [  150.5] INFO: task kworker/0:1:12 blocked for more than 120 seconds.\n";
        let (a, b) = text.split_at(20);
        let mut got = feed(&mut w, a);
        assert!(got.is_empty(), "no whole line yet");
        got.extend(feed(&mut w, b));
        assert_eq!(got, [Kind::RcuStall, Kind::SoftLockup, Kind::HungTask]);
        assert_eq!(w.class(), Some(Class::KernelStall));
    }

    #[test]
    fn lines_that_are_not_the_kernels_do_not_count() {
        let mut w = ConsoleWatch::new(true);
        let quoted = "ktstr-init: [    8.9] sched_ext: BPF scheduler \"qmap\" disabled (x)\n\
                      INFO: task a:1 blocked for more than 120 seconds.\n\
                      [    0.140633] rcu: Hierarchical RCU implementation.\n";
        assert!(feed(&mut w, quoted).is_empty());
        assert_eq!(w.class(), None);
    }

    #[test]
    fn sched_ext_reports_are_ignored_when_the_run_is_not_sched_ext() {
        let mut w = ConsoleWatch::new(false);
        let line = "[ 9.0] sched_ext: BPF scheduler \"mine\" disabled (runtime error)\n";
        assert!(feed(&mut w, line).is_empty());
        assert_eq!(w.class(), None);
    }

    #[test]
    fn a_non_stall_disable_is_a_scheduler_error_and_stalls_naming_scx_blame_it() {
        let mut w = ConsoleWatch::new(true);
        feed(&mut w, "[ 9.0] sched_ext: BPF scheduler \"qmap\" disabled (runtime error)\n");
        assert_eq!(w.class(), Some(Class::SchedulerError));
        let mut w = ConsoleWatch::new(true);
        feed(&mut w, ENABLED);
        feed(&mut w, "[ 40.0] watchdog: BUG: soft lockup - CPU#0 stuck for 26s!\n");
        assert_eq!(w.class(), Some(Class::Stall), "stalls while qmap is enabled");
    }

    #[test]
    fn evidence_is_bounded() {
        let mut w = ConsoleWatch::new(false);
        for i in 0..100 {
            feed(&mut w, &format!("[ {i}.0] rcu: INFO: rcu_preempt detected stalls\n"));
            for _ in 0..50 {
                feed(&mut w, "[ 1.0] stack line\n");
            }
        }
        assert_eq!(w.seen, 100);
        assert_eq!(w.reports().len(), KEPT_REPORTS);
        assert!(w.reports().iter().all(|r| r.lines.len() == 1 + CONTEXT_LINES));
    }
}
