//! Which kernel a boot uses: `--kernel PATH|KEY`, else `$KTSTR_KERNEL`,
//! else the newest cached entry built with this ktstr's kconfig fragment
//! (else the newest of all, with a warning).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::cache::{cache_dir, Cache};
use super::config::fragment_hash;
use super::metadata::Metadata;

/// A kernel to boot, with what was built beside it.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct KernelEntry {
    /// The cache entry (or the directory holding the bzImage).
    pub dir: PathBuf,
    pub bzimage: PathBuf,
    /// With BTF; what BPF programs are built against.
    pub vmlinux: Option<PathBuf>,
    /// The kernel uncompressed, for a VMM to load directly: the entry's
    /// `vmlinux.boot`, else its vmlinux (cache entries only: their vmlinux
    /// is known to be the bzImage's own).
    pub boot_elf: Option<PathBuf>,
    pub config: Option<PathBuf>,
    /// e.g. `6.12.117`; `unknown` when it cannot be read.
    pub version: String,
    /// The cache key, for entries from the cache.
    pub key: Option<String>,
}

#[allow(dead_code)]
impl KernelEntry {
    /// A scheduler binary built with this kernel: `schedulers/<name>`, or
    /// `schedulers/scx_<name>` (so `simple` finds `scx_simple`).
    pub fn find_scheduler(&self, name: &str) -> Option<PathBuf> {
        if name.is_empty() || name.contains('/') {
            return None;
        }
        let dir = self.dir.join("schedulers");
        [dir.join(name), dir.join(format!("scx_{name}"))].into_iter().find(|p| p.is_file())
    }

    /// Every scheduler in `schedulers/`, sorted by name.
    pub fn schedulers(&self) -> Vec<(String, PathBuf)> {
        let Ok(rd) = std::fs::read_dir(self.dir.join("schedulers")) else { return Vec::new() };
        let mut v: Vec<(String, PathBuf)> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .map(|p| (p.file_name().unwrap_or_default().to_string_lossy().into_owned(), p))
            .collect();
        v.sort();
        v
    }

    fn from_cache(dir: PathBuf, meta: &Metadata) -> Self {
        let vmlinux = meta.paths.vmlinux.as_ref().map(|p| dir.join(p)).filter(|p| p.is_file());
        let boot_elf = Some(dir.join(super::boot_elf::BOOT_ELF))
            .filter(|p| p.is_file())
            .or_else(|| vmlinux.clone());
        KernelEntry {
            bzimage: dir.join(&meta.paths.bzimage),
            vmlinux,
            boot_elf,
            config: meta.paths.config.as_ref().map(|p| dir.join(p)).filter(|p| p.is_file()),
            version: meta.kernel_version.clone(),
            key: Some(meta.key.clone()),
            dir,
        }
    }

    /// A bare bzImage; vmlinux and config are taken from beside it (a cache
    /// entry) or from the kernel build dir it sits in (`arch/x86/boot/`).
    fn from_bzimage(bzimage: PathBuf) -> Self {
        let dir = bzimage.parent().map(Path::to_path_buf).unwrap_or_default();
        let build_root = dir
            .ancestors()
            .nth(3)
            .filter(|_| dir.ends_with("arch/x86/boot"))
            .map(Path::to_path_buf);
        let near = |names: &[&str]| -> Option<PathBuf> {
            let mut places = vec![dir.clone()];
            places.extend(build_root.clone());
            places.iter().flat_map(|d| names.iter().map(move |n| d.join(n))).find(|p| p.is_file())
        };
        KernelEntry {
            vmlinux: near(&["vmlinux"]),
            boot_elf: None,
            config: near(&["config", ".config"]),
            version: bzimage_version(&bzimage).unwrap_or_else(|| "unknown".into()),
            key: None,
            dir: build_root.unwrap_or(dir),
            bzimage,
        }
    }
}

/// The kernel to boot: `flag` (`--kernel`), else `$KTSTR_KERNEL`, else the
/// default cache entry (see [`default_entry`]).
pub fn resolve(flag: Option<&str>) -> Result<KernelEntry> {
    let env = std::env::var("KTSTR_KERNEL").ok().filter(|v| !v.is_empty());
    resolve_in(&Cache::new(&cache_dir()), flag, env.as_deref(), &fragment_hash())
}

/// Which of the cache's `entries` (newest first) boots when none is named:
/// the newest built with the fragment `fragment` (this ktstr's), so that a
/// kernel built by another ktstr, or by hand with another fragment, never
/// becomes the default by being newer. Else the newest, and `false`.
pub fn default_entry<'a>(
    entries: &'a [(PathBuf, Metadata)],
    fragment: &str,
) -> Option<(&'a (PathBuf, Metadata), bool)> {
    match entries.iter().find(|(_, m)| m.fragment_hash == fragment) {
        Some(e) => Some((e, true)),
        None => entries.first().map(|e| (e, false)),
    }
}

