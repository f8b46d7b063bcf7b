//! One VM's life: boot, follow the data channel, enforce the watchdog,
//! honour Ctrl-C, and always end the VM.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ktstr_core::protocol::Decoder;

use super::console_watch::ConsoleWatch;
use super::record::Record;
use super::timeline::{Mark, Timeline};
use super::verdict::{Verdict, VmEnd};
use crate::interrupt;
use crate::vm::vcpus::VcpuReport;
use crate::vm::{RunningVm, VmEngine, VmSpec};

/// After the guest's last word, how long it may take to power off.
const POWEROFF_GRACE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

/// Follows a file another process appends to.
struct Tail {
    file: Option<File>,
    path: PathBuf,
    pos: u64,
    decoder: Decoder,
}

impl Tail {
    fn new(path: &Path) -> Tail {
        Tail { file: None, path: path.to_path_buf(), pos: 0, decoder: Decoder::new() }
    }

    fn read_new(&mut self, record: &mut Record, progress: &mut dyn FnMut(&str)) {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(f) = self.file.as_mut() else { return };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.pos)).is_ok() && f.read_to_end(&mut buf).is_ok() {
            self.pos += buf.len() as u64;
            for ev in self.decoder.push(&buf) {
                if let Some(line) = record.apply(ev) {
                    progress(&line);
                }
            }
        }
    }

    fn finish(&mut self, record: &mut Record, progress: &mut dyn FnMut(&str)) {
        self.read_new(record, progress);
        for ev in self.decoder.finish() {
            if let Some(line) = record.apply(ev) {
                progress(&line);
            }
        }
    }
}

/// Follows the console log for the kernel's own reports.
struct ConsoleTail {
    file: Option<File>,
    path: PathBuf,
    pos: u64,
}

impl ConsoleTail {
    /// Feeds new console bytes to `watch`; returns the first new report line.
    fn read_new(&mut self, watch: &mut ConsoleWatch) -> Option<String> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let f = self.file.as_mut()?;
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.pos)).is_err() || f.read_to_end(&mut buf).is_err() {
            return None;
        }
        self.pos += buf.len() as u64;
        let before = watch.seen;
        if watch.push(&buf).is_empty() {
            return None;
        }
        let first = watch.reports().get(before).and_then(|r| r.lines.first());
        Some(first.cloned().unwrap_or_else(|| "(a report past the kept ones)".into()))
    }
}

/// How long a VM may run: the watchdog, and the grace after the console's
/// first stall or sched_ext report.
pub struct Limits {
    pub watchdog: Duration,
    pub stall_grace: Duration,
    /// An interactive shell: no watchdog, and a console report is told but
    /// left to the user, who is there (and has Ctrl-] q).
    pub interactive: bool,
}

/// How the VM ended and what it cost.
pub struct Ended {
    pub end: VmEnd,
    /// The VM process's peak resident set (VmHWM), last seen before it exited.
    pub peak_rss_kib: Option<u64>,
    /// How the VM ended, in the engine's words, when it says more than an exit status.
    pub detail: Option<String>,
    /// How long `kill` took, when the VM had to be stopped.
    pub stop_ms: Option<u128>,
    /// Where the vCPUs were when a guest that had not finished was stopped
    /// (watchdog, or past the grace after a console report).
    pub vcpus: Option<Result<VcpuReport, String>>,
}

