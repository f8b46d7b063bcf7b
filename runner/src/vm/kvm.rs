//! The KVM engine: ktstr's own VMM (`ktstr-vmm`), in-process. The VM runs in
//! threads of this process (one per vCPU plus a supervisor), so `pid()` is our
//! own pid; `kill()` stops and joins those threads rather than signalling.
//!
//! Exit mapping, so callers treat both engines alike: a guest reset (reboot,
//! `ktstr.poweroff=reboot`, `panic=-1`), triple fault or KVM system event ends
//! like QEMU with `-no-reboot` (code 0); `kill()` reads as SIGKILL; a KVM
//! failure as code 1 (logged).

use ktstr_vmm::{RunningVm as VmmRunning, Vm, VmConfig, VmExitReason};

use super::vcpus::{Vcpu, VcpuReport};
use super::{RunningVm, VmEngine, VmExit, VmSpec};

// `--disk` is checked against core's limit; it must be the VMM's slots.
const _: () = assert!(ktstr_core::disk::MAX_DISKS == ktstr_vmm::arch::x86_64::layout::MAX_DISKS);

#[derive(Debug)]
pub struct KvmEngine;

impl KvmEngine {
    /// Checks /dev/kvm opens and has what the VMM needs.
    pub fn detect() -> anyhow::Result<KvmEngine> {
        ktstr_vmm::kvm_check()?;
        Ok(KvmEngine)
    }
}

impl VmEngine for KvmEngine {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn describe(&self) -> String {
        "ktstr-vmm (kvm)".into()
    }

    fn boot(&self, spec: &VmSpec) -> anyhow::Result<Box<dyn RunningVm>> {
        spec.check_files()?;
        let vm = Vm::boot(&vmm_config(spec))?;
        Ok(Box::new(RunningKvm { vm, exit: None, reason: None }))
    }
}

/// The VMM's configuration for `spec`: the one place the engine-neutral spec
/// becomes ktstr-vmm's own type.
fn vmm_config(spec: &VmSpec) -> VmConfig {
    // Destructured so that a field added to VmSpec cannot be silently dropped.
    let VmSpec {
        kernel,
        vmlinux,
        initramfs,
        cmdline,
        topology,
        memory_mib,
        console_log,
        data_out,
        data_fallback_out,
        disks,
        shell_socket,
    } = spec.clone();
    VmConfig {
        // The uncompressed kernel where the run asked for it: no
        // decompression in the guest (0.2-0.3 s under nested TCG).
        kernel: vmlinux.unwrap_or(kernel),
        initramfs,
        cmdline,
        topology,
        memory_mib,
        console_log,
        data_out,
        data_fallback_out,
        disks: disks
            .into_iter()
            .map(|d| ktstr_vmm::DiskConfig {
                path: d.path,
                read_only: d.read_only,
                serial: d.serial,
                iops: d.iops,
                bps: d.bps,
            })
            .collect(),
        shell_socket,
    }
}

struct RunningKvm {
    vm: VmmRunning,
    exit: Option<VmExit>,
    reason: Option<VmExitReason>,
}

fn to_exit(reason: &VmExitReason) -> VmExit {
    match reason {
        VmExitReason::Reset | VmExitReason::TripleFault | VmExitReason::SystemEvent(_) => {
            VmExit::Exited { code: Some(0), signal: None }
        }
        VmExitReason::Killed => VmExit::Exited { code: None, signal: Some(libc::SIGKILL) },
        VmExitReason::Error(e) => {
            tracing::warn!("the KVM VM failed: {e}");
            VmExit::Exited { code: Some(1), signal: None }
        }
    }
}

fn describe(reason: &VmExitReason) -> String {
    match reason {
        VmExitReason::Reset => "the guest reset the machine (i8042)".into(),
        VmExitReason::TripleFault => "triple fault (KVM_EXIT_SHUTDOWN)".into(),
        VmExitReason::SystemEvent(kind) => format!("KVM system event {kind}"),
        VmExitReason::Killed => "stopped by ktstr".into(),
        VmExitReason::Error(e) => format!("KVM error: {e}"),
    }
}

impl RunningVm for RunningKvm {
    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn try_wait(&mut self) -> anyhow::Result<Option<VmExit>> {
        if self.exit.is_none() {
            if let Some(r) = self.vm.try_wait() {
                tracing::debug!("KVM VM ended: {r:?}");
                self.exit = Some(to_exit(&r));
                self.reason = Some(r);
            }
        }
        Ok(self.exit)
    }

