//! Where the kernel source comes from and how it is identified. The
//! identity feeds the cache key and must be cheap: a tarball is known by
//! path, size and mtime (hashing 150 MB would make a cache hit slow), a git
//! tree by HEAD plus a hash of its uncommitted changes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::cache::hex;
use super::progress;
use crate::usage::UsageError;

/// Debian's `linux-source-*` packages put their tarball here.
const DEFAULT_GLOB_DIR: &str = "/usr/src";

#[derive(Debug, Clone)]
pub enum Source {
    /// A release tarball (`.tar.xz`, `.tar.gz`, …), extracted per build.
    Tarball(PathBuf),
    /// A git checkout, built out of tree (`make O=`).
    Git(PathBuf),
    /// An unpacked source tree that is not a git checkout.
    Dir(PathBuf),
}

impl Source {
    /// `--source`, or the newest `/usr/src/linux-source-*.tar.*`.
    pub fn from_arg(arg: Option<&Path>) -> Result<Source> {
        let Some(path) = arg else {
            return default_tarball(Path::new(DEFAULT_GLOB_DIR)).map(Source::Tarball);
        };
        let path = path
            .canonicalize()
            .map_err(|e| UsageError(format!("--source {}: {e}", path.display())))?;
        if path.is_file() {
            if !is_tarball(&path) {
                return Err(UsageError(format!(
                    "--source {}: not a directory or a .tar.* archive",
                    path.display()
                ))
                .into());
            }
            return Ok(Source::Tarball(path));
        }
        if !path.join("Makefile").is_file()
            || !path.join("scripts/kconfig/merge_config.sh").is_file()
            || !path.join("arch/x86").is_dir()
        {
            return Err(UsageError(format!(
                "--source {}: not a Linux kernel source tree (no \
                Makefile, scripts/kconfig, arch/x86)",
                path.display()
            ))
            .into());
        }
        Ok(if path.join(".git").exists() { Source::Git(path) } else { Source::Dir(path) })
    }

    /// Stable, cheap identity of the source's content, for the cache key.
    pub fn identity(&self) -> Result<String> {
        match self {
            Source::Tarball(p) => Ok(format!("tarball {} {}", p.display(), size_mtime(p)?)),
            Source::Dir(p) => {
                // Without git there is no cheap content hash; the top files'
                // stamps catch version bumps. Edits deeper down need --force.
                Ok(format!(
                    "dir {} {} {}",
                    p.display(),
                    size_mtime(&p.join("Makefile"))?,
                    size_mtime(p)?
                ))
            }
            Source::Git(p) => {
                let head = git(p, &["rev-parse", "HEAD"])?;
                let status = git(p, &["status", "--porcelain=v1", "--untracked-files=normal"])?;
                if status.trim().is_empty() {
                    return Ok(format!("git {} {}", p.display(), head.trim()));
                }
                let mut h = Sha256::new();
                h.update(status.as_bytes());
                h.update(git(p, &["diff", "HEAD", "--binary"])?.as_bytes());
                Ok(format!(
                    "git {} {} dirty-{}",
                    p.display(),
                    head.trim(),
                    &hex(h.finalize())[..16]
                ))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Tarball(p) => format!("tarball {}", p.display()),
            Source::Git(p) => format!("git tree {}", p.display()),
            Source::Dir(p) => format!("source tree {}", p.display()),
        }
    }

    /// The source tree to build from: the directory itself, or the tarball
    /// extracted under `work`.
    pub fn prepare(&self, work: &Path, log: &Path) -> Result<PathBuf> {
        match self {
            Source::Git(p) | Source::Dir(p) => Ok(p.clone()),
            Source::Tarball(tar) => {
                std::fs::create_dir_all(work)?;
                progress::stage(&format!("extracting {}…", tar.display()));
                let mut cmd = Command::new("tar");
                // GNU tar picks the decompressor itself; -J only helps old tars.
                let mode = if tar.to_string_lossy().ends_with(".xz") { "-xJf" } else { "-xf" };
                cmd.arg(mode).arg(tar).arg("--no-same-owner").arg("-C").arg(work);
                let took = progress::run_logged(&mut cmd, "extracting source", log)?;
                progress::stage(&format!("extracted in {}", progress::fmt_duration(took)));
                tree_root(work)
            }
        }
    }
}

/// Where the extracted tree's Makefile is: `work` or its only subdirectory.
fn tree_root(work: &Path) -> Result<PathBuf> {
    if work.join("Makefile").is_file() {
        return Ok(work.to_path_buf());
    }
    let dirs: Vec<PathBuf> =
        std::fs::read_dir(work)?.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    match dirs.as_slice() {
        [one] if one.join("Makefile").is_file() => Ok(one.clone()),
        _ => bail!(
            "the tarball did not unpack to a kernel tree (expected one directory with a \
            Makefile in {})",
            work.display()
        ),
    }
}

fn is_tarball(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.contains(".tar") || name.ends_with(".tgz")
}

/// The newest `linux-source-*.tar.*` in `dir`, by version in the name.
pub fn default_tarball(dir: &Path) -> Result<PathBuf> {
    let mut found: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let version = name.strip_prefix("linux-source-")?.split(".tar").next()?.to_string();
            (is_tarball(&p) && p.is_file()).then(|| (version_key(&version), p))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, p)) => Ok(p),
        None => Err(UsageError(format!(
            "no kernel source given and no {}/linux-source-*.tar.* found: run scripts/setup.sh \
             (installs linux-source-6.12), or pass --source DIR|TARBALL",
            dir.display()
        ))
        .into()),
    }
}

/// `6.12` → [6, 12]; non-numeric parts count as 0.
fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '-']).map(|p| p.parse().unwrap_or(0)).collect()
}

fn size_mtime(p: &Path) -> Result<String> {
    let m = std::fs::metadata(p).with_context(|| format!("stat {}", p.display()))?;
    let mtime = m.modified()?.duration_since(UNIX_EPOCH).unwrap_or_default();
    Ok(format!("size={} mtime={}.{:09}", m.len(), mtime.as_secs(), mtime.subsec_nanos()))
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("run git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {} in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tarball_picks_newest_version() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "linux-source-6.9.tar.xz",
            "linux-source-6.12.tar.xz",
            "linux-source-6.1.tar.bz2",
            "linux-config-6.12",
            "other.tar.xz",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(
            default_tarball(dir.path()).unwrap(),
            dir.path().join("linux-source-6.12.tar.xz")
        );
    }

    #[test]
    fn no_default_tarball_says_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = default_tarball(dir.path()).unwrap_err();
        assert!(err.is::<UsageError>());
        assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
    }

    #[test]
    fn tarball_identity_follows_size_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("linux-x.tar.xz");
        std::fs::write(&p, b"abc").unwrap();
        let src = Source::from_arg(Some(&p)).unwrap();
        let a = src.identity().unwrap();
        assert_eq!(a, src.identity().unwrap());
        std::fs::write(&p, b"abcd").unwrap();
        assert_ne!(a, src.identity().unwrap());
    }

    #[test]
    fn bad_source_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Source::from_arg(Some(&dir.path().join("missing")))
            .unwrap_err()
            .is::<UsageError>());
        assert!(Source::from_arg(Some(dir.path())).unwrap_err().is::<UsageError>());
    }
}
