//! Manifests of plugin libraries, probed in contained child processes and
//! cached on disk, so a warm `list-plugins` opens no library at all.
//!
//! An entry is reused only while the file's path and [`Stamp`] (device,
//! inode, size, mtime and ctime) match, and only by the same ktstr build (a
//! new host may judge a library differently). A library changed in the last
//! [`crate::stamp::SETTLE`] is probed but not cached, and a probe that ran
//! out of time is never cached: it may have been the machine that was slow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ktstr_core::plugin::{call, Manifest};
use serde::{Deserialize, Serialize};

use crate::stamp::Stamp;

/// What probing one library gave: its plugins, or why it is broken.
pub type Probed = Result<Vec<Manifest>, String>;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    identity: Stamp,
    probed: Probed,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    host: String,
    entries: BTreeMap<PathBuf, Entry>,
}

pub struct ManifestCache {
    path: Option<PathBuf>,
    file: File,
    dirty: bool,
}

impl ManifestCache {
    /// The cache of this user (`$KTSTR_CACHE_DIR` or `~/.cache/ktstr`).
    pub fn open() -> ManifestCache {
        Self::at(Some(crate::kernel::cache_dir().join("plugin-manifests.json")))
    }

    /// A cache kept at `path` (`None`: in memory only).
    pub fn at(path: Option<PathBuf>) -> ManifestCache {
        let host = host_identity();
        let file = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<File>(&b).ok())
            .filter(|f| f.host == host)
            .unwrap_or(File { host, entries: BTreeMap::new() });
        ManifestCache { path, file, dirty: false }
    }

    /// The manifests of each library in `paths`, in order: cached ones
    /// straight away, the others probed in parallel child processes.
    pub fn probe_all(&mut self, paths: &[PathBuf]) -> Vec<Probed> {
        let identities: Vec<Result<Stamp, String>> =
            paths.iter().map(|p| Stamp::of(p).map_err(|e| format!("cannot stat: {e}"))).collect();
        let mut results: Vec<Option<Probed>> = paths
            .iter()
            .zip(&identities)
            .map(|(p, id)| match id {
                Err(e) => Some(Err(e.clone())),
                Ok(id) => {
                    self.file.entries.get(p).filter(|e| &e.identity == id).map(|e| e.probed.clone())
                }
            })
            .collect();
        let misses: Vec<usize> = (0..paths.len()).filter(|&i| results[i].is_none()).collect();
        let probed: Vec<Probed> = std::thread::scope(|s| {
            let handles: Vec<_> =
                misses.iter().map(|&i| s.spawn(move || call::probe(&paths[i]))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("the probe thread panicked".into())))
                .collect()
        });
        let now = std::time::SystemTime::now();
        for (i, result) in misses.into_iter().zip(probed) {
            let timed_out = result.as_ref().is_err_and(|e| e.starts_with("did not answer"));
            let settled = identities[i].as_ref().is_ok_and(|id| id.settled(now));
            if let (Ok(identity), false, true) = (&identities[i], timed_out, settled) {
                let entry = Entry { identity: identity.clone(), probed: result.clone() };
                self.file.entries.insert(paths[i].clone(), entry);
                self.dirty = true;
            }
            results[i] = Some(result);
        }
        results.into_iter().map(|r| r.expect("every library was looked up or probed")).collect()
    }

    /// Writes the cache back if anything changed, forgetting libraries that
    /// no longer exist; a failure only costs speed.
    pub fn save(&mut self) {
        let Some(path) = &self.path else { return };
        if !self.dirty {
            return;
        }
        self.file.entries.retain(|p, _| p.exists());
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
            let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec(&self.file)?)?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            tracing::debug!("cannot save the plugin manifest cache {}: {e}", path.display());
        }
    }
}

/// This ktstr build: its version, its ABI and its executable's identity.
fn host_identity() -> String {
    let exe = std::env::current_exe().ok().and_then(|e| std::fs::metadata(e).ok());
    let exe = exe.map(|m| {
        use std::os::unix::fs::MetadataExt;
        format!("{}-{}.{}", m.len(), m.mtime(), m.mtime_nsec())
    });
    format!(
        "ktstr {} abi {} exe {}",
        env!("CARGO_PKG_VERSION"),
        ktstr_plugin_api::ABI_VERSION,
        exe.unwrap_or_default()
    )
}
