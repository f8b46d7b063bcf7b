//! ACPI tables: RSDP (in the BIOS area the kernel scans), XSDT, FADT
//! (hardware-reduced), DSDT (the devices, see `aml`), MADT (one LAPIC per
//! vCPU, the IOAPIC), and with several nodes SRAT and SLIT.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::aml;
use super::layout::*;
use super::topo::CpuTopo;

const OEM_ID: &[u8; 6] = b"KTSTR ";
const OEM_TABLE_ID: &[u8; 8] = b"KTSTRVMM";
const CREATOR_ID: &[u8; 4] = b"KTST";

/// Makes the bytes of `t` sum to zero by setting the byte at `at`.
pub fn set_checksum(t: &mut [u8], at: usize) {
    t[at] = 0;
    let sum = t.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    t[at] = sum.wrapping_neg();
}

pub fn checksum_ok(t: &[u8]) -> bool {
    t.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
}

/// A table: the standard 36-byte header, then `body`; length and checksum set.
pub fn table(sig: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(36 + body.len());
    t.extend_from_slice(sig);
    t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0);
    t.extend_from_slice(OEM_ID);
    t.extend_from_slice(OEM_TABLE_ID);
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(CREATOR_ID);
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(body);
    set_checksum(&mut t, 9);
    t
}

pub fn rsdp(xsdt: u64) -> Vec<u8> {
    let mut r = Vec::with_capacity(36);
    r.extend_from_slice(b"RSD PTR ");
    r.push(0);
    r.extend_from_slice(OEM_ID);
    r.push(2); // ACPI 2.0+: use the XSDT
    r.extend_from_slice(&0u32.to_le_bytes());
    r.extend_from_slice(&36u32.to_le_bytes());
    r.extend_from_slice(&xsdt.to_le_bytes());
    r.extend_from_slice(&[0; 4]);
    set_checksum(&mut r[..20], 8);
    set_checksum(&mut r, 32);
    r
}

pub fn xsdt(tables: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = tables.iter().flat_map(|a| a.to_le_bytes()).collect();
    table(b"XSDT", 1, &body)
}

const FADT_F_PWR_BUTTON: u32 = 1 << 4;
const FADT_F_SLP_BUTTON: u32 = 1 << 5;
const FADT_F_HW_REDUCED_ACPI: u32 = 1 << 20;
const IAPC_VGA_NOT_PRESENT: u16 = 1 << 2;
const IAPC_CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;

/// FADT revision 6.5: hardware-reduced, so no PM blocks, SCI or PIC; no RTC.
pub fn fadt(dsdt: u64) -> Vec<u8> {
    let mut b = vec![0u8; 276 - 36];
    let at = |off: usize| off - 36;
    b[at(40)..at(44)].copy_from_slice(&(dsdt as u32).to_le_bytes());
    b[at(109)..at(111)]
        .copy_from_slice(&(IAPC_VGA_NOT_PRESENT | IAPC_CMOS_RTC_NOT_PRESENT).to_le_bytes());
    let flags = FADT_F_HW_REDUCED_ACPI | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON;
    b[at(112)..at(116)].copy_from_slice(&flags.to_le_bytes());
    b[at(131)] = 5; // minor version
    b[at(140)..at(148)].copy_from_slice(&dsdt.to_le_bytes());
    b[at(268)..at(276)].copy_from_slice(b"KTSTRVMM");
    table(b"FACP", 6, &b)
}

/// COM1, COM2, the virtio-mmio console and `disks` virtio-mmio disks.
pub fn dsdt(disks: usize) -> Vec<u8> {
    use aml::*;
    let com = |n: &str, uid: u64, port: u16, irq: u8| {
        device(
            n,
            &[
                name("_HID", eisa_id("PNP0501")),
                name("_UID", integer(uid)),
                name("_CRS", resource_template(&[io(port, 8), irq_no_flags(irq)])),
            ],
        )
    };
    let virtio = |uid: usize, base: u64, irq: u32| {
        device(
            &format!("VR{uid:02}"),
            &[
                name("_HID", string("LNRO0005")),
                name("_UID", integer(uid as u64)),
                name(
                    "_CRS",
                    resource_template(&[
                        memory32_fixed(base as u32, VIRTIO_MMIO_SIZE as u32),
                        interrupt(irq),
                    ]),
                ),
            ],
        )
    };
    let mut devices = vec![
        com("COM1", 1, COM1_PORT, COM1_IRQ as u8),
        com("COM2", 2, COM2_PORT, COM2_IRQ as u8),
        virtio(0, VIRTIO_MMIO_BASE, VIRTIO_CONSOLE_IRQ),
    ];
    for i in 0..disks.min(MAX_DISKS) {
        let (base, irq) = disk_slot(i);
        devices.push(virtio(i + 1, base, irq));
    }
    let sb = root_scope("_SB", &devices);
    table(b"DSDT", 2, &sb)
}

