//! The messages the guest init sends to the host, in the order a run
//! produces them. Bump [`PROTOCOL_VERSION`] with any change; new variants go
//! at the end so an older host skips them instead of misreading them.

use serde::{Deserialize, Serialize};

use crate::check::CheckResult;
use crate::metrics::Metric;
use crate::scenario::{Progress, StepResult};

/// 4: `Metrics` and `Checks` may come in several parts (the host appends),
/// `Truncated`; 5: kernel log and sched_ext dump streamed as output sources;
/// 6: the run-queue monitor (`Monitor`, its samples as an output source);
/// 7: disks (`Disk`).
pub const PROTOCOL_VERSION: u16 = 7;

/// How the init's reason for a scheduler stuck disabling begins (the host
/// classes the failure by it).
pub const STUCK_DISABLING: &str = "sched_ext stuck in `disabling`";

/// How the init's reason for a stall the monitor found begins.
pub const MONITOR_STALL: &str = "the run-queue monitor saw a stall";

/// Which captured output a chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputSource {
    PayloadStdout,
    PayloadStderr,
    /// The scheduler's stdout and stderr, interleaved as written.
    Scheduler,
    /// The kernel log (`/dev/kmsg`), one `[secs] text` line per record.
    Kernel,
    /// The `sched_ext_dump` tracepoint's lines: the kernel's dump of a
    /// failing sched_ext scheduler.
    SchedExtDump,
    /// The run-queue monitor's samples, one JSON line each.
    Monitor,
}

impl OutputSource {
    /// The artifact file this output is kept in.
    pub fn file_name(self) -> &'static str {
        match self {
            OutputSource::PayloadStdout => "payload.stdout",
            OutputSource::PayloadStderr => "payload.stderr",
            OutputSource::Scheduler => "scheduler.log",
            OutputSource::Kernel => "kmsg.log",
            OutputSource::SchedExtDump => "sched_ext_dump.txt",
            OutputSource::Monitor => "monitor.jsonl",
        }
    }

    /// Most bytes of this stream either side keeps; the rest is dropped.
    pub fn cap(self) -> usize {
        match self {
            OutputSource::SchedExtDump => 256 << 10,
            _ => 16 << 20,
        }
    }
}

/// Why the scheduler is considered failed, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerFailure {
    pub reason: String,
    /// The tail of what the scheduler printed.
    pub output_tail: String,
    /// Kernel log lines about sched_ext.
    pub kernel_log: Vec<String>,
}

/// A thread that waited too long: the run fails with this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stall {
    pub tid: u32,
    pub comm: String,
    pub cpu: usize,
    pub waited_ms: u64,
    /// CPU time the other threads got meanwhile.
    pub others_ms: u64,
}

/// The run-queue monitor's summary (see `guest::monitor`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorSummary {
    pub samples: u64,
    pub interval_ms: u64,
    /// How often it really sampled (its cost bound can space samples out).
    pub mean_interval_ms: u64,
    pub stall_ms: u64,
    /// The most runnable threads seen at once on each CPU.
    pub max_runnable_per_cpu: Vec<u32>,
    /// The longest a thread waited runnable without running, and who.
    pub max_wait_ms: u64,
    pub max_wait_thread: Option<String>,
    /// Time the monitor itself spent sampling, in µs (its cost).
    pub cost_us: u64,
    /// Gaps between samples long enough to mean the guest was not running.
    pub pauses: u64,
    pub stall: Option<Stall>,
}

/// The guest's last word before it powers off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finish {
    /// Set when the init itself failed (bad plan, missing plugin…).
    pub init_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    Hello {
        protocol: u16,
        init_version: String,
        kernel_release: String,
        cpus_online: String,
    },
    Log {
        text: String,
    },
    /// The guest's view of its CPU topology, as JSON of `topology::GuestTopology`.
    Topology {
        json: String,
    },
    SchedulerStarted {
        name: String,
        pid: Option<u32>,
        sched_ext_state: String,
        ops: String,
        ready_ms: u64,
    },
    PayloadStarted {
        name: String,
        pid: u32,
        cgroup: String,
    },
    Output {
        source: OutputSource,
        data: Vec<u8>,
    },
    PayloadEnded {
        exit_code: Option<i32>,
        signal: Option<i32>,
        timed_out: bool,
        duration_ms: u64,
        stdout_truncated: bool,
        stderr_truncated: bool,
    },
    /// sched_ext as seen while the payload ran (sampled at its end).
    SchedExtDuringPayload {
        state: String,
        ops: String,
    },
    Metrics {
        metrics: Vec<Metric>,
        /// What the extractor said about them (e.g. a failing test's error).
        notes: Vec<String>,
        extractor: String,
        error: Option<String>,
    },
    Checks {
        results: Vec<CheckResult>,
    },
    SchedulerFailed(SchedulerFailure),
    Finish(Finish),
    /// A scenario step (or, last, the backdrop) ended.
    ScenarioStep(StepResult),
    /// About once a second while a scenario step holds.
    ScenarioProgress(Progress),
    /// Output of a payload a scenario runs, by its instance name.
    ScenarioOutput {
        name: String,
        stdout: bool,
        data: Vec<u8>,
    },
    /// The scenario ended; `error` says why when it stopped early.
    ScenarioDone {
        name: String,
        error: Option<String>,
    },
    /// A chunk of a file a payload left in its `out_dir`, appended to
    /// `out/PATH` in the run's artifacts (`PATH` is `payload/relative`).
    OutFile {
        path: String,
        data: Vec<u8>,
    },
    /// A file of an `out_dir` that was not sent, and why (over the cap, unreadable).
    OutFileSkipped {
        path: String,
        reason: String,
    },
    /// A message over the frame limit was cut down or dropped (`what` is its kind).
    Truncated {
        what: String,
        note: String,
    },
    /// The run-queue monitor's summary, once the payload ended.
    Monitor(MonitorSummary),
    /// A disk the guest found and set up, before the scheduler started.
    Disk(crate::disk::DiskReport),
}
