//! Loading the kernel: a bzImage (the compressed image with its setup header)
//! or an uncompressed `vmlinux` ELF, which skips the in-guest decompression as
//! Firecracker's default boot does. Both start at a 64-bit entry point with
//! the zero page in RSI.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};
use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::{BzImage, Elf, KernelLoader};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::layout::{CMDLINE_MAX, HIMEM_START};

/// xloadflags: the kernel has a 64-bit entry point at `code32_start + 0x200`.
const XLF_KERNEL_64: u16 = 1 << 0;
/// Boot protocol 2.06 introduced `cmdline_size`.
const MIN_PROTOCOL: u16 = 0x0206;
const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
/// The physical alignment a non-relocatable x86_64 kernel is built for.
const KERNEL_ALIGNMENT: u32 = 0x0100_0000;

/// Which image format was booted (reported, and it decides the entry point).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    BzImage,
    Vmlinux,
}

/// What the vCPU needs to start the kernel.
#[derive(Clone, Copy, Debug)]
pub struct KernelEntry {
    pub kind: ImageKind,
    pub entry: GuestAddress,
    /// The bzImage's own header, or the one a vmlinux implies (`elf_header`).
    pub header: setup_header,
    /// Nothing the boot loader places (the initrd) may start below this.
    pub end: u64,
}

/// Loads a bzImage at `HIMEM_START`, or a vmlinux at its physical addresses,
/// telling them apart by the ELF magic.
pub fn load_kernel(mem: &GuestMemoryMmap, kernel: &Path) -> anyhow::Result<KernelEntry> {
    let mut f = File::open(kernel).with_context(|| format!("open kernel {}", kernel.display()))?;
    let mut magic = [0u8; 4];
    // Both loaders seek to what they read first, so the file is not rewound.
    let is_elf = f.read_exact(&mut magic).is_ok() && magic == ELF_MAGIC;
    if is_elf {
        let res = Elf::load(mem, None, &mut f, Some(GuestAddress(HIMEM_START)))
            .map_err(|e| anyhow::anyhow!("load vmlinux {}: {e}", kernel.display()))?;
        return Ok(KernelEntry {
            kind: ImageKind::Vmlinux,
            entry: res.kernel_load,
            header: elf_header(),
            end: res.kernel_end,
        });
    }
    let res = BzImage::load(mem, None, &mut f, Some(GuestAddress(HIMEM_START)))
        .map_err(|e| anyhow::anyhow!("load bzImage {}: {e}", kernel.display()))?;
    let header = res.setup_header.context("bzImage without a setup header")?;
    check_header(&header)?;
    let end = decompression_end(&header);
    // The 64-bit entry point is 0x200 past the 32-bit one.
    Ok(KernelEntry {
        kind: ImageKind::BzImage,
        entry: GuestAddress(res.kernel_load.0 + 0x200),
        header,
        end,
    })
}

pub fn check_header(h: &setup_header) -> anyhow::Result<()> {
    let (version, xloadflags) = (h.version, h.xloadflags);
    if version < MIN_PROTOCOL {
        bail!("boot protocol {version:#x} is too old: need {MIN_PROTOCOL:#x}");
    }
    if xloadflags & XLF_KERNEL_64 == 0 {
        bail!("the kernel has no 64-bit entry point (xloadflags {xloadflags:#x})");
    }
    Ok(())
}

/// Where the bzImage's decompressed kernel ends: a relocatable kernel
/// decompresses at its load address rounded up to `kernel_alignment`, but
/// never below `pref_address` (16 MiB for x86_64), and uses `init_size`
/// bytes from there (arch/x86/boot/compressed/head_64.S).
pub fn decompression_end(h: &setup_header) -> u64 {
    let (load, pref) = (u64::from(h.code32_start), h.pref_address);
    let align = u64::from(h.kernel_alignment).max(1);
    let start =
        if h.relocatable_kernel != 0 { load.next_multiple_of(align).max(pref) } else { pref };
    start.max(load) + u64::from(h.init_size)
}

