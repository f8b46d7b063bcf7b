//! The Linux x86 boot protocol, 64-bit entry: place the initrd as high as
//! the kernel allows, and fill the zero page (setup header, e820 map, command
//! line pointer). The kernel itself is loaded by `kernel`.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context};
use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use linux_loader::loader::{self, Cmdline};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::kernel::KernelEntry;
use super::layout::*;

pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
const KERNEL_HDR_MAGIC: u32 = 0x5372_6448;
const KERNEL_LOADER_OTHER: u8 = 0xff;
const LOADED_HIGH: u8 = 1 << 0;

/// Where an initrd of `size` bytes goes: page-aligned, as high as both RAM
/// below the gap and the kernel's `initrd_addr_max` allow, above `kernel_end`.
pub fn initrd_addr(
    h: &setup_header,
    low_ram_end: u64,
    kernel_end: u64,
    size: u64,
) -> anyhow::Result<u64> {
    // initrd_addr_max is the highest address the initrd's last byte may have.
    let max_end = (u64::from(h.initrd_addr_max) + 1).min(low_ram_end);
    let addr = max_end.checked_sub(size).context("initrd larger than low memory")? & !0xfff;
    if addr < kernel_end {
        bail!(
            "initrd of {size} bytes does not fit between the kernel (ends {kernel_end:#x}) and \
            {max_end:#x}: give the VM more memory"
        );
    }
    Ok(addr)
}