/// Boots `spec`, follows both data channels until the guest powers off, the
/// watchdog fires or the user interrupts, and returns how it ended.
pub fn run_vm(
    engine: &dyn VmEngine,
    spec: &VmSpec,
    limits: &Limits,
    watch: &mut ConsoleWatch,
    record: &mut Record,
    timeline: &mut Timeline,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Ended> {
    let mut vm = engine.boot(spec)?;
    timeline.mark(Mark::Booted);
    let started = Instant::now();
    let mut peak_rss_kib = None;
    let mut channels = [Tail::new(&spec.data_out), Tail::new(&spec.data_fallback_out)];
    let mut finished_at: Option<Instant> = None;
    let mut stop_ms = None;
    let mut vcpus = None;
    let mut console = ConsoleTail { file: None, path: spec.console_log.clone(), pos: 0 };
    let mut first_report: Option<Instant> = None;
    let mut told_class = false;
    let end = loop {
        for ch in &mut channels {
            ch.read_new(record, progress);
        }
        // An interactive shell outlives its scheduler: say what kind of failure at once.
        if limits.interactive && record.scheduler_failure.is_some() && !told_class {
            if let Some(class) = Verdict::SchedulerFailed.class(record, watch.class()) {
                progress(&format!(
                    "the scheduler's failure: {} (the shell stays up)",
                    class.as_str()
                ));
                told_class = true;
            }
        }
        timeline.observe(record);
        if let Some(line) = console.read_new(watch) {
            if limits.interactive {
                // While the shell runs; a scheduler's normal stop after it is no news.
                if record.payload_end.is_none() {
                    progress(&format!("console: {line} (Ctrl-] q ends the VM)"));
                }
            } else if first_report.is_none() && record.finished.is_none() {
                first_report = Some(Instant::now());
                progress(&format!(
                    "console: {line}; the run ends in {}s unless the guest finishes",
                    limits.stall_grace.as_secs()
                ));
            }
        }
        if let Some(why) = &record.protocol_mismatch {
            progress(&format!("refusing the guest: {why}"));
            stop_ms = Some(stop(&mut *vm));
            break VmEnd::Refused;
        }
        if record.finished.is_some() && finished_at.is_none() {
            finished_at = Some(Instant::now());
        }
        // VmHWM only grows, so the last value read is (nearly) the peak.
        peak_rss_kib = peak_rss_of(vm.pid()).or(peak_rss_kib);
        if vm.try_wait()?.is_some() {
            break VmEnd::PoweredOff;
        }
        if interrupt::requested() {
            progress("interrupted: stopping the VM");
            stop_ms = Some(stop(&mut *vm));
            break VmEnd::Interrupted;
        }
        if finished_at.is_some_and(|t| t.elapsed() > POWEROFF_GRACE) {
            progress("the guest finished but did not power off; stopping the VM");
            stop_ms = Some(stop(&mut *vm));
            break VmEnd::PoweredOff;
        }
        if record.finished.is_none()
            && first_report.is_some_and(|t| t.elapsed() > limits.stall_grace)
        {
            progress(&format!(
                "the guest did not finish within {}s of the console's report; stopping the VM",
                limits.stall_grace.as_secs()
            ));
            let (seen, ms) = read_then_stop(&mut *vm);
            (vcpus, stop_ms) = (Some(seen), Some(ms));
            break VmEnd::Stalled;
        }
        let watchdog = limits.watchdog;
        if !limits.interactive && started.elapsed() > watchdog {
            progress(&format!(
                "watchdog: no result after {}s; stopping the VM",
                watchdog.as_secs()
            ));
            let (seen, ms) = read_then_stop(&mut *vm);
            (vcpus, stop_ms) = (Some(seen), Some(ms));
            break VmEnd::WatchdogKilled;
        }
        // Ends early when the VM does (at once for the in-process VMM).
        vm.wait_timeout(POLL)?;
    };
    timeline.mark(Mark::VmEnded);
    if let Some(ms) = stop_ms {
        progress(&format!("the VM stopped in {ms} ms"));
    }
    for ch in &mut channels {
        ch.finish(record, progress);
    }
    timeline.observe(record);
    console.read_new(watch);
    Ok(Ended { end, peak_rss_kib, detail: vm.end_detail(), stop_ms, vcpus })
}

/// `VmHWM` of a live process, in KiB.
fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A VM given up on: where its vCPUs are is read before it is killed (the
/// evidence dies with it); returns that and how long the kill took, in ms.
fn read_then_stop(vm: &mut dyn RunningVm) -> (Result<VcpuReport, String>, u128) {
    let seen = vm.vcpus().map_err(|e| format!("{e:#}"));
    (seen, stop(vm))
}

/// Kills the VM; returns how long that took, in ms.
fn stop(vm: &mut dyn RunningVm) -> u128 {
    let started = Instant::now();
    if let Err(e) = vm.kill() {
        tracing::warn!("could not kill the VM process {}: {e:#}", vm.pid());
    }
    started.elapsed().as_millis()
}
