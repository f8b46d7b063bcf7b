//! Manifests of plugin libraries, probed in contained child processes and
//! cached on disk, so a warm `list-plugins` opens no library at all.
//!
//! An entry is reused only while the file's path and [`Stamp`] (device,
//! inode, size, mtime and ctime) match, and only by the same ktstr build (a
//! new host may judge a library differently). A library changed in the last
//! [`crate::stamp::SETTLE`] is probed but not cached, and a probe that ran
//! out of time is never cached: it may have been the machine that was slow.

use std::path::PathBuf;

use ktstr_core::plugin::{call, Manifest};

use crate::stamp::{Stamp, StampMemo};

/// What probing one library gave: its plugins, or why it is broken.
pub type Probed = Result<Vec<Manifest>, String>;

pub struct ManifestCache {
    memo: StampMemo<Probed>,
}

impl ManifestCache {
    /// The cache of this user (`$KTSTR_CACHE_DIR` or `~/.cache/ktstr`).
    pub fn open() -> ManifestCache {
        Self::at(Some(crate::kernel::cache_dir().join("plugin-manifests.json")))
    }

    /// A cache kept at `path` (`None`: in memory only).
    pub fn at(path: Option<PathBuf>) -> ManifestCache {
        ManifestCache { memo: StampMemo::open(path, host_identity()) }
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
                Ok(id) => self.memo.get(p, id).cloned(),
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
        for (i, result) in misses.into_iter().zip(probed) {
            let timed_out = result.as_ref().is_err_and(|e| e.starts_with("did not answer"));
            if let (Ok(stamp), false) = (&identities[i], timed_out) {
                self.memo.put(&paths[i], stamp.clone(), result.clone());
            }
            results[i] = Some(result);
        }
        results.into_iter().map(|r| r.expect("every library was looked up or probed")).collect()
    }

    /// Writes the cache back if anything changed; a failure only costs speed.
    pub fn save(&mut self) {
        self.memo.save();
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
