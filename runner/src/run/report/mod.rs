//! Rendering the verdict: the human summary, the JSON document, and the
//! artifacts directory. Both renderings read the same [`Outcome`].

use std::path::{Path, PathBuf};

mod json;
mod summary;

use ktstr_core::check::glob_matches;
use ktstr_core::plugin::{MetricHint, Polarity};

use super::console_watch::{Class, ConsoleWatch, Kind};
use super::kernel_warnings::KernelWarning;
use super::payload_run::Timing;
use super::record::Record;
use super::timeline::{Mark, Timeline};
use super::verdict::{Verdict, VmEnd};

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
    /// Where each vCPU was when ktstr stopped a guest that had not finished.
    pub vcpus_at_stop: Vec<String>,
}

/// Everything a rendering needs.
pub struct Outcome<'a> {
    pub verdict: Verdict,
    /// What kind of failure, when the console or the guest named one.
    pub class: Option<Class>,
    pub vm_end: VmEnd,
    /// The kernel's stall and sched_ext reports from the console.
    pub console: &'a ConsoleWatch,
    pub stall_grace_s: u64,
    pub record: &'a Record,
    pub kernel: String,
    pub engine: EngineInfo,
    pub topology: String,
    pub topology_mismatches: Vec<String>,
    /// The real machine the topology was taken from, if any.
    pub topology_from: Option<&'a crate::machine::Shape>,
    pub scheduler: String,
    pub payload: String,
    pub artifacts: PathBuf,
    pub wall_ms: u128,
    /// When each stage of the run was reached.
    pub timeline: &'a Timeline,
    /// The last console lines, shown when the guest did not finish.
    pub console_tail: Vec<String>,
    /// The kernel's own panic line (`Kernel panic - not syncing: …`), if any.
    pub kernel_panic: Option<String>,
    /// The kernel's `WARNING:` reports (the first few) and their number.
    pub kernel_warnings: (Vec<KernelWarning>, usize),
    /// The payload's duration and time limit (not for scenarios).
    pub timing: Option<Timing>,
    /// The payload's metric hints: units and which way is better.
    pub hints: Vec<MetricHint>,
    /// The run's disks for `--json` (host and guest side, see `crate::disk`).
    pub disks: serde_json::Value,
    /// Each disk's name, where its image came from, and where it was kept.
    pub disk_lines: Vec<(String, String, Option<PathBuf>)>,
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
                let kernel_log = String::from_utf8_lossy(&r.kernel_log);
                let words = super::scheduler_end::kernel_disable_words(&kernel_log);
                match (&r.scheduler_failure, words) {
                    (Some(f), Some(w)) if !f.reason.contains(&w) => {
                        format!("{}; the kernel said: {w}", f.reason)
                    }
                    (Some(f), _) => f.reason.clone(),
                    (None, _) => self.console_reason(),
                }
            }
            Verdict::PayloadTimeout => {
                let ran = r.payload_end.as_ref().map_or(0, |e| e.duration_ms);
                let limit = match self.timing {
                    Some(t) if t.timeout_s > t.duration_s => format!(
                        " (its limit: --duration {} s plus {} s grace)",
                        t.duration_s,
                        t.timeout_s - t.duration_s
                    ),
                    Some(t) => format!(" (its limit: {} s; it is fixed-length)", t.timeout_s),
                    None => String::new(),
                };
                format!(
                    "the payload timed out after {:.1} s and was killed{limit}",
                    ran as f64 / 1e3
                )
            }
            Verdict::Timeout if self.vm_end == VmEnd::Stalled => self.console_reason(),
            Verdict::Timeout => {
                format!(
                    "the guest did not finish before the watchdog fired, {}",
                    self.waiting_for()
                )
            }
            Verdict::GuestCrash => match (&self.kernel_panic, &self.engine.end_detail) {
                (Some(p), _) => format!("the guest kernel panicked: {p}"),
                (None, Some(d)) => format!("the guest stopped without reporting a result: {d}"),
                (None, None) => {
                    "the guest stopped without reporting a result (kernel panic or crash?)".into()
                }
            },
            Verdict::InitError if self.vm_end == VmEnd::Refused => {
                r.protocol_mismatch.clone().unwrap_or_default()
            }
            Verdict::InitError => match &r.finished {
                Some(Some(e)) => format!("guest init error: {e}"),
                _ => "the guest init reported no check results".into(),
            },
            Verdict::Interrupted => "interrupted by the user".into(),
        }
    }

    /// What the run was waiting for when the watchdog fired.
    fn waiting_for(&self) -> String {
        let r = self.record;
        let at = |m: Mark| self.timeline.get(m).map(|ms| format!("{:.1} s", ms as f64 / 1e3));
        let ended = at(Mark::VmEnded).unwrap_or_else(|| "?".into());
        if r.hello.is_none() {
            return format!(
                "before the guest init said hello (the kernel never started it, or it \
                hung; ended at {ended})"
            );
        }
        if r.scheduler_ready.is_none() && r.payload_pid.is_none() {
            return format!(
                "while the scheduler was starting: it never reported ready (ended at {ended})"
            );
        }
        match (r.payload_pid, &r.payload_end, at(Mark::PayloadStarted)) {
            (Some(pid), None, Some(started)) => {
                let limit = self
                    .timing
                    .map(|t| format!("; its own limit {} s", t.timeout_s))
                    .unwrap_or_default();
                format!(
                    "while the payload ran (pid {pid}, started at {started}, still running \
                    at {ended}{limit})"
                )
            }
            _ => {
                format!("after the payload, while the init finished its report (ended at {ended})")
            }
        }
    }

    /// Why the console's reports ended the run.
    fn console_reason(&self) -> String {
        let what = match self.class {
            Some(Class::StuckDisabling) => {
                "the kernel began disabling the scheduler and never finished (sched_ext stayed \
                    `disabling`)"
            }
            Some(Class::Stall) => "tasks stalled under the scheduler",
            Some(Class::SchedulerError) => "the kernel disabled the scheduler",
            _ => "the guest kernel stalled",
        };
        let mut kinds: Vec<&str> = Vec::new();
        for r in self.console.reports() {
            let k = kind_name(r.kind);
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        format!(
            "{what}: the console reported {} ({} reports) and the guest did not finish within {} s",
            kinds.join(", "),
            self.console.seen,
            self.stall_grace_s
        )
    }

    /// The hint for metric `name`: an exact name, else a `*` glob.
    fn hint(&self, name: &str) -> Option<&MetricHint> {
        let exact = self.hints.iter().find(|h| h.name == name);
        exact.or_else(|| self.hints.iter().find(|h| glob_matches(&h.name, name)))
    }

    /// libbpf's account of why the scheduler did not load, for that class.
    fn load_error(&self) -> Option<String> {
        (self.class == Some(Class::DidNotLoad))
            .then(|| {
                super::scheduler_end::load_error(&String::from_utf8_lossy(
                    &self.record.scheduler_log,
                ))
            })
            .flatten()
    }

    fn job_kind(&self) -> &'static str {
        if self.record.scenario_done.is_some() {
            "scenario"
        } else {
            "payload"
        }
    }
}

