//! The guest's initramfs: what goes in it ([`ArchiveSpec`]), the cpio
//! writer ([`write_newc`]), the on-disk cache of base archives
//! ([`BaseArchiveCache`]) and [`concat`] to stack a per-run archive on top.
//!
//! Libraries are laid out for a guest with no /etc/ld.so.cache: each one
//! sits in `/lib/x86_64-linux-gnu` under the name it was requested by (a
//! built-in search directory of Debian's multiarch ld.so), and the
//! interpreter sits at its exact PT_INTERP path.

mod cache;
mod cpio;
pub(crate) mod elf;
mod hashes;
mod ldcache;
mod resolve;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use cache::BaseArchiveCache;
pub use cpio::write_newc;

/// Where every resolved library goes in the guest.
pub const GUEST_LIB_DIR: &str = "/lib/x86_64-linux-gnu";
/// Mode of directories the archive creates implicitly.
const IMPLIED_DIR_MODE: u32 = 0o755;

/// One file to place in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Copied from the host at write time (symlinks followed).
    File {
        guest_path: String,
        host_path: PathBuf,
        mode: u32,
    },
    Bytes {
        guest_path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Dir {
        guest_path: String,
        mode: u32,
    },
    Symlink {
        guest_path: String,
        target: String,
    },
}

impl Entry {
    pub fn guest_path(&self) -> &str {
        match self {
            Entry::File { guest_path, .. }
            | Entry::Bytes { guest_path, .. }
            | Entry::Dir { guest_path, .. }
            | Entry::Symlink { guest_path, .. } => guest_path,
        }
    }
}

/// The contents of one archive, deduplicated by guest path (the first entry
/// for a path wins, as the first library loaded under a name wins in ld.so).
#[derive(Debug, Default, Clone)]
pub struct ArchiveSpec {
    /// Keyed by the normalized path without its leading '/': sorting these
    /// puts every directory before its contents.
    entries: BTreeMap<String, Entry>,
    /// Canonical host file → guest path of libraries already placed, so a
    /// second name for the same file becomes a symlink: ld.so then sees one
    /// inode and does not load the library twice.
    placed: HashMap<PathBuf, String>,
    /// Bad guest paths from the infallible `add_*` calls, reported on write.
    errors: Vec<String>,
}

impl ArchiveSpec {
    pub fn add_file(
        &mut self,
        host: impl AsRef<Path>,
        guest: impl AsRef<str>,
        mode: u32,
    ) -> &mut Self {
        let host_path = host.as_ref().to_path_buf();
        self.insert(guest.as_ref(), |guest_path| Entry::File { guest_path, host_path, mode })
    }

    pub fn add_bytes(
        &mut self,
        guest: impl AsRef<str>,
        data: impl Into<Vec<u8>>,
        mode: u32,
    ) -> &mut Self {
        let data = data.into();
        self.insert(guest.as_ref(), |guest_path| Entry::Bytes { guest_path, data, mode })
    }

    #[cfg(test)]
    pub fn add_dir(&mut self, guest: impl AsRef<str>, mode: u32) -> &mut Self {
        self.insert(guest.as_ref(), |guest_path| Entry::Dir { guest_path, mode })
    }

    pub fn add_symlink(&mut self, guest: impl AsRef<str>, target: impl Into<String>) -> &mut Self {
        let target = target.into();
        self.insert(guest.as_ref(), |guest_path| Entry::Symlink { guest_path, target })
    }

    /// Adds an ELF object at `guest`, its interpreter at its PT_INTERP path,
    /// and its whole DT_NEEDED closure (resolved as the host ld.so would)
    /// under [`GUEST_LIB_DIR`].
    pub fn add_elf_with_deps(
        &mut self,
        host: impl AsRef<Path>,
        guest: impl AsRef<str>,
    ) -> Result<()> {
        let host = host.as_ref();
        let closure = resolve::Resolver::host()?
            .closure(host)
            .with_context(|| format!("resolve the shared libraries of {}", host.display()))?;
        self.add_file(host, guest, 0o755);
        // The interpreter first, so libc's DT_NEEDED on it becomes a symlink.
        if let Some(interp) = &closure.interp {
            self.place_lib(Path::new(interp), interp)?;
        }
        for lib in &closure.libs {
            let guest = if !lib.name.contains('/') {
                format!("{GUEST_LIB_DIR}/{}", lib.name)
            } else if lib.name.starts_with('/') {
                lib.name.clone()
            } else {
                bail!(
                    "{} needs {} by a relative path, which depends on the working directory",
                    host.display(),
                    lib.name
                );
            };
            self.place_lib(&lib.path, &guest)?;
        }
        Ok(())
    }

