//! The dependency closure of an ELF object, found the way glibc's ld.so
//! finds it (`dl-load.c: _dl_map_object`), for each DT_NEEDED name:
//!   1. a name with a '/' is a path;
//!   2. DT_RPATH of the needing object, then of each object up the chain
//!      that loaded it — skipped when the needing object has DT_RUNPATH;
//!   3. LD_LIBRARY_PATH (the host run's; the guest has none, but every
//!      library ends up in a guest default directory anyway);
//!   4. DT_RUNPATH of the needing object;
//!   5. /etc/ld.so.cache;
//!   6. the default directories (`ld.so --help`, "system search path").
//!
//! Candidates that are not x86-64 ELF are skipped, as the loader skips them.
//! Breadth-first, and a name seen once is not searched again: ld.so loads
//! dependencies breadth-first and reuses an object already loaded by name.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::elf::{is_x86_64_elf, read_elf_info};
use super::ldcache::LdCache;

/// Debian multiarch glibc's built-in search path, as `ld.so --help` prints it.
/// (No /lib64: it is only where PT_INTERP points.)
pub const DEFAULT_DIRS: &[&str] =
    &["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"];

/// One library of the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lib {
    /// The DT_NEEDED string, as requested.
    pub name: String,
    /// Where the loader would open it on the host (not canonicalized).
    pub path: PathBuf,
}

#[derive(Debug, Default)]
pub struct Closure {
    /// PT_INTERP of the root object, if any.
    pub interp: Option<String>,
    /// Every library, in load (breadth-first) order.
    pub libs: Vec<Lib>,
}

pub struct Resolver {
    pub ld_cache: LdCache,
    pub ld_library_path: Vec<String>,
    pub default_dirs: Vec<PathBuf>,
}

impl Resolver {
    /// The host loader's view: its cache, `LD_LIBRARY_PATH`, its defaults.
    pub fn host() -> Result<Self> {
        let llp = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
        Ok(Self {
            ld_cache: LdCache::load_host()?,
            // glibc splits LD_LIBRARY_PATH on both ':' and ';'.
            ld_library_path: llp
                .split([':', ';'])
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            default_dirs: DEFAULT_DIRS.iter().map(PathBuf::from).collect(),
        })
    }

    pub fn closure(&self, root: &Path) -> Result<Closure> {
        let info = read_elf_info(root)?;
        let mut closure = Closure { interp: info.interp.clone(), libs: Vec::new() };
        // The interpreter is loaded first and answers to its soname.
        let mut seen: HashSet<String> = HashSet::new();
        if let Some(interp) = &info.interp {
            if let Some(base) = Path::new(interp).file_name() {
                seen.insert(base.to_string_lossy().into_owned());
            }
        }
        // $ORIGIN of the main object: ld.so uses the realpath (/proc/self/exe).
        let root_origin =
            std::fs::canonicalize(root)?.parent().map(Path::to_path_buf).unwrap_or_default();

        // Each queued object carries the RPATH lists of its loading chain,
        // nearest first (its own list is prepended when it is processed).
        struct Item {
            path: PathBuf,
            origin: PathBuf,
            chain_rpaths: Vec<Vec<String>>,
        }
        let mut queue = VecDeque::from([Item {
            path: root.to_path_buf(),
            origin: root_origin,
            chain_rpaths: Vec::new(),
        }]);
        let mut first = Some(info);
        while let Some(item) = queue.pop_front() {
            let info = match first.take() {
                Some(i) => i,
                None => read_elf_info(&item.path)?,
            };
            let mut rpaths = vec![expand(info.effective_rpath(), &item.origin)];
            rpaths.extend(item.chain_rpaths.iter().cloned());
            let runpath = expand(&info.runpath, &item.origin);
            for name in &info.needed {
                if !seen.insert(name.clone()) {
                    continue;
                }
                let path = self.find(name, &item.path, &info.runpath, &rpaths, &runpath)?;
                let origin = path.parent().map(Path::to_path_buf).unwrap_or_default();
                queue.push_back(Item { path: path.clone(), origin, chain_rpaths: rpaths.clone() });
                closure.libs.push(Lib { name: name.clone(), path });
            }
        }
        Ok(closure)
    }

