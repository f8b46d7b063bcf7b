//! `vmlinux.boot`: a cache entry's vmlinux cut down to what a VMM loads, its
//! program headers and their segments (about 15 MB instead of the 110 MB
//! that DWARF makes it). ktstr-vmm boots it instead of the bzImage, which
//! skips the guest's decompression; it is what nested runs ship to L1. The
//! BTF stays: it lives inside a loaded segment.
//!
//! Written by hand (the `object` crate here reads only): an ELF header, the
//! program headers, then each segment at a page-congruent offset.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use object::elf::{self, FileHeader64, ProgramHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, U16, U64};

pub const BOOT_ELF: &str = "vmlinux.boot";
const PAGE: u64 = 4096;

/// `dir/vmlinux.boot`, made from `vmlinux` the first time it is asked for.
/// Made under a temporary name and renamed, so a reader never sees half.
pub fn ensure(dir: &Path, vmlinux: &Path) -> Result<PathBuf> {
    let out = dir.join(BOOT_ELF);
    if out.is_file() {
        return Ok(out);
    }
    let data = std::fs::read(vmlinux).with_context(|| format!("read {}", vmlinux.display()))?;
    let stripped = strip(&data).with_context(|| format!("cut down {}", vmlinux.display()))?;
    let tmp = dir.join(format!(".{BOOT_ELF}.{}", std::process::id()));
    std::fs::write(&tmp, stripped).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &out).with_context(|| format!("rename to {}", out.display()))?;
    Ok(out)
}

