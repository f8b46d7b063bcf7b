//! The state the boot vCPU starts the kernel's 64-bit entry in: long mode with
//! paging on, a flat GDT, identity-mapped low 4 GiB, `rsi` at the zero page;
//! plus what every vCPU needs (MSRs, FPU, LAPIC LINT0/LINT1).

use kvm_bindings::{
    kvm_fpu, kvm_lapic_state, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, Msrs,
};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::*;

const X86_CR0_PE: u64 = 1 << 0;
const X86_CR0_ET: u64 = 1 << 4;
const X86_CR0_PG: u64 = 1 << 31;
const X86_CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// GDT selectors of the boot GDT below.
const CODE_SEL: u16 = 0x08;
const DATA_SEL: u16 = 0x10;
const TSS_SEL: u16 = 0x18;

/// A GDT entry from flags (access byte + granularity nibble), base and limit.
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << 32)
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
        | ((limit as u64 & 0x000f_0000) << 32)
        | ((flags as u64 & 0xf0ff) << 40)
}

/// null, 64-bit code, data, TSS.
pub const GDT: [u64; 4] = [
    gdt_entry(0, 0, 0),
    gdt_entry(0xa09b, 0, 0xfffff),
    gdt_entry(0xc093, 0, 0xfffff),
    gdt_entry(0x808b, 0, 0xfffff),
];

/// The `kvm_segment` a GDT entry describes, loaded with `sel`.
pub fn segment(entry: u64, sel: u16) -> kvm_segment {
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let raw_limit = (entry & 0xffff) | ((entry >> 32) & 0xf_0000);
    let g = ((entry >> 55) & 1) as u8;
    // With 4 KiB granularity the limit counts pages.
    let limit = if g == 1 { (raw_limit << 12) | 0xfff } else { raw_limit };
    kvm_segment {
        base,
        limit: limit as u32,
        selector: sel,
        type_: ((entry >> 40) & 0xf) as u8,
        present: ((entry >> 47) & 1) as u8,
        dpl: ((entry >> 45) & 3) as u8,
        db: ((entry >> 54) & 1) as u8,
        s: ((entry >> 44) & 1) as u8,
        l: ((entry >> 53) & 1) as u8,
        g,
        avl: ((entry >> 52) & 1) as u8,
        unusable: if (entry >> 47) & 1 == 1 { 0 } else { 1 },
        padding: 0,
    }
}

/// Writes the GDT, an empty IDT and identity page tables (4 GiB, 2 MiB pages).
pub fn write_boot_tables(mem: &GuestMemoryMmap) -> anyhow::Result<()> {
    for (i, e) in GDT.iter().enumerate() {
        mem.write_obj(*e, GuestAddress(BOOT_GDT + 8 * i as u64))?;
    }
    mem.write_obj(0u64, GuestAddress(BOOT_IDT))?;
    // PML4[0] -> PDPT; PDPT[0..4] -> four PDs; each PD maps 1 GiB.
    mem.write_obj(PDPT | 0x3, GuestAddress(PML4))?;
    for g in 0..4u64 {
        mem.write_obj((PD + g * 0x1000) | 0x3, GuestAddress(PDPT + g * 8))?;
        for i in 0..512u64 {
            let addr = (g << 30) | (i << 21);
            // present | writable | page size (2 MiB)
            mem.write_obj(addr | 0x83, GuestAddress(PD + g * 0x1000 + i * 8))?;
        }
    }
    Ok(())
}

/// Long-mode segment and control registers for the boot vCPU.
pub fn long_mode_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    let code = segment(GDT[1], CODE_SEL);
    let data = segment(GDT[2], DATA_SEL);
    let tss = segment(GDT[3], TSS_SEL);
    sregs.gdt.base = BOOT_GDT;
    sregs.gdt.limit = (std::mem::size_of_val(&GDT) - 1) as u16;
    sregs.idt.base = BOOT_IDT;
    sregs.idt.limit = 7;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;
    sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
    sregs.cr3 = PML4;
    sregs.cr4 = X86_CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
    sregs
}

