//! One thread per vCPU: run KVM_RUN, dispatch port and MMIO exits to the
//! buses, end the VM on shutdown exits. The supervisor stops a vCPU with a
//! signal (`kick_signal`) whose handler sets the thread's `immediate_exit`
//! (as Firecracker does): KVM_RUN returns EINTR at once, even when the signal
//! lands between the loop's stop check and its next KVM_RUN, and the loop
//! sees the stop flag; or, asked where it is, answers (see `snapshot`).

use std::cell::Cell;
use std::sync::{Arc, Once};

use kvm_bindings::kvm_run;

use kvm_ioctls::{VcpuExit, VcpuFd};
use vm_memory::GuestMemoryMmap;

use crate::devices::bus::Bus;
use crate::exit::{ExitState, VmExitReason};
use crate::snapshot::Snapshots;

/// SIGRTMIN+2: real-time, so never coalesced with the host's own signals.
pub fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN() + 2
}

thread_local! {
    /// This thread's `kvm_run` mapping while its vCPU runs, else null.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // A const-initialised thread-local of a plain pointer: no allocation and
    // no lazy init, so it is safe to read in a signal handler.
    let run = KVM_RUN.with(Cell::get);
    if !run.is_null() {
        // SAFETY: the pointer is this thread's live kvm_run mapping; it is
        // cleared before the vCPU (and so the mapping) is dropped.
        unsafe { std::ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
    }
}

/// Installs the (empty) kick handler once per process; without SA_RESTART,
/// so KVM_RUN is interrupted rather than restarted.
pub fn install_kick_handler() -> anyhow::Result<()> {
    static ONCE: Once = Once::new();
    let mut res = Ok(());
    ONCE.call_once(|| {
        res = vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick)
            .map_err(|e| anyhow::anyhow!("install the vCPU kick signal handler: {e}"));
    });
    res
}

pub struct Vcpu {
    pub index: u32,
    pub fd: VcpuFd,
    pub pio: Arc<Bus>,
    pub mmio: Arc<Bus>,
    pub exit: Arc<ExitState>,
    /// Guest RAM, to read the top of the stack when a snapshot is asked for.
    pub mem: GuestMemoryMmap,
    pub snapshots: Arc<Snapshots>,
}

impl Vcpu {
    /// Runs until the VM stops.
    pub fn run(mut self) {
        // The kick signal must be deliverable on this thread.
        let _ = vmm_sys_util::signal::unblock_signal(kick_signal());
        KVM_RUN.with(|r| r.set(self.fd.get_kvm_run()));
        while !self.exit.stopping() {
            match self.fd.run() {
                Ok(exit) => {
                    if let Some(reason) = handle(exit, &self.pio, &self.mmio) {
                        self.exit.end(reason);
                    }
                }
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    self.fd.set_kvm_immediate_exit(0);
                    // A kick is a stop or a request for where this vCPU is.
                    self.snapshots.answer_if_asked(self.index, &self.fd, &self.mem);
                }
                Err(e) => {
                    self.exit.end(VmExitReason::Error(format!("vCPU {}: KVM_RUN: {e}", self.index)))
                }
            }
        }
        KVM_RUN.with(|r| r.set(std::ptr::null_mut()));
    }
}

/// What one exit means: None to go on running.
fn handle(exit: VcpuExit<'_>, pio: &Bus, mmio: &Bus) -> Option<VmExitReason> {
    match exit {
        VcpuExit::IoIn(port, data) => {
            if !pio.read(u64::from(port), data) {
                data.fill(0xff); // nothing there: an open bus
            }
        }
        VcpuExit::IoOut(port, data) => {
            pio.write(u64::from(port), data);
        }
        VcpuExit::MmioRead(addr, data) => {
            if !mmio.read(addr, data) {
                data.fill(0);
            }
        }
        VcpuExit::MmioWrite(addr, data) => {
            mmio.write(addr, data);
        }
        VcpuExit::Shutdown => return Some(VmExitReason::TripleFault),
        VcpuExit::SystemEvent(kind, _) => return Some(VmExitReason::SystemEvent(kind)),
        VcpuExit::Hlt => {} // only without an in-kernel LAPIC
        VcpuExit::FailEntry(reason, cpu) => {
            return Some(VmExitReason::Error(format!(
                "KVM_EXIT_FAIL_ENTRY: reason {reason:#x} on host CPU {cpu}"
            )))
        }
        VcpuExit::InternalError => {
            return Some(VmExitReason::Error("KVM_EXIT_INTERNAL_ERROR".into()))
        }
        other => tracing::debug!("unhandled vCPU exit {other:?}"),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::bus::BusDevice;
    use std::sync::Mutex;

    struct Fixed(u8);
    impl BusDevice for Fixed {
        fn read(&mut self, _: u64, data: &mut [u8]) {
            data.fill(self.0);
        }
        fn write(&mut self, _: u64, _: &[u8]) {}
    }

    #[test]
    fn exits_map_to_reasons() {
        let mut pio = Bus::new();
        pio.insert(0x60, 5, Arc::new(Mutex::new(Fixed(7)))).unwrap();
        let mmio = Bus::new();
        let mut b = [0u8; 1];
        assert_eq!(handle(VcpuExit::IoIn(0x64, &mut b), &pio, &mmio), None);
        assert_eq!(b, [7]);
        assert_eq!(handle(VcpuExit::IoIn(0x80, &mut b), &pio, &mmio), None);
        assert_eq!(b, [0xff]);
        let mut w = [1u8; 4];
        assert_eq!(handle(VcpuExit::MmioRead(0xd000_0000, &mut w), &pio, &mmio), None);
        assert_eq!(w, [0; 4]);
        assert_eq!(handle(VcpuExit::Shutdown, &pio, &mmio), Some(VmExitReason::TripleFault));
        assert_eq!(
            handle(VcpuExit::SystemEvent(2, &[]), &pio, &mmio),
            Some(VmExitReason::SystemEvent(2))
        );
    }

    #[test]
    fn kick_handler_installs_once() {
        install_kick_handler().unwrap();
        install_kick_handler().unwrap();
    }
}
