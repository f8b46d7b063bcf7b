//! Disk templates: a filesystem of one size, made once by the guest's own
//! mkfs in a one-shot VM, and kept in the disk cache. Keyed by filesystem,
//! size, and the mkfs binary (its version and a hash of its bytes), so a new
//! mkfs makes a new template. Built under a lock into a temporary file and
//! renamed into place: two runs racing for one template build it once, and
//! no run ever sees half a template.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use ktstr_core::disk::{serial, DiskPlan, Filesystem};
use ktstr_core::plan::BIN_DIR;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::initramfs::ArchiveSpec;
use crate::kernel::KernelEntry;
use crate::vm::{VmDisk, VmEngine};

/// Bumped when the way templates are made changes.
const RECIPE: &str = "ktstr-disk-template 1";
const TEMPLATE_NAME: &str = "template";

/// The host's mkfs for a filesystem.
#[derive(Debug, Clone)]
pub struct Mkfs {
    pub path: PathBuf,
    /// Its `-V` line, e.g. `mke2fs 1.47.0 (5-Feb-2023)`.
    pub version: String,
    pub sha256: String,
}

/// What the cache holds for one template (the `.json` beside the image).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub key: String,
    pub fs: Filesystem,
    pub size_bytes: u64,
    pub mkfs: String,
    pub mkfs_version: String,
    pub built_unix: u64,
    pub build_ms: u128,
}

/// A template ready to clone.
#[derive(Debug, Clone)]
pub struct Template {
    pub image: PathBuf,
    pub meta: Meta,
    /// Found in the cache (not built by this run).
    pub hit: bool,
}

pub fn templates_dir(disks_dir: &Path) -> PathBuf {
    disks_dir.join("templates")
}