/// General registers at the 64-bit entry: `rsi` points at the zero page.
pub fn entry_regs(entry: u64) -> kvm_regs {
    kvm_regs {
        rflags: 0x2,
        rip: entry,
        rsp: BOOT_STACK,
        rbp: BOOT_STACK,
        rsi: ZERO_PAGE,
        ..Default::default()
    }
}

pub fn setup_boot_vcpu(vcpu: &VcpuFd, entry: u64) -> anyhow::Result<()> {
    let sregs = vcpu.get_sregs()?;
    vcpu.set_sregs(&long_mode_sregs(sregs))?;
    vcpu.set_regs(&entry_regs(entry))?;
    Ok(())
}

const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MISC_ENABLE_FAST_STRING: u64 = 1;

/// MSRs every vCPU starts with (as Firecracker): syscall MSRs cleared, fast strings on.
pub fn boot_msrs() -> Vec<kvm_msr_entry> {
    let zero = [
        MSR_IA32_SYSENTER_CS,
        MSR_IA32_SYSENTER_ESP,
        MSR_IA32_SYSENTER_EIP,
        MSR_STAR,
        MSR_CSTAR,
        MSR_KERNEL_GS_BASE,
        MSR_SYSCALL_MASK,
        MSR_LSTAR,
        MSR_IA32_TSC,
    ];
    let mut v: Vec<kvm_msr_entry> =
        zero.iter().map(|&index| kvm_msr_entry { index, data: 0, ..Default::default() }).collect();
    v.push(kvm_msr_entry {
        index: MSR_IA32_MISC_ENABLE,
        data: MISC_ENABLE_FAST_STRING,
        ..Default::default()
    });
    v
}

pub fn setup_msrs(vcpu: &VcpuFd) -> anyhow::Result<()> {
    let entries = boot_msrs();
    let msrs = Msrs::from_entries(&entries).map_err(|e| anyhow::anyhow!("MSR list: {e:?}"))?;
    let n = vcpu.set_msrs(&msrs)?;
    if n != entries.len() {
        anyhow::bail!("KVM set {n} of {} MSRs", entries.len());
    }
    Ok(())
}

pub fn setup_fpu(vcpu: &VcpuFd) -> anyhow::Result<()> {
    vcpu.set_fpu(&kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() })?;
    Ok(())
}

const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

fn get_reg(l: &kvm_lapic_state, off: usize) -> u32 {
    let b = &l.regs[off..off + 4];
    u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8])
}

fn set_reg(l: &mut kvm_lapic_state, off: usize, v: u32) {
    for (i, b) in v.to_le_bytes().iter().enumerate() {
        l.regs[off + i] = *b as _;
    }
}

const APIC_LVT_MASKED: u32 = 1 << 16;

/// The in-service (ISR) and request (IRR) registers: 256 bits each, in
/// eight 32-bit registers 16 bytes apart.
pub const APIC_ISR: usize = 0x100;
pub const APIC_IRR: usize = 0x200;

/// The vectors whose bit is set in the 256-bit register at `base`.
pub fn lapic_vectors(l: &kvm_lapic_state, base: usize) -> Vec<u8> {
    (0..8usize)
        .flat_map(|i| {
            let word = get_reg(l, base + i * 0x10);
            (0..32u32).filter(move |b| word & (1 << b) != 0).map(move |b| (i as u32 * 32 + b) as u8)
        })
        .collect()
}

/// LINT0 = ExtINT but masked, LINT1 = NMI.
///
/// Our machine has no 8259 (the MADT says so and ACPI is hardware-reduced,
/// so Linux never programs one), yet KVM's in-kernel PIC exists, every GSI
/// below 16 reaches it too, and at creation it is unmasked with vector base
/// 0. With LINT0 unmasked ExtINT (what a PC BIOS leaves and Linux then keeps
/// on the boot CPU), a device interrupt could arrive as an exception vector
/// (COM1's IRQ 4 as #OF). Masked, Linux keeps it masked and KVM never
/// delivers the PIC's output.
pub fn set_lint(l: &mut kvm_lapic_state) {
    let mode = |v: u32, m: u32| (v & !0x700) | (m << 8);
    let lvt0 = get_reg(l, APIC_LVT0);
    set_reg(l, APIC_LVT0, mode(lvt0, APIC_MODE_EXTINT) | APIC_LVT_MASKED);
    let lvt1 = get_reg(l, APIC_LVT1);
    set_reg(l, APIC_LVT1, mode(lvt1, APIC_MODE_NMI));
}