    /// [`Self::add_elf_with_deps`] at `dir/<its file name>`; returns that guest path.
    pub fn add_elf_in_dir(&mut self, host: &Path, dir: &str) -> Result<String> {
        let name =
            host.file_name().with_context(|| format!("{} has no file name", host.display()))?;
        let guest = format!("{dir}/{}", name.to_string_lossy());
        self.add_elf_with_deps(host, &guest)?;
        Ok(guest)
    }

    /// Explicit entries, in archive order (implied directories not included).
    #[cfg(test)]
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    fn place_lib(&mut self, host: &Path, guest: &str) -> Result<()> {
        let real =
            std::fs::canonicalize(host).with_context(|| format!("library {}", host.display()))?;
        match self.placed.get(&real) {
            Some(first) if first == guest => {}
            Some(first) => {
                let first = first.clone();
                self.add_symlink(guest, first);
            }
            None => {
                self.placed.insert(real, guest.to_string());
                self.add_file(host, guest, 0o755);
            }
        }
        Ok(())
    }

    fn insert(&mut self, guest: &str, make: impl FnOnce(String) -> Entry) -> &mut Self {
        let key = match normalize(guest) {
            Ok(k) => k,
            Err(e) => {
                self.errors.push(e);
                return self;
            }
        };
        let entry = make(format!("/{key}"));
        match self.entries.get(&key) {
            None => {
                self.entries.insert(key, entry);
            }
            Some(old) if *old == entry => {}
            Some(old) => tracing::warn!(
                "initramfs: {} added twice with different contents; keeping the first",
                old.guest_path()
            ),
        }
        self
    }

    /// Every entry to write, with implied parent directories, parents first.
    /// Fails on a bad path or on a non-directory that something sits under.
    fn resolved(&self) -> Result<Vec<Entry>> {
        if !self.errors.is_empty() {
            bail!("invalid guest paths: {}", self.errors.join("; "));
        }
        let mut all: BTreeMap<String, Entry> = self.entries.clone();
        for key in self.entries.keys() {
            let mut parent = Path::new(key.as_str()).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                let pk = p.to_string_lossy().into_owned();
                match all.get(&pk) {
                    Some(Entry::Dir { .. }) => {}
                    Some(other) => {
                        bail!("{} is not a directory but /{key} is under it", other.guest_path())
                    }
                    None => {
                        all.insert(
                            pk.clone(),
                            Entry::Dir { guest_path: format!("/{pk}"), mode: IMPLIED_DIR_MODE },
                        );
                    }
                }
                parent = p.parent();
            }
        }
        Ok(all.into_values().collect())
    }
}

/// `/a//b/./c` → `a/b/c`; `..` and the root itself are refused.
fn normalize(guest: &str) -> std::result::Result<String, String> {
    let mut parts = Vec::new();
    for c in guest.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(format!("`{guest}` contains `..`")),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(format!("`{guest}` names no file"));
    }
    Ok(parts.join("/"))
}

/// Concatenates archives: the kernel unpacks them one after another, later
/// files replacing earlier ones. Each part must end 4-byte aligned.
pub fn concat(parts: &[&Path], out: &Path) -> Result<()> {
    let mut dst =
        io::BufWriter::new(File::create(out).with_context(|| format!("create {}", out.display()))?);
    for part in parts {
        let mut src = File::open(part).with_context(|| format!("open {}", part.display()))?;
        let len = src.metadata()?.len();
        if len & 3 != 0 {
            bail!(
                "{} is {len} bytes, not a multiple of 4: the kernel would misread the archive \
                after it",
                part.display()
            );
        }
        io::copy(&mut src, &mut dst)
            .with_context(|| format!("copy {} into {}", part.display(), out.display()))?;
    }
    io::Write::flush(&mut dst)?;
    Ok(())
}

#[cfg(test)]
mod tests;
