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
    /// The words on top of its stack, innermost first (kernel stacks only).
    pub stack: Vec<u64>,
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

    /// The lines, then the engine's own dump: what a report file keeps.
    pub fn text(&self, symbols: Option<&Symbols>) -> String {
        format!("{}\n\n{}\n", self.lines(symbols).join("\n"), self.raw.trim_end())
    }
}

fn vcpu_line(v: &Vcpu, symbols: Option<&Symbols>) -> String {
    let mode = if v.cpl == 0 { "kernel" } else { "user" };
    let state = if v.halted { "halted" } else { "running" };
    let name = |a: u64| symbols.and_then(|s| s.name(a)).unwrap_or_else(|| format!("{a:#x}"));
    let mut line = format!("vCPU {}: {mode}, {state}, at {}", v.index, name(v.rip));
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

/// QEMU's `info registers -a`: a `CPU#N` line, then the registers
/// (`RIP=… RFL=… CPL=0 II=0 A20=1 SMM=0 HLT=1`, `RSP=…`; `EIP`/`ESP` in
/// 32-bit modes).
pub fn parse_qemu_registers(text: &str) -> Vec<Vcpu> {
    let mut vcpus: Vec<Vcpu> = Vec::new();
    for line in text.lines() {
        if let Some(n) = line.trim().strip_prefix("CPU#") {
            if let Ok(index) = n.trim().parse() {
                vcpus.push(Vcpu { index, ..Vcpu::default() });
            }
            continue;
        }
        let Some(v) = vcpus.last_mut() else { continue };
        for field in line.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else { continue };
            let hex = || u64::from_str_radix(value, 16).ok();
            match key {
                "RIP" | "EIP" => v.rip = hex().unwrap_or(v.rip),
                "RSP" | "ESP" => v.rsp = hex().unwrap_or(v.rsp),
                "CPL" => v.cpl = value.parse().unwrap_or(v.cpl),
                "HLT" => v.halted = value == "1",
                _ => {}
            }
        }
    }
    vcpus
}

/// QEMU's `x/Ngx ADDR`: lines of `ADDR: 0xWORD 0xWORD`.
pub fn parse_qemu_words(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .flat_map(|(_, words)| words.split_whitespace())
        .filter_map(|w| u64::from_str_radix(w.strip_prefix("0x")?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTERS: &str = "CPU#0
RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000001 RDX=0000000000000000
RSI=0000000000000087 RDI=0000000000000000 RBP=0000000000000000 RSP=ffffffff82003e80
RIP=ffffffff81a2f0ae RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1
CPU#1
EAX=00000000 EBX=00000000 ECX=00000000 EDX=00060fb1
ESI=00000000 EDI=00000000 EBP=00000000 ESP=00007ff0
EIP=0000fff0 EFL=00000002 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=0
";

    #[test]
    fn registers_are_read_per_vcpu_in_either_mode() {
        let v = parse_qemu_registers(REGISTERS);
        assert_eq!(v.len(), 2);
        let first = Vcpu {
            index: 0,
            rip: 0xffffffff81a2f0ae,
            rsp: 0xffffffff82003e80,
            cpl: 0,
            halted: true,
            stack: vec![],
        };
        assert_eq!(v[0], first);
        assert_eq!(
            (v[1].index, v[1].rip, v[1].rsp, v[1].cpl, v[1].halted),
            (1, 0xfff0, 0x7ff0, 3, false)
        );
    }

    #[test]
    fn memory_dumps_give_their_words_in_order() {
        let text = "ffffc90000013e58: 0xffffffff81a3b0c6 0x0000000000000000\n\
                    ffffc90000013e68: 0x0000000000000010 0xffffffff8100d2e1\n";
        assert_eq!(parse_qemu_words(text), [0xffffffff81a3b0c6, 0, 0x10, 0xffffffff8100d2e1]);
        assert!(parse_qemu_words("unknown register\n").is_empty());
    }

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
}