pub const IOAPIC_ID: u8 = 0;

pub fn madt(t: &CpuTopo) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(LAPIC_ADDR as u32).to_le_bytes());
    // No dual 8259 (hardware-reduced).
    b.extend_from_slice(&0u32.to_le_bytes());
    // Listed in CPU order: Linux numbers CPUs in MADT order.
    for p in t.places() {
        b.extend_from_slice(&[0, 8, p.cpu as u8, p.apic_id as u8]);
        b.extend_from_slice(&1u32.to_le_bytes()); // enabled
    }
    b.extend_from_slice(&[1, 12, IOAPIC_ID, 0]);
    b.extend_from_slice(&(IOAPIC_ADDR as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // GSI base
                                              // LINT1 of every processor is the NMI line.
    b.extend_from_slice(&[4, 6, 0xff, 0, 0, 1]);
    table(b"APIC", 5, &b)
}

/// A node's RAM, as guest-physical (base, length) ranges.
pub type NodeRam = Vec<(u64, u64)>;

pub fn srat(t: &CpuTopo, nodes: &[NodeRam]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&1u32.to_le_bytes()); // reserved, 1 for compatibility
    b.extend_from_slice(&0u64.to_le_bytes());
    for p in t.places() {
        let d = p.node.to_le_bytes();
        b.extend_from_slice(&[0, 16, d[0], p.apic_id as u8]);
        b.extend_from_slice(&1u32.to_le_bytes()); // enabled
        b.extend_from_slice(&[0, d[1], d[2], d[3]]); // SAPIC EID, domain bits 8..31
        b.extend_from_slice(&0u32.to_le_bytes()); // clock domain
    }
    for (node, ranges) in nodes.iter().enumerate() {
        for &(base, len) in ranges {
            b.extend_from_slice(&[1, 40]);
            b.extend_from_slice(&(node as u32).to_le_bytes());
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&base.to_le_bytes());
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&1u32.to_le_bytes()); // enabled
            b.extend_from_slice(&0u64.to_le_bytes());
        }
    }
    table(b"SRAT", 3, &b)
}

/// Distances: 10 to itself, 20 to any other node.
pub fn slit(nodes: u32) -> Vec<u8> {
    let mut b = u64::from(nodes).to_le_bytes().to_vec();
    for i in 0..nodes {
        for j in 0..nodes {
            b.push(if i == j { 10 } else { 20 });
        }
    }
    table(b"SLIT", 1, &b)
}

/// All tables, each with its guest address: RSDP first at `ACPI_START`.
pub fn build(t: &CpuTopo, nodes: &[NodeRam], disks: usize) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut next = ACPI_START + 64;
    let mut place = |bytes: Vec<u8>, out: &mut Vec<(u64, Vec<u8>)>| {
        let addr = next;
        next = (next + bytes.len() as u64 + 15) & !15;
        out.push((addr, bytes));
        addr
    };
    let dsdt_addr = place(dsdt(disks), &mut out);
    let mut listed = vec![place(fadt(dsdt_addr), &mut out), place(madt(t), &mut out)];
    if nodes.len() > 1 {
        listed.push(place(srat(t, nodes), &mut out));
        listed.push(place(slit(nodes.len() as u32), &mut out));
    }
    let xsdt_addr = place(xsdt(&listed), &mut out);
    if next > ACPI_END {
        anyhow::bail!("ACPI tables ({} bytes) overflow their BIOS area", next - ACPI_START);
    }
    out.insert(0, (ACPI_START, rsdp(xsdt_addr)));
    Ok(out)
}

