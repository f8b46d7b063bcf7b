//! Where a VM's vCPUs are when its guest stops answering: each one's
//! instruction and stack pointer, privilege level, whether it halted, and
//! the words on top of its stack, said in words with the guest kernel's
//! symbols (a halted idle loop reads differently from a spinning lock).

use crate::kernel::symbols::Symbols;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vcpu {
    pub index: u32,
    pub rip: u64,
    pub rsp: u64,
    /// 0: the kernel; 3: userspace.
    pub cpl: u8,
    pub halted: bool,
    /// RFLAGS.IF: it takes an unmasked pending interrupt at its next instruction.
    pub interrupts_enabled: bool,
    /// The words on top of its stack, innermost first (kernel stacks only).
    pub stack: Vec<u64>,
    /// Interrupt vectors its local APIC has requested and not yet given it
    /// (IRR), and those it took and has not yet ended (ISR). A vCPU halted,
    /// or taking interrupts, with one pending and unmasked was never given it.
    pub pending: Vec<u8>,
    pub in_service: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
pub struct VcpuReport {
    pub vcpus: Vec<Vcpu>,
    /// The engine's own dump, kept whole as evidence.
    pub raw: String,
}

/// How many return addresses of a stack a line names.
const FRAMES: usize = 6;

impl VcpuReport {
    /// One line per vCPU, e.g. `vCPU 1: kernel, running, at queued_spin_lock_slowpath+0x4f;
    /// stack: _raw_spin_lock+0x1e < kvm_mmu_page_fault+0x9a`. Without symbols, addresses.
    pub fn lines(&self, symbols: Option<&Symbols>) -> Vec<String> {
        self.vcpus.iter().map(|v| vcpu_line(v, symbols)).collect()
    }

    /// The same, each line saying whether its vCPU was at the same address
    /// in an `earlier` report: stuck, or (perhaps) moving. A vCPU that the
    /// earlier report lacks gets no such word.
    pub fn lines_since(&self, earlier: &VcpuReport, symbols: Option<&Symbols>) -> Vec<String> {
        let lines = self.lines(symbols);
        let before = |v: &Vcpu| earlier.vcpus.iter().find(|e| e.index == v.index).map(|e| e.rip);
        (self.vcpus.iter().zip(lines))
            .map(|(v, line)| match before(v) {
                Some(rip) if rip == v.rip => format!("{line} (there in the earlier look too)"),
                Some(_) => format!("{line} (elsewhere in the earlier look)"),
                None => line,
            })
            .collect()
    }

    /// Interrupts the emulator never delivered: a vCPU that is halted, or
    /// runs with interrupts enabled, and has a pending interrupt that
    /// nothing masks (above the priority class 1 Linux keeps in its TPR,
    /// and above any in service) should already be running its handler.
    /// QEMU 7.2's TCG left L1 guests so now and then: a vCPU halted, or
    /// running user code, with the timer and an IPI pending, the other idle
    /// too or spinning on an IPI to it. Says which vCPUs.
    pub fn lost_interrupt(&self) -> Option<String> {
        let stuck: Vec<String> = (self.vcpus.iter())
            .filter(|v| (v.halted || v.interrupts_enabled) && deliverable(v))
            .map(|v| {
                let state = if v.halted { "halted" } else { "running with interrupts enabled" };
                format!("vCPU {}, {state}, has interrupts {} pending", v.index, list(&v.pending))
            })
            .collect();
        (!stuck.is_empty()).then(|| stuck.join(", "))
    }

    /// The lines, then the engine's own dump: what a report file keeps.
    pub fn text(&self, symbols: Option<&Symbols>) -> String {
        format!("{}\n\n{}\n", self.lines(symbols).join("\n"), self.raw.trim_end())
    }
}

/// Whether a pending interrupt outranks what masks it: Linux's TPR (class
/// 1, vectors 0x10-0x1f) and the highest interrupt in service.
fn deliverable(v: &Vcpu) -> bool {
    let masked_up_to = v.in_service.iter().map(|i| i >> 4).max().unwrap_or(0).max(1);
    v.pending.iter().any(|p| p >> 4 > masked_up_to)
}

fn list(vectors: &[u8]) -> String {
    vectors.iter().map(u8::to_string).collect::<Vec<_>>().join(" ")
}

fn vcpu_line(v: &Vcpu, symbols: Option<&Symbols>) -> String {
    let mode = if v.cpl == 0 { "kernel" } else { "user" };
    let state = if v.halted { "halted" } else { "running" };
    let name = |a: u64| symbols.and_then(|s| s.name(a)).unwrap_or_else(|| format!("{a:#x}"));
    let mut line = format!("vCPU {}: {mode}, {state}, at {}", v.index, name(v.rip));
    if !v.pending.is_empty() {
        line.push_str(&format!("; interrupts pending {}", list(&v.pending)));
    }
    if !v.in_service.is_empty() {
        line.push_str(&format!("; in service {}", list(&v.in_service)));
    }
    // Words that point into kernel code, past a function's first byte (a
    // function pointer is no return address), are return-address candidates.
    let frames: Vec<String> = match symbols {
        Some(s) => v
            .stack
            .iter()
            .filter_map(|&w| s.name(w).filter(|n| !n.ends_with("+0x0")))
            .take(FRAMES)
            .collect(),
        None => Vec::new(),
    };
    if !frames.is_empty() {
        line.push_str(&format!("; stack: {}", frames.join(" < ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_code_and_keeps_only_code_addresses_of_the_stack() {
        let symbols = Symbols::from_list(vec![
            (0xffffffff81000000, 0x100, "default_idle".into()),
            (0xffffffff81a2f000, 0x200, "native_safe_halt".into()),
        ]);
        let v = Vcpu {
            index: 0,
            rip: 0xffffffff81a2f0ae,
            cpl: 0,
            halted: true,
            stack: vec![0x10, 0xffffffff81000000, 0xffffffff81000009, 0xffff888000000000],
            ..Vcpu::default()
        };
        let report = VcpuReport { vcpus: vec![v.clone()], raw: String::new() };
        assert_eq!(
            report.lines(Some(&symbols)),
            ["vCPU 0: kernel, halted, at native_safe_halt+0xae; stack: default_idle+0x9"]
        );
        assert_eq!(report.lines(None), ["vCPU 0: kernel, halted, at 0xffffffff81a2f0ae"]);
        let waiting = Vcpu { pending: vec![34, 236], in_service: vec![48], ..v.clone() };
        assert_eq!(
            VcpuReport { vcpus: vec![waiting], raw: String::new() }.lines(None),
            ["vCPU 0: kernel, halted, at 0xffffffff81a2f0ae; interrupts pending 34 236; in \
                service 48"]
        );
        let moved = Vcpu { index: 1, rip: 0x10, ..Vcpu::default() };
        let earlier = VcpuReport { vcpus: vec![v.clone(), moved.clone()], raw: String::new() };
        let now = Vcpu { rip: 0x20, ..moved };
        let later = VcpuReport { vcpus: vec![v, now], raw: String::new() };
        let lines = later.lines_since(&earlier, None);
        assert!(lines[0].ends_with("(there in the earlier look too)"), "{lines:?}");
        assert!(
            lines[1].ends_with("kernel, running, at 0x20 (elsewhere in the earlier look)"),
            "{lines:?}"
        );
        // vCPU 1 did not answer the first time: nothing is said of its motion.
        let unanswered = VcpuReport { vcpus: vec![earlier.vcpus[0].clone()], raw: String::new() };
        let lines = later.lines_since(&unanswered, None);
        assert_eq!(lines[1], "vCPU 1: kernel, running, at 0x20", "{lines:?}");
        assert_eq!(later.text(None), format!("{}\n\n\n", later.lines(None).join("\n")));
    }

    #[test]
    fn a_lost_interrupt_is_one_pending_unmasked_on_a_halted_or_interruptible_vcpu() {
        let idle = |index, pending: Vec<u8>, in_service: Vec<u8>| Vcpu {
            index,
            halted: true,
            pending,
            in_service,
            ..Vcpu::default()
        };
        let report = |vcpus| VcpuReport { vcpus, raw: String::new() };
        // As seen in a hung L1: the timer (236) and an IPI (251) never delivered.
        let hung = report(vec![idle(0, vec![236, 251], vec![]), idle(1, vec![], vec![])]);
        assert_eq!(
            hung.lost_interrupt().as_deref(),
            Some("vCPU 0, halted, has interrupts 236 251 pending")
        );
        // Also seen: vCPU 1 spinning on an IPI (251) to the sleeping vCPU 0.
        let spinning = Vcpu { halted: false, ..idle(1, vec![], vec![]) };
        let waited_on = report(vec![idle(0, vec![33, 236, 251], vec![]), spinning.clone()]);
        assert_eq!(
            waited_on.lost_interrupt().as_deref(),
            Some("vCPU 0, halted, has interrupts 33 236 251 pending")
        );
        // And in another hung L1: vCPU 0 running user code (RFL 0x206, so
        // interrupts enabled) with the same two pending, vCPU 1 spinning.
        let user = Vcpu { index: 0, cpl: 3, interrupts_enabled: true, ..spinning.clone() };
        let running = report(vec![Vcpu { pending: vec![236, 251], ..user }, spinning.clone()]);
        assert_eq!(
            running.lost_interrupt().as_deref(),
            Some("vCPU 0, running with interrupts enabled, has interrupts 236 251 pending")
        );
        // Idle with nothing pending, or running with interrupts disabled
        // (a spinlock taken with them off): none owed.
        assert_eq!(report(vec![idle(0, vec![], vec![])]).lost_interrupt(), None);
        let busy = Vcpu { pending: vec![236], ..spinning };
        assert_eq!(report(vec![idle(0, vec![], vec![]), busy]).lost_interrupt(), None);
        // Masked: below Linux's TPR class, or by a higher interrupt in service.
        assert_eq!(report(vec![idle(0, vec![0x1f], vec![])]).lost_interrupt(), None);
        assert_eq!(report(vec![idle(0, vec![0x31], vec![0xec])]).lost_interrupt(), None);
        assert!(report(vec![idle(0, vec![0xfd], vec![0xec])]).lost_interrupt().is_some());
        assert_eq!(report(vec![]).lost_interrupt(), None);
    }
}
