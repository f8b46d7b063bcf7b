//! `--topology host` and `--topology-from FILE`: a real machine's shape as
//! the nearest `NnNlNcNt` (see ktstr_topology::Machine), with notes on what
//! the guest cannot copy.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use ktstr_core::topology::{GuestTopology, Machine, Topology};

use crate::usage::UsageError;

#[derive(Clone, Debug)]
pub struct Shape {
    pub topology: Topology,
    /// Where it was read from, for the log.
    pub source: String,
    pub notes: Vec<String>,
}

impl Shape {
    /// Says on stderr how the machine's shape was approximated.
    pub fn report_notes(&self) {
        eprintln!("[ktstr] topology {} from {}", self.topology, self.source);
        for note in &self.notes {
            eprintln!("[ktstr]   approximated: {note}");
        }
    }
}

/// This machine's shape, from its sysfs.
pub fn host() -> Result<Shape> {
    let seen = GuestTopology::read_from_sysfs(Path::new("/")).context("read this host's sysfs")?;
    shape(Machine::from_sysfs(&seen), "this host's /sys/devices/system".into())
}

/// Another machine's shape: `lscpu -p` output, or a tarball (any compression
/// tar reads) of its `/sys/devices/system/cpu` and `/sys/devices/system/node`.
pub fn from_file(path: &Path) -> Result<Shape> {
    let usage = |why: String| UsageError(format!("--topology-from {}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| usage(e.to_string()))?;
    let source = path.display().to_string();
    if let Ok(text) = std::str::from_utf8(&bytes) {
        if text.lines().any(|l| l.starts_with('#')) {
            return shape(Machine::from_lscpu(text), source)
                .map_err(|e| usage(format!("{e:#}")).into());
        }
    }
    let dir = tempfile::tempdir()?;
    let out = Command::new("tar")
        .arg("-xf")
        .arg(path)
        .arg("-C")
        .arg(dir.path())
        .output()
        .context("run tar")?;
    if !out.status.success() {
        return Err(usage(format!(
            "neither `lscpu -p=CPU,CORE,SOCKET,NODE,CACHE` output nor a tarball of \
                /sys/devices/system ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .into());
    }
    let root = ["", "sys", "system"]
        .iter()
        .map(|sub| dir.path().join(sub))
        .find(|r| r.join("sys/devices/system/cpu").is_dir())
        .or_else(|| sysfs_root_above(dir.path()))
        .ok_or_else(|| {
            usage("the tarball has no sys/devices/system/cpu (or devices/system/cpu)".into())
        })?;
    let seen = GuestTopology::read_from_sysfs(&root).map_err(|e| usage(format!("{e:#}")))?;
    shape(Machine::from_sysfs(&seen), source).map_err(|e| usage(format!("{e:#}")).into())
}

/// A tarball made with paths relative to `/sys`: make them look rooted.
fn sysfs_root_above(dir: &Path) -> Option<std::path::PathBuf> {
    if !dir.join("devices/system/cpu").is_dir() {
        return None;
    }
    let root = dir.join(".rooted");
    std::fs::create_dir_all(&root).ok()?;
    std::os::unix::fs::symlink(dir, root.join("sys")).ok()?;
    Some(root)
}

fn shape(machine: Result<Machine, String>, source: String) -> Result<Shape> {
    let approx =
        machine.and_then(|m| m.approximate()).map_err(|e| UsageError(format!("{source}: {e}")))?;
    Ok(Shape { topology: approx.topology, source, notes: approx.notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/machines").join(name)
    }

    #[test]
    fn lscpu_files_and_sysfs_tarballs_give_a_shape() {
        let s = from_file(&fixture("xeon-e5-2687w-v4-2s-smt.lscpu")).unwrap();
        assert_eq!(s.topology.to_string(), "2n1l12c2t");
        // A tarball of this host's sysfs, as a bug reporter would make it;
        // tar pads sysfs files (they claim 4096 bytes) with NULs.
        let dir = tempfile::tempdir().unwrap();
        let tarball = dir.path().join("machine.tar.gz");
        let made = Command::new("tar")
            .args(["-czf"])
            .arg(&tarball)
            .args(["-C", "/", "sys/devices/system/cpu", "sys/devices/system/node"])
            .output()
            .unwrap();
        assert!(tarball.is_file(), "{}", String::from_utf8_lossy(&made.stderr));
        assert_eq!(from_file(&tarball).unwrap().topology, host().unwrap().topology);
    }

    #[test]
    fn other_files_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not a topology").unwrap();
        let err = from_file(&junk).err().unwrap();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(format!("{err:#}").contains("neither `lscpu -p"), "{err:#}");
        assert!(from_file(&dir.path().join("missing")).is_err());
    }
}