/// A report kind as people read it.
fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::RcuStall => "an RCU stall",
        Kind::SoftLockup => "a soft lockup",
        Kind::HungTask => "a hung task",
        Kind::SchedExtDisabled => "sched_ext disabling the scheduler",
    }
}

/// `higher`, `lower` or `neutral`.
fn better(p: Polarity) -> &'static str {
    match p {
        Polarity::HigherIsBetter => "higher",
        Polarity::LowerIsBetter => "lower",
        _ => "neutral",
    }
}

/// Lines of the scheduler's and the kernel's log `--json` carries (the whole
/// streams are in the artifacts).
const LOG_TAIL_LINES: usize = 40;

/// What follows the kernel's first `Kernel panic - not syncing:` on the
/// console, e.g. `sysrq triggered crash`.
pub fn kernel_panic(console: &Path) -> Option<String> {
    let text = String::from_utf8_lossy(&std::fs::read(console).ok()?).into_owned();
    let line = text.lines().find_map(|l| l.split_once("Kernel panic - not syncing:"))?.1;
    Some(line.trim().to_string())
}

/// The last `n` lines of a text file (lossy), for evidence.
pub fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    text_tail(&std::fs::read(path).unwrap_or_default(), n)
}

/// The last `n` lines of captured text (lossy).
fn text_tail(data: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<String> = text.lines().map(|l| l.trim_end_matches('\r').to_string()).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// Writes what the guest sent into the artifacts directory.
pub fn write_artifacts(dir: &Path, record: &Record) -> std::io::Result<()> {
    use ktstr_core::protocol::OutputSource;
    std::fs::write(dir.join(OutputSource::PayloadStdout.file_name()), &record.payload_stdout)?;
    std::fs::write(dir.join(OutputSource::PayloadStderr.file_name()), &record.payload_stderr)?;
    std::fs::write(dir.join(OutputSource::Scheduler.file_name()), &record.scheduler_log)?;
    std::fs::write(dir.join(OutputSource::Kernel.file_name()), &record.kernel_log)?;
    if !record.monitor_log.is_empty() {
        std::fs::write(dir.join(OutputSource::Monitor.file_name()), &record.monitor_log)?;
    }
    // Only a run whose scheduler was dumped has one: its presence is evidence.
    if !record.sched_ext_dump.is_empty() {
        let dump = dir.join(OutputSource::SchedExtDump.file_name());
        std::fs::write(dump, &record.sched_ext_dump)?;
    }
    for (name, (out, err)) in &record.scenario_outputs {
        // Instance names are validated to be plain (no `/`); be safe anyway.
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        std::fs::write(dir.join(format!("payload-{safe}.stdout")), out)?;
        std::fs::write(dir.join(format!("payload-{safe}.stderr")), err)?;
    }
    for (path, data) in &record.out_files {
        let Some(rel) = safe_relative(path) else {
            tracing::warn!("ignoring an out_dir file with an unsafe path: {path:?}");
            continue;
        };
        let target = dir.join("out").join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, data)?;
    }
    Ok(())
}

/// `path` as a relative path with no `..`, `.` or root in it; the guest
/// builds it, but the host never writes outside the artifacts directory.
fn safe_relative(path: &str) -> Option<std::path::PathBuf> {
    use std::path::Component;
    let p = Path::new(path);
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| p.to_path_buf())
}
