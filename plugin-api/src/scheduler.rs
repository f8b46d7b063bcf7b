//! What a scheduler launcher tells the guest init: what to run and how to
//! know it is ready and how to stop it.

use abi_stable::std_types::{ROption, RString, RVec};
use abi_stable::StableAbi;

/// The signal the init sends to stop the scheduler.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

/// A concrete scheduler to start, as resolved by a launcher from what the
/// user asked for.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct LaunchSpec {
    /// The binary (a file name to locate, or a path); `None` when the
    /// scheduler is built into the kernel and nothing is started.
    pub binary: ROption<RString>,
    pub args: RVec<RString>,
    /// A sched_ext scheduler is ready once `/sys/kernel/sched_ext/state` is
    /// `enabled` and `root/ops` starts with this (scx_simple shows `simple`,
    /// scx_bpfland `bpfland_1.1.4_…`). `None`: any ops name will do.
    pub ops_prefix: ROption<RString>,
    pub sched_ext: bool,
    pub stop_signal: StopSignal,
    /// How long to wait for readiness, and for exit after the stop signal.
    pub ready_timeout_ms: u32,
    pub stop_timeout_ms: u32,
}
