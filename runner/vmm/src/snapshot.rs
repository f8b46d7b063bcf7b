//! Where each vCPU is, asked while the VM runs: for a guest that stopped
//! answering, its registers are the evidence left. A vCPU's registers can
//! only be read between two KVM_RUNs, by its own thread, so the asker
//! raises a request and kicks the threads (as a stop does); each one, back
//! from KVM_RUN, reads its own state, posts it and runs on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use kvm_bindings::KVM_MP_STATE_HALTED;
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::arch::x86_64::regs;

/// How many 8-byte words of a kernel stack are read.
const STACK_WORDS: u64 = 64;
const PAGE: u64 = 4096;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VcpuState {
    pub index: u32,
    pub rip: u64,
    pub rsp: u64,
    /// The privilege level: 0 the kernel, 3 userspace.
    pub cpl: u8,
    pub halted: bool,
    /// RFLAGS.IF: whether it takes interrupts now.
    pub interrupts_enabled: bool,
    /// The words on top of the stack, innermost first, up to the end of
    /// its page (kernel stacks only).
    pub stack: Vec<u64>,
    /// Interrupt vectors its local APIC has requested but not yet given
    /// the vCPU (IRR), and those given and not yet ended (ISR).
    pub pending: Vec<u8>,
    pub in_service: Vec<u8>,
}

/// The requests and the answers, shared by the asker and the vCPU threads.
#[derive(Default)]
pub struct Snapshots {
    /// Bumped by each request; a vCPU answers each generation once.
    wanted: AtomicU64,
    /// (generation, state) per vCPU index.
    answers: Mutex<Vec<Option<(u64, VcpuState)>>>,
    answered: Condvar,
}

impl Snapshots {
    pub fn new(vcpus: usize) -> Snapshots {
        Snapshots { answers: Mutex::new(vec![None; vcpus]), ..Snapshots::default() }
    }

    /// Starts a request; the caller then kicks the vCPU threads.
    pub fn request(&self) -> u64 {
        self.wanted.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Called by vCPU `index`'s thread between two KVM_RUNs.
    pub fn answer_if_asked(&self, index: u32, fd: &VcpuFd, mem: &GuestMemoryMmap) {
        let wanted = self.wanted.load(Ordering::SeqCst);
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = answers.get_mut(index as usize) else { return };
        if wanted == 0 || slot.as_ref().is_some_and(|(gen, _)| *gen == wanted) {
            return;
        }
        *slot = Some((wanted, read_state(index, fd, mem)));
        self.answered.notify_all();
    }

    /// The answers to request `gen`, waiting up to `timeout` for all of
    /// them; a vCPU busy in a device access stays unanswered (None).
    pub fn collect(&self, gen: u64, timeout: Duration) -> Vec<Option<VcpuState>> {
        let deadline = Instant::now() + timeout;
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let current = |a: &Option<(u64, VcpuState)>| a.as_ref().is_some_and(|(g, _)| *g == gen);
            let left = deadline.saturating_duration_since(Instant::now());
            if answers.iter().all(current) || left.is_zero() {
                return answers
                    .iter()
                    .map(|a| a.clone().filter(|(g, _)| *g == gen).map(|(_, s)| s))
                    .collect();
            }
            answers =
                self.answered.wait_timeout(answers, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

const RFLAGS_IF: u64 = 1 << 9;

/// This vCPU's registers and the top of its kernel stack; what cannot be
/// read stays at its default.
fn read_state(index: u32, fd: &VcpuFd, mem: &GuestMemoryMmap) -> VcpuState {
    let mut s = VcpuState { index, ..VcpuState::default() };
    if let Ok(regs) = fd.get_regs() {
        (s.rip, s.rsp) = (regs.rip, regs.rsp);
        s.interrupts_enabled = regs.rflags & RFLAGS_IF != 0;
    }
    if let Ok(sregs) = fd.get_sregs() {
        s.cpl = (sregs.cs.selector & 3) as u8;
    }
    s.halted = fd.get_mp_state().is_ok_and(|m| m.mp_state == KVM_MP_STATE_HALTED);
    if let Ok(lapic) = fd.get_lapic() {
        s.pending = regs::lapic_vectors(&lapic, regs::APIC_IRR);
        s.in_service = regs::lapic_vectors(&lapic, regs::APIC_ISR);
    }
    if s.cpl == 0 {
        s.stack = stack_words(fd, mem, s.rsp);
    }
    s
}

/// Words from `rsp` up, each page translated through the vCPU's own page
/// tables (a vmap'ed kernel stack is not contiguous in guest RAM).
fn stack_words(fd: &VcpuFd, mem: &GuestMemoryMmap, rsp: u64) -> Vec<u64> {
    let mut words = Vec::new();
    let mut page: Option<u64> = None; // the guest-physical address of rsp's page
    for i in 0..STACK_WORDS {
        let virt = rsp.wrapping_add(i * 8);
        if i == 0 || virt % PAGE == 0 {
            page = fd
                .translate_gva(virt)
                .ok()
                .filter(|t| t.valid != 0)
                .map(|t| t.physical_address - virt % PAGE);
        }
        let Some(base) = page else { break };
        match mem.read_obj::<u64>(GuestAddress(base + virt % PAGE)) {
            Ok(w) => words.push(w),
            Err(_) => break,
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_belong_to_their_request_and_missing_ones_time_out() {
        let s = Snapshots::new(2);
        let gen = s.request();
        {
            let mut a = s.answers.lock().unwrap();
            a[0] = Some((gen, VcpuState { index: 0, rip: 7, ..VcpuState::default() }));
            // An answer to an older request does not count.
            a[1] = Some((gen - 1, VcpuState { index: 1, ..VcpuState::default() }));
        }
        let got = s.collect(gen, Duration::from_millis(10));
        assert_eq!(got[0].as_ref().map(|v| v.rip), Some(7));
        assert_eq!(got[1], None);
    }
}
