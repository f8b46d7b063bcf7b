//! `ktstr shell --include PATH`: host files and directories in the guest at
//! `/include/NAME`, executables with the shared libraries they need (so that
//! `--include /usr/sbin/bpftool` runs), on the shell's PATH.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;

use crate::initramfs::elf::is_x86_64_elf;
use crate::initramfs::ArchiveSpec;
use crate::usage::UsageError;

pub const GUEST_DIR: &str = "/include";

/// Adds `host` (a file, or a directory and all it holds) under [`GUEST_DIR`].
pub fn add(spec: &mut ArchiveSpec, host: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(host).map_err(|e| {
        UsageError(format!("--include {}: {e}; give a file or directory to copy", host.display()))
    })?;
    let name = host
        .file_name()
        .ok_or_else(|| UsageError(format!("--include {}: names no file", host.display())))?;
    let guest = format!("{GUEST_DIR}/{}", name.to_string_lossy());
    if meta.is_dir() {
        add_dir(spec, host, &guest)
    } else {
        add_file(spec, host, &guest, meta.permissions().mode() & 0o777)
    }
}

fn add_dir(spec: &mut ArchiveSpec, host: &Path, guest: &str) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(host).with_context(|| format!("read {}", host.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("read {}", host.display()))?;
        let (path, kind) = (entry.path(), entry.file_type()?);
        let inner = format!("{guest}/{}", entry.file_name().to_string_lossy());
        if kind.is_symlink() {
            let target = std::fs::read_link(&path)?;
            spec.add_symlink(&inner, target.to_string_lossy());
        } else if kind.is_dir() {
            add_dir(spec, &path, &inner)?;
        } else if kind.is_file() {
            add_file(spec, &path, &inner, entry.metadata()?.permissions().mode() & 0o777)?;
        }
        // Sockets, fifos and devices mean nothing in another machine: skipped.
    }
    Ok(())
}

fn add_file(spec: &mut ArchiveSpec, host: &Path, guest: &str, mode: u32) -> anyhow::Result<()> {
    if mode & 0o111 != 0 && is_x86_64_elf(host) {
        return spec.add_elf_with_deps(host, guest);
    }
    spec.add_file(host, guest, mode);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initramfs::Entry;

    fn paths(spec: &ArchiveSpec) -> Vec<String> {
        spec.entries().map(|e| e.guest_path().to_string()).collect()
    }

    #[test]
    fn a_directory_comes_whole_and_a_binary_with_its_libraries() {
        let dir = tempfile::tempdir().unwrap();
        let tools = dir.path().join("tools");
        std::fs::create_dir_all(tools.join("sub")).unwrap();
        std::fs::write(tools.join("notes.txt"), "hi").unwrap();
        std::fs::write(tools.join("sub/run.sh"), "#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("notes.txt", tools.join("link")).unwrap();
        let mut spec = ArchiveSpec::default();
        add(&mut spec, &tools).unwrap();
        add(&mut spec, Path::new("/bin/true")).unwrap();
        let got = paths(&spec);
        for want in ["/include/tools/notes.txt", "/include/tools/sub/run.sh", "/include/true"] {
            assert!(
                got.iter().any(|p| p.trim_start_matches('/') == want.trim_start_matches('/')),
                "{want} in {got:?}"
            );
        }
        assert!(spec
            .entries()
            .any(|e| matches!(e, Entry::Symlink { target, .. } if target == "notes.txt")));
        assert!(got.iter().any(|p| p.contains("libc.so")), "true's libc: {got:?}");
    }

    #[test]
    fn a_missing_path_is_a_usage_error() {
        let err = add(&mut ArchiveSpec::default(), Path::new("/no/such/tool")).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
    }
}
