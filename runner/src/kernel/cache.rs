//! The kernel cache: keys, entries, per-key locks, atomic installation,
//! listing and cleaning. See the layout in `mod.rs`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::metadata::Metadata;

/// Part of every key: bump when the build recipe changes, so entries built
/// the old way stop matching.
const RECIPE: &str = "ktstr-kernel-recipe-v1";

/// `$KTSTR_CACHE_DIR`, else `~/.cache/ktstr`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KTSTR_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache/ktstr"),
        None => std::env::temp_dir().join("ktstr-cache"),
    }
}

/// The cache key: 16 hex digits of SHA-256 over the recipe version, the
/// source identity, the fragment and the compiler versions.
pub fn key(source_identity: &str, fragment: &str, compilers: &[String]) -> String {
    let mut h = Sha256::new();
    for part in [RECIPE, source_identity, &sha256_hex(fragment.as_bytes())]
        .into_iter()
        .chain(compilers.iter().map(String::as_str))
    {
        // Length-prefixed so no two different inputs serialize alike.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex(h.finalize())[..16].to_string()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(Sha256::digest(data))
}

/// Lower-case hex.
pub fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes via a temp file in the same directory and a rename, so readers
/// see the old content or the new, never a torn file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().context("path has no parent")?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))
}

/// An exclusive flock(2) on one key, released on drop.
pub struct KeyLock {
    _file: File,
}

pub struct Cache {
    /// `<cache dir>/kernels`
    root: PathBuf,
}

impl Cache {
    pub fn new(cache_dir: &Path) -> Self {
        Self { root: cache_dir.join("kernels") }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The finished entry for `key`, if there is one.
    pub fn lookup(&self, key: &str) -> Option<Metadata> {
        Metadata::read(&self.entry_dir(key)).ok().filter(|m| m.key == key)
    }

    /// The work dir of this process's build of `key`.
    pub fn tmp_dir(&self, key: &str) -> PathBuf {
        self.root.join(format!(".tmp-{key}-{}", std::process::id()))
    }

    pub fn failed_log(&self, key: &str) -> PathBuf {
        self.root.join(format!("failed-{key}.log"))
    }

    /// Locks `key`; with `wait`, blocks until the holder is done, else
    /// returns None when another process holds it.
    pub fn lock(&self, key: &str, wait: bool) -> Result<Option<KeyLock>> {
        let dir = self.root.join(".locks");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join(format!("{key}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        let op = if wait { libc::LOCK_EX } else { libc::LOCK_EX | libc::LOCK_NB };
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
                return Ok(Some(KeyLock { _file: file }));
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) if !wait => return Ok(None),
                _ => return Err(err).with_context(|| format!("flock {}", path.display())),
            }
        }
    }

    /// Removes work dirs of `key` left by killed builds. Call with the
    /// key's lock held: then no live build owns them.
    pub fn remove_stale_tmp(&self, key: &str) {
        let prefix = format!(".tmp-{key}-");
        for dir in self.dot_dirs().into_iter().filter(|d| file_name(d).starts_with(&prefix)) {
            tracing::info!("removing stale build dir {}", dir.display());
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// Moves the finished `out` dir to `<key>/` in one step. An existing
    /// entry (`--force`) is swapped out atomically and then removed, so
    /// readers always see a complete entry.
    pub fn install(&self, key: &str, out: &Path) -> Result<PathBuf> {
        let dest = self.entry_dir(key);
        if !dest.exists() {
            std::fs::rename(out, &dest)
                .with_context(|| format!("rename {} to {}", out.display(), dest.display()))?;
            return Ok(dest);
        }
        exchange(out, &dest)?;
        // `out` now holds the old entry.
        std::fs::remove_dir_all(out)
            .with_context(|| format!("remove old entry (now at {})", out.display()))?;
        Ok(dest)
    }

    /// Finished entries, newest first (by creation time, then key).
    pub fn entries(&self) -> Vec<(PathBuf, Metadata)> {
        let Ok(rd) = std::fs::read_dir(&self.root) else { return Vec::new() };
        let mut out: Vec<(PathBuf, Metadata)> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !file_name(p).starts_with('.'))
            .filter_map(|p| Metadata::read(&p).ok().map(|m| (p, m)))
            .collect();
        out.sort_by(|a, b| {
            b.1.created_unix.cmp(&a.1.created_unix).then_with(|| b.1.key.cmp(&a.1.key))
        });
        out
    }

    /// Removes all but the `keep` newest entries and the one keyed `also`,
    /// plus leftovers of killed builds and failed-build logs. Entries being
    /// rebuilt are skipped.
    pub fn clean(&self, keep: usize, also: Option<&str>) -> Result<CleanReport> {
        let mut report = CleanReport::default();
        let doomed = self.entries().into_iter().skip(keep);
        for (dir, meta) in doomed.filter(|(_, m)| Some(m.key.as_str()) != also) {
            let Some(_lock) = self.lock(&meta.key, false)? else {
                report.skipped.push(dir);
                continue;
            };
            std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
            report.removed.push(dir);
        }
        for dir in self.dot_dirs().into_iter().filter(|d| file_name(d).starts_with(".tmp-")) {
            // `.tmp-<key>-<pid>`: stale unless a build of that key runs.
            let key = file_name(&dir)
                .trim_start_matches(".tmp-")
                .split('-')
                .next()
                .unwrap_or_default()
                .to_string();
            if self.lock(&key, false)?.is_some() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("remove {}", dir.display()))?;
                report.removed.push(dir);
            }
        }
        if keep == 0 {
            if let Ok(rd) = std::fs::read_dir(&self.root) {
                for p in
                    rd.flatten().map(|e| e.path()).filter(|p| file_name(p).starts_with("failed-"))
                {
                    let _ = std::fs::remove_file(&p);
                    report.removed.push(p);
                }
            }
        }
        Ok(report)
    }

    fn dot_dirs(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(&self.root) else { return Vec::new() };
        rd.flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && file_name(p).starts_with('.'))
            .collect()
    }
}