    fn wait_timeout(&mut self, timeout: std::time::Duration) -> anyhow::Result<Option<VmExit>> {
        if self.exit.is_none() {
            self.vm.wait_timeout(timeout);
        }
        self.try_wait()
    }

    fn kill(&mut self) -> anyhow::Result<()> {
        if self.exit.is_none() {
            let r = self.vm.kill();
            self.exit = Some(to_exit(&r));
            self.reason = Some(r);
        }
        Ok(())
    }

    fn end_detail(&self) -> Option<String> {
        self.reason.as_ref().map(describe)
    }

    fn vcpus(&mut self) -> anyhow::Result<VcpuReport> {
        if self.exit.is_some() {
            anyhow::bail!("the VM has ended");
        }
        Ok(report(self.vm.vcpus(SNAPSHOT_WAIT)))
    }
}

/// How long a request for the vCPUs' state waits for their answers: a vCPU
/// thread answers between two KVM_RUNs, at once unless a device access holds
/// it; the margin is for a loaded, emulated host that schedules it late.
const SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The VMM's answers as the engine-neutral report; `raw` lists them all,
/// the silent ones too.
fn report(answers: Vec<Option<ktstr_vmm::VcpuState>>) -> VcpuReport {
    let mut raw = String::new();
    let mut vcpus = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let Some(s) = answer else {
            raw.push_str(&format!("vCPU {i}: no answer (busy in a device access)\n"));
            continue;
        };
        let state = if s.halted { "halted" } else { "runnable" };
        let interrupts = if s.interrupts_enabled { "IF=1" } else { "IF=0" };
        raw.push_str(&format!(
            "vCPU {i}: RIP={:016x} RSP={:016x} CPL={} {interrupts} {state}; {} stack words \
             read; IRR {:?} ISR {:?}\n",
            s.rip,
            s.rsp,
            s.cpl,
            s.stack.len(),
            s.pending,
            s.in_service
        ));
        vcpus.push(Vcpu {
            index: s.index,
            rip: s.rip,
            rsp: s.rsp,
            cpl: s.cpl,
            halted: s.halted,
            interrupts_enabled: s.interrupts_enabled,
            stack: s.stack,
            pending: s.pending,
            in_service: s.in_service,
        });
    }
    VcpuReport { vcpus, raw }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_map_like_qemu() {
        assert_eq!(to_exit(&VmExitReason::Reset), VmExit::Exited { code: Some(0), signal: None });
        assert_eq!(
            to_exit(&VmExitReason::TripleFault),
            VmExit::Exited { code: Some(0), signal: None }
        );
        assert_eq!(
            to_exit(&VmExitReason::Killed),
            VmExit::Exited { code: None, signal: Some(libc::SIGKILL) }
        );
        assert_eq!(
            to_exit(&VmExitReason::Error("x".into())),
            VmExit::Exited { code: Some(1), signal: None }
        );
    }

    #[test]
    fn silent_vcpus_are_said_in_the_raw_report() {
        let answered = ktstr_vmm::VcpuState { index: 0, rip: 0x10, cpl: 3, ..Default::default() };
        let r = report(vec![Some(answered), None]);
        assert_eq!(r.vcpus.len(), 1);
        assert_eq!((r.vcpus[0].rip, r.vcpus[0].cpl), (0x10, 3));
        assert!(r.raw.contains("vCPU 1: no answer"), "{}", r.raw);
    }

    #[test]
    fn missing_files_fail_before_kvm() {
        let spec = VmSpec {
            kernel: "/nonexistent/bzImage".into(),
            vmlinux: None,
            initramfs: vec!["/nonexistent/initrd".into()],
            cmdline: String::new(),
            topology: "1n1l1c1t".parse().unwrap(),
            memory_mib: 256,
            console_log: "/tmp/x".into(),
            data_out: "/tmp/y".into(),
            data_fallback_out: "/tmp/z".into(),
            disks: Vec::new(),
            shell_socket: None,
        };
        let err = format!("{:#}", KvmEngine.boot(&spec).err().unwrap());
        assert!(err.contains("kernel") && err.contains("does not exist"), "{err}");
    }
}
