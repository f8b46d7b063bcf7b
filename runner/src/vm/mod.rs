//! VM engines: boot a kernel + initramfs with an exact CPU topology and the
//! same three devices whatever the engine (COM1 console, a virtio-console data
//! port, COM2 as the fallback data channel).

mod kvm;
mod qemu;
mod qemu_args;

use std::path::PathBuf;

use ktstr_core::topology::Topology;

pub use kvm::KvmEngine;
pub use qemu::{Accel, QemuEngine};

/// What to boot and where its output goes.
#[derive(Clone, Debug)]
pub struct VmSpec {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// The caller's part of the kernel command line; the engine appends what
    /// its devices need (`console=ttyS0`, timing hints).
    pub cmdline: String,
    pub topology: Topology,
    pub memory_mib: u64,
    /// COM1 (kernel console, ttyS0), appended to this file.
    pub console_log: PathBuf,
    /// The virtio-console port named `ktstr`, written to this file.
    pub data_out: PathBuf,
    /// COM2 (ttyS1, 0x2f8 irq 3), written to this file: the fallback channel.
    pub data_fallback_out: PathBuf,
}

/// How a VM process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmExit {
    Exited { code: Option<i32>, signal: Option<i32> },
}

pub trait VmEngine {
    fn name(&self) -> &'static str;
    /// One line for humans, e.g. "qemu 7.2.22 (tcg)".
    fn describe(&self) -> String;
    fn boot(&self, spec: &VmSpec) -> anyhow::Result<Box<dyn RunningVm>>;
}

/// A booted VM. Dropping it kills it: no VM process outlives its handle.
pub trait RunningVm: Send {
    fn pid(&self) -> u32;
    /// Some once the VM has exited (reaped); None while it runs.
    fn try_wait(&mut self) -> anyhow::Result<Option<VmExit>>;
    /// SIGKILL and reap; a no-op once the VM has exited.
    fn kill(&mut self) -> anyhow::Result<()>;
}