#[derive(Debug, Default)]
pub struct CleanReport {
    pub removed: Vec<PathBuf>,
    /// Entries whose key is locked by a running build.
    pub skipped: Vec<PathBuf>,
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// renameat2(RENAME_EXCHANGE): swaps two paths atomically.
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two valid NUL-terminated paths relative to the cwd.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        bail!("swap {} with {}: {err}", a.display(), b.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::metadata::sample;

    fn put_entry(cache: &Cache, key: &str, created: u64) -> PathBuf {
        let dir = cache.entry_dir(key);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(Metadata::FILE),
            serde_json::to_vec(&sample(key, created)).unwrap(),
        )
        .unwrap();
        dir
    }

    #[test]
    fn key_depends_on_every_input() {
        let c = vec!["gcc 12".to_string(), "clang 19".to_string()];
        let k = key("tarball /a size=1", "CONFIG_A=y\n", &c);
        assert_eq!(k.len(), 16);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(k, key("tarball /a size=1", "CONFIG_A=y\n", &c));
        assert_ne!(k, key("tarball /a size=2", "CONFIG_A=y\n", &c));
        assert_ne!(k, key("tarball /a size=1", "CONFIG_A=m\n", &c));
        assert_ne!(
            k,
            key(
                "tarball /a size=1",
                "CONFIG_A=y\n",
                &["gcc 13".to_string(), "clang 19".to_string()]
            )
        );
    }

    #[test]
    fn list_is_newest_first_and_ignores_tmp_and_broken_dirs() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        put_entry(&cache, "aaaa", 100);
        put_entry(&cache, "bbbb", 300);
        put_entry(&cache, "cccc", 200);
        // A build in progress (complete-looking, even) and a half entry.
        let tmp = cache.root().join(".tmp-dddd-1");
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join(Metadata::FILE), serde_json::to_vec(&sample("dddd", 999)).unwrap())
            .unwrap();
        std::fs::create_dir_all(cache.root().join("eeee")).unwrap();
        std::fs::write(cache.root().join("failed-ffff.log"), "x").unwrap();
        let keys: Vec<String> = cache.entries().into_iter().map(|(_, m)| m.key).collect();
        assert_eq!(keys, ["bbbb", "cccc", "aaaa"]);
        assert!(cache.lookup("dddd").is_none());
        assert!(cache.lookup("eeee").is_none());
        assert_eq!(cache.lookup("cccc").unwrap().created_unix, 200);
    }

    #[test]
    fn clean_keeps_the_newest() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        for (k, t) in [("aaaa", 100), ("bbbb", 300), ("cccc", 200)] {
            put_entry(&cache, k, t);
        }
        let stale = cache.root().join(".tmp-aaaa-999999");
        std::fs::create_dir_all(stale.join("src")).unwrap();
        let keys = || -> Vec<String> { cache.entries().into_iter().map(|(_, m)| m.key).collect() };
        // The default kernel (built with this ktstr's fragment) stays too.
        let report = cache.clean(1, Some("aaaa")).unwrap();
        assert_eq!(report.removed.len(), 2, "{report:?}");
        assert!(!stale.exists());
        assert_eq!(keys(), ["bbbb", "aaaa"]);
        cache.clean(1, None).unwrap();
        assert_eq!(keys(), ["bbbb"]);
        cache.clean(0, None).unwrap();
        assert!(cache.entries().is_empty());
    }

    #[test]
    fn clean_skips_tmp_dirs_of_running_builds() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        let running = cache.root().join(".tmp-abcd-1");
        std::fs::create_dir_all(&running).unwrap();
        let _held = cache.lock("abcd", true).unwrap().unwrap();
        cache.clean(0, None).unwrap();
        assert!(running.exists());
    }

    #[test]
    fn install_is_atomic_and_replaces() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        std::fs::create_dir_all(cache.root()).unwrap();
        let out = cache.root().join(".tmp-k1-1");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("bzImage"), "one").unwrap();
        let dest = cache.install("k1", &out).unwrap();
        assert!(!out.exists());
        assert_eq!(std::fs::read_to_string(dest.join("bzImage")).unwrap(), "one");
        // --force: a second build swaps in over the first.
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("bzImage"), "two").unwrap();
        cache.install("k1", &out).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("bzImage")).unwrap(), "two");
        assert!(!out.exists());
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        let held = cache.lock("k", true).unwrap().unwrap();
        assert!(cache.lock("k", false).unwrap().is_none());
        assert!(cache.lock("other", false).unwrap().is_some());
        drop(held);
        assert!(cache.lock("k", false).unwrap().is_some());
    }

    #[test]
    fn write_atomic_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        write_atomic(&p, b"1").unwrap();
        write_atomic(&p, b"22").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"22");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
