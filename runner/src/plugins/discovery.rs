//! The plugin search path and one scan over it.
//!
//! Order (first match of a kind+name wins, later ones are reported as
//! shadowed): `--plugin-dir` flags, `KTSTR_PLUGIN_PATH`, `plugins/` beside
//! the executable, the executable's own directory when it is a cargo target
//! directory, `~/.local/share/ktstr/plugins`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ktstr_core::check::Check;
use ktstr_core::plugin::{Kind, Manifest, PluginRef};
use serde::Serialize;

use super::cache::ManifestCache;

/// One directory of the search path and why it is on it.
#[derive(Debug, Clone, Serialize)]
pub struct SearchDir {
    pub path: PathBuf,
    pub origin: &'static str,
}

#[derive(Debug, Clone)]
pub struct Discovery {
    pub dirs: Vec<SearchDir>,
}

/// A plugin hidden by an earlier one of the same kind and name.
#[derive(Debug, Clone, Serialize)]
pub struct Shadowed {
    pub kind: Kind,
    pub name: String,
    pub path: PathBuf,
    pub shadowed_by: PathBuf,
}

/// A library that could not be used, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Everything one scan found.
#[derive(Debug, Default)]
pub struct Catalog {
    pub plugins: Vec<PluginRef>,
    pub broken: Vec<Broken>,
    pub shadowed: Vec<Shadowed>,
}

impl Discovery {
    /// The documented search path for this process.
    pub fn from_env(flag_dirs: &[PathBuf]) -> Discovery {
        let mut dirs: Vec<SearchDir> = flag_dirs
            .iter()
            .map(|p| SearchDir { path: p.clone(), origin: "--plugin-dir" })
            .collect();
        if let Some(paths) = std::env::var_os("KTSTR_PLUGIN_PATH") {
            dirs.extend(
                std::env::split_paths(&paths)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|path| SearchDir { path, origin: "KTSTR_PLUGIN_PATH" }),
            );
        }
        if let Some(exe_dir) =
            std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf))
        {
            dirs.push(SearchDir { path: exe_dir.join("plugins"), origin: "beside the executable" });
            if is_cargo_target_dir(&exe_dir) {
                dirs.push(SearchDir { path: exe_dir, origin: "cargo target directory" });
            }
        }
        if let Some(home) = std::env::var_os("HOME") {
            dirs.push(SearchDir {
                path: PathBuf::from(home).join(".local/share/ktstr/plugins"),
                origin: "user plugin directory",
            });
        }
        Discovery { dirs }
    }

    /// Every plugin of every `*.so` of every directory, in search order,
    /// each library probed in a child process (or taken from the cache).
    pub fn scan(&self) -> Catalog {
        let mut cache = ManifestCache::open();
        let catalog = self.scan_with(&mut cache);
        cache.save();
        catalog
    }

    pub fn scan_with(&self, cache: &mut ManifestCache) -> Catalog {
        let mut visited: Vec<PathBuf> = Vec::new();
        let mut libs = Vec::new();
        for dir in &self.dirs {
            // The same directory reached twice (flag + env) is scanned once.
            let canonical = dir.path.canonicalize().unwrap_or_else(|_| dir.path.clone());
            if visited.contains(&canonical) {
                continue;
            }
            visited.push(canonical);
            libs.extend(libraries_in(&dir.path));
        }
        let probed = cache.probe_all(&libs);
        let mut catalog = Catalog::default();
        let mut seen: HashMap<(Kind, String), PathBuf> = HashMap::new();
        for (path, result) in libs.into_iter().zip(probed) {
            let manifests = match result {
                Ok(m) => m,
                Err(reason) => {
                    catalog.broken.push(Broken { path, reason });
                    continue;
                }
            };
            for (index, info) in manifests.into_iter().enumerate() {
                if let Err(reason) = default_checks_parse(&info) {
                    catalog.broken.push(Broken { path: path.clone(), reason });
                    continue;
                }
                let key = (info.kind, info.name.clone());
                match seen.get(&key) {
                    Some(first) => catalog.shadowed.push(Shadowed {
                        kind: key.0,
                        name: key.1,
                        path: path.clone(),
                        shadowed_by: first.clone(),
                    }),
                    None => {
                        seen.insert(key, path.clone());
                        catalog.plugins.push(PluginRef {
                            path: path.clone(),
                            index: index as u32,
                            info,
                        });
                    }
                }
            }
        }
        catalog
    }
}

impl Catalog {
    pub fn find(&self, kind: Kind, name: &str) -> Option<&PluginRef> {
        self.plugins.iter().find(|p| p.info.kind == kind && p.info.name == name)
    }

    /// Like [`Catalog::find`], with an error that lists what exists and
    /// mentions broken plugins that might be the one meant.
    pub fn require(&self, kind: Kind, name: &str) -> anyhow::Result<&PluginRef> {
        if let Some(p) = self.find(kind, name) {
            return Ok(p);
        }
        let have: Vec<&str> = self
            .plugins
            .iter()
            .filter(|p| p.info.kind == kind)
            .map(|p| p.info.name.as_str())
            .collect();
        let mut msg = format!(
            "no {kind} plugin named `{name}` (available: {}); see `ktstr list-plugins`",
            if have.is_empty() { "none".to_string() } else { have.join(", ") }
        );
        for b in self
            .broken
            .iter()
            .filter(|b| b.path.to_string_lossy().contains(&name.replace('-', "_")))
        {
            msg.push_str(&format!(
                "\n  note: a plugin file that failed to load may be the one you meant: {b}"
            ));
        }
        anyhow::bail!(msg)
    }
}

/// A payload's default checks must parse: a bad one would fail every run.
fn default_checks_parse(info: &Manifest) -> Result<(), String> {
    let Some(p) = &info.payload else { return Ok(()) };
    for text in &p.default_checks {
        Check::parse(text).map_err(|e| format!("payload `{}`: default check: {e}", info.name))?;
    }
    Ok(())
}

/// Cargo's target dirs (`target/debug`, `target/release`) hold `.fingerprint`
/// and `deps`; a real install directory does not.
fn is_cargo_target_dir(dir: &Path) -> bool {
    dir.join(".fingerprint").is_dir() && dir.join("deps").is_dir()
}

/// Shared libraries in `dir`, sorted for a stable order. A missing
/// directory is simply empty: most of the search path is optional.
fn libraries_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut libs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "so") && p.is_file())
        .collect();
    libs.sort();
    libs
}
