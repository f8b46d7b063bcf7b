//! A scheduler launcher: what it offers, and what it tells the guest init to
//! start for the scheduler the user asked for.

use crate::manifest::BinaryLocator;
use crate::payload::strings;

/// A scheduler launcher's manifest section.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SchedulerSpec {
    /// The binary it starts; `None` for schedulers built into the kernel (EEVDF)
    /// and for launchers whose binary is named by the user (see `launch`).
    pub binary: Option<BinaryLocator>,
    /// True when this launcher starts any binary the user names
    /// (`--scheduler scx_qmap` or a path), not only its own.
    pub accepts_any_binary: bool,
    /// Whether the scheduler is a sched_ext one (readiness is then checked via
    /// `/sys/kernel/sched_ext`).
    pub sched_ext: bool,
}

impl SchedulerSpec {
    /// A scheduler built into the kernel: nothing to start.
    pub fn built_in() -> Self {
        SchedulerSpec { binary: None, accepts_any_binary: false, sched_ext: false }
    }

    /// A sched_ext scheduler with a binary of its own (its arguments are
    /// the [`LaunchSpec`]'s).
    pub fn sched_ext(binary: BinaryLocator) -> Self {
        SchedulerSpec { binary: Some(binary), accepts_any_binary: false, sched_ext: true }
    }

    /// A launcher for any sched_ext binary the user names.
    pub fn any_sched_ext_binary() -> Self {
        SchedulerSpec { binary: None, accepts_any_binary: true, sched_ext: true }
    }
}

/// The signal the init sends to stop the scheduler.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

/// A concrete scheduler to start, as resolved by a launcher from what the
/// user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LaunchSpec {
    /// The binary (a file name to locate, or a path); `None` when the
    /// scheduler is built into the kernel and nothing is started.
    pub binary: Option<String>,
    pub args: Vec<String>,
    /// A sched_ext scheduler is ready once `/sys/kernel/sched_ext/state` is
    /// `enabled` and `root/ops` starts with this (scx_simple shows `simple`,
    /// scx_bpfland `bpfland_1.1.4_…`). `None`: any ops name will do.
    pub ops_prefix: Option<String>,
    pub sched_ext: bool,
    pub stop_signal: StopSignal,
    /// How long to wait for readiness, and for exit after the stop signal.
    pub ready_timeout_ms: u32,
    pub stop_timeout_ms: u32,
}

impl LaunchSpec {
    /// Nothing to start: the kernel's own scheduler.
    pub fn built_in() -> Self {
        LaunchSpec {
            binary: None,
            args: Vec::new(),
            ops_prefix: None,
            sched_ext: false,
            stop_signal: StopSignal::Terminate,
            ready_timeout_ms: 0,
            stop_timeout_ms: 0,
        }
    }

    /// Start `binary` (a name or a path) as a sched_ext scheduler, ready
    /// when its ops name starts with `ops_prefix`; stopped with SIGINT.
    /// Defaults: 60 s to become ready (BPF verification under emulation
    /// is slow), 10 s to exit.
    pub fn sched_ext(binary: &str, ops_prefix: Option<&str>) -> Self {
        LaunchSpec {
            binary: Some(binary.into()),
            args: Vec::new(),
            ops_prefix: ops_prefix.map(String::from),
            sched_ext: true,
            stop_signal: StopSignal::Interrupt,
            ready_timeout_ms: 60_000,
            stop_timeout_ms: 10_000,
        }
    }

    pub fn with_args(mut self, args: &[&str]) -> Self {
        self.args = strings(args);
        self
    }

    pub fn with_timeouts(mut self, ready_ms: u32, stop_ms: u32) -> Self {
        self.ready_timeout_ms = ready_ms;
        self.stop_timeout_ms = stop_ms;
        self
    }

    pub fn with_stop_signal(mut self, signal: StopSignal) -> Self {
        self.stop_signal = signal;
        self
    }
}
