//! VM engines: boot a kernel + initramfs with an exact CPU topology and the
//! same three devices whatever the engine (COM1 console, a virtio-console data
//! port, COM2 as the fallback data channel).

mod kvm;
mod qemu;
mod qemu_args;

pub use kvm::KvmEngine;
pub use qemu::{Accel, QemuEngine};

/// What to boot and where its output goes: the same for every engine, so
/// the VMM crate's own description of it serves them all.
pub use ktstr_vmm::VmConfig as VmSpec;

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
    /// Waits up to `timeout` for the VM to end; engines that can be told
    /// at once (the in-process VMM) return as soon as it does.
    fn wait_timeout(&mut self, timeout: std::time::Duration) -> anyhow::Result<Option<VmExit>> {
        std::thread::sleep(timeout);
        self.try_wait()
    }
    /// How the VM ended, in words, when the engine knows more than an exit
    /// status (e.g. "triple fault").
    fn end_detail(&self) -> Option<String> {
        None
    }
}
