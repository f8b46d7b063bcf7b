//! VM engines: boot a kernel + initramfs with an exact CPU topology and the
//! same devices whatever the engine (COM1 console, a virtio-console data
//! port, COM2 as the fallback data channel, virtio-blk disks, and for an
//! interactive shell a second port over a Unix socket).

mod kvm;
mod qemu;
mod qemu_args;
mod qemu_vcpus;
mod qmp;
pub mod vcpus;

pub use kvm::KvmEngine;
pub use qemu::{Accel, QemuEngine};

use std::path::PathBuf;

use ktstr_core::topology::Topology;

/// What to boot and where its output goes, the same for every engine. Each
/// engine maps it onto its own configuration (the QEMU command line, or
/// `ktstr_vmm::VmConfig` for the KVM engine).
#[derive(Clone, Debug)]
pub struct VmSpec {
    /// The bzImage.
    pub kernel: PathBuf,
    /// The same kernel uncompressed (an ELF vmlinux), for engines that boot
    /// it directly and so skip the guest's decompression (ktstr-vmm).
    pub vmlinux: Option<PathBuf>,
    /// The initramfs, as parts the kernel unpacks in order (concatenated cpio
    /// archives): e.g. a cached base archive and a small per-run one.
    pub initramfs: Vec<PathBuf>,
    /// The caller's part of the kernel command line; each engine appends
    /// what its devices need (the console on COM1, …).
    pub cmdline: String,
    pub topology: Topology,
    /// Guest memory, split evenly over the NUMA nodes (the remainder on node 0).
    pub memory_mib: u64,
    /// The kernel console (COM1), appended.
    pub console_log: PathBuf,
    /// The virtio-console port named `ktstr` (the data channel), truncated first.
    pub data_out: PathBuf,
    /// COM2 (the fallback data channel), truncated first.
    pub data_fallback_out: PathBuf,
    /// virtio-blk disks over raw image files, in order.
    pub disks: Vec<VmDisk>,
    /// An interactive shell's Unix socket, already listening: the engine
    /// connects the virtio-console port `ktstr-shell` to it, both ways.
    pub shell_socket: Option<PathBuf>,
}

/// One virtio-blk disk: a raw image file, the serial the guest finds it by
/// (`/sys/block/vdX/serial`), and optional limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmDisk {
    pub path: PathBuf,
    pub read_only: bool,
    pub serial: String,
    /// Requests a second and bytes a second; None: unlimited.
    pub iops: Option<u64>,
    pub bps: Option<u64>,
}

impl VmSpec {
    /// Fails, naming the file, when the kernel or an initramfs part is missing.
    pub fn check_files(&self) -> anyhow::Result<()> {
        let parts = self.initramfs.iter().map(|p| ("initramfs", p));
        let vmlinux = self.vmlinux.iter().map(|p| ("vmlinux", p));
        for (what, p) in std::iter::once(("kernel", &self.kernel)).chain(vmlinux).chain(parts) {
            if !p.is_file() {
                anyhow::bail!("the {what} {} does not exist", p.display());
            }
        }
        if self.initramfs.is_empty() {
            anyhow::bail!("no initramfs given");
        }
        Ok(())
    }
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
    /// Where the vCPUs are now, for a guest that stopped answering.
    fn vcpus(&mut self) -> anyhow::Result<vcpus::VcpuReport> {
        anyhow::bail!("this engine cannot tell where its vCPUs are")
    }
    /// An NMI to every vCPU: wakes a halted one whatever its interrupt flag.
    fn inject_nmi(&mut self) -> anyhow::Result<()> {
        anyhow::bail!("this engine cannot inject an NMI")
    }
}