/// The ELF in `data` with only its program headers and the bytes they map.
pub fn strip(data: &[u8]) -> Result<Vec<u8>> {
    let header = FileHeader64::<Endianness>::parse(data).map_err(|e| anyhow!("{e}"))?;
    let e = header.endian().map_err(|e| anyhow!("{e}"))?;
    if header.e_machine(e) != elf::EM_X86_64 {
        bail!("not an x86-64 ELF");
    }
    let phdrs = header.program_headers(e, data).map_err(|e| anyhow!("{e}"))?;
    let loads: Vec<&ProgramHeader64<Endianness>> =
        phdrs.iter().filter(|p| p.p_type(e) == elf::PT_LOAD).collect();
    if loads.is_empty() {
        bail!("no PT_LOAD segment");
    }
    // Where each loaded segment's bytes go in the output.
    let phoff = std::mem::size_of::<FileHeader64<Endianness>>() as u64;
    let phsize = std::mem::size_of::<ProgramHeader64<Endianness>>() as u64;
    let mut end = phoff + phsize * phdrs.len() as u64;
    let mut placed = Vec::new();
    for p in &loads {
        let at = end.next_multiple_of(PAGE) + p.p_offset(e) % PAGE;
        placed.push((p.p_offset(e), p.p_filesz(e), at));
        end = at + p.p_filesz(e);
    }
    // A note (or any other header) inside a loaded segment moves with it.
    let moved = |off: u64, size: u64| {
        placed
            .iter()
            .find(|(o, s, _)| off >= *o && off + size <= o + s)
            .map(|(o, _, at)| at + (off - o))
    };
    let mut out_phdrs = Vec::new();
    for p in phdrs {
        let Some(at) = moved(p.p_offset(e), p.p_filesz(e)) else { continue };
        let mut q = *p;
        q.p_offset = U64::new(e, at);
        if q.p_type(e) == elf::PT_LOAD {
            q.p_align = U64::new(e, PAGE);
        }
        out_phdrs.push(q);
    }

    let mut h = *header;
    h.e_phoff = U64::new(e, phoff);
    h.e_phnum = U16::new(e, out_phdrs.len() as u16);
    h.e_shoff = U64::new(e, 0);
    h.e_shnum = U16::new(e, 0);
    h.e_shstrndx = U16::new(e, 0);
    let mut out = Vec::with_capacity(end as usize);
    out.extend_from_slice(object::bytes_of(&h));
    for q in &out_phdrs {
        out.extend_from_slice(object::bytes_of(q));
    }
    for (off, size, at) in placed {
        let bytes = data
            .get(off as usize..(off + size) as usize)
            .context("a segment reaches past the end of the file")?;
        out.resize(at as usize, 0);
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF with two loaded segments, a note inside the first and 64 KiB
    /// of unloaded bytes (what DWARF would be) after them.
    fn zeroed<T: object::Pod>() -> T {
        *object::pod::from_bytes::<T>(&[0u8; 64]).unwrap().0
    }

    fn sample() -> Vec<u8> {
        let e = Endianness::Little;
        let mut h: FileHeader64<Endianness> = zeroed();
        h.e_ident.magic = elf::ELFMAG;
        h.e_ident.class = elf::ELFCLASS64;
        h.e_ident.data = elf::ELFDATA2LSB;
        h.e_ident.version = elf::EV_CURRENT;
        h.e_type = U16::new(e, elf::ET_EXEC);
        h.e_machine = U16::new(e, elf::EM_X86_64);
        h.e_entry = U64::new(e, 0x100_0000);
        h.e_phoff = U64::new(e, 64);
        h.e_ehsize = U16::new(e, 64);
        h.e_phentsize = U16::new(e, 56);
        h.e_phnum = U16::new(e, 3);
        h.e_shoff = U64::new(e, 0x3_0000);
        h.e_shnum = U16::new(e, 5);
        let ph = |kind: u32, offset: u64, paddr: u64, size: u64| {
            let mut p: ProgramHeader64<Endianness> = zeroed();
            p.p_type = object::U32::new(e, kind);
            p.p_offset = U64::new(e, offset);
            p.p_paddr = U64::new(e, paddr);
            p.p_vaddr = U64::new(e, 0xffff_ffff_0000_0000 | paddr);
            p.p_filesz = U64::new(e, size);
            p.p_memsz = U64::new(e, size * 2);
            p.p_align = U64::new(e, 0x20_0000);
            p
        };
        let phdrs = [
            ph(elf::PT_LOAD, 0x1_0000, 0x100_0000, 0x3000),
            ph(elf::PT_LOAD, 0x2_0000, 0x120_0000, 0x10),
            ph(elf::PT_NOTE, 0x1_0100, 0x100_0100, 0x20),
        ];
        let mut data = vec![0u8; 0x4_0000];
        data[..64].copy_from_slice(object::bytes_of(&h));
        for (i, p) in phdrs.iter().enumerate() {
            data[64 + 56 * i..120 + 56 * i].copy_from_slice(object::bytes_of(p));
        }
        for (i, b) in data[0x1_0000..0x1_3000].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        data[0x1_0100..0x1_0104].copy_from_slice(b"NOTE");
        data[0x2_0000..0x2_0010].copy_from_slice(&[9; 16]);
        data
    }

    fn segments(data: &[u8]) -> Vec<(u32, u64, Vec<u8>)> {
        let h = FileHeader64::<Endianness>::parse(data).unwrap();
        let e = Endianness::Little;
        h.program_headers(e, data)
            .unwrap()
            .iter()
            .map(|p| (p.p_type(e), p.p_paddr(e), p.data(e, data).unwrap().to_vec()))
            .collect()
    }

    #[test]
    fn keeps_every_segment_byte_for_byte_and_drops_the_rest() {
        let data = sample();
        let out = strip(&data).unwrap();
        assert!(out.len() < 0x5000, "{} bytes", out.len());
        assert_eq!(segments(&out), segments(&data));
        let h = FileHeader64::<Endianness>::parse(&out[..]).unwrap();
        let e = Endianness::Little;
        assert_eq!((h.e_shnum(e), h.e_shoff(e), h.e_entry(e)), (0, 0, 0x100_0000));
        for p in h.program_headers(e, &out[..]).unwrap() {
            assert_eq!(p.p_offset(e) % PAGE, p.p_vaddr(e) % PAGE, "congruent offsets");
        }
    }

    #[test]
    fn ensure_makes_it_once_beside_the_vmlinux() {
        let dir = tempfile::tempdir().unwrap();
        let vmlinux = dir.path().join("vmlinux");
        std::fs::write(&vmlinux, sample()).unwrap();
        let out = ensure(dir.path(), &vmlinux).unwrap();
        assert_eq!(out, dir.path().join(BOOT_ELF));
        let first = std::fs::read(&out).unwrap();
        std::fs::write(&vmlinux, b"changed").unwrap();
        assert_eq!(std::fs::read(ensure(dir.path(), &vmlinux).unwrap()).unwrap(), first);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no temporary file is left behind");
    }

    #[test]
    fn a_file_that_is_not_an_x86_64_elf_is_refused() {
        assert!(strip(b"MZ not an elf at all, just bytes enough for a header......").is_err());
        let mut data = sample();
        data[18] = 0xb7; // EM_AARCH64
        assert!(strip(&data).unwrap_err().to_string().contains("x86-64"));
    }
}
