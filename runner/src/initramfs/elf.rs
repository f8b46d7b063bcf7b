//! The few ELF facts the dynamic loader acts on: class/machine, PT_INTERP,
//! and the DT_NEEDED / DT_RPATH / DT_RUNPATH strings of PT_DYNAMIC.
//!
//! Read from program headers, not section headers, because that is what
//! ld.so reads (a stripped object may have no section headers at all).

use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use object::elf::{self, FileHeader64};
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::read::StringTable;
use object::Endianness;

/// What the loader needs to know about one object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// PT_INTERP, for executables (and PIE/`.so` files that carry one).
    pub interp: Option<String>,
    pub needed: Vec<String>,
    /// DT_RPATH entries, unsplit strings as stored (colon lists).
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
}

impl ElfInfo {
    /// glibc ignores an object's DT_RPATH when it also has DT_RUNPATH.
    pub fn effective_rpath(&self) -> &[String] {
        if self.runpath.is_empty() {
            &self.rpath
        } else {
            &[]
        }
    }
}

/// True when the file is a 64-bit little-endian x86-64 ELF: the only kind the
/// loader accepts as a candidate for our objects (it skips the others and
/// keeps searching, so must we). Reads only the header.
pub fn is_x86_64_elf(path: &Path) -> bool {
    let mut head = [0u8; 64];
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    if f.read_exact(&mut head).is_err() {
        return false;
    }
    header_is_x86_64(&head)
}

fn header_is_x86_64(data: &[u8]) -> bool {
    match FileHeader64::<Endianness>::parse(data) {
        Ok(h) => {
            h.is_class_64()
                && h.is_little_endian()
                && h.e_machine(Endianness::Little) == elf::EM_X86_64
        }
        Err(_) => false,
    }
}

/// Reads `path` and extracts [`ElfInfo`]. Errors name the file.
pub fn read_elf_info(path: &Path) -> Result<ElfInfo> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    parse(&data).with_context(|| format!("parse ELF {}", path.display()))
}

pub fn parse(data: &[u8]) -> Result<ElfInfo> {
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        bail!("not an ELF file");
    }
    if !header_is_x86_64(data) {
        bail!("not a 64-bit x86-64 ELF object");
    }
    let header = FileHeader64::<Endianness>::parse(data).map_err(|e| anyhow!("{e}"))?;
    let endian = Endianness::Little;
    let phdrs = header.program_headers(endian, data).map_err(|e| anyhow!("{e}"))?;

    let mut info = ElfInfo::default();
    let mut dynamic = None;
    for ph in phdrs {
        if let Some(interp) = ph.interpreter(endian, data).map_err(|e| anyhow!("{e}"))? {
            info.interp = Some(String::from_utf8_lossy(interp).into_owned());
        }
        if let Some(d) = ph.dynamic(endian, data).map_err(|e| anyhow!("{e}"))? {
            dynamic = Some(d);
        }
    }
    // A static executable has no PT_DYNAMIC: nothing to load.
    let Some(dynamic) = dynamic else { return Ok(info) };

    let (mut strtab, mut strsz) = (None, None);
    for d in dynamic {
        match u32::try_from(d.d_tag(endian)) {
            Ok(elf::DT_STRTAB) => strtab = Some(d.d_val(endian)),
            Ok(elf::DT_STRSZ) => strsz = Some(d.d_val(endian)),
            _ => {}
        }
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
        bail!("PT_DYNAMIC without DT_STRTAB/DT_STRSZ");
    };
    // DT_STRTAB is a virtual address; find the file offset via PT_LOAD.
    let offset = phdrs
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .find_map(|ph| {
            let (vaddr, filesz) = (ph.p_vaddr(endian), ph.p_filesz(endian));
            (strtab >= vaddr && strtab.saturating_add(strsz) <= vaddr.saturating_add(filesz))
                .then(|| strtab - vaddr + ph.p_offset(endian))
        })
        .ok_or_else(|| anyhow!("DT_STRTAB {strtab:#x} is not inside any PT_LOAD segment"))?;
    let strings = StringTable::new(data, offset, offset + strsz);

    for d in dynamic {
        let tag = d.d_tag(endian);
        let list = match u32::try_from(tag) {
            Ok(elf::DT_NULL) => break,
            Ok(elf::DT_NEEDED) => &mut info.needed,
            Ok(elf::DT_RPATH) => &mut info.rpath,
            Ok(elf::DT_RUNPATH) => &mut info.runpath,
            _ => continue,
        };
        let s = d.string(endian, strings).map_err(|e| anyhow!("{e}"))?;
        list.push(String::from_utf8_lossy(s).into_owned());
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initramfs_elf_reads_bin_ls() {
        let info = read_elf_info(Path::new("/bin/ls")).unwrap();
        assert_eq!(info.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert!(info.needed.iter().any(|n| n == "libc.so.6"), "{info:?}");
    }

    #[test]
    fn initramfs_elf_libc_needs_the_loader() {
        let info = read_elf_info(Path::new("/lib/x86_64-linux-gnu/libc.so.6")).unwrap();
        assert!(info.needed.iter().any(|n| n == "ld-linux-x86-64.so.2"), "{info:?}");
    }

    #[test]
    fn initramfs_elf_rejects_non_elf() {
        let err = parse(b"#!/bin/sh\necho hi\n").unwrap_err();
        assert!(format!("{err}").contains("not an ELF"));
        assert!(!is_x86_64_elf(Path::new("/etc/passwd")));
        assert!(is_x86_64_elf(Path::new("/bin/ls")));
    }

    #[test]
    fn initramfs_elf_runpath_hides_rpath() {
        let info =
            ElfInfo { rpath: vec!["/a".into()], runpath: vec!["/b".into()], ..Default::default() };
        assert!(info.effective_rpath().is_empty());
        let info = ElfInfo { rpath: vec!["/a".into()], ..Default::default() };
        assert_eq!(info.effective_rpath(), ["/a".to_string()]);
    }
}