/// The e820 map: low RAM up to the EBDA, the BIOS area (ACPI, MP) reserved, then RAM
/// from 1 MiB, split around the MMIO gap.
pub fn e820_map(mem_bytes: u64) -> Vec<boot_e820_entry> {
    let mut map = vec![
        boot_e820_entry { addr: 0, size: EBDA_START, r#type: E820_RAM },
        boot_e820_entry { addr: ACPI_START, size: BIOS_END - ACPI_START, r#type: E820_RESERVED },
    ];
    let low_end = mem_bytes.min(MMIO_GAP_START);
    if low_end > HIMEM_START {
        map.push(boot_e820_entry {
            addr: HIMEM_START,
            size: low_end - HIMEM_START,
            r#type: E820_RAM,
        });
    }
    if mem_bytes > low_end {
        map.push(boot_e820_entry {
            addr: MMIO_GAP_END,
            size: mem_bytes - low_end,
            r#type: E820_RAM,
        });
    }
    map
}

/// The zero page for a kernel whose image header is `h`.
pub fn boot_params(
    h: &setup_header,
    mem_bytes: u64,
    cmdline_len: usize,
    initrd: Option<(u64, u64)>,
) -> boot_params {
    let mut p = boot_params { hdr: *h, ..Default::default() };
    p.hdr.type_of_loader = KERNEL_LOADER_OTHER;
    p.hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    p.hdr.header = KERNEL_HDR_MAGIC;
    p.hdr.loadflags |= LOADED_HIGH;
    p.hdr.cmd_line_ptr = CMDLINE as u32;
    p.hdr.cmdline_size = cmdline_len as u32;
    if let Some((addr, size)) = initrd {
        p.hdr.ramdisk_image = addr as u32;
        p.hdr.ramdisk_size = size as u32;
    }
    let map = e820_map(mem_bytes);
    p.e820_entries = map.len() as u8;
    p.e820_table[..map.len()].copy_from_slice(&map);
    p
}

/// The offset of each part in an initrd laid out as `sizes` back to back,
/// each at a 4-byte boundary (where the kernel looks for the next cpio
/// archive; the gaps are zeros), and the total size.
pub fn initrd_layout(sizes: &[u64]) -> (Vec<u64>, u64) {
    let mut offsets = Vec::with_capacity(sizes.len());
    let mut end = 0u64;
    for &size in sizes {
        let at = (end + 3) & !3;
        offsets.push(at);
        end = at + size;
    }
    (offsets, end)
}

/// Loads the initrd (its parts, concatenated cpio archives, read straight
/// into guest memory) and the command line, and writes the zero page.
/// Returns where the initrd went: (guest address, size).
pub fn setup_boot(
    mem: &GuestMemoryMmap,
    kernel: &KernelEntry,
    mem_bytes: u64,
    initrd_parts: &[&Path],
    cmdline: &str,
) -> anyhow::Result<(u64, u64)> {
    let mut files = Vec::with_capacity(initrd_parts.len());
    for p in initrd_parts {
        let f = File::open(p).with_context(|| format!("open initramfs {}", p.display()))?;
        let size = f.metadata().with_context(|| format!("stat {}", p.display()))?.len();
        files.push((f, size, p));
    }
    let (offsets, initrd_size) = initrd_layout(&files.iter().map(|f| f.1).collect::<Vec<_>>());
    let addr = initrd_addr(&kernel.header, mem_bytes.min(MMIO_GAP_START), kernel.end, initrd_size)?;
    for ((mut f, size, p), off) in files.into_iter().zip(offsets) {
        mem.read_exact_volatile_from(GuestAddress(addr + off), &mut f, size as usize)
            .with_context(|| format!("read initramfs {} into guest memory", p.display()))?;
    }

    let max = (kernel.header.cmdline_size as usize).clamp(256, CMDLINE_MAX);
    let mut cl = Cmdline::new(max).map_err(|e| anyhow::anyhow!("{e}"))?;
    cl.insert_str(cmdline).map_err(|e| {
        anyhow::anyhow!("kernel command line ({} bytes, at most {max}): {e}", cmdline.len())
    })?;
    loader::load_cmdline(mem, GuestAddress(CMDLINE), &cl)
        .map_err(|e| anyhow::anyhow!("write cmdline: {e}"))?;

    let params =
        boot_params(&kernel.header, mem_bytes, cmdline.len() + 1, Some((addr, initrd_size)));
    LinuxBootConfigurator::write_bootparams(
        &BootParams::new(&params, GuestAddress(ZERO_PAGE)),
        mem,
    )
    .map_err(|e| anyhow::anyhow!("write boot params: {e}"))?;
    Ok((addr, initrd_size))
}

#[cfg(test)]
mod tests {
    use super::super::kernel::ImageKind;
    use super::*;

    fn header() -> setup_header {
        setup_header {
            version: 0x020f,
            xloadflags: 0x7f,
            initrd_addr_max: 0x7fff_ffff,
            code32_start: 0x100000,
            cmdline_size: 2047,
            ..Default::default()
        }
    }

    fn kernel_entry() -> KernelEntry {
        KernelEntry {
            kind: ImageKind::BzImage,
            entry: GuestAddress(0x100200),
            header: header(),
            end: 32 << 20,
        }
    }

    #[test]
    fn e820_small_and_split() {
        let m = e820_map(256 << 20);
        let ram: Vec<(u64, u64)> =
            m.iter().filter(|e| e.r#type == E820_RAM).map(|e| (e.addr, e.size)).collect();
        assert_eq!(ram, [(0, EBDA_START), (HIMEM_START, (256 << 20) - HIMEM_START)]);
        let m = e820_map(6 << 30);
        let ram: Vec<(u64, u64)> =
            m.iter().filter(|e| e.r#type == E820_RAM).map(|e| (e.addr, e.size)).collect();
        assert_eq!(
            ram,
            [(0, EBDA_START), (HIMEM_START, MMIO_GAP_START - HIMEM_START), (1 << 32, 3 << 30)]
        );
        assert!(m.iter().any(|e| e.r#type == E820_RESERVED && e.addr == ACPI_START));
    }

    #[test]
    fn initrd_goes_high_but_below_initrd_addr_max() {
        let h = header();
        // 256 MiB: the end of RAM bounds it.
        assert_eq!(initrd_addr(&h, 256 << 20, 32 << 20, 0x1800).unwrap(), (256 << 20) - 0x2000);
        // 3 GiB of low RAM: initrd_addr_max (2 GiB - 1) bounds it.
        assert_eq!(initrd_addr(&h, 3 << 30, 32 << 20, 4096).unwrap(), (2 << 30) - 4096);
        assert!(initrd_addr(&h, 64 << 20, 32 << 20, 40 << 20).is_err());
    }

    #[test]
    fn zero_page_fields() {
        let p = boot_params(&header(), 512 << 20, 100, Some((0x1000_0000, 0x2345)));
        let (img, size, ptr, flag, magic, loader) = (
            p.hdr.ramdisk_image,
            p.hdr.ramdisk_size,
            p.hdr.cmd_line_ptr,
            p.hdr.boot_flag,
            p.hdr.header,
            p.hdr.type_of_loader,
        );
        assert_eq!((img, size, ptr), (0x1000_0000, 0x2345, CMDLINE as u32));
        assert_eq!((flag, magic, loader), (0xaa55, 0x5372_6448, 0xff));
        assert_eq!(p.e820_entries, 3);
        let e = p.e820_table[2];
        let (a, s) = (e.addr, e.size);
        assert_eq!((a, s), (HIMEM_START, (512 << 20) - HIMEM_START));
    }

    #[test]
    fn setup_boot_writes_the_zero_page() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let initrd = dir.path().join("initrd");
        std::fs::write(&initrd, vec![7u8; 5000]).unwrap();
        let k = kernel_entry();
        setup_boot(&mem, &k, 64 << 20, &[&initrd], "console=ttyS0 quiet").unwrap();
        let p: boot_params = mem.read_obj(GuestAddress(ZERO_PAGE)).unwrap();
        let (img, size) = (p.hdr.ramdisk_image, p.hdr.ramdisk_size);
        assert_eq!((img, size), (((64 << 20) - 5000) & !0xfff, 5000));
        let b: u8 = mem.read_obj(GuestAddress(u64::from(img) + 4999)).unwrap();
        assert_eq!(b, 7);
        let mut cl = [0u8; 20];
        mem.read_slice(&mut cl, GuestAddress(CMDLINE)).unwrap();
        assert_eq!(&cl, b"console=ttyS0 quiet\0");
    }

    #[test]
    fn initrd_parts_are_concatenated_at_4_byte_boundaries() {
        assert_eq!(initrd_layout(&[1000, 5, 8]), (vec![0, 1000, 1008], 1016));
        assert_eq!(initrd_layout(&[]), (vec![], 0));
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("base"), dir.path().join("plan"));
        std::fs::write(&a, [1u8; 6]).unwrap();
        std::fs::write(&b, [2u8; 4]).unwrap();
        let k = kernel_entry();
        setup_boot(&mem, &k, 64 << 20, &[&a, &b], "x").unwrap();
        let p: boot_params = mem.read_obj(GuestAddress(ZERO_PAGE)).unwrap();
        let (img, size) = (u64::from(p.hdr.ramdisk_image), p.hdr.ramdisk_size);
        assert_eq!(size, 12);
        let mut got = [0u8; 12];
        mem.read_slice(&mut got, GuestAddress(img)).unwrap();
        assert_eq!(got, [1, 1, 1, 1, 1, 1, 0, 0, 2, 2, 2, 2]);
    }
}