fn resolve_in(
    cache: &Cache,
    flag: Option<&str>,
    env: Option<&str>,
    fragment: &str,
) -> Result<KernelEntry> {
    let (spec, from) = match (flag, env) {
        (Some(f), _) => (f, "--kernel"),
        (None, Some(e)) => (e, "KTSTR_KERNEL"),
        (None, None) => {
            return match default_entry(&cache.entries(), fragment) {
                Some(((dir, meta), current)) => {
                    // Once a process: boots and scheduler listings both ask.
                    static SAID: std::sync::Once = std::sync::Once::new();
                    if !current {
                        SAID.call_once(|| {
                            tracing::warn!(
                                "no cached kernel was built with this ktstr's kconfig fragment; \
                             using the newest, {} (built with another): `ktstr kernel \
                             build` builds this ktstr's",
                                meta.key
                            )
                        });
                    }
                    Ok(KernelEntry::from_cache(dir.clone(), meta))
                }
                None => bail!(
                    "no test kernel: the cache ({}) is empty. Build one with `ktstr kernel build` \
                     (after `scripts/setup.sh` installs the toolchain and linux-source-6.12), \
                     or pass --kernel PATH / set KTSTR_KERNEL to a bzImage",
                    cache.root().display()
                ),
            };
        }
    };
    let path = Path::new(spec);
    if path.is_file() {
        let file = path.canonicalize()?;
        // A cache entry's own bzImage: use its metadata.
        if let Some(dir) = file.parent() {
            if let Ok(meta) = Metadata::read(dir) {
                if dir.join(&meta.paths.bzimage) == file {
                    return Ok(KernelEntry::from_cache(dir.to_path_buf(), &meta));
                }
            }
        }
        return Ok(KernelEntry::from_bzimage(file));
    }
    if path.is_dir() {
        let dir = path.canonicalize()?;
        if let Ok(meta) = Metadata::read(&dir) {
            return Ok(KernelEntry::from_cache(dir, &meta));
        }
        for candidate in ["bzImage", "arch/x86/boot/bzImage"] {
            if dir.join(candidate).is_file() {
                return Ok(KernelEntry::from_bzimage(dir.join(candidate)));
            }
        }
        bail!(
            "{from} {spec}: the directory has no metadata.json, bzImage or arch/x86/boot/bzImage"
        );
    }
    // A key or an unambiguous key prefix.
    let matches: Vec<(PathBuf, Metadata)> =
        cache.entries().into_iter().filter(|(_, m)| m.key.starts_with(spec)).collect();
    match matches.as_slice() {
        [(dir, meta)] => Ok(KernelEntry::from_cache(dir.clone(), meta)),
        [] => bail!(
            "{from} {spec}: no such file, and no cached kernel key starts with it \
             (`ktstr kernel list` shows them; `ktstr kernel build` builds one)"
        ),
        many => {
            let keys: Vec<&str> = many.iter().map(|(_, m)| m.key.as_str()).collect();
            bail!("{from} {spec}: ambiguous, matches keys {}", keys.join(", "))
        }
    }
}