    fn find(
        &self,
        name: &str,
        needed_by: &Path,
        own_runpath: &[String],
        rpaths: &[Vec<String>],
        runpath: &[String],
    ) -> Result<PathBuf> {
        if name.contains('/') {
            let p = PathBuf::from(name);
            if is_x86_64_elf(&p) {
                return Ok(p);
            }
            bail!(
                "library {name} (needed by {}) does not exist or is not an x86-64 ELF object",
                needed_by.display()
            );
        }
        let mut searched: Vec<String> = Vec::new();
        let try_dirs =
            |dirs: &mut dyn Iterator<Item = &str>, searched: &mut Vec<String>| -> Option<PathBuf> {
                for d in dirs {
                    searched.push(d.to_string());
                    let p = Path::new(d).join(name);
                    if is_x86_64_elf(&p) {
                        return Some(p);
                    }
                }
                None
            };
        let rpath_dirs: Vec<&str> = if own_runpath.is_empty() {
            rpaths.iter().flatten().map(String::as_str).collect()
        } else {
            Vec::new()
        };
        if let Some(p) = try_dirs(&mut rpath_dirs.into_iter(), &mut searched) {
            return Ok(p);
        }
        if let Some(p) =
            try_dirs(&mut self.ld_library_path.iter().map(String::as_str), &mut searched)
        {
            return Ok(p);
        }
        if let Some(p) = try_dirs(&mut runpath.iter().map(String::as_str), &mut searched) {
            return Ok(p);
        }
        searched.push("/etc/ld.so.cache".into());
        if let Some(p) = self.ld_cache.lookup(name) {
            if is_x86_64_elf(p) {
                return Ok(p.to_path_buf());
            }
        }
        let defaults: Vec<String> =
            self.default_dirs.iter().map(|d| d.to_string_lossy().into_owned()).collect();
        if let Some(p) = try_dirs(&mut defaults.iter().map(String::as_str), &mut searched) {
            return Ok(p);
        }
        bail!(
            "library {name} (needed by {}) not found; searched: {}",
            needed_by.display(),
            searched.join(", ")
        )
    }
}

/// Splits colon lists and expands `$ORIGIN`/`${ORIGIN}`. Entries with any
/// other token ($LIB, $PLATFORM) or empty are dropped rather than guessed.
fn expand(lists: &[String], origin: &Path) -> Vec<String> {
    let o = origin.to_string_lossy();
    lists
        .iter()
        .flat_map(|l| l.split(':'))
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("${ORIGIN}", &o).replace("$ORIGIN", &o))
        .filter(|s| !s.contains('$'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::process::Command;

    /// `ldd` output as name → path, plus the interpreter line.
    fn ldd(bin: &str) -> (BTreeMap<String, String>, Option<String>) {
        let out = Command::new("ldd").arg(bin).output().expect("run ldd");
        assert!(out.status.success(), "ldd {bin}: {}", String::from_utf8_lossy(&out.stderr));
        let mut libs = BTreeMap::new();
        let mut interp = None;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let line = line.trim();
            if let Some((name, rest)) = line.split_once(" => ") {
                libs.insert(name.to_string(), rest.split(" (").next().unwrap().to_string());
            } else if line.starts_with('/') {
                interp = Some(line.split(" (").next().unwrap().to_string());
            } // else linux-vdso.so.1: no file
        }
        (libs, interp)
    }

    fn compare_with_ldd(bin: &str) {
        if !Path::new(bin).exists() {
            eprintln!("SKIP: {bin} not installed");
            return;
        }
        let closure = Resolver::host().unwrap().closure(Path::new(bin)).unwrap();
        let (expected, interp) = ldd(bin);
        let ours: BTreeMap<String, String> = closure
            .libs
            .iter()
            .map(|l| (l.name.clone(), l.path.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(ours, expected, "closure of {bin} differs from ldd");
        assert_eq!(closure.interp, interp);
    }

    #[test]
    fn initramfs_resolve_matches_ldd_for_ls() {
        compare_with_ldd("/bin/ls");
    }

    #[test]
    fn initramfs_resolve_matches_ldd_for_stress_ng() {
        compare_with_ldd("/usr/bin/stress-ng");
    }

    #[test]
    fn initramfs_resolve_expands_origin() {
        let got =
            expand(&["$ORIGIN/../lib:${ORIGIN}/x:/abs::$LIB/y".into()], Path::new("/opt/app/bin"));
        assert_eq!(got, ["/opt/app/bin/../lib", "/opt/app/bin/x", "/abs"]);
    }

    #[test]
    fn initramfs_resolve_missing_library_is_named() {
        let r = Resolver {
            ld_cache: LdCache::default(),
            ld_library_path: vec![],
            default_dirs: vec![PathBuf::from("/nonexistent-dir")],
        };
        let err = r
            .find(
                "libnope.so.9",
                Path::new("/x/needy"),
                &[],
                &[vec!["/rp".into()]],
                &["/run".into()],
            )
            .unwrap_err();
        let msg = format!("{err}");
        assert!(msg.contains("libnope.so.9") && msg.contains("/x/needy"), "{msg}");
        assert!(
            msg.contains("/rp") && msg.contains("/run") && msg.contains("/nonexistent-dir"),
            "{msg}"
        );
    }
}
