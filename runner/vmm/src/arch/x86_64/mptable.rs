//! The Intel MultiProcessor table (MP spec 1.4): a floating pointer and a
//! configuration table listing the CPUs, an ISA bus, the IOAPIC and its
//! pins, as QEMU's SeaBIOS, Firecracker and crosvm give their guests.
//!
//! Linux boots from the MADT either way; the table is here because without
//! one the kernel's search for it (`smp_scan_config`) maps and unmaps the
//! whole 64 KiB BIOS area 16 bytes at a time, and under shadow paging (a
//! nested L1 with `kvm_amd.npt=0`) each remap is trapped page-table writes:
//! that search took 2.8 s of a 4.3 s boot to `/init`. Found early, it stops
//! at once. The table is complete and agrees with the MADT, though Linux
//! reads only the MADT while ACPI is on.

use super::acpi::{set_checksum, IOAPIC_ID};
use super::layout::{IOAPIC_ADDR, LAPIC_ADDR};
use super::topo::CpuTopo;

const SPEC_1_4: u8 = 4;
const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
/// ISA IRQs, wired one to one to IOAPIC pins as in the MADT (no overrides).
const ISA_IRQS: u8 = 16;
/// Family 6 in the processor entries' signature; FPU and APIC present.
const CPU_SIGNATURE: u32 = 0x600;
const CPU_FEATURES: u32 = 1 | (1 << 9);

/// Entry types.
const PROCESSOR: u8 = 0;
const BUS: u8 = 1;
const IOAPIC: u8 = 2;
const INTSRC: u8 = 3;
const LINTSRC: u8 = 4;
/// Interrupt types: a vectored interrupt, a non-maskable one.
const INT: u8 = 0;
const NMI: u8 = 1;

/// The floating pointer followed by the configuration table, for guest
/// address `at`. APIC ids fit the table's byte: `CpuTopo` keeps them below 0xff.
pub fn build(t: &CpuTopo, at: u32) -> Vec<u8> {
    let places = t.places();
    let mut entries: Vec<[u8; 8]> = Vec::new();
    let mut processors = Vec::with_capacity(places.len() * 20);
    for p in &places {
        let flags = 1 | if p.cpu == 0 { 2 } else { 0 }; // enabled, boot processor
        processors.extend_from_slice(&[PROCESSOR, p.apic_id as u8, APIC_VERSION, flags]);
        processors.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
        processors.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        processors.extend_from_slice(&[0; 8]);
    }
    entries.push([BUS, 0, b'I', b'S', b'A', b' ', b' ', b' ']);
    let addr = (IOAPIC_ADDR as u32).to_le_bytes();
    entries.push([IOAPIC, IOAPIC_ID, IOAPIC_VERSION, 1, addr[0], addr[1], addr[2], addr[3]]);
    for irq in 0..ISA_IRQS {
        // Flags 0: polarity and trigger as the ISA bus has them.
        entries.push([INTSRC, INT, 0, 0, 0, irq, IOAPIC_ID, irq]);
    }
    // LINT1 of every processor is the NMI line, as in the MADT; no 8259 on LINT0.
    entries.push([LINTSRC, NMI, 0, 0, 0, 0, 0xff, 1]);

    let config_at = at + 16;
    let mut config = Vec::new();
    config.extend_from_slice(b"PCMP");
    config.extend_from_slice(&[0, 0, SPEC_1_4, 0]); // length and checksum set below
    config.extend_from_slice(b"KTSTR   ");
    config.extend_from_slice(b"KTSTRVMM    ");
    config.extend_from_slice(&0u32.to_le_bytes()); // no OEM table
    config.extend_from_slice(&0u16.to_le_bytes());
    config.extend_from_slice(&((places.len() + entries.len()) as u16).to_le_bytes());
    config.extend_from_slice(&(LAPIC_ADDR as u32).to_le_bytes());
    config.extend_from_slice(&0u32.to_le_bytes()); // no extended table
    config.extend_from_slice(&processors);
    entries.iter().for_each(|e| config.extend_from_slice(e));
    let len = config.len() as u16;
    config[4..6].copy_from_slice(&len.to_le_bytes());
    set_checksum(&mut config, 7);

    let mut out = Vec::with_capacity(16 + config.len());
    out.extend_from_slice(b"_MP_");
    out.extend_from_slice(&config_at.to_le_bytes());
    // Length in 16-byte units, spec, checksum, feature bytes: 0 is "the
    // configuration table is present", and no IMCR (virtual wire mode).
    out.extend_from_slice(&[1, SPEC_1_4, 0, 0, 0, 0, 0, 0]);
    set_checksum(&mut out, 10);
    out.extend_from_slice(&config);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::x86_64::acpi::checksum_ok;
    use crate::arch::x86_64::layout::{BIOS_END, MPTABLE_START};

    fn topo(s: &str) -> CpuTopo {
        CpuTopo::new(&s.parse().unwrap()).unwrap()
    }

    #[test]
    fn the_floating_pointer_leads_to_a_checksummed_table() {
        let t = topo("1n2l2c1t");
        let at = 0xf0000;
        let b = build(&t, at);
        assert_eq!(&b[..4], b"_MP_");
        assert!(checksum_ok(&b[..16]));
        assert_eq!((b[8], b[9], b[11]), (1, 4, 0), "16 bytes, spec 1.4, table present");
        let config_at = u32::from_le_bytes(b[4..8].try_into().unwrap());
        let c = &b[(config_at - at) as usize..];
        assert_eq!(&c[..4], b"PCMP");
        let len = u16::from_le_bytes([c[4], c[5]]) as usize;
        assert_eq!(len, c.len());
        assert!(checksum_ok(c));
        assert_eq!(u32::from_le_bytes(c[36..40].try_into().unwrap()), LAPIC_ADDR as u32);
        // 4 processors, the bus, the IOAPIC, 16 ISA IRQs, the NMI line.
        assert_eq!(u16::from_le_bytes([c[34], c[35]]), 4 + 1 + 1 + 16 + 1);
        assert_eq!(len, 44 + 4 * 20 + 19 * 8);
    }

    #[test]
    fn processors_carry_the_topology_apic_ids_and_one_boot_cpu() {
        // 3 cores per LLC: APIC ids have holes (0 1 2, 4 5 6).
        let t = topo("1n2l3c1t");
        let b = build(&t, 0xf0000);
        let c = &b[16..];
        let cpus: Vec<&[u8]> = c[44..].chunks(20).take(6).collect();
        assert!(cpus.iter().all(|e| e[0] == PROCESSOR));
        let ids: Vec<u32> = cpus.iter().map(|e| u32::from(e[1])).collect();
        let want: Vec<u32> = t.places().iter().map(|p| p.apic_id).collect();
        assert_eq!(ids, want);
        let boot: Vec<usize> = (0..6).filter(|&i| cpus[i][3] & 2 != 0).collect();
        assert_eq!(boot, [0]);
        let ioapic = &c[44 + 6 * 20 + 8..][..8];
        assert_eq!(ioapic[0], IOAPIC);
        assert_eq!(u32::from_le_bytes(ioapic[4..8].try_into().unwrap()), IOAPIC_ADDR as u32);
    }

    #[test]
    fn the_largest_topology_fits_the_bios_area() {
        let len = build(&topo("1n1l254c1t"), MPTABLE_START as u32).len();
        assert_eq!(len, 16 + 44 + 254 * 20 + 19 * 8);
        assert!(MPTABLE_START + len as u64 <= BIOS_END);
    }
}