/// The version a bzImage announces: the setup header's `kernel_version`
/// string (boot protocol 2.00+), first word.
fn bzimage_version(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = vec![0u8; 64 * 1024];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    head.truncate(n);
    if head.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let ptr = u16::from_le_bytes([*head.get(0x20e)?, *head.get(0x20f)?]) as usize + 0x200;
    let s = head.get(ptr..)?;
    let end = s.iter().position(|&b| b == 0)?;
    let text = std::str::from_utf8(&s[..end]).ok()?;
    text.split_whitespace().next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::metadata::sample;

    fn put_entry(cache: &Cache, key: &str, created: u64) -> PathBuf {
        let dir = cache.entry_dir(key);
        std::fs::create_dir_all(dir.join("schedulers")).unwrap();
        std::fs::write(
            dir.join(Metadata::FILE),
            serde_json::to_vec(&sample(key, created)).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("bzImage"), b"k").unwrap();
        std::fs::write(dir.join("schedulers/scx_simple"), b"s").unwrap();
        dir
    }

    #[test]
    fn empty_cache_says_how_to_build() {
        let root = tempfile::tempdir().unwrap();
        let err = resolve_in(&Cache::new(root.path()), None, None, "f").unwrap_err().to_string();
        assert!(err.contains("`ktstr kernel build`"), "{err}");
        assert!(err.contains("scripts/setup.sh"), "{err}");
    }

    #[test]
    fn order_is_flag_then_env_then_newest() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        put_entry(&cache, "aaaa1111", 100);
        put_entry(&cache, "bbbb2222", 200);
        assert_eq!(resolve_in(&cache, None, None, "f").unwrap().key.as_deref(), Some("bbbb2222"));
        assert_eq!(
            resolve_in(&cache, None, Some("aaaa"), "f").unwrap().key.as_deref(),
            Some("aaaa1111")
        );
        assert_eq!(
            resolve_in(&cache, Some("bbbb"), Some("aaaa"), "f").unwrap().key.as_deref(),
            Some("bbbb2222")
        );
        let by_dir =
            resolve_in(&cache, Some(cache.entry_dir("aaaa1111").to_str().unwrap()), None, "f")
                .unwrap();
        assert_eq!(by_dir.key.as_deref(), Some("aaaa1111"));
        assert_eq!(by_dir.version, "6.12.117");
        assert!(resolve_in(&cache, Some("zzzz"), None, "f")
            .unwrap_err()
            .to_string()
            .contains("ktstr kernel list"));
        put_entry(&cache, "aaaa9999", 50);
        assert!(resolve_in(&cache, Some("aaaa"), None, "f")
            .unwrap_err()
            .to_string()
            .contains("ambiguous"));
    }

    #[test]
    fn the_default_is_the_newest_built_with_this_ktstrs_fragment() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        put_entry(&cache, "aaaa1111", 100);
        // Newer, but built with another fragment (another ktstr, an experiment).
        let other = put_entry(&cache, "bbbb2222", 200);
        let mut meta = Metadata::read(&other).unwrap();
        meta.fragment_hash = "another".into();
        std::fs::write(other.join(Metadata::FILE), serde_json::to_vec(&meta).unwrap()).unwrap();
        assert_eq!(resolve_in(&cache, None, None, "f").unwrap().key.as_deref(), Some("aaaa1111"));
        let entries = cache.entries();
        let ((_, m), current) = default_entry(&entries, "f").unwrap();
        assert_eq!((m.key.as_str(), current), ("aaaa1111", true));
        // None built with this ktstr's: the newest, said to be another's.
        let ((_, m), current) = default_entry(&entries, "mine").unwrap();
        assert_eq!((m.key.as_str(), current), ("bbbb2222", false));
        let k = resolve_in(&cache, None, None, "mine").unwrap();
        assert_eq!(k.key.as_deref(), Some("bbbb2222"));
        // Named kernels are taken as named, whatever their fragment.
        let named = resolve_in(&cache, Some("bbbb"), None, "f").unwrap();
        assert_eq!(named.key.as_deref(), Some("bbbb2222"));
    }

    #[test]
    fn bare_bzimage_and_schedulers() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::new(root.path());
        let dir = put_entry(&cache, "cccc", 1);
        let k = resolve_in(&cache, Some(dir.join("bzImage").to_str().unwrap()), None, "f").unwrap();
        assert_eq!(k.dir, dir.canonicalize().unwrap());
        assert_eq!(k.version, "6.12.117");
        assert_eq!(k.find_scheduler("scx_simple"), Some(k.dir.join("schedulers/scx_simple")));
        assert_eq!(k.find_scheduler("simple"), Some(k.dir.join("schedulers/scx_simple")));
        assert_eq!(k.find_scheduler("scx_qmap"), None);
        assert_eq!(k.find_scheduler("../bzImage"), None);
        assert_eq!(k.schedulers().len(), 1);
        // Outside the cache: version from the header (none here), no key.
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("bzImage"), b"not a kernel").unwrap();
        let bare = resolve_in(&cache, Some(other.path().to_str().unwrap()), None, "f").unwrap();
        assert_eq!(
            (bare.version.as_str(), bare.key.as_deref(), bare.vmlinux.as_deref()),
            ("unknown", None, None)
        );
    }

    #[test]
    fn reads_version_from_setup_header() {
        let dir = tempfile::tempdir().unwrap();
        let mut img = vec![0u8; 0x400];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x20e..0x210].copy_from_slice(&(0x100u16).to_le_bytes());
        let s = b"6.12.117 (ktstr@ktstr) #1 SMP\0";
        img[0x300..0x300 + s.len()].copy_from_slice(s);
        let p = dir.path().join("bzImage");
        std::fs::write(&p, img).unwrap();
        assert_eq!(bzimage_version(&p).as_deref(), Some("6.12.117"));
    }
}
