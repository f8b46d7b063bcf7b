//! ktstr's own small KVM VMM, on the rust-vmm crates: boots a bzImage or an
//! uncompressed vmlinux, and an initramfs, with an exact CPU topology and the
//! devices ktstr's guest expects (the same ones the QEMU engine gives it):
//! - COM1 (0x3f8, IRQ 4): the kernel console, appended to `console_log`;
//! - COM2 (0x2f8, IRQ 3): the fallback data channel, to `data_fallback_out`;
//! - a virtio-mmio virtio-console (multiport) whose port 0 is named `ktstr`:
//!   the data channel, to `data_out`; with `shell_socket`, port 1 named
//!   `ktstr-shell`, relayed both ways over that socket;
//! - an i8042 whose reset ends the VM (the kernel gets `reboot=k`);
//! - up to 8 virtio-mmio virtio-blk disks over host files (`disks`), each
//!   served by a thread of its own.
//!
//! The VM runs in background threads of the calling process: one per vCPU and
//! one supervisor. See `Vm::boot` and `RunningVm`.

pub mod arch;
mod builder;
pub mod devices;
mod exit;
mod prefault;
mod snapshot;
mod vcpu;
mod vm;

use std::path::PathBuf;

use ktstr_topology::Topology;

pub use builder::{kernel_cmdline, DATA_PORT_NAME, SHELL_PORT_NAME};
pub use exit::VmExitReason;

pub use snapshot::VcpuState;
pub use vm::{RunningVm, Vm};

/// What to boot and where its output goes.
#[derive(Clone, Debug)]
pub struct VmConfig {
    pub kernel: PathBuf,
    /// Concatenated cpio archives, loaded back to back into guest memory.
    pub initramfs: Vec<PathBuf>,
    /// The caller's part of the kernel command line (see `kernel_cmdline`).
    pub cmdline: String,
    pub topology: Topology,
    pub memory_mib: u64,
    /// COM1, appended.
    pub console_log: PathBuf,
    /// The virtio-console port `ktstr`, truncated first.
    pub data_out: PathBuf,
    /// COM2, truncated first.
    pub data_fallback_out: PathBuf,
    /// virtio-blk disks, in the order the guest finds them (/dev/vda, …).
    pub disks: Vec<DiskConfig>,
    /// A Unix socket the host listens on: the VM connects to it at boot and
    /// gives the console a second port, `ktstr-shell`, relayed both ways.
    pub shell_socket: Option<PathBuf>,
}

/// One virtio-blk disk over a host file (raw, its length the disk's size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    pub path: PathBuf,
    pub read_only: bool,
    /// What GET_ID answers (`/sys/block/vdX/serial`), at most 20 bytes.
    pub serial: String,
    /// Requests a second, and bytes a second (token buckets; None: unlimited).
    pub iops: Option<u64>,
    pub bps: Option<u64>,
}

/// Whether /dev/kvm can be opened and has what this VMM needs. (On some
/// hosts /dev/kvm exists but cannot run Linux guests: this cannot tell.)
pub fn kvm_check() -> anyhow::Result<()> {
    use kvm_ioctls::{Cap, Kvm};
    let kvm = Kvm::new().map_err(|e| anyhow::anyhow!("open /dev/kvm: {e}"))?;
    for (cap, name) in [
        (Cap::Irqchip, "IRQCHIP"),
        (Cap::Irqfd, "IRQFD"),
        (Cap::Pit2, "PIT2"),
        (Cap::ExtCpuid, "EXT_CPUID"),
    ] {
        if !kvm.check_extension(cap) {
            anyhow::bail!("KVM lacks KVM_CAP_{name}");
        }
    }
    Ok(())
}
