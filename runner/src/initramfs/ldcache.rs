//! Reader for glibc's `/etc/ld.so.cache` ("glibc-ld.so.cache1.1" format),
//! the step the loader takes between RUNPATH and its default directories.
//!
//! Layout (glibc `sysdeps/generic/dl-cache.h`): an optional legacy
//! "ld.so-1.7.0" section, then the new header: 20-byte magic+version,
//! u32 nlibs, u32 len_strings, u8 flags, 3 pad, u32 extension_offset,
//! 3 × u32 unused (48 bytes), then `nlibs` entries of 24 bytes: i32 flags,
//! u32 key, u32 value, u32 osversion, u64 hwcap. Key/value are offsets of
//! NUL-terminated strings, relative to the new header's start.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const NEW_HEADER_LEN: usize = 48;
const NEW_ENTRY_LEN: usize = 24;
/// FLAG_ELF_LIBC6 | FLAG_X8664_LIB64: what x86-64 ld.so accepts.
const FLAG_X86_64_LIBC6: i32 = 0x0303;

pub const HOST_CACHE: &str = "/etc/ld.so.cache";

/// The x86-64 entries of one cache, in file order (glibc's order: the first
/// match wins).
#[derive(Debug, Default)]
pub struct LdCache {
    entries: Vec<(String, PathBuf)>,
}

impl LdCache {
    /// The host's cache; an absent cache is an empty one (the loader then
    /// goes straight to its default directories).
    pub fn load_host() -> Result<Self> {
        Self::load(Path::new(HOST_CACHE))
    }

    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(data) => Self::parse(&data).with_context(|| format!("parse {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        }
    }

    pub fn parse(data: &[u8]) -> Result<Self> {
        let start = new_format_start(data)?;
        let new = &data[start..];
        if new.len() < NEW_HEADER_LEN || !new.starts_with(NEW_MAGIC) {
            bail!("no \"glibc-ld.so.cache1.1\" header (only the new format is supported)");
        }
        let nlibs = u32_at(new, 20) as usize;
        let table_end = NEW_HEADER_LEN + nlibs * NEW_ENTRY_LEN;
        if new.len() < table_end {
            bail!("truncated: {nlibs} entries do not fit in {} bytes", new.len());
        }
        let mut entries = Vec::new();
        for i in 0..nlibs {
            let e = &new[NEW_HEADER_LEN + i * NEW_ENTRY_LEN..][..NEW_ENTRY_LEN];
            let flags = u32_at(e, 0) as i32;
            let hwcap = u64::from_le_bytes(e[16..24].try_into().unwrap());
            // hwcap != 0 marks glibc-hwcaps variants (x86-64-v3, …); the
            // baseline entry is the one that runs on any guest CPU.
            if flags != FLAG_X86_64_LIBC6 || hwcap != 0 {
                continue;
            }
            let key = c_str_at(new, u32_at(e, 4) as usize)?;
            let value = c_str_at(new, u32_at(e, 8) as usize)?;
            entries.push((key, PathBuf::from(value)));
        }
        Ok(Self { entries })
    }

    /// Path of the first x86-64 entry for `soname`.
    pub fn lookup(&self, soname: &str) -> Option<&Path> {
        self.entries.iter().find(|(k, _)| k == soname).map(|(_, v)| v.as_path())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Offset of the new-format header: 0, or after the legacy section
/// (16-byte header + 12-byte entries, aligned to 8 like glibc's ALIGN_CACHE).
fn new_format_start(data: &[u8]) -> Result<usize> {
    if !data.starts_with(OLD_MAGIC) {
        return Ok(0);
    }
    if data.len() < 16 {
        bail!("truncated legacy header");
    }
    let old_nlibs = u32_at(data, 12) as usize;
    let end = 16 + old_nlibs * 12;
    let aligned = (end + 7) & !7;
    if aligned > data.len() {
        bail!("truncated legacy section");
    }
    Ok(aligned)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn c_str_at(b: &[u8], off: usize) -> Result<String> {
    let tail = b.get(off..).with_context(|| format!("string offset {off} past the end"))?;
    let len = tail.iter().position(|&c| c == 0).context("unterminated string")?;
    Ok(String::from_utf8_lossy(&tail[..len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new-format cache with the given (flags, hwcap, key, value) entries.
    fn synth(entries: &[(i32, u64, &str, &str)]) -> Vec<u8> {
        let strings_at = NEW_HEADER_LEN + entries.len() * NEW_ENTRY_LEN;
        let mut strings = Vec::new();
        let mut table = Vec::new();
        for (flags, hwcap, k, v) in entries {
            let ko = strings_at + strings.len();
            strings.extend_from_slice(k.as_bytes());
            strings.push(0);
            let vo = strings_at + strings.len();
            strings.extend_from_slice(v.as_bytes());
            strings.push(0);
            table.extend_from_slice(&flags.to_le_bytes());
            table.extend_from_slice(&(ko as u32).to_le_bytes());
            table.extend_from_slice(&(vo as u32).to_le_bytes());
            table.extend_from_slice(&0u32.to_le_bytes());
            table.extend_from_slice(&hwcap.to_le_bytes());
        }
        let mut out = NEW_MAGIC.to_vec();
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        out.resize(NEW_HEADER_LEN, 0);
        out.extend(table);
        out.extend(strings);
        out
    }

    #[test]
    fn initramfs_ldcache_filters_arch_and_hwcaps() {
        let data = synth(&[
            (0x0003, 0, "libc.so.6", "/lib32/libc.so.6"),
            (0x0303, 1 << 62, "libc.so.6", "/lib/glibc-hwcaps/x86-64-v3/libc.so.6"),
            (0x0303, 0, "libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
        ]);
        let c = LdCache::parse(&data).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c.lookup("libc.so.6"), Some(Path::new("/lib/x86_64-linux-gnu/libc.so.6")));
        assert_eq!(c.lookup("libm.so.6"), None);
    }

    #[test]
    fn initramfs_ldcache_skips_legacy_section() {
        let mut data = OLD_MAGIC.to_vec();
        data.push(0);
        data.extend_from_slice(&1u32.to_le_bytes());
        data.extend_from_slice(&[0u8; 12]); // one legacy entry
        data.resize(32, 0); // 28 aligned up to 8
        data.extend(synth(&[(0x0303, 0, "libz.so.1", "/x/libz.so.1")]));
        let c = LdCache::parse(&data).unwrap();
        assert_eq!(c.lookup("libz.so.1"), Some(Path::new("/x/libz.so.1")));
    }

    #[test]
    fn initramfs_ldcache_rejects_garbage() {
        assert!(LdCache::parse(b"not a cache at all, just some bytes here......").is_err());
    }

    /// The real host cache agrees with `ldconfig -p` on libc.so.6.
    #[test]
    fn initramfs_ldcache_matches_ldconfig() {
        if !Path::new(HOST_CACHE).exists() {
            eprintln!("SKIP: no {HOST_CACHE} on this host");
            return;
        }
        let out = std::process::Command::new("ldconfig")
            .arg("-p")
            .output()
            .or_else(|_| std::process::Command::new("/sbin/ldconfig").arg("-p").output());
        let Ok(out) = out else {
            eprintln!("SKIP: ldconfig not runnable");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let expected = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("libc.so.6 ") && l.contains("x86-64"))
            .and_then(|l| l.split(" => ").nth(1))
            .expect("ldconfig -p lists an x86-64 libc.so.6");
        let cache = LdCache::load_host().unwrap();
        assert!(cache.len() > 10);
        assert_eq!(cache.lookup("libc.so.6"), Some(Path::new(expected)));
    }
}