/// A vmlinux carries no setup header; these are the fields its 64-bit entry
/// reads or our loader consults (as Firecracker fills them).
pub fn elf_header() -> setup_header {
    setup_header {
        version: MIN_PROTOCOL,
        xloadflags: XLF_KERNEL_64,
        kernel_alignment: KERNEL_ALIGNMENT,
        // The kernel accepts an initrd anywhere below 4 GiB on the 64-bit
        // entry; our e820 has no RAM in the gap, so 2 GiB keeps it simple.
        initrd_addr_max: 0x7fff_ffff,
        cmdline_size: (CMDLINE_MAX - 1) as u32,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    /// An ELF64 executable with one PT_LOAD of `code` at physical `paddr`
    /// (memsz twice filesz, like a kernel's bss) and entry `paddr`.
    fn tiny_elf(paddr: u64, code: &[u8]) -> Vec<u8> {
        let mut e = vec![0u8; 64 + 56];
        e[..4].copy_from_slice(&ELF_MAGIC);
        e[4] = 2; // ELFCLASS64
        e[5] = 1; // little endian
        e[6] = 1; // EV_CURRENT
        e[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        e[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        e[24..32].copy_from_slice(&paddr.to_le_bytes()); // e_entry
        e[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        e[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        e[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        e[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let ph = &mut e[64..];
        ph[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        ph[8..16].copy_from_slice(&120u64.to_le_bytes()); // p_offset
        ph[16..24].copy_from_slice(&(0xffff_ffff_8000_0000 | paddr).to_le_bytes());
        ph[24..32].copy_from_slice(&paddr.to_le_bytes()); // p_paddr
        let n = code.len() as u64;
        ph[32..40].copy_from_slice(&n.to_le_bytes());
        ph[40..48].copy_from_slice(&(2 * n).to_le_bytes());
        e.extend_from_slice(code);
        e
    }

    #[test]
    fn a_bzimage_decompresses_above_its_preferred_address() {
        let h = |relocatable, code32_start| setup_header {
            code32_start,
            pref_address: 0x100_0000,
            kernel_alignment: 0x20_0000,
            relocatable_kernel: relocatable,
            init_size: 0x190_0000,
            ..Default::default()
        };
        // Loaded at 1 MiB, as we do: decompressed at 16 MiB, not at 1 MiB.
        assert_eq!(decompression_end(&h(1, 0x10_0000)), 0x100_0000 + 0x190_0000);
        // Loaded higher: at the load address rounded up to the alignment.
        assert_eq!(decompression_end(&h(1, 0x210_0000)), 0x220_0000 + 0x190_0000);
        // Not relocatable: always at its preferred address.
        assert_eq!(decompression_end(&h(0, 0x10_0000)), 0x100_0000 + 0x190_0000);
    }

    #[test]
    fn a_vmlinux_loads_at_its_physical_address_and_enters_there() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vmlinux");
        std::fs::write(&path, tiny_elf(0x100_0000, &[0xf4; 0x100])).unwrap();
        let k = load_kernel(&mem, &path).unwrap();
        assert_eq!(k.kind, ImageKind::Vmlinux);
        assert_eq!(k.entry, GuestAddress(0x100_0000));
        assert_eq!(k.end, 0x100_0200, "the end counts the bss (memsz)");
        let b: u8 = mem.read_obj(GuestAddress(0x100_00ff)).unwrap();
        assert_eq!(b, 0xf4);
        check_header(&k.header).unwrap();
        let (max, size) = (k.header.initrd_addr_max, k.header.cmdline_size);
        assert_eq!((max, size), (0x7fff_ffff, 4095));
    }

    #[test]
    fn neither_elf_nor_bzimage_is_refused_naming_the_file() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk");
        std::fs::write(&path, vec![0u8; 8192]).unwrap();
        let err = load_kernel(&mem, &path).unwrap_err().to_string();
        assert!(err.contains("load bzImage") && err.contains("junk"), "{err}");
        // An ELF that wants to load below 1 MiB is refused too.
        std::fs::write(&path, tiny_elf(0x1000, &[0; 16])).unwrap();
        let err = load_kernel(&mem, &path).unwrap_err().to_string();
        assert!(err.contains("load vmlinux"), "{err}");
    }

    #[test]
    fn old_or_32_bit_kernels_are_refused() {
        let mut h = elf_header();
        assert!(check_header(&h).is_ok());
        h.xloadflags = 0;
        assert!(check_header(&h).unwrap_err().to_string().contains("64-bit"));
        h = elf_header();
        h.version = 0x0204;
        assert!(check_header(&h).is_err());
    }
}