/// Where the host's mkfs for `fs` is (PATH, then the sbin directories).
pub fn mkfs_path(fs: Filesystem) -> anyhow::Result<PathBuf> {
    let name = fs.mkfs().context("a blank disk has no mkfs")?;
    let path = crate::plugins::find_in_path(name)
        .or_else(|| {
            ["/usr/sbin", "/sbin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file())
        })
        .with_context(|| {
            let pkg = match fs {
                Filesystem::Btrfs => "btrfs-progs",
                Filesystem::Xfs => "xfsprogs",
                _ => "e2fsprogs",
            };
            format!("{name} not found: install it (`apt-get install {pkg}`) to make {fs} disks")
        })?;
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

/// The host's mkfs for `fs`, with what identifies its output.
pub fn find_mkfs(fs: Filesystem) -> anyhow::Result<Mkfs> {
    let path = mkfs_path(fs)?;
    let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let out = std::process::Command::new(&path).arg("-V").output();
    let version = out
        .map(|o| [o.stdout, o.stderr].concat())
        .map(|b| String::from_utf8_lossy(&b).lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let sha256 = crate::kernel::sha256_hex(&bytes);
    Ok(Mkfs { path, version, sha256 })
}

/// 16 hex digits over everything that decides a template's bytes.
pub fn key(fs: Filesystem, size_bytes: u64, mkfs: &Mkfs) -> String {
    let mut h = Sha256::new();
    let size = size_bytes.to_string();
    let args = fs.mkfs_args().join(" ");
    for part in [RECIPE, fs.name(), &size, &args, &mkfs.version, &mkfs.sha256] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    crate::kernel::hex(h.finalize())[..16].to_string()
}

/// The file name of a template: readable, then the key.
fn file_stem(fs: Filesystem, size_bytes: u64, key: &str) -> String {
    format!("{fs}-{}-{key}", human_size(size_bytes))
}

pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b => format!("{b}B"),
    }
}

/// The template for (`fs`, `size_bytes`): from the cache, or built now;
/// with its lock, held until the caller has cloned it.
pub fn get_or_build(
    disks_dir: &Path,
    fs: Filesystem,
    size_bytes: u64,
    engine: &dyn VmEngine,
    kernel: &KernelEntry,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<(Template, File)> {
    let mkfs = find_mkfs(fs)?;
    let key = key(fs, size_bytes, &mkfs);
    let dir = templates_dir(disks_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let stem = file_stem(fs, size_bytes, &key);
    let (image, meta_path) = (dir.join(format!("{stem}.img")), dir.join(format!("{stem}.json")));
    let cached = || read_meta(&meta_path).filter(|_| image.is_file());
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{stem}.lock")))
        .context("open the template lock")?;
    // Runs that clone the template share its lock; a build and `ktstr disk
    // clean` hold it alone, so neither pulls a template from under a clone.
    let waiting = format!("waiting for another ktstr building the {fs} template {stem}…");
    if lock.try_lock_shared().is_err() {
        progress(&waiting);
        lock.lock_shared().context("lock the template")?;
    }
    if let Some(meta) = cached() {
        return Ok((Template { image, meta, hit: true }, lock));
    }
    lock.unlock().context("unlock the template")?;
    if lock.try_lock().is_err() {
        progress(&waiting);
        lock.lock().context("lock the template")?;
    }
    // Built by another run while this one waited.
    if let Some(meta) = cached() {
        return Ok((Template { image, meta, hit: true }, lock));
    }
    progress(&format!(
        "building the {} {fs} template with {} ({}) in a one-shot VM…",
        human_size(size_bytes),
        mkfs.path.display(),
        mkfs.version
    ));
    let started = Instant::now();
    let tmp = dir.join(format!("{stem}.img.tmp-{}", std::process::id()));
    let built = build(&tmp, fs, size_bytes, &mkfs, engine, kernel);
    if let Err(e) = built {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let meta = Meta {
        key,
        fs,
        size_bytes,
        mkfs: mkfs.path.display().to_string(),
        mkfs_version: mkfs.version,
        built_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        build_ms: started.elapsed().as_millis(),
    };
    std::fs::rename(&tmp, &image).context("install the template")?;
    crate::kernel::write_atomic(&meta_path, serde_json::to_string_pretty(&meta)?.as_bytes())?;
    progress(&format!("template {stem} built in {:.1} s", meta.build_ms as f64 / 1000.0));
    Ok((Template { image, meta, hit: false }, lock))
}

pub fn read_meta(path: &Path) -> Option<Meta> {
    crate::json_file::load(path)
}

/// Formats a blank image of `size_bytes` at `tmp` with the guest's mkfs,
/// and checks the guest mounts it as `fs`.
fn build(
    tmp: &Path,
    fs: Filesystem,
    size_bytes: u64,
    mkfs: &Mkfs,
    engine: &dyn VmEngine,
    kernel: &KernelEntry,
) -> anyhow::Result<()> {
    File::create(tmp)
        .and_then(|f| f.set_len(size_bytes))
        .with_context(|| format!("create {}", tmp.display()))?;
    let mut base = ArchiveSpec::default();
    base.add_elf_with_deps(&crate::run::init_binary()?, "/init")?;
    let guest_mkfs = base.add_elf_in_dir(&mkfs.path, BIN_DIR)?;
    // mke2fs reads its defaults from here; the same file as on the host.
    if let Ok(conf) = std::fs::read("/etc/mke2fs.conf") {
        base.add_bytes("/etc/mke2fs.conf", conf, 0o644);
    }
    let args = fs.mkfs_args().iter().map(|s| s.to_string()).collect();
    let plan = DiskPlan {
        name: TEMPLATE_NAME.into(),
        serial: serial(TEMPLATE_NAME),
        fs,
        // Mounted read-only, only to check what mkfs made.
        read_only: true,
        mount_at: Some(format!("/mnt/{TEMPLATE_NAME}")),
        mkfs: Some((guest_mkfs, args)),
    };
    let disk = VmDisk {
        path: tmp.to_path_buf(),
        read_only: false,
        serial: serial(TEMPLATE_NAME),
        iops: None,
        bps: None,
    };
    let work = tempfile::Builder::new().prefix("ktstr-template-").tempdir()?;
    let reports =
        crate::run::setup_vm::run(engine, kernel, &base, vec![plan], vec![disk], work.path())?;
    let seen = reports.first().and_then(|r| r.fs_magic);
    if seen != fs.statfs_magic() {
        bail!("the guest mounted the new {fs} template as {seen:?}, not {fs}");
    }
    File::open(tmp)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfs(version: &str, sha: &str) -> Mkfs {
        Mkfs { path: "/sbin/mkfs.btrfs".into(), version: version.into(), sha256: sha.into() }
    }

    #[test]
    fn the_key_follows_filesystem_size_and_mkfs() {
        let m = mkfs("btrfs-progs v6.2", "aa");
        let k = key(Filesystem::Btrfs, 256 << 20, &m);
        assert_eq!(k.len(), 16);
        assert_eq!(k, key(Filesystem::Btrfs, 256 << 20, &m));
        assert_ne!(k, key(Filesystem::Btrfs, 512 << 20, &m));
        assert_ne!(k, key(Filesystem::Ext4, 256 << 20, &m));
        assert_ne!(k, key(Filesystem::Btrfs, 256 << 20, &mkfs("btrfs-progs v6.3", "aa")));
        assert_ne!(k, key(Filesystem::Btrfs, 256 << 20, &mkfs("btrfs-progs v6.2", "bb")));
        assert_eq!(file_stem(Filesystem::Btrfs, 256 << 20, &k), format!("btrfs-256M-{k}"));
        assert_eq!(human_size(2 << 30), "2G");
    }
}