pub fn write(mem: &GuestMemoryMmap, tables: &[(u64, Vec<u8>)]) -> anyhow::Result<()> {
    for (addr, bytes) in tables {
        mem.write_slice(bytes, GuestAddress(*addr))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(s: &str) -> CpuTopo {
        CpuTopo::new(&s.parse().unwrap()).unwrap()
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    /// (type, bytes) of each sub-table after `skip` bytes of a table.
    fn entries(t: &[u8], skip: usize) -> Vec<(u8, &[u8])> {
        let mut out = Vec::new();
        let mut i = skip;
        while i < t.len() {
            let len = t[i + 1] as usize;
            out.push((t[i], &t[i..i + len]));
            i += len;
        }
        out
    }

    fn nodes2() -> Vec<NodeRam> {
        vec![vec![(0, 512 << 20)], vec![(512 << 20, 512 << 20)]]
    }

    #[test]
    fn every_checksum_is_right() {
        let tables = build(&topo("2n4l2c1t"), &nodes2(), 0).unwrap();
        assert_eq!(tables.len(), 7, "RSDP DSDT FADT MADT SRAT SLIT XSDT");
        for (addr, t) in &tables {
            assert!(checksum_ok(t), "table at {addr:#x}");
            if &t[..4] != b"RSD " {
                assert_eq!(u32_at(t, 4) as usize, t.len());
            }
        }
        let r = &tables[0].1;
        assert_eq!(&r[..8], b"RSD PTR ");
        assert!(checksum_ok(&r[..20]));
        let (xsdt_addr, x) = tables.last().unwrap();
        assert_eq!(u64_at(r, 24), *xsdt_addr);
        assert_eq!(&x[..4], b"XSDT");
        let listed: Vec<u64> = (36..x.len()).step_by(8).map(|o| u64_at(x, o)).collect();
        let sigs: Vec<&[u8]> =
            listed.iter().map(|a| &tables.iter().find(|(t, _)| t == a).unwrap().1[..4]).collect();
        assert_eq!(sigs, [b"FACP", b"APIC", b"SRAT", b"SLIT"]);
        assert!(tables.iter().all(|(a, t)| a + t.len() as u64 <= ACPI_END));
    }

    #[test]
    fn one_node_has_no_srat() {
        let tables = build(&topo("1n1l1c1t"), &[vec![(0, 256 << 20)]], 0).unwrap();
        assert!(!tables.iter().any(|(_, t)| &t[..4] == b"SRAT" || &t[..4] == b"SLIT"));
    }

    #[test]
    fn fadt_is_hardware_reduced_and_points_at_the_dsdt() {
        let f = fadt(0xe0040);
        assert_eq!(f.len(), 276);
        assert_ne!(u32_at(&f, 112) & FADT_F_HW_REDUCED_ACPI, 0);
        assert_eq!((u32_at(&f, 40), u64_at(&f, 140)), (0xe0040, 0xe0040));
        assert_eq!(f[8], 6);
    }

    #[test]
    fn madt_lists_apic_ids_in_cpu_order() {
        let t = topo("1n2l3c1t");
        let m = madt(&t);
        assert_eq!(u32_at(&m, 36), LAPIC_ADDR as u32);
        let lapics: Vec<(u8, u8)> =
            entries(&m, 44).iter().filter(|(ty, _)| *ty == 0).map(|(_, e)| (e[2], e[3])).collect();
        assert_eq!(lapics, [(0, 0), (1, 1), (2, 2), (3, 4), (4, 5), (5, 6)]);
        let ioapic: Vec<&[u8]> =
            entries(&m, 44).iter().filter(|(ty, _)| *ty == 1).map(|(_, e)| *e).collect();
        assert_eq!(ioapic.len(), 1);
        assert_eq!(u32_at(ioapic[0], 4), IOAPIC_ADDR as u32);
    }

    #[test]
    fn srat_puts_cpus_and_memory_in_nodes() {
        let t = topo("2n4l2c1t");
        let s = srat(&t, &nodes2());
        let e = entries(&s, 48);
        let cpus: Vec<(u8, u8)> =
            e.iter().filter(|(ty, _)| *ty == 0).map(|(_, x)| (x[3], x[2])).collect();
        assert_eq!(cpus.len(), 16);
        for (apic, node) in cpus {
            assert_eq!(node, if apic < 8 { 0 } else { 1 });
        }
        let mem: Vec<(u32, u64, u64)> = e
            .iter()
            .filter(|(ty, _)| *ty == 1)
            .map(|(_, x)| (u32_at(x, 2), u64_at(x, 8), u64_at(x, 16)))
            .collect();
        assert_eq!(mem, [(0, 0, 512 << 20), (1, 512 << 20, 512 << 20)]);
    }

    #[test]
    fn slit_distances() {
        let s = slit(2);
        assert_eq!(u64_at(&s, 36), 2);
        assert_eq!(&s[44..], [10, 20, 20, 10]);
    }

    #[test]
    fn dsdt_describes_the_serial_ports_the_console_and_the_disks() {
        let d = dsdt(2);
        let find = |needle: &[u8]| d.windows(needle.len()).any(|w| w == needle);
        assert!(find(b"COM1") && find(b"COM2") && find(b"LNRO0005"));
        assert!(find(&aml::memory32_fixed(VIRTIO_MMIO_BASE as u32, 0x1000)));
        assert!(find(&aml::interrupt(VIRTIO_CONSOLE_IRQ)));
        assert!(find(&aml::io(0x2f8, 8)) && find(&aml::irq_no_flags(3)));
        for i in 0..2 {
            let (base, irq) = disk_slot(i);
            assert!(find(format!("VR0{}", i + 1).as_bytes()));
            assert!(find(&aml::memory32_fixed(base as u32, 0x1000)) && find(&aml::interrupt(irq)));
        }
        assert!(!find(b"VR03"), "only the disks asked for");
    }
}
