//! Base archives cached by content: the init, plugins, binaries and their
//! libraries change rarely between runs, so the archive is built once.
//!
//! The key is SHA-256 over every entry: kind, guest path, mode, and the
//! bytes — for host files their *content*, not (path, size, mtime): a
//! rebuilt plugin with an unchanged mtime granularity or a restored backup
//! must not hit a stale archive. Each file's hash is remembered by its stamp
//! (device, inode, size, mtime, ctime; see [`super::hashes`]), so a warm run
//! reads none of them. A file changing between hashing and writing is not
//! guarded against.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::hashes::FileHashes;
use super::{write_newc, ArchiveSpec, Entry};

/// Bump when the writer's output changes, so old archives stop matching.
const FORMAT: &[u8] = b"ktstr-initramfs-newc-v1";
/// The memo of host files' hashes, beside the archives.
const HASHES: &str = "hashes.json";
/// Archives kept after a build; older ones are removed by mtime.
const KEEP: usize = 8;

pub struct BaseArchiveCache {
    dir: PathBuf,
}

impl BaseArchiveCache {
    /// `dir` is `<ktstr cache dir>/initramfs`; created on first build.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cached archive for `spec`, built (atomically: temp file + rename)
    /// only when absent. A hit does not touch the file.
    pub fn get_or_build(&self, spec: &ArchiveSpec) -> Result<PathBuf> {
        let mut hashes = FileHashes::open(Some(self.dir.join(HASHES)));
        let key = key(spec, &mut hashes)?;
        hashes.save();
        let path = self.dir.join(format!("{key}.cpio"));
        if path.is_file() {
            tracing::debug!("initramfs cache hit {}", path.display());
            return Ok(path);
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("create {}", self.dir.display()))?;
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let built = (|| -> Result<()> {
            let mut f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            write_newc(spec, &mut f)?;
            f.sync_all()?;
            // Concurrent builders of the same key write the same bytes; the
            // last rename wins harmlessly.
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))
        })();
        if let Err(e) = built {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.context("build the base initramfs"));
        }
        tracing::debug!("initramfs cache built {}", path.display());
        self.prune(&path);
        Ok(path)
    }

    /// Keeps the newest [`KEEP`] archives; failures only cost disk space.
    fn prune(&self, keep: &Path) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return };
        let mut archives: Vec<(std::time::SystemTime, PathBuf)> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cpio") && p != keep)
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        archives.sort_by_key(|a| std::cmp::Reverse(a.0));
        for (_, p) in archives.into_iter().skip(KEEP - 1) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Hex SHA-256 over the format tag and every entry, length-prefixed so no
/// two different specs serialize alike.
pub fn key(spec: &ArchiveSpec, hashes: &mut FileHashes) -> Result<String> {
    let mut h = Sha256::new();
    field(&mut h, FORMAT);
    for entry in spec.resolved()? {
        field(&mut h, entry.guest_path().as_bytes());
        match &entry {
            Entry::Dir { mode, .. } => {
                field(&mut h, b"dir");
                field(&mut h, &mode.to_le_bytes());
            }
            Entry::Symlink { target, .. } => {
                field(&mut h, b"symlink");
                field(&mut h, target.as_bytes());
            }
            Entry::Bytes { data, mode, .. } => {
                field(&mut h, b"file");
                field(&mut h, &mode.to_le_bytes());
                field(&mut h, &Sha256::digest(data));
            }
            Entry::File { host_path, mode, .. } => {
                field(&mut h, b"file");
                field(&mut h, &mode.to_le_bytes());
                field(&mut h, &hashes.sha256(host_path)?);
            }
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(payload: &[u8]) -> ArchiveSpec {
        let mut s = ArchiveSpec::default();
        s.add_bytes("/a", payload.to_vec(), 0o644).add_file("/etc/hostname", "/etc/hn", 0o644);
        s
    }

    #[test]
    fn initramfs_cache_hit_does_not_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BaseArchiveCache::new(dir.path().join("initramfs"));
        let first = cache.get_or_build(&spec(b"one")).unwrap();
        let mtime = first.metadata().unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = cache.get_or_build(&spec(b"one")).unwrap();
        assert_eq!(first, second);
        assert_eq!(second.metadata().unwrap().modified().unwrap(), mtime);
        let other = cache.get_or_build(&spec(b"two")).unwrap();
        assert_ne!(first, other);
        // No temp files left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("initramfs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".cpio") || n == HASHES), "{names:?}");
    }

    #[test]
    fn initramfs_cache_key_covers_file_content_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"v1").unwrap();
        let with = |mode: u32| {
            let mut s = ArchiveSpec::default();
            s.add_file(&f, "/f", mode);
            key(&s, &mut FileHashes::open(None)).unwrap()
        };
        let k1 = with(0o644);
        assert_eq!(k1, with(0o644));
        assert_ne!(k1, with(0o755));
        std::fs::write(&f, b"v2").unwrap();
        assert_ne!(k1, with(0o644));
    }

    #[test]
    fn initramfs_cache_prunes_old_archives() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BaseArchiveCache::new(dir.path());
        for i in 0..KEEP + 3 {
            cache.get_or_build(&spec(format!("{i}").as_bytes())).unwrap();
        }
        let cpio = |e: &std::fs::DirEntry| e.path().extension().is_some_and(|x| x == "cpio");
        let n =
            std::fs::read_dir(dir.path()).unwrap().filter(|e| cpio(e.as_ref().unwrap())).count();
        assert_eq!(n, KEEP);
    }
}
