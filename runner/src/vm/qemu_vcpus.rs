//! Where a QEMU VM's vCPUs are, asked through its monitor: every vCPU's
//! registers (`info registers -a`), then per vCPU its local APIC's pending
//! and in-service interrupts (`info lapic`) and, in the kernel, the top of
//! its stack (`x/64gx RSP`, read through that vCPU's own page tables).

use std::path::Path;
use std::time::Duration;

use super::qmp::Monitor;
use super::vcpus::{Vcpu, VcpuReport};

const RFLAGS_IF: u64 = 1 << 9;

/// How many words of each vCPU's kernel stack a report reads.
const STACK_WORDS: usize = 64;

/// Reads the vCPUs of the QEMU whose QMP socket is `socket`; `timeout`
/// bounds each exchange (a QEMU whose main loop is stuck does not answer).
pub fn read(socket: &Path, timeout: Duration) -> anyhow::Result<VcpuReport> {
    let mut monitor = Monitor::connect(socket, timeout)?;
    let mut raw = monitor.human("info registers -a", None)?;
    let mut vcpus = parse_registers(&raw);
    for v in vcpus.iter_mut() {
        let lapic = monitor.human("info lapic", Some(v.index))?;
        (v.pending, v.in_service) = parse_lapic(&lapic);
        raw.push_str(&format!("\n{}", lapic.trim_end()));
        if v.cpl == 0 && v.rsp != 0 {
            let words = monitor.human(&format!("x/{STACK_WORDS}gx {:#x}", v.rsp), Some(v.index))?;
            v.stack = parse_words(&words);
        }
    }
    Ok(VcpuReport { vcpus, raw })
}

/// `info registers -a`: a `CPU#N` line, then the registers
/// (`RIP=… RFL=… CPL=0 II=0 A20=1 SMM=0 HLT=1`, `RSP=…`; `EIP`/`ESP` in
/// 32-bit modes).
fn parse_registers(text: &str) -> Vec<Vcpu> {
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
                "RFL" | "EFL" => v.interrupts_enabled = hex().is_some_and(|f| f & RFLAGS_IF != 0),
                "HLT" => v.halted = value == "1",
                _ => {}
            }
        }
    }
    vcpus
}

/// `x/Ngx ADDR`: lines of `ADDR: 0xWORD 0xWORD`.
fn parse_words(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .flat_map(|(_, words)| words.split_whitespace())
        .filter_map(|w| u64::from_str_radix(w.strip_prefix("0x")?, 16).ok())
        .collect()
}

/// `info lapic`'s `IRR` and `ISR` lines: the vectors, each marked
/// `(level)` when level-triggered, or `(none)`.
fn parse_lapic(text: &str) -> (Vec<u8>, Vec<u8>) {
    let vectors = |name: &str| -> Vec<u8> {
        text.lines()
            .find_map(|l| l.strip_prefix(name).filter(|rest| rest.starts_with(char::is_whitespace)))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|v| v.trim_end_matches("(level)").parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    (vectors("IRR"), vectors("ISR"))
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
        let v = parse_registers(REGISTERS);
        assert_eq!(v.len(), 2);
        let first = Vcpu {
            index: 0,
            rip: 0xffffffff81a2f0ae,
            rsp: 0xffffffff82003e80,
            cpl: 0,
            halted: true,
            interrupts_enabled: true,
            ..Vcpu::default()
        };
        assert_eq!(v[0], first);
        assert_eq!(
            (v[1].index, v[1].rip, v[1].rsp, v[1].cpl, v[1].halted, v[1].interrupts_enabled),
            (1, 0xfff0, 0x7ff0, 3, false, false)
        );
    }

    #[test]
    fn memory_dumps_give_their_words_in_order() {
        let text = "ffffc90000013e58: 0xffffffff81a3b0c6 0x0000000000000000\n\
                    ffffc90000013e68: 0x0000000000000010 0xffffffff8100d2e1\n";
        assert_eq!(parse_words(text), [0xffffffff81a3b0c6, 0, 0x10, 0xffffffff8100d2e1]);
        assert!(parse_words("unknown register\n").is_empty());
    }

    #[test]
    fn the_local_apic_gives_its_pending_and_in_service_vectors() {
        // QEMU 7.2's `info lapic`, trimmed.
        let text = "dumping local APIC state for CPU 1\n\n\
            LVTT\t 0x000400ec active-hi edge                 tsc-deadline Fixed  (vec 236)\n\
            ESR\t 0x00000000\n\
            ISR\t 48(level) \n\
            IRR\t 34 236 \n\n\
            APR 0x00 TPR 0x00 PPR 0x30\n";
        assert_eq!(parse_lapic(text), (vec![34, 236], vec![48]));
        let idle = "ISR\t (none)\nIRR\t (none)\n";
        assert_eq!(parse_lapic(idle), (vec![], vec![]));
    }
}
