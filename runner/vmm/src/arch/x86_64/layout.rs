//! Guest physical addresses. Low memory follows the PC layout the Linux boot
//! protocol expects; the 32-bit MMIO gap holds the virtio-mmio device, the
//! IOAPIC and the LAPIC, and RAM beyond it continues at 4 GiB.

use vm_memory::GuestAddress;

/// The GDT (four entries) the 64-bit entry runs under.
pub const BOOT_GDT: u64 = 0x500;
/// An empty IDT: the kernel installs its own before enabling interrupts.
pub const BOOT_IDT: u64 = 0x520;
/// The boot stack grows down from here.
pub const BOOT_STACK: u64 = 0x8ff0;
/// `struct boot_params` (the "zero page").
pub const ZERO_PAGE: u64 = 0x7000;
/// Identity page tables: PML4, one PDPT, four PDs (2 MiB pages, first 4 GiB).
pub const PML4: u64 = 0x9000;
pub const PDPT: u64 = 0xa000;
pub const PD: u64 = 0xb000;
/// The kernel command line (NUL-terminated).
pub const CMDLINE: u64 = 0x20000;
pub const CMDLINE_MAX: usize = 4096;
/// Start of the EBDA: RAM below it is usable.
pub const EBDA_START: u64 = 0x9fc00;
/// The BIOS area, reserved in the e820 map, where the kernel searches for
/// the ACPI RSDP (all of it) and the MP floating pointer (its second half):
/// the RSDP and the ACPI tables fill the first half, the MP table the second.
pub const ACPI_START: u64 = 0xe0000;
pub const ACPI_END: u64 = 0xf0000;
pub const MPTABLE_START: u64 = 0xf0000;
pub const BIOS_END: u64 = 0x100000;
/// The protected-mode kernel is loaded here (`code32_start`).
pub const HIMEM_START: u64 = 0x100000;

/// RAM below 4 GiB ends here; [MMIO_GAP_START, 4 GiB) is devices.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// The virtio-console's virtio-mmio window and its IOAPIC pin.
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
pub const VIRTIO_CONSOLE_IRQ: u32 = 5;
/// Disks: windows after the console's, on ISA pins nothing else uses here
/// (hardware-reduced ACPI, no PIC, RTC or IDE), edge-triggered like it.
pub const MAX_DISKS: usize = 8;
const DISK_IRQS: [u32; MAX_DISKS] = [6, 7, 9, 10, 11, 12, 13, 14];

/// Disk `i`'s virtio-mmio window and IOAPIC pin (`i < MAX_DISKS`).
pub fn disk_slot(i: usize) -> (u64, u32) {
    (VIRTIO_MMIO_BASE + (i as u64 + 1) * VIRTIO_MMIO_SIZE, DISK_IRQS[i])
}
pub const IOAPIC_ADDR: u64 = 0xfec0_0000;
pub const LAPIC_ADDR: u64 = 0xfee0_0000;
/// KVM needs three pages for the TSS (VMX only) and one for the identity map.
pub const KVM_TSS_ADDR: u64 = 0xfffb_d000;
pub const KVM_IDENTITY_MAP_ADDR: u64 = 0xfffb_c000;

/// COM1 (kernel console) and COM2 (fallback data channel).
pub const COM1_PORT: u16 = 0x3f8;
pub const COM1_IRQ: u32 = 4;
pub const COM2_PORT: u16 = 0x2f8;
pub const COM2_IRQ: u32 = 3;
/// The i8042 controller's data and command ports.
pub const I8042_PORT: u16 = 0x60;
pub const I8042_LEN: u16 = 5;

/// The guest RAM ranges for `bytes` of memory: below the gap, then above 4 GiB.
pub fn ram_ranges(bytes: u64) -> Vec<(GuestAddress, usize)> {
    let low = bytes.min(MMIO_GAP_START);
    let mut ranges = vec![(GuestAddress(0), low as usize)];
    if bytes > low {
        ranges.push((GuestAddress(MMIO_GAP_END), (bytes - low) as usize));
    }
    ranges
}

/// Maps an offset into "all RAM, laid end to end" to its guest address: used to
/// cut RAM into NUMA nodes that may straddle the gap.
pub fn ram_offset_to_addr(offset: u64) -> u64 {
    if offset < MMIO_GAP_START {
        offset
    } else {
        offset - MMIO_GAP_START + MMIO_GAP_END
    }
}

/// The guest-physical ranges covering RAM offsets [start, end).
pub fn ram_span(start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if start < end.min(MMIO_GAP_START) {
        out.push((start, end.min(MMIO_GAP_START) - start));
    }
    if end > MMIO_GAP_START {
        let s = start.max(MMIO_GAP_START);
        out.push((ram_offset_to_addr(s), end - s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_memory_is_one_range() {
        assert_eq!(ram_ranges(256 << 20), vec![(GuestAddress(0), 256 << 20)]);
    }

    #[test]
    fn large_memory_skips_the_gap() {
        let r = ram_ranges(4 << 30);
        assert_eq!(r, vec![(GuestAddress(0), 3 << 30), (GuestAddress(4 << 30), 1 << 30)]);
        assert_eq!(ram_span(0, 4 << 30), vec![(0, 3 << 30), (4 << 30, 1 << 30)]);
        assert_eq!(ram_span(2 << 30, 4 << 30), vec![(2 << 30, 1 << 30), (4 << 30, 1 << 30)]);
        assert_eq!(ram_span(3 << 30, 4 << 30), vec![(4 << 30, 1 << 30)]);
        assert_eq!(ram_span(0, 1 << 30), vec![(0, 1 << 30)]);
    }

    #[test]
    fn devices_sit_in_the_gap() {
        let last_disk = disk_slot(MAX_DISKS - 1).0 + VIRTIO_MMIO_SIZE;
        assert!(last_disk < IOAPIC_ADDR);
        for a in [VIRTIO_MMIO_BASE, IOAPIC_ADDR, LAPIC_ADDR, KVM_TSS_ADDR] {
            assert!((MMIO_GAP_START..MMIO_GAP_END).contains(&a));
        }
        assert!(CMDLINE + CMDLINE_MAX as u64 <= EBDA_START);
    }
}
