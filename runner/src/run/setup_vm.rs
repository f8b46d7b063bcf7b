//! A VM that only sets up disks and ends (a disk template's build): the same
//! kernel, init and data channel as a run, a plan with `setup_only`, and the
//! run's watchdog and console watch, so a hang or an oops is reported the same.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ktstr_core::disk::{DiskPlan, DiskReport};
use ktstr_core::plan::{RunPlan, SchedulerPlan};
use ktstr_core::plugin::LaunchSpec;
use ktstr_core::protocol::PROTOCOL_VERSION;

use super::console_watch::ConsoleWatch;
use super::record::Record;
use super::session::{self, Limits};
use super::timeline::Timeline;
use crate::initramfs::ArchiveSpec;
use crate::kernel::KernelEntry;
use crate::vm::{VmDisk, VmEngine, VmSpec};

/// One vCPU is enough for mkfs, and boots fastest.
const TOPOLOGY: &str = "1n1l1c1t";
const MEMORY_MIB: u64 = 512;
const WATCHDOG: Duration = Duration::from_secs(180);

/// Boots `base` (the init and the tools the plan names) with `disks`, and
/// returns the guest's reports of them; a guest that fails, or ends without
/// reporting every disk, is an error carrying its words and the console's.
pub fn run(
    engine: &dyn VmEngine,
    kernel: &KernelEntry,
    base: &ArchiveSpec,
    plans: Vec<DiskPlan>,
    disks: Vec<VmDisk>,
    dir: &Path,
) -> anyhow::Result<Vec<DiskReport>> {
    let wanted = plans.len();
    let plan = RunPlan {
        protocol: PROTOCOL_VERSION,
        payload: None,
        scenario: None,
        scheduler: SchedulerPlan {
            requested: "eevdf".into(),
            launch: LaunchSpec::built_in(),
            launcher: "(none: a disk set-up VM)".into(),
            binary: None,
            extra_args: Vec::new(),
        },
        checks: Vec::new(),
        topology: TOPOLOGY.into(),
        monitor: None,
        disks: plans,
        setup_only: true,
    };
    let spec = VmSpec {
        kernel: kernel.bzimage.clone(),
        vmlinux: None,
        initramfs: super::pack::initramfs(base, &plan.to_json(), &[], dir)?,
        cmdline: super::cmdline::guest_cmdline(&[])?,
        topology: TOPOLOGY.parse().expect("the set-up topology parses"),
        memory_mib: MEMORY_MIB,
        console_log: dir.join("console.log"),
        data_out: dir.join("data.bin"),
        data_fallback_out: dir.join("data-com2.bin"),
        disks,
        shell_socket: None,
    };
    let limits =
        Limits { watchdog: WATCHDOG, stall_grace: Duration::from_secs(10), interactive: false };
    let (mut record, mut console) = (Record::default(), ConsoleWatch::new(false));
    let mut timeline = Timeline::new(Instant::now());
    let mut lines = Vec::new();
    let ended = session::run_vm(
        engine,
        &spec,
        &limits,
        &mut console,
        &mut record,
        &mut timeline,
        &mut |l| lines.push(l.to_string()),
    )
    .context("boot the disk set-up VM")?;
    let why = match &record.finished {
        Some(None) if record.disks.len() == wanted => return Ok(record.disks),
        Some(None) => "it reported fewer disks than it was given".to_string(),
        Some(Some(e)) => e.clone(),
        None => format!("it did not finish ({})", ended.end.as_str()),
    };
    let tail = super::report::tail_lines(&spec.console_log, 15).join("\n");
    bail!(
        "the disk set-up VM failed: {why}\n  guest log:\n    {}\n  console (tail):\n    {}",
        lines.join("\n    "),
        tail.replace('\n', "\n    ")
    )
}