pub fn setup_lapic(vcpu: &VcpuFd) -> anyhow::Result<()> {
    let mut l = vcpu.get_lapic()?;
    set_lint(&mut l);
    vcpu.set_lapic(&l)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    #[test]
    fn gdt_code_segment_is_64_bit() {
        let cs = segment(GDT[1], CODE_SEL);
        assert_eq!((cs.l, cs.db, cs.present, cs.s, cs.type_, cs.g), (1, 0, 1, 1, 0xb, 1));
        assert_eq!((cs.base, cs.limit), (0, 0xffff_ffff));
        let ds = segment(GDT[2], DATA_SEL);
        assert_eq!((ds.l, ds.db, ds.type_), (0, 1, 3));
        assert_eq!(segment(GDT[0], 0).unusable, 1);
        assert_eq!(GDT[1], 0x00af_9b00_0000_ffff);
    }

    #[test]
    fn sregs_enable_long_mode() {
        let s = long_mode_sregs(kvm_sregs::default());
        assert_eq!(s.cr0 & (X86_CR0_PE | X86_CR0_PG), X86_CR0_PE | X86_CR0_PG);
        assert_eq!((s.cr3, s.cr4 & X86_CR4_PAE, s.efer), (PML4, X86_CR4_PAE, EFER_LME | EFER_LMA));
        assert_eq!((s.cs.selector, s.ss.selector, s.gdt.limit), (CODE_SEL, DATA_SEL, 31));
        let r = entry_regs(0x100200);
        assert_eq!((r.rip, r.rsi, r.rflags), (0x100200, ZERO_PAGE, 2));
    }

    #[test]
    fn page_tables_identity_map_4g() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        write_boot_tables(&mem).unwrap();
        let pml4: u64 = mem.read_obj(GuestAddress(PML4)).unwrap();
        assert_eq!(pml4, PDPT | 3);
        let pdpt3: u64 = mem.read_obj(GuestAddress(PDPT + 24)).unwrap();
        assert_eq!(pdpt3, (PD + 0x3000) | 3);
        // The last 2 MiB page below 4 GiB.
        let last: u64 = mem.read_obj(GuestAddress(PD + 0x3000 + 511 * 8)).unwrap();
        assert_eq!(last, 0xffe0_0000 | 0x83);
    }

    #[test]
    fn lint_modes() {
        let mut l = kvm_lapic_state::default();
        set_lint(&mut l);
        assert_eq!(get_reg(&l, APIC_LVT0), 0x0001_0700, "ExtINT, masked");
        assert_eq!(get_reg(&l, APIC_LVT1), 0x400, "NMI");
    }

    #[test]
    fn lapic_vectors_are_read_bit_by_bit_across_the_eight_registers() {
        let mut l = kvm_lapic_state::default();
        set_reg(&mut l, APIC_IRR, 1 << 5);
        set_reg(&mut l, APIC_IRR + 7 * 0x10, 1 << 12); // vector 236, the local timer
        set_reg(&mut l, APIC_ISR + 0x10, 1);
        assert_eq!(lapic_vectors(&l, APIC_IRR), [5, 236]);
        assert_eq!(lapic_vectors(&l, APIC_ISR), [32]);
        assert!(lapic_vectors(&kvm_lapic_state::default(), APIC_IRR).is_empty());
    }

    #[test]
    fn msrs_include_misc_enable() {
        let m = boot_msrs();
        assert!(m.iter().any(|e| e.index == MSR_IA32_MISC_ENABLE && e.data == 1));
    }
}
